"""The one rule for source arrays (flags, NaN/inf, row counts), and all three readers keeping it."""

import h5py
import numpy as np
import pytest

from rlif_data.sources import arrays, d4rl_hdf5, demo_files, minari_steps
from tests.fakes.d4rl_files import write_d4rl_file


class ReaderError(ValueError):
    """Stands for a reader's own error class: the functions must raise the one given."""


@pytest.mark.parametrize("values, want", [
    (np.array([False, True, False]), [False, True, False]),
    (np.array([0, 1, 1], np.uint8), [False, True, True]),
    (np.array([0, 0, 1], np.int64), [False, False, True]),
    (np.array([0.0, 1.0, 0.0], np.float32), [False, True, False]),  # old D4RL files
    (np.zeros(0, np.float64), []),
])
def test_flags_are_bool_or_0_1(values, want):
    got = arrays.flag_column(values, "done", "f.h5", ReaderError)
    assert got.dtype == np.bool_ and got.tolist() == want


@pytest.mark.parametrize("values, row", [
    (np.array([0, 2, 1]), 1),          # not "any non-zero": a 2 is a damaged flag
    (np.array([0, 0, -1]), 2),
    (np.array([0.0, 0.5, 1.0]), 1),
    (np.array([0.0, 1.0, np.nan]), 2),
    (np.array([1, 0, 7], np.uint8), 2),
])
def test_anything_else_names_the_key_and_first_bad_row(values, row):
    with pytest.raises(ReaderError, match=rf"^f\.h5, episode_0: 'done' must be bool \(or 0/1\), "
                                          rf"got .* at row {row}$"):
        arrays.flag_column(values, "done", "f.h5, episode_0", ReaderError)


def test_text_flags_and_wrong_shapes_are_refused():
    with pytest.raises(ReaderError, match=r"'done' must be bool .*<U1.* at row 0"):
        arrays.flag_column(np.array(["1", "0"]), "done", "f", ReaderError)
    with pytest.raises(ReaderError, match=r"'done' must have shape \[rows\], got \(3, 1\)"):
        arrays.flag_column(np.zeros((3, 1)), "done", "f", ReaderError)
    column = arrays.flag_column(np.array([[0], [1]]), "done", "f", ReaderError, column_ok=True)
    assert column.tolist() == [False, True]
    with pytest.raises(ReaderError, match=r"shape \[rows\] or \[rows, 1\], got \(2, 2\)"):
        arrays.flag_column(np.zeros((2, 2)), "done", "f", ReaderError, column_ok=True)


def test_one_flag_per_episode():
    assert arrays.flag_value(np.bool_(True), "terminated", "f", ReaderError) is True
    assert arrays.flag_value(np.int64(0), "terminated", "f", ReaderError) is False
    for bad in (2, 0.5, "yes"):
        with pytest.raises(ReaderError, match=r"'terminated' must be a bool \(or 0/1\)"):
            arrays.flag_value(np.asarray(bad), "terminated", "f", ReaderError)
    with pytest.raises(ReaderError, match=r"must be a scalar bool .* got shape \(2,\)"):
        arrays.flag_value(np.zeros(2, bool), "terminated", "f", ReaderError)


def test_check_finite_names_the_file_row_and_context():
    values = np.ones((5, 2), np.float32)
    assert arrays.check_finite(values, "obs", "f", ReaderError) is values
    values[3, 1] = np.inf
    with pytest.raises(ReaderError, match=r"^f: 'obs' has a non-finite value \(NaN/inf\) at row 13 "
                                          r"\(episode 2\)$"):
        arrays.check_finite(values, "obs", "f", ReaderError, first_row=10, context="episode 2")
    ints = np.array([1, 2, 3])
    assert arrays.check_finite(ints, "obs", "f", ReaderError) is ints
    assert arrays.first_non_finite_row(np.array([[0.0], [np.nan]])) == 1
    assert arrays.first_non_finite_row(np.zeros((2, 3))) is None


def test_check_rows_allows_one_more_for_the_final_observation():
    rows = {"actions": 4, "observations": 5, "rewards": 4}
    arrays.check_rows(rows, "actions", "f", ReaderError, one_more=("observations",))
    with pytest.raises(ReaderError, match=r"^f: 'rewards' has 3 rows but 'actions' has 4; T rows$"):
        arrays.check_rows({**rows, "rewards": 3}, "actions", "f", ReaderError,
                          one_more=("observations",), hint="T rows")
    with pytest.raises(ReaderError, match=r"'observations' has 5 rows but 'actions' has 4$"):
        arrays.check_rows(rows, "actions", "f", ReaderError)


def test_numeric_columns_of_the_layout_rank():
    got = arrays.numeric(np.zeros((3, 2), np.int32), "actions", "f", ReaderError, ndim=2,
                         shape="[T, act_dim]")
    assert got.shape == (3, 2)
    with pytest.raises(ReaderError, match=r"^f: 'actions' must be 2-D \[T, act_dim\], got shape \(3,\)$"):
        arrays.numeric(np.zeros(3), "actions", "f", ReaderError, ndim=2, shape="[T, act_dim]")
    with pytest.raises(ReaderError, match=r"'actions' must be numeric, got dtype <U1"):
        arrays.numeric(np.array([["a"]]), "actions", "f", ReaderError, ndim=2, shape="[T, A]")


def test_discounts_stop_only_at_a_termination():
    assert arrays.end_discounts(3, terminated=True).tolist() == [1.0, 1.0, 0.0]
    assert arrays.end_discounts(3, terminated=False).tolist() == [1.0, 1.0, 1.0]
    assert arrays.end_discounts(0, terminated=False).tolist() == []


# -- the three readers keep the same rule, each with its own error class ----------------


def test_d4rl_refuses_a_flag_of_2_naming_the_file_key_and_row(tmp_path):
    terminals = np.zeros(12, np.int64)
    terminals[3], terminals[7] = 1, 2
    fake = write_d4rl_file(tmp_path / "f.hdf5", override={"terminals": terminals})
    with pytest.raises(d4rl_hdf5.D4RLFormatError,
                       match=r"f\.hdf5: 'terminals' must be bool \(or 0/1\), got 2 .* at row 7"):
        d4rl_hdf5.read_d4rl_episodes(fake.path)
    terminals[7] = 1  # 0/1 integers are flags: two terminations, at rows 3 and 7
    fake = write_d4rl_file(tmp_path / "g.hdf5", override={"terminals": terminals})
    summary = d4rl_hdf5.inspect_d4rl(fake.path)
    assert summary["terminal_episodes"] == 2


def test_minari_refuses_a_flag_of_2():
    obs, act, rew = np.zeros((4, 2)), np.zeros((3, 1)), np.zeros(3)
    with pytest.raises(minari_steps.MinariFormatError,
                       match=r"ep: 'truncations' must be bool \(or 0/1\), got 2 .* at row 2"):
        minari_steps.episode_steps(obs, act, rew, np.zeros(3, bool), np.array([0, 0, 2]),
                                   where="ep")
    steps = minari_steps.episode_steps(obs, act, rew, np.array([0, 0, 1]), np.zeros(3, np.uint8))
    assert steps["is_terminal"][-1]  # a 1 ends the episode as True did


def test_demo_files_refuse_an_intervention_flag_of_2(tmp_path):
    path = tmp_path / "demos.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("episode_0")
        group.create_dataset("observations", data=np.zeros((4, 2), np.float32))
        group.create_dataset("actions", data=np.zeros((3, 1), np.float32))
        group.create_dataset("interventions", data=np.array([0, 2, 1]))
    with pytest.raises(demo_files.DemoFormatError,
                       match=r"episode_0: 'interventions' must be bool \(or 0/1\), got 2 .* at row 1"):
        list(demo_files.read_demo_episodes(path))
