"""Policies: callables ``policy(observation) -> float32 action``.

Every policy here returns a float32 vector inside the action bounds it was
built for. Four kinds:

* `RandomPolicy` -- uniform actions from a seeded numpy Generator.
* Scripted experts (`HopperBalanceExpert`, `Walker2dBalanceExpert`) --
  deterministic PD balance controllers for the Gymnasium MuJoCo envs. They keep
  the robot healthy for whole episodes (they stand, they do not run), so they
  are a reproducible offline stand-in for a trained expert. Look them up with
  `scripted_expert(env_id)`.
* `NoisyPolicy` -- any policy plus clipped Gaussian noise: a "weak learner".
* `MLPPolicy` -- a Flax MLP restored from an orbax checkpoint
  (`save_mlp_policy` / `load_mlp_policy`).

jax, flax and orbax are imported only inside the MLP functions so that
importing this module (e.g. from a recording CLI) stays light.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from rlif_data import errors

Policy = Callable[[np.ndarray], np.ndarray]
"""A policy maps one observation to one float32 action."""

PathLike = Union[str, os.PathLike]

# --------------------------------------------------------------------------
# Bounds helpers
# --------------------------------------------------------------------------


def _as_bounds(action_low: Any, action_high: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated float32 copies of action bounds.

    Raises:
      ValueError: shapes differ, a bound is not finite, or low > high.
    """
    low = np.array(action_low, dtype=np.float32, ndmin=1)
    high = np.array(action_high, dtype=np.float32, ndmin=1)
    if low.shape != high.shape or low.ndim != 1:
        raise ValueError(
            f"action bounds must be 1-D with equal shapes, got {low.shape} and {high.shape}"
        )
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"action bounds must be finite, got low={low}, high={high}")
    if np.any(low > high):
        raise ValueError(f"action_low must be <= action_high, got low={low}, high={high}")
    return low, high


# --------------------------------------------------------------------------
# Random and noisy policies
# --------------------------------------------------------------------------


class RandomPolicy:
    """Uniformly random actions; ignores the observation.

    Args:
      action_low: lower bound per action dimension.
      action_high: upper bound per action dimension.
      seed: seed of the numpy Generator; equal seeds give equal action streams.

    Raises:
      ValueError: the bounds are inconsistent (see `_as_bounds`).
    """

    def __init__(self, action_low: Any, action_high: Any, seed: Optional[int] = 0):
        self.action_low, self.action_high = _as_bounds(action_low, action_high)
        self._rng = np.random.default_rng(seed)

    @classmethod
    def from_space(cls, space: Any, seed: Optional[int] = 0) -> "RandomPolicy":
        """A random policy for a Gymnasium ``Box`` action space.

        Args:
          space: the Box (anything with ``low`` and ``high`` arrays).
          seed: seed of the numpy Generator.

        Returns:
          A `RandomPolicy` over ``[space.low, space.high]``.
        """
        return cls(space.low, space.high, seed=seed)

    def reset(self, seed: Optional[int] = None) -> None:
        """Restart the random stream.

        Args:
          seed: new seed; None draws fresh OS entropy (not reproducible).
        """
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation: Any = None) -> np.ndarray:
        """One uniform action in the bounds.

        Args:
          observation: ignored; accepted so this is a drop-in policy.

        Returns:
          A float32 action of the bounds' shape.
        """
        del observation
        action = self._rng.uniform(self.action_low, self.action_high)
        # The float32 cast rounds to nearest; clip so it can never leave the box.
        return np.clip(action.astype(np.float32), self.action_low, self.action_high)


class NoisyPolicy:
    """A policy plus Gaussian action noise, clipped to the bounds.

    Built from a scripted expert this is a cheap "weak learner" whose quality
    is set by ``noise_std``.

    Args:
      base: the wrapped policy.
      noise_std: standard deviation of the added noise (scalar or per dimension).
      action_low: lower bound per action dimension.
      action_high: upper bound per action dimension.
      seed: seed of the noise Generator.

    Raises:
      ValueError: ``noise_std`` is negative or not finite, or the bounds are
        inconsistent.
    """

    def __init__(
        self,
        base: Policy,
        noise_std: Union[float, Sequence[float]],
        action_low: Any,
        action_high: Any,
        seed: Optional[int] = 0,
    ):
        self.action_low, self.action_high = _as_bounds(action_low, action_high)
        std = np.asarray(noise_std, dtype=np.float64)
        if not np.all(np.isfinite(std)) or np.any(std < 0):
            raise ValueError(f"noise_std must be finite and >= 0, got {noise_std!r}")
        self.base = base
        self.noise_std = std
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: Optional[int] = None) -> None:
        """Restart the noise stream (the base policy is left alone).

        Args:
          seed: new seed; None draws fresh OS entropy (not reproducible).
        """
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The base action plus noise.

        Args:
          observation: passed to the base policy.

        Returns:
          A float32 action clipped to the bounds.
        """
        action = np.asarray(self.base(observation), dtype=np.float64)
        noisy = action + self._rng.normal(0.0, 1.0, size=action.shape) * self.noise_std
        return np.clip(noisy.astype(np.float32), self.action_low, self.action_high)


# --------------------------------------------------------------------------
# Scripted experts
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LegGains:
    """PD gains of one hopper-style leg (thigh, leg, foot joints).

    Positive joint torque increases the joint angle. Torso feedback goes into
    the hip and the ankle because those two joints can swing the torso and
    shift the centre of mass over the foot; the knee is only held straight.
    The values were found by random search on seeded episodes and rounded.
    """

    hip_kp: float
    hip_target: float
    hip_kd: float
    hip_torso_angle: float
    hip_torso_rate: float
    knee_kp: float
    knee_kd: float
    ankle_kp: float
    ankle_target: float
    ankle_kd: float
    ankle_torso_angle: float
    ankle_torso_rate: float
    ankle_forward_vel: float


def _leg_torques(
    g: LegGains, torso_angle: float, torso_rate: float, forward_vel: float,
    q: np.ndarray, qd: np.ndarray,
) -> list[float]:
    """Unclipped [hip, knee, ankle] commands for one leg."""
    hip = (g.hip_kp * (g.hip_target - q[0]) - g.hip_kd * qd[0]
           + g.hip_torso_angle * torso_angle + g.hip_torso_rate * torso_rate)
    knee = -g.knee_kp * q[1] - g.knee_kd * qd[1]
    ankle = (g.ankle_kp * (g.ankle_target - q[2]) - g.ankle_kd * qd[2]
             + g.ankle_torso_angle * torso_angle + g.ankle_torso_rate * torso_rate
             + g.ankle_forward_vel * forward_vel)
    return [hip, knee, ankle]


def _check_obs(observation: Any, size: int, who: str) -> np.ndarray:
    """The observation as a float64 vector of ``size`` entries.

    Raises:
      ValueError: the observation has a different shape.
    """
    obs = np.asarray(observation, dtype=np.float64)
    if obs.shape != (size,):
        raise ValueError(f"{who} expects an observation of shape ({size},), got {obs.shape}")
    return obs


HOPPER_GAINS = LegGains(
    hip_kp=4.0, hip_target=-0.25, hip_kd=0.15, hip_torso_angle=-3.5, hip_torso_rate=-0.1,
    knee_kp=3.0, knee_kd=0.25,
    ankle_kp=4.5, ankle_target=-0.05, ankle_kd=0.3, ankle_torso_angle=-4.0,
    ankle_torso_rate=0.15, ankle_forward_vel=-0.4,
)

WALKER2D_GAINS = LegGains(
    hip_kp=4.0, hip_target=-0.27, hip_kd=0.16, hip_torso_angle=-3.3, hip_torso_rate=0.09,
    knee_kp=1.3, knee_kd=0.1,
    ankle_kp=6.3, ankle_target=-0.04, ankle_kd=0.17, ankle_torso_angle=-5.5,
    ankle_torso_rate=0.18, ankle_forward_vel=-0.42,
)


class HopperBalanceExpert:
    """Deterministic PD controller that keeps Hopper-v5 standing.

    Hopper-v5 observation (11,): ``[z, torso_angle, thigh, leg, foot,
    x_vel, z_vel, torso_rate, thigh_vel, leg_vel, foot_vel]`` (qpos without
    rootx, then qvel). Actions are in [-1, 1]^3. It survives full 1000-step
    episodes on the seeds tried, but moves forward very little: returns are
    about one healthy reward per step.

    Args:
      gains: controller gains; the default is tuned for Hopper-v5.
    """

    OBS_DIM = 11

    def __init__(self, gains: LegGains = HOPPER_GAINS):
        self.gains = gains

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The action for one observation.

        Args:
          observation: a Hopper-v5 observation of shape (11,).

        Returns:
          A float32 action of shape (3,) in [-1, 1].

        Raises:
          ValueError: the observation has the wrong shape.
        """
        o = _check_obs(observation, self.OBS_DIM, type(self).__name__)
        torques = _leg_torques(self.gains, o[1], o[7], o[5], o[2:5], o[8:11])
        return np.clip(np.asarray(torques, dtype=np.float32), -1.0, 1.0)


class Walker2dBalanceExpert:
    """Deterministic PD controller that keeps Walker2d-v5 standing.

    Walker2d-v5 observation (17,): ``[z, torso_angle, right thigh/leg/foot,
    left thigh/leg/foot, x_vel, z_vel, torso_rate, right joint vels (3),
    left joint vels (3)]``. Actions are [right hip/knee/ankle, left
    hip/knee/ankle] in [-1, 1]^6. Both legs run the same gains, so the walker
    stands on both feet rather than walking.

    Args:
      gains: per-leg controller gains; the default is tuned for Walker2d-v5.
    """

    OBS_DIM = 17

    def __init__(self, gains: LegGains = WALKER2D_GAINS):
        self.gains = gains

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The action for one observation.

        Args:
          observation: a Walker2d-v5 observation of shape (17,).

        Returns:
          A float32 action of shape (6,) in [-1, 1].

        Raises:
          ValueError: the observation has the wrong shape.
        """
        o = _check_obs(observation, self.OBS_DIM, type(self).__name__)
        torso_angle, torso_rate, forward_vel = o[1], o[10], o[8]
        right = _leg_torques(self.gains, torso_angle, torso_rate, forward_vel, o[2:5], o[11:14])
        left = _leg_torques(self.gains, torso_angle, torso_rate, forward_vel, o[5:8], o[14:17])
        return np.clip(np.asarray(right + left, dtype=np.float32), -1.0, 1.0)


SCRIPTED_EXPERTS: dict[str, Callable[[], Policy]] = {
    "Hopper-v5": HopperBalanceExpert,
    "Walker2d-v5": Walker2dBalanceExpert,
}
"""Env id -> factory of a deterministic scripted expert for that env."""


def scripted_expert(env_id: str) -> Policy:
    """A new scripted expert for ``env_id``.

    Args:
      env_id: a Gymnasium id such as "Hopper-v5".

    Returns:
      A deterministic policy for that env.

    Raises:
      UnknownEnvironmentError: (a ValueError) no scripted expert exists for
        ``env_id``; the message lists the ids that have one.
    """
    try:
        factory = SCRIPTED_EXPERTS[env_id]
    except KeyError:
        known = ", ".join(sorted(SCRIPTED_EXPERTS))
        raise errors.UnknownEnvironmentError(
            f"no scripted expert for environment id {env_id!r}; known ids: {known}"
        ) from None
    return factory()


# --------------------------------------------------------------------------
# Flax MLP policy
# --------------------------------------------------------------------------

CONFIG_FILENAME = "policy_config.json"
PARAMS_DIRNAME = "params"
MLP_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class MLPPolicyConfig:
    """Architecture of a deterministic tanh-squashed MLP policy.

    Hidden layers use ReLU; the output ``tanh`` is rescaled from [-1, 1] to
    ``[action_low, action_high]``.

    Args:
      obs_dim: observation size.
      action_dim: action size.
      hidden_dims: sizes of the hidden layers.
      action_low: lower action bounds; None means -1 in every dimension.
      action_high: upper action bounds; None means +1 in every dimension.

    Raises:
      ValueError: a size is not a positive int, or the bounds do not match
        ``action_dim`` or are not ordered.
    """

    obs_dim: int
    action_dim: int
    hidden_dims: tuple[int, ...] = (256, 256)
    action_low: Optional[tuple[float, ...]] = None
    action_high: Optional[tuple[float, ...]] = None

    def __post_init__(self):
        for name in ("obs_dim", "action_dim"):
            _check_positive_int(name, getattr(self, name))
        hidden = tuple(self.hidden_dims)
        for size in hidden:
            _check_positive_int("hidden_dims entry", size)
        # Frozen: normalise through object.__setattr__ so equality and JSON
        # round trips see plain tuples of Python numbers.
        object.__setattr__(self, "hidden_dims", tuple(int(h) for h in hidden))
        low = (-1.0,) * self.action_dim if self.action_low is None else self.action_low
        high = (1.0,) * self.action_dim if self.action_high is None else self.action_high
        low_arr, high_arr = _as_bounds(low, high)
        if low_arr.shape != (self.action_dim,):
            raise ValueError(
                f"action bounds have shape {low_arr.shape}, expected ({self.action_dim},)"
            )
        object.__setattr__(self, "action_low", tuple(float(v) for v in low_arr))
        object.__setattr__(self, "action_high", tuple(float(v) for v in high_arr))

    @classmethod
    def for_spaces(cls, observation_space: Any, action_space: Any,
                   hidden_dims: Sequence[int] = (256, 256)) -> "MLPPolicyConfig":
        """A config for Gymnasium Box spaces.

        Args:
          observation_space: a 1-D Box.
          action_space: a 1-D Box whose bounds become the action bounds.
          hidden_dims: hidden layer sizes.

        Returns:
          The matching `MLPPolicyConfig`.
        """
        return cls(
            obs_dim=int(np.prod(observation_space.shape)),
            action_dim=int(np.prod(action_space.shape)),
            hidden_dims=tuple(hidden_dims),
            action_low=tuple(np.asarray(action_space.low, dtype=np.float64).ravel()),
            action_high=tuple(np.asarray(action_space.high, dtype=np.float64).ravel()),
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict, with a format version."""
        fields = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in dataclasses.asdict(self).items()}
        return {"format_version": MLP_FORMAT_VERSION, **fields}

    @classmethod
    def from_json_dict(cls, data: Any) -> "MLPPolicyConfig":
        """Inverse of `to_json_dict`.

        Raises:
          ValueError: the dict is not an object, has a wrong format version,
            unknown or missing fields, or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("format_version", None)
        if version != MLP_FORMAT_VERSION:
            raise ValueError(f"format_version {version!r} is not {MLP_FORMAT_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) - names:
            raise ValueError(f"unknown fields {sorted(set(data) - names)}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except TypeError as e:  # missing required field or wrong value type
            raise ValueError(str(e)) from e


def _check_positive_int(name: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is an int (not bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@functools.lru_cache(maxsize=None)
def _mlp_module_class() -> type:
    """The flax.linen MLP class, defined on first use so flax loads lazily."""
    import flax.linen as nn
    import jax.numpy as jnp

    class TanhMLP(nn.Module):
        """ReLU MLP with a tanh head rescaled to the action bounds."""

        hidden_dims: tuple[int, ...]
        action_dim: int
        action_low: tuple[float, ...]
        action_high: tuple[float, ...]

        @nn.compact
        def __call__(self, obs):
            x = obs
            for size in self.hidden_dims:
                x = nn.relu(nn.Dense(size)(x))
            x = jnp.tanh(nn.Dense(self.action_dim)(x))
            low = jnp.asarray(self.action_low, dtype=x.dtype)
            high = jnp.asarray(self.action_high, dtype=x.dtype)
            return low + (x + 1.0) * 0.5 * (high - low)

    return TanhMLP


def make_mlp_module(config: MLPPolicyConfig) -> Any:
    """The flax.linen module of a config (for trainers that need ``apply``).

    Args:
      config: the policy architecture.

    Returns:
      A ``flax.linen.Module``; ``module.apply(params, obs)`` maps observations
      of shape (..., obs_dim) to actions of shape (..., action_dim).
    """
    return _mlp_module_class()(
        hidden_dims=config.hidden_dims,
        action_dim=config.action_dim,
        action_low=config.action_low,
        action_high=config.action_high,
    )


def init_mlp_policy_params(config: MLPPolicyConfig, seed: int = 0) -> Any:
    """Random initial variables of the MLP.

    Args:
      config: the policy architecture.
      seed: seed of the ``jax.random`` key.

    Returns:
      The flax variables dict ``{"params": ...}`` accepted by `MLPPolicy`,
      `save_mlp_policy` and ``make_mlp_module(config).apply``.
    """
    import jax
    import jax.numpy as jnp

    dummy = jnp.zeros((1, config.obs_dim), dtype=jnp.float32)
    return make_mlp_module(config).init(jax.random.PRNGKey(seed), dummy)


class MLPPolicy:
    """A callable deterministic MLP policy.

    The forward pass is jitted once when the policy is built.

    Args:
      config: the policy architecture.
      params: flax variables as returned by `init_mlp_policy_params`.
    """

    def __init__(self, config: MLPPolicyConfig, params: Any):
        import jax

        self.config = config
        self.params = params
        self._forward = jax.jit(make_mlp_module(config).apply)
        self._low = np.asarray(config.action_low, dtype=np.float32)
        self._high = np.asarray(config.action_high, dtype=np.float32)

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The action for one observation (or a batch).

        Args:
          observation: shape (obs_dim,) or (batch, obs_dim).

        Returns:
          float32 action(s) of shape (action_dim,) or (batch, action_dim).

        Raises:
          ValueError: the last axis is not ``obs_dim``.
        """
        obs = np.asarray(observation, dtype=np.float32)
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.config.obs_dim:
            raise ValueError(
                f"MLPPolicy expects observations of shape ({self.config.obs_dim},) or "
                f"(batch, {self.config.obs_dim}), got {obs.shape}"
            )
        action = np.asarray(self._forward(self.params, obs), dtype=np.float32)
        # tanh can round to exactly +-1 and the affine map can overshoot by an ulp.
        return np.clip(action, self._low, self._high)


def save_mlp_policy(directory: PathLike, config: MLPPolicyConfig, params: Any,
                    overwrite: bool = False) -> Path:
    """Write an MLP policy: orbax params plus ``policy_config.json``.

    Layout: ``<directory>/params/`` (orbax StandardCheckpointer) and
    ``<directory>/policy_config.json``. The JSON is written last and atomically,
    so a directory that has it holds complete params.

    Args:
      directory: local directory to create or reuse.
      config: the policy architecture.
      params: flax variables matching ``config``.
      overwrite: replace an existing policy in ``directory``.

    Returns:
      The absolute directory path.

    Raises:
      FileExistsError: ``directory`` already holds a policy and not ``overwrite``.
      ValueError: ``params`` do not match ``config``.
    """
    import orbax.checkpoint as ocp

    root = Path(directory).expanduser().resolve()
    params_dir = root / PARAMS_DIRNAME
    config_path = root / CONFIG_FILENAME
    if not overwrite and (params_dir.exists() or config_path.exists()):
        raise FileExistsError(f"{root} already holds a policy; pass overwrite=True to replace it")
    _check_params_match(params, _abstract_params(config), root)
    root.mkdir(parents=True, exist_ok=True)
    if config_path.exists():
        config_path.unlink()  # an old config must not vouch for half-written params
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(params_dir, params, force=overwrite)
    _write_json_atomic(config_path, config.to_json_dict())
    return root


def load_mlp_policy(directory: PathLike) -> MLPPolicy:
    """Read a policy written by `save_mlp_policy`.

    Args:
      directory: the policy directory.

    Returns:
      An `MLPPolicy` with the restored params.

    Raises:
      FileNotFoundError: the directory, its ``policy_config.json`` or its
        ``params`` checkpoint is missing; the message names the path.
      ValueError: the config is not valid JSON or not a valid config, or the
        params do not match it; the message names the path.
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"policy directory {root} does not exist")
    config = _read_config(root / CONFIG_FILENAME)
    params = _restore_params(root / PARAMS_DIRNAME, config)
    return MLPPolicy(config, params)


def _read_config(path: Path) -> MLPPolicyConfig:
    """Parse ``policy_config.json``; errors name ``path``."""
    if not path.is_file():
        raise FileNotFoundError(f"policy config {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"policy config {path} is not valid JSON: {e}") from e
    try:
        return MLPPolicyConfig.from_json_dict(data)
    except ValueError as e:
        raise ValueError(f"policy config {path} is invalid: {e}") from e


def _restore_params(params_dir: Path, config: MLPPolicyConfig) -> Any:
    """Restore orbax params after checking them against ``config``."""
    import jax
    import orbax.checkpoint as ocp

    if not params_dir.is_dir():
        raise FileNotFoundError(f"policy params checkpoint {params_dir} does not exist")
    abstract = _abstract_params(config)
    # Compare against the stored metadata first: a failed orbax restore leaves
    # cancelled-task tracebacks in the log that bury the real cause.
    _check_params_match(_stored_metadata(params_dir), abstract, params_dir)
    # Restore onto this process's default device: explicit sharding lets a
    # checkpoint written on a GPU load on a CPU-only machine and vice versa.
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(params_dir, target)


def _stored_metadata(params_dir: Path) -> Any:
    """The tree of stored array metadata (shape, dtype) of an orbax checkpoint."""
    import orbax.checkpoint as ocp

    try:
        with ocp.StandardCheckpointer() as ckptr:
            metadata = ckptr.metadata(params_dir)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"policy params checkpoint {params_dir}: {e}") from e
    except Exception as e:  # orbax raises assorted types for damaged checkpoints
        raise ValueError(f"policy params checkpoint {params_dir} is unreadable: {e}") from e
    # orbax 0.11 wraps the tree in TreeMetadata; older versions return it bare.
    return getattr(metadata, "tree", metadata)


def _abstract_params(config: MLPPolicyConfig) -> Any:
    """Shapes and dtypes of the params ``config`` implies, without allocating them."""
    import jax

    return jax.eval_shape(lambda: init_mlp_policy_params(config, 0))


def _check_params_match(params: Any, abstract: Any, where: Path) -> None:
    """Raise ValueError naming ``where`` if tree paths, shapes or dtypes differ."""
    got, want = _shape_table(params), _shape_table(abstract)
    if got == want:
        return
    diffs = [f"{k}: expected {want.get(k, 'nothing')}, got {got.get(k, 'nothing')}"
             for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    raise ValueError(f"policy params for {where} do not match the config: {'; '.join(diffs)}")


def _shape_table(tree: Any) -> dict[str, str]:
    """Leaf path -> "shape dtype" for every array-like leaf of ``tree``."""
    import jax

    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): f"{tuple(leaf.shape)} {np.dtype(leaf.dtype)}"
            for path, leaf in leaves}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON via a temp file + rename so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
