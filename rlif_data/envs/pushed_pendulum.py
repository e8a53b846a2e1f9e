"""InvertedPendulum-v5 with random pushes, and its linearisation for LQR experts.

The CPU experiment of the RLIF loop needs a task on which a controller can be
made deliberately weak: MuJoCo's cart-pole (`InvertedPendulum-v5`) with a kick
to the pole every `push_every` steps. Every `push_every`-th step the pole's
angular velocity gets ``+= N(0, push_std)`` after the physics of that step, so
the observation that step returns already shows the push and the controller can
react to it. Pushes come from the env's own seeded ``np_random``, so
``reset(seed=s)`` reproduces the reset noise and every push of the episode.

`PushedPendulumSetup` holds every parameter of the experiment's environment and
experts (pushes, episode length, LQR weights, caps) in one frozen dataclass, so
a driver can store it in lineage. `linearize` gives the discrete-time (A, B) of
one environment step around the upright equilibrium, by finite differences
through MuJoCo (`mujoco.mjd_transitionFD`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv

from rlif_data.envs import PUSHED_PENDULUM_ID as ENV_ID

PUSH_INFO_KEY = "push"
"""`info` key of `step`: the pole angular-velocity change applied at this step (0.0 if none)."""


def _check_positive_int(name: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is an int (not bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_number(name: str, value: Any, positive: bool) -> None:
    """Raises ValueError unless ``value`` is a finite real number > 0 (or >= 0)."""
    ok = (isinstance(value, (int, float, np.integer, np.floating))
          and not isinstance(value, bool) and np.isfinite(value)
          and (value > 0 if positive else value >= 0))
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>' if positive else '>='} 0, "
                         f"got {value!r}")


def _check_push_params(push_every: Any, push_std: Any) -> None:
    """Raises ValueError unless push_every is an int >= 1 and push_std finite >= 0."""
    _check_positive_int("push_every", push_every)
    _check_number("push_std", push_std, positive=False)


@dataclasses.dataclass(frozen=True)
class PushedPendulumSetup:
    """Environment and expert parameters of the pushed-pendulum experiment.

    Attributes:
      push_every: a push follows the physics of every `push_every`-th step.
      push_std: standard deviation of a push, in rad/s of pole angular velocity.
      episode_steps: time limit of an episode, in env steps (0.04 s each).
      lqr_state_weights: diagonal of the LQR state cost Q for the plain expert,
        over (cart position, pole angle, cart velocity, pole angular velocity).
      lqr_action_weight: the LQR action cost R of the plain expert.
      aggressive_state_weights: Q of the reference ("aggressive") controller.
      aggressive_action_weight: R of the reference controller.
      fd_eps: finite-difference step of the linearisation.
    """

    push_every: int = 50
    push_std: float = 0.9
    # 1000 steps (19 pushes that matter) spread the experts apart; at 200 steps
    # even the 0.7-capped one survives 71 % (benchmarks/README.md).
    episode_steps: int = 1000
    # The plain expert spends its authority centring the cart, so it drops
    # kicks the reference (heavy on the pole angle) catches.
    lqr_state_weights: tuple[float, float, float, float] = (100.0, 1.0, 100.0, 1.0)
    lqr_action_weight: float = 1.0
    aggressive_state_weights: tuple[float, float, float, float] = (1.0, 400.0, 1.0, 1.0)
    aggressive_action_weight: float = 0.01
    fd_eps: float = 1e-6

    def __post_init__(self):
        _check_push_params(self.push_every, self.push_std)
        _check_positive_int("episode_steps", self.episode_steps)
        for name in ("lqr_state_weights", "aggressive_state_weights"):
            weights = getattr(self, name)
            if not isinstance(weights, tuple) or len(weights) != 4:
                raise ValueError(f"{name} must be a tuple of 4 numbers >= 0, got {weights!r}")
            for w in weights:
                _check_number(name, w, positive=False)
        for name in ("lqr_action_weight", "aggressive_action_weight", "fd_eps"):
            _check_number(name, getattr(self, name), positive=True)

    def env_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `gymnasium.make(ENV_ID, ...)` for this setup."""
        return {"push_every": self.push_every, "push_std": self.push_std,
                "max_episode_steps": self.episode_steps}

    def to_json_dict(self) -> dict[str, Any]:
        """The setup as a JSON-ready dict (tuples become lists), e.g. for lineage."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


DEFAULT_SETUP = PushedPendulumSetup()
"""The setting the experiment uses (see benchmarks/pendulum_experts.py for its figures)."""


class PushedInvertedPendulumEnv(InvertedPendulumEnv):
    """`InvertedPendulum-v5` whose pole is kicked every `push_every` steps.

    Observation, action space, reward and termination are those of
    InvertedPendulum-v5 (obs = [cart pos, pole angle, cart vel, pole angular
    vel]; action in [-3, 3]; +1 per upright step; ends when |angle| > 0.2).

    Args:
      push_every: steps between pushes; the first push follows step `push_every`.
      push_std: standard deviation of each push (rad/s added to the pole's
        angular velocity). 0 keeps the draws but makes every push 0.
      **kwargs: passed to `InvertedPendulumEnv` (e.g. `reset_noise_scale`).

    Raises:
      ValueError: push_every is not a positive int or push_std not finite >= 0.
    """

    def __init__(self, push_every: int = DEFAULT_SETUP.push_every,
                 push_std: float = DEFAULT_SETUP.push_std, **kwargs):
        _check_push_params(push_every, push_std)
        super().__init__(**kwargs)
        self.push_every = int(push_every)
        self.push_std = float(push_std)
        self._steps = 0

    def reset_model(self) -> np.ndarray:
        """Reset the state (InvertedPendulum-v5's noise) and the push clock."""
        self._steps = 0
        return super().reset_model()

    def step(self, action):
        """One InvertedPendulum-v5 step, then the push if one is due.

        Returns:
          (observation, reward, terminated, truncated, info) as the base env,
          with ``info["push"]`` the angular-velocity change applied after this
          step's physics (0.0 at steps without a push).
        """
        observation, reward, terminated, truncated, info = super().step(action)
        self._steps += 1
        push = 0.0
        if self._steps % self.push_every == 0:
            push = float(self.np_random.normal(0.0, self.push_std))
            # qvel is part of the integrator state: the next mj_step starts from it.
            self.data.qvel[1] += push
            observation = self._get_obs()
        info[PUSH_INFO_KEY] = push
        return observation, reward, terminated, truncated, info


def linearize(env: Any, eps: float = DEFAULT_SETUP.fd_eps) -> tuple[np.ndarray, np.ndarray]:
    """Discrete-time linear model of one env step around the upright rest state.

    Central finite differences of the env step x' = f(x, u) through MuJoCo
    itself (``frame_skip`` calls of ``mj_step`` with the action held), at
    x = 0, u = 0: column j of A is (f(e_j eps) - f(-e_j eps)) / (2 eps).
    ``mujoco.mjd_transitionFD`` would do this per physics step, but it does
    not support the RK4 integrator this model uses. The state is the
    observation (qpos, qvel); the action is the env's action (ctrl).

    The model's pole leans 1 mm over its 0.6 m length, so x = 0 is not quite
    an equilibrium (f(0, 0) != 0; the true one is at angle -1/600 rad). The
    Jacobians at 0 and there are the same to first order, and a controller
    u = -K x settles at that lean with u = 0, so the offset is left out.

    Args:
      env: a `PushedInvertedPendulumEnv` or InvertedPendulum-v5 (wrapped or
        not); its simulation state is left unchanged (a separate MjData is used).
      eps: finite-difference step.

    Returns:
      (A, B) of shapes (4, 4) and (4, 1), float64.
    """
    base = env.unwrapped
    model = base.model
    nq, nv, nu = model.nq, model.nv, model.nu
    x0 = np.concatenate([base.init_qpos, base.init_qvel * 0.0])
    u0 = np.zeros(nu)

    def step(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return _simulate(model, x[:nq], x[nq:], u, base.frame_skip)

    a = np.empty((nq + nv, nq + nv))
    b = np.empty((nq + nv, nu))
    for j in range(nq + nv):
        dx = np.zeros(nq + nv)
        dx[j] = eps
        a[:, j] = (step(x0 + dx, u0) - step(x0 - dx, u0)) / (2 * eps)
    for j in range(nu):
        du = np.zeros(nu)
        du[j] = eps
        b[:, j] = (step(x0, u0 + du) - step(x0, u0 - du)) / (2 * eps)
    return a, b


def _simulate(model: Any, qpos: np.ndarray, qvel: np.ndarray, ctrl: np.ndarray,
              n_steps: int) -> np.ndarray:
    """(qpos, qvel) after `n_steps` physics steps from the given state with `ctrl` held."""
    import mujoco

    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    data.qvel[:] = qvel
    data.ctrl[:] = ctrl
    mujoco.mj_step(model, data, nstep=n_steps)
    return np.concatenate([data.qpos, data.qvel])


def make_env(setup: PushedPendulumSetup = DEFAULT_SETUP, seed: Optional[int] = None, **kwargs):
    """`gymnasium.make` of the pushed pendulum with `setup`'s pushes and time limit.

    Args:
      setup: the experiment parameters.
      seed: if given, the env is reset once with it (later resets continue).
      **kwargs: further env kwargs (e.g. ``render_mode``).

    Returns:
      The Gymnasium env (with its TimeLimit wrapper).
    """
    import gymnasium as gym

    env = gym.make(ENV_ID, **setup.env_kwargs(), **kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env
