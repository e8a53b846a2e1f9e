"""Every job's fixed cost and its last step: in-process runs for small inputs, no TensorFlow,
and `rlif-data check` over what it wrote before the rename (issue 17 item 4)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from pipelines import job_checks, output, relabel, runners
from rlif_cli.main import app
from rlif_data import checks
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from tests.fakes.episodes import make_episode, write_recording

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec") / "round-0"
    return write_recording(d, [make_episode(i, length=3 + i) for i in range(8)])


def lineage(directory):
    with open(os.path.join(directory, sc.METADATA_FILE)) as f:
        return json.load(f)["lineage"]


def staging_left(parent):
    return [n for n in os.listdir(parent) if n.startswith(output.STAGING_PREFIX)]


# -- which DirectRunner mode (pure) -----------------------------------------------------------


def test_small_jobs_run_in_process_large_ones_on_workers_and_given_flags_win():
    small = runners.choose_direct_mode(["--runner=DirectRunner"], 20, 700_000)
    assert small.mode == "in_memory" and small.args == runners.IN_PROCESS_ARGS
    assert "20 episodes, 0.7 MB" in small.reason
    big = runners.choose_direct_mode([], 20, runners.IN_PROCESS_MAX_BYTES + 1)
    assert big.mode == "multi_processing" and big.args == runners.PARALLEL_ARGS
    many = runners.choose_direct_mode([], runners.IN_PROCESS_MAX_EPISODES + 1, 10)
    assert many.mode == "multi_processing"
    for given in (["--direct_num_workers=4"], ["--direct_running_mode", "multi_threading"]):
        mode = runners.choose_direct_mode(["--runner=DirectRunner", *given], 20, 10)
        assert mode.mode == "as given" and mode.args == ()
    # The last --runner counts: the CLI puts its default before the user's flags.
    dask = runners.choose_direct_mode(["--runner=DirectRunner", "--runner=dask"], 20, 10)
    assert dask.mode == "not direct" and dask.args == ()
    assert runners.choose_direct_mode(["--runner=DaskRunner", "--runner=DirectRunner"], 20,
                                      10).mode == "in_memory"


def test_a_small_job_runs_in_the_jobs_own_process_and_records_why(recording, tmp_path):
    out = relabel.run(recording, str(tmp_path / "small"), "paper")
    run = lineage(out)["run"]
    assert run["mode"] == "in_memory" and "in-process" in run["mode_reason"]
    assert [w.rsplit("/", 1)[1] for w in run["writers"]] == [str(os.getpid())]


def test_a_large_job_runs_on_two_worker_processes_unless_told(recording, tmp_path, monkeypatch):
    monkeypatch.setattr(runners, "IN_PROCESS_MAX_BYTES", 0)  # every input is "large"
    out = relabel.run(recording, str(tmp_path / "large"), "paper")
    run = lineage(out)["run"]
    assert run["mode"] == "multi_processing" and run["workers"] == 2
    assert len(run["writers"]) == 2 and str(os.getpid()) not in {
        w.rsplit("/", 1)[1] for w in run["writers"]}
    given = relabel.run(recording, str(tmp_path / "given"), "paper",
                        ["--direct_num_workers=1", "--direct_running_mode=in_memory"])
    assert lineage(given)["run"]["mode"] == "as given"
    assert [e[sc.EPISODE_ID] for e in read_episodes(given)] == [
        e[sc.EPISODE_ID] for e in read_episodes(out)]


def test_the_command_line_job_path_imports_no_tensorflow(recording, tmp_path):
    out = str(tmp_path / "ds")
    code = ("import sys; from rlif_cli.main import app; "
            f"app(['relabel', '--input', {recording!r}, '--out', {out!r}], "
            "standalone_mode=False); print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    assert len(read_episodes(out)) == 8
    assert lineage(out)["run"]["mode"] == "in_memory"  # the default path, not a given flag


# -- the check before the rename -----------------------------------------------------------------


def _troubled_episodes():
    """Episodes with findings of several kinds, on a registered env (bounds and time limit)."""
    episodes = [make_episode(i, length=6) for i in range(5)]
    for e in episodes:
        e[sc.ENV_ID] = "Hopper-v5"
        steps = e[sc.STEPS]
        steps[sc.ACTION] = np.zeros((7, 3), np.float32)
        steps[sc.POLICY_ACTION] = np.zeros((7, 3), np.float32)
        steps[sc.EXPERT_ACTION] = np.zeros((7, 3), np.float32)
    episodes[1][sc.STEPS][sc.ACTION][2] = [0.0, 3.0, 0.0]  # outside Hopper's [-1, 1]
    episodes[2][sc.STEPS][sc.OBSERVATION][4, 1] = np.nan
    episodes[4] = {**episodes[0], sc.EPISODE_ID: "s/copy"}  # a duplicate of episode 0
    return episodes


def test_the_workers_checks_and_the_drivers_give_what_rlif_data_check_gives(tmp_path):
    rec = write_recording(tmp_path / "rec", _troubled_episodes(), sc.vector_schema(3, 3, "unit"))
    want = checks.check_dataset(rec)
    assert {checks.ACTION_BOUNDS, checks.NON_FINITE, checks.DUPLICATE_EPISODE} <= set(
        want.counts())
    # As on the workers: each episode checked alone, under a key (sparse, any order).
    check = job_checks.EpisodeChecker(view=None)
    summaries = [check(10 * i + 3, e) for i, e in enumerate(read_episodes(rec))]
    got = job_checks.dataset_report(summaries[::-1], rec, view=None)
    assert got.findings == want.findings
    assert (got.episodes, got.steps, got.notes) == (want.episodes, want.steps, want.notes)


def test_the_driver_takes_the_env_notes_from_the_workers_and_makes_no_env(tmp_path, monkeypatch):
    episodes = _troubled_episodes()
    episodes[2][sc.ENV_ID] = "NoSuchEnv-v0"  # its bounds cannot be checked: a note
    episodes[3][sc.ENV_ID] = ""  # no env id: another note
    rec = write_recording(tmp_path / "rec", episodes, sc.vector_schema(3, 3, "unit"))
    want = checks.check_dataset(rec)
    assert len(want.notes) >= 2 and any("NoSuchEnv-v0" in n for n in want.notes)
    check = job_checks.EpisodeChecker(view=None)
    summaries = [check(i, e) for i, e in enumerate(read_episodes(rec))]

    def no_env(*args):
        raise AssertionError("the driver made an env")

    monkeypatch.setattr(checks, "_env_info", no_env)
    got = job_checks.dataset_report(summaries[::-1], rec, view=None)
    assert got.notes == want.notes and got.findings == want.findings


def test_every_job_records_its_check_in_the_lineage(tmp_path):
    twice = make_episode(0, length=6)
    rec = write_recording(tmp_path / "rec", [twice, make_episode(1, length=4), twice,
                                             make_episode(3, length=6)])
    out = relabel.run(rec, str(tmp_path / "ds"), "paper")
    check = lineage(out)["check"]
    assert check["errors"] == 0 and check["strict"] is False and check["worker_seconds"] > 0
    assert check["counts"] == checks.check_dataset(out).counts()
    assert check["counts"][checks.DUPLICATE_EPISODE] == 1


def test_a_job_whose_output_fails_the_check_publishes_nothing(tmp_path):
    episodes = [make_episode(i, length=5) for i in range(3)]
    # Episode 1 says a takeover starts at a step where the flags say none does.
    flags = episodes[1][sc.STEPS][sc.INTERVENTION]
    start = np.zeros_like(flags)
    start[np.flatnonzero(~flags[:-1])[0]] = True
    episodes[1][sc.STEPS][sc.INTERVENTION_START] = start
    rec = write_recording(tmp_path / "rec", episodes)
    jobs = tmp_path / "jobs"
    result = CliRunner().invoke(app, ["relabel", "--input", rec, "--out", str(jobs / "ds")])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "fails its check, nothing was written to" in line
    assert "first: episode 1 step" in line and "takeover-start" in line
    report = json.loads(open(line.rsplit("full report: ", 1)[1]).read())
    assert report["counts"].get(checks.TAKEOVER_START) and report["dataset"] == str(jobs / "ds")
    assert not (jobs / "ds").exists() and staging_left(jobs) == []


def test_warnings_pass_a_job_and_fail_it_with_strict(tmp_path):
    twice = make_episode(0, length=6)
    rec = write_recording(tmp_path / "rec", [twice, make_episode(1, length=4), twice])
    result = CliRunner().invoke(app, ["relabel", "--input", rec, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    check = lineage(str(tmp_path / "a"))["check"]
    assert check["errors"] == 0 and check["counts"][checks.DUPLICATE_EPISODE] == 1
    result = CliRunner().invoke(app, ["relabel", "--input", rec, "--out", str(tmp_path / "b"),
                                      "--strict"])
    assert result.exit_code == 2, result.output
    assert "duplicate-episode" in result.output and "drop --strict" in result.output
    assert not (tmp_path / "b").exists() and staging_left(tmp_path) == []
