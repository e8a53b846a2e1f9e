"""Read human demonstrations and intervention logs from simple NPZ/HDF5 files.

The layout (documented for users in ``docs/demo_layout.md``) is one episode
of T transitions per NPZ file, or per ``episode_<n>`` group of an HDF5 file:

  ==================  ===============  =========  =======================================
  name                shape            required   meaning
  ==================  ===============  =========  =======================================
  observations        [T+1, obs_dim]   yes        o_0..o_T, the final observation included
  actions             [T, act_dim]     yes        the action applied to the environment
  rewards             [T]              no         default zeros
  terminated          scalar bool      no         default False (a truncation)
  interventions       [T] bool         no         the human was in control at step t
  policy_actions      [T, act_dim]     no         what the learner proposed at step t
  ==================  ===============  =========  =======================================

In an HDF5 file ``terminated`` may be a group attribute (or a scalar
dataset), and the optional string attributes ``operator`` and ``env_id``
override the reader's arguments for that episode.

Mapping onto the RLDS schema (`rlif_data.schema`):
  * Without ``interventions`` the file is a pure demonstration: every action
    is the demonstrator's (``has_expert_action`` True, ``expert_action =
    action``, ``source`` = the reader's ``source``) and ``intervention`` is
    False (nobody took over from a learner).
  * With ``interventions``: ``intervention`` = the flags; on intervened steps
    ``expert_action = action``, ``has_expert_action`` True and ``source`` =
    the reader's ``source``; on the others ``source`` is POLICY and
    ``has_expert_action`` False (no expert label exists there).
  * ``policy_action`` = ``policy_actions`` when given; otherwise the applied
    action on non-intervened steps (the policy was in control, so it is the
    policy's proposal) and zeros elsewhere.
  * ``terminated``: discount 0.0 on the last transition and ``is_terminal``;
    otherwise the episode is a truncation and learners bootstrap through it.

NPZ files are loaded with ``allow_pickle=False``: a file holding a pickled
(object) array is rejected, never unpickled. Unknown array names are
rejected too, so that a typo (``intervention`` for ``interventions``) cannot
silently turn an intervention log into a pure demonstration.

The pure logic (`demo_steps`) works on NumPy arrays with no I/O;
`read_demo_episodes` is the thin file layer on top.
"""

from __future__ import annotations

import os
import pathlib
import re
import zipfile
from typing import Any, Iterator, Mapping, Union

import numpy as np

from rlif_data import episodes, errors, schema
from rlif_data import intervention as iv
from rlif_data.sources import arrays as checks
from rlif_data.sources.hdf5_io import open_hdf5, read_array

PathLike = Union[str, os.PathLike]

# Names of the demo layout (array / attribute names, not rlif schema fields).
OBSERVATIONS = "observations"
ACTIONS = "actions"
REWARDS = "rewards"
TERMINATED = "terminated"
INTERVENTIONS = "interventions"
POLICY_ACTIONS = "policy_actions"
REQUIRED_ARRAYS = (OBSERVATIONS, ACTIONS)
OPTIONAL_ARRAYS = (REWARDS, TERMINATED, INTERVENTIONS, POLICY_ACTIONS)
KNOWN_ARRAYS = REQUIRED_ARRAYS + OPTIONAL_ARRAYS
OPERATOR_ATTR = "operator"
ENV_ID_ATTR = "env_id"

NPZ_SUFFIX = ".npz"
HDF5_SUFFIXES = (".h5", ".hdf5")
EPISODE_PREFIX = "episode_"
# `intervention_model` metadata: a person decided the takeovers of a HUMAN log
# ("human", as `intervention.ExternalTakeover`); a pure demonstration has none.
HUMAN_INTERVENTION_MODEL = iv.MODEL_HUMAN
NO_INTERVENTION_MODEL = iv.MODEL_NONE

_EPISODE_NAME = re.compile(re.escape(EPISODE_PREFIX) + r"(\d+)")


class DemoFormatError(errors.SchemaError):
    """A demonstration file is unreadable or does not follow the demo layout."""


class DemoNotFoundError(DemoFormatError, FileNotFoundError):
    """The path does not exist or holds no demonstration files.

    Also a `FileNotFoundError`, like the D4RL reader's missing-file error.
    """


# ---------------------------------------------------------------------------
# Pure logic (NumPy in, no I/O).
# ---------------------------------------------------------------------------


def _numeric(arrays: Mapping[str, np.ndarray], name: str, ndim: int, where: str) -> np.ndarray:
    shape = {1: "[T]", 2: "[T, dim]" if name != OBSERVATIONS else "[T+1, obs_dim]"}[ndim]
    return checks.numeric(arrays[name], name, where, DemoFormatError, ndim=ndim, shape=shape)


def demo_steps(
    arrays: Mapping[str, Any],
    *,
    source: schema.Source = schema.Source.HUMAN,
    where: str = "episode",
) -> dict[str, Any]:
    """Lay out one demo episode's arrays as RLDS steps.

    Args:
      arrays: the episode's arrays by layout name (``observations``,
        ``actions`` and the optional ones; see the module docstring).
      source: who produced the demonstrated / intervened actions (HUMAN, or
        EXPERT for a scripted demonstrator).
      where: context for messages, e.g. "demos/ep_003.npz".

    Returns:
      ``{field: array stacked over the T+1 steps}`` with every core and
      intervention step field of `rlif_data.schema` (built by
      `episodes.build_steps`).

    Raises:
      DemoFormatError: a missing or unknown array, wrong ranks or dtypes,
        lengths that disagree (observations must have T+1 rows for T
        actions), action dims that differ, an episode with no action, or
        NaN/inf in observations, actions, rewards or policy actions (naming
        the array and row).
    """
    missing = [n for n in REQUIRED_ARRAYS if n not in arrays]
    if missing:
        raise DemoFormatError(
            f"{where}: missing array(s) {', '.join(missing)}; a demo episode needs "
            f"{', '.join(REQUIRED_ARRAYS)} (found: {', '.join(sorted(arrays)) or 'none'})"
        )
    unknown = sorted(set(arrays) - set(KNOWN_ARRAYS))
    if unknown:
        raise DemoFormatError(
            f"{where}: unknown array(s) {', '.join(unknown)}; known: {', '.join(KNOWN_ARRAYS)}"
        )
    obs = _numeric(arrays, OBSERVATIONS, 2, where)
    act = _numeric(arrays, ACTIONS, 2, where)
    t, act_dim = act.shape
    if t == 0:
        raise DemoFormatError(f"{where}: the episode has no actions (T = 0)")
    checks.check_rows({ACTIONS: t, OBSERVATIONS: len(obs)}, ACTIONS, where, DemoFormatError,
                      one_more=(OBSERVATIONS,),
                      hint="an episode of T actions needs T+1 observations (the final one included)")
    rew = _numeric(arrays, REWARDS, 1, where) if REWARDS in arrays else np.zeros(t, np.float32)
    flags = (checks.flag_column(arrays[INTERVENTIONS], INTERVENTIONS, where, DemoFormatError)
             if INTERVENTIONS in arrays else None)
    proposals = _numeric(arrays, POLICY_ACTIONS, 2, where) if POLICY_ACTIONS in arrays else None
    columns = {ACTIONS: act, REWARDS: rew, INTERVENTIONS: flags, POLICY_ACTIONS: proposals}
    checks.check_rows({k: len(v) for k, v in columns.items() if v is not None}, ACTIONS, where,
                      DemoFormatError)
    if proposals is not None and proposals.shape[1] != act_dim:
        raise DemoFormatError(
            f"{where}: '{POLICY_ACTIONS}' has dim {proposals.shape[1]} "
            f"but '{ACTIONS}' has {act_dim}"
        )
    terminated = (checks.flag_value(arrays[TERMINATED], TERMINATED, where, DemoFormatError)
                  if TERMINATED in arrays else False)

    # Cast before the NaN check: float64 values beyond float32 overflow to inf.
    obs = obs.astype(np.float32) if obs.dtype.kind == "f" else obs
    act = act.astype(np.float32)
    rew = rew.astype(np.float32)
    for name, arr in ((OBSERVATIONS, obs), (ACTIONS, act), (REWARDS, rew)):
        checks.check_finite(arr, name, where, DemoFormatError)
    if proposals is not None:
        proposals = proposals.astype(np.float32)
        checks.check_finite(proposals, POLICY_ACTIONS, where, DemoFormatError)

    # A pure demonstration is all expert; otherwise only the intervened steps are.
    expert = np.ones(t, np.bool_) if flags is None else flags
    if proposals is None:
        # Where the policy was in control, the applied action was its proposal.
        proposals = np.where(expert[:, None], 0.0, act).astype(np.float32)
    return episodes.build_steps(
        obs,
        act,
        rew,
        checks.end_discounts(t, terminated),
        terminated=terminated,
        intervention=np.zeros(t, np.bool_) if flags is None else flags,
        policy_actions=proposals,
        expert_actions=np.where(expert[:, None], act, 0.0),
        has_expert_action=expert,
        source=np.where(expert, int(source), int(schema.Source.POLICY)),
    )


# ---------------------------------------------------------------------------
# The file layer.
# ---------------------------------------------------------------------------


def _load_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, never unpickling."""
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "Object arrays" in str(e):  # a .npy of dtype=object saved under an .npz name
            raise DemoFormatError(
                f"{path}: a pickled object array (.npy), not an .npz archive of numeric arrays"
            ) from e
        # Anything neither zip nor .npy is, to NumPy, a pickle: refused, never unpickled.
        raise DemoFormatError(
            f"{path}: not a readable .npz file (not an archive, truncated or corrupt): {e}"
        ) from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DemoFormatError(
            f"{path}: not a readable .npz file (truncated or corrupt?): {e}"
        ) from e
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DemoFormatError(f"{path}: a single .npy array, not an .npz archive of named arrays")
    with data:
        arrays = {}
        for name in data.files:
            try:
                arrays[name] = data[name]
            except ValueError as e:
                if "allow_pickle" not in str(e):
                    raise DemoFormatError(f"{path}: cannot read array '{name}': {e}") from e
                # NumPy refuses object arrays without pickle; loading them would run
                # arbitrary code from the file, so we never do.
                raise DemoFormatError(
                    f"{path}: array '{name}' is a pickled object array; demo files must hold "
                    "plain numeric arrays (save with numeric dtypes, not dtype=object)"
                ) from e
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise DemoFormatError(
                    f"{path}: cannot read array '{name}' (truncated or corrupt?): {e}"
                ) from e
        return arrays


def _episode_groups(handle, path: pathlib.Path) -> list[str]:
    import h5py

    names, unknown = [], []
    for name, item in handle.items():
        match = _EPISODE_NAME.fullmatch(name)
        if match and isinstance(item, h5py.Group):
            names.append((int(match.group(1)), name))
        else:
            unknown.append(name)
    if unknown:
        raise DemoFormatError(
            f"{path}: unexpected top-level entries {sorted(unknown)}; a demo HDF5 file holds "
            f"only '{EPISODE_PREFIX}<n>' groups"
        )
    if not names:
        raise DemoFormatError(f"{path}: no '{EPISODE_PREFIX}<n>' groups")
    # Numeric order: episode_10 comes after episode_9.
    return [name for _, name in sorted(names)]


def _attr_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_group(group, where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays of one HDF5 episode group, and its string attributes."""
    import h5py

    arrays: dict[str, np.ndarray] = {}
    for name, item in group.items():
        if not isinstance(item, h5py.Dataset):
            raise DemoFormatError(f"{where}: '{name}' is a group; expected a dataset")
        arrays[name] = read_array(item, name, where, DemoFormatError)
    if TERMINATED in group.attrs:
        if TERMINATED in arrays:
            raise DemoFormatError(
                f"{where}: '{TERMINATED}' is both an attribute and a dataset; keep one"
            )
        arrays[TERMINATED] = np.asarray(group.attrs[TERMINATED])
    attrs = {k: _attr_str(group.attrs[k]) for k in (OPERATOR_ATTR, ENV_ID_ATTR) if k in group.attrs}
    return arrays, attrs


def _metadata(episode_id: str, session_id: str, operator: str, env_id: str,
              intervened: bool, source: schema.Source) -> dict[str, Any]:
    if not intervened:
        model = NO_INTERVENTION_MODEL
    else:
        # Who decided a non-human log's takeovers is unknown: leave the default "".
        model = HUMAN_INTERVENTION_MODEL if source == schema.Source.HUMAN else ""
    return episodes.complete_metadata(
        {
            schema.EPISODE_ID: episode_id,
            schema.SESSION_ID: session_id,
            schema.OPERATOR: operator,
            schema.ENV_ID: env_id,
            schema.INTERVENTION_MODEL: model,
        },
        episode_id,
    )


def demo_files(path_or_dir: PathLike) -> list[pathlib.Path]:
    """The files `read_demo_episodes` reads for a path, in reading order.

    Args:
      path_or_dir: an .npz file, an .h5/.hdf5 file, or a directory of .npz
        files.

    Returns:
      ``[path]`` for a file; the directory's ``*.npz`` files sorted by name.

    Raises:
      DemoNotFoundError: no such path, or a directory without .npz files.
      DemoFormatError: a file with another extension.
    """
    path = pathlib.Path(path_or_dir)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == NPZ_SUFFIX and p.is_file())
        if not files:
            raise DemoNotFoundError(f"{path}: no {NPZ_SUFFIX} files in this directory")
        return files
    if not path.exists():
        raise DemoNotFoundError(f"{path}: no such demo file or directory")
    if path.suffix.lower() not in (NPZ_SUFFIX,) + HDF5_SUFFIXES:
        raise DemoFormatError(
            f"{path}: unknown demo file type; expected {NPZ_SUFFIX}, "
            f"{' or '.join(HDF5_SUFFIXES)}, or a directory of {NPZ_SUFFIX} files"
        )
    return [path]


def read_demo_episodes(
    path_or_dir: PathLike,
    *,
    source: schema.Source = schema.Source.HUMAN,
    operator: str = "",
    env_id: str = "",
) -> Iterator[dict[str, Any]]:
    """Read demonstrations / intervention logs in the demo layout as RLDS episodes.

    The path is resolved (and an HDF5 file opened and its groups listed) when
    this function is called; each episode is loaded and checked lazily while
    iterating.

    Args:
      path_or_dir: a single .npz episode, a directory of .npz episodes (read
        in name order), or an .h5/.hdf5 file of ``episode_<n>`` groups (read
        in numeric order).
      source: who produced the demonstrated / intervened actions.
      operator: stored as each episode's operator, unless an HDF5 group has an
        ``operator`` attribute.
      env_id: stored as each episode's env_id, unless an HDF5 group has an
        ``env_id`` attribute.

    Returns:
      An iterator of episodes ``{schema.STEPS: {field: array}, <metadata>}``.
      Episode ids: the file stem for .npz ("ep_003"), "{file stem}/{group}"
      for HDF5; session_id: the directory name for a directory of .npz, the
      file stem otherwise.

    Raises:
      DemoNotFoundError: no such path, or a directory without .npz files.
      DemoFormatError: an unknown extension, or an HDF5 file that is not
        HDF5 / has no or unexpected groups (at call time); a corrupt .npz, a
        pickled object array, a missing or unknown array, wrong dims, T+1 vs
        T mismatches or NaN/inf (while iterating, naming file, episode, array
        and row).
    """
    source = schema.Source(source)
    files = demo_files(path_or_dir)
    root = pathlib.Path(path_or_dir)
    if files[0].suffix.lower() in HDF5_SUFFIXES:
        path = files[0]
        with _open_h5(path) as handle:
            groups = _episode_groups(handle, path)
        return _iter_hdf5(path, groups, source, operator, env_id)
    session = root.name if root.is_dir() else root.stem
    return _iter_npz(files, session, source, operator, env_id)


def _open_h5(path: pathlib.Path):
    return open_hdf5(path, DemoFormatError)


def _iter_npz(files: list[pathlib.Path], session: str, source: schema.Source, operator: str,
              env_id: str) -> Iterator[dict[str, Any]]:
    for path in files:
        arrays = _load_npz(path)
        steps = demo_steps(arrays, source=source, where=str(path))
        episode = {schema.STEPS: steps}
        episode.update(_metadata(path.stem, session, operator, env_id, INTERVENTIONS in arrays,
                                 source))
        yield episode


def _iter_hdf5(path: pathlib.Path, groups: list[str], source: schema.Source, operator: str,
               env_id: str) -> Iterator[dict[str, Any]]:
    with _open_h5(path) as handle:
        for name in groups:
            where = f"{path}, {name}"
            arrays, attrs = _read_group(handle[name], where)
            steps = demo_steps(arrays, source=source, where=where)
            episode = {schema.STEPS: steps}
            episode.update(_metadata(
                f"{path.stem}/{name}", path.stem, attrs.get(OPERATOR_ATTR, operator),
                attrs.get(ENV_ID_ATTR, env_id), INTERVENTIONS in arrays, source,
            ))
            yield episode
