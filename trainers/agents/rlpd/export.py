"""From a trained `RLPDLearner` to deployable artifacts.

* The actor becomes rlif_data's MLP policy (``TanhMLP``): the actor's
  ``Dense_0 .. Dense_{n-1}`` trunk is copied as it is, its ``mean`` head
  becomes ``Dense_n`` and ``log_std`` is dropped. The policy then computes
  ``low + (tanh(mean) + 1) / 2 * (high - low)``: the actor's deterministic
  action rescaled from [-1, 1] to the environment's bounds.
* The critic ensemble is saved on its own in rlif_data's critic format
  (`rlif_data.policies.critic`), which loads without trainer code, so that
  recording can read it as the Q^ref of value-based intervention.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from rlif_data.policies import critic as critic_lib
from rlif_data.policies.critic import CriticFunction, CriticSpec, load_critic
from trainers.networks import LOG_STD_HEAD, MEAN_HEAD

PathLike = Union[str, os.PathLike]

__all__ = ["CriticFunction", "CriticSpec", "critic_spec", "export_actor_params", "export_policy",
           "load_critic", "save_critic"]



def export_actor_params(agent: Any) -> dict[str, Any]:
    """The actor's mean path as variables of rlif_data's ``TanhMLP``.

    Args:
      agent: an `RLPDLearner`.

    Returns:
      ``{"params": {"Dense_0": ..., ..., "Dense_n": <mean head>}}`` with
      ``n = len(hidden_dims)``; the arrays are shared, not copied.

    Raises:
      ValueError: the actor params do not have the expected layout.
    """
    params = dict(agent.actor_params)
    n = len(agent.config.hidden_dims)
    expected = {f"Dense_{i}" for i in range(n)} | {MEAN_HEAD, LOG_STD_HEAD}
    if set(params) != expected:
        raise ValueError(f"actor params have layers {sorted(params)}, expected {sorted(expected)}")
    exported = {f"Dense_{i}": params[f"Dense_{i}"] for i in range(n)}
    exported[f"Dense_{n}"] = params[MEAN_HEAD]
    return {"params": exported}


def export_policy(agent: Any, action_low: Optional[Sequence[float]] = None,
                  action_high: Optional[Sequence[float]] = None) -> tuple[Any, dict[str, Any]]:
    """The actor as an MLP policy config plus variables, for ``save_mlp_policy``.

    Args:
      agent: an `RLPDLearner`.
      action_low: the environment's lower action bounds; None means -1.
      action_high: the environment's upper action bounds; None means +1.

    Returns:
      ``(MLPPolicyConfig, variables)``; ``make_mlp_module(config).apply``
      with these variables gives the agent's `eval_actions` rescaled to the
      bounds.

    Raises:
      ValueError: the bounds do not match the action size or are not ordered.
    """
    from rlif_data.policies import MLPPolicyConfig

    config = MLPPolicyConfig(
        obs_dim=agent.obs_dim,
        action_dim=agent.action_dim,
        hidden_dims=tuple(agent.config.hidden_dims),
        action_low=None if action_low is None else tuple(float(v) for v in action_low),
        action_high=None if action_high is None else tuple(float(v) for v in action_high),
    )
    return config, export_actor_params(agent)


def critic_spec(agent: Any, action_low: Optional[Sequence[float]] = None,
                action_high: Optional[Sequence[float]] = None) -> CriticSpec:
    """The `CriticSpec` of an `RLPDLearner`'s critic ensemble.

    Args:
      agent: the learner.
      action_low: the environment's lower action bounds; None means -1.
      action_high: the environment's upper action bounds; None means +1.

    Returns:
      The spec.

    Raises:
      ValueError: the bounds are invalid.
    """
    cfg = agent.config
    return CriticSpec(agent.obs_dim, agent.action_dim, tuple(cfg.hidden_dims), cfg.num_qs,
                      cfg.critic_layer_norm,
                      None if action_low is None else tuple(action_low),
                      None if action_high is None else tuple(action_high))


def save_critic(directory: PathLike, agent: Any, action_low: Optional[Sequence[float]] = None,
                action_high: Optional[Sequence[float]] = None, overwrite: bool = False) -> Path:
    """Write the agent's critic ensemble in rlif_data's critic format (Q^ref).

    Args:
      directory: local directory to create or reuse.
      agent: an `RLPDLearner`.
      action_low: the environment's lower action bounds; None means -1.
      action_high: the environment's upper action bounds; None means +1.
      overwrite: replace a critic already in ``directory``.

    Returns:
      The absolute directory path.

    Raises:
      FileExistsError: ``directory`` already holds a critic and not ``overwrite``.
      ValueError: the bounds are invalid (nothing is written).
    """
    return critic_lib.save_critic(directory, critic_spec(agent, action_low, action_high),
                                  agent.critic_params, overwrite=overwrite)
