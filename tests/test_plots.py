"""The intervention timeline shows a view: -1 rewards, excluded steps, who acted, which episodes."""

import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import episodes as ep
from rlif_data import relabel
from rlif_data import schema as sc
from rlif_data.plots import (episode_labels, plot_intervention_timeline, sample_indices,
                             timeline_row)
from tests.fakes.episodes import make_episode, write_recording

PNG = b"\x89PNG\r\n\x1a\n"


def episode(episode_id, flags, source, rewards=None, terminated=False):
    """An episode whose intervened steps came from `source` (HUMAN, EXPERT or DATASET)."""
    flags = np.asarray(flags, bool)
    t = len(flags)
    sources = np.where(flags, int(source), int(sc.Source.POLICY))
    if source == sc.Source.DATASET:
        sources[:] = int(sc.Source.DATASET)
    steps = ep.build_steps(
        np.zeros((t + 1, 3), np.float32), np.zeros((t, 2), np.float32),
        np.zeros(t) if rewards is None else np.asarray(rewards, float),
        np.array([0.0 if terminated and i == t - 1 else 1.0 for i in range(t)]),
        terminated=terminated, intervention=flags, source=sources)
    meta = ep.complete_metadata({sc.EPISODE_ID: episode_id, sc.ENV_ID: "Unit-v0"}, "t")
    return {**meta, sc.STEPS: steps}


TAKEOVER = [0, 0, 0, 1, 1, 0, 0, 1, 0, 0]  # takeovers start at steps 3 and 7


def test_a_view_marks_its_minus_one_rewards_and_greys_excluded_steps():
    human = relabel.relabel_episode(episode("a/00000", TAKEOVER, sc.Source.HUMAN),
                                    "paper-policy-only")
    row = timeline_row(human, "paper-policy-only")
    assert row.minus_one == [2, 6]  # the transitions before each takeover
    assert row.excluded_runs == [(3, 2), (7, 1)]  # the operator's steps are not in this view
    assert row.takeover_starts == [3, 7]
    assert row.source_runs == {"learner": [(0, 3), (5, 2), (8, 2)], "operator": [(3, 2), (7, 1)]}
    hg = timeline_row(relabel.relabel_episode(episode("a/1", TAKEOVER, sc.Source.EXPERT),
                                              "hg-dagger"), "hg-dagger")
    assert hg.minus_one == [] and hg.excluded_runs == [(0, 3), (5, 2), (8, 2)]
    assert "expert" in hg.source_runs
    raw = timeline_row(episode("a/2", TAKEOVER, sc.Source.HUMAN, rewards=[-1.0] * 10))
    assert raw.minus_one == [] and raw.excluded_runs == []  # raw data: rewards are the env's


def test_imported_rows_are_the_dataset_s_and_keep_their_rewards():
    d4rl = {**episode("hopper-medium-v2/17", [0] * 6, sc.Source.DATASET,
                      rewards=[-1, 0, -1, 0, 0, 0], terminated=True)}
    steps = dict(d4rl[sc.STEPS])
    steps[sc.INCLUDE] = np.ones(7, bool)  # merged beside a view: every step included
    steps[sc.ENV_REWARD] = steps[sc.REWARD]
    row = timeline_row({**d4rl, sc.STEPS: steps}, "paper")
    assert row.source_runs == {"dataset": [(0, 6)]} and row.minus_one == [] and row.terminated


def test_two_sessions_never_share_a_label():
    assert episode_labels(["3f2a9c8b7d6e/00000", "3f2a9c8b7d6e/00001"]) == ["00000", "00001"]
    assert episode_labels(["3f2a9c8b7d6e/00000", "b41c0a9e2f11/00000", "hopper-medium-v2/17"]) == [
        "3f2a9c/00000", "b41c0a/00000", "hopper/17"]
    # Sessions that share a prefix get more of it.
    assert episode_labels(["3f2a9c8b7d6e/00000", "3f2a9c00aaaa/00000"]) == [
        "3f2a9c8b/00000", "3f2a9c00/00000"]
    assert episode_labels(["x", "x/0"]) == ["x", "0"]


def test_sampling_is_even_and_keeps_both_ends():
    assert sample_indices(10, 40) == list(range(10))
    picked = sample_indices(74, 40)
    assert len(picked) == 40 and picked[0] == 0 and picked[-1] == 73
    assert max(np.diff(picked)) == 2 and sample_indices(5, 1) == [0]


def test_the_plot_says_what_it_shows(tmp_path):
    sessions = [relabel.relabel_episode(episode(f"{s}/{i:05d}", TAKEOVER, sc.Source.HUMAN),
                                        "paper")
                for s in ("3f2a9c8b7d6e", "b41c0a9e2f11") for i in range(37)]
    drawn = plot_intervention_timeline(sessions, str(tmp_path / "t.png"), view="paper")
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG
    assert drawn.caption == ("showing 40 of 74 episodes (evenly spaced) · view paper · "
                             "intervention rate 30%")
    assert len(set(drawn.labels)) == 40 and drawn.labels[0] == "3f2a9c/00000"
    assert drawn.labels[-1] == "b41c0a/00036"
    assert drawn.legend == ["learner", "operator", "takeover start",
                            "reward -1 (before a takeover)"]
    policy_only = [relabel.relabel_episode(e, "official")
                   for e in (episode("s/0", TAKEOVER, sc.Source.EXPERT),)]
    drawn = plot_intervention_timeline(policy_only, str(tmp_path / "o.png"), view="official")
    assert "not in the view (include = 0)" in drawn.legend and drawn.caption.startswith(
        "1 episodes")
    with pytest.raises(ValueError, match="no episodes"):
        plot_intervention_timeline([], str(tmp_path / "x.png"))


def test_inspect_plot_of_a_recording_names_what_it_shows(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    png = tmp_path / "plots" / "t.png"
    result = CliRunner().invoke(app, ["inspect", rec, "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "timeline written to" in result.output
    assert "(3 episodes · view raw · intervention rate" in " ".join(result.output.split())
    assert png.read_bytes()[:8] == PNG
