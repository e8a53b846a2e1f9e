"""A plain ReLU MLP trunk, optionally with LayerNorm after each hidden Dense."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

# Glorot-uniform kernels, as RLPD initialises its MLPs (Flax's default is
# LeCun-normal); biases start at zero either way.
default_kernel_init = nn.initializers.xavier_uniform()


class MLP(nn.Module):
    """Hidden layers ``Dense -> [LayerNorm] -> ReLU``, every layer activated.

    The Dense layers are Flax's auto-named ``Dense_0 .. Dense_{n-1}``, which is
    what makes an actor trunk line up with rlif_data's ``TanhMLP`` policy.

    Attributes:
      hidden_dims: sizes of the hidden layers.
      layer_norm: insert LayerNorm between each Dense and its ReLU (the RLPD
        critic); off for the actor so its trunk stays a plain TanhMLP trunk.
    """

    hidden_dims: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """Features of shape (..., hidden_dims[-1]) for inputs (..., in_dim)."""
        for size in self.hidden_dims:
            x = nn.Dense(size, kernel_init=default_kernel_init)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return x
