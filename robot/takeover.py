"""Who is in control: the takeover rule, and the interpreter SpaceMouse-like devices share. Pure.

`TakeoverTracker` decides from motion and buttons (any device can feed it
through `update_inputs`); `SpaceMouseInterpreter` puts the tracker and an
`ActionMapping` together, so the HID device and its replay agree.

Takeover rule (`TakeoverTracker`)
---------------------------------
A takeover starts at the first input -- any axis beyond the dead-zone, or an
engage button pressed -- and ends ``release_time`` seconds after the last
input. A button held with no motion for ``stuck_button_timeout`` seconds is
declared stuck and ignored until it is released, so a jammed button (or a
book on the keys) hands control back to the policy instead of holding a
takeover forever: the takeover then ends ``release_time`` after the stuck
declaration (the button counted as input until then). Motion still engages as
usual meanwhile. The timeout is 10 s by default; None disables it (for a
hold-to-take-over "deadman" button held still for long stretches).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Optional, Sequence

import numpy as np

from robot.action_mapping import ActionMapping, apply_deadzone
from robot.spacemouse import SpaceMouseState


class TakeoverTracker:
    """Pure state machine: is the operator in control? The caller passes the clock value.

    A takeover starts on the first input (motion beyond `deadzone`, or an engage
    button pressed) and ends `release_time` seconds after the last input. A
    button held with no motion for `stuck_button_timeout` seconds is stuck:
    ignored until released (see the module docstring). Clock values that go
    backwards are treated as the latest one seen (two threads may race to update).

    Args:
      deadzone: motion threshold on the normalized axes, in [0, 1).
      release_time: seconds without input before control returns to the policy (>= 0).
      engage_buttons: indices of buttons that take over; None = all buttons.
      stuck_button_timeout: seconds; None disables stuck-button detection.

    Raises:
      ValueError: a parameter out of range.
    """

    def __init__(self, deadzone: float = 0.1, release_time: float = 0.5,
                 engage_buttons: Optional[Iterable[int]] = None,
                 stuck_button_timeout: Optional[float] = 10.0):
        apply_deadzone(0.0, deadzone)  # validates
        if not (math.isfinite(release_time) and release_time >= 0):
            raise ValueError(f"release_time must be >= 0 seconds, got {release_time!r}")
        if stuck_button_timeout is not None and not (
                math.isfinite(stuck_button_timeout) and stuck_button_timeout > 0):
            raise ValueError(f"stuck_button_timeout must be > 0 seconds or None, "
                             f"got {stuck_button_timeout!r}")
        self.deadzone = float(deadzone)
        self.release_time = float(release_time)
        self.engage_buttons = None if engage_buttons is None else frozenset(engage_buttons)
        self.stuck_button_timeout = stuck_button_timeout
        self.reset()

    def reset(self) -> None:
        """Forget everything: not engaged, no button history."""
        self.engaged = False
        self.started_at: Optional[float] = None
        self.last_input_at: Optional[float] = None
        self.last_motion_at: Optional[float] = None
        self.takeovers = 0
        self._pressed_since: dict[int, float] = {}
        self._stuck: set[int] = set()
        self._now: Optional[float] = None

    @property
    def stuck_buttons(self) -> frozenset[int]:
        """Indices of buttons currently declared stuck (ignored until released)."""
        return frozenset(self._stuck)

    def has_motion(self, state: SpaceMouseState) -> bool:
        """Whether the state counts as a touch: an axis beyond the dead-zone, plausible values.

        Args:
          state: the device state.

        Returns:
          True for real motion; False at rest or for an out-of-range state.
        """
        if state.out_of_range:
            return False
        return any(abs(a) > self.deadzone for a in state.axes)

    def update(self, state: SpaceMouseState, now: float) -> bool:
        """Advance to time `now` with the device showing `state`.

        Args:
          state: the latest device state.
          now: the clock value, seconds.

        Returns:
          True while the operator is in control.
        """
        return self.update_inputs(self.has_motion(state), state.buttons, now)

    def update_inputs(self, motion: bool, buttons: Sequence[bool], now: float) -> bool:
        """`update` for any device: `motion` = the operator is moving, plus button states.

        Args:
          motion: the operator is deflecting the device (already dead-zoned).
          buttons: button states.
          now: the clock value, seconds.

        Returns:
          True while the operator is in control.
        """
        if self._now is not None and now < self._now:
            now = self._now
        self._now = now
        if motion:
            self.last_motion_at = now
        for i, pressed in enumerate(buttons):
            if not pressed:
                self._pressed_since.pop(i, None)
                self._stuck.discard(i)
            elif i not in self._pressed_since:
                self._pressed_since[i] = now
        if self.stuck_button_timeout is not None:
            for i, since in self._pressed_since.items():
                # Held since `since` and nothing moved since then for the whole timeout.
                quiet_from = since if self.last_motion_at is None else max(
                    since, self.last_motion_at)
                if now - quiet_from >= self.stuck_button_timeout:
                    self._stuck.add(i)
        button_input = any(
            i not in self._stuck and (self.engage_buttons is None or i in self.engage_buttons)
            for i in self._pressed_since)
        if motion or button_input:
            self.last_input_at = now
            if not self.engaged:
                self.engaged = True
                self.started_at = now
                self.takeovers += 1
        elif self.engaged and now - self.last_input_at >= self.release_time:
            self.engaged = False
        return self.engaged


@dataclasses.dataclass(frozen=True)
class Interpretation:
    """What a state means at one instant: who is in control, the action, any flags.

    Attributes:
      engaged: the operator is in control.
      action: float32 action (`ActionMapping.action`), zeros when disconnected.
      axes: float32 robot-frame normalized axes (`ActionMapping.frame_axes`).
      flags: names of conditions worth logging: "disconnected", "out_of_range",
        "clipped", "stuck_button".
    """

    engaged: bool
    action: np.ndarray
    axes: np.ndarray
    flags: tuple[str, ...]


class SpaceMouseInterpreter:
    """Tracker + mapping: turns (state, time, connected) into engagement, action and flags.

    Every SpaceMouse-like device (HID, replay) goes through this, so they agree.

    Args:
      mapping: the action mapping.
      tracker: the takeover state machine; None builds one with the mapping's dead-zone
        (or 0.1 if that is 0, so sensor noise at rest does not take over).
    """

    def __init__(self, mapping: Optional[ActionMapping] = None,
                 tracker: Optional[TakeoverTracker] = None):
        self.mapping = mapping or ActionMapping()
        self.tracker = tracker or TakeoverTracker(deadzone=self.mapping.deadzone or 0.1)

    def step(self, state: SpaceMouseState, now: float, connected: bool = True) -> Interpretation:
        """Interpret `state` at time `now`.

        Args:
          state: the latest device state.
          now: the clock value, seconds.
          connected: False once the device is gone: never engaged, zero action, and
            the tracker is reset so a reconnect starts clean.

        Returns:
          The `Interpretation`.
        """
        axes = self.mapping.frame_axes(state)
        if not connected:
            self.tracker.reset()
            return Interpretation(False, np.zeros(self.mapping.dim, np.float32), axes,
                                  ("disconnected",))
        engaged = self.tracker.update(state, now)
        flags = []
        if state.out_of_range:
            flags.append("out_of_range")
        if state.any_clipped:
            flags.append("clipped")
        if self.tracker.stuck_buttons:
            flags.append("stuck_button")
        return Interpretation(engaged, self.mapping.action(state), axes, tuple(flags))
