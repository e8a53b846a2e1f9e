"""Robot sessions on the simulated arm, driven by the replay device (no hardware here)."""

import json

import numpy as np
import pytest

from rlif_data import schema as sc
from rlif_data.episodes import check_observation
from rlif_data.recording.reader import read_episodes
from robot.env import SafetyLimits, SimArmEnv, make_robot_env, reach_expert
from robot.replay_device import ReplayDevice
from robot.session import SessionConfig, make_policy, read_events, run_session
from robot.timing import ControlRate, period_stats


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
    lines = TAKEOVER[:2] + [{"t": 1.0, "event": "burst", "duration": 0.5,
                             "axes": [9, 9, 9, 0, 0, 0]}]
    result, eps = run(tmp_path, lines)
    assert not eps[0][sc.STEPS][sc.INTERVENTION].any()
    assert result["events"].get("device_out_of_range", 0) >= 4


def test_actions_beyond_safety_limits_are_clipped_and_flagged(tmp_path):
    limits = SafetyLimits((-0.2, -0.2), (0.2, 0.2))
    result, eps = run(tmp_path, TAKEOVER, limits=limits)
    assert result["events"]["action_clipped"] >= 10
    clipped = [e for e in read_events(str(tmp_path / "rec")) if e["event"] == "action_clipped"]
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
