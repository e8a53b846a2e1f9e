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
