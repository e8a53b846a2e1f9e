"""Demo files (NPZ / HDF5 demonstrations and intervention logs): mapping and bad inputs."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from rlif_data import errors, schema
from rlif_data.intervention import takeover_starts
from rlif_data.sources.demo_files import (
    DemoFormatError,
    DemoNotFoundError,
    demo_files,
    demo_steps,
    read_demo_episodes,
)

T, OBS_DIM, ACT_DIM = 6, 3, 2
HUMAN, POLICY, EXPERT = (int(s) for s in (schema.Source.HUMAN, schema.Source.POLICY,
                                          schema.Source.EXPERT))
FLAGS = np.array([0, 1, 1, 0, 1, 0], bool)  # two takeovers: steps 1-2 and step 4


def _arrays(seed=0, t=T, **extra):
    """A valid episode: distinct values everywhere, so mix-ups show."""
    rng = np.random.default_rng(seed)
    out = {
        "observations": rng.normal(size=(t + 1, OBS_DIM)).astype(np.float32),
        "actions": rng.normal(size=(t, ACT_DIM)).astype(np.float32),
        "rewards": rng.normal(size=t).astype(np.float32),
    }
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def _write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


def _write_h5(path, episodes, attrs=None):
    """episodes: list of array dicts; attrs: per-episode dict of group attributes."""
    with h5py.File(path, "w") as f:
        for i, arrays in enumerate(episodes):
            group = f.create_group(f"episode_{i}")
            for name, value in arrays.items():
                group.create_dataset(name, data=value)
            for key, value in ((attrs or {}).get(i) or {}).items():
                group.attrs[key] = value
    return path


# ---------------------------------------------------------------------------
# Mapping onto the schema.
# ---------------------------------------------------------------------------


def test_pure_demonstration_npz(tmp_path):
    arrays = _arrays(terminated=np.bool_(True))
    (ep,) = list(read_demo_episodes(_write_npz(tmp_path / "ep_000.npz", arrays),
                                    operator="alice", env_id="Hopper-v5"))
    steps = ep[schema.STEPS]
    for field, values in steps.items():
        assert len(values) == T + 1, field
    np.testing.assert_array_equal(steps[schema.OBSERVATION], arrays["observations"])
    np.testing.assert_array_equal(steps[schema.ACTION][:T], arrays["actions"])
    np.testing.assert_array_equal(steps[schema.REWARD][:T], arrays["rewards"])
    # Every demonstrated action is an expert label; nobody took over from a learner.
    assert steps[schema.HAS_EXPERT_ACTION].tolist() == [True] * T + [False]
    np.testing.assert_array_equal(steps[schema.EXPERT_ACTION], steps[schema.ACTION])
    assert not steps[schema.INTERVENTION].any()
    assert steps[schema.SOURCE][:T].tolist() == [HUMAN] * T
    np.testing.assert_array_equal(steps[schema.POLICY_ACTION], 0.0)  # no learner ran
    # Terminated: no bootstrapping through the last transition.
    assert steps[schema.DISCOUNT].tolist() == [1.0] * (T - 1) + [0.0, 0.0]
    assert steps[schema.IS_TERMINAL].tolist() == [False] * T + [True]
    assert ep[schema.EPISODE_ID] == "ep_000"
    assert ep[schema.SESSION_ID] == "ep_000"
    assert ep[schema.OPERATOR] == "alice"
    assert ep[schema.ENV_ID] == "Hopper-v5"
    assert ep[schema.INTERVENTION_MODEL] == "none"
    assert set(ep) == {schema.STEPS, *schema.EPISODE_METADATA_FIELDS}


def test_intervention_log_with_policy_actions(tmp_path):
    proposals = np.full((T, ACT_DIM), 7.0, np.float32)
    arrays = _arrays(interventions=FLAGS, policy_actions=proposals)
    (ep,) = list(read_demo_episodes(_write_npz(tmp_path / "log.npz", arrays)))
    steps = ep[schema.STEPS]
    act = arrays["actions"]
    assert steps[schema.INTERVENTION][:T].tolist() == FLAGS.tolist()
    assert steps[schema.INTERVENTION_START].tolist() == takeover_starts(
        np.append(FLAGS, False)).tolist()
    assert steps[schema.INTERVENTION_START][:T].tolist() == [0, 1, 0, 0, 1, 0]
    assert steps[schema.HAS_EXPERT_ACTION][:T].tolist() == FLAGS.tolist()
    np.testing.assert_array_equal(steps[schema.EXPERT_ACTION][:T][FLAGS], act[FLAGS])
    np.testing.assert_array_equal(steps[schema.EXPERT_ACTION][:T][~FLAGS], 0.0)
    assert steps[schema.SOURCE][:T].tolist() == [HUMAN if f else POLICY for f in FLAGS]
    np.testing.assert_array_equal(steps[schema.POLICY_ACTION][:T], proposals)
    # Not terminated by default: the last transition bootstraps.
    assert steps[schema.DISCOUNT][:T].tolist() == [1.0] * T
    assert not steps[schema.IS_TERMINAL].any()
    assert ep[schema.INTERVENTION_MODEL] == "human"


def test_intervention_log_without_policy_actions(tmp_path):
    """Where the policy was in control, its proposal is the applied action."""
    arrays = _arrays(interventions=FLAGS.astype(np.int64))  # 0/1 ints are accepted as flags
    (ep,) = list(read_demo_episodes(_write_npz(tmp_path / "log.npz", arrays)))
    proposals = ep[schema.STEPS][schema.POLICY_ACTION][:T]
    np.testing.assert_array_equal(proposals[~FLAGS], arrays["actions"][~FLAGS])
    np.testing.assert_array_equal(proposals[FLAGS], 0.0)


def test_optional_arrays_default(tmp_path):
    arrays = _arrays(rewards=None)  # only observations and actions
    assert set(arrays) == {"observations", "actions"}
    (ep,) = list(read_demo_episodes(_write_npz(tmp_path / "min.npz", arrays)))
    steps = ep[schema.STEPS]
    np.testing.assert_array_equal(steps[schema.REWARD], 0.0)
    assert not steps[schema.IS_TERMINAL].any()
    assert steps[schema.DISCOUNT][:T].tolist() == [1.0] * T


def test_expert_source_and_float64_observations(tmp_path):
    arrays = _arrays(interventions=FLAGS)
    arrays["observations"] = arrays["observations"].astype(np.float64)
    (ep,) = list(read_demo_episodes(_write_npz(tmp_path / "e.npz", arrays),
                                    source=schema.Source.EXPERT))
    steps = ep[schema.STEPS]
    assert steps[schema.SOURCE][:T].tolist() == [EXPERT if f else POLICY for f in FLAGS]
    assert steps[schema.OBSERVATION].dtype == np.float32
    assert ep[schema.INTERVENTION_MODEL] == ""  # who decided a scripted log's takeovers is unknown


def test_directory_of_npz_sorted_by_name(tmp_path):
    demos = tmp_path / "session_7"
    demos.mkdir()
    for name, seed in (("ep_002", 2), ("ep_000", 0), ("ep_001", 1)):
        _write_npz(demos / f"{name}.npz", _arrays(seed=seed, t=3 + seed))
    (demos / "README.txt").write_text("not an episode")
    eps = list(read_demo_episodes(demos))
    assert [e[schema.EPISODE_ID] for e in eps] == ["ep_000", "ep_001", "ep_002"]
    assert [len(e[schema.STEPS][schema.IS_FIRST]) for e in eps] == [4, 5, 6]
    assert {e[schema.SESSION_ID] for e in eps} == {"session_7"}
    np.testing.assert_array_equal(eps[1][schema.STEPS][schema.ACTION][:4],
                                  _arrays(seed=1, t=4)["actions"])
    assert [p.name for p in demo_files(demos)] == ["ep_000.npz", "ep_001.npz", "ep_002.npz"]


def test_hdf5_file(tmp_path):
    n = 11  # > 10: episode_10 must come after episode_9, not after episode_1
    episodes = [_arrays(seed=i, t=2 + i % 3) for i in range(n)]
    episodes[3] = _arrays(seed=3, t=4, interventions=np.array([False, True, True, False]))
    attrs = {
        0: {"terminated": True, "operator": "bob", "env_id": "Pendulum-v1"},
        3: {"terminated": False},
    }
    path = _write_h5(tmp_path / "demos.hdf5", episodes, attrs)
    eps = list(read_demo_episodes(path, operator="alice", env_id="Hopper-v5"))
    assert [e[schema.EPISODE_ID] for e in eps] == [f"demos/episode_{i}" for i in range(n)]
    for ep, arrays in zip(eps, episodes):
        t = len(arrays["actions"])
        np.testing.assert_array_equal(ep[schema.STEPS][schema.ACTION][:t], arrays["actions"])
        assert ep[schema.SESSION_ID] == "demos"
    # Group attributes win over the reader's arguments; the arguments fill the rest.
    assert (eps[0][schema.OPERATOR], eps[0][schema.ENV_ID]) == ("bob", "Pendulum-v1")
    assert (eps[1][schema.OPERATOR], eps[1][schema.ENV_ID]) == ("alice", "Hopper-v5")
    assert eps[0][schema.STEPS][schema.IS_TERMINAL][-1]
    assert not eps[1][schema.STEPS][schema.IS_TERMINAL][-1]
    assert eps[3][schema.STEPS][schema.INTERVENTION][:4].tolist() == [False, True, True, False]
    assert eps[3][schema.INTERVENTION_MODEL] == "human"


def test_hdf5_terminated_as_scalar_dataset(tmp_path):
    path = _write_h5(tmp_path / "d.h5", [_arrays(terminated=np.bool_(True))])
    (ep,) = list(read_demo_episodes(path))
    assert ep[schema.STEPS][schema.IS_TERMINAL][-1]


def test_errors_are_schema_errors():
    assert issubclass(DemoFormatError, errors.SchemaError)
    assert issubclass(DemoNotFoundError, FileNotFoundError)


# ---------------------------------------------------------------------------
# Bad inputs: every case writes a real file; the error names file, episode, array.
# ---------------------------------------------------------------------------

UNPICKLED: list[str] = []


def _record_unpickle(tag):
    UNPICKLED.append(tag)
    return tag


class _Tripwire:
    """Unpickling this object would call `_record_unpickle`."""

    def __reduce__(self):
        return (_record_unpickle, ("unpickled!",))


def _nan_at(name, row):
    arrays = _arrays()
    arrays[name] = arrays[name].copy()
    arrays[name][row] = np.nan
    return arrays


def _npz(arrays):
    return lambda d: _write_npz(d / "ep.npz", arrays)


def _h5(arrays, attrs=None):
    """Episode 1 of a two-episode HDF5 file is the bad one (episode 0 is fine)."""
    return lambda d: _write_h5(d / "demos.h5", [_arrays(), arrays], {1: attrs} if attrs else None)


def _truncated_npz(d):
    path = _write_npz(d / "ep.npz", _arrays())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _object_array_npz(d):
    arrays = _arrays()
    arrays["actions"] = np.array([_Tripwire()] * T, dtype=object)
    return _write_npz(d / "ep.npz", arrays)  # np.savez pickles object arrays


def _pickled_npy_named_npz(d):
    path = d / "ep.npz"
    with open(path, "wb") as f:
        np.save(f, np.array([_Tripwire()], dtype=object), allow_pickle=True)
    return path


def _h5_with_stray_dataset(d):
    path = _write_h5(d / "demos.h5", [_arrays()])
    with h5py.File(path, "a") as f:
        f["notes"] = np.arange(3)
    return path


def _empty_dir(d):
    (d / "empty").mkdir()
    (d / "empty" / "a.txt").write_text("x")
    return d / "empty"


def _text(d, name, content=b"hello"):
    (d / name).write_bytes(content * 50)
    return d / name


BAD_CASES = [
    # id, write(tmp_path) -> path, error type, regexes the message must match
    ("missing_observations", _npz(_arrays(observations=None)), DemoFormatError,
     [r"ep\.npz: missing array\(s\) observations"]),
    ("missing_actions_h5", _h5(_arrays(actions=None)), DemoFormatError,
     [r"demos\.h5, episode_1: missing array\(s\) actions"]),
    ("obs_not_T_plus_1", _npz(_arrays(observations=np.zeros((T, OBS_DIM)))), DemoFormatError,
     [r"ep\.npz: 'observations' has 6 rows but 'actions' has 6; .*T\+1"]),
    ("obs_T_plus_2_h5", _h5(_arrays(observations=np.zeros((T + 2, OBS_DIM)))), DemoFormatError,
     [r"episode_1: 'observations' has 8 rows but 'actions' has 6"]),
    ("rewards_length", _npz(_arrays(rewards=np.zeros(T + 1))), DemoFormatError,
     [r"'rewards' has 7 rows but 'actions' has 6"]),
    ("interventions_length", _npz(_arrays(interventions=np.zeros(T - 1, bool))), DemoFormatError,
     [r"'interventions' has 5 rows"]),
    ("policy_actions_length", _npz(_arrays(policy_actions=np.zeros((T - 1, ACT_DIM)))),
     DemoFormatError, [r"'policy_actions' has 5 rows"]),
    ("obs_1d", _npz(_arrays(observations=np.zeros(T + 1))), DemoFormatError,
     [r"'observations' must be 2-D \[T\+1, obs_dim\], got shape \(7,\)"]),
    ("actions_3d", _npz(_arrays(actions=np.zeros((T, ACT_DIM, 1)))), DemoFormatError,
     [r"'actions' must be 2-D"]),
    ("rewards_2d", _npz(_arrays(rewards=np.zeros((T, 1)))), DemoFormatError,
     [r"'rewards' must be 1-D \[T\]"]),
    ("policy_action_dim", _npz(_arrays(policy_actions=np.zeros((T, ACT_DIM + 1)))),
     DemoFormatError, [r"'policy_actions' has dim 3 but 'actions' has 2"]),
    ("terminated_per_step", _npz(_arrays(terminated=np.zeros(T, bool))), DemoFormatError,
     [r"'terminated' must be a scalar bool .* got shape \(6,\)"]),
    ("terminated_not_bool_h5", _h5(_arrays(), {"terminated": 0.5}), DemoFormatError,
     [r"episode_1: 'terminated' must be a bool"]),
    ("terminated_attr_and_dataset_h5",
     _h5(_arrays(terminated=np.bool_(True)), {"terminated": True}),
     DemoFormatError, [r"episode_1: 'terminated' is both an attribute and a dataset"]),
    ("interventions_not_flags", _npz(_arrays(interventions=np.full(T, 0.5))), DemoFormatError,
     [r"'interventions' must be bool"]),
    ("string_actions", _npz(_arrays(actions=np.array([["a", "b"]] * T))), DemoFormatError,
     [r"'actions' must be numeric, got dtype <U1"]),
    ("empty_episode", _npz(_arrays(t=0)), DemoFormatError, [r"no actions \(T = 0\)"]),
    ("unknown_array", _npz(_arrays(intervention=FLAGS)), DemoFormatError,
     [r"unknown array\(s\) intervention; known: .*interventions"]),
    ("nan_observation", _npz(_nan_at("observations", 4)), DemoFormatError,
     [r"ep\.npz: 'observations' has a non-finite value \(NaN/inf\) at row 4"]),
    ("nan_action_h5", _h5(_nan_at("actions", 2)), DemoFormatError,
     [r"demos\.h5, episode_1: 'actions' has a non-finite value .* at row 2"]),
    ("nan_reward", _npz(_nan_at("rewards", 5)), DemoFormatError,
     [r"'rewards' has a non-finite value .* at row 5"]),
    ("inf_policy_action", _npz(_arrays(policy_actions=np.where(
        np.arange(T)[:, None] == 3, np.inf, np.zeros((T, ACT_DIM))))), DemoFormatError,
     [r"'policy_actions' has a non-finite value .* at row 3"]),
    ("pickled_object_array", _object_array_npz, DemoFormatError,
     [r"ep\.npz: array 'actions' is a pickled object array"]),
    ("pickled_npy_as_npz", _pickled_npy_named_npz, DemoFormatError,
     [r"ep\.npz: a pickled object array \(\.npy\), not an \.npz archive"]),
    ("truncated_npz", _truncated_npz, DemoFormatError,
     [r"ep\.npz: (not a readable \.npz file|cannot read array)"]),
    ("not_npz", lambda d: _text(d, "ep.npz"), DemoFormatError, [r"ep\.npz: not a readable"]),
    ("not_hdf5", lambda d: _text(d, "demos.h5"), DemoFormatError,
     [r"demos\.h5: not a readable HDF5 file"]),
    ("hdf5_stray_entry", _h5_with_stray_dataset, DemoFormatError,
     [r"demos\.h5: unexpected top-level entries \['notes'\]"]),
    ("hdf5_no_episodes", lambda d: _write_h5(d / "demos.h5", []), DemoFormatError,
     [r"demos\.h5: no 'episode_<n>' groups"]),
    ("missing_path", lambda d: d / "nope.npz", DemoNotFoundError, [r"nope\.npz: no such demo"]),
    ("dir_without_npz", _empty_dir, DemoNotFoundError, [r"empty: no \.npz files"]),
    ("wrong_extension", lambda d: _text(d, "ep.pkl"), DemoFormatError,
     [r"ep\.pkl: unknown demo file type"]),
]


@pytest.mark.parametrize("write, error, patterns", [c[1:] for c in BAD_CASES],
                         ids=[c[0] for c in BAD_CASES])
def test_bad_inputs(tmp_path, write, error, patterns):
    path = write(tmp_path)
    UNPICKLED.clear()
    with pytest.raises(error) as info:
        list(read_demo_episodes(path))
    message = str(info.value)
    assert str(path) in message  # names the file (or directory)
    for pattern in patterns:
        assert re.search(pattern, message), message
    assert UNPICKLED == []  # the reader never unpickled anything


def test_tripwire_would_fire_if_unpickled(tmp_path):
    """Guards the no-unpickle assertion above: loading with pickle does trigger it."""
    path = _object_array_npz(tmp_path)
    UNPICKLED.clear()
    with np.load(path, allow_pickle=True) as data:
        data["actions"]
    assert UNPICKLED


def test_good_episodes_before_a_bad_one_are_yielded(tmp_path):
    demos = tmp_path / "demos"
    demos.mkdir()
    _write_npz(demos / "a.npz", _arrays())
    _write_npz(demos / "b.npz", _nan_at("actions", 1))
    seen = []
    with pytest.raises(DemoFormatError, match=r"b\.npz: 'actions' .* at row 1"):
        for ep in read_demo_episodes(demos):
            seen.append(ep[schema.EPISODE_ID])
    assert seen == ["a"]


def test_demo_steps_pure():
    """The pure layer needs no files and names its context."""
    steps = demo_steps(_arrays(interventions=FLAGS), where="ctx")
    assert steps[schema.HAS_EXPERT_ACTION][:T].tolist() == FLAGS.tolist()
    with pytest.raises(DemoFormatError, match=r"^ctx: missing array\(s\) actions"):
        demo_steps({"observations": np.zeros((2, 1))}, where="ctx")
