"""Recording real Hopper-v5 rollouts through envlogger with interventions."""

import json

import numpy as np
import pytest

from rlif_data import errors
from rlif_data import intervention as iv
from rlif_data import policies
from rlif_data import schema as sc
from rlif_data.envs.gym_dm_env import make_dm_env
from rlif_data.recording.reader import read_episodes
from rlif_data.recording.recorder import RolloutRecorder, SessionInfo, record_session
from rlif_data.recording.sim import RecordConfig, record_from_config
from rlif_data.recording.store import EpisodeStore

HOPPER = sc.vector_schema(11, 3)


def record(tmp_path, policy=None, model=None, episodes=3, max_steps=80, schema=HOPPER, **kw):
    env = make_dm_env("Hopper-v5", seed=0, max_episode_steps=max_steps)
    policy = policy or policies.RandomPolicy.from_space(env.gym_env.action_space, seed=0)
    return record_session(env, str(tmp_path / "rec"), schema, policy,
                          policies.scripted_expert("Hopper-v5"),
                          model or iv.RandomTakeover(0.5, seed=0),
                          SessionInfo("Hopper-v5", round=2, policy_version="ckpt-7", seed=10, **kw),
                          episodes, progress=False)


def test_every_schema_field_is_filled_consistently(tmp_path):
    summary = record(tmp_path)
    eps = read_episodes(summary.directory)
    assert len(eps) == 3 == len(summary.episodes)
    for i, (episode, result) in enumerate(zip(eps, summary.episodes)):
        steps = episode[sc.STEPS]
        t = len(steps[sc.IS_FIRST]) - 1
        assert t == result.transitions > 0
        flags = steps[sc.INTERVENTION][:t]
        assert flags.sum() == result.intervened_steps
        assert steps[sc.INTERVENTION_START][:t].sum() == result.takeovers
        np.testing.assert_array_equal(steps[sc.SOURCE][:t] == int(sc.Source.EXPERT), flags)
        np.testing.assert_array_equal(steps[sc.ACTION][:t][flags], steps[sc.EXPERT_ACTION][:t][flags])
        np.testing.assert_array_equal(steps[sc.ACTION][:t][~flags],
                                      steps[sc.POLICY_ACTION][:t][~flags])
        assert steps[sc.HAS_EXPERT_ACTION][:t].all()
        # The scripted expert is deterministic: its labels can be recomputed.
        expert = policies.scripted_expert("Hopper-v5")
        np.testing.assert_allclose(steps[sc.EXPERT_ACTION][5], expert(steps[sc.OBSERVATION][5]),
                                   rtol=1e-6)
        assert (np.diff(steps[sc.TIMESTAMP_US]) >= 0).all()
        assert episode[sc.ENV_ID] == "Hopper-v5" and episode[sc.ROUND] == 2
        assert episode[sc.POLICY_VERSION] == "ckpt-7"
        assert episode[sc.SEED] == 10 + i
        assert episode[sc.INTERVENTION_MODEL] == "random"
        assert json.loads(episode[sc.INTERVENTION_PARAMS])["rate"] == 0.5
        assert episode[sc.SESSION_ID] == summary.session_id
        assert episode[sc.EPISODE_ID] == f"{summary.session_id}/{i:05d}"
        assert episode[sc.START_TIME].endswith("+00:00")
        assert episode[sc.CODE_VERSION].startswith("rlif-data ")
        assert np.isclose(steps[sc.REWARD][:t].sum(), result.episode_return, rtol=1e-5)


def test_termination_and_time_limit_truncation_are_told_apart(tmp_path):
    # The scripted expert alone survives the 30-step limit (truncation); the
    # random learner alone falls (termination).
    env = make_dm_env("Hopper-v5", seed=0, max_episode_steps=30)
    expert = policies.scripted_expert("Hopper-v5")
    s1 = record_session(env, str(tmp_path / "a"), HOPPER, expert, expert, iv.NoIntervention(),
                        SessionInfo("Hopper-v5"), 1, progress=False)
    steps = read_episodes(s1.directory)[0][sc.STEPS]
    assert len(steps[sc.IS_FIRST]) == 31
    assert not steps[sc.IS_TERMINAL].any() and steps[sc.DISCOUNT][29] == 1.0
    env = make_dm_env("Hopper-v5", seed=0, max_episode_steps=500)
    learner = policies.RandomPolicy.from_space(env.gym_env.action_space, seed=0)
    s2 = record_session(env, str(tmp_path / "b"), HOPPER, learner, expert, iv.NoIntervention(),
                        SessionInfo("Hopper-v5"), 1, progress=False)
    steps = read_episodes(s2.directory)[0][sc.STEPS]
    t = len(steps[sc.IS_FIRST]) - 1
    assert t < 500 and steps[sc.IS_TERMINAL][-1] and steps[sc.DISCOUNT][t - 1] == 0.0
    assert not steps[sc.INTERVENTION].any()


def test_nan_policy_action_fails_clearly_and_keeps_earlier_episodes(tmp_path):
    calls = {"n": 0}
    good = policies.RandomPolicy(-np.ones(3), np.ones(3), seed=0)

    def flaky(obs):
        calls["n"] += 1
        return np.array([np.nan, 0, 0]) if calls["n"] > 100 else good(obs)

    with pytest.raises(errors.InvalidActionError, match=r"episode .*step \d+: policy action.*NaN"):
        record(tmp_path, policy=flaky, episodes=50, max_steps=40,
               model=iv.NoIntervention())
    eps = read_episodes(str(tmp_path / "rec"))
    assert len(eps) >= 1  # the episodes finished before the NaN are kept
    assert sum(len(e[sc.STEPS][sc.IS_FIRST]) - 1 for e in eps) < 100  # the failing one is not


def test_observation_not_matching_schema_is_refused(tmp_path):
    with pytest.raises(errors.SchemaError, match=r"step 0: observation has shape \(11,\).*\(17,\)"):
        record(tmp_path, schema=sc.vector_schema(17, 3))
    # The schema check fires before any episode: nothing but the empty index exists.
    assert read_episodes(str(tmp_path / "rec")) == []


def test_unknown_env_id_suggests_close_matches():
    with pytest.raises(errors.UnknownEnvironmentError, match="'Hoper-v5'.*Hopper-v5"):
        make_dm_env("Hoper-v5")


def test_recorder_goes_through_envlogger(tmp_path):
    import envlogger

    env = make_dm_env("Hopper-v5", seed=0, max_episode_steps=20)
    store = EpisodeStore.open(str(tmp_path / "rec"), HOPPER)
    expert = policies.scripted_expert("Hopper-v5")
    rec = RolloutRecorder(env, store, expert, expert, iv.NoIntervention(), SessionInfo("Hopper-v5"))
    assert isinstance(rec._env, envlogger.EnvLogger)
    rec.run_episode()
    rec.close()
    assert len(read_episodes(str(tmp_path / "rec"))) == 1


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rate_outside_unit_interval_is_rejected_before_anything_is_written(tmp_path, rate):
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        record_from_config(RecordConfig(out=str(tmp_path / "rec"), rate=rate), progress=False)
    assert not (tmp_path / "rec").exists()


def test_record_from_config_paper_and_official_variants(tmp_path):
    # The stored name is the name the config (and the CLI) used; the old spelling
    # "random_official" is still accepted as an alias.
    for variant, name in (("random", "random"), ("random-official", "random-official"),
                          ("random_official", "random-official")):
        out = tmp_path / variant
        s = record_from_config(RecordConfig(out=str(out), episodes=2, intervention=variant,
                                            max_episode_steps=50), progress=False)
        assert [e[sc.INTERVENTION_MODEL] for e in read_episodes(s.directory)] == [name, name]


def test_record_with_a_flax_checkpoint_learner(tmp_path):
    cfg = policies.MLPPolicyConfig(obs_dim=11, action_dim=3, hidden_dims=(16,))
    policies.save_mlp_policy(tmp_path / "ckpt", cfg, policies.init_mlp_policy_params(cfg, seed=0))
    s = record_from_config(RecordConfig(out=str(tmp_path / "rec"), episodes=1,
                                        learner=str(tmp_path / "ckpt"), max_episode_steps=30,
                                        intervention="none"), progress=False)
    steps = read_episodes(s.directory)[0][sc.STEPS]
    loaded = policies.load_mlp_policy(tmp_path / "ckpt")
    np.testing.assert_allclose(steps[sc.ACTION][0], loaded(steps[sc.OBSERVATION][0]), rtol=1e-5)


def test_record_rendered_cameras(tmp_path):
    s = record_from_config(RecordConfig(out=str(tmp_path / "rec"), episodes=1, max_episode_steps=6,
                                        cameras=("track", "free"), image_size=32,
                                        learner="noisy-expert"), progress=False)
    obs = read_episodes(s.directory)[0][sc.STEPS][sc.OBSERVATION]
    assert set(obs) == {"state", "track", "free"}
    assert obs["track"].shape == (7, 32, 32, 3) and obs["track"].dtype == np.uint8
    assert obs["track"].std() > 0 and not np.array_equal(obs["track"], obs["free"])
    assert obs["state"].shape == (7, 11)


def test_unknown_camera_is_named(tmp_path):
    with pytest.raises(errors.SchemaError, match=r"camera 'wrist' is not in the model.*'track'"):
        record_from_config(RecordConfig(out=str(tmp_path / "rec"), episodes=1,
                                        cameras=("wrist",), image_size=16), progress=False)
