"""Read D4RL HDF5 files directly (h5py, no `d4rl`/`gym` install) into RLDS episodes.

A D4RL file is a flat table of rows ``observations[i], actions[i], rewards[i],
terminals[i], timeouts[i]`` (plus, in the newer files, ``next_observations[i]``
and ``infos/*``), where row ``i`` is one transition. This module splits the
table into episodes and lays each one out as an rlif-data RLDS episode (see
`rlif_data.schema`).

Splitting (`episode_boundaries`), exactly as D4RL's ``sequence_dataset``:
  * an episode ends at (and includes) a row whose ``terminals`` or ``timeouts``
    flag is set; a row with both set counts as a termination;
  * rows after the last flagged row form a final episode marked ``"cut"``
    (the recording stopped mid-episode);
  * files without a ``timeouts`` key (D4RL v0) are accepted (the TFDS builder
    rejects them). Pass ``max_episode_steps`` (1000 for the locomotion tasks)
    to also end an episode once it has that many rows, as D4RL's loaders did
    from the env's TimeLimit. Unlike D4RL's loop, whose step counter restarts
    at 1 instead of 0 after each episode (so every episode after the first one
    is one row short), we count rows per episode: each time-limited episode
    has exactly ``max_episode_steps`` rows. Without ``max_episode_steps``
    such a file is split at terminals only.

Transitions (`episode_steps`), the part users trip over (D4RL issues #162/#189):
  * a timeout is a truncation: discount 1.0 on the last transition,
    ``is_terminal`` False, so learners bootstrap through it; a ``"cut"``
    episode is treated the same way;
  * a terminal is a termination: discount 0.0 on the transition into it and
    ``is_terminal`` True on the final step;
  * the final observation comes from ``next_observations[end - 1]`` when the
    file has that key. Without it, ``observations[end]`` is the NEXT episode's
    first observation (D4RL's ``qlearning_dataset`` silently uses it), so we
    never use it. Instead, for a truncated episode the last row is dropped as
    a transition and ``observations[end - 1]`` becomes the final observation:
    an episode of n rows gives n RLDS steps (n - 1 transitions + final step).
    For a terminated episode the terminal transition is kept, because it is
    the only place the termination signal lives, and the final observation
    (the terminal state, never recorded) is a copy of ``observations[end - 1]``:
    a placeholder that TD targets never read, since the discount into it is 0.
    Such an episode of n rows gives n + 1 RLDS steps.

The pure logic works on NumPy arrays with no I/O; `read_d4rl_episodes` and
`inspect_d4rl` are the thin h5py layer on top.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Iterator, Optional, Union

import numpy as np

from rlif_data import episodes, errors, schema
from rlif_data import intervention as iv
from rlif_data.sources.hdf5_io import first_non_finite_row, open_hdf5

PathLike = Union[str, os.PathLike]

# Keys of the D4RL HDF5 layout (file keys, not rlif schema fields).
OBSERVATIONS_KEY = "observations"
ACTIONS_KEY = "actions"
REWARDS_KEY = "rewards"
TERMINALS_KEY = "terminals"
TIMEOUTS_KEY = "timeouts"
NEXT_OBSERVATIONS_KEY = "next_observations"
REQUIRED_KEYS = (OBSERVATIONS_KEY, ACTIONS_KEY, REWARDS_KEY, TERMINALS_KEY)

# How an episode ended (`EpisodeSpan.end_kind`).
END_TERMINAL = "terminal"  # a true termination (terminals flag set)
END_TIMEOUT = "timeout"  # a time-limit truncation (timeouts flag or max_episode_steps)
END_CUT = "cut"  # trailing rows with neither flag: the recording stopped
END_KINDS = (END_TERMINAL, END_TIMEOUT, END_CUT)

# Episode metadata of imported D4RL data.
OPERATOR = "d4rl"
INTERVENTION_MODEL = iv.MODEL_NONE


class D4RLFormatError(errors.SchemaError):
    """A D4RL HDF5 file is unreadable or does not follow the D4RL layout."""


@dataclasses.dataclass(frozen=True)
class EpisodeSpan:
    """Rows ``[start, end)`` of a D4RL file that form one episode.

    Attributes:
      start: first row of the episode.
      end: one past its last row.
      end_kind: how it ended: "terminal", "timeout" or "cut".
    """

    start: int
    end: int
    end_kind: str

    def __post_init__(self):
        if self.end_kind not in END_KINDS:
            raise ValueError(f"end_kind must be one of {END_KINDS}, got {self.end_kind!r}")
        if not 0 <= self.start < self.end:
            raise ValueError(f"an episode needs 0 <= start < end, got [{self.start}, {self.end})")

    @property
    def num_rows(self) -> int:
        """Number of file rows in the episode."""
        return self.end - self.start

    @property
    def terminated(self) -> bool:
        """True for a true termination, False for a truncation or cut."""
        return self.end_kind == END_TERMINAL


# ---------------------------------------------------------------------------
# Pure logic (NumPy in, NumPy out, no I/O).
# ---------------------------------------------------------------------------


def _flags(values: Any, name: str) -> np.ndarray:
    """A 1-D bool array from a D4RL flag column ([N] or [N, 1], bool or 0/1)."""
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape [rows] or [rows, 1], got {arr.shape}")
    # Old files store 0.0/1.0 floats; any non-zero value is a set flag.
    return arr != 0


def episode_boundaries(
    terminals: Any,
    timeouts: Optional[Any] = None,
    *,
    max_episode_steps: Optional[int] = None,
) -> list[EpisodeSpan]:
    """Split the rows of a D4RL file into episodes, as D4RL does.

    An episode ends at (and includes) a row whose terminal or timeout flag is
    set; a terminal on the same row as a timeout wins ("terminal"). Trailing
    rows with neither flag form a last episode marked "cut".

    When ``timeouts`` is None (D4RL v0 files have no such key), episodes also
    end after ``max_episode_steps`` rows ("timeout"), counted from the first
    row of each episode (the row count restarts after every terminal). With
    ``max_episode_steps=None`` as well, only terminals split.

    Args:
      terminals: the ``terminals`` column, shape [N] or [N, 1].
      timeouts: the ``timeouts`` column (same length), or None if absent.
      max_episode_steps: the env's time limit; only used when ``timeouts`` is
        None.

    Returns:
      The episodes in row order; empty for N == 0. They tile ``[0, N)``.

    Raises:
      ValueError: flags of the wrong shape or different lengths, or a
        non-positive ``max_episode_steps``.
    """
    term = _flags(terminals, TERMINALS_KEY)
    n = len(term)
    spans: list[EpisodeSpan] = []
    start = 0
    if timeouts is not None:
        tout = _flags(timeouts, TIMEOUTS_KEY)
        if len(tout) != n:
            raise ValueError(f"{TIMEOUTS_KEY} has {len(tout)} rows, {TERMINALS_KEY} has {n}")
        for last in np.flatnonzero(term | tout):
            kind = END_TERMINAL if term[last] else END_TIMEOUT
            spans.append(EpisodeSpan(start, int(last) + 1, kind))
            start = int(last) + 1
    else:
        if max_episode_steps is not None and int(max_episode_steps) <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        limit = int(max_episode_steps) if max_episode_steps is not None else None
        for last in np.flatnonzero(term):
            last = int(last)
            # Full-length episodes that hit the time limit before this terminal;
            # a terminal exactly on the limit row is a termination.
            while limit is not None and start + limit <= last:
                spans.append(EpisodeSpan(start, start + limit, END_TIMEOUT))
                start += limit
            spans.append(EpisodeSpan(start, last + 1, END_TERMINAL))
            start = last + 1
        while limit is not None and start + limit <= n:
            spans.append(EpisodeSpan(start, start + limit, END_TIMEOUT))
            start += limit
    if start < n:
        spans.append(EpisodeSpan(start, n, END_CUT))
    return spans


def episode_steps(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    end_kind: str,
    final_observation: Optional[np.ndarray] = None,
) -> dict[str, np.ndarray]:
    """Lay out the rows of one D4RL episode as RLDS steps.

    See the module docstring for the rules. Every step's action counts as
    the expert's (``has_expert_action`` True, ``expert_action == action``)
    except on the final step, which holds zeros.

    Args:
      observations: [n, obs_dim] ``observations`` rows of the episode, n >= 1.
      actions: [n, act_dim] ``actions`` rows.
      rewards: [n] ``rewards`` rows.
      end_kind: "terminal", "timeout" or "cut" (`EpisodeSpan.end_kind`).
      final_observation: ``next_observations[end - 1]`` when the file has
        that key, else None.

    Returns:
      ``{field: array stacked over the T + 1 steps}`` with every core and
      intervention step field of `rlif_data.schema`; T = n if
      ``final_observation`` is given or the episode terminated, else n - 1.

    Raises:
      ValueError: an empty episode, inconsistent row counts, or an unknown
        ``end_kind``.
    """
    if end_kind not in END_KINDS:
        raise ValueError(f"end_kind must be one of {END_KINDS}, got {end_kind!r}")
    obs = np.asarray(observations, dtype=np.float32)
    act = np.asarray(actions, dtype=np.float32)
    rew = np.asarray(rewards, dtype=np.float32).reshape(-1)
    n = len(obs)
    if n == 0:
        raise ValueError("an episode needs at least one row")
    if len(act) != n or len(rew) != n:
        raise ValueError(
            f"row counts differ: observations {n}, actions {len(act)}, rewards {len(rew)}"
        )
    terminated = end_kind == END_TERMINAL

    if final_observation is not None:
        final = np.asarray(final_observation, dtype=np.float32).reshape(1, -1)
        obs = np.concatenate([obs, final])
        num_transitions = n
    elif terminated:
        # The terminal state was never recorded; keep the terminal transition
        # (it carries the termination) with a placeholder final observation.
        obs = np.concatenate([obs, obs[-1:]])
        num_transitions = n
    else:
        # observations[end] belongs to the next episode, so the last row's
        # action has no known outcome: drop it as a transition.
        num_transitions = n - 1

    return episodes.build_steps(
        obs,
        act[:num_transitions],
        rew[:num_transitions],
        np.where(np.arange(num_transitions) == num_transitions - 1, 0.0 if terminated else 1.0, 1.0),
        terminated=terminated,
        expert_actions=act[:num_transitions],
        # Dataset actions count as expert actions: DAgger/BC read them as labels.
        has_expert_action=np.ones(num_transitions, np.bool_),
        source=schema.Source.DATASET,
    )


def episode_metadata(episode_id: str, session_id: str, env_id: str) -> dict[str, Any]:
    """Episode metadata of an imported D4RL episode.

    Args:
      episode_id: unique id, e.g. "hopper-medium-v2/17".
      session_id: the dataset name.
      env_id: the environment the data belongs to ("" if unknown).

    Returns:
      A value for every field of `schema.EPISODE_METADATA_FIELDS`.
    """
    return {
        schema.EPISODE_ID: episode_id,
        schema.SESSION_ID: session_id,
        schema.OPERATOR: OPERATOR,
        schema.INTERVENTION_MODEL: INTERVENTION_MODEL,
        schema.INTERVENTION_PARAMS: "{}",
        schema.ROUND: 0,
        schema.POLICY_VERSION: "",
        schema.ENV_ID: env_id,
        schema.SEED: 0,
        schema.START_TIME: "",
        schema.CODE_VERSION: "",
    }


# ---------------------------------------------------------------------------
# The h5py layer.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Layout:
    """What the structural checks of a file found."""

    rows: int
    obs_dim: int
    action_dim: int
    terminals: np.ndarray
    timeouts: Optional[np.ndarray]
    has_next_observations: bool
    other_keys: tuple[str, ...]


def _open(path: str):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such D4RL file")
    return open_hdf5(path, D4RLFormatError)


def _read(handle, path: str, key: str, rows: Any = slice(None)) -> np.ndarray:
    """``handle[key][rows]``, turning h5py's read failures into D4RLFormatError."""
    try:
        return np.asarray(handle[key][rows])
    except (OSError, RuntimeError) as e:
        raise D4RLFormatError(f"{path}: cannot read key '{key}' (corrupt file?): {e}") from e


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
    for key, shape in shapes.items():
        if shape[0] != rows:
            raise D4RLFormatError(
                f"{path}: key '{key}' has {shape[0]} rows but '{OBSERVATIONS_KEY}' has {rows}; "
                "every key must have one row per transition"
            )
    if has_next and shapes[NEXT_OBSERVATIONS_KEY] != shapes[OBSERVATIONS_KEY]:
        raise D4RLFormatError(
            f"{path}: key '{NEXT_OBSERVATIONS_KEY}' has shape {shapes[NEXT_OBSERVATIONS_KEY]}, "
            f"'{OBSERVATIONS_KEY}' has {shapes[OBSERVATIONS_KEY]}"
        )
    known = set(REQUIRED_KEYS) | {TIMEOUTS_KEY, NEXT_OBSERVATIONS_KEY}
    return _Layout(
        rows=rows,
        obs_dim=shapes[OBSERVATIONS_KEY][1],
        action_dim=shapes[ACTIONS_KEY][1],
        terminals=_flags(_read(handle, path, TERMINALS_KEY), TERMINALS_KEY),
        timeouts=_flags(_read(handle, path, TIMEOUTS_KEY), TIMEOUTS_KEY) if has_timeouts else None,
        has_next_observations=has_next,
        other_keys=tuple(sorted(keys - known)),
    )


def _check_finite(
    path: str, key: str, values: np.ndarray, first_row: int, index: int, span: EpisodeSpan
) -> None:
    bad = first_non_finite_row(values)
    if bad is not None:
        raise D4RLFormatError(
            f"{path}: key '{key}' has a non-finite value (NaN/inf) at row {first_row + bad} "
            f"(episode {index}, rows {span.start}..{span.end - 1})"
        )


def _default_name(path: str) -> str:
    return pathlib.Path(path).name.rsplit(".", 1)[0]


def read_d4rl_episodes(
    path: PathLike,
    *,
    env_id: str = "",
    dataset_name: Optional[str] = None,
    max_episode_steps: Optional[int] = None,
) -> Iterator[dict[str, Any]]:
    """Read a D4RL HDF5 file as rlif-data RLDS episodes.

    The file's structure (keys, ranks, lengths) is checked when this function
    is called; the per-episode data (and its NaN/inf check) is read lazily, one
    episode at a time, while iterating. Keys other than the D4RL ones
    (``infos/*``, ``metadata/*``, ...) are ignored.

    Args:
      path: the .hdf5 file.
      env_id: stored as each episode's env_id (e.g. "Hopper-v5").
      dataset_name: stored as session_id and used in episode ids
        ("{dataset_name}/{index}"); defaults to the file name without its
        extension.
      max_episode_steps: the env's time limit, used to split files that have
        no ``timeouts`` key (see `episode_boundaries`); ignored otherwise.

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
    return _iter_episodes(path, layout, spans, name, env_id)


def _iter_episodes(
    path: str, layout: _Layout, spans: list[EpisodeSpan], name: str, env_id: str
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
            steps = episode_steps(
                columns[OBSERVATIONS_KEY],
                columns[ACTIONS_KEY],
                columns[REWARDS_KEY][:, 0],
                span.end_kind,
                final_observation=final,
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
      ``has_timeouts``, ``has_next_observations`` and ``other_keys`` (the
      ignored keys, e.g. "infos/qpos").

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
        "other_keys": list(layout.other_keys),
    }
