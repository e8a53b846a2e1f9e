"""`BCLearner`: a deterministic tanh MLP regressed onto [-1, 1]-normalised actions.

One learner serves BC, HG-DAgger and DAgger: they differ only in which
transitions the dataset view keeps and which action labels it holds (see
`rlif_data.relabel`), not in the update.

The network is rlif_data's ``TanhMLP`` with bounds [-1, 1] (its affine rescale
is then the identity), so the params are already in the deployable policy
format: `export_policy` only swaps in the environment's bounds.

Like `RLPDLearner`, the learner is an immutable ``flax.struct.PyTreeNode``
whose array fields (params, Adam state, step) are the whole training state,
restorable with orbax given ``jax.eval_shape(lambda: BCLearner.create(...))``.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from trainers.agents import batch as bk
from trainers.configs import BCConfig

_WHO = "BCLearner"


class BCLearner(struct.PyTreeNode):
    """Behaviour cloning state plus its pure update rule.

    Attributes:
      params: variables' ``params`` of the ``TanhMLP`` (bounds [-1, 1]).
      opt_state: Adam state.
      step: number of gradient steps so far (int32).
      config: the hyper-parameters (static).
      obs_dim: observation size (static).
      action_dim: action size (static).
    """

    params: Any
    opt_state: Any
    step: jax.Array
    config: BCConfig = struct.field(pytree_node=False)
    obs_dim: int = struct.field(pytree_node=False)
    action_dim: int = struct.field(pytree_node=False)

    @classmethod
    def create(cls, seed: int, obs_dim: int, action_dim: int,
               config: Optional[BCConfig] = None) -> "BCLearner":
        """A freshly initialised learner.

        Args:
          seed: seed of the initial params.
          obs_dim: observation size.
          action_dim: action size.
          config: hyper-parameters; None means the defaults.

        Returns:
          The learner.

        Raises:
          ValueError: a size is not a positive int.
        """
        config = BCConfig() if config is None else config
        shell = cls(params=None, opt_state=None, step=jnp.zeros((), jnp.int32),
                    config=config, obs_dim=obs_dim, action_dim=action_dim)
        policy_config = shell.policy_config()  # validates the sizes
        from rlif_data.policies import init_mlp_policy_params

        params = init_mlp_policy_params(policy_config, seed)["params"]
        return shell.replace(params=params, opt_state=shell.tx().init(params))

    def policy_config(self, action_low: Optional[Sequence[float]] = None,
                      action_high: Optional[Sequence[float]] = None) -> Any:
        """The ``MLPPolicyConfig`` of this network with the given bounds.

        Args:
          action_low: lower action bounds; None means -1 (the training space).
          action_high: upper action bounds; None means +1.

        Returns:
          An ``MLPPolicyConfig``.

        Raises:
          ValueError: a size or a bound is invalid.
        """
        from rlif_data.policies import MLPPolicyConfig

        return MLPPolicyConfig(
            obs_dim=self.obs_dim, action_dim=self.action_dim,
            hidden_dims=tuple(self.config.hidden_dims),
            action_low=None if action_low is None else tuple(float(v) for v in action_low),
            action_high=None if action_high is None else tuple(float(v) for v in action_high))

    def module(self) -> Any:
        """The ``TanhMLP`` module in the [-1, 1] action space."""
        from rlif_data.policies import make_mlp_module

        return make_mlp_module(self.policy_config())

    def tx(self) -> optax.GradientTransformation:
        """The optimizer."""
        return optax.adam(self.config.lr)

    @functools.partial(jax.jit, static_argnames="num_steps")
    def update(self, batch: Mapping[str, Any], num_steps: int = 1) -> tuple["BCLearner", dict]:
        """``num_steps`` Adam steps on the mean squared action error (a ``lax.scan``).

        Args:
          batch: ``observations`` (num_steps * B, obs_dim) and ``actions``
            (num_steps * B, action_dim), the actions normalised to [-1, 1].
          num_steps: gradient steps in this call (static); step ``i`` uses rows
            ``i * B .. (i + 1) * B - 1``.

        Returns:
          ``(new_learner, info)`` with scalar ``bc_loss`` of the last step.

        Raises:
          ValueError: a column is missing or misshapen, or the rows do not
            split into ``num_steps`` minibatches (raised while tracing).
        """
        bk.check_batch(batch, bk.BC_KEYS, self.obs_dim, self.action_dim, _WHO)
        minibatches = bk.split_minibatches(batch, bk.BC_KEYS, num_steps)
        learner, losses = jax.lax.scan(_bc_step, self, minibatches)
        return learner, {"bc_loss": losses[-1]}

    def eval_actions(self, observations: Any) -> np.ndarray:
        """The policy's actions in [-1, 1].

        Args:
          observations: (obs_dim,) or (N, obs_dim).

        Returns:
          float32 actions shaped like the input batch.

        Raises:
          ValueError: the observation size is wrong.
        """
        obs = jnp.asarray(observations, jnp.float32)
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"{_WHO} expects observations of shape ({self.obs_dim},) or "
                             f"(N, {self.obs_dim}), got {tuple(obs.shape)}")
        return np.asarray(_forward(self, obs))

    def export_policy(self, action_low: Optional[Sequence[float]] = None,
                      action_high: Optional[Sequence[float]] = None) -> tuple[Any, dict]:
        """The policy as an ``MLPPolicyConfig`` plus variables, for ``save_mlp_policy``.

        Args:
          action_low: the environment's lower action bounds; None means -1.
          action_high: the environment's upper action bounds; None means +1.

        Returns:
          ``(MLPPolicyConfig, {"params": params})``.

        Raises:
          ValueError: the bounds do not match the action size or are not ordered.
        """
        return self.policy_config(action_low, action_high), {"params": self.params}


def bc_loss(module: Any, params: Any, observations: jax.Array, actions: jax.Array) -> jax.Array:
    """Mean squared error between the policy's actions and the labels.

    Args:
      module: the ``TanhMLP`` (bounds [-1, 1]).
      params: its params.
      observations: (B, obs_dim).
      actions: (B, action_dim) labels in [-1, 1].

    Returns:
      The scalar loss (mean over batch and action dimensions).
    """
    predicted = module.apply({"params": params}, observations)
    return jnp.mean((predicted - actions) ** 2)


def _bc_step(learner: BCLearner, batch: Mapping[str, jax.Array]) -> tuple[BCLearner, jax.Array]:
    """One Adam step of `bc_loss` on one minibatch."""
    loss, grads = jax.value_and_grad(bc_loss, argnums=1)(
        learner.module(), learner.params, batch[bk.OBSERVATIONS], batch[bk.ACTIONS])
    updates, opt_state = learner.tx().update(grads, learner.opt_state, learner.params)
    return learner.replace(params=optax.apply_updates(learner.params, updates),
                           opt_state=opt_state, step=learner.step + 1), loss


@jax.jit
def _forward(learner: BCLearner, obs: jax.Array) -> jax.Array:
    return learner.module().apply({"params": learner.params}, obs)
