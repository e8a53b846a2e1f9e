"""The per-episode checks' fast paths (issue 17: every job checks every episode it writes):
they decide "nothing to report" alone, and when something is wrong the exact checks give the
same findings, messages and order as with the fast paths switched off."""

import numpy as np
import pytest

from pipelines import job_checks
from rlif_data import checks
from rlif_data import episodes as ep
from rlif_data import relabel as rl
from rlif_data import schema as sc

LOW, HIGH = -np.ones(2), np.ones(2)
# Every test that decides "nothing to report" without the exact per-step pass.
FAST_PATHS = ("_nothing_to_report", "_lengths_agree", "_flags_placed", "_no_non_finite", "_discounts_fine",
              "_starts_follow", "_same", "_inside_bounds", "_masked_rows_equal", "_gaps_fine")


def episode(length=60, terminated=False, seed=0):
    """A well-formed episode, three takeovers (one at step 0), learner actions its proposals."""
    rng = np.random.default_rng(seed)
    flags = np.zeros(length, bool)
    flags[0:2] = flags[10:14] = flags[30:41] = True
    policy = rng.uniform(-0.9, 0.9, (length, 2)).astype(np.float32)
    expert = rng.uniform(-0.9, 0.9, (length, 2)).astype(np.float32)
    discounts = np.ones(length)
    if terminated:
        discounts[-1] = 0.0
    steps = ep.build_steps(
        rng.normal(size=(length + 1, 3)).astype(np.float32),
        np.where(flags[:, None], expert, policy), rng.normal(size=length), discounts,
        terminated=terminated, intervention=flags, policy_actions=policy, expert_actions=expert,
        has_expert_action=np.ones(length, bool),
        source=np.where(flags, int(sc.Source.EXPERT), int(sc.Source.POLICY)),
        timestamps=np.arange(length) * 0.1)
    meta = ep.complete_metadata({sc.EPISODE_ID: f"f/{seed}", sc.ENV_ID: "Unit-v0"}, "test")
    return {**meta, sc.STEPS: steps}


def exact(e, index, context, monkeypatch):
    """`check_episode` with every fast path failing: the exact checks decide alone."""
    with monkeypatch.context() as m:
        for name in FAST_PATHS:
            m.setattr(checks, name, lambda *args, **kwargs: False)
        return checks.check_episode(e, index, context)


def _set(field, step, value):
    def change(steps):
        steps[field][step] = value
    return change


def _shift_actions(steps):
    steps[sc.ACTION][1:60] = steps[sc.POLICY_ACTION][0:59]  # stored one step late


def _camera_nan(steps):
    state = steps[sc.OBSERVATION]
    steps[sc.OBSERVATION] = {"state": state, "depth": np.zeros((len(state), 2, 2), np.float32)}
    steps[sc.OBSERVATION]["depth"][17, 1, 0] = np.nan


def _frozen(steps):
    steps[sc.OBSERVATION][:] = steps[sc.OBSERVATION][0]


def _short_reward(steps):
    steps[sc.REWARD] = steps[sc.REWARD][:-1]


def _float64(steps):
    for field in (sc.ACTION, sc.DISCOUNT, sc.REWARD, sc.POLICY_ACTION):
        steps[field] = steps[field].astype(np.float64)


def _int_discount(steps):
    steps[sc.DISCOUNT] = steps[sc.DISCOUNT].astype(np.int64)


def _flip_final_discount(steps):
    steps[sc.DISCOUNT][59] = 1.0 - steps[sc.DISCOUNT][59]


def _float16_observation(steps):
    steps[sc.OBSERVATION] = steps[sc.OBSERVATION].astype(np.float16)
    steps[sc.OBSERVATION][3, 0] = 300.0  # its square overflows float16: the exact test decides


def _huge_observation(steps):
    steps[sc.OBSERVATION][3, 0] = 3e38  # its square overflows: the exact test decides (finite)


# (change to a well-formed episode, the kinds it must be found as; () for none)
CASES = {
    "clean": (lambda steps: None, ()),
    "nan-in-one-observation": (_set(sc.OBSERVATION, (5, 1), np.nan), (checks.NON_FINITE,)),
    "inf-in-the-final-reward": (_set(sc.REWARD, 60, np.inf), (checks.NON_FINITE,)),
    "nan-in-a-camera": (_camera_nan, (checks.NON_FINITE,)),
    "huge-but-finite": (_huge_observation, ()),
    "float16-observation": (_float16_observation, ()),
    "one-action-out-of-bounds": (_set(sc.ACTION, 7, [1.5, 0.0]), (checks.ACTION_BOUNDS,)),
    "action-at-the-tolerance": (_set(sc.ACTION, 7, [1.0 + 0.5 * checks.BOUNDS_TOLERANCE, 0.0]),
                                ()),
    "discount-half": (_set(sc.DISCOUNT, 3, 0.5), ()),
    "discount-above-one": (_set(sc.DISCOUNT, 3, 1.5), (checks.DISCOUNT,)),
    "discount-zero-inside": (_set(sc.DISCOUNT, 20, 0.0), (checks.DISCOUNT,)),
    "final-discount-against-termination": (_flip_final_discount, (checks.DISCOUNT,)),
    "discount-nan": (_set(sc.DISCOUNT, 4, np.nan), (checks.NON_FINITE,)),
    "is-first-inside": (_set(sc.IS_FIRST, 4, True), (checks.STRUCTURE,)),
    "is-last-missing": (_set(sc.IS_LAST, 60, False), (checks.STRUCTURE,)),
    "is-terminal-inside": (_set(sc.IS_TERMINAL, 9, True), (checks.STRUCTURE,)),
    "field-one-short": (_short_reward, (checks.STRUCTURE,)),
    "takeover-start-missing": (_set(sc.INTERVENTION_START, 10, False), (checks.TAKEOVER_START,)),
    "takeover-start-at-step-0-missing": (_set(sc.INTERVENTION_START, 0, False),
                                         (checks.TAKEOVER_START,)),
    "takeover-start-extra": (_set(sc.INTERVENTION_START, 12, True), (checks.TAKEOVER_START,)),
    "reward-one-step-late": (_set(sc.REWARD, 9, 0.0), (checks.RLIF_REWARD,)),
    "include-flipped": (_set(sc.INCLUDE, 25, False), (checks.INCLUDE_MASK,)),
    "actions-one-step-late": (_shift_actions, (checks.ACTION_ALIGNMENT,)),
    "one-action-not-its-proposal": (_set(sc.ACTION, 22, [0.25, -0.25]), ()),
    "negative-zero-proposal": (_set(sc.POLICY_ACTION, 23, [-0.0, 0.0]), ()),
    "time-goes-back": (_set(sc.TIMESTAMP_US, 8, 0), (checks.TIMESTAMP_BACKWARDS,)),
    "frozen-sensor": (_frozen, (checks.CONSTANT_EPISODE,)),
    "float64-fields": (_float64, ()),
    "integer-discounts": (_int_discount, ()),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("terminated", [False, True])
def test_fast_paths_give_the_exact_findings(case, terminated, monkeypatch):
    change, kinds = CASES[case]
    e = rl.relabel_episode(episode(terminated=terminated), "paper")
    if case == "negative-zero-proposal":  # -0.0 == 0.0: the action still equals its proposal
        e[sc.STEPS][sc.ACTION][23] = [0.0, -0.0]
    change(e[sc.STEPS])
    context = checks.CheckContext("paper", LOW, HIGH)
    got = checks.check_episode(e, 3, context)
    assert got == exact(e, 3, context, monkeypatch)
    assert {f.kind for f in got} == set(kinds)
    assert all(f.episode == 3 and f.episode_id == "f/0" for f in got)


@pytest.mark.parametrize("view", [*rl.RULES, rl.HG_DAGGER, rl.DAGGER, None])
def test_each_view_clean_and_with_a_wrong_include_mask(view, monkeypatch):
    e = rl.relabel_episode(episode(), view) if view else episode()
    context = checks.CheckContext(view, LOW, HIGH)
    assert checks.check_episode(e, 0, context) == exact(e, 0, context, monkeypatch) == []
    if view is None:
        return
    e[sc.STEPS][sc.INCLUDE][31] = not e[sc.STEPS][sc.INCLUDE][31]
    got = checks.check_episode(e, 0, context)
    assert got == exact(e, 0, context, monkeypatch)
    assert [(f.kind, f.step) for f in got] == [(checks.INCLUDE_MASK, 31)]


def test_a_dagger_action_that_is_not_its_label(monkeypatch):
    e = rl.relabel_episode(episode(), rl.DAGGER)
    e[sc.STEPS][sc.ACTION][44, 1] += 0.125
    context = checks.CheckContext(rl.DAGGER, LOW, HIGH)
    got = checks.check_episode(e, 0, context)
    assert got == exact(e, 0, context, monkeypatch)
    assert [(f.kind, f.step) for f in got] == [(checks.INCLUDE_MASK, 44)]
    assert "is not the expert label" in got[0].message


@pytest.mark.parametrize("length", [0, 1, 2])
def test_episodes_too_short_for_the_fast_paths(length, monkeypatch):
    e = episode(length=max(length, 1))
    if length == 0:
        e[sc.STEPS] = {k: v[:0] for k, v in e[sc.STEPS].items()}
    elif length == 1:
        e[sc.STEPS] = {k: v[-1:] for k, v in e[sc.STEPS].items()}
        e[sc.STEPS][sc.IS_FIRST][0] = True
    else:
        e = episode(length=2)
    context = checks.CheckContext(None, LOW, HIGH, control_period_us=1e5)
    got = checks.check_episode(e, 0, context)
    assert got == exact(e, 0, context, monkeypatch)
    assert bool(got) == (length < 2)


def test_missed_deadlines_with_a_control_rate(monkeypatch):
    e = episode()
    e[sc.STEPS][sc.TIMESTAMP_US][40:] += 100_000  # a 0.2 s gap before step 40
    for period, found in ((1e5, [(checks.MISSED_DEADLINE, 40)]), (2e5, [])):
        context = checks.CheckContext(None, LOW, HIGH, control_period_us=period)
        got = checks.check_episode(e, 0, context)
        assert got == exact(e, 0, context, monkeypatch)
        assert [(f.kind, f.step) for f in got] == found


def test_the_fingerprint_is_a_content_hash_of_observations_and_actions():
    a, b = episode(seed=1), episode(seed=1)
    b[sc.EPISODE_ID] = "another id"
    b[sc.STEPS][sc.REWARD][:] = 7.0  # not part of it
    assert checks.episode_fingerprint(a) == checks.episode_fingerprint(b)
    assert len(checks.episode_fingerprint(a)) == 32  # 128 bits
    b[sc.STEPS][sc.OBSERVATION][59, 2] += 1e-6
    assert checks.episode_fingerprint(a) != checks.episode_fingerprint(b)
    c = episode(seed=1)
    c[sc.STEPS][sc.ACTION] = c[sc.STEPS][sc.ACTION].astype(np.float64)  # float32 values: same
    assert checks.episode_fingerprint(c) == checks.episode_fingerprint(a)
    c[sc.STEPS][sc.ACTION][3, 0] = 0.5
    assert checks.episode_fingerprint(c) != checks.episode_fingerprint(a)
    # Observation leaves by name: the same arrays under other names are other content.
    d, f = episode(seed=1), episode(seed=1)
    state = d[sc.STEPS][sc.OBSERVATION]
    d[sc.STEPS][sc.OBSERVATION] = {"state": state}
    f[sc.STEPS][sc.OBSERVATION] = {"joints": state.copy()}
    assert checks.episode_fingerprint(d) != checks.episode_fingerprint(f)
    # A non-contiguous leaf hashes as its C-ordered copy.
    g = episode(seed=1)
    g[sc.STEPS][sc.OBSERVATION] = np.asfortranarray(state)
    assert checks.episode_fingerprint(g) == checks.episode_fingerprint(a)


def test_the_job_checker_gives_what_check_dataset_records_and_looks_each_env_up_once(
        monkeypatch):
    calls = []
    env_info = checks.env_info

    def counted(env_id, cache, notes):
        calls.append(env_id)
        return env_info(env_id, cache, notes)

    monkeypatch.setattr(checks, "env_info", counted)
    check = job_checks.EpisodeChecker("paper")
    bad = rl.relabel_episode(episode(seed=2), "paper")
    bad[sc.STEPS][sc.REWARD][9] = 0.0
    for key, e in enumerate([rl.relabel_episode(episode(), "paper"), bad,
                             rl.relabel_episode(episode(terminated=True), "paper")]):
        got = check(key, e)
        want = checks.episode_record(e, key, checks.EpisodeTask("paper"), {})
        assert got[job_checks.FINDINGS] == [
            {**f.to_json(), "episode": 0} for f in want["findings"]]
        assert (got[job_checks.LENGTH], got[job_checks.TERMINAL], got[job_checks.EPISODE_ID],
                got[job_checks.FINGERPRINT]) == (want["length"], want["terminal"], want["id"],
                                                 want["fingerprint"])
        assert got[job_checks.ENV_NOTES] and "Unit-v0" in got[job_checks.ENV_NOTES][0]
        assert got[job_checks.TIME_LIMIT] is None and got[job_checks.KEY] == key
    assert calls == ["Unit-v0"]
    assert check(1, bad)[job_checks.FINDINGS][0]["kind"] == checks.RLIF_REWARD
