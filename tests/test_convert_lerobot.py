"""RLDS -> LeRobotDataset (v3.0) -> RLDS, field by field; the export read by the real `lerobot`.

The real-package test builds (once, cached) a virtual environment with lerobot,
torch and NumPy 2 (`tests/lerobot_env/venv.py`; ~2 minutes and 5.5 GB the first
time), loads our export there with ``LeRobotDataset(repo_id, root=DIR)`` and
compares what LeRobot hands out with the episodes we exported. Camera frames are
image features (PNG): compared bit-exact.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import episodes as ep
from rlif_data import schema as sc
from rlif_data.convert import lerobot as lr
from rlif_data.convert import lerobot_layout as lay
from rlif_data.recording.reader import EpisodeReader, read_episodes
from tests.fakes.episodes import make_episode, write_recording
from tests.lerobot_env.venv import ensure_lerobot_venv, venv_python

runner = CliRunner()
SIZE = 24
CAMERAS = ("front", "wrist")
READ_SCRIPT = Path(__file__).parent / "lerobot_env" / "read_export.py"


def camera_episode(i, length):
    """`make_episode` with a relabelled view's fields and two cameras of distinct, noisy frames."""
    episode = make_episode(i, length=length)
    steps = episode[sc.STEPS]
    rng = np.random.default_rng(100 + i)
    steps[sc.OBSERVATION] = {
        sc.STATE_KEY: steps[sc.OBSERVATION],
        **{cam: rng.integers(0, 256, (length + 1, SIZE, SIZE, 3), dtype=np.uint8)
           for cam in CAMERAS}}
    steps[sc.ENV_REWARD] = np.arange(length + 1, dtype=np.float32) * 0.5
    steps[sc.INCLUDE] = np.arange(length + 1) % 3 != 0
    episode.update({sc.SESSION_ID: "sess-7", sc.OPERATOR: "alice", sc.ROUND: 3,
                    sc.INTERVENTION_MODEL: "random", sc.INTERVENTION_PARAMS: '{"rate": 0.5}',
                    sc.POLICY_VERSION: "policy:1.2.0", sc.START_TIME: "2026-11-30T10:00:00Z",
                    sc.CODE_VERSION: "rlif-data test"})
    return episode


SCHEMA = sc.camera_schema(3, 2, cameras=CAMERAS, size=SIZE, name="unit", derived=True)
EPISODES = [camera_episode(i, 5 + 3 * i) for i in range(3)]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("lr") / "rec", EPISODES, SCHEMA)


@pytest.fixture(scope="module")
def export(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("lr-out") / "lerobot"
    result = runner.invoke(app, ["convert", recording, "--to", "lerobot", "--out", str(out),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert "3 episodes" in result.output and "at 10 fps" in result.output
    return out


def assert_same_episode(a, b):
    """Every step field and metadata field equal, dtypes included (frames bit-exact)."""
    steps_a, steps_b = a[sc.STEPS], b[sc.STEPS]
    assert sorted(steps_a) == sorted(steps_b)
    for field, value in steps_a.items():
        if isinstance(value, dict):
            assert sorted(value) == sorted(steps_b[field])
            for key, leaf in value.items():
                np.testing.assert_array_equal(steps_b[field][key], leaf, err_msg=key)
                assert steps_b[field][key].dtype == np.asarray(leaf).dtype, key
        else:
            np.testing.assert_array_equal(steps_b[field], np.asarray(value), err_msg=field)
    for field in sc.EPISODE_METADATA_FIELDS:
        assert b[field] == a[field], field


def test_export_layout_on_disk(export):
    info = json.loads((export / lay.INFO_PATH).read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 3
    assert info["total_frames"] == sum(len(e[sc.STEPS][sc.IS_FIRST]) for e in EPISODES)
    assert info["features"]["observation.images.front"]["dtype"] == "image"
    assert info["features"][lay.INTERVENTION_COLUMN] == {"dtype": "bool", "shape": [1],
                                                         "names": None}
    for path in (lay.STATS_PATH, lay.TASKS_PATH, lay.RLIF_META_PATH,
                 "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-000.parquet"):
        assert (export / path).is_file(), path
    assert not list(export.parent.glob(".*partial*"))  # staging renamed away


def test_round_trip_is_exact(export):
    back = list(lr.read_lerobot_episodes(str(export)))
    assert len(back) == len(EPISODES)
    for a, b in zip(EPISODES, back):
        assert_same_episode(a, b)


def test_ingest_lerobot_job_gives_the_recording_back(export, recording, tmp_path):
    out = tmp_path / "ingested"
    result = runner.invoke(app, ["ingest-lerobot", "--path", str(export), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with EpisodeReader(str(out)) as reader:
        assert reader.schema.derived and reader.schema.observation == SCHEMA.observation
        back = list(reader)
    for a, b in zip(read_episodes(recording), back):
        assert_same_episode(a, b)


def test_many_data_files_round_trip(tmp_path):
    out = tmp_path / "split"
    # ~20 KB per episode of frames: a 0 MB limit starts a new file for every episode.
    result = lr.write_lerobot(EPISODES, str(out), SCHEMA, data_file_mb=0)
    assert result.data_files == 3
    assert len(list((out / "data").glob("chunk-*/file-*.parquet"))) == 3
    for a, b in zip(EPISODES, lr.read_lerobot_episodes(str(out))):
        assert_same_episode(a, b)


def test_frames_done_flags_and_fps():
    episode = make_episode(1, length=4)  # odd: terminated
    layout = lay.export_layout(sc.vector_schema(3, 2))
    frames = lay.episode_frames(episode, layout, episode_index=2, first_index=40,
                                task_index=0, fps=10)
    np.testing.assert_array_equal(frames[lay.NEXT_DONE], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(frames[lay.NEXT_TRUNCATED], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(frames[lay.INDEX], [40, 41, 42, 43, 44])
    np.testing.assert_allclose(frames[lay.TIMESTAMP], [0, 0.1, 0.2, 0.3, 0.4], rtol=1e-6)
    truncated = lay.episode_frames(make_episode(2, length=4), layout, episode_index=0,
                                   first_index=0, task_index=0, fps=10)
    np.testing.assert_array_equal(truncated[lay.NEXT_TRUNCATED], [0, 0, 0, 1, 0])
    assert lay.infer_fps(episode[sc.STEPS][sc.TIMESTAMP_US]) == 10  # 0.1 s steps
    assert lay.infer_fps(np.zeros(5, np.int64)) == lay.DEFAULT_FPS


def test_aggregated_stats_match_the_whole_column():
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(n, 3)) for n in (5, 9, 2)]
    agg = lay.aggregate_stats([lay.feature_stats(p) for p in parts])
    whole = np.concatenate(parts)
    np.testing.assert_allclose(agg["mean"], whole.mean(0))
    np.testing.assert_allclose(agg["std"], whole.std(0))
    np.testing.assert_array_equal(agg["min"], whole.min(0))
    assert agg["count"][0] == 16


def test_foreign_lerobot_dataset_by_feature_names(export, tmp_path):
    """A LeRobot dataset without our metadata: read by LeRobot's own feature names."""
    foreign = tmp_path / "foreign"
    shutil.copytree(export, foreign)
    (foreign / lay.RLIF_META_PATH).unlink()
    back = list(lr.read_lerobot_episodes(str(foreign)))
    source, got = EPISODES[1], back[1]
    n = len(source[sc.STEPS][sc.IS_FIRST])
    t = n - 1
    steps = got[sc.STEPS]
    assert len(steps[sc.IS_FIRST]) == n  # one step per frame
    for cam in CAMERAS:
        np.testing.assert_array_equal(steps[sc.OBSERVATION][cam],
                                      source[sc.STEPS][sc.OBSERVATION][cam])
    np.testing.assert_array_equal(steps[sc.ACTION][:t], source[sc.STEPS][sc.ACTION][:t])
    np.testing.assert_array_equal(steps[sc.REWARD][:t], source[sc.STEPS][sc.REWARD][:t])
    np.testing.assert_array_equal(steps[sc.INTERVENTION], source[sc.STEPS][sc.INTERVENTION])
    flags = source[sc.STEPS][sc.INTERVENTION][:t]
    np.testing.assert_array_equal(steps[sc.SOURCE][:t],
                                  np.where(flags, int(sc.Source.HUMAN), int(sc.Source.POLICY)))
    # next.done sits on the last transition of this terminated episode
    assert bool(steps[sc.IS_TERMINAL][-1]) and steps[sc.DISCOUNT][t - 1] == 0.0
    assert got[sc.EPISODE_ID] == "foreign/1" and got[sc.OPERATOR] == lay.FOREIGN_OPERATOR
    assert got[sc.INTERVENTION_MODEL] == "human"
    np.testing.assert_array_equal(steps[sc.TIMESTAMP_US][:t], np.arange(t) * 100_000)


# ---------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written.
# ---------------------------------------------------------------------------


def test_missing_info_json_is_one_clear_line(export, tmp_path):
    broken = tmp_path / "no-info"
    shutil.copytree(export, broken)
    (broken / lay.INFO_PATH).unlink()
    out = tmp_path / "ds"
    result = runner.invoke(app, ["ingest-lerobot", "--path", str(broken), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "missing meta/info.json" in lines[0], result.output
    assert not out.exists()


def test_video_features_are_refused_with_the_fix(export, tmp_path):
    video = tmp_path / "video"
    shutil.copytree(export, video)
    (video / lay.RLIF_META_PATH).unlink()
    info = json.loads((video / lay.INFO_PATH).read_text())
    info["features"]["observation.images.front"]["dtype"] = "video"
    (video / lay.INFO_PATH).write_text(json.dumps(info))
    with pytest.raises(lay.LeRobotFormatError, match="stored as videos.*image features"):
        lr.read_lerobot_episodes(str(video))


def test_frame_count_disagreeing_with_the_episodes_table(export, tmp_path):
    import pyarrow.parquet as pq

    broken = tmp_path / "short"
    shutil.copytree(export, broken)
    path = broken / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)  # the last episode loses a frame
    episodes = lr.read_lerobot_episodes(str(broken))
    next(episodes), next(episodes)
    with pytest.raises(lay.LeRobotFormatError, match="episode 2: 11 frames.*says 12"):
        next(episodes)


def test_convert_refuses_an_existing_out_and_keeps_it(recording, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("prior data")
    result = runner.invoke(app, ["convert", recording, "--to", "lerobot", "--out", str(out)])
    assert result.exit_code == 2 and "exists" in result.output
    assert (out / "keep.txt").read_text() == "prior data" and len(list(out.iterdir())) == 1


def test_convert_of_unsupported_observations_leaves_nothing(tmp_path):
    episode = make_episode(0, length=3)
    episode[sc.STEPS][sc.OBSERVATION] = np.zeros((4, 2, 2), np.float32)
    rec = write_recording(tmp_path / "rec", [episode],
                          sc.EpisodeSchema(sc.ArraySpec((2, 2)), 2, "unit"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", rec, "--to", "lerobot", "--out", str(out)])
    assert result.exit_code == 2 and "shape (2, 2)" in result.output, result.output
    assert not out.exists() and os.listdir(tmp_path) == ["rec"]


def test_unknown_target(recording, tmp_path):
    result = runner.invoke(app, ["convert", recording, "--to", "rlds", "--out",
                                 str(tmp_path / "x")])
    assert result.exit_code == 2 and "lerobot, minari" in result.output


# ---------------------------------------------------------------------------
# The real lerobot package reads our export.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lerobot_python():
    """The interpreter of the cached LeRobot environment (built on first use)."""
    return venv_python(ensure_lerobot_venv())


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first run builds the LeRobot environment (~4 min on 2 cores)
def test_real_lerobot_loads_the_export(export, lerobot_python, tmp_path):
    dump = tmp_path / "dump"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf"), HF_LEROBOT_HOME=str(tmp_path / "hf-lerobot"),
               PYTHONPATH="")
    done = subprocess.run([str(lerobot_python), str(READ_SCRIPT), str(export), str(dump)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((dump / "summary.json").read_text())

    def column(name):
        return np.load(dump / summary["files"][name], allow_pickle=False)

    assert summary["codebase_version"] == "v3.0" and summary["fps"] == 10
    assert summary["num_episodes"] == 3
    frames = [e[sc.STEPS] for e in EPISODES]
    assert summary["num_frames"] == sum(len(s[sc.IS_FIRST]) for s in frames)

    def stacked(get):
        return np.concatenate([np.asarray(get(s)) for s in frames])

    for cam in CAMERAS:  # images: bit-exact after LeRobot's x / 255
        np.testing.assert_array_equal(column(f"observation.images.{cam}"),
                                      stacked(lambda s: s[sc.OBSERVATION][cam]))
    np.testing.assert_array_equal(column("observation.state"),
                                  stacked(lambda s: s[sc.OBSERVATION][sc.STATE_KEY]))
    np.testing.assert_array_equal(column("action"), stacked(lambda s: s[sc.ACTION]))
    np.testing.assert_array_equal(column("next.reward").reshape(-1),
                                  stacked(lambda s: s[sc.REWARD]))
    for field, name in [(sc.INTERVENTION, lay.INTERVENTION_COLUMN),
                        (sc.POLICY_ACTION, "complementary_info.policy_action"),
                        (sc.EXPERT_ACTION, "complementary_info.expert_action"),
                        (sc.SOURCE, "complementary_info.source"),
                        (sc.TIMESTAMP_US, "complementary_info.timestamp_us"),
                        (sc.INCLUDE, "complementary_info.include"),
                        (sc.IS_LAST, "rlds.is_last"), (sc.DISCOUNT, "rlds.discount")]:
        np.testing.assert_array_equal(column(name).reshape(stacked(lambda s: s[field]).shape),
                                      stacked(lambda s: s[field]), err_msg=name)
    np.testing.assert_array_equal(column("episode_index"),
                                  np.repeat([0, 1, 2], [len(s[sc.IS_FIRST]) for s in frames]))
    assert set(summary["tasks"]) == {"Unit-v0"}
    meta = summary["episode_columns"]
    assert meta["rlif/episode_id"] == [e[sc.EPISODE_ID] for e in EPISODES]
    assert meta["rlif/round"] == [3, 3, 3] and meta["rlif/operator"] == ["alice"] * 3
    assert "observation.images.front" in summary["stats_keys"]


def test_episode_metadata_defaults_survive(tmp_path):
    """Episodes with empty metadata come back with the same defaults (not None)."""
    episode = make_episode(2, length=3)
    out = tmp_path / "plain"
    lr.write_lerobot([episode], str(out), sc.vector_schema(3, 2, "unit"))
    (back,) = lr.read_lerobot_episodes(str(out))
    assert {k: back[k] for k in sc.EPISODE_METADATA_FIELDS} == {
        **ep.default_episode_metadata(),
        **{k: episode[k] for k in sc.EPISODE_METADATA_FIELDS}}
