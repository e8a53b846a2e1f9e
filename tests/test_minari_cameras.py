"""Camera recordings through Minari and back: RLDS -> `convert --to minari` -> real
`minari.load_dataset` -> `ingest-minari` -> RLDS, frames bit-exact; extra step fields too.

Also pins down why rlif-data writes the frames itself: Minari 0.5.3's own
writer JPEG-encodes uint8 frames (lossy), while its reader decodes PNG as well.
"""

import pathlib
import shutil

import h5py
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import schema as sc
from rlif_data.convert import minari_frames, minari_writer
from rlif_data.recording.reader import EpisodeReader, read_episodes
from rlif_data.sources import minari_reader
from rlif_data.sources.minari_steps import MinariFormatError
from tests.fakes.episodes import make_episode, with_noisy_cameras, write_recording
from tests.test_convert_lerobot import assert_same_episode
from tests.test_convert_minari import ingest_minari_fails

runner = CliRunner()
CAMERAS = ("front", "wrist")
SIZE = 32  # the smallest frame Minari takes for an image
DATASET_ID = "rlif/cams-v0"


def camera_episode(i, length=10, size=SIZE):
    """Two cameras of noisy frames (worst case for JPEG), interventions, every metadata field."""
    episode = with_noisy_cameras(make_episode(i, length=length), CAMERAS, size, seed=50 + i)
    episode.update({sc.SESSION_ID: "sess-9", sc.OPERATOR: "dora", sc.ROUND: 4,
                    sc.INTERVENTION_MODEL: "human", sc.INTERVENTION_PARAMS: '{"device": "x"}',
                    sc.POLICY_VERSION: "p:4.0.0", sc.START_TIME: "2026-12-01T10:00:00Z",
                    sc.CODE_VERSION: "rlif-data test", sc.ENV_ID: ""})
    return episode


SCHEMA = sc.camera_schema(3, 2, cameras=CAMERAS, size=SIZE, name="cams")
EPISODES = [camera_episode(i) for i in range(2)]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("cams") / "rec", EPISODES, SCHEMA)


@pytest.fixture(scope="module")
def minari_root(recording, tmp_path_factory):
    """A MINARI_DATASETS_PATH root holding the export at <root>/<dataset id>."""
    root = tmp_path_factory.mktemp("minari-root")
    out = root / DATASET_ID
    result = runner.invoke(app, ["convert", recording, "--to", "minari", "--out", str(out),
                                 "--dataset-id", DATASET_ID, "--quiet"])
    assert result.exit_code == 0, result.output
    return root


def test_minari_load_dataset_reads_the_frames_bit_exact(minari_root, monkeypatch):
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    dataset = minari.load_dataset(DATASET_ID)
    space = dataset.observation_space
    assert isinstance(space, gym.spaces.Dict)
    for cam in CAMERAS:
        assert space[cam] == gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
    assert dataset.total_episodes == 2 and dataset.total_steps == 20
    for source, got in zip(EPISODES, dataset.iterate_episodes()):
        steps = source[sc.STEPS]
        for cam in CAMERAS:
            assert got.observations[cam].dtype == np.uint8
            np.testing.assert_array_equal(got.observations[cam], steps[sc.OBSERVATION][cam])
        np.testing.assert_array_equal(got.observations[sc.STATE_KEY],
                                      steps[sc.OBSERVATION][sc.STATE_KEY])
        np.testing.assert_array_equal(got.infos[sc.INTERVENTION], steps[sc.INTERVENTION])
    (meta,) = dataset.storage.get_episode_metadata([1])
    assert meta["rlif"]["operator"] == "dora" and meta["rlif"]["round"] == 4


def test_frames_are_stored_as_png_in_minaris_image_layout(minari_root):
    with h5py.File(minari_root / DATASET_ID / "data" / "main_data.hdf5") as f:
        front = f["episode_0"]["observations"]["front"]
        assert len(front) == 11 and h5py.check_vlen_dtype(front.dtype) == np.uint8
        assert bytes(front[0][:8]) == b"\x89PNG\r\n\x1a\n"


def test_ingest_minari_gives_the_recording_back_field_by_field(minari_root, recording,
                                                               tmp_path):
    out = tmp_path / "back"
    result = runner.invoke(app, ["ingest-minari", "--path", str(minari_root / DATASET_ID),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    with EpisodeReader(str(out)) as reader:
        assert reader.schema.observation["front"] == sc.ImageSpec(SIZE, SIZE, 3)
        back = list(reader)
    for a, b in zip(read_episodes(recording), back):
        assert_same_episode(a, b)  # frames bit-exact, intervention fields, episode metadata


def test_minaris_own_writer_is_lossy_for_uint8_frames(tmp_path):
    """The claim the export works around, measured with Minari's own storage writer."""
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    frames = EPISODES[0][sc.STEPS][sc.OBSERVATION]["front"]
    space = gym.spaces.Box(0, 255, frames.shape[1:], np.uint8)
    storage = MinariStorage.new(tmp_path / "data", observation_space=space,
                                action_space=gym.spaces.Box(-1, 1, (2,), np.float32),
                                data_format="hdf5")
    t = len(frames) - 1
    storage.update_episodes([EpisodeBuffer(
        id=0, observations=frames, actions=np.zeros((t, 2), np.float32),
        rewards=np.zeros(t), terminations=np.zeros(t, bool), truncations=np.zeros(t, bool))])
    (episode,) = storage.get_episodes([0])
    error = np.abs(episode["observations"].astype(int) - frames.astype(int)).max()
    assert error > 0  # JPEG; rlif-data's PNG path above is exact


def test_minaris_own_jpeg_datasets_ingest_with_minaris_pixels(tmp_path):
    """A camera dataset written by Minari itself (JPEG): ingest-minari gives what minari reads."""
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    space = gym.spaces.Dict({"cam": gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8),
                             "state": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)})
    storage = MinariStorage.new(tmp_path / "data", observation_space=space,
                                action_space=gym.spaces.Box(-1, 1, (2,), np.float32),
                                data_format="hdf5")
    storage.update_metadata({"dataset_id": "test/jpeg-v0", "minari_version": minari.__version__})
    rng = np.random.default_rng(3)
    for i in range(2):
        storage.update_episodes([EpisodeBuffer(
            id=i, observations={"cam": rng.integers(0, 256, (5, SIZE, SIZE, 3), np.uint8),
                                "state": rng.normal(size=(5, 3)).astype(np.float32)},
            actions=np.zeros((4, 2), np.float32), rewards=np.ones(4),
            terminations=np.zeros(4, bool), truncations=np.eye(4, dtype=bool)[-1])])
    want = list(minari.MinariDataset(tmp_path / "data").iterate_episodes())
    got = list(minari_reader.read_minari_episodes(tmp_path))
    for a, b in zip(want, got):
        np.testing.assert_array_equal(b[sc.STEPS][sc.OBSERVATION]["cam"], a.observations["cam"])


def test_small_frames_are_stored_raw_and_round_trip(tmp_path):
    """Under 32 px Minari takes no Box for an image: the export stores the pixels raw."""
    schema = sc.camera_schema(3, 2, cameras=CAMERAS, size=16, name="small")
    episodes = [camera_episode(i, length=4, size=16) for i in range(2)]
    minari_writer.write_minari(episodes, str(tmp_path / "m"), schema)
    with h5py.File(tmp_path / "m" / "data" / "main_data.hdf5") as f:
        assert f["episode_0"]["observations"]["front"].shape == (5, 16, 16, 3)
    for source, got in zip(episodes, minari.MinariDataset(tmp_path / "m" / "data")
                           .iterate_episodes()):
        np.testing.assert_array_equal(got.observations["front"],
                                      source[sc.STEPS][sc.OBSERVATION]["front"])
    for a, b in zip(episodes, minari_reader.read_minari_episodes(tmp_path / "m")):
        assert_same_episode(a, b)


def test_extra_step_fields_round_trip_through_minari(tmp_path):
    """steps/infos (e.g. D4RL's qpos, float64) -> Minari infos/infos -> back, bit-exact."""
    schema = sc.EpisodeSchema(sc.ArraySpec((3,)), 2, "extras", infos={
        "qpos": sc.ArraySpec((4,), "float64"), "contact": sc.ArraySpec((2, 2), "uint8")})
    episodes = []
    for i in range(2):
        episode = make_episode(i, length=5)
        rng = np.random.default_rng(i)
        qpos = rng.normal(size=(6, 4)) * 1e3 + 1e-9
        contact = rng.integers(0, 256, (6, 2, 2), np.uint8)  # Minari would JPEG a uint8 array
        qpos[-1] = 0
        contact[-1] = 0
        episode[sc.STEPS][sc.INFOS] = {"qpos": qpos, "contact": contact}
        episodes.append(episode)
    minari_writer.write_minari(episodes, str(tmp_path / "m"), schema)
    for source, got in zip(episodes, minari.MinariDataset(tmp_path / "m" / "data")
                           .iterate_episodes()):
        np.testing.assert_array_equal(got.infos[sc.INFOS]["qpos"],
                                      source[sc.STEPS][sc.INFOS]["qpos"])
    for a, b in zip(episodes, minari_reader.read_minari_episodes(tmp_path / "m")):
        assert_same_episode(a, b)
        assert b[sc.STEPS][sc.INFOS]["qpos"].tobytes() == a[sc.STEPS][sc.INFOS]["qpos"].tobytes()
    out = tmp_path / "back"
    result = runner.invoke(app, ["ingest-minari", "--path", str(tmp_path / "m"), "--out",
                                 str(out)])
    assert result.exit_code == 0, result.output
    with EpisodeReader(str(out)) as reader:
        assert reader.schema.infos == schema.infos
        for a, b in zip(episodes, reader):
            assert_same_episode(a, b)


def test_extra_step_fields_of_another_row_count_are_refused(tmp_path):
    schema = sc.EpisodeSchema(sc.ArraySpec((3,)), 2, "extras",
                              infos={"qpos": sc.ArraySpec((2,), "float64")})
    episode = make_episode(0, length=4)
    episode[sc.STEPS][sc.INFOS] = {"qpos": np.zeros((5, 2))}
    minari_writer.write_minari([episode], str(tmp_path / "m"), schema)
    with h5py.File(tmp_path / "m" / "data" / "main_data.hdf5", "a") as f:
        infos = f["episode_0"]["infos"][sc.INFOS]
        del infos["qpos"]
        infos.create_dataset("qpos", data=np.zeros((4, 2)))
    ingest_minari_fails(tmp_path / "m", tmp_path, "episode_0",
                        "'infos/infos/qpos' has shape (4, 2)",
                        "5 steps")


def test_png_decoding_refuses_other_formats_and_sizes():
    frames = np.zeros((2, 40, 40, 3), np.uint8)
    rows = minari_frames.encode_png(frames)
    np.testing.assert_array_equal(
        minari_frames.decode_frames(rows, (40, 40, 3), "observations/cam", "f", ValueError),
        frames)
    with pytest.raises(ValueError,
                       match=r"'observations/cam' row 0 is a 40x40 image.*\(32, 32, 3\)"):
        minari_frames.decode_frames(rows, (32, 32, 3), "observations/cam", "f", ValueError)
    gif = np.frombuffer(b"GIF89a" + bytes(64), np.uint8)
    with pytest.raises(ValueError, match="row 1 does not decode as PNG or JPEG"):
        minari_frames.decode_frames([rows[0], gif], (40, 40, 3), "observations/cam", "f",
                                    ValueError)


# ---------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written.
# ---------------------------------------------------------------------------




def _broken_copy(minari_root, tmp_path, name) -> pathlib.Path:
    broken = tmp_path / name
    shutil.copytree(minari_root / DATASET_ID, broken)
    return broken


def test_a_frame_of_another_size_is_refused(minari_root, tmp_path):
    broken = _broken_copy(minari_root, tmp_path, "size")
    with h5py.File(broken / "data" / "main_data.hdf5", "a") as f:
        front = f["episode_1"]["observations"]["front"]
        front[3] = minari_frames.encode_png(np.zeros((1, 40, 40, 3), np.uint8))[0]
    ingest_minari_fails(broken, tmp_path, "episode_1", "'observations/front' row 3",
                  "40x40", "(32, 32, 3)")


def test_a_camera_entry_of_another_shape_is_refused(minari_root, tmp_path):
    """Inconsistent shapes: an episode whose camera holds raw (16, 16, 3) pixels."""
    broken = _broken_copy(minari_root, tmp_path, "raw")
    with h5py.File(broken / "data" / "main_data.hdf5", "a") as f:
        obs = f["episode_0"]["observations"]
        del obs["wrist"]
        obs.create_dataset("wrist", data=np.zeros((11, 16, 16, 3), np.uint8))
    ingest_minari_fails(broken, tmp_path, "episode_0", "'observations/wrist' row 0",
                  "not an encoded image")


def test_a_missing_camera_entry_is_refused(minari_root, tmp_path):
    broken = _broken_copy(minari_root, tmp_path, "missing")
    with h5py.File(broken / "data" / "main_data.hdf5", "a") as f:
        del f["episode_1"]["observations"]["wrist"]
    ingest_minari_fails(broken, tmp_path, "episode_1", "observation entries", "observations/wrist")


def test_camera_rows_of_another_count_are_refused(minari_root, tmp_path):
    broken = _broken_copy(minari_root, tmp_path, "rows")
    with h5py.File(broken / "data" / "main_data.hdf5", "a") as f:
        obs = f["episode_0"]["observations"]
        rows = obs["front"][:-1]
        del obs["front"]
        obs.create_dataset("front", data=rows, dtype=h5py.vlen_dtype(np.uint8))
    ingest_minari_fails(broken, tmp_path, "episode_0", "'observations/front' has 10 rows")


def test_non_rgb_cameras_are_refused_for_minari(tmp_path):
    schema = sc.EpisodeSchema({sc.STATE_KEY: sc.ArraySpec((3,)), "depth": sc.ImageSpec(32, 32, 1)},
                              2, "depth")
    episode = make_episode(0, length=3)
    episode[sc.STEPS][sc.OBSERVATION] = {sc.STATE_KEY: episode[sc.STEPS][sc.OBSERVATION],
                                         "depth": np.zeros((4, 32, 32, 1), np.uint8)}
    rec = write_recording(tmp_path / "rec", [episode], schema)
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", rec, "--to", "minari", "--out", str(out)])
    assert result.exit_code == 2 and "--to lerobot" in result.output, result.output
    assert "not RGB" in result.output
    assert not out.exists()


def test_errors_are_minari_format_errors():
    assert issubclass(MinariFormatError, ValueError)
