"""Simulated-expert recording from a typed config: env, learner, expert, model.

This is what `rlif-data record` and `quickstart` call; it only assembles parts
(`make_dm_env`, `rlif_data.policies`, `rlif_data.intervention`) and hands them
to `record_session`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from rlif_data import intervention as iv
from rlif_data import schema as sc
from rlif_data.envs.cameras import STATE_KEY, make_camera_dm_env
from rlif_data.envs.gym_dm_env import make_dm_env
from rlif_data.recording.recorder import SessionInfo, SessionSummary, record_session

INTERVENTIONS = ("random", "random-official", "none")
LEARNERS = ("random", "noisy-expert")


@dataclasses.dataclass(frozen=True)
class RecordConfig:
    """Everything a simulated recording session needs.

    Attributes:
      env_id: Gymnasium id, e.g. "Hopper-v5".
      out: recording directory (created, or appended to if it has the same schema).
      episodes: number of episodes to record.
      intervention: "random" (paper: k-step takeovers at a target rate),
        "random-official" (official code: i.i.d. per step) or "none".
      rate: target intervention rate in [0, 1).
      takeover_steps: length k of a takeover for "random".
      learner: "random", "noisy-expert", or a path to a Flax MLP policy checkpoint.
      learner_noise: noise std of "noisy-expert".
      expert: "scripted" (built-in heuristic expert) or a checkpoint path.
      seed: base seed (env, policies, model); episode i uses seed + i.
      max_episode_steps: time limit (None: the env's own).
      round: RLIF round number stored with each episode.
      operator: expert id stored with each episode.
      cameras: MuJoCo camera names to render into the observation (empty:
        vector observations only); "free" is MuJoCo's free camera.
      image_size: camera frame height and width.
    """

    env_id: str = "Hopper-v5"
    out: str = "recordings"
    episodes: int = 20
    intervention: str = "random"
    rate: float = 0.5
    takeover_steps: int = iv.OFFICIAL_TAKEOVER_STEPS
    learner: str = "random"
    learner_noise: float = 0.5
    expert: str = "scripted"
    seed: int = 0
    max_episode_steps: Optional[int] = 200
    round: int = 0
    operator: str = "scripted-expert"
    cameras: tuple[str, ...] = ()
    image_size: int = 128

    def validate(self) -> None:
        """Raise ValueError for a bad value, naming the field."""
        if self.intervention not in INTERVENTIONS:
            raise ValueError(f"intervention must be one of {INTERVENTIONS}, got {self.intervention!r}")
        iv.check_rate(self.rate)
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if self.learner not in LEARNERS and not os.path.isdir(self.learner):
            raise ValueError(
                f"learner must be one of {LEARNERS} or a policy checkpoint directory, "
                f"got {self.learner!r}"
            )
        if self.expert != "scripted" and not os.path.isdir(self.expert):
            raise ValueError(
                f"expert must be 'scripted' or a policy checkpoint directory, got {self.expert!r}"
            )


def make_model(config: RecordConfig) -> iv.InterventionModel:
    """The intervention model a config names."""
    if config.intervention == "none":
        return iv.NoIntervention()
    variant = "official" if config.intervention == "random-official" else "paper"
    return iv.make_random_model(config.rate, variant=variant,
                                takeover_steps=config.takeover_steps, seed=config.seed)


def _make_expert(config: RecordConfig):
    from rlif_data import policies

    if config.expert == "scripted":
        return policies.scripted_expert(config.env_id)
    return policies.load_mlp_policy(config.expert)


def _make_learner(config: RecordConfig, action_space, expert):
    from rlif_data import policies

    if config.learner == "random":
        return policies.RandomPolicy.from_space(action_space, seed=config.seed)
    if config.learner == "noisy-expert":
        return policies.NoisyPolicy(expert, config.learner_noise, action_space.low,
                                    action_space.high, seed=config.seed)
    return policies.load_mlp_policy(config.learner)


def _state_only(policy):
    """Feed a state-based policy the proprio part of a camera observation."""

    def act(observation):
        return policy(observation[STATE_KEY])

    if hasattr(policy, "reset"):
        act.reset = policy.reset
    return act


def record_from_config(config: RecordConfig, progress: bool = True) -> SessionSummary:
    """Record a simulated session as `config` describes.

    Raises:
      ValueError: a bad config value.
      UnknownEnvironmentError: `env_id` is not registered.
      SchemaMismatchError: `out` holds a recording with another schema.
    """
    config.validate()
    if config.cameras:
        env = make_camera_dm_env(config.env_id, tuple(config.cameras), size=config.image_size,
                                 seed=config.seed, max_episode_steps=config.max_episode_steps)
    else:
        env = make_dm_env(config.env_id, seed=config.seed,
                          max_episode_steps=config.max_episode_steps)
    gym_env = env.gym_env
    obs_dim, act_dim = gym_env.observation_space.shape[0], gym_env.action_space.shape[0]
    if config.cameras:
        schema = sc.camera_schema(obs_dim, act_dim, cameras=tuple(config.cameras),
                                  size=config.image_size)
        expert = _state_only(_make_expert(config))
    else:
        schema = sc.vector_schema(obs_dim, act_dim)
        expert = _make_expert(config)
    learner = _make_learner(config, gym_env.action_space, expert)
    if config.cameras and config.learner not in LEARNERS:
        learner = _state_only(learner)
    session = SessionInfo(
        env_id=config.env_id,
        operator=config.operator,
        round=config.round,
        policy_version=config.learner,
        seed=config.seed,
    )
    return record_session(env, config.out, schema, learner, expert, make_model(config), session,
                          config.episodes, progress=progress)
