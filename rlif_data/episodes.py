"""Pure helpers that build and check in-memory episodes. No I/O.

An episode in memory is laid out exactly like its TFDS/RLDS record:
``{STEPS: {field: array stacked over the T+1 steps}, <metadata field>: value}``.
Step ``t`` holds the observation ``o_t`` and what followed it: the action
``a_t``, reward ``r_t`` and discount ``d_t``. The final step (index T) holds
the last observation with zero action, reward and discount.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.intervention import takeover_starts

Episode = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """Who acted at one step, recorded beside the action it produced.

    Attributes:
      intervention: the expert was in control at this step.
      policy_action: the learner's proposal at this step.
      expert_action: the expert's action, or None if it was not computed.
      source: who produced the applied action.
      timestamp: seconds since the episode started, when the action was chosen.
    """

    intervention: bool
    policy_action: np.ndarray
    expert_action: Optional[np.ndarray]
    source: sc.Source
    timestamp: float


def check_action(action: Any, action_dim: int, where: str) -> np.ndarray:
    """Return `action` as float32 [action_dim] or raise `InvalidActionError`.

    Args:
      action: the action to check.
      action_dim: expected size.
      where: context for the message, e.g. "policy action, episode 3 step 17".
    """
    arr = np.asarray(action, dtype=np.float32)
    if arr.shape != (action_dim,):
        raise errors.InvalidActionError(
            f"{where}: action has shape {arr.shape}, the schema expects ({action_dim},)"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise errors.InvalidActionError(
            f"{where}: action contains NaN/inf at index {bad}: {arr.tolist()}"
        )
    return arr


def _check_leaf(value: Any, spec: sc.LeafSpec, where: str) -> None:
    arr = np.asarray(value)
    if arr.shape != tuple(spec.shape):
        raise errors.SchemaError(
            f"{where}: observation has shape {arr.shape}, the schema expects {tuple(spec.shape)}"
        )
    if not np.can_cast(arr.dtype, np.dtype(spec.dtype), casting="same_kind"):
        raise errors.SchemaError(
            f"{where}: observation dtype {arr.dtype} cannot be stored as {spec.dtype}"
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise errors.SchemaError(f"{where}: observation contains NaN/inf")


def check_observation(observation: Any, schema: sc.EpisodeSchema, where: str) -> None:
    """Raise `SchemaError` unless `observation` matches the schema's spec."""
    spec = schema.observation
    if isinstance(spec, Mapping):
        if not isinstance(observation, Mapping):
            raise errors.SchemaError(
                f"{where}: observation is a {type(observation).__name__}, the schema "
                f"expects a dict with keys {sorted(spec)}"
            )
        if set(observation) != set(spec):
            raise errors.SchemaError(
                f"{where}: observation keys {sorted(observation)} differ from the "
                f"schema's {sorted(spec)}"
            )
        for key, leaf in spec.items():
            _check_leaf(observation[key], leaf, f"{where}, observation[{key!r}]")
    else:
        if isinstance(observation, Mapping):
            raise errors.SchemaError(
                f"{where}: observation is a dict with keys {sorted(observation)}, the "
                f"schema expects an array of shape {tuple(spec.shape)}"
            )
        _check_leaf(observation, spec, where)


def _stack_observations(observations: Sequence[Any], schema: sc.EpisodeSchema) -> Any:
    spec = schema.observation
    if isinstance(spec, Mapping):
        return {
            k: np.stack([np.asarray(o[k]) for o in observations]).astype(leaf.dtype, copy=False)
            for k, leaf in spec.items()
        }
    return np.stack([np.asarray(o) for o in observations]).astype(spec.dtype, copy=False)


def assemble_steps(
    schema: sc.EpisodeSchema,
    observations: Sequence[Any],
    actions: Sequence[np.ndarray],
    rewards: Sequence[float],
    discounts: Sequence[float],
    infos: Sequence[Optional[StepInfo]],
    terminated: bool,
) -> dict[str, Any]:
    """Stack one episode's per-step values into RLDS step arrays.

    Args:
      schema: the recording schema.
      observations: o_0..o_T (T+1 values).
      actions, rewards, discounts: a_t, r_t, d_t for t = 0..T-1 (T values).
      infos: the `StepInfo` of each action (T values; None = policy, no expert).
      terminated: the episode ended in a true termination (not a truncation,
        not an abandoned episode); sets `is_terminal` on the final step.

    Returns:
      The `STEPS` dict of the episode.
    """
    n = len(observations)
    t = n - 1
    if n < 1 or len(actions) != t or len(rewards) != t or len(discounts) != t or len(infos) != t:
        raise ValueError(
            f"episode arrays disagree: {n} observations, {len(actions)} actions, "
            f"{len(rewards)} rewards, {len(discounts)} discounts, {len(infos)} infos"
        )
    a_dim = schema.action_dim
    zeros_action = np.zeros((1, a_dim), np.float32)

    def actions_with_final(values: Sequence[np.ndarray]) -> np.ndarray:
        if not values:
            return zeros_action
        return np.concatenate([np.stack(values).astype(np.float32), zeros_action])

    def scalars_with_final(values: Sequence[Any], dtype) -> np.ndarray:
        return np.concatenate([np.asarray(values, dtype=dtype).reshape(t), np.zeros(1, dtype)])

    policy_actions, expert_actions, has_expert, intervention, sources, stamps = [], [], [], [], [], []
    for action, info in zip(actions, infos):
        if info is None:
            info = StepInfo(False, action, None, sc.Source.POLICY, 0.0)
        policy_actions.append(np.asarray(info.policy_action, np.float32))
        has_expert.append(info.expert_action is not None)
        expert_actions.append(
            np.asarray(info.expert_action, np.float32)
            if info.expert_action is not None
            else np.zeros(a_dim, np.float32)
        )
        intervention.append(info.intervention)
        sources.append(int(info.source))
        stamps.append(info.timestamp)

    intervention_arr = scalars_with_final(intervention, np.bool_)
    is_first = np.zeros(n, np.bool_)
    is_first[0] = True
    is_last = np.zeros(n, np.bool_)
    is_last[-1] = True
    is_terminal = np.zeros(n, np.bool_)
    is_terminal[-1] = bool(terminated)
    return {
        sc.OBSERVATION: _stack_observations(observations, schema),
        sc.ACTION: actions_with_final(actions),
        sc.REWARD: scalars_with_final(rewards, np.float32),
        sc.DISCOUNT: scalars_with_final(discounts, np.float32),
        sc.IS_FIRST: is_first,
        sc.IS_LAST: is_last,
        sc.IS_TERMINAL: is_terminal,
        sc.INTERVENTION: intervention_arr,
        sc.INTERVENTION_START: takeover_starts(intervention_arr),
        sc.POLICY_ACTION: actions_with_final(policy_actions),
        sc.EXPERT_ACTION: actions_with_final(expert_actions),
        sc.HAS_EXPERT_ACTION: scalars_with_final(has_expert, np.bool_),
        sc.SOURCE: scalars_with_final(sources, np.int64),
        sc.TIMESTAMP: np.concatenate(
            [np.asarray(stamps, np.float64).reshape(t), [stamps[-1] if stamps else 0.0]]
        ),
    }


def default_episode_metadata() -> dict[str, Any]:
    """Every episode metadata field with an empty value of its type."""
    meta: dict[str, Any] = {field: "" for field in sc.EPISODE_METADATA_FIELDS}
    meta[sc.ROUND] = 0
    meta[sc.SEED] = 0
    meta[sc.INTERVENTION_PARAMS] = "{}"
    return meta


def complete_metadata(metadata: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Fill missing episode metadata with defaults; reject unknown keys."""
    unknown = set(metadata) - set(sc.EPISODE_METADATA_FIELDS)
    if unknown:
        raise errors.SchemaError(
            f"{where}: unknown episode metadata fields {sorted(unknown)}; "
            f"known: {list(sc.EPISODE_METADATA_FIELDS)}"
        )
    meta = default_episode_metadata()
    meta.update(metadata)
    return meta


def episode_length(episode: Episode) -> int:
    """Number of transitions (steps minus the final observation step)."""
    return len(episode[sc.STEPS][sc.IS_FIRST]) - 1


def summarize_episode(episode: Episode) -> dict[str, Any]:
    """Transitions, intervention rate, takeovers and return of one episode."""
    steps = episode[sc.STEPS]
    t = episode_length(episode)
    intervention = np.asarray(steps[sc.INTERVENTION][:t], bool)
    return {
        sc.EPISODE_ID: episode.get(sc.EPISODE_ID, ""),
        "transitions": t,
        "intervened_steps": int(intervention.sum()),
        "intervention_rate": float(intervention.mean()) if t else 0.0,
        "takeovers": int(np.asarray(steps[sc.INTERVENTION_START][:t], bool).sum()),
        "return": float(np.asarray(steps[sc.REWARD][:t], np.float64).sum()),
        "terminated": bool(steps[sc.IS_TERMINAL][-1]),
    }
