"""Tests of rlif_data.intervention: random, value-based, human and no-op models."""

import json

import numpy as np
import pytest

from rlif_data import intervention as iv
from rlif_data.intervention import (
    DecisionContext,
    ExternalTakeover,
    IIDRandom,
    NoIntervention,
    RandomTakeover,
    ValueBased,
    check_rate,
    make_random_model,
    policy_is_worse,
    start_probability,
    takeover_starts,
    value_based_official,
    value_based_paper,
)

LONG = 200_000  # decisions in one long stream for the rate tests
CTX = DecisionContext(step=0, observation=None, policy_action=np.zeros(2))


def stream(model, n):
    """`n` decisions of `model` on a constant context, as a bool array."""
    return np.fromiter((model.decide(CTX) for _ in range(n)), dtype=bool, count=n)


def runs(x, value):
    """Lengths of the maximal runs of `value` in the bool array `x`."""
    x = np.asarray(x, dtype=bool)
    padded = np.concatenate([[not value], x, [not value]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    assert np.all(padded[starts + 1] == value)
    return lengths


# --------------------------------------------------------------------------
# start_probability / check_rate
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 0.5, 0.85, 0.99])
def test_start_probability_k1_is_rate(rate):
    assert start_probability(rate, 1) == pytest.approx(rate, abs=1e-15)


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.7, 0.85])
@pytest.mark.parametrize("k", [1, 2, 4, 10])
def test_start_probability_solves_back_to_rate(rate, k):
    p = start_probability(rate, k)
    assert 0.0 < p <= rate  # longer takeovers need fewer starts
    mean_free = (1.0 - p) / p  # geometric number of free steps before a start
    assert k / (k + mean_free) == pytest.approx(rate, rel=1e-12)


def test_start_probability_known_value():
    # rate 0.5, k 4: p = 0.5 / (4 * 0.5 + 0.5) = 0.2
    assert start_probability(0.5, 4) == pytest.approx(0.2)
    assert start_probability(0.85, 4) == pytest.approx(0.85 / 1.45)


@pytest.mark.parametrize("k", [1, 4, 7])
def test_start_probability_rate_zero_is_zero(k):
    assert start_probability(0.0, k) == 0.0


@pytest.mark.parametrize("k", [1, 4])
def test_start_probability_increases_with_rate(k):
    ps = [start_probability(r, k) for r in (0.1, 0.3, 0.5, 0.85, 0.99)]
    assert all(a < b for a, b in zip(ps, ps[1:]))


BAD_RATES = [-0.1, 1.0, 1.5, float("nan"), float("inf"), float("-inf"), "0.5", None]


@pytest.mark.parametrize("rate", BAD_RATES, ids=repr)
@pytest.mark.parametrize(
    "build",
    [
        check_rate,
        lambda r: start_probability(r, 4),
        lambda r: RandomTakeover(r),
        lambda r: IIDRandom(r),
        lambda r: make_random_model(r, variant="paper"),
        lambda r: make_random_model(r, variant="official"),
    ],
    ids=["check_rate", "start_probability", "RandomTakeover", "IIDRandom",
         "make_paper", "make_official"],
)
def test_bad_rate_raises_with_value_in_message(build, rate):
    with pytest.raises(ValueError) as info:
        build(rate)
    assert repr(rate) in str(info.value)
    assert "rate" in str(info.value)


@pytest.mark.parametrize("rate", [0, 0.0, 0.3, 0.999, np.float64(0.5)])
def test_check_rate_accepts_and_returns_float(rate):
    out = check_rate(rate)
    assert type(out) is float
    assert out == float(rate)


BAD_K = [0, -1, 2.5, float("nan"), float("inf"), "4", None]


@pytest.mark.parametrize("k", BAD_K, ids=repr)
@pytest.mark.parametrize(
    "build",
    [
        lambda k: start_probability(0.5, k),
        lambda k: RandomTakeover(0.5, takeover_steps=k),
        lambda k: ValueBased(lambda o, a: 0.0, delta=0.1, takeover_steps=k),
        lambda k: make_random_model(0.5, takeover_steps=k),
    ],
    ids=["start_probability", "RandomTakeover", "ValueBased", "make_paper"],
)
def test_bad_takeover_steps_raise(build, k):
    with pytest.raises(ValueError, match="takeover length"):
        build(k)


def test_integral_float_takeover_steps_is_accepted_as_int():
    m = RandomTakeover(0.5, takeover_steps=4.0)
    assert m.takeover_steps == 4 and type(m.takeover_steps) is int
    assert type(m.params()["takeover_steps"]) is int


# --------------------------------------------------------------------------
# RandomTakeover (paper §3.2)
# --------------------------------------------------------------------------

# Tolerance for the realised rate over one stream of LONG = 200k decisions.
# The stream is a renewal process: cycles C = G + k with G ~ Geometric(p)
# failures (mean (1-p)/p, variance (1-p)/p^2). The realised rate R = k / mean(C)
# over N ~ n / E[C] cycles has, by the delta method,
#   sd(R) ~= k * sd(C) / (E[C]^1.5 * sqrt(n)).
# Worst case here (rate 0.3, k = 4: p ~ 0.097, E[C] ~ 13.3, sd(C) ~ 9.8):
#   sd(R) ~= 4 * 9.8 / (48.7 * 447) ~= 0.0018;  k = 1 is Bernoulli: sd <= 0.0011.
# 0.01 is > 5 standard errors, so the test is not flaky (and is seeded anyway),
# while a wrong p (e.g. p = rate, which gives 0.63 instead of 0.3 for k = 4)
# misses by far more than 0.01.
RATE_TOL = 0.01


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("rate", [0.3, 0.5, 0.85])
def test_random_takeover_long_run_rate(rate, k):
    m = RandomTakeover(rate, takeover_steps=k, seed=123)
    x = stream(m, LONG)
    assert abs(x.mean() - rate) < RATE_TOL


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.85])
def test_random_takeover_runs_and_gaps(rate):
    k = 4
    m = RandomTakeover(rate, takeover_steps=k, seed=7)
    p = m.p_start
    x = stream(m, LONG)
    # Drop a possibly cut takeover at the end of the stream.
    last_false = np.flatnonzero(~x)[-1]
    x = x[: last_false + 1]

    on = runs(x, True)
    # Back-to-back takeovers merge, so each maximal run is a sum of k's.
    assert len(on) > 1000
    assert np.all(on % k == 0), np.unique(on % k)
    assert on.min() == k

    # Takeovers in the stream and free steps before each one.
    n_takeovers = on.sum() // k
    n_zero_gap = (on // k - 1).sum()  # takeovers started right after another
    # The chance a takeover starts right after one ends is p.
    assert abs(n_zero_gap / n_takeovers - p) < 0.02
    # A maximal free run (gap >= 1) is geometric on {1, 2, ...}: mean 1 / p.
    # (The trailing free run is cut by the end of the stream: dropped.)
    off = runs(x, False)[:-1]
    assert abs(off.mean() - 1.0 / p) / (1.0 / p) < 0.03
    # Mean free steps per takeover (zero gaps included) is (1 - p) / p.
    mean_free = (~x).sum() / n_takeovers
    assert abs(mean_free - (1.0 - p) / p) / ((1.0 - p) / p) < 0.03


def test_random_takeover_is_sticky_but_iid_is_not():
    # P(intervene at t | intervene at t-1): 1 - (1-p)/k... far above rate for
    # k = 4 takeovers, equal to rate for the i.i.d. model.
    rate = 0.3
    x = stream(RandomTakeover(rate, takeover_steps=4, seed=3), 50_000)
    cond = x[1:][x[:-1]].mean()
    assert cond > 0.7  # exact: 3/4 + p/4 ~ 0.77
    assert cond == pytest.approx(0.75 + start_probability(rate, 4) / 4, abs=0.02)


def test_random_takeover_rate_zero_never_intervenes():
    m = RandomTakeover(0.0, takeover_steps=4, seed=0)
    assert not stream(m, 5000).any()
    assert m.p_start == 0.0


def test_random_takeover_single_takeover_lasts_k_steps():
    # Start a takeover, then make starting impossible: exactly k True follow.
    for k in (1, 3, 4):
        m = RandomTakeover(0.99, takeover_steps=k, seed=0)
        while not m.decide(CTX):
            pass
        m.p_start = 0.0
        rest = stream(m, 10)
        assert list(rest) == [True] * (k - 1) + [False] * (11 - k)


def test_random_takeover_ignores_context():
    a = RandomTakeover(0.5, seed=9)
    b = RandomTakeover(0.5, seed=9)
    xs = [a.decide(CTX) for _ in range(500)]
    ys = [
        b.decide(DecisionContext(step=t, observation=np.full(3, t), policy_action=np.ones(2) * t))
        for t in range(500)
    ]
    assert xs == ys


def test_random_takeover_params():
    m = RandomTakeover(0.5, takeover_steps=4, seed=11)
    params = json.loads(json.dumps(m.params()))
    assert params == {"rate": 0.5, "takeover_steps": 4, "p_start": pytest.approx(0.2), "seed": 11}
    assert m.needs_expert_action is False
    assert m.name == "random"


# --------------------------------------------------------------------------
# IIDRandom (official random script)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.7, 0.85])
def test_iid_rate_and_independence(rate):
    # Bernoulli stream: sd of the mean is sqrt(r(1-r)/n) <= 0.0011 for n = 200k;
    # the conditional frequency uses ~rate * n pairs: sd <= 0.002. 0.01 is > 5 sd.
    x = stream(IIDRandom(rate, seed=5), LONG)
    assert abs(x.mean() - rate) < RATE_TOL
    after_on = x[1:][x[:-1]].mean()
    after_off = x[1:][~x[:-1]].mean()
    assert abs(after_on - rate) < RATE_TOL
    assert abs(after_off - rate) < RATE_TOL


def test_iid_zero_rate_never_intervenes():
    assert not stream(IIDRandom(0.0, seed=1), 5000).any()


def test_iid_params():
    m = IIDRandom(0.7, seed=3)
    assert json.loads(json.dumps(m.params())) == {"rate": 0.7, "seed": 3}
    assert m.name == "random-official"
    assert m.needs_expert_action is False


def test_make_random_model_variants():
    paper = make_random_model(0.5, variant="paper", takeover_steps=3, seed=2)
    assert type(paper) is RandomTakeover
    assert paper.takeover_steps == 3 and paper.rate == 0.5 and paper.params()["seed"] == 2
    default = make_random_model(0.5)
    assert type(default) is RandomTakeover and default.takeover_steps == 4
    official = make_random_model(0.3, variant="official", seed=4)
    assert type(official) is IIDRandom
    assert official.params() == {"rate": 0.3, "seed": 4}
    # Same seed, same stream as building the class directly.
    assert np.array_equal(stream(paper, 300), stream(RandomTakeover(0.5, 3, seed=2), 300))


@pytest.mark.parametrize("variant", ["Paper", "iid", "", "value"])
def test_make_random_model_unknown_variant(variant):
    with pytest.raises(ValueError) as info:
        make_random_model(0.5, variant=variant)
    assert repr(variant) in str(info.value)


# --------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------


def _random_models(seed):
    return {
        "takeover": RandomTakeover(0.5, takeover_steps=4, seed=seed),
        "iid": IIDRandom(0.5, seed=seed),
        "value": ValueBased(lambda o, a: float(a[0]), beta=0.7, delta=0.0, seed=seed),
    }


def _ctx_for(name):
    if name == "value":
        return DecisionContext(0, None, np.array([0.0]), np.array([1.0]))
    return CTX


@pytest.mark.parametrize("name", ["takeover", "iid", "value"])
def test_same_seed_same_sequence_different_seed_differs(name):
    ctx = _ctx_for(name)
    a = [_random_models(42)[name] for _ in range(2)]
    b = _random_models(43)[name]
    xa = [[m.decide(ctx) for _ in range(1000)] for m in a]
    xb = [b.decide(ctx) for _ in range(1000)]
    assert xa[0] == xa[1]
    assert xa[0] != xb


@pytest.mark.parametrize("name", ["takeover", "iid", "value"])
def test_reset_with_seed_restarts_sequence(name):
    ctx = _ctx_for(name)
    m = _random_models(0)[name]
    first = [m.decide(ctx) for _ in range(500)]
    m.reset(seed=0)
    again = [m.decide(ctx) for _ in range(500)]
    assert first == again
    m.reset(seed=1)
    other = [m.decide(ctx) for _ in range(500)]
    fresh = _random_models(1)[name]
    assert other == [fresh.decide(ctx) for _ in range(500)]
    assert other != first


@pytest.mark.parametrize("name", ["takeover", "iid", "value"])
def test_reset_without_seed_continues_rng(name):
    ctx = _ctx_for(name)
    m = _random_models(0)[name]
    twin = _random_models(0)[name]
    first = [m.decide(ctx) for _ in range(500)]
    # Same seed, same first 500 decisions; then m resets without a seed.
    assert first == [twin.decide(ctx) for _ in range(500)]
    m.reset()
    after = [m.decide(ctx) for _ in range(500)]
    assert after != first  # the RNG is not re-seeded


def test_reset_without_seed_clears_ongoing_takeover_random():
    m = RandomTakeover(0.99, takeover_steps=4, seed=0)
    while not m.decide(CTX):
        pass  # a takeover has just started: 3 more steps are owed
    m.p_start = 0.0  # no new takeover can start
    m.reset()
    assert not stream(m, 5).any()


def test_reset_without_seed_clears_ongoing_takeover_value():
    worse = {"flag": True}

    def q(obs, action):
        return float(action[0]) if worse["flag"] else 0.0

    ctx = DecisionContext(0, None, np.array([0.0]), np.array([1.0]))
    m = ValueBased(q, beta=1.0, delta=0.0, takeover_steps=4, seed=0)
    assert m.decide(ctx) is True  # trigger fires, beta = 1: takeover of 4 starts
    worse["flag"] = False  # from now on never worse: probability 1 - beta = 0
    assert m.decide(ctx) is True  # still in the takeover without a reset
    m.reset()
    assert [m.decide(ctx) for _ in range(5)] == [False] * 5


# --------------------------------------------------------------------------
# policy_is_worse
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q_pi, q_ref, delta, alpha, expected",
    [
        # absolute: Q_pi < Q_ref - delta
        (0.0, 1.0, 0.5, None, True),
        (0.5, 1.0, 0.5, None, False),  # equality is not worse
        (0.75, 1.0, 0.5, None, False),
        (0.49, 1.0, 0.5, None, True),
        (1.0, 1.0, 0.0, None, False),  # delta 0, equal
        (0.999, 1.0, 0.0, None, True),
        (-3.0, -2.0, 0.5, None, True),
        (-2.5, -2.0, 0.5, None, False),
        (5.0, 1.0, 0.0, None, False),  # policy better
        # relative: Q_pi < alpha * Q_ref
        (2.0, 4.0, None, 0.5, False),  # equality is not worse
        (1.99, 4.0, None, 0.5, True),
        (3.0, 4.0, None, 0.5, False),
        (96.0, 100.0, None, 0.97, True),
        (97.5, 100.0, None, 0.97, False),
        (100.0, 100.0, None, 0.97, False),
        # negative Q: alpha < 1 raises the bar (alpha * Q_ref > Q_ref)
        (-10.0, -10.0, None, 0.97, True),  # equal actions count as worse
        (-9.8, -10.0, None, 0.97, True),
        (-9.7, -10.0, None, 0.97, False),  # 0.97 * -10 = -9.7, equality
        (-9.0, -10.0, None, 0.97, False),
        (-2.0, -4.0, None, 0.5, False),  # equality
        (-2.01, -4.0, None, 0.5, True),
        (0.0, 0.0, None, 0.97, False),
    ],
)
def test_policy_is_worse_table(q_pi, q_ref, delta, alpha, expected):
    assert policy_is_worse(q_pi, q_ref, delta=delta, alpha=alpha) is expected


@pytest.mark.parametrize("kw", [{}, {"delta": 0.1, "alpha": 0.9}, {"delta": None, "alpha": None}])
def test_policy_is_worse_needs_exactly_one_trigger(kw):
    with pytest.raises(ValueError, match="exactly one"):
        policy_is_worse(0.0, 1.0, **kw)


# --------------------------------------------------------------------------
# ValueBased
# --------------------------------------------------------------------------


def q_first(obs, action):
    """A reference critic: the value is the action's first component."""
    return float(np.asarray(action)[0])


def vctx(t, policy, expert, obs=None):
    return DecisionContext(t, obs, np.array([policy], dtype=float), np.array([expert], dtype=float))


@pytest.mark.parametrize(
    "kw",
    [
        {"beta": -0.01, "delta": 0.1},
        {"beta": 1.01, "delta": 0.1},
        {"beta": float("nan"), "delta": 0.1},
        {"delta": 0.1, "alpha": 0.9},
        {},
        {"delta": -0.1},
        {"delta": float("inf")},
        {"delta": float("nan")},
        {"alpha": 0.0},
        {"alpha": -0.5},
        {"alpha": float("nan")},
    ],
    ids=repr,
)
def test_value_based_bad_parameters(kw):
    with pytest.raises(ValueError):
        ValueBased(q_first, **kw)


@pytest.mark.parametrize("beta", [-0.01, 1.01, 2.0])
def test_value_based_bad_beta_message(beta):
    with pytest.raises(ValueError) as info:
        ValueBased(q_first, beta=beta, delta=0.1)
    assert repr(beta) in str(info.value)


@pytest.mark.parametrize("delta", [-0.1, -5.0])
def test_value_based_negative_delta_message(delta):
    with pytest.raises(ValueError) as info:
        ValueBased(q_first, delta=delta)
    assert repr(delta) in str(info.value)


@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_value_based_beta_bounds_accepted(beta):
    assert ValueBased(q_first, beta=beta, delta=0.0).beta == beta


N_VALUE = 20_000
# Bernoulli(0.95) over 20k decisions: sd of the frequency is
# sqrt(0.95 * 0.05 / 20000) ~= 0.0015; 0.01 is > 6 sd.
VALUE_TOL = 0.01


@pytest.mark.parametrize(
    "kw, worse_ctx, fine_ctx",
    [
        # absolute trigger delta 0.5: policy 0 vs expert 1 is worse; 0.6 vs 1 is not
        ({"delta": 0.5}, (0.0, 1.0), (0.6, 1.0)),
        # relative trigger alpha 0.97: 90 vs 100 is worse; 98 vs 100 is not
        ({"alpha": 0.97}, (90.0, 100.0), (98.0, 100.0)),
    ],
    ids=["absolute", "relative"],
)
def test_value_based_frequency_follows_beta(kw, worse_ctx, fine_ctx):
    m = ValueBased(q_first, beta=0.95, seed=0, **kw)
    worse = np.array([m.decide(vctx(t, *worse_ctx)) for t in range(N_VALUE)])
    fine = np.array([m.decide(vctx(t, *fine_ctx)) for t in range(N_VALUE)])
    assert abs(worse.mean() - 0.95) < VALUE_TOL
    assert abs(fine.mean() - 0.05) < VALUE_TOL


def test_value_based_beta_extremes_are_deterministic():
    on = ValueBased(q_first, beta=1.0, delta=0.0, seed=0)
    assert all(on.decide(vctx(t, 0.0, 1.0)) for t in range(200))
    assert not any(on.decide(vctx(t, 1.0, 1.0)) for t in range(200))
    off = ValueBased(q_first, beta=0.0, delta=0.0, seed=0)
    assert not any(off.decide(vctx(t, 0.0, 1.0)) for t in range(200))
    assert all(off.decide(vctx(t, 1.0, 1.0)) for t in range(200))


def test_value_based_absolute_vs_relative_disagree_where_expected():
    # Q_pi = 90, Q_ref = 100: absolute with delta 20 says fine (90 >= 80),
    # relative with alpha 0.97 says worse (90 < 97).
    ctx = vctx(0, 90.0, 100.0)
    absolute = ValueBased(q_first, beta=1.0, delta=20.0)
    relative = ValueBased(q_first, beta=1.0, alpha=0.97)
    assert [absolute.decide(ctx) for _ in range(20)] == [False] * 20
    assert [relative.decide(ctx) for _ in range(20)] == [True] * 20


def test_value_based_calls_q_with_observation_and_both_actions():
    calls = []

    def q(obs, action):
        calls.append((obs, np.asarray(action).copy()))
        return float(action[0])

    m = ValueBased(q, beta=1.0, delta=0.0)
    assert m.decide(vctx(0, 0.25, 0.75, obs="s0")) is True
    assert len(calls) == 2
    assert {c[0] for c in calls} == {"s0"}
    assert sorted(float(c[1][0]) for c in calls) == [0.25, 0.75]


def test_value_based_missing_expert_action_raises():
    m = ValueBased(q_first, delta=0.1)
    assert m.needs_expert_action is True
    with pytest.raises(ValueError, match="step 7.*expert"):
        m.decide(DecisionContext(7, None, np.array([0.0])))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("which", ["policy", "expert"])
def test_value_based_non_finite_q_raises(bad, which):
    def q(obs, action):
        is_policy = float(action[0]) == 0.0
        return bad if (is_policy == (which == "policy")) else 1.0

    m = ValueBased(q, alpha=0.97)
    with pytest.raises(ValueError, match="non-finite"):
        m.decide(vctx(3, 0.0, 1.0))


def test_value_based_accepts_numpy_scalar_q():
    m = ValueBased(lambda o, a: np.float32(a[0]), beta=1.0, delta=0.0)
    assert m.decide(vctx(0, 0.0, 1.0)) is True


def test_value_based_paper_decides_every_step():
    calls = []

    def q(obs, action):
        calls.append(obs)
        return float(action[0])

    m = value_based_paper(q, seed=0)
    assert m.takeover_steps == 1 and m.beta == iv.PAPER_BETA == 0.95
    assert m.alpha == iv.PAPER_ALPHA == 0.97 and m.delta is None
    n = 4000
    x = np.array([m.decide(vctx(t, 90.0, 100.0, obs=t)) for t in range(n)])
    # Q^ref consulted at every step, twice (policy and expert action).
    assert calls == [t for t in range(n) for _ in range(2)]
    assert abs(x.mean() - 0.95) < 0.02
    # With the trigger off, the 1 - beta interventions are isolated steps,
    # not 4-step takeovers: P(on at t | on at t-1) ~ 0.05.
    y = np.array([m.decide(vctx(t, 99.0, 100.0)) for t in range(N_VALUE)])
    assert abs(y.mean() - 0.05) < VALUE_TOL
    assert y[1:][y[:-1]].mean() < 0.15


def test_value_based_official_keeps_control_for_four_steps():
    calls = []

    def q(obs, action):
        calls.append(obs)
        return float(action[0])

    m = value_based_official(q, threshold=0.9, seed=1)
    assert m.takeover_steps == iv.OFFICIAL_TAKEOVER_STEPS == 4
    assert m.alpha == 0.9 and m.beta == 0.95 and m.delta is None
    n = 8000
    # Alternate worse / fine stretches so both branches are exercised.
    policy = np.where((np.arange(n) // 100) % 2 == 0, 50.0, 95.0)  # 50 < 90 worse; 95 fine
    x = np.array([m.decide(vctx(t, policy[t], 100.0, obs=t)) for t in range(n)])

    # Walk the stream: decision points are steps outside a takeover.
    decision_points, starts = [], []
    t = 0
    while t < n:
        decision_points.append(t)
        if x[t]:
            starts.append(t)
            end = min(t + 4, n)
            assert x[t:end].all(), f"takeover started at {t} ended early"
            t = end
        else:
            t += 1
    # Q^ref was consulted only at decision points (twice each), never mid-takeover.
    assert calls == [t for t in decision_points for _ in range(2)]
    assert len(calls) < 2 * n
    in_takeover = set(range(n)) - set(decision_points)
    assert len(in_takeover) == 3 * len([s for s in starts if s + 4 <= n]) + sum(
        min(3, n - 1 - s) for s in starts if s + 4 > n
    )
    # Maximal runs are multiples of 4 (apart from a cut run at the end).
    on = runs(x[: np.flatnonzero(~x)[-1] + 1], True)
    assert np.all(on % 4 == 0)
    # Start frequency per decision point: 0.95 where worse, 0.05 where fine.
    dp = np.array(decision_points)
    started = x[dp]
    worse_dp = policy[dp] == 50.0
    assert abs(started[worse_dp].mean() - 0.95) < 0.03
    assert abs(started[~worse_dp].mean() - 0.05) < 0.03


def test_value_based_official_no_expert_action_needed_mid_takeover():
    m = ValueBased(q_first, beta=1.0, alpha=0.9, takeover_steps=4)
    assert m.decide(vctx(0, 0.0, 1.0)) is True
    no_expert = DecisionContext(1, None, np.array([0.0]))
    # Steps 1..3 continue the takeover without consulting Q^ref or the expert.
    assert [m.decide(no_expert) for _ in range(3)] == [True] * 3
    with pytest.raises(ValueError, match="expert"):
        m.decide(no_expert)


@pytest.mark.parametrize(
    "model, expected",
    [
        (lambda: ValueBased(q_first, beta=0.9, delta=0.25, takeover_steps=2, seed=5),
         {"beta": 0.9, "delta": 0.25, "alpha": None, "takeover_steps": 2, "seed": 5}),
        (lambda: value_based_paper(q_first, seed=3),
         {"beta": 0.95, "delta": None, "alpha": 0.97, "takeover_steps": 1, "seed": 3}),
        (lambda: value_based_official(q_first, threshold=0.8, seed=4),
         {"beta": 0.95, "delta": None, "alpha": 0.8, "takeover_steps": 4, "seed": 4}),
    ],
)
def test_value_based_params_json(model, expected):
    m = model()
    assert json.loads(json.dumps(m.params())) == expected
    assert m.name == "value"


# --------------------------------------------------------------------------
# ExternalTakeover / NoIntervention
# --------------------------------------------------------------------------


class FakeSignal:
    def __init__(self, values):
        self.values = list(values)
        self.calls = 0

    def engaged(self):
        value = self.values[self.calls]
        self.calls += 1
        return value


def test_external_takeover_follows_signal():
    seq = [False, True, True, False, 1, 0, True, False, False, True]
    sig = FakeSignal(seq)
    m = ExternalTakeover(sig, device="spacemouse")
    out = [m.decide(DecisionContext(t, None, np.zeros(2))) for t in range(len(seq))]
    assert out == [bool(v) for v in seq]
    assert all(type(v) is bool for v in out)
    assert sig.calls == len(seq)  # asked exactly once per step
    m.reset(seed=3)  # nothing to reset; must not touch the device
    assert sig.calls == len(seq)
    assert json.loads(json.dumps(m.params())) == {"device": "spacemouse"}
    assert m.name == "human" and m.needs_expert_action is False
    assert ExternalTakeover(FakeSignal([])).params() == {"device": "unknown"}


def test_no_intervention_never_intervenes():
    m = NoIntervention()
    m.reset(seed=1)
    out = [m.decide(DecisionContext(t, None, np.zeros(1), np.ones(1))) for t in range(1000)]
    assert out == [False] * 1000
    assert m.params() == {} and json.dumps(m.params()) == "{}"
    assert m.name == "none" and m.needs_expert_action is False


def test_abstract_model_cannot_be_instantiated():
    with pytest.raises(TypeError):
        iv.InterventionModel()


# --------------------------------------------------------------------------
# takeover_starts
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "intervention, expected",
    [
        ([], []),
        ([False], [False]),
        ([True], [True]),
        ([True, True, False, False], [True, False, False, False]),  # start at t = 0
        ([False, True, True, True, True, True, True, True, True, False],
         [False, True, False, False, False, False, False, False, False, False]),  # back-to-back = one
        ([False, False, False, True], [False, False, False, True]),  # last step
        ([True] * 6, [True] + [False] * 5),  # all True
        ([False] * 4, [False] * 4),
        ([True, False, True, False, True], [True, False, True, False, True]),
        ([False, True, False, False, True, True], [False, True, False, False, True, False]),
        ([0, 1, 1, 0, 1], [False, True, False, False, True]),  # ints accepted
    ],
)
def test_takeover_starts_table(intervention, expected):
    out = takeover_starts(np.asarray(intervention))
    assert out.dtype == bool
    assert out.shape == (len(expected),)
    assert out.tolist() == expected


def test_takeover_starts_counts_runs_and_does_not_mutate():
    x = stream(RandomTakeover(0.5, takeover_steps=4, seed=2), 5000)
    before = x.copy()
    starts = takeover_starts(x)
    assert np.array_equal(x, before)
    assert starts.sum() == len(runs(x, True))
    assert not np.any(starts & ~x)  # a start is always an intervened step
    assert takeover_starts(x.tolist()).tolist() == starts.tolist()  # lists accepted


def test_named_models_one_spelling_and_old_alias():
    assert type(iv.make_named_model("random", 0.3, takeover_steps=2)) is RandomTakeover
    for name in ("random-official", "random_official"):
        model = iv.make_named_model(name, 0.3, seed=1)
        assert type(model) is IIDRandom and model.name == name.replace("_", "-")
    assert type(iv.make_named_model("none", 0.0)) is iv.NoIntervention
    # Every named model stores the name it was built from.
    for name in iv.NAMED_MODELS:
        assert iv.make_named_model(name, 0.2).name == name
    assert iv.canonical_model_name("random_official") == "random-official"
    assert iv.canonical_model_name("value") == "value"
    with pytest.raises(ValueError, match="must be one of.*random-official.*got 'randm'"):
        iv.make_named_model("randm", 0.2)


def test_summary_counts_old_and_new_spellings_as_one_model():
    from rlif_data import schema as sc
    from rlif_data.inspection import summarize

    def episode(model):
        steps = {sc.REWARD: np.zeros(3, np.float32), sc.INTERVENTION: np.zeros(3, bool),
                 sc.INTERVENTION_START: np.zeros(3, bool), sc.IS_TERMINAL: np.zeros(3, bool),
                 sc.IS_FIRST: np.array([1, 0, 0], bool), sc.IS_LAST: np.array([0, 0, 1], bool)}
        return {sc.STEPS: steps, sc.INTERVENTION_MODEL: model}

    summary = summarize([episode("random_official"), episode("random-official"),
                         episode("random")])
    assert summary.intervention_models == {"random-official": 2, "random": 1}
