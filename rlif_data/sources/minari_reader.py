"""Read local Minari datasets (HDF5 backend) with h5py into rlif-data RLDS episodes.

Minari (Farama's successor to D4RL) keeps a dataset in a directory
``<MINARI_DATASETS_PATH>/<dataset_id>/data/`` holding ``metadata.json``
(spaces, env spec, counts) and ``main_data.hdf5`` with one group per episode::

    episode_<id>/                  attrs: id, total_steps, seed (optional), ...
        observations   [T+1, ...]  (a group of such datasets for Dict spaces; an
                                    image Box's frames: one PNG/JPEG byte string per row)
        actions        [T, act_dim]
        rewards        [T]
        terminations   [T] bool
        truncations    [T] bool
        infos/...      (ignored, but for the step fields rlif-data exports there,
                        extra step fields in infos/infos/: `rlif_data.convert.minari_fields`)

How an episode's arrays become RLDS steps, and which spaces are supported,
is the pure part in `rlif_data.sources.minari_steps` (its names are
importable from here too). This module finds the files, checks the metadata
and the file's structure, and reads one episode at a time.

We read the files with h5py rather than ``minari.load_dataset``: it needs no
``MINARI_DATASETS_PATH``, can never try to download, and names the episode
and row of bad data.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any, Iterator, Mapping, Optional, Union

from rlif_data import schema
from rlif_data.convert import minari_fields, minari_frames
from rlif_data.sources.hdf5_io import open_hdf5, read_array
from rlif_data.sources.minari_steps import (  # noqa: F401  (re-exported: the reader's API)
    ACTIONS_KEY,
    INTERVENTION_MODEL,
    META_ACTION_SPACE,
    META_ENV_SPEC,
    META_OBSERVATION_SPACE,
    OBSERVATIONS_KEY,
    OPERATOR,
    REQUIRED_KEYS,
    REWARDS_KEY,
    TERMINATIONS_KEY,
    TRUNCATIONS_KEY,
    MinariFormatError,
    check_episode_rows,
    check_episode_shapes,
    check_spaces,
    env_id_from_metadata,
    episode_metadata,
    image_keys,
    episode_steps,
    space_shapes,
)

PathLike = Union[str, os.PathLike]

# Names of the Minari on-disk layout (file names, not rlif schema fields).
DATA_DIR = "data"
MAIN_DATA_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
EPISODE_PREFIX = "episode_"
SEED_ATTR = "seed"
INFOS_KEY = "infos"

# Keys of Minari's metadata.json read here.
META_DATASET_ID = "dataset_id"
META_DATA_FORMAT = "data_format"
META_TOTAL_EPISODES = "total_episodes"
HDF5_FORMAT = "hdf5"

_EPISODE_NAME = re.compile(re.escape(EPISODE_PREFIX) + r"(\d+)")


class MinariNotFoundError(MinariFormatError, FileNotFoundError):
    """The dataset directory or one of its files does not exist.

    Also a `FileNotFoundError`, so callers can treat it like the D4RL reader's.
    """


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
    check_episode_rows(rows, where)


def _read(group, key: str, where: str, images: Optional[Mapping[str, tuple]] = None,
          full: str = "") -> Any:
    """``group[key][()]`` (a dict for a group, nested), h5py read failures as MinariFormatError.

    Args:
      group, key: the h5py group and the entry in it.
      where: the file and episode, for messages.
      images: image entries by full key ("observations/front") -> frame
        shape; they are decoded from their encoded byte strings
        (`minari_frames.decode_frames`).
      full: the entry's full key (default `key`), for messages and `images`.
    """
    import h5py

    full = full or key
    item = group[key]
    if isinstance(item, h5py.Group):
        return {name: _read(item, name, where, images, f"{full}/{name}") for name in item}
    values = read_array(item, full, where, MinariFormatError)
    if images and full in images:
        return minari_frames.decode_frames(values, images[full], full, where, MinariFormatError)
    return values


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
    # Exported by rlif-data (`rlif_data.convert.minari_writer`): its infos and
    # episode attributes hold the intervention fields and episode metadata.
    exported = schema.FORMAT_VERSION_KEY in metadata
    if exported:
        schema.check_format_version(str(metadata[schema.FORMAT_VERSION_KEY]), str(data_dir))
    expected = space_shapes(metadata, str(data_dir / METADATA_FILE))
    # Frames of image Boxes are byte strings on disk: their shape is checked as they decode.
    images = {k: expected[k] for k in image_keys(metadata, str(data_dir / METADATA_FILE))}
    against = "the metadata's spaces"
    with _open(path) as handle:
        ids = _episode_ids(handle, path, metadata.get(META_TOTAL_EPISODES))
        for index in ids:
            group_name = f"{EPISODE_PREFIX}{index}"
            where = f"{path}, {group_name}"
            _check_episode_layout(handle[group_name], where)
            shapes = _row_shapes(handle[group_name])
            shapes.update({k: images[k] for k in images if k in shapes})
            if not expected:  # no spaces in the metadata: the first episode sets the shapes
                expected, against = shapes, f"{EPISODE_PREFIX}0"
            check_episode_shapes(shapes, expected, where, against)
    return _iter_episodes(path, ids, name, env_id, exported, images)


def _row_shapes(group) -> dict[str, tuple]:
    """The shape of one row of each observation entry and of the actions (from h5py, no read)."""
    import h5py

    obs = group[OBSERVATIONS_KEY]
    if isinstance(obs, h5py.Group):
        shapes = {f"{OBSERVATIONS_KEY}/{n}": tuple(d.shape[1:]) for n, d in obs.items()}
    else:
        shapes = {OBSERVATIONS_KEY: tuple(obs.shape[1:])}
    shapes[ACTIONS_KEY] = tuple(group[ACTIONS_KEY].shape[1:])
    return shapes


def _iter_episodes(
    path: pathlib.Path, ids: list[int], name: str, env_id: str, exported: bool = False,
    images: Optional[Mapping[str, tuple]] = None,
) -> Iterator[dict[str, Any]]:
    with _open(path) as handle:
        for index in ids:
            group_name = f"{EPISODE_PREFIX}{index}"
            where = f"{path}, {group_name}"
            group = handle[group_name]
            columns = {key: _read(group, key, where, images) for key in REQUIRED_KEYS}
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
            if exported:
                infos = _read(group, INFOS_KEY, where) if INFOS_KEY in group else {}
                minari_fields.apply_step_infos(steps, infos if isinstance(infos, dict) else {},
                                               where, MinariFormatError)
                episode.update(minari_fields.metadata_from_attrs(dict(group.attrs), where))
            yield episode
