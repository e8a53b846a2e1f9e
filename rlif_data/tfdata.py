"""A dataset as a `tf.data.Dataset` of RLDS episodes, for tf.data consumers.

`tfds.builder_from_directory(path).as_dataset()` raises `NotImplementedError`
for `array_record` files, which is what rlif-data writes (random access
without TensorFlow). `as_tf_dataset` gives tf.data users (`rlds.transformations`,
OpenX/Octo-style loaders) the same elements `as_dataset` would: one dict per
episode, its metadata as scalars and ``steps`` as a nested `tf.data.Dataset`.

Records come from the random-access `EpisodeReader` and are decoded by the
dataset's own TFDS features, so images, text and the `include` mask arrive as
TFDS would give them. TensorFlow is imported only when `as_tf_dataset` is called.

A relabelled dataset's steps carry `include`: whether the transition from that
step belongs to the dataset's view. Steps are never dropped here (that would
break RLDS' step alignment); a consumer that ignores `include` trains on the
wrong transitions.
"""

from __future__ import annotations

import os

from typing import Any, Iterator, Optional

from rlif_data import schema as sc


def _records(directory: str, count: int) -> Iterator[bytes]:
    """Serialized episodes of `directory` in order, one reader per pass over the data."""
    from rlif_data.recording.reader import EpisodeReader

    with EpisodeReader(directory, repair=False) as reader:
        # A recording appended to since: the dataset keeps the episodes it was built with.
        for i in range(min(count, len(reader))):
            yield reader.raw(i)


def as_tf_dataset(ref: str, root: Optional[str] = None) -> Any:
    """The episodes of a dataset as a `tf.data.Dataset` in RLDS layout.

    Args:
      ref: a dataset directory, ``name@tag`` or ``name:version``.
      root: the registry root for references (default ``$RLIF_DATA_ROOT`` or
        ``~/.rlif_data``).

    Returns:
      A `tf.data.Dataset` with one element per episode, in stored order: the
      episode metadata fields of `rlif_data.schema` as scalar tensors and
      `schema.STEPS` as a `tf.data.Dataset` of step dicts (every step field,
      including `include` and `env_reward` in a relabelled dataset). Iterating
      it again reads the files again.

    Raises:
      FileNotFoundError / RegistryError: `ref` names no directory or version.
      CorruptRecordingError: not a dataset, or one whose writer was
        interrupted (run `rlif-data recover`).
      FormatVersionError: written by an incompatible rlif-data format.
    """
    # TensorFlow's C++ start-up banner (oneDNN, CPU features) is not news to a
    # reader of a dataset; a caller who set the variable keeps their level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from rlif_data.recording.reader import EpisodeReader, check_stored_features
    from rlif_data.registry.store import resolve_dataset

    directory = resolve_dataset(ref, root)
    # Opened here, not on first iteration: a bad ref or damaged data fails now.
    with EpisodeReader(directory, repair=False) as reader:
        count = len(reader)
        features = sc.features_dict(reader.schema)
        check_stored_features(reader.directory, features)
        directory = reader.directory
    records = tf.data.Dataset.from_generator(
        lambda: _records(directory, count), output_signature=tf.TensorSpec((), tf.string))
    # TFDS' own decoding: its `Dataset` feature turns the steps into a nested dataset.
    episodes = records.map(features.deserialize_example)
    return episodes.apply(tf.data.experimental.assert_cardinality(count))
