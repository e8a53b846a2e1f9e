"""RLDS -> Minari (written by Minari's own storage) -> RLDS, field by field, read back by
`minari` itself and by `ingest-minari`."""

import json
import shutil

import h5py
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import schema as sc
from rlif_data.convert import minari_fields, minari_writer
from rlif_data.recording.reader import EpisodeReader, read_episodes
from rlif_data.sources import minari_reader
from rlif_data.sources.minari_steps import MinariFormatError
from tests.cli_helpers import ingest_fails
from tests.fakes.episodes import SCHEMA, make_episode, write_recording
from tests.test_convert_lerobot import assert_same_episode

runner = CliRunner()


def rich_episode(i, length):
    """`make_episode` with every metadata field set (so a lost field shows)."""
    episode = make_episode(i, length=length)
    episode.update({sc.SESSION_ID: "sess-2", sc.OPERATOR: "bob", sc.ROUND: 2,
                    sc.INTERVENTION_MODEL: "random", sc.INTERVENTION_PARAMS: '{"rate": 0.3}',
                    sc.POLICY_VERSION: "p:2.0.0", sc.START_TIME: "2026-11-30T11:00:00Z",
                    sc.CODE_VERSION: "rlif-data test", sc.ENV_ID: "Reacher-v5"})
    return episode


EPISODES = [rich_episode(i, 4 + 2 * i) for i in range(4)]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("mn") / "rec", EPISODES)


@pytest.fixture(scope="module")
def export(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("mn-out") / "minari"
    result = runner.invoke(app, ["convert", recording, "--to", "minari", "--out", str(out),
                                 "--dataset-id", "rlif/unit-test-v1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "rlif/unit-test-v1" in result.output
    return out


def test_minari_reads_the_export(export):
    dataset = minari.MinariDataset(export / "data")
    assert dataset.total_episodes == 4
    assert dataset.total_steps == sum(4 + 2 * i for i in range(4))
    assert dataset.spec.dataset_id == "rlif/unit-test-v1"
    assert dataset.spec.env_spec.id == "Reacher-v5"  # the registered env's spec
    for source, got in zip(EPISODES, dataset.iterate_episodes()):
        steps = source[sc.STEPS]
        t = len(steps[sc.IS_FIRST]) - 1
        np.testing.assert_array_equal(got.observations, steps[sc.OBSERVATION])
        np.testing.assert_array_equal(got.actions, steps[sc.ACTION][:t])
        np.testing.assert_array_equal(got.rewards, steps[sc.REWARD][:t])
        terminated = bool(steps[sc.IS_TERMINAL][-1])
        assert bool(got.terminations[-1]) == terminated
        assert bool(got.truncations[-1]) == (not terminated)
        assert not got.terminations[:-1].any() and not got.truncations[:-1].any()
        for field in minari_fields.INFO_FIELDS:  # T+1 rows, row t = RLDS step t
            np.testing.assert_array_equal(got.infos[field], steps[field], err_msg=field)
    (meta,) = dataset.storage.get_episode_metadata([2])
    assert meta["rlif"]["episode_id"] == EPISODES[2][sc.EPISODE_ID]
    assert meta["rlif"]["operator"] == "bob" and meta["seed"] == EPISODES[2][sc.SEED]


def test_round_trip_through_the_reader_is_exact(export):
    back = list(minari_reader.read_minari_episodes(str(export)))
    for a, b in zip(EPISODES, back):
        assert_same_episode(a, b)


def test_ingest_minari_job_gives_the_recording_back(export, recording, tmp_path):
    out = tmp_path / "ingested"
    result = runner.invoke(app, ["ingest-minari", "--path", str(export), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with EpisodeReader(str(out)) as reader:
        back = list(reader)
    for a, b in zip(read_episodes(recording), back):
        assert_same_episode(a, b)


def test_relabelled_view_and_dict_observations_round_trip(tmp_path):
    schema = sc.EpisodeSchema({sc.STATE_KEY: sc.ArraySpec((3,)), "goal": sc.ArraySpec((2,))}, 2,
                              "view", derived=True)
    episodes = []
    for i in range(2):
        episode = make_episode(i, length=5)
        steps = episode[sc.STEPS]
        steps[sc.OBSERVATION] = {sc.STATE_KEY: steps[sc.OBSERVATION],
                                 "goal": np.full((6, 2), i, np.float32)}
        steps[sc.ENV_REWARD] = np.linspace(0, 1, 6).astype(np.float32)
        steps[sc.INCLUDE] = np.array([1, 0, 1, 1, 0, 0], bool)
        episodes.append(episode)
    minari_writer.write_minari(episodes, str(tmp_path / "m"), schema)
    back = list(minari_reader.read_minari_episodes(str(tmp_path / "m")))
    for a, b in zip(episodes, back):
        assert_same_episode(a, b)


def test_foreign_minari_infos_are_ignored(export, tmp_path):
    """Without our format version in metadata.json, infos are not taken for intervention fields."""
    foreign = tmp_path / "foreign"
    shutil.copytree(export, foreign)
    path = foreign / "data" / "metadata.json"
    metadata = json.loads(path.read_text())
    del metadata[sc.FORMAT_VERSION_KEY]
    path.write_text(json.dumps(metadata))
    first = next(minari_reader.read_minari_episodes(str(foreign)))
    assert not first[sc.STEPS][sc.INTERVENTION].any()
    assert (first[sc.STEPS][sc.SOURCE][:-1] == int(sc.Source.DATASET)).all()


# ---------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written.
# ---------------------------------------------------------------------------


def ingest_minari_fails(path, tmp_path, *needles):
    """`ingest-minari` of `path` exits 2 with one line holding every needle; nothing written."""
    ingest_fails("ingest-minari", path, tmp_path / "ds", *needles)


def test_inconsistent_observation_shapes(export, tmp_path):
    broken = tmp_path / "shapes"
    shutil.copytree(export, broken)
    with h5py.File(broken / "data" / "main_data.hdf5", "a") as f:
        group = f["episode_1"]
        rows = group["observations"].shape[0]
        del group["observations"]
        group.create_dataset("observations", data=np.zeros((rows, 4), np.float32))
    ingest_minari_fails(broken, tmp_path, "episode_1", "'observations' rows have shape (4,)",
                  "give (3,)")


def test_inconsistent_info_rows(export, tmp_path):
    broken = tmp_path / "infos"
    shutil.copytree(export, broken)
    with h5py.File(broken / "data" / "main_data.hdf5", "a") as f:
        infos = f["episode_2"]["infos"]
        values = infos["intervention"][:-1]
        del infos["intervention"]
        infos.create_dataset("intervention", data=values)
    ingest_minari_fails(broken, tmp_path, "episode_2", "'infos/intervention' has 8 rows",
                  "9 steps")


def test_camera_views_round_trip_through_minari(tmp_path):
    """A relabelled two-camera view (24 px frames, stored raw) comes back exactly;
    larger frames and Minari's image layout: tests/test_minari_cameras.py."""
    from tests.test_convert_lerobot import EPISODES as CAMERA_EPISODES
    from tests.test_convert_lerobot import SCHEMA as CAMERA_SCHEMA

    rec = write_recording(tmp_path / "rec", CAMERA_EPISODES[:2], CAMERA_SCHEMA)
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", rec, "--to", "minari", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for a, b in zip(read_episodes(rec), minari_reader.read_minari_episodes(str(out))):
        assert_same_episode(a, b)


def test_bad_dataset_id(recording, tmp_path):
    result = runner.invoke(app, ["convert", recording, "--to", "minari", "--out",
                                 str(tmp_path / "o"), "--dataset-id", "no version"])
    assert result.exit_code == 2 and "no version" in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_schema_error_classes():
    assert issubclass(minari_fields.MinariExportError, ValueError)
    assert issubclass(MinariFormatError, ValueError)
    assert SCHEMA.action_dim == 2
