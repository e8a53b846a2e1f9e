"""The schema module: specs, TFDS features, format version."""

import os

import numpy as np
import pytest

from rlif_data import errors
from rlif_data import schema as sc


def test_vector_schema_json_round_trip():
    s = sc.vector_schema(11, 3)
    assert sc.EpisodeSchema.from_json(s.to_json()) == s
    assert s.to_json()["observation"] == {"kind": "array", "shape": [11], "dtype": "float32"}


def test_camera_schema_json_round_trip_and_key_order_does_not_matter():
    s = sc.camera_schema(17, 6, cameras=("wrist", "front"))
    assert sc.EpisodeSchema.from_json(s.to_json()) == s
    assert s == sc.camera_schema(17, 6, cameras=("front", "wrist"))
    assert s.observation["front"] == sc.ImageSpec(128, 128, 3, "raw")


def test_schemas_with_different_shapes_differ():
    assert sc.vector_schema(11, 3) != sc.vector_schema(17, 3)
    assert sc.vector_schema(11, 3) != sc.vector_schema(11, 6)


def test_features_hold_every_step_and_episode_field():
    features = sc.features_dict(sc.vector_schema(11, 3))
    steps = features[sc.STEPS].feature
    assert set(steps.keys()) == set(sc.CORE_STEP_FIELDS) | set(sc.INTERVENTION_STEP_FIELDS)
    assert set(features.keys()) == {sc.STEPS} | set(sc.EPISODE_METADATA_FIELDS)
    assert steps[sc.SOURCE].names == ["policy", "expert", "human", "dataset"]
    assert steps[sc.POLICY_ACTION].shape == (3,)


def test_camera_features_store_raw_uint8_or_png():
    raw = sc.features_dict(sc.camera_schema(7, 2))[sc.STEPS].feature[sc.OBSERVATION]
    assert raw["front"].shape == (128, 128, 3) and raw["front"].dtype == np.uint8
    png = sc.features_dict(sc.camera_schema(7, 2, encoding="png"))[sc.STEPS].feature[sc.OBSERVATION]
    assert type(png["front"]).__name__ == "Image"


def test_bad_schema_values_are_rejected():
    with pytest.raises(ValueError, match="action_dim"):
        sc.vector_schema(3, 0)
    with pytest.raises(ValueError, match="encoding"):
        sc.features_dict(sc.camera_schema(3, 1, encoding="jpeg2000"))


def test_format_version_check():
    sc.check_format_version(sc.FORMAT_VERSION, "/x")
    with pytest.raises(errors.FormatVersionError, match="/x.*not written by rlif-data"):
        sc.check_format_version(None, "/x")
    with pytest.raises(errors.FormatVersionError, match="format 9.0"):
        sc.check_format_version("9.0", "/x")


@pytest.mark.parametrize("schema", [sc.vector_schema(11, 3), sc.camera_schema(7, 2),
                                    sc.camera_schema(7, 2, encoding="png", derived=True)])
def test_reader_features_equal_the_rlds_builder_features(schema):
    import tensorflow_datasets as tfds

    identity = tfds.core.dataset_info.DatasetIdentity(
        name=schema.name, version=tfds.core.Version("1.0.0"), data_dir="", module_name="")
    built = tfds.rlds.rlds_base.build_info(sc.dataset_config(schema), identity).features
    assert built.to_json() == sc.features_dict(schema).to_json()


def test_reading_does_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    from tests.fakes.episodes import make_episode, write_recording

    rec = write_recording(tmp_path / "rec", [make_episode(0)])
    code = ("import sys\nfrom rlif_data.recording.reader import read_episodes\n"
            f"eps = read_episodes({rec!r})\n"
            "print(len(eps), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.split() == ["1", "False"]
