"""Trainer data on real datasets: recordings, Beam-relabelled views and ingested D4RL, by tag.

Every dataset here is written in the real formats (EpisodeStore recordings,
TFDS array_record datasets built by the Beam jobs, a D4RL-layout HDF5 file)
and published into a real registry under tmp_path.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines import ingest_d4rl, merge, relabel
from rlif_data import episodes as ep
from rlif_data import relabel as rl
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from rlif_data.registry.store import Registry
from tests.fakes.d4rl_files import BOTH, TERMINAL, TIMEOUT, write_d4rl_file
from tests.fakes.episodes import make_episode, write_recording
from trainers.data import (
    EmptyTransitionsError,
    MixedSampler,
    NonFiniteTransitionError,
    ReplayBuffer,
    RewardModeError,
    SpecMismatchError,
    Transitions,
    concat_transitions,
    denormalize_actions,
    episode_to_transitions,
    load_transitions,
    normalize_actions,
    offline_rows,
)
from trainers.data import cache as cache_lib
from trainers.data.loading import directory_digest

SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
VIEWS = ("paper", "paper-policy-only", "hg-dagger")
LENGTHS = (4, 7, 5, 9, 6, 3)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A registry holding a raw recording, three relabelled views and an ingested D4RL file."""
    base = tmp_path_factory.mktemp("trainer-data")
    rec = write_recording(base / "rec", [make_episode(i, length=n) for i, n in enumerate(LENGTHS)])
    reg = Registry(str(base / "registry"))
    reg.publish(rec, "unit-raw", tags=("latest", "round-0"))
    dirs = {"raw": rec}
    for view in VIEWS:
        out = relabel.run(rec, str(base / view), view, SINGLE)
        reg.publish(out, f"unit-{view}")
        dirs[view] = out
    fake = write_d4rl_file(base / "hopper_fake-v2.hdf5", episode_lengths=(4, 3, 5),
                           end_kinds=(TIMEOUT, TERMINAL, BOTH), obs_dim=3, act_dim=2)
    dirs["d4rl"] = ingest_d4rl.run(str(fake.path), str(base / "d4rl"), beam_args=SINGLE)
    reg.publish(dirs["d4rl"], "unit-d4rl")
    return {"base": base, "root": reg.root, "registry": reg, "dirs": dirs,
            "episodes": read_episodes(rec), "d4rl": fake}


def load(world, refs, reward, **kw):
    kw.setdefault("cache_dir", str(world["base"] / "cache"))
    return load_transitions(refs, reward=reward, root=world["root"], **kw)


def flags_of(episode):
    t = len(episode[sc.STEPS][sc.IS_FIRST]) - 1
    return np.asarray(episode[sc.STEPS][sc.INTERVENTION][:t], bool)


def expected_rows(episodes, view):
    """(episode index, step) of every transition a view keeps, from the pure relabel rule."""
    rows = []
    for i, episode in enumerate(episodes):
        t = len(flags_of(episode))
        if view == "raw":
            keep = np.ones(t, bool)
        else:
            keep = rl.relabel_episode(episode, view)[sc.STEPS][sc.INCLUDE][:t]
        rows += [(i, s) for s in np.flatnonzero(keep)]
    return rows


def check_alignment(t, episodes, rows):
    """Every row's (s, a, d, s') equals the source episode's step s and s + 1."""
    assert [(int(e), int(s)) for e, s in zip(t.episode_ids, t.step_index)] == rows
    for r, (i, s) in enumerate(rows):
        steps = episodes[i][sc.STEPS]
        np.testing.assert_array_equal(t.observations[r], steps[sc.OBSERVATION][s])
        np.testing.assert_array_equal(t.next_observations[r], steps[sc.OBSERVATION][s + 1])
        np.testing.assert_array_equal(t.actions[r], steps[sc.ACTION][s])
        assert t.discounts[r] == steps[sc.DISCOUNT][s]
        assert t.intervention[r] == steps[sc.INTERVENTION][s]


# ---------------------------------------------------------------------------
# Loading views by tag: exact rows, rewards per mode, next-observation alignment.
# ---------------------------------------------------------------------------


def test_raw_recording_by_tag_keeps_every_transition(world):
    t, (src,) = load(world, "unit-raw@round-0", "env")
    episodes = world["episodes"]
    rows = expected_rows(episodes, "raw")
    assert len(t) == sum(LENGTHS) == src.transitions and src.episodes == len(LENGTHS)
    assert src.resolved == "unit-raw:1.0.0" and src.view is None
    check_alignment(t, episodes, rows)
    np.testing.assert_array_equal(t.rewards, [episodes[i][sc.STEPS][sc.REWARD][s] for i, s in rows])
    # Odd episodes end in a termination: discount 0 on their last transition only.
    assert [int(s) for s in np.flatnonzero(t.discounts == 0)] == [
        r for r, (i, s) in enumerate(rows) if i % 2 and s == LENGTHS[i] - 1]
    # The same row seen twice: next_observations[i] is the observation of the following step.
    same = (t.episode_ids[1:] == t.episode_ids[:-1])
    np.testing.assert_array_equal(t.next_observations[:-1][same], t.observations[1:][same])


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_keeps_exactly_its_include_mask(world, view):
    episodes = world["episodes"]
    rows = expected_rows(episodes, view)
    t, (src,) = load(world, f"unit-{view}@latest", "env")
    assert src.view == view and len(t) == len(rows) == src.transitions
    check_alignment(t, episodes, rows)
    # 'env' on a relabelled view is the environment's reward (kept in env_reward).
    np.testing.assert_array_equal(t.rewards, [episodes[i][sc.STEPS][sc.REWARD][s] for i, s in rows])
    z, _ = load(world, f"unit-{view}@latest", "zero")
    assert z.reward_mode == "zero" and not z.rewards.any() and len(z) == len(rows)


def test_include_counts_match_the_flags(world):
    flags = [flags_of(e) for e in world["episodes"]]
    counts = {view: len(load(world, f"unit-{view}@latest", "zero")[0]) for view in VIEWS}
    assert counts["paper"] == sum(LENGTHS)
    assert counts["paper-policy-only"] == sum(int((~f).sum()) for f in flags)
    assert counts["hg-dagger"] == sum(int(f.sum()) for f in flags)
    assert 0 < counts["hg-dagger"] < counts["paper"]


@pytest.mark.parametrize("view", ["paper", "paper-policy-only"])
def test_rlif_rewards_follow_the_relabel_rule(world, view):
    t, _ = load(world, f"unit-{view}@latest", "rlif")
    want = []
    for episode in world["episodes"]:
        reward, include = rl.rlif_rewards(flags_of(episode), rl.RULES[view])
        want.append(reward[include])
    want = np.concatenate(want)
    np.testing.assert_array_equal(t.rewards, want)
    assert t.reward_mode == "rlif" and (want == -1).any() and (want == 0).any()


@pytest.mark.parametrize("ref", ["unit-raw@latest", "unit-hg-dagger@latest", "unit-d4rl@latest"])
def test_rlif_reward_on_a_non_rlif_dataset_names_it(world, ref):
    name = ref.split("@")[0]
    with pytest.raises(RewardModeError, match=f"{name}:1.0.0: reward 'rlif' needs an RLIF view"):
        load(world, ref, "rlif")


def test_unknown_reward_mode_is_refused(world):
    with pytest.raises(RewardModeError, match="unknown reward mode 'sparse'"):
        load(world, "unit-raw@latest", "sparse")


def test_ingested_d4rl_rows_rewards_and_terminals(world):
    t, (src,) = load(world, "unit-d4rl:1.0.0", "env")
    data = world["d4rl"].data
    # With next_observations in the file every row is a transition (see d4rl_hdf5).
    assert len(t) == 12 and src.episodes == 3
    np.testing.assert_array_equal(t.actions, data["actions"])
    np.testing.assert_array_equal(t.rewards, data["rewards"])
    np.testing.assert_array_equal(t.observations, data["observations"])
    # Terminal rows (6 and 11) have discount 0; the timeout row 3 bootstraps.
    assert [int(i) for i in np.flatnonzero(t.discounts == 0)] == [6, 11]
    # Inside an episode s' is the next row's observation; at its end, the file's next_observations.
    np.testing.assert_array_equal(t.next_observations[:3], data["observations"][1:4])
    np.testing.assert_array_equal(t.next_observations[3], data["next_observations"][3])
    assert not t.intervention.any()


def test_several_refs_concatenate_in_order(world):
    t, sources = load(world, ["unit-paper@latest", world["dirs"]["d4rl"]], "env")
    assert [s.transitions for s in sources] == [sum(LENGTHS), 12]
    assert len(t) == sum(LENGTHS) + 12
    np.testing.assert_array_equal(t.rewards[-12:], world["d4rl"].data["rewards"])
    assert t.where(len(t) - 1).startswith(f"dataset {world['dirs']['d4rl']}, episode")
    assert t.where(0) == "dataset unit-paper:1.0.0, episode 's/0', step 0"


def test_merged_rounds_keep_their_view_and_rlif_rewards(world, tmp_path):
    paper = world["dirs"]["paper"]
    out = merge.run([paper, paper], str(tmp_path / "merged"))
    t, (src,) = load(world, out, "rlif")
    one, _ = load(world, "unit-paper@latest", "rlif")
    assert src.view == "paper" and src.episodes == 2 * len(LENGTHS)
    np.testing.assert_array_equal(t.rewards, np.concatenate([one.rewards, one.rewards]))
    assert t.where(len(one)) == f"dataset {out}, episode 's/0', step 0"


# ---------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------


def test_different_specs_name_both_datasets(world, tmp_path):
    other = write_recording(tmp_path / "wide", [make_episode(0, obs_dim=4)],
                            schema=sc.vector_schema(4, 2, name="unit"))
    with pytest.raises(SpecMismatchError, match=r"unit-raw:1\.0\.0 has observations float32\(3,\).*"
                                                 r"wide has observations float32\(4,\)"):
        load(world, ["unit-raw@latest", other], "env")


def test_empty_dataset_and_empty_view_are_one_line_errors(world, tmp_path):
    empty = write_recording(tmp_path / "empty", [])
    with pytest.raises(EmptyTransitionsError, match="no transitions to train on.*0 episodes"):
        load(world, empty, "env")
    # No takeover anywhere: no flags and no takeover starts (jobs check that they agree).
    calm = write_recording(tmp_path / "calm", [
        {**make_episode(i), sc.STEPS: {**make_episode(i)[sc.STEPS],
                                       sc.INTERVENTION: np.zeros(6, bool),
                                       sc.INTERVENTION_START: np.zeros(6, bool)}}
        for i in range(2)])
    hg = relabel.run(calm, str(tmp_path / "hg"), "hg-dagger", SINGLE)
    with pytest.raises(EmptyTransitionsError, match="2 episodes, the 'hg-dagger' view") as info:
        load(world, hg, "env")
    assert "\n" not in str(info.value)


def test_nan_in_a_dataset_names_dataset_episode_and_step(world, tmp_path):
    episodes = [make_episode(i, length=6) for i in range(3)]
    episodes[2][sc.STEPS][sc.REWARD][4] = np.nan
    bad = write_recording(tmp_path / "nan", episodes)
    with pytest.raises(NonFiniteTransitionError,
                       match=rf"NaN/inf in rewards \(env\) at dataset {bad}, "
                             r"episode 's/2', step 4"):
        load(world, bad, "env")
    cache_dir = world["base"] / "cache"
    # Nothing half-written is left behind, and the bad data got no entry.
    assert not cache_dir.exists() or not [
        n for n in os.listdir(cache_dir) if n.startswith(cache_lib.TMP_PREFIX)]
    assert not os.path.exists(cache_lib.entry_dir(str(cache_dir), directory_digest(bad)))


def test_unknown_ref_is_a_clear_error(world):
    from rlif_data.registry.store import UnknownDatasetError

    with pytest.raises(UnknownDatasetError, match="unit-raw@nope is not a known tag"):
        load(world, "unit-raw@nope", "env")
    with pytest.raises(FileNotFoundError, match="not a dataset reference"):
        load(world, "no/such/dir", "env")


# ---------------------------------------------------------------------------
# The columnar cache.
# ---------------------------------------------------------------------------


def assert_same(a: Transitions, b: Transitions):
    for name, col in a.columns():
        np.testing.assert_array_equal(col, dict(b.columns())[name], err_msg=name)
    assert a.episode_names == b.episode_names and a.reward_mode == b.reward_mode


def test_cache_hit_is_identical_and_decodes_nothing(world, tmp_path):
    root = str(tmp_path / "reg")
    reg = Registry(root)
    info = reg.publish(world["dirs"]["paper"], "hit-test")
    first, (s1,) = load_transitions("hit-test@latest", reward="rlif", root=root)
    second, (s2,) = load_transitions("hit-test@latest", reward="rlif", root=root)
    assert (s1.cache, s2.cache) == ("built", "hit")
    assert s1.content_sha256 == info.manifest["content_sha256"]
    assert os.path.isdir(os.path.join(root, "cache", "transitions"))
    assert isinstance(second.actions, np.memmap) and not second.actions.flags.writeable
    assert_same(first, second)
    # Another reward mode is served by the same entry.
    env, (s3,) = load_transitions("hit-test@latest", reward="env", root=root)
    assert s3.cache == "hit"
    np.testing.assert_array_equal(env.rewards, load(world, "unit-paper@latest", "env")[0].rewards)
    # Make every shard undecodable (same sizes, so the registry's size check passes):
    # a hit must not read them, a fresh cache must fail on them.
    for name in os.listdir(info.path):
        if ".array_record-" in name:
            path = os.path.join(info.path, name)
            os.chmod(path, 0o644)
            with open(path, "r+b") as f:
                f.write(b"\0" * os.path.getsize(path))
    third, (s4,) = load_transitions("hit-test@latest", reward="rlif", root=root)
    assert s4.cache == "hit"
    assert_same(first, third)
    from rlif_data import errors

    with pytest.raises(errors.RlifDataError):
        load_transitions("hit-test@latest", reward="rlif", root=root,
                         cache_dir=str(tmp_path / "fresh"))


def _entry(cache_dir):
    (name,) = [n for n in os.listdir(cache_dir) if not n.startswith(".")]
    return os.path.join(cache_dir, name)


@pytest.mark.parametrize("damage", ["flip", "truncate", "drop_entry_json", "shape"])
def test_damaged_cache_entry_is_rebuilt_not_trusted(world, tmp_path, damage):
    cache_dir = str(tmp_path / "cache")
    good, (s1,) = load(world, "unit-paper@latest", "rlif", cache_dir=cache_dir)
    assert s1.cache == "built"
    entry = _entry(cache_dir)
    with open(os.path.join(entry, cache_lib.ENTRY_FILE)) as f:
        listing = json.load(f)["columns"]
    path = os.path.join(entry, listing["rewards_rlif"]["file"])
    if damage == "flip":  # same size, one value changed: only the CRC can tell
        values = np.load(path)
        values[3] = 7.0
        np.save(path, values)
    elif damage == "truncate":
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 8)
    elif damage == "drop_entry_json":
        os.remove(os.path.join(entry, cache_lib.ENTRY_FILE))
    else:
        np.save(path, np.zeros(3, np.float32))
    again, (s2,) = load(world, "unit-paper@latest", "rlif", cache_dir=cache_dir)
    assert s2.cache == "rebuilt"
    assert_same(good, again)
    third, (s3,) = load(world, "unit-paper@latest", "rlif", cache_dir=cache_dir)
    assert s3.cache == "hit"
    assert [n for n in os.listdir(cache_dir) if n.startswith(".")] == []


def test_leftovers_of_killed_builds_are_swept(world, tmp_path):
    cache_dir = tmp_path / "cache"
    old, fresh = cache_dir / f"{cache_lib.TMP_PREFIX}old", cache_dir / f"{cache_lib.TMP_PREFIX}live"
    old.mkdir(parents=True)
    fresh.mkdir()
    (old / "col00.npy").write_bytes(b"partial")
    os.utime(old, (0, 0))
    _, (src,) = load(world, "unit-raw@latest", "env", cache_dir=str(cache_dir))
    assert src.cache == "built"
    assert not old.exists() and fresh.exists()


def test_live_recording_is_not_cached(world, tmp_path):
    from rlif_data.recording.store import EpisodeStore

    cache_dir = str(tmp_path / "cache")
    with EpisodeStore.open(str(tmp_path / "live"), sc.vector_schema(3, 2, name="unit")) as store:
        store.write_episode(make_episode(0))
        t, (src,) = load(world, str(tmp_path / "live"), "env", cache_dir=cache_dir)
    assert src.cache == "off" and src.content_sha256 is None and len(t) == 5
    assert not os.path.exists(cache_dir)


def test_loading_imports_no_tensorflow(world, tmp_path):
    code = (
        "import sys; from trainers.data import load_transitions; "
        f"t, s = load_transitions('unit-paper@latest', reward='rlif', root={world['root']!r}, "
        f"cache_dir={str(tmp_path / 'c')!r}); "
        "assert s[0].cache == 'built' and len(t) > 0; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------
# Camera observations: image leaves stay uint8 from disk to batch.
# ---------------------------------------------------------------------------


def camera_episode(i, length=4, size=8):
    rng = np.random.default_rng(i)
    obs = {"state": rng.normal(size=(length + 1, 3)).astype(np.float32),
           "front": rng.integers(0, 256, (length + 1, size, size, 3), dtype=np.uint8)}
    steps = ep.build_steps(obs, rng.uniform(-1, 1, (length, 2)), np.ones(length),
                           np.ones(length), terminated=False,
                           intervention=np.arange(length) % 2 == 0)
    return {**ep.complete_metadata({sc.EPISODE_ID: f"cam/{i}"}, "t"), sc.STEPS: steps}


def test_camera_dataset_keeps_uint8_images(world, tmp_path):
    schema = sc.camera_schema(3, 2, cameras=("front",), size=8, name="cam")
    episodes = [camera_episode(i) for i in range(3)]
    rec = write_recording(tmp_path / "cam", episodes, schema=schema)
    cache_dir = str(tmp_path / "cache")
    t, (src,) = load(world, rec, "env", cache_dir=cache_dir)
    t2, (src2,) = load(world, rec, "env", cache_dir=cache_dir)
    assert (src.cache, src2.cache) == ("built", "hit")
    for tr in (t, t2):
        assert tr.observations["front"].dtype == np.uint8 and len(tr) == 12
        np.testing.assert_array_equal(tr.observations["front"][4], episodes[1][sc.STEPS][
            sc.OBSERVATION]["front"][0])
        np.testing.assert_array_equal(tr.next_observations["front"][4], episodes[1][sc.STEPS][
            sc.OBSERVATION]["front"][1])
    buffer = ReplayBuffer.like(t2, capacity=20)
    buffer.insert(t2)
    batch = buffer.sample(np.random.default_rng(0), 5)
    assert batch["observations"]["front"].dtype == np.uint8
    assert batch["observations"]["front"].shape == (5, 8, 8, 3)
    with pytest.raises(SpecMismatchError, match="has observations \\{front: uint8"):
        load(world, [rec, "unit-raw@latest"], "env", cache_dir=cache_dir)


# ---------------------------------------------------------------------------
# Pure pieces: episode -> transitions, replay buffer, sampler, action scaling.
# ---------------------------------------------------------------------------


def synthetic(n, obs_dim=3, offset=0.0, reward_mode="rlif", name="synthetic"):
    """n transitions whose observation row i is (offset + i) everywhere."""
    obs = (offset + np.arange(n, dtype=np.float32))[:, None] * np.ones((1, obs_dim), np.float32)
    return Transitions(
        observations=obs, actions=np.zeros((n, 2), np.float32),
        rewards=np.full(n, offset, np.float32), discounts=np.ones(n, np.float32),
        next_observations=obs + 1, intervention=np.zeros(n, bool),
        episode_ids=np.zeros(n, np.int32), step_index=np.arange(n, dtype=np.int32),
        episode_names=(f"dataset {name}, episode 'e0'",), reward_mode=reward_mode)


def test_episode_to_transitions_final_step_is_not_a_transition():
    episode = make_episode(3, length=5)
    t = episode_to_transitions(episode, "env", dataset="d")
    assert len(t) == 5
    np.testing.assert_array_equal(t.next_observations[-1], episode[sc.STEPS][sc.OBSERVATION][5])
    with pytest.raises(RewardModeError, match="d: reward 'rlif' needs an RLIF view"):
        episode_to_transitions(episode, "rlif", dataset="d")
    derived = rl.relabel_episode(episode, "official")
    t = episode_to_transitions(derived, "rlif", view="official", dataset="d")
    reward, include = rl.rlif_rewards(flags_of(episode), rl.OFFICIAL)
    np.testing.assert_array_equal(t.rewards, reward[include])
    assert not include[-1] and len(t) == include.sum()


def test_episode_with_inf_observation_names_step():
    episode = make_episode(1, length=5)
    episode[sc.STEPS][sc.OBSERVATION][3, 1] = np.inf
    with pytest.raises(NonFiniteTransitionError,
                       match=r"observations at dataset d, episode 's/1', step 3"):
        episode_to_transitions(episode, "env", dataset="d")


def test_concat_renumbers_episodes_and_refuses_mixed_reward_modes():
    a, b = synthetic(3, name="a"), synthetic(2, offset=10, name="b")
    c = concat_transitions([a, b])
    assert len(c) == 5 and list(c.episode_ids) == [0, 0, 0, 1, 1]
    assert c.where(4) == "dataset b, episode 'e0', step 1"
    with pytest.raises(RewardModeError, match="reward mode 'rlif' but .* 'env'"):
        concat_transitions([a, synthetic(2, reward_mode="env")])
    with pytest.raises(SpecMismatchError, match=r"float32\(3,\).*float32\(4,\)"):
        concat_transitions([a, synthetic(2, obs_dim=4)])


def test_replay_buffer_ring_keeps_the_newest():
    buffer = ReplayBuffer(5, ((3,), "float32"), 2)
    buffer.insert(synthetic(3))
    assert len(buffer) == 3
    buffer.insert(synthetic(4, offset=100))  # wraps: slots 3, 4, 0, 1
    assert len(buffer) == 5
    got = buffer.take(np.arange(5))["observations"][:, 0]
    np.testing.assert_array_equal(got, [102, 103, 2, 100, 101])
    buffer.insert(synthetic(12, offset=200))  # more than capacity: the last 5 survive
    assert sorted(buffer.take(np.arange(5))["observations"][:, 0]) == [207, 208, 209, 210, 211]
    batch = buffer.sample(np.random.default_rng(1), 64)
    assert set(batch) == {"observations", "actions", "rewards", "discounts", "next_observations",
                          "intervention"}
    np.testing.assert_array_equal(batch["next_observations"], batch["observations"] + 1)
    assert set(batch["observations"][:, 0]) <= {207, 208, 209, 210, 211}


def test_replay_buffer_refuses_bad_inserts_and_stays_intact():
    buffer = ReplayBuffer(8, ((3,), "float32"), 2)
    buffer.insert(synthetic(2))
    bad = synthetic(3, offset=50, name="round-2")
    bad.rewards[2] = np.nan
    with pytest.raises(NonFiniteTransitionError,
                       match="rewards at dataset round-2, episode 'e0', step 2"):
        buffer.insert(bad)
    with pytest.raises(RewardModeError, match="reward mode 'env'"):
        buffer.insert(synthetic(2, reward_mode="env"))
    with pytest.raises(SpecMismatchError, match=r"float32\(4,\)"):
        buffer.insert(synthetic(2, obs_dim=4))
    assert len(buffer) == 2
    with pytest.raises(EmptyTransitionsError, match="empty replay buffer"):
        ReplayBuffer(4, ((3,), "float32"), 2).sample(np.random.default_rng(0), 1)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
def test_mixed_sampler_exact_share_per_batch(ratio):
    offline = synthetic(50, offset=1000, reward_mode="env")
    online = ReplayBuffer(100, ((3,), "float32"), 2)
    online.insert(synthetic(30))
    sampler = MixedSampler(offline, online, offline_ratio=ratio)
    batch_size, num_batches = 8, 5
    batch = sampler.sample(np.random.default_rng(0), batch_size, num_batches)
    assert batch["observations"].shape == (40, 3) and batch["actions"].shape == (40, 2)
    is_offline = (batch["observations"][:, 0] >= 1000).reshape(num_batches, batch_size)
    k = offline_rows(ratio, batch_size)
    assert k == {0.0: 0, 0.25: 2, 0.5: 4, 1.0: 8}[ratio]
    expected = np.zeros(batch_size, bool)
    expected[:k] = True
    assert (is_offline == expected).all()
    np.testing.assert_array_equal(batch["next_observations"], batch["observations"] + 1)
    info = sampler.info()
    assert info["offline"]["reward"] == "env" and info["online"]["reward"] == "rlif"
    assert info["offline_ratio"] == ratio and info["online"]["size"] == 30


def test_mixed_sampler_any_ratio_and_rounding():
    assert [offline_rows(r, 256) for r in (0.1, 0.3, 0.75)] == [26, 77, 192]
    assert offline_rows(0.5, 3) == 2  # half up, not to even
    with pytest.raises(ValueError, match=r"offline_ratio must be in \[0, 1\]"):
        offline_rows(1.5, 8)


def test_mixed_sampler_bad_sources():
    offline = synthetic(10, reward_mode="env")
    with pytest.raises(SpecMismatchError,
                       match=r"offline source d4rl has observations float32\(3,\)"
                             r".*online source buffer has observations float32\(4,\)"):
        MixedSampler(offline, ReplayBuffer(4, ((4,), "float32"), 2), offline_name="d4rl",
                     online_name="buffer")
    empty = ReplayBuffer(4, ((3,), "float32"), 2)
    sampler = MixedSampler(offline, empty)
    with pytest.raises(EmptyTransitionsError, match="from online: it is empty"):
        sampler.sample(np.random.default_rng(0), 4)
    only_offline = MixedSampler(offline, None, offline_ratio=1.0)
    assert only_offline.sample(np.random.default_rng(0), 4, 2)["rewards"].shape == (8,)
    with pytest.raises(ValueError, match="needs an online source"):
        MixedSampler(offline, None, offline_ratio=0.5)


def test_action_normalisation_round_trip_and_clip():
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 10.0])
    actions = np.array([[-2.0, 0.0], [0.0, 5.0], [1.0, 10.0], [3.0, -1.0]], np.float32)
    unit = normalize_actions(actions, low, high)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit[1:3], [[0.0, 0.0], [0.5, 1 - 1e-5]], atol=1e-7)
    assert unit.max() == np.float32(1 - 1e-5) and unit.min() == np.float32(-1 + 1e-5)
    assert np.isfinite(np.arctanh(unit)).all()
    back = denormalize_actions(unit, low, high)
    np.testing.assert_allclose(back[:3], actions[:3], atol=1e-4)
    np.testing.assert_allclose(denormalize_actions(np.array([[5.0, -5.0]]), low, high),
                               [[2.0, 0.0]])
    with pytest.raises(ValueError, match="dimension 1 are \\[1.0, 1.0\\]"):
        normalize_actions(actions, [-1, 1], [1, 1])


def test_marked_episodes_need_an_explicit_choice_and_drop_leaves_them_out(world, tmp_path):
    from rlif_data import invalid

    rec = write_recording(tmp_path / "rec", [make_episode(i, length=n)
                                             for i, n in enumerate(LENGTHS)])
    invalid.mark_episode(rec, "s/1", "collision")
    invalid.mark_episode(rec, "s/4", "dropped object")
    cache = str(tmp_path / "cache")
    with pytest.raises(invalid.InvalidOptionRequiredError, match="2 episodes marked invalid"):
        load_transitions(rec, reward="env", root=world["root"], cache_dir=cache)
    kept, (src,) = load_transitions(rec, reward="env", root=world["root"], cache_dir=cache,
                                    invalid_episodes="keep")
    assert len(kept) == sum(LENGTHS) and src.invalid_dropped == 0
    dropped, (src,) = load_transitions(rec, reward="env", root=world["root"], cache_dir=cache,
                                       invalid_episodes="drop")
    assert len(dropped) == sum(LENGTHS) - LENGTHS[1] - LENGTHS[4] == src.transitions
    assert src.invalid_dropped == 2 and src.episodes == len(LENGTHS)
    assert set(np.unique(dropped.episode_ids)) == {0, 2, 3, 5}
    # Rows of the kept episodes are the same rows, in the same order.
    keep_rows = ~np.isin(kept.episode_ids, [1, 4])
    np.testing.assert_array_equal(dropped.actions, kept.actions[keep_rows])
    np.testing.assert_array_equal(dropped.next_observations, kept.next_observations[keep_rows])
