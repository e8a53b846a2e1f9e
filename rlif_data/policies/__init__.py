"""Policies: callables ``policy(observation) -> float32 action``.

Every policy here returns a float32 vector inside the action bounds it was
built for. One idea per module:

* `base` -- the `Policy` protocol, bound checks, `RandomPolicy`, `NoisyPolicy`.
* `scripted` -- one PD `BalanceController` with presets for Hopper and
  Walker2d (`scripted_expert(env_id)`).
* `mlp` -- the Flax `TanhMLP` module, `MLPPolicyConfig` and `MLPPolicy`.
* `checkpoint` -- the on-disk format (`save_mlp_policy` / `load_mlp_policy`).
* `spec` -- `from_spec()`: "random", "scripted", "noisy-expert" or a
  checkpoint directory -> a policy; extensible with `register_spec`.

`import rlif_data.policies` stays light: the MLP and checkpoint names load
JAX, flax and orbax on first access.
"""

from rlif_data.policies.base import NoisyPolicy, PathLike, Policy, RandomPolicy, _as_bounds
from rlif_data.policies.scripted import (
    HOPPER_GAINS,
    HOPPER_LAYOUT,
    SCRIPTED_EXPERTS,
    WALKER2D_GAINS,
    WALKER2D_LAYOUT,
    BalanceController,
    BodyLayout,
    HopperBalanceExpert,
    LegGains,
    Walker2dBalanceExpert,
    scripted_expert,
)
from rlif_data.policies.spec import (
    SPEC_FACTORIES,
    SpecContext,
    check_spec,
    from_spec,
    policy_version,
    register_ref_resolver,
    register_spec,
    resolve_checkpoint,
    spec_names,
    state_only,
)

# Names whose modules import JAX/flax/orbax: loaded on first attribute access.
_LAZY = {
    "TanhMLP": "rlif_data.policies.mlp",
    "MLPPolicyConfig": "rlif_data.policies.mlp",
    "MLPPolicy": "rlif_data.policies.mlp",
    "MLP_FORMAT_VERSION": "rlif_data.policies.mlp",
    "init_mlp_policy_params": "rlif_data.policies.mlp",
    "make_mlp_module": "rlif_data.policies.mlp",
    "save_mlp_policy": "rlif_data.policies.checkpoint",
    "load_mlp_policy": "rlif_data.policies.checkpoint",
    "CONFIG_FILENAME": "rlif_data.policies.checkpoint",
    "PARAMS_DIRNAME": "rlif_data.policies.checkpoint",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlif_data.policies' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Policy", "PathLike", "RandomPolicy", "NoisyPolicy",
    "LegGains", "BodyLayout", "BalanceController", "HopperBalanceExpert",
    "Walker2dBalanceExpert", "HOPPER_GAINS", "WALKER2D_GAINS", "HOPPER_LAYOUT",
    "WALKER2D_LAYOUT", "SCRIPTED_EXPERTS", "scripted_expert",
    "SpecContext", "SPEC_FACTORIES", "from_spec", "register_spec", "register_ref_resolver",
    "resolve_checkpoint", "check_spec", "spec_names", "state_only", "policy_version",
    *_LAZY,
]
