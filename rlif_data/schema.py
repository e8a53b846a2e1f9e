"""The RLDS schema of rlif-data: every step and episode field, in one place.

This module is the single source of truth for field names. Every other module
refers to the constants below instead of spelling the strings, so a rename is
one edit here (plus a format-version bump and a converter).

Conventions (RLDS): step ``t`` holds the observation ``o_t``, the action
``a_t`` taken from it, the reward ``r_t`` and discount ``d_t`` that followed
that action. The last step of an episode holds the final observation and
zero-filled action/reward/intervention fields.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from typing import Any, Mapping, Union

import numpy as np

# The stored layout's version, "MAJOR.MINOR", written into every dataset.
#
# * MAJOR moves when data written by this code could be misread, or not read,
#   by a reader of the previous major even where it uses no new feature (a
#   field renamed, retyped, moved or removed). Readers refuse another major
#   (`check_format_version`), with a message naming the release to use.
# * MINOR moves when the layout gains something *optional*. Data that does not
#   use it has exactly the previous layout (same features.json, same schema
#   JSON), so readers of an older minor of the same major read it as before.
#   Data that uses it holds fields an older reader does not know: its
#   stored-feature check (`recording.reader.check_stored_features`, run before
#   any episode is decoded) refuses it with one line naming the unexpected
#   fields. Readers accept every minor of their major: whatever they cannot
#   read is caught by that check, never misread.
#
# 1.0: the RLDS steps and intervention fields.
# 1.1: optional extra step fields (`INFOS`, `EpisodeSchema.infos`), e.g. D4RL's
#      infos/qpos; schemas without them store exactly the 1.0 layout.
FORMAT_VERSION = "1.1"
FORMAT_VERSION_KEY = "rlif_format_version"
SCHEMA_KEY = "rlif_schema"

# ---------------------------------------------------------------------------
# Core RLDS step fields.
# ---------------------------------------------------------------------------
STEPS = "steps"
OBSERVATION = "observation"
ACTION = "action"  # the action applied to the environment at this step
REWARD = "reward"  # reward the environment returned after `action`
DISCOUNT = "discount"  # 0.0 after a true termination, 1.0 otherwise
IS_FIRST = "is_first"
IS_LAST = "is_last"
IS_TERMINAL = "is_terminal"  # last step AND the env terminated (not truncated)

# ---------------------------------------------------------------------------
# Intervention step fields (the RLIF data contract).
# ---------------------------------------------------------------------------
INTERVENTION = "intervention"  # the expert is in control at this step
INTERVENTION_START = "intervention_start"  # first step of a takeover
POLICY_ACTION = "policy_action"  # what the learner proposed (always recorded)
EXPERT_ACTION = "expert_action"  # the expert's action; zeros if none was produced
HAS_EXPERT_ACTION = "has_expert_action"  # whether `expert_action` is real
SOURCE = "source"  # who produced `action`, a `Source` label
# Microseconds since the episode started (monotonic clock), int64: tf.Example
# stores float64 as float32, which would blur per-step timing in long sessions.
TIMESTAMP_US = "timestamp_us"

# Optional extra step fields (`EpisodeSchema.infos`): one step field holding a
# dict of arrays, e.g. D4RL's ``infos/qpos`` as ``steps["infos"]["qpos"]`` (the
# name TFDS' own D4RL datasets use). Each belongs to the transition of its step,
# like `ACTION`: zeros on the final step. Kept and passed through, never read by
# the learners; stored bit-exact in the dtype they came in (see `INFO_DTYPES`).
INFOS = "infos"

# ---------------------------------------------------------------------------
# Step fields of derived (relabelled) datasets.
# ---------------------------------------------------------------------------
ENV_REWARD = "env_reward"  # the environment's own reward, kept beside a relabelled `reward`
INCLUDE = "include"  # this step's transition/label belongs to the dataset's view

# ---------------------------------------------------------------------------
# Episode metadata fields.
# ---------------------------------------------------------------------------
EPISODE_ID = "episode_id"
SESSION_ID = "session_id"
OPERATOR = "operator"  # expert id or human operator name
INTERVENTION_MODEL = "intervention_model"  # name, e.g. "random"
INTERVENTION_PARAMS = "intervention_params"  # JSON of the model's parameters
ROUND = "round"  # RLIF round number
POLICY_VERSION = "policy_version"  # checkpoint / version of the learner policy
ENV_ID = "env_id"
SEED = "seed"
START_TIME = "start_time"  # ISO 8601 UTC wall-clock time of the first step
CODE_VERSION = "code_version"  # rlif-data version (+ git commit when known)

# Observation entry holding the proprio state in dict observations (beside
# one entry per camera).
STATE_KEY = "state"

# ---------------------------------------------------------------------------
# File names of the on-disk contract.
# ---------------------------------------------------------------------------
DATASET_INFO_FILE = "dataset_info.json"  # TFDS: splits, shard lengths; written last
FEATURES_FILE = "features.json"  # TFDS: the feature spec
METADATA_FILE = "metadata.json"  # TFDS metadata: schema, format version, lineage
MANIFEST_FILE = "MANIFEST.json"  # registry: file sizes and SHA-256 of a version
# Operator marks of invalid episodes, one JSON object per line, appended and fsynced;
# a side file because a committed episode's shard is never rewritten.
INVALID_EPISODES_FILE = "invalid_episodes.jsonl"
EPISODE_LENGTHS_FILE = "episode_lengths.json"  # per-episode lengths: downsample skips a read pass

CORE_STEP_FIELDS = (OBSERVATION, ACTION, REWARD, DISCOUNT, IS_FIRST, IS_LAST, IS_TERMINAL)
DERIVED_STEP_FIELDS = (ENV_REWARD, INCLUDE)
INTERVENTION_STEP_FIELDS = (
    INTERVENTION,
    INTERVENTION_START,
    POLICY_ACTION,
    EXPERT_ACTION,
    HAS_EXPERT_ACTION,
    SOURCE,
    TIMESTAMP_US,
)
EPISODE_METADATA_FIELDS = (
    EPISODE_ID,
    SESSION_ID,
    OPERATOR,
    INTERVENTION_MODEL,
    INTERVENTION_PARAMS,
    ROUND,
    POLICY_VERSION,
    ENV_ID,
    SEED,
    START_TIME,
    CODE_VERSION,
)


class Source(enum.IntEnum):
    """Who produced the action stored at a step. Stored as a TFDS ClassLabel."""

    POLICY = 0
    EXPERT = 1  # a simulated expert (scripted or learned)
    HUMAN = 2  # a person through an input device
    DATASET = 3  # imported from an external dataset (D4RL, Minari, ...)

    @classmethod
    def names(cls) -> list[str]:
        """Label names in index order, as stored in the dataset."""
        return [member.name.lower() for member in cls]


# ---------------------------------------------------------------------------
# Observation specs.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """A fixed-shape numeric array (proprio state, a vector observation).

    Attributes:
      shape: the array shape, without the time dimension.
      dtype: a NumPy dtype name, e.g. "float32".
    """

    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """An RGB camera frame, HxWxC uint8.

    Attributes:
      height, width, channels: frame size in pixels.
      encoding: "raw" stores the pixels as they are, one 49 KB bytes value
        per 128x128 frame (~0.5 ms per step for two cameras, paid when the
        episode is written); "png" compresses, costing ~2 ms per frame (TF's
        encoder) -- too slow for a 10 Hz loop with two cameras.
    """

    height: int
    width: int
    channels: int = 3
    encoding: str = "raw"

    @property
    def shape(self) -> tuple[int, int, int]:
        """The frame shape (H, W, C)."""
        return (self.height, self.width, self.channels)

    @property
    def dtype(self) -> str:
        """Frames are always uint8."""
        return "uint8"


LeafSpec = Union[ArraySpec, ImageSpec]
ObservationSpec = Union[ArraySpec, Mapping[str, LeafSpec]]

# Dtypes an extra step field (`INFOS`) may have: those stored as raw bytes
# and decoded by both NumPy and TensorFlow's ``decode_raw`` (tf.data readers).
INFO_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
               "float16", "float32", "float64")
# An extra step field's name: a TFDS feature key ("/" would split it).
_INFO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def check_info_spec(name: str, spec: Any) -> None:
    """Refuse an extra step field (`EpisodeSchema.infos` entry) rlif-data cannot store.

    Args:
      name: the field's name inside `INFOS`.
      spec: its `ArraySpec`.

    Raises:
      ValueError: a name that is not a plain identifier-like key, a spec that
        is not an `ArraySpec`, or a dtype outside `INFO_DTYPES`.
    """
    if not isinstance(name, str) or not _INFO_NAME.fullmatch(name):
        raise ValueError(f"extra step field name {name!r} must match {_INFO_NAME.pattern} "
                         "(no '/': it is a TFDS feature key)")
    if not isinstance(spec, ArraySpec):
        raise ValueError(f"extra step field {name!r} must be an ArraySpec, got {spec!r}")
    try:
        dtype = np.dtype(spec.dtype).name
    except TypeError:
        dtype = repr(spec.dtype)
    if dtype not in INFO_DTYPES:
        raise ValueError(f"extra step field {name!r} has dtype {spec.dtype}; "
                         f"supported: {', '.join(INFO_DTYPES)}")


@dataclasses.dataclass(frozen=True)
class EpisodeSchema:
    """Everything that fixes the on-disk layout of a recording.

    Attributes:
      observation: an `ArraySpec` for vector observations, or a mapping of
        names to `ArraySpec`/`ImageSpec` for dict observations (e.g. two
        cameras and a proprio state).
      action_dim: size of the (continuous) action vector.
      name: TFDS dataset name of the recording.
      derived: the episodes carry `DERIVED_STEP_FIELDS` (relabelled views).
      infos: optional extra step fields, name -> `ArraySpec`, stored under the
        step field `INFOS` (empty: none, the 1.0 layout). See `INFOS`.
    """

    observation: ObservationSpec
    action_dim: int
    name: str = "rlif_episodes"
    derived: bool = False
    infos: Mapping[str, ArraySpec] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.action_dim <= 0:
            raise ValueError(f"action_dim must be positive, got {self.action_dim}")
        if isinstance(self.observation, Mapping):
            if not self.observation:
                raise ValueError("a dict observation spec needs at least one entry")
            # Freeze the mapping so that two equal schemas compare and hash equal.
            object.__setattr__(self, "observation", dict(sorted(self.observation.items())))
        infos = dict(self.infos or {})
        for name, spec in infos.items():
            check_info_spec(name, spec)
        # Shapes as tuples and dtypes by canonical name, so equal schemas compare equal.
        object.__setattr__(self, "infos", {
            name: ArraySpec(tuple(int(d) for d in spec.shape), np.dtype(spec.dtype).name)
            for name, spec in sorted(infos.items())})

    # -- serialisation (stored in each dataset's metadata) --------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-able description, stored with every dataset."""

        def leaf(spec: LeafSpec) -> dict[str, Any]:
            out = {"kind": "image" if isinstance(spec, ImageSpec) else "array"}
            out.update(dataclasses.asdict(spec))
            if "shape" in out:
                out["shape"] = list(out["shape"])
            return out

        if isinstance(self.observation, Mapping):
            obs = {k: leaf(v) for k, v in self.observation.items()}
        else:
            obs = leaf(self.observation)
        out = {"name": self.name, "action_dim": self.action_dim, "observation": obs,
               "derived": self.derived}
        if self.infos:  # absent when empty: such a schema stores the 1.0 JSON unchanged
            out[INFOS] = {k: leaf(v) for k, v in self.infos.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EpisodeSchema":
        """Inverse of `to_json`."""

        def leaf(d: Mapping[str, Any]) -> LeafSpec:
            d = dict(d)
            kind = d.pop("kind")
            if kind == "image":
                return ImageSpec(**d)
            return ArraySpec(shape=tuple(d["shape"]), dtype=d["dtype"])

        obs = data["observation"]
        if "kind" in obs:
            observation: ObservationSpec = leaf(obs)
        else:
            observation = {k: leaf(v) for k, v in obs.items()}
        infos = {k: leaf(v) for k, v in dict(data.get(INFOS) or {}).items()}
        return cls(observation=observation, action_dim=int(data["action_dim"]), name=data["name"],
                   derived=bool(data.get("derived", False)), infos=infos)

    def describe(self) -> str:
        """One line per observation entry, for `inspect` and error messages."""
        return json.dumps(self.to_json(), sort_keys=True)


def vector_schema(obs_dim: int, action_dim: int, name: str = "rlif_episodes") -> EpisodeSchema:
    """Schema for float32 vector observations (Hopper: obs_dim=11, action_dim=3)."""
    return EpisodeSchema(ArraySpec((obs_dim,)), action_dim, name)


def camera_schema(
    state_dim: int,
    action_dim: int,
    cameras: tuple[str, ...] = ("front", "wrist"),
    size: int = 128,
    encoding: str = "raw",
    name: str = "rlif_episodes",
    derived: bool = False,
) -> EpisodeSchema:
    """Schema for dict observations: `state` plus one RGB frame per camera."""
    obs: dict[str, LeafSpec] = {STATE_KEY: ArraySpec((state_dim,))}
    for cam in cameras:
        obs[cam] = ImageSpec(size, size, 3, encoding)
    return EpisodeSchema(obs, action_dim, name, derived)


# ---------------------------------------------------------------------------
# TFDS features (built lazily: importing tfds costs ~1 s).
# ---------------------------------------------------------------------------


def _leaf_feature(spec: LeafSpec):
    import tensorflow_datasets as tfds

    if isinstance(spec, ImageSpec):
        if spec.encoding == "png":
            return tfds.features.Image(shape=spec.shape, dtype=np.uint8, encoding_format="png")
        if spec.encoding != "raw":
            raise ValueError(f"unknown image encoding {spec.encoding!r}; use 'raw' or 'png'")
        # BYTES: one bytes value per frame. Without it tf.Example stores every
        # pixel as a varint in an Int64List: ~20x slower to write, and larger.
        return tfds.features.Tensor(shape=spec.shape, dtype=np.uint8,
                                    encoding=tfds.features.Encoding.BYTES)
    return tfds.features.Tensor(shape=tuple(spec.shape), dtype=np.dtype(spec.dtype))


def observation_feature(schema: EpisodeSchema):
    """The TFDS feature of one observation."""
    import tensorflow_datasets as tfds

    if isinstance(schema.observation, Mapping):
        return tfds.features.FeaturesDict(
            {k: _leaf_feature(v) for k, v in schema.observation.items()}
        )
    return _leaf_feature(schema.observation)


def info_feature(spec: ArraySpec):
    """The TFDS feature of one extra step field (`INFOS`).

    Stored as raw bytes (one value per step) in its own dtype: tf.Example
    would hold float64 (D4RL's qpos, qvel) as float32, and every integer as
    int64.
    """
    import tensorflow_datasets as tfds

    return tfds.features.Tensor(shape=tuple(spec.shape), dtype=np.dtype(spec.dtype),
                                encoding=tfds.features.Encoding.BYTES)


def step_metadata_features(schema: EpisodeSchema) -> dict[str, Any]:
    """TFDS features of the intervention step fields (and the extra ones, if any)."""
    import tensorflow_datasets as tfds

    action = tfds.features.Tensor(shape=(schema.action_dim,), dtype=np.float32)
    derived = {ENV_REWARD: np.float32, INCLUDE: np.bool_} if schema.derived else {}
    if schema.infos:
        derived[INFOS] = tfds.features.FeaturesDict(
            {k: info_feature(v) for k, v in schema.infos.items()})
    return {
        **derived,
        INTERVENTION: np.bool_,
        INTERVENTION_START: np.bool_,
        POLICY_ACTION: action,
        EXPERT_ACTION: action,
        HAS_EXPERT_ACTION: np.bool_,
        SOURCE: tfds.features.ClassLabel(names=Source.names()),
        TIMESTAMP_US: np.int64,
    }


def episode_metadata_features() -> dict[str, Any]:
    """TFDS features of the episode metadata fields."""
    import tensorflow_datasets as tfds

    text = tfds.features.Text
    return {
        EPISODE_ID: text(),
        SESSION_ID: text(),
        OPERATOR: text(),
        INTERVENTION_MODEL: text(),
        INTERVENTION_PARAMS: text(),
        ROUND: np.int32,
        POLICY_VERSION: text(),
        ENV_ID: text(),
        SEED: np.int64,
        START_TIME: text(),
        CODE_VERSION: text(),
    }


def dataset_config(schema: EpisodeSchema, description: str = ""):
    """The RLDS `DatasetConfig` (TFDS) for a schema: the one place it is built."""
    import tensorflow_datasets as tfds

    return tfds.rlds.rlds_base.DatasetConfig(
        name=schema.name,
        overall_description=description
        or "RLIF episodes: RLDS steps with intervention flags (rlif-data).",
        observation_info=observation_feature(schema),
        action_info=tfds.features.Tensor(shape=(schema.action_dim,), dtype=np.float32),
        reward_info=np.float32,
        discount_info=np.float32,
        step_metadata_info=step_metadata_features(schema),
        episode_metadata_info=episode_metadata_features(),
    )


def features_dict(schema: EpisodeSchema):
    """The top-level TFDS `FeaturesDict` of one episode.

    The same features `tfds.rlds.rlds_base.build_info` builds from
    `dataset_config` (which writers use), assembled here without it: its
    `tf.bool` imports TensorFlow (~4 s), which readers do not need.
    `tests/test_schema.py` checks that both agree.
    """
    import tensorflow_datasets as tfds

    config = dataset_config(schema)
    step = {
        IS_TERMINAL: np.bool_,
        IS_FIRST: np.bool_,
        IS_LAST: np.bool_,
        **config.step_metadata_info,
        OBSERVATION: config.observation_info,
        ACTION: config.action_info,
        REWARD: config.reward_info,
        DISCOUNT: config.discount_info,
    }
    return tfds.features.FeaturesDict(
        {STEPS: tfds.features.Dataset(step), **config.episode_metadata_info}
    )


def check_format_version(found: str | None, where: str) -> None:
    """Raise a `FormatVersionError` unless `found` is readable by this code.

    Args:
      found: the format version stored with the data (None if absent).
      where: the dataset directory, for the message.
    """
    from rlif_data.errors import FormatVersionError

    if found is None:
        raise FormatVersionError(
            f"{where}: no '{FORMAT_VERSION_KEY}' in the dataset metadata; "
            "this directory was not written by rlif-data"
        )
    if found.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise FormatVersionError(
            f"{where}: written with rlif format {found}, this rlif-data reads "
            f"{FORMAT_VERSION}; read it with the rlif-data release that wrote it"
        )


# ---------------------------------------------------------------------------
# The serialized layout, without TFDS (readers: importing TFDS costs ~0.2 s a process).
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SerializedField:
    """One feature of the stored tf.train.Example, as TFDS' serialized info describes it.

    Attributes:
      shape: the stored shape; ``None`` for the steps dimension.
      np_dtype: the NumPy dtype values are parsed into (``object`` for bytes).
      sequence_rank: 1 for step fields (inside `STEPS`), 0 for episode metadata.
    """

    shape: tuple[Any, ...]
    np_dtype: np.dtype
    sequence_rank: int = 0


_BYTES = np.dtype(object)  # text, camera frames and extra step fields: one bytes value each


def _serialized_leaf(spec: LeafSpec) -> tuple[tuple[int, ...], np.dtype]:
    """(per-step shape, dtype) of an observation leaf or extra step field as stored."""
    if isinstance(spec, ImageSpec):
        if spec.encoding not in ("raw", "png"):
            raise ValueError(f"unknown image encoding {spec.encoding!r}; use 'raw' or 'png'")
        return (), _BYTES  # one bytes value per frame, raw pixels or PNG
    return tuple(int(d) for d in spec.shape), np.dtype(spec.dtype)


def serialized_fields(schema: EpisodeSchema) -> dict[str, SerializedField]:
    """The flat serialized layout of an episode: ``{"steps/action": SerializedField, ...}``.

    Equal to ``features_dict(schema).get_serialized_info()`` flattened with
    "/" (keys, key order, shapes, dtypes; `tests/test_read_without_tfds.py`
    checks every schema variant), built without importing TFDS.

    Args:
      schema: the dataset's schema.

    Returns:
      Flat keys in TFDS' order (the order `features_dict` builds).
    """
    bool_, f32, i64 = np.dtype(np.bool_), np.dtype(np.float32), np.dtype(np.int64)
    action = ((schema.action_dim,), f32)
    step: dict[str, tuple[tuple[int, ...], np.dtype]] = {
        IS_TERMINAL: ((), bool_), IS_FIRST: ((), bool_), IS_LAST: ((), bool_)}
    if schema.derived:
        step.update({ENV_REWARD: ((), f32), INCLUDE: ((), bool_)})
    for name in schema.infos:
        step[f"{INFOS}/{name}"] = ((), _BYTES)  # raw bytes per step (`info_feature`)
    step.update({INTERVENTION: ((), bool_), INTERVENTION_START: ((), bool_),
                 POLICY_ACTION: action, EXPERT_ACTION: action, HAS_EXPERT_ACTION: ((), bool_),
                 SOURCE: ((), i64), TIMESTAMP_US: ((), i64)})  # SOURCE: a ClassLabel
    if isinstance(schema.observation, Mapping):
        for name, spec in schema.observation.items():
            step[f"{OBSERVATION}/{name}"] = _serialized_leaf(spec)
    else:
        step[OBSERVATION] = _serialized_leaf(schema.observation)
    step.update({ACTION: action, REWARD: ((), f32), DISCOUNT: ((), f32)})
    out = {f"{STEPS}/{key}": SerializedField((None,) + shape, dtype, 1)
           for key, (shape, dtype) in step.items()}
    for key in EPISODE_METADATA_FIELDS:
        dtype = {ROUND: np.dtype(np.int32), SEED: i64}.get(key, _BYTES)
        out[key] = SerializedField((), dtype, 0)
    return out
