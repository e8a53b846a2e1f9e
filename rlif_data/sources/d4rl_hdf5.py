"""Read D4RL HDF5 files directly (h5py, no `d4rl`/`gym` install) into RLDS episodes.

A D4RL file is a flat table of rows ``observations[i], actions[i], rewards[i],
terminals[i], timeouts[i]`` (plus, in the newer files, ``next_observations[i]``
and ``infos/*``), where row ``i`` is one transition. How the table splits into
episodes and what each RLDS step holds is the pure part, in
`rlif_data.sources.d4rl_steps` (its names are importable from here too); this
module is the thin h5py layer: it checks a file's structure (keys, ranks,
lengths, flags by the one rule of `rlif_data.sources.arrays`), then reads one
episode at a time, refusing NaN/inf with the key, row and episode.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Iterator, Mapping, Optional, Union

import numpy as np

from rlif_data import errors, schema
from rlif_data.sources import arrays
from rlif_data.sources.d4rl_steps import (  # noqa: F401  (re-exported: the reader's API)
    ACTIONS_KEY,
    END_CUT,
    END_KINDS,
    END_TERMINAL,
    END_TIMEOUT,
    INFOS_GROUP,
    INTERVENTION_MODEL,
    NEXT_OBSERVATIONS_KEY,
    OBSERVATIONS_KEY,
    OPERATOR,
    REQUIRED_KEYS,
    REWARDS_KEY,
    TERMINALS_KEY,
    TIMEOUTS_KEY,
    EpisodeSpan,
    InfoColumn,
    episode_boundaries,
    episode_metadata,
    episode_steps,
    select_info_columns,
)
from rlif_data.sources.hdf5_io import open_hdf5, read_array

PathLike = Union[str, os.PathLike]


class D4RLFormatError(errors.SchemaError):
    """A D4RL HDF5 file is unreadable or does not follow the D4RL layout."""


@dataclasses.dataclass(frozen=True)
class _Layout:
    """What the structural checks of a file found."""

    rows: int
    obs_dim: int
    action_dim: int
    terminals: np.ndarray
    timeouts: Optional[np.ndarray]
    has_next_observations: bool
    other_keys: tuple[str, ...]  # ignored: metadata/*, infos/* not kept
    infos: dict  # name -> InfoColumn: the infos/* columns kept as extra step fields
    ignored_infos: dict  # infos/* key -> why it is not kept


def _open(path: str):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such D4RL file")
    return open_hdf5(path, D4RLFormatError)


def _read(handle, path: str, key: str, rows: Any = ()) -> np.ndarray:
    """``handle[key][rows]``, turning h5py's read failures into D4RLFormatError."""
    return read_array(handle[key], key, path, D4RLFormatError, rows)


def _dataset_keys(handle) -> list[str]:
    import h5py

    keys: list[str] = []
    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            keys.append(name)

    handle.visititems(visit)
    return keys


def _read_layout(handle, path: str) -> _Layout:
    """Check keys, ranks and lengths; read the (small) flag columns."""
    keys = set(_dataset_keys(handle))
    missing = [k for k in REQUIRED_KEYS if k not in keys]
    if missing:
        raise D4RLFormatError(
            f"{path}: missing required key(s) {', '.join(missing)}; "
            f"a D4RL file has {', '.join(REQUIRED_KEYS)} "
            f"(found: {', '.join(sorted(keys)) or 'none'})"
        )
    has_timeouts = TIMEOUTS_KEY in keys
    has_next = NEXT_OBSERVATIONS_KEY in keys
    shapes = {k: tuple(handle[k].shape) for k in REQUIRED_KEYS}
    if has_timeouts:
        shapes[TIMEOUTS_KEY] = tuple(handle[TIMEOUTS_KEY].shape)
    if has_next:
        shapes[NEXT_OBSERVATIONS_KEY] = tuple(handle[NEXT_OBSERVATIONS_KEY].shape)

    for key, shape in shapes.items():
        if key in (OBSERVATIONS_KEY, ACTIONS_KEY, NEXT_OBSERVATIONS_KEY):
            if len(shape) != 2:
                raise D4RLFormatError(
                    f"{path}: key '{key}' must be 2-D [rows, dim], got shape {shape}"
                )
        elif not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise D4RLFormatError(
                f"{path}: key '{key}' must have shape [rows] or [rows, 1], got {shape}"
            )
        dtype = handle[key].dtype
        if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
            raise D4RLFormatError(f"{path}: key '{key}' must be numeric, got dtype {dtype}")
    rows = shapes[OBSERVATIONS_KEY][0]
    arrays.check_rows({k: shape[0] for k, shape in shapes.items()}, OBSERVATIONS_KEY, path,
                      D4RLFormatError, hint="every key must have one row per transition")
    if has_next and shapes[NEXT_OBSERVATIONS_KEY] != shapes[OBSERVATIONS_KEY]:
        raise D4RLFormatError(
            f"{path}: key '{NEXT_OBSERVATIONS_KEY}' has shape {shapes[NEXT_OBSERVATIONS_KEY]}, "
            f"'{OBSERVATIONS_KEY}' has {shapes[OBSERVATIONS_KEY]}"
        )
    known = set(REQUIRED_KEYS) | {TIMEOUTS_KEY, NEXT_OBSERVATIONS_KEY}
    info_keys = [k for k in keys if k.startswith(INFOS_GROUP + "/")]
    infos, ignored_infos = select_info_columns(
        {k: (tuple(handle[k].shape), handle[k].dtype.name) for k in info_keys}, rows)
    kept = {column.key for column in infos.values()}
    return _Layout(
        rows=rows,
        obs_dim=shapes[OBSERVATIONS_KEY][1],
        action_dim=shapes[ACTIONS_KEY][1],
        terminals=_flags(handle, path, TERMINALS_KEY),
        timeouts=_flags(handle, path, TIMEOUTS_KEY) if has_timeouts else None,
        has_next_observations=has_next,
        other_keys=tuple(sorted(keys - known - kept)),
        infos=infos,
        ignored_infos=ignored_infos,
    )


def _flags(handle, path: str, key: str) -> np.ndarray:
    """A flag column by the one rule (`arrays.flag_column`), errors naming the file."""
    return arrays.flag_column(_read(handle, path, key), key, path, D4RLFormatError,
                              column_ok=True)


def _check_finite(
    path: str, key: str, values: np.ndarray, first_row: int, index: int, span: EpisodeSpan
) -> None:
    arrays.check_finite(values, key, path, D4RLFormatError, first_row=first_row,
                        context=f"episode {index}, rows {span.start}..{span.end - 1}")


def _default_name(path: str) -> str:
    return pathlib.Path(path).name.rsplit(".", 1)[0]


def read_d4rl_episodes(
    path: PathLike,
    *,
    env_id: str = "",
    dataset_name: Optional[str] = None,
    max_episode_steps: Optional[int] = None,
    infos: bool = True,
) -> Iterator[dict[str, Any]]:
    """Read a D4RL HDF5 file as rlif-data RLDS episodes.

    The file's structure (keys, ranks, lengths) is checked when this function
    is called; the per-episode data (and its NaN/inf check) is read lazily, one
    episode at a time, while iterating. ``infos/<name>`` columns with one row
    per transition and a numeric dtype (`d4rl_steps.select_info_columns`)
    become extra step fields ``steps[schema.INFOS][name]``, bit-exact in their
    dtype and not checked for NaN/inf (learners do not read them); other keys
    (``metadata/*``, ...) are ignored.

    Args:
      path: the .hdf5 file.
      env_id: stored as each episode's env_id (e.g. "Hopper-v5").
      dataset_name: stored as session_id and used in episode ids
        ("{dataset_name}/{index}"); defaults to the file name without its
        extension.
      max_episode_steps: the env's time limit, used to split files that have
        no ``timeouts`` key (see `episode_boundaries`); ignored otherwise.
      infos: keep the ``infos/*`` columns (`info_specs` gives their schema);
        False drops them (the layout before format 1.1).

    Returns:
      An iterator of episodes ``{schema.STEPS: {field: array}, <metadata>}``,
      in file order; episode ``i`` has id "{dataset_name}/{i}".

    Raises:
      FileNotFoundError: no file at ``path``.
      D4RLFormatError: not HDF5 / truncated / corrupt, a missing required key,
        a key of the wrong rank, keys of different lengths (at call time); a
        NaN/inf in observations, actions, rewards or the used next
        observation (while iterating, naming key, row and episode).
    """
    path = os.fspath(path)
    name = dataset_name if dataset_name is not None else _default_name(path)
    with _open(path) as handle:
        layout = _read_layout(handle, path)
    spans = episode_boundaries(
        layout.terminals, layout.timeouts, max_episode_steps=max_episode_steps
    )
    columns = list(layout.infos.values()) if infos else []
    return _iter_episodes(path, layout, spans, name, env_id, columns)


def _iter_episodes(
    path: str, layout: _Layout, spans: list[EpisodeSpan], name: str, env_id: str,
    info_columns: list[InfoColumn],
) -> Iterator[dict[str, Any]]:
    with _open(path) as handle:
        for index, span in enumerate(spans):
            rows = slice(span.start, span.end)
            columns = {}
            for key in (OBSERVATIONS_KEY, ACTIONS_KEY, REWARDS_KEY):
                values = _read(handle, path, key, rows).astype(np.float32)
                # Checked after the float32 cast: float64 values beyond float32 overflow to inf.
                _check_finite(path, key, values, span.start, index, span)
                columns[key] = values.reshape(span.num_rows, -1)
            final = None
            if layout.has_next_observations:
                final = _read(handle, path, NEXT_OBSERVATIONS_KEY, slice(span.end - 1, span.end))
                final = final.astype(np.float32)
                _check_finite(path, NEXT_OBSERVATIONS_KEY, final, span.end - 1, index, span)
                final = final[0]
            # As stored, but for the casts of `select_info_columns` (uint32 -> int64).
            extras = {c.name: _read(handle, path, c.key, rows).astype(c.dtype, copy=False)
                      for c in info_columns}
            steps = episode_steps(
                columns[OBSERVATIONS_KEY],
                columns[ACTIONS_KEY],
                columns[REWARDS_KEY][:, 0],
                span.end_kind,
                final_observation=final,
                infos=extras,
            )
            episode = {schema.STEPS: steps}
            episode.update(episode_metadata(f"{name}/{index}", name, env_id))
            yield episode


def check_action_width(path: str, action_dim: int, env_id: str, env_action_shape: tuple) -> None:
    """Refuse a file whose actions do not fit the environment named for it.

    Args:
      path: the .hdf5 file, for the message.
      action_dim: the width of the file's ``actions`` rows.
      env_id: the Gymnasium id the episodes are to be stored under.
      env_action_shape: that environment's action space shape.

    Raises:
      D4RLFormatError: the widths differ (e.g. a Walker2d file named Hopper-v5).
    """
    if tuple(env_action_shape) != (action_dim,):
        raise D4RLFormatError(
            f"{path}: actions are {action_dim} wide, but {env_id} takes actions of shape "
            f"{tuple(env_action_shape)}; pass the --env-id this file was recorded in")


def inspect_d4rl(path: PathLike, *, max_episode_steps: Optional[int] = None) -> dict[str, Any]:
    """Summarise a D4RL HDF5 file without reading its observations.

    Args:
      path: the .hdf5 file.
      max_episode_steps: as in `read_d4rl_episodes`, for files without timeouts.

    Returns:
      A dict with ``path``, ``rows``, ``episodes``, ``terminal_episodes``,
      ``timeout_episodes``, ``cut_episodes``, ``obs_dim``, ``action_dim``,
      ``has_timeouts``, ``has_next_observations``, ``infos`` (the kept
      ``infos/*`` columns: ``{name: {"key", "shape", "dtype"}}``, see
      `info_specs`), ``ignored_infos`` (``{key: why it is not kept}``) and
      ``other_keys`` (every ignored key, e.g. "metadata/algorithm").

    Raises:
      FileNotFoundError, D4RLFormatError: as `read_d4rl_episodes` (structural
        checks only; values are not checked for NaN/inf).
    """
    path = os.fspath(path)
    with _open(path) as handle:
        layout = _read_layout(handle, path)
    spans = episode_boundaries(
        layout.terminals, layout.timeouts, max_episode_steps=max_episode_steps
    )
    kinds = [s.end_kind for s in spans]
    return {
        "path": path,
        "rows": layout.rows,
        "episodes": len(spans),
        "terminal_episodes": kinds.count(END_TERMINAL),
        "timeout_episodes": kinds.count(END_TIMEOUT),
        "cut_episodes": kinds.count(END_CUT),
        "obs_dim": layout.obs_dim,
        "action_dim": layout.action_dim,
        "has_timeouts": layout.timeouts is not None,
        "has_next_observations": layout.has_next_observations,
        "infos": {name: {"key": c.key, "shape": list(c.shape), "dtype": c.dtype}
                  for name, c in layout.infos.items()},
        "ignored_infos": dict(layout.ignored_infos),
        "other_keys": list(layout.other_keys),
    }


def info_specs(summary: Mapping[str, Any]) -> dict[str, schema.ArraySpec]:
    """The extra step fields (`schema.EpisodeSchema.infos`) `read_d4rl_episodes` yields.

    Args:
      summary: `inspect_d4rl`'s result for the file.

    Returns:
      ``{name: ArraySpec}`` of the kept ``infos/*`` columns (empty if none).
    """
    return {name: schema.ArraySpec(tuple(c["shape"]), c["dtype"])
            for name, c in summary.get("infos", {}).items()}
