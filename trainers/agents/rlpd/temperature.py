"""The temperature step of SAC: move the policy entropy towards its target."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax


def temperature_loss(log_temp: jax.Array, entropy: jax.Array, target_entropy: float) -> jax.Array:
    """``alpha * (entropy - target_entropy)`` with ``alpha = exp(log_temp)``.

    Its gradient in ``log_temp`` has the sign of ``entropy - target``: gradient
    descent lowers alpha while the policy is more random than the target and
    raises it while it is less.

    Args:
      log_temp: scalar log alpha.
      entropy: the policy's current entropy estimate (a constant here).
      target_entropy: the entropy to reach.

    Returns:
      The scalar loss.
    """
    return jnp.exp(log_temp) * (jax.lax.stop_gradient(entropy) - target_entropy)


def update_temperature(agent: Any, entropy: jax.Array) -> tuple[Any, dict]:
    """One Adam step on `temperature_loss`.

    Args:
      agent: the learner.
      entropy: the actor step's entropy estimate.

    Returns:
      ``(new_agent, info)`` with scalar ``temperature`` (alpha after the step)
      and ``temperature_loss``.
    """
    loss, grad = jax.value_and_grad(temperature_loss)(
        agent.log_temp, entropy, agent.target_entropy)
    tx = agent.temp_tx()
    updates, opt_state = tx.update(grad, agent.temp_opt_state, agent.log_temp)
    log_temp = optax.apply_updates(agent.log_temp, updates)
    new_agent = agent.replace(log_temp=log_temp, temp_opt_state=opt_state)
    return new_agent, {"temperature": jnp.exp(log_temp), "temperature_loss": loss}
