"""The pure parts of benchmarks/rlif_experiment.py: Q^ref policy evaluation, summaries, config."""

import importlib.util
import os
import sys

import numpy as np
import pytest

from rlif_data import intervention as iv

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "rlif_experiment.py")


@pytest.fixture(scope="module")
def rx():
    spec = importlib.util.spec_from_file_location("rlif_experiment", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def test_parse_mix_entry(rx):
    assert rx.parse_mix_entry("noise:0.5:4") == ("noise", 0.5, 4)
    assert rx.parse_mix_entry("takeover:0.5:40") == ("takeover", 0.5, 40)
    for bad in ("noise:0.5", "jitter:1:2", "noise:x:2", "takeover:1.0:3", "noise:0.1:0"):
        with pytest.raises(ValueError, match="ref_mix entry"):
            rx.parse_mix_entry(bad)


def test_config_validate_names_the_field(rx):
    with pytest.raises(ValueError, match="unknown methods"):
        rx.ExperimentConfig(methods=("sac",)).validate()
    with pytest.raises(ValueError, match="offline"):
        rx.ExperimentConfig(offline="all").validate()
    with pytest.raises(ValueError, match="rounds"):
        rx.ExperimentConfig(rounds=0).validate()
    with pytest.raises(ValueError, match="intervention must be one of"):
        rx.ExperimentConfig(intervention="random").validate()
    with pytest.raises(ValueError, match="warn_steps"):
        rx.ExperimentConfig(warn_steps=0).validate()
    rx.ExperimentConfig(intervention="value-official").validate()
    rx.QUICK.validate()


def test_linear_policy_actions_clip_to_bounds(rx):
    gain = np.array([[1.0, -2.0]])
    obs = np.array([[0.5, 0.0], [0.0, 5.0], [-3.0, 0.0]], np.float32)
    actions = rx.linear_policy_actions(gain, obs, np.array([-3.0]), np.array([3.0]))
    np.testing.assert_allclose(actions[:, 0], [-0.5, 3.0, 3.0])
    assert actions.dtype == np.float32


def test_expert_in_control_always_intervenes(rx):
    model = rx.ExpertInControl()
    model.reset(3)
    ctx = iv.DecisionContext(step=0, observation=np.zeros(4), policy_action=np.zeros(1))
    assert model.decide(ctx) and model.params() == {}


def _policy_evaluation(rx, data, steps=400):
    import functools

    import jax
    import jax.numpy as jnp

    from trainers.agents.rlpd import RLPDLearner, critic_values
    from trainers.configs import RLPDConfig

    config = RLPDConfig(hidden_dims=(32, 32), num_qs=2, num_min_qs=2, batch_size=16,
                        discount=0.5, tau=0.1, backup_entropy=False, critic_lr=3e-3)
    agent = RLPDLearner.create(0, 2, 1, config)
    run = jax.jit(functools.partial(rx.policy_evaluation_scan, batch_size=16),
                  static_argnames="steps")
    agent, losses = run(agent, {k: jnp.asarray(v, jnp.float32) for k, v in data.items()},
                        jax.random.PRNGKey(1), steps=steps)
    return agent, np.asarray(losses), critic_values


def test_policy_evaluation_bootstraps_with_the_policy_next_action(rx):
    # Two states. From s1 every transition ends (discount 0) with reward +1 for
    # a > 0, 0 otherwise. From s0 the reward is 0 and the episode goes on to s1,
    # where the evaluated policy plays +0.5: Q(s0, .) = gamma * Q(s1, +0.5) = 0.5.
    # With the policy playing -0.5 instead, Q(s0, .) would be 0.
    s0, s1 = [1.0, 0.0], [0.0, 1.0]
    obs = np.array([s1, s1, s0, s0], np.float32)
    data = {"observations": obs, "actions": np.array([[0.5], [-0.5], [0.5], [-0.5]]),
            "rewards": np.array([1.0, 0.0, 0.0, 0.0]), "discounts": np.array([0.0, 0.0, 1.0, 1.0]),
            "next_observations": np.array([s1, s1, s1, s1], np.float32),
            "next_policy_actions": np.array([[0.5]] * 4)}
    agent, losses, critic_values = _policy_evaluation(rx, data)
    q = np.asarray(critic_values(agent, obs, data["actions"])).mean(axis=0)
    np.testing.assert_allclose(q, [1.0, 0.0, 0.5, 0.5], atol=0.1)
    assert losses[-50:].mean() < losses[:50].mean()

    data["next_policy_actions"] = np.array([[-0.5]] * 4)
    agent, _, _ = _policy_evaluation(rx, data)
    q = np.asarray(critic_values(agent, obs, data["actions"])).mean(axis=0)
    np.testing.assert_allclose(q[2:], [0.0, 0.0], atol=0.1)


def _run(expert, method, seed, final_return, survival, rows=None):
    record = {"expert": expert, "method": method, "seed": seed,
              "final": {"mean_return": final_return, "survival": survival}}
    if rows is not None:
        record["rows"] = [{"eval_return": r, "intervention_rate": i} for r, i in rows]
    return record


def test_aggregate_means_and_stds_over_seeds(rx):
    runs = [_run("e", "expert", 0, 100.0, 0.2), _run("e", "expert", 1, 300.0, 0.4),
            _run("e", "rlif", 0, 400.0, 1.0, rows=[(10.0, 0.5), (400.0, 0.1)]),
            _run("e", "rlif", 1, 200.0, 0.0, rows=[(30.0, 0.3), (200.0, 0.3)])]
    for run, counts in zip(runs[2:], ([(4, 1), (2, 2)], [(3, 0), (1, 0)])):
        for row, (falls, warned) in zip(run["rows"], counts):
            row["learner_falls"], row["warned_falls"] = falls, warned
    summary = rx.aggregate(runs)
    assert summary["e"]["expert"]["return"] == pytest.approx((200.0, 100.0))
    assert summary["e"]["expert"]["survival"] == pytest.approx((0.3, 0.1))
    assert "round_return" not in summary["e"]["expert"]
    rlif = summary["e"]["rlif"]
    assert rlif["round_return"] == [pytest.approx((20.0, 10.0)), pytest.approx((300.0, 100.0))]
    assert rlif["round_interventions"][1] == pytest.approx((0.2, 0.1))
    table = rx.format_table(summary)
    assert rlif["falls_warned"] == (3, 10)
    assert "| e | rlif | 300 ± 100 | 50 ± 50 % | 40% → 20% | 3/10 (30%) |" in table
    assert "| e | expert | 200 ± 100 | 30 ± 10 % | – | – |" in table


def test_plots_are_written(rx, tmp_path):
    runs = [_run("e", "expert", 0, 100.0, 0.2),
            _run("e", "rlif", 0, 400.0, 1.0, rows=[(10.0, 0.5), (400.0, 0.1)])]
    summary = rx.aggregate(runs)
    for png in (rx.plot_returns(summary, str(tmp_path / "r.png"), 500),
                rx.plot_interventions(summary, str(tmp_path / "i.png"))):
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fall_warning_counts_only_learner_falls_and_the_window(rx):
    f, t = False, True
    # The learner acts last and the pole falls; the expert intervened 3 steps before.
    flags = np.array([f, f, t, f, f, f])
    assert rx.fall_warning(flags, True, k=3) == (True, True)
    assert rx.fall_warning(flags, True, k=2) == (True, False)  # outside the window
    # No fall (time limit) or a fall while the expert acts: not a learner fall.
    assert rx.fall_warning(flags, False, k=3) == (False, False)
    assert rx.fall_warning(np.array([f, f, t]), True, k=3) == (False, False)
    # The last step itself does not warn; an all-learner episode is unwarned.
    assert rx.fall_warning(np.array([f] * 5), True, k=10) == (True, False)
    assert rx.fall_warning(np.array([t, f]), True, k=10) == (True, True)
    assert rx.fall_warning(np.array([], bool), True, k=3) == (False, False)


def test_warned_fraction_sums_over_episodes(rx):
    f, t = False, True
    episodes = [(np.array([f, t, f]), True), (np.array([f, f, f]), True),
                (np.array([t, f, f]), False), (np.array([f, f, t]), True)]
    assert rx.warned_fraction(episodes, k=2) == (2, 1)
    assert rx.warned_fraction([], k=2) == (0, 0)


def test_parse_config_delta_none_selects_the_relative_trigger(rx):
    import argparse

    assert rx.ExperimentConfig().delta == 0.1
    cfg = rx._parse_config(argparse.Namespace(quick=False, delta="none", seeds="0,5"))
    assert cfg.delta is None and cfg.seeds == (0, 5)
    assert rx._parse_config(argparse.Namespace(quick=False, delta="0.2")).delta == 0.2
