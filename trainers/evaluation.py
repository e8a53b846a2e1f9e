"""Evaluate a policy in its environment without interventions.

The number a round reports: how well the learner does alone. Episodes are
seeded (episode i uses ``seed + i``) so two policies are compared on the same
initial states and, for the pushed pendulum, the same pushes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

ActFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Returns and lengths of evaluation episodes.

    Attributes:
      returns: undiscounted return of each episode.
      lengths: steps of each episode.
      terminated: whether each episode ended in a termination (a fall), not a
        time limit.
    """

    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    terminated: tuple[bool, ...]

    @property
    def mean_return(self) -> float:
        """Mean episode return."""
        return float(np.mean(self.returns))

    @property
    def survival(self) -> float:
        """Fraction of episodes that reached the time limit without terminating."""
        return float(1.0 - np.mean(self.terminated))

    def to_json_dict(self) -> dict:
        """Summary and per-episode values, JSON-ready."""
        return {
            "mean_return": self.mean_return,
            "std_return": float(np.std(self.returns)),
            "survival": self.survival,
            "episodes": len(self.returns),
            "returns": [float(r) for r in self.returns],
            "lengths": [int(n) for n in self.lengths],
        }


def evaluate(act: ActFn, env_id: str, episodes: int, *, seed: int = 0,
             max_episode_steps: Optional[int] = None) -> EvalResult:
    """Run `act` for `episodes` seeded episodes of `env_id`.

    Args:
      act: observation -> action in the environment's own action bounds.
      env_id: a Gymnasium id (rlif-data's own environments included).
      episodes: number of episodes (>= 1).
      seed: episode i resets with ``seed + i``.
      max_episode_steps: time limit; None keeps the environment's own.

    Returns:
      An `EvalResult`.

    Raises:
      ValueError: `episodes` < 1.
      UnknownEnvironmentError: `env_id` is not registered.
    """
    from rlif_data.envs.gym_dm_env import make_gym_env

    if episodes < 1:
        raise ValueError(f"evaluation needs at least one episode, got {episodes}")
    env = make_gym_env(env_id, max_episode_steps=max_episode_steps)
    returns, lengths, terminated = [], [], []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, steps, done, term = 0.0, 0, False, False
            while not done:
                action = np.asarray(act(np.asarray(obs, np.float32)), np.float32)
                obs, reward, term, trunc, _ = env.step(action)
                total += float(reward)
                steps += 1
                done = term or trunc
            returns.append(total)
            lengths.append(steps)
            terminated.append(bool(term))
    finally:
        env.close()
    return EvalResult(tuple(returns), tuple(lengths), tuple(terminated))
