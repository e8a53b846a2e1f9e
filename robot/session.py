"""Robot sessions: a policy acts, a person takes over with an input device, everything is recorded.

The loop is the same `RolloutRecorder` as simulated-expert recording (so the
crash-safe store, the schema and every flag are shared): the device is the
intervention model (`ExternalTakeover`) and the expert (its action), the
source of intervened steps is `Source.HUMAN`, and a `ControlRate` paces the
loop at the robot's control rate. Per-step timing is in each step's
`timestamp_us`; what happened around the data (device disconnects and
reconnects, clipped actions, control-loop overruns) goes to
`session_events.jsonl` next to the episodes, one JSON object per line, one
line per change of state (a condition that lasts is logged when it begins
and when it ends, not at every step). The input device's timeline starts at
the loop's first tick, and each finished episode is written on the store's
writer thread, durable before the next episode's first step.

The operator marks the current or the previous episode invalid from the
device (`robot.invalid_marks`: keys ``x`` / ``z``, a held SpaceMouse button
chord) with one of the session's preset reasons; the mark goes to the
recording's `invalid_episodes.jsonl` (`rlif_data.invalid`), an
``episode_marked_invalid`` event to the log, and a notice to the live status.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any, Callable, Optional, TextIO

import numpy as np

from rlif_data import intervention as iv
from rlif_data import schema as sc
from rlif_data.recording.recorder import RolloutRecorder, SessionInfo, SessionSummary
from rlif_data.recording.store import EpisodeStore, WriteTiming
from robot.env import RobotEnv
from robot.input_device import InputDevice
from robot.invalid_marks import DEFAULT_REASON, MarkController
from robot.live_status import LiveStatus
from robot.timing import ControlRate, period_stats

EVENTS_FILE = "session_events.jsonl"


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    """Metadata and pacing of a robot session.

    Attributes:
      out: recording directory.
      episodes: episodes to record.
      rate_hz: control rate.
      operator: who holds the input device.
      robot: robot name (stored as part of `env_id`: "<robot>/<task>").
      task: task name.
      policy_version: checkpoint or version of the policy.
      round: RLIF round number.
      seed: base seed.
      invalid_reasons: preset reasons of invalid marks (keys 1..9 choose; the first by default).
    """

    out: str
    episodes: int = 1
    rate_hz: float = 10.0
    operator: str = "operator"
    robot: str = "sim-arm"
    task: str = "reach"
    policy_version: str = ""
    round: int = 0
    seed: int = 0
    invalid_reasons: tuple[str, ...] = (DEFAULT_REASON,)


class EventLog:
    """Appends session events as JSON lines (flushed per line: a crash keeps them)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._file = open(path, "a", buffering=1)
        self.counts: dict[str, int] = {}

    def log(self, event: str, **fields: Any) -> None:
        """Write one event with a wall-clock time."""
        self.counts[event] = self.counts.get(event, 0) + 1
        self._file.write(json.dumps({"time": self._clock(), "event": event, **fields}) + "\n")

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def read_events(directory: str) -> list[dict[str, Any]]:
    """The events of a session directory, in order."""
    path = os.path.join(directory, EVENTS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def describe_events(counts: dict[str, int]) -> str:
    """The session's events for its summary line: how often each condition began. Pure.

    Args:
      counts: event name -> lines logged (`EventLog.counts`).

    Returns:
      e.g. ``"action_clipped 3, device_replay_finished 1 (in session_events.jsonl)"``, or "none".
    """
    begun = {k: v for k, v in sorted(counts.items()) if not k.endswith("_end")}
    if not begun:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in begun.items()) + f" (in {EVENTS_FILE})"


class _Watcher:
    """Observes each step: logs each change of the device's state once, feeds the live status.

    A condition that lasts (a latched takeover, a finished replay, a stuck
    button, clipped actions) is logged when it begins (``device_<flag>``,
    ``action_clipped``) and when it ends (``device_<flag>_end``,
    ``action_clipped_end`` with the number of steps), not at every step.
    The device's requests to mark an episode invalid go to `marks` (set
    once the recorder exists).
    """

    def __init__(self, env: RobotEnv, device: InputDevice, events: EventLog,
                 status: Optional[LiveStatus] = None):
        self._env = env
        self._device = device
        self._events = events
        self._status = status
        self._connected = True
        self._flags: frozenset[str] = frozenset()
        self._clipped_run = 0
        self.marks: Optional[MarkController] = None

    def __call__(self, episode_id: str, step: int, action: np.ndarray, timestep: Any) -> None:
        sample = self._device.read()
        if sample.connected != self._connected:
            self._connected = sample.connected
            self._events.log("device_disconnected" if not sample.connected else
                             "device_reconnected", episode=episode_id, step=step)
        flags = frozenset(f for f in sample.flags if f != "disconnected")
        for flag in sorted(flags - self._flags):
            self._events.log(f"device_{flag}", episode=episode_id, step=step)
        for flag in sorted(self._flags - flags):
            self._events.log(f"device_{flag}_end", episode=episode_id, step=step)
        self._flags = flags
        self._watch_clipping(episode_id, step, action)
        self._apply_marks(episode_id, step)
        if self._status is not None:
            self._status.step(step, sample.engaged, sample.flags)

    def _apply_marks(self, episode_id: str, step: int) -> None:
        for request in self._device.mark_requests():
            if self.marks is None:
                continue
            outcome = self.marks.apply(request)
            if outcome.mark is not None:
                mark = outcome.mark
                self._events.log("episode_marked_invalid", episode=mark.episode_id,
                                 which=outcome.which, reason=mark.reason, how=mark.how,
                                 during=episode_id, step=step)
            elif outcome.error:
                self._events.log("invalid_mark_refused", episode=episode_id, step=step,
                                 which=outcome.which, why=outcome.error)
            if self._status is not None:
                self._status.notice(outcome.text)

    def _watch_clipping(self, episode_id: str, step: int, action: np.ndarray) -> None:
        if self._env.last_action_clipped:
            if not self._clipped_run:  # what was asked at the first clipped step
                self._events.log("action_clipped", episode=episode_id, step=step,
                                 action=[float(x) for x in action])
            self._clipped_run += 1
        elif self._clipped_run:
            self._events.log("action_clipped_end", episode=episode_id, step=step,
                             steps=self._clipped_run)
            self._clipped_run = 0


class _TimelineStartsAtFirstTick:
    """The session's pacer; its first tick starts the input device's timeline.

    Everything before the loop (opening the store, loading envlogger and TFDS,
    the first reset and render) takes seconds; a replay started before it
    would be that far ahead, and its takeovers would land late or never.
    """

    def __init__(self, pacer: ControlRate, device: InputDevice):
        self._pacer = pacer
        self._device = device
        self._started = False

    def reset(self) -> None:
        """Start a new episode (see `ControlRate.reset`)."""
        self._pacer.reset()

    def wait(self) -> float:
        """Wait for the next tick (see `ControlRate.wait`); the first one starts the timeline."""
        late = self._pacer.wait()
        if not self._started:
            self._started = True
            self._device.start_timeline()
        return late


def _device_action(device: InputDevice, action_dim: int):
    """The operator's action, cut to the env's action size (sim arm: x, y translation)."""

    def act(observation) -> np.ndarray:
        del observation
        return np.asarray(device.read().action[:action_dim], np.float32)

    return act


def make_device(spec: str, clock: Callable[[], float] = time.monotonic) -> InputDevice:
    """An input device from its CLI name: "spacemouse", "keyboard" or "replay:FILE".

    Raises:
      ValueError: unknown device name.
    """
    if spec == "spacemouse":
        from robot.spacemouse_hid import SpaceMouseHID

        return SpaceMouseHID(clock=clock)
    if spec == "keyboard":
        from robot.keyboard_device import KeyboardDevice, TerminalKeySource

        return KeyboardDevice(TerminalKeySource(), clock=clock)
    if spec.startswith("replay:"):
        from robot.replay_device import ReplayDevice

        return ReplayDevice(spec.split(":", 1)[1], clock=clock)
    raise ValueError(f"unknown device {spec!r}; use spacemouse, keyboard or replay:FILE")


ROBOT_POLICIES = ("random", "noisy-reach")
"""Policy names of robot sessions; anything else is a `rlif_data.policies` spec."""

REACH_NOISE = 0.8
"""Noise std of "noisy-reach": weak enough that the operator has to take over."""


def make_policy(spec: str, env: Any, seed: int = 0) -> Callable[[Any], np.ndarray]:
    """The robot policy: "random", "noisy-reach" (a weak scripted learner) or a checkpoint dir.

    Args:
      spec: "noisy-reach" (`reach_expert` plus noise), or any
        `rlif_data.policies.from_spec` spec ("random", a checkpoint directory, ...).
      env: the robot env (its action spec gives the bounds).
      seed: seed of the policy's randomness.

    Returns:
      A policy over the env's dict observations (checkpoints see the state vector).

    Raises:
      ValueError: unknown spec; the message lists the names.
    """
    from rlif_data import policies
    from robot.env import reach_expert

    env_id = getattr(env, "env_id", type(env).__name__)
    if spec == "noisy-reach":
        return policies.from_spec("noisy-expert", env.action_spec(), env_id=env_id, seed=seed,
                                  expert=reach_expert(env), noise=REACH_NOISE,
                                  state_key=sc.STATE_KEY)
    if spec not in policies.SPEC_FACTORIES and policies.resolve_checkpoint(spec) is None:
        raise ValueError(f"unknown policy {spec!r}; use {', '.join(ROBOT_POLICIES)} "
                         "or a checkpoint directory")
    return policies.from_spec(spec, env.action_spec(), env_id=env_id, seed=seed,
                              state_key=sc.STATE_KEY)


def run_session(env: RobotEnv, device: InputDevice, policy: Callable[[Any], np.ndarray],
                schema: sc.EpisodeSchema, config: SessionConfig,
                pacer: Optional[ControlRate] = None, progress: bool = True,
                clock: Callable[[], float] = time.monotonic,
                on_write: Optional[Callable[[WriteTiming], None]] = None,
                status_stream: Optional[TextIO] = None,
                background_commit: bool = True) -> dict[str, Any]:
    """Record `config.episodes` episodes of policy control with human takeovers.

    The device's timeline (a replay's file times) starts at the loop's first
    tick (`InputDevice.start_timeline`), not when the device was started.

    Args:
      env: the robot environment (safety-clipped).
      device: a started input device.
      policy: ``policy(observation) -> action``.
      schema: recording schema matching `env`'s observations.
      config: session metadata and rate.
      pacer: control-rate pacer (default: `ControlRate(config.rate_hz)`).
      progress: show who is in control (`robot.live_status.LiveStatus`): a live
        line on a terminal, one line per episode elsewhere.
      clock: monotonic clock of the step timestamps (the pacer's and the device's).
      on_write: the store's timing hook (`EpisodeStore.on_write`), e.g. for benchmarks.
      status_stream: where the progress goes (default: standard error).
      background_commit: write each finished episode on the store's writer
        thread (see `StoreBackend`); False writes it inside the last control step.

    Returns:
      ``{"summary": SessionSummary, "timing": period_stats(...), "events": counts,
      "invalid": the marks made (`rlif_data.invalid.Mark`)}``.
    """
    pacer = pacer or ControlRate(config.rate_hz, clock=clock)
    status = LiveStatus(status_stream or sys.stderr, config.episodes) if progress else None
    store = EpisodeStore.open(config.out, schema,
                              metadata={"robot": config.robot, "task": config.task},
                              on_write=on_write)
    events = EventLog(os.path.join(store.directory, EVENTS_FILE))
    session = SessionInfo(
        env_id=f"{config.robot}/{config.task}", operator=config.operator, round=config.round,
        policy_version=config.policy_version, seed=config.seed, expert_source=sc.Source.HUMAN,
        always_query_expert=False,
    )
    watcher = _Watcher(env, device, events, status)
    recorder = RolloutRecorder(
        env, store, policy, _device_action(device, schema.action_dim),
        iv.ExternalTakeover(device, device=type(device).__name__), session,
        clock=clock, pacer=_TimelineStartsAtFirstTick(pacer, device),
        observer=watcher, background_commit=background_commit,
    )
    watcher.marks = MarkController(recorder.mark_invalid, config.invalid_reasons)
    results = []
    t0 = time.monotonic()
    overruns_before = pacer.overruns
    try:
        for index in range(config.episodes):
            if status is not None:
                status.begin_episode(index)
            result = recorder.run_episode()
            results.append(result)
            if status is not None:
                mark = watcher.marks.marked.get(result.episode_id)
                status.end_episode(result.transitions, result.intervened_steps,
                                   result.takeovers, mark.reason if mark else "")
        recorder.flush()
        if pacer.overruns > overruns_before:
            events.log("control_overruns", count=pacer.overruns - overruns_before)
    finally:
        if status is not None:
            status.close()
        try:
            recorder.close()
        finally:
            events.close()
    summary = SessionSummary(store.directory, recorder.session_id, results, store.num_episodes,
                             time.monotonic() - t0)
    return {"summary": summary, "timing": period_stats(pacer.periods, pacer.period),
            "events": dict(events.counts), "invalid": recorder.marks}
