"""`rlif_data.check_workers`: a check over worker processes reports exactly what one process
does (findings of several kinds across the ranges, env notes, errors), and the fast paths of
the per-episode checks decide as the exact ones do."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import check_workers, checks
from rlif_data import invalid
from rlif_data import schema as sc
from rlif_data.recording import store
from rlif_data.recording.reader import EpisodeReader
from tests.fakes.episodes import write_recording
from tests.test_checks import episode

runner = CliRunner()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = sc.vector_schema(3, 3, "unit")


def findings_dataset(directory):
    """8 episodes, findings of five kinds spread over them, two env ids (one registered)."""
    eps = [episode(i, act_dim=3, env_id="Unit-v0" if i < 4 else "Hopper-v5")
           for i in range(8)]
    eps[1][sc.STEPS][sc.OBSERVATION][4, 0] = np.nan  # non-finite
    eps[3][sc.STEPS][sc.DISCOUNT][2] = 0.0  # discount 0 inside the episode
    eps[5][sc.STEPS][sc.ACTION][6] = [0.0, 2.0, 0.0]  # outside Hopper's bounds
    eps[6][sc.STEPS][sc.TIMESTAMP_US][5] = 0  # goes back in time
    eps[7] = {**eps[4], sc.EPISODE_ID: "e/7"}  # a duplicate of episode 4
    path = write_recording(directory, eps, SCHEMA)
    invalid.write_marks(path, [invalid.new_mark("nope/1", "typo", invalid.HOW_CLI)])  # no such id
    return path


def report_json(path, workers, **kwargs):
    out = checks.check_dataset(path, workers=workers, **kwargs).to_json()
    out.pop("seconds")
    return out


def test_workers_report_exactly_what_one_process_reports(tmp_path):
    path = findings_dataset(tmp_path / "rec")
    serial = report_json(path, 1)
    kinds = {f["kind"] for f in serial["findings"]}
    assert {checks.NON_FINITE, checks.DISCOUNT, checks.ACTION_BOUNDS, checks.TIMESTAMP_BACKWARDS,
            checks.DUPLICATE_EPISODE, checks.INVALID_MARK} <= kinds
    assert any("'Unit-v0': not a registered" in n for n in serial["notes"])
    # 8 episodes over 3 processes: ranges of one episode, so every finding is in another range.
    assert check_workers.chunk_ranges(8, 3) == [(i, i + 1) for i in range(8)]
    assert report_json(path, 3) == serial
    assert report_json(path, 2, control_hz=10.0, time_limit=8) == report_json(
        path, 1, control_hz=10.0, time_limit=8)


def records_through_workers(path, processes, envs=None):
    """Every range checked by a worker process (the driver only hands them out)."""
    with EpisodeReader(path, repair=False) as reader:
        return check_workers.check_in_parallel(reader, checks.EpisodeTask(),
                                               {} if envs is None else envs, processes,
                                               driver_checks=False)


def test_worker_processes_return_the_records_the_driver_computes(tmp_path):
    path = findings_dataset(tmp_path / "rec")
    envs: dict = {}
    with EpisodeReader(path, repair=False) as reader:
        serial = checks.check_episodes(reader, range(len(reader)), checks.EpisodeTask(), envs)
    assert sum(len(r["findings"]) for r in serial) >= 4
    assert records_through_workers(path, 3) == serial
    found: dict = {}  # the env entries the workers looked up themselves come back
    assert records_through_workers(path, 2, found) == serial
    assert set(found) == {"Unit-v0", "Hopper-v5"}
    for env_id, (low, high, limit, notes) in found.items():
        want = envs[env_id]
        assert (limit, notes) == (want[2], want[3])
        assert (low is None and want[0] is None) or (np.array_equal(low, want[0])
                                                     and np.array_equal(high, want[1]))


def test_a_worker_makes_no_env_and_loads_no_tensorflow_when_given_the_bounds(tmp_path):
    eps = [episode(i, act_dim=3, env_id="Hopper-v5") for i in range(3)]
    eps[2][sc.STEPS][sc.ACTION][1] = [0.0, 2.0, 0.0]
    path = write_recording(tmp_path / "rec", eps, SCHEMA)
    setup = {"directory": path, "view": None, "control_period_us": None, "deadline_slack": 0.5}
    request = {"start": 0, "stop": 3, "envs": {"Hopper-v5": [[-1.0] * 3, [1.0] * 3, 1000, []]}}
    code = ("import io, json, sys\nfrom rlif_data import check_workers\n"
            f"requests = io.StringIO({json.dumps(setup)!r} + '\\n' + {json.dumps(request)!r})\n"
            "replies = io.StringIO()\ncheck_workers.serve(requests, replies)\n"
            "ready, reply = [json.loads(line) for line in replies.getvalue().splitlines()]\n"
            "print(json.dumps({'ready': ready, 'reply': reply, 'loaded': sorted(\n"
            "    m for m in ('gymnasium', 'mujoco', 'tensorflow', 'jax') if m in sys.modules)}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ready"] == {"ready": True} and result["loaded"] == []
    records = result["reply"]["records"]
    assert [r["id"] for r in records] == ["e/0", "e/1", "e/2"] and result["reply"]["envs"] == {}
    assert [(f["episode"], f["step"], f["kind"]) for r in records for f in r["findings"]] == [
        (2, 1, checks.ACTION_BOUNDS)]


def test_workers_that_cannot_start_leave_the_ranges_to_the_driver(tmp_path):
    path = findings_dataset(tmp_path / "rec")
    with EpisodeReader(path, repair=False) as reader:
        serial = checks.check_episodes(reader, range(len(reader)), checks.EpisodeTask(), {})
        # A writer starts after the driver opened the recording: workers refuse to open it
        # (repair=False) and exit; what they would have checked, the driver checks.
        open(os.path.join(path, store.TMP_PREFIX + "in-flight"), "wb").close()
        records = check_workers.check_in_parallel(reader, checks.EpisodeTask(), {}, 3,
                                                  driver_checks=False)
    assert records == serial


def test_the_cli_writes_the_same_json_report_with_workers(tmp_path):
    path = findings_dataset(tmp_path / "rec")
    outputs = []
    for workers in ("1", "3"):
        out = tmp_path / f"report-{workers}.json"
        result = runner.invoke(app, ["check", path, "--workers", workers, "--json", str(out)])
        assert result.exit_code == 1, result.output  # errors found
        report = json.loads(out.read_text())
        report.pop("seconds")
        outputs.append(report)
    assert outputs[0] == outputs[1] and outputs[0]["errors"] >= 4


def test_progress_reaches_the_total_in_parallel(tmp_path):
    path = write_recording(tmp_path / "rec", [episode(i, act_dim=3) for i in range(5)], SCHEMA)
    seen = []
    checks.check_dataset(path, workers=2, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (5, 5) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def _truncate_shard(path, index):
    shard = store.shard_paths(path)[index]
    size = os.path.getsize(shard)
    with open(shard, "r+b") as f:
        f.truncate(size // 2)
    return shard


def test_a_corrupt_shard_in_the_second_half_gives_the_serial_error(tmp_path):
    path = write_recording(tmp_path / "rec", [episode(i, act_dim=3) for i in range(8)], SCHEMA)
    shard = _truncate_shard(path, 6)
    with pytest.raises(Exception) as serial:
        checks.check_dataset(path, workers=1)
    with pytest.raises(type(serial.value)) as parallel:
        checks.check_dataset(path, workers=3)
    assert str(parallel.value) == str(serial.value)
    assert shard in str(serial.value) and "episode 6" in str(serial.value)
    with pytest.raises(type(serial.value)) as worker:  # the worker meets it, the driver says it
        records_through_workers(path, 3)
    assert str(worker.value) == str(serial.value)

    one = runner.invoke(app, ["check", path, "--workers", "1"])
    three = runner.invoke(app, ["check", path, "--workers", "3"])
    assert one.exit_code == three.exit_code == 2
    assert three.output == one.output and "episode 6" in " ".join(three.output.split())


def test_the_first_corrupt_episode_is_reported_when_two_are(tmp_path):
    path = write_recording(tmp_path / "rec", [episode(i, act_dim=3) for i in range(8)], SCHEMA)
    _truncate_shard(path, 7)
    _truncate_shard(path, 2)
    with pytest.raises(Exception) as parallel:
        records_through_workers(path, 3)
    assert "episode 2" in str(parallel.value) and "episode 7" not in str(parallel.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_shard_gives_the_serial_error(tmp_path):
    path = write_recording(tmp_path / "rec", [episode(i, act_dim=3) for i in range(6)], SCHEMA)
    os.chmod(store.shard_paths(path)[4], 0)
    with pytest.raises(Exception) as serial:
        checks.check_dataset(path, workers=1)
    with pytest.raises(type(serial.value)) as parallel:
        checks.check_dataset(path, workers=3)
    assert str(parallel.value) == str(serial.value) and "permission denied" in str(serial.value)


def test_processes_used_and_bad_worker_counts(tmp_path):
    path = write_recording(tmp_path / "rec", [episode(i, act_dim=3) for i in range(3)], SCHEMA)
    assert checks.check_dataset(path, workers=1).processes == 1
    assert checks.check_dataset(path, workers=8).processes == 3  # one process per episode at most
    assert checks.check_dataset(path).processes == 1  # a few KB: not worth a worker
    with pytest.raises(ValueError, match="workers"):
        checks.check_dataset(path, workers=-1)
    result = runner.invoke(app, ["check", path, "--workers", "-2"])
    assert result.exit_code == 2 and "workers" in result.output


def test_ranges_after_the_first_episodes_checked_alone(tmp_path):
    path = findings_dataset(tmp_path / "rec")
    with EpisodeReader(path, repair=False) as reader:
        serial = checks.check_episodes(reader, range(len(reader)), checks.EpisodeTask(), {})
        rest = check_workers.check_in_parallel(reader, checks.EpisodeTask(), {}, 2,
                                               driver_checks=False, first=3)
    assert rest == serial[3:]


def test_idle_cores_from_two_tick_readings():
    before = {0: (100, 1000), 1: (500, 1000)}
    after = {0: (100, 1010), 1: (508, 1010)}  # cpu 0 busy, cpu 1 idle 8 of 10 ticks
    assert check_workers.idle_cores(before, after) == pytest.approx(0.8)
    assert check_workers.idle_cores(before, before) == 0.0  # no tick in between: none idle
    # Our own workers' start-up (2 ticks of 10) was not other work: it counts as idle.
    assert check_workers.idle_cores(before, after, own_ticks=2) == pytest.approx(1.0)
    assert check_workers.idle_cores(before, after, own_ticks=50) == 2.0  # at most every core
    ticks = check_workers.cpu_ticks()
    if ticks is not None:  # Linux: every CPU this process may use, idle <= all
        assert set(ticks) == os.sched_getaffinity(0) and all(i <= a for i, a in ticks.values())


def test_chunk_ranges_cover_every_episode_once():
    for episodes, processes in [(1, 2), (7, 2), (1000, 2), (1000, 8), (33, 1)]:
        ranges = check_workers.chunk_ranges(episodes, processes)
        covered = [i for a, b in ranges for i in range(a, b)]
        assert covered == list(range(episodes))
        assert max(b - a for a, b in ranges) <= check_workers.MAX_CHUNK_EPISODES


# -- fast paths of the per-episode checks ------------------------------------------------------


def _bounds_reference(action, low, high):
    """The exact float64 test, as the check had it before its float32 fast path."""
    action = np.asarray(action, np.float64)
    outside = (action < low - checks.BOUNDS_TOLERANCE) | (action > high + checks.BOUNDS_TOLERANCE)
    return [int(s) for s in np.flatnonzero(outside.any(axis=1))]


@pytest.mark.parametrize("low, high", [
    (np.full(3, -1.0), np.full(3, 1.0)),
    (np.array([-1.0, -0.4, -3.0]), np.array([1.0, 0.4, 2.0])),  # one limit per dimension
    (np.array([-np.inf, -1.0, -1.0]), np.array([np.inf, 1.0, 1.0])),  # unbounded dimension
    (np.array([-0.1, -0.1, -0.1]), np.array([0.3, 0.3, 0.3])),  # limits float32 cannot hold
])
def test_action_bounds_fast_path_finds_what_the_float64_test_finds(low, high):
    rng = np.random.default_rng(0)
    edges = np.concatenate([low - checks.BOUNDS_TOLERANCE, high + checks.BOUNDS_TOLERANCE])
    edges = edges[np.isfinite(edges)]
    near = edges[rng.integers(0, len(edges), (400, 3))].astype(np.float32)
    ulps = rng.integers(-2, 3, near.shape).astype(np.float32)
    near = np.nextafter(near, near + ulps)  # within a float32 step or two of a limit
    inside = rng.uniform(np.maximum(low, -5), np.minimum(high, 5), (50, 3)).astype(np.float32)
    for action in (near, inside, np.vstack([inside, [[np.nan, 0, 0]]]).astype(np.float32)):
        steps = {sc.IS_FIRST: np.zeros(len(action) + 1, bool), sc.ACTION: action}
        found = checks.action_bound_findings(steps, low, high)
        want = _bounds_reference(action, low, high)
        named = [f.step for f in found if "more step" not in f.message]
        assert named == want[:checks.STEPS_NAMED]
        more = [f for f in found if "more step" in f.message]
        assert (f"{len(want) - checks.STEPS_NAMED} more" in more[0].message) if more \
            else len(want) <= checks.STEPS_NAMED
    assert checks.action_bound_findings({sc.IS_FIRST: np.zeros(51, bool), sc.ACTION: inside},
                                        low, high) == []


def test_constant_observation_fast_path_still_finds_a_frozen_sensor_and_nan():
    e = episode(0, length=6)
    obs = e[sc.STEPS][sc.OBSERVATION]
    obs[:, 1] = 0.25  # frozen entry, but rows differ in the others
    assert checks.constant_findings(e[sc.STEPS]) == []
    obs[:] = obs[0]
    assert [f.kind for f in checks.constant_findings(e[sc.STEPS])] == [checks.CONSTANT_EPISODE]
    obs[:, 0] = np.nan  # NaN never equals itself: not "constant", as before
    assert checks.constant_findings(e[sc.STEPS]) == []
    obs[:] = obs[0] * 0 + 1.0
    obs[-1, 2] = 2.0  # equal first rows, a change only at the end
    assert checks.constant_findings(e[sc.STEPS]) == []


def _auto_check_with_idle(tmp_path, monkeypatch, idle):
    """An auto check of a small dataset on 3 cores, the measured idle cores being `idle`;
    returns (processes used, the worker processes started, whether any still runs)."""
    path = findings_dataset(tmp_path / "rec")
    monkeypatch.setattr(check_workers, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(check_workers, "SAMPLE_SECONDS", 0.0)
    monkeypatch.setattr(check_workers, "_usable_cores", lambda: 3)
    monkeypatch.setattr(check_workers, "idle_cores", lambda *args: idle)
    started = []
    real = check_workers._Worker

    def worker(*args):
        started.append(real(*args))
        return started[-1]

    monkeypatch.setattr(check_workers, "_Worker", worker)
    report = checks.check_dataset(path)
    assert report.to_json()["findings"] == report_json(path, 1)["findings"]
    return report.processes, started, any(w._process.poll() is None for w in started)


def test_a_worker_starts_before_the_idle_cores_are_known_and_stops_if_unneeded(tmp_path,
                                                                               monkeypatch):
    processes, started, running = _auto_check_with_idle(tmp_path / "busy", monkeypatch, 0.0)
    # One started at once; the machine is busy: stopped, the check done in one process.
    assert processes == 1 and len(started) == 1 and not running
    processes, started, running = _auto_check_with_idle(tmp_path / "one", monkeypatch, 1.0)
    assert processes == 2 and len(started) == 1 and not running
    processes, started, running = _auto_check_with_idle(tmp_path / "two", monkeypatch, 2.0)
    assert processes == 3 and len(started) == 2 and not running  # the second after measuring


def test_replies_that_arrive_together_are_all_read(tmp_path):
    # A worker holds two ranges; both replies can be in its pipe before the driver reads.
    read_end, write_end = os.pipe()
    worker = check_workers._Worker.__new__(check_workers._Worker)
    worker.stdout, worker._partial = os.fdopen(read_end, "rb"), b""
    try:
        os.write(write_end, b'{"ready": true}\n{"records": []}\n{"records"')
        assert worker.receive() == [{"ready": True}, {"records": []}]
        os.write(write_end, b': [], "envs": {}}\n')
        assert worker.receive() == [{"records": [], "envs": {}}]
        os.write(write_end, b"not json\n")
        assert worker.receive() is None  # says something else: treated as gone
        os.close(write_end)
        write_end = None
        assert worker.receive() is None  # exited
    finally:
        worker.stdout.close()
        if write_end is not None:
            os.close(write_end)


def test_a_slow_driver_still_gets_every_range_back(tmp_path, monkeypatch):
    path = findings_dataset(tmp_path / "rec")
    real_send = check_workers._Worker.send

    def slow_send(self, span, envs):
        sent = real_send(self, span, envs)
        if len(self.pending) == check_workers.WORKER_QUEUE:
            time.sleep(0.3)  # the worker answers both meanwhile: two lines in one read
        return sent

    monkeypatch.setattr(check_workers._Worker, "send", slow_send)
    with EpisodeReader(path, repair=False) as reader:
        serial = checks.check_episodes(reader, range(len(reader)), checks.EpisodeTask(), {})
    assert records_through_workers(path, 2) == serial
