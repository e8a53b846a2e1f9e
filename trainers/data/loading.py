"""Load datasets by tag (``name@tag``, ``name:version``) or directory as trainer transitions.

    transitions, sources = load_transitions("hopper@round-3", reward="rlif")

Decoding episodes through `EpisodeReader` costs several times what reading
the same arrays from an HDF5 file does, so the decoded columns go to a cache
(`trainers.data.cache`) keyed by the dataset's content digest; later loads
memory-map them. No TensorFlow is imported (TFDS' NumPy parser only).

What is cached:

* a registry version: always, keyed by its manifest's `content_sha256`
  (versions are immutable; their files are size-checked on every load);
* a plain directory: keyed by the same digest computed from its files (full
  SHA-256 of every file, ~1 GB/s, a fraction of decoding), so it shares the
  entry of the version it is (or will be) published as. A directory that a
  live recorder is writing is not cached: its files change while we read.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from rlif_data import invalid
from rlif_data import schema as sc
from rlif_data.lineage import dataset_view
from rlif_data.recording import store as rec_store
from rlif_data.recording.reader import EpisodeReader
from rlif_data.registry import checksums
from rlif_data.registry.store import Registry, default_root
from rlif_data.registry.versions import parse_ref
from trainers.data import cache as cache_lib
from trainers.data.errors import EmptyTransitionsError, SpecMismatchError
from trainers.data.transitions import (
    ACTIONS,
    DISCOUNTS,
    INTERVENTION,
    NEXT_OBSERVATIONS,
    OBSERVATIONS,
    Transitions,
    check_columns_finite,
    check_reward_available,
    concat_transitions,
    describe_spec,
    describe_view,
    episode_columns,
    episode_name,
    pick_rewards,
    rlif_rewards_available,
)

log = logging.getLogger(__name__)

CACHE_SUBDIR = os.path.join("cache", "transitions")

# Cache states reported in `LoadedSource.cache`.
CACHE_HIT = "hit"  # read from the cache, nothing decoded
CACHE_BUILT = "built"  # decoded and written to the cache
CACHE_REBUILT = "rebuilt"  # a damaged entry was discarded, decoded again and rewritten
CACHE_OFF = "off"  # decoded, not cached (live recording)


@dataclasses.dataclass(frozen=True)
class LoadedSource:
    """What one reference resolved to and what it contributed.

    Attributes:
      ref: the reference as given (directory, ``name@tag`` or ``name:version``).
      resolved: ``name:version`` for registry data, else the absolute directory.
      path: the directory read.
      content_sha256: the content digest (the cache key); None if not cached.
      view: the relabel view its job record names (`rlif_data.lineage`; None: raw/ingested).
      episodes: episodes in the dataset.
      transitions: transitions it contributed (after the view's `include` mask).
      cache: "hit", "built", "rebuilt" or "off".
      invalid_dropped: episodes marked invalid that were left out
        (``invalid_episodes="drop"``; `rlif_data.invalid`).
    """

    ref: str
    resolved: str
    path: str
    content_sha256: Optional[str]
    view: Optional[str]
    episodes: int
    transitions: int
    cache: str
    invalid_dropped: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-able record (for run configs and policy lineage)."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------
# Resolving references.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Resolved:
    ref: str
    resolved: str
    path: str
    content_sha256: Optional[str]


def directory_digest(directory: str) -> str:
    """The content digest a registry would record for `directory` if it were published.

    Every file's SHA-256 (dot-files skipped, as `Registry.publish` skips them),
    combined with `checksums.content_digest`.
    """
    files = {}
    for rel in checksums.list_files(directory):
        if os.path.basename(rel).startswith("."):
            continue
        path = os.path.join(directory, rel)
        files[rel] = {"size": os.path.getsize(path), "sha256": checksums.sha256_file(path)}
    return checksums.content_digest(files)


def _resolve(ref: str, registry: Registry) -> _Resolved:
    if os.path.exists(ref):
        path = os.path.abspath(ref)
        if rec_store.active_writer(path) is not None:
            log.warning("%s is being recorded; loading it without the cache", path)
            digest = None
        else:
            digest = directory_digest(path)
        return _Resolved(ref, path, path, digest)
    try:
        parse_ref(ref)
    except ValueError:
        raise FileNotFoundError(f"{ref}: no such directory, and not a dataset reference "
                                "(name:1.0.0, name@tag)") from None
    info = registry.info(ref)
    path = registry.path(ref)  # size check of every file against the manifest
    return _Resolved(ref, info.ref, path, info.manifest.get("content_sha256"))


# ---------------------------------------------------------------------------
# Decoding and the cache.
# ---------------------------------------------------------------------------


def _flatten(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Column dict with dict observations split into "observations/<key>" entries."""
    flat = {}
    for name, values in columns.items():
        if values is None:
            continue
        if isinstance(values, Mapping):
            flat.update({f"{name}/{k}": v for k, v in values.items()})
        else:
            flat[name] = values
    return flat


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in flat.items():
        head, _, key = name.partition("/")
        if key:
            out.setdefault(head, {})[key] = values
        else:
            out[name] = values
    return out


def _decode(resolved: _Resolved, view: Optional[str],
            progress: bool) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every column of the dataset (flat) and its episode ids, checked finite."""
    from tqdm.auto import tqdm

    per_episode: list[dict[str, np.ndarray]] = []
    episode_ids: list[str] = []
    with EpisodeReader(resolved.path, repair=False) as reader:
        for i in tqdm(range(len(reader)), desc=f"decoding {resolved.resolved}", unit="ep",
                      disable=not progress):
            episode = reader[i]
            columns = episode_columns(episode, view, resolved.resolved)
            episode_id = _text(episode.get(sc.EPISODE_ID, str(i)))
            check_columns_finite(columns, episode_name(resolved.resolved, episode_id))
            columns["episode_ids"] = np.full(len(columns[ACTIONS]), i, np.int32)
            per_episode.append(_flatten(columns))
            episode_ids.append(episode_id)
        schema = reader.schema
    if per_episode:
        flat = {k: np.concatenate([c[k] for c in per_episode]) for k in per_episode[0]}
    else:
        flat = _empty_columns(schema, rlif_rewards_available(view))
    return flat, episode_ids


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _empty_columns(schema, with_rlif: bool) -> dict[str, np.ndarray]:
    def leaf(spec) -> np.ndarray:
        return np.zeros((0,) + tuple(spec.shape), np.dtype(spec.dtype))

    obs = schema.observation
    observations = {k: leaf(v) for k, v in obs.items()} if isinstance(obs, Mapping) else leaf(obs)
    columns = {
        OBSERVATIONS: observations, NEXT_OBSERVATIONS: observations,
        ACTIONS: np.zeros((0, schema.action_dim), np.float32),
        DISCOUNTS: np.zeros(0, np.float32), INTERVENTION: np.zeros(0, bool),
        "step_index": np.zeros(0, np.int32), "episode_ids": np.zeros(0, np.int32),
        "rewards_env": np.zeros(0, np.float32),
        "rewards_rlif": np.zeros(0, np.float32) if with_rlif else None,
    }
    return _flatten(columns)


def _columns(resolved: _Resolved, view: Optional[str], cache_dir: str,
             progress: bool) -> tuple[dict[str, np.ndarray], list[str], str]:
    """(flat columns, episode ids, cache state) of one dataset, from the cache when possible."""
    key = resolved.content_sha256
    state = CACHE_OFF
    if key is not None:
        try:
            hit = cache_lib.read_entry(cache_dir, key)
        except cache_lib.CacheEntryDamaged as exc:
            log.warning("transition cache entry of %s is damaged (%s); rebuilding it",
                        resolved.resolved, exc)
            cache_lib.discard_entry(cache_dir, key)
            hit, state = None, CACHE_REBUILT
        else:
            state = CACHE_BUILT
        if hit is not None:
            columns, info = hit
            if info.get("view") == view:
                return columns, list(info.get("episode_ids", [])), CACHE_HIT
            # The view is read from metadata.json (hashed content), so this only
            # happens if the rules that read it change: the reward columns may not fit.
            log.warning("transition cache entry of %s was built as view %r, now %r; rebuilding",
                        resolved.resolved, info.get("view"), view)
            cache_lib.discard_entry(cache_dir, key)
            state = CACHE_REBUILT
    columns, episode_ids = _decode(resolved, view, progress)
    if key is not None:
        cache_lib.write_entry(cache_dir, key, columns,
                              {"episode_ids": episode_ids, "view": view,
                               "source": resolved.resolved})
    return columns, episode_ids, state


def _without_episodes(flat: Mapping[str, np.ndarray], dropped: Sequence[int]
                      ) -> dict[str, np.ndarray]:
    """The rows of every column whose episode index is not in `dropped` (copies). Pure."""
    keep = ~np.isin(flat["episode_ids"], np.asarray(dropped, np.int32))
    return {k: np.asarray(v)[keep] for k, v in flat.items()}


def _transitions(flat: Mapping[str, np.ndarray], episode_ids: Sequence[str], reward: str,
                 label: str) -> Transitions:
    cols = _unflatten(flat)
    return Transitions(
        observations=cols[OBSERVATIONS], actions=cols[ACTIONS],
        rewards=pick_rewards(cols, reward), discounts=cols[DISCOUNTS],
        next_observations=cols[NEXT_OBSERVATIONS], intervention=cols[INTERVENTION],
        episode_ids=cols["episode_ids"], step_index=cols["step_index"],
        episode_names=tuple(episode_name(label, e) for e in episode_ids), reward_mode=reward,
    )


def _schema_text(schema) -> str:
    obs = schema.observation
    if isinstance(obs, Mapping):
        spec = tuple((k, tuple(v.shape), v.dtype) for k, v in sorted(obs.items()))
    else:
        spec = (tuple(obs.shape), obs.dtype)
    return f"observations {describe_spec(spec)}, actions ({schema.action_dim},)"


def load_transitions(refs: Union[str, Sequence[str]], *, reward: str,
                     root: Optional[str] = None, cache_dir: Optional[str] = None,
                     progress: bool = False, invalid_episodes: Optional[str] = None
                     ) -> tuple[Transitions, list[LoadedSource]]:
    """Transitions of one or several datasets, in the given order, with rewards in mode `reward`.

    Args:
      refs: a dataset directory, ``name@tag`` or ``name:version``, or a list of them.
      reward: "env", "rlif" or "zero" (see `trainers.data.transitions`).
      root: the registry root (default ``$RLIF_DATA_ROOT`` or ``~/.rlif_data``).
      cache_dir: where decoded columns are cached (default
        ``<registry root>/cache/transitions``).
      progress: show a progress bar while decoding.
      invalid_episodes: "drop" or "keep" the episodes an operator marked
        invalid (`rlif_data.invalid`); required when a dataset holds marks,
        as for the pipelines: never silently either way.

    Returns:
      (transitions, one `LoadedSource` per ref). A single cached dataset comes
      back as read-only memory maps; several are concatenated in memory.

    Raises:
      FileNotFoundError / UnknownDatasetError: a ref names nothing.
      IntegrityError: a registry version's files differ from its manifest.
      RewardModeError: unknown mode, or "rlif" on a dataset without RLIF rewards.
      SpecMismatchError: refs with different observation or action specs.
      EmptyTransitionsError: no transitions at all (an empty dataset, a view
        that keeps none).
      NonFiniteTransitionError: NaN/inf, naming dataset, episode and step.
      InvalidOptionRequiredError: a dataset holds marked episodes and
        `invalid_episodes` is None.
      CorruptRecordingError / FormatVersionError: unreadable data.
    """
    refs = [refs] if isinstance(refs, (str, os.PathLike)) else list(refs)
    if not refs:
        raise ValueError("load_transitions needs at least one dataset reference")
    registry = Registry(root)
    cache_dir = os.path.abspath(cache_dir or os.path.join(root or default_root(), CACHE_SUBDIR))
    resolved = [_resolve(str(ref), registry) for ref in refs]
    schemas = [rec_store.read_schema(r.path) for r in resolved]
    for r, schema in zip(resolved[1:], schemas[1:]):
        first = schemas[0]
        if (schema.observation, schema.action_dim) != (first.observation, first.action_dim):
            raise SpecMismatchError(
                f"{resolved[0].resolved} has {_schema_text(first)} but {r.resolved} has "
                f"{_schema_text(schema)}; load datasets of one environment together")
    views = [dataset_view(r.path) for r in resolved]
    for r, schema, view in zip(resolved, schemas, views):
        check_reward_available(reward, view, schema.derived, r.resolved)
    invalid.check_option(invalid_episodes)
    marks = [invalid.read_marks(r.path) for r in resolved]
    parts, sources = [], []
    for r, view, marked in zip(resolved, views, marks):
        flat, episode_ids, state = _columns(r, view, cache_dir, progress)
        # The cache holds every episode; the marks decide per load (they are content too).
        selection = invalid.split_episodes(episode_ids, marked, invalid_episodes, r.resolved)
        if selection.dropped:
            flat = _without_episodes(flat, selection.dropped)
        part = _transitions(flat, episode_ids, reward, r.resolved)
        parts.append(part)
        sources.append(LoadedSource(
            ref=r.ref, resolved=r.resolved, path=r.path,
            content_sha256=r.content_sha256 if state != CACHE_OFF else None,
            view=view, episodes=len(episode_ids), transitions=len(part), cache=state,
            invalid_dropped=len(selection.dropped)))
    total = sum(len(p) for p in parts)
    if total == 0:
        what = "; ".join(f"{s.resolved}: {s.episodes} episodes, "
                         f"{describe_view(s.view, sch.derived)}"
                         for s, sch in zip(sources, schemas))
        raise EmptyTransitionsError(
            f"no transitions to train on ({what}); record or pick data whose view keeps "
            "some transitions")
    return concat_transitions(parts, [s.resolved for s in sources]), sources
