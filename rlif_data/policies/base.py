"""The policy protocol, action-bound checks, and the two observation-free policies.

A policy is any callable ``policy(observation) -> float32 action`` whose
actions stay inside the bounds it was built for. `RandomPolicy` ignores the
observation; `NoisyPolicy` wraps another policy and adds clipped Gaussian
noise (a cheap "weak learner"). numpy only, so importing this is light.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
"""A policy maps one observation to one float32 action."""

PathLike = Union[str, os.PathLike]


def _as_bounds(action_low: Any, action_high: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated float32 copies of action bounds.

    Args:
      action_low: lower bound per action dimension (scalar or sequence).
      action_high: upper bound per action dimension.

    Returns:
      ``(low, high)`` as 1-D float32 arrays of equal shape.

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


def space_bounds(space: Any) -> tuple[np.ndarray, np.ndarray]:
    """The action bounds of a Gymnasium ``Box`` or a dm_env ``BoundedArray`` spec.

    Args:
      space: anything with ``low``/``high`` (Gymnasium) or ``minimum``/``maximum``
        (dm_env) arrays.

    Returns:
      ``(low, high)`` as validated float32 arrays (see `_as_bounds`).

    Raises:
      ValueError: ``space`` has neither pair of attributes, or the bounds are
        inconsistent.
    """
    if hasattr(space, "low") and hasattr(space, "high"):
        return _as_bounds(space.low, space.high)
    if hasattr(space, "minimum") and hasattr(space, "maximum"):
        # dm_env broadcasts scalar bounds; the policy needs one per dimension.
        shape = tuple(getattr(space, "shape", ()))
        return _as_bounds(np.broadcast_to(space.minimum, shape),
                          np.broadcast_to(space.maximum, shape))
    raise ValueError(
        f"cannot read action bounds from {type(space).__name__}; pass a Gymnasium Box "
        "(low/high) or a dm_env BoundedArray (minimum/maximum)"
    )


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
