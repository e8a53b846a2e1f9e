"""Read local Minari datasets (HDF5 backend) with h5py into rlif-data RLDS episodes.

Minari (Farama's successor to D4RL) keeps a dataset in a directory
``<MINARI_DATASETS_PATH>/<dataset_id>/data/`` holding ``metadata.json``
(spaces, env spec, counts) and ``main_data.hdf5`` with one group per episode::

    episode_<id>/                  attrs: id, total_steps, seed (optional), ...
        observations   [T+1, ...]  (a group of such datasets for Dict spaces)
        actions        [T, act_dim]
        rewards        [T]
        terminations   [T] bool
        truncations    [T] bool
        infos/...      (ignored)

Unlike D4RL, Minari stores the T+1 observations of an episode (the final one
included), so no row is ever dropped or invented: the episode maps one to one
onto RLDS steps (see `rlif_data.schema`):

  * ``terminated`` is ``terminations[-1]``; the transition into it gets
    discount 0.0 and the final step ``is_terminal``. A last row with both
    flags set counts as a termination (as in D4RL). A last row with neither
    flag (a recording that stopped) is treated as a truncation: discount 1.0,
    learners bootstrap through it.
  * a termination or truncation flag on any earlier row is an error: Minari
    ends an episode at the first one, so such a file is damaged.
  * every action counts as the expert's (``has_expert_action`` True,
    ``expert_action == action``), ``source`` is ``Source.DATASET``, and there
    are no interventions, as for the D4RL reader.

Supported spaces: Box observations of any rank (float data is stored as
float32) and Dict observations of Boxes (one level, like
`schema.EpisodeSchema`); Box actions of shape (act_dim,). Image Boxes (Minari
stores them JPEG-encoded), Tuple/Text/Discrete spaces and the Arrow backend
are rejected with a `MinariFormatError`.

We read the files with h5py rather than ``minari.load_dataset``: it needs no
``MINARI_DATASETS_PATH``, can never try to download, and names the episode
and row of bad data. The pure logic (`episode_steps`, `episode_metadata`,
`env_id_from_metadata`, `check_spaces`) works on NumPy arrays and dicts with
no I/O; `read_minari_episodes` is the thin I/O layer on top.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any, Iterator, Mapping, Optional, Union

import numpy as np

from rlif_data import episodes, errors, schema
from rlif_data import intervention as iv
from rlif_data.sources.hdf5_io import check_finite, open_hdf5

PathLike = Union[str, os.PathLike]

# Names of the Minari on-disk layout (file names and HDF5 keys, not rlif schema fields).
DATA_DIR = "data"
MAIN_DATA_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
EPISODE_PREFIX = "episode_"
OBSERVATIONS_KEY = "observations"
ACTIONS_KEY = "actions"
REWARDS_KEY = "rewards"
TERMINATIONS_KEY = "terminations"
TRUNCATIONS_KEY = "truncations"
REQUIRED_KEYS = (OBSERVATIONS_KEY, ACTIONS_KEY, REWARDS_KEY, TERMINATIONS_KEY, TRUNCATIONS_KEY)
SEED_ATTR = "seed"

# Keys of Minari's metadata.json.
META_DATASET_ID = "dataset_id"
META_DATA_FORMAT = "data_format"
META_ENV_SPEC = "env_spec"
META_TOTAL_EPISODES = "total_episodes"
META_OBSERVATION_SPACE = "observation_space"
META_ACTION_SPACE = "action_space"
HDF5_FORMAT = "hdf5"

# Episode metadata of imported Minari data.
OPERATOR = "minari"
INTERVENTION_MODEL = iv.MODEL_NONE

_EPISODE_NAME = re.compile(re.escape(EPISODE_PREFIX) + r"(\d+)")


class MinariFormatError(errors.SchemaError):
    """A Minari dataset is unreadable or does not follow the Minari HDF5 layout."""


class MinariNotFoundError(MinariFormatError, FileNotFoundError):
    """The dataset directory or one of its files does not exist.

    Also a `FileNotFoundError`, so callers can treat it like the D4RL reader's.
    """


# ---------------------------------------------------------------------------
# Pure logic (NumPy / dicts in, no I/O).
# ---------------------------------------------------------------------------


def _space(metadata: Mapping[str, Any], key: str, where: str) -> Optional[dict]:
    """The serialized space ``metadata[key]`` as a dict (Minari stores a JSON string)."""
    raw = metadata.get(key)
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise MinariFormatError(f"{where}: '{key}' is not valid JSON: {e}") from e
    if not isinstance(raw, Mapping) or "type" not in raw:
        raise MinariFormatError(f"{where}: '{key}' is not a serialized Gymnasium space: {raw!r}")
    return dict(raw)


def _is_image_box(space: Mapping[str, Any]) -> bool:
    """Minari's own test (`is_image_space`): such Boxes are stored as JPEG bytes."""
    shape = list(space.get("shape", []))
    low, high = np.asarray(space.get("low", 0)), np.asarray(space.get("high", 0))
    return (
        space.get("dtype") == "uint8"
        and len(shape) in (2, 3)
        and shape[0] >= 32
        and shape[1] >= 32
        and bool(np.all(low == 0))
        and bool(np.all(high == 255))
    )


def _check_box(space: Mapping[str, Any], what: str, where: str) -> None:
    if space["type"] != "Box":
        raise MinariFormatError(
            f"{where}: {what} is a {space['type']} space; only Box spaces are supported"
        )
    if _is_image_box(space):
        raise MinariFormatError(
            f"{where}: {what} is an image Box {space.get('shape')}, which Minari stores "
            "JPEG-encoded; image observations are not supported by this reader"
        )


def check_spaces(metadata: Mapping[str, Any], where: str) -> None:
    """Reject observation/action spaces this reader cannot map onto the schema.

    Args:
      metadata: the parsed ``metadata.json``; spaces absent from it are not
        checked (the HDF5 structure checks still apply).
      where: the metadata file, for messages.

    Raises:
      MinariFormatError: observations that are neither a Box nor a Dict of
        Boxes, image Boxes, or actions that are not a Box of rank 1.
    """
    obs = _space(metadata, META_OBSERVATION_SPACE, where)
    if obs is not None:
        if obs["type"] == "Dict":
            for name, sub in dict(obs.get("subspaces", {})).items():
                _check_box(sub, f"observation entry {name!r}", where)
        else:
            _check_box(obs, "the observation space", where)
    act = _space(metadata, META_ACTION_SPACE, where)
    if act is not None:
        _check_box(act, "the action space", where)
        if len(act.get("shape", [])) != 1:
            raise MinariFormatError(
                f"{where}: the action space has shape {act.get('shape')}; "
                "only vector actions (act_dim,) are supported"
            )


def env_id_from_metadata(metadata: Mapping[str, Any]) -> str:
    """The Gymnasium env id recorded in a Minari ``metadata.json``.

    Args:
      metadata: the parsed ``metadata.json``.

    Returns:
      The ``env_spec`` id (e.g. "Hopper-v5"), or "" when the dataset was made
      without an environment.

    Raises:
      MinariFormatError: ``env_spec`` is present but not a valid spec.
    """
    spec = metadata.get(META_ENV_SPEC)
    if spec is None:
        return ""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise MinariFormatError(f"'{META_ENV_SPEC}' in metadata is not valid JSON: {e}") from e
    if spec is None:
        return ""
    if not isinstance(spec, Mapping):
        raise MinariFormatError(f"'{META_ENV_SPEC}' in metadata is not an env spec: {spec!r}")
    return str(spec.get("id") or "")


def _flags(values: Any, key: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MinariFormatError(f"{where}: '{key}' must have shape [T], got {arr.shape}")
    return arr.astype(bool)


def _finite(values: np.ndarray, key: str, where: str) -> np.ndarray:
    """``values`` unchanged, or a MinariFormatError naming the first bad row."""
    return check_finite(values, key, where, MinariFormatError)


def _observation_leaf(values: Any, key: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise MinariFormatError(f"{where}: '{key}' must be numeric, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise MinariFormatError(
            f"{where}: '{key}' must have shape [T+1, ...], got {arr.shape}"
        )
    # Checked (by the caller) after the cast: float64 beyond float32 overflows to inf.
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr


def episode_steps(
    observations: Any,
    actions: Any,
    rewards: Any,
    terminations: Any,
    truncations: Any,
    *,
    where: str = "episode",
) -> dict[str, Any]:
    """Lay out one Minari episode as RLDS steps.

    Args:
      observations: [T+1, ...] array, or a dict of such arrays (Dict space).
      actions: [T, act_dim] actions.
      rewards: [T] rewards.
      terminations, truncations: [T] flags; only the last row may be set.
      where: context for messages, e.g. "data/main_data.hdf5, episode_3".

    Returns:
      ``{field: array stacked over the T+1 steps}`` with every core and
      intervention step field of `rlif_data.schema` (built by
      `episodes.build_steps`).

    Raises:
      MinariFormatError: lengths that disagree (observations != actions + 1),
        wrong ranks or dtypes, an episode with no action, a termination or
        truncation before the last row, or NaN/inf in observations, actions or
        rewards (naming key and row).
    """
    if isinstance(observations, Mapping):
        if not observations:
            raise MinariFormatError(f"{where}: '{OBSERVATIONS_KEY}' is an empty group")
        obs: Any = {
            name: _observation_leaf(v, f"{OBSERVATIONS_KEY}/{name}", where)
            for name, v in observations.items()
        }
        obs_rows = {f"{OBSERVATIONS_KEY}/{name}": len(v) for name, v in obs.items()}
    else:
        obs = _observation_leaf(observations, OBSERVATIONS_KEY, where)
        obs_rows = {OBSERVATIONS_KEY: len(obs)}

    act = np.asarray(actions)
    if act.ndim != 2 or act.dtype.kind not in "biuf":
        raise MinariFormatError(
            f"{where}: '{ACTIONS_KEY}' must be a numeric [T, act_dim] array, "
            f"got shape {act.shape} dtype {act.dtype}"
        )
    act = act.astype(np.float32)
    rew = np.asarray(rewards)
    if rew.ndim != 1 or rew.dtype.kind not in "biuf":
        raise MinariFormatError(
            f"{where}: '{REWARDS_KEY}' must be a numeric [T] array, "
            f"got shape {rew.shape} dtype {rew.dtype}"
        )
    rew = rew.astype(np.float32)
    term = _flags(terminations, TERMINATIONS_KEY, where)
    trunc = _flags(truncations, TRUNCATIONS_KEY, where)

    t = len(act)
    if t == 0:
        raise MinariFormatError(f"{where}: the episode has no actions (T = 0)")
    for key, rows in obs_rows.items():
        if rows != t + 1:
            raise MinariFormatError(
                f"{where}: '{key}' has {rows} rows but '{ACTIONS_KEY}' has {t}; "
                "Minari stores T+1 observations for T actions"
            )
    for key, arr in ((REWARDS_KEY, rew), (TERMINATIONS_KEY, term), (TRUNCATIONS_KEY, trunc)):
        if len(arr) != t:
            raise MinariFormatError(
                f"{where}: '{key}' has {len(arr)} rows but '{ACTIONS_KEY}' has {t}"
            )
    # Values last: the error for a wrong layout is clearer than a NaN row number in it.
    leaves = obs.items() if isinstance(obs, dict) else [("", obs)]
    for name, leaf in leaves:
        _finite(leaf, f"{OBSERVATIONS_KEY}/{name}" if name else OBSERVATIONS_KEY, where)
    _finite(act, ACTIONS_KEY, where)
    _finite(rew, REWARDS_KEY, where)
    early = np.flatnonzero((term | trunc)[:-1])
    if len(early):
        raise MinariFormatError(
            f"{where}: termination/truncation flag set at row {int(early[0])} before the "
            f"last row {t - 1}; an episode must end at its first termination or truncation"
        )

    terminated = bool(term[-1])
    discounts = np.ones(t, np.float32)
    if terminated:
        discounts[-1] = 0.0  # no bootstrapping through a true termination
    return episodes.build_steps(
        obs,
        act,
        rew,
        discounts,
        terminated=terminated,
        expert_actions=act,
        # Dataset actions count as expert actions: DAgger/BC read them as labels.
        has_expert_action=np.ones(t, np.bool_),
        source=schema.Source.DATASET,
    )


def episode_metadata(dataset_id: str, index: int, env_id: str, seed: int = 0) -> dict[str, Any]:
    """Episode metadata of an imported Minari episode.

    Args:
      dataset_id: the Minari dataset id, e.g. "mujoco/hopper/expert-v0".
      index: the Minari episode id.
      env_id: the environment the data belongs to ("" if unknown).
      seed: the reset seed Minari recorded for the episode (0 if none).

    Returns:
      A value for every field of `schema.EPISODE_METADATA_FIELDS`.
    """
    return episodes.complete_metadata(
        {
            schema.EPISODE_ID: f"{dataset_id}/{index}",
            schema.SESSION_ID: dataset_id,
            schema.OPERATOR: OPERATOR,
            schema.INTERVENTION_MODEL: INTERVENTION_MODEL,
            schema.ENV_ID: env_id,
            schema.SEED: int(seed),
        },
        f"{dataset_id}/{index}",
    )


# ---------------------------------------------------------------------------
# The file layer.
# ---------------------------------------------------------------------------


def find_minari_data_dir(dataset_dir: PathLike, dataset_id: Optional[str] = None) -> pathlib.Path:
    """The directory holding ``metadata.json`` and ``main_data.hdf5``.

    Looked for, in order: ``<dataset_dir>/data``, ``<dataset_dir>`` itself,
    and (with ``dataset_id``) ``<dataset_dir>/<dataset_id>/data``, so
    ``dataset_dir`` may be the dataset's directory, its ``data`` directory, or
    a ``MINARI_DATASETS_PATH`` root.

    Args:
      dataset_dir: see above.
      dataset_id: the Minari dataset id, when ``dataset_dir`` is a root.

    Returns:
      The data directory; both files exist in it.

    Raises:
      MinariNotFoundError: ``dataset_dir`` does not exist, no candidate holds
        Minari files, or one of the two files is missing.
    """
    root = pathlib.Path(dataset_dir)
    if not root.is_dir():
        raise MinariNotFoundError(f"{root}: no such Minari dataset directory")
    candidates = [root / DATA_DIR, root]
    if dataset_id:
        candidates.append(root / dataset_id / DATA_DIR)
    for cand in candidates:
        if (cand / METADATA_FILE).is_file() or (cand / MAIN_DATA_FILE).is_file():
            for name in (METADATA_FILE, MAIN_DATA_FILE):
                if not (cand / name).is_file():
                    raise MinariNotFoundError(
                        f"{cand / name}: missing; a Minari HDF5 dataset directory holds "
                        f"{METADATA_FILE} and {MAIN_DATA_FILE}"
                    )
            return cand
    raise MinariNotFoundError(
        f"{root}: not a Minari dataset; looked for {METADATA_FILE} and {MAIN_DATA_FILE} in "
        + ", ".join(str(c) for c in candidates)
    )


def read_minari_metadata(data_dir: PathLike) -> dict[str, Any]:
    """Parse ``<data_dir>/metadata.json`` and check its backend and spaces.

    Args:
      data_dir: a directory returned by `find_minari_data_dir`.

    Returns:
      The metadata dict, as Minari wrote it.

    Raises:
      MinariNotFoundError: no metadata file.
      MinariFormatError: not JSON / not an object, a non-HDF5 backend, or
        unsupported spaces (see `check_spaces`).
    """
    path = pathlib.Path(data_dir) / METADATA_FILE
    try:
        text = path.read_text()
    except FileNotFoundError as e:
        raise MinariNotFoundError(f"{path}: missing") from e
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as e:
        raise MinariFormatError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(metadata, dict):
        raise MinariFormatError(f"{path}: expected a JSON object, got {type(metadata).__name__}")
    data_format = metadata.get(META_DATA_FORMAT, HDF5_FORMAT)  # older Minari: HDF5 only
    if data_format != HDF5_FORMAT:
        raise MinariFormatError(
            f"{path}: data_format is {data_format!r}; only the {HDF5_FORMAT!r} backend is "
            "supported (re-create the dataset with data_format='hdf5')"
        )
    check_spaces(metadata, str(path))
    return metadata


def _open(path: pathlib.Path):
    return open_hdf5(path, MinariFormatError)


def _episode_ids(handle, path: pathlib.Path, total: Optional[int]) -> list[int]:
    """Episode ids of the file in id order, checked to be 0..N-1."""
    ids, unknown = [], []
    for name in handle.keys():
        match = _EPISODE_NAME.fullmatch(name)
        if match:
            ids.append(int(match.group(1)))
        else:
            unknown.append(name)
    if unknown:
        raise MinariFormatError(
            f"{path}: unexpected top-level entries {sorted(unknown)}; a Minari file holds "
            f"only '{EPISODE_PREFIX}<id>' groups"
        )
    # Numeric order: "episode_10" sorts after "episode_9", not after "episode_1".
    ids.sort()
    if ids != list(range(len(ids))):
        missing = sorted(set(range(max(ids, default=-1) + 1)) - set(ids))
        raise MinariFormatError(
            f"{path}: episode ids must be 0..{len(ids) - 1}; missing {EPISODE_PREFIX}"
            f"{missing[0] if missing else '?'}"
        )
    if total is not None and int(total) != len(ids):
        raise MinariFormatError(
            f"{path}: {METADATA_FILE} says {total} episodes but the file holds {len(ids)} "
            "(an interrupted write?)"
        )
    return ids


def _check_episode_layout(group, where: str) -> None:
    """Required keys present, observations a dataset or a one-level group of datasets."""
    import h5py

    if not isinstance(group, h5py.Group):
        raise MinariFormatError(f"{where}: expected a group, found a dataset")
    missing = [k for k in REQUIRED_KEYS if k not in group]
    if missing:
        raise MinariFormatError(
            f"{where}: missing key(s) {', '.join(missing)}; a Minari episode has "
            f"{', '.join(REQUIRED_KEYS)} (found: {', '.join(sorted(group.keys())) or 'none'})"
        )
    for key in REQUIRED_KEYS[1:]:
        if not isinstance(group[key], h5py.Dataset):
            raise MinariFormatError(f"{where}: '{key}' must be a dataset, found a group")
    obs = group[OBSERVATIONS_KEY]
    if isinstance(obs, h5py.Group):
        for name, item in obs.items():
            if not isinstance(item, h5py.Dataset):
                raise MinariFormatError(
                    f"{where}: '{OBSERVATIONS_KEY}/{name}' is a group; only one level of "
                    "Dict observations is supported"
                )
    # Lengths are cheap to compare from the shapes: fail before any data is read.
    rows = {
        key: group[key].shape[0] if group[key].shape else 0 for key in REQUIRED_KEYS[1:]
    }
    if isinstance(obs, h5py.Group):
        rows.update({f"{OBSERVATIONS_KEY}/{n}": (d.shape or (0,))[0] for n, d in obs.items()})
    else:
        rows[OBSERVATIONS_KEY] = (obs.shape or (0,))[0]
    t = rows[ACTIONS_KEY]
    for key, n in rows.items():
        want = t + 1 if key.startswith(OBSERVATIONS_KEY) else t
        if n != want:
            raise MinariFormatError(
                f"{where}: '{key}' has {n} rows but '{ACTIONS_KEY}' has {t} "
                f"(Minari stores T+1 observations and T actions, rewards and flags)"
            )


def _read(group, key: str, where: str) -> Any:
    """``group[key][()]`` (a dict for a group), h5py read failures as MinariFormatError."""
    import h5py

    item = group[key]
    try:
        if isinstance(item, h5py.Group):
            return {name: np.asarray(d[()]) for name, d in item.items()}
        return np.asarray(item[()])
    except (OSError, RuntimeError) as e:
        raise MinariFormatError(f"{where}: cannot read '{key}' (corrupt file?): {e}") from e


def read_minari_episodes(
    dataset_dir: PathLike, *, dataset_id: Optional[str] = None
) -> Iterator[dict[str, Any]]:
    """Read a local Minari dataset (HDF5 backend) as rlif-data RLDS episodes.

    Works offline on the files alone (no ``minari`` import, nothing is ever
    downloaded). The metadata, the file's structure and every episode's keys
    and lengths are checked when this function is called; the episode data
    (and its NaN/inf check) is read lazily, one episode at a time.

    Args:
      dataset_dir: the dataset directory (``<root>/<dataset_id>``), its
        ``data`` directory, or a ``MINARI_DATASETS_PATH`` root together with
        ``dataset_id`` (see `find_minari_data_dir`).
      dataset_id: the id used in episode ids and as session_id; defaults to
        the ``dataset_id`` in ``metadata.json`` (else the directory name).

    Returns:
      An iterator of episodes ``{schema.STEPS: {field: array}, <metadata>}``
      in episode-id order; episode ``i`` has id "{dataset_id}/{i}", operator
      "minari", env_id from the metadata's env spec and the recorded seed.

    Raises:
      MinariNotFoundError: the directory or one of its files is missing.
      MinariFormatError: bad metadata, an unsupported backend or space, a
        file that is not HDF5 / truncated / corrupt, missing episodes or
        keys, lengths that disagree (at call time); a termination before the
        last row or NaN/inf in observations, actions or rewards (while
        iterating, naming file, episode, key and row).
    """
    data_dir = find_minari_data_dir(dataset_dir, dataset_id)
    metadata = read_minari_metadata(data_dir)
    env_id = env_id_from_metadata(metadata)
    name = dataset_id or str(metadata.get(META_DATASET_ID) or pathlib.Path(data_dir).parent.name)
    path = data_dir / MAIN_DATA_FILE
    with _open(path) as handle:
        ids = _episode_ids(handle, path, metadata.get(META_TOTAL_EPISODES))
        for index in ids:
            group_name = f"{EPISODE_PREFIX}{index}"
            _check_episode_layout(handle[group_name], f"{path}, {group_name}")
    return _iter_episodes(path, ids, name, env_id)


def _iter_episodes(
    path: pathlib.Path, ids: list[int], name: str, env_id: str
) -> Iterator[dict[str, Any]]:
    with _open(path) as handle:
        for index in ids:
            group_name = f"{EPISODE_PREFIX}{index}"
            where = f"{path}, {group_name}"
            group = handle[group_name]
            columns = {key: _read(group, key, where) for key in REQUIRED_KEYS}
            steps = episode_steps(
                columns[OBSERVATIONS_KEY],
                columns[ACTIONS_KEY],
                columns[REWARDS_KEY],
                columns[TERMINATIONS_KEY],
                columns[TRUNCATIONS_KEY],
                where=where,
            )
            seed = group.attrs.get(SEED_ATTR)
            episode = {schema.STEPS: steps}
            episode.update(episode_metadata(name, index, env_id, 0 if seed is None else int(seed)))
            yield episode
