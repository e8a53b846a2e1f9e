"""Robot sessions on the simulated arm, driven by the replay device (no hardware here)."""

import io
import json
import os
import re
import select
import subprocess
import sys
import threading

import numpy as np
import pytest

from rlif_data import schema as sc
from rlif_data.episodes import check_observation
from rlif_data.recording.reader import read_episodes
from robot.env import SafetyLimits, SimArmEnv, make_robot_env, reach_expert
from robot.keyboard_device import MOTION_KEYS, KeyboardDevice, key_map_lines
from robot.live_status import control_line, episode_line
from robot.replay_device import ReplayDevice
from robot.session import SessionConfig, describe_events, make_policy, read_events, run_session
from robot.timing import ControlRate, period_stats


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeClock:
    """Monotonic time that only moves when the loop sleeps: deterministic pacing."""

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t

    def sleep(self, dt):
        self.t += dt


def replay_file(tmp_path, lines):
    path = tmp_path / "input.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return str(path)


def run(tmp_path, lines, steps=40, episodes=1, image_size=0, limits=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    clock = FakeClock()
    device = ReplayDevice(replay_file(tmp_path, lines), clock=clock)
    env = SimArmEnv(image_size=image_size, cameras=("front", "side"), max_steps=steps, seed=0,
                    limits=limits)
    schema = env.episode_schema()
    device.start()
    result = run_session(env, device, make_policy("random", env), schema,
                         SessionConfig(out=str(tmp_path / "rec"), episodes=episodes,
                                       operator="alice", task="reach"),
                         pacer=ControlRate(10.0, clock=clock, sleep=clock.sleep), progress=False,
                         clock=clock)
    return result, read_episodes(str(tmp_path / "rec"))


TAKEOVER = [
    {"format": "rlif-input-replay", "version": 1, "frame": "robot", "duration": 10.0},
    {"t": 0.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    {"t": 1.0, "axes": [0.8, -0.4, 0, 0, 0, 0], "buttons": [0, 0]},
    {"t": 2.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
]


def test_takeover_is_recorded_as_human_intervention(tmp_path):
    result, eps = run(tmp_path, TAKEOVER)
    steps = eps[0][sc.STEPS]
    flags = steps[sc.INTERVENTION][:-1]
    # 10 Hz: steps 10..19 fall inside the touch (t = 1.0 .. 2.0; step 10 sits on the
    # boundary, so it may go either way); release adds a hold time.
    assert flags[11:20].all() and not flags[:10].any() and not flags[-5:].any()
    assert (steps[sc.SOURCE][:-1][flags] == int(sc.Source.HUMAN)).all()
    np.testing.assert_allclose(steps[sc.ACTION][12], steps[sc.EXPERT_ACTION][12])
    assert steps[sc.ACTION][12][0] > 0 > steps[sc.ACTION][12][1]  # replay axes are robot frame
    assert steps[sc.HAS_EXPERT_ACTION][:-1].sum() == flags.sum()
    assert eps[0][sc.OPERATOR] == "alice" and eps[0][sc.ENV_ID] == "sim-arm/reach"
    assert eps[0][sc.INTERVENTION_MODEL] == "human"
    # Per-step timing: 100 ms apart on the session clock.
    np.testing.assert_allclose(np.diff(steps[sc.TIMESTAMP_US][:-1]), 100_000, atol=1)
    assert result["timing"]["missed_deadlines"] == 0


def test_device_unplugged_mid_episode_keeps_recording_policy_steps(tmp_path):
    lines = TAKEOVER[:3] + [{"t": 1.5, "event": "disconnect"}]
    result, eps = run(tmp_path, lines)
    steps = eps[0][sc.STEPS]
    assert len(steps[sc.IS_FIRST]) == 41  # the episode ran to its end
    assert not steps[sc.INTERVENTION][16:-1].any()  # control went back to the policy
    events = read_events(str(tmp_path / "rec"))
    gone = [e for e in events if e["event"] == "device_disconnected"]
    assert len(gone) == 1 and gone[0]["step"] in (14, 15, 16)


def test_burst_of_out_of_range_values_never_takes_over(tmp_path):
    lines = TAKEOVER[:2] + [{"t": 1.05, "event": "burst", "duration": 0.5,
                             "axes": [9, 9, 9, 0, 0, 0]}]
    result, eps = run(tmp_path, lines)
    assert not eps[0][sc.STEPS][sc.INTERVENTION].any()
    # A burst over steps 11..15 is one condition: logged when it begins and when it ends.
    burst = [(e["event"], e["step"]) for e in read_events(str(tmp_path / "rec"))
             if e["event"].startswith("device_out_of_range")]
    assert burst == [("device_out_of_range", 11), ("device_out_of_range_end", 16)]


def test_actions_beyond_safety_limits_are_clipped_and_flagged(tmp_path):
    limits = SafetyLimits((-0.2, -0.2), (0.2, 0.2))
    result, eps = run(tmp_path, TAKEOVER, limits=limits)
    events = [e for e in read_events(str(tmp_path / "rec")) if e["event"].startswith("action_")]
    # Runs of clipped steps: begin (with what was asked) and end (with the run's length) alternate.
    assert [e["event"] for e in events[:2]] == ["action_clipped", "action_clipped_end"]
    assert all(a["event"] != b["event"] for a, b in zip(events, events[1:]))
    assert sum(e["steps"] for e in events if e["event"] == "action_clipped_end") >= 10
    clipped = [e for e in events if e["event"] == "action_clipped"]
    assert max(abs(a) for e in clipped for a in e["action"]) > 0.2  # what was asked, logged


def test_safety_limits_never_send_nan():
    limits = SafetyLimits((-1.0, -1.0), (1.0, 1.0), max_norm=1.0)
    safe, clipped = limits.clip(np.array([3.0, 4.0]))  # box first, then the speed limit
    np.testing.assert_allclose(safe, [0.5 ** 0.5] * 2, rtol=1e-6)
    assert clipped
    with pytest.raises(ValueError, match="NaN/inf.*not sent"):
        limits.clip(np.array([np.nan, 0.0]))


def test_session_with_two_cameras(tmp_path):
    result, eps = run(tmp_path, TAKEOVER, steps=5, image_size=32)
    obs = eps[0][sc.STEPS][sc.OBSERVATION]
    assert obs["front"].shape == (6, 32, 32, 3) and obs["front"].std() > 0


def test_control_rate_counts_overruns_and_stats():
    clock = FakeClock()
    rate = ControlRate(10.0, clock=clock, sleep=clock.sleep)
    for work in [0.01, 0.02, 0.25, 0.01, 0.01]:
        rate.wait()
        clock.t += work
    rate.wait()
    assert rate.overruns == 1
    stats = period_stats(rate.periods, rate.period)
    assert stats["missed_deadlines"] == 1 and stats["max_ms"] == pytest.approx(250, abs=1)
    assert stats["p50_ms"] == pytest.approx(100, abs=1)


@pytest.mark.parametrize("image_size", [0, 64])
def test_robot_env_gives_its_own_schema(image_size):
    env = make_robot_env("sim-arm", image_size=image_size, max_steps=5, seed=0)
    want = (sc.camera_schema(10, 2, cameras=("front", "side"), size=image_size) if image_size
            else sc.EpisodeSchema({"state": sc.ArraySpec((10,))}, 2))
    assert env.episode_schema() == want
    # The schema accepts what the env actually observes.
    check_observation(env.reset().observation, env.episode_schema(), "reset")
    env.close()
    with pytest.raises(ValueError, match="unknown robot env 'ur5'.*sim-arm"):
        make_robot_env("ur5")


def test_reach_expert_reaches_the_target():
    env = SimArmEnv(image_size=0, max_steps=50, seed=1)
    ts = env.reset()
    expert = reach_expert(env)
    start = np.linalg.norm(env.target() - env.fingertip())
    while not ts.last():
        ts = env.step(expert(ts.observation))
    assert np.linalg.norm(env.target() - env.fingertip()) < 0.2 * start


def test_cli_robot_session_with_replay(tmp_path):
    from typer.testing import CliRunner

    from rlif_cli.main import app

    path = replay_file(tmp_path, TAKEOVER)
    result = CliRunner().invoke(app, ["robot-session", "--device", f"replay:{path}", "--out",
                                      str(tmp_path / "rec"), "--max-steps", "5", "--image-size",
                                      "0", "--rate", "50", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "recorded 1 episodes" in result.output and "p99" in result.output
    assert len(read_episodes(str(tmp_path / "rec"))) == 1
    bad = CliRunner().invoke(app, ["robot-session", "--device", "joystick", "--out",
                                   str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown device 'joystick'" in bad.output


# -- issue 13 item 8: a replay's timeline starts with the control loop -------------------------

TWO_TAKEOVERS = [
    {"format": "rlif-input-replay", "version": 1, "frame": "robot", "duration": 8.0},
    {"t": 0.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    {"t": 1.0, "axes": [0.8, -0.4, 0, 0, 0, 0], "buttons": [0, 0]},
    {"t": 2.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    {"t": 3.5, "axes": [-0.6, 0.6, 0, 0, 0, 0], "buttons": [0, 0]},
    {"t": 4.2, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
]


def scripted_windows(lines, release_time=0.5, deadzone=0.1):
    """[start, end) replay times the file puts the operator in control: motion, plus the release."""
    samples = [x for x in lines if "axes" in x and "event" not in x]
    ends = [x["t"] for x in samples[1:]] + [float("inf")]
    return [(x["t"], end + release_time) for x, end in zip(samples, ends)
            if any(abs(a) > deadzone for a in x["axes"])]


def test_replay_takeovers_land_where_the_file_puts_them_after_a_slow_set_up(tmp_path):
    clock = FakeClock()
    device = ReplayDevice(replay_file(tmp_path, TWO_TAKEOVERS), clock=clock)
    env = SimArmEnv(image_size=0, max_steps=60, seed=0)
    device.start()
    clock.t += 10.0  # what the CLI spends between starting the device and the first step
    result = run_session(env, device, make_policy("random", env), env.episode_schema(),
                         SessionConfig(out=str(tmp_path / "rec")),
                         pacer=ControlRate(10.0, clock=clock, sleep=clock.sleep),
                         progress=False, clock=clock)
    flags = read_episodes(str(tmp_path / "rec"))[0][sc.STEPS][sc.INTERVENTION][:-1]
    period = 0.1
    times = np.arange(len(flags)) * period  # step k is decided k periods after the first tick
    windows = scripted_windows(TWO_TAKEOVERS)
    expected = np.array([any(a <= t < b for a, b in windows) for t in times])
    near_edge = np.array([min(abs(t - x) for w in windows for x in w) <= period for t in times])
    assert expected.sum() > 10 and (flags == expected)[~near_edge].all(), (flags, expected)
    assert result["summary"].episodes[0].takeovers == 2


# -- issue 13 item 10: one event per change of state; who is in control, live ---------------------


class Typist(FakeClock):
    """A keyboard session's fake clock: each key is pressed when the loop's sleep gets there."""

    def __init__(self, keys):
        super().__init__()
        self.keys = sorted(keys)
        self.device = None

    def sleep(self, dt):
        super().sleep(dt)
        while self.keys and self.keys[0][0] <= self.t - 100.0:
            self.device.on_key(self.keys.pop(0)[1])


class Terminal(io.StringIO):
    def isatty(self):
        return True


def keyboard_session(tmp_path, keys, steps=40, stream=None):
    clock = Typist(keys)
    clock.device = KeyboardDevice(clock=clock)
    env = SimArmEnv(image_size=0, max_steps=steps, seed=0)
    result = run_session(env, clock.device, make_policy("random", env), env.episode_schema(),
                         SessionConfig(out=str(tmp_path / "rec")),
                         pacer=ControlRate(10.0, clock=clock, sleep=clock.sleep),
                         progress=stream is not None, status_stream=stream, clock=clock)
    return result, read_episodes(str(tmp_path / "rec"))[0][sc.STEPS]


def test_a_latched_keyboard_takeover_is_one_event_and_shown_live(tmp_path):
    screen = Terminal()
    result, steps = keyboard_session(tmp_path, [(1.05, " "), (2.05, " ")], stream=screen)
    flags = steps[sc.INTERVENTION][:-1]
    assert flags[11:21].all() and not flags[:11].any() and not flags[21:].any()
    latch = [(e["event"], e["step"]) for e in read_events(str(tmp_path / "rec"))
             if e["event"].startswith("device_latched")]
    assert latch == [("device_latched", 11), ("device_latched_end", 21)]
    shown = screen.getvalue()
    assert "OPERATOR in control (latched: space hands back)" in shown
    assert "step   21  policy in control" in shown
    assert shown.endswith("episode 1/1: 40 steps, operator in control 25% (1 takeover)\n")


def test_a_finished_replay_is_logged_once(tmp_path):
    run(tmp_path, TAKEOVER, steps=40)  # 10 s of replay, 4 s of session: not finished
    assert not [e for e in read_events(str(tmp_path / "rec")) if "finished" in e["event"]]
    short = [{**TAKEOVER[0], "duration": 1.95}] + TAKEOVER[1:]
    run(tmp_path / "short", short, steps=40)
    finished = [e for e in read_events(str(tmp_path / "short" / "rec"))
                if e["event"].startswith("device_replay_finished")]
    assert [(e["event"], e["step"]) for e in finished] == [("device_replay_finished", 20)]


def test_status_lines_and_key_map_are_pure_text():
    assert control_line(2, 5, 37, True, ("latched",)) == (
        "episode 2/5  step   37  OPERATOR in control (latched: space hands back)")
    assert control_line(1, 1, 0, False, ("disconnected",)).endswith(
        "policy in control (input device disconnected)")
    assert episode_line(1, 3, 100, 23, 2) == (
        "episode 1/3: 100 steps, operator in control 23% (2 takeovers)")
    lines = key_map_lines(action_dim=2)
    text = "\n".join(lines)
    pairs = [re.match(r"  (\S) / (\S) ", line) for line in lines]
    listed = {key for m in pairs if m for key in m.groups()}
    assert listed == set(MOTION_KEYS) | {"c", "v"} and "  space " in text
    assert "w / s   +x / -x" in text and "not used" not in lines[2]
    assert "not used by this robot" in next(x for x in lines if "+z" in x)
    assert describe_events({}) == "none"
    assert describe_events({"device_latched": 2, "device_latched_end": 2}) == (
        "device_latched 2 (in session_events.jsonl)")


# -- issue 13 item 11: the episode commit runs on a writer thread -------------------------------


class LoggingRate(ControlRate):
    def __init__(self, log, clock):
        super().__init__(10.0, clock=clock, sleep=clock.sleep)
        self.log = log

    def reset(self):
        super().reset()
        self.log.append(("reset",))

    def wait(self):
        late = super().wait()
        self.log.append(("tick",))
        return late


def test_each_episode_is_written_off_the_control_thread_before_the_next_one_starts(tmp_path):
    log = []
    clock = FakeClock()
    device = ReplayDevice(replay_file(tmp_path, TAKEOVER), clock=clock)
    env = SimArmEnv(image_size=0, max_steps=5, seed=0)
    device.start()
    result = run_session(
        env, device, make_policy("random", env), env.episode_schema(),
        SessionConfig(out=str(tmp_path / "rec"), episodes=3),
        pacer=LoggingRate(log, clock), progress=False, clock=clock,
        on_write=lambda timing: log.append(("write", threading.current_thread().name)))
    writes = [i for i, entry in enumerate(log) if entry[0] == "write"]
    resets = [i for i, entry in enumerate(log) if entry[0] == "reset"] + [len(log)]
    assert len(writes) == 3 and {log[i][1] for i in writes} == {"episode-writer"}
    for k, at in enumerate(writes):
        last_tick = max(i for i in range(resets[k], resets[k + 1]) if log[i] == ("tick",))
        next_first_tick = next((i for i in range(resets[k + 1], len(log))
                                if log[i] == ("tick",)), len(log))
        assert last_tick < at < next_first_tick  # after its last step, before the next first
    assert result["summary"].total_episodes_in_directory == 3


def test_a_failed_commit_stops_the_session_at_the_next_episode_keeping_earlier_ones(
        tmp_path, monkeypatch):
    from rlif_data import errors, faults

    monkeypatch.setattr(faults, "_hits", {})
    monkeypatch.setenv(faults.ENV, "record.shard_written@2=ENOSPC")  # episode 1's write fails
    with pytest.raises(errors.RecordingError,
                       match=r"episode '\w+/00001' \(disk full\); the 1 episodes written before"):
        run(tmp_path, TAKEOVER, steps=5, episodes=3)
    monkeypatch.delenv(faults.ENV)
    assert [e[sc.EPISODE_ID][-5:] for e in read_episodes(str(tmp_path / "rec"))] == ["00000"]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_cli_keyboard_session_prints_its_key_map_and_who_is_in_control(tmp_path):
    """The real CLI on a pseudo-terminal: a person holding "w" takes over and sees it."""
    master, slave = os.openpty()
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlif_cli.main", "robot-session", "--device", "keyboard",
         "--out", str(tmp_path / "rec"), "--max-steps", "30", "--image-size", "0"],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env, close_fds=True)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
            if b"keyboard: hold" in out and proc.poll() is None:
                os.write(master, b"w")  # like a held key's auto-repeat
    finally:
        proc.kill()
        proc.wait(timeout=30)
        os.close(master)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "w / s   +x / -x" in text and "space latches a takeover" in text
    assert "OPERATOR in control" in text
    share = int(re.search(r"recorded 1 episodes \(30 steps, operator in control (\d+)%", text)[1])
    assert share > 0
    assert read_episodes(str(tmp_path / "rec"))[0][sc.STEPS][sc.INTERVENTION].any()
