"""Human input devices: SpaceMouse report parsing, takeover logic, HID thread, keyboard, replay.

No hardware: parser tests use byte sequences in the devices' real report
format; the HID thread reads from a fake handle; clocks are injected, and the
thread tests wait on events with timeouts, never on fixed sleeps.
"""

import collections
import json
import os
import struct
import sys
import threading

import numpy as np
import pytest

from rlif_data.intervention import DecisionContext, ExternalTakeover
from robot import action_mapping as am
from robot import spacemouse as sm
from robot import spacemouse_devices as devices
from robot import takeover as tk
from robot.input_device import InputDevice, InputSample
from robot.keyboard_device import (KeyboardDevice, KeyboardState, TerminalKeySource,
                                   keyboard_engaged, keys_to_action, split_keys)
from robot.replay_device import (ReplayDevice, load_replay,
                                 record_device_samples)
from robot.spacemouse_hid import (HidapiMissingError, SpaceMouseHID, SpaceMouseNotFoundError,
                                  import_hid, open_spacemouse)

NAV = devices.find_spec(0x046D, 0xC626)        # SpaceNavigator: split layout, 2 buttons
WIRELESS = devices.find_spec(0x256F, 0xC62E)   # SpaceMouse Wireless: six-axis layout, 2 buttons
PRO_WIRELESS = devices.find_spec(0x256F, 0xC632)  # 15 buttons over report bytes 1..4
WAIT = 5.0  # generous timeout for thread waits; never a timing assertion


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


class FakeClock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


# ---------------------------------------------------------------------------
# Device table
# ---------------------------------------------------------------------------

def test_known_specs_have_the_documented_layouts():
    assert NAV.layout is devices.Layout.SPLIT and NAV.button_names == ("LEFT", "RIGHT")
    assert WIRELESS.layout is devices.Layout.SIX_AXIS
    assert devices.find_spec(0x256F, 0xC635).layout is devices.Layout.SPLIT  # Compact
    assert devices.find_spec(0x256F, 0xC633).layout is devices.Layout.SIX_AXIS  # Enterprise
    assert devices.find_spec(0x1234, 0x5678) is None
    assert devices.spec_by_name("spacemouse compact").product_id == 0xC635
    ids = [(s.vendor_id, s.product_id) for s in devices.KNOWN_DEVICES]
    assert len(ids) == len(set(ids))
    with pytest.raises(KeyError, match="SpaceNavigator"):
        devices.spec_by_name("no such mouse")


def test_device_spec_rejects_bad_fields():
    with pytest.raises(ValueError, match="axis_scale"):
        devices.DeviceSpec("x", 1, 2, "split", axis_scale=0)
    with pytest.raises(ValueError, match="byte"):
        devices.ButtonBit("B", byte=0, bit=0)


# ---------------------------------------------------------------------------
# Parser: real report bytes
# ---------------------------------------------------------------------------

# 350 = 0x015e, -350 = 0xfea2, 175 = 0x00af, -175 = 0xff51, 35 = 0x0023.
SPLIT_CASES = [
    ("translation +x full", "01 5e01 0000 0000", (1.0, 0, 0, 0, 0, 0)),
    ("translation -y full", "01 0000 a2fe 0000", (0, -1.0, 0, 0, 0, 0)),
    ("translation +z half", "01 0000 0000 af00", (0, 0, 0.5, 0, 0, 0)),
    ("rotation +rx half", "02 af00 0000 0000", (0, 0, 0, 0.5, 0, 0)),
    ("rotation -ry small", "02 0000 ddff 0000", (0, 0, 0, 0, -35 / 350, 0)),
    ("rotation -rz half", "02 0000 0000 51ff", (0, 0, 0, 0, 0, -0.5)),
]


@pytest.mark.parametrize("name,report,expected", SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES])
def test_split_layout_reports(name, report, expected):
    state = sm.parse_report(NAV, hx(report))
    np.testing.assert_allclose(state.axes, expected, atol=1e-12)
    assert state.reports == 1 and not state.any_clipped and not state.out_of_range


def test_split_layout_keeps_the_other_half():
    s1 = sm.parse_report(NAV, hx("01 5e01 a2fe af00"))          # translation
    s2 = sm.parse_report(NAV, hx("02 af00 0000 51ff"), s1)      # rotation
    np.testing.assert_allclose(s2.axes, (1, -1, 0.5, 0.5, 0, -0.5))
    assert s2.raw == (350, -350, 175, 175, 0, -175)
    s3 = sm.parse_report(NAV, hx("01 0000 0000 0000"), s2)      # translation released
    np.testing.assert_allclose(s3.axes, (0, 0, 0, 0.5, 0, -0.5))
    # Immutable: earlier states are untouched.
    np.testing.assert_allclose(s1.axes, (1, -1, 0.5, 0, 0, 0))
    assert (s1.reports, s2.reports, s3.reports) == (1, 2, 3)


SIX_AXIS_CASES = [
    ("all six", "01 5e01 a2fe af00 51ff 0000 2300", (1, -1, 0.5, -0.5, 0, 0.1)),
    ("rotation only", "01 0000 0000 0000 af00 af00 af00", (0, 0, 0, 0.5, 0.5, 0.5)),
    ("rest", "01 0000 0000 0000 0000 0000 0000", (0, 0, 0, 0, 0, 0)),
]


@pytest.mark.parametrize("name,report,expected", SIX_AXIS_CASES,
                         ids=[c[0] for c in SIX_AXIS_CASES])
def test_six_axis_layout_reports(name, report, expected):
    state = sm.parse_report(WIRELESS, hx(report))
    np.testing.assert_allclose(state.axes, expected, atol=1e-12)


def test_parse_accepts_hidapi_int_lists_and_zero_padding():
    as_list = sm.parse_report(NAV, list(hx("01 5e01 0000 0000")))
    # Windows / macOS hidapi pad to the longest input report.
    padded = sm.parse_report(NAV, hx("01 5e01 0000 0000") + bytes(6))
    assert as_list.axes == padded.axes == (1.0, 0, 0, 0, 0, 0)


BUTTON_CASES = [
    (NAV, "03 00 00", {}),
    (NAV, "03 01 00", {"LEFT"}),
    (NAV, "03 02 00", {"RIGHT"}),
    (NAV, "03 03 00", {"LEFT", "RIGHT"}),
    (WIRELESS, "03 01", {"LEFT"}),
    # Pro Wireless: BTN_1 = byte 2 bit 4, SHIFT = byte 4 bit 0, MENU = byte 1 bit 0.
    (PRO_WIRELESS, "03 00 10 00 00", {"BTN_1"}),
    (PRO_WIRELESS, "03 01 00 00 01", {"MENU", "SHIFT"}),
    (PRO_WIRELESS, "03 00 00 80 00 00 00 00 00 00 00 00 00", {"ALT"}),
]


@pytest.mark.parametrize("spec,report,pressed", BUTTON_CASES)
def test_button_reports(spec, report, pressed):
    before = sm.parse_report(spec, hx("01" + "2300" * (3 if spec.layout == "split" else 6)))
    state = sm.parse_report(spec, hx(report), before)
    got = {name for name, on in zip(spec.button_names, state.buttons) if on}
    assert got == set(pressed)
    assert len(state.buttons) == len(spec.buttons)
    assert state.axes == before.axes  # a button report leaves the axes alone


MALFORMED = [
    (NAV, b"", r"empty HID report"),
    (NAV, hx("05 0000 0000 0000"), r"unknown report id 5 \(7 bytes\).*'split'"),
    (WIRELESS, hx("02 0000 0000 0000"), r"unknown report id 2 \(7 bytes\).*'six_axis'"),
    (NAV, hx("01 5e01 0000 00"), r"report id 1 has 6 bytes, expected 7"),
    (NAV, hx("02 5e01"), r"report id 2 has 3 bytes, expected 7"),
    (NAV, hx("01 5e01 0000 0000 af00 0000 0000"), r"13 bytes.*layout 'six_axis'"),
    (WIRELESS, hx("01 5e01 0000 0000"), r"7 bytes, expected 13.*layout 'split'"),
    (PRO_WIRELESS, hx("03 00 00"), r"report id 3 \(buttons\) has 3 bytes, expected at least 5"),
    (NAV, [1, 300, 0, 0, 0, 0, 0], r"bytes or ints in 0..255"),
]


@pytest.mark.parametrize("spec,report,match", MALFORMED)
def test_malformed_reports_raise_naming_id_and_length(spec, report, match):
    with pytest.raises(ValueError, match=match):
        sm.parse_report(spec, report)


def test_out_of_range_values_are_clipped_and_flagged():
    # 400 counts: beyond full scale (350) but physically possible -> clipped only.
    hard = sm.parse_report(NAV, struct.pack("<B3h", 1, 400, 0, 0))
    assert hard.axes[0] == 1.0 and hard.clipped[0] and not hard.out_of_range
    # 30000 counts: no cap gets there -> clipped and out of range.
    burst = sm.parse_report(NAV, struct.pack("<B3h", 1, 30000, -30000, 0))
    assert burst.axes[:2] == (1.0, -1.0)
    assert burst.out_of_range_axes == (True, True, False, False, False, False)
    np.testing.assert_array_equal(am.to_action(burst), np.zeros(6))  # never full speed
    assert not tk.TakeoverTracker().update(burst, 0.0)                # never a takeover
    # The next sane report for those axes clears the flag.
    sane = sm.parse_report(NAV, struct.pack("<B3h", 1, 35, 0, 0), burst)
    assert not sane.out_of_range and not sane.any_clipped


def test_state_from_axes_flags_like_the_parser():
    s = sm.state_from_axes([0.5, 1.2, 9.0, 0, 0, -0.25], [True])
    assert s.axes == (0.5, 1.0, 1.0, 0.0, 0.0, -0.25)
    assert s.clipped == (False, True, True, False, False, False)
    assert s.out_of_range_axes == (False, False, True, False, False, False)
    with pytest.raises(ValueError, match="6 finite"):
        sm.state_from_axes([0.0] * 5)


# ---------------------------------------------------------------------------
# Dead-zone, scaling, signs, action mapping
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("value,deadzone,expected", [
    (0.05, 0.1, 0.0),
    (0.1, 0.1, 0.0),
    (-0.1, 0.1, 0.0),
    (0.55, 0.1, 0.5),
    (-0.55, 0.1, -0.5),
    (1.0, 0.1, 1.0),
    (-1.0, 0.2, -1.0),
    (0.3, 0.0, 0.3),
])
def test_apply_deadzone(value, deadzone, expected):
    assert am.apply_deadzone(value, deadzone) == pytest.approx(expected)


def test_apply_deadzone_arrays_and_bad_deadzone():
    np.testing.assert_allclose(am.apply_deadzone([0.0, 0.2, -0.6], 0.2), [0.0, 0.0, -0.5])
    for bad in (1.0, -0.1, float("nan"), True):
        with pytest.raises(ValueError, match="deadzone"):
            am.apply_deadzone(0.5, bad)


def test_sign_conventions_on_real_reports():
    # Pushing the cap away from the user: HID +y points toward the user, so y < 0 ...
    away = sm.parse_report(NAV, hx("01 0000 a2fe 0000"))
    # ... and lifting the cap: HID +z points down, so z < 0.
    lift = sm.parse_report(NAV, hx("01 0000 0000 a2fe"))
    np.testing.assert_allclose(am.to_action(away), [0, 1, 0, 0, 0, 0])   # z-up: +y away
    np.testing.assert_allclose(am.to_action(lift), [0, 0, 1, 0, 0, 0])   # z-up: +z up
    np.testing.assert_allclose(am.to_action(lift, signs=am.HID_SIGNS), [0, 0, -1, 0, 0, 0])
    state = sm.state_from_axes([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_allclose(am.to_action(state), [0.1, -0.2, -0.3, 0.4, -0.5, -0.6],
                               rtol=1e-6)
    np.testing.assert_allclose(am.to_action(state, signs=am.HID_SIGNS),
                               [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], rtol=1e-6)
    with pytest.raises(ValueError, match="signs"):
        am.to_action(state, signs=(1, 1))


def test_to_action_scales_after_deadzone():
    state = sm.state_from_axes([0.55, 0.0, 0.05, -1.0, 0.0, 0.0])
    action = am.to_action(state, 0.02, rotation_scale=0.1, deadzone=0.1, signs=am.HID_SIGNS)
    assert action.dtype == np.float32 and action.shape == (6,)
    np.testing.assert_allclose(action, [0.01, 0, 0, -0.1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(am.to_action(state, 2.0, signs=am.HID_SIGNS)[[0, 3]],
                               [1.1, -2.0], rtol=1e-6)  # rotation_scale defaults to scale


@pytest.mark.parametrize("buttons,gripper", [
    ((False, False), 0.0), ((True, False), 1.0), ((False, True), -1.0), ((True, True), 0.0),
])
def test_gripper_from_buttons(buttons, gripper):
    state = sm.state_from_axes([0.5, 0, 0, 0, 0, 0], buttons)
    action = am.to_action(state, gripper_buttons=(0, 1))
    assert action.shape == (7,) and action[6] == gripper and action[0] == pytest.approx(0.5)
    mapping = am.ActionMapping(gripper_buttons=(0, 1))
    assert mapping.dim == 7
    np.testing.assert_array_equal(mapping.action(state), action)


def test_gripper_button_index_checked():
    with pytest.raises(ValueError, match="gripper_buttons"):
        am.to_action(sm.state_from_axes([0] * 6, [True]), gripper_buttons=(0, 1))


# ---------------------------------------------------------------------------
# Takeover state machine
# ---------------------------------------------------------------------------

REST = sm.state_from_axes([0] * 6, [False, False])
NOISE = sm.state_from_axes([0.05, -0.05, 0, 0, 0, 0.05], [False, False])
PUSH = sm.state_from_axes([0.4, 0, 0, 0, 0, 0], [False, False])
TWIST = sm.state_from_axes([0, 0, 0, 0, 0, -0.3], [False, False])
LEFT = sm.state_from_axes([0] * 6, [True, False])
RIGHT = sm.state_from_axes([0] * 6, [False, True])
LEFT_PUSH = sm.state_from_axes([0.4, 0, 0, 0, 0, 0], [True, False])

TRACKER_SCRIPTS = {
    "touch starts, release time ends": [
        # last input at 1.5 -> control returns 0.5 s later
        (0.0, REST, False), (1.0, NOISE, False), (1.1, PUSH, True), (1.5, TWIST, True),
        (1.7, REST, True), (1.99, REST, True), (2.0, REST, False), (3.0, REST, False)],
    "a new touch during the release window continues the takeover": [
        (0.0, PUSH, True), (0.4, REST, True), (0.8, PUSH, True), (1.2, REST, True),
        (1.29, REST, True), (1.3, REST, False)],
    "button press engages, release ends": [
        (0.0, LEFT, True), (2.0, LEFT, True), (2.1, REST, True), (2.6, REST, False)],
    "stuck button is ignored after the timeout": [
        # timeout 5 s: held without motion from t=0, stuck at t=5 -> no input since t=4
        (0.0, LEFT, True), (4.0, LEFT, True), (5.0, LEFT, False), (60.0, LEFT, False),
        # motion still takes over while the button is stuck ...
        (61.0, LEFT_PUSH, True), (62.0, LEFT, False),
        # ... and releasing the button un-sticks it
        (63.0, REST, False), (64.0, LEFT, True)],
    "motion keeps a held button from counting as stuck": [
        # last motion at 4.0: the button only counts as stuck from 9.0
        # (stuck at 9.0, then the usual release time after the last input at 8.9)
        (0.0, LEFT_PUSH, True), (4.0, LEFT_PUSH, True), (8.0, LEFT, True), (8.9, LEFT, True),
        (9.0, LEFT, True), (9.4, LEFT, False)],
}


@pytest.mark.parametrize("name", list(TRACKER_SCRIPTS))
def test_takeover_tracker_scripts(name):
    tracker = tk.TakeoverTracker(deadzone=0.1, release_time=0.5, stuck_button_timeout=5.0)
    got = [tracker.update(state, t) for t, state, _ in TRACKER_SCRIPTS[name]]
    assert got == [want for _, _, want in TRACKER_SCRIPTS[name]]


def test_tracker_bookkeeping_and_stuck_flag():
    tracker = tk.TakeoverTracker(release_time=0.5, stuck_button_timeout=5.0)
    tracker.update(REST, 0.0)
    tracker.update(PUSH, 1.0)
    tracker.update(REST, 2.0)
    assert tracker.update(REST, 3.0) is False
    assert tracker.started_at == 1.0 and tracker.last_input_at == 1.0 and tracker.takeovers == 1
    tracker.update(RIGHT, 10.0)
    assert tracker.stuck_buttons == frozenset() and tracker.takeovers == 2
    tracker.update(RIGHT, 15.0)
    assert tracker.stuck_buttons == {1}


def test_tracker_without_stuck_timeout_holds_while_pressed():
    tracker = tk.TakeoverTracker(stuck_button_timeout=None)
    assert all(tracker.update(LEFT, t) for t in (0.0, 100.0, 1000.0))


def test_tracker_engage_buttons_subset():
    tracker = tk.TakeoverTracker(engage_buttons=[1])
    assert tracker.update(LEFT, 0.0) is False   # button 0 is e.g. the gripper, not a takeover
    assert tracker.update(RIGHT, 0.1) is True


def test_tracker_tolerates_clock_going_backwards():
    tracker = tk.TakeoverTracker(release_time=0.5)
    tracker.update(PUSH, 10.0)
    assert tracker.update(REST, 9.0) is True    # treated as 10.0: still within release time
    assert tracker.update(REST, 10.5) is False


@pytest.mark.parametrize("kwargs,match", [
    ({"release_time": -1}, "release_time"),
    ({"deadzone": 1.5}, "deadzone"),
    ({"stuck_button_timeout": 0}, "stuck_button_timeout"),
])
def test_tracker_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tk.TakeoverTracker(**kwargs)


def test_interpreter_disconnected_means_policy_in_control():
    interp = tk.SpaceMouseInterpreter(am.ActionMapping(gripper_buttons=(0, 1)))
    out = interp.step(LEFT_PUSH, 0.0)
    assert out.engaged and out.action.shape == (7,) and out.action[6] == 1.0
    gone = interp.step(LEFT_PUSH, 0.1, connected=False)
    assert not gone.engaged and gone.flags == ("disconnected",)
    np.testing.assert_array_equal(gone.action, np.zeros(7))
    # Reconnecting starts clean: at rest, no stale takeover.
    assert not interp.step(REST, 0.2).engaged


# ---------------------------------------------------------------------------
# HID thread with a fake handle
# ---------------------------------------------------------------------------

class FakeHidHandle:
    """hidapi's device API: read(max_length, timeout_ms) -> list of ints; [] on timeout.

    The script holds report bytes, `threading.Event`s (the read waits for them: the test
    decides when the device moves on) and exceptions (raised, like hidapi on unplug).
    """

    def __init__(self, script):
        self.script = collections.deque(script)
        self.closed = False
        self._idle = threading.Event()

    def read(self, max_length, timeout_ms=0):
        if not self.script:
            self._idle.wait(timeout_ms / 1000)  # nothing pending: a read timeout
            return []
        item = self.script.popleft()
        if isinstance(item, threading.Event):
            item.wait(WAIT)
            return []
        if isinstance(item, BaseException):
            raise item
        return list(item[:max_length])

    def close(self):
        self.closed = True


def make_hid(script, spec=NAV, clock=None, **kwargs):
    handle = FakeHidHandle(script)
    dev = SpaceMouseHID(spec, opener=lambda specs: (handle, specs[0]),
                        clock=clock or FakeClock(10.0), **kwargs)
    return dev, handle


def test_hid_thread_reads_reports_then_flags_a_disconnect():
    clock = FakeClock(10.0)
    unplug = threading.Event()
    events = []
    dev, handle = make_hid(
        [hx("01 5e01 0000 0000"), hx("03 01 00"), unplug, OSError("read error")],
        clock=clock, mapping=am.ActionMapping(scale=0.1, gripper_buttons=(0, 1)),
        on_disconnect=lambda t, exc: events.append((t, type(exc))))
    with dev:
        assert dev.wait_for_reports(2, WAIT)
        sample = dev.read()
        assert sample.connected and sample.engaged and dev.engaged()
        np.testing.assert_allclose(sample.action, [0.1, 0, 0, 0, 0, 0, 1.0], rtol=1e-6)
        assert sample.buttons == (True, False) and sample.timestamp == 10.0
        assert ExternalTakeover(dev).decide(DecisionContext(0, None, np.zeros(7))) is True

        clock.t = 42.0
        unplug.set()  # the device goes away mid-session
        assert dev.wait_disconnected(WAIT)
        assert dev.connected is False and dev.disconnected_at == 42.0
        assert isinstance(dev.disconnect_error, OSError)
        assert events == [(42.0, OSError)]
        gone = dev.read()
        assert not gone.connected and not gone.engaged and "disconnected" in gone.flags
        np.testing.assert_array_equal(gone.action, np.zeros(7))
        assert dev.engaged() is False   # the policy keeps control
        assert ExternalTakeover(dev).decide(DecisionContext(1, None, np.zeros(7))) is False
    assert handle.closed


def test_hid_thread_skips_malformed_reports():
    dev, _ = make_hid([hx("17 64"), hx("01 5e01"), hx("01 0000 0000 af00")])
    with dev:
        assert dev.wait_for_reports(3, WAIT)
        assert dev.malformed_reports == 2 and dev.connected
        assert "report id 1 has 3 bytes" in dev.last_error
        assert dev.state.axes == (0, 0, 0.5, 0, 0, 0)


def test_hid_thread_catches_a_touch_shorter_than_the_control_period():
    clock = FakeClock(10.0)
    # Touch and release both arrive before the control loop looks.
    dev, _ = make_hid([hx("01 5e01 0000 0000"), hx("01 0000 0000 0000")], clock=clock,
                      tracker=tk.TakeoverTracker(release_time=0.5))
    with dev:
        assert dev.wait_for_reports(2, WAIT)
        assert dev.state.axes == (0,) * 6
        clock.t = 10.2
        assert dev.engaged() is True
        clock.t = 10.6
        assert dev.engaged() is False


def test_hid_read_before_start_and_double_start():
    dev, _ = make_hid([])
    with pytest.raises(RuntimeError, match="before start"):
        dev.read()
    dev.stop()  # harmless before start
    dev.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            dev.start()
    finally:
        dev.stop()
    assert not dev._thread.is_alive()


class FakeHidModule:
    """hidapi's module API: enumerate() and device()."""

    def __init__(self, infos, open_errors=()):
        self.infos = infos
        self.open_errors = set(open_errors)
        self.opened = []
        module = self

        class Device:
            def open_path(self, path):
                if path in module.open_errors:
                    raise OSError("open failed")
                module.opened.append(path)

            def close(self):
                pass

        self.device = Device

    def enumerate(self, vendor_id=0, product_id=0):
        return list(self.infos)


def test_missing_device_error_names_ids_and_fix():
    fake = FakeHidModule([{"vendor_id": 0x256F, "product_id": 0xC6FF, "path": b"/x",
                           "product_string": "SpaceMouse Future"}])
    with pytest.raises(SpaceMouseNotFoundError) as err:
        open_spacemouse(hid_module=fake)
    msg = str(err.value)
    assert "046d:c626 (SpaceNavigator)" in msg and "256f:c62e" in msg
    assert "256f:c6ff (SpaceMouse Future)" in msg      # an unknown model is pointed out
    assert "udev" in msg and 'ATTRS{idVendor}=="256f"' in msg
    with pytest.raises(SpaceMouseNotFoundError, match="046d:c626"):
        SpaceMouseHID(NAV, opener=lambda specs: open_spacemouse(specs, FakeHidModule([]))).start()


def test_open_prefers_the_multi_axis_interface_and_explains_permission_errors():
    infos = [
        {"vendor_id": 0x256F, "product_id": 0xC635, "path": b"kbd", "usage_page": 1, "usage": 6},
        {"vendor_id": 0x256F, "product_id": 0xC635, "path": b"mouse", "usage_page": 1,
         "usage": 8},
    ]
    fake = FakeHidModule(infos)
    handle, spec = open_spacemouse(hid_module=fake)
    assert spec.name == "SpaceMouse Compact" and fake.opened == [b"mouse"]
    denied = FakeHidModule(infos, open_errors={b"kbd", b"mouse"})
    with pytest.raises(SpaceMouseNotFoundError, match=r"(?s)could not open.*permissions.*udev"):
        open_spacemouse(hid_module=denied)


def test_missing_hidapi_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "hid", None)  # makes `import hid` fail
    with pytest.raises(HidapiMissingError, match="pip install"):
        import_hid()


# ---------------------------------------------------------------------------
# Keyboard
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("keys,expected", [
    ("w", [1, 0, 0, 0, 0, 0]),
    ("s", [-1, 0, 0, 0, 0, 0]),
    ("a", [0, 1, 0, 0, 0, 0]),
    ("d", [0, -1, 0, 0, 0, 0]),
    ("q", [0, 0, 1, 0, 0, 0]),
    ("e", [0, 0, -1, 0, 0, 0]),
    ("u", [0, 0, 0, 1, 0, 0]),
    ("o", [0, 0, 0, -1, 0, 0]),
    ("i", [0, 0, 0, 0, 1, 0]),
    ("k", [0, 0, 0, 0, -1, 0]),
    ("j", [0, 0, 0, 0, 0, 1]),
    ("l", [0, 0, 0, 0, 0, -1]),
    ("ws", [0, 0, 0, 0, 0, 0]),
    ("wdj", [1, -1, 0, 0, 0, 1]),
    ("x", [0, 0, 0, 0, 0, 0]),
])
def test_keys_to_action(keys, expected):
    np.testing.assert_array_equal(keys_to_action(set(keys)), expected)


def test_keys_to_action_scales_and_gripper():
    action = keys_to_action({"w", "j", "c"}, 0.05, rotation_scale=0.2, gripper=True)
    np.testing.assert_allclose(action, [0.05, 0, 0, 0, 0, 0.2, 1.0], rtol=1e-6)
    assert keys_to_action({"v"}, gripper=True)[6] == -1.0


def test_keyboard_state_hold_and_latch():
    state = KeyboardState().press("W", 0.0)             # Shift folds to lowercase
    assert state.held(0.5, hold_time=0.6) == {"w"}
    assert state.held(0.6, hold_time=0.6) == frozenset()
    assert keyboard_engaged(state, 0.5, 0.6) and not keyboard_engaged(state, 0.7, 0.6)
    latched = state.press(" ", 1.0)
    assert latched.latched and keyboard_engaged(latched, 100.0)
    assert not latched.press(" ", 2.0).latched
    assert not keyboard_engaged(KeyboardState().press("z", 0.0), 0.1)  # unmapped key


def test_keyboard_device_with_injected_source_and_clock():
    clock = FakeClock(0.0)

    class FakeSource:
        def __init__(self):
            self.on_key, self.stopped = None, False

        def start(self, on_key):
            self.on_key = on_key

        def stop(self):
            self.stopped = True

    source = FakeSource()
    dev = KeyboardDevice(source, clock=clock, scale=0.1, gripper=True, hold_time=0.6)
    assert isinstance(dev, InputDevice) and dev.action_dim == 7
    with dev:
        assert not dev.engaged()
        source.on_key("w")
        source.on_key("c")
        s = dev.read()
        assert s.engaged and s.buttons == (True, False)
        np.testing.assert_allclose(s.action, [0.1, 0, 0, 0, 0, 0, 1.0], rtol=1e-6)
        np.testing.assert_array_equal(s.axes, [1, 0, 0, 0, 0, 0])
        clock.t = 0.5
        source.on_key("w")           # auto-repeat keeps it held
        clock.t = 1.0
        assert dev.read().engaged and dev.read().buttons == (False, False)
        clock.t = 1.2
        assert not dev.engaged()     # released: control back to the policy
        dev.on_key(" ")
        latched = dev.read()
        assert latched.engaged and "latched" in latched.flags
        np.testing.assert_array_equal(latched.action, np.zeros(7))
    assert source.stopped


def test_split_keys_drops_escape_sequences():
    assert split_keys("w\x1b[Aa") == ["w", "a"]      # arrow up between two keys
    assert split_keys("\x1bOPq\x1b[15~E") == ["q", "e"]  # F1, F5
    assert split_keys("\x1b") == []


def test_terminal_source_refuses_a_non_tty():
    r, w = os.pipe()
    try:
        with pytest.raises(RuntimeError, match="not a tty"):
            TerminalKeySource(fd=r).start(lambda key: None)
    finally:
        os.close(r)
        os.close(w)


# ---------------------------------------------------------------------------
# Replay device, fault markers, recording
# ---------------------------------------------------------------------------

def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


HEADER = {"format": "rlif-input-replay", "version": 1, "frame": "robot", "num_buttons": 2}


def replay_device(tmp_path, records, clock, **kwargs):
    path = write_lines(tmp_path / "input.jsonl", records)
    dev = ReplayDevice(path, clock=clock, **kwargs)
    dev.start()
    return dev


def at(dev, clock, t):
    clock.t = 100.0 + t
    return dev.read()


def test_replay_plays_samples_with_zero_order_hold(tmp_path):
    clock = FakeClock(100.0)
    dev = replay_device(tmp_path, [
        HEADER,
        {"t": 0.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 1.0, "axes": [0.5, 0, -0.25, 0, 0, 0], "buttons": [0, 0]},
        {"t": 2.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 3.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    ], clock, mapping=am.ActionMapping(scale=0.1), tracker=tk.TakeoverTracker(release_time=0.5))
    assert not at(dev, clock, 0.5).engaged
    s = at(dev, clock, 1.5)
    assert s.engaged and s.connected and s.timestamp == 101.5
    # Robot frame as recorded: no sign flips even though the mapping's default would flip z.
    np.testing.assert_allclose(s.action, [0.05, 0, -0.025, 0, 0, 0], rtol=1e-6)
    assert at(dev, clock, 1.99).engaged            # the sample at 1.0 holds until 2.0
    assert at(dev, clock, 2.3).engaged and not at(dev, clock, 2.6).engaged


def test_replay_disconnect_and_reconnect_markers(tmp_path):
    clock = FakeClock(100.0)
    dev = replay_device(tmp_path, [
        HEADER,
        {"t": 0.0, "axes": [0.5, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 1.0, "event": "disconnect"},
        {"t": 3.0, "event": "reconnect"},
        {"t": 3.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 4.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    ], clock)
    assert at(dev, clock, 0.5).engaged
    gone = at(dev, clock, 1.5)   # unplugged mid-takeover: control goes back to the policy
    assert not gone.connected and not gone.engaged and "disconnected" in gone.flags
    np.testing.assert_array_equal(gone.action, np.zeros(6))
    back = at(dev, clock, 3.5)
    assert back.connected and not back.engaged


def test_replay_stuck_button_ends_at_the_stuck_timeout(tmp_path):
    clock = FakeClock(100.0)
    dev = replay_device(tmp_path, [
        HEADER,
        {"t": 0.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 1.0, "event": "stuck_button", "button": 1, "duration": 20.0},
        {"t": 30.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    ], clock, tracker=tk.TakeoverTracker(release_time=0.5, stuck_button_timeout=5.0))
    assert not at(dev, clock, 0.5).engaged
    assert at(dev, clock, 1.0).engaged            # the jammed button looks like a press ...
    s = at(dev, clock, 2.0)
    assert s.engaged and s.buttons == (False, True)
    assert at(dev, clock, 5.9).engaged            # ... until 5 s without motion
    stuck = at(dev, clock, 6.0)   # held 5 s without motion: stuck, ignored from now on ...
    assert stuck.buttons == (False, True) and "stuck_button" in stuck.flags
    assert stuck.engaged and not at(dev, clock, 6.4).engaged  # ... and released after 0.5 s
    assert not at(dev, clock, 20.0).engaged
    assert at(dev, clock, 21.5).buttons == (False, False)


def test_replay_burst_of_out_of_range_values(tmp_path):
    clock = FakeClock(100.0)
    dev = replay_device(tmp_path, [
        HEADER,
        {"t": 0.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 1.0, "event": "burst", "duration": 0.5, "axes": [40, -40, 40, 0, 0, 0]},
        {"t": 3.0, "axes": [1.2, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 4.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    ], clock)
    burst = at(dev, clock, 1.2)
    assert "out_of_range" in burst.flags and not burst.engaged
    np.testing.assert_array_equal(burst.action, np.zeros(6))
    assert at(dev, clock, 1.5).flags == ()          # burst over
    hard = at(dev, clock, 3.5)                       # a hard push: clipped, still obeyed
    assert hard.engaged and "clipped" in hard.flags and hard.action[0] == 1.0


def test_replay_finishes_idle_or_loops(tmp_path):
    records = [HEADER, {"t": 0.0, "axes": [0.5, 0, 0, 0, 0, 0], "buttons": [1, 0]},
               {"t": 2.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]}]
    clock = FakeClock(100.0)
    dev = replay_device(tmp_path, records, clock)
    end = at(dev, clock, 10.0)
    assert "replay_finished" in end.flags and not end.engaged and end.buttons == (False, False)
    looping = replay_device(tmp_path, records, clock, loop=True)
    clock.t = 100.0 + 10.0 + 4.5   # 14.5 s after this start: replay time 0.5
    assert looping.read().engaged and looping.read().buttons == (True, False)


def test_replay_read_before_start(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", [{"t": 0, "axes": [0] * 6}])
    with pytest.raises(RuntimeError, match="start"):
        ReplayDevice(path, clock=FakeClock()).read()


BAD_REPLAYS = [
    (['{"t": 0, "axes": [0, 0, 0]}'], r"r\.jsonl:1: 'axes' must be a list of 6"),
    (['{"t": 0, "axes": [0,0,0,0,0,0]}', "{oops"], r":2: not JSON"),
    (['{"t": 1, "axes": [0,0,0,0,0,0]}', '{"t": 0.5, "axes": [0,0,0,0,0,0]}'],
     r":2: time goes backwards"),
    (['{"t": 0, "event": "explode"}'], r"unknown event 'explode'"),
    (['{"t": 0, "event": "burst", "axes": [9,9,9,9,9,9]}'], r"burst needs a 'duration'"),
    (['{"t": 0, "axes": [0,0,0,0,0,0], "buttons": [0]}', '{"t": 1, "event": "stuck_button", '
      '"button": 3}'], r"names button 3, but the replay has 1 buttons"),
    (['{"t": 0, "axes": [0,0,0,0,0,0], "buttons": [0]}',
      '{"t": 1, "axes": [0,0,0,0,0,0], "buttons": [0, 1]}'], r":2: 2 buttons, expected 1"),
    (['{"format": "rlif-input-replay", "version": 2}'], r"version 2"),
    (['{"format": "rlif-input-replay", "version": 1, "frame": "hid"}'], r"frame 'robot'"),
    (['{"t": -1, "axes": [0,0,0,0,0,0]}'], r"'t' must be a finite number >= 0"),
]


@pytest.mark.parametrize("lines,match", BAD_REPLAYS)
def test_bad_replay_files_are_rejected_with_line_numbers(tmp_path, lines, match):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        load_replay(path)


def test_record_then_replay_round_trip(tmp_path):
    # Source: a scripted device with a disconnect; recorded with a fake clock and sleep.
    src_clock = FakeClock(100.0)
    source = replay_device(tmp_path, [
        HEADER,
        {"t": 0.0, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
        {"t": 0.5, "axes": [0.5, 0, 0, 0, 0, -0.25], "buttons": [1, 0]},
        {"t": 1.0, "event": "disconnect"},
        {"t": 1.5, "event": "reconnect"},
        {"t": 1.5, "axes": [0, 0, 0, 0, 0, 0], "buttons": [0, 0]},
    ], src_clock, tracker=tk.TakeoverTracker(release_time=0.1))
    out = tmp_path / "recorded.jsonl"
    n = record_device_samples(source, out, duration=2.0, clock=src_clock, period=0.25,
                              sleep=src_clock.advance)
    # t = 0, .25, ..., 2.0 is 9 polls; the ones at 1.0 and 1.25 are disconnected.
    assert n == 7
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["format"] == "rlif-input-replay" and lines[0]["num_buttons"] == 2
    assert [x.get("event") for x in lines if "event" in x] == ["disconnect", "reconnect"]
    recorded = load_replay(out)
    assert recorded.duration == 2.0 and len(recorded.samples) == 7

    # Replaying the recording reproduces what the source produced at those times.
    clock = FakeClock(100.0)
    replay = ReplayDevice(recorded, clock=clock, tracker=tk.TakeoverTracker(release_time=0.1))
    replay.start()
    for t, engaged, connected in [(0.25, False, True), (0.75, True, True), (1.1, False, False),
                                  (1.75, False, True)]:
        clock.t = 100.0 + t
        s = replay.read()
        assert (s.engaged, s.connected) == (engaged, connected), t
    clock.t = 100.75
    np.testing.assert_allclose(replay.read().action, [0.5, 0, 0, 0, 0, -0.25])


def test_record_keyboard_device(tmp_path):
    clock = FakeClock(0.0)
    kb = KeyboardDevice(clock=clock, hold_time=0.3)
    kb.on_key("q")
    n = record_device_samples(kb, tmp_path / "kb.jsonl", 0.5, clock, period=0.25,
                              sleep=clock.advance)
    replay = load_replay(tmp_path / "kb.jsonl")
    assert n == 3 and replay.header["device"] == "KeyboardDevice"
    assert replay.samples[0].axes == (0, 0, 1, 0, 0, 0) and replay.samples[2].axes == (0,) * 6


def test_record_rejects_bad_arguments(tmp_path):
    kb = KeyboardDevice(clock=FakeClock())
    with pytest.raises(ValueError, match="period"):
        record_device_samples(kb, tmp_path / "x.jsonl", 1.0, period=0)


def test_input_sample_is_read_only():
    s = InputSample(timestamp=0.0, engaged=True, action=[1, 2, 3, 4, 5, 6], connected=True)
    assert s.action.dtype == np.float32 and s.axes.shape == (6,)
    with pytest.raises(ValueError):
        s.action[0] = 9.0
