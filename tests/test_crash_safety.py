"""A real recording subprocess killed with SIGKILL loses at most the episode in flight."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rlif_data import schema as sc
from rlif_data.recording import store
from rlif_data.recording.reader import EpisodeReader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def start_child(directory, die_at=""):
    cmd = [sys.executable, "-m", "tests.fakes.record_until_killed", str(directory)]
    if die_at:
        cmd += ["--die-at", die_at]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def read_done(proc, until=None, timeout=120.0):
    """Collect DONE lines until `until` of them arrived or the child exits."""
    done = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if line.startswith("DONE"):
            _, eid, transitions, intervened = line.split()
            done.append((eid, int(transitions), int(intervened)))
            if until is not None and len(done) >= until:
                break
        assert time.monotonic() < deadline, "child too slow"
    return done


def check_consistent(episode):
    steps = episode[sc.STEPS]
    t = len(steps[sc.IS_FIRST]) - 1
    flags = steps[sc.INTERVENTION][:t]
    np.testing.assert_array_equal(steps[sc.SOURCE][:t] == int(sc.Source.EXPERT), flags)
    np.testing.assert_array_equal(steps[sc.ACTION][:t][flags], steps[sc.EXPERT_ACTION][:t][flags])
    np.testing.assert_array_equal(steps[sc.ACTION][:t][~flags], steps[sc.POLICY_ACTION][:t][~flags])
    assert steps[sc.HAS_EXPERT_ACTION][:t].all()
    assert steps[sc.IS_LAST][-1] and steps[sc.IS_FIRST][0]


def assert_all_done_readable(directory, done):
    reader = EpisodeReader(str(directory))
    assert len(done) <= len(reader) <= len(done) + 1
    for i, (eid, transitions, intervened) in enumerate(done):
        episode = reader[i]
        assert episode[sc.EPISODE_ID] == eid
        assert len(episode[sc.STEPS][sc.IS_FIRST]) - 1 == transitions
        assert int(episode[sc.STEPS][sc.INTERVENTION].sum()) == intervened
        check_consistent(episode)
    return reader


@pytest.mark.parametrize("episodes_before_kill,extra_delay", [(3, 0.0), (5, 0.013), (8, 0.05)])
def test_sigkill_mid_session_keeps_every_completed_episode(tmp_path, episodes_before_kill,
                                                           extra_delay):
    d = tmp_path / "rec"
    proc = start_child(d)
    try:
        done = read_done(proc, until=episodes_before_kill)
        time.sleep(extra_delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        done += read_done(proc)  # lines printed before the kill landed
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert len(done) >= episodes_before_kill
    assert_all_done_readable(d, done)
    assert not store.needs_recovery(str(d))


def test_kill_while_shard_half_written(tmp_path):
    d = tmp_path / "rec"
    proc = start_child(d, die_at="mid-shard:3")
    done = read_done(proc)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(done) == 2
    assert any(n.startswith(store.TMP_PREFIX) for n in os.listdir(d))
    reader = assert_all_done_readable(d, done)
    assert len(reader) == 2
    assert not any(n.startswith(store.TMP_PREFIX) for n in os.listdir(d))


def test_kill_between_shard_and_index_keeps_the_episode(tmp_path):
    d = tmp_path / "rec"
    proc = start_child(d, die_at="before-index:3")
    done = read_done(proc)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(done) == 2  # the third was durable but not yet reported
    report = store.recover(str(d))
    assert report.indexed_shards == [store.shard_name("rlif_episodes", 2)]
    reader = assert_all_done_readable(d, done)
    assert len(reader) == 3
    check_consistent(reader[2])


def test_appending_after_a_crash_continues_the_recording(tmp_path):
    d = tmp_path / "rec"
    proc = start_child(d, die_at="mid-shard:2")
    first = read_done(proc)
    proc.wait(timeout=60)
    proc = start_child(d)
    try:
        second = read_done(proc, until=2)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    reader = EpisodeReader(str(d))
    assert len(reader) >= len(first) + len(second)
    assert reader[0][sc.EPISODE_ID] == first[0][0]
    assert reader[1][sc.EPISODE_ID] == second[0][0]
