"""`RLPDLearner`: SAC with a LayerNorm critic ensemble and a high update-to-data ratio.

The learner is an immutable ``flax.struct.PyTreeNode``: every update returns a
new learner. Its array fields (params, Adam states, target params, log
temperature, RNG key, step) are the whole training state, so it is saved and
restored as it is with orbax' ``StandardCheckpointer`` (restore target:
``jax.eval_shape(lambda: RLPDLearner.create(seed, obs_dim, action_dim, config))``).
The config and the sizes are static fields: they are part of the compiled
program, not of the checkpoint.

`update` runs the U critic steps as one ``jax.lax.scan`` inside one jitted
call, so the program (and its compile time) does not grow with U: ~3 s at
U = 20 on 2 CPU cores. ikostrikov/rlpd unrolls a Python loop inside ``jit``
instead: ~63 s per compile at U = 20 there, and it compiles three times
(benchmarks/train_throughput.py).

Actions live in [-1, 1]; rescaling to an environment's bounds is the policy
format's job (`export_policy`).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from trainers.agents import batch as bk
from trainers.agents.rlpd.actor import update_actor
from trainers.agents.rlpd.critic import update_critic, update_critics
from trainers.agents.rlpd.temperature import update_temperature
from trainers.configs import RLPDConfig
from trainers.networks import CriticEnsemble, TanhGaussianActor, tanh_normal

_WHO = "RLPDLearner"


class RLPDLearner(struct.PyTreeNode):
    """The RLPD agent's state plus its pure update rules.

    Attributes:
      actor_params: params of the `TanhGaussianActor`.
      critic_params: params of the `CriticEnsemble` (leading axis num_qs).
      target_critic_params: slow-moving copy of ``critic_params``.
      log_temp: scalar log of the entropy temperature alpha.
      actor_opt_state: Adam state of the actor.
      critic_opt_state: Adam state of the critics.
      temp_opt_state: Adam state of ``log_temp``.
      rng: the ``jax.random`` key every stochastic step splits.
      step: number of `update` calls so far (int32).
      config: the hyper-parameters (static).
      obs_dim: observation size (static).
      action_dim: action size (static).
      target_entropy: the resolved target entropy (static).
    """

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    log_temp: jax.Array
    actor_opt_state: Any
    critic_opt_state: Any
    temp_opt_state: Any
    rng: jax.Array
    step: jax.Array
    config: RLPDConfig = struct.field(pytree_node=False)
    obs_dim: int = struct.field(pytree_node=False)
    action_dim: int = struct.field(pytree_node=False)
    target_entropy: float = struct.field(pytree_node=False)

    @classmethod
    def create(cls, seed: int, obs_dim: int, action_dim: int,
               config: Optional[RLPDConfig] = None) -> "RLPDLearner":
        """A freshly initialised learner.

        Args:
          seed: seed of the ``jax.random`` key (initial params and all sampling).
          obs_dim: observation size.
          action_dim: action size.
          config: hyper-parameters; None means the RLPD defaults.

        Returns:
          The learner; the target critics start equal to the critics.

        Raises:
          ValueError: a size is not a positive int.
        """
        config = RLPDConfig() if config is None else config
        for name, value in (("obs_dim", obs_dim), ("action_dim", action_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{_WHO}.create: {name} must be a positive int, got {value!r}")
        obs_dim, action_dim = int(obs_dim), int(action_dim)
        rng, actor_key, critic_key = jax.random.split(jax.random.PRNGKey(seed), 3)
        shell = cls(
            actor_params=None, critic_params=None, target_critic_params=None,
            log_temp=None, actor_opt_state=None, critic_opt_state=None,
            temp_opt_state=None, rng=rng, step=jnp.zeros((), jnp.int32),
            config=config, obs_dim=obs_dim, action_dim=action_dim,
            target_entropy=config.resolved_target_entropy(action_dim))
        obs = jnp.zeros((1, obs_dim), jnp.float32)
        act = jnp.zeros((1, action_dim), jnp.float32)
        actor_params = shell.actor_def().init(actor_key, obs)["params"]
        critic_params = shell.critic_def(config.num_qs).init(critic_key, obs, act)["params"]
        log_temp = jnp.asarray(math.log(config.init_temperature), jnp.float32)
        return shell.replace(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_temp=log_temp,
            actor_opt_state=shell.actor_tx().init(actor_params),
            critic_opt_state=shell.critic_tx().init(critic_params),
            temp_opt_state=shell.temp_tx().init(log_temp),
        )

    # -- networks and optimizers (rebuilt from the static config; cheap) ---------

    def actor_def(self) -> TanhGaussianActor:
        """The actor module."""
        return TanhGaussianActor(self.config.hidden_dims, self.action_dim)

    def critic_def(self, num_qs: int) -> CriticEnsemble:
        """A critic ensemble module with ``num_qs`` members (all, or a target subset)."""
        return CriticEnsemble(self.config.hidden_dims, num_qs, self.config.critic_layer_norm)

    def actor_tx(self) -> optax.GradientTransformation:
        """The actor's optimizer."""
        return optax.adam(self.config.actor_lr)

    def critic_tx(self) -> optax.GradientTransformation:
        """The critics' optimizer."""
        return optax.adam(self.config.critic_lr)

    def temp_tx(self) -> optax.GradientTransformation:
        """The temperature's optimizer."""
        return optax.adam(self.config.temp_lr)

    def temperature(self) -> jax.Array:
        """The entropy temperature alpha = exp(log_temp)."""
        return jnp.exp(self.log_temp)

    # -- updates -------------------------------------------------------------------

    @functools.partial(jax.jit, static_argnames="utd_ratio")
    def update(self, batch: Mapping[str, Any],
               utd_ratio: Optional[int] = None) -> tuple["RLPDLearner", dict]:
        """U critic steps (a ``lax.scan``), then one actor and one temperature step.

        One jitted call, compiled once per (U, batch shape). Row ``i * B + j``
        of the batch is row ``j`` of minibatch ``i``; the actor and temperature
        steps use the last minibatch, as RLPD does.

        Args:
          batch: the `trainers.agents.batch.RL_KEYS` columns with leading
            dimension U * B.
          utd_ratio: U (static); None means ``config.utd_ratio``.

        Returns:
          ``(new_learner, info)``: scalars ``critic_loss`` and ``q`` of the
          last critic step, ``actor_loss``, ``entropy``, ``temperature``,
          ``temperature_loss``.

        Raises:
          ValueError: a column is missing or misshapen, or the rows do not
            split into U minibatches (raised while tracing).
        """
        num = self.config.utd_ratio if utd_ratio is None else utd_ratio
        bk.check_batch(batch, bk.RL_KEYS, self.obs_dim, self.action_dim, _WHO)
        minibatches = bk.split_minibatches(batch, bk.RL_KEYS, num)
        agent, critic_infos = update_critics(self, minibatches)
        last = {k: v[-1] for k, v in minibatches.items()}
        agent, info = _actor_and_temperature(agent, last)
        info.update({k: v[-1] for k, v in critic_infos.items()})
        return agent.replace(step=agent.step + 1), info

    @jax.jit
    def update_critic_step(self, batch: Mapping[str, Any]) -> tuple["RLPDLearner", dict]:
        """One critic step on one minibatch (the body of `update`'s scan), jitted.

        For callers that step the critics from Python (tests, the benchmark's
        baseline); `update` is the fast path.

        Args:
          batch: one minibatch, leading dimension B.

        Returns:
          ``(new_learner, info)`` with ``critic_loss`` and ``q``.

        Raises:
          ValueError: a column is missing or misshapen.
        """
        bk.check_batch(batch, bk.RL_KEYS, self.obs_dim, self.action_dim, _WHO)
        return update_critic(self, {k: jnp.asarray(batch[k], jnp.float32) for k in bk.RL_KEYS})

    @jax.jit
    def update_actor_and_temperature(self, batch: Mapping[str, Any]) -> tuple["RLPDLearner", dict]:
        """The actor step then the temperature step on one minibatch; counts one update.

        With `update_critic_step` this reproduces `update` from Python.

        Args:
          batch: one minibatch, leading dimension B.

        Returns:
          ``(new_learner, info)`` with ``actor_loss``, ``entropy``,
          ``temperature`` and ``temperature_loss``.

        Raises:
          ValueError: a column is missing or misshapen.
        """
        bk.check_batch(batch, bk.RL_KEYS, self.obs_dim, self.action_dim, _WHO)
        agent, info = _actor_and_temperature(
            self, {k: jnp.asarray(batch[k], jnp.float32) for k in bk.RL_KEYS})
        return agent.replace(step=agent.step + 1), info

    # -- acting ----------------------------------------------------------------------

    def sample_actions(self, observations: Any) -> tuple[np.ndarray, "RLPDLearner"]:
        """Stochastic actions for exploration.

        Args:
          observations: (obs_dim,) or (N, obs_dim).

        Returns:
          ``(actions, new_learner)``: float32 actions in (-1, 1) shaped like
          the input batch, and the learner with its RNG advanced.

        Raises:
          ValueError: the observation size is wrong.
        """
        obs = self._check_observations(observations)
        actions, agent = _sample_actions(self, obs)
        return np.asarray(actions), agent

    def eval_actions(self, observations: Any) -> np.ndarray:
        """Deterministic actions ``tanh(mean)`` (what the exported policy computes).

        Args:
          observations: (obs_dim,) or (N, obs_dim).

        Returns:
          float32 actions in [-1, 1] shaped like the input batch.

        Raises:
          ValueError: the observation size is wrong.
        """
        obs = self._check_observations(observations)
        return np.asarray(_eval_actions(self, obs))

    def _check_observations(self, observations: Any) -> jax.Array:
        obs = jnp.asarray(observations, jnp.float32)
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"{_WHO} expects observations of shape ({self.obs_dim},) or "
                             f"(N, {self.obs_dim}), got {tuple(obs.shape)}")
        return obs


def _actor_and_temperature(agent: RLPDLearner, batch: Mapping[str, jax.Array]):
    """Actor step, then the temperature step on the actor's entropy estimate."""
    agent, actor_info = update_actor(agent, batch)
    agent, temp_info = update_temperature(agent, actor_info["entropy"])
    return agent, {**actor_info, **temp_info}


@jax.jit
def _sample_actions(agent: RLPDLearner, obs: jax.Array):
    rng, key = jax.random.split(agent.rng)
    mean, log_std = agent.actor_def().apply({"params": agent.actor_params}, obs)
    actions, _ = tanh_normal.sample(key, mean, log_std)
    return actions, agent.replace(rng=rng)


@jax.jit
def _eval_actions(agent: RLPDLearner, obs: jax.Array):
    mean, _ = agent.actor_def().apply({"params": agent.actor_params}, obs)
    return tanh_normal.mode(mean)


@jax.jit
def critic_values(agent: RLPDLearner, observations: Any, actions: Any) -> jax.Array:
    """Q values of every critic in the ensemble.

    The ensemble mean is the Q^ref that value-based intervention compares.

    Args:
      agent: the learner.
      observations: (N, obs_dim).
      actions: (N, action_dim) in [-1, 1].

    Returns:
      (num_qs, N) float32 values.
    """
    return agent.critic_def(agent.config.num_qs).apply(
        {"params": agent.critic_params}, jnp.asarray(observations, jnp.float32),
        jnp.asarray(actions, jnp.float32))
