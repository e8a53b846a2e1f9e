"""The interface every human input device implements (SpaceMouse, keyboard, replay).

A device runs its own reader (thread, file, ...) after `start()`; the control
loop calls `read()` or `engaged()` at its own rate and never blocks on the
device. `engaged()` makes every device a `rlif_data.intervention.TakeoverSignal`,
so ``ExternalTakeover(device)`` plugs it into the intervention machinery.

Axes and actions are in the robot frame (right-handed, +z up); see
`robot.action_mapping` for how a SpaceMouse's HID frame maps to it.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Optional

import numpy as np


def _frozen_array(values, dtype=np.float32) -> np.ndarray:
    arr = np.array(values, dtype=dtype)  # a copy: the sample must not change under the reader
    arr.setflags(write=False)
    return arr


@dataclasses.dataclass(frozen=True)
class InputSample:
    """One reading of an input device.

    Attributes:
      timestamp: the device clock value when the sample was taken, seconds.
      engaged: the operator is in control (takes over from the policy).
      action: float32 end-effector delta action (read-only); meaningful when engaged.
      connected: False after the device went away (unplugged, read error): then
        `engaged` is False and `action` is zero, so the policy keeps control.
      buttons: button states.
      axes: float32 normalized robot-frame axes before dead-zone and scaling (read-only).
      flags: conditions worth logging, e.g. "disconnected", "out_of_range",
        "clipped", "stuck_button".
    """

    timestamp: float
    engaged: bool
    action: np.ndarray
    connected: bool
    buttons: tuple[bool, ...] = ()
    axes: Optional[np.ndarray] = None
    flags: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "action", _frozen_array(self.action))
        axes = np.zeros(6) if self.axes is None else self.axes
        object.__setattr__(self, "axes", _frozen_array(axes))
        object.__setattr__(self, "buttons", tuple(bool(b) for b in self.buttons))
        object.__setattr__(self, "flags", tuple(self.flags))


class InputDevice(abc.ABC):
    """A human input device. Use as a context manager, or call `start()` / `stop()`."""

    @property
    @abc.abstractmethod
    def action_dim(self) -> int:
        """Size of `InputSample.action` (6, or 7 with a gripper entry)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Open the device and start its reader; returns without waiting for input.

        Raises:
          RuntimeError (or a subclass): the device cannot be opened.
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the reader and release the device. Safe to call twice."""

    @abc.abstractmethod
    def read(self) -> InputSample:
        """The latest sample, without blocking on the device.

        Returns:
          An `InputSample` stamped with the device clock.
        """

    def start_timeline(self) -> None:
        """The control loop takes its first step now: a scripted device starts its timeline.

        Live devices (SpaceMouse, keyboard) have no timeline and ignore this. A
        replay plays its file from here, not from `start()`: what happens
        between the two (opening the store, loading TFDS and envlogger, the
        first render) takes seconds, and a timeline started earlier would put
        every scripted takeover that far too early or past the session's end.

        Raises:
          RuntimeError: the device is not started.
        """

    def mark_requests(self) -> tuple:
        """What the operator asked for since the last call: marks of episodes invalid, reasons.

        Devices with a gesture for it (keyboard keys, a SpaceMouse button
        chord: `robot.invalid_marks`) override this; others never ask.

        Returns:
          `robot.invalid_marks.MarkRequest` / `ReasonChoice` values, oldest first.
        """
        return ()

    def engaged(self) -> bool:
        """`TakeoverSignal`: True while the operator is taking over.

        Returns:
          ``read().engaged``.
        """
        return self.read().engaged

    def __enter__(self) -> "InputDevice":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
