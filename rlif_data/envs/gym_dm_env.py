"""A Gymnasium environment seen as a `dm_env.Environment`.

envlogger wraps `dm_env` environments. Gymnasium separates `terminated` from
`truncated`; dm_env expresses the same with the discount of the LAST step:
0.0 after a termination, 1.0 after a truncation (time limit), so downstream
code bootstraps through truncations and not through terminations.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Optional

import dm_env
import numpy as np
from dm_env import specs

from rlif_data import errors
from rlif_data import schema as sc

ObservationFn = Callable[[np.ndarray, Any], Any]
"""Maps (gym observation, gym env) to the recorded observation (e.g. adds camera frames)."""


def _float32_state(obs: np.ndarray, env: Any) -> np.ndarray:
    del env
    return np.asarray(obs, dtype=np.float32)


class GymnasiumDmEnv(dm_env.Environment):
    """dm_env view of a Gymnasium env with a continuous Box action space.

    Args:
      env: the Gymnasium environment (already wrapped with its TimeLimit).
      seed: seeds the first `reset`; later resets continue the env's RNG.
      observation_fn: turns the gym observation into the recorded one; the
        default casts vector observations to float32.
      observation_spec: the dm_env spec of what `observation_fn` returns;
        derived from the gym space for the default function.
    """

    def __init__(
        self,
        env: Any,
        seed: Optional[int] = None,
        observation_fn: ObservationFn = _float32_state,
        observation_spec: Any = None,
    ):
        self._env = env
        self._seed = seed
        self._observation_fn = observation_fn
        box = env.action_space
        self._action_spec = specs.BoundedArray(
            shape=box.shape,
            dtype=np.float32,
            minimum=box.low.astype(np.float32),
            maximum=box.high.astype(np.float32),
            name=sc.ACTION,
        )
        if observation_spec is None:
            observation_spec = specs.Array(
                shape=env.observation_space.shape, dtype=np.float32, name=sc.OBSERVATION
            )
        self._observation_spec = observation_spec

    @property
    def gym_env(self) -> Any:
        """The wrapped Gymnasium environment."""
        return self._env

    def reset(self) -> dm_env.TimeStep:
        """Start an episode; the first reset uses the constructor's seed."""
        obs, _ = self._env.reset(seed=self._seed)
        self._seed = None
        return dm_env.restart(self._observation_fn(obs, self._env))

    def step(self, action) -> dm_env.TimeStep:
        """Apply `action`; a time-limit truncation ends with discount 1.0."""
        obs, reward, terminated, truncated, _ = self._env.step(np.asarray(action))
        obs = self._observation_fn(obs, self._env)
        reward = np.float32(reward)
        if terminated:
            return dm_env.termination(reward, obs)
        if truncated:
            return dm_env.truncation(reward, obs, discount=np.float32(1.0))
        return dm_env.transition(reward, obs, discount=np.float32(1.0))

    def observation_spec(self):
        """dm_env spec of the recorded observation."""
        return self._observation_spec

    def action_spec(self):
        """Bounded float32 action spec from the Gymnasium Box."""
        return self._action_spec

    def reward_spec(self):
        """Scalar float32 reward."""
        return specs.Array(shape=(), dtype=np.float32, name=sc.REWARD)

    def discount_spec(self):
        """Scalar float32 discount in [0, 1]."""
        return specs.BoundedArray(
            shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name=sc.DISCOUNT
        )

    def close(self):
        """Close the Gymnasium environment."""
        self._env.close()


def make_gym_env(env_id: str, max_episode_steps: Optional[int] = None, **kwargs) -> Any:
    """`gymnasium.make` with a clear error for unknown ids.

    Raises:
      UnknownEnvironmentError: the id is not registered; the message lists close matches.
    """
    import gymnasium as gym

    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise errors.UnknownEnvironmentError(f"unknown environment id {env_id!r}{hint}")
    return gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)


def make_dm_env(env_id: str, *, seed: Optional[int] = None,
                max_episode_steps: Optional[int] = None) -> GymnasiumDmEnv:
    """A registered Gymnasium env (e.g. "Hopper-v5") as a `GymnasiumDmEnv`."""
    return GymnasiumDmEnv(make_gym_env(env_id, max_episode_steps), seed=seed)
