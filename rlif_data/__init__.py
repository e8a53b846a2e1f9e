"""rlif-data: record interventions as RLDS, build datasets, train RLIF agents.

The public API. Heavy dependencies (TensorFlow Datasets, TensorFlow, envlogger,
JAX) load only when the function that needs them is called.
"""

from rlif_data import schema
from rlif_data.downsample import EpisodeInfo, Selection, select_episodes
from rlif_data.episodes import (
    StepInfo,
    build_steps,
    check_action,
    check_observation,
    infer_schema,
    summarize_episode,
)
from rlif_data.errors import (
    CorruptRecordingError,
    FormatVersionError,
    InvalidActionError,
    RecordingError,
    RecordingLockedError,
    RlifDataError,
    SchemaError,
    SchemaMismatchError,
    UnknownEnvironmentError,
)
from rlif_data.intervention import (
    DecisionContext,
    ExternalTakeover,
    IIDRandom,
    InterventionModel,
    NoIntervention,
    RandomTakeover,
    TakeoverSignal,
    ValueBased,
    make_random_model,
    value_based_official,
    value_based_paper,
)
from rlif_data.relabel import (
    DAGGER,
    HG_DAGGER,
    OFFICIAL,
    PAPER,
    PAPER_POLICY_ONLY,
    RULES,
    RelabelRule,
    episode_transitions,
    relabel_episode,
    rlif_rewards,
)
from rlif_data.schema import EpisodeSchema, Source, camera_schema, vector_schema
from rlif_data.version import __version__, code_version


def __getattr__(name):
    # I/O pieces import TFDS/envlogger; load them on first use, not on `import rlif_data`.
    lazy = {
        "EpisodeStore": ("rlif_data.recording.store", "EpisodeStore"),
        "EpisodeReader": ("rlif_data.recording.reader", "EpisodeReader"),
        "read_episodes": ("rlif_data.recording.reader", "read_episodes"),
        "recover": ("rlif_data.recording.store", "recover"),
        "RolloutRecorder": ("rlif_data.recording.recorder", "RolloutRecorder"),
        "SessionInfo": ("rlif_data.recording.recorder", "SessionInfo"),
        "record_session": ("rlif_data.recording.recorder", "record_session"),
        "RecordConfig": ("rlif_data.recording.sim", "RecordConfig"),
        "record_from_config": ("rlif_data.recording.sim", "record_from_config"),
        "make_dm_env": ("rlif_data.envs.gym_dm_env", "make_dm_env"),
        "make_camera_dm_env": ("rlif_data.envs.cameras", "make_camera_dm_env"),
        "as_tf_dataset": ("rlif_data.tfdata", "as_tf_dataset"),
    }
    if name in lazy:
        import importlib

        module, attr = lazy[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rlif_data' has no attribute {name!r}")


__all__ = [
    "__version__", "code_version", "schema",
    # schema and in-memory episodes
    "EpisodeSchema", "Source", "vector_schema", "camera_schema", "StepInfo", "build_steps",
    "check_action", "check_observation", "infer_schema", "summarize_episode",
    # intervention models
    "InterventionModel", "DecisionContext", "RandomTakeover", "IIDRandom", "ValueBased",
    "ExternalTakeover", "NoIntervention", "TakeoverSignal", "make_random_model",
    "value_based_paper", "value_based_official",
    # relabelling and selection
    "RelabelRule", "PAPER", "PAPER_POLICY_ONLY", "OFFICIAL", "RULES", "HG_DAGGER", "DAGGER",
    "rlif_rewards", "relabel_episode", "episode_transitions",
    "EpisodeInfo", "Selection", "select_episodes",
    # recording and reading (lazy)
    "EpisodeStore", "EpisodeReader", "read_episodes", "recover", "RolloutRecorder",
    "SessionInfo", "record_session", "RecordConfig", "record_from_config", "make_dm_env",
    "make_camera_dm_env", "as_tf_dataset",
    # errors
    "RlifDataError", "SchemaError", "SchemaMismatchError", "InvalidActionError",
    "FormatVersionError", "RecordingError", "RecordingLockedError", "CorruptRecordingError",
    "UnknownEnvironmentError",
]
