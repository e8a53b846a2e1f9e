"""Tests of rlif_data.policies: random, scripted, noisy and MLP policies."""

import os

# MuJoCo picks its GL backend at import; headless machines have no display.
os.environ.setdefault("MUJOCO_GL", "egl")

import dataclasses  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlif_data import errors  # noqa: E402
from rlif_data import policies  # noqa: E402

EPISODE_STEPS = 300
SEEDS = range(5)


def path_re(path):
    """A regex matching ``path`` as the code reports it (absolute, resolved)."""
    return re.escape(str(path.resolve()))


def run_episodes(env_id, policy, seeds=SEEDS, max_steps=EPISODE_STEPS):
    """Mean episode length and return of `policy` on seeded episodes."""
    env = gym.make(env_id, max_episode_steps=max_steps)
    lengths, returns = [], []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            steps, total = 0, 0.0
            while True:
                action = policy(obs)
                assert env.action_space.contains(action), action
                obs, reward, terminated, truncated, _ = env.step(action)
                steps += 1
                total += reward
                if terminated or truncated:
                    break
            lengths.append(steps)
            returns.append(total)
    finally:
        env.close()
    return float(np.mean(lengths)), float(np.mean(returns))


# ---------------------------------------------------------------- random


def test_random_policy_in_bounds_and_float32():
    low, high = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.5, 2.0])
    policy = policies.RandomPolicy(low, high, seed=3)
    actions = np.stack([policy(None) for _ in range(500)])
    assert actions.dtype == np.float32
    assert actions.shape == (500, 3)
    assert np.all(actions >= low.astype(np.float32))
    assert np.all(actions <= high.astype(np.float32))
    # The actions are spread out, not a constant.
    assert actions[:, 0].std() > 0.3
    np.testing.assert_array_equal(actions[:, 2], 2.0)


def test_random_policy_seeded_reproducible():
    space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    a = policies.RandomPolicy.from_space(space, seed=7)
    b = policies.RandomPolicy.from_space(space, seed=7)
    c = policies.RandomPolicy.from_space(space, seed=8)
    first = np.stack([a(None) for _ in range(10)])
    np.testing.assert_array_equal(first, np.stack([b(None) for _ in range(10)]))
    assert not np.array_equal(first, np.stack([c(None) for _ in range(10)]))
    a.reset(seed=7)
    np.testing.assert_array_equal(first, np.stack([a(None) for _ in range(10)]))


def test_random_policy_rejects_bad_bounds():
    with pytest.raises(ValueError, match="action_low must be <="):
        policies.RandomPolicy([1.0], [0.0])
    with pytest.raises(ValueError, match="equal shapes"):
        policies.RandomPolicy([0.0, 0.0], [1.0])


# ---------------------------------------------------------------- experts


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5"])
def test_scripted_expert_deterministic(env_id):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    env.close()
    a, b = policies.scripted_expert(env_id), policies.scripted_expert(env_id)
    action = a(obs)
    assert action.dtype == np.float32
    assert action.shape == env.action_space.shape
    np.testing.assert_array_equal(action, a(obs.copy()))
    np.testing.assert_array_equal(action, b(obs))


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5"])
def test_scripted_expert_much_better_than_random(env_id):
    space = gym.make(env_id).action_space
    expert_len, expert_ret = run_episodes(env_id, policies.scripted_expert(env_id))
    random_len, random_ret = run_episodes(env_id, policies.RandomPolicy.from_space(space, 0))
    # Measured: Hopper expert 300 / ~302 vs random ~39 / ~45;
    # Walker2d expert 300 / ~301 vs random ~33 / ~12.
    assert expert_len >= 3 * random_len
    assert expert_len >= 0.9 * EPISODE_STEPS
    assert expert_ret >= 3 * random_ret


def test_expert_rejects_wrong_observation_shape():
    with pytest.raises(ValueError, match=r"\(11,\)"):
        policies.HopperBalanceExpert()(np.zeros(17))


def test_scripted_expert_unknown_env_id():
    with pytest.raises(ValueError, match="NoSuchEnv-v0") as info:
        policies.scripted_expert("NoSuchEnv-v0")
    assert isinstance(info.value, errors.UnknownEnvironmentError)
    for known in policies.SCRIPTED_EXPERTS:
        assert known in str(info.value)


# ---------------------------------------------------------------- noisy


def test_noisy_policy_in_bounds_and_differs_from_base():
    base = policies.HopperBalanceExpert()
    noisy = policies.NoisyPolicy(base, 0.5, [-1.0] * 3, [1.0] * 3, seed=0)
    rng = np.random.default_rng(0)
    observations = rng.normal(0.0, 0.3, size=(200, 11))
    clean = np.stack([base(o) for o in observations])
    actions = np.stack([noisy(o) for o in observations])
    assert actions.dtype == np.float32
    assert np.all(actions >= -1.0) and np.all(actions <= 1.0)
    assert not np.allclose(actions, clean)
    # Noise is centred: on average the noisy action tracks the base action.
    assert np.abs((actions - clean).mean()) < 0.1


def test_noisy_policy_seeded_and_zero_noise_is_base():
    base = policies.HopperBalanceExpert()
    obs = np.full(11, 0.05)
    a = policies.NoisyPolicy(base, 0.2, [-1.0] * 3, [1.0] * 3, seed=4)
    b = policies.NoisyPolicy(base, 0.2, [-1.0] * 3, [1.0] * 3, seed=4)
    np.testing.assert_array_equal(a(obs), b(obs))
    quiet = policies.NoisyPolicy(base, 0.0, [-1.0] * 3, [1.0] * 3, seed=4)
    np.testing.assert_array_equal(quiet(obs), base(obs))
    with pytest.raises(ValueError, match="noise_std"):
        policies.NoisyPolicy(base, -0.1, [-1.0] * 3, [1.0] * 3)


# ---------------------------------------------------------------- MLP


@pytest.fixture
def mlp_config():
    return policies.MLPPolicyConfig(
        obs_dim=11, action_dim=3, hidden_dims=(32, 16),
        action_low=(-1.0, -0.5, 0.0), action_high=(1.0, 0.5, 2.0),
    )


def test_module_import_does_not_import_jax():
    code = "import sys, rlif_data.policies; print('jax' in sys.modules, 'flax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "False False"


def test_config_validation_and_json_round_trip(mlp_config):
    assert policies.MLPPolicyConfig.from_json_dict(mlp_config.to_json_dict()) == mlp_config
    default = policies.MLPPolicyConfig(obs_dim=4, action_dim=2)
    assert default.action_low == (-1.0, -1.0) and default.action_high == (1.0, 1.0)
    with pytest.raises(ValueError, match="obs_dim"):
        policies.MLPPolicyConfig(obs_dim=0, action_dim=2)
    with pytest.raises(ValueError, match="shape"):
        policies.MLPPolicyConfig(obs_dim=3, action_dim=2, action_low=(-1.0,), action_high=(1.0,))


def test_mlp_policy_in_bounds(mlp_config):
    params = policies.init_mlp_policy_params(mlp_config, seed=0)
    policy = policies.MLPPolicy(mlp_config, params)
    # Large inputs saturate the tanh, so this also checks the bound edges.
    observations = np.random.default_rng(0).normal(0.0, 100.0, size=(64, 11))
    actions = policy(observations)
    assert actions.shape == (64, 3) and actions.dtype == np.float32
    assert np.all(actions >= np.float32(mlp_config.action_low))
    assert np.all(actions <= np.float32(mlp_config.action_high))
    single = policy(observations[0])
    assert single.shape == (3,)
    np.testing.assert_allclose(single, actions[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="11"):
        policy(np.zeros(5))


def test_mlp_save_load_round_trip(tmp_path, mlp_config):
    params = policies.init_mlp_policy_params(mlp_config, seed=1)
    in_memory = policies.MLPPolicy(mlp_config, params)
    policies.save_mlp_policy(tmp_path / "policy", mlp_config, params)
    assert (tmp_path / "policy" / "policy_config.json").is_file()
    loaded = policies.load_mlp_policy(tmp_path / "policy")
    assert loaded.config == mlp_config
    observations = np.random.default_rng(1).normal(size=(20, 11)).astype(np.float32)
    for obs in observations:
        np.testing.assert_array_equal(loaded(obs), in_memory(obs))
    # Different seeds give different params, so equality above is not vacuous.
    other = policies.MLPPolicy(mlp_config, policies.init_mlp_policy_params(mlp_config, seed=2))
    assert not np.array_equal(other(observations[0]), in_memory(observations[0]))


def test_save_refuses_to_overwrite_unless_asked(tmp_path, mlp_config):
    first = policies.init_mlp_policy_params(mlp_config, seed=1)
    second = policies.init_mlp_policy_params(mlp_config, seed=2)
    policies.save_mlp_policy(tmp_path, mlp_config, first)
    with pytest.raises(FileExistsError, match=path_re(tmp_path)):
        policies.save_mlp_policy(tmp_path, mlp_config, second)
    policies.save_mlp_policy(tmp_path, mlp_config, second, overwrite=True)
    obs = np.ones(11, dtype=np.float32)
    np.testing.assert_array_equal(policies.load_mlp_policy(tmp_path)(obs),
                                  policies.MLPPolicy(mlp_config, second)(obs))


def test_save_rejects_params_that_do_not_match_config(tmp_path, mlp_config):
    other = policies.MLPPolicyConfig(obs_dim=11, action_dim=3, hidden_dims=(8,))
    with pytest.raises(ValueError, match="do not match"):
        policies.save_mlp_policy(tmp_path, mlp_config, policies.init_mlp_policy_params(other))


def test_load_missing_directory(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=path_re(missing)):
        policies.load_mlp_policy(missing)


@pytest.fixture
def saved_policy(tmp_path, mlp_config):
    policies.save_mlp_policy(tmp_path, mlp_config, policies.init_mlp_policy_params(mlp_config))
    return tmp_path


def test_load_missing_config(saved_policy):
    config_path = saved_policy / "policy_config.json"
    config_path.unlink()
    with pytest.raises(FileNotFoundError, match=path_re(config_path)):
        policies.load_mlp_policy(saved_policy)


def test_load_corrupted_config(saved_policy):
    config_path = saved_policy / "policy_config.json"
    config_path.write_text('{"obs_dim": 11, "action_dim"')
    with pytest.raises(ValueError, match=path_re(config_path)):
        policies.load_mlp_policy(saved_policy)


@pytest.mark.parametrize("change", [
    {"obs_dim": "eleven"},
    {"format_version": 99},
    {"hidden_dims": [32, 8]},  # valid config, but the stored params differ
    {"surprise": 1},
])
def test_load_config_that_does_not_fit(saved_policy, change):
    config_path = saved_policy / "policy_config.json"
    data = json.loads(config_path.read_text())
    data.update(change)
    config_path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=path_re(saved_policy)):
        policies.load_mlp_policy(saved_policy)


def test_load_missing_params(saved_policy):
    import shutil

    shutil.rmtree(saved_policy / "params")
    with pytest.raises(FileNotFoundError, match=path_re(saved_policy / "params")):
        policies.load_mlp_policy(saved_policy)


def test_mlp_module_is_importable_and_subclassable_by_name(mlp_config):
    from rlif_data.policies.mlp import TanhMLP

    module = policies.make_mlp_module(mlp_config)
    assert type(module) is TanhMLP and policies.TanhMLP is TanhMLP

    class Doubled(TanhMLP):
        def __call__(self, obs):
            return 2.0 * super().__call__(obs)

    params = policies.init_mlp_policy_params(mlp_config, seed=0)
    doubled = Doubled(hidden_dims=module.hidden_dims, action_dim=module.action_dim,
                      action_low=module.action_low, action_high=module.action_high)
    obs = np.ones((1, 11), np.float32)
    np.testing.assert_allclose(doubled.apply(params, obs), 2.0 * module.apply(params, obs),
                               rtol=1e-6)


def test_checkpoint_config_is_written_through_fsynced_atomic_writer(tmp_path, mlp_config,
                                                                     monkeypatch):
    from rlif_data import fsutil

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    policies.save_mlp_policy(tmp_path, mlp_config, policies.init_mlp_policy_params(mlp_config))
    # The config's temp file and then its directory were fsynced; no temp file is left behind.
    names = [os.path.basename(p) for p in synced]
    assert any(n.startswith("policy_config.json.tmp") for n in names), synced
    assert str(tmp_path.resolve()) in synced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params", "policy_config.json"]


# ---------------------------------------------------------------- scripted layout


def test_balance_controller_reads_legs_from_layout():
    gains = policies.HOPPER_GAINS
    one_leg = policies.BodyLayout(obs_dim=11, torso_angle=1, torso_rate=7, forward_vel=5,
                                  legs=((2, 8),))
    # The same leg read twice: the action is the one-leg action repeated.
    two_legs = dataclasses.replace(one_leg, legs=((2, 8), (2, 8)))
    obs = np.random.default_rng(0).normal(0.0, 0.3, size=11)
    a = policies.BalanceController(one_leg, gains)(obs)
    b = policies.BalanceController(two_legs, gains)(obs)
    np.testing.assert_array_equal(b, np.concatenate([a, a]))
    np.testing.assert_array_equal(a, policies.HopperBalanceExpert()(obs))
    # Swapping the walker's legs in the observation swaps the two halves of the action.
    walker = policies.Walker2dBalanceExpert()
    wobs = np.random.default_rng(1).normal(0.0, 0.3, size=17)
    swapped = wobs.copy()
    swapped[2:5], swapped[5:8] = wobs[5:8], wobs[2:5]
    swapped[11:14], swapped[14:17] = wobs[14:17], wobs[11:14]
    action, mirrored = walker(wobs), walker(swapped)
    np.testing.assert_array_equal(action[:3], mirrored[3:])
    np.testing.assert_array_equal(action[3:], mirrored[:3])
    assert not np.array_equal(action[:3], action[3:])


# ---------------------------------------------------------------- from_spec

BOX = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)


def test_from_spec_builds_each_named_policy():
    obs = np.full(11, 0.05)
    rand = policies.from_spec("random", BOX, env_id="Hopper-v5", seed=3)
    np.testing.assert_array_equal(rand(obs), policies.RandomPolicy.from_space(BOX, seed=3)(obs))
    scripted = policies.from_spec("scripted", BOX, env_id="Hopper-v5", seed=0)
    np.testing.assert_array_equal(scripted(obs), policies.HopperBalanceExpert()(obs))
    noisy = policies.from_spec("noisy-expert", BOX, env_id="Hopper-v5", seed=4, noise=0.2)
    want = policies.NoisyPolicy(policies.HopperBalanceExpert(), 0.2, BOX.low, BOX.high, seed=4)
    np.testing.assert_array_equal(noisy(obs), want(obs))
    # An explicit expert replaces the scripted one.
    zero = policies.from_spec("noisy-expert", BOX, env_id="NoExpert-v0", seed=0, noise=0.0,
                              expert=lambda o: np.full(3, 0.25, np.float32))
    np.testing.assert_array_equal(zero(obs), np.full(3, 0.25, np.float32))


def test_from_spec_reads_dm_env_bounds_and_state_key():
    from dm_env import specs

    spec = specs.BoundedArray((3,), np.float32, -np.ones(3, np.float32),
                              np.full(3, 0.5, np.float32))
    rand = policies.from_spec("random", spec, env_id="Hopper-v5", seed=0)
    actions = np.stack([rand(None) for _ in range(200)])
    assert actions.max() <= 0.5 and actions.max() > 0.3
    obs = {"state": np.full(11, 0.05), "front": np.zeros((4, 4, 3), np.uint8)}
    scripted = policies.from_spec("scripted", spec, env_id="Hopper-v5", seed=0,
                                  state_key="state")
    np.testing.assert_array_equal(scripted(obs), policies.HopperBalanceExpert()(obs["state"]))


def test_from_spec_loads_a_checkpoint_and_rejects_unknown_specs(tmp_path, mlp_config):
    params = policies.init_mlp_policy_params(mlp_config, seed=1)
    policies.save_mlp_policy(tmp_path / "ckpt", mlp_config, params)
    loaded = policies.from_spec(str(tmp_path / "ckpt"), BOX, env_id="Hopper-v5", seed=0,
                                state_key="state")
    obs = np.linspace(-1.0, 1.0, 11).astype(np.float32)
    np.testing.assert_array_equal(loaded({"state": obs}),
                                  policies.MLPPolicy(mlp_config, params)(obs))
    with pytest.raises(ValueError, match="learner must be one of .*'noisy-expert'.*nope"):
        policies.check_spec(str(tmp_path / "nope"), "learner")
    with pytest.raises(ValueError, match="random"):
        policies.from_spec("nope", BOX, env_id="Hopper-v5", seed=0)


def test_from_spec_is_extensible_by_name_and_by_ref_resolver(tmp_path, mlp_config,
                                                              monkeypatch):
    from rlif_data.policies import spec as spec_mod

    monkeypatch.setattr(spec_mod, "SPEC_FACTORIES", dict(spec_mod.SPEC_FACTORIES))
    monkeypatch.setattr(spec_mod, "_REF_RESOLVERS", [])
    policies.register_spec("half", lambda ctx: lambda o: ctx.action_high * 0.5)
    # A "module:function" entry is imported only when used.
    policies.register_spec("lazy-scripted", "rlif_data.policies.spec:_scripted")
    with pytest.raises(ValueError, match="already registered"):
        policies.register_spec("random", spec_mod._random)
    np.testing.assert_array_equal(
        policies.from_spec("half", BOX, env_id="Hopper-v5", seed=0)(None), [0.5] * 3)
    obs = np.full(11, 0.05)
    np.testing.assert_array_equal(
        policies.from_spec("lazy-scripted", BOX, env_id="Hopper-v5", seed=0)(obs),
        policies.HopperBalanceExpert()(obs))
    params = policies.init_mlp_policy_params(mlp_config, seed=2)
    policies.save_mlp_policy(tmp_path / "v3", mlp_config, params)
    policies.register_ref_resolver(
        lambda s: str(tmp_path / s.split(":")[1]) if s.startswith("policy:") else None)
    policies.check_spec("policy:v3")
    via_ref = policies.from_spec("policy:v3", BOX, env_id="Hopper-v5", seed=0)
    np.testing.assert_array_equal(via_ref(obs), policies.MLPPolicy(mlp_config, params)(obs))
