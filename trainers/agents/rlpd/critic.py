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


def critic_step(agent: Any, batch: Mapping[str, jax.Array], next_actions: jax.Array,
                next_log_probs: jax.Array, subset_key: jax.Array) -> tuple[Any, dict]:
    """One gradient step of every critic, then the soft target update; no sampling.

    Args:
      agent: the learner (its RNG is not used).
      batch: one minibatch (the `trainers.agents.batch.RL_KEYS` columns, (B, ...)).
      next_actions: (B, action_dim) actions a' ~ pi(.|s') for the target.
      next_log_probs: (B,) their log-probabilities.
      subset_key: picks the target critics whose minimum is taken.

    Returns:
      ``(new_agent, info)`` with scalar ``critic_loss`` and ``q`` (mean Q).
    """
    cfg = agent.config
    next_qs = subset_target_qs(agent, subset_key, batch[bk.NEXT_OBSERVATIONS], next_actions)
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
    )
    return new_agent, {"critic_loss": loss, "q": q}


def split_step_keys(rng: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The keys of one critic step: ``(next rng, next-action key, subset key)``."""
    rng, action_key, subset_key = jax.random.split(rng, 3)
    return rng, action_key, subset_key


def update_critic(agent: Any, batch: Mapping[str, jax.Array]) -> tuple[Any, dict]:
    """One critic step on one minibatch: sample a' ~ pi(.|s'), then `critic_step`.

    Args:
      agent: the learner.
      batch: one minibatch (the `trainers.agents.batch.RL_KEYS` columns, (B, ...)).

    Returns:
      ``(new_agent, info)`` with scalar ``critic_loss`` and ``q``. The
      learner's RNG advances by one `split_step_keys`.
    """
    rng, action_key, subset_key = split_step_keys(agent.rng)
    mean, log_std = agent.actor_def().apply(
        {"params": agent.actor_params}, batch[bk.NEXT_OBSERVATIONS])
    next_actions, next_log_probs = tanh_normal.sample(action_key, mean, log_std)
    agent, info = critic_step(agent, batch, next_actions, next_log_probs, subset_key)
    return agent.replace(rng=rng), info


def update_critics(agent: Any, minibatches: Mapping[str, jax.Array]) -> tuple[Any, dict]:
    """U critic steps as one ``lax.scan``; the same numbers as U `update_critic` calls.

    The actor and the temperature do not change during the critic steps, so
    the next actions of all U minibatches are sampled up front, in one actor
    pass over U * B rows (one large matrix product instead of U small ones),
    with the keys the U sequential steps would have drawn. The scan body is
    then `critic_step` alone.

    Args:
      agent: the learner.
      minibatches: the `RL_KEYS` columns with leading dims [U, B].

    Returns:
      ``(new_agent, infos)``: infos hold each step's ``critic_loss`` and ``q``
      stacked on a leading U axis. The RNG advances by U `split_step_keys`.
    """
    def next_keys(rng, _):
        rng, action_key, subset_key = split_step_keys(rng)
        return rng, (action_key, subset_key)

    num = jnp.shape(minibatches[bk.REWARDS])[0]
    rng, (action_keys, subset_keys) = jax.lax.scan(next_keys, agent.rng, None, length=num)
    mean, log_std = agent.actor_def().apply(
        {"params": agent.actor_params}, minibatches[bk.NEXT_OBSERVATIONS])
    next_actions, next_log_probs = jax.vmap(tanh_normal.sample)(action_keys, mean, log_std)

    def body(carry, xs):
        batch, actions, log_probs, subset_key = xs
        return critic_step(carry, batch, actions, log_probs, subset_key)

    agent, infos = jax.lax.scan(
        body, agent, (minibatches, next_actions, next_log_probs, subset_keys))
    return agent.replace(rng=rng), infos
