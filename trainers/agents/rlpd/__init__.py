"""RLPD (Ball et al. 2023) as RLIF uses it: SAC + LayerNorm critic ensemble + high UTD.

Public API: `RLPDLearner`, `critic_values`, `export_actor_params`,
`export_policy`, `save_critic`, `load_critic`, `CriticSpec`, `CriticFunction`.
"""

from trainers.agents.rlpd.export import (
    CriticFunction,
    CriticSpec,
    critic_spec,
    export_actor_params,
    export_policy,
    load_critic,
    save_critic,
)
from trainers.agents.rlpd.learner import RLPDLearner, critic_values

__all__ = [
    "RLPDLearner",
    "critic_values",
    "export_actor_params",
    "export_policy",
    "save_critic",
    "load_critic",
    "critic_spec",
    "CriticSpec",
    "CriticFunction",
]
