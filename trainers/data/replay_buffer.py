"""A fixed-capacity replay buffer (ring) for online data, in NumPy.

Transitions arrive as they are recorded (`insert`), the oldest are overwritten
once the buffer is full, and `sample` draws uniform batches. Image leaves of
dict observations stay uint8 here and in batches; converting to float is the
network's job, so memory holds 1 byte per pixel. `next_observations` are
stored beside `observations`, which doubles the memory of image observations
(a frame-sharing layout would halve it; not needed for state observations).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import numpy as np

from rlif_data import schema as sc
from trainers.data.errors import EmptyTransitionsError, RewardModeError, SpecMismatchError
from trainers.data.transitions import (
    ACTIONS,
    DISCOUNTS,
    INTERVENTION,
    NEXT_OBSERVATIONS,
    OBSERVATIONS,
    REWARDS,
    Spec,
    Transitions,
    check_finite,
    check_reward_mode,
    describe_spec,
    map_observation,
)

LeafShape = tuple[tuple[int, ...], Union[str, np.dtype]]
ObservationShape = Union[LeafShape, Mapping[str, LeafShape]]


def observation_shape_from_schema(schema: sc.EpisodeSchema) -> ObservationShape:
    """The ``(shape, dtype)`` (or dict of them) of a dataset schema's observations."""
    obs = schema.observation
    if isinstance(obs, Mapping):
        return {k: (tuple(v.shape), v.dtype) for k, v in obs.items()}
    return tuple(obs.shape), obs.dtype


def _is_leaf_shape(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple)


class ReplayBuffer:
    """A ring buffer of transitions with uniform sampling.

    Args:
      capacity: the most transitions it holds; older ones are overwritten.
      observation: ``(shape, dtype)`` of one observation, or a dict of those
        (e.g. ``{"state": ((17,), "float32"), "front": ((128, 128, 3), "uint8")}``).
      action_dim: size of the action vector.
      reward_mode: the reward mode of the data it will hold ("env", "rlif",
        "zero"); inserts in another mode are refused.

    Raises:
      ValueError: capacity < 1 or a malformed observation shape.
    """

    def __init__(self, capacity: int, observation: ObservationShape, action_dim: int,
                 reward_mode: str = "rlif"):
        if capacity < 1:
            raise ValueError(f"replay buffer capacity must be >= 1, got {capacity}")
        is_dict = isinstance(observation, Mapping) and bool(observation) and all(
            map(_is_leaf_shape, observation.values()))
        if not (_is_leaf_shape(observation) or is_dict):
            raise ValueError(
                f"observation must be (shape, dtype) or a dict of them, got {observation!r}")
        self.capacity = int(capacity)
        self.reward_mode = check_reward_mode(reward_mode)

        def alloc(leaf: LeafShape) -> np.ndarray:
            shape, dtype = leaf
            return np.zeros((self.capacity,) + tuple(shape), np.dtype(dtype))

        def alloc_obs() -> Any:
            if isinstance(observation, Mapping):
                return {k: alloc(v) for k, v in sorted(observation.items())}
            return alloc(observation)

        self._data: dict[str, Any] = {
            OBSERVATIONS: alloc_obs(),
            ACTIONS: np.zeros((self.capacity, int(action_dim)), np.float32),
            REWARDS: np.zeros(self.capacity, np.float32),
            DISCOUNTS: np.zeros(self.capacity, np.float32),
            NEXT_OBSERVATIONS: alloc_obs(),
            INTERVENTION: np.zeros(self.capacity, bool),
        }
        self._size = 0
        self._next = 0  # the slot the next transition goes to

    @classmethod
    def like(cls, transitions: Transitions, capacity: int,
             reward_mode: Optional[str] = None) -> "ReplayBuffer":
        """An empty buffer for transitions shaped like `transitions` (same reward mode by default).

        Args:
          transitions: data of the shapes and reward mode to hold.
          capacity: see the class.
          reward_mode: overrides the reward mode of `transitions`.
        """
        obs = map_observation(transitions.observations, lambda a: (tuple(a.shape[1:]), a.dtype))
        return cls(capacity, obs, transitions.action_dim, reward_mode or transitions.reward_mode)

    @classmethod
    def for_schema(cls, schema: sc.EpisodeSchema, capacity: int,
                   reward_mode: str = "rlif") -> "ReplayBuffer":
        """An empty buffer for transitions of datasets with `schema`."""
        return cls(capacity, observation_shape_from_schema(schema), schema.action_dim, reward_mode)

    def __len__(self) -> int:
        return self._size

    @property
    def observation_spec(self) -> Spec:
        """Per-row shape and dtype of the observations (as `Transitions.observation_spec`)."""
        from trainers.data.transitions import observation_spec

        return observation_spec(self._data[OBSERVATIONS])

    @property
    def action_dim(self) -> int:
        """Size of the action vector."""
        return int(self._data[ACTIONS].shape[1])

    def insert(self, transitions: Transitions) -> None:
        """Append transitions (checked first; on error nothing is inserted).

        If more arrive than the capacity, only the last `capacity` are kept.

        Raises:
          SpecMismatchError: other observation spec or action size.
          RewardModeError: other reward mode than the buffer's.
          NonFiniteTransitionError: NaN/inf, naming dataset, episode and step.
        """
        if (transitions.observation_spec, transitions.action_dim) != (self.observation_spec,
                                                                       self.action_dim):
            raise SpecMismatchError(
                f"cannot insert transitions with observations "
                f"{describe_spec(transitions.observation_spec)}, actions "
                f"({transitions.action_dim},) into a replay buffer of observations "
                f"{describe_spec(self.observation_spec)}, actions ({self.action_dim},)")
        if transitions.reward_mode != self.reward_mode:
            raise RewardModeError(
                f"cannot insert transitions with reward mode {transitions.reward_mode!r} into a "
                f"replay buffer holding {self.reward_mode!r} rewards")
        check_finite(transitions)
        n = len(transitions)
        if n == 0:
            return
        rows = np.arange(max(n - self.capacity, 0), n)
        slots = (self._next + np.arange(len(rows))) % self.capacity
        batch = transitions.take(rows) if len(rows) < n else {
            OBSERVATIONS: transitions.observations, ACTIONS: transitions.actions,
            REWARDS: transitions.rewards, DISCOUNTS: transitions.discounts,
            NEXT_OBSERVATIONS: transitions.next_observations,
            INTERVENTION: transitions.intervention}
        start = int(slots[0])
        end = start + len(rows)
        for key, dest in self._data.items():
            src = batch[key]
            pairs = ([(dest[k], src[k]) for k in dest] if isinstance(dest, dict) else [(dest, src)])
            for d, s in pairs:
                if end <= self.capacity:  # one contiguous copy: the common case
                    d[start:end] = s
                else:
                    d[slots] = s
        self._next = (start + len(rows)) % self.capacity
        self._size = min(self._size + len(rows), self.capacity)

    def take(self, indices: np.ndarray) -> dict[str, Any]:
        """Rows `indices` (0 <= i < len(self)) as a batch dict (copies)."""
        n = self._size
        return {key: map_observation(value, lambda a: a[:n][indices])
                for key, value in self._data.items()}

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, Any]:
        """`n` transitions drawn uniformly with replacement.

        Args:
          rng: a NumPy Generator (the caller owns the seed).
          n: batch size.

        Returns:
          dict with `observations`, `actions`, `rewards`, `discounts`,
          `next_observations`, `intervention`, each [n, ...].

        Raises:
          EmptyTransitionsError: the buffer is empty.
        """
        if self._size == 0:
            raise EmptyTransitionsError("cannot sample from an empty replay buffer; insert "
                                        "transitions first")
        return self.take(rng.integers(0, self._size, size=n))
