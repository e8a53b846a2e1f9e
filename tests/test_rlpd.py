"""RLPD learner: configs, the tanh-Gaussian, critic/actor/temperature steps, the scan, export."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from trainers.agents import batch as bk
from trainers.agents.rlpd import (
    RLPDLearner,
    critic_values,
    export_actor_params,
    export_policy,
    load_critic,
    save_critic,
)
from trainers.agents.rlpd.critic import bellman_target, subset_target_qs
from trainers.agents.rlpd.temperature import update_temperature
from trainers.configs import RLPDConfig
from trainers.networks import sample_subset, tanh_normal

OBS_DIM, ACTION_DIM = 5, 2
TINY = RLPDConfig(hidden_dims=(32, 32), num_qs=4, num_min_qs=2, batch_size=16, utd_ratio=3)


def make_batch(rows, seed=0, obs_dim=OBS_DIM, action_dim=ACTION_DIM):
    rng = np.random.default_rng(seed)
    return {
        bk.OBSERVATIONS: rng.normal(size=(rows, obs_dim)).astype(np.float32),
        bk.ACTIONS: rng.uniform(-1, 1, (rows, action_dim)).astype(np.float32),
        bk.REWARDS: rng.normal(size=(rows,)).astype(np.float32),
        bk.DISCOUNTS: (rng.uniform(size=rows) > 0.1).astype(np.float32),
        bk.NEXT_OBSERVATIONS: rng.normal(size=(rows, obs_dim)).astype(np.float32),
    }


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@pytest.fixture(scope="module")
def agent():
    return RLPDLearner.create(0, OBS_DIM, ACTION_DIM, TINY)


# -- config ------------------------------------------------------------------------


def test_config_defaults_are_the_reference_rlpd_config():
    c = RLPDConfig()
    assert (c.num_qs, c.num_min_qs, c.critic_layer_norm) == (10, 2, True)
    assert c.hidden_dims == (256, 256, 256)
    assert (c.actor_lr, c.critic_lr, c.temp_lr) == (3e-4, 3e-4, 3e-4)
    assert (c.discount, c.tau, c.batch_size, c.offline_ratio, c.utd_ratio) == (
        0.99, 0.005, 256, 0.5, 20)
    assert c.resolved_target_entropy(6) == -3.0
    assert dataclasses.replace(c, target_entropy=-1.5).resolved_target_entropy(6) == -1.5


def test_config_json_round_trip_and_strictness():
    c = RLPDConfig(hidden_dims=[64, 64], target_entropy=-2.0)
    data = json.loads(json.dumps(c.to_json_dict()))
    assert RLPDConfig.from_json_dict(data) == c
    with pytest.raises(ValueError, match="unknown fields"):
        RLPDConfig.from_json_dict({**data, "lr": 1.0})
    with pytest.raises(ValueError, match="missing fields"):
        RLPDConfig.from_json_dict({k: v for k, v in data.items() if k != "tau"})
    with pytest.raises(ValueError, match="kind"):
        RLPDConfig.from_json_dict({**data, "kind": "BCConfig"})


@pytest.mark.parametrize("field,value", [
    ("num_min_qs", 11), ("tau", 1.5), ("hidden_dims", ()), ("critic_lr", 0.0),
    ("utd_ratio", 0), ("target_entropy", float("nan")), ("critic_layer_norm", 1)])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        RLPDConfig(**{field: value})


# -- tanh-normal ---------------------------------------------------------------------


def test_tanh_normal_log_prob_matches_numerical_density():
    # Density of a = tanh(u), u ~ N(m, s): the derivative of the CDF
    # P(A <= a) = Phi((atanh(a) - m) / s), taken by finite differences.
    from math import erf

    m, s = 0.4, 0.7
    grid = np.linspace(-0.95, 0.95, 39)
    cdf = lambda a: 0.5 * (1 + erf((math.atanh(a) - m) / (s * math.sqrt(2))))
    h = 1e-5
    numeric = np.array([(cdf(a + h) - cdf(a - h)) / (2 * h) for a in grid])
    logp = tanh_normal.log_prob(jnp.asarray(grid[:, None], jnp.float32),
                                jnp.full((39, 1), m), jnp.full((39, 1), math.log(s)))
    np.testing.assert_allclose(np.exp(np.asarray(logp)), numeric, rtol=2e-3)


def test_tanh_normal_sample_log_prob_is_the_density_of_the_sample():
    mean = jnp.array([[0.3, -1.2], [2.0, 0.0]])
    log_std = jnp.array([[-0.5, 0.2], [0.0, -1.0]])
    actions, logp = tanh_normal.sample(jax.random.PRNGKey(1), mean, log_std)
    assert np.all(np.abs(np.asarray(actions)) < 1)
    np.testing.assert_allclose(logp, tanh_normal.log_prob(actions, mean, log_std), rtol=1e-4)
    np.testing.assert_allclose(tanh_normal.mode(mean), np.tanh(np.asarray(mean)), rtol=1e-6)


def test_tanh_normal_log_prob_stays_finite_for_saturated_samples():
    u = jnp.array([[30.0, -30.0]])
    logp = tanh_normal.log_prob_pre_tanh(u, jnp.zeros((1, 2)), jnp.full((1, 2), 3.0))
    assert np.isfinite(np.asarray(logp)).all()


# -- critic ------------------------------------------------------------------------


def test_bellman_target_formula():
    rewards = jnp.array([1.0, 2.0])
    discounts = jnp.array([1.0, 0.0])
    next_qs = jnp.array([[3.0, 5.0], [4.0, 1.0]])
    next_logp = jnp.array([-1.0, 0.5])
    got = bellman_target(rewards, discounts, next_qs, next_logp, jnp.float32(0.2), 0.9, True)
    np.testing.assert_allclose(got, [1.0 + 0.9 * (3.0 + 0.2), 2.0], rtol=1e-6)
    no_entropy = bellman_target(rewards, discounts, next_qs, next_logp, 0.2, 0.9, False)
    np.testing.assert_allclose(no_entropy, [1.0 + 0.9 * 3.0, 2.0], rtol=1e-6)


def test_target_uses_min_over_the_randomly_chosen_subset():
    cfg = dataclasses.replace(TINY, num_qs=10, num_min_qs=2)
    agent = RLPDLearner.create(3, OBS_DIM, ACTION_DIM, cfg)
    b = make_batch(64, seed=3)
    obs, act = jnp.asarray(b[bk.NEXT_OBSERVATIONS]), jnp.asarray(b[bk.ACTIONS])
    all_qs = np.asarray(critic_values(agent.replace(critic_params=agent.target_critic_params),
                                      obs, act))
    seen_subsets = set()
    for seed in range(6):
        key = jax.random.PRNGKey(seed)
        idx = np.asarray(sample_subset(key, 10, 2))
        assert len(set(idx.tolist())) == 2
        seen_subsets.add(tuple(sorted(idx.tolist())))
        got = np.asarray(subset_target_qs(agent, key, obs, act))
        np.testing.assert_allclose(got, all_qs[idx], rtol=1e-5, atol=1e-6)
        # The minimum over the subset is not the minimum over all ten critics.
        assert not np.allclose(got.min(0), all_qs.min(0))
    assert len(seen_subsets) > 1


def test_critic_fits_a_known_target_with_zero_discount():
    cfg = dataclasses.replace(TINY, discount=0.0, critic_lr=3e-3, utd_ratio=10, batch_size=64)
    agent = RLPDLearner.create(1, OBS_DIM, ACTION_DIM, cfg)
    b = make_batch(64, seed=1)
    b[bk.REWARDS] = (0.5 * b[bk.OBSERVATIONS][:, 0] - 0.3).astype(np.float32)
    repeated = {k: np.concatenate([v] * 10) for k, v in b.items()}
    before = np.asarray(critic_values(agent, b[bk.OBSERVATIONS], b[bk.ACTIONS]))
    for _ in range(40):
        agent, info = agent.update(repeated, 10)
    qs = np.asarray(critic_values(agent, b[bk.OBSERVATIONS], b[bk.ACTIONS]))
    assert np.abs(before - b[bk.REWARDS]).mean() > 0.2
    assert np.abs(qs - b[bk.REWARDS]).mean() < 0.05
    assert float(info["critic_loss"]) < 0.01


def test_target_update_is_a_convex_combination_with_tau(agent):
    b = make_batch(TINY.batch_size)
    new, _ = agent.update_critic_step(b)
    tau = TINY.tau
    for online, old, target in zip(leaves(new.critic_params), leaves(agent.target_critic_params),
                                   leaves(new.target_critic_params)):
        np.testing.assert_allclose(target, tau * online + (1 - tau) * old, rtol=1e-6, atol=1e-7)
    # The online critics moved, so the check is not trivially old == new.
    assert not all(np.array_equal(a, b) for a, b in
                   zip(leaves(new.critic_params), leaves(agent.critic_params)))


# -- temperature -------------------------------------------------------------------


@pytest.mark.parametrize("entropy,direction", [(5.0, -1), (-5.0, +1)])
def test_temperature_moves_towards_the_target_entropy(agent, entropy, direction):
    target = agent.target_entropy  # -1 for 2-dim actions
    new, info = update_temperature(agent, jnp.float32(entropy))
    change = float(new.temperature() - agent.temperature())
    assert np.sign(change) == direction
    np.testing.assert_allclose(info["temperature_loss"],
                               float(agent.temperature()) * (entropy - target), rtol=1e-6)


def test_alpha_decreases_while_policy_entropy_exceeds_target():
    cfg = dataclasses.replace(TINY, target_entropy=-20.0, temp_lr=1e-2)
    agent = RLPDLearner.create(2, OBS_DIM, ACTION_DIM, cfg)
    b = make_batch(cfg.utd_ratio * cfg.batch_size)
    alphas = []
    for _ in range(5):
        agent, info = agent.update(b)
        assert float(info["entropy"]) > cfg.target_entropy
        alphas.append(float(info["temperature"]))
    assert all(a2 < a1 for a1, a2 in zip([1.0] + alphas, alphas))


# -- the scan ---------------------------------------------------------------------


def test_scan_update_equals_a_python_loop_of_single_steps(agent):
    u, bsz = TINY.utd_ratio, TINY.batch_size
    b = make_batch(u * bsz, seed=4)
    scanned, info = agent.update(b, u)
    looped = agent
    for i in range(u):
        looped, critic_info = looped.update_critic_step(
            {k: v[i * bsz:(i + 1) * bsz] for k, v in b.items()})
    looped, actor_info = looped.update_actor_and_temperature(
        {k: v[(u - 1) * bsz:] for k, v in b.items()})
    np.testing.assert_array_equal(scanned.rng, looped.rng)
    assert int(scanned.step) == int(looped.step) == 1
    for x, y in zip(leaves(scanned), leaves(looped)):
        np.testing.assert_allclose(x, y, rtol=2e-5, atol=1e-6)
    for k, v in {**critic_info, **actor_info}.items():
        np.testing.assert_allclose(info[k], v, rtol=2e-5, atol=1e-6)
    # U steps really happened: the critics moved more than one step would.
    one, _ = agent.update_critic_step({k: v[:bsz] for k, v in b.items()})
    assert not np.allclose(leaves(one.critic_params)[0], leaves(scanned.critic_params)[0])


def test_compiled_program_size_does_not_grow_with_utd(agent):
    def hlo_size(u):
        b = make_batch(u * TINY.batch_size)
        return len(RLPDLearner.update.lower(agent, b, utd_ratio=u).as_text())

    small, large = hlo_size(2), hlo_size(20)
    assert abs(large - small) / small < 0.05, (small, large)


def test_utd_ratio_defaults_to_the_config(agent):
    b = make_batch(TINY.utd_ratio * TINY.batch_size)
    by_default, _ = agent.update(b)
    explicit, _ = agent.update(b, TINY.utd_ratio)
    for x, y in zip(leaves(by_default), leaves(explicit)):
        np.testing.assert_array_equal(x, y)


def test_updates_stay_finite(agent):
    b = make_batch(TINY.utd_ratio * TINY.batch_size, seed=5)
    b[bk.REWARDS] = b[bk.REWARDS] * 100.0
    a = agent
    for _ in range(10):
        a, info = a.update(b)
    assert all(np.isfinite(float(v)) for v in info.values())
    assert all(np.isfinite(x).all() for x in leaves(a))


# -- bad input -----------------------------------------------------------------------


def test_bad_batches_give_one_clear_error(agent):
    b = make_batch(TINY.utd_ratio * TINY.batch_size)
    with pytest.raises(ValueError, match="lacks \\['next_observations'\\]"):
        agent.update({k: v for k, v in b.items() if k != bk.NEXT_OBSERVATIONS})
    with pytest.raises(ValueError, match="cannot be split into 3"):
        agent.update({k: v[:-1] for k, v in b.items()})
    with pytest.raises(ValueError, match="observations.*expected \\(N, 5\\)"):
        agent.update({**b, bk.OBSERVATIONS: b[bk.OBSERVATIONS][:, :4]})
    with pytest.raises(ValueError, match="positive int"):
        RLPDLearner.create(0, 0, 2, TINY)
    with pytest.raises(ValueError, match="expects observations"):
        agent.eval_actions(np.zeros(4))


# -- acting and export ---------------------------------------------------------------


def test_sample_and_eval_actions(agent):
    obs = make_batch(8)[bk.OBSERVATIONS]
    a1, agent2 = agent.sample_actions(obs)
    a2, _ = agent2.sample_actions(obs)
    assert a1.shape == (8, ACTION_DIM) and np.all(np.abs(a1) < 1)
    assert not np.allclose(a1, a2)  # the RNG advanced
    mean, _ = agent.actor_def().apply({"params": agent.actor_params}, obs)
    np.testing.assert_allclose(agent.eval_actions(obs), np.tanh(mean), rtol=1e-6)
    assert agent.eval_actions(obs[0]).shape == (ACTION_DIM,)


def test_exported_actor_is_the_projects_mlp_policy(agent, tmp_path):
    from rlif_data.policies import load_mlp_policy, make_mlp_module, save_mlp_policy

    b = make_batch(32, seed=6)
    trained, _ = agent.update(make_batch(48, seed=6))
    obs = b[bk.OBSERVATIONS]
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 3.0])
    config, variables = export_policy(trained, low, high)
    assert set(variables["params"]) == {"Dense_0", "Dense_1", "Dense_2"}
    expected = low + (trained.eval_actions(obs) + 1) / 2 * (high - low)
    got = np.asarray(make_mlp_module(config).apply(variables, obs))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(make_mlp_module(export_policy(trained)[0]).apply(
            export_actor_params(trained), obs)), trained.eval_actions(obs), rtol=1e-5, atol=1e-6)
    save_mlp_policy(tmp_path / "policy", config, variables)
    policy = load_mlp_policy(tmp_path / "policy")
    np.testing.assert_allclose(policy(obs), expected, rtol=1e-5, atol=1e-6)


# -- checkpoints -------------------------------------------------------------------


def test_orbax_checkpoint_resumes_bit_for_bit(agent, tmp_path):
    b1, b2 = make_batch(48, seed=7), make_batch(48, seed=8)
    trained, _ = agent.update(b1)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", trained)
    abstract = jax.eval_shape(lambda: RLPDLearner.create(0, OBS_DIM, ACTION_DIM, TINY))
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt", abstract)
    assert isinstance(restored, RLPDLearner) and restored.config == TINY
    assert int(restored.step) == 1
    expected, info_a = trained.update(b2)
    got, info_b = restored.update(b2)
    for x, y in zip(leaves(expected), leaves(got)):
        np.testing.assert_array_equal(x, y)
    assert {k: float(v) for k, v in info_a.items()} == {k: float(v) for k, v in info_b.items()}


def test_critic_saved_alone_loads_without_the_learner(agent, tmp_path):
    b = make_batch(16, seed=9)
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 4.0])
    env_actions = low + (b[bk.ACTIONS] + 1) / 2 * (high - low)
    save_critic(tmp_path / "critic", agent, low, high)
    critic = load_critic(tmp_path / "critic")
    want = np.asarray(critic_values(agent, b[bk.OBSERVATIONS], b[bk.ACTIONS]))
    np.testing.assert_allclose(critic(b[bk.OBSERVATIONS], env_actions), want,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(critic.mean_q(b[bk.OBSERVATIONS], env_actions), want.mean(0),
                               rtol=1e-5, atol=1e-6)
    assert critic(b[bk.OBSERVATIONS][0], env_actions[0]).shape == (TINY.num_qs,)
    with pytest.raises(FileExistsError, match="already holds a critic"):
        save_critic(tmp_path / "critic", agent)
    with pytest.raises(FileNotFoundError, match="critic_config.json"):
        load_critic(tmp_path / "nothing")
    with pytest.raises(ValueError, match="action bounds"):
        save_critic(tmp_path / "bad", agent, [1.0, 1.0], [0.0, 2.0])
    assert not (tmp_path / "bad").exists()


def test_critic_from_another_architecture_is_refused(agent, tmp_path):
    save_critic(tmp_path / "critic", agent)
    path = tmp_path / "critic" / "critic_config.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "hidden_dims": [16, 16]}))
    with pytest.raises(ValueError, match="do not match"):
        load_critic(tmp_path / "critic")
    path.write_text(json.dumps({**data, "num_qs": "ten"}))
    with pytest.raises(ValueError, match="critic config .* is invalid"):
        load_critic(tmp_path / "critic")
