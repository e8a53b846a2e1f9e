"""`rlif_data.checks` and `rlif-data check`: each check finds its misalignment, names episode
and step, and stays quiet on good data; real recordings, real D4RL-layout files."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import checks
from rlif_data import episodes as ep
from rlif_data import relabel as rl
from rlif_data import schema as sc
from rlif_data.lineage import JobRecord, LINEAGE_KEY
from rlif_data.recording.store import EpisodeStore
from tests.fakes import d4rl_files
from tests.fakes.episodes import write_recording

runner = CliRunner()


def episode(i=0, length=8, env_id="Unit-v0", terminated=False, act_dim=2, obs_dim=3,
            flags=None, stamps_s=None):
    """A well-formed episode: learner actions are its proposals, expert ones the expert's."""
    rng = np.random.default_rng(100 + i)
    if flags is None:
        flags = np.zeros(length, bool)
        flags[3:5] = True  # one takeover at t = 3
    policy = rng.uniform(-0.9, 0.9, (length, act_dim)).astype(np.float32)
    expert = rng.uniform(-0.9, 0.9, (length, act_dim)).astype(np.float32)
    discounts = np.ones(length)
    if terminated:
        discounts[-1] = 0.0
    steps = ep.build_steps(
        rng.normal(size=(length + 1, obs_dim)).astype(np.float32),
        np.where(flags[:, None], expert, policy), rng.normal(size=length), discounts,
        terminated=terminated, intervention=flags, policy_actions=policy, expert_actions=expert,
        has_expert_action=np.ones(length, bool),
        source=np.where(flags, int(sc.Source.EXPERT), int(sc.Source.POLICY)),
        timestamps=np.arange(length) * 0.1 if stamps_s is None else stamps_s)
    meta = ep.complete_metadata({sc.EPISODE_ID: f"e/{i}", sc.ENV_ID: env_id}, "test")
    return {**meta, sc.STEPS: steps}


def kinds_at(findings):
    return {(f.kind, f.step) for f in findings}


def test_a_well_formed_episode_has_no_findings():
    assert checks.check_episode(episode(terminated=True)) == []
    relabelled = rl.relabel_episode(episode(), "paper")
    assert checks.check_episode(relabelled, 0, checks.CheckContext(view="paper")) == []


def test_nan_in_an_observation_and_inf_in_a_reward_name_their_steps():
    e = episode()
    e[sc.STEPS][sc.OBSERVATION][5, 1] = np.nan
    e[sc.STEPS][sc.REWARD][2] = np.inf
    found = checks.non_finite_findings(e[sc.STEPS], 4, "e/4")
    assert kinds_at(found) == {(checks.NON_FINITE, 5), (checks.NON_FINITE, 2)}
    assert all(f.episode == 4 and f.episode_id == "e/4" for f in found)
    assert any("observation" in f.message for f in found)


def test_nan_in_a_camera_frame_dict_entry_is_named():
    e = episode()
    state = e[sc.STEPS][sc.OBSERVATION]
    e[sc.STEPS][sc.OBSERVATION] = {"state": state, "depth": np.zeros((len(state), 2, 2))}
    e[sc.STEPS][sc.OBSERVATION]["depth"][7, 0, 0] = -np.inf
    found = checks.non_finite_findings(e[sc.STEPS])
    assert [(f.step, "'depth'" in f.message) for f in found] == [(7, True)]


def test_is_first_is_last_and_is_terminal_structure():
    e = episode()
    steps = e[sc.STEPS]
    steps[sc.IS_LAST][4] = True
    steps[sc.IS_FIRST][0] = False
    steps[sc.IS_TERMINAL][2] = True
    found = checks.structure_findings(steps)
    assert kinds_at(found) == {(checks.STRUCTURE, 0), (checks.STRUCTURE, 4),
                               (checks.STRUCTURE, 2)}
    steps[sc.REWARD] = steps[sc.REWARD][:-1]
    (only,) = checks.structure_findings(steps)
    assert only.step is None and "differ in length" in only.message


def test_discount_must_match_termination():
    e = episode(terminated=True)
    e[sc.STEPS][sc.DISCOUNT][7] = 1.0  # terminal, but bootstraps
    e[sc.STEPS][sc.DISCOUNT][3] = 0.0  # a termination in the middle
    found = checks.discount_findings(e[sc.STEPS])
    assert kinds_at(found) == {(checks.DISCOUNT, 7), (checks.DISCOUNT, 3)}
    truncated = episode()
    truncated[sc.STEPS][sc.DISCOUNT][7] = 0.0
    (f,) = checks.discount_findings(truncated[sc.STEPS])
    assert f.step == 7 and "not terminal" in f.message


def test_takeover_start_flags_must_follow_the_intervention_flags():
    e = episode()
    e[sc.STEPS][sc.INTERVENTION_START][3] = False
    e[sc.STEPS][sc.INTERVENTION_START][6] = True
    assert kinds_at(checks.takeover_start_findings(e[sc.STEPS])) == {
        (checks.TAKEOVER_START, 3), (checks.TAKEOVER_START, 6)}


@pytest.mark.parametrize("view", ["paper", "paper-policy-only", "official"])
def test_rlif_reward_off_by_one_is_found_at_the_step(view):
    e = rl.relabel_episode(episode(), view)
    reward = e[sc.STEPS][sc.REWARD]
    assert reward[2] == -1.0  # takeover at 3: transition 2 gets -1
    reward[2], reward[3] = 0.0, -1.0  # the -1 written one step late
    found = checks.view_findings(e[sc.STEPS], view)
    assert kinds_at(found) == {(checks.RLIF_REWARD, 2), (checks.RLIF_REWARD, 3)}
    assert "-1" in next(f.message for f in found if f.step == 2)


def test_include_mask_of_each_view_is_checked():
    e = rl.relabel_episode(episode(), "paper-policy-only")
    e[sc.STEPS][sc.INCLUDE][3] = True  # an expert step kept
    assert kinds_at(checks.view_findings(e[sc.STEPS], "paper-policy-only")) == {
        (checks.INCLUDE_MASK, 3)}
    hg = rl.relabel_episode(episode(), rl.HG_DAGGER)
    assert checks.view_findings(hg[sc.STEPS], rl.HG_DAGGER) == []
    hg[sc.STEPS][sc.INCLUDE][0] = True
    assert kinds_at(checks.view_findings(hg[sc.STEPS], rl.HG_DAGGER)) == {(checks.INCLUDE_MASK, 0)}
    dagger = rl.relabel_episode(episode(), rl.DAGGER)
    assert checks.view_findings(dagger[sc.STEPS], rl.DAGGER) == []
    dagger[sc.STEPS][sc.ACTION][1] += 0.5
    assert kinds_at(checks.view_findings(dagger[sc.STEPS], rl.DAGGER)) == {
        (checks.INCLUDE_MASK, 1)}


def test_actions_outside_the_bounds():
    e = episode()
    e[sc.STEPS][sc.ACTION][2] = [1.5, 0.0]
    found = checks.action_bound_findings(e[sc.STEPS], np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    assert kinds_at(found) == {(checks.ACTION_BOUNDS, 2)}
    (width,) = checks.action_bound_findings(e[sc.STEPS], -np.ones(3), np.ones(3), env_id="X-v0")
    assert width.step is None and "X-v0" in width.message


def test_action_stored_one_step_after_the_policy_proposal():
    flags = np.zeros(10, bool)
    e = episode(length=10, flags=flags)
    steps = e[sc.STEPS]
    assert checks.action_alignment_findings(steps) == []
    proposals = steps[sc.POLICY_ACTION][:10].copy()
    steps[sc.ACTION][1:10] = proposals[:9]  # action[t] = policy_action[t - 1]
    (f,) = checks.action_alignment_findings(steps)
    assert f.kind == checks.ACTION_ALIGNMENT and "previous" in f.message


def test_constant_observation_is_a_warning():
    e = episode()
    e[sc.STEPS][sc.OBSERVATION][:] = 1.0
    (f,) = checks.constant_findings(e[sc.STEPS])
    assert f.severity == checks.WARNING and f.kind == checks.CONSTANT_EPISODE


def test_timestamps_backwards_and_missed_deadlines():
    stamps = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.39, 0.5, 0.95])  # back at 5
    # 0.45 s between steps 6 and 7: a missed 10 Hz deadline
    e = episode(stamps_s=stamps)
    found = checks.timestamp_findings(e[sc.STEPS], control_period_us=1e5)
    assert kinds_at(found) == {(checks.TIMESTAMP_BACKWARDS, 5), (checks.MISSED_DEADLINE, 7)}
    assert {f.kind for f in checks.timestamp_findings(e[sc.STEPS])} == {
        checks.TIMESTAMP_BACKWARDS}  # rate unknown: no deadline check


def test_many_bad_steps_are_summarised_not_listed():
    e = episode(length=40)
    e[sc.STEPS][sc.REWARD][:40] = np.nan
    found = checks.non_finite_findings(e[sc.STEPS])
    assert len(found) == checks.STEPS_NAMED + 1
    assert "35 more step(s)" in found[-1].message


def test_duplicates_and_truncations_at_the_dataset_level():
    a, b = episode(0), episode(1)
    prints = [checks.episode_fingerprint(x) for x in (a, b, a)]
    (dup,) = checks.duplicate_findings(prints, ["a", "b", "a2"])
    assert dup.episode == 2 and "episode 0 (a)" in dup.message
    lengths, terminal = [200, 200, 57, 200], [False, True, True, True]
    seen = checks.time_limits_seen(lengths, terminal)
    assert seen == {200}
    found = checks.truncation_findings(lengths, terminal, [200] * 4)
    assert [f.episode for f in found] == [1, 3]
    assert checks.time_limits_seen([57, 80], [True, False]) == {80}
    assert checks.time_limits_seen([57, 80], [True, True]) == set()


def test_next_observation_shift_in_a_flat_table():
    obs = np.arange(12, dtype=np.float32).reshape(6, 2)
    good = np.roll(obs, -1, axis=0)
    spans = [(0, 3), (3, 6)]
    assert checks.next_observation_findings(obs, good, spans) == []
    shifted_back = obs.copy()
    found = checks.next_observation_findings(obs, shifted_back, spans)
    assert [f.step for f in found] == [0, 1, 3, 4]
    assert "shifted one row back" in found[0].message


# -- the runner over real files ------------------------------------------------------------


def _relabelled_recording(directory, episodes, view="paper"):
    record = JobRecord("relabel", {"view": view}, [{"path": "/raw"}]).metadata()
    schema = sc.vector_schema(3, 2, name="unit")
    schema = sc.EpisodeSchema(schema.observation, 2, "unit", derived=True)
    with EpisodeStore.open(str(directory), schema, metadata={LINEAGE_KEY: record}) as store:
        for e in episodes:
            store.write_episode(rl.relabel_episode(e, view))
    return str(directory)


def test_check_dataset_reads_the_view_and_finds_a_wrong_reward(tmp_path):
    eps = [episode(i) for i in range(3)]
    directory = _relabelled_recording(tmp_path / "ds", eps)
    report = checks.check_dataset(directory)
    assert report.view == "paper" and report.episodes == 3 and report.steps == 24
    assert not report.failed(strict=True), report.findings
    bad = [rl.relabel_episode(e, "paper") for e in eps]
    bad[1][sc.STEPS][sc.REWARD][5] = -1.0
    directory = tmp_path / "bad"
    record = JobRecord("relabel", {"view": "paper"}, [{"path": "/raw"}]).metadata()
    with EpisodeStore.open(str(directory), checks_schema(), metadata={LINEAGE_KEY: record}) as s:
        for e in bad:
            s.write_episode(e)
    report = checks.check_dataset(str(directory))
    assert kinds_at(report.findings) == {(checks.RLIF_REWARD, 5)}
    assert report.findings[0].episode == 1 and report.failed()


def test_enforce_fails_a_job_in_one_line_only_when_it_should():
    report = checks.Report("ds", findings=[
        checks.Finding(2, None, checks.DUPLICATE_EPISODE, "same as 0", checks.WARNING)])
    assert checks.enforce(report) is report
    with pytest.raises(checks.CheckFailedError, match="episode 2: duplicate-episode"):
        checks.enforce(report, strict=True)
    report.findings.append(checks.Finding(3, 7, checks.NON_FINITE, "reward holds NaN/inf: nan"))
    with pytest.raises(checks.CheckFailedError) as info:
        checks.enforce(report)
    assert "first: episode 3 step 7: non-finite" in str(info.value)
    assert "\n" not in str(info.value) and "rlif-data check ds --json FILE" in str(info.value)


def checks_schema():
    return sc.EpisodeSchema(sc.ArraySpec((3,)), 2, "unit", derived=True)


def test_check_dataset_bounds_from_a_registered_env(tmp_path):
    good = episode(0, env_id="Hopper-v5", act_dim=3)
    bad = episode(1, env_id="Hopper-v5", act_dim=3)
    bad[sc.STEPS][sc.ACTION][6] = [0.0, 2.0, 0.0]
    directory = write_recording(tmp_path / "rec", [good, bad], sc.vector_schema(3, 3, "unit"))
    report = checks.check_dataset(directory)
    assert kinds_at(report.findings) == {(checks.ACTION_BOUNDS, 6)}
    assert report.findings[0].episode == 1 and report.findings[0].episode_id == "e/1"


def test_check_dataset_duplicates_and_unregistered_env_note(tmp_path):
    e = episode(0)
    directory = write_recording(tmp_path / "rec", [e, episode(1), e])
    report = checks.check_dataset(directory)
    assert kinds_at(report.findings) == {(checks.DUPLICATE_EPISODE, None)}
    assert not report.failed() and report.failed(strict=True)
    assert any("'Unit-v0': not a registered" in n for n in report.notes)


def test_check_a_d4rl_file(tmp_path):
    arrays = d4rl_files.d4rl_arrays((4, 3, 5), [d4rl_files.TIMEOUT, d4rl_files.TERMINAL,
                                                d4rl_files.TERMINAL])
    obs = arrays["observations"]
    nxt = obs.copy()
    nxt[:-1] = obs[1:]  # aligned, except across episode ends (not compared)
    nxt[5] = obs[5]  # row 5 (episode 1): repeats its own observation
    fake = d4rl_files.write_d4rl_file(tmp_path / "x.hdf5", episode_lengths=(4, 3, 5),
                                      end_kinds=[d4rl_files.TIMEOUT, d4rl_files.TERMINAL,
                                                 d4rl_files.TERMINAL],
                                      override={"next_observations": nxt})
    report = checks.check_dataset(str(fake.path))
    assert kinds_at(report.findings) == {(checks.NEXT_OBSERVATION, 5)}
    assert report.findings[0].episode == 1 and report.steps == 12


# -- the command line ----------------------------------------------------------------------


def test_cli_exit_codes_table_and_json(tmp_path):
    clean = write_recording(tmp_path / "clean", [episode(i) for i in range(2)])
    result = runner.invoke(app, ["check", clean, "--json", str(tmp_path / "r" / "clean.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "clean.json").read_text())["errors"] == 0

    bad = episode(1)
    bad[sc.STEPS][sc.OBSERVATION][4, 0] = np.nan
    dup = episode(0)
    broken = write_recording(tmp_path / "broken", [episode(0), bad, dup])
    out = tmp_path / "broken.json"
    result = runner.invoke(app, ["check", broken, "--json", str(out)])
    assert result.exit_code == 1, result.output
    assert "non-finite" in result.output and "duplicate-episode" in result.output
    report = json.loads(out.read_text())
    assert report["errors"] == 1 and report["warnings"] == 1
    (nan,) = [f for f in report["findings"] if f["kind"] == "non-finite"]
    assert (nan["episode"], nan["step"], nan["episode_id"]) == (1, 4, "e/1")


def test_cli_strict_fails_on_warnings_only_when_asked(tmp_path):
    e = episode(0)
    directory = write_recording(tmp_path / "rec", [e, e])
    assert runner.invoke(app, ["check", directory]).exit_code == 0
    result = runner.invoke(app, ["check", directory, "--strict"])
    assert result.exit_code == 1 and "warnings count" in result.output


def test_cli_check_help_states_the_exit_codes():
    result = runner.invoke(app, ["check", "--help"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "1 when there are errors" in text and "2 on bad input" in text


def test_cli_check_an_empty_dataset_is_bad_input(tmp_path):
    directory = tmp_path / "empty"
    EpisodeStore.open(str(directory), sc.vector_schema(3, 2, "unit")).close()
    result = runner.invoke(app, ["check", str(directory)])
    assert result.exit_code == 2
    assert "holds no episodes; nothing to check" in " ".join(result.output.split())
    result = runner.invoke(app, ["check", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such directory" in result.output
