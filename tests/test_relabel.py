"""RLIF reward rules and baseline views: table-driven."""

import numpy as np
import pytest

from rlif_data import episodes as ep
from rlif_data import relabel as rl
from rlif_data import schema as sc

F, T = False, True

# (case, intervention flags of the T transitions, paper reward, official include)
CASES = [
    ("no takeover", [F, F, F, F], [0, 0, 0, 0], [T, T, T, F]),
    ("takeover at step 0 gives no -1", [T, T, F, F], [0, 0, 0, 0], [F, T, T, F]),
    ("one takeover", [F, F, T, T, F], [0, -1, 0, 0, 0], [T, T, F, T, F]),
    ("back-to-back takeovers merge", [F, T, T, T, T, F], [-1, 0, 0, 0, 0, 0], [T, F, F, F, T, F]),
    ("two takeovers", [F, T, F, T, F], [-1, 0, -1, 0, 0], [T, T, T, T, F]),
    ("takeover on the last step", [F, F, F, T], [0, 0, -1, 0], [T, T, T, F]),
    ("expert throughout", [T, T, T], [0, 0, 0], [F, F, F]),
    ("single step", [F], [0], [F]),
    ("empty", [], [], []),
]


@pytest.mark.parametrize("flags,reward,official_include", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_rules(flags, reward, official_include):
    flags = np.array(flags, bool)
    r, inc = rl.rlif_rewards(flags, rl.PAPER)
    np.testing.assert_array_equal(r, reward)
    assert inc.all()
    r, inc = rl.rlif_rewards(flags, rl.PAPER_POLICY_ONLY)
    np.testing.assert_array_equal(r, reward)
    np.testing.assert_array_equal(inc, ~flags)
    r, inc = rl.rlif_rewards(flags, rl.OFFICIAL)
    np.testing.assert_array_equal(r, reward)
    np.testing.assert_array_equal(inc, official_include)


def test_every_minus_one_transition_is_in_every_rlif_view():
    rng = np.random.default_rng(0)
    flags = rng.random(5000) < 0.4
    for rule in rl.RULES.values():
        r, inc = rl.rlif_rewards(flags, rule)
        assert inc[r < 0].all(), rule.name
        assert (r < 0).sum() == ((flags[1:] & ~flags[:-1]).sum())


def _episode(flags, terminated):
    n = len(flags)
    steps = ep.build_steps(
        np.arange(n + 1, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32),
        np.full((n, 1), 0.1), np.full(n, 5.0),
        np.array([0.0 if terminated and i == n - 1 else 1.0 for i in range(n)]),
        terminated=terminated, intervention=np.array(flags, bool),
        policy_actions=np.full((n, 1), 0.1), expert_actions=np.full((n, 1), 0.9),
        has_expert_action=np.ones(n, bool),
    )
    return {**ep.default_episode_metadata(), sc.STEPS: steps}


@pytest.mark.parametrize("terminated", [True, False], ids=["terminated", "truncated"])
def test_relabel_keeps_discounts_and_env_reward(terminated):
    out = rl.relabel_episode(_episode([F, F, T, F], terminated), "paper")
    steps = out[sc.STEPS]
    np.testing.assert_array_equal(steps[sc.REWARD], [0, -1, 0, 0, 0])
    np.testing.assert_array_equal(steps[sc.ENV_REWARD], [5, 5, 5, 5, 0])
    assert steps[sc.DISCOUNT][3] == (0.0 if terminated else 1.0)
    assert steps[sc.IS_TERMINAL][-1] == terminated
    tr = rl.episode_transitions(out)
    assert len(tr["rewards"]) == 4
    np.testing.assert_array_equal(tr["discounts"][-1], 0.0 if terminated else 1.0)
    np.testing.assert_array_equal(tr["next_observations"][:, 0], [1, 2, 3, 4])


def test_relabel_does_not_modify_its_input():
    episode = _episode([F, T], False)
    before = episode[sc.STEPS][sc.REWARD].copy()
    rl.relabel_episode(episode, "official")
    np.testing.assert_array_equal(episode[sc.STEPS][sc.REWARD], before)
    assert sc.INCLUDE not in episode[sc.STEPS]


def test_official_view_transitions():
    out = rl.relabel_episode(_episode([F, F, T, T, F, F], False), "official")
    tr = rl.episode_transitions(out)
    # t=2 dropped (takeover continues at 3), t=5 is the last transition: never inserted.
    np.testing.assert_array_equal(tr["observations"][:, 0], [0, 1, 3, 4])
    np.testing.assert_array_equal(tr["rewards"], [0, -1, 0, 0])


def test_hg_dagger_view_keeps_expert_steps():
    out = rl.relabel_episode(_episode([F, T, T, F], False), rl.HG_DAGGER)
    np.testing.assert_array_equal(out[sc.STEPS][sc.INCLUDE], [F, T, T, F, F])
    np.testing.assert_array_equal(out[sc.STEPS][sc.REWARD], [5, 5, 5, 5, 0])


def test_dagger_view_labels_every_state_with_the_expert():
    episode = _episode([F, T, F], False)
    episode[sc.STEPS][sc.HAS_EXPERT_ACTION][0] = False
    out = rl.relabel_episode(episode, rl.DAGGER)
    np.testing.assert_array_equal(out[sc.STEPS][sc.INCLUDE], [F, T, T, F])
    tr = rl.episode_transitions(out)
    np.testing.assert_allclose(tr["actions"][:, 0], [0.9, 0.9])


def test_dict_observations_transitions():
    n = 3
    obs = {"state": np.arange(n + 1, dtype=np.float32)[:, None],
           "cam": np.zeros((n + 1, 2, 2, 3), np.uint8)}
    steps = ep.build_steps(obs, np.zeros((n, 1)), np.zeros(n), np.ones(n), terminated=False,
                           intervention=np.array([F, T, F]))
    tr = rl.episode_transitions(rl.relabel_episode({sc.STEPS: steps}, "paper"))
    np.testing.assert_array_equal(tr["next_observations"]["state"][:, 0], [1, 2, 3])
    assert tr["observations"]["cam"].shape == (3, 2, 2, 3)


def test_unknown_view():
    with pytest.raises(ValueError, match="unknown relabel view 'papr'.*'paper'"):
        rl.relabel_episode(_episode([F], False), "papr")
