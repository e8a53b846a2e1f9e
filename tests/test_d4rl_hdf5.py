"""D4RL HDF5 ingestion: splitting, transition semantics, bad files, catalog."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rlif_data import errors, schema
from rlif_data.sources import d4rl_catalog, d4rl_hdf5
from rlif_data.sources.d4rl_hdf5 import (
    END_CUT,
    END_TERMINAL,
    END_TIMEOUT,
    D4RLFormatError,
    EpisodeSpan,
    episode_boundaries,
    episode_steps,
    inspect_d4rl,
    read_d4rl_episodes,
)
from tests.fakes import d4rl_files
from tests.fakes.d4rl_files import BOTH, CUT, TERMINAL, TIMEOUT, write_d4rl_file


def _spans(*triples):
    return [EpisodeSpan(s, e, k) for s, e, k in triples]


def _flags(n, rows):
    out = np.zeros(n, dtype=bool)
    out[list(rows)] = True
    return out


# ---------------------------------------------------------------------------
# episode_boundaries
# ---------------------------------------------------------------------------

BOUNDARY_CASES = [
    # id, terminals, timeouts (None: key absent), max_episode_steps, expected spans
    (
        "terminals_only",
        _flags(5, [2, 4]),
        _flags(5, []),
        None,
        _spans((0, 3, END_TERMINAL), (3, 5, END_TERMINAL)),
    ),
    (
        "timeouts_only",
        _flags(5, []),
        _flags(5, [1, 4]),
        None,
        _spans((0, 2, END_TIMEOUT), (2, 5, END_TIMEOUT)),
    ),
    (
        "terminal_and_timeout_same_row_is_terminal",
        _flags(4, [3]),
        _flags(4, [1, 3]),
        None,
        _spans((0, 2, END_TIMEOUT), (2, 4, END_TERMINAL)),
    ),
    (
        "trailing_rows_are_cut",
        _flags(6, [1]),
        _flags(6, [3]),
        None,
        _spans((0, 2, END_TERMINAL), (2, 4, END_TIMEOUT), (4, 6, END_CUT)),
    ),
    (
        "no_flags_at_all_is_one_cut_episode",
        _flags(3, []),
        _flags(3, []),
        None,
        _spans((0, 3, END_CUT)),
    ),
    (
        "timeouts_present_ignore_max_episode_steps",
        _flags(6, []),
        _flags(6, [5]),
        2,
        _spans((0, 6, END_TIMEOUT)),
    ),
    (
        "no_timeouts_split_by_length",
        _flags(8, []),
        None,
        3,
        _spans((0, 3, END_TIMEOUT), (3, 6, END_TIMEOUT), (6, 8, END_CUT)),
    ),
    (
        "no_timeouts_length_count_restarts_after_terminal",
        _flags(9, [4]),
        None,
        3,
        _spans((0, 3, END_TIMEOUT), (3, 5, END_TERMINAL), (5, 8, END_TIMEOUT), (8, 9, END_CUT)),
    ),
    (
        "no_timeouts_terminal_on_the_limit_row_is_terminal",
        _flags(6, [2]),
        None,
        3,
        _spans((0, 3, END_TERMINAL), (3, 6, END_TIMEOUT)),
    ),
    (
        "no_timeouts_no_limit_splits_at_terminals_only",
        _flags(7, [1, 4]),
        None,
        None,
        _spans((0, 2, END_TERMINAL), (2, 5, END_TERMINAL), (5, 7, END_CUT)),
    ),
    ("empty_file", _flags(0, []), _flags(0, []), None, []),
    ("empty_file_no_timeouts", _flags(0, []), None, 1000, []),
]


@pytest.mark.parametrize(
    "terminals,timeouts,max_steps,expected",
    [c[1:] for c in BOUNDARY_CASES],
    ids=[c[0] for c in BOUNDARY_CASES],
)
def test_episode_boundaries(terminals, timeouts, max_steps, expected):
    spans = episode_boundaries(terminals, timeouts, max_episode_steps=max_steps)
    assert spans == expected
    # The spans tile the rows exactly.
    assert sum(s.num_rows for s in spans) == len(terminals)


def test_episode_boundaries_accepts_column_and_float_flags():
    terminals = np.array([[0.0], [1.0], [0.0]], dtype=np.float32)
    timeouts = np.array([[0], [0], [1]], dtype=np.uint8)
    assert episode_boundaries(terminals, timeouts) == _spans(
        (0, 2, END_TERMINAL), (2, 3, END_TIMEOUT)
    )


@pytest.mark.parametrize(
    "terminals,timeouts,max_steps,message",
    [
        (_flags(3, []), _flags(4, []), None, "'timeouts' has 4 rows"),
        (_flags(3, []), None, 0, "max_episode_steps must be positive"),
        (np.zeros((3, 2)), None, None, "'terminals' must have shape"),
    ],
)
def test_episode_boundaries_rejects_bad_flags(terminals, timeouts, max_steps, message):
    with pytest.raises(ValueError, match=message):
        episode_boundaries(terminals, timeouts, max_episode_steps=max_steps)


# ---------------------------------------------------------------------------
# episode_steps (pure transition semantics)
# ---------------------------------------------------------------------------


def _rows(n, obs_dim=2, act_dim=1):
    obs = np.arange(n * obs_dim, dtype=np.float32).reshape(n, obs_dim)
    act = -np.arange(1, n * act_dim + 1, dtype=np.float32).reshape(n, act_dim)
    rew = np.arange(1, n + 1, dtype=np.float32)
    return obs, act, rew


TRANSITION_CASES = [
    # id, end_kind, with next obs, expected steps, expected discount, is_terminal at end
    ("timeout_next_obs", END_TIMEOUT, True, 4, [1, 1, 1, 0], False),
    ("terminal_next_obs", END_TERMINAL, True, 4, [1, 1, 0, 0], True),
    ("cut_next_obs", END_CUT, True, 4, [1, 1, 1, 0], False),
    ("timeout_no_next_obs_drops_last_row", END_TIMEOUT, False, 3, [1, 1, 0], False),
    ("cut_no_next_obs_drops_last_row", END_CUT, False, 3, [1, 1, 0], False),
    ("terminal_no_next_obs_keeps_terminal_transition", END_TERMINAL, False, 4, [1, 1, 0, 0], True),
]


@pytest.mark.parametrize(
    "end_kind,with_next,num_steps,discount,terminal",
    [c[1:] for c in TRANSITION_CASES],
    ids=[c[0] for c in TRANSITION_CASES],
)
def test_episode_steps_transition_semantics(end_kind, with_next, num_steps, discount, terminal):
    obs, act, rew = _rows(3)
    final = np.array([100.0, 101.0], dtype=np.float32) if with_next else None
    steps = episode_steps(obs, act, rew, end_kind, final_observation=final)
    transitions = num_steps - 1

    assert len(steps[schema.OBSERVATION]) == num_steps
    np.testing.assert_array_equal(steps[schema.DISCOUNT], np.array(discount, dtype=np.float32))
    np.testing.assert_array_equal(steps[schema.IS_TERMINAL], [False] * transitions + [terminal])
    np.testing.assert_array_equal(steps[schema.IS_LAST], [False] * transitions + [True])
    np.testing.assert_array_equal(steps[schema.IS_FIRST], [True] + [False] * transitions)
    # Observations of the transitions are the file rows, in order.
    np.testing.assert_array_equal(steps[schema.OBSERVATION][:transitions], obs[:transitions])
    if with_next:
        np.testing.assert_array_equal(steps[schema.OBSERVATION][-1], final)
    else:
        # Never anything but this episode's own last observation row.
        np.testing.assert_array_equal(steps[schema.OBSERVATION][-1], obs[-1])
    np.testing.assert_array_equal(steps[schema.ACTION][:transitions], act[:transitions])
    np.testing.assert_array_equal(steps[schema.REWARD][:transitions], rew[:transitions])
    # The final step holds zeros.
    assert not steps[schema.ACTION][-1].any()
    assert steps[schema.REWARD][-1] == 0.0


def test_episode_steps_dataset_fields_and_dtypes():
    obs, act, rew = _rows(3, obs_dim=4, act_dim=2)
    steps = episode_steps(obs, act, rew, END_TIMEOUT, final_observation=obs[-1] + 1)
    assert set(steps) == set(schema.CORE_STEP_FIELDS) | set(schema.INTERVENTION_STEP_FIELDS)
    expected_dtypes = {
        schema.OBSERVATION: np.float32,
        schema.ACTION: np.float32,
        schema.POLICY_ACTION: np.float32,
        schema.EXPERT_ACTION: np.float32,
        schema.REWARD: np.float32,
        schema.DISCOUNT: np.float32,
        schema.IS_FIRST: np.bool_,
        schema.IS_LAST: np.bool_,
        schema.IS_TERMINAL: np.bool_,
        schema.INTERVENTION: np.bool_,
        schema.INTERVENTION_START: np.bool_,
        schema.HAS_EXPERT_ACTION: np.bool_,
        schema.SOURCE: np.int64,
        schema.TIMESTAMP_US: np.int64,
    }
    for field, dtype in expected_dtypes.items():
        assert steps[field].dtype == dtype, field
        assert len(steps[field]) == 4, field
    assert steps[schema.OBSERVATION].shape == (4, 4)
    assert steps[schema.ACTION].shape == (4, 2)
    np.testing.assert_array_equal(steps[schema.EXPERT_ACTION], steps[schema.ACTION])
    np.testing.assert_array_equal(steps[schema.HAS_EXPERT_ACTION], [True, True, True, False])
    assert not steps[schema.POLICY_ACTION].any()
    assert not steps[schema.INTERVENTION].any()
    assert not steps[schema.INTERVENTION_START].any()
    # The final step holds no action, so it carries the zero defaults.
    np.testing.assert_array_equal(steps[schema.SOURCE], [int(schema.Source.DATASET)] * 3 + [0])
    assert not steps[schema.TIMESTAMP_US].any()


def test_episode_steps_single_row_truncated_episode_is_one_final_step():
    obs, act, rew = _rows(1)
    steps = episode_steps(obs, act, rew, END_TIMEOUT)
    assert len(steps[schema.OBSERVATION]) == 1
    assert steps[schema.IS_FIRST][0] and steps[schema.IS_LAST][0]
    assert not steps[schema.HAS_EXPERT_ACTION][0]


# ---------------------------------------------------------------------------
# read_d4rl_episodes on real (small) files
# ---------------------------------------------------------------------------


def test_read_with_next_observations(tmp_path):
    fake = write_d4rl_file(
        tmp_path / "hopper_medium-v2.hdf5",
        episode_lengths=(4, 3, 5),
        end_kinds=(TERMINAL, TIMEOUT, BOTH),
    )
    episodes = list(read_d4rl_episodes(fake.path, env_id="Hopper-v5"))
    data = fake.data
    assert len(episodes) == 3
    assert [e[schema.EPISODE_ID] for e in episodes] == [
        "hopper_medium-v2/0",
        "hopper_medium-v2/1",
        "hopper_medium-v2/2",
    ]
    starts = [0, 4, 7]
    for ep, start, n, terminated in zip(episodes, starts, (4, 3, 5), (True, False, True)):
        steps = ep[schema.STEPS]
        assert len(steps[schema.OBSERVATION]) == n + 1
        np.testing.assert_array_equal(
            steps[schema.OBSERVATION][:n], data["observations"][start : start + n]
        )
        # Final observation from next_observations of the last row, not the next episode's row.
        np.testing.assert_array_equal(
            steps[schema.OBSERVATION][n], data["next_observations"][start + n - 1]
        )
        np.testing.assert_array_equal(steps[schema.ACTION][:n], data["actions"][start : start + n])
        np.testing.assert_array_equal(steps[schema.REWARD][:n], data["rewards"][start : start + n])
        assert steps[schema.DISCOUNT][n - 1] == (0.0 if terminated else 1.0)
        assert steps[schema.IS_TERMINAL][-1] == terminated
        assert ep[schema.ENV_ID] == "Hopper-v5"
        assert ep[schema.SESSION_ID] == "hopper_medium-v2"
        assert set(ep) == {schema.STEPS, *schema.EPISODE_METADATA_FIELDS}
    meta = episodes[0]
    assert meta[schema.OPERATOR] == "d4rl"
    assert meta[schema.INTERVENTION_MODEL] == "none"
    assert meta[schema.INTERVENTION_PARAMS] == "{}"
    assert meta[schema.ROUND] == 0 and meta[schema.SEED] == 0


def test_read_without_next_observations_never_uses_next_episode_row(tmp_path):
    fake = write_d4rl_file(
        tmp_path / "f.hdf5",
        episode_lengths=(4, 3),
        end_kinds=(TIMEOUT, TERMINAL),
        with_next_observations=False,
    )
    first, second = list(read_d4rl_episodes(fake.path, dataset_name="pen-human-v1"))
    obs = fake.data["observations"]
    steps = first[schema.STEPS]
    # Truncated: 4 rows -> 4 steps (3 transitions + final step = observations[3]).
    assert len(steps[schema.OBSERVATION]) == 4
    np.testing.assert_array_equal(steps[schema.OBSERVATION], obs[0:4])
    assert not (steps[schema.OBSERVATION] == obs[4]).all(axis=1).any()
    np.testing.assert_array_equal(steps[schema.ACTION][:3], fake.data["actions"][0:3])
    assert not steps[schema.ACTION][3].any()
    np.testing.assert_array_equal(steps[schema.DISCOUNT], [1, 1, 1, 0])
    # Terminated: the terminal transition is kept, with discount 0.
    steps = second[schema.STEPS]
    assert len(steps[schema.OBSERVATION]) == 4
    np.testing.assert_array_equal(steps[schema.ACTION][:3], fake.data["actions"][4:7])
    np.testing.assert_array_equal(steps[schema.DISCOUNT], [1, 1, 0, 0])
    assert steps[schema.IS_TERMINAL][-1]
    assert first[schema.EPISODE_ID] == "pen-human-v1/0"
    assert second[schema.SESSION_ID] == "pen-human-v1"


def test_read_last_episode_cut_is_truncation(tmp_path):
    fake = write_d4rl_file(tmp_path / "f.hdf5", episode_lengths=(2, 3), last_episode_cut=True)
    episodes = list(read_d4rl_episodes(fake.path))
    steps = episodes[-1][schema.STEPS]
    assert len(steps[schema.OBSERVATION]) == 4
    assert not steps[schema.IS_TERMINAL].any()
    np.testing.assert_array_equal(steps[schema.DISCOUNT], [1, 1, 1, 0])
    assert inspect_d4rl(fake.path)["cut_episodes"] == 1


def test_read_without_timeouts_splits_by_max_episode_steps(tmp_path):
    fake = write_d4rl_file(
        tmp_path / "v0.hdf5",
        episode_lengths=(3, 3, 2),
        end_kinds=(TIMEOUT, TIMEOUT, CUT),
        with_timeouts=False,
    )
    episodes = list(read_d4rl_episodes(fake.path, max_episode_steps=3))
    assert [len(e[schema.STEPS][schema.OBSERVATION]) for e in episodes] == [4, 4, 3]
    np.testing.assert_array_equal(
        episodes[1][schema.STEPS][schema.OBSERVATION][:3], fake.data["observations"][3:6]
    )
    # Without a limit the whole file is one cut episode.
    assert len(list(read_d4rl_episodes(fake.path))) == 1


def test_read_accepts_column_shaped_rewards_and_flags(tmp_path):
    fake = write_d4rl_file(tmp_path / "f.hdf5", episode_lengths=(2, 2), column_flags=True)
    episodes = list(read_d4rl_episodes(fake.path))
    assert len(episodes) == 2
    np.testing.assert_array_equal(
        episodes[1][schema.STEPS][schema.REWARD][:2], fake.data["rewards"][2:4, 0]
    )


def test_read_empty_file_yields_nothing(tmp_path):
    fake = write_d4rl_file(tmp_path / "f.hdf5", episode_lengths=())
    assert list(read_d4rl_episodes(fake.path)) == []
    assert inspect_d4rl(fake.path)["episodes"] == 0


def test_inspect_summary(tmp_path):
    fake = write_d4rl_file(
        tmp_path / "f.hdf5",
        episode_lengths=(4, 3, 5),
        end_kinds=(TERMINAL, TIMEOUT, CUT),
        obs_dim=5,
        act_dim=2,
    )
    summary = inspect_d4rl(fake.path)
    assert summary["rows"] == 12
    assert summary["episodes"] == 3
    kinds = ("terminal_episodes", "timeout_episodes", "cut_episodes")
    assert [summary[k] for k in kinds] == [1, 1, 1]
    assert (summary["obs_dim"], summary["action_dim"]) == (5, 2)
    assert summary["has_timeouts"] and summary["has_next_observations"]
    assert "infos/qpos" not in summary["other_keys"]  # kept as a step field
    assert summary["infos"]["qpos"] == {"key": "infos/qpos", "shape": [6], "dtype": "float32"}
    assert "metadata/algorithm" in summary["other_keys"]

    bare = write_d4rl_file(
        tmp_path / "g.hdf5", with_timeouts=False, with_next_observations=False
    )
    summary = inspect_d4rl(bare.path)
    assert not summary["has_timeouts"] and not summary["has_next_observations"]


# ---------------------------------------------------------------------------
# Bad inputs: every message names the file and the key / row / episode.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["observations", "actions", "rewards", "terminals"])
def test_missing_required_key(tmp_path, key):
    fake = write_d4rl_file(tmp_path / "f.hdf5", missing_key=key)
    with pytest.raises(D4RLFormatError) as info:
        read_d4rl_episodes(fake.path)  # structural errors raise before iterating
    message = str(info.value)
    assert str(fake.path) in message
    assert f"missing required key(s) {key}" in message
    with pytest.raises(D4RLFormatError, match=key):
        inspect_d4rl(fake.path)


@pytest.mark.parametrize(
    "key", ["actions", "rewards", "terminals", "timeouts", "next_observations"]
)
def test_mismatched_lengths(tmp_path, key):
    fake = write_d4rl_file(tmp_path / "f.hdf5", episode_lengths=(4, 3, 5), mismatched_key=key)
    with pytest.raises(D4RLFormatError) as info:
        read_d4rl_episodes(fake.path)
    message = str(info.value)
    assert str(fake.path) in message
    assert f"'{key}' has 11 rows but 'observations' has 12" in message


@pytest.mark.parametrize(
    "key,row,value,episode",
    [
        ("rewards", 5, np.nan, 1),
        ("observations", 0, np.inf, 0),
        ("actions", 11, -np.inf, 2),
        ("observations", 8, np.nan, 2),
    ],
)
def test_non_finite_values_name_key_row_and_episode(tmp_path, key, row, value, episode):
    fake = write_d4rl_file(
        tmp_path / "f.hdf5", episode_lengths=(4, 3, 5), non_finite=(key, row, value)
    )
    episodes = read_d4rl_episodes(fake.path)
    with pytest.raises(D4RLFormatError) as info:
        list(episodes)
    message = str(info.value)
    assert str(fake.path) in message
    assert f"'{key}' has a non-finite value" in message
    assert f"row {row} " in message
    assert f"episode {episode}," in message


def test_nan_reward_row_fails_at_its_episode_only(tmp_path):
    fake = write_d4rl_file(tmp_path / "f.hdf5", episode_lengths=(4, 3, 5), nan_reward_row=5)
    episodes = read_d4rl_episodes(fake.path)
    first = next(episodes)  # episode 0 (rows 0..3) is clean
    assert first[schema.EPISODE_ID].endswith("/0")
    with pytest.raises(D4RLFormatError, match=r"'rewards'.*row 5 \(episode 1, rows 4\.\.6\)"):
        next(episodes)


def test_non_finite_next_observation_used_as_final(tmp_path):
    fake = write_d4rl_file(
        tmp_path / "f.hdf5", episode_lengths=(4, 3), non_finite=("next_observations", 3, np.nan)
    )
    with pytest.raises(D4RLFormatError, match=r"'next_observations'.*row 3 \(episode 0"):
        list(read_d4rl_episodes(fake.path))


@pytest.mark.parametrize(
    "key,array,expected",
    [
        ("observations", np.zeros((12, 3, 1), np.float32), "key 'observations' must be 2-D"),
        ("observations", np.zeros(12, np.float32), "key 'observations' must be 2-D"),
        ("actions", np.zeros(12, np.float32), "key 'actions' must be 2-D"),
        ("rewards", np.zeros((12, 2), np.float32), "key 'rewards' must have shape [rows]"),
        ("next_observations", np.zeros(12, np.float32), "key 'next_observations' must be 2-D"),
        ("next_observations", np.zeros((12, 4), np.float32), "key 'next_observations' has shape"),
    ],
)
def test_wrong_dims(tmp_path, key, array, expected):
    fake = write_d4rl_file(tmp_path / "f.hdf5", episode_lengths=(4, 3, 5), override={key: array})
    with pytest.raises(D4RLFormatError) as info:
        read_d4rl_episodes(fake.path)
    assert str(fake.path) in str(info.value)
    assert expected in str(info.value)


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "download.hdf5"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(D4RLFormatError) as info:
        read_d4rl_episodes(path)
    assert str(path) in str(info.value)
    assert "not a readable HDF5 file" in str(info.value)
    assert isinstance(info.value, errors.SchemaError)
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_truncated_hdf5_file(tmp_path, fraction):
    fake = write_d4rl_file(tmp_path / "f.hdf5", episode_lengths=(40, 30, 50), obs_dim=11)
    assert len(list(read_d4rl_episodes(fake.path))) == 3  # readable before truncation
    d4rl_files.truncate_file(fake.path, fraction)
    with pytest.raises(D4RLFormatError) as info:
        list(read_d4rl_episodes(fake.path))
    assert str(fake.path) in str(info.value)
    with pytest.raises(D4RLFormatError):
        inspect_d4rl(fake.path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.hdf5"):
        read_d4rl_episodes(tmp_path / "nope.hdf5")


# ---------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------

REQUIRED_DATASETS = [
    f"{env}-{kind}-v2"
    for env in ("hopper", "walker2d", "halfcheetah", "ant")
    for kind in ("medium", "medium-replay", "medium-expert", "expert")
] + [
    f"{env}-{kind}-v1"
    for env in ("pen", "door", "hammer", "relocate")
    for kind in ("human", "cloned", "expert")
]


@pytest.mark.parametrize("name", REQUIRED_DATASETS)
def test_catalog_has_rlif_datasets(name):
    entry = d4rl_catalog.d4rl_dataset(name)
    assert entry.name == name
    assert entry.url.startswith("http://rail.eecs.berkeley.edu/datasets/offline_rl/")
    assert entry.url.endswith(".hdf5")
    assert entry.obs_dim > 0 and entry.action_dim > 0 and entry.max_episode_steps > 0


@pytest.mark.parametrize(
    "name,url,env_id,max_steps",
    [
        (
            "hopper-medium-v2",
            "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v2/hopper_medium-v2.hdf5",
            "Hopper-v5",
            1000,
        ),
        (
            "walker2d-medium-replay-v2",
            "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v2/"
            "walker2d_medium_replay-v2.hdf5",
            "Walker2d-v5",
            1000,
        ),
        (
            "pen-human-v1",
            "http://rail.eecs.berkeley.edu/datasets/offline_rl/hand_dapg_v1/pen-human-v1.hdf5",
            "AdroitHandPen-v1",
            100,
        ),
        (
            "relocate-cloned-v1",
            "http://rail.eecs.berkeley.edu/datasets/offline_rl/hand_dapg_v1/"
            "relocate-cloned-v1.hdf5",
            "AdroitHandRelocate-v1",
            200,
        ),
    ],
)
def test_catalog_entries(name, url, env_id, max_steps):
    entry = d4rl_catalog.d4rl_dataset(name)
    assert (entry.url, entry.gymnasium_env_id, entry.max_episode_steps) == (url, env_id, max_steps)


def test_catalog_urls_are_unique_and_rows_frozen():
    urls = [d.url for d in d4rl_catalog.D4RL_DATASETS.values()]
    assert len(urls) == len(set(urls))
    entry = d4rl_catalog.d4rl_dataset("hopper-expert-v2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.url = "x"  # type: ignore[misc]


def test_catalog_lookup_normalises_spelling():
    assert d4rl_catalog.d4rl_dataset(" Hopper_Medium-v2 ").name == "hopper-medium-v2"


def test_catalog_unknown_name_lists_close_matches():
    with pytest.raises(d4rl_catalog.UnknownD4RLDatasetError) as info:
        d4rl_catalog.d4rl_dataset("hoper-medium-v2")
    message = str(info.value)
    assert "'hoper-medium-v2'" in message
    assert "hopper-medium-v2" in message
    assert isinstance(info.value, errors.RlifDataError)


def test_catalog_unknown_name_without_close_match_lists_all():
    with pytest.raises(d4rl_catalog.UnknownD4RLDatasetError) as info:
        d4rl_catalog.d4rl_dataset("zzz")
    assert "known datasets:" in str(info.value)
    assert "relocate-expert-v1" in str(info.value)


def test_module_constants_match_catalog_families():
    # Every locomotion dataset uses D4RL's 1000-step limit for the no-timeouts split.
    for entry in d4rl_catalog.D4RL_DATASETS.values():
        if entry.family == d4rl_catalog.LOCOMOTION:
            assert entry.max_episode_steps == 1000
    assert d4rl_hdf5.REQUIRED_KEYS == ("observations", "actions", "rewards", "terminals")
