"""Jobs on Beam's DaskRunner over a real dask.distributed cluster of 2 worker processes."""

import argparse
import json
import logging
import os
import socket

import pytest

from pipelines import common, downsample, ingest_d4rl, output, relabel, runners
from tests.fakes.d4rl_files import write_d4rl_file
from tests.fakes.episodes import make_episode, write_recording
from tests.fakes.built_datasets import run_info, shard_records

SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and 2 worker processes on 127.0.0.1; yields (address, worker pids)."""
    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, silence_logs=logging.ERROR)
    try:
        with Client(local.scheduler_address, set_as_default=False) as client:
            pids = set(client.run(os.getpid).values())
        yield local.scheduler_address, pids
    finally:
        local.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec") / "round-0"
    return write_recording(d, [make_episode(i, length=3 + i % 6) for i in range(16)])


def dask_args(address):
    return ["--runner=DaskRunner", f"--dask_client_address={address}"]


def writer_pids(directory):
    return {int(w.rsplit("/", 1)[1]) for w in run_info(directory)["writers"]}


def test_relabel_on_dask_writes_what_the_direct_runner_writes(cluster, recording, tmp_path):
    address, workers = cluster
    on_dask = relabel.run(recording, str(tmp_path / "dask"), "paper", dask_args(address))
    direct = relabel.run(recording, str(tmp_path / "direct"), "paper", SINGLE)
    records = shard_records(on_dask)
    assert len(records) == 16 and records == shard_records(direct)
    info = run_info(on_dask)
    assert info["runner"] == "DaskRunner" and info["workers"] == 2 and info["shards"] == 2
    # The shards were written by the cluster's worker processes, not by this one.
    assert writer_pids(on_dask) <= workers and os.getpid() not in writer_pids(on_dask)
    assert len(writer_pids(on_dask)) >= 1


def test_downsample_and_ingest_on_dask_match_the_direct_runner(cluster, recording, tmp_path):
    address, workers = cluster
    for name, job in (
        ("down", lambda out, args: downsample.run(recording, out, transitions=30, seed=3,
                                                  beam_args=args)),
        ("d4rl", lambda out, args: ingest_d4rl.run(str(fake.path), out, beam_args=args)),
    ):
        if name == "d4rl":
            fake = write_d4rl_file(tmp_path / "hopper.hdf5", episode_lengths=(5, 3, 7, 4, 6),
                                   obs_dim=11, act_dim=3)
        on_dask = job(str(tmp_path / f"{name}-dask"), dask_args(address))
        direct = job(str(tmp_path / f"{name}-direct"), SINGLE)
        assert shard_records(on_dask) == shard_records(direct), name
        assert shard_records(on_dask), name
        assert writer_pids(on_dask) <= workers, name


def test_a_corrupt_input_on_dask_names_file_and_episode_and_leaves_nothing(
        cluster, recording, tmp_path):
    import shutil

    address, _ = cluster
    broken = tmp_path / "broken"
    shutil.copytree(recording, broken)
    victim = sorted(n for n in os.listdir(broken) if "array_record" in n)[5]
    (broken / victim).write_bytes(b"\x00" * 100)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    with pytest.raises(output.PipelineFailedError, match=f"episode 5.*{victim}"):
        relabel.run(str(broken), str(jobs / "out"), "paper", dask_args(address))
    assert os.listdir(jobs) == []  # no output, no staging directory


def test_a_scheduler_that_does_not_answer_is_named(recording, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(runners.DaskSchedulerError,
                       match=f"Dask scheduler {address} .* did not answer within 2 s"):
        relabel.run(recording, str(tmp_path / "out"), "paper",
                    [*dask_args(address), "--dask_connection_timeout=2"])
    assert os.listdir(tmp_path) == []
    with pytest.raises(runners.DaskSchedulerError, match="no such file"):
        relabel.run(recording, str(tmp_path / "out"), "paper",
                    ["--runner=dask", f"--dask_scheduler_file={tmp_path / 'none.json'}"])


def test_a_scheduler_file_names_the_cluster(cluster, recording, tmp_path):
    address, workers = cluster
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_file.write_text(json.dumps({"type": "Scheduler", "address": address}))
    out = relabel.run(recording, str(tmp_path / "out"), "paper",
                      ["--runner=dask", f"--dask_scheduler_file={scheduler_file}"])
    assert len(shard_records(out)) == 16 and writer_pids(out) <= workers
    for text, why in (("not json", "not a scheduler file"), ("[1, 2]", "not a scheduler file"),
                      ('{"address": ""}', "names no scheduler address")):
        scheduler_file.write_text(text)
        with pytest.raises(runners.DaskSchedulerError, match=f"scheduler.json.*{why}"):
            relabel.run(recording, str(tmp_path / "bad"), "paper",
                        ["--runner=dask", f"--dask_scheduler_file={scheduler_file}"])
        assert not (tmp_path / "bad").exists()


def test_a_scheduler_without_workers_is_named(recording, tmp_path):
    from distributed import LocalCluster

    empty = LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=":0",
                         silence_logs=logging.ERROR)
    try:
        address = empty.scheduler_address
        with pytest.raises(runners.DaskSchedulerError,
                           match=f"Dask scheduler {address} .* has no workers \\(waited 1 s\\); "
                                 f"start `dask worker {address}`"):
            relabel.run(recording, str(tmp_path / "out"), "paper",
                        [*dask_args(address), "--dask_connection_timeout=1"])
        assert os.listdir(tmp_path) == []
    finally:
        empty.close()


def test_job_command_lines_take_dask_options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    beam = ["--runner=DaskRunner", "--dask_client_address=tcp://10.0.0.1:8786",
            "--dask_npartitions=8", "--dask_connection_timeout=5"]
    args, passed = common.split_job_args(parser, ["--input", "x", *beam])
    assert args.input == "x" and passed == beam
    with pytest.raises(common.UnknownOptionError, match="did you mean --dask_npartitions"):
        common.split_job_args(parser, ["--input", "x", "--runner=DaskRunner",
                                       "--dask_npartition=8"])


def test_runner_names_and_partition_defaults():
    assert runners.is_dask("DaskRunner") and runners.is_dask("dask")
    assert runners.is_dask(runners.DASK_RUNNER) and not runners.is_dask("DirectRunner")
    assert runners.runner_name(None) == "DirectRunner"
    assert runners.runner_name("apache_beam.runners.dataflow.DataflowRunner") == "DataflowRunner"
    # Two partitions per worker thread, more for large outputs, never more than the items.
    assert runners.default_npartitions(threads=4, items=1000, estimated_bytes=0) == 8
    big = 100 * runners.PARTITION_BYTES
    assert runners.default_npartitions(threads=4, items=1000, estimated_bytes=big) == 100
    assert runners.default_npartitions(threads=4, items=3, estimated_bytes=big) == 3


def test_a_jobs_own_cluster_leaves_glibc_its_adaptive_malloc(monkeypatch):
    from distributed import Client

    # As an earlier cluster's nannies leave it in the environment of the process hosting them.
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with runners._local_cluster(workers=1) as address:
        with Client(address, set_as_default=False) as client:
            seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(seen.values()) == [None]
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # this process's own, as it was


def test_the_scheduler_is_probed_from_inside_a_running_event_loop_too(cluster):
    # A notebook runs jobs inside its event loop: the probe must not call asyncio.run there.
    import asyncio

    address, workers = cluster

    async def from_a_loop():
        return runners._probe_scheduler(address, None, 5)

    addresses, threads = asyncio.run(from_a_loop())
    assert len(addresses) == len(workers) == 2 and threads == 2
    assert runners._probe_scheduler(address, None, 5) == (addresses, threads)
