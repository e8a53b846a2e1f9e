"""A real Minari dataset collected with Minari's own DataCollector, for tests."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import minari
import numpy as np
import pytest

ENV_ID = "InvertedPendulum-v5"
DATASET_ID = "test/inverted-pendulum-random-v0"
MAX_STEPS = 8  # short enough that random actions give both terminated and truncated episodes
NUM_EPISODES = 12  # > 10, so episode_10 sorts after episode_9, not after episode_1
SEED_BASE = 100


@dataclasses.dataclass
class Recorded:
    """What the test itself stepped, to compare with what the reader returns."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool
    seed: int


def create_minari_dataset(root) -> list[Recorded]:
    """Collect NUM_EPISODES random episodes with Minari's DataCollector into `root`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        env = minari.DataCollector(gym.make(ENV_ID, max_episode_steps=MAX_STEPS))
        env.action_space.seed(0)
        recorded = []
        for ep in range(NUM_EPISODES):
            seed = SEED_BASE + ep
            obs, _ = env.reset(seed=seed)
            observations, actions, rewards = [obs], [], []
            while True:
                action = env.action_space.sample()
                obs, reward, terminated, truncated, _ = env.step(action)
                observations.append(obs)
                actions.append(action)
                rewards.append(reward)
                if terminated or truncated:
                    break
            recorded.append(Recorded(np.array(observations), np.array(actions),
                                     np.array(rewards), bool(terminated), bool(truncated), seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Minari warns about unset eval_env / author
            env.create_dataset(dataset_id=DATASET_ID, algorithm_name="random", author="rlif",
                               author_email="rlif@example.com", code_permalink="https://x",
                               description="test data")
        env.close()
    return recorded
