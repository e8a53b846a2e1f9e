"""Keyboard fallback input device: same interface as the SpaceMouse, for when none is at hand.

Key map (robot frame: right-handed, +z up; lowercase, Shift / Caps Lock ignored)::

    w / s  +x / -x        u / o  +rx / -rx
    a / d  +y / -y        i / k  +ry / -ry
    q / e  +z / -z        j / l  +rz / -rz
    c      close gripper (+1)    v  open gripper (-1)    (7-D actions only)
    space  toggle a latched takeover (operator in control, zero action, until pressed again)
    x / z  mark the current / previous episode invalid; 1..9 choose the preset reason
           (`robot.invalid_marks`; these keys never take over)

Holding any motion or gripper key engages; releasing all of them (and no latch)
hands control back. Terminals send no key-release events, only presses and
auto-repeats, so a key counts as held for `hold_time` seconds after its last
press event; the default 0.6 s bridges the usual auto-repeat start delay
(250-600 ms), after which repeats arrive at ~30 Hz. Opposite keys cancel.

The pure part (`KeyboardState`, `keys_to_axes`, `keys_to_action`, `split_keys`)
has no I/O; `KeyboardDevice` takes its key events from an injectable source
(`TerminalKeySource` for real use: a thread over a terminal in cbreak mode)
or from direct `on_key` calls (tests, GUIs).
"""

from __future__ import annotations

import dataclasses
import os
import select
import threading
import time
from typing import Callable, Iterable, Optional, Protocol

import numpy as np

from robot import invalid_marks as im
from robot.input_device import InputDevice, InputSample

MOTION_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0),
    "q": (2, 1.0), "e": (2, -1.0),
    "u": (3, 1.0), "o": (3, -1.0),
    "i": (4, 1.0), "k": (4, -1.0),
    "j": (5, 1.0), "l": (5, -1.0),
}
"""key -> (axis index, direction) in the robot frame."""

GRIPPER_CLOSE_KEY = "c"
GRIPPER_OPEN_KEY = "v"
TOGGLE_KEY = " "
BUTTON_NAMES = ("close", "open")
"""`InputSample.buttons` of the keyboard: (close key held, open key held)."""

DEFAULT_HOLD_TIME = 0.6
AXIS_NAMES = ("x", "y", "z", "rx", "ry", "rz")


def key_map_lines(action_dim: int = 6, hold_time: float = DEFAULT_HOLD_TIME,
                  reasons: tuple[str, ...] = (im.DEFAULT_REASON,)) -> list[str]:
    """The key map as the operator reads it before a session, built from `MOTION_KEYS`. Pure.

    Args:
      action_dim: how many action entries the robot uses (the sim arm: 2, x and y);
        keys of the axes beyond it are listed as unused, the gripper keys need 7.
      hold_time: how long a press counts as held, seconds.
      reasons: the session's preset reasons for invalid marks.

    Returns:
      Lines of text: how to take over and hand back, one line per key pair.
    """
    pairs: dict[int, dict[float, str]] = {}
    for key, (axis, direction) in MOTION_KEYS.items():
        pairs.setdefault(axis, {})[direction] = key
    unused = "not used by this robot"
    lines = [f"keyboard: hold a key to take over, let go to hand back (a press holds "
             f"{hold_time:g} s);",
             "          space latches a takeover until pressed again; Ctrl-C ends the session"]
    for axis in sorted(pairs):
        name = AXIS_NAMES[axis]
        lines.append(f"  {pairs[axis][1.0]} / {pairs[axis][-1.0]}   {f'+{name} / -{name}':<22}"
                     f"{'' if axis < action_dim else unused}".rstrip())
    lines.append(f"  {GRIPPER_CLOSE_KEY} / {GRIPPER_OPEN_KEY}   {'close / open gripper':<22}"
                 f"{'' if action_dim >= 7 else unused}".rstrip())
    lines.append(f"  space   {'latch / release':<22}operator in control, zero action")
    lines.append(f"  {im.MARK_CURRENT_KEY}       {'mark invalid':<22}the current episode "
                 f"(it stays in the data, flagged)")
    lines.append(f"  {im.MARK_PREVIOUS_KEY}       {'mark invalid':<22}the previous episode")
    if len(reasons) > 1:
        keys = f"{im.REASON_KEYS[0]}..{im.REASON_KEYS[len(reasons) - 1]}"
        choices = ", ".join(f"{i + 1} {r}" for i, r in enumerate(reasons))
        lines.append(f"  {keys:<7} {'choose the reason':<22}{choices}")
    else:
        lines.append(f"          {'reason':<22}{reasons[0]}")
    return lines


def split_keys(text: str) -> list[str]:
    """Split terminal input into key presses, dropping escape sequences (arrows, F-keys).

    Without this an arrow key (ESC [ A) would read as a press of "a".

    Args:
      text: decoded bytes read from the terminal.

    Returns:
      Single-character keys, lowercased.
    """
    keys, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\x1b":
            i += 1
            if i < len(text) and text[i] in "[O":
                i += 1
                # CSI / SS3: parameter bytes, then one final byte in @..~
                while i < len(text) and not ("@" <= text[i] <= "~"):
                    i += 1
                i += 1
            continue
        keys.append(ch.lower())
        i += 1
    return keys


@dataclasses.dataclass(frozen=True)
class KeyboardState:
    """Key presses seen so far. Immutable: `press` returns a new state.

    Attributes:
      pressed_at: (key, time of its last press event), one entry per key.
      latched: the space-bar takeover latch.
    """

    pressed_at: tuple[tuple[str, float], ...] = ()
    latched: bool = False

    def press(self, key: str, now: float) -> "KeyboardState":
        """Record a key press (or auto-repeat) at time `now`.

        Args:
          key: one character; uppercase is folded to lowercase.
          now: the clock value, seconds.

        Returns:
          The new state: the space bar flips the latch, any other key refreshes its time.
        """
        key = key.lower()
        if key == TOGGLE_KEY:
            return dataclasses.replace(self, latched=not self.latched)
        times = dict(self.pressed_at)
        times[key] = now
        return dataclasses.replace(self, pressed_at=tuple(sorted(times.items())))

    def held(self, now: float, hold_time: float = DEFAULT_HOLD_TIME) -> frozenset[str]:
        """Keys pressed within the last `hold_time` seconds.

        Args:
          now: the clock value, seconds.
          hold_time: how long a press counts as held.

        Returns:
          The held keys.
        """
        return frozenset(k for k, t in self.pressed_at if 0.0 <= now - t < hold_time)


def keys_to_axes(held: Iterable[str]) -> np.ndarray:
    """Normalized robot-frame axes from held keys.

    Args:
      held: held keys (unmapped keys are ignored).

    Returns:
      float32 array of six values in {-1, 0, 1}; opposite keys cancel.
    """
    axes = np.zeros(6, dtype=np.float32)
    for key in held:
        if key in MOTION_KEYS:
            axis, direction = MOTION_KEYS[key]
            axes[axis] += direction
    return np.clip(axes, -1.0, 1.0)


def keys_to_action(held: Iterable[str], scale: float = 1.0, *,
                   rotation_scale: Optional[float] = None, gripper: bool = False) -> np.ndarray:
    """End-effector delta action from held keys.

    Args:
      held: held keys.
      scale: translation per key.
      rotation_scale: rotation per key; None uses `scale`.
      gripper: append a gripper entry (+1 close held, -1 open held, 0 neither / both).

    Returns:
      float32 array of 6 (or 7) values.
    """
    held = frozenset(held)
    action = keys_to_axes(held).astype(np.float64)
    action[:3] *= scale
    action[3:] *= scale if rotation_scale is None else rotation_scale
    if gripper:
        g = float(GRIPPER_CLOSE_KEY in held) - float(GRIPPER_OPEN_KEY in held)
        action = np.append(action, g)
    return action.astype(np.float32)


def keyboard_engaged(state: KeyboardState, now: float,
                     hold_time: float = DEFAULT_HOLD_TIME) -> bool:
    """Whether the operator is in control: latched, or a motion / gripper key held.

    Args:
      state: the key state.
      now: the clock value, seconds.
      hold_time: how long a press counts as held.

    Returns:
      True while the operator takes over.
    """
    active = set(MOTION_KEYS) | {GRIPPER_CLOSE_KEY, GRIPPER_OPEN_KEY}
    return state.latched or bool(state.held(now, hold_time) & active)


class KeySource(Protocol):
    """Where key presses come from."""

    def start(self, on_key: Callable[[str], None]) -> None:
        """Begin delivering keys to `on_key` (from any thread)."""

    def stop(self) -> None:
        """Stop delivering keys and release the source."""


class TerminalKeySource:
    """Reads key presses from a terminal in cbreak mode on a background thread.

    cbreak (not raw) mode: keys arrive one by one without echo, and Ctrl-C still
    raises KeyboardInterrupt in the main thread. The terminal settings are
    restored by `stop()`.

    Args:
      fd: terminal file descriptor; None = standard input.
      poll_s: how long one ``select`` waits; bounds how long `stop()` takes.
    """

    def __init__(self, fd: Optional[int] = None, poll_s: float = 0.05):
        self._fd = fd
        self._poll_s = poll_s
        self._saved = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self, on_key: Callable[[str], None]) -> None:
        """Switch the terminal to cbreak mode and start the reader thread.

        Args:
          on_key: called with each key (one character, lowercased).

        Raises:
          RuntimeError: the descriptor is not a terminal (e.g. stdin is a pipe under a
            job runner): use a SpaceMouse, or feed keys with `KeyboardDevice.on_key`.
        """
        import sys
        import termios
        import tty

        fd = sys.stdin.fileno() if self._fd is None else self._fd
        if not os.isatty(fd):
            raise RuntimeError(f"keyboard input needs a terminal, but fd {fd} is not a tty")
        self._fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(on_key,), daemon=True,
                                        name="keyboard-input")
        self._thread.start()

    def _run(self, on_key: Callable[[str], None]) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], self._poll_s)
            if not ready:
                continue
            chunk = os.read(self._fd, 64)
            if not chunk:
                return  # terminal closed
            for key in split_keys(chunk.decode("utf-8", errors="ignore")):
                on_key(key)

    def stop(self) -> None:
        """Stop the thread and restore the terminal settings."""
        import termios

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0 + 10 * self._poll_s)
            self._thread = None
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None


class KeyboardDevice(InputDevice):
    """Keyboard teleoperation with the SpaceMouse's interface.

    Args:
      source: key source started by `start()`; None = feed keys with `on_key` only.
      clock: time source, seconds (monotonic).
      scale / rotation_scale / gripper: as in `keys_to_action`.
      hold_time: how long a press counts as held (see the module docstring).
    """

    def __init__(self, source: Optional[KeySource] = None, *,
                 clock: Callable[[], float] = time.monotonic, scale: float = 1.0,
                 rotation_scale: Optional[float] = None, gripper: bool = False,
                 hold_time: float = DEFAULT_HOLD_TIME):
        if not hold_time > 0:
            raise ValueError(f"hold_time must be > 0 seconds, got {hold_time!r}")
        self._source = source
        self._clock = clock
        self._scale = scale
        self._rotation_scale = rotation_scale
        self._gripper = gripper
        self._hold_time = hold_time
        self._lock = threading.Lock()
        self._state = KeyboardState()
        self._requests: list[im.OperatorInput] = []

    @property
    def action_dim(self) -> int:
        return 7 if self._gripper else 6

    @property
    def key_state(self) -> KeyboardState:
        """The current key state."""
        with self._lock:
            return self._state

    def start(self) -> None:
        """Start the key source, if any.

        Raises:
          RuntimeError: the source cannot start (e.g. no terminal).
        """
        if self._source is not None:
            self._source.start(self.on_key)

    def stop(self) -> None:
        """Stop the key source, if any."""
        if self._source is not None:
            self._source.stop()

    def on_key(self, key: str, now: Optional[float] = None) -> None:
        """Record one key press.

        Args:
          key: one character.
          now: the clock value; None reads the device clock.
        """
        with self._lock:
            t = self._clock() if now is None else now
            request = im.key_request(key.lower())
            # A held key auto-repeats: only a press after a release asks again.
            if request is not None and key.lower() not in self._state.held(t, self._hold_time):
                self._requests.append(request)
            self._state = self._state.press(key, t)

    def mark_requests(self) -> tuple[im.OperatorInput, ...]:
        """Fresh presses of the mark and reason keys since the last call (`robot.invalid_marks`)."""
        with self._lock:
            out, self._requests = tuple(self._requests), []
        return out

    def read(self) -> InputSample:
        """The current sample (always connected: a keyboard does not unplug mid-session).

        Returns:
          `InputSample` with buttons = (close held, open held).
        """
        with self._lock:
            now, state = self._clock(), self._state
        held = state.held(now, self._hold_time)
        flags = ("latched",) if state.latched else ()
        return InputSample(
            timestamp=now, engaged=keyboard_engaged(state, now, self._hold_time),
            action=keys_to_action(held, self._scale, rotation_scale=self._rotation_scale,
                                  gripper=self._gripper),
            connected=True,
            buttons=(GRIPPER_CLOSE_KEY in held, GRIPPER_OPEN_KEY in held),
            axes=keys_to_axes(held), flags=flags)
