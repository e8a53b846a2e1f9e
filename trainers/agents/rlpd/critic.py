"""The critic step of RLPD: soft Bellman target from a random subset of target critics.

Pure functions over an `RLPDLearner` (any object with its fields) and arrays;
`update_critic` returns a new learner and never mutates its input.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from trainers.agents import batch as bk
from trainers.networks import sample_subset, subsample_ensemble, tanh_normal


def bellman_target(rewards: jax.Array, discounts: jax.Array, next_qs: jax.Array,
                   next_log_probs: jax.Array, temperature: jax.Array, discount: float,
                   backup_entropy: bool) -> jax.Array:
    """The soft TD target ``r + gamma * d * (min_k Q_k(s', a') - alpha * log pi(a'|s'))``.

    Args:
      rewards: (B,) rewards.
      discounts: (B,) stored discounts (0 after a termination, else 1).
      next_qs: (k, B) target-critic values of (s', a') for the chosen subset.
      next_log_probs: (B,) log pi(a'|s') of the sampled next actions.
      temperature: scalar alpha.
      discount: gamma.
      backup_entropy: include the ``- alpha * log pi`` term.

    Returns:
      (B,) targets (not yet stop-gradiented; the caller treats them as constants).
    """
    next_v = jnp.min(next_qs, axis=0)
    if backup_entropy:
        next_v = next_v - temperature * next_log_probs
    return rewards + discount * discounts * next_v


def subset_target_qs(agent: Any, key: jax.Array, next_observations: jax.Array,
                     next_actions: jax.Array) -> jax.Array:
    """Target-critic values of (s', a') from ``num_min_qs`` members chosen by ``key``.

    Only the chosen members are evaluated (their params are gathered first),
    so the cost is that of ``num_min_qs`` critics, not ``num_qs``.

    Args:
      agent: the learner (reads ``target_critic_params`` and its config).
      key: the key that picks the subset (`sample_subset`).
      next_observations: (B, obs_dim).
      next_actions: (B, action_dim).

    Returns:
      (num_min_qs, B) values, rows in the order of the drawn indices.
    """
    cfg = agent.config
    indices = sample_subset(key, cfg.num_qs, cfg.num_min_qs)
    params = subsample_ensemble(agent.target_critic_params, indices)
    return agent.critic_def(cfg.num_min_qs).apply(
        {"params": params}, next_observations, next_actions)


def soft_update(online: Any, target: Any, tau: float) -> Any:
    """``tau * online + (1 - tau) * target``, leaf by leaf."""
    return jax.tree_util.tree_map(lambda o, t: tau * o + (1.0 - tau) * t, online, target)


def update_critic(agent: Any, batch: Mapping[str, jax.Array]) -> tuple[Any, dict]:
    """One gradient step of every critic on one minibatch, then the soft target update.

    Args:
      agent: the learner.
      batch: one minibatch (the `trainers.agents.batch.RL_KEYS` columns, (B, ...)).

    Returns:
      ``(new_agent, info)`` with scalar ``critic_loss`` and ``q`` (mean Q).
      The learner's RNG advances.
    """
    cfg = agent.config
    rng, action_key, subset_key = jax.random.split(agent.rng, 3)
    next_obs = batch[bk.NEXT_OBSERVATIONS]
    mean, log_std = agent.actor_def().apply({"params": agent.actor_params}, next_obs)
    next_actions, next_log_probs = tanh_normal.sample(action_key, mean, log_std)
    next_qs = subset_target_qs(agent, subset_key, next_obs, next_actions)
    target = jax.lax.stop_gradient(bellman_target(
        batch[bk.REWARDS], batch[bk.DISCOUNTS], next_qs, next_log_probs,
        agent.temperature(), cfg.discount, cfg.backup_entropy))

    critic = agent.critic_def(cfg.num_qs)

    def loss_fn(params):
        qs = critic.apply({"params": params}, batch[bk.OBSERVATIONS], batch[bk.ACTIONS])
        return jnp.mean((qs - target[None]) ** 2), jnp.mean(qs)

    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(agent.critic_params)
    tx = agent.critic_tx()
    updates, opt_state = tx.update(grads, agent.critic_opt_state, agent.critic_params)
    params = optax.apply_updates(agent.critic_params, updates)
    new_agent = agent.replace(
        critic_params=params,
        critic_opt_state=opt_state,
        target_critic_params=soft_update(params, agent.target_critic_params, cfg.tau),
        rng=rng,
    )
    return new_agent, {"critic_loss": loss, "q": q}
