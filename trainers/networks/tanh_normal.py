"""The tanh-squashed diagonal Gaussian policy distribution, in plain JAX.

``u ~ N(mean, exp(log_std)^2)`` per dimension and ``a = tanh(u)``, so actions
lie in (-1, 1). By the change of variables,
``log pi(a) = sum_i [log N(u_i) - log(1 - tanh(u_i)^2)]``. The correction is
computed from ``u`` as ``2 * (log 2 - u - softplus(-2u))``, which stays finite
where ``1 - tanh(u)^2`` underflows to 0 in float32 (|u| > ~9).

All functions are pure and batch over leading axes; the last axis is the
action dimension.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)

# atanh(+-1) is infinite; actions given from outside are pulled this far in.
_ATANH_EPS = 1e-6


def _gaussian_log_prob(u: jnp.ndarray, mean: jnp.ndarray, log_std: jnp.ndarray) -> jnp.ndarray:
    """Per-dimension log N(u; mean, exp(log_std)^2)."""
    z = (u - mean) * jnp.exp(-log_std)
    return -0.5 * z * z - log_std - _LOG_SQRT_2PI


def _log_tanh_jacobian(u: jnp.ndarray) -> jnp.ndarray:
    """Per-dimension log |d tanh(u) / du| = log(1 - tanh(u)^2), stable for large |u|."""
    return 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))


def log_prob_pre_tanh(u: jnp.ndarray, mean: jnp.ndarray, log_std: jnp.ndarray) -> jnp.ndarray:
    """log pi(tanh(u)) given the pre-squash sample ``u``.

    Args:
      u: pre-tanh values, shape (..., action_dim).
      mean: Gaussian means, same shape.
      log_std: Gaussian log standard deviations, same shape.

    Returns:
      Log densities of the actions ``tanh(u)``, shape (...,).
    """
    return jnp.sum(_gaussian_log_prob(u, mean, log_std) - _log_tanh_jacobian(u), axis=-1)


def log_prob(actions: jnp.ndarray, mean: jnp.ndarray, log_std: jnp.ndarray) -> jnp.ndarray:
    """log pi(a) of given squashed actions (inverts tanh).

    Prefer `sample`'s returned log-prob for the policy's own samples: inverting
    tanh loses precision near +-1.

    Args:
      actions: actions in [-1, 1], shape (..., action_dim); values within
        1e-6 of +-1 are pulled inside so that atanh stays finite.
      mean: Gaussian means, same shape.
      log_std: Gaussian log standard deviations, same shape.

    Returns:
      Log densities, shape (...,).
    """
    u = jnp.arctanh(jnp.clip(actions, -1.0 + _ATANH_EPS, 1.0 - _ATANH_EPS))
    return log_prob_pre_tanh(u, mean, log_std)


def sample(key: jax.Array, mean: jnp.ndarray,
           log_std: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Reparameterised samples and their log-probabilities.

    Args:
      key: a ``jax.random`` key.
      mean: Gaussian means, shape (..., action_dim).
      log_std: Gaussian log standard deviations, same shape.

    Returns:
      ``(actions, log_probs)``: actions in (-1, 1) of ``mean``'s shape
      (differentiable in ``mean`` and ``log_std``) and log densities (...,).
    """
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(u), log_prob_pre_tanh(u, mean, log_std)


def mode(mean: jnp.ndarray) -> jnp.ndarray:
    """The deterministic action ``tanh(mean)`` (what evaluation and export use).

    Args:
      mean: Gaussian means, shape (..., action_dim).

    Returns:
      Actions in [-1, 1] of the same shape.
    """
    return jnp.tanh(mean)
