"""Write rlif-data episodes as a Minari dataset (HDF5 backend) with Minari's own storage writer.

The files are written by ``minari.dataset.minari_storage.MinariStorage``
(what ``minari.create_dataset_from_buffers`` and ``DataCollector`` use), so
``minari.MinariDataset(DIR / "data")`` and ``minari.load_dataset`` read them.
What goes where (intervention fields as infos, metadata as episode
attributes) is `rlif_data.convert.minari_fields`; the way back is
``ingest-minari`` (`rlif_data.sources.minari_reader`).

Camera frames are written by rlif-data itself, as PNG byte strings in the
layout Minari uses for image frames (`rlif_data.convert.minari_frames`: why,
with the Minari source it is based on), so Minari decodes them bit-exact; the
extra step fields (`schema.INFOS`) likewise go in raw, as ``infos/infos/<name>``
(Minari's writer would JPEG-encode a uint8 one).

The directory written is a Minari dataset directory, ``OUT/data/metadata.json``
and ``OUT/data/main_data.hdf5``: with ``MINARI_DATASETS_PATH=ROOT`` and OUT =
``ROOT/<dataset_id>``, ``minari.load_dataset(dataset_id)`` finds it.
"""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

from rlif_data import schema as sc
from rlif_data.convert import minari_fields, minari_frames
from rlif_data.convert.minari_fields import MinariExportError

DATA_DIR = "data"
MAIN_DATA_FILE = "main_data.hdf5"  # MinariStorage's HDF5 file in DATA_DIR
ALGORITHM_NAME = "rlif-data"
RLIF_SOURCE_KEY = "rlif_source"


@dataclasses.dataclass
class MinariWriteResult:
    """What `write_minari` wrote.

    Attributes:
      out: the dataset directory (holding ``data/``).
      dataset_id: the Minari dataset id.
      episodes: episodes written.
      steps: transitions written (Minari's ``total_steps``).
    """

    out: str
    dataset_id: str
    episodes: int
    steps: int


def default_dataset_id(name: str) -> str:
    """A Minari dataset id for a dataset name: ``rlif/<name>-v0``."""
    return f"rlif/{name.replace('/', '-')}-v0"


def check_dataset_id(dataset_id: str) -> str:
    """`dataset_id` unchanged if Minari accepts it (``(namespace/)name-vN``).

    Raises:
      MinariExportError: Minari's parser refuses it; the message says the form.
    """
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except ValueError as e:
        raise MinariExportError(f"dataset id {dataset_id!r}: {e}") from None
    return dataset_id


def _box(shape, dtype=np.float32):
    import gymnasium as gym

    return gym.spaces.Box(-np.inf, np.inf, tuple(shape), dtype)


def _leaf_space(spec: sc.LeafSpec):
    import gymnasium as gym

    if isinstance(spec, sc.ImageSpec):
        return gym.spaces.Box(0, 255, spec.shape, np.uint8)
    return _box(spec.shape)


def observation_space(schema: sc.EpisodeSchema):
    """The Gymnasium space of a schema's observations.

    Unbounded float32 Boxes for arrays; ``Box(0, 255, (H, W, C), uint8)`` for
    camera entries (Minari's image space when H, W >= 32).
    """
    import gymnasium as gym

    obs = schema.observation
    if isinstance(obs, Mapping):
        return gym.spaces.Dict({k: _leaf_space(v) for k, v in obs.items()})
    return _leaf_space(obs)


def _camera_keys(schema: sc.EpisodeSchema) -> tuple[str, ...]:
    obs = schema.observation
    if not isinstance(obs, Mapping):
        return ()
    return tuple(k for k, v in obs.items() if isinstance(v, sc.ImageSpec))


def _write_raw_entries(path: pathlib.Path, index: int, cameras: Mapping[str, np.ndarray],
                       extras: Mapping[str, np.ndarray]) -> None:
    """Add an episode's camera frames and extra step fields to the file Minari wrote."""
    import h5py

    if not cameras and not extras:
        return
    with h5py.File(path, "a") as f:
        group = f[f"episode_{index}"]
        for key, frames in cameras.items():
            minari_frames.write_frames(group["observations"], key, frames)
        if extras:
            target = group["infos"].create_group(sc.INFOS)
            for key, values in extras.items():
                target.create_dataset(key, data=np.ascontiguousarray(values))


def _env_spec(env_id: str):
    """The registered Gymnasium spec of `env_id`, or None (unknown or empty id)."""
    import gymnasium as gym

    if not env_id:
        return None
    try:
        return gym.spec(env_id)
    except gym.error.Error:
        return None


def write_minari(episodes: Iterable[Mapping[str, Any]], out: str, schema: sc.EpisodeSchema, *,
                 dataset_id: Optional[str] = None, source: str = "", description: str = "",
                 progress: Optional[Callable[[int], None]] = None) -> MinariWriteResult:
    """Write episodes as a Minari dataset under ``out/data``.

    Args:
      episodes: in-memory episodes of `schema`, in order (read one at a time).
      out: a new (or empty) directory; the caller makes the write atomic.
      schema: their schema (see `minari_fields.check_exportable`).
      dataset_id: the Minari id; default `default_dataset_id(schema.name)`.
      source: where the episodes came from, kept in ``metadata.json``.
      description: the dataset description.
      progress: called with the number of episodes written so far.

    Returns:
      A `MinariWriteResult`.

    Raises:
      MinariExportError: a schema Minari cannot hold, or an id Minari refuses.
      ValueError: no episodes.
    """
    import minari
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    minari_fields.check_exportable(schema)
    dataset_id = check_dataset_id(dataset_id or default_dataset_id(schema.name))
    episodes = iter(episodes)
    first = next(episodes, None)
    if first is None:
        raise ValueError(f"{source or out}: holds no episodes; nothing to convert")
    data_dir = pathlib.Path(out) / DATA_DIR
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    storage = MinariStorage.new(data_dir, observation_space=observation_space(schema),
                                action_space=_box((schema.action_dim,)),
                                env_spec=_env_spec(str(first.get(sc.ENV_ID) or "")),
                                data_format="hdf5")
    storage.update_metadata({
        "dataset_id": dataset_id,
        "minari_version": minari.__version__,
        "algorithm_name": ALGORITHM_NAME,
        "author": {ALGORITHM_NAME},
        "description": description or f"{source or schema.name} exported by rlif-data: RLDS "
                       "episodes with intervention fields in the per-step infos",
        sc.FORMAT_VERSION_KEY: sc.FORMAT_VERSION,
        sc.SCHEMA_KEY: schema.to_json(),
        RLIF_SOURCE_KEY: source,
    })
    attrs = []
    steps = 0
    cameras = _camera_keys(schema)
    for index, episode in enumerate(itertools.chain([first], episodes)):
        columns = minari_fields.minari_columns(episode)
        # Minari's writer would JPEG-encode the frames: they are added raw below.
        frames = {k: columns["observations"].pop(k) for k in cameras}
        buffer = EpisodeBuffer(id=index, seed=int(episode.get(sc.SEED) or 0),
                               infos=minari_fields.step_infos(episode[sc.STEPS], schema.derived),
                               **columns)
        storage.update_episodes([buffer])
        _write_raw_entries(data_dir / MAIN_DATA_FILE, index, frames,
                           minari_fields.extra_step_infos(episode[sc.STEPS], schema))
        attrs.append(minari_fields.episode_attrs(episode))
        steps += len(columns["actions"])
        if progress is not None:
            progress(index + 1)
    # One pass over the file for every episode's attributes (Minari reopens it per call).
    storage.update_episode_metadata(attrs, range(len(attrs)))
    if cameras or schema.infos:  # Minari sized the file before the frames were added
        storage.update_metadata({"dataset_size": storage.get_size()})
    return MinariWriteResult(str(out), dataset_id, len(attrs), steps)
