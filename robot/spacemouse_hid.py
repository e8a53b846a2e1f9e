"""SpaceMouse over USB HID: a background reader thread; parsing lives in `robot.spacemouse`.

The thread blocks on the device (``read`` with a short timeout, so `stop()`
is prompt) and publishes each parsed state under a lock; the control loop's
`read()` / `engaged()` only take that lock for a few assignments, never wait
on USB.

Backend: cython-hidapi (PyPI ``hidapi``, module ``hid``: ``hid.enumerate()``,
``hid.device().open_path(path)``, ``.read(max_length, timeout_ms)`` returning a
list of ints, report id first; raising ``OSError`` when the device is gone),
imported only when a device is opened. Tests and tools can pass `opener` to
supply any object with ``read(max_length, timeout_ms)`` and ``close()``.

Disconnects: any error from ``read`` (unplugged, a USB reset, a closed
handle) ends the reader, flips `connected` to False and records the clock
value in `disconnected_at`; from then on the device reports ``engaged() ==
False`` and zero actions, so the policy keeps control and the session recorder
can mark the gap. There is no automatic reconnect: make a new device.
Malformed reports (unknown report id, wrong length) are counted and skipped,
not fatal: wireless models send extra report types (battery, ...) that carry no
motion.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Sequence

from robot.input_device import InputDevice, InputSample
from robot.invalid_marks import ChordWatcher, OperatorInput
from robot.action_mapping import ActionMapping
from robot.spacemouse import SpaceMouseState, initial_state, parse_report
from robot.spacemouse_devices import KNOWN_DEVICES, VENDOR_3DCONNEXION, DeviceSpec
from robot.takeover import SpaceMouseInterpreter, TakeoverTracker

HID_READ_SIZE = 64
"""Bytes asked for per read: a full-speed interrupt packet, more than any SpaceMouse report."""

HID_USAGE_PAGE_GENERIC_DESKTOP = 0x01
HID_USAGE_MULTI_AXIS_CONTROLLER = 0x08

Opener = Callable[[Sequence[DeviceSpec]], "tuple[Any, DeviceSpec]"]

_INSTALL_FIX = "install hidapi: pip install 'rlif-data[spacemouse]' (or: pip install hidapi)"


def _udev_fix(specs: Sequence[DeviceSpec]) -> str:
    vendors = sorted({s.vendor_id for s in specs})
    rules = "\n".join(
        f'    KERNEL=="hidraw*", ATTRS{{idVendor}}=="{v:04x}", MODE="0660", TAG+="uaccess"'
        for v in vendors)
    return ("On Linux, let your user open the hidraw node: put\n"
            f"{rules}\n"
            "  in /etc/udev/rules.d/99-spacemouse.rules, run "
            "'sudo udevadm control --reload-rules && sudo udevadm trigger', and replug the device.")


class HidapiMissingError(ImportError):
    """The ``hid`` module (PyPI ``hidapi``) is not installed, or is a different package."""


class SpaceMouseNotFoundError(RuntimeError):
    """No known SpaceMouse is plugged in, or none could be opened."""


def import_hid():
    """Import cython-hidapi's ``hid`` module.

    Returns:
      The module.

    Raises:
      HidapiMissingError: not installed, or the ``hid`` found is another package
        (PyPI ``hid`` also installs a module named ``hid``, with another API).
    """
    try:
        import hid  # lazy on purpose: only real hardware needs it
    except ImportError as exc:
        raise HidapiMissingError(f"the SpaceMouse needs the 'hid' module: {_INSTALL_FIX}") from exc
    if not (hasattr(hid, "enumerate") and hasattr(hid, "device")):
        raise HidapiMissingError(
            f"the 'hid' module at {getattr(hid, '__file__', '?')} is not cython-hidapi "
            f"(no hid.device); pip uninstall hid, then {_INSTALL_FIX}")
    return hid


def _describe_ids(specs: Sequence[DeviceSpec]) -> str:
    return ", ".join(f"{s.usb_id} ({s.name})" for s in specs)


def open_spacemouse(specs: Sequence[DeviceSpec] = KNOWN_DEVICES,
                    hid_module: Any = None) -> tuple[Any, DeviceSpec]:
    """Find and open the first plugged-in device matching one of `specs`.

    Among several HID interfaces of one device, the multi-axis controller one
    (usage page 0x01, usage 0x08) is tried first.

    Args:
      specs: the devices to look for.
      hid_module: a module with hidapi's ``enumerate()`` and ``device()``; None imports ``hid``.

    Returns:
      ``(handle, spec)``: the opened hidapi device and the spec that matched it.

    Raises:
      HidapiMissingError: hidapi is not installed.
      SpaceMouseNotFoundError: nothing matches (the message lists the ids tried and any
        unknown 3Dconnexion ids seen), or every match failed to open (permissions: the
        message gives the udev rule).
    """
    hid = hid_module if hid_module is not None else import_hid()
    specs = tuple(specs)
    by_id = {(s.vendor_id, s.product_id): s for s in specs}
    infos = list(hid.enumerate())
    matches = [(info, by_id[(info.get("vendor_id"), info.get("product_id"))]) for info in infos
               if (info.get("vendor_id"), info.get("product_id")) in by_id]
    if not matches:
        unknown = sorted({f"{i.get('vendor_id', 0):04x}:{i.get('product_id', 0):04x} "
                          f"({i.get('product_string') or '?'})" for i in infos
                          if i.get("vendor_id") == VENDOR_3DCONNEXION})
        seen = f" Unknown 3Dconnexion devices present: {', '.join(unknown)}; add a DeviceSpec." \
            if unknown else ""
        raise SpaceMouseNotFoundError(
            f"no SpaceMouse found; tried vendor:product ids {_describe_ids(specs)}.{seen} "
            f"Check it is plugged in (lsusb), then: {_udev_fix(specs)}")

    def preference(match):
        info = match[0]
        return not (info.get("usage_page") == HID_USAGE_PAGE_GENERIC_DESKTOP
                    and info.get("usage") == HID_USAGE_MULTI_AXIS_CONTROLLER)

    failures = []
    for info, spec in sorted(matches, key=preference):
        handle = hid.device()
        try:
            handle.open_path(info["path"])
        except (OSError, IOError) as exc:
            failures.append(f"{spec.name} ({spec.usb_id}) at {info.get('path')!r}: {exc}")
            continue
        return handle, spec
    raise SpaceMouseNotFoundError(
        "found a SpaceMouse but could not open it (usually permissions): "
        + "; ".join(failures) + ". " + _udev_fix([s for _, s in matches]))


class SpaceMouseHID(InputDevice):
    """A SpaceMouse read by a background thread.

    Args:
      spec: look for this device only; None looks for every known device.
      specs: the candidates when `spec` is None.
      opener: ``opener(specs) -> (handle, spec)``; None uses `open_spacemouse`.
      clock: time source, seconds (monotonic); injectable for tests.
      mapping: how states become actions; None = `ActionMapping()` (z-up, scale 1).
      tracker: the takeover state machine; None = the interpreter's default.
      read_size: bytes asked for per read.
      poll_timeout_ms: how long one read may block; bounds how long `stop()` waits.
      on_disconnect: called from the reader thread as ``on_disconnect(time, error)``.
    """

    def __init__(self, spec: Optional[DeviceSpec] = None, *,
                 specs: Sequence[DeviceSpec] = KNOWN_DEVICES,
                 opener: Optional[Opener] = None,
                 clock: Callable[[], float] = time.monotonic,
                 mapping: Optional[ActionMapping] = None,
                 tracker: Optional[TakeoverTracker] = None,
                 read_size: int = HID_READ_SIZE,
                 poll_timeout_ms: int = 20,
                 on_disconnect: Optional[Callable[[float, BaseException], None]] = None):
        self._specs = (spec,) if spec is not None else tuple(specs)
        self._opener = opener or open_spacemouse
        self._clock = clock
        self._interpreter = SpaceMouseInterpreter(mapping, tracker)
        self._chord = ChordWatcher()  # both buttons held: mark the episode invalid
        self._read_size = int(read_size)
        self._poll_timeout_ms = int(poll_timeout_ms)
        self._on_disconnect = on_disconnect
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop_event = threading.Event()
        self._disconnected_event = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._handle: Any = None
        self._spec: Optional[DeviceSpec] = None
        self._state: Optional[SpaceMouseState] = None
        self._connected = False
        self._disconnected_at: Optional[float] = None
        self._disconnect_error: Optional[BaseException] = None
        self._reports = 0
        self._malformed = 0
        self._last_error: Optional[str] = None
        self._last_report_at: Optional[float] = None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def action_dim(self) -> int:
        return self._interpreter.mapping.dim

    def start(self) -> None:
        """Open the device and start the reader thread.

        Raises:
          RuntimeError: already started.
          HidapiMissingError / SpaceMouseNotFoundError: from the opener.
        """
        if self._thread is not None:
            raise RuntimeError("SpaceMouseHID already started; make a new one to reconnect")
        handle, spec = self._opener(self._specs)
        with self._lock:
            self._handle, self._spec = handle, spec
            self._state = initial_state(spec)
            self._connected = True
        self._thread = threading.Thread(target=self._run, name=f"spacemouse-{spec.usb_id}",
                                        daemon=True)  # a wedged USB read must not block exit
        self._thread.start()

    def stop(self) -> None:
        """Stop the reader and close the handle. Safe to call twice or before `start`."""
        self._stop_event.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=max(1.0, 10 * self._poll_timeout_ms / 1000))
            if thread.is_alive():
                return  # never close a handle another thread is still reading (use-after-free)
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except Exception:  # noqa: BLE001 -- the device may already be gone
                pass

    # -- reader thread -----------------------------------------------------------

    def _run(self) -> None:
        handle, spec = self._handle, self._spec
        while not self._stop_event.is_set():
            try:
                data = handle.read(self._read_size, self._poll_timeout_ms)
            except Exception as exc:  # noqa: BLE001
                # hidapi raises OSError when unplugged; anything else is just as fatal for this
                # handle, and a dead thread that still said "connected" would freeze the last
                # (possibly moving) state in place.
                self._mark_disconnected(exc)
                return
            if not data:
                continue
            try:
                new_state = parse_report(spec, data, self._state)  # only this thread writes it
            except ValueError as exc:
                with self._changed:
                    self._reports += 1
                    self._malformed += 1
                    self._last_error = str(exc)
                    self._changed.notify_all()
                continue
            with self._changed:
                now = self._clock()
                self._state = new_state
                self._last_report_at = now
                self._reports += 1
                # Update here too, not only in read(): a touch shorter than the control period
                # still starts a takeover that lasts release_time.
                self._interpreter.tracker.update(new_state, now)
                self._changed.notify_all()

    def _mark_disconnected(self, exc: BaseException) -> None:
        with self._changed:
            now = self._clock()
            self._connected = False
            self._disconnected_at = now
            self._disconnect_error = exc
            self._interpreter.tracker.reset()
            self._changed.notify_all()
        self._disconnected_event.set()
        if self._on_disconnect is not None:
            self._on_disconnect(now, exc)

    # -- control-loop side -------------------------------------------------------

    def read(self) -> InputSample:
        """The latest sample; takes the state lock briefly, never touches USB.

        Returns:
          An `InputSample`; after a disconnect: connected False, not engaged, zero action.

        Raises:
          RuntimeError: called before `start()`.
        """
        with self._lock:
            if self._state is None:
                raise RuntimeError("SpaceMouseHID.read() before start()")
            now = self._clock()
            state, connected = self._state, self._connected
            out = self._interpreter.step(state, now, connected)
            self._chord.update(state.buttons if connected else (), now)
        return InputSample(timestamp=now, engaged=out.engaged, action=out.action,
                           connected=connected, buttons=state.buttons, axes=out.axes,
                           flags=out.flags)

    def mark_requests(self) -> tuple[OperatorInput, ...]:
        """Button chords held long enough since the last call (`robot.invalid_marks`).

        The chord is timed on `read()`, which the control loop calls every step.
        """
        with self._lock:
            return self._chord.take()

    def engaged(self) -> bool:
        """`TakeoverSignal`: the operator is in control (False once disconnected)."""
        return self.read().engaged

    def wait_for_reports(self, count: int, timeout: float) -> bool:
        """Block until `count` reports (valid or not) arrived, or the device disconnected.

        Args:
          count: total reports since start.
          timeout: seconds.

        Returns:
          True if at least `count` reports arrived.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._reports >= count or not self._connected,
                                   timeout)
            return self._reports >= count

    def wait_disconnected(self, timeout: float) -> bool:
        """Block until the device disconnects.

        Args:
          timeout: seconds.

        Returns:
          True if it disconnected within `timeout`.
        """
        return self._disconnected_event.wait(timeout)

    @property
    def spec(self) -> Optional[DeviceSpec]:
        """The spec of the opened device (None before `start`)."""
        return self._spec

    @property
    def state(self) -> Optional[SpaceMouseState]:
        """The latest parsed state (None before `start`)."""
        with self._lock:
            return self._state

    @property
    def connected(self) -> bool:
        """True between a successful `start` and a read error."""
        with self._lock:
            return self._connected

    @property
    def disconnected_at(self) -> Optional[float]:
        """Clock value when the device went away, or None."""
        with self._lock:
            return self._disconnected_at

    @property
    def disconnect_error(self) -> Optional[BaseException]:
        """The error that ended the reader, or None."""
        with self._lock:
            return self._disconnect_error

    @property
    def reports_received(self) -> int:
        """Reports read since start, malformed ones included."""
        with self._lock:
            return self._reports

    @property
    def malformed_reports(self) -> int:
        """Reports skipped because `parse_report` rejected them."""
        with self._lock:
            return self._malformed

    @property
    def last_error(self) -> Optional[str]:
        """The last `parse_report` error message, or None."""
        with self._lock:
            return self._last_error

    @property
    def last_report_at(self) -> Optional[float]:
        """Clock value of the last valid report, or None."""
        with self._lock:
            return self._last_report_at
