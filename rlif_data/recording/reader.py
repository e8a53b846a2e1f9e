"""Read recorded episodes back as NumPy dicts, with random access and no TensorFlow.

The files are a plain TFDS dataset, so `tfds.builder_from_directory(dir)`
reads them too; this reader skips TFDS' per-step Python objects and returns
whole episodes as stacked arrays, which is what relabelling and replay buffers
want.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
from typing import Any, Iterator, Mapping

import numpy as np

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording import example_proto, serialize, store, stored_features
from rlif_data.recording.feature_config import check_features_json

log = logging.getLogger(__name__)
MAX_OPEN_SHARDS = 32


def _to_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class EpisodeReader:
    """Random access to the episodes of a recording directory.

    Args:
      directory: a recording written by `EpisodeStore`.
      repair: if the writer was killed (temporary files, unindexed shards),
        repair the directory first (`store.recover`); if False, raise.

    Raises:
      CorruptRecordingError: not a recording, or damaged beyond repair.
      FormatVersionError: written by an incompatible rlif-data format.
    """

    def __init__(self, directory: str, repair: bool = True):
        self.directory = os.path.abspath(directory)
        if not os.path.isdir(self.directory):
            raise errors.CorruptRecordingError(f"{self.directory}: no such directory")
        # Before any TFDS call: a foreign features.json would make TFDS import its classes.
        check_features_json(self.directory)
        self.schema = store.read_schema(self.directory)
        if store.needs_recovery(self.directory):
            if not repair:
                raise errors.CorruptRecordingError(
                    f"{self.directory}: the writer was interrupted; run "
                    f"`rlif-data recover {self.directory}`"
                )
            try:
                report = store.recover(self.directory)
                log.warning("recovered %s: removed %s, indexed %s", self.directory,
                            report.removed_temporary, report.indexed_shards)
            except errors.RecordingLockedError:
                # A live writer: its in-flight files are not ours to touch, and
                # the index it keeps lists exactly the committed episodes.
                pass
        self._paths = store.shard_paths(self.directory)
        lengths, _ = store.indexed_shard_lengths(store.read_index(self.directory))
        # (shard, record) of every episode, in commit order.
        self._locations = [(s, r) for s, n in enumerate(lengths) for r in range(n)]
        # Open shard readers, least recently used first: recordings have one
        # shard per episode, and keeping all open would exhaust file handles.
        self._readers: "collections.OrderedDict[int, Any]" = collections.OrderedDict()
        self._parser = None

    def __len__(self) -> int:
        return len(self._locations)

    def _ensure_parser(self):
        if self._parser is None:
            if serialize.supports(self.schema):
                # The inverse of the writer's serializer, without TFDS (~0.2 s per process).
                check_stored_schema(self.directory, self.schema)
                self._parser = _FastParser(sc.serialized_fields(self.schema))
            else:  # PNG frames: TFDS' own parser
                from tensorflow_datasets.core import example_parser

                features = sc.features_dict(self.schema)
                check_stored_features(self.directory, features)
                self._parser = example_parser.ExampleParserNp(features.get_serialized_info())
        return self._parser

    def prepare(self) -> None:
        """Load what decoding needs (and check the stored features) before the first episode.

        A worker process calls it before it reports ready, so the first
        request does not pay the imports.

        Raises:
          FormatVersionError / UnsafeDataError: as `check_stored_features`.
        """
        self._ensure_parser()

    def _reader(self, shard: int, episode: int):
        if shard in self._readers:
            self._readers.move_to_end(shard)
        else:
            from array_record.python import array_record_module

            if len(self._readers) >= MAX_OPEN_SHARDS:
                _close_quietly(self._readers.popitem(last=False)[1])
            path = self._paths[shard]
            try:
                reader = array_record_module.ArrayRecordReader(path)
            except Exception as exc:
                _refuse_unreadable(path, episode, str(exc))
                raise errors.CorruptRecordingError(
                    f"{path}: episode {episode}: cannot open shard ({exc}); the file is damaged"
                ) from None
            # A truncated shard opens "fine" with 0 records: only ok() tells.
            if not reader.ok():
                why = _close_quietly(reader) or "damaged footer"
                _refuse_unreadable(path, episode, why)
                raise errors.CorruptRecordingError(
                    f"{path}: episode {episode}: truncated or damaged shard ({why}); "
                    f"`rlif-data recover {self.directory}` sets it aside")
            self._readers[shard] = reader
        return self._readers[shard]

    def raw(self, i: int) -> bytes:
        """The serialised record of episode `i`.

        Raises:
          CorruptRecordingError: naming the shard file and episode `i`.
          UnreadableShardError: the shard's permissions forbid reading it.
        """
        shard, record = self._locations[i]
        try:
            return self._reader(shard, i).read([record])[0]
        except (errors.CorruptRecordingError, UnreadableShardError):
            raise
        except Exception as exc:
            # The reader keeps failing once a read failed; a fresh one may read
            # the shard's other records.
            failed = self._readers.pop(shard, None)
            if failed is not None:
                _close_quietly(failed)
            raise errors.CorruptRecordingError(
                f"{self._paths[shard]}: cannot read episode {i} ({exc})"
            ) from None

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Episode `i` as ``{STEPS: {field: stacked array}, <metadata>: value}``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.directory}: episode {i} out of range (0..{len(self) - 1})")
        i %= len(self)
        return self._decode(self._parse(i, self._ensure_parser().parse_example))

    def _parse(self, i: int, parse) -> Any:
        """``parse(raw record of episode i)``, failures reported as a damaged shard."""
        try:
            return parse(self.raw(i))
        except (errors.CorruptRecordingError, UnreadableShardError):
            raise
        except Exception as exc:
            raise errors.CorruptRecordingError(
                f"{self._paths[self._locations[i][0]]}: episode {i} cannot be decoded ({exc})"
            ) from None

    def summary(self, i: int) -> dict[str, Any]:
        """Episode `i`'s metadata and its `IS_FIRST` and `SOURCE` steps only.

        A partial episode in the usual layout, read without decoding the other
        step fields (about 10x cheaper): enough for lengths and strata.
        """
        feature = self._parse(i, example_proto.Example.FromString).features.feature
        out: dict[str, Any] = {}
        for key in sc.EPISODE_METADATA_FIELDS:
            if key in _TEXT_FIELDS:
                out[key] = _to_text(feature[key].bytes_list.value[0])
            else:
                out[key] = int(feature[key].int64_list.value[0])
        steps = {field: np.asarray(feature[f"{sc.STEPS}/{field}"].int64_list.value)
                 for field in (sc.IS_FIRST, sc.SOURCE)}
        out[sc.STEPS] = {sc.IS_FIRST: steps[sc.IS_FIRST].astype(bool), sc.SOURCE: steps[sc.SOURCE]}
        return out

    def _decode(self, parsed: dict[str, Any]) -> dict[str, Any]:
        out = {k: _to_text(v) if k in _TEXT_FIELDS else v for k, v in parsed.items()
               if k != sc.STEPS}
        steps = dict(parsed[sc.STEPS])
        obs_spec = self.schema.observation
        if isinstance(obs_spec, Mapping):
            steps[sc.OBSERVATION] = {
                k: _decode_frames(v, obs_spec[k]) for k, v in steps[sc.OBSERVATION].items()
            }
        if self.schema.infos:
            steps[sc.INFOS] = {k: _decode_rows(v, self.schema.infos[k])
                               for k, v in steps[sc.INFOS].items()}
        out[sc.STEPS] = steps
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        """Close open shard readers.

        Never raises: array_record's close() re-raises a shard's read error,
        which `raw` already reported with the file and episode; raising it
        again here would replace that clear error with a bare one.
        """
        for reader in self._readers.values():
            _close_quietly(reader)
        self._readers.clear()

    def __enter__(self) -> "EpisodeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class UnreadableShardError(errors.RlifDataError, PermissionError):
    """A shard exists but this process may not read it: a permissions problem, not damage."""


class _FastParser:
    """``parse_example`` as TFDS' ``ExampleParserNp`` has it, through `serialize.parse_episode`.

    Decoding 1M state steps took 2.6 s with TFDS' parser, 1.7 s of it making
    NumPy arrays from protobuf float lists one Python float at a time.
    """

    def __init__(self, fields: Mapping[str, sc.SerializedField]):
        self._flat = dict(fields)

    def parse_example(self, raw: bytes) -> Any:
        """The nested episode of one serialized record."""
        return serialize.nest_flat(serialize.parse_episode(raw, self._flat))


def _refuse_unreadable(path: str, episode: int, why: str) -> None:
    """Raise `UnreadableShardError` when the C++ reader's failure `why` is a permission error.

    `recover` would set such a shard aside as damaged; it is whole.
    """
    if errors.errno_in_text(why) in (errno.EACCES, errno.EPERM):
        raise UnreadableShardError(
            f"{path}: episode {episode}: permission denied: make the file readable by whoever "
            "reads it (a job's every worker too), e.g. `chmod a+r`")


def _close_quietly(reader) -> str:
    """Close an array_record reader; returns the error it re-raised ('' if none)."""
    try:
        reader.close()
    except Exception as exc:  # the C++ reader raises plain RuntimeError
        log.debug("closing a damaged shard: %s", exc)
        return str(exc)
    return ""


def _flat_signature(features) -> dict[str, str]:
    import tree

    info = features.get_serialized_info()
    return stored_features.signature(
        {"/".join(map(str, path)): leaf for path, leaf in tree.flatten_with_path(info)})


def check_stored_features(directory: str, expected) -> None:
    """Raise `FormatVersionError` if the stored features differ from this code's.

    The schema JSON pins shapes; this also catches a field added, removed or
    renamed without a format-version bump.

    Args:
      directory: the dataset directory.
      expected: the TFDS features this code writes (`schema.features_dict`).

    Raises:
      UnsafeDataError: the stored features name a class rlif-data does not
        write (checked before TFDS sees the file).
      FormatVersionError: the stored fields differ from `expected`.
    """
    check_features_json(directory)
    _compare_stored(directory, _stored_signature(directory), _flat_signature(expected))


def check_stored_schema(directory: str, schema: sc.EpisodeSchema) -> None:
    """`check_stored_features` against `schema`'s features, without importing TFDS.

    The wanted side comes from `schema.serialized_fields`; the stored side
    from features.json read as JSON (`stored_features`), or by TFDS when the
    file holds a form rlif-data does not write.

    Raises:
      UnsafeDataError / FormatVersionError: as `check_stored_features`.
    """
    check_features_json(directory)
    _compare_stored(directory, _stored_signature(directory),
                    stored_features.signature(sc.serialized_fields(schema)))


def _stored_signature(directory: str) -> dict[str, str]:
    """The flat signature of the stored features (call `check_features_json` first)."""
    try:
        return stored_features.read_signature(directory)
    except stored_features.Unrecognised:
        import tensorflow_datasets as tfds

        return _flat_signature(tfds.features.FeatureConnector.from_config(directory))


def _compare_stored(directory: str, stored: dict[str, str], wanted: dict[str, str]) -> None:
    if stored != wanted:
        missing = sorted(set(wanted) - set(stored))
        extra = sorted(set(stored) - set(wanted))
        changed = sorted(k for k in set(stored) & set(wanted) if stored[k] != wanted[k])
        raise errors.FormatVersionError(
            f"{directory}: stored fields differ from rlif format {sc.FORMAT_VERSION} "
            f"(missing {missing}, unexpected {extra}, changed {changed}); it was written by "
            "another rlif-data version"
        )


_TEXT_FIELDS = frozenset(
    f for f in sc.EPISODE_METADATA_FIELDS if f not in (sc.ROUND, sc.SEED)
)


def _decode_frames(values: np.ndarray, spec: sc.LeafSpec) -> np.ndarray:
    """Camera frames come back as one bytes value per frame (raw or PNG)."""
    if not isinstance(spec, sc.ImageSpec):
        return values
    if spec.encoding == "png":
        import io

        from PIL import Image

        return np.stack([np.asarray(Image.open(io.BytesIO(f))) for f in values])
    return np.frombuffer(b"".join(values), np.uint8).reshape((len(values),) + spec.shape)


def _decode_rows(values: np.ndarray, spec: sc.ArraySpec) -> np.ndarray:
    """An extra step field (`schema.INFOS`) comes back as one bytes value per step."""
    return np.frombuffer(b"".join(values), np.dtype(spec.dtype)).reshape(
        (len(values),) + tuple(spec.shape))


def read_episodes(directory: str) -> list[dict[str, Any]]:
    """All episodes of a recording, in commit order."""
    with EpisodeReader(directory) as reader:
        return list(reader)
