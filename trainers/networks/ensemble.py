"""Training helpers over the critic ensemble: random member subsets.

The ensemble itself (`QNetwork`, `CriticEnsemble`) is defined in
`rlif_data.policies.critic`, because a saved critic is a deployable artifact
(Q^ref for value-based intervention) that recording loads without trainer
code; it is re-exported here for the learner.
"""

from __future__ import annotations

from typing import Any

import jax

from rlif_data.policies.critic import ENSEMBLE_SCOPE, CriticEnsemble, QNetwork

__all__ = ["ENSEMBLE_SCOPE", "CriticEnsemble", "QNetwork", "sample_subset", "subsample_ensemble"]


def sample_subset(key: jax.Array, num_qs: int, num_min_qs: int) -> jax.Array:
    """``num_min_qs`` distinct member indices drawn uniformly from ``num_qs``.

    Args:
      key: a ``jax.random`` key.
      num_qs: ensemble size.
      num_min_qs: subset size (<= num_qs).

    Returns:
      int32 indices of shape (num_min_qs,).
    """
    return jax.random.choice(key, num_qs, shape=(num_min_qs,), replace=False)


def subsample_ensemble(params: Any, indices: jax.Array) -> Any:
    """The params of the ensemble members at ``indices``.

    Args:
      params: `CriticEnsemble` params (every leaf has the ensemble axis first).
      indices: member indices, shape (k,).

    Returns:
      Params of a ``k``-member `CriticEnsemble` (same tree, leading axis k).
    """
    return jax.tree_util.tree_map(lambda leaf: leaf[indices], params)
