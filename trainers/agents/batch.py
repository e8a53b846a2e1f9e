"""Which batch columns each learner reads, and the checks every learner applies.

A batch is a mapping of arrays with a common leading dimension, as the RLPD
sampler and the replay buffer (`trainers.data`) return it; the key names are
defined once, in `trainers.data.transitions`. ``discounts`` is the stored
per-step discount: 0 after a true termination, 1 otherwise (truncation
included); the learner multiplies it by the config's discount factor.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp

from trainers.data.transitions import (  # noqa: F401 (re-exported for the learners)
    ACTIONS,
    DISCOUNTS,
    NEXT_OBSERVATIONS,
    OBSERVATIONS,
    REWARDS,
)

RL_KEYS = (OBSERVATIONS, ACTIONS, REWARDS, DISCOUNTS, NEXT_OBSERVATIONS)
"""What an RL (RLPD) update reads."""

BC_KEYS = (OBSERVATIONS, ACTIONS)
"""What a BC / HG-DAgger / DAgger update reads."""


def check_batch(batch: Mapping[str, Any], keys: Sequence[str], obs_dim: int,
                action_dim: int, who: str) -> int:
    """Check that ``batch`` has ``keys`` with consistent shapes; return its size.

    Runs on shapes only, so inside ``jax.jit`` it costs nothing after tracing.

    Args:
      batch: the batch mapping.
      keys: the keys the caller reads.
      obs_dim: expected observation size (last axis of observations).
      action_dim: expected action size.
      who: the learner's name, for the message.

    Returns:
      The common leading dimension N.

    Raises:
      ValueError: a key is missing, a shape is wrong, or leading dims differ;
        the message names the key and the shapes.
    """
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(f"{who}: batch lacks {missing}; it has {sorted(batch)}")
    want_last = {OBSERVATIONS: obs_dim, NEXT_OBSERVATIONS: obs_dim, ACTIONS: action_dim}
    sizes = {}
    for key in keys:
        shape = jnp.shape(batch[key])
        if key in want_last:
            if len(shape) != 2 or shape[1] != want_last[key]:
                raise ValueError(
                    f"{who}: batch[{key!r}] has shape {shape}, expected (N, {want_last[key]})")
        elif len(shape) != 1:
            raise ValueError(f"{who}: batch[{key!r}] has shape {shape}, expected (N,)")
        sizes[key] = shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{who}: batch columns have different lengths {sizes}")
    return next(iter(sizes.values()))


def split_minibatches(batch: Mapping[str, Any], keys: Sequence[str],
                      num: int) -> dict[str, jax.Array]:
    """Reshape each column from [num * B, ...] to [num, B, ...] (row order kept).

    Args:
      batch: the batch mapping; its leading dimension must be divisible by ``num``.
      keys: the columns to keep.
      num: number of minibatches.

    Returns:
      A dict of float32 arrays with leading dims [num, B].

    Raises:
      ValueError: the leading dimension is not a positive multiple of ``num``.
    """
    rows = jnp.shape(batch[keys[0]])[0]
    if num < 1 or rows % num or rows == 0:
        raise ValueError(
            f"a batch of {rows} rows cannot be split into {num} equal minibatches; "
            f"sample utd_ratio * batch_size rows")
    return {k: jnp.asarray(batch[k], jnp.float32).reshape((num, rows // num)
                                                          + jnp.shape(batch[k])[1:])
            for k in keys}
