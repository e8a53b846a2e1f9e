"""`rlif_data.as_tf_dataset`: published versions as tf.data RLDS episodes, read by rlds."""

import os
import subprocess
import sys

import numpy as np
import pytest

import rlif_data
from pipelines import relabel
from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from rlif_data.registry.store import Registry
from tests.fakes.episodes import make_episode, write_recording

SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A raw recording and its hg-dagger relabelling, published in one registry."""
    base = tmp_path_factory.mktemp("tfdata")
    rec = write_recording(base / "rec", [make_episode(i, length=3 + i) for i in range(4)])
    ds = relabel.run(rec, str(base / "hg"), "hg-dagger", SINGLE)
    root = str(base / "reg")
    reg = Registry(root)
    reg.publish(rec, "demo-raw")
    reg.publish(ds, "demo", tags=("latest", "round-1"))
    return {"root": root, "rec": rec, "ds": ds, "episodes": read_episodes(ds)}


def test_episodes_through_rlds_transformations_match_the_files(published):
    import rlds
    import tensorflow as tf

    episodes = rlif_data.as_tf_dataset("demo@round-1", root=published["root"])
    want = published["episodes"]
    assert int(episodes.cardinality()) == len(want)
    lengths = [int(rlds.transformations.episode_length(e[sc.STEPS])) for e in episodes]
    assert lengths == [len(e[sc.STEPS][sc.REWARD]) for e in want]
    for got, ref in zip(episodes, want):
        steps = ref[sc.STEPS]
        assert got[sc.EPISODE_ID].numpy().decode() == ref[sc.EPISODE_ID]
        total = rlds.transformations.sum_dataset(got[sc.STEPS], lambda s: s[sc.ENV_REWARD])
        np.testing.assert_allclose(float(total), steps[sc.ENV_REWARD].sum(), rtol=1e-6)
        # (o_t, o_t+1) windows, the way transition loaders read RLDS steps.
        pairs = rlds.transformations.batch(got[sc.STEPS], size=2, shift=1, drop_remainder=True)
        pairs = list(pairs.as_numpy_iterator())
        assert len(pairs) == len(steps[sc.REWARD]) - 1
        for t, pair in enumerate(pairs):
            np.testing.assert_array_equal(pair[sc.OBSERVATION], steps[sc.OBSERVATION][t:t + 2])
            # The view's mask travels with the steps, step by step.
            assert bool(pair[sc.INCLUDE][0]) == bool(steps[sc.INCLUDE][t])
    # Nested RLDS layout: steps is a dataset, as TFDS gives it.
    assert isinstance(episodes.element_spec[sc.STEPS], tf.data.DatasetSpec)


def test_include_mask_selects_the_views_transitions(published):
    import rlds

    episodes = rlif_data.as_tf_dataset("demo:1.0.0", root=published["root"])
    kept = rlds.transformations.sum_nested_steps(
        episodes, lambda s: {"kept": tf_int(s[sc.INCLUDE])})
    want = sum(int(e[sc.STEPS][sc.INCLUDE].sum()) for e in published["episodes"])
    # hg-dagger keeps expert-controlled steps only: fewer than all, more than none.
    total = sum(len(e[sc.STEPS][sc.INCLUDE]) for e in published["episodes"])
    assert 0 < int(kept["kept"]) == want < total


def tf_int(x):
    import tensorflow as tf

    return tf.cast(x, tf.int64)


def test_a_path_and_a_raw_recording_read_too(published):
    episodes = list(rlif_data.as_tf_dataset(published["rec"]))
    raw = read_episodes(published["rec"])
    assert len(episodes) == len(raw)
    steps = list(episodes[2][sc.STEPS].as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([s[sc.ACTION] for s in steps]),
                                  raw[2][sc.STEPS][sc.ACTION])
    assert sc.INCLUDE not in steps[0]  # raw data: every transition counts
    # The same via the registry reference of the raw version.
    assert len(list(rlif_data.as_tf_dataset("demo-raw@latest", root=published["root"]))) == 4


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_camera_frames_decode_as_the_numpy_reader_gives_them(tmp_path, encoding):
    schema = sc.camera_schema(3, 2, cameras=("front",), size=8, encoding=encoding, name="cam")
    rng = np.random.default_rng(0)
    episodes = []
    for i in range(2):
        e = make_episode(i, length=4)
        obs = e[sc.STEPS][sc.OBSERVATION]
        e[sc.STEPS][sc.OBSERVATION] = {
            sc.STATE_KEY: obs, "front": rng.integers(0, 255, (len(obs), 8, 8, 3), np.uint8)}
        episodes.append(e)
    rec = write_recording(tmp_path / "cam", episodes, schema=schema)
    got = list(rlif_data.as_tf_dataset(rec))
    for g, want in zip(got, read_episodes(rec)):
        frames = np.stack([s[sc.OBSERVATION]["front"] for s in g[sc.STEPS].as_numpy_iterator()])
        np.testing.assert_array_equal(frames, want[sc.STEPS][sc.OBSERVATION]["front"])


def test_bad_references_fail_when_called_with_one_line(tmp_path, published):
    with pytest.raises(FileNotFoundError, match="not a dataset reference"):
        rlif_data.as_tf_dataset(str(tmp_path / "nothing here"))
    with pytest.raises(errors.RlifDataError, match="demo@nope"):
        rlif_data.as_tf_dataset("demo@nope", root=published["root"])


def test_tensorflow_is_imported_only_when_called():
    code = ("import sys, rlif_data; f = rlif_data.as_tf_dataset; "
            "print('tensorflow' in sys.modules, callable(f))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "True"]
