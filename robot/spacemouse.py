"""3Dconnexion SpaceMouse: HID report parsing, action mapping, takeover logic. Pure, no I/O.

Everything here works on bytes and numbers; the USB side lives in
`robot.spacemouse_hid` (which imports this module, never the other way round).

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

Sources: pyspacemouse (JakubAndrysek/PySpaceMouse, ``pyspacemouse/devices.toml``:
``mappings.<axis> = [channel, byte1, byte2, scale]`` and
``buttons.<NAME> = [channel, byte, bit]``, ``axis_scale = 350.0``) for vendor /
product ids, byte offsets and button bits; libspnavdev (FreeSpacenav/libspnavdev,
``src/usbdev.c``: per-device "O" (two reports, 7 bytes) / "N" (single report,
13 bytes) flag, button report = report id 3 + bitmask bytes, axis range
[-512, 511]) for the layout of each product id and the report sizes.

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
import enum
import math
import numbers
import struct
from typing import Iterable, Optional, Sequence, Union

import numpy as np

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

DEFAULT_AXIS_SCALE = 350.0  # pyspacemouse axis_scale; the devices' logical max
DEFAULT_RAW_LIMIT = 512     # libspnavdev axis_min -512 / axis_max 511

VENDOR_LOGITECH = 0x046D     # 3Dconnexion devices sold under Logitech's vendor id
VENDOR_3DCONNEXION = 0x256F

HID_SIGNS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
"""Keep the device's HID frame (+y toward the user, +z down)."""
Z_UP_SIGNS = (1.0, -1.0, -1.0, 1.0, -1.0, -1.0)
"""HID frame -> right-handed z-up frame (+y away from the user, +z up)."""


class Layout(str, enum.Enum):
    """How a device splits its six axes over input reports."""

    SPLIT = "split"        # report 1 = translation, report 2 = rotation, 7 bytes each
    SIX_AXIS = "six_axis"  # report 1 = all six axes, 13 bytes


@dataclasses.dataclass(frozen=True)
class ButtonBit:
    """Where one button lives in report 3: bit `bit` of report byte `byte` (byte 0 = id)."""

    name: str
    byte: int
    bit: int

    def __post_init__(self):
        if self.byte < 1 or not 0 <= self.bit <= 7:
            raise ValueError(f"button {self.name!r}: byte must be >= 1 and bit in 0..7, "
                             f"got byte={self.byte}, bit={self.bit}")


@dataclasses.dataclass(frozen=True)
class DeviceSpec:
    """One 3Dconnexion product: USB ids, report layout, button bits, scaling.

    Attributes:
      name: product name.
      vendor_id / product_id: USB ids.
      layout: `Layout.SPLIT` or `Layout.SIX_AXIS`.
      buttons: the buttons in state order (`SpaceMouseState.buttons[i]` is `buttons[i]`).
      axis_scale: raw count that maps to 1.0.
      raw_limit: raw counts beyond +-raw_limit are flagged as out of range.
    """

    name: str
    vendor_id: int
    product_id: int
    layout: Layout
    buttons: tuple[ButtonBit, ...] = ()
    axis_scale: float = DEFAULT_AXIS_SCALE
    raw_limit: int = DEFAULT_RAW_LIMIT

    def __post_init__(self):
        object.__setattr__(self, "layout", Layout(self.layout))
        object.__setattr__(self, "buttons", tuple(self.buttons))
        if not (math.isfinite(self.axis_scale) and self.axis_scale > 0):
            raise ValueError(f"{self.name}: axis_scale must be > 0, got {self.axis_scale!r}")
        if self.raw_limit < self.axis_scale:
            raise ValueError(f"{self.name}: raw_limit {self.raw_limit} is below "
                             f"axis_scale {self.axis_scale}")

    @property
    def usb_id(self) -> str:
        """The ids as ``vvvv:pppp`` (lsusb's spelling)."""
        return f"{self.vendor_id:04x}:{self.product_id:04x}"

    @property
    def button_names(self) -> tuple[str, ...]:
        """Button names in state order."""
        return tuple(b.name for b in self.buttons)

    @property
    def button_report_min_len(self) -> int:
        """Shortest button report that holds every mapped bit."""
        return 1 + max((b.byte for b in self.buttons), default=0)


def _buttons(**bits: tuple[int, int]) -> tuple[ButtonBit, ...]:
    return tuple(ButtonBit(name, byte, bit) for name, (byte, bit) in bits.items())


# Button bits: pyspacemouse devices.toml ([channel=3, byte, bit], channel dropped).
_TWO_BUTTONS = _buttons(LEFT=(1, 0), RIGHT=(1, 1))
_PRO_BUTTONS = _buttons(
    MENU=(1, 0), ALT=(3, 7), CTRL=(4, 1), SHIFT=(4, 0), ESC=(3, 6),
    BTN_1=(2, 4), BTN_2=(2, 5), BTN_3=(2, 6), BTN_4=(2, 7), ROLL_CW=(2, 0),
    TOP=(1, 2), ROTATION=(4, 2), FRONT=(1, 5), REAR=(1, 4), FIT=(1, 1),
)
_ENTERPRISE_BUTTONS = _buttons(
    BTN_1=(2, 4), BTN_2=(2, 5), BTN_3=(2, 6), BTN_4=(2, 7), BTN_5=(3, 0), BTN_6=(3, 1),
    BTN_7=(3, 2), BTN_8=(3, 3), BTN_9=(3, 4), BTN_10=(3, 5), MENU=(1, 0), FIT=(1, 1),
    TOP=(1, 2), RIGHT=(1, 4), FRONT=(1, 5), ROLL_CW=(2, 0), ISO1=(2, 2), ESC=(3, 6),
    ALT=(3, 7), SHIFT=(4, 0), CTRL=(4, 1), LOCK=(4, 2),
)
_EXPLORER_BUTTONS = _buttons(
    BTN_1=(1, 0), BTN_2=(1, 1), T=(1, 2), L=(1, 3), R=(1, 4), F=(1, 5), ESC=(1, 6),
    ALT=(1, 7), SHIFT=(2, 0), CTRL=(2, 1), FIT=(2, 2), PANEL=(2, 3), PLUS=(2, 4),
    MINUS=(2, 5), BTN_2D=(2, 6),
)
_PILOT_BUTTONS = _buttons(
    BTN_1=(1, 0), BTN_2=(1, 1), BTN_3=(1, 2), BTN_4=(1, 3), BTN_5=(1, 4), BTN_6=(1, 5),
    T=(1, 6), L=(1, 7), R=(2, 0), F=(2, 1), ESC=(2, 2), ALT=(2, 3), SHIFT=(2, 4),
    CTRL=(2, 5), FIT=(2, 6), PANEL=(2, 7), ZOOM_MINUS=(3, 0), ZOOM_PLUS=(3, 1),
    DOM=(3, 2), LOCK_3D=(3, 3), CONFIG=(3, 4),
)
_PILOT_PRO_BUTTONS = _buttons(
    MENU=(1, 0), FIT=(1, 1), TOP=(1, 2), REAR=(1, 4), FRONT=(1, 5), ROLL_CW=(2, 0),
    ISO=(2, 2), BTN_3=(2, 6), BTN_4=(2, 7), BTN_5=(3, 0), BTN_1=(3, 1), BTN_2=(3, 2),
    ESC=(3, 6), ALT=(3, 7), SHIFT=(4, 0), CTRL=(4, 1), ROTATION=(4, 2), PAN_ZOOM=(4, 3),
    DOMINANT=(4, 4), PLUS=(4, 5), MINUS=(4, 6),
)


def _spec(name, vid, pid, layout, buttons=_TWO_BUTTONS):
    return DeviceSpec(name=name, vendor_id=vid, product_id=pid, layout=layout, buttons=buttons)


_S, _N = Layout.SPLIT, Layout.SIX_AXIS
KNOWN_DEVICES: tuple[DeviceSpec, ...] = (
    # Layout per libspnavdev's O/N flag; ids and buttons per pyspacemouse. Products only
    # libspnavdev lists (c628, c62f, c631) take the buttons of their sibling model.
    _spec("SpaceNavigator", VENDOR_LOGITECH, 0xC626, _S),
    _spec("SpaceNavigator for Notebooks", VENDOR_LOGITECH, 0xC628, _S),
    _spec("SpaceExplorer", VENDOR_LOGITECH, 0xC627, _S, _EXPLORER_BUTTONS),
    _spec("SpacePilot", VENDOR_LOGITECH, 0xC625, _S, _PILOT_BUTTONS),
    _spec("SpacePilot Pro", VENDOR_LOGITECH, 0xC629, _S, _PILOT_PRO_BUTTONS),
    _spec("SpaceMouse Pro", VENDOR_LOGITECH, 0xC62B, _S, _PRO_BUTTONS),
    _spec("SpaceMouse Compact", VENDOR_3DCONNEXION, 0xC635, _S),
    _spec("SpaceMouse USB", VENDOR_3DCONNEXION, 0xC641, _S, ()),
    _spec("SpaceMouse Wireless (cabled)", VENDOR_3DCONNEXION, 0xC62E, _N),
    _spec("SpaceMouse Wireless (receiver)", VENDOR_3DCONNEXION, 0xC62F, _N),
    _spec("SpaceMouse Wireless (new)", VENDOR_3DCONNEXION, 0xC63A, _N),
    _spec("SpaceMouse Pro Wireless (cabled)", VENDOR_3DCONNEXION, 0xC631, _N, _PRO_BUTTONS),
    _spec("SpaceMouse Pro Wireless (receiver)", VENDOR_3DCONNEXION, 0xC632, _N, _PRO_BUTTONS),
    _spec("SpaceMouse Pro Wireless (Bluetooth)", VENDOR_3DCONNEXION, 0xC638, _N,
          _PRO_BUTTONS),
    _spec("SpaceMouse Enterprise", VENDOR_3DCONNEXION, 0xC633, _N, _ENTERPRISE_BUTTONS),
    _spec("Universal Receiver", VENDOR_3DCONNEXION, 0xC652, _N, _PRO_BUTTONS),
)


def find_spec(vendor_id: int, product_id: int) -> Optional[DeviceSpec]:
    """The known spec for a USB id pair.

    Args:
      vendor_id / product_id: USB ids.

    Returns:
      The matching `DeviceSpec` from `KNOWN_DEVICES`, or None.
    """
    for spec in KNOWN_DEVICES:
        if spec.vendor_id == vendor_id and spec.product_id == product_id:
            return spec
    return None


def spec_by_name(name: str) -> DeviceSpec:
    """The known spec with this product name (case-insensitive).

    Raises:
      KeyError: no known device has that name (the message lists them).
    """
    for spec in KNOWN_DEVICES:
        if spec.name.lower() == name.lower():
            return spec
    raise KeyError(f"unknown SpaceMouse {name!r}; known: {[s.name for s in KNOWN_DEVICES]}")


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
