"""Simulated-expert recording from a typed config: env, learner, expert, model.

This is what `rlif-data record` and `quickstart` call; it only assembles parts
(`make_dm_env`, `rlif_data.policies`, `rlif_data.intervention`) and hands them
to `record_session`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from rlif_data import intervention as iv
from rlif_data import policies
from rlif_data import schema as sc
from rlif_data.envs.cameras import make_camera_dm_env
from rlif_data.envs.gym_dm_env import make_dm_env
from rlif_data.recording.recorder import SessionInfo, SessionSummary, record_session

VALUE_MODEL = iv.MODEL_VALUE  # paper: decide at every step
VALUE_OFFICIAL_MODEL = "value-official"  # official code: decide outside takeovers, k = 4
VALUE_MODELS = (VALUE_MODEL, VALUE_OFFICIAL_MODEL)
INTERVENTIONS = iv.NAMED_MODELS + VALUE_MODELS


@dataclasses.dataclass(frozen=True)
class RecordConfig:
    """Everything a simulated recording session needs.

    Attributes:
      env_id: Gymnasium id, e.g. "Hopper-v5".
      out: recording directory (created, or appended to if it has the same schema).
      episodes: number of episodes to record.
      intervention: "random" (paper: k-step takeovers at a target rate),
        "random-official" (official code: i.i.d. per step), "value" (paper:
        Q^ref compares the learner's and the expert's actions at every step),
        "value-official" (decided outside takeovers, which last 4 steps) or "none".
      rate: target intervention rate in [0, 1).
      takeover_steps: length k of a takeover for "random".
      learner: a policy spec (`rlif_data.policies.from_spec`): "random",
        "noisy-expert" (the expert plus noise), or a Flax MLP policy checkpoint.
      learner_noise: noise std of "noisy-expert".
      expert: a policy spec: "scripted" (built-in heuristic expert) or a checkpoint.
      seed: base seed (env, policies, model); episode i uses seed + i.
      max_episode_steps: time limit (None: the env's own).
      round: RLIF round number stored with each episode.
      operator: expert id stored with each episode.
      cameras: MuJoCo camera names to render into the observation (empty:
        vector observations only); "free" is MuJoCo's free camera.
      image_size: camera frame height and width.
      qref: Q^ref of the value-based models: a training run directory, a
        policy directory with a critic, or a published policy ref.
      alpha: relative trigger ``Q(s, a_pi) < alpha * Q(s, a_exp)`` (paper 0.97).
      delta: absolute trigger ``Q(s, a_pi) < Q(s, a_exp) - delta``; when set,
        it replaces `alpha`.
      beta: probability of intervening when the trigger fires (else 1 - beta).
      policy_version: what episodes store as the learner's version; None
        derives it from `learner` (a published policy's ``name:version``).
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
    qref: Optional[str] = None
    alpha: float = iv.PAPER_ALPHA
    delta: Optional[float] = None
    beta: float = iv.PAPER_BETA
    policy_version: Optional[str] = None

    def validate(self) -> None:
        """Raise ValueError for a bad value, naming the field."""
        if iv.canonical_model_name(self.intervention) not in INTERVENTIONS:
            raise ValueError(f"intervention must be one of {INTERVENTIONS}, got {self.intervention!r}")
        iv.check_rate(self.rate)
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        policies.check_spec(self.learner, "learner")
        policies.check_spec(self.expert, "expert")
        if self.intervention in VALUE_MODELS and not self.qref:
            raise ValueError(f"--intervention {self.intervention} needs --qref: a training run "
                             "directory or policy ref whose critic gives Q^ref")


def make_model(config: RecordConfig) -> iv.InterventionModel:
    """The intervention model a config names (value-based ones load their Q^ref critic)."""
    if config.intervention in VALUE_MODELS:
        from rlif_data.policies.critic import load_q_function

        takeover = 1 if config.intervention == VALUE_MODEL else iv.OFFICIAL_TAKEOVER_STEPS
        trigger = {"delta": config.delta} if config.delta is not None else {"alpha": config.alpha}
        return iv.ValueBased(load_q_function(config.qref), beta=config.beta,
                             takeover_steps=takeover, seed=config.seed, **trigger)
    return iv.make_named_model(config.intervention, config.rate,
                               takeover_steps=config.takeover_steps, seed=config.seed)


def _make_policies(config: RecordConfig, action_space):
    """The (learner, expert) pair a config names, both over the env's observations."""
    state_key = sc.STATE_KEY if config.cameras else None
    expert = policies.from_spec(config.expert, action_space, env_id=config.env_id,
                                seed=config.seed, state_key=state_key)
    learner = policies.from_spec(config.learner, action_space, env_id=config.env_id,
                                 seed=config.seed, expert=expert, noise=config.learner_noise,
                                 state_key=state_key)
    return learner, expert


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
    else:
        schema = sc.vector_schema(obs_dim, act_dim)
    learner, expert = _make_policies(config, gym_env.action_space)
    session = SessionInfo(
        env_id=config.env_id,
        operator=config.operator,
        round=config.round,
        policy_version=config.policy_version or policies.policy_version(config.learner),
        seed=config.seed,
    )
    return record_session(env, config.out, schema, learner, expert, make_model(config), session,
                          config.episodes, progress=progress)
