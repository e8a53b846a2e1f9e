"""The robot environment interface, a simulated arm that implements it offline, and safety limits.

A robot environment here is a `dm_env.Environment` whose observations are a
dict of proprio `state` plus camera frames, whose actions are end-effector
deltas in [-1, 1] (what a SpaceMouse or a policy produces), and which never
receives an action outside its `SafetyLimits`: actions are clipped first and
the clipping is reported.

Real arms plug in behind the same interface. The adapter point is
`RobotClient`: implement it against your robot server (e.g. an HTTP/gRPC
server next to the arm, as SERL-style setups run) and wrap it with
`ClientRobotEnv`. Nothing here talks to hardware that is not present.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Optional, Protocol

import dm_env
import numpy as np
from dm_env import specs

from rlif_data import schema as sc
from robot.cameras import SIM_VIEWS, FrameSource, Images, sim_camera


@dataclasses.dataclass(frozen=True)
class SafetyLimits:
    """Bounds every action must satisfy before it reaches the robot.

    Attributes:
      low, high: per-dimension action bounds (end-effector delta units).
      max_norm: optional bound on the Euclidean norm of the action (speed limit).
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    max_norm: Optional[float] = None

    def clip(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        """Return (safe action, whether it had to be changed). Pure.

        Raises:
          ValueError: wrong shape or NaN/inf (never sent, never "fixed").
        """
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (len(self.low),):
            raise ValueError(f"action has shape {a.shape}, the robot expects ({len(self.low)},)")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN/inf: {a.tolist()}; not sent to the robot")
        safe = np.clip(a, self.low, self.high)
        if self.max_norm is not None:
            norm = float(np.linalg.norm(safe))
            if norm > self.max_norm:
                safe = safe * (self.max_norm / norm)
        return safe.astype(np.float32), bool(np.any(safe != a))


class RobotClient(Protocol):
    """What a real arm's driver provides (the adapter point for real robots)."""

    def reset(self) -> dict[str, np.ndarray]:
        """Move to the start pose; return the first observation."""

    def apply(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool]:
        """Send one end-effector delta; return (observation, reward, episode done)."""

    def close(self) -> None:
        """Release the connection."""


def _leaf_spec(spec: specs.Array) -> sc.LeafSpec:
    """An RGB uint8 (H, W, 3) array is a camera frame; anything else a plain array."""
    shape = tuple(int(d) for d in spec.shape)
    if np.dtype(spec.dtype) == np.uint8 and len(shape) == 3 and shape[2] == 3:
        return sc.ImageSpec(shape[0], shape[1], shape[2])
    return sc.ArraySpec(shape, np.dtype(spec.dtype).name)


def schema_from_specs(observation_spec: Any, action_spec: specs.Array,
                      name: str = "rlif_episodes") -> sc.EpisodeSchema:
    """The recording schema of dm_env observation and action specs. Pure.

    Args:
      observation_spec: one ``specs.Array`` or a dict of them (state, cameras).
      action_spec: a 1-D action spec.
      name: TFDS dataset name of the recording.

    Returns:
      An `EpisodeSchema`; uint8 (H, W, 3) entries become raw camera frames.

    Raises:
      ValueError: the action spec is not 1-D.
    """
    if len(action_spec.shape) != 1:
        raise ValueError(f"robot actions must be a 1-D vector, got shape {action_spec.shape}")
    if isinstance(observation_spec, dict):
        observation = {key: _leaf_spec(spec) for key, spec in observation_spec.items()}
    else:
        observation = _leaf_spec(observation_spec)
    return sc.EpisodeSchema(observation, int(action_spec.shape[0]), name)


class RobotEnv(dm_env.Environment, abc.ABC):
    """Base of robot environments: safety clipping and the clip flag.

    Subclasses implement `_reset` and `_apply` with already-safe actions.
    """

    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self.last_action_clipped = False
        self.clipped_steps = 0

    @abc.abstractmethod
    def _reset(self) -> dm_env.TimeStep:
        """Start an episode."""

    @abc.abstractmethod
    def _apply(self, safe_action: np.ndarray) -> dm_env.TimeStep:
        """Apply an action that is within the limits."""

    def reset(self) -> dm_env.TimeStep:
        """Start an episode."""
        self.last_action_clipped = False
        return self._reset()

    def episode_schema(self, name: str = "rlif_episodes") -> sc.EpisodeSchema:
        """The recording schema of this env's observations and actions.

        Args:
          name: TFDS dataset name of the recording.

        Returns:
          The schema `schema_from_specs` derives from `observation_spec` and
          `action_spec`, so callers never restate the robot's sizes or cameras.
        """
        return schema_from_specs(self.observation_spec(), self.action_spec(), name)

    def step(self, action) -> dm_env.TimeStep:
        """Clip `action` to the safety limits, then apply it."""
        safe, clipped = self.limits.clip(action)
        self.last_action_clipped = clipped
        self.clipped_steps += clipped
        return self._apply(safe)

    def action_spec(self):
        """End-effector deltas within the safety limits."""
        return specs.BoundedArray((len(self.limits.low),), np.float32,
                                  np.asarray(self.limits.low, np.float32),
                                  np.asarray(self.limits.high, np.float32), name=sc.ACTION)

    def reward_spec(self):
        """Scalar float32 reward."""
        return specs.Array((), np.float32, name=sc.REWARD)

    def discount_spec(self):
        """Scalar float32 discount."""
        return specs.BoundedArray((), np.float32, 0.0, 1.0, name=sc.DISCOUNT)


class ClientRobotEnv(RobotEnv):
    """A `RobotEnv` over a `RobotClient` (real arms); the client sees only safe actions."""

    def __init__(self, client: RobotClient, limits: SafetyLimits, observation_spec: Any,
                 max_steps: int):
        super().__init__(limits)
        self._client = client
        self._observation_spec = observation_spec
        self._max_steps = max_steps
        self._t = 0

    def _reset(self) -> dm_env.TimeStep:
        self._t = 0
        return dm_env.restart(self._client.reset())

    def _apply(self, safe_action: np.ndarray) -> dm_env.TimeStep:
        obs, reward, done = self._client.apply(safe_action)
        self._t += 1
        if done:
            return dm_env.termination(np.float32(reward), obs)
        if self._t >= self._max_steps:
            return dm_env.truncation(np.float32(reward), obs, np.float32(1.0))
        return dm_env.transition(np.float32(reward), obs, np.float32(1.0))

    def observation_spec(self):
        """As given by the caller for the client's observations."""
        return self._observation_spec

    def close(self):
        """Close the client."""
        self._client.close()


class SimArmEnv(RobotEnv):
    """A simulated arm (MuJoCo, Gymnasium's Reacher-v5) driven by end-effector deltas.

    The 2-link planar arm takes an (dx, dy) fingertip velocity command in
    [-1, 1]; a Jacobian-transpose controller turns it into joint torques, as a
    real arm's Cartesian controller would. Observations: the 10-dim Reacher
    state plus RGB frames from `cameras` (MuJoCo's free camera seen from two
    viewpoints by default). Episodes end after `max_steps` (truncation).

    Frames are rendered on the calling (control) thread unless the env has a
    `frame_source` (e.g. a `robot.cameras.CameraDriver`), whose newest frames
    the observations take instead, as from a real camera driver.

    Args:
      cameras: names of the views; each gets its own viewpoint.
      image_size: frame size in pixels (0 for no cameras).
      max_steps: steps per episode.
      seed: seeds the first reset.
      limits: safety limits (default: each delta in [-1, 1], norm <= 1).
      gain: torque per unit of commanded fingertip velocity.
      frame_source: where observations take camera frames from (None:
        `render_frames` on the control thread); settable later.
    """

    VIEWS = SIM_VIEWS  # azimuth, elevation

    def __init__(self, cameras: tuple[str, ...] = ("front", "side"), image_size: int = 128,
                 max_steps: int = 100, seed: Optional[int] = None,
                 limits: Optional[SafetyLimits] = None, gain: float = 4.0,
                 frame_source: Optional[FrameSource] = None):
        import gymnasium as gym

        super().__init__(limits or SafetyLimits((-1.0, -1.0), (1.0, 1.0), max_norm=1.0))
        self._env = gym.make("Reacher-v5", max_episode_steps=max_steps)
        self._seed = seed
        self._cameras = tuple(cameras) if image_size else ()
        self._size = image_size
        self._gain = gain
        self._renderer = None
        self.frame_source = frame_source

    @property
    def model(self):
        """The MuJoCo model."""
        return self._env.unwrapped.model

    @property
    def data(self):
        """The MuJoCo data."""
        return self._env.unwrapped.data

    def fingertip(self) -> np.ndarray:
        """Fingertip (x, y) position in metres."""
        return self.data.body("fingertip").xpos[:2].copy()

    def target(self) -> np.ndarray:
        """Target (x, y) position in metres."""
        return self.data.body("target").xpos[:2].copy()

    @property
    def cameras(self) -> tuple[str, ...]:
        """Names of the camera views (empty without cameras)."""
        return self._cameras

    @property
    def image_size(self) -> int:
        """Frame height and width in pixels."""
        return self._size

    def render_frames(self) -> Images:
        """Render every camera of the current state, on the calling thread."""
        import mujoco

        if not self._cameras:
            return {}
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self._size, self._size)
        out = {}
        for name in self._cameras:
            self._renderer.update_scene(self.data, camera=sim_camera(self.model, name, self.VIEWS))
            out[name] = self._renderer.render().copy()
        return out

    def camera_frames(self) -> Images:
        """The frames an observation holds now: the frame source's newest, else rendered here."""
        if not self._cameras:
            return {}
        if self.frame_source is None:
            return self.render_frames()
        return self.frame_source.frames(self.data.qpos)

    def _observation(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {sc.STATE_KEY: np.asarray(obs, np.float32), **self.camera_frames()}

    def _reset(self) -> dm_env.TimeStep:
        obs, _ = self._env.reset(seed=self._seed)
        self._seed = None
        return dm_env.restart(self._observation(obs))

    def ee_delta_to_torque(self, delta: np.ndarray) -> np.ndarray:
        """Jacobian-transpose control: joint torques that push the fingertip along `delta`."""
        import mujoco

        jacp = np.zeros((3, self.model.nv))
        mujoco.mj_jacBody(self.model, self.data, jacp, None, self.model.body("fingertip").id)
        arm = jacp[:2, :2]  # the two arm joints; the target's slide joints are not actuated
        torque = self._gain * arm.T @ np.asarray(delta, np.float64)
        damping = 0.05 * self.data.qvel[:2]
        return np.clip(torque - damping, -1.0, 1.0).astype(np.float32)

    def _apply(self, safe_action: np.ndarray) -> dm_env.TimeStep:
        obs, reward, terminated, truncated, _ = self._env.step(self.ee_delta_to_torque(safe_action))
        obs = self._observation(obs)
        reward = np.float32(reward)
        if terminated:
            return dm_env.termination(reward, obs)
        if truncated:
            return dm_env.truncation(reward, obs, np.float32(1.0))
        return dm_env.transition(reward, obs, np.float32(1.0))

    def observation_spec(self):
        """Proprio state and one RGB frame per camera."""
        state_shape = self._env.observation_space.shape  # Reacher-v5: (10,)
        spec = {sc.STATE_KEY: specs.Array(state_shape, np.float32, name=sc.STATE_KEY)}
        for name in self._cameras:
            spec[name] = specs.Array((self._size, self._size, 3), np.uint8, name=name)
        return spec

    def close(self):
        """Close the simulator."""
        self._env.close()


def reach_expert(env: SimArmEnv, speed: float = 1.0):
    """A scripted operator for the sim arm: moves the fingertip straight to the target."""

    def act(observation) -> np.ndarray:
        del observation
        error = env.target() - env.fingertip()
        norm = float(np.linalg.norm(error))
        if norm < 1e-6:
            return np.zeros(2, np.float32)
        return (speed * error / max(norm, 0.05)).clip(-1, 1).astype(np.float32)

    return act


ROBOT_ENVS = ("sim-arm",)
"""Robot environments available offline; real arms implement `RobotClient`."""


def make_robot_env(name: str, *, image_size: int = 128, max_steps: int = 100,
                   seed: Optional[int] = None) -> RobotEnv:
    """A robot environment by its CLI name, with its default cameras.

    Args:
      name: one of `ROBOT_ENVS`.
      image_size: camera frame size in pixels (0: no cameras).
      max_steps: steps per episode.
      seed: seeds the first reset.

    Returns:
      The environment; ``env.episode_schema()`` is its recording schema.

    Raises:
      ValueError: unknown name; the message lists the available ones.
    """
    if name == "sim-arm":
        return SimArmEnv(image_size=image_size, max_steps=max_steps, seed=seed)
    raise ValueError(f"unknown robot env {name!r}; available offline: {', '.join(ROBOT_ENVS)} "
                     "(real arms: implement robot.env.RobotClient)")
