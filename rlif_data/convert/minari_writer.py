"""Write rlif-data episodes as a Minari dataset (HDF5 backend) with Minari's own storage writer.

The files are written by ``minari.dataset.minari_storage.MinariStorage``
(what ``minari.create_dataset_from_buffers`` and ``DataCollector`` use), so
``minari.MinariDataset(DIR / "data")`` and ``minari.load_dataset`` read them.
What goes where (intervention fields as infos, metadata as episode
attributes) is `rlif_data.convert.minari_fields`; the way back is
``ingest-minari`` (`rlif_data.sources.minari_reader`).

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
from rlif_data.convert import minari_fields
from rlif_data.convert.minari_fields import MinariExportError

DATA_DIR = "data"
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


def observation_space(schema: sc.EpisodeSchema):
    """The Gymnasium space of a schema's observations (unbounded float32 Boxes)."""
    import gymnasium as gym

    obs = schema.observation
    if isinstance(obs, Mapping):
        return gym.spaces.Dict({k: _box(v.shape) for k, v in obs.items()})
    return _box(obs.shape)


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
      schema: their schema (no camera entries, see
        `minari_fields.check_exportable`).
      dataset_id: the Minari id; default `default_dataset_id(schema.name)`.
      source: where the episodes came from, kept in ``metadata.json``.
      description: the dataset description.
      progress: called with the number of episodes written so far.

    Returns:
      A `MinariWriteResult`.

    Raises:
      MinariExportError: camera frames, or an id Minari refuses.
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
    for index, episode in enumerate(itertools.chain([first], episodes)):
        columns = minari_fields.minari_columns(episode)
        buffer = EpisodeBuffer(id=index, seed=int(episode.get(sc.SEED) or 0),
                               infos=minari_fields.step_infos(episode[sc.STEPS], schema.derived),
                               **columns)
        storage.update_episodes([buffer])
        attrs.append(minari_fields.episode_attrs(episode))
        steps += len(columns["actions"])
        if progress is not None:
            progress(index + 1)
    # One pass over the file for every episode's attributes (Minari reopens it per call).
    storage.update_episode_metadata(attrs, range(len(attrs)))
    return MinariWriteResult(str(out), dataset_id, len(attrs), steps)
