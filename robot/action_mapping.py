"""A SpaceMouse-like device state as an end-effector delta action. Pure.

Order: dead-zone on the normalized axes, then the frame signs, then the
scales (`to_action`); `ActionMapping` keeps those settings together so every
device (HID, replay) maps the same way.

Frames and signs
----------------
`SpaceMouseState.axes` holds the device's own HID frame, no sign flips:
+x right, +y toward the user, +z down (pushing the cap down), rx / ry / rz
right-handed about those axes -- the raw HID usages Tx..Rz divided by
``axis_scale``. The robot frame is applied at mapping time (`to_action`,
``signs``): the default `Z_UP_SIGNS` = (+x, -y, -z, +rx, -ry, -rz) gives
+x right, +y away from the user, +z up (lifting the cap), right-handed
rotations about those axes -- pyspacemouse's ``AxisConvention.Z_UP`` (its
legacy default flips y/z too, but labels rx as "pitch", ry as "roll", and
flips rx instead of rz; we do not copy that).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Optional, Sequence

import numpy as np

from robot.spacemouse import NUM_AXES, SpaceMouseState

HID_SIGNS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
"""Keep the device's HID frame (+y toward the user, +z down)."""
Z_UP_SIGNS = (1.0, -1.0, -1.0, 1.0, -1.0, -1.0)
"""HID frame -> right-handed z-up frame (+y away from the user, +z up)."""


def apply_deadzone(values, deadzone: float):
    """Zero small deflections and rescale the rest so the output stays continuous.

    ``|v| <= deadzone`` maps to 0; beyond, ``sign(v) * (|v| - deadzone) / (1 - deadzone)``,
    so the output starts at 0 at the edge of the dead-zone (no jump) and still
    reaches 1 at full deflection.

    Args:
      values: a number or array of normalized values in [-1, 1].
      deadzone: in [0, 1).

    Returns:
      A float for a scalar input, else a float64 array of the same shape.

    Raises:
      ValueError: deadzone outside [0, 1).
    """
    if (isinstance(deadzone, bool) or not isinstance(deadzone, numbers.Real)
            or not 0.0 <= deadzone < 1.0):
        raise ValueError(f"deadzone must be in [0, 1), got {deadzone!r}")
    v = np.asarray(values, dtype=np.float64)
    mag = np.maximum(np.abs(v) - deadzone, 0.0) / (1.0 - deadzone)
    out = np.sign(v) * mag
    return float(out) if out.ndim == 0 else out


def _check_signs(signs: Sequence[float]) -> np.ndarray:
    s = np.asarray(signs, dtype=np.float64)
    if s.shape != (NUM_AXES,):
        raise ValueError(f"signs must have {NUM_AXES} entries, got {list(signs)!r}")
    return s


def to_action(state: SpaceMouseState, scale: float = 1.0, *,
              rotation_scale: Optional[float] = None, deadzone: float = 0.0,
              signs: Sequence[float] = Z_UP_SIGNS,
              gripper_buttons: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Map a device state to an end-effector delta action.

    Order: dead-zone on the normalized axes, then the frame signs, then the scales.

    Args:
      state: the device state.
      scale: translation per unit deflection (e.g. metres per step at full push).
      rotation_scale: rotation per unit deflection; None uses `scale`.
      deadzone: see `apply_deadzone`.
      signs: per-axis sign from the HID frame to the robot frame (`Z_UP_SIGNS`,
        `HID_SIGNS`, or any six +-1 values).
      gripper_buttons: ``(close_index, open_index)`` into ``state.buttons`` to append
        a 7th gripper entry: +1 while close is held, -1 while open is held, 0 when
        neither or both are held (the env keeps the gripper where it is).

    Returns:
      float32 array: (dx, dy, dz, drx, dry, drz) or with the gripper entry appended.
      All motion is zero if the state is out of range (a corrupt report must not move
      the robot at full speed).

    Raises:
      ValueError: bad signs, dead-zone or gripper button indices.
    """
    s = _check_signs(signs)
    rot = scale if rotation_scale is None else rotation_scale
    motion = apply_deadzone(np.asarray(state.axes, dtype=np.float64), deadzone) * s
    motion[:3] *= scale
    motion[3:] *= rot
    if state.out_of_range:
        motion[:] = 0.0
    if gripper_buttons is None:
        return motion.astype(np.float32)
    close_i, open_i = gripper_buttons
    n = len(state.buttons)
    if not (0 <= close_i < n and 0 <= open_i < n):
        raise ValueError(f"gripper_buttons {gripper_buttons} out of range for {n} buttons")
    gripper = float(state.buttons[close_i]) - float(state.buttons[open_i])
    return np.append(motion, gripper).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ActionMapping:
    """`to_action`'s settings, kept together so every device maps the same way.

    Attributes: as the keyword arguments of `to_action`.
    """

    scale: float = 1.0
    rotation_scale: Optional[float] = None
    deadzone: float = 0.0
    signs: tuple[float, ...] = Z_UP_SIGNS
    gripper_buttons: Optional[tuple[int, int]] = None

    def __post_init__(self):
        object.__setattr__(self, "signs", tuple(float(x) for x in _check_signs(self.signs)))
        apply_deadzone(0.0, self.deadzone)  # validates

    @property
    def dim(self) -> int:
        """Action size: 6, or 7 with a gripper entry."""
        return NUM_AXES + (self.gripper_buttons is not None)

    def action(self, state: SpaceMouseState) -> np.ndarray:
        """`to_action` with these settings.

        Args:
          state: the device state.

        Returns:
          The float32 action (see `to_action`).
        """
        return to_action(state, self.scale, rotation_scale=self.rotation_scale,
                         deadzone=self.deadzone, signs=self.signs,
                         gripper_buttons=self.gripper_buttons)

    def frame_axes(self, state: SpaceMouseState) -> np.ndarray:
        """The normalized axes in the robot frame (signs applied; no dead-zone, no scale).

        Args:
          state: the device state.

        Returns:
          float32 array of six values in [-1, 1]: what recordings store.
        """
        return (np.asarray(state.axes, dtype=np.float64) * np.asarray(self.signs)).astype(
            np.float32)
