"""D4RL rows as RLDS episodes: how the flat table splits and what each step holds (pure).

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

Extra columns (``infos/qpos``, ``infos/qvel``, ...) are kept as the extra step
fields of `schema.INFOS`, in their own dtype, one row per transition (zeros on
the final step); `rlif_data.sources.d4rl_hdf5` decides which columns qualify.

Everything here works on NumPy arrays with no I/O; `rlif_data.sources.d4rl_hdf5`
(`read_d4rl_episodes`, `inspect_d4rl`) is the thin h5py layer on top.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

import numpy as np

from rlif_data import episodes, schema
from rlif_data import intervention as iv
from rlif_data.sources import arrays

# Keys of the D4RL HDF5 layout (file keys, not rlif schema fields).
OBSERVATIONS_KEY = "observations"
ACTIONS_KEY = "actions"
REWARDS_KEY = "rewards"
TERMINALS_KEY = "terminals"
TIMEOUTS_KEY = "timeouts"
NEXT_OBSERVATIONS_KEY = "next_observations"
REQUIRED_KEYS = (OBSERVATIONS_KEY, ACTIONS_KEY, REWARDS_KEY, TERMINALS_KEY)
INFOS_GROUP = "infos"  # infos/<name>: per-row extras (qpos, qvel, action_log_probs, ...)

# Stored dtype of an infos column by its file dtype, where it is not kept as
# is: uint32 fits int64 exactly (raw bytes in the schema's INFO_DTYPES only).
_INFO_DTYPE_CASTS = {"uint32": "int64"}

# How an episode ended (`EpisodeSpan.end_kind`).
END_TERMINAL = "terminal"  # a true termination (terminals flag set)
END_TIMEOUT = "timeout"  # a time-limit truncation (timeouts flag or max_episode_steps)
END_CUT = "cut"  # trailing rows with neither flag: the recording stopped
END_KINDS = (END_TERMINAL, END_TIMEOUT, END_CUT)

# Episode metadata of imported D4RL data.
OPERATOR = "d4rl"
INTERVENTION_MODEL = iv.MODEL_NONE


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



@dataclasses.dataclass(frozen=True)
class InfoColumn:
    """An ``infos/<name>`` column of a D4RL file, kept as an extra step field.

    Attributes:
      key: the file key, e.g. "infos/qpos".
      name: the step field's name inside `schema.INFOS`, e.g. "qpos".
      shape: the shape of one row.
      dtype: the stored dtype name (the file's, or `_INFO_DTYPE_CASTS`').
    """

    key: str
    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def spec(self) -> schema.ArraySpec:
        """The field's `schema.ArraySpec`."""
        return schema.ArraySpec(self.shape, self.dtype)


def select_info_columns(
    columns: Mapping[str, tuple[tuple[int, ...], str]], rows: int
) -> tuple[dict[str, InfoColumn], dict[str, str]]:
    """Which ``infos/*`` columns become extra step fields, and why the others do not.

    A column is kept when it lies directly under ``infos/``, holds one row
    per file row, and has a numeric or bool dtype rlif-data stores exactly
    (`schema.INFO_DTYPES`, uint32 as int64).

    Args:
      columns: ``{file key: (shape, dtype name)}`` of every dataset under
        ``infos/``.
      rows: the file's row count.

    Returns:
      (kept ``{name: InfoColumn}`` in key order, ``{file key: reason}`` of the
      columns left out).
    """
    kept: dict[str, InfoColumn] = {}
    ignored: dict[str, str] = {}
    for key in sorted(columns):
        shape, dtype = tuple(columns[key][0]), str(columns[key][1])
        name = key[len(INFOS_GROUP) + 1:]
        stored = _INFO_DTYPE_CASTS.get(dtype, dtype)
        if not shape or shape[0] != rows:
            ignored[key] = f"shape {shape}: not one row per transition ({rows} rows)"
        elif stored not in schema.INFO_DTYPES:
            ignored[key] = (f"dtype {dtype} is not stored "
                            f"(supported: {', '.join(schema.INFO_DTYPES)})")
        else:
            try:
                schema.check_info_spec(name, schema.ArraySpec(shape[1:], stored))
            except ValueError:
                ignored[key] = "nested or oddly named key (a step field name is a plain word)"
                continue
            kept[name] = InfoColumn(key, name, shape[1:], stored)
    return kept, ignored


def _flags(values: Any, name: str) -> np.ndarray:
    """A 1-D bool array from a D4RL flag column ([N] or [N, 1]; `arrays.flag_column`'s rule)."""
    return arrays.flag_column(values, name, "", ValueError, column_ok=True)


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
        arrays.check_rows({TERMINALS_KEY: n, TIMEOUTS_KEY: len(tout)}, TERMINALS_KEY, "",
                          ValueError)
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
    infos: Optional[Mapping[str, np.ndarray]] = None,
) -> dict[str, np.ndarray]:
    """Lay out the rows of one D4RL episode as RLDS steps.

    See the module docstring for the rules. Every step's action counts as
    the expert's (``has_expert_action`` True, ``expert_action == action``)
    except on the final step, which holds zeros. ``infos/<name>`` rows ride
    with their row's transition, like the action: the final step holds
    zeros, and the row dropped from a truncated episode without
    ``next_observations`` is dropped from them too.

    Args:
      observations: [n, obs_dim] ``observations`` rows of the episode, n >= 1.
      actions: [n, act_dim] ``actions`` rows.
      rewards: [n] ``rewards`` rows.
      end_kind: "terminal", "timeout" or "cut" (`EpisodeSpan.end_kind`).
      final_observation: ``next_observations[end - 1]`` when the file has
        that key, else None.
      infos: ``{name: [n, ...] rows of infos/<name>}`` to keep as extra step
        fields (`schema.INFOS`), in their own dtype; None or empty: none.

    Returns:
      ``{field: array stacked over the T + 1 steps}`` with every core and
      intervention step field of `rlif_data.schema` (and `schema.INFOS` when
      ``infos`` is given); T = n if ``final_observation`` is given or the
      episode terminated, else n - 1.

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
    for name, values in (infos or {}).items():
        if len(values) != n:
            raise ValueError(f"row counts differ: observations {n}, infos/{name} {len(values)}")
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

    steps = episodes.build_steps(
        obs,
        act[:num_transitions],
        rew[:num_transitions],
        arrays.end_discounts(num_transitions, terminated),
        terminated=terminated,
        expert_actions=act[:num_transitions],
        # Dataset actions count as expert actions: DAgger/BC read them as labels.
        has_expert_action=np.ones(num_transitions, np.bool_),
        source=schema.Source.DATASET,
    )
    if infos:
        steps[schema.INFOS] = {name: arrays.per_transition(values, num_transitions)
                               for name, values in infos.items()}
    return steps


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
