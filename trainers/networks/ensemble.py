"""The critic ensemble: ``num_qs`` independent Q MLPs evaluated as one module.

The members' params are stacked on a leading axis of size ``num_qs`` (Flax
``nn.vmap`` over params), so one forward pass evaluates every critic and a
subset is just an index into that axis (`subsample_ensemble`).

This module depends on flax and jax only (no trainer code), so it can move
into rlif_data if recording code needs to evaluate a Q^ref critic.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from trainers.networks.mlp import MLP, default_kernel_init

# Name of the vmapped member module inside `CriticEnsemble`'s params.
ENSEMBLE_SCOPE = "members"


class QNetwork(nn.Module):
    """One critic: Q(s, a) from an MLP over the concatenated ``[s, a]``.

    Attributes:
      hidden_dims: hidden layer sizes.
      layer_norm: LayerNorm after each hidden Dense (RLPD's critic).
    """

    hidden_dims: Sequence[int]
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Q values of shape (batch,) for (batch, obs_dim) and (batch, action_dim)."""
        x = jnp.concatenate([observations, actions], axis=-1)
        x = MLP(self.hidden_dims, layer_norm=self.layer_norm)(x)
        return nn.Dense(1, kernel_init=default_kernel_init)(x)[..., 0]


class CriticEnsemble(nn.Module):
    """``num_qs`` `QNetwork`s with independent params, evaluated together.

    Attributes:
      hidden_dims: hidden layer sizes of each critic.
      num_qs: ensemble size; the leading axis of every param and of the output.
      layer_norm: LayerNorm after each hidden Dense.
    """

    hidden_dims: Sequence[int]
    num_qs: int
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Q values of shape (num_qs, batch); every member sees the same inputs."""
        members = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_qs,
        )
        return members(self.hidden_dims, self.layer_norm, name=ENSEMBLE_SCOPE)(
            observations, actions)


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
