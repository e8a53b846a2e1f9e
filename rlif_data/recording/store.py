"""Crash-safe episode storage: a TFDS dataset in `array_record` format.

Why not envlogger's TFDS backend: it keeps the open shard in a buffer, so a
killed process loses *completed* episodes (docs/design.md, section 6). Here
every episode is committed on its own the moment it ends:

1. the episode is serialised with the dataset's TFDS features and written to
   a hidden temporary shard, which is closed and fsync'ed;
2. the shard is renamed into place (atomic on POSIX) and the directory fsync'ed;
3. `dataset_info.json` is rewritten through a temporary file and an atomic rename.

A process killed at any moment leaves (a) a temporary shard, never visible to
readers, or (b) a complete shard that the index does not list yet. `recover`
removes (a) and indexes (b); `EpisodeReader` does the same on open. So a kill
loses at most the episode in flight.

One shard per episode keeps every commit independent; datasets built by the
pipelines (which are not interrupted mid-write) use larger shards.
"""

# Why this module is over ~450 lines: it is the whole crash-safety protocol of
# a recording (shard and index layout, the writer lock, recovery and the
# writer), whose steps have to be read together to check that a kill at any
# point leaves a directory `recover` repairs (docs/design.md, section 6). The
# TFDS layout helpers that readers, merge and pipelines also use can move to
# their own module (issue 12, item 5) once nobody else is editing this file.

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import pathlib
import re
import shutil
import tempfile
import time
from typing import Any, Callable, Optional

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.faults import checkpoint
from rlif_data.fsutil import fsync_path
from rlif_data.recording import serialize

log = logging.getLogger(__name__)

SPLIT = "train"
FILE_FORMAT = "array_record"
LOCK_FILE = ".rlif-writer.lock"
TMP_PREFIX = ".tmp-"
# Hidden, so publish and readers skip it; kept rather than deleted so the bytes
# of a damaged episode can still be examined.
DAMAGED_PREFIX = ".damaged-"
INFO_FILE = sc.DATASET_INFO_FILE
_SHARD_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}"


def shard_name(dataset_name: str, index: int) -> str:
    """File name of shard `index` (TFDS' sequential-writer naming, no '-of-N')."""
    return f"{dataset_name}-{SPLIT}.{FILE_FORMAT}-{index:05d}"


def _shard_pattern(dataset_name: str) -> re.Pattern:
    return re.compile(re.escape(f"{dataset_name}-{SPLIT}.{FILE_FORMAT}-") + r"(\d{5,})$")


def list_shards(directory: str, dataset_name: str) -> list[tuple[int, str]]:
    """(index, file name) of every complete shard file in `directory`, by index."""
    pattern = _shard_pattern(dataset_name)
    found = []
    for name in os.listdir(directory):
        m = pattern.match(name)
        if m:
            found.append((int(m.group(1)), name))
    return sorted(found)


def open_array_record_writer(path: str):
    """The array_record writer used for shards (one record per group: random access)."""
    from array_record.python import array_record_module

    return array_record_module.ArrayRecordWriter(path, "group_size:1")


def count_records(path: str) -> int:
    """Number of records in a complete array_record shard (reads its footer only).

    Raises:
      CorruptRecordingError: the file is not a readable array_record file
        (truncated, no footer, not array_record).
    """
    from array_record.python import array_record_module

    try:
        reader = array_record_module.ArrayRecordReader(path)
    except Exception as exc:  # the C++ reader raises plain RuntimeError/ValueError
        raise errors.CorruptRecordingError(
            f"{path}: not a readable array_record shard ({exc})") from None
    # A truncated file opens "successfully" with 0 records; only ok() and
    # close() tell, and close() raises the reader's stored error.
    ok, count = reader.ok(), reader.num_records()
    try:
        reader.close()
    except Exception as exc:
        ok, why = False, str(exc)
    else:
        why = "damaged footer"
    if not ok:
        raise errors.CorruptRecordingError(
            f"{path}: truncated or damaged array_record shard ({why})")
    return count


def shard_problems(directory: str) -> list[str]:
    """What is wrong with the indexed shards of a dataset, cheaply (empty: all parse).

    Opens every shard the index lists and compares its footer's record count
    with the index; does not read the records (see `Registry.verify(deep=True)`).
    Datasets in another file format than array_record are not checked.

    Args:
      directory: a recording or a TFDS-built dataset directory.

    Returns:
      One line per damaged shard, naming the file and the episodes it holds.
    """
    index = read_index(directory)
    if index.get("fileFormat", FILE_FORMAT) != FILE_FORMAT:
        return []
    lengths, _ = indexed_shard_lengths(index)
    problems = []
    first = 0
    for path, expected in zip(shard_paths(directory), lengths):
        # No square brackets: the CLI prints messages as rich markup.
        episodes = (f"episode {first}" if expected == 1
                    else f"episodes {first}..{first + expected - 1}")
        try:
            found = count_records(path) if os.path.exists(path) else None
        except errors.CorruptRecordingError as exc:
            problems.append(f"{exc}; it holds {episodes}")
        else:
            if found is None:
                problems.append(f"{path}: missing shard; it holds {episodes}")
            elif found != expected:
                problems.append(f"{path}: holds {found} records, the index says {expected}; "
                                f"it holds {episodes}")
        first += expected
    return problems


def build_info(directory: str, schema: sc.EpisodeSchema, metadata: dict[str, Any]):
    """TFDS `DatasetInfo` of an rlif-data dataset: features, schema and format version."""
    import tensorflow_datasets as tfds

    identity = tfds.core.dataset_info.DatasetIdentity(
        name=schema.name, version=tfds.core.Version("1.0.0"), data_dir=directory, module_name=""
    )
    md = {sc.FORMAT_VERSION_KEY: sc.FORMAT_VERSION, sc.SCHEMA_KEY: schema.to_json(), **metadata}
    info = tfds.rlds.rlds_base.build_info(
        sc.dataset_config(schema), identity, tfds.core.MetadataDict(md)
    )
    info.set_file_format(FILE_FORMAT)
    return info


def shard_template(directory: str, dataset_name: str, template: str = _SHARD_TEMPLATE):
    """TFDS file-name template of the train split (sequential by default)."""
    import tensorflow_datasets as tfds

    return tfds.core.naming.ShardedFileTemplate(
        dataset_name=dataset_name,
        data_dir=directory,
        split=SPLIT,
        filetype_suffix=FILE_FORMAT,
        template=template,
    )


def split_dict(directory: str, dataset_name: str, shard_lengths: list[int], num_bytes: int,
               template: str = _SHARD_TEMPLATE):
    """The TFDS `SplitDict` of the train split with these shards."""
    import tensorflow_datasets as tfds

    return tfds.core.SplitDict(
        [
            tfds.core.SplitInfo(
                name=SPLIT,
                shard_lengths=list(shard_lengths),
                num_bytes=num_bytes,
                filename_template=shard_template(directory, dataset_name, template),
            )
        ]
    )


def _check_is_directory(directory: str) -> None:
    """Refuse a path that is a file where a recording directory is expected.

    Raises:
      CorruptRecordingError: `directory` is an existing file.
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise errors.CorruptRecordingError(
            f"{directory} is a file, not a directory; give a recording or dataset directory "
            "(`record --out` creates a new one)")


def read_index(directory: str) -> dict[str, Any]:
    """The parsed `dataset_info.json` of a recording directory."""
    _check_is_directory(directory)
    path = os.path.join(directory, INFO_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise errors.CorruptRecordingError(
            f"{directory}: no {INFO_FILE}; not an rlif-data recording directory"
        ) from None
    except json.JSONDecodeError as exc:
        raise errors.CorruptRecordingError(f"{path}: unreadable index ({exc})") from None


def read_schema(directory: str) -> sc.EpisodeSchema:
    """The `EpisodeSchema` stored with a recording (format version checked)."""
    _check_is_directory(directory)
    path = os.path.join(directory, sc.METADATA_FILE)
    try:
        with open(path) as f:
            metadata = json.load(f)
    except FileNotFoundError:
        raise errors.CorruptRecordingError(
            f"{directory}: no {sc.METADATA_FILE}; not an rlif-data recording directory"
        ) from None
    sc.check_format_version(metadata.get(sc.FORMAT_VERSION_KEY), directory)
    return sc.EpisodeSchema.from_json(metadata[sc.SCHEMA_KEY])


def indexed_shard_lengths(index: dict[str, Any]) -> tuple[list[int], int]:
    """(shard lengths, bytes) of the train split as the index records them."""
    for split in index.get("splits", []):
        if split.get("name") == SPLIT:
            return [int(x) for x in split.get("shardLengths", [])], int(split.get("numBytes", 0))
    return [], 0


@contextlib.contextmanager
def writer_lock(directory: str):
    """Hold the directory's writer lock (an flock: released when the process dies).

    Raises:
      RecordingLockedError: another live process holds it.
    """
    path = os.path.join(directory, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise errors.RecordingLockedError(
                f"{directory}: another process (pid {holder}) is writing to this recording"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def active_writer(directory: str) -> Optional[str]:
    """The pid of a live writer of `directory`, or None.

    Probes with a shared lock, which a live writer's exclusive lock blocks but
    other probes do not: several readers may check at once without seeing
    each other as writers.
    """
    path = os.path.join(directory, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        return None
    finally:
        os.close(fd)


@dataclasses.dataclass
class RecoveryReport:
    """What `recover` found and did."""

    directory: str
    removed_temporary: list[str]
    indexed_shards: list[str]
    episodes: int
    # Shards that do not parse (truncated, damaged footer), moved aside as
    # DAMAGED_PREFIX + name and replaced by an empty shard: their episodes are lost.
    damaged_shards: list[str] = dataclasses.field(default_factory=list)
    # Index files written anew (a writer killed during its very first index write).
    rebuilt_files: list[str] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether recovery modified the directory."""
        return bool(self.removed_temporary or self.indexed_shards or self.damaged_shards
                    or self.rebuilt_files)


def _is_sequential(index: dict[str, Any]) -> bool:
    """Whether the index uses the append-only recording layout (vs a finished TFDS build)."""
    for split in index.get("splits", []):
        if split.get("name") == SPLIT:
            return split.get("filepathTemplate", _SHARD_TEMPLATE) == _SHARD_TEMPLATE
    return True


def _creation_interrupted(directory: str) -> bool:
    """Whether a writer was killed during the very first index write.

    `write_info` moves the metadata and feature files in before
    dataset_info.json, so such a kill leaves a readable metadata.json and no
    index; nothing else of ours can be there yet except shards (none are
    written before the first index) and temporary files.
    """
    return (not os.path.exists(os.path.join(directory, INFO_FILE))
            and os.path.exists(os.path.join(directory, sc.METADATA_FILE)))


def needs_recovery(directory: str) -> bool:
    """Whether a crashed writer left temporary files, unindexed shards or no index at all."""
    if _creation_interrupted(directory):
        return True
    index = read_index(directory)
    if not _is_sequential(index):
        return False  # built in one go by TFDS/Beam, which publishes by renaming a directory
    lengths, _ = indexed_shard_lengths(index)
    shards = list_shards(directory, index["name"])
    leftovers = [n for n in os.listdir(directory) if n.startswith(TMP_PREFIX)]
    return bool(leftovers) or len(shards) != len(lengths)


def recover(directory: str) -> RecoveryReport:
    """Repair a recording left by a killed writer; never touches complete episodes.

    Removes temporary shards (the episode that was in flight), adds complete
    but unindexed shards to the index, and checks every shard's footer and
    record count: a shard that does not parse (truncated on disk, damaged
    footer) is moved aside (``.damaged-<name>``) and replaced by an empty
    shard, so the other episodes stay readable and the loss is reported.

    A writer killed during the very first index write leaves metadata.json
    without dataset_info.json; the index is then written anew from the stored
    schema and metadata.

    Raises:
      RecordingLockedError: a live writer still holds the directory.
      CorruptRecordingError: no such directory (or a file), or shards are
        missing from the middle of the sequence.
      RecordingError: the disk refused a write (read-only, full); the
        committed episodes are intact.
    """
    _check_is_directory(directory)
    if not os.path.isdir(directory):
        raise errors.CorruptRecordingError(
            f"{directory}: no such directory; give the recording directory to recover")
    try:
        with writer_lock(directory):
            return _recover_locked(directory)
    except OSError as exc:
        raise errors.RecordingError(
            f"recover of {directory} failed: {errors.describe_os_error(exc)}; every committed "
            "episode is intact, run recover again once that is fixed") from exc


def _stored_metadata(directory: str) -> dict[str, Any]:
    """The user metadata of metadata.json (without the schema and format version)."""
    with open(os.path.join(directory, sc.METADATA_FILE)) as f:
        stored = json.load(f)
    return {k: v for k, v in stored.items() if k not in (sc.FORMAT_VERSION_KEY, sc.SCHEMA_KEY)}


def _recover_locked(directory: str) -> RecoveryReport:
    schema = read_schema(directory)
    rebuilt = _creation_interrupted(directory)
    lengths, num_bytes = ([], 0) if rebuilt else indexed_shard_lengths(read_index(directory))
    removed = _remove_temporaries(directory)
    checkpoint("recover.temporaries_removed")
    shards = list_shards(directory, schema.name)
    if [i for i, _ in shards] != list(range(len(shards))) or len(shards) < len(lengths):
        raise errors.CorruptRecordingError(
            f"{directory}: shard files {[n for _, n in shards]} do not form the sequence "
            f"0..{max(len(lengths), len(shards)) - 1} that the index expects"
        )
    added, damaged = [], []
    for i, name in shards:
        path = os.path.join(directory, name)
        try:
            found, why = count_records(path), None
        except errors.CorruptRecordingError as exc:
            found, why = None, str(exc)
        if i >= len(lengths):  # complete but unindexed: index what it holds
            lengths.append(found or 0)
            if found is not None:
                num_bytes += os.path.getsize(path)
                added.append(name)
        elif found == 0 and lengths[i] and os.path.lexists(
                os.path.join(directory, DAMAGED_PREFIX + name)):
            # The empty stand-in of a shard that a recover killed before its
            # index write already set aside: only the index is behind.
            log.warning("%s: episodes were set aside as %s%s by an interrupted recover",
                        path, DAMAGED_PREFIX, name)
            lengths[i] = 0
            damaged.append(name)
        elif found is not None and found != lengths[i]:
            why = f"{path}: holds {found} records, the index says {lengths[i]}"
        if why is not None:
            log.warning("%s; moved aside as %s%s, its episodes are lost", why, DAMAGED_PREFIX,
                        name)
            _set_aside(directory, name)
            lengths[i] = 0
            damaged.append(name)
    checkpoint("recover.before_index")
    if added or damaged or rebuilt:
        if rebuilt:
            log.warning("%s: the writer was killed while creating the index; writing it anew",
                        directory)
            info = build_info(directory, schema, _stored_metadata(directory))
        else:
            info = build_info(directory, schema, {})
            info.read_from_directory(directory)
        info.set_splits(split_dict(directory, schema.name, lengths, num_bytes))
        write_info(info, directory)
    if removed or added or damaged or rebuilt:
        fsync_path(directory)
    return RecoveryReport(directory, removed, added, sum(lengths), damaged,
                          [INFO_FILE] if rebuilt else [])


def _remove_temporaries(directory: str) -> list[str]:
    """Delete what killed writers left half-written (TMP_PREFIX files and directories)."""
    removed = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(TMP_PREFIX):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(name)
    return removed


def _set_aside(directory: str, name: str) -> None:
    """Move a damaged shard to ``.damaged-<name>`` and put an empty shard in its place."""
    path = os.path.join(directory, name)
    aside = os.path.join(directory, DAMAGED_PREFIX + name)
    n = 1
    linked = False
    while os.path.lexists(aside):  # damaged again after an earlier recovery
        if os.path.samefile(aside, path):
            linked = True  # an interrupted recover linked it already
            break
        aside = os.path.join(directory, f"{DAMAGED_PREFIX}{name}.{n}")
        n += 1
    tmp = os.path.join(directory, f"{TMP_PREFIX}{name}")
    writer = open_array_record_writer(tmp)
    writer.close()
    fsync_path(tmp)
    # A link, then a replace: a kill in between leaves the damaged shard in
    # place (found again by the next recover), never a hole in the sequence.
    if not linked:
        try:
            os.link(path, aside)
        except OSError:
            shutil.copyfile(path, aside)
    checkpoint("recover.shard_linked")
    os.replace(tmp, path)


def write_info(info, directory: str) -> None:
    """Write TFDS' info files next to the shards, each by an atomic rename."""
    staging = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=directory)
    try:
        info.write_to_directory(staging)
        checkpoint("index.staged")
        for name in sorted(os.listdir(staging)):
            # dataset_info.json last: it is what makes new shards visible.
            if name != INFO_FILE:
                os.replace(os.path.join(staging, name), os.path.join(directory, name))
        checkpoint("index.partly_moved")
        src = os.path.join(staging, INFO_FILE)
        fsync_path(src)
        os.replace(src, os.path.join(directory, INFO_FILE))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class WriteTiming:
    """How long one `EpisodeStore.write_episode` took, by phase (seconds, `time.perf_counter`).

    Attributes:
      episode_id: the episode written.
      num_bytes: its serialised size.
      serialize_s: encoding with the dataset's features.
      write_s: writing, closing and fsyncing the shard, the rename and the
        directory fsync (the commit point).
      index_s: rewriting dataset_info.json.
    """

    episode_id: str
    num_bytes: int
    serialize_s: float
    write_s: float
    index_s: float

    @property
    def total_s(self) -> float:
        """The whole write."""
        return self.serialize_s + self.write_s + self.index_s


class EpisodeStore:
    """Appends episodes to a recording directory, one durable commit each.

    Use `EpisodeStore.open(directory, schema)`; it creates the directory, or
    appends to one that holds the same schema. Not thread-safe; one writer
    per directory (enforced with a lock file).

    `on_write` (optional, settable) is called with a `WriteTiming` after each
    episode is durable: the public timing hook benchmarks and monitors use.
    """

    def __init__(self, directory: str, schema: sc.EpisodeSchema, metadata: Optional[dict] = None,
                 on_write: Optional[Callable[[WriteTiming], None]] = None):
        self.directory = os.path.abspath(directory)
        self.schema = schema
        self.on_write = on_write
        self._lock_cm = None
        self._metadata = dict(metadata or {})
        self._closed = False

    @classmethod
    def open(cls, directory: str, schema: sc.EpisodeSchema, metadata: Optional[dict] = None,
             on_write: Optional[Callable[[WriteTiming], None]] = None) -> "EpisodeStore":
        """Open `directory` for appending (created if missing).

        Args:
          directory: the recording directory (holds the TFDS dataset files).
          schema: the schema of the episodes to be written.
          metadata: dataset-level metadata stored on creation (JSON-able).
          on_write: called with each write's `WriteTiming` once it is durable.

        Raises:
          SchemaMismatchError: the directory holds a recording with another schema.
          RecordingLockedError: another live process is writing there.
          RecordingError: the directory holds files that are not a recording,
            or the disk refused a write (read-only, full).
          CorruptRecordingError: `directory` is a file.
        """
        store = cls(directory, schema, metadata, on_write)
        store._open()
        return store

    def _open(self) -> None:
        _check_is_directory(self.directory)
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._lock_cm = writer_lock(self.directory)
            self._lock_cm.__enter__()
        except OSError as exc:
            raise errors.RecordingError(
                f"cannot record into {self.directory}: {errors.describe_os_error(exc)}; "
                "the episodes recorded there before are intact") from exc
        try:
            self._init_or_load()
        except OSError as exc:
            self._release()
            raise errors.RecordingError(
                f"cannot record into {self.directory}: {errors.describe_os_error(exc)}; "
                "the episodes recorded there before are intact") from exc
        except BaseException:
            self._release()
            raise

    def _init_or_load(self) -> None:
        import tensorflow_datasets as tfds
        from tensorflow_datasets.core import example_serializer

        info_path = os.path.join(self.directory, INFO_FILE)
        if _creation_interrupted(self.directory):
            read_schema(self.directory)  # only a directory rlif-data started is repaired
            _recover_locked(self.directory)
        if os.path.exists(info_path):
            existing = read_schema(self.directory)
            if existing != self.schema:
                raise errors.SchemaMismatchError(
                    f"{self.directory} already holds episodes with another schema; "
                    f"found {existing.describe()}, asked to write {self.schema.describe()}. "
                    "Record into a new directory."
                )
            if needs_recovery(self.directory):
                _recover_locked(self.directory)
            self._info = build_info(self.directory, self.schema, self._metadata)
            self._info.read_from_directory(self.directory)
            self._lengths, self._num_bytes = indexed_shard_lengths(read_index(self.directory))
        else:
            stray = [n for n in os.listdir(self.directory)
                     if n != LOCK_FILE and not n.startswith(TMP_PREFIX)]
            if stray:
                raise errors.RecordingError(
                    f"{self.directory} is not empty and holds no rlif-data recording "
                    f"(found {sorted(stray)[:5]}); choose an empty or new directory"
                )
            _remove_temporaries(self.directory)  # a creation killed before its first index
            self._info = build_info(self.directory, self.schema, self._metadata)
            self._lengths, self._num_bytes = [], 0
            self._info.set_splits(split_dict(self.directory, self.schema.name, [], 0))
            write_info(self._info, self.directory)
        self._features = self._info.features
        self._serialized_info = self._features.get_serialized_info()
        self._serializer = example_serializer.ExampleSerializer(self._serialized_info)
        self._fast = serialize.supports(self.schema)
        self._packed = serialize.bytes_fields(self.schema)
        del tfds

    @property
    def num_episodes(self) -> int:
        """Episodes committed so far (including those there before opening)."""
        return sum(self._lengths)

    def serialize(self, episode: dict[str, Any]) -> bytes:
        """Encode one episode as the dataset's TFDS features would."""
        try:
            if self._fast:
                return serialize.serialize_episode(episode, self._serialized_info,
                                                   self._packed)
            return self._serializer.serialize_example(self._features.encode_example(episode))
        except Exception as exc:
            raise errors.SchemaError(
                f"{self.directory}: episode {episode.get(sc.EPISODE_ID, '?')!r} does not match "
                f"the schema: {exc}"
            ) from exc

    def write_episode(self, episode: dict[str, Any]) -> str:
        """Durably commit one episode; returns the shard path.

        Raises:
          SchemaError: the episode does not match the schema (nothing written).
          RecordingError: the write failed (e.g. disk full); earlier episodes
            are intact and the failed episode left no visible trace.
        """
        if self._closed:
            raise errors.RecordingError(f"{self.directory}: the store is closed")
        t0 = time.perf_counter()
        record = self.serialize(episode)
        t1 = time.perf_counter()
        index = len(self._lengths)
        final = os.path.join(self.directory, shard_name(self.schema.name, index))
        tmp = os.path.join(self.directory, f"{TMP_PREFIX}{shard_name(self.schema.name, index)}")
        episode_id = episode.get(sc.EPISODE_ID, "?")
        try:
            writer = open_array_record_writer(tmp)
            try:
                writer.write(record)
            finally:
                writer.close()
            fsync_path(tmp)
            checkpoint("record.shard_written")
            os.replace(tmp, final)
            fsync_path(self.directory)
            checkpoint("record.shard_renamed")
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            reason = "disk full" if exc.errno == errno.ENOSPC else str(exc)
            raise errors.RecordingError(
                f"{self.directory}: could not write episode {episode_id!r} ({reason}); "
                f"the {self.num_episodes} episodes written before are intact"
            ) from exc
        except Exception as exc:  # array_record raises RuntimeError on I/O failure
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise errors.RecordingError(
                f"{self.directory}: could not write episode {episode_id!r} ({exc}); "
                f"the {self.num_episodes} episodes written before are intact"
            ) from exc
        t2 = time.perf_counter()
        lengths = self._lengths + [1]
        num_bytes = self._num_bytes + len(record)
        self._info.set_splits(split_dict(self.directory, self.schema.name, lengths, num_bytes))
        try:
            write_info(self._info, self.directory)
        except OSError as exc:
            raise errors.RecordingError(
                f"{self.directory}: episode {episode_id!r} is saved in {os.path.basename(final)} "
                f"but the index could not be updated ({exc}); run `rlif-data recover "
                f"{self.directory}` once space is free"
            ) from exc
        self._lengths, self._num_bytes = lengths, num_bytes
        if self.on_write is not None:
            self.on_write(WriteTiming(str(episode_id), len(record), t1 - t0, t2 - t1,
                                      time.perf_counter() - t2))
        return final

    def _release(self) -> None:
        if self._lock_cm is not None:
            self._lock_cm.__exit__(None, None, None)
            self._lock_cm = None

    def close(self) -> None:
        """Release the writer lock. Every committed episode is already durable."""
        self._closed = True
        self._release()

    def __enter__(self) -> "EpisodeStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def shard_paths(directory: str) -> list[str]:
    """Paths of the indexed shards of a recording or TFDS-built dataset, in order.

    Raises:
      CorruptRecordingError: the index's shard-name template names files
        outside `directory` (data from elsewhere must not point the reader
        at other files).
    """
    paths = _shard_paths(directory)
    # abspath, not realpath: a shard may be a link into a registry's object store.
    root = os.path.abspath(directory)
    for path in paths:
        if os.path.dirname(os.path.abspath(path)) != root:
            raise errors.CorruptRecordingError(
                f"{directory}: its {sc.DATASET_INFO_FILE} names shard {path!r} outside the "
                "dataset directory; the index is damaged or hostile: get the data again")
    return paths


def _shard_paths(directory: str) -> list[str]:
    index = read_index(directory)
    lengths, _ = indexed_shard_lengths(index)
    template = _SHARD_TEMPLATE
    for split in index.get("splits", []):
        if split.get("name") == SPLIT:
            template = split.get("filepathTemplate", _SHARD_TEMPLATE)
    name, file_format = index["name"], index.get("fileFormat", FILE_FORMAT)
    names = format_shard_names(template, name, SPLIT, file_format, len(lengths))
    if names is None:  # a template rlif-data does not write: TFDS formats it
        import tensorflow_datasets as tfds

        files = tfds.core.naming.ShardedFileTemplate(
            data_dir=directory, template=template, dataset_name=name, split=SPLIT,
            filetype_suffix=file_format,
        )
        return [os.fspath(files.sharded_filepath(shard_index=i, num_shards=len(lengths)))
                for i in range(len(lengths))]
    # pathlib joins as TFDS' epath does (no doubled or "." components).
    return [os.fspath(pathlib.Path(directory) / n) for n in names]


# The placeholders of the shard-name templates rlif-data and TFDS' writers store.
_PLACEHOLDER = re.compile(r"\{(DATASET|SPLIT|FILEFORMAT|SHARD_INDEX|SHARD_X_OF_Y)\}")


def format_shard_names(template: str, dataset_name: str, split: str, file_format: str,
                       num_shards: int) -> Optional[list[str]]:
    """The shard file names (relative) a TFDS ``filepathTemplate`` gives, without TFDS. Pure.

    Shard numbers have 5 digits, more when `num_shards` needs them;
    ``{SHARD_X_OF_Y}`` is ``<index>-of-<num_shards>`` (datasets built by a job).

    Args:
      template: e.g. ``"{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}"``.
      dataset_name, split, file_format: what the placeholders stand for.
      num_shards: how many shards the split has.

    Returns:
      One name per shard; None when the template holds anything else in
      braces, or a value is empty (TFDS formats those, or refuses them).
    """
    if not all(isinstance(v, str) and v for v in (template, dataset_name, split, file_format)):
        return None
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        return None
    digits = max(5, len(str(num_shards)))
    names = []
    for i in range(num_shards):
        values = {"DATASET": dataset_name, "SPLIT": split, "FILEFORMAT": file_format,
                  "SHARD_INDEX": f"{i:0{digits}d}",
                  "SHARD_X_OF_Y": f"{i:0{digits}d}-of-{num_shards:0{digits}d}"}
        names.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)], template))
    return names
