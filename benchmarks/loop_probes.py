"""Instruments for timing a control loop, shared by the control-loop benchmark.

A `StepProfile` collects named durations (policy, device reads, env step,
frame fetch, GC pauses, the store's episode write) and `TracingRate` cuts
them into one row per stretch of work between two ticks of the pacer. The
wrappers here feed it through public interfaces only: a `ControlRate`
subclass, `ReplayDevice.read`, `SimArmEnv.step`, the env's frame source
(`SimArmEnv.frame_source`) and the store's `EpisodeStore.on_write` hook.
Plus what the host did meanwhile: load, steal time, GC.
"""

from __future__ import annotations

import collections
import gc
import os
import threading
import time
from typing import Any, Callable, Optional

import numpy as np

from rlif_data.recording.store import WriteTiming
from robot.cameras import CameraDriver, Images
from robot.env import SimArmEnv
from robot.replay_device import ReplayDevice
from robot.timing import ControlRate


class StepProfile:
    """Accumulates named durations until `cut()` hands them to the step they belong to."""

    def __init__(self):
        self._acc: dict[str, float] = collections.defaultdict(float)

    def add(self, name: str, seconds: float) -> None:
        self._acc[name] += seconds

    def cut(self) -> dict[str, float]:
        row, self._acc = dict(self._acc), collections.defaultdict(float)
        return row


class TracingRate(ControlRate):
    """`ControlRate` that also keeps when each tick was due, entered and returned.

    The pacing itself is `ControlRate`'s (its `periods` are the reported
    numbers). On top it records, per tick, (episode, tick index, deadline,
    return time), and cuts the `StepProfile` at every `wait` entry and every
    `reset`, so each row describes one stretch of work:

      ``step``           tick return -> next tick's `wait` (an ordinary step);
      ``last_step``      last tick of an episode -> the next episode's `reset`
                         (the last step, in which the recorder commits);
      ``episode_start``  `reset` -> first tick (env reset, episode metadata).
    """

    def __init__(self, hz: float, profile: StepProfile,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(hz, clock=clock)
        self._profile = profile
        self.episode = -1
        self.ticks: list[tuple[int, int, float, float]] = []  # (episode, index, deadline, returned)
        self.rows: list[dict[str, Any]] = []
        self._last_return: Optional[float] = None
        self._reset_at: Optional[float] = None
        self._index = 0

    def _row(self, kind: str, start: float, end: float) -> None:
        self.rows.append({"kind": kind, "episode": self.episode, "tick": self._index - 1,
                          "seconds": end - start, **self._profile.cut()})

    def reset(self) -> None:
        now = self._clock()
        if self._last_return is not None:
            self._row("last_step", self._last_return, now)
        super().reset()
        self.episode += 1
        self._index = 0
        self._last_return = None
        self._reset_at = now
        self._profile.cut()

    def wait(self) -> float:
        enter = self._clock()
        if self._reset_at is not None:
            self._row("episode_start", self._reset_at, enter)
            self._reset_at = None
        elif self._last_return is not None:
            self._row("step", self._last_return, enter)
        deadline = self._next if self._next is not None else enter
        late = super().wait()
        returned = self._clock()
        self.ticks.append((self.episode, self._index, deadline, returned))
        self._index += 1
        self._last_return = returned
        return late

    def finish(self) -> None:
        """Close the last row (the final episode's last step plus session teardown)."""
        if self._last_return is not None:
            self._row("session_end", self._last_return, self._clock())
            self._last_return = None


class Timed:
    """Wraps a callable, adding its duration to a profile entry; forwards attributes (``reset``)."""

    def __init__(self, fn: Callable, name: str, profile: StepProfile):
        self._fn, self._name, self._profile = fn, name, profile

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self._profile.add(self._name, time.perf_counter() - t)

    def __getattr__(self, name):
        return getattr(self._fn, name)


class TimedReplayDevice(ReplayDevice):
    """`ReplayDevice` whose reads are timed into the step profile."""

    def __init__(self, *args, profile: StepProfile, **kwargs):
        super().__init__(*args, **kwargs)
        self._profile = profile

    def read(self):
        t = time.perf_counter()
        try:
            return super().read()
        finally:
            self._profile.add("device", time.perf_counter() - t)


class GcMonitor:
    """Times every garbage collection (pauses of the control thread, whoever triggers them)."""

    def __init__(self, profile: StepProfile):
        self._profile = profile
        self.pauses: list[tuple[int, float]] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            dt = time.perf_counter() - self._t0
            self.pauses.append((int(info.get("generation", -1)), dt))
            self._profile.add("gc", dt)

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


def commit_timer(profile: StepProfile, commits: list[dict[str, Any]]):
    """An `EpisodeStore.on_write` hook: each episode write (serialise + shard write + fsync +
    rename + index) goes into `commits` (with the thread that wrote it), and into the step
    profile as "commit" when the control (main) thread wrote it itself."""

    def on_write(timing: WriteTiming) -> None:
        thread = threading.current_thread()
        if thread is threading.main_thread():
            profile.add("commit", timing.total_s)
        commits.append({"commit_s": timing.total_s, "serialize_s": timing.serialize_s,
                        "shard_write_s": timing.write_s, "index_s": timing.index_s,
                        "thread": thread.name})

    return on_write


class ProfiledFrames:
    """The env's frame source: a camera driver's newest frames, or (no driver) rendered inline.

    Times every fetch into the step profile ("frames") and keeps the age of
    every frame handed out and how often a frame was handed out twice.
    """

    def __init__(self, env: SimArmEnv, profile: StepProfile,
                 driver: Optional[CameraDriver] = None):
        self.env, self.driver = env, driver
        self._profile = profile
        self.frame_ages: list[float] = []
        self.repeated_frames = 0
        self._last_seq = -1

    def frames(self, qpos: np.ndarray) -> Images:
        t = time.perf_counter()
        try:
            if self.driver is None:
                return self.env.render_frames()
            newest = self.driver.newest(qpos)
            self.frame_ages.append(time.monotonic() - newest.captured)
            self.repeated_frames += newest.seq == self._last_seq
            self._last_seq = newest.seq
            return newest.images
        finally:
            self._profile.add("frames", time.perf_counter() - t)


class TimedArmEnv(SimArmEnv):
    """`SimArmEnv` whose `step` (physics + frames) is timed into the step profile."""

    def __init__(self, profile: StepProfile, **kwargs):
        super().__init__(**kwargs)
        self._profile = profile

    def step(self, action):
        t = time.perf_counter()
        try:
            return super().step(action)
        finally:
            self._profile.add("env_step", time.perf_counter() - t)


def cpu_times() -> list[int]:
    """The aggregate "cpu" line of /proc/stat (USER_HZ ticks; index 7 is steal), or []."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def steal_pct(before: list[int], after: list[int], wall: float) -> Optional[float]:
    """Share of CPU time the hypervisor gave to other guests during `wall` seconds (all CPUs)."""
    if len(before) < 8 or len(after) < 8 or wall <= 0:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return 100.0 * (after[7] - before[7]) / hz / (wall * (os.cpu_count() or 1))


def ms_summary(values) -> dict[str, float]:
    """Seconds as milliseconds: n, p50, p99, max, mean ({"n": 0} for none)."""
    a = np.asarray(list(values), dtype=np.float64) * 1e3
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)),
            "max": float(a.max()), "mean": float(a.mean())}
