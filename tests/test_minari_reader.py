"""Minari ingestion: real datasets written by Minari itself, read back offline with h5py."""

from __future__ import annotations

import json
import re
import shutil
import warnings

import numpy as np
import pytest

minari = pytest.importorskip("minari")
h5py = pytest.importorskip("h5py")
gym = pytest.importorskip("gymnasium")

from rlif_data import errors, schema  # noqa: E402
from rlif_data.sources import minari_reader  # noqa: E402
from rlif_data.sources.minari_reader import (  # noqa: E402
    MinariFormatError,
    MinariNotFoundError,
    env_id_from_metadata,
    episode_steps,
    find_minari_data_dir,
    read_minari_episodes,
)

from tests.fakes.minari_data import (  # noqa: E402
    DATASET_ID,
    ENV_ID,
    NUM_EPISODES,
    create_minari_dataset as _create_minari_dataset,
)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """(MINARI_DATASETS_PATH root, recorded episodes); read-only: copy before mutating."""
    root = tmp_path_factory.mktemp("minari_root")
    recorded = _create_minari_dataset(root)
    kinds = {(r.terminated, r.truncated) for r in recorded}
    # The fixture must exercise both endings, or the flag tests below prove nothing.
    assert (True, False) in kinds and (False, True) in kinds, kinds
    return root, recorded


@pytest.fixture
def dataset_copy(collected, tmp_path):
    """A private copy of the dataset directory (``<copy>/data/...``) for bad-input tests."""
    root, _ = collected
    dst = tmp_path / "dataset"
    shutil.copytree(root / DATASET_ID, dst)
    return dst


# ---------------------------------------------------------------------------
# Reading a real dataset.
# ---------------------------------------------------------------------------


def test_reads_collected_dataset(collected):
    root, recorded = collected
    eps = list(read_minari_episodes(root / DATASET_ID))
    assert len(eps) == NUM_EPISODES
    for i, (ep, rec) in enumerate(zip(eps, recorded)):
        steps = ep[schema.STEPS]
        t = len(rec.actions)
        # T+1 layout: every step field has one entry per observation.
        for field, values in steps.items():
            assert len(values) == t + 1, (i, field)
        np.testing.assert_array_equal(steps[schema.OBSERVATION],
                                      rec.observations.astype(np.float32))
        np.testing.assert_array_equal(steps[schema.ACTION][:t], rec.actions.astype(np.float32))
        np.testing.assert_array_equal(steps[schema.ACTION][t], 0.0)
        np.testing.assert_allclose(steps[schema.REWARD][:t], rec.rewards, rtol=1e-6)
        assert steps[schema.IS_FIRST].tolist() == [True] + [False] * t
        assert steps[schema.IS_LAST].tolist() == [False] * t + [True]
        # Termination: discount 0 into it and is_terminal; truncation bootstraps.
        expected_discount = [1.0] * (t - 1) + [0.0 if rec.terminated else 1.0] + [0.0]
        assert steps[schema.DISCOUNT].tolist() == expected_discount, i
        assert steps[schema.IS_TERMINAL].tolist() == [False] * t + [rec.terminated], i
        # Dataset actions are expert labels; nobody intervened.
        assert steps[schema.HAS_EXPERT_ACTION].tolist() == [True] * t + [False]
        np.testing.assert_array_equal(steps[schema.EXPERT_ACTION], steps[schema.ACTION])
        assert not steps[schema.INTERVENTION].any()
        assert not steps[schema.INTERVENTION_START].any()
        assert steps[schema.SOURCE][:t].tolist() == [int(schema.Source.DATASET)] * t
        # Metadata.
        assert ep[schema.EPISODE_ID] == f"{DATASET_ID}/{i}"
        assert ep[schema.SESSION_ID] == DATASET_ID
        assert ep[schema.OPERATOR] == "minari"
        assert ep[schema.ENV_ID] == ENV_ID
        assert ep[schema.SEED] == rec.seed
        assert set(ep) == {schema.STEPS, *schema.EPISODE_METADATA_FIELDS}


def test_matches_minari_load_dataset(collected, monkeypatch):
    """Our h5py reading agrees with Minari's own loader on every array."""
    root, _ = collected
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    dataset = minari.load_dataset(DATASET_ID)
    ours = list(read_minari_episodes(root / DATASET_ID))
    theirs = list(dataset.iterate_episodes())
    assert len(ours) == len(theirs) == dataset.total_episodes
    for ep, ref in zip(ours, theirs):
        steps = ep[schema.STEPS]
        t = len(ref.actions)
        assert ep[schema.EPISODE_ID] == f"{DATASET_ID}/{ref.id}"
        np.testing.assert_array_equal(steps[schema.OBSERVATION],
                                      ref.observations.astype(np.float32))
        np.testing.assert_array_equal(steps[schema.ACTION][:t], ref.actions)
        np.testing.assert_array_equal(steps[schema.REWARD][:t], ref.rewards.astype(np.float32))
        assert bool(steps[schema.IS_TERMINAL][-1]) == bool(ref.terminations[-1])


def test_dataset_dir_forms_and_id_override(collected):
    root, _ = collected
    data_dir = root / DATASET_ID / "data"
    by_dataset_dir = [e[schema.EPISODE_ID] for e in read_minari_episodes(root / DATASET_ID)]
    by_data_dir = [e[schema.EPISODE_ID] for e in read_minari_episodes(data_dir)]
    by_root = [e[schema.EPISODE_ID] for e in read_minari_episodes(root, dataset_id=DATASET_ID)]
    assert by_dataset_dir == by_data_dir == by_root == [f"{DATASET_ID}/{i}" for i in range(12)]
    assert find_minari_data_dir(root, DATASET_ID) == data_dir
    renamed = next(iter(read_minari_episodes(data_dir, dataset_id="mine")))
    assert renamed[schema.EPISODE_ID] == "mine/0"
    assert renamed[schema.SESSION_ID] == "mine"


def test_dict_observations(tmp_path, monkeypatch):
    """A Dict observation space (nested HDF5 group) written by Minari from buffers."""
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    box = lambda n: gym.spaces.Box(-10, 10, (n,), np.float32)  # noqa: E731
    rng = np.random.default_rng(0)
    t = 4
    pos = rng.normal(size=(t + 1, 3)).astype(np.float32)
    vel = rng.normal(size=(t + 1, 2)).astype(np.float32)
    actions = rng.normal(size=(t, 2)).astype(np.float32)
    buf = EpisodeBuffer(
        id=0, observations={"pos": pos, "vel": vel}, actions=actions,
        rewards=np.arange(t, dtype=np.float64), terminations=np.array([0, 0, 0, 1], bool),
        truncations=np.zeros(t, bool),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        minari.create_dataset_from_buffers(
            "test/dict-v0", [buf],
            observation_space=gym.spaces.Dict({"pos": box(3), "vel": box(2)}),
            action_space=box(2), algorithm_name="buffers",
        )
    (ep,) = list(read_minari_episodes(tmp_path, dataset_id="test/dict-v0"))
    steps = ep[schema.STEPS]
    assert set(steps[schema.OBSERVATION]) == {"pos", "vel"}
    np.testing.assert_array_equal(steps[schema.OBSERVATION]["pos"], pos)
    np.testing.assert_array_equal(steps[schema.OBSERVATION]["vel"], vel)
    np.testing.assert_array_equal(steps[schema.ACTION][:t], actions)
    assert steps[schema.IS_TERMINAL][-1]
    assert steps[schema.DISCOUNT].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert ep[schema.ENV_ID] == ""  # made without an environment


# ---------------------------------------------------------------------------
# Pure logic.
# ---------------------------------------------------------------------------


def _arrays(t=3):
    obs = np.arange((t + 1) * 2, dtype=np.float32).reshape(t + 1, 2)
    return obs, np.ones((t, 1), np.float32), np.ones(t, np.float64)


@pytest.mark.parametrize(
    "term, trunc, terminated",
    [
        ([0, 0, 1], [0, 0, 0], True),
        ([0, 0, 0], [0, 0, 1], False),
        ([0, 0, 1], [0, 0, 1], True),  # both on the last row: termination wins
        ([0, 0, 0], [0, 0, 0], False),  # stopped recording: bootstrap like a truncation
    ],
)
def test_episode_steps_end_flags(term, trunc, terminated):
    obs, act, rew = _arrays()
    steps = episode_steps(obs, act, rew, np.array(term, bool), np.array(trunc, bool))
    assert steps[schema.IS_TERMINAL].tolist() == [False, False, False, terminated]
    assert steps[schema.DISCOUNT].tolist() == [1.0, 1.0, 0.0 if terminated else 1.0, 0.0]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda a: a.update(obs=a["obs"][:-1]), r"'observations' has 3 rows but 'actions' has 3"),
        (lambda a: a.update(rew=a["rew"][:-1]), r"'rewards' has 2 rows"),
        (lambda a: a.update(term=np.array([1, 0, 0], bool)), r"flag set at row 0 before"),
        (lambda a: a.update(act=np.ones(3, np.float32)),
         r"'actions' must be 2-D \[T, act_dim\]"),
        (lambda a: a.__setitem__("act", np.where(np.arange(3)[:, None] == 1, np.inf, 1.0)),
         r"'actions' has a non-finite value .* at row 1"),
        (lambda a: a.update(obs=np.ones((1, 2)), act=np.ones((0, 1)), rew=np.ones(0),
                            term=np.zeros(0, bool), trunc=np.zeros(0, bool)), r"no actions"),
    ],
    ids=["obs_not_T_plus_1", "rewards_short", "early_termination", "actions_1d", "inf_action",
         "empty"],
)
def test_episode_steps_rejects(mutate, match):
    obs, act, rew = _arrays()
    a = {"obs": obs, "act": act, "rew": rew, "term": np.zeros(3, bool), "trunc": np.zeros(3, bool)}
    mutate(a)
    with pytest.raises(MinariFormatError, match=match):
        episode_steps(a["obs"], a["act"], a["rew"], a["term"], a["trunc"], where="ep")


@pytest.mark.parametrize(
    "metadata, expected",
    [
        ({}, ""),
        ({"env_spec": "null"}, ""),
        ({"env_spec": json.dumps({"id": "Hopper-v5", "max_episode_steps": 1000})}, "Hopper-v5"),
        ({"env_spec": {"id": "Pendulum-v1"}}, "Pendulum-v1"),
    ],
)
def test_env_id_from_metadata(metadata, expected):
    assert env_id_from_metadata(metadata) == expected


def test_errors_are_schema_errors():
    assert issubclass(MinariFormatError, errors.SchemaError)
    assert issubclass(MinariNotFoundError, MinariFormatError)
    assert issubclass(MinariNotFoundError, FileNotFoundError)


# ---------------------------------------------------------------------------
# Bad inputs, on a copy of the real dataset.
# ---------------------------------------------------------------------------


def _h5(d):
    return d / "data" / "main_data.hdf5"


def _with_h5(edit):
    def mutate(d):
        with h5py.File(_h5(d), "a") as f:
            edit(f)
    return mutate


def _set(key, index, value):
    def edit(f):
        data = f[key][()]
        if isinstance(value, float) and data.dtype.kind != "f":
            # InvertedPendulum's rewards are integers; rewrite them as float64, the
            # dtype Minari stores for float rewards (e.g. Pendulum), so NaN fits.
            data = data.astype(np.float64)
            del f[key]
            f.create_dataset(key, data=data)
        data[index] = value
        f[key][...] = data
    return _with_h5(edit)


def _truncate(d):
    raw = _h5(d).read_bytes()
    _h5(d).write_bytes(raw[: len(raw) // 2])


def _edit_metadata(**changes):
    def mutate(d):
        path = d / "data" / "metadata.json"
        meta = json.loads(path.read_text())
        meta.update(changes)
        path.write_text(json.dumps(meta))
    return mutate


def _drop_last_observation(d):
    """Leave T observations for T actions (Minari chunks its datasets, so they resize)."""
    def edit(f):
        obs = f["episode_4/observations"]
        obs.resize((obs.shape[0] - 1,) + obs.shape[1:])
    _with_h5(edit)(d)


def _long_episode_key(d):
    """Name of the first episode with at least 3 transitions (for row-level edits)."""
    with h5py.File(_h5(d), "r") as f:
        return next(k for k in sorted(f) if len(f[k]["actions"]) >= 3)


BAD_CASES = [
    # id, mutate(dataset_dir) -> None, error type, message regexes, raised at call time
    ("missing_dir", lambda d: shutil.rmtree(d), MinariNotFoundError,
     [r"no such Minari dataset directory"], True),
    ("missing_hdf5", lambda d: _h5(d).unlink(), MinariNotFoundError,
     [r"main_data\.hdf5: missing"], True),
    ("missing_metadata", lambda d: (d / "data" / "metadata.json").unlink(), MinariNotFoundError,
     [r"metadata\.json: missing"], True),
    ("truncated_hdf5", _truncate, MinariFormatError,
     [r"main_data\.hdf5: not a readable HDF5 file"], True),
    ("not_hdf5", lambda d: _h5(d).write_bytes(b"hello, not hdf5" * 100), MinariFormatError,
     [r"not a readable HDF5 file"], True),
    ("corrupt_metadata", lambda d: (d / "data" / "metadata.json").write_text("{oops"),
     MinariFormatError, [r"metadata\.json: not valid JSON"], True),
    ("arrow_backend", _edit_metadata(data_format="arrow"), MinariFormatError,
     [r"data_format is 'arrow'"], True),
    ("discrete_actions",
     _edit_metadata(action_space=json.dumps({"type": "Discrete", "n": 3, "start": 0})),
     MinariFormatError, [r"action space is a Discrete space"], True),
    ("deleted_rewards", _with_h5(lambda f: f.__delitem__("episode_3/rewards")), MinariFormatError,
     [r"episode_3: missing key\(s\) rewards"], True),
    ("observations_not_T_plus_1", _drop_last_observation,
     MinariFormatError, [r"'observations' has (\d+) rows but 'actions' has \1"], True),
    ("deleted_episode_group", _with_h5(lambda f: f.__delitem__("episode_11")), MinariFormatError,
     [r"says 12 episodes but the file holds 11"], True),
    ("missing_episode_0", _with_h5(lambda f: f.__delitem__("episode_0")), MinariFormatError,
     [r"missing episode_0"], True),
    ("nan_reward", lambda d: _set(f"{_long_episode_key(d)}/rewards", 2, np.nan)(d),
     MinariFormatError, [r"episode_\d+: 'rewards' has a non-finite value \(NaN/inf\) at row 2"],
     False),
    ("nan_action", _set("episode_1/actions", (0, 0), np.nan), MinariFormatError,
     [r"episode_1: 'actions' has a non-finite value .* at row 0"], False),
    ("nan_observation", _set("episode_2/observations", (1, 3), np.nan), MinariFormatError,
     [r"episode_2: 'observations' has a non-finite value .* at row 1"], False),
    ("early_termination", lambda d: _set(f"{_long_episode_key(d)}/terminations", 0, True)(d),
     MinariFormatError, [r"flag set at row 0 before the last row"], False),
]


@pytest.mark.parametrize(
    "mutate, error, patterns, at_call", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_inputs(dataset_copy, mutate, error, patterns, at_call):
    mutate(dataset_copy)
    if at_call:
        # Structural problems surface before any episode is converted.
        with pytest.raises(error) as info:
            read_minari_episodes(dataset_copy)
    else:
        episodes = read_minari_episodes(dataset_copy)  # structure is fine
        with pytest.raises(error) as info:
            list(episodes)
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), message
    assert str(dataset_copy) in message  # names the directory or file


def test_nan_error_names_the_right_episode(dataset_copy):
    """The error names the episode that holds the NaN, and earlier episodes still convert."""
    _set("episode_5/rewards", 0, np.nan)(dataset_copy)
    seen = []
    with pytest.raises(MinariFormatError, match=r"episode_5: 'rewards' .* at row 0"):
        for ep in read_minari_episodes(dataset_copy):
            seen.append(ep[schema.EPISODE_ID])
    assert seen == [f"{DATASET_ID}/{i}" for i in range(5)]


def test_module_constants_match_minari_layout(collected):
    """The key names we read are the ones Minari 0.5 writes."""
    root, _ = collected
    with h5py.File(root / DATASET_ID / "data" / minari_reader.MAIN_DATA_FILE, "r") as f:
        assert set(minari_reader.REQUIRED_KEYS) <= set(f["episode_0"].keys())
