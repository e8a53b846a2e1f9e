"""The actor step of RLPD: maximise the ensemble-mean Q plus entropy."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from trainers.agents import batch as bk
from trainers.networks import tanh_normal


def update_actor(agent: Any, batch: Mapping[str, jax.Array]) -> tuple[Any, dict]:
    """One gradient step on ``E_s[alpha * log pi(a|s) - mean_k Q_k(s, a)]``, a ~ pi.

    The critics and the temperature are constants here; the actions are
    reparameterised samples, so the gradient flows through them into Q.

    Args:
      agent: the learner.
      batch: one minibatch (reads observations only).

    Returns:
      ``(new_agent, info)`` with scalar ``actor_loss`` and ``entropy`` (the
      minibatch mean of -log pi(a|s), what the temperature step uses).
      The learner's RNG advances.
    """
    rng, key = jax.random.split(agent.rng)
    obs = batch[bk.OBSERVATIONS]
    actor = agent.actor_def()
    critic = agent.critic_def(agent.config.num_qs)
    temperature = agent.temperature()

    def loss_fn(params):
        mean, log_std = actor.apply({"params": params}, obs)
        actions, log_probs = tanh_normal.sample(key, mean, log_std)
        q = jnp.mean(critic.apply({"params": agent.critic_params}, obs, actions), axis=0)
        loss = jnp.mean(temperature * log_probs - q)
        return loss, -jnp.mean(log_probs)

    (loss, entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(agent.actor_params)
    tx = agent.actor_tx()
    updates, opt_state = tx.update(grads, agent.actor_opt_state, agent.actor_params)
    new_agent = agent.replace(
        actor_params=optax.apply_updates(agent.actor_params, updates),
        actor_opt_state=opt_state,
        rng=rng,
    )
    return new_agent, {"actor_loss": loss, "entropy": entropy}
