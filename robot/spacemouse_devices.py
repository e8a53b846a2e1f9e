"""3Dconnexion SpaceMouse products: USB ids, report layout, button bits, scaling. Pure.

The device catalogue: which product uses which report layout (see
`robot.spacemouse` for the report formats) and where its buttons live in
report 3.

Sources: pyspacemouse (JakubAndrysek/PySpaceMouse, ``pyspacemouse/devices.toml``:
``mappings.<axis> = [channel, byte1, byte2, scale]`` and
``buttons.<NAME> = [channel, byte, bit]``, ``axis_scale = 350.0``) for vendor /
product ids, byte offsets and button bits; libspnavdev (FreeSpacenav/libspnavdev,
``src/usbdev.c``: per-device "O" (two reports, 7 bytes) / "N" (single report,
13 bytes) flag, button report = report id 3 + bitmask bytes, axis range
[-512, 511]) for the layout of each product id and the report sizes.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Optional

DEFAULT_AXIS_SCALE = 350.0  # pyspacemouse axis_scale; the devices' logical max
DEFAULT_RAW_LIMIT = 512     # libspnavdev axis_min -512 / axis_max 511

VENDOR_LOGITECH = 0x046D     # 3Dconnexion devices sold under Logitech's vendor id
VENDOR_3DCONNEXION = 0x256F


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
