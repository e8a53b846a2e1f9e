"""The crash-safe episode store: round trips, appends, bad input, recovery."""

import errno
import json
import os

import numpy as np
import pytest

from rlif_data import episodes as ep
from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording import store
from rlif_data.recording.reader import EpisodeReader, read_episodes
from rlif_data.recording.store import EpisodeStore

from tests.fakes.episodes import SCHEMA, make_episode, write_recording


def write(directory, episodes, schema=SCHEMA):
    write_recording(directory, episodes, schema)


def assert_same(a, b):
    assert a[sc.EPISODE_ID] == b[sc.EPISODE_ID]
    assert a[sc.SEED] == b[sc.SEED]
    for field, value in b[sc.STEPS].items():
        np.testing.assert_array_equal(a[sc.STEPS][field], value, err_msg=field)


def test_round_trip_every_field(tmp_path):
    eps = [make_episode(i) for i in range(3)]
    write(tmp_path / "rec", eps)
    back = read_episodes(str(tmp_path / "rec"))
    assert len(back) == 3
    for a, b in zip(back, eps):
        assert_same(a, b)
    assert back[1][sc.ENV_ID] == "Unit-v0"


def test_written_files_are_a_tfds_dataset(tmp_path):
    import tensorflow_datasets as tfds

    write(tmp_path / "rec", [make_episode(i) for i in range(2)])
    builder = tfds.builder_from_directory(str(tmp_path / "rec"))
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.file_format.value == "array_record"
    source = builder.as_data_source("train")
    steps = source[1][sc.STEPS]
    assert len(steps) == 6
    assert bool(steps[5][sc.IS_LAST])


def test_append_keeps_earlier_episodes(tmp_path):
    write(tmp_path / "rec", [make_episode(0)])
    write(tmp_path / "rec", [make_episode(1), make_episode(2)])
    back = read_episodes(str(tmp_path / "rec"))
    assert [e[sc.EPISODE_ID] for e in back] == ["s/0", "s/1", "s/2"]


def test_other_schema_is_refused_and_data_intact(tmp_path):
    write(tmp_path / "rec", [make_episode(0)])
    before = sorted(os.listdir(tmp_path / "rec"))
    with pytest.raises(errors.SchemaMismatchError, match=r"already holds episodes with another schema"):
        EpisodeStore.open(str(tmp_path / "rec"), sc.vector_schema(4, 2, name="unit"))
    assert sorted(os.listdir(tmp_path / "rec")) == before
    assert_same(read_episodes(str(tmp_path / "rec"))[0], make_episode(0))


def test_non_recording_directory_is_refused(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "notes.txt").write_text("mine")
    with pytest.raises(errors.RecordingError, match="not empty and holds no rlif-data recording"):
        EpisodeStore.open(str(tmp_path / "rec"), SCHEMA)
    assert (tmp_path / "rec" / "notes.txt").read_text() == "mine"


def test_episode_not_matching_schema_is_refused(tmp_path):
    bad = make_episode(0)
    bad[sc.STEPS][sc.OBSERVATION] = np.zeros((6, 4), np.float32)
    with EpisodeStore.open(str(tmp_path / "rec"), SCHEMA) as s:
        s.write_episode(make_episode(1))
        with pytest.raises(errors.SchemaError, match=r"episode 's/0' does not match the schema"):
            s.write_episode(bad)
        assert s.num_episodes == 1
    assert len(read_episodes(str(tmp_path / "rec"))) == 1


class _FullDiskWriter:
    """A shard writer that fails like a full disk after a few bytes."""

    def __init__(self, path):
        self._f = open(path, "wb")

    def write(self, record):
        self._f.write(record[:16])
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        self._f.close()


def test_disk_full_loses_only_the_failed_episode(tmp_path, monkeypatch):
    d = tmp_path / "rec"
    with EpisodeStore.open(str(d), SCHEMA) as s:
        s.write_episode(make_episode(0))
        s.write_episode(make_episode(1))
        with monkeypatch.context() as m:
            m.setattr(store, "open_array_record_writer", _FullDiskWriter)
            with pytest.raises(errors.RecordingError,
                               match=r"could not write episode 's/2' \(disk full\).*2 episodes"):
                s.write_episode(make_episode(2))
        assert not [n for n in os.listdir(d) if n.startswith(store.TMP_PREFIX)]
        # Space is back: the store keeps going.
        s.write_episode(make_episode(3))
    back = read_episodes(str(d))
    assert [e[sc.EPISODE_ID] for e in back] == ["s/0", "s/1", "s/3"]


def test_index_update_failure_is_recovered(tmp_path, monkeypatch):
    d = tmp_path / "rec"
    with EpisodeStore.open(str(d), SCHEMA) as s:
        s.write_episode(make_episode(0))

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(store, "write_info", no_space)
            with pytest.raises(errors.RecordingError, match="saved in .*rlif-data recover"):
                s.write_episode(make_episode(1))
    assert store.needs_recovery(str(d))
    with pytest.raises(errors.CorruptRecordingError, match="recover"):
        EpisodeReader(str(d), repair=False)
    report = store.recover(str(d))
    assert report.indexed_shards == [store.shard_name("unit", 1)]
    assert [e[sc.EPISODE_ID] for e in read_episodes(str(d))] == ["s/0", "s/1"]


def test_recover_removes_half_written_shard(tmp_path):
    d = tmp_path / "rec"
    write(d, [make_episode(0)])
    half = d / f"{store.TMP_PREFIX}{store.shard_name('unit', 1)}"
    half.write_bytes(b"\x00garbage from a killed writer")
    report = store.recover(str(d))
    assert report.removed_temporary == [half.name] and report.episodes == 1
    assert not half.exists()
    assert store.recover(str(d)).changed is False


def test_reader_repairs_by_default(tmp_path):
    d = tmp_path / "rec"
    write(d, [make_episode(0)])
    (d / f"{store.TMP_PREFIX}x").write_bytes(b"partial")
    assert len(EpisodeReader(str(d))) == 1
    assert not (d / f"{store.TMP_PREFIX}x").exists()


def test_second_writer_is_refused(tmp_path):
    d = tmp_path / "rec"
    with EpisodeStore.open(str(d), SCHEMA) as s:
        s.write_episode(make_episode(0))
        with pytest.raises(errors.RecordingLockedError, match=f"pid {os.getpid()}"):
            EpisodeStore.open(str(d), SCHEMA)
        with pytest.raises(errors.RecordingLockedError):
            store.recover(str(d))
    assert len(read_episodes(str(d))) == 1


def test_corrupt_shard_gives_clear_error_and_others_stay_readable(tmp_path):
    d = tmp_path / "rec"
    write(d, [make_episode(i) for i in range(3)])
    shard = d / store.shard_name("unit", 1)
    shard.write_bytes(b"\x13" * 64)
    reader = EpisodeReader(str(d))
    with pytest.raises(errors.CorruptRecordingError, match=store.shard_name("unit", 1)):
        reader[1]
    assert_same(reader[0], make_episode(0))
    assert_same(reader[2], make_episode(2))


def test_missing_shard_in_sequence_is_reported(tmp_path):
    d = tmp_path / "rec"
    write(d, [make_episode(i) for i in range(3)])
    os.unlink(d / store.shard_name("unit", 1))
    (d / store.shard_name("unit", 3)).write_bytes(b"")  # an unindexed shard forces a check
    with pytest.raises(errors.CorruptRecordingError, match="do not form the sequence"):
        store.recover(str(d))


def test_not_a_recording_and_wrong_format_version(tmp_path):
    with pytest.raises(errors.CorruptRecordingError, match="no such directory"):
        EpisodeReader(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.CorruptRecordingError, match="not an rlif-data recording"):
        EpisodeReader(str(tmp_path / "empty"))
    d = tmp_path / "rec"
    write(d, [make_episode(0)])
    meta = json.loads((d / "metadata.json").read_text())
    meta[sc.FORMAT_VERSION_KEY] = "7.0"
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(errors.FormatVersionError, match="format 7.0"):
        EpisodeReader(str(d))


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_camera_episodes_round_trip(tmp_path, encoding):
    schema = sc.camera_schema(3, 2, cameras=("front", "wrist"), size=16, name="cams",
                              encoding=encoding)
    rng = np.random.default_rng(0)
    obs = {"state": rng.normal(size=(4, 3)).astype(np.float32),
           "front": rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8),
           "wrist": rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)}
    steps = ep.build_steps(obs, np.zeros((3, 2)), np.zeros(3), np.ones(3), terminated=False)
    episode = {**ep.default_episode_metadata(), sc.STEPS: steps}
    write(tmp_path / "rec", [episode], schema)
    back = read_episodes(str(tmp_path / "rec"))[0][sc.STEPS][sc.OBSERVATION]
    for key in obs:
        np.testing.assert_array_equal(back[key], obs[key])


def test_fields_changed_without_version_bump_are_detected(tmp_path):
    d = tmp_path / "rec"
    write(d, [make_episode(0)])
    features = (d / "features.json").read_text()
    (d / "features.json").write_text(features.replace(sc.TIMESTAMP_US, "timestamp"))
    with pytest.raises(errors.FormatVersionError,
                       match=r"missing \['steps/timestamp_us'\], unexpected \['steps/timestamp'\]"):
        EpisodeReader(str(d))[0]


def test_reading_many_one_shard_episodes_keeps_few_files_open(tmp_path):
    from rlif_data.recording import reader as reader_lib

    d = tmp_path / "rec"
    write(d, [make_episode(i, length=2) for i in range(reader_lib.MAX_OPEN_SHARDS + 8)])
    r = EpisodeReader(str(d))
    ids = [r[i][sc.EPISODE_ID] for i in range(len(r))]
    assert ids == [f"s/{i}" for i in range(len(r))]
    assert len(r._readers) == reader_lib.MAX_OPEN_SHARDS
    assert r[0][sc.EPISODE_ID] == "s/0"  # an evicted shard opens again
    open_files = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    r.close()
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) <= open_files


def test_summary_reads_lengths_metadata_and_sources(tmp_path):
    d = tmp_path / "rec"
    write(d, [make_episode(i, length=3 + i, operator=f"op{i}") for i in range(3)])
    r = EpisodeReader(str(d))
    for i in range(3):
        full, light = r[i], r.summary(i)
        for key in sc.EPISODE_METADATA_FIELDS:
            assert light[key] == full[key], key
        np.testing.assert_array_equal(light[sc.STEPS][sc.IS_FIRST], full[sc.STEPS][sc.IS_FIRST])
        np.testing.assert_array_equal(light[sc.STEPS][sc.SOURCE], full[sc.STEPS][sc.SOURCE])
