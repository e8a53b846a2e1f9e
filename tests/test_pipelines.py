"""Beam jobs end to end on the DirectRunner, writing real TFDS array_record datasets."""

import json
import os

import numpy as np
import pytest

from pipelines import downsample, ingest_d4rl, merge, output, relabel
from rlif_data import errors
from rlif_data import relabel as rl
from rlif_data import schema as sc
from rlif_data.recording.reader import EpisodeReader, read_episodes
from rlif_data.sources.d4rl_hdf5 import read_d4rl_episodes
from tests.fakes.d4rl_files import write_d4rl_file
from tests.fakes.episodes import make_episode, write_recording

MULTI = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
# In-process runner for the cheaper cases: same graph, no worker start-up.
SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


def lineage(directory):
    with open(os.path.join(directory, "metadata.json")) as f:
        return json.load(f)["lineage"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec") / "round-0"
    ops = ["alice", "bob", "alice", "carol"] * 5
    return write_recording(d, [make_episode(i, length=4 + i % 7, operator=ops[i])
                               for i in range(20)])


def test_relabel_multiprocess_matches_the_pure_rule(recording, tmp_path):
    out = str(tmp_path / "paper")
    relabel.main(["--input", recording, "--out", out, "--view", "paper", *MULTI])
    got = read_episodes(out)
    src = read_episodes(recording)
    assert [e[sc.EPISODE_ID] for e in got] == [e[sc.EPISODE_ID] for e in src]
    for a, b in zip(got, src):
        want = rl.relabel_episode(b, "paper")[sc.STEPS]
        for field in (sc.REWARD, sc.ENV_REWARD, sc.INCLUDE, sc.ACTION, sc.DISCOUNT, sc.OBSERVATION):
            np.testing.assert_array_equal(a[sc.STEPS][field], want[field], err_msg=field)
    assert EpisodeReader(out).schema.derived
    info = lineage(out)
    assert info["job"] == "relabel" and info["params"] == {"view": "paper"}
    assert info["inputs"][0]["path"] == os.path.abspath(recording)
    assert info["inputs"][0]["episodes"] == 20


def test_relabel_output_is_a_tfds_dataset(recording, tmp_path):
    import tensorflow_datasets as tfds

    out = str(tmp_path / "official")
    relabel.run(recording, out, "official", SINGLE)
    builder = tfds.builder_from_directory(out)
    assert builder.info.file_format.value == "array_record"
    assert builder.info.splits["train"].num_examples == 20
    assert sc.INCLUDE in builder.info.features[sc.STEPS].feature.keys()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(output.STAGING_PREFIX)]


def test_existing_output_is_never_overwritten(recording, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(output.OutputExistsError, match="already exists"):
        relabel.run(recording, str(out), "paper", SINGLE)
    assert (out / "keep.txt").read_text() == "mine"


def test_relabel_refuses_derived_input_and_unknown_view(recording, tmp_path):
    out = str(tmp_path / "a")
    relabel.run(recording, out, "paper", SINGLE)
    with pytest.raises(ValueError, match="already a relabelled dataset"):
        relabel.run(out, str(tmp_path / "b"), "paper", SINGLE)
    with pytest.raises(ValueError, match="unknown relabel view"):
        relabel.run(recording, str(tmp_path / "c"), "nope", SINGLE)


def test_empty_input_is_refused(tmp_path):
    empty = write_recording(tmp_path / "empty", [])
    with pytest.raises(ValueError, match="holds no episodes"):
        relabel.run(empty, str(tmp_path / "out"), "paper", SINGLE)
    assert not (tmp_path / "out").exists()


def test_corrupt_input_shard_fails_the_job_naming_it_and_leaves_nothing(recording, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(recording, broken)
    victim = sorted(n for n in os.listdir(broken) if "array_record" in n)[7]
    (broken / victim).write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    with pytest.raises(output.PipelineFailedError, match=f"episode 7.*{victim}"):
        relabel.run(str(broken), str(out), "paper", SINGLE)
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(output.STAGING_PREFIX)]


def test_ingest_d4rl_multiprocess(tmp_path):
    fake = write_d4rl_file(tmp_path / "hopper_medium-v2.hdf5", episode_lengths=(6, 4, 9, 3),
                           obs_dim=11, act_dim=3, last_episode_cut=True)
    out = str(tmp_path / "ds")
    ingest_d4rl.main(["--path", str(fake.path), "--out", out, "--env-id", "Hopper-v5", *MULTI])
    got = read_episodes(out)
    want = list(read_d4rl_episodes(fake.path, env_id="Hopper-v5"))
    assert len(got) == len(want) == 4
    for a, b in zip(got, want):
        assert a[sc.EPISODE_ID] == b[sc.EPISODE_ID] and a[sc.ENV_ID] == "Hopper-v5"
        for field, value in b[sc.STEPS].items():
            if isinstance(value, dict):  # the extra step fields, steps/infos (format 1.1)
                for key, leaf in value.items():
                    np.testing.assert_array_equal(a[sc.STEPS][field][key], leaf, err_msg=key)
            else:
                np.testing.assert_array_equal(a[sc.STEPS][field], value, err_msg=field)
    assert EpisodeReader(out).schema.name == "hopper_medium_v2"
    info = lineage(out)
    assert info["inputs"][0]["episodes"] == 4 and len(info["inputs"][0]["sha256"]) == 64


def test_ingest_d4rl_nan_reward_fails_naming_file_and_episode(tmp_path):
    fake = write_d4rl_file(tmp_path / "bad.hdf5", episode_lengths=(4, 4, 4), nan_reward_row=6)
    out = tmp_path / "ds"
    with pytest.raises(output.PipelineFailedError, match=r"bad\.hdf5.*rewards.*row 6.*episode 1"):
        ingest_d4rl.run(fake.path, str(out), beam_args=SINGLE)
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(output.STAGING_PREFIX)]


def test_ingest_d4rl_missing_key_fails_before_the_pipeline(tmp_path):
    fake = write_d4rl_file(tmp_path / "bad.hdf5", missing_key="actions")
    with pytest.raises(errors.SchemaError, match="actions"):
        ingest_d4rl.run(fake.path, str(tmp_path / "ds"), beam_args=SINGLE)


def test_downsample_by_count_and_stratified(recording, tmp_path):
    out = str(tmp_path / "small")
    downsample.main(["--input", recording, "--out", out, "--episodes", "8", "--seed", "2",
                     "--stratify", "operator", *SINGLE])
    got = read_episodes(out)
    assert len(got) == 8
    ops = [e[sc.OPERATOR] for e in got]
    assert ops.count("alice") == 4 and ops.count("bob") == 2 and ops.count("carol") == 2
    params = lineage(out)["params"]
    src = read_episodes(recording)
    assert [e[sc.EPISODE_ID] for e in got] == [src[i][sc.EPISODE_ID] for i in params["indices"]]
    # Same seed, same subset.
    out2 = str(tmp_path / "small2")
    downsample.run(recording, out2, episodes=8, seed=2, stratify="operator", beam_args=SINGLE)
    assert lineage(out2)["params"]["indices"] == params["indices"]


def test_downsample_by_transitions(recording, tmp_path):
    out = str(tmp_path / "small")
    downsample.run(recording, out, transitions=40, seed=0, beam_args=SINGLE)
    got = read_episodes(out)
    total = sum(len(e[sc.STEPS][sc.IS_FIRST]) - 1 for e in got)
    assert total <= 40 and total == lineage(out)["params"]["selected_transitions"]


def test_merge_links_shards_and_keeps_order(recording, tmp_path):
    second = write_recording(tmp_path / "round-1", [make_episode(100 + i) for i in range(3)])
    out = str(tmp_path / "merged")
    merge.main(["--input", recording, "--input", second, "--out", out])
    got = read_episodes(out)
    assert [e[sc.EPISODE_ID] for e in got] == (
        [f"s/{i}" for i in range(20)] + [f"s/{100 + i}" for i in range(3)])
    shards = [n for n in os.listdir(out) if "array_record" in n]
    assert len(shards) == 23 and all(os.stat(os.path.join(out, n)).st_nlink == 2 for n in shards)
    assert lineage(out)["params"] == {"view": None, "linked_shards": 23, "copied_shards": 0}


def test_merge_refuses_other_schema(recording, tmp_path):
    other = write_recording(tmp_path / "other", [make_episode(0, obs_dim=4)],
                            schema=sc.vector_schema(4, 2, name="unit"))
    with pytest.raises(errors.SchemaMismatchError, match="cannot merge"):
        merge.run([recording, other], str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_merge_records_the_shared_view_and_refuses_mixed_views(recording, tmp_path):
    paper_a = relabel.run(recording, str(tmp_path / "paper-a"), "paper", SINGLE)
    second = write_recording(tmp_path / "round-1", [make_episode(200 + i) for i in range(2)])
    paper_b = relabel.run(second, str(tmp_path / "paper-b"), "paper", SINGLE)
    hg = relabel.run(second, str(tmp_path / "hg"), "hg-dagger", SINGLE)
    merged = merge.run([paper_a, paper_b], str(tmp_path / "merged"))
    assert lineage(merged)["params"]["view"] == "paper"
    for inputs, words in (([paper_a, hg], "paper view) with"), ([recording, hg], "raw view")):
        with pytest.raises(errors.SchemaMismatchError, match="relabel the raw recordings") as info:
            merge.run(inputs, str(tmp_path / "mixed"))
        assert words in str(info.value) or "hg-dagger view" in str(info.value)
        assert not (tmp_path / "mixed").exists()


def test_cli_runs_jobs_with_beam_flags(recording, tmp_path):
    from typer.testing import CliRunner

    from rlif_cli.main import app

    out = str(tmp_path / "hg")
    result = CliRunner().invoke(app, ["relabel", "--input", recording, "--out", out,
                                      "--view", "hg-dagger", *SINGLE])
    assert result.exit_code == 0, result.output
    assert all(np.array_equal(e[sc.STEPS][sc.INCLUDE][:-1], e[sc.STEPS][sc.INTERVENTION][:-1])
               for e in read_episodes(out))
    result = CliRunner().invoke(app, ["relabel", "--input", recording, "--out", out, *SINGLE])
    assert result.exit_code == 2 and "already exists" in result.output


def test_ingest_minari_dataset_collected_by_minari(tmp_path):
    from rlif_data.sources.minari_reader import read_minari_episodes
    from tests.fakes.minari_data import DATASET_ID, NUM_EPISODES, create_minari_dataset

    create_minari_dataset(tmp_path / "root")
    path = str(tmp_path / "root" / DATASET_ID)
    out = str(tmp_path / "ds")
    from pipelines import ingest_minari

    ingest_minari.run(path, out, beam_args=SINGLE)
    got = read_episodes(out)
    want = list(read_minari_episodes(path))
    assert len(got) == NUM_EPISODES
    for a, b in zip(got, want):
        assert a[sc.EPISODE_ID] == b[sc.EPISODE_ID]
        np.testing.assert_array_equal(a[sc.STEPS][sc.ACTION], b[sc.STEPS][sc.ACTION])
        np.testing.assert_array_equal(a[sc.STEPS][sc.IS_TERMINAL], b[sc.STEPS][sc.IS_TERMINAL])
    assert lineage(out)["job"] == "ingest_minari"


def test_ingest_human_sessions_and_demos_in_order(recording, tmp_path):
    from pipelines import ingest_human

    demo = tmp_path / "demo.npz"
    rng = np.random.default_rng(0)
    np.savez(demo, observations=rng.normal(size=(5, 3)).astype(np.float32),
             actions=rng.uniform(-1, 1, (4, 2)).astype(np.float32),
             interventions=np.array([0, 1, 1, 0], bool))
    out = str(tmp_path / "human")
    ingest_human.main(["--sessions", recording, "--demos", str(demo), "--operator", "dana",
                       "--out", out, *MULTI])
    got = read_episodes(out)
    assert len(got) == 21
    assert [e[sc.EPISODE_ID] for e in got[:20]] == [f"s/{i}" for i in range(20)]
    assert got[20][sc.OPERATOR] == "dana"
    np.testing.assert_array_equal(got[20][sc.STEPS][sc.INTERVENTION][:4], [0, 1, 1, 0])
    # The human relabel path works on them unchanged.
    relabel.run(out, str(tmp_path / "rl"), "paper", SINGLE)
    assert read_episodes(str(tmp_path / "rl"))[20][sc.STEPS][sc.REWARD][0] == -1.0


def test_ingest_human_refuses_mixed_schemas(recording, tmp_path):
    from pipelines import ingest_human

    demo = tmp_path / "demo.npz"
    np.savez(demo, observations=np.zeros((3, 7), np.float32), actions=np.zeros((2, 2), np.float32))
    with pytest.raises(errors.SchemaMismatchError, match="cannot ingest"):
        ingest_human.run(str(tmp_path / "o"), sessions=[recording], demos=[str(demo)],
                         beam_args=SINGLE)
