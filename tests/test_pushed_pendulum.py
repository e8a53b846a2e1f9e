"""The pushed inverted pendulum and its LQR experts (real MuJoCo through Gymnasium)."""

import copy
import dataclasses
import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from rlif_data import errors, policies
from rlif_data import schema as sc
from rlif_data.envs import PUSHED_PENDULUM_ID
from rlif_data.envs.gym_dm_env import make_dm_env
from rlif_data.envs.pushed_pendulum import (
    DEFAULT_SETUP,
    ENV_ID,
    PUSH_INFO_KEY,
    PushedPendulumSetup,
    linearize,
    make_env,
)
from rlif_data.policies import lqr
from rlif_data.recording.reader import read_episodes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rollout_pushes(seed, steps, push_every=5, push_std=0.3):
    """Pushes seen in `info` over `steps` steps of the aggressive LQR from reset(seed)."""
    env = gym.make(ENV_ID, push_every=push_every, push_std=push_std)
    expert = lqr.pendulum_expert(lqr.AGGRESSIVE)
    obs, _ = env.reset(seed=seed)
    pushes = []
    for _ in range(steps):
        obs, _, terminated, _, info = env.step(expert(obs))
        pushes.append(info[PUSH_INFO_KEY])
        assert not terminated
    return np.array(pushes)


# --------------------------------------------------------------------------
# Registration and the environment
# --------------------------------------------------------------------------


def test_registered_on_a_fresh_interpreter_without_loading_mujoco_at_import():
    code = (
        "import sys, rlif_data; light = 'mujoco' not in sys.modules and "
        "'gymnasium' not in sys.modules; "
        "from rlif_data.envs.gym_dm_env import make_dm_env; "
        f"env = make_dm_env({PUSHED_PENDULUM_ID!r}, seed=0); ts = env.reset(); "
        "print(light, type(env.gym_env.unwrapped).__name__, ts.observation.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "PushedInvertedPendulumEnv", "(4,)"]


def test_registered_time_limit_matches_the_setup():
    assert ENV_ID == PUSHED_PENDULUM_ID
    assert gym.spec(ENV_ID).max_episode_steps == DEFAULT_SETUP.episode_steps
    env = make_env(dataclasses.replace(DEFAULT_SETUP, episode_steps=7, push_every=3))
    assert env.spec.max_episode_steps == 7 and env.unwrapped.push_every == 3


def test_pushes_land_exactly_every_push_every_steps_with_the_seeded_draws():
    push_every, push_std, steps = 5, 0.3, 23
    env = gym.make(ENV_ID, push_every=push_every, push_std=push_std)
    # A twin without pushes replays each step from the same state: any difference is the push.
    twin = gym.make(ENV_ID, push_every=push_every, push_std=0.0).unwrapped
    twin.reset(seed=0)
    expert = lqr.pendulum_expert(lqr.AGGRESSIVE)
    obs, _ = env.reset(seed=3)
    rng = copy.deepcopy(env.unwrapped.np_random)
    expected = [float(rng.normal(0.0, push_std)) for _ in range(steps // push_every)]
    seen = []
    for t in range(1, steps + 1):
        before = env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy()
        action = expert(obs)
        obs, _, terminated, _, info = env.step(action)
        twin.set_state(*before)
        twin_obs, *_ = twin.step(action)
        assert not terminated
        diff = obs - twin_obs
        if t % push_every == 0:
            seen.append(info[PUSH_INFO_KEY])
            assert info[PUSH_INFO_KEY] != 0.0
            np.testing.assert_allclose(diff, [0.0, 0.0, 0.0, info[PUSH_INFO_KEY]], atol=1e-9)
            assert np.array_equal(env.unwrapped.data.qvel, obs[2:])  # the sim carries the push
        else:
            assert info[PUSH_INFO_KEY] == 0.0
            np.testing.assert_allclose(diff, 0.0, atol=1e-9)
    assert seen == expected


def test_same_seed_same_pushes_other_seed_other_pushes():
    a, b, c = rollout_pushes(11, 20), rollout_pushes(11, 20), rollout_pushes(12, 20)
    assert np.count_nonzero(a) == 4
    assert np.array_equal(a, b)
    assert not np.allclose(a[a != 0], c[c != 0])


def test_push_clock_restarts_at_reset():
    env = gym.make(ENV_ID, push_every=4, push_std=0.2)
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.zeros(1, np.float32))
    env.reset(seed=1)
    pushes = [env.step(np.zeros(1, np.float32))[4][PUSH_INFO_KEY] for _ in range(4)]
    assert pushes[:3] == [0.0, 0.0, 0.0] and pushes[3] != 0.0


@pytest.mark.parametrize("kwargs,message", [
    ({"push_every": 0}, "push_every must be a positive int"),
    ({"push_every": 2.5}, "push_every must be a positive int"),
    ({"push_std": -1.0}, "push_std must be a finite number >= 0"),
    ({"push_std": float("nan")}, "push_std must be a finite number >= 0"),
])
def test_bad_push_parameters_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **kwargs)


@pytest.mark.parametrize("field,value", [
    ("episode_steps", 0), ("push_every", -1), ("lqr_state_weights", (1.0, 2.0)),
    ("aggressive_action_weight", 0.0), ("fd_eps", float("inf")),
])
def test_setup_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(DEFAULT_SETUP, **{field: value})


def test_setup_is_frozen_and_json_ready():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_SETUP.push_std = 0.0
    data = json.loads(json.dumps(DEFAULT_SETUP.to_json_dict()))
    assert data["push_every"] == 50 and data["push_std"] == 0.9
    restored = PushedPendulumSetup(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in data.items()})
    assert restored == DEFAULT_SETUP


def test_dm_env_truncates_at_the_time_limit_with_discount_one():
    env = make_dm_env(ENV_ID, seed=0, max_episode_steps=60)
    expert = lqr.pendulum_expert(lqr.AGGRESSIVE)
    ts, steps = env.reset(), 0
    while not ts.last():
        ts = env.step(expert(ts.observation))
        steps += 1
    assert steps == 60 and ts.discount == 1.0


# --------------------------------------------------------------------------
# Linearisation and LQR
# --------------------------------------------------------------------------


def test_linearisation_predicts_a_small_step():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    a, b = linearize(env)
    assert a.shape == (4, 4) and b.shape == (4, 1)
    base = env.unwrapped

    def env_step(x, u):
        base.set_state(x[:2], x[2:])
        # The base physics step: a push or termination must not enter the comparison.
        base.do_simulation(u, base.frame_skip)
        return np.concatenate([base.data.qpos, base.data.qvel])

    x = np.array([1e-3, -2e-3, 3e-3, 1e-3])
    u = np.array([0.01])
    # The pole leans 1 mm over 0.6 m, so upright at rest drifts a little: compare the change.
    drift = env_step(np.zeros(4), np.zeros(1))
    np.testing.assert_allclose(env_step(x, u) - drift, a @ x + b @ u, atol=1e-7)
    # The upright pendulum is open-loop unstable, so the gain has something to do.
    assert max(abs(np.linalg.eigvals(a))) > 1.0


@pytest.mark.parametrize("kind", [lqr.AGGRESSIVE, lqr.PLAIN])
def test_lqr_gain_stabilises_the_linearised_pendulum(kind):
    a, b = lqr.pendulum_linear_model()
    q, r = lqr.weights(DEFAULT_SETUP, kind)
    k = lqr.lqr_gain(a, b, q, r)
    assert k.shape == (1, 4)
    assert lqr.closed_loop_spectral_radius(a, b, k) < 1.0
    assert lqr.closed_loop_spectral_radius(a, b, np.zeros_like(k)) > 1.0


def test_lqr_gain_matches_a_scalar_riccati_solution():
    # x' = 2x + u, Q = R = 1: P = 4P - 4P^2/(1+P) + 1 gives P = 2 + sqrt(5), K = 2P/(1+P).
    p = 2 + np.sqrt(5)
    k = lqr.lqr_gain([[2.0]], [[1.0]], [[1.0]], [[1.0]])
    np.testing.assert_allclose(k, [[2 * p / (1 + p)]], rtol=1e-9)


def test_lqr_gain_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="LQR shapes do not fit"):
        lqr.lqr_gain(np.eye(2), np.ones((3, 1)), np.eye(2), np.eye(1))


def test_aggressive_survives_more_than_capped_07_on_fixed_seeds():
    setup = dataclasses.replace(DEFAULT_SETUP, episode_steps=500)
    env = make_env(setup)

    def survivors(policy):
        alive = 0
        for seed in range(10):
            obs, _ = env.reset(seed=seed)
            while True:
                obs, _, terminated, truncated, _ = env.step(policy(obs))
                if terminated or truncated:
                    alive += int(not terminated)
                    break
        return alive

    strong = survivors(lqr.pendulum_expert(lqr.AGGRESSIVE))
    weak = survivors(lqr.pendulum_expert(lqr.PLAIN, cap=0.7))
    # Measured 10 vs 3 at these seeds; the margin leaves room for MuJoCo/numpy versions.
    assert strong >= 8 and strong >= weak + 4


# --------------------------------------------------------------------------
# Policies from specs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("spec,cap", [("lqr-aggressive", 3.0), ("lqr", 3.0),
                                      ("lqr-cap:1.5", 1.5), ("lqr-cap:0.7", 0.7)])
def test_spec_policies_stay_within_their_caps_and_are_deterministic(spec, cap):
    env = gym.make(ENV_ID)
    policy = policies.from_spec(spec, env.action_space, env_id=ENV_ID, seed=0)
    obs = np.random.default_rng(0).normal(0.0, 2.0, size=(200, 4))
    actions = np.stack([policy(o) for o in obs])
    assert actions.dtype == np.float32 and actions.shape == (200, 1)
    assert np.all(np.abs(actions) <= np.float32(cap))
    assert np.isclose(np.abs(actions).max(), cap)  # large states do reach the cap
    assert np.array_equal(actions, np.stack([policy(o) for o in obs]))


def test_capped_expert_is_the_plain_gain_clipped():
    plain = lqr.pendulum_expert(lqr.PLAIN)
    capped = lqr.pendulum_expert(lqr.PLAIN, cap=0.7)
    obs = np.random.default_rng(1).normal(0.0, 0.1, size=(50, 4))
    for o in obs:
        np.testing.assert_array_equal(capped(o), np.clip(plain(o), -0.7, 0.7))


def test_spec_for_another_env_names_the_envs_it_fits():
    env = gym.make("Hopper-v5")
    with pytest.raises(errors.UnknownEnvironmentError, match="InvertedPendulumPushed-v5"):
        policies.from_spec("lqr", env.action_space, env_id="Hopper-v5", seed=0)


def test_lqr_policy_rejects_bad_observation_and_cap():
    policy = lqr.pendulum_expert(lqr.PLAIN)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        policy(np.zeros(3))
    with pytest.raises(ValueError, match="cap must be a finite number > 0"):
        lqr.LQRPolicy(policy.gain, -3.0, 3.0, cap=-1.0)


@pytest.mark.slow
def test_record_cli_takes_the_env_and_an_lqr_expert_by_name(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    out = tmp_path / "rec"
    result = subprocess.run(
        [exe, "record", "--env", ENV_ID, "--expert", "lqr-cap:0.7", "--learner", "random",
         "--intervention", "random", "--rate", "0.5", "--episodes", "2",
         "--max-episode-steps", "40", "--out", str(out), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env=dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl")))
    assert result.returncode == 0, result.stderr[-2000:]
    episodes = read_episodes(str(out))
    assert len(episodes) == 2 and episodes[0][sc.ENV_ID] == ENV_ID
    expert = lqr.pendulum_expert(lqr.PLAIN, cap=0.7)
    steps = episodes[0][sc.STEPS]
    has = steps[sc.HAS_EXPERT_ACTION]
    assert has.any()
    # The recorded expert labels are the capped LQR of the recorded observations.
    expected = np.stack([expert(o) for o in steps[sc.OBSERVATION][has]])
    np.testing.assert_allclose(steps[sc.EXPERT_ACTION][has], expected, atol=1e-6)
    assert np.all(np.abs(steps[sc.EXPERT_ACTION]) <= np.float32(0.7))
