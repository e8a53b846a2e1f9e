"""Policy specs: one place that turns a short string into a policy.

A spec is a name from `SPEC_FACTORIES` ("random", "scripted",
"noisy-expert", ...) or something that names a policy checkpoint: a local
directory written by `save_mlp_policy`, or anything a resolver added with
`register_ref_resolver` can map to one (the registry plugs its refs in this
way). Both simulated recording (`rlif_data.recording.sim`) and robot
sessions (`robot.session`) build their policies here, so a new kind of
policy is one `register_spec` call away from both. Checkpoints load lazily:
this module imports no JAX, and never imports trainer code.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any, Callable, Optional, Union

import numpy as np

from rlif_data.policies.base import NoisyPolicy, Policy, RandomPolicy, space_bounds
from rlif_data.policies.scripted import scripted_expert

TRAIN_RUN_POLICY_DIR = "policy"
"""Where a training run directory keeps its exported policy (trainers/run_dir.py)."""

DEFAULT_NOISE = 0.5
"""Noise std of "noisy-expert" when the caller gives none."""


@dataclasses.dataclass(frozen=True)
class SpecContext:
    """What a spec factory may use to build its policy.

    Attributes:
      spec: the spec string as given.
      action_low: lower action bounds (float32).
      action_high: upper action bounds (float32).
      env_id: the environment id (scripted experts are looked up by it).
      seed: seed of any randomness in the policy.
      expert: a policy to build on ("noisy-expert"), already fed the full
        observation; None means the env's scripted expert.
      noise: noise std of noisy policies.
      state_key: if set, observations are dicts and policies that read the
        observation see only ``observation[state_key]`` (the proprio vector).
    """

    spec: str
    action_low: np.ndarray
    action_high: np.ndarray
    env_id: str
    seed: int
    expert: Optional[Policy] = None
    noise: float = DEFAULT_NOISE
    state_key: Optional[str] = None

    def on_state(self, policy: Policy) -> Policy:
        """``policy`` fed the proprio part of the observation when `state_key` is set.

        Args:
          policy: a policy over flat state vectors.

        Returns:
          ``policy`` itself, or a wrapper that indexes ``state_key`` first.
        """
        return policy if self.state_key is None else state_only(policy, self.state_key)


PolicyFactory = Callable[[SpecContext], Policy]
"""Builds the policy a spec names."""

RefResolver = Callable[[str], Optional[str]]
"""Maps a spec to a local checkpoint directory, or None if it is not one of its refs."""


def state_only(policy: Policy, key: str) -> Policy:
    """Feed a state-based policy the ``key`` entry of dict observations.

    Args:
      policy: a policy over flat vectors.
      key: the observation entry holding the flat state.

    Returns:
      A policy over dict observations; it keeps ``policy.reset`` if there is one.
    """

    def act(observation):
        return policy(observation[key])

    if hasattr(policy, "reset"):
        act.reset = policy.reset
    return act


def _random(ctx: SpecContext) -> Policy:
    """Uniform random actions; the observation is ignored."""
    return RandomPolicy(ctx.action_low, ctx.action_high, seed=ctx.seed)


def _scripted(ctx: SpecContext) -> Policy:
    """The env's built-in scripted expert."""
    return ctx.on_state(scripted_expert(ctx.env_id))


def _noisy_expert(ctx: SpecContext) -> Policy:
    """The given expert (default: the scripted one) plus clipped Gaussian noise."""
    base = ctx.expert if ctx.expert is not None else _scripted(ctx)
    return NoisyPolicy(base, ctx.noise, ctx.action_low, ctx.action_high, seed=ctx.seed)


SPEC_FACTORIES: dict[str, Union[PolicyFactory, str]] = {
    "random": _random,
    "scripted": _scripted,
    "noisy-expert": _noisy_expert,
    # LQR experts of the pushed pendulum (rlif_data.policies.lqr.LQR_SPECS).
    "lqr-aggressive": "rlif_data.policies.lqr:from_spec_context",
    "lqr": "rlif_data.policies.lqr:from_spec_context",
    "lqr-cap:1.5": "rlif_data.policies.lqr:from_spec_context",
    "lqr-cap:0.7": "rlif_data.policies.lqr:from_spec_context",
}
"""Spec name -> factory, or "module:function" imported on first use (keeps heavy
policies such as a JAX controller out of the import of this module)."""

_REF_RESOLVERS: list[RefResolver] = []


def register_spec(name: str, factory: Union[PolicyFactory, str], *,
                  replace: bool = False) -> None:
    """Add a named policy kind to `SPEC_FACTORIES`.

    Args:
      name: the spec string users pass (e.g. "lqr").
      factory: ``factory(SpecContext) -> policy``, or "module:function" naming one.
      replace: allow replacing an existing name.

    Raises:
      ValueError: ``name`` is taken (and not ``replace``) or looks like a path.
    """
    if os.sep in name or not name:
        raise ValueError(f"policy spec name {name!r} must be non-empty and not a path")
    if name in SPEC_FACTORIES and not replace:
        raise ValueError(f"policy spec {name!r} is already registered; pass replace=True")
    SPEC_FACTORIES[name] = factory


def register_ref_resolver(resolver: RefResolver) -> None:
    """Let specs name checkpoints indirectly (e.g. registry refs).

    Resolvers are asked in registration order, after the named specs and
    before the spec is tried as a local directory.

    Args:
      resolver: ``resolver(spec)`` returns a local checkpoint directory, or None
        when ``spec`` is not one of its refs. It may raise a clear error when
        ``spec`` is its kind but cannot be resolved.
    """
    if resolver not in _REF_RESOLVERS:
        _REF_RESOLVERS.append(resolver)


def spec_names() -> tuple[str, ...]:
    """The registered spec names, in registration order."""
    return tuple(SPEC_FACTORIES)


def resolve_checkpoint(spec: str) -> Optional[str]:
    """The local checkpoint directory a spec names, or None.

    Args:
      spec: a registry ref (if a resolver knows it) or a directory path.

    Returns:
      The directory, or None when ``spec`` names no checkpoint.
    """
    for resolver in _REF_RESOLVERS:
        path = resolver(spec)
        if path is not None:
            return path
    if os.path.isdir(spec):
        # A `train --out` run directory holds its exported policy in policy/.
        inner = os.path.join(spec, TRAIN_RUN_POLICY_DIR)
        if os.path.isfile(os.path.join(inner, "policy_config.json")):
            return inner
        return spec
    return _registry_policy(spec)


def policy_version(spec: str) -> str:
    """What a recording stores as `policy_version` for a learner spec.

    A published policy is stored as its immutable ``name:version`` (not the
    tag, which moves), so lineage can follow data back to the exact policy;
    a directory as its absolute path; a named spec as itself.
    """
    if spec in SPEC_FACTORIES:
        return spec
    if os.path.isdir(spec):
        return os.path.abspath(spec)
    path = _registry_policy(spec)
    if path is None:
        return spec
    from rlif_data.registry.checksums import read_manifest

    manifest = read_manifest(path)
    return f"{manifest['name']}:{manifest['version']}"


def _registry_policy(spec: str) -> Optional[str]:
    """The version directory of a published policy ``name@tag`` / ``name:version``, or None.

    Uses the default registry root (``$RLIF_DATA_ROOT``); the CLI sets it from
    ``--root``. A ref that names a dataset, or nothing, is not a policy.
    """
    from rlif_data.registry.store import POLICY, Registry, RegistryError
    from rlif_data.registry.versions import parse_ref

    try:
        parse_ref(spec)
    except ValueError:
        return None
    try:
        info = Registry().info(spec)
    except (RegistryError, KeyError, FileNotFoundError):
        return None
    if info.manifest.get("kind") != POLICY:
        return None
    return Registry().path(spec)  # checks file sizes against the manifest


def check_spec(spec: str, what: str = "policy") -> None:
    """Raise unless ``spec`` is a registered name or names a checkpoint.

    Args:
      spec: the spec to check.
      what: the role named in the message ("learner", "expert", ...).

    Raises:
      ValueError: ``spec`` is neither; the message lists the names.
    """
    if spec in SPEC_FACTORIES or resolve_checkpoint(spec) is not None:
        return
    raise ValueError(
        f"{what} must be one of {spec_names()} or a policy checkpoint directory, got {spec!r}"
    )


def _factory(name: str) -> PolicyFactory:
    """The factory of a registered name, importing a "module:function" entry."""
    factory = SPEC_FACTORIES[name]
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory


def _checkpoint(ctx: SpecContext, directory: str) -> Policy:
    """An MLP policy restored from ``directory`` (loads JAX on first use)."""
    from rlif_data.policies.checkpoint import load_mlp_policy

    return ctx.on_state(load_mlp_policy(directory))


def from_spec(spec: str, action_space: Any, *, env_id: str, seed: int,
              expert: Optional[Policy] = None, noise: float = DEFAULT_NOISE,
              state_key: Optional[str] = None) -> Policy:
    """The policy a spec names.

    Args:
      spec: "random", "scripted", "noisy-expert", another name added with
        `register_spec`, a resolvable ref, or a checkpoint directory.
      action_space: a Gymnasium Box or a dm_env BoundedArray (the bounds).
      env_id: environment id ("scripted" looks its expert up by it).
      seed: seed of the policy's randomness.
      expert: base policy of "noisy-expert" (over full observations); None
        means the env's scripted expert.
      noise: noise std of "noisy-expert".
      state_key: set when observations are dicts: policies that read the
        observation (scripted, checkpoints) then see ``observation[state_key]``.

    Returns:
      A policy ``policy(observation) -> float32 action``.

    Raises:
      ValueError: an unknown spec (the message lists the names), bad bounds or
        noise, or a checkpoint that does not load (the message names its path).
      UnknownEnvironmentError: "scripted" for an env without a scripted expert.
      FileNotFoundError: a resolved checkpoint is incomplete.
    """
    low, high = space_bounds(action_space)
    ctx = SpecContext(spec=spec, action_low=low, action_high=high, env_id=env_id, seed=seed,
                      expert=expert, noise=noise, state_key=state_key)
    if spec in SPEC_FACTORIES:
        return _factory(spec)(ctx)
    directory = resolve_checkpoint(spec)
    if directory is None:
        check_spec(spec)  # raises with the list of names
    return _checkpoint(ctx, directory)
