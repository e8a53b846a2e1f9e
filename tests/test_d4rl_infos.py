"""D4RL ``infos/*`` columns kept as extra step fields (``steps/infos/<name>``, format 1.1).

Real files in D4RL's layout (h5py), real Beam jobs writing array_record
datasets, read back by the project's reader, TFDS' tf.data path and the
trainers' loader.
"""

import dataclasses
import json
import os

import numpy as np
import pytest

from pipelines import ingest_d4rl, relabel
from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording.reader import EpisodeReader, check_stored_features, read_episodes
from rlif_data.sources import d4rl_hdf5
from rlif_data.sources.d4rl_steps import episode_steps, select_info_columns
from tests.fakes.d4rl_files import BOTH, TERMINAL, TIMEOUT, write_d4rl_file

SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
LENGTHS = (4, 3, 5)
ROWS = sum(LENGTHS)


def infos_override(rows=ROWS):
    """float64 qpos with values float32 cannot hold, int8 and uint32 columns, a scalar float."""
    rng = np.random.default_rng(7)
    return {
        "infos/qpos": rng.normal(size=(rows, 4)) * 1e3 + 1e-9,  # float64
        "infos/action_log_probs": rng.normal(size=rows),  # float64, shape (rows,)
        "infos/contact": (np.arange(rows * 2).reshape(rows, 2) % 5 - 2).astype(np.int8),
        "infos/counter": (np.arange(rows, dtype=np.uint32) + 4_000_000_000),
        "infos/short": np.zeros((rows - 1, 2), np.float32),  # not one row per transition
        "infos/label": np.array([b"x"] * rows),  # text: not stored
        "infos/nested/deep": np.ones(rows, np.float32),  # a group under infos/
    }


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_d4rl_file(tmp_path_factory.mktemp("d4rl") / "hopper_infos-v2.hdf5",
                           episode_lengths=LENGTHS, end_kinds=(TERMINAL, TIMEOUT, BOTH),
                           override=infos_override())


@pytest.fixture(scope="module")
def ingested(fake, tmp_path_factory):
    return ingest_d4rl.run(str(fake.path), str(tmp_path_factory.mktemp("ing") / "ds"),
                           beam_args=SINGLE)


KEPT = {"action_log_probs": ((), "float64"), "contact": ((2,), "int8"),
        "counter": ((), "int64"), "qpos": ((4,), "float64"), "qvel": ((3,), "float32")}


def test_select_info_columns_keeps_numeric_per_row_columns_and_says_why_not_the_rest():
    columns = {"infos/qpos": ((12, 4), "float64"), "infos/short": ((11,), "float32"),
               "infos/label": ((12,), "bytes40"), "infos/big": ((12,), "uint64"),
               "infos/counter": ((12,), "uint32"), "infos/a/b": ((12,), "float32"),
               "infos/scalar": ((), "float32")}
    kept, ignored = select_info_columns(columns, 12)
    assert {k: (c.shape, c.dtype) for k, c in kept.items()} == {
        "qpos": ((4,), "float64"), "counter": ((), "int64")}
    assert set(ignored) == {"infos/short", "infos/label", "infos/big", "infos/a/b",
                            "infos/scalar"}
    assert "11" in ignored["infos/short"] and "uint64" in ignored["infos/big"]


def test_inspect_reports_kept_and_ignored_infos(fake):
    summary = d4rl_hdf5.inspect_d4rl(fake.path)
    assert {k: (tuple(v["shape"]), v["dtype"]) for k, v in summary["infos"].items()} == KEPT
    assert summary["infos"]["qpos"]["key"] == "infos/qpos"
    assert set(summary["ignored_infos"]) == {"infos/short", "infos/label", "infos/nested/deep"}
    assert set(summary["other_keys"]) == {"infos/short", "infos/label", "infos/nested/deep",
                                          "metadata/algorithm"}
    assert {k: (s.shape, s.dtype) for k, s in d4rl_hdf5.info_specs(summary).items()} == KEPT


def test_episode_steps_put_infos_with_their_transition_and_zero_the_final_step():
    obs = np.arange(8, dtype=np.float32).reshape(4, 2)
    act = np.ones((4, 1), np.float32)
    qpos = np.arange(4, dtype=np.float64) + 0.1
    # Truncated, no next_observations: the last row's transition is dropped, its info too.
    steps = episode_steps(obs, act, np.zeros(4), "timeout", infos={"qpos": qpos})
    np.testing.assert_array_equal(steps[sc.INFOS]["qpos"], [0.1, 1.1, 2.1, 0.0])
    assert steps[sc.INFOS]["qpos"].dtype == np.float64
    # Terminated: every row is a transition, the final (placeholder) step holds zeros.
    steps = episode_steps(obs, act, np.zeros(4), "terminal", infos={"qpos": qpos})
    np.testing.assert_array_equal(steps[sc.INFOS]["qpos"], [0.1, 1.1, 2.1, 3.1, 0.0])
    with pytest.raises(ValueError, match="infos/qpos 3"):
        episode_steps(obs, act, np.zeros(4), "terminal", infos={"qpos": qpos[:3]})


def test_reader_yields_the_file_rows_bit_exact(fake):
    data = fake.data
    start = 0
    for episode, n in zip(d4rl_hdf5.read_d4rl_episodes(fake.path), LENGTHS):
        infos = episode[sc.STEPS][sc.INFOS]
        assert set(infos) == set(KEPT)
        for name, (shape, dtype) in KEPT.items():
            values = infos[name]
            assert values.dtype == np.dtype(dtype) and values.shape == (n + 1,) + shape
            rows = np.asarray(data[f"infos/{name}"][start:start + n]).astype(dtype)
            np.testing.assert_array_equal(values[:n], rows, err_msg=name)
            assert not values[n].any(), name  # the final step: zeros
        start += n
    plain = next(d4rl_hdf5.read_d4rl_episodes(fake.path, infos=False))
    assert sc.INFOS not in plain[sc.STEPS]


def test_ingest_keeps_infos_in_format_1_1(ingested, fake):
    with open(os.path.join(ingested, sc.METADATA_FILE)) as f:
        metadata = json.load(f)
    assert metadata[sc.FORMAT_VERSION_KEY] == "1.1"
    assert set(metadata[sc.SCHEMA_KEY][sc.INFOS]) == set(KEPT)
    assert metadata["lineage"]["params"]["drop_infos"] is False
    with EpisodeReader(ingested) as reader:
        assert {k: (s.shape, s.dtype) for k, s in reader.schema.infos.items()} == KEPT
        got = list(reader)
    want = list(d4rl_hdf5.read_d4rl_episodes(fake.path))
    assert len(got) == len(want) == 3
    for a, b in zip(want, got):
        for name in KEPT:
            assert b[sc.STEPS][sc.INFOS][name].dtype == a[sc.STEPS][sc.INFOS][name].dtype
            # Bit-exact, float64 included (tf.Example's float list would hold float32).
            assert (b[sc.STEPS][sc.INFOS][name].tobytes()
                    == a[sc.STEPS][sc.INFOS][name].tobytes()), name
        np.testing.assert_array_equal(b[sc.STEPS][sc.OBSERVATION], a[sc.STEPS][sc.OBSERVATION])


def test_relabel_carries_infos_through_bit_exact(ingested, tmp_path):
    out = relabel.run(ingested, str(tmp_path / "paper"), "paper", SINGLE)
    with EpisodeReader(out) as reader:
        assert reader.schema.infos == EpisodeReader(ingested).schema.infos
        assert reader.schema.derived
    for a, b in zip(read_episodes(ingested), read_episodes(out)):
        for name in KEPT:
            assert (a[sc.STEPS][sc.INFOS][name].tobytes()
                    == b[sc.STEPS][sc.INFOS][name].tobytes()), name
        assert sc.INCLUDE in b[sc.STEPS]


def test_downsample_and_merge_carry_infos_through_bit_exact(ingested, tmp_path):
    from pipelines import downsample, merge

    source = {e[sc.EPISODE_ID]: e for e in read_episodes(ingested)}
    subset = downsample.run(ingested, str(tmp_path / "sub"), episodes=2, seed=1,
                            beam_args=SINGLE)
    merged = merge.run([ingested, subset], str(tmp_path / "merged"))
    for out, count in ((subset, 2), (merged, 5)):
        got = read_episodes(out)
        assert len(got) == count
        for episode in got:
            want = source[episode[sc.EPISODE_ID]][sc.STEPS][sc.INFOS]
            for name in KEPT:
                assert episode[sc.STEPS][sc.INFOS][name].tobytes() == want[name].tobytes()


def test_drop_infos_gives_the_1_0_layout(fake, tmp_path):
    out = str(tmp_path / "plain")
    ingest_d4rl.main(["--path", str(fake.path), "--out", out, "--drop-infos", *SINGLE])
    with EpisodeReader(out) as reader:
        assert reader.schema.infos == {}
        episode = reader[0]
    assert sc.INFOS not in episode[sc.STEPS]
    with open(os.path.join(out, sc.METADATA_FILE)) as f:
        metadata = json.load(f)
    assert sc.INFOS not in metadata[sc.SCHEMA_KEY]  # the schema JSON a 1.0 reader knows
    assert metadata["lineage"]["params"]["drop_infos"] is True


def test_a_reader_without_infos_refuses_such_data_in_one_line(ingested):
    """What a format-1.0 reader does: its features lack steps/infos, its check names them."""
    schema = EpisodeReader(ingested).schema
    older = sc.features_dict(dataclasses.replace(schema, infos={}))
    with pytest.raises(errors.FormatVersionError) as info:
        check_stored_features(ingested, older)
    message = str(info.value)
    assert "\n" not in message
    assert "unexpected ['steps/infos/action_log_probs'" in message
    assert "steps/infos/qpos" in message


def test_tf_dataset_decodes_infos(ingested, fake):
    from rlif_data.tfdata import as_tf_dataset

    first = next(iter(as_tf_dataset(ingested)))
    qpos = np.stack([s[sc.INFOS]["qpos"].numpy() for s in first[sc.STEPS]])
    assert qpos.dtype == np.float64
    np.testing.assert_array_equal(qpos[:LENGTHS[0]], fake.data["infos/qpos"][:LENGTHS[0]])
    assert not qpos[-1].any()


def test_trainer_loading_ignores_infos(ingested, tmp_path):
    from trainers.data.loading import load_transitions

    transitions, _ = load_transitions(ingested, reward="env", cache_dir=str(tmp_path / "c"))
    # Terminated (4 rows -> 4), truncated with next_observations (3 -> 3), both (5 -> 5).
    assert len(transitions.actions) == ROWS
    assert transitions.observations.shape == (ROWS, 3)


def test_merge_of_data_with_and_without_infos_names_the_difference(ingested, fake, tmp_path):
    from pipelines import merge

    bare = ingest_d4rl.run(str(fake.path), str(tmp_path / "bare"), beam_args=SINGLE,
                           drop_infos=True)
    with pytest.raises(errors.SchemaMismatchError, match="cannot merge") as info:
        merge.run([ingested, bare], str(tmp_path / "m"))
    assert "infos" in str(info.value)  # the schemas' descriptions show the extra fields
    assert not (tmp_path / "m").exists()
