"""The Beam-native array_record sink: shard plans, shard notes, the graph rules, TFDS layout."""

import functools
import json
import os
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pytest

from pipelines import downsample, graph_rules, ingest_d4rl, ingest_human, output, relabel, sink
from rlif_data import fsutil
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from tests.fakes.d4rl_files import write_d4rl_file
from tests.fakes.episodes import SCHEMA, make_episode, write_recording
from tests.fakes.built_datasets import run_info, shard_records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec") / "round-0"
    return write_recording(d, [make_episode(i, length=3 + i % 5) for i in range(12)])


# -- the plan and the notes (pure) -----------------------------------------------------------


def test_plan_has_one_shard_per_worker_at_least_and_more_by_size():
    plan = sink.plan_shards(range(10), estimated_bytes=0, workers=3)
    assert plan.counts == (4, 3, 3) and plan.first_keys == (0, 4, 7) and plan.last_keys == (3, 6, 9)
    assert sink.plan_shards(range(10), 10 * 100, workers=1, target_shard_bytes=250).num_shards == 4
    assert sink.plan_shards(range(2), 10**12, workers=8).num_shards == 2  # never an empty shard
    # A multiple of the workers, so that none idles while another writes its last shard.
    assert sink.plan_shards(range(100), 10 * 100, workers=3, target_shard_bytes=250).num_shards == 6
    # Keys need not be dense; shards follow key order whatever order they are given in.
    plan = sink.plan_shards([30, 10, 20, 40], 0, workers=2)
    assert [plan.shard_of(k) for k in (10, 20, 30, 40)] == [0, 0, 1, 1]
    with pytest.raises(KeyError, match="not in the job's shard plan"):
        plan.shard_of(5)
    with pytest.raises(ValueError, match="given twice"):
        sink.plan_shards([1, 2, 2], 0, workers=1)
    with pytest.raises(ValueError, match="at least one episode"):
        sink.plan_shards([], 0, workers=1)


def test_notes_that_differ_from_the_plan_are_named():
    plan = sink.plan_shards(range(6), 0, workers=2)
    good = [{"shard": 0, "episodes": 3, "first_key": 0, "last_key": 2},
            {"shard": 1, "episodes": 3, "first_key": 3, "last_key": 5}]
    assert sink.note_problems(plan, good) == []
    short = [good[0], {"shard": 1, "episodes": 2, "first_key": 3, "last_key": 4}]
    assert sink.note_problems(plan, short) == ["shard 1 holds 2 episodes (3..4), planned 3 (3..5)"]
    assert sink.note_problems(plan, good[:1]) == ["shard 1 (episodes 3..5) was never written"]
    extra = good + [{"shard": 7, "episodes": 1, "first_key": 9, "last_key": 9}]
    assert sink.note_problems(plan, extra) == ["shard 7 was written but not planned"]
    with pytest.raises(sink.ShardCheckError, match="5 of 6 episodes were written.*lost"):
        sink.check_notes(plan, short, "/staging")
    with pytest.raises(sink.ShardCheckError, match="same filesystem"):
        sink.check_notes(plan, [], "/staging")


def test_a_retried_shard_write_rewrites_the_same_bytes(tmp_path):
    encode = sink.episode_encoder(SCHEMA)
    records = [(k, encode(make_episode(k))) for k in (4, 5, 6)]
    first = sink.write_shard(str(tmp_path), 2, records)
    path = tmp_path / sink.part_name(2)
    before = path.read_bytes()
    again = sink.write_shard(str(tmp_path), 2, list(reversed(records)))  # another arrival order
    assert path.read_bytes() == before
    assert {k: v for k, v in first.items() if k != "writer"} == {
        k: v for k, v in again.items() if k != "writer"}
    assert (first["shard"], first["episodes"], first["first_key"], first["last_key"]) == (2, 3, 4, 6)
    assert sorted(os.listdir(tmp_path)) == ["part-00002.array_record", "part-00002.note.json"]
    with pytest.raises(ValueError, match="key 4 arrived twice"):
        sink.write_shard(str(tmp_path), 2, records + records[:1])
    with pytest.raises(sink.UnsharedOutputError, match="filesystem every worker mounts"):
        sink.write_shard(str(tmp_path / "elsewhere"), 0, records)
    # Streamed records must come in key order (they are not held to be sorted).
    with pytest.raises(ValueError, match="key 4 came after key 5"):
        sink.write_ordered_shard(str(tmp_path), 3, [records[1], records[0]])


def test_a_plan_splits_its_keys_into_shards_and_refuses_others():
    plan = sink.plan_shards([30, 10, 20, 40, 50], 0, workers=2)
    assert plan.split([50, 40, 30, 20, 10]) == [(0, (10, 20, 30)), (1, (40, 50))]
    with pytest.raises(ValueError, match="not the ones shard 1 was planned from"):
        plan.split([10, 20, 30, 40, 60])
    with pytest.raises(ValueError, match="6 keys given, the plan holds 5"):
        plan.split([10, 20, 30, 40, 50, 60])


# -- whole jobs -------------------------------------------------------------------------------


def test_sink_output_is_a_tfds_dataset_with_one_shard_per_worker(recording, tmp_path):
    import tensorflow_datasets as tfds

    out = relabel.run(recording, str(tmp_path / "ds"), "paper", MULTI)
    names = sorted(n for n in os.listdir(out) if ".array_record-" in n)
    assert names == ["unit-train.array_record-00000-of-00002",
                     "unit-train.array_record-00001-of-00002"]
    source = tfds.builder_from_directory(out).as_data_source()["train"]
    assert len(source) == 12
    assert [source[i][sc.EPISODE_ID].decode() for i in range(12)] == [f"s/{i}" for i in range(12)]
    info = run_info(out)
    assert info["runner"] == "DirectRunner" and info["shards"] == 2
    assert len(info["writers"]) == 2  # each worker process wrote one shard
    assert not [n for n in os.listdir(out) if n.startswith(sink.PART_PREFIX)]  # notes gone


def test_sink_writes_the_episodes_the_tfds_writer_wrote(recording, tmp_path):
    new = relabel.run(recording, str(tmp_path / "new"), "official", SINGLE)
    with output.legacy_tfds_writer():
        old = relabel.run(recording, str(tmp_path / "old"), "official", SINGLE)
    for name in (sc.DATASET_INFO_FILE, "features.json"):
        with open(os.path.join(new, name)) as a, open(os.path.join(old, name)) as b:
            x, y = json.load(a), json.load(b)
        x.pop("moduleName", None), y.pop("moduleName", None)
        assert x == y, name
    got, want = read_episodes(new), read_episodes(old)
    assert len(got) == len(want) == 12
    for a, b in zip(got, want):
        assert a[sc.EPISODE_ID] == b[sc.EPISODE_ID]
        for field, value in b[sc.STEPS].items():
            np.testing.assert_array_equal(a[sc.STEPS][field], value, err_msg=field)


def test_reading_by_key_writes_what_the_shuffled_graph_writes(recording, tmp_path):
    from pipelines import common
    from rlif_data import relabel as rl

    def run(source, out):
        job = output.JobInfo("relabel", {"view": "official"}, [{"path": recording}])
        return output.write_dataset(source, str(tmp_path / out), SCHEMA, job, SINGLE,
                                    keys=range(1, 12), estimated_bytes=0)

    by_key = common.EpisodesByKey(recording, range(1, 12), functools.partial(
        rl.relabel_episode, view="official"), label="Relabel")
    # Called, it is the Beam transform: the sink then encodes, shuffles and writes.
    direct, shuffled = run(by_key, "by-key"), run(lambda: by_key(), "shuffled")
    assert shard_records(direct) == shard_records(shuffled)
    assert len(shard_records(direct)) == 11


def test_one_and_two_workers_write_the_same_bytes(recording, tmp_path):
    one = relabel.run(recording, str(tmp_path / "one"), "paper", SINGLE)
    two = relabel.run(recording, str(tmp_path / "two"), "paper", MULTI)
    assert shard_records(one) == shard_records(two)
    assert len(shard_records(one)) == 12


def test_a_lost_episode_fails_the_job_and_publishes_nothing(recording, tmp_path):
    from pipelines import common

    # Episode 7 never reaches the sink, as if a runner had lost its bundle.
    def source():
        return ("Indices" >> beam.Create([i for i in range(12) if i != 7])
                | "Read" >> beam.ParDo(common.ReadEpisodes(recording)))

    out = tmp_path / "out"
    job = output.JobInfo("unit", {}, [{"path": recording}])
    with pytest.raises(output.PipelineFailedError,
                       match=r"11 of 12 episodes were written; shard 0 holds 11 episodes"):
        output.write_dataset(source, str(out), SCHEMA, job, SINGLE, keys=range(12))
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_a_job_imports_no_tensorflow(recording, tmp_path):
    code = ("import sys; from pipelines import relabel; "
            f"relabel.run({recording!r}, {str(tmp_path / 'ds')!r}, 'paper', {SINGLE!r}); "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert len(read_episodes(str(tmp_path / "ds"))) == 12


# -- the Dask-safe rules ------------------------------------------------------------------------


def _graph(build):
    pipeline = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(SINGLE))
    build(pipeline)
    return pipeline


class _Flushes(beam.DoFn):
    def process(self, x):
        yield x

    def finish_bundle(self):
        pass


def test_rules_refuse_what_dask_would_drop():
    def bad(p):
        side = p | "Side" >> beam.Create([1])
        main = p | "Main" >> beam.Create([1, 2]) | "Spread" >> beam.Reshuffle()
        tagged = main | "Tagged" >> beam.ParDo(_Flushes()).with_outputs("odd", main="even")
        _ = (tagged.even
             | "WithSide" >> beam.Map(lambda x, s: x, s=beam.pvalue.AsList(side))
             | "Sink" >> beam.Map(print))

    problems = graph_rules.violations(_graph(bad))
    text = "\n".join(problems)
    assert "Spread: Reshuffle is not one of Create, ParDo, GroupByKey, Flatten" in text
    assert "Tagged: tagged outputs" in text
    assert "Tagged: _Flushes overrides finish_bundle" in text
    assert "WithSide: side input" in text
    with pytest.raises(graph_rules.UnsafeGraphError, match="not Dask-safe"):
        graph_rules.check(_graph(bad))


def test_rules_want_one_sink_at_the_end():
    def two_ends(p):
        xs = p | "Xs" >> beam.Create([1, 2])
        _ = xs | "End1" >> beam.Map(str)
        _ = xs | "End2" >> beam.Map(repr)

    assert graph_rules.violations(_graph(two_ends)) == [
        "End1: its output goes nowhere; a job has one sink, at the end"]


def test_every_job_graph_follows_the_rules(recording, tmp_path, monkeypatch):
    checked = []
    real_check = graph_rules.check

    def recording_check(pipeline):
        labels = []
        pipeline.visit(_Labels(labels))
        checked.append((graph_rules.violations(pipeline), labels))
        real_check(pipeline)

    monkeypatch.setattr(graph_rules, "check", recording_check)
    fake = write_d4rl_file(tmp_path / "hopper.hdf5", episode_lengths=(3, 4, 5), obs_dim=11,
                           act_dim=3)
    jobs = {
        "relabel": lambda o: relabel.run(recording, o, "paper", SINGLE),
        "downsample": lambda o: downsample.run(recording, o, episodes=5, beam_args=SINGLE),
        "ingest_d4rl": lambda o: ingest_d4rl.run(fake.path, o, beam_args=SINGLE),
        "ingest_human": lambda o: ingest_human.run(o, sessions=[recording], beam_args=SINGLE),
    }
    for name, job in jobs.items():
        job(str(tmp_path / name))
        assert checked, f"{name} ran without the graph check"
        problems, labels = checked.pop()
        last = labels[-1]
        assert problems == [], name
        assert last == "WriteShards", name  # the sink is the graph's last step
        if name in ("relabel", "downsample"):  # read by key: no episode is shuffled
            assert not [label for label in labels if label.endswith("GroupByShard")], name


class _Labels(beam.pipeline.PipelineVisitor):
    def __init__(self, out):
        self._out = out

    def visit_transform(self, node):
        self._out.append(node.full_label)


def test_a_shard_is_written_out_while_it_is_written(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fsutil, "_sync_file_range", lambda: (
        lambda fd, *args: calls.append(os.readlink(f"/proc/self/fd/{fd}")) or 0))
    monkeypatch.setattr(fsutil, "WRITEBACK_BYTES", 1)
    encode = sink.episode_encoder(SCHEMA)
    records = [(k, encode(make_episode(k))) for k in (1, 2, 3)]
    sink.write_ordered_shard(str(tmp_path), 0, records)
    # One request per record at this threshold, each on the shard's temporary file.
    assert calls == [str(tmp_path / f".{sink.part_name(0)}.tmp")] * 3
    assert sorted(os.listdir(tmp_path)) == ["part-00000.array_record", "part-00000.note.json"]
