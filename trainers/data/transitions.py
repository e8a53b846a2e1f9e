"""Trainer transitions (s, a, r, discount, s') from RLDS episodes. Pure (NumPy, no I/O).

An episode of T+1 RLDS steps holds T transitions: transition t is
``(o_t, a_t, r_t, d_t, o_{t+1})``; the final step only holds o_T. A derived
(relabelled) dataset marks with `include` which of them belong to its view;
raw recordings and ingested datasets have no `include`: all T are kept.

Reward modes (what a trainer source calls its reward):

* ``env``: the environment's reward, `env_reward` in a relabelled view, else
  `reward`. The official RLIF code keeps this for its D4RL (offline) half.
* ``rlif``: the relabelled RLIF reward (-1 before a takeover, else 0); only an
  RLIF view (`rlif_data.relabel.RULES`) has it.
* ``zero``: all zeros (the official code's online buffer for pickled data).

Discounts are the stored ones: 0 after a termination, 1 after a time-limit
truncation (bootstrap). Observations may be a dict of arrays (cameras): image
leaves keep their uint8 dtype.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from rlif_data import relabel as rl
from rlif_data import schema as sc
from trainers.data.errors import (
    NonFiniteTransitionError,
    RewardModeError,
    SpecMismatchError,
    TransitionDataError,
)

# Batch keys (transition fields, not RLDS step fields: those live in rlif_data.schema).
OBSERVATIONS = "observations"
ACTIONS = "actions"
REWARDS = "rewards"
DISCOUNTS = "discounts"
NEXT_OBSERVATIONS = "next_observations"
INTERVENTION = "intervention"
BATCH_KEYS = (OBSERVATIONS, ACTIONS, REWARDS, DISCOUNTS, NEXT_OBSERVATIONS, INTERVENTION)

ENV = "env"
RLIF = "rlif"
ZERO = "zero"
REWARD_MODES = (ENV, RLIF, ZERO)

Observation = Union[np.ndarray, Mapping[str, np.ndarray]]
# (shape without the batch dimension, dtype name) of an array, or a sorted
# tuple of (key, shape, dtype name) for dict observations.
Spec = Any


def check_reward_mode(reward: str) -> str:
    """Return `reward` if it is a known reward mode.

    Raises:
      RewardModeError: unknown mode.
    """
    if reward not in REWARD_MODES:
        raise RewardModeError(f"unknown reward mode {reward!r}; choose one of {list(REWARD_MODES)}")
    return reward


def map_observation(observation: Observation, fn) -> Observation:
    """`fn` applied to an array observation or to every leaf of a dict observation."""
    if isinstance(observation, Mapping):
        return {k: fn(v) for k, v in observation.items()}
    return fn(observation)


def observation_leaves(observation: Observation) -> list[tuple[str, np.ndarray]]:
    """(name, array) of each leaf: ``[("", array)]`` for an array observation."""
    if isinstance(observation, Mapping):
        return sorted(observation.items())
    return [("", observation)]


def observation_spec(observation: Observation) -> Spec:
    """The spec of batched observations: per-row shape and dtype of each leaf."""

    def leaf(arr: np.ndarray) -> tuple[tuple[int, ...], str]:
        return tuple(int(d) for d in arr.shape[1:]), np.dtype(arr.dtype).name

    if isinstance(observation, Mapping):
        return tuple((k,) + leaf(v) for k, v in sorted(observation.items()))
    return leaf(observation)


def describe_spec(spec: Spec) -> str:
    """A short text of a spec for messages: ``float32(17,)`` or ``{state: float32(3,), ...}``."""
    if spec and isinstance(spec[0], tuple) and len(spec[0]) == 3:
        return "{" + ", ".join(f"{k}: {d}{s}" for k, s, d in spec) + "}"
    shape, dtype = spec
    return f"{dtype}{shape}"


@dataclasses.dataclass(frozen=True, eq=False)
class Transitions:
    """N transitions as column arrays, with the episode and step each row came from.

    Attributes:
      observations: o_t, [N, ...] or a dict of such arrays (image leaves uint8).
      actions: a_t, [N, A] float32.
      rewards: [N] float32, in `reward_mode`.
      discounts: [N] float32, 0 after a termination, 1 otherwise.
      next_observations: o_{t+1}, like `observations`.
      intervention: [N] bool, the expert was in control at step t.
      episode_ids: [N] int32, index into `episode_names` of each row's episode.
      step_index: [N] int32, the RLDS step t of each row within its episode.
      episode_names: one text per episode, naming dataset and episode id, for messages.
      reward_mode: the reward mode `rewards` holds (`REWARD_MODES`).
    """

    observations: Observation
    actions: np.ndarray
    rewards: np.ndarray
    discounts: np.ndarray
    next_observations: Observation
    intervention: np.ndarray
    episode_ids: np.ndarray
    step_index: np.ndarray
    episode_names: tuple[str, ...]
    reward_mode: str = ENV

    def __post_init__(self):
        n = len(self.actions)
        lengths = {name: len(arr) for name, arr in self.columns()}
        if any(v != n for v in lengths.values()):
            raise TransitionDataError(f"transition columns differ in length: {lengths}")
        check_reward_mode(self.reward_mode)

    def columns(self) -> list[tuple[str, np.ndarray]]:
        """(name, array) of every column, dict observations split as "observations/<key>"."""
        cols = [(f"{OBSERVATIONS}{'/' + k if k else ''}", v)
                for k, v in observation_leaves(self.observations)]
        cols += [(f"{NEXT_OBSERVATIONS}{'/' + k if k else ''}", v)
                 for k, v in observation_leaves(self.next_observations)]
        cols += [(ACTIONS, self.actions), (REWARDS, self.rewards), (DISCOUNTS, self.discounts),
                 (INTERVENTION, self.intervention), ("episode_ids", self.episode_ids),
                 ("step_index", self.step_index)]
        return cols

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def observation_spec(self) -> Spec:
        """Per-row shape and dtype of the observations (see `observation_spec`)."""
        return observation_spec(self.observations)

    @property
    def action_dim(self) -> int:
        """Size of the action vector."""
        return int(self.actions.shape[1])

    def where(self, row: int) -> str:
        """Which dataset, episode and step row `row` came from."""
        return f"{self.episode_names[int(self.episode_ids[row])]}, step {int(self.step_index[row])}"

    def take(self, indices: np.ndarray) -> dict[str, Any]:
        """The rows `indices` as a batch dict keyed by `BATCH_KEYS` (copies)."""
        return {
            OBSERVATIONS: map_observation(self.observations, lambda a: a[indices]),
            ACTIONS: self.actions[indices],
            REWARDS: self.rewards[indices],
            DISCOUNTS: self.discounts[indices],
            NEXT_OBSERVATIONS: map_observation(self.next_observations, lambda a: a[indices]),
            INTERVENTION: self.intervention[indices],
        }


def _select(observation: Any, index: np.ndarray) -> Observation:
    return map_observation(observation, lambda a: np.asarray(a)[index])


def rlif_rewards_available(view: Optional[str]) -> bool:
    """Whether a dataset of `view` (None: raw/ingested) holds RLIF rewards in its `reward` field."""
    return view in rl.RULES


def episode_columns(episode: Mapping[str, Any], view: Optional[str] = None,
                    dataset: str = "dataset") -> dict[str, Any]:
    """The included transitions of one episode, with every reward it can provide.

    Args:
      episode: an episode in the RLDS layout (`EpisodeReader` output).
      view: the dataset's relabel view (`rlif_data.relabel.VIEWS`), None for
        raw recordings and ingested datasets.
      dataset: the dataset's name, for messages.

    Returns:
      dict with `observations`, `actions`, `discounts`, `next_observations`,
      `intervention`, `step_index` ([N] int32), `rewards_env` and
      `rewards_rlif` (None unless `view` is an RLIF view), each [N, ...].

    Raises:
      TransitionDataError: a view is named but the episode has no derived fields.
    """
    steps = episode[sc.STEPS]
    t = max(len(steps[sc.IS_FIRST]) - 1, 0)
    derived = sc.INCLUDE in steps
    if view is not None and not derived:
        raise TransitionDataError(
            f"{dataset}: said to be the {view!r} view but its steps have no "
            f"'{sc.INCLUDE}' field; relabel the raw logs with pipelines.relabel")
    if derived:
        idx = np.flatnonzero(np.asarray(steps[sc.INCLUDE][:t], bool))
    else:
        idx = np.arange(t)
    env_field = sc.ENV_REWARD if derived else sc.REWARD
    return {
        OBSERVATIONS: _select(steps[sc.OBSERVATION], idx),
        ACTIONS: np.asarray(steps[sc.ACTION], np.float32)[idx],
        DISCOUNTS: np.asarray(steps[sc.DISCOUNT], np.float32)[idx],
        NEXT_OBSERVATIONS: _select(steps[sc.OBSERVATION], idx + 1),
        INTERVENTION: np.asarray(steps[sc.INTERVENTION], bool)[idx],
        "step_index": idx.astype(np.int32),
        "rewards_env": np.asarray(steps[env_field], np.float32)[idx],
        "rewards_rlif": (np.asarray(steps[sc.REWARD], np.float32)[idx]
                         if rlif_rewards_available(view) else None),
    }


def describe_view(view: Optional[str], derived: bool) -> str:
    """How a dataset's view reads in messages."""
    if view is not None:
        return f"the {view!r} view"
    return "a relabelled dataset of unknown view" if derived else "raw or ingested data"


def check_reward_available(reward: str, view: Optional[str], derived: bool, dataset: str) -> None:
    """Raise unless a dataset of `view` can provide reward mode `reward`.

    Args:
      reward: a reward mode.
      view: the dataset's relabel view, None if raw/ingested or unknown.
      derived: the dataset is a relabelled one (its schema is derived).
      dataset: the dataset's name for the message.

    Raises:
      RewardModeError: unknown mode, or 'rlif' on a dataset without RLIF rewards.
    """
    check_reward_mode(reward)
    if reward == RLIF and not rlif_rewards_available(view):
        raise RewardModeError(
            f"{dataset}: reward 'rlif' needs an RLIF view ({', '.join(rl.RULES)}) but it is "
            f"{describe_view(view, derived)}; relabel the raw logs "
            "(`python -m pipelines.relabel --view paper`) or use reward 'env' or 'zero'")


def pick_rewards(columns: Mapping[str, Any], reward: str) -> np.ndarray:
    """The [N] reward column of `episode_columns` output (or a cache entry) for mode `reward`."""
    if reward == ZERO:
        return np.zeros(len(columns[ACTIONS]), np.float32)
    return columns[f"rewards_{reward}"]


def episode_to_transitions(episode: Mapping[str, Any], reward: str, *,
                           view: Optional[str] = None, dataset: str = "dataset") -> Transitions:
    """The transitions of one episode that its view includes, with rewards in mode `reward`.

    Args:
      episode: an episode in the RLDS layout.
      reward: "env", "rlif" or "zero" (module doc).
      view: the dataset's relabel view, None for raw/ingested data.
      dataset: the dataset's name, for messages and `episode_names`.

    Returns:
      `Transitions` of this episode (possibly zero rows), checked finite.

    Raises:
      RewardModeError: `reward` is unknown or the view has no such reward.
      NonFiniteTransitionError: NaN/inf, naming dataset, episode and step.
    """
    check_reward_available(reward, view, sc.INCLUDE in episode[sc.STEPS], dataset)
    cols = episode_columns(episode, view, dataset)
    out = Transitions(
        observations=cols[OBSERVATIONS], actions=cols[ACTIONS],
        rewards=pick_rewards(cols, reward), discounts=cols[DISCOUNTS],
        next_observations=cols[NEXT_OBSERVATIONS], intervention=cols[INTERVENTION],
        episode_ids=np.zeros(len(cols[ACTIONS]), np.int32), step_index=cols["step_index"],
        episode_names=(episode_name(dataset, episode.get(sc.EPISODE_ID, "?")),),
        reward_mode=reward,
    )
    check_finite(out)
    return out


def episode_name(dataset: str, episode_id: Any) -> str:
    """The `episode_names` entry of an episode."""
    if isinstance(episode_id, bytes):
        episode_id = episode_id.decode("utf-8", "replace")
    return f"dataset {dataset}, episode {episode_id!r}"


def first_non_finite_row(values: np.ndarray) -> Optional[int]:
    """Index of the first row of `values` holding NaN/inf (None if none, or not a float array)."""
    if not np.issubdtype(values.dtype, np.floating) or len(values) == 0:
        return None
    # Fast path: a NaN/inf makes the sum non-finite; a finite sum proves there is
    # none (6x cheaper than the per-row mask). Huge values can overflow the sum
    # to inf: then the exact search below decides.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum()):
            return None
    ok = np.isfinite(values).reshape(len(values), -1).all(axis=1)
    if ok.all():
        return None
    return int(np.argmin(ok))


def _raise_first_non_finite(columns, where) -> None:
    for name, values in columns:
        row = first_non_finite_row(np.asarray(values))
        if row is not None:
            raise NonFiniteTransitionError(
                f"NaN/inf in {name} at {where(row)}; fix or drop that episode before training")


def check_finite(transitions: Transitions) -> None:
    """Raise if a float column holds NaN/inf, naming the first bad row's dataset, episode, step.

    Raises:
      NonFiniteTransitionError: with the column, dataset, episode and step.
    """
    _raise_first_non_finite(transitions.columns(), transitions.where)


def check_columns_finite(columns: Mapping[str, Any], episode: str) -> None:
    """`check_finite` for the `episode_columns` output of one episode.

    Args:
      columns: `episode_columns` output.
      episode: the episode's `episode_name`.

    Raises:
      NonFiniteTransitionError: with the column, dataset, episode and step.
    """
    flat = []
    for name, values in columns.items():
        if values is None:
            continue
        if name in (OBSERVATIONS, NEXT_OBSERVATIONS):
            flat += [(f"{name}{'/' + k if k else ''}", v) for k, v in observation_leaves(values)]
        else:
            # "rewards_env" -> "rewards (env)": say which reward, not the column's key
            head, _, mode = name.partition("_")
            flat.append((f"{head} ({mode})" if head == REWARDS else name, values))
    steps = columns["step_index"]
    _raise_first_non_finite(flat, lambda row: f"{episode}, step {int(steps[row])}")


def _spec_text(t: Transitions) -> str:
    return f"observations {describe_spec(t.observation_spec)}, actions ({t.action_dim},)"


def check_same_spec(a: Transitions, b: Transitions, name_a: str, name_b: str) -> None:
    """Raise unless `a` and `b` have the same observation spec and action size.

    Raises:
      SpecMismatchError: naming both and their specs.
    """
    if (a.observation_spec, a.action_dim) != (b.observation_spec, b.action_dim):
        raise SpecMismatchError(
            f"{name_a} has {_spec_text(a)} but {name_b} has {_spec_text(b)}; "
            "use data recorded in one environment")


def concat_transitions(parts: Sequence[Transitions],
                       names: Optional[Sequence[str]] = None) -> Transitions:
    """One `Transitions` holding `parts` in order (episode ids renumbered).

    Args:
      parts: at least one `Transitions`, same specs and reward mode.
      names: what to call each part in errors (default: its first episode).

    Raises:
      ValueError: no parts.
      SpecMismatchError / RewardModeError: parts that do not fit together.
    """
    if not parts:
        raise ValueError("concat_transitions needs at least one part")
    names = list(names) if names is not None else [
        p.episode_names[0] if p.episode_names else f"part {i}" for i, p in enumerate(parts)]
    first = parts[0]
    for part, name in zip(parts[1:], names[1:]):
        check_same_spec(first, part, names[0], name)
        if part.reward_mode != first.reward_mode:
            raise RewardModeError(f"{names[0]} has reward mode {first.reward_mode!r} but {name} "
                                  f"has {part.reward_mode!r}; load both with one mode")
    if len(parts) == 1:
        return first
    offsets = np.cumsum([0] + [len(p.episode_names) for p in parts[:-1]])

    def cat_obs(field: str) -> Observation:
        obs = [getattr(p, field) for p in parts]
        if isinstance(obs[0], Mapping):
            return {k: np.concatenate([o[k] for o in obs]) for k in obs[0]}
        return np.concatenate(obs)

    return Transitions(
        observations=cat_obs(OBSERVATIONS),
        actions=np.concatenate([p.actions for p in parts]),
        rewards=np.concatenate([p.rewards for p in parts]),
        discounts=np.concatenate([p.discounts for p in parts]),
        next_observations=cat_obs(NEXT_OBSERVATIONS),
        intervention=np.concatenate([p.intervention for p in parts]),
        episode_ids=np.concatenate([p.episode_ids + np.int32(o) for p, o in zip(parts, offsets)]
                                   ).astype(np.int32),
        step_index=np.concatenate([p.step_index for p in parts]),
        episode_names=tuple(n for p in parts for n in p.episode_names),
        reward_mode=first.reward_mode,
    )
