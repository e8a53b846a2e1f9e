"""Scripted input device: plays back recorded input against an injectable clock.

For tests and demos without hardware, and for fault drills: a replay file can
unplug the device, jam a button or send garbage at chosen times, and every
consumer (takeover logic, session recorder) sees what it would see from a real
SpaceMouse, because replayed states go through the same `SpaceMouseInterpreter`.

File format (JSON lines, UTF-8, one object per line, blank lines ignored)
-----------------------------------------------------------------------
Optional first line, the header::

    {"format": "rlif-input-replay", "version": 1, "frame": "robot",
     "num_buttons": 2, "duration": 5.0}

``frame`` must be "robot" (axes as `InputSample.axes`: right-handed, +z up);
``num_buttons`` defaults to the first sample's button count; ``duration``
(seconds) defaults to the end of the last record. Extra keys (``device``,
``period``, ...) are kept in `Replay.header`.

Samples, in non-decreasing ``t`` (seconds from the start of the replay)::

    {"t": 0.25, "axes": [x, y, z, rx, ry, rz], "buttons": [0, 1]}

``axes`` are normalized (1.0 = full deflection); a sample holds until the next
one (zero-order hold). Values beyond +-1 are clipped and flagged "clipped";
beyond ``raw_limit / axis_scale`` (512 / 350 ~ 1.46) they count as a corrupt
burst: flagged "out_of_range", zero action, no takeover. ``buttons`` are 0/1
or booleans. An optional ``flags`` list (what the recorder saw) is ignored.

Fault markers (``event`` instead of ``axes``), in time order with the samples:

* ``{"t": 1.0, "event": "disconnect"}`` -- the device is gone from ``t`` on:
  connected False, never engaged, zero action;
* ``{"t": 2.0, "event": "reconnect"}`` -- back again (the takeover state restarts);
* ``{"t": 3.0, "event": "stuck_button", "button": 0, "duration": 12.0}`` --
  button 0 reads pressed for ``duration`` seconds (omitted: to the end) whatever
  the samples say; the takeover tracker's stuck-button timeout is what ends the
  takeover;
* ``{"t": 4.0, "event": "burst", "duration": 0.1, "axes": [9, 9, 9, 0, 0, 0]}`` --
  these axis values replace the samples' for ``duration`` seconds.

After ``duration`` the device reads idle (axes 0, buttons released; the
connection stays as the last marker left it) and its samples carry the flag
"replay_finished"; ``loop=True`` starts over instead.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from robot.input_device import InputDevice, InputSample
from robot.invalid_marks import ChordWatcher, OperatorInput
from robot.action_mapping import HID_SIGNS, ActionMapping
from robot.spacemouse import NUM_AXES, SpaceMouseState, state_from_axes
from robot.spacemouse_devices import DEFAULT_AXIS_SCALE, DEFAULT_RAW_LIMIT
from robot.takeover import SpaceMouseInterpreter, TakeoverTracker

FORMAT_NAME = "rlif-input-replay"
FORMAT_VERSION = 1
EVENTS = ("disconnect", "reconnect", "stuck_button", "burst")


@dataclasses.dataclass(frozen=True)
class ReplaySample:
    """One recorded reading: time, six robot-frame axes, buttons."""

    t: float
    axes: tuple[float, ...]
    buttons: tuple[bool, ...]


@dataclasses.dataclass(frozen=True)
class ReplayEvent:
    """One fault marker (see the module docstring)."""

    t: float
    kind: str
    duration: float = math.inf
    button: Optional[int] = None
    axes: Optional[tuple[float, ...]] = None

    def active(self, t: float) -> bool:
        """Whether a timed fault (stuck_button, burst) covers time `t`."""
        return self.t <= t < self.t + self.duration


@dataclasses.dataclass(frozen=True)
class Replay:
    """A parsed replay file.

    Attributes:
      samples: in time order.
      events: fault markers in time order.
      num_buttons: buttons per sample.
      duration: seconds; after it the device reads idle.
      header: the header line's keys (empty without one).
    """

    samples: tuple[ReplaySample, ...]
    events: tuple[ReplayEvent, ...]
    num_buttons: int
    duration: float
    header: dict = dataclasses.field(default_factory=dict)
    _times: tuple[float, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_times", tuple(s.t for s in self.samples))

    def at(self, t: float, *, axis_scale: float = DEFAULT_AXIS_SCALE,
           raw_limit: float = DEFAULT_RAW_LIMIT) -> tuple[SpaceMouseState, bool, tuple[str, ...]]:
        """What the device shows at replay time `t`. Pure.

        Args:
          t: seconds since the start of the replay.
          axis_scale / raw_limit: for clipping and out-of-range flags, as in `DeviceSpec`.

        Returns:
          ``(state, connected, injected)``: the state (robot-frame axes), whether the
          device is connected, and the names of the fault markers in effect.
        """
        connected = True
        for ev in self.events:
            if ev.t > t:
                break
            if ev.kind in ("disconnect", "reconnect"):
                connected = ev.kind == "reconnect"
        axes: tuple[float, ...] = (0.0,) * NUM_AXES
        buttons = [False] * self.num_buttons
        if t < self.duration:
            i = bisect.bisect_right(self._times, t) - 1
            if i >= 0:
                axes, buttons = self.samples[i].axes, list(self.samples[i].buttons)
        injected = []
        for ev in self.events:
            if ev.kind == "stuck_button" and ev.active(t):
                buttons[ev.button] = True
                injected.append("stuck_button")
            elif ev.kind == "burst" and ev.active(t):
                axes = ev.axes
                injected.append("burst")
        if not connected:
            injected.append("disconnect")
        state = state_from_axes(axes, buttons, axis_scale=axis_scale, raw_limit=raw_limit)
        return state, connected, tuple(dict.fromkeys(injected))


def _fail(where: str, msg: str):
    raise ValueError(f"{where}: {msg}")


def _number(where: str, obj: dict, key: str, *, minimum: float = -math.inf) -> float:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or v < minimum:
        _fail(where, f"{key!r} must be a finite number >= {minimum}, got {v!r}")
    return float(v)


def _axes(where: str, obj: dict) -> tuple[float, ...]:
    v = obj.get("axes")
    if not isinstance(v, list) or len(v) != NUM_AXES or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
            for a in v):
        _fail(where, f"'axes' must be a list of {NUM_AXES} finite numbers, got {v!r}")
    return tuple(float(a) for a in v)


def parse_replay(lines: Iterable[str], source: str = "<replay>") -> Replay:
    """Parse replay records (see the module docstring).

    Args:
      lines: the file's lines.
      source: name used in error messages.

    Returns:
      The `Replay`.

    Raises:
      ValueError: bad JSON, unknown format / version / frame / event, missing or
        malformed fields, time going backwards, button count mismatch, a stuck
        button index out of range; the message names the source and line.
    """
    header: dict = {}
    samples: list[ReplaySample] = []
    events: list[ReplayEvent] = []
    num_buttons: Optional[int] = None
    last_t, end = -math.inf, 0.0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            _fail(where, f"not JSON ({exc.msg})")
        if not isinstance(obj, dict):
            _fail(where, f"expected a JSON object, got {type(obj).__name__}")
        if "format" in obj:
            if samples or events or header:
                _fail(where, "the header must be the first record")
            if obj["format"] != FORMAT_NAME or obj.get("version") != FORMAT_VERSION:
                _fail(where, f"expected format {FORMAT_NAME!r} version {FORMAT_VERSION}, got "
                             f"{obj.get('format')!r} version {obj.get('version')!r}")
            if obj.get("frame", "robot") != "robot":
                _fail(where, f"only frame 'robot' is supported, got {obj.get('frame')!r}")
            header = obj
            if "num_buttons" in obj:
                num_buttons = int(_number(where, obj, "num_buttons", minimum=0))
            continue
        t = _number(where, obj, "t", minimum=0.0)
        if t < last_t:
            _fail(where, f"time goes backwards ({t} after {last_t})")
        last_t = t
        if "event" in obj:
            kind = obj["event"]
            if kind not in EVENTS:
                _fail(where, f"unknown event {kind!r}; expected one of {list(EVENTS)}")
            duration = (_number(where, obj, "duration", minimum=0.0) if "duration" in obj
                        else math.inf)
            if kind == "burst" and "duration" not in obj:
                _fail(where, "a burst needs a 'duration'")
            button = None
            if kind == "stuck_button":
                b = obj.get("button")
                if isinstance(b, bool) or not isinstance(b, int) or b < 0:
                    _fail(where, f"'button' must be a button index, got {b!r}")
                button = b
            axes = _axes(where, obj) if kind == "burst" else None
            events.append(ReplayEvent(t, kind, duration, button, axes))
            end = max(end, t + (duration if math.isfinite(duration) else 0.0))
            continue
        axes = _axes(where, obj)
        buttons = obj.get("buttons", [])
        if not isinstance(buttons, list) or not all(b in (0, 1) for b in buttons):
            _fail(where, f"'buttons' must be a list of 0/1 or booleans, got {buttons!r}")
        if num_buttons is None:
            num_buttons = len(buttons)
        elif len(buttons) != num_buttons:
            _fail(where, f"{len(buttons)} buttons, expected {num_buttons}")
        samples.append(ReplaySample(t, axes, tuple(bool(b) for b in buttons)))
        end = max(end, t)
    num_buttons = num_buttons or 0
    for ev in events:
        if ev.kind == "stuck_button" and ev.button >= num_buttons:
            _fail(source, f"stuck_button at t={ev.t} names button {ev.button}, "
                          f"but the replay has {num_buttons} buttons")
    duration = float(header["duration"]) if "duration" in header else end
    return Replay(tuple(samples), tuple(events), num_buttons, duration, header)


def load_replay(path: Union[str, os.PathLike]) -> Replay:
    """Read a replay file.

    Args:
      path: a JSON-lines replay file.

    Returns:
      The `Replay`.

    Raises:
      OSError: the file cannot be read.
      ValueError: see `parse_replay`.
    """
    with open(path, encoding="utf-8") as f:
        return parse_replay(f, source=os.fspath(path))


class ReplayDevice(InputDevice):
    """Plays a `Replay` against a clock; time 0 is the `start()` call, or `start_timeline()`.

    A robot session calls `start_timeline()` at its control loop's first tick,
    so the file's times are times since the first control step.

    Args:
      replay: a `Replay` or a path to a replay file.
      clock: time source, seconds (monotonic); inject a fake clock in tests.
      mapping: how axes become actions (scale, dead-zone, ``gripper_buttons`` for 7-D);
        its ``signs`` are ignored: the file is already in the robot frame.
      tracker: the takeover state machine; None = the interpreter's default.
      loop: start over after the replay's duration instead of going idle.
    """

    def __init__(self, replay: Union[Replay, str, os.PathLike], *,
                 clock: Callable[[], float] = time.monotonic,
                 mapping: Optional[ActionMapping] = None,
                 tracker: Optional[TakeoverTracker] = None, loop: bool = False):
        self.replay = replay if isinstance(replay, Replay) else load_replay(replay)
        if loop and not self.replay.duration > 0:
            raise ValueError("loop=True needs a replay with a positive duration")
        self._clock = clock
        # The file is already in the robot frame: never flip signs again.
        mapping = dataclasses.replace(mapping or ActionMapping(), signs=HID_SIGNS)
        self._interpreter = SpaceMouseInterpreter(mapping, tracker)
        self._chord = ChordWatcher()  # both buttons held: mark the episode invalid, as live
        self._loop = loop
        self._t0: Optional[float] = None

    @property
    def action_dim(self) -> int:
        return self._interpreter.mapping.dim

    def start(self) -> None:
        """Start playing: replay time 0 is now."""
        self._t0 = self._clock()
        self._interpreter.tracker.reset()

    def start_timeline(self) -> None:
        """Restart the replay: replay time 0 is now (`run_session` calls this at its first tick).

        Raises:
          RuntimeError: not started.
        """
        if self._t0 is None:
            raise RuntimeError("ReplayDevice not started; call start() first")
        self.start()

    def stop(self) -> None:
        """Stop playing; `read` needs a new `start`."""
        self._t0 = None

    def replay_time(self, now: Optional[float] = None) -> float:
        """Replay time at clock value `now` (None reads the clock).

        Raises:
          RuntimeError: not started.
        """
        if self._t0 is None:
            raise RuntimeError("ReplayDevice not started; call start() first")
        t = (self._clock() if now is None else now) - self._t0
        if self._loop:
            t = math.fmod(t, self.replay.duration)
        return t

    def read(self) -> InputSample:
        """The replayed sample at the current clock value.

        Returns:
          `InputSample`; flags include the interpreter's and "replay_finished" after the end.

        Raises:
          RuntimeError: not started.
        """
        now = self._clock()
        t = self.replay_time(now)
        state, connected, _ = self.replay.at(t)
        out = self._interpreter.step(state, now, connected)
        self._chord.update(state.buttons if connected else (), now)
        flags = out.flags + (("replay_finished",) if t >= self.replay.duration else ())
        return InputSample(timestamp=now, engaged=out.engaged, action=out.action,
                           connected=connected, buttons=state.buttons, axes=out.axes,
                           flags=flags)

    def mark_requests(self) -> tuple[OperatorInput, ...]:
        """Button chords held long enough since the last call, as from a live SpaceMouse."""
        return self._chord.take()


def _dump(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def record_device_samples(device: InputDevice, path: Union[str, os.PathLike], duration: float,
                          clock: Callable[[], float] = time.monotonic, *, period: float = 0.01,
                          sleep: Callable[[float], Any] = time.sleep) -> int:
    """Poll a started device for `duration` seconds and write a replay file.

    Samples are written while connected; a change of `InputSample.connected` writes a
    "disconnect" / "reconnect" marker instead. Each line is flushed as written, so a
    crash keeps what was recorded.

    Args:
      device: a started `InputDevice` (the caller owns start / stop).
      path: output file (overwritten).
      duration: seconds to record; the header records it.
      clock: time source, seconds.
      period: seconds between polls.
      sleep: how to wait `period` (inject a fake that advances a fake clock in tests).

    Returns:
      The number of samples written (markers not counted).

    Raises:
      ValueError: duration < 0 or period <= 0.
    """
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be >= 0 seconds, got {duration!r}")
    if not (math.isfinite(period) and period > 0):
        raise ValueError(f"period must be > 0 seconds, got {period!r}")
    t0 = clock()
    written, connected, header_done = 0, True, False
    with open(path, "w", encoding="utf-8", buffering=1) as f:
        while True:
            t = clock() - t0
            if t > duration:
                break
            sample = device.read()
            if not header_done:
                f.write(_dump({"format": FORMAT_NAME, "version": FORMAT_VERSION,
                               "frame": "robot", "num_buttons": len(sample.buttons),
                               "duration": duration, "period": period,
                               "device": type(device).__name__,
                               "action_dim": int(device.action_dim)}))
                header_done = True
            if sample.connected != connected:
                connected = sample.connected
                f.write(_dump({"t": t, "event": "reconnect" if connected else "disconnect"}))
            if connected:
                record = {"t": t, "axes": [float(a) for a in np.asarray(sample.axes)],
                          "buttons": [int(b) for b in sample.buttons]}
                if sample.flags:
                    record["flags"] = list(sample.flags)
                f.write(_dump(record))
                written += 1
            sleep(period)
    return written
