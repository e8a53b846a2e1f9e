"""How jobs run on Beam's runners: DirectRunner jobs without Prism, the shard allocator scope."""

import contextlib
import json
import os
import subprocess
import sys

import pytest

from pipelines import relabel, runners
from tests.fakes.built_datasets import shard_records
from tests.fakes.episodes import make_episode, write_recording

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
MULTI = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _python(code, env=None):
    """Run `code` in a fresh interpreter at the repository root; returns its last stdout line."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


# -- which runner a job's pipeline gets -------------------------------------------------------


def test_direct_jobs_run_on_the_fn_api_runner_and_others_are_left_to_beam():
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    for args in ([], ["--runner=DirectRunner"], ["--runner=SwitchingDirectRunner"]):
        runner = runners.direct_pipeline_runner(PipelineOptions(args + MULTI))
        assert isinstance(runner, fn_runner.FnApiRunner), args
    for args in (["--runner=BundleBasedDirectRunner"], ["--runner=DataflowRunner"]):
        assert runners.direct_pipeline_runner(PipelineOptions(args)) is None, args


def test_a_beam_release_without_those_internals_gets_its_own_direct_runner(monkeypatch):
    # Beam is pinned only to 2.x: if a release moves what the FnApiRunner set-up uses,
    # the sink is handed no runner and Beam builds its own DirectRunner from the options
    # (as every job did before; Beam's DirectRunner uses the same internals, so they
    # cannot be taken away here to run a job through it).
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability import portable_runner

    assert runners.direct_pipeline_runner(PipelineOptions(SINGLE)) is not None
    monkeypatch.delattr(portable_runner.JobServiceHandle, "encode_pipeline_options")
    assert runners.direct_pipeline_runner(PipelineOptions(SINGLE)) is None


def test_a_direct_job_never_tries_prism(tmp_path):
    # Beam's DirectRunner would load its Prism runner first (and, online, download it).
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    code = ("import sys; from pipelines import relabel; "
            f"relabel.run({str(rec)!r}, {str(tmp_path / 'out')!r}, 'paper', "
            "['--runner=DirectRunner', '--direct_num_workers=1', "
            "'--direct_running_mode=in_memory']); "
            "print(sorted(m for m in sys.modules if 'prism' in m))")
    assert _python(code) == "[]"
    assert len(shard_records(tmp_path / "out")) == 3


def test_one_worker_and_two_write_the_same_bytes(tmp_path):
    # One worker skips Create's reshuffle; two spread the shards with it.
    rec = write_recording(tmp_path / "rec", [make_episode(i, length=2 + i % 4) for i in range(9)])
    one = relabel.run(rec, str(tmp_path / "one"), "paper", SINGLE)
    two = relabel.run(rec, str(tmp_path / "two"), "paper", MULTI)
    assert shard_records(one) == shard_records(two) and len(shard_records(one)) == 9


# -- glibc's malloc while a shard is written --------------------------------------------------


def test_frozen_malloc_settings_read_the_start_environment():
    assert runners.frozen_malloc_settings({}) is None
    assert runners.frozen_malloc_settings({"PATH": "/bin"}) is None
    assert runners.frozen_malloc_settings({"MALLOC_TRIM_THRESHOLD_": "65536"}) == (65536,
                                                                                  128 << 10)
    assert runners.frozen_malloc_settings({"MALLOC_MMAP_THRESHOLD_": "1048576"}) == (128 << 10,
                                                                                   1 << 20)
    # Either of these turns glibc's adaptive threshold off too; the thresholds stay glibc's.
    assert runners.frozen_malloc_settings({"MALLOC_TOP_PAD_": "0"}) == (128 << 10, 128 << 10)
    with pytest.raises(ValueError):
        runners.frozen_malloc_settings({"MALLOC_TRIM_THRESHOLD_": "lots"})


# Page faults of 1 MiB arrays made and freed 100 times: each is mapped anew (256 faults) when
# the mmap threshold is frozen at 128 KiB, and reuses the heap when it is raised.
_FAULTS = """
import json, resource, numpy as np
from pipelines import runners

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        np.ones(1 << 18, np.float32).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
outside = faults()
with runners.shard_allocator():
    with runners.shard_allocator():  # nested (a second worker thread): one raise
        faults()
        inside = faults()
after = faults()
print(json.dumps({"frozen": runners._frozen_malloc() is not None, "outside": outside,
                  "inside": inside, "after": after}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_shard_allocator_undoes_dasks_malloc_setting_while_a_shard_is_written():
    got = json.loads(_python(_FAULTS, {"MALLOC_TRIM_THRESHOLD_": "65536"}))
    assert got["frozen"]
    assert got["outside"] >= 100 * 200  # every array mapped and faulted in anew
    assert got["inside"] < got["outside"] / 10
    assert got["after"] >= 100 * 200  # the environment's setting is back afterwards


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_shard_allocator_leaves_an_adaptive_malloc_alone():
    # os.environ gains the variable after start-up (as Dask's nannies leave it in their
    # host process); glibc never read it, so nothing may be changed.
    code = ("import os; os.environ['MALLOC_TRIM_THRESHOLD_'] = '65536'; "
            "from pipelines import runners; print(runners._frozen_malloc())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "None"


# -- what a worker imports --------------------------------------------------------------------


def test_the_encoder_writes_the_same_records_without_importing_tfds(tmp_path):
    from tensorflow_datasets.core import example_serializer
    from tensorflow_datasets.proto import tf_example_pb2

    from pipelines import sink
    from rlif_data import relabel as rl
    from rlif_data import schema as sc
    from rlif_data.recording import serialize
    from tests.fakes.episodes import SCHEMA

    derived = sc.EpisodeSchema(SCHEMA.observation, SCHEMA.action_dim, SCHEMA.name, derived=True)
    features = sc.features_dict(derived)
    tfds_encoder = example_serializer.ExampleSerializer(features.get_serialized_info())
    for i in range(4):
        episode = rl.relabel_episode(make_episode(i, length=2 + i), "paper")
        record = sink.episode_encoder(derived)(episode)
        # The bytes jobs wrote with TFDS' serialized info, and the Example TFDS would write.
        assert record == serialize.serialize_episode(episode, features.get_serialized_info(),
                                                     serialize.bytes_fields(derived))
        assert tf_example_pb2.Example.FromString(record) == tf_example_pb2.Example.FromString(
            tfds_encoder.serialize_example(features.encode_example(episode)))
    # A worker's whole shard task (read, relabel, encode, check, write) in a fresh process.
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    code = f"""
import dataclasses, functools, sys
from pipelines import common, sink
from rlif_data import relabel as rl, schema as sc
from tests.fakes.episodes import SCHEMA
derived = dataclasses.replace(SCHEMA, derived=True)
source = common.EpisodesByKey({str(rec)!r}, (0, 1, 2),
                              functools.partial(rl.relabel_episode, view="paper"))
task = sink.ReadAndWriteShards(source, derived, {str(tmp_path)!r}, "rec", "paper")
task.setup()
note, = task.process((0, (0, 1, 2)))
task.teardown()
print(note["episodes"], "tensorflow_datasets" in sys.modules, "tensorflow" in sys.modules)
"""
    assert _python(code) == "3 False False"


# -- Beam's state sampler in a job's own process -----------------------------------------------


def _sampling_period() -> int:
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    return statesampler.StateSampler("test", CounterFactory()).sampling_period_ms


def test_jobs_in_this_process_sample_their_state_often_and_put_beams_period_back():
    beams = _sampling_period()
    assert beams > runners.STATE_SAMPLING_MS  # 200 ms in Beam 2.x
    with runners.short_state_sampling():
        assert _sampling_period() == runners.STATE_SAMPLING_MS
        with runners.short_state_sampling():  # a second job at once: one change
            assert _sampling_period() == runners.STATE_SAMPLING_MS
        assert _sampling_period() == runners.STATE_SAMPLING_MS  # the first is still running
    assert _sampling_period() == beams


def test_a_sampler_laid_out_otherwise_is_left_alone(monkeypatch):
    from apache_beam.runners.worker import statesampler

    monkeypatch.setattr(statesampler.StateSampler.__init__, "__defaults__", None)
    with runners.short_state_sampling():
        assert statesampler.StateSampler.__init__.__defaults__ is None
    assert statesampler.StateSampler.__init__.__defaults__ is None


def test_a_job_runs_with_the_short_period_and_leaves_beams(tmp_path, monkeypatch):
    seen = []
    real = runners.short_state_sampling

    @contextlib.contextmanager
    def spy():
        with real():
            seen.append(_sampling_period())
            yield

    monkeypatch.setattr(runners, "short_state_sampling", spy)
    beams = _sampling_period()
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    relabel.run(rec, str(tmp_path / "out"), "paper", SINGLE)
    assert seen == [runners.STATE_SAMPLING_MS]
    assert _sampling_period() == beams
    assert len(shard_records(tmp_path / "out")) == 3
