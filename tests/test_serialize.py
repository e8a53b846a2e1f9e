"""The fast episode serializer writes exactly the Example TFDS' serializer writes."""

import numpy as np
import pytest

from rlif_data import episodes as ep
from rlif_data import schema as sc
from rlif_data.recording import serialize
from tests.fakes.episodes import make_episode


def tfds_bytes(episode, schema):
    from tensorflow_datasets.core import example_serializer

    features = sc.features_dict(schema)
    ser = example_serializer.ExampleSerializer(features.get_serialized_info())
    return ser.serialize_example(features.encode_example(episode))


def fast_bytes(episode, schema):
    return serialize.serialize_episode(episode, sc.features_dict(schema).get_serialized_info())


def same_example(a, b):
    import tensorflow as tf

    return tf.train.Example.FromString(a) == tf.train.Example.FromString(b)


def camera_episode(n=7, derived=False):
    rng = np.random.default_rng(0)
    obs = {"state": rng.normal(size=(n + 1, 3)).astype(np.float32),
           "front": rng.integers(0, 255, (n + 1, 8, 8, 3), dtype=np.uint8),
           "wrist": rng.integers(0, 255, (n + 1, 8, 8, 3), dtype=np.uint8)}
    steps = ep.build_steps(obs, rng.uniform(-1, 1, (n, 2)), rng.normal(size=n), np.ones(n),
                           terminated=True, intervention=rng.random(n) < 0.5,
                           timestamps=np.arange(n) * 0.05)
    if derived:
        steps[sc.ENV_REWARD] = steps[sc.REWARD] * 2
        steps[sc.INCLUDE] = np.ones(n + 1, bool)
    meta = ep.complete_metadata({sc.EPISODE_ID: "séance/7", sc.ROUND: 3, sc.SEED: 2**40}, "t")
    return {**meta, sc.STEPS: steps}


@pytest.mark.parametrize("derived", [False, True])
def test_camera_episode_matches_tfds(derived):
    schema = sc.camera_schema(3, 2, cameras=("front", "wrist"), size=8, derived=derived)
    episode = camera_episode(derived=derived)
    assert same_example(fast_bytes(episode, schema), tfds_bytes(episode, schema))


def test_vector_episode_matches_tfds():
    schema = sc.vector_schema(3, 2, name="unit")
    for i in range(4):
        episode = make_episode(i, length=1 + 3 * i)
        assert same_example(fast_bytes(episode, schema), tfds_bytes(episode, schema))


def test_png_schemas_use_tfds():
    assert serialize.supports(sc.camera_schema(3, 2))
    assert not serialize.supports(sc.camera_schema(3, 2, encoding="png"))


def test_wrong_shape_is_refused():
    schema = sc.vector_schema(3, 2, name="unit")
    episode = make_episode(0)
    episode[sc.STEPS][sc.ACTION] = np.zeros((6, 5), np.float32)
    with pytest.raises(ValueError, match=r"steps/action: shape \(6, 5\)"):
        fast_bytes(episode, schema)


@pytest.mark.parametrize("values", [
    np.random.default_rng(1).standard_normal((1001, 17)).astype(np.float32),
    np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, 3.4e38, -7.25], np.float32),
    np.array([1e300, -1e300, 0.1], np.float64),  # beyond float32: inf, as protobuf casts
    np.ones((300,), np.float32),  # a length whose varint takes two bytes
])
def test_float_columns_parsed_from_their_wire_form_match_a_list_extend(values):
    from tensorflow_datasets.proto import tf_example_pb2 as example_pb2

    by_list, by_wire = example_pb2.Example(), example_pb2.Example()
    by_list.features.feature["x"].float_list.value.extend(values.ravel().tolist())
    by_wire.features.feature["x"].float_list.MergeFromString(
        serialize.float_list_wire(values.ravel()))
    assert (by_wire.SerializeToString(deterministic=True)
            == by_list.SerializeToString(deterministic=True))


def test_an_empty_float_column_is_still_present():
    from tensorflow_datasets.proto import tf_example_pb2 as example_pb2

    info = {"x": type("Info", (), {"np_dtype": np.float32, "shape": (None,)})()}
    got = example_pb2.Example.FromString(serialize.serialize_episode({"x": np.zeros(0)}, info))
    assert got.features.feature["x"].WhichOneof("kind") == "float_list"
    assert list(got.features.feature["x"].float_list.value) == []


def _tfds_parse(raw, schema):
    from tensorflow_datasets.core import example_parser

    return example_parser.ExampleParserNp(
        sc.features_dict(schema).get_serialized_info()).parse_example(raw)


def _fast_parse(raw, schema):
    from tensorflow_datasets.core import utils

    info = sc.features_dict(schema).get_serialized_info()
    return utils.pack_as_nest_dict(
        serialize.parse_episode(raw, utils.flatten_nest_dict(info)), info)


def _assert_same_tree(a, b, where=""):
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), where
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        np.testing.assert_array_equal(a, b, err_msg=where)
        assert a.flags.writeable, where  # callers may edit what they read
    else:
        assert a == b, where


@pytest.mark.parametrize("kind", ["vector", "camera", "derived-camera", "infos", "empty"])
def test_the_fast_parser_reads_what_tfds_parser_reads(kind):
    if kind == "vector":
        schema, episode = sc.vector_schema(3, 2, name="unit"), make_episode(3, length=9)
    elif kind == "empty":
        schema, episode = sc.vector_schema(3, 2, name="unit"), make_episode(0, length=0)
    elif kind == "infos":
        schema = sc.EpisodeSchema(sc.ArraySpec((3,)), 2, name="unit",
                                  infos={"qpos": sc.ArraySpec((4,), "float64")})
        episode = make_episode(1, length=5)
        episode[sc.STEPS][sc.INFOS] = {"qpos": np.random.default_rng(2).normal(size=(6, 4))}
    else:
        derived = kind.startswith("derived")
        schema = sc.camera_schema(3, 2, cameras=("front", "wrist"), size=8, derived=derived)
        episode = camera_episode(derived=derived)
    raw = serialize.serialize_episode(episode, sc.features_dict(schema).get_serialized_info(),
                                      serialize.bytes_fields(schema))
    _assert_same_tree(_fast_parse(raw, schema), _tfds_parse(raw, schema))


def test_float_array_reads_a_float_list_and_a_missing_feature_is_named():
    from tensorflow_datasets.proto import tf_example_pb2 as example_pb2

    float_list = example_pb2.Example().features.feature["x"].float_list
    float_list.value.extend([1.0, 2.5])
    np.testing.assert_array_equal(serialize.float_array(float_list), [1.0, 2.5])
    reward_info = sc.features_dict(sc.vector_schema(3, 2)).get_serialized_info()["steps"]["reward"]
    with pytest.raises(KeyError, match="no feature steps/reward"):
        serialize.parse_episode(example_pb2.Example().SerializeToString(),
                                {"steps/reward": reward_info})


@pytest.mark.parametrize("values,dtype", [
    (np.arange(300) % 2, np.bool_),  # flags: one byte each, the fast path
    (np.arange(300) % 4, np.int64),  # class labels
    (np.arange(300) * 1000, np.int64),  # timestamps: multi-byte varints, the list path
    (np.array([-1, 5] * 20), np.int64),  # negatives: ten bytes each, the list path
    (np.array([127, 128] * 20), np.int64),  # one byte and two bytes mixed
    (np.array([3]), np.int64),  # a scalar's list
])
def test_int_array_matches_numpy_of_the_list(values, dtype):
    from tensorflow_datasets.proto import tf_example_pb2 as example_pb2

    int_list = example_pb2.Example().features.feature["x"].int64_list
    int_list.value.extend(values.tolist())
    got = serialize.int_array(int_list, dtype)
    want = np.array(int_list.value, dtype=dtype)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert got.flags.writeable


# Values at every varint length boundary, both int64 ends and timestamps (~1.7e15 us).
_VARINT_EDGES = [0, 1, 127, 128, 2**14 - 1, 2**14, 2**21 - 1, 2**21, 2**56 - 1, 2**56,
                 2**63 - 1, -1, -2, -2**63, 1_700_000_000_000_000]


def _int64_list_bytes(values):
    from tensorflow_datasets.proto import tf_example_pb2 as example_pb2

    int_list = example_pb2.Example().features.feature["x"].int64_list
    int_list.value.extend(np.asarray(values).astype(np.int64).ravel().tolist())
    return int_list.SerializeToString()


@pytest.mark.parametrize("values", [
    np.array(_VARINT_EDGES),
    np.array([], np.int64),
    np.zeros((0, 3), np.int32),  # empty, multi-dim
    np.array(7),  # a metadata scalar
    np.array(-5, np.int32),
    np.array([True, False, True]),
    np.array([-128, -1, 0, 127], np.int8),
    np.array([0, 127, 128, 255], np.uint8),
    np.array([-2**31, -1, 0, 2**31 - 1], np.int32),
    np.array([0, 2**31, 2**32 - 1], np.uint32),
    np.array([0, 2**62, 2**63 - 1], np.uint64),
    np.arange(24).reshape(2, 3, 4) * 1000,  # multi-dim, read in C order
    np.arange(12).reshape(3, 4).T * 300,  # not C-contiguous
    1_700_000_000_000_000 + np.arange(1001) * 50_000,  # absolute timestamps: one length
    np.arange(1001) * 50_000,  # relative timestamps: 1 to 4 bytes
    np.full(300, -1),  # a body whose length varint takes two bytes; ten bytes each
])
def test_int64_list_wire_is_what_protobuf_writes(values):
    assert serialize.int64_list_wire(values) == _int64_list_bytes(values)


def test_int64_list_wire_matches_protobuf_on_seeded_random_values():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(0, 70))
        bits = rng.integers(0, 63, n)  # every bit length, so every varint length
        values = rng.integers(0, 2**62, n, dtype=np.int64) >> (62 - bits)
        values = values * rng.choice([1, -1], n)
        if seed % 4 == 0:
            values = rng.choice(np.array(_VARINT_EDGES), n)
        dtype = [np.int64, np.int32, np.uint32, np.int8, np.uint8, np.uint64][seed % 6]
        if dtype is not np.int64:
            info = np.iinfo(dtype)
            values = np.clip(values, info.min, min(info.max, 2**63 - 1)).astype(dtype)
        assert serialize.int64_list_wire(values) == _int64_list_bytes(values), seed


def test_a_list_extend_writes_the_same_bytes_as_the_wire_form():
    from tensorflow_datasets.proto import tf_example_pb2 as example_pb2

    for values in [np.array(_VARINT_EDGES), np.zeros(0, np.int64), np.ones(5, bool)]:
        by_list, by_wire = example_pb2.Example(), example_pb2.Example()
        by_list.features.feature["x"].int64_list.value.extend(values.astype(np.int64).tolist())
        by_wire.features.feature["x"].int64_list.MergeFromString(
            serialize.int64_list_wire(values))
        assert (by_wire.SerializeToString(deterministic=True)
                == by_list.SerializeToString(deterministic=True))


@pytest.mark.parametrize("length", [0, 1, len(_VARINT_EDGES) - 1, 300])
def test_episodes_with_extreme_ints_are_byte_identical_to_tfds(length):
    from tensorflow_datasets.proto import tf_example_pb2 as example_pb2

    schema = sc.vector_schema(3, 2, name="unit")
    episode = make_episode(5, length=length)
    stamps = np.resize(np.array(_VARINT_EDGES), length + 1)
    episode[sc.STEPS][sc.TIMESTAMP_US] = stamps
    episode[sc.SEED], episode[sc.ROUND] = 2**63 - 1, -7
    ours, theirs = fast_bytes(episode, schema), tfds_bytes(episode, schema)
    # TFDS writes map entries in no fixed order; in upb's deterministic order they are ours.
    assert ours == example_pb2.Example.FromString(theirs).SerializeToString(deterministic=True)
    parsed = serialize.parse_episode(ours, sc.serialized_fields(schema))
    np.testing.assert_array_equal(parsed[f"{sc.STEPS}/{sc.TIMESTAMP_US}"], stamps)
    assert (parsed[sc.SEED], parsed[sc.ROUND]) == (2**63 - 1, -7)


def test_float_values_for_an_int_feature_and_a_wrong_int_shape_are_refused():
    schema = sc.vector_schema(3, 2, name="unit")
    episode = make_episode(0)
    episode[sc.STEPS][sc.SOURCE] = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="steps/source: float values for an integer feature"):
        fast_bytes(episode, schema)
    episode = make_episode(0)
    episode[sc.STEPS][sc.TIMESTAMP_US] = np.zeros((6, 2), np.int64)
    with pytest.raises(ValueError, match=r"steps/timestamp_us: shape \(6, 2\) does not match"):
        fast_bytes(episode, schema)
