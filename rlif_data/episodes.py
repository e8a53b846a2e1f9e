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


def build_steps(
    observations: Any,
    actions: np.ndarray,
    rewards: np.ndarray,
    discounts: np.ndarray,
    *,
    terminated: bool,
    intervention: Optional[np.ndarray] = None,
    policy_actions: Optional[np.ndarray] = None,
    expert_actions: Optional[np.ndarray] = None,
    has_expert_action: Optional[np.ndarray] = None,
    source: Any = sc.Source.POLICY,
    timestamps: Optional[np.ndarray] = None,
) -> dict[str, Any]:
    """Lay out one episode's arrays as RLDS steps (the one place this is done).

    Args:
      observations: o_0..o_T stacked ([T+1, ...], or a dict of such arrays).
      actions, rewards, discounts: a_t, r_t, d_t for t = 0..T-1 ([T, ...]).
      terminated: the episode ended in a true termination (not a time-limit
        truncation, not an abandoned or cut episode): sets `is_terminal`.
      intervention: [T] bool, expert in control (default: never).
      policy_actions, expert_actions: [T, A] (default zeros).
      has_expert_action: [T] bool (default: False).
      source: [T] `Source` values, or one value for every step.
      timestamps: [T] seconds since the episode start (default zeros); stored
        as integer microseconds.

    Returns:
      The `STEPS` dict with T+1 entries per field; the final step holds o_T
      and zeros (RLDS/envlogger convention: its action, reward and discount
      are undefined).
    """
    actions = np.asarray(actions, np.float32)
    t = len(actions)
    a_dim = actions.shape[1] if actions.ndim == 2 else 0
    first = next(iter(observations.values())) if isinstance(observations, Mapping) else observations
    if len(first) != t + 1 or len(rewards) != t or len(discounts) != t:
        raise ValueError(
            f"episode arrays disagree: {len(first)} observations, {t} actions, "
            f"{len(rewards)} rewards, {len(discounts)} discounts (need T+1, T, T, T)"
        )

    def with_final(values: Any, dtype, shape=()) -> np.ndarray:
        out = np.zeros((t + 1,) + shape, dtype)
        if values is not None:
            out[:t] = np.asarray(values, dtype).reshape((t,) + shape)
        return out

    flags = with_final(intervention, np.bool_)
    is_first = np.zeros(t + 1, np.bool_)
    is_first[0] = True
    is_last = np.zeros(t + 1, np.bool_)
    is_last[-1] = True
    is_terminal = np.zeros(t + 1, np.bool_)
    is_terminal[-1] = bool(terminated)
    sources = np.broadcast_to(np.asarray(source, np.int64), (t,))
    stamps = with_final(None if timestamps is None else np.round(np.asarray(timestamps) * 1e6),
                        np.int64)
    if t:
        stamps[-1] = stamps[-2]  # the final observation arrives with the last action's outcome
    return {
        sc.OBSERVATION: observations,
        sc.ACTION: with_final(actions, np.float32, (a_dim,)),
        sc.REWARD: with_final(rewards, np.float32),
        sc.DISCOUNT: with_final(discounts, np.float32),
        sc.IS_FIRST: is_first,
        sc.IS_LAST: is_last,
        sc.IS_TERMINAL: is_terminal,
        sc.INTERVENTION: flags,
        sc.INTERVENTION_START: takeover_starts(flags),
        sc.POLICY_ACTION: with_final(policy_actions, np.float32, (a_dim,)),
        sc.EXPERT_ACTION: with_final(expert_actions, np.float32, (a_dim,)),
        sc.HAS_EXPERT_ACTION: with_final(has_expert_action, np.bool_),
        sc.SOURCE: with_final(sources, np.int64),
        sc.TIMESTAMP_US: stamps,
    }


def assemble_steps(
    schema: sc.EpisodeSchema,
    observations: Sequence[Any],
    actions: Sequence[np.ndarray],
    rewards: Sequence[float],
    discounts: Sequence[float],
    infos: Sequence[Optional[StepInfo]],
    terminated: bool,
) -> dict[str, Any]:
    """Stack one recorded episode's per-step values into RLDS step arrays.

    Args:
      schema: the recording schema.
      observations: o_0..o_T (T+1 values).
      actions, rewards, discounts: a_t, r_t, d_t for t = 0..T-1 (T values).
      infos: the `StepInfo` of each action (T values; None = policy, no expert).
      terminated: see `build_steps`.

    Returns:
      The `STEPS` dict of the episode.
    """
    t = len(actions)
    if len(observations) != t + 1 or len(infos) != t:
        raise ValueError(
            f"episode arrays disagree: {len(observations)} observations, {t} actions, "
            f"{len(infos)} infos (need T+1, T, T)"
        )
    a_dim = schema.action_dim
    zeros = np.zeros(a_dim, np.float32)
    infos = [info or StepInfo(False, action, None, sc.Source.POLICY, 0.0)
             for info, action in zip(infos, actions)]
    return build_steps(
        _stack_observations(observations, schema),
        np.asarray(actions, np.float32).reshape(t, a_dim),
        np.asarray(rewards, np.float32),
        np.asarray(discounts, np.float32),
        terminated=terminated,
        intervention=np.array([i.intervention for i in infos], np.bool_),
        policy_actions=np.array([i.policy_action for i in infos], np.float32).reshape(t, a_dim),
        expert_actions=np.array(
            [zeros if i.expert_action is None else i.expert_action for i in infos], np.float32
        ).reshape(t, a_dim),
        has_expert_action=np.array([i.expert_action is not None for i in infos], np.bool_),
        source=np.array([int(i.source) for i in infos], np.int64),
        timestamps=np.array([i.timestamp for i in infos], np.float64),
    )


def infer_schema(episode: Episode, name: str = "rlif_episodes",
                 derived: bool = False) -> sc.EpisodeSchema:
    """The schema an in-memory episode fits: vector or dict observations.

    In dict observations, uint8 HxWx3 arrays are camera frames (stored raw);
    everything else is a float32 array.
    """
    steps = episode[sc.STEPS]
    obs = steps[sc.OBSERVATION]

    def leaf(values: np.ndarray) -> sc.LeafSpec:
        values = np.asarray(values)
        if values.dtype == np.uint8 and values.ndim == 4 and values.shape[-1] == 3:
            return sc.ImageSpec(values.shape[1], values.shape[2], 3)
        return sc.ArraySpec(tuple(values.shape[1:]), "float32")

    if isinstance(obs, Mapping):
        observation: sc.ObservationSpec = {k: leaf(v) for k, v in obs.items()}
    else:
        observation = leaf(obs)
    action_dim = int(np.asarray(steps[sc.ACTION]).shape[1])
    return sc.EpisodeSchema(observation, action_dim, name, derived)


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


def dominant_source(episode: Episode) -> str:
    """Name of the `Source` that produced most of an episode's actions."""
    steps = episode[sc.STEPS]
    t = len(steps[sc.IS_FIRST]) - 1
    if t == 0:
        return sc.Source.POLICY.name.lower()
    counts = np.bincount(np.asarray(steps[sc.SOURCE][:t], np.int64), minlength=len(sc.Source))
    return sc.Source(int(counts.argmax())).name.lower()


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
