"""3Dconnexion SpaceMouse: HID input reports folded into a device state. Pure, no I/O.

Everything here works on bytes and numbers; the USB side lives in
`robot.spacemouse_hid`. The products and their layouts are in
`robot.spacemouse_devices`; states become actions in `robot.action_mapping`
and takeovers in `robot.takeover`.

Report formats
--------------
A SpaceMouse is a HID "multi-axis controller" (usage page 0x01, usage 0x08)
with numbered input reports; hidapi (hidraw on Linux) hands each report over
with its report id as byte 0. Two layouts exist:

* ``Layout.SPLIT`` -- SpaceNavigator, SpaceExplorer, SpacePilot (Pro),
  SpaceMouse Pro (wired, 046d:c62b), SpaceMouse Compact, SpaceMouse USB::

      report 1, 7 bytes:  01 | x  (int16 LE) | y  (int16 LE) | z  (int16 LE)
      report 2, 7 bytes:  02 | rx (int16 LE) | ry (int16 LE) | rz (int16 LE)

* ``Layout.SIX_AXIS`` -- SpaceMouse Wireless (cabled and receiver), SpaceMouse
  Pro Wireless (cabled, receiver, Bluetooth), SpaceMouse Enterprise, the
  Universal Receiver::

      report 1, 13 bytes: 01 | x | y | z | rx | ry | rz   (six int16 LE)

* Both: report 3 = buttons, a little-endian bitmask: bit ``b`` of report byte
  ``k`` (k >= 1) is one button. Which bit is which button differs per device
  (`DeviceSpec.buttons`).

`SpaceMouseState.axes` holds the device's own HID frame, no sign flips (the
robot frame is applied when mapping to an action, `robot.action_mapping`).

Scaling and out-of-range values
-------------------------------
Raw counts are divided by ``axis_scale`` (350, the logical range the devices
declare) and clipped to [-1, 1]; a clipped axis is flagged in
`SpaceMouseState.clipped` (normal at full deflection). A count beyond
``raw_limit`` (512: libspnavdev's axis range; no real cap gets there) is not
something a hand can produce -- a corrupt report or a flaky cable -- and is
flagged in `SpaceMouseState.out_of_range_axes`. `to_action` outputs zero motion
for such a state and `TakeoverTracker` does not count it as a touch, so a
garbage burst neither moves the robot nor starts a takeover.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Optional, Sequence, Union

from robot.spacemouse_devices import DEFAULT_AXIS_SCALE, DEFAULT_RAW_LIMIT, DeviceSpec, Layout

AXIS_NAMES = ("x", "y", "z", "rx", "ry", "rz")
NUM_AXES = 6

TRANSLATION_REPORT = 1
"""Report id of translation (split layout) or all six axes (six-axis layout)."""
ROTATION_REPORT = 2
"""Report id of rotation; split layout only."""
BUTTON_REPORT = 3
"""Report id of the button bitmask; both layouts."""

SPLIT_REPORT_LEN = 7     # id + 3 x int16 (libspnavdev: oldposrotreportsize)
SIX_AXIS_REPORT_LEN = 13  # id + 6 x int16 (libspnavdev: newposrotreportsize)


@dataclasses.dataclass(frozen=True)
class SpaceMouseState:
    """What the device last reported. Immutable: `parse_report` returns a new one.

    Attributes:
      axes: (x, y, z, rx, ry, rz) in the device's HID frame, scaled and clipped to [-1, 1].
      buttons: one bool per `DeviceSpec.buttons` entry.
      raw: the raw int16 counts behind `axes`.
      clipped: per axis, the scaled value was beyond +-1 and was clipped.
      out_of_range_axes: per axis, the raw count was beyond the spec's raw_limit.
      reports: how many reports went into this state (0 = nothing received yet).
    """

    axes: tuple[float, ...] = (0.0,) * NUM_AXES
    buttons: tuple[bool, ...] = ()
    raw: tuple[int, ...] = (0,) * NUM_AXES
    clipped: tuple[bool, ...] = (False,) * NUM_AXES
    out_of_range_axes: tuple[bool, ...] = (False,) * NUM_AXES
    reports: int = 0

    @property
    def out_of_range(self) -> bool:
        """True if any axis holds an implausible (beyond raw_limit) value."""
        return any(self.out_of_range_axes)

    @property
    def any_clipped(self) -> bool:
        """True if any axis was clipped to +-1."""
        return any(self.clipped)

    @property
    def any_button(self) -> bool:
        """True if any button is pressed."""
        return any(self.buttons)


def initial_state(spec: DeviceSpec) -> SpaceMouseState:
    """The state before any report: axes at rest, buttons released.

    Args:
      spec: the device (for its button count).

    Returns:
      A zero `SpaceMouseState` with one False per button.
    """
    return SpaceMouseState(buttons=(False,) * len(spec.buttons))


def _scale_axis(raw: float, axis_scale: float, raw_limit: float) -> tuple[float, bool, bool]:
    value = raw / axis_scale
    clipped = abs(value) > 1.0
    return max(-1.0, min(1.0, value)), clipped, abs(raw) > raw_limit


def _with_axes(state: SpaceMouseState, first: int, raw_values: Sequence[float],
               axis_scale: float, raw_limit: float) -> SpaceMouseState:
    axes, raw = list(state.axes), list(state.raw)
    clipped, oor = list(state.clipped), list(state.out_of_range_axes)
    for i, r in enumerate(raw_values):
        axes[first + i], clipped[first + i], oor[first + i] = _scale_axis(r, axis_scale, raw_limit)
        raw[first + i] = r
    return dataclasses.replace(state, axes=tuple(axes), raw=tuple(raw), clipped=tuple(clipped),
                               out_of_range_axes=tuple(oor), reports=state.reports + 1)


def state_from_axes(axes: Sequence[float], buttons: Sequence[bool] = (), *,
                    axis_scale: float = DEFAULT_AXIS_SCALE,
                    raw_limit: float = DEFAULT_RAW_LIMIT) -> SpaceMouseState:
    """Build a state from normalized axis values (replays, keyboards, tests).

    Values beyond +-1 are clipped and flagged exactly as `parse_report` would
    flag the same raw counts (``raw = value * axis_scale``).

    Args:
      axes: six normalized values; may lie outside [-1, 1].
      buttons: button states.
      axis_scale / raw_limit: as in `DeviceSpec`.

    Returns:
      The `SpaceMouseState`.

    Raises:
      ValueError: not six finite values.
    """
    values = [float(v) for v in axes]
    if len(values) != NUM_AXES or not all(math.isfinite(v) for v in values):
        raise ValueError(f"expected {NUM_AXES} finite axis values, got {list(axes)!r}")
    base = SpaceMouseState(buttons=tuple(bool(b) for b in buttons))
    raw = [round(v * axis_scale) for v in values]
    state = _with_axes(base, 0, raw, axis_scale, raw_limit)
    # Keep the exact values (the raw round trip would quantize them to 1/axis_scale).
    return dataclasses.replace(
        state, axes=tuple(max(-1.0, min(1.0, v)) for v in values), reports=1)


ReportBytes = Union[bytes, bytearray, memoryview, Sequence[int]]


def _as_bytes(report: ReportBytes) -> bytes:
    if isinstance(report, (bytes, bytearray, memoryview)):
        return bytes(report)
    try:
        return bytes(report)  # hidapi returns a list of ints
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a HID report must be bytes or ints in 0..255, got {report!r}") from exc


def _check_axis_report(spec: DeviceSpec, data: bytes, expected: int) -> None:
    n = len(data)
    # hidapi on Windows / macOS pads every report to the longest input report; a
    # zero tail is padding. A non-zero tail is real data we would drop: a layout mismatch.
    if n == expected or (n > expected and not any(data[expected:])):
        return
    hint = ""
    if data[0] == TRANSLATION_REPORT and spec.layout is Layout.SPLIT and n >= SIX_AXIS_REPORT_LEN:
        hint = (f"; a {n}-byte report 1 carries all six axes: this device uses layout "
                f"'{Layout.SIX_AXIS.value}', not '{spec.layout.value}'")
    elif (data[0] == TRANSLATION_REPORT and spec.layout is Layout.SIX_AXIS
          and n == SPLIT_REPORT_LEN):
        hint = (f"; a 7-byte report 1 carries translation only: this device uses layout "
                f"'{Layout.SPLIT.value}', not '{spec.layout.value}'")
    raise ValueError(f"{spec.name} ({spec.usb_id}): report id {data[0]} has {n} bytes, "
                     f"expected {expected} for layout '{spec.layout.value}'{hint}")


def parse_report(spec: DeviceSpec, report: ReportBytes,
                 state: Optional[SpaceMouseState] = None) -> SpaceMouseState:
    """Fold one HID input report into the device state.

    A split-layout device updates translation and rotation from separate
    reports; the other half keeps its last value (the device resends a report
    whenever its values change, so the halves stay current).

    Args:
      spec: the device's layout and buttons.
      report: one input report, report id first (as hidapi / hidraw return it).
      state: the state so far; None starts from `initial_state(spec)`.

    Returns:
      The new state; `state` is not modified.

    Raises:
      ValueError: empty report, unknown report id for this layout, or a length that
        does not fit the report id; the message names the id, the length and the layout.
    """
    if state is None:
        state = initial_state(spec)
    data = _as_bytes(report)
    if not data:
        raise ValueError(f"{spec.name} ({spec.usb_id}): empty HID report")
    report_id = data[0]
    if report_id == TRANSLATION_REPORT and spec.layout is Layout.SPLIT:
        _check_axis_report(spec, data, SPLIT_REPORT_LEN)
        return _with_axes(state, 0, struct.unpack_from("<3h", data, 1),
                          spec.axis_scale, spec.raw_limit)
    if report_id == ROTATION_REPORT and spec.layout is Layout.SPLIT:
        _check_axis_report(spec, data, SPLIT_REPORT_LEN)
        return _with_axes(state, 3, struct.unpack_from("<3h", data, 1),
                          spec.axis_scale, spec.raw_limit)
    if report_id == TRANSLATION_REPORT and spec.layout is Layout.SIX_AXIS:
        _check_axis_report(spec, data, SIX_AXIS_REPORT_LEN)
        return _with_axes(state, 0, struct.unpack_from("<6h", data, 1),
                          spec.axis_scale, spec.raw_limit)
    if report_id == BUTTON_REPORT:
        need = spec.button_report_min_len
        if len(data) < need:
            raise ValueError(f"{spec.name} ({spec.usb_id}): report id 3 (buttons) has "
                             f"{len(data)} bytes, expected at least {need}")
        buttons = tuple(bool(data[b.byte] & (1 << b.bit)) for b in spec.buttons)
        return dataclasses.replace(state, buttons=buttons, reports=state.reports + 1)
    valid = ((TRANSLATION_REPORT, ROTATION_REPORT, BUTTON_REPORT) if spec.layout is Layout.SPLIT
             else (TRANSLATION_REPORT, BUTTON_REPORT))
    raise ValueError(f"{spec.name} ({spec.usb_id}): unknown report id {report_id} "
                     f"({len(data)} bytes) for layout '{spec.layout.value}'; "
                     f"expected one of {list(valid)}")
