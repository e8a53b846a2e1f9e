"""Scripted experts: one PD balance controller for hopper-style legs.

Hopper and Walker2d differ only in where the torso and leg signals sit in the
observation and in how many legs there are, so one `BalanceController` runs
both from a `BodyLayout` (where to read) and `LegGains` (how hard to push).
The controllers keep the robot healthy for whole episodes (they stand, they
do not run), which makes them a reproducible offline stand-in for a trained
expert. Look them up with `scripted_expert(env_id)`. numpy only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from rlif_data import errors
from rlif_data.policies.base import Policy

JOINTS_PER_LEG = 3
"""Each leg is (thigh/hip, leg/knee, foot/ankle)."""


@dataclasses.dataclass(frozen=True)
class LegGains:
    """PD gains of one hopper-style leg (thigh, leg, foot joints).

    Positive joint torque increases the joint angle. Torso feedback goes into
    the hip and the ankle because those two joints can swing the torso and
    shift the centre of mass over the foot; the knee is only held straight.
    The values were found by random search on seeded episodes and rounded.
    """

    hip_kp: float
    hip_target: float
    hip_kd: float
    hip_torso_angle: float
    hip_torso_rate: float
    knee_kp: float
    knee_kd: float
    ankle_kp: float
    ankle_target: float
    ankle_kd: float
    ankle_torso_angle: float
    ankle_torso_rate: float
    ankle_forward_vel: float


@dataclasses.dataclass(frozen=True)
class BodyLayout:
    """Where a balance controller reads its signals in a flat observation.

    Attributes:
      obs_dim: observation size.
      torso_angle: index of the torso pitch angle.
      torso_rate: index of the torso pitch rate.
      forward_vel: index of the forward (x) velocity.
      legs: one ``(joint_angles_start, joint_rates_start)`` pair per leg; each
        leg has `JOINTS_PER_LEG` consecutive angles and rates. The action holds
        the legs' torques in this order.
    """

    obs_dim: int
    torso_angle: int
    torso_rate: int
    forward_vel: int
    legs: tuple[tuple[int, int], ...]


def leg_torques(g: LegGains, torso_angle: float, torso_rate: float, forward_vel: float,
                q: np.ndarray, qd: np.ndarray) -> list[float]:
    """Unclipped [hip, knee, ankle] commands for one leg.

    Args:
      g: the leg's gains.
      torso_angle: torso pitch (rad).
      torso_rate: torso pitch rate (rad/s).
      forward_vel: forward velocity of the body (m/s).
      q: the leg's three joint angles.
      qd: the leg's three joint rates.

    Returns:
      ``[hip, knee, ankle]`` commands before clipping to [-1, 1].
    """
    hip = (g.hip_kp * (g.hip_target - q[0]) - g.hip_kd * qd[0]
           + g.hip_torso_angle * torso_angle + g.hip_torso_rate * torso_rate)
    knee = -g.knee_kp * q[1] - g.knee_kd * qd[1]
    ankle = (g.ankle_kp * (g.ankle_target - q[2]) - g.ankle_kd * qd[2]
             + g.ankle_torso_angle * torso_angle + g.ankle_torso_rate * torso_rate
             + g.ankle_forward_vel * forward_vel)
    return [hip, knee, ankle]


class BalanceController:
    """Deterministic PD controller that keeps a hopper-style body standing.

    Every leg runs the same gains; torso pitch, pitch rate and forward velocity
    feed each leg's hip and ankle.

    Args:
      layout: where the controller reads its signals.
      gains: per-leg gains.
    """

    def __init__(self, layout: BodyLayout, gains: LegGains):
        self.layout = layout
        self.gains = gains

    def __call__(self, observation: Any) -> np.ndarray:
        """The action for one observation.

        Args:
          observation: a flat observation of shape ``(layout.obs_dim,)``.

        Returns:
          A float32 action of shape ``(JOINTS_PER_LEG * len(layout.legs),)`` in [-1, 1].

        Raises:
          ValueError: the observation has the wrong shape.
        """
        lay = self.layout
        o = np.asarray(observation, dtype=np.float64)
        if o.shape != (lay.obs_dim,):
            raise ValueError(f"{type(self).__name__} expects an observation of shape "
                             f"({lay.obs_dim},), got {o.shape}")
        torques: list[float] = []
        for q0, qd0 in lay.legs:
            torques += leg_torques(self.gains, o[lay.torso_angle], o[lay.torso_rate],
                                   o[lay.forward_vel], o[q0:q0 + JOINTS_PER_LEG],
                                   o[qd0:qd0 + JOINTS_PER_LEG])
        return np.clip(np.asarray(torques, dtype=np.float32), -1.0, 1.0)


HOPPER_GAINS = LegGains(
    hip_kp=4.0, hip_target=-0.25, hip_kd=0.15, hip_torso_angle=-3.5, hip_torso_rate=-0.1,
    knee_kp=3.0, knee_kd=0.25,
    ankle_kp=4.5, ankle_target=-0.05, ankle_kd=0.3, ankle_torso_angle=-4.0,
    ankle_torso_rate=0.15, ankle_forward_vel=-0.4,
)

WALKER2D_GAINS = LegGains(
    hip_kp=4.0, hip_target=-0.27, hip_kd=0.16, hip_torso_angle=-3.3, hip_torso_rate=0.09,
    knee_kp=1.3, knee_kd=0.1,
    ankle_kp=6.3, ankle_target=-0.04, ankle_kd=0.17, ankle_torso_angle=-5.5,
    ankle_torso_rate=0.18, ankle_forward_vel=-0.42,
)

# Hopper-v5 (11,): [z, torso_angle, thigh, leg, foot, x_vel, z_vel, torso_rate,
# thigh_vel, leg_vel, foot_vel] (qpos without rootx, then qvel).
HOPPER_LAYOUT = BodyLayout(obs_dim=11, torso_angle=1, torso_rate=7, forward_vel=5,
                           legs=((2, 8),))

# Walker2d-v5 (17,): [z, torso_angle, right thigh/leg/foot, left thigh/leg/foot,
# x_vel, z_vel, torso_rate, right joint vels (3), left joint vels (3)];
# actions are [right hip/knee/ankle, left hip/knee/ankle].
WALKER2D_LAYOUT = BodyLayout(obs_dim=17, torso_angle=1, torso_rate=10, forward_vel=8,
                             legs=((2, 11), (5, 14)))


class HopperBalanceExpert(BalanceController):
    """`BalanceController` preset for Hopper-v5: obs (11,), actions in [-1, 1]^3.

    It survives full 1000-step episodes on the seeds tried, but moves forward
    very little: returns are about one healthy reward per step.

    Args:
      gains: controller gains; the default is tuned for Hopper-v5.
    """

    def __init__(self, gains: LegGains = HOPPER_GAINS):
        super().__init__(HOPPER_LAYOUT, gains)


class Walker2dBalanceExpert(BalanceController):
    """`BalanceController` preset for Walker2d-v5: obs (17,), actions in [-1, 1]^6.

    Both legs run the same gains, so the walker stands on both feet rather
    than walking.

    Args:
      gains: per-leg controller gains; the default is tuned for Walker2d-v5.
    """

    def __init__(self, gains: LegGains = WALKER2D_GAINS):
        super().__init__(WALKER2D_LAYOUT, gains)


SCRIPTED_EXPERTS: dict[str, Callable[[], Policy]] = {
    "Hopper-v5": HopperBalanceExpert,
    "Walker2d-v5": Walker2dBalanceExpert,
}
"""Env id -> factory of a deterministic scripted expert for that env."""


def scripted_expert(env_id: str) -> Policy:
    """A new scripted expert for ``env_id``.

    Args:
      env_id: a Gymnasium id such as "Hopper-v5".

    Returns:
      A deterministic policy for that env.

    Raises:
      UnknownEnvironmentError: (a ValueError) no scripted expert exists for
        ``env_id``; the message lists the ids that have one.
    """
    try:
        factory = SCRIPTED_EXPERTS[env_id]
    except KeyError:
        known = ", ".join(sorted(SCRIPTED_EXPERTS))
        raise errors.UnknownEnvironmentError(
            f"no scripted expert for environment id {env_id!r}; known ids: {known}"
        ) from None
    return factory()
