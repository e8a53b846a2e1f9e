"""Pure episode assembly and validation."""

import numpy as np
import pytest

from rlif_data import episodes as ep
from rlif_data import errors
from rlif_data import schema as sc

SCHEMA = sc.vector_schema(2, 1)


def _info(intervene, t):
    return ep.StepInfo(intervene, np.array([0.1], np.float32),
                       np.array([0.9], np.float32), sc.Source.EXPERT if intervene else sc.Source.POLICY,
                       float(t))


def _assemble(flags, terminated):
    n = len(flags)
    obs = [np.full(2, i, np.float32) for i in range(n + 1)]
    actions = [np.array([0.9 if f else 0.1], np.float32) for f in flags]
    return ep.assemble_steps(SCHEMA, obs, actions, [1.0] * n,
                             [0.0 if terminated and i == n - 1 else 1.0 for i in range(n)],
                             [_info(f, i) for i, f in enumerate(flags)], terminated)


def test_assemble_rlds_layout_terminated():
    steps = _assemble([False, True, True, False], terminated=True)
    assert steps[sc.OBSERVATION].shape == (5, 2)
    assert steps[sc.IS_FIRST].tolist() == [True, False, False, False, False]
    assert steps[sc.IS_LAST].tolist() == [False, False, False, False, True]
    assert steps[sc.IS_TERMINAL].tolist() == [False] * 4 + [True]
    assert steps[sc.DISCOUNT].tolist() == [1, 1, 1, 0, 0]
    assert steps[sc.REWARD].tolist() == [1, 1, 1, 1, 0]
    assert steps[sc.INTERVENTION].tolist() == [False, True, True, False, False]
    assert steps[sc.INTERVENTION_START].tolist() == [False, True, False, False, False]
    assert steps[sc.SOURCE].tolist() == [0, 1, 1, 0, 0]
    assert steps[sc.HAS_EXPERT_ACTION].tolist() == [True] * 4 + [False]
    np.testing.assert_array_equal(steps[sc.ACTION][:, 0], np.float32([0.1, 0.9, 0.9, 0.1, 0]))
    assert steps[sc.TIMESTAMP_US].tolist() == [0, 1_000_000, 2_000_000, 3_000_000, 3_000_000]


def test_assemble_truncated_is_not_terminal():
    steps = _assemble([False, False], terminated=False)
    assert not steps[sc.IS_TERMINAL].any()
    assert steps[sc.DISCOUNT][:2].tolist() == [1, 1]


def test_assemble_rejects_inconsistent_lengths():
    with pytest.raises(ValueError, match="disagree"):
        ep.assemble_steps(SCHEMA, [np.zeros(2)] * 3, [np.zeros(1)], [0.0], [1.0], [None], False)


def test_check_action_rejects_nan_inf_and_shape():
    assert ep.check_action([0.5], 1, "w").dtype == np.float32
    with pytest.raises(errors.InvalidActionError, match=r"policy action, episode 3 step 7.*NaN"):
        ep.check_action([np.nan], 1, "policy action, episode 3 step 7")
    with pytest.raises(errors.InvalidActionError, match="inf"):
        ep.check_action([np.inf], 1, "w")
    with pytest.raises(errors.InvalidActionError, match=r"shape \(2,\)"):
        ep.check_action([0, 0], 1, "w")


def test_check_observation_names_the_mismatch():
    ep.check_observation(np.zeros(2, np.float64), SCHEMA, "w")
    with pytest.raises(errors.SchemaError, match=r"step 4: observation has shape \(3,\)"):
        ep.check_observation(np.zeros(3), SCHEMA, "step 4")
    cam = sc.camera_schema(2, 1, cameras=("front",), size=4)
    good = {"state": np.zeros(2), "front": np.zeros((4, 4, 3), np.uint8)}
    ep.check_observation(good, cam, "w")
    with pytest.raises(errors.SchemaError, match=r"keys \['state'\] differ"):
        ep.check_observation({"state": np.zeros(2)}, cam, "w")
    with pytest.raises(errors.SchemaError, match="front.*dtype float64"):
        ep.check_observation({**good, "front": np.zeros((4, 4, 3))}, cam, "w")
    with pytest.raises(errors.SchemaError, match="NaN"):
        ep.check_observation(np.array([np.nan, 0.0]), SCHEMA, "w")


def test_metadata_defaults_and_unknown_keys():
    meta = ep.complete_metadata({sc.ENV_ID: "Hopper-v5"}, "w")
    assert meta[sc.ENV_ID] == "Hopper-v5" and meta[sc.ROUND] == 0
    assert set(meta) == set(sc.EPISODE_METADATA_FIELDS)
    with pytest.raises(errors.SchemaError, match="unknown episode metadata fields.*'colour'"):
        ep.complete_metadata({"colour": "red"}, "w")


def test_summarize_episode():
    episode = {sc.STEPS: _assemble([False, True, True, False, True], terminated=False),
               sc.EPISODE_ID: "s/1"}
    s = ep.summarize_episode(episode)
    assert s == {sc.EPISODE_ID: "s/1", "transitions": 5, "intervened_steps": 3,
                 "intervention_rate": 0.6, "takeovers": 2, "return": 5.0, "terminated": False}
