"""Extra step fields (`schema.INFOS`, format 1.1): schema, features, serializer, readers, exports.

The D4RL path end to end is in tests/test_d4rl_infos.py, Minari's in
tests/test_minari_cameras.py.
"""

import dataclasses
import json
import os

import numpy as np
import pytest

from rlif_data import checks
from rlif_data import schema as sc
from rlif_data.recording import feature_config, serialize
from rlif_data.recording.reader import EpisodeReader, read_episodes
from tests.fakes.episodes import SCHEMA, make_episode, write_recording
from tests.test_serialize import same_example, tfds_bytes

INFOS = {"qpos": sc.ArraySpec((4,), "float64"), "contact": sc.ArraySpec((2, 2), "uint8"),
         "flag": sc.ArraySpec((), "bool"), "count": sc.ArraySpec((), "int64")}
WITH_INFOS = dataclasses.replace(SCHEMA, infos=INFOS)


def with_infos(i, length=5):
    episode = make_episode(i, length=length)
    rng = np.random.default_rng(i)
    n = length + 1
    values = {"qpos": rng.normal(size=(n, 4)) * 1e3 + 1e-9,  # float32 cannot hold these
              "contact": rng.integers(0, 256, (n, 2, 2), np.uint8),
              "flag": rng.random(n) < 0.5, "count": rng.integers(-2**62, 2**62, n)}
    for v in values.values():
        v[-1] = 0  # the final step: zeros
    episode[sc.STEPS][sc.INFOS] = values
    return episode


def test_schema_json_round_trip_and_old_json_unchanged():
    assert sc.EpisodeSchema.from_json(WITH_INFOS.to_json()) == WITH_INFOS
    assert WITH_INFOS.to_json()[sc.INFOS]["qpos"] == {"kind": "array", "shape": [4],
                                                      "dtype": "float64"}
    # Without infos the JSON is the 1.0 one, key for key: old readers see no change.
    assert set(SCHEMA.to_json()) == {"name", "action_dim", "observation", "derived"}
    assert dataclasses.replace(WITH_INFOS, infos={}) == SCHEMA
    # Specs are normalised: dtype objects and lists compare equal to names and tuples.
    same = dataclasses.replace(SCHEMA, infos={"qpos": sc.ArraySpec([4], np.float64)})
    assert same.infos == {"qpos": sc.ArraySpec((4,), "float64")}


@pytest.mark.parametrize("name, spec, needle", [
    ("a/b", sc.ArraySpec((1,)), "no '/'"),
    ("", sc.ArraySpec((1,)), "must match"),
    ("cam", sc.ImageSpec(8, 8), "must be an ArraySpec"),
    ("big", sc.ArraySpec((1,), "uint64"), "dtype uint64"),
    ("text", sc.ArraySpec((1,), "not-a-dtype"), "not-a-dtype"),
])
def test_bad_extra_fields_are_refused(name, spec, needle):
    with pytest.raises(ValueError, match=needle):
        dataclasses.replace(SCHEMA, infos={name: spec})


def test_features_and_the_rlds_builder_agree():
    import tensorflow_datasets as tfds

    schema = dataclasses.replace(sc.camera_schema(7, 2, derived=True), infos=INFOS)
    identity = tfds.core.dataset_info.DatasetIdentity(
        name=schema.name, version=tfds.core.Version("1.0.0"), data_dir="", module_name="")
    built = tfds.rlds.rlds_base.build_info(sc.dataset_config(schema), identity).features
    assert built.to_json() == sc.features_dict(schema).to_json()
    infos = sc.features_dict(schema)[sc.STEPS].feature[sc.INFOS]
    assert infos["qpos"].dtype == np.float64 and infos["qpos"].shape == (4,)


def test_fast_serializer_matches_tfds_with_infos():
    packed = serialize.bytes_fields(WITH_INFOS)
    assert set(packed) == {f"steps/infos/{k}" for k in INFOS}
    info = sc.features_dict(WITH_INFOS).get_serialized_info()
    for i in range(3):
        episode = with_infos(i, length=2 + i)
        fast = serialize.serialize_episode(episode, info, packed)
        assert same_example(fast, tfds_bytes(episode, WITH_INFOS))


def test_serializer_refuses_wrong_dtype_shape_or_missing_specs():
    info = sc.features_dict(WITH_INFOS).get_serialized_info()
    packed = serialize.bytes_fields(WITH_INFOS)
    episode = with_infos(0)
    episode[sc.STEPS][sc.INFOS]["qpos"] = episode[sc.STEPS][sc.INFOS]["qpos"].astype(np.float32)
    with pytest.raises(ValueError, match="steps/infos/qpos: dtype float32 does not match float64"):
        serialize.serialize_episode(episode, info, packed)
    episode = with_infos(0)
    episode[sc.STEPS][sc.INFOS]["contact"] = np.zeros((6, 4), np.uint8)
    with pytest.raises(ValueError, match="steps/infos/contact: shape"):
        serialize.serialize_episode(episode, info, packed)
    with pytest.raises(ValueError, match="pass `bytes_fields"):
        serialize.serialize_episode(with_infos(0), info)


def test_recording_round_trip_is_bit_exact_and_marked_1_1(tmp_path):
    episodes = [with_infos(i) for i in range(3)]
    rec = write_recording(tmp_path / "rec", episodes, WITH_INFOS)
    with open(os.path.join(rec, sc.METADATA_FILE)) as f:
        assert json.load(f)[sc.FORMAT_VERSION_KEY] == sc.FORMAT_VERSION == "1.1"
    # The feature classes written stay on the allow-list features.json is checked against.
    with open(os.path.join(rec, sc.FEATURES_FILE)) as f:
        assert feature_config.disallowed_classes(json.load(f)) == []
    for a, b in zip(episodes, read_episodes(rec)):
        for name, spec in INFOS.items():
            got = b[sc.STEPS][sc.INFOS][name]
            assert got.dtype == np.dtype(spec.dtype) and got.shape[1:] == spec.shape
            assert got.tobytes() == a[sc.STEPS][sc.INFOS][name].tobytes(), name
    with EpisodeReader(rec) as reader:
        summary = reader.summary(0)  # the cheap path ignores them
    assert summary[sc.STEPS][sc.IS_FIRST][0]


def test_data_without_infos_reads_as_before(tmp_path):
    """Format 1.0 data (no infos): read by this code exactly as before, no infos key."""
    rec = write_recording(tmp_path / "rec", [make_episode(0)])
    meta_path = os.path.join(rec, sc.METADATA_FILE)
    with open(meta_path) as f:
        metadata = json.load(f)
    metadata[sc.FORMAT_VERSION_KEY] = "1.0"
    with open(meta_path, "w") as f:
        json.dump(metadata, f)
    (episode,) = read_episodes(rec)
    assert sc.INFOS not in episode[sc.STEPS]
    assert EpisodeReader(rec).schema == SCHEMA


def test_checks_count_info_rows_per_step():
    episode = with_infos(0)
    assert checks.structure_findings(episode[sc.STEPS]) == []
    episode[sc.STEPS][sc.INFOS]["qpos"] = episode[sc.STEPS][sc.INFOS]["qpos"][:-1]
    (finding,) = checks.structure_findings(episode[sc.STEPS])
    assert "infos['qpos']" in finding.message


def test_lerobot_export_keeps_infos(tmp_path):
    """LeRobot export: one infos.<name> column each; ingest-lerobot gives them back bit-exact
    (more in tests/test_convert_lerobot.py)."""
    from pipelines import ingest_lerobot
    from rlif_data.convert.export import convert_dataset
    from rlif_data.convert.lerobot import lerobot_schema

    rec = write_recording(tmp_path / "rec", [with_infos(i) for i in range(2)], WITH_INFOS)
    convert_dataset(rec, "lerobot", str(tmp_path / "lr"))
    assert lerobot_schema(str(tmp_path / "lr")).infos == INFOS
    out = ingest_lerobot.run(str(tmp_path / "lr"), str(tmp_path / "back"),
                             beam_args=["--direct_num_workers=1",
                                        "--direct_running_mode=in_memory"])
    for a, b in zip(read_episodes(rec), read_episodes(out)):
        for name, value in a[sc.STEPS][sc.INFOS].items():
            got = b[sc.STEPS][sc.INFOS][name]
            assert got.dtype == value.dtype, name
            np.testing.assert_array_equal(got, value, err_msg=name)
        np.testing.assert_array_equal(a[sc.STEPS][sc.ACTION], b[sc.STEPS][sc.ACTION])
