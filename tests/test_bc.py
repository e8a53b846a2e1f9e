"""BC learner (also HG-DAgger / DAgger): fits a known expert, exports the project's policy."""

import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from trainers.agents import batch as bk
from trainers.agents.bc import BCLearner
from trainers.configs import BCConfig

OBS_DIM, ACTION_DIM = 4, 2
TINY = BCConfig(hidden_dims=(64, 64), lr=3e-3, batch_size=64)


def linear_expert_batch(rows, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(rows, OBS_DIM)).astype(np.float32)
    weights = np.array([[0.3, -0.2], [0.1, 0.25], [-0.15, 0.05], [0.2, 0.1]], np.float32)
    return {bk.OBSERVATIONS: obs, bk.ACTIONS: np.clip(obs @ weights, -0.9, 0.9)}


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_bc_config_json_round_trip_and_validation():
    config = BCConfig(hidden_dims=[32], lr=1e-3, batch_size=8)
    assert BCConfig.from_json_dict(json.loads(json.dumps(config.to_json_dict()))) == config
    with pytest.raises(ValueError, match="BCConfig.lr"):
        BCConfig(lr=-1.0)
    with pytest.raises(ValueError, match="kind"):
        BCConfig.from_json_dict({**config.to_json_dict(), "kind": "RLPDConfig"})


def test_bc_fits_a_linear_expert():
    learner = BCLearner.create(0, OBS_DIM, ACTION_DIM, TINY)
    train = linear_expert_batch(20 * TINY.batch_size, seed=0)
    held_out = linear_expert_batch(256, seed=1)

    def error(lrn):
        return np.mean((lrn.eval_actions(held_out[bk.OBSERVATIONS]) - held_out[bk.ACTIONS]) ** 2)

    before = error(learner)
    for _ in range(15):
        learner, info = learner.update(train, num_steps=20)
    assert int(learner.step) == 300
    assert before > 0.02
    assert error(learner) < 0.002
    assert np.isfinite(float(info["bc_loss"]))


def test_scanned_steps_equal_single_steps():
    learner = BCLearner.create(1, OBS_DIM, ACTION_DIM, TINY)
    b = linear_expert_batch(3 * TINY.batch_size)
    scanned, _ = learner.update(b, num_steps=3)
    looped = learner
    for i in range(3):
        looped, _ = looped.update({k: v[i * 64:(i + 1) * 64] for k, v in b.items()})
    for x, y in zip(leaves(scanned), leaves(looped)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


def test_params_are_already_a_deployable_policy(tmp_path):
    from rlif_data.policies import load_mlp_policy, save_mlp_policy

    learner, _ = BCLearner.create(2, OBS_DIM, ACTION_DIM, TINY).update(linear_expert_batch(64))
    low, high = np.array([-3.0, 0.0]), np.array([1.0, 2.0])
    config, variables = learner.export_policy(low, high)
    save_mlp_policy(tmp_path / "bc", config, variables)
    obs = linear_expert_batch(16, seed=3)[bk.OBSERVATIONS]
    expected = low + (learner.eval_actions(obs) + 1) / 2 * (high - low)
    np.testing.assert_allclose(load_mlp_policy(tmp_path / "bc")(obs), expected,
                               rtol=1e-5, atol=1e-6)


def test_orbax_checkpoint_resumes_bit_for_bit(tmp_path):
    learner, _ = BCLearner.create(3, OBS_DIM, ACTION_DIM, TINY).update(linear_expert_batch(64))
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", learner)
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
        jax.eval_shape(lambda: BCLearner.create(0, OBS_DIM, ACTION_DIM, TINY)))
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(tmp_path / "ckpt", abstract)
    b = linear_expert_batch(64, seed=4)
    for x, y in zip(leaves(learner.update(b)[0]), leaves(restored.update(b)[0])):
        np.testing.assert_array_equal(x, y)


def test_bad_input_is_one_clear_error():
    learner = BCLearner.create(0, OBS_DIM, ACTION_DIM, TINY)
    b = linear_expert_batch(64)
    with pytest.raises(ValueError, match="lacks \\['actions'\\]"):
        learner.update({bk.OBSERVATIONS: b[bk.OBSERVATIONS]})
    with pytest.raises(ValueError, match="actions.*expected \\(N, 2\\)"):
        learner.update({**b, bk.ACTIONS: b[bk.ACTIONS][:, :1]})
    with pytest.raises(ValueError, match="cannot be split into 3"):
        learner.update(b, num_steps=3)
    with pytest.raises(ValueError, match="obs_dim must be a positive int"):
        BCLearner.create(0, 0, ACTION_DIM, TINY)
