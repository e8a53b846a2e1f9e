"""Jobs under faults of the machines they run on: an input a worker may not read, a worker
process killed mid-job, workers that do not see the output's filesystem (issue 17)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from pipelines import output
from rlif_data.recording.reader import read_episodes
from rlif_data.recording.store import shard_paths
from tests.fakes.episodes import make_episode, write_recording
from tests.fakes.processes import descendants as _descendants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
CLI = [sys.executable, "-m", "rlif_cli.main"]
# Root reads any file whatever its mode; without these two capabilities it is
# held to the mode bits like any other user (the kernel's own EACCES).
NO_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def job_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)


def staging_left(parent):
    return [n for n in os.listdir(parent) if n.startswith(output.STAGING_PREFIX)]


def _as_unprivileged() -> list[str]:
    """The prefix that runs a command without the right to ignore file modes, or skip."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: root reads a chmod 000 file")
    probe = tempfile.NamedTemporaryFile()
    os.chmod(probe.name, 0)
    denied = subprocess.run([*NO_OVERRIDE, "cat", probe.name], capture_output=True).returncode
    if denied == 0:
        pytest.skip("setpriv could not drop CAP_DAC_OVERRIDE here")
    return NO_OVERRIDE


@pytest.mark.parametrize("flags", [[], MULTI], ids=["in-process", "worker-processes"])
def test_a_shard_the_job_may_not_read_is_named_with_the_fix(tmp_path, flags):
    prefix = _as_unprivileged()
    rec = write_recording(tmp_path / "rec", [make_episode(i, length=4) for i in range(6)])
    locked = shard_paths(rec)[3]
    os.chmod(locked, 0)
    jobs = tmp_path / "jobs"
    result = subprocess.run([*prefix, *CLI, "relabel", "--input", rec, "--out",
                             str(jobs / "ds"), *flags], cwd=ROOT, env=job_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"{locked}: episode 3: permission denied" in line and "chmod a+r" in line
    assert "recover" not in line  # the shard is whole: setting it aside would be wrong
    assert not (jobs / "ds").exists() and staging_left(jobs) == []


def _cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return b""


def _outcome(job, out, episodes, err):
    """A killed worker's job either retried (whole output) or failed (nothing published)."""
    if job.returncode == 0:
        assert len(read_episodes(str(out))) == episodes
        return "retried"
    assert job.returncode == 2, err
    line = err.strip().splitlines()[-1]
    assert "nothing was written to" in line and "worker process died" in line, line
    assert not out.exists()
    return "failed"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to find the workers")
def test_a_direct_runner_worker_killed_mid_job_fails_it_and_publishes_nothing(tmp_path):
    episodes = 120
    rec = write_recording(tmp_path / "rec", [make_episode(i, length=200)
                                             for i in range(episodes)])
    jobs = tmp_path / "jobs"
    job = subprocess.Popen([*CLI, "relabel", "--input", rec, "--out", str(jobs / "ds"), *MULTI],
                           cwd=ROOT, env=job_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        workers = []
        while not workers:
            assert job.poll() is None, "the job ended before its workers were seen"
            assert time.monotonic() < deadline, "no worker process appeared"
            workers = [p for p in _descendants(job.pid) if b"sdk_worker_main" in _cmdline(p)]
            time.sleep(0.05)
        os.kill(workers[0], signal.SIGKILL)
        killed_while_running = job.poll() is None
        _, err = job.communicate(timeout=300)
    finally:
        job.kill()
    assert killed_while_running
    _outcome(job, jobs / "ds", episodes, err)
    assert staging_left(jobs) == []


def test_a_dask_worker_killed_mid_job_is_replaced_and_the_output_is_whole(tmp_path):
    from distributed import Client, LocalCluster

    episodes = 120
    rec = write_recording(tmp_path / "rec", [make_episode(i, length=200)
                                             for i in range(episodes)])
    jobs = tmp_path / "jobs"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    try:
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            pids = sorted(client.run(os.getpid).values())
            job = subprocess.Popen([*CLI, "relabel", "--input", rec, "--out", str(jobs / "ds"),
                                    "--runner=DaskRunner",
                                    f"--dask_client_address={cluster.scheduler_address}"],
                                   cwd=ROOT, env=job_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 240
                # Mid-job: the scheduler holds the job's tasks.
                while not client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
                    assert job.poll() is None, job.communicate()[1]
                    assert time.monotonic() < deadline, "no task of the job reached the scheduler"
                    time.sleep(0.05)
                os.kill(pids[0], signal.SIGKILL)
                killed_while_running = job.poll() is None
                _, err = job.communicate(timeout=300)
            finally:
                job.kill()
    finally:
        cluster.close()
    assert killed_while_running
    # The scheduler reruns a dead worker's tasks; the notes prove nothing was lost.
    assert _outcome(job, jobs / "ds", episodes, err) == "retried", err
    assert staging_left(jobs) == []


def _can_unshare_mounts() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare_mounts(), reason="needs `unshare --mount` (root)")
def test_workers_that_do_not_see_the_output_filesystem_fail_the_job(tmp_path):
    """A Dask worker whose /.../jobs is another (empty) filesystem, as on a machine that
    does not mount the driver's output disk: the job names that and publishes nothing."""
    from distributed import LocalCluster

    rec = write_recording(tmp_path / "rec", [make_episode(i, length=4) for i in range(6)])
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None)
    worker = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs none "{jobs}" && exec "$0" -m distributed.cli.dask_worker "$1" '
         "--nworkers 1 --nthreads 1 --no-dashboard",
         sys.executable, cluster.scheduler_address],
        cwd=ROOT, env=job_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = subprocess.run([*CLI, "relabel", "--input", rec, "--out", str(jobs / "ds"),
                                 "--runner=DaskRunner",
                                 f"--dask_client_address={cluster.scheduler_address}",
                                 "--dask_connection_timeout=60"],
                                cwd=ROOT, env=job_env(), capture_output=True, text=True,
                                timeout=300)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        cluster.close()
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "cannot see the job's staging directory" in line
    assert "filesystem every worker mounts" in line and "nothing was written to" in line
    assert not (jobs / "ds").exists() and staging_left(jobs) == []
