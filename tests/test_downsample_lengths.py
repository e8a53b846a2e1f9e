"""Downsample from the episode lengths stored beside a job's output (issue 17), checked."""

import json
import os
import shutil

import apache_beam as beam
import pytest
from typer.testing import CliRunner

from pipelines import downsample, episode_lengths, output
from rlif_cli.main import app
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from tests.fakes.built_datasets import shard_records
from tests.fakes.episodes import make_episode, write_recording

SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
MULTI = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def lengths_file(directory):
    return os.path.join(str(directory), sc.EPISODE_LENGTHS_FILE)


def params(directory):
    with open(os.path.join(str(directory), sc.METADATA_FILE)) as f:
        return json.load(f)["lineage"]["params"]


def staging_left(parent):
    return [n for n in os.listdir(parent) if n.startswith(output.STAGING_PREFIX)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 20-episode dataset written by a job (3 shards), so with its lengths file."""
    root = tmp_path_factory.mktemp("built")
    rec = write_recording(root / "rec", [make_episode(i, length=3 + i % 7) for i in range(20)])
    assert not os.path.exists(lengths_file(rec))  # recordings carry none
    out = str(root / "all")
    downsample.run(rec, out, episodes=20, beam_args=SINGLE + ["--direct_num_workers=3"])
    return out


def copy_without_lengths(built, tmp_path):
    plain = str(tmp_path / "plain")
    shutil.copytree(built, plain)
    os.unlink(lengths_file(plain))
    return plain


def edit_lengths(directory, edit):
    with open(lengths_file(directory)) as f:
        content = json.load(f)
    edit(content)
    with open(lengths_file(directory), "w") as f:
        json.dump(content, f)


# -- the file ---------------------------------------------------------------------------


def test_jobs_store_every_episodes_transitions_in_output_order(built):
    with open(lengths_file(built)) as f:
        content = json.load(f)
    real = [len(e[sc.STEPS][sc.IS_FIRST]) - 1 for e in read_episodes(built)]
    assert content[episode_lengths.TRANSITIONS_KEY] == real
    assert real == [3 + i % 7 for i in range(20)]
    assert content[episode_lengths.SHARDS_KEY] == [7, 7, 6]
    assert episode_lengths.read(built) == real


def test_notes_without_check_summaries_store_nothing():
    notes = [{"shard": 1, "episodes": 1, "checks": [{"key": 5, "length": 4}]},
             {"shard": 0, "episodes": 2, "checks": [{"key": 0, "length": 9},
                                                   {"key": 2, "length": 1}]}]
    assert episode_lengths.from_notes(notes)[episode_lengths.TRANSITIONS_KEY] == [9, 1, 4]
    assert episode_lengths.from_notes(notes)[episode_lengths.SHARDS_KEY] == [2, 1]
    notes[0].pop("checks")
    assert episode_lengths.from_notes(notes) is None and episode_lengths.side_file(notes) == {}


@pytest.mark.parametrize("text,why", [
    ("{", "not JSON"),
    ('{"version": 2, "shard_lengths": [2], "transitions": [1, 1]}', "version-1"),
    ('{"version": 1, "shard_lengths": [2], "transitions": [1, -1]}', "whole numbers"),
    ('{"version": 1, "shard_lengths": [2], "transitions": [1, true]}', "whole numbers"),
    ('{"version": 1, "shard_lengths": [1, 1], "transitions": [1, 1]}', "dataset changed"),
    ('{"version": 1, "shard_lengths": [2], "transitions": [1, 1, 1]}', "3 lengths for 2"),
])
def test_a_file_that_does_not_fit_the_index_is_not_taken(text, why):
    lengths, reason = episode_lengths.parse(text, [2])
    assert lengths is None and why in reason
    assert episode_lengths.parse('{"version": 1, "shard_lengths": [2], "transitions": [4, 0]}',
                                 [2]) == ([4, 0], "")


# -- downsample -------------------------------------------------------------------------


@pytest.mark.parametrize("target", [{"transitions": 40, "seed": 3}, {"episodes": 6, "seed": 1}])
def test_stored_lengths_give_the_same_output_as_the_read_pass(built, tmp_path, monkeypatch,
                                                              target):
    plain = copy_without_lengths(built, tmp_path)
    want = downsample.run(plain, str(tmp_path / "want"), beam_args=SINGLE, **target)

    def no_pass(*args, **kwargs):
        raise AssertionError("the read pass ran although the lengths are stored")

    monkeypatch.setattr(downsample, "episode_infos", no_pass)
    got = downsample.run(built, str(tmp_path / "got"), beam_args=SINGLE, **target)
    assert shard_records(got) == shard_records(want) and len(shard_records(got)) > 1
    assert params(got) == params(want)
    with open(lengths_file(got)) as a, open(lengths_file(want)) as b:
        assert a.read() == b.read()  # the output carries its own, for the next downsample


def test_a_stale_file_is_ignored_and_the_episodes_read(built, tmp_path, caplog):
    plain = copy_without_lengths(built, tmp_path)
    want = downsample.run(plain, str(tmp_path / "want"), transitions=40, seed=3,
                          beam_args=SINGLE)
    stale = str(tmp_path / "stale")
    shutil.copytree(built, stale)
    # Lengths of another dataset: one episode too many (all else zeros: a selection
    # made from them would differ).
    edit_lengths(stale, lambda c: c.update(shard_lengths=[7, 7, 7], transitions=[0] * 21))
    got = downsample.run(stale, str(tmp_path / "got"), transitions=40, seed=3, beam_args=SINGLE)
    assert shard_records(got) == shard_records(want) and params(got) == params(want)
    assert any(sc.EPISODE_LENGTHS_FILE in r.getMessage() and "ignored" in r.getMessage()
               for r in caplog.records)


def test_stratified_selection_still_reads_the_episodes(built, tmp_path, monkeypatch):
    calls = []
    real = downsample.episode_infos
    monkeypatch.setattr(downsample, "episode_infos",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    downsample.run(built, str(tmp_path / "s"), episodes=4, stratify="operator",
                   beam_args=SINGLE)
    assert len(calls) == 1  # strata are not stored: the pass gives them


def test_hand_edited_lengths_fail_the_cli_job_naming_the_episode(built, tmp_path):
    edited = str(tmp_path / "edited")
    shutil.copytree(built, edited)
    # Consistent with the index, wrong for episode 5 (which holds 3 + 5 = 8 transitions).
    edit_lengths(edited, lambda c: c[episode_lengths.TRANSITIONS_KEY].__setitem__(5, 9))
    out = tmp_path / "small"
    result = CliRunner().invoke(app, ["downsample", "--input", edited, "--out", str(out),
                                      "--episodes", "20"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"{edited}: episode 5: StoredLengthError: it holds 8 transitions but " \
           f"{lengths_file(edited)} says 9" in text
    assert "delete it and run again" in text
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists() and not staging_left(tmp_path)


def test_hand_edited_lengths_fail_a_multiprocess_job_too(built, tmp_path):
    edited = str(tmp_path / "edited")
    shutil.copytree(built, edited)
    edit_lengths(edited, lambda c: c[episode_lengths.TRANSITIONS_KEY].__setitem__(19, 0))
    with pytest.raises(output.PipelineFailedError, match=r"episode 19: StoredLengthError: "
                       r"it holds 8 transitions but .* says 0"):
        downsample.run(edited, str(tmp_path / "small"), episodes=20, beam_args=MULTI)
    assert not (tmp_path / "small").exists() and not staging_left(tmp_path)


def test_the_beam_transform_form_checks_lengths_too(built):
    source = downsample.EpisodesOfKnownLength(built, (0, 4), lengths=((0, 3), (4, 6)),
                                              lengths_file="L")
    with pytest.raises(Exception, match="episode 4: StoredLengthError: it holds 7 transitions "
                                        "but L says 6"):
        with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(SINGLE)) as p:
            _ = p | source()


# -- merge carries its inputs' lengths ------------------------------------------------------


def test_a_merge_of_job_outputs_carries_their_lengths_and_downsample_uses_them(
        built, tmp_path, monkeypatch):
    from pipelines import merge

    merged = merge.run([built, built], str(tmp_path / "merged"))
    real = [len(e[sc.STEPS][sc.IS_FIRST]) - 1 for e in read_episodes(merged)]
    assert episode_lengths.read(merged) == real == [3 + i % 7 for i in range(20)] * 2
    plain = copy_without_lengths(merged, tmp_path)
    want = downsample.run(plain, str(tmp_path / "want"), transitions=50, seed=2,
                          beam_args=SINGLE)
    monkeypatch.setattr(downsample, "episode_infos", lambda *a, **k: pytest.fail("read pass"))
    got = downsample.run(merged, str(tmp_path / "got"), transitions=50, seed=2,
                         beam_args=SINGLE)
    assert shard_records(got) == shard_records(want)


def test_a_merge_that_drops_marked_episodes_keeps_the_lengths_of_the_rest(built, tmp_path):
    from pipelines import merge
    from rlif_data import invalid

    marked = str(tmp_path / "marked")
    shutil.copytree(built, marked)
    episodes = read_episodes(marked)
    invalid.mark_episode(marked, str(episodes[8][sc.EPISODE_ID]), "dropped object")
    merged = merge.run([marked, built], str(tmp_path / "merged"), invalid_episodes="drop")
    real = [len(e[sc.STEPS][sc.IS_FIRST]) - 1 for e in read_episodes(merged)]
    assert len(real) == 39
    assert episode_lengths.read(merged) == real


def test_a_merge_with_an_input_without_lengths_stores_none(built, tmp_path):
    from pipelines import merge

    rec = write_recording(tmp_path / "rec", [make_episode(i, length=4) for i in range(3)])
    merged = merge.run([built, rec], str(tmp_path / "merged"))
    assert not os.path.exists(lengths_file(merged))
    assert len(read_episodes(merged)) == 23
