"""A Beam-native array_record sink: keyed episodes -> the shards of a TFDS dataset.

The graph, after the job's own source of ``(int key, episode)`` pairs::

    Encode       ParDo: serialise the episode with the project's serializer
                 (`rlif_data.recording.serialize`, the same tf.train.Example
                 TFDS writes), run the per-episode data checks on it
                 (`pipelines.job_checks`) and key both by the episode's shard,
                 looked up in a `ShardPlan` the driver computed before the run
                 (no side input)
    GroupByShard GroupByKey
    WriteShards  ParDo: one call per shard sorts its records by key, writes
                 them to ``.part-NNNNN.tmp``, renames that to
                 ``part-NNNNN.array_record`` and leaves a note beside it
                 (shard, episodes, first and last key, bytes, writer, and the
                 episodes' check summaries); a retried call rewrites the same
                 bytes under the same names

A job whose episodes are read by key from an rlif-data dataset
(`pipelines.common.EpisodesByKey`: relabel, downsample) skips the shuffle::

    Shards       Create: one (shard, keys) element per planned shard
    WriteShards  ParDo: reads, maps, serialises and checks each of its
                 shard's episodes in key order and streams them into the
                 shard, then leaves the same note

so that only keys travel to the workers and only notes come back: no
serialised episode is copied through a GroupByKey (on the 1M-step benchmark
that shuffle cost the in-process job a third more than the plain loop, and
worker processes a second copy through gRPC or Dask's task results;
docs/scaling.md). A shard is then the unit of parallel work, so the plan
makes a multiple of the worker count.

Only Create, ParDo, GroupByKey and Flatten, nothing emitted from
``finish_bundle``, one sink at the end (`pipelines.graph_rules`): the graph
runs whole on Beam's DaskRunner as on the DirectRunner or Dataflow.

The driver then reads every note and compares it with the plan: a shard
missing or holding other episodes than planned (a bundle lost by a runner,
or workers that do not share the output filesystem) fails the job, and
nothing is published. It names the shards in TFDS' ``-NNNNN-of-NNNNN`` form,
writes ``dataset_info.json`` and ``features.json`` from
`rlif_data.schema.features_dict` (TensorFlow is never imported) and the
caller checks the data (`pipelines.job_checks.dataset_report`, from the
notes) and renames the staging directory into place. The driver holds the
plan and the notes (a few hundred bytes per episode), never an episode.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import os
import socket
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions

from pipelines import common, job_checks, runners
from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.fsutil import Writeback, fsync_path
from rlif_data.recording import serialize, store

# Output bytes per shard (TFDS aims at 64 MiB-1 GiB). A shard's records meet
# in one worker's memory after GroupByKey, so this also bounds that.
TARGET_SHARD_BYTES = 128 << 20
PART_PREFIX = "part-"
PART_SUFFIX = ".array_record"
NOTE_SUFFIX = ".note.json"
FILENAME_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


class ShardCheckError(errors.RlifDataError):
    """The shards a job wrote are not the shards it planned (lost or extra episodes)."""


class UnsharedOutputError(errors.RlifDataError):
    """A worker cannot see the job's staging directory: the output is not on a shared filesystem."""


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """Which keys go to which shard: contiguous key ranges, in key order.

    Attributes:
      first_keys: the first key of each shard, ascending.
      last_keys: the last key of each shard.
      counts: episodes per shard.
    """

    first_keys: tuple[int, ...]
    last_keys: tuple[int, ...]
    counts: tuple[int, ...]

    @property
    def num_shards(self) -> int:
        """Number of shards."""
        return len(self.counts)

    @property
    def num_episodes(self) -> int:
        """Episodes the job must write."""
        return sum(self.counts)

    def shard_of(self, key: int) -> int:
        """The shard of `key`.

        Raises:
          KeyError: `key` lies outside every shard's key range (not planned).
        """
        shard = bisect.bisect_right(self.first_keys, key) - 1
        if shard < 0 or key > self.last_keys[shard]:
            raise KeyError(f"episode key {key} is not in the job's shard plan")
        return shard

    def split(self, keys: Iterable[int]) -> list[tuple[int, tuple[int, ...]]]:
        """``(shard, its keys in order)`` for every shard, from the keys the plan was made of.

        Raises:
          ValueError: `keys` are not the plan's (another count or key range).
        """
        ordered = sorted(int(k) for k in keys)
        out, start = [], 0
        for shard, count in enumerate(self.counts):
            part = tuple(ordered[start:start + count])
            if (len(part), part[:1], part[-1:]) != (count, (self.first_keys[shard],),
                                                    (self.last_keys[shard],)):
                raise ValueError(f"the keys given are not the ones shard {shard} was planned "
                                 "from")
            out.append((shard, part))
            start += count
        if start != len(ordered):
            raise ValueError(f"{len(ordered)} keys given, the plan holds {start}")
        return out


def plan_shards(keys: Sequence[int], estimated_bytes: int, workers: int,
                target_shard_bytes: int = TARGET_SHARD_BYTES) -> ShardPlan:
    """Split the job's keys into contiguous shards. Pure.

    Args:
      keys: every key the job's source will produce, each once.
      estimated_bytes: expected size of the output (0: unknown).
      workers: how many workers run the job; there are at least as many
        shards (when there are that many episodes), so every worker writes,
        and a multiple of it, so that none is left idle at the end (a shard
        is one worker's task when the sink reads by key).
      target_shard_bytes: shard size to aim at.

    Returns:
      The plan: ``max(workers, ceil(bytes / target))`` shards rounded up to
      a multiple of `workers`, at most one per episode, of near-equal
      episode counts.

    Raises:
      ValueError: no keys, or a key given twice.
    """
    ordered = sorted(int(k) for k in keys)
    if not ordered:
        raise ValueError("a job must write at least one episode")
    for a, b in zip(ordered, ordered[1:]):
        if a == b:
            raise ValueError(f"episode key {a} is given twice; keys must be unique")
    by_size = math.ceil(max(0, estimated_bytes) / max(1, target_shard_bytes))
    workers = max(1, workers)
    n = max(1, min(len(ordered), workers * math.ceil(max(workers, by_size) / workers)))
    base, extra = divmod(len(ordered), n)
    counts = [base + (i < extra) for i in range(n)]
    starts = [sum(counts[:i]) for i in range(n)]
    return ShardPlan(tuple(ordered[s] for s in starts),
                     tuple(ordered[s + c - 1] for s, c in zip(starts, counts)), tuple(counts))


def part_name(shard: int) -> str:
    """File name of planned shard `shard` in the staging directory (before numbering)."""
    return f"{PART_PREFIX}{shard:05d}{PART_SUFFIX}"


def final_shard_name(dataset_name: str, index: int, total: int) -> str:
    """TFDS' name of shard `index` of `total` (``FILENAME_TEMPLATE``)."""
    return f"{dataset_name}-{store.SPLIT}.{store.FILE_FORMAT}-{index:05d}-of-{total:05d}"


def episode_encoder(schema: sc.EpisodeSchema) -> Callable[[Mapping[str, Any]], bytes]:
    """The function that serialises one episode of `schema` as TFDS would store it.

    The project's serializer where it applies (everything but PNG frames),
    its serialized info built without TFDS, so that a worker process never
    imports TFDS for it (0.1-0.3 s of a fresh worker's first job,
    docs/scaling.md, run 5); TFDS' own encoder otherwise.
    """
    if serialize.supports(schema):
        info = serialize.serialized_info(schema)
        packed = serialize.bytes_fields(schema)
        return lambda episode: serialize.serialize_episode(episode, info, packed)
    features = sc.features_dict(schema)
    serialized_info = features.get_serialized_info()
    from tensorflow_datasets.core import example_serializer

    serializer = example_serializer.ExampleSerializer(serialized_info)
    return lambda episode: serializer.serialize_example(features.encode_example(episode))


class _EncodeAndCheck:
    """One episode -> (record, check summary or None); what both sink DoFns do per episode.

    Built in a DoFn's ``setup`` (the encoder and the checker are per worker);
    a failure becomes one `common.element_error` naming the input and episode.
    """

    def __init__(self, schema: sc.EpisodeSchema, source: str, view: Optional[str], check: bool):
        self._source = source
        self._encode = episode_encoder(schema)
        self._check = job_checks.EpisodeChecker(view) if check else None

    def __call__(self, key: int, episode: Mapping[str, Any]) -> tuple[bytes, Optional[Any]]:
        try:
            # Checked first, while the decoded arrays are still in the CPU's caches
            # (the record the encoder writes evicts them: ~15 us per 1000-step episode).
            summary = self._check(key, episode) if self._check is not None else None
            record = self._encode(episode)
        except Exception as exc:
            raise common.element_error(self._source, episode.get(sc.EPISODE_ID) or key,
                                       exc) from None
        return record, summary


class EncodeToShard(beam.DoFn):
    """(key, episode) -> (shard, (key, serialized episode, check summary)), the shard from the plan.

    Args:
      schema, plan, source: the output schema, the shard plan, the input (for errors).
      view: the output's relabel view, for the checks.
      check: run the per-episode checks (`job_checks.EpisodeChecker`); False
        yields ``(key, record)`` pairs.
    """

    def __init__(self, schema: sc.EpisodeSchema, plan: ShardPlan, source: str,
                 view: Optional[str] = None, check: bool = True):
        self._args = (schema, source, view, check)
        self._plan = plan
        self._source = source
        self._encode_and_check = None

    def setup(self):
        self._encode_and_check = _EncodeAndCheck(*self._args)

    def process(self, item):
        key, episode = item
        try:
            shard = self._plan.shard_of(key)
        except Exception as exc:
            raise common.element_error(self._source, episode.get(sc.EPISODE_ID) or key,
                                       exc) from None
        record, summary = self._encode_and_check(key, episode)
        yield shard, ((key, record) if summary is None else (key, record, summary))


def write_shard(directory: str, shard: int, keyed_records: Iterable[tuple]) -> dict[str, Any]:
    """Write one shard's records, in key order, and its note; returns the note.

    Args:
      directory: the job's staging directory.
      shard: the planned shard.
      keyed_records: ``(key, record)`` or ``(key, record, check summary)``;
        the summaries go to the note's ``checks``, in key order.

    The shard goes to ``.part-NNNNN.tmp`` first and is renamed when complete,
    so ``part-NNNNN.array_record`` is whole or absent; the note follows the
    same way. Names and bytes depend on the records only, so a retried call
    rewrites the same files.

    Raises:
      ValueError: a key occurs twice in the shard.
      UnsharedOutputError: `directory` does not exist where this worker runs.
    """
    return write_ordered_shard(directory, shard, sorted(keyed_records, key=lambda kv: kv[0]))


def write_ordered_shard(directory: str, shard: int,
                        keyed_records: Iterable[tuple]) -> dict[str, Any]:
    """`write_shard` for records that arrive in ascending key order, streamed to the file.

    Only one record is held at a time: `keyed_records` may be a generator
    that reads and serialises each episode as the writer asks for it.

    Raises:
      ValueError: a key occurs twice, or the keys are not ascending.
      UnsharedOutputError: `directory` does not exist where this worker runs.
      Exception: whatever `keyed_records` raises (the partial file is left
        under its temporary name; the staging directory goes with the job).
    """
    if not os.path.isdir(directory):
        raise UnsharedOutputError(
            f"worker {socket.gethostname()} cannot see the job's staging directory {directory}: "
            "write the output to a filesystem every worker mounts at the same path")
    final = os.path.join(directory, part_name(shard))
    tmp = os.path.join(directory, f".{part_name(shard)}.tmp")
    keys: list[int] = []
    summaries = []
    record_bytes = 0
    writer = store.open_array_record_writer(tmp)
    try:
        with Writeback(tmp) as writeback:
            for item in keyed_records:
                if keys and item[0] <= keys[-1]:
                    what = ("arrived twice" if item[0] == keys[-1]
                            else f"came after key {keys[-1]}")
                    raise ValueError(f"shard {shard}: episode key {item[0]} {what}")
                writer.write(item[1])
                keys.append(item[0])
                record_bytes += len(item[1])
                writeback.wrote(len(item[1]))
                if len(item) > 2:
                    summaries.append(item[2])
    finally:
        writer.close()
    fsync_path(tmp)
    os.replace(tmp, final)
    note = {"shard": shard, "episodes": len(keys),
            "first_key": keys[0] if keys else None,
            "last_key": keys[-1] if keys else None,
            "record_bytes": record_bytes,
            "file_bytes": os.path.getsize(final),
            "writer": f"{socket.gethostname()}/{os.getpid()}"}
    if summaries:
        note["checks"] = summaries
    note_path = os.path.join(directory, f"{PART_PREFIX}{shard:05d}{NOTE_SUFFIX}")
    with open(note_path + ".tmp", "w") as f:
        # dumps, not dump: json.dump streams through the pure-Python encoder
        # (3.1 against 0.8 ms for a 500-episode note).
        f.write(json.dumps(note))
    os.replace(note_path + ".tmp", note_path)
    return note


class WriteShards(beam.DoFn):
    """(shard, [(key, record), ...]) -> the shard's note, after writing it to `directory`."""

    def __init__(self, directory: str):
        self._directory = directory

    def process(self, item):
        shard, records = item
        with runners.shard_allocator():
            note = write_shard(self._directory, shard, records)
        yield note


class ReadAndWriteShards(beam.DoFn):
    """(shard, keys) -> the shard's note, once its episodes are read, mapped, encoded and checked.

    The sink's step for `common.EpisodesByKey` sources: one call per shard,
    in the worker that writes it, streams each episode into the shard file
    as soon as it is serialised (`write_ordered_shard`), so neither the
    episodes nor their records leave the worker and a shard is never held
    whole in memory.

    Args:
      episodes: where and how to read the episodes (its keys are not needed
        here: each element brings its shard's).
      schema, staging, source: the output schema, the staging directory, the
        input (named in encode and check errors, as `EncodeToShard` does).
      view, check: as for `EncodeToShard`.
    """

    def __init__(self, episodes: common.EpisodesByKey, schema: sc.EpisodeSchema, staging: str,
                 source: str, view: Optional[str] = None, check: bool = True):
        self._episodes = dataclasses.replace(episodes, keys=())
        self._args = (schema, source, view, check)
        self._staging = staging
        self._reader = None
        self._encode_and_check = None

    def setup(self):
        self._encode_and_check = _EncodeAndCheck(*self._args)
        self._reader = self._episodes.open()

    def _records(self, keys: Sequence[int]):
        for key in keys:
            episode = self._episodes.episode(self._reader, key)
            record, summary = self._encode_and_check(key, episode)
            yield (key, record) if summary is None else (key, record, summary)

    def process(self, item):
        shard, keys = item
        with runners.shard_allocator():
            note = write_ordered_shard(self._staging, shard, self._records(keys))
        yield note

    def teardown(self):
        if self._reader is not None:
            self._reader.close()


def build_graph(pipeline: beam.Pipeline, source: Any, schema: sc.EpisodeSchema,
                plan: ShardPlan, staging: str, source_name: str, view: Optional[str] = None,
                check: bool = True, spread: bool = True) -> None:
    """Apply the job's source and the sink to `pipeline`.

    Args:
      source: a Beam transform yielding ``(key, episode)``: source -> Encode
        (and check) -> GroupByShard -> WriteShards; or a
        `common.EpisodesByKey`: Shards -> WriteShards, each shard read where
        it is written.
      spread: let the runner spread the shards over its workers (Beam's
        Create reshuffles its elements for that); False for one worker,
        where that reshuffle is a stage of its own that moves nothing.
    """
    if isinstance(source, common.EpisodesByKey):
        _ = (pipeline
             | "Shards" >> beam.Create(plan.split(source.keys), reshuffle=spread)
             | "WriteShards" >> beam.ParDo(
                 ReadAndWriteShards(source, schema, staging, source_name, view, check)))
        return
    _ = (pipeline
         | "Source" >> source
         | "Encode" >> beam.ParDo(EncodeToShard(schema, plan, source_name, view, check))
         | "GroupByShard" >> beam.GroupByKey()
         | "WriteShards" >> beam.ParDo(WriteShards(staging)))


# -- the driver's side ------------------------------------------------------------------


def read_notes(directory: str) -> list[dict[str, Any]]:
    """The notes the shard writers left in `directory`, by shard."""
    notes = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(PART_PREFIX) and name.endswith(NOTE_SUFFIX):
            with open(os.path.join(directory, name)) as f:
                notes.append(json.load(f))
    return sorted(notes, key=lambda n: n["shard"])


def note_problems(plan: ShardPlan, notes: Sequence[Mapping[str, Any]]) -> list[str]:
    """How the written shards differ from the plan; empty when they match. Pure.

    Args:
      plan: the job's shard plan.
      notes: the notes found after the run.

    Returns:
      One line per shard that is missing, unplanned, or holds other episodes
      than planned (count or key range).
    """
    problems = []
    by_shard = {int(n["shard"]): n for n in notes}
    for shard in sorted(set(by_shard) - set(range(plan.num_shards))):
        problems.append(f"shard {shard} was written but not planned")
    for shard in range(plan.num_shards):
        note = by_shard.get(shard)
        want = (plan.counts[shard], plan.first_keys[shard], plan.last_keys[shard])
        if note is None:
            problems.append(f"shard {shard} (episodes {want[1]}..{want[2]}) was never written")
            continue
        got = (note["episodes"], note["first_key"], note["last_key"])
        if got != want:
            problems.append(f"shard {shard} holds {got[0]} episodes ({got[1]}..{got[2]}), "
                            f"planned {want[0]} ({want[1]}..{want[2]})")
    return problems


def check_notes(plan: ShardPlan, notes: Sequence[Mapping[str, Any]], staging: str) -> None:
    """Refuse a run whose shards are not the planned ones.

    Raises:
      ShardCheckError: names the shards and how many episodes were planned
        and found.
    """
    problems = note_problems(plan, notes)
    if not problems:
        return
    found = sum(int(n["episodes"]) for n in notes)
    hint = ("no shard reached the driver: do the workers write to the same filesystem as "
            f"this machine ({staging})?" if not notes else
            "a worker's output was lost (a dropped bundle or a killed worker)")
    raise ShardCheckError(f"{found} of {plan.num_episodes} episodes were written; "
                          f"{'; '.join(problems[:3])}; {hint}")


def number_shards(directory: str, dataset_name: str, plan: ShardPlan) -> None:
    """Rename the parts to TFDS' shard names and drop the notes (after `check_notes`)."""
    for shard in range(plan.num_shards):
        os.rename(os.path.join(directory, part_name(shard)),
                  os.path.join(directory,
                               final_shard_name(dataset_name, shard, plan.num_shards)))
        os.unlink(os.path.join(directory, f"{PART_PREFIX}{shard:05d}{NOTE_SUFFIX}"))


def dataset_info(directory: str, schema: sc.EpisodeSchema, metadata: Mapping[str, Any],
                 description: str, shard_lengths: Sequence[int], num_bytes: int,
                 module_name: str = __name__):
    """The TFDS `DatasetInfo` of a built dataset, assembled without TensorFlow.

    `rlif_data.recording.store.build_info` goes through
    ``tfds.rlds.rlds_base.build_info``, whose ``tf.bool`` imports TensorFlow
    (seconds per job); `schema.features_dict` builds the same features.
    """
    import tensorflow_datasets as tfds

    identity = tfds.core.dataset_info.DatasetIdentity(
        name=schema.name, version=tfds.core.Version("1.0.0"), data_dir=directory,
        module_name=module_name)
    info = tfds.core.DatasetInfo(
        builder=identity,
        description=description or sc.dataset_config(schema).overall_description,
        features=sc.features_dict(schema),
        metadata=tfds.core.MetadataDict(metadata),
        # Examples stay in key order (input order), as the shards hold them.
        disable_shuffling=True,
    )
    info.set_file_format(store.FILE_FORMAT)
    info.set_splits(store.split_dict(directory, schema.name, list(shard_lengths), num_bytes,
                                     template=FILENAME_TEMPLATE))
    return info


def collect_shards(staging: str, dataset_name: str, plan: ShardPlan) -> list[dict[str, Any]]:
    """Check the writers' notes against the plan, then give the shards TFDS' names.

    Returns:
      The notes, by shard.

    Raises:
      ShardCheckError: the shards differ from the plan; `staging` is left as
        it is for the caller to remove.
    """
    notes = read_notes(staging)
    check_notes(plan, notes, staging)
    number_shards(staging, dataset_name, plan)
    return notes


def write_metadata(staging: str, schema: sc.EpisodeSchema, metadata: Mapping[str, Any],
                   description: str, plan: ShardPlan, notes: Sequence[Mapping[str, Any]]) -> None:
    """Write ``dataset_info.json``, ``features.json`` and ``metadata.json`` for the shards."""
    num_bytes = sum(int(n["record_bytes"]) for n in notes)
    info = dataset_info(staging, schema, metadata, description, list(plan.counts), num_bytes)
    info.write_to_directory(staging)


def run_sink(source: Any, schema: sc.EpisodeSchema, plan: ShardPlan, staging: str,
             options: Any, source_name: str,
             graph_check: Optional[Callable[[beam.Pipeline], None]] = None,
             view: Optional[str] = None, check: bool = True, runner: Any = None,
             workers: int = 2) -> None:
    """Run the job's graph with the sink on `options`' runner until every shard is written.

    Args:
      source: the job's PTransform yielding ``(key, episode)`` pairs, or its
        `common.EpisodesByKey` (`build_graph`).
      schema: the output schema.
      plan: the driver's shard plan.
      staging: directory the shards go to (the job's staging directory).
      options: Beam `PipelineOptions`.
      source_name: the input, named in element errors.
      graph_check: called with the constructed pipeline before it runs
        (`pipelines.graph_rules.check`).
      view: the output's relabel view, for the per-episode checks.
      check: run them (their summaries go to the shard notes).
      runner: the Beam runner to run on (None: the one `options` name;
        `pipelines.runners.direct_pipeline_runner`).
      workers: how many workers run the job (1: the shards are not spread).
    """
    dask = runners.is_dask(options.view_as(StandardOptions).runner)
    pipeline = beam.Pipeline(runner=runner, options=options)
    # Beam's DaskRunner puts its own Create in place (partitioned by Dask), so a
    # reshuffle would only be built and dropped: 0.02 s of the driver per job.
    build_graph(pipeline, source, schema, plan, staging, source_name, view, check,
                spread=workers > 1 and not dask)
    if graph_check is not None:
        graph_check(pipeline)
    with runners.short_state_sampling():
        # No round trip through Beam's runner API: Beam makes one only for runners
        # outside its Fn API (Dask), to test that the graph can be expressed portably,
        # re-building the whole graph (0.04 s of the driver per job); the sink's graphs
        # are always the same few transforms, which the tests run on every runner.
        result = pipeline.run(test_runner_api=False)
        try:
            result.wait_until_finish()
        finally:
            client = getattr(result, "client", None)  # Beam's DaskRunner leaves it open
            if client is not None:
                client.close()
