"""Robot sessions: a policy acts, a person takes over with an input device, everything is recorded.

The loop is the same `RolloutRecorder` as simulated-expert recording (so the
crash-safe store, the schema and every flag are shared): the device is the
intervention model (`ExternalTakeover`) and the expert (its action), the
source of intervened steps is `Source.HUMAN`, and a `ControlRate` paces the
loop at the robot's control rate. Per-step timing is in each step's
`timestamp_us`; what happened around the data (device disconnects and
reconnects, clipped actions, control-loop overruns) goes to
`session_events.jsonl` next to the episodes, one JSON object per line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Optional

import numpy as np

from rlif_data import intervention as iv
from rlif_data import schema as sc
from rlif_data.recording.recorder import RolloutRecorder, SessionInfo, SessionSummary
from rlif_data.recording.store import EpisodeStore, WriteTiming
from robot.env import RobotEnv
from robot.input_device import InputDevice
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


class _Watcher:
    """Observes each step: device connection changes, device flags, clipped actions."""

    def __init__(self, env: RobotEnv, device: InputDevice, events: EventLog):
        self._env = env
        self._device = device
        self._events = events
        self._connected = True

    def __call__(self, episode_id: str, step: int, action: np.ndarray, timestep: Any) -> None:
        sample = self._device.read()
        if sample.connected != self._connected:
            self._connected = sample.connected
            self._events.log("device_disconnected" if not sample.connected else
                             "device_reconnected", episode=episode_id, step=step)
        for flag in sample.flags:
            if flag != "disconnected":
                self._events.log(f"device_{flag}", episode=episode_id, step=step)
        if self._env.last_action_clipped:
            self._events.log("action_clipped", episode=episode_id, step=step,
                             action=[float(x) for x in action])


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
                on_write: Optional[Callable[[WriteTiming], None]] = None) -> dict[str, Any]:
    """Record `config.episodes` episodes of policy control with human takeovers.

    Args:
      env: the robot environment (safety-clipped).
      device: a started input device.
      policy: ``policy(observation) -> action``.
      schema: recording schema matching `env`'s observations.
      config: session metadata and rate.
      pacer: control-rate pacer (default: `ControlRate(config.rate_hz)`).
      progress: show a progress bar.
      clock: monotonic clock of the step timestamps (the pacer's and the device's).
      on_write: the store's timing hook (`EpisodeStore.on_write`), e.g. for benchmarks.

    Returns:
      ``{"summary": SessionSummary, "timing": period_stats(...), "events": counts}``.
    """
    from tqdm.auto import tqdm

    pacer = pacer or ControlRate(config.rate_hz, clock=clock)
    store = EpisodeStore.open(config.out, schema,
                              metadata={"robot": config.robot, "task": config.task},
                              on_write=on_write)
    events = EventLog(os.path.join(store.directory, EVENTS_FILE))
    session = SessionInfo(
        env_id=f"{config.robot}/{config.task}", operator=config.operator, round=config.round,
        policy_version=config.policy_version, seed=config.seed, expert_source=sc.Source.HUMAN,
        always_query_expert=False,
    )
    recorder = RolloutRecorder(
        env, store, policy, _device_action(device, schema.action_dim),
        iv.ExternalTakeover(device, device=type(device).__name__), session,
        clock=clock, pacer=pacer, observer=_Watcher(env, device, events),
    )
    results = []
    t0 = time.monotonic()
    overruns_before = pacer.overruns
    try:
        with tqdm(total=config.episodes, desc="session", unit="ep", disable=not progress) as bar:
            for _ in range(config.episodes):
                results.append(recorder.run_episode())
                bar.update(1)
        if pacer.overruns > overruns_before:
            events.log("control_overruns", count=pacer.overruns - overruns_before)
    finally:
        total = store.num_episodes
        recorder.close()
        events.close()
    summary = SessionSummary(store.directory, recorder.session_id, results, total,
                             time.monotonic() - t0)
    return {"summary": summary, "timing": period_stats(pacer.periods, pacer.period),
            "events": dict(events.counts)}
