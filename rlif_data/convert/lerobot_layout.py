"""The LeRobotDataset v3.0 layout, and rlif-data episodes as LeRobot frames (pure, no I/O).

The layout (LeRobot's ``CODEBASE_VERSION = "v3.0"``, the same from lerobot
0.4.0 to its current main branch; names from ``lerobot/datasets/utils.py``)::

    meta/info.json                            codebase_version, fps, features, totals, paths
    meta/stats.json                           per feature: min, max, mean, std, count, q01..q99
    meta/tasks.parquet                        task (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet  one row per episode (+ our episode metadata)
    data/chunk-000/file-000.parquet           one row per frame, episodes one after another
    meta/rlif.json                            ours: schema and format version (LeRobot ignores it)

Camera frames are ``dtype: image`` features: PNG bytes inside the data
Parquet, as LeRobot's own writer embeds them, not videos. PNG is lossless, so
frames round-trip bit-exact, and no video encoder is needed (neither PyAV nor
imageio-ffmpeg is in this project's environment).

**One frame per RLDS step.** An episode of T transitions is T+1 frames: frame
t holds o_t, a_t and r_t (``next.reward``: the reward that followed a_t); the
last frame holds o_T with the RLDS final step's zero action. That keeps the
final observation (LeRobot has no next-observation column) and makes the
round trip exact; ``rlds.is_last`` marks the final frame, which behaviour
cloning should skip. LeRobot's RL buffer reads ``next.done``: it is set on
the last transition of a terminated episode and on the final frame, and
``next.truncated`` on the last transition of a truncated one, so that buffer
bootstraps through a time limit but not through a termination.

Intervention fields follow LeRobot's HIL-SERL naming: its actor records
``complementary_info.is_intervention``; the other RLIF step fields go under
the same prefix (``complementary_info.policy_action`` ...), RLDS' own flags
under ``rlds.``. Episode metadata are extra columns ``rlif/<field>`` of the
episodes table.

The extra step fields (`schema.INFOS`, e.g. D4RL's qpos) are one column
``infos.<name>`` each, in their own dtype (float64 stays float64) and shape,
declared in info.json as LeRobot declares features (``(1,)`` for a scalar;
2-D and larger ones are nested fixed-size lists, which LeRobot loads as
``datasets.Array2D`` ...). Like every step field they fill all T+1 frames:
the final frame holds the final step's zeros, as it holds o_T and the zero
action. The ``infos.`` prefix is no LeRobot column's, so no name can collide.

A LeRobot dataset not written by rlif-data (no ``meta/rlif.json``) is read by
name: ``observation.state`` and ``observation.images.<cam>`` (image features
only), ``action``, and when present ``next.reward``, ``next.done`` and
``complementary_info.is_intervention``; see `foreign_episode`.

Why this module is over ~450 lines: it is the whole LeRobot v3.0 layout as
pure functions (every column name, the info/episodes/stats tables, frames to
episodes and back); splitting it would scatter one file format.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rlif_data import episodes, errors
from rlif_data import intervention as iv
from rlif_data import schema as sc
from rlif_data.sources import arrays

# ---------------------------------------------------------------------------
# Files and info.json (LeRobot's names).
# ---------------------------------------------------------------------------
CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_DIR = "data"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = DATA_DIR + "/" + CHUNK_FILE + ".parquet"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
RLIF_META_PATH = "meta/rlif.json"  # ours
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILE_MB = 100  # LeRobot starts a new data file past this size
VIDEO_FILE_MB = 200
DEFAULT_FPS = 10  # when the data carries no timestamps to tell the rate
DEFAULT_TASK = "rlif-data episode"  # the task of episodes without an env id

# Frame bookkeeping columns every LeRobot dataset has (`DEFAULT_FEATURES`).
TIMESTAMP = "timestamp"
FRAME_INDEX = "frame_index"
EPISODE_INDEX = "episode_index"
INDEX = "index"
TASK_INDEX = "task_index"
# Columns of the episodes table.
TASKS = "tasks"
LENGTH = "length"
DATA_CHUNK = "data/chunk_index"
DATA_FILE = "data/file_index"
FROM_INDEX = "dataset_from_index"
TO_INDEX = "dataset_to_index"
META_CHUNK = "meta/episodes/chunk_index"
META_FILE = "meta/episodes/file_index"
EPISODE_META_PREFIX = "rlif/"

# Feature names (LeRobot's constants: OBS_STATE, OBS_IMAGES, ACTION, REWARD, DONE, TRUNCATED).
OBS_PREFIX = "observation."
OBS_STATE = "observation.state"
OBS_IMAGES_PREFIX = "observation.images."
ACTION = "action"
NEXT_REWARD = "next.reward"
NEXT_DONE = "next.done"
NEXT_TRUNCATED = "next.truncated"
INFO_PREFIX = "complementary_info."
INTERVENTION_COLUMN = INFO_PREFIX + "is_intervention"  # HIL-SERL's name
RLDS_PREFIX = "rlds."
INFOS_PREFIX = sc.INFOS + "."  # the extra step fields: infos.<name>
# An extra field's name as a column suffix: what `schema.check_info_spec` allows
# (restated: the column name must stay safe even if that rule is widened).
_INFO_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")

IMAGE = "image"
VIDEO = "video"
IMAGE_NAMES = ["height", "width", "channels"]
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
IMAGE_STAT_FRAMES = 100
# Foreign datasets: the operator named in their episodes.
FOREIGN_OPERATOR = "lerobot"


class LeRobotFormatError(errors.SchemaError):
    """A LeRobot dataset is unreadable, or data does not fit the LeRobot layout."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One LeRobot feature (a data Parquet column) and the rlif step field it holds.

    Attributes:
      name: the LeRobot feature name, e.g. "observation.images.front".
      field: the rlif step field (a `schema` constant), "" for columns
        derived on export (``next.done``) or bookkeeping.
      dtype: "float32", "int64", "bool" or "image"; an extra step field's
        own dtype (`schema.INFO_DTYPES`).
      shape: the per-frame LeRobot shape; scalars are ``(1,)``.
      leaf: the observation entry for a dict observation, the name of an
        extra step field (`schema.INFOS`); "" otherwise.
    """

    name: str
    field: str
    dtype: str
    shape: tuple[int, ...]
    leaf: str = ""

    @property
    def scalar(self) -> bool:
        """One value per frame (LeRobot shape (1,), stored as a plain column)."""
        return self.shape == (1,) and self.dtype != IMAGE

    def feature(self) -> dict[str, Any]:
        """This column's entry in info.json's ``features``."""
        return {"dtype": self.dtype, "shape": list(self.shape),
                "names": list(IMAGE_NAMES) if self.dtype == IMAGE else None}


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a dataset's frames map onto rlif step fields.

    Attributes:
      schema: the rlif schema of the episodes.
      columns: the data columns holding step fields (bookkeeping excluded).
      own: written by rlif-data (every step field is stored); False for a
        foreign dataset, whose missing fields get defaults.
    """

    schema: sc.EpisodeSchema
    columns: tuple[Column, ...]
    own: bool

    def column(self, field: str) -> Optional[Column]:
        """The column of a non-observation step field, or None."""
        return next((c for c in self.columns if c.field == field), None)


def _observation_column(key: str, spec: sc.LeafSpec) -> Column:
    if isinstance(spec, sc.ImageSpec):
        return Column(OBS_IMAGES_PREFIX + key, sc.OBSERVATION, IMAGE, tuple(spec.shape), key)
    if len(spec.shape) != 1:
        what = f"observation entry {key!r}" if key else "the observation"
        raise LeRobotFormatError(
            f"{what} has shape {tuple(spec.shape)}; LeRobot export takes vector entries (n,) "
            "and HxWxC camera frames")
    name = OBS_STATE if key in ("", sc.STATE_KEY) else OBS_PREFIX + key
    return Column(name, sc.OBSERVATION, "float32", tuple(spec.shape), key)


def info_column(name: str, spec: sc.ArraySpec) -> Column:
    """The data column of one extra step field (`schema.INFOS`): ``infos.<name>``.

    Args:
      name: the field's name inside `schema.INFOS`.
      spec: its `ArraySpec`; a 0-d field is LeRobot shape ``(1,)``.

    Returns:
      A `Column` whose `Column.field` is `schema.INFOS` and `Column.leaf` `name`.

    Raises:
      LeRobotFormatError: a name that is not a safe column suffix (e.g. with
        '/', which LeRobot refuses).
    """
    if not isinstance(name, str) or not _INFO_COLUMN_NAME.fullmatch(name):
        raise LeRobotFormatError(f"extra step field name {name!r} cannot be a LeRobot column "
                                 f"name; it must match {_INFO_COLUMN_NAME.pattern}")
    shape = tuple(int(d) for d in spec.shape) or (1,)
    return Column(INFOS_PREFIX + name, sc.INFOS, np.dtype(spec.dtype).name, shape, name)


def step_columns(schema: sc.EpisodeSchema) -> tuple[Column, ...]:
    """The data columns of a schema's episodes, observation entries first.

    Args:
      schema: the dataset's schema.

    Returns:
      One `Column` per observation entry and per stored step field, the
      extra step fields (`info_column`) last.

    Raises:
      LeRobotFormatError: an observation entry that is neither a vector nor
        an image, or a name LeRobot refuses ('/').
    """
    obs = schema.observation
    if isinstance(obs, Mapping):
        bad = [k for k in obs if "/" in k]
        if bad:
            raise LeRobotFormatError(f"observation entries {bad}: LeRobot feature names "
                                     "cannot contain '/'")
        cols = [_observation_column(k, v) for k, v in obs.items()]
    else:
        cols = [_observation_column("", obs)]
    act = (schema.action_dim,)
    one = (1,)
    cols += [
        Column(ACTION, sc.ACTION, "float32", act),
        Column(NEXT_REWARD, sc.REWARD, "float32", one),
        Column(RLDS_PREFIX + sc.DISCOUNT, sc.DISCOUNT, "float32", one),
        Column(RLDS_PREFIX + sc.IS_FIRST, sc.IS_FIRST, "bool", one),
        Column(RLDS_PREFIX + sc.IS_LAST, sc.IS_LAST, "bool", one),
        Column(RLDS_PREFIX + sc.IS_TERMINAL, sc.IS_TERMINAL, "bool", one),
        Column(INTERVENTION_COLUMN, sc.INTERVENTION, "bool", one),
        Column(INFO_PREFIX + sc.INTERVENTION_START, sc.INTERVENTION_START, "bool", one),
        Column(INFO_PREFIX + sc.POLICY_ACTION, sc.POLICY_ACTION, "float32", act),
        Column(INFO_PREFIX + sc.EXPERT_ACTION, sc.EXPERT_ACTION, "float32", act),
        Column(INFO_PREFIX + sc.HAS_EXPERT_ACTION, sc.HAS_EXPERT_ACTION, "bool", one),
        Column(INFO_PREFIX + sc.SOURCE, sc.SOURCE, "int64", one),
        Column(INFO_PREFIX + sc.TIMESTAMP_US, sc.TIMESTAMP_US, "int64", one),
    ]
    if schema.derived:
        cols += [Column(INFO_PREFIX + sc.ENV_REWARD, sc.ENV_REWARD, "float32", one),
                 Column(INFO_PREFIX + sc.INCLUDE, sc.INCLUDE, "bool", one)]
    cols += [info_column(name, spec) for name, spec in schema.infos.items()]
    return tuple(cols)


def export_layout(schema: sc.EpisodeSchema) -> Layout:
    """The layout rlif-data writes for `schema` (see `step_columns`)."""
    return Layout(schema, step_columns(schema), own=True)


EXTRA_COLUMNS = (Column(NEXT_DONE, "", "bool", (1,)), Column(NEXT_TRUNCATED, "", "bool", (1,)))
BOOKKEEPING = (
    Column(TIMESTAMP, "", "float32", (1,)),
    Column(FRAME_INDEX, "", "int64", (1,)),
    Column(EPISODE_INDEX, "", "int64", (1,)),
    Column(INDEX, "", "int64", (1,)),
    Column(TASK_INDEX, "", "int64", (1,)),
)


def all_columns(layout: Layout) -> tuple[Column, ...]:
    """Every data column written for `layout`: step fields, done flags, bookkeeping.

    Raises:
      LeRobotFormatError: two columns of one name (a step field named like
        LeRobot's own columns; the prefixes keep that from happening).
    """
    cols = layout.columns + EXTRA_COLUMNS + BOOKKEEPING
    names = [c.name for c in cols]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LeRobotFormatError(f"LeRobot columns {twice} would be written twice; rename the "
                                 "step fields that map onto them")
    return cols


def features(layout: Layout) -> dict[str, dict[str, Any]]:
    """info.json's ``features`` for `layout`."""
    return {c.name: c.feature() for c in all_columns(layout)}


def info_json(layout: Layout, *, fps: int, total_episodes: int, total_frames: int,
              total_tasks: int, robot_type: Optional[str] = None) -> dict[str, Any]:
    """The content of ``meta/info.json`` (keys as LeRobot's `create_empty_dataset_info`)."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": VIDEO_FILE_MB,
        "fps": fps,
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": features(layout),
    }


def infer_fps(timestamps_us: Any, default: int = DEFAULT_FPS) -> int:
    """The control rate of an episode from its step timestamps, or `default`.

    Args:
      timestamps_us: the episode's `schema.TIMESTAMP_US` column.
      default: returned when the timestamps do not tell (all zero, one step).

    Returns:
      Frames per second, at least 1: LeRobot's ``fps`` is an integer.
    """
    ts = np.asarray(timestamps_us, np.int64)[:-1]  # the final step repeats the last time
    gaps = np.diff(ts)
    gaps = gaps[gaps > 0]
    if not len(gaps):
        return default
    return max(1, int(round(1e6 / float(np.median(gaps)))))


def episode_task(episode: Mapping[str, Any]) -> str:
    """The LeRobot task of an episode: its environment id, else `DEFAULT_TASK`."""
    return str(episode.get(sc.ENV_ID) or "") or DEFAULT_TASK


def _column_values(steps: Mapping[str, Any], col: Column, n: int, where: str) -> np.ndarray:
    if col.field == sc.OBSERVATION:
        obs = steps[sc.OBSERVATION]
        values = obs[col.leaf] if col.leaf else obs
    elif col.field == sc.INFOS:
        extras = steps.get(sc.INFOS) or {}
        if col.leaf not in extras:
            raise LeRobotFormatError(f"{where}: no extra step field '{col.leaf}' "
                                     f"(steps['{sc.INFOS}']); the schema has it")
        values = extras[col.leaf]
    else:
        values = steps[col.field]
    arr = np.asarray(values)
    want = (n,) if col.scalar else (n,) + col.shape
    if arr.shape != want and not (col.scalar and arr.shape == (n, 1)):
        raise LeRobotFormatError(f"{where}: '{col.name}' has shape {arr.shape}, the layout "
                                 f"expects {want}")
    dtype = np.uint8 if col.dtype == IMAGE else np.dtype(col.dtype)
    return arr.reshape(want).astype(dtype, copy=False)


def episode_frames(episode: Mapping[str, Any], layout: Layout, *, episode_index: int,
                   first_index: int, task_index: int, fps: int) -> dict[str, np.ndarray]:
    """One episode's LeRobot frames, column by column.

    Args:
      episode: an in-memory episode (`rlif_data.episodes` layout).
      layout: from `export_layout`.
      episode_index: its LeRobot episode index.
      first_index: the dataset-wide ``index`` of its first frame.
      task_index: the index of its task in ``meta/tasks.parquet``.
      fps: the dataset's frame rate (``timestamp`` = frame_index / fps).

    Returns:
      ``{column name: array}`` with one row per RLDS step (T+1), images as
      uint8 ``[T+1, H, W, C]``, scalars as ``[T+1]``.

    Raises:
      LeRobotFormatError: a field of another shape than the schema's.
    """
    steps = episode[sc.STEPS]
    n = len(steps[sc.IS_FIRST])
    where = f"episode {episode.get(sc.EPISODE_ID) or episode_index}"
    out = {col.name: _column_values(steps, col, n, where) for col in layout.columns}
    t = n - 1
    terminated = bool(np.asarray(steps[sc.IS_TERMINAL])[-1])
    done = np.zeros(n, np.bool_)
    truncated = np.zeros(n, np.bool_)
    if t:
        done[t - 1] = terminated
        truncated[t - 1] = not terminated
    done[t] = True  # the final frame is no transition: nothing to bootstrap from
    frame = np.arange(n, dtype=np.int64)
    out.update({
        NEXT_DONE: done,
        NEXT_TRUNCATED: truncated,
        TIMESTAMP: (frame / float(fps)).astype(np.float32),
        FRAME_INDEX: frame,
        EPISODE_INDEX: np.full(n, episode_index, np.int64),
        INDEX: first_index + frame,
        TASK_INDEX: np.full(n, task_index, np.int64),
    })
    return out


def episode_row(episode: Mapping[str, Any], *, episode_index: int, length: int, task: str,
                from_index: int, data_chunk: int, data_file: int) -> dict[str, Any]:
    """One row of the episodes table: LeRobot's columns plus ``rlif/<field>`` metadata.

    Args:
      episode: the episode (its metadata fields are read).
      episode_index: its LeRobot episode index.
      length: its frame count.
      task: its task string.
      from_index: the ``index`` of its first frame.
      data_chunk, data_file: where its frames are.
    """
    meta = episodes.default_episode_metadata()
    meta.update({k: episode[k] for k in sc.EPISODE_METADATA_FIELDS if k in episode})
    row: dict[str, Any] = {
        EPISODE_INDEX: episode_index,
        TASKS: [task],
        LENGTH: length,
        DATA_CHUNK: data_chunk,
        DATA_FILE: data_file,
        FROM_INDEX: from_index,
        TO_INDEX: from_index + length,
        META_CHUNK: 0,
        META_FILE: 0,
    }
    for key in sc.EPISODE_METADATA_FIELDS:
        value = meta[key]
        row[EPISODE_META_PREFIX + key] = (
            int(value) if key in (sc.ROUND, sc.SEED) else
            value.decode("utf-8") if isinstance(value, bytes) else str(value))
    return row


# ---------------------------------------------------------------------------
# Statistics (meta/stats.json), as LeRobot's compute_stats.
# ---------------------------------------------------------------------------


def feature_stats(values: np.ndarray, image: bool = False) -> dict[str, np.ndarray]:
    """min, max, mean, std, count and quantiles of one episode's column.

    Args:
      values: the column, ``[frames, ...]``.
      image: uint8 HxWxC frames: per-channel statistics of pixels / 255,
        shaped (C, 1, 1) as LeRobot stores them (no quantiles), estimated
        as LeRobot does from at most `IMAGE_STAT_FRAMES` frames, every
        other pixel of frames wider than 150 (all pixels cost ~5 ms a frame).

    Returns:
      ``{stat: array}``; ``count`` is the number of frames.
    """
    n = len(values)
    if image:
        arr = np.asarray(values)
        arr = arr[::max(1, -(-n // IMAGE_STAT_FRAMES))]
        if arr.shape[2] > 150:
            arr = arr[:, ::2, ::2]
        channels = arr.shape[-1]
        x = arr.reshape(-1, channels).astype(np.float32) / np.float32(255.0)
        shape = (channels, 1, 1)
        mean = x.mean(0, dtype=np.float64)
        return {"min": x.min(0).astype(np.float64).reshape(shape),
                "max": x.max(0).astype(np.float64).reshape(shape),
                "mean": mean.reshape(shape), "std": x.std(0, dtype=np.float64).reshape(shape),
                "count": np.array([n])}
    values = np.asarray(values)
    x = values.reshape(n, -1).astype(np.float64)
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0),
           "count": np.array([n])}
    for q, value in zip(QUANTILES, np.quantile(x, QUANTILES, axis=0)):
        out[f"q{int(round(q * 100)):02d}"] = value
    if values.ndim > 2:  # a 2-D+ extra field: per-element statistics in its own shape
        out = {k: v if k == "count" else v.reshape(values.shape[1:]) for k, v in out.items()}
    return out


def aggregate_stats(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode statistics of one column (LeRobot's `aggregate_feature_stats`).

    Means and variances combine exactly; quantiles as the count-weighted mean
    of the episodes' quantiles, as LeRobot does.
    """
    counts = np.array([float(p["count"][0]) for p in parts])
    total = counts.sum()
    weights = counts / total
    means = np.stack([p["mean"] for p in parts])
    mean = np.tensordot(weights, means, axes=1)
    var = np.tensordot(weights, np.stack([p["std"] ** 2 for p in parts]) + (means - mean) ** 2,
                       axes=1)
    out = {"min": np.min(np.stack([p["min"] for p in parts]), 0),
           "max": np.max(np.stack([p["max"] for p in parts]), 0),
           "mean": mean, "std": np.sqrt(var), "count": np.array([int(total)])}
    for key in parts[0]:
        if key.startswith("q"):
            out[key] = np.tensordot(weights, np.stack([p[key] for p in parts]), axes=1)
    return out


# ---------------------------------------------------------------------------
# The way back: frames -> episodes.
# ---------------------------------------------------------------------------


def _observation_key(name: str) -> str:
    if name == OBS_STATE:
        return sc.STATE_KEY
    if name.startswith(OBS_IMAGES_PREFIX):
        return name[len(OBS_IMAGES_PREFIX):]
    return name[len(OBS_PREFIX):]


def _shape(feature: Mapping[str, Any], name: str, where: str) -> tuple[int, ...]:
    shape = feature.get("shape")
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) for d in shape):
        raise LeRobotFormatError(f"{where}: feature '{name}' has no valid shape: {shape!r}")
    return tuple(shape)


def foreign_layout(feats: Mapping[str, Any], where: str) -> Layout:
    """The layout of a LeRobot dataset not written by rlif-data, read from its features.

    Args:
      feats: info.json's ``features``.
      where: the info file, for messages.

    Returns:
      A `Layout` (``own`` False) over the observation features, ``action``,
      and ``next.reward`` / ``complementary_info.is_intervention`` when present.

    Raises:
      LeRobotFormatError: no ``action`` or no observation feature, a video
        feature, or features of shapes the schema cannot hold.
    """
    videos = [k for k, f in feats.items() if isinstance(f, Mapping) and f.get("dtype") == VIDEO]
    if videos:
        raise LeRobotFormatError(
            f"{where}: {videos} are stored as videos; ingest-lerobot reads datasets whose "
            "cameras are image features (dtype 'image'); re-encode them as images, e.g. "
            "`rlif-data convert` output, or LeRobotDataset.create(..., use_videos=False)")
    obs: dict[str, sc.LeafSpec] = {}
    cols: list[Column] = []
    for name, feat in feats.items():
        if not name.startswith(OBS_PREFIX):
            continue
        shape = _shape(feat, name, where)
        key = _observation_key(name)
        if feat.get("dtype") == IMAGE:
            if len(shape) != 3:
                raise LeRobotFormatError(f"{where}: image feature '{name}' has shape {shape}; "
                                         "expected (height, width, channels)")
            obs[key] = sc.ImageSpec(shape[0], shape[1], shape[2])
            cols.append(Column(name, sc.OBSERVATION, IMAGE, shape, key))
        elif len(shape) == 1 and str(feat.get("dtype", "")).startswith(("float", "int")):
            obs[key] = sc.ArraySpec(shape)
            cols.append(Column(name, sc.OBSERVATION, "float32", shape, key))
        else:
            raise LeRobotFormatError(f"{where}: observation feature '{name}' ({feat.get('dtype')}, "
                                     f"shape {shape}) is neither a vector nor an image")
    if not obs:
        raise LeRobotFormatError(f"{where}: no observation feature ('{OBS_STATE}', "
                                 f"'{OBS_IMAGES_PREFIX}<camera>')")
    if ACTION not in feats:
        raise LeRobotFormatError(f"{where}: no '{ACTION}' feature")
    action_shape = _shape(feats[ACTION], ACTION, where)
    if len(action_shape) != 1:
        raise LeRobotFormatError(f"{where}: '{ACTION}' has shape {action_shape}; only vector "
                                 "actions are supported")
    cols.append(Column(ACTION, sc.ACTION, "float32", action_shape))
    if NEXT_REWARD in feats:
        cols.append(Column(NEXT_REWARD, sc.REWARD, "float32", (1,)))
    if NEXT_DONE in feats:
        cols.append(Column(NEXT_DONE, "", "bool", (1,)))
    if INTERVENTION_COLUMN in feats:
        cols.append(Column(INTERVENTION_COLUMN, sc.INTERVENTION, "bool", (1,)))
    observation: sc.ObservationSpec = obs
    if list(obs) == [sc.STATE_KEY]:
        observation = obs[sc.STATE_KEY]  # state only: a vector observation
        cols[0] = dataclasses.replace(cols[0], leaf="")
    return Layout(sc.EpisodeSchema(observation, action_shape[0]), tuple(cols), own=False)


def _observations(frames: Mapping[str, np.ndarray], layout: Layout) -> Any:
    obs_cols = [c for c in layout.columns if c.field == sc.OBSERVATION]
    if not isinstance(layout.schema.observation, Mapping):
        return np.asarray(frames[obs_cols[0].name], np.float32)
    return {c.leaf: (np.asarray(frames[c.name], np.uint8) if c.dtype == IMAGE
                     else np.asarray(frames[c.name], np.float32)) for c in obs_cols}


def _check_values(frames: Mapping[str, np.ndarray], layout: Layout, where: str) -> None:
    for col in layout.columns:
        # Extra step fields are passed through untouched (`schema.INFOS`), NaN included.
        if col.dtype == "float32" and col.field != sc.INFOS:
            arrays.check_finite(frames[col.name], col.name, where, LeRobotFormatError)


def check_declared_features(layout: Layout, feats: Mapping[str, Any], where: str) -> None:
    """Refuse an info.json whose features disagree with our layout (from ``meta/rlif.json``).

    Args:
      layout: from `export_layout` of the stored schema.
      feats: info.json's ``features``.
      where: the info file, for messages.

    Raises:
      LeRobotFormatError: a layout column missing from `feats`, or an extra
        step field (``infos.<name>``) declared with another dtype or shape.
    """
    missing = [c.name for c in all_columns(layout) if c.name not in feats]
    if missing:
        raise LeRobotFormatError(f"{where}: features {missing} missing; the schema in "
                                 f"{RLIF_META_PATH} has them")
    for col in layout.columns:
        if col.field != sc.INFOS:
            continue
        feat = feats[col.name]
        declared = (feat.get("dtype"), feat.get("shape")) if isinstance(feat, Mapping) else feat
        if declared != (col.dtype, list(col.shape)):
            raise LeRobotFormatError(
                f"{where}: feature '{col.name}' is declared {declared}; the schema in "
                f"{RLIF_META_PATH} has {col.dtype} {list(col.shape)} (re-export the dataset "
                "with `rlif-data convert --to lerobot`)")


def own_episode(frames: Mapping[str, np.ndarray], layout: Layout,
                row: Mapping[str, Any], where: str) -> dict[str, Any]:
    """An episode written by `episode_frames`, back as the rlif episode it was.

    Args:
      frames: ``{column: array}`` of the episode's frames in frame order.
      layout: from `export_layout` of the schema in ``meta/rlif.json``.
      row: its row of the episodes table (``rlif/<field>`` metadata).
      where: file and episode, for messages.

    Raises:
      LeRobotFormatError: NaN/inf, or RLDS flags that are not one episode.
    """
    _check_values(frames, layout, where)
    steps: dict[str, Any] = {sc.OBSERVATION: _observations(frames, layout)}
    for col in layout.columns:
        if col.field == sc.OBSERVATION:
            continue
        values = np.asarray(frames[col.name])
        if col.field == sc.INFOS:  # back in the schema's shape: a 0-d field was (1,)
            spec = layout.schema.infos[col.leaf]
            steps.setdefault(sc.INFOS, {})[col.leaf] = values.reshape(
                (len(values),) + tuple(spec.shape)).astype(np.dtype(spec.dtype), copy=False)
            continue
        steps[col.field] = values.astype(np.dtype(col.dtype), copy=False)
    first, last = steps[sc.IS_FIRST], steps[sc.IS_LAST]
    if not (first[0] and last[-1] and first.sum() == 1 and last.sum() == 1):
        raise LeRobotFormatError(f"{where}: rlds.is_first/is_last do not mark one episode "
                                 "(first frame first, last frame last, once each)")
    meta = {key: row.get(EPISODE_META_PREFIX + key) for key in sc.EPISODE_METADATA_FIELDS}
    meta = {k: v for k, v in meta.items() if v is not None}
    return {sc.STEPS: steps, **episodes.complete_metadata(meta, where)}


def foreign_episode(frames: Mapping[str, np.ndarray], layout: Layout, *, episode_index: int,
                    dataset_name: str, where: str) -> dict[str, Any]:
    """A LeRobot episode of N frames as RLDS steps: N steps, N-1 transitions.

    Frame t becomes step t; the last frame's action has no next observation,
    so it is not a transition (RLDS' final step holds zeros there). The
    episode counts as terminated when ``next.done`` is set on its last
    transition (frame N-2); LeRobot's recorders set it on the last frame,
    whose outcome is not stored, so such episodes read as truncated.
    Who acted: with ``complementary_info.is_intervention``, intervened
    frames are the human's (their action is also the expert action) and the
    others the policy's; without it every action is the dataset's, counted
    as an expert label (as the D4RL and Minari readers do).

    Args:
      frames: ``{column: array}`` in frame order.
      layout: from `foreign_layout`.
      episode_index: the LeRobot episode index.
      dataset_name: the dataset's name, for episode ids.
      where: file and episode, for messages.

    Raises:
      LeRobotFormatError: fewer than 2 frames, or NaN/inf values.
    """
    n = len(frames[ACTION])
    if n < 2:
        raise LeRobotFormatError(f"{where}: {n} frame(s); an episode needs at least 2 "
                                 "(one transition)")
    _check_values(frames, layout, where)
    t = n - 1
    actions = np.asarray(frames[ACTION], np.float32)[:t]
    rewards = (np.asarray(frames[NEXT_REWARD], np.float32).reshape(n)[:t]
               if NEXT_REWARD in frames else np.zeros(t, np.float32))
    done = (arrays.flag_column(np.asarray(frames[NEXT_DONE]).reshape(n), NEXT_DONE, where,
                               LeRobotFormatError) if NEXT_DONE in frames
            else np.zeros(n, np.bool_))
    terminated = bool(done[t - 1])
    stamps = (np.asarray(frames[TIMESTAMP], np.float64).reshape(n)[:t]
              if TIMESTAMP in frames else None)
    if INTERVENTION_COLUMN in frames:
        flags = arrays.flag_column(np.asarray(frames[INTERVENTION_COLUMN]).reshape(n),
                                   INTERVENTION_COLUMN, where, LeRobotFormatError)[:t]
        source = np.where(flags, int(sc.Source.HUMAN), int(sc.Source.POLICY))
        kw = dict(intervention=flags, policy_actions=np.where(flags[:, None], 0.0, actions),
                  expert_actions=np.where(flags[:, None], actions, 0.0),
                  has_expert_action=flags, source=source)
        model = iv.MODEL_HUMAN
    else:
        kw = dict(expert_actions=actions, has_expert_action=np.ones(t, np.bool_),
                  source=sc.Source.DATASET)
        model = iv.MODEL_NONE
    steps = episodes.build_steps(_observations(frames, layout), actions, rewards,
                                 arrays.end_discounts(t, terminated), terminated=terminated,
                                 timestamps=stamps, **kw)
    meta = {sc.EPISODE_ID: f"{dataset_name}/{episode_index}", sc.SESSION_ID: dataset_name,
            sc.OPERATOR: FOREIGN_OPERATOR, sc.INTERVENTION_MODEL: model}
    return {sc.STEPS: steps, **episodes.complete_metadata(meta, where)}
