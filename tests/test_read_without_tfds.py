"""Reading episodes imports neither TFDS nor TensorFlow, and gives what TFDS' path gives.

Every piece of the TFDS-free read path is compared with TFDS itself: the
serialized layout (`schema.serialized_fields`), the stored-features signature
(`stored_features`), shard names (`store.format_shard_names`) and the
Example classes (`example_proto`, byte for byte on real records).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording import example_proto, reader as reader_lib, serialize, store
from rlif_data.recording import stored_features
from rlif_data.recording.reader import EpisodeReader
from tests.fakes.episodes import make_episode, write_recording
from tests.test_serialize import camera_episode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every schema form the project writes: vector and dict observations, raw and PNG
# cameras, relabelled (derived) views, extra step fields of every kind, scalars.
SCHEMAS = {
    "vector": sc.vector_schema(3, 2, name="unit"),
    "vector_derived": sc.EpisodeSchema(sc.ArraySpec((11,)), 3, "v", derived=True),
    "state_only_dict": sc.EpisodeSchema({sc.STATE_KEY: sc.ArraySpec((4,))}, 2),
    "cameras_raw": sc.camera_schema(3, 2, size=8),
    "cameras_png": sc.camera_schema(3, 2, size=8, encoding="png"),
    "cameras_derived": sc.camera_schema(5, 4, cameras=("front",), size=16, derived=True),
    "mixed_cameras": sc.EpisodeSchema({"a": sc.ImageSpec(4, 6, 1), "b": sc.ImageSpec(
        4, 4, 3, "png"), sc.STATE_KEY: sc.ArraySpec((2, 3), "float64")}, 1),
    "infos": sc.EpisodeSchema(sc.ArraySpec((5,)), 2, "d4rl", infos={
        "qpos": sc.ArraySpec((4,), "float64"), "contact": sc.ArraySpec((2,), "int8"),
        "flag": sc.ArraySpec((), "bool"), "counter": sc.ArraySpec((), "int64")}),
    "infos_cameras_derived": sc.EpisodeSchema(
        {"front": sc.ImageSpec(8, 8), sc.STATE_KEY: sc.ArraySpec((3,))}, 2, derived=True,
        infos={"qvel": sc.ArraySpec((3,), "float16")}),
}


def tfds_flat_info(schema):
    from tensorflow_datasets.core import utils

    return utils.flatten_nest_dict(sc.features_dict(schema).get_serialized_info())


def tfds_signature(directory):
    import tensorflow_datasets as tfds

    return reader_lib._flat_signature(tfds.features.FeatureConnector.from_config(directory))


# -- the serialized layout --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_serialized_fields_equal_tfds_serialized_info(name):
    schema = SCHEMAS[name]
    ours, theirs = sc.serialized_fields(schema), tfds_flat_info(schema)
    assert list(ours) == list(theirs)  # same keys in the same order: the same nesting
    for key, info in theirs.items():
        assert ours[key].shape == tuple(info.shape), key
        assert ours[key].np_dtype == np.dtype(info.np_dtype), key
        assert ours[key].sequence_rank == info.sequence_rank, key


def test_an_unknown_image_encoding_is_refused_as_tfds_features_refuse_it():
    schema = sc.EpisodeSchema({"cam": sc.ImageSpec(4, 4, encoding="jpeg")}, 2)
    with pytest.raises(ValueError, match="unknown image encoding 'jpeg'") as ours:
        sc.serialized_fields(schema)
    with pytest.raises(ValueError) as theirs:
        sc.features_dict(schema)
    assert str(ours.value) == str(theirs.value)


# -- the stored-features signature ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_features_json_signature_equals_tfds_rebuilding_the_features(name, tmp_path):
    schema = SCHEMAS[name]
    sc.features_dict(schema).save_config(str(tmp_path))
    ours = stored_features.read_signature(str(tmp_path))
    assert ours == tfds_signature(str(tmp_path))
    assert ours == stored_features.signature(sc.serialized_fields(schema))


def _edit_features(directory, edit):
    path = os.path.join(directory, sc.FEATURES_FILE)
    with open(path) as f:
        config = json.load(f)
    steps = config["featuresDict"]["features"][sc.STEPS]["sequence"]["feature"]
    edit(config, steps["featuresDict"]["features"])
    with open(path, "w") as f:
        json.dump(config, f)


def _drop_intervention(config, steps):
    steps["renamed"] = steps.pop(sc.INTERVENTION)


def _retype_action(config, steps):
    steps[sc.ACTION]["tensor"]["dtype"] = "float64"


def _reshape_observation(config, steps):
    steps[sc.OBSERVATION]["tensor"]["shape"]["dimensions"] = ["4"]


def _zlib_reward(config, steps):  # a form rlif-data never writes: TFDS judges it
    steps[sc.REWARD]["tensor"]["encoding"] = "zlib"


def _described(config, steps):  # an unknown key: TFDS judges it
    steps[sc.DISCOUNT]["description"] = "d"


@pytest.mark.parametrize("edit", [_drop_intervention, _retype_action, _reshape_observation,
                                  _zlib_reward, _described])
def test_a_mismatched_features_json_gives_the_tfds_paths_message(edit, tmp_path):
    schema = SCHEMAS["vector"]
    path = write_recording(tmp_path / "rec", [make_episode(0)], schema)
    _edit_features(path, edit)
    if edit in (_zlib_reward, _described):
        with pytest.raises(stored_features.Unrecognised):
            stored_features.read_signature(path)
    else:
        assert stored_features.read_signature(path) == tfds_signature(path)
    outcomes = []
    for check in (lambda: reader_lib.check_stored_schema(path, schema),
                  lambda: reader_lib.check_stored_features(path, sc.features_dict(schema))):
        try:
            check()
            outcomes.append(None)
        except Exception as exc:  # whatever TFDS' path raises, ours must raise the same
            outcomes.append((type(exc), str(exc)))
    assert outcomes[0] == outcomes[1]
    if edit in (_drop_intervention, _retype_action, _reshape_observation):
        assert outcomes[0][0] is errors.FormatVersionError
        with pytest.raises(errors.FormatVersionError, match="stored fields differ"):
            EpisodeReader(path)[0]


def test_a_foreign_feature_class_is_refused_before_anything_reads_it(tmp_path):
    path = write_recording(tmp_path / "rec", [make_episode(0)])
    _edit_features(path, lambda c, steps: steps[sc.REWARD].update(
        pythonClassName="os.system"))
    with pytest.raises(errors.UnsafeDataError, match="'os.system'"):
        EpisodeReader(path)[0]


def test_a_missing_features_json_is_left_to_tfds(tmp_path):
    path = write_recording(tmp_path / "rec", [make_episode(0)])
    os.remove(os.path.join(path, sc.FEATURES_FILE))
    with pytest.raises(stored_features.Unrecognised):
        stored_features.read_signature(path)


# -- shard names ------------------------------------------------------------------------------

TEMPLATES = ["{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}",
             "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
             "sub/{SPLIT}/{DATASET}.{FILEFORMAT}@{SHARD_X_OF_Y}"]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("num_shards", [1, 3, 12, 123456])
def test_shard_names_equal_tfds_formatting(template, num_shards):
    from tensorflow_datasets.core import naming

    files = naming.ShardedFileTemplate(data_dir="/d/x", template=template, dataset_name="unit",
                                       split="train", filetype_suffix="array_record")
    names = store.format_shard_names(template, "unit", "train", "array_record", num_shards)
    assert len(names) == num_shards
    for i in sorted({0, 1 % num_shards, num_shards // 2, num_shards - 1}):
        assert names[i] == files.relative_filepath(shard_index=i, num_shards=num_shards)
    if num_shards == 3 and "X_OF_Y" in template:
        assert names[2].endswith("00002-of-00003")


@pytest.mark.parametrize("template", ["{DATASET}-{SPLIT}-{NUM_SHARDS}-{SHARD_INDEX}",
                                      "{DATASET}-{{literal}}-{SHARD_INDEX}", "{SHARD_INDEX!s}.{DATASET}"])
def test_other_templates_are_left_to_tfds(template, tmp_path):
    assert store.format_shard_names(template, "unit", "train", "array_record", 2) is None
    path = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    info_path = os.path.join(path, sc.DATASET_INFO_FILE)
    with open(info_path) as f:
        index = json.load(f)
    index["splits"][0]["filepathTemplate"] = template
    with open(info_path, "w") as f:
        json.dump(index, f)
    from tensorflow_datasets.core import naming

    files = naming.ShardedFileTemplate(data_dir=path, template=template, dataset_name="unit",
                                       split="train", filetype_suffix="array_record")
    assert store.shard_paths(path) == [
        os.fspath(files.sharded_filepath(shard_index=i, num_shards=2)) for i in range(2)]


# -- real records: a recording and a job-built dataset ------------------------------------


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    from pipelines import relabel

    base = tmp_path_factory.mktemp("read")
    vector = write_recording(base / "vector", [make_episode(i, length=2 + i) for i in range(5)])
    cameras = write_recording(base / "cameras", [camera_episode(n) for n in (3, 6)],
                              sc.camera_schema(3, 2, cameras=("front", "wrist"), size=8))
    rng = np.random.default_rng(3)
    infos = []
    for i in range(3):
        episode = make_episode(i, length=4, obs_dim=5)
        episode[sc.STEPS][sc.INFOS] = {
            "qpos": rng.normal(size=(5, 4)) * 1e3, "contact": rng.integers(-9, 9, (5, 2), np.int8),
            "flag": rng.random(5) < 0.5, "counter": rng.integers(0, 2**40, 5)}
        infos.append(episode)
    with_infos = write_recording(base / "infos", infos, SCHEMAS["infos"])
    job = relabel.run(vector, str(base / "job"), "paper")
    return {"vector": vector, "cameras": cameras, "infos": with_infos, "job": job}


def test_the_job_dataset_uses_the_of_form(datasets):
    index = store.read_index(datasets["job"])
    assert index["splits"][0]["filepathTemplate"].endswith("{SHARD_X_OF_Y}")
    assert store.shard_paths(datasets["job"])[0].endswith("-00000-of-00001")
    assert all(os.path.exists(p) for p in store.shard_paths(datasets["job"]))


@pytest.mark.parametrize("kind", ["vector", "cameras", "infos", "job"])
def test_example_classes_round_trip_real_records_as_tfds_classes_do(kind, datasets):
    from tensorflow_datasets.proto import tf_example_pb2

    with EpisodeReader(datasets[kind]) as reader:
        raws = [reader.raw(i) for i in range(len(reader))]
    for raw in raws:
        ours, theirs = example_proto.Example.FromString(raw), tf_example_pb2.Example.FromString(raw)
        assert ours.SerializeToString(deterministic=True) == raw  # writers are deterministic
        assert theirs.SerializeToString(deterministic=True) == raw
        assert (sorted(ours.features.feature) == sorted(theirs.features.feature))
        for key, feature in theirs.features.feature.items():
            mine = ours.features.feature[key]
            assert mine.WhichOneof("kind") == feature.WhichOneof("kind"), key
            kind_name = feature.WhichOneof("kind")
            assert list(getattr(mine, kind_name).value) == list(getattr(feature, kind_name).value)
        # And TFDS' classes read what ours write.
        assert tf_example_pb2.Example.FromString(ours.SerializeToString()) == theirs


def test_a_damaged_record_fails_as_with_tfds_classes():
    from google.protobuf import message
    from tensorflow_datasets.proto import tf_example_pb2

    nested = serialize.serialized_info(SCHEMAS["vector"])
    raw = serialize.serialize_episode(make_episode(0), nested)
    assert raw == serialize.serialize_episode(
        make_episode(0), sc.features_dict(SCHEMAS["vector"]).get_serialized_info())
    for cut in (raw[:37], raw[:-3], b"\xff" + raw[1:]):
        with pytest.raises(message.DecodeError) as ours:
            example_proto.Example.FromString(cut)
        with pytest.raises(message.DecodeError) as theirs:
            tf_example_pb2.Example.FromString(cut)
        assert str(ours.value) == str(theirs.value)


def _assert_same_nest(a, b, where=""):
    if isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), where
        for key in b:
            _assert_same_nest(a[key], b[key], f"{where}/{key}")
    elif isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    else:
        assert type(a) is type(b) and a == b, where


@pytest.mark.parametrize("kind", ["vector", "cameras", "infos", "job"])
def test_episodes_decode_as_tfds_parser_decodes_them(kind, datasets):
    from tensorflow_datasets.core import example_parser

    with EpisodeReader(datasets[kind]) as reader:
        features = sc.features_dict(reader.schema)
        tfds_parser = example_parser.ExampleParserNp(features.get_serialized_info())
        for i in range(len(reader)):
            want = reader._decode(tfds_parser.parse_example(reader.raw(i)))
            _assert_same_nest(reader[i], want)


def test_nest_flat_refuses_a_key_that_is_both_a_leaf_and_a_group():
    assert serialize.nest_flat({"a/b": 1, "a/c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(ValueError, match="a/b"):
        serialize.nest_flat({"a": 1, "a/b": 2})


# -- no TFDS, no TensorFlow in a reading process ----------------------------------------------

_READ_CODE = """
import json, sys
from rlif_data import checks
from rlif_data.recording.reader import EpisodeReader
out = {}
for path in sys.argv[1:]:
    with EpisodeReader(path, repair=False) as reader:
        episodes = [reader[i] for i in range(len(reader))]
        summaries = [reader.summary(i) for i in range(len(reader))]
    report = checks.check_dataset(path, workers=1)
    out[path] = [len(episodes), len(summaries), report.episodes]
print(json.dumps({"loaded": sorted(m for m in sys.modules
                                   if m.split(".")[0] in ("tensorflow", "tensorflow_datasets")),
                  "counts": out}))
"""


def test_reading_and_checking_import_neither_tfds_nor_tensorflow(datasets):
    paths = [datasets[k] for k in ("vector", "cameras", "infos", "job")]
    out = subprocess.run([sys.executable, "-c", _READ_CODE, *paths],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    want = {datasets["vector"]: 5, datasets["cameras"]: 2, datasets["infos"]: 3,
            datasets["job"]: 5}
    assert {p: c[0] for p, c in result["counts"].items()} == want
    assert {p: c[1] for p, c in result["counts"].items()} == want
    assert {p: c[2] for p, c in result["counts"].items()} == want


def test_png_cameras_still_read_through_tfds(tmp_path):
    schema = SCHEMAS["cameras_png"]
    path = write_recording(tmp_path / "png", [camera_episode(3)], schema)
    episode = EpisodeReader(path)[0]
    assert episode[sc.STEPS][sc.OBSERVATION]["front"].shape == (4, 8, 8, 3)
    assert np.array_equal(episode[sc.STEPS][sc.OBSERVATION]["front"],
                          camera_episode(3)[sc.STEPS][sc.OBSERVATION]["front"])


@pytest.mark.parametrize("kind", ["vector", "cameras", "infos", "job"])
def test_serializing_with_the_tfds_free_info_writes_the_stored_bytes(kind, datasets):
    """What a job's sink could use instead of ``features_dict(schema).get_serialized_info()``."""
    with EpisodeReader(datasets[kind]) as reader:
        schema = reader.schema
        ours = serialize.serialized_info(schema)
        theirs = sc.features_dict(schema).get_serialized_info()
        packed = serialize.bytes_fields(schema)
        for i in range(len(reader)):
            episode = reader[i]
            raw = serialize.serialize_episode(episode, ours, packed)
            assert raw == reader.raw(i)
            assert raw == serialize.serialize_episode(episode, theirs, packed)


@pytest.mark.parametrize("template", ["../{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}",
                                      "/etc/{DATASET}-{SHARD_INDEX}",
                                      "sub/../../x-{SHARD_INDEX}"])
def test_a_shard_template_pointing_outside_the_dataset_is_refused(tmp_path, template):
    # dataset_info.json comes with data from elsewhere: it must not aim the reader at other files.
    rec = write_recording(tmp_path / "rec", [make_episode(0)])
    info_path = os.path.join(rec, sc.DATASET_INFO_FILE)
    with open(info_path) as f:
        info = json.load(f)
    for split in info["splits"]:
        split["filepathTemplate"] = template
    with open(info_path, "w") as f:
        json.dump(info, f)
    with pytest.raises(errors.CorruptRecordingError, match="outside the dataset directory"):
        store.shard_paths(rec)
