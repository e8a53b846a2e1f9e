"""The RLPD actor: a ReLU MLP with a Gaussian mean head and a log-std head.

Parameter layout (what `trainers.agents.rlpd.export_actor_params` relies on):
``Dense_0 .. Dense_{n-1}`` hidden layers (ReLU), ``mean`` (Dense to
action_dim) and ``log_std`` (Dense to action_dim). The mean path
``tanh(mean(trunk(obs)))`` is exactly rlif_data's ``TanhMLP`` on [-1, 1]
actions, so renaming ``mean`` to ``Dense_n`` and dropping ``log_std`` yields a
deployable policy with no conversion of weights.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from trainers.networks.mlp import default_kernel_init

MEAN_HEAD = "mean"
LOG_STD_HEAD = "log_std"


class TanhGaussianActor(nn.Module):
    """Gaussian parameters of the tanh-squashed policy (see `tanh_normal`).

    Attributes:
      hidden_dims: hidden layer sizes.
      action_dim: action size.
      log_std_min: lower clip of log_std (keeps the density finite).
      log_std_max: upper clip of log_std (keeps exploration bounded).
    """

    hidden_dims: Sequence[int]
    action_dim: int
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, observations: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """``(mean, log_std)``, each (..., action_dim), for observations (..., obs_dim)."""
        x = observations
        # Written out (not an MLP submodule) so the Dense layers get the
        # top-level names Dense_0..Dense_{n-1}, as in TanhMLP.
        for size in self.hidden_dims:
            x = nn.relu(nn.Dense(size, kernel_init=default_kernel_init)(x))
        mean = nn.Dense(self.action_dim, kernel_init=default_kernel_init, name=MEAN_HEAD)(x)
        log_std = nn.Dense(self.action_dim, kernel_init=default_kernel_init, name=LOG_STD_HEAD)(x)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)
