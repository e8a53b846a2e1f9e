"""RLDS -> LeRobotDataset (v3.0) -> RLDS, field by field; the export read by the real `lerobot`.

The exported episodes carry two cameras and extra step fields (`schema.INFOS`)
of five dtypes, float64 among them (``infos.<name>`` columns).

The real-package test builds (once, cached) a virtual environment with lerobot,
torch and NumPy 2 (`tests/lerobot_env/venv.py`; ~2 minutes and 5.5 GB the first
time), loads our export there with ``LeRobotDataset(repo_id, root=DIR)`` and
compares what LeRobot hands out with the episodes we exported. Camera frames are
image features (PNG): compared bit-exact.
"""

import dataclasses
import hashlib
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
from tests.cli_helpers import ingest_fails
from tests.fakes.episodes import make_episode, with_noisy_cameras, write_recording
from tests.lerobot_env.venv import ensure_lerobot_venv, venv_python

runner = CliRunner()
SIZE = 24
CAMERAS = ("front", "wrist")
READ_SCRIPT = Path(__file__).parent / "lerobot_env" / "read_export.py"


def camera_episode(i, length):
    """`make_episode` with a relabelled view's fields and two cameras of distinct, noisy frames."""
    episode = with_noisy_cameras(make_episode(i, length=length), CAMERAS, SIZE, seed=100 + i)
    steps = episode[sc.STEPS]
    steps[sc.ENV_REWARD] = np.arange(length + 1, dtype=np.float32) * 0.5
    steps[sc.INCLUDE] = np.arange(length + 1) % 3 != 0
    episode.update({sc.SESSION_ID: "sess-7", sc.OPERATOR: "alice", sc.ROUND: 3,
                    sc.INTERVENTION_MODEL: "random", sc.INTERVENTION_PARAMS: '{"rate": 0.5}',
                    sc.POLICY_VERSION: "policy:1.2.0", sc.START_TIME: "2026-11-30T10:00:00Z",
                    sc.CODE_VERSION: "rlif-data test"})
    return episode


SCHEMA = sc.camera_schema(3, 2, cameras=CAMERAS, size=SIZE, name="unit", derived=True)
EPISODES = [camera_episode(i, 5 + 3 * i) for i in range(3)]
# "index" is also a LeRobot column: its column is infos.index, beside LeRobot's own.
INFOS = {"qpos": sc.ArraySpec((4,), "float64"), "contact": sc.ArraySpec((2, 2), "uint8"),
         "flag": sc.ArraySpec((), "bool"), "index": sc.ArraySpec((), "int32"),
         "vel": sc.ArraySpec((3,), "float16")}
INFO_SCHEMA = dataclasses.replace(SCHEMA, infos=INFOS)


def info_values(rng, n, infos=INFOS):
    """Random values of `infos` for n steps, zero on the final step (the project's rule)."""
    values = {}
    for name, spec in infos.items():
        shape = (n,) + tuple(spec.shape)
        if spec.dtype == "float64":  # values float32 cannot hold
            v = rng.normal(size=shape) * 1e3 + 1e-9
        elif spec.dtype == "bool":
            v = rng.random(shape) < 0.5
        else:
            info = np.iinfo(spec.dtype) if spec.dtype[0] in "iu" else np.finfo(spec.dtype)
            v = (rng.integers(info.min, info.max, shape, dtype=spec.dtype) if spec.dtype[0] in "iu"
                 else rng.normal(size=shape).astype(spec.dtype))
        v[-1] = 0
        values[name] = v
    return values


def info_episode(i, length):
    """`camera_episode` with the extra step fields of `INFOS`."""
    episode = camera_episode(i, length)
    episode[sc.STEPS][sc.INFOS] = info_values(np.random.default_rng(200 + i), length + 1)
    return episode


INFO_EPISODES = [info_episode(i, 5 + 3 * i) for i in range(3)]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("lr") / "rec", INFO_EPISODES, INFO_SCHEMA)


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
    assert info["total_frames"] == sum(len(e[sc.STEPS][sc.IS_FIRST]) for e in INFO_EPISODES)
    assert info["features"]["observation.images.front"]["dtype"] == "image"
    assert info["features"]["infos.qpos"] == {"dtype": "float64", "shape": [4], "names": None}
    assert info["features"]["infos.contact"]["shape"] == [2, 2]
    assert info["features"]["infos.flag"] == {"dtype": "bool", "shape": [1], "names": None}
    assert info["features"]["index"]["dtype"] == "int64"  # LeRobot's own, untouched
    assert info["features"][lay.INTERVENTION_COLUMN] == {"dtype": "bool", "shape": [1],
                                                         "names": None}
    for path in (lay.STATS_PATH, lay.TASKS_PATH, lay.RLIF_META_PATH,
                 "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-000.parquet"):
        assert (export / path).is_file(), path
    assert not list(export.parent.glob(".*partial*"))  # staging renamed away


def test_round_trip_is_exact(export):
    back = list(lr.read_lerobot_episodes(str(export)))
    assert len(back) == len(INFO_EPISODES)
    for a, b in zip(INFO_EPISODES, back):
        assert_same_episode(a, b)  # infos included: same names, dtypes, bits
        assert b[sc.STEPS][sc.INFOS]["qpos"].dtype == np.float64
        assert b[sc.STEPS][sc.INFOS]["flag"].shape == (len(b[sc.STEPS][sc.IS_FIRST]),)
        assert not b[sc.STEPS][sc.INFOS]["qpos"][-1].any()  # the final step: zeros
    assert lr.lerobot_schema(str(export), name="unit") == INFO_SCHEMA


def test_ingest_lerobot_job_gives_the_recording_back(export, recording, tmp_path):
    out = tmp_path / "ingested"
    result = runner.invoke(app, ["ingest-lerobot", "--path", str(export), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with EpisodeReader(str(out)) as reader:
        assert reader.schema.derived and reader.schema.observation == SCHEMA.observation
        assert reader.schema.infos == INFOS
        back = list(reader)
    assert len(back) == 3
    for a, b in zip(read_episodes(recording), back):
        assert_same_episode(a, b)


def test_many_data_files_round_trip(tmp_path):
    out = tmp_path / "split"
    # ~20 KB per episode of frames: a 0 MB limit starts a new file for every episode.
    result = lr.write_lerobot(INFO_EPISODES, str(out), INFO_SCHEMA, data_file_mb=0)
    assert result.data_files == 3
    assert len(list((out / "data").glob("chunk-*/file-*.parquet"))) == 3
    for a, b in zip(INFO_EPISODES, lr.read_lerobot_episodes(str(out))):
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
    source, got = INFO_EPISODES[1], back[1]
    assert sc.INFOS not in got[sc.STEPS]  # infos.* columns need our schema to be read
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
    frames = [e[sc.STEPS] for e in INFO_EPISODES]
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
    np.testing.assert_array_equal(column("index"), np.arange(summary["num_frames"]))
    # The extra step fields: LeRobot declares and loads each infos.<name> column in its dtype
    # and shape (bit-exact as stored); its items are torch.tensor(list): float64 -> float32.
    assert sorted(summary["stored"]) == sorted(f"infos.{k}" for k in INFOS)
    for name, spec in INFOS.items():
        want = stacked(lambda s: s[sc.INFOS][name])
        got = summary["stored"][f"infos.{name}"]
        assert got["feature"]["dtype"] == spec.dtype, name
        assert tuple(got["feature"]["shape"]) == (tuple(spec.shape) or (1,)), name
        stored = np.load(dump / got["file"], allow_pickle=False)
        assert stored.dtype == want.dtype, name
        np.testing.assert_array_equal(stored.reshape(want.shape), want, err_msg=name)
        item = column(f"infos.{name}").reshape(want.shape)
        np.testing.assert_allclose(item, want.astype(np.float64), rtol=1e-6, err_msg=name)
    assert "Array2D" in summary["stored"]["infos.contact"]["hf_feature"]
    assert set(summary["tasks"]) == {"Unit-v0"}
    meta = summary["episode_columns"]
    assert meta["rlif/episode_id"] == [e[sc.EPISODE_ID] for e in INFO_EPISODES]
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


# ---------------------------------------------------------------------------
# Extra step fields (`schema.INFOS`): unchanged output without them, names, refusals.
# ---------------------------------------------------------------------------

# meta/info.json of `test_export_without_infos_is_unchanged`'s export, as written before the
# infos.<name> columns existed (sha256).
NO_INFOS_INFO_SHA256 = "0715b1cf6a7703dec2467dec543ee1ced046323f5b9d2025f1ae113e83a6a77c"


def test_export_without_infos_is_unchanged(tmp_path):
    """Data without extra step fields: the same info.json (bytes), data columns and schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.fakes.episodes import SCHEMA as VECTOR_SCHEMA

    out = tmp_path / "vec"
    lr.write_lerobot([make_episode(i, 4 + i) for i in range(3)], str(out), VECTOR_SCHEMA,
                     source="x")
    info = (out / lay.INFO_PATH).read_bytes()
    assert hashlib.sha256(info).hexdigest() == NO_INFOS_INFO_SHA256, info.decode()
    vec = lambda t, k: pa.list_(t, k)  # noqa: E731
    f32, i64, b = pa.float32(), pa.int64(), pa.bool_()
    want = pa.schema([
        ("observation.state", vec(f32, 3)), ("action", vec(f32, 2)), ("next.reward", f32),
        ("rlds.discount", f32), ("rlds.is_first", b), ("rlds.is_last", b),
        ("rlds.is_terminal", b), ("complementary_info.is_intervention", b),
        ("complementary_info.intervention_start", b),
        ("complementary_info.policy_action", vec(f32, 2)),
        ("complementary_info.expert_action", vec(f32, 2)),
        ("complementary_info.has_expert_action", b), ("complementary_info.source", i64),
        ("complementary_info.timestamp_us", i64), ("next.done", b), ("next.truncated", b),
        ("timestamp", f32), ("frame_index", i64), ("episode_index", i64), ("index", i64),
        ("task_index", i64)])
    got = pq.read_schema(out / "data/chunk-000/file-000.parquet").remove_metadata()
    assert got.equals(want), got
    rlif = json.loads((out / lay.RLIF_META_PATH).read_text())
    assert rlif[sc.SCHEMA_KEY] == VECTOR_SCHEMA.to_json() and sc.INFOS not in rlif[sc.SCHEMA_KEY]
    assert not any(k.startswith("infos.") for k in json.loads(info)["features"])


def test_info_names_never_collide_with_lerobot_columns(tmp_path):
    """Extra fields named like LeRobot's own columns get their own infos.<name> columns."""
    from tests.fakes.episodes import SCHEMA as VECTOR_SCHEMA

    infos = {name: sc.ArraySpec((), "int64") for name in
             ("index", "timestamp", "episode_index", "action", "next.done", "task_index")}
    schema = dataclasses.replace(VECTOR_SCHEMA, infos=infos)
    episodes = []
    for i in range(2):
        episode = make_episode(i, length=4)
        episode[sc.STEPS][sc.INFOS] = info_values(np.random.default_rng(i), 5, infos)
        episodes.append(episode)
    out = tmp_path / "names"
    lr.write_lerobot(episodes, str(out), schema)
    feats = json.loads((out / lay.INFO_PATH).read_text())["features"]
    assert feats["action"]["dtype"] == "float32" and feats["index"]["dtype"] == "int64"
    assert {f"infos.{k}" for k in infos} <= set(feats)
    back = list(lr.read_lerobot_episodes(str(out)))
    for a, b in zip(episodes, back):
        assert_same_episode(a, b)
    # LeRobot's own bookkeeping keeps its values
    import pyarrow.parquet as pq
    table = pq.read_table(out / "data/chunk-000/file-000.parquet")
    np.testing.assert_array_equal(table.column("index").to_numpy(), np.arange(10))
    np.testing.assert_array_equal(table.column("episode_index").to_numpy(), np.repeat([0, 1], 5))


def test_unsafe_column_names_are_refused():
    with pytest.raises(lay.LeRobotFormatError, match="cannot be a LeRobot column name"):
        lay.info_column("a/b", sc.ArraySpec((1,)))
    with pytest.raises(ValueError, match="no '/'"):  # the schema refuses them first
        dataclasses.replace(INFO_SCHEMA, infos={"a/b": sc.ArraySpec((1,))})
    layout = lay.export_layout(INFO_SCHEMA)
    twice = dataclasses.replace(layout, columns=layout.columns + (lay.BOOKKEEPING[3],))
    with pytest.raises(lay.LeRobotFormatError, match=r"\['index'\] would be written twice"):
        lay.all_columns(twice)


def _replace_column(path, name, array):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    i = table.column_names.index(name)
    pq.write_table(table.set_column(i, name, array), path)


def _ingest_fails(path, tmp_path, *needles):
    ingest_fails("ingest-lerobot", path, tmp_path / "back", *needles)


def test_info_column_of_another_dtype_is_refused(export, tmp_path):
    import pyarrow as pa

    broken = tmp_path / "dtype"
    shutil.copytree(export, broken)
    path = broken / "data/chunk-000/file-000.parquet"
    n = json.loads((export / lay.INFO_PATH).read_text())["total_frames"]
    values = pa.array(np.zeros(n * 4, np.float32))  # float64 declared
    _replace_column(path, "infos.qpos", pa.FixedSizeListArray.from_arrays(values, 4))
    _ingest_fails(broken, tmp_path, "'infos.qpos' holds float", "declares float64 shape [4]")


def test_info_column_of_another_shape_is_refused(export, tmp_path):
    import pyarrow as pa

    broken = tmp_path / "shape"
    shutil.copytree(export, broken)
    path = broken / "data/chunk-000/file-000.parquet"
    n = json.loads((export / lay.INFO_PATH).read_text())["total_frames"]
    values = pa.array(np.zeros(n * 3, np.float64))
    _replace_column(path, "infos.qpos", pa.FixedSizeListArray.from_arrays(values, 3))
    _ingest_fails(broken, tmp_path, "'infos.qpos' holds double x 3 per frame", "shape [4]")


def test_info_feature_declared_unlike_the_schema_is_refused(export, tmp_path):
    broken = tmp_path / "declared"
    shutil.copytree(export, broken)
    info = json.loads((broken / lay.INFO_PATH).read_text())
    info["features"]["infos.contact"]["shape"] = [4]
    (broken / lay.INFO_PATH).write_text(json.dumps(info))
    _ingest_fails(broken, tmp_path, "feature 'infos.contact' is declared ('uint8', [4])",
                  "uint8 [2, 2]")
