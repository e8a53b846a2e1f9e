"""Trainer data: datasets by tag -> transitions, the online replay buffer, the RLPD sampler.

    from trainers.data import load_transitions, ReplayBuffer, MixedSampler

    offline, _ = load_transitions("hopper-medium@latest", reward="env")
    online_data, _ = load_transitions("rounds@latest", reward="rlif")
    buffer = ReplayBuffer.like(online_data, capacity=1_000_000)
    buffer.insert(online_data)
    sampler = MixedSampler(offline, buffer, offline_ratio=0.5)
    batch = sampler.sample(rng, batch_size=256, num_batches=20)   # [20 * 256, ...]

Nothing here imports TensorFlow.
"""

from trainers.data.actions import ACTION_EPS, denormalize_actions, normalize_actions
from trainers.data.errors import (
    EmptyTransitionsError,
    NonFiniteTransitionError,
    RewardModeError,
    SpecMismatchError,
    TransitionDataError,
)
from trainers.data.loading import LoadedSource, dataset_view, load_transitions
from trainers.data.mixing import DEFAULT_OFFLINE_RATIO, MixedSampler, offline_rows
from trainers.data.replay_buffer import ReplayBuffer
from trainers.data.transitions import (
    ACTIONS,
    BATCH_KEYS,
    DISCOUNTS,
    ENV,
    INTERVENTION,
    NEXT_OBSERVATIONS,
    OBSERVATIONS,
    REWARD_MODES,
    REWARDS,
    RLIF,
    ZERO,
    Transitions,
    check_finite,
    concat_transitions,
    episode_to_transitions,
)

__all__ = [
    "ACTIONS", "ACTION_EPS", "BATCH_KEYS", "DEFAULT_OFFLINE_RATIO", "DISCOUNTS", "ENV",
    "EmptyTransitionsError", "INTERVENTION", "LoadedSource", "MixedSampler", "NEXT_OBSERVATIONS",
    "NonFiniteTransitionError", "OBSERVATIONS", "REWARDS", "REWARD_MODES", "RLIF",
    "ReplayBuffer", "RewardModeError", "SpecMismatchError", "TransitionDataError", "Transitions",
    "ZERO", "check_finite", "concat_transitions", "dataset_view", "denormalize_actions",
    "episode_to_transitions", "load_transitions", "normalize_actions", "offline_rows",
]
