"""Small synthetic episodes in the real schema, and recordings made of them."""

import numpy as np

from rlif_data import episodes as ep
from rlif_data import schema as sc
from rlif_data.recording.store import EpisodeStore

SCHEMA = sc.vector_schema(3, 2, name="unit")


def make_episode(i, length=5, operator="", obs_dim=3):
    """Episode `i`: seeded random values, ~half the steps intervened, odd ones terminated."""
    rng = np.random.default_rng(i)
    flags = rng.random(length) < 0.5
    steps = ep.build_steps(
        rng.normal(size=(length + 1, obs_dim)).astype(np.float32),
        rng.uniform(-1, 1, (length, 2)),
        np.full(length, float(i)),
        np.array([0.0 if i % 2 and t == length - 1 else 1.0 for t in range(length)]),
        terminated=bool(i % 2),
        intervention=flags,
        policy_actions=rng.uniform(-1, 1, (length, 2)),
        expert_actions=rng.uniform(-1, 1, (length, 2)),
        has_expert_action=np.ones(length, bool),
        source=np.where(flags, int(sc.Source.EXPERT), int(sc.Source.POLICY)),
        timestamps=np.arange(length) * 0.1,
    )
    meta = ep.complete_metadata(
        {sc.EPISODE_ID: f"s/{i}", sc.ENV_ID: "Unit-v0", sc.SEED: i, sc.OPERATOR: operator}, "t")
    return {**meta, sc.STEPS: steps}


def with_noisy_cameras(episode, cameras, size, seed):
    """`episode` with its state observation moved under `schema.STATE_KEY` and one camera of
    seeded uniform-noise RGB frames (size x size) per name in `cameras` (JPEG's worst case)."""
    steps = episode[sc.STEPS]
    frames = len(steps[sc.IS_FIRST])
    rng = np.random.default_rng(seed)
    steps[sc.OBSERVATION] = {
        sc.STATE_KEY: steps[sc.OBSERVATION],
        **{cam: rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
           for cam in cameras}}
    return episode


def write_recording(directory, episodes, schema=SCHEMA):
    """Write `episodes` through the real crash-safe store."""
    with EpisodeStore.open(str(directory), schema) as store:
        for episode in episodes:
            store.write_episode(episode)
    return str(directory)
