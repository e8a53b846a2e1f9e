"""Control-loop timing of a robot session on the simulated arm: recording on vs off.

For each control rate (default 10 and 20 Hz) three sessions run one after the
other (interleaved idle, off, on), each one continuous session of
``--duration`` seconds on `robot.env.SimArmEnv` (Reacher-v5 arm, end-effector
delta actions) with two 128x128 RGB cameras:

  ``off``  a bare loop doing the per-step work of `RolloutRecorder.run_episode`
           minus the recording: policy ("noisy-reach"), input-device reads,
           `ExternalTakeover.decide`, the operator's action when engaged,
           `env.step`, the session watcher's device read; no envlogger, no
           store, no event log;
  ``on``   `robot.session.run_session`: the real `RolloutRecorder` +
           envlogger + `EpisodeStore` (one fsync'ed commit per episode, on
           the store's writer thread, which the next episode's reset waits
           for) + session event log;
  ``sync`` the same with ``background_commit=False``: the commit runs
           inside each episode's last control step, as before issue 13
           item 11 (the "before" of that change, measured in the same run);
  ``idle`` the pacer alone (reset per episode, a wait per step, no work): the
           machine's floor, i.e. how late this host wakes a sleeping thread.

All are paced by the same `robot.timing.ControlRate` on the real monotonic
clock, and off / on take input from a `ReplayDevice` playing a generated file in
which the operator takes over for 1.5 s every 5 s (so interventions happen).

Camera frames. Rendering in software (llvmpipe) on the control thread is not
what a camera costs a real robot, and a second thread rendering in software
competes for the GIL and the 2 cores. So frames come, as from a real camera
driver, from a background thread that publishes the newest frame of each
camera into a latest-frame slot at ``--camera-hz`` (default 30): a
`robot.cameras.CameraDriver`, which the env takes as its frame source
(`SimArmEnv.frame_source`) instead of rendering inline. ``--frames`` picks
what that thread does:

  ``pool``    (default) copies frames from a pool of real sim frames rendered
              up front (fresh buffers each capture, as a driver delivers them);
  ``render``  renders the live arm state with MuJoCo (software GL) each capture;
  ``inline``  no thread: `SimArmEnv` renders on the control thread, as the
              `robot-session` CLI does today.

What is measured. `ControlRate.periods` are the real wall-clock times between
consecutive ticks *within* an episode: `RolloutRecorder` calls
`ControlRate.reset()` at every episode start, so the period across an episode
boundary is never in them. That boundary is where the recorder's episode
commit happens: `StoreBackend` hands the episode over when its LAST timestep
arrives, i.e. inside the last `env.step` of the episode (a 100-step episode
serialises to ~10 MB of raw frames; array_record compresses it on disk), and
the writer thread commits it while the next episode resets (``on``), or the
last step commits it itself (``sync``). It is reported separately: the
commit time (the store's write: serialise, shard write + fsync + rename,
index; timed by the public `EpisodeStore.on_write` hook, so assembling the
episode's arrays is not in it), the "last step" (last tick to the next
episode's reset: assembly and commit included when sync), the episode
start (reset to first tick: env reset, and the wait for the writer), the
longest control step (``stepMax``: tick to next wait, last steps included),
and the whole boundary gap
(last tick of one episode to first tick of the next, env reset and episode
metadata included). On a real robot the reset between
episodes (moving the arm home) is where that time goes.

Per step the benchmark also records the work (tick return to next `wait`), its
parts (policy, device reads, env step, frame fetch, GC pauses) and how late
each tick woke after its deadline, which is where a missed deadline comes
from when the work itself is short.

The host matters: on a shared VM, wake-up lateness from other processes and
from the hypervisor (steal time) shows up in every mode, so each session also
records the load average and the steal time, and ``--priority fifo`` runs the
process under SCHED_FIFO as a robot host would run its control loop.

Targets (project issue): with recording on, p99 step period within 5 % of
the nominal period, and zero missed deadlines (period > 1.05 x nominal) in a
5-minute session (``--duration 300``).

Usage:
  .venv/bin/python benchmarks/control_loop.py                 # 8 sessions x 60 s, ~8.5 min
  .venv/bin/python benchmarks/control_loop.py --quick         # 8 sessions x 10 s, ~1.5 min
  .venv/bin/python benchmarks/control_loop.py --duration 300  # 5-minute sessions, ~31 min
"""

# Why this file is over ~450 lines: it is one experiment, read top to bottom
# (camera sources, the operator replay, the three loops, one session per
# cell, the report against the targets); the timing instruments it shares
# are in loop_probes.py and the camera driver is robot.cameras.

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `code_version()` runs `git status` (once, cached); never let it take the index lock.
os.environ.setdefault("GIT_OPTIONAL_LOCKS", "0")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

# Allow `python benchmarks/control_loop.py` from the repository root.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from rlif_data import episodes as ep  # noqa: E402
from rlif_data import intervention as iv  # noqa: E402
from rlif_data import schema as sc  # noqa: E402
from robot.cameras import CameraDriver, SimRenderCapture, pool_capture  # noqa: E402
from robot.env import SimArmEnv  # noqa: E402
from robot.replay_device import FORMAT_NAME, FORMAT_VERSION  # noqa: E402
from robot.session import SessionConfig, make_policy, run_session  # noqa: E402
from robot.timing import ControlRate, period_stats  # noqa: E402

from loop_probes import (  # benchmarks/ is on sys.path when run as a script
    GcMonitor, ProfiledFrames, StepProfile, Timed, TimedArmEnv, TimedReplayDevice, TracingRate,
    commit_timer, cpu_times, ms_summary, steal_pct)
from results_io import write_results

CAMERAS = ("front", "side")
FRAME_SIZE = 128
STATE_DIM = 10
ACTION_DIM = 2
TOLERANCE = 0.05  # a period > nominal * 1.05 is a missed deadline
TOUCH_EVERY_S = 5.0
TOUCH_HOLD_S = 1.5
SEED = 0
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           "control_loop.json")
PRIORITIES = ("normal", "nice", "fifo")
FRAME_SOURCES = {
    "pool": "background camera thread at {hz:g} Hz delivering copies of pre-rendered "
            "real sim frames (fresh buffers per capture)",
    "render": "background camera thread at {hz:g} Hz rendering the live arm state "
              "(MuJoCo, software GL)",
    "inline": "SimArmEnv renders both cameras on the control thread every step",
    "none": "no env, no cameras (idle: the pacer alone)",
}


# ---------------------------------------------------------------------------
# Cameras off the control thread.
# ---------------------------------------------------------------------------


def camera_driver(mode: str, env: SimArmEnv, hz: float,
                  pool: dict[str, list[np.ndarray]]) -> CameraDriver:
    """The `robot.cameras.CameraDriver` of frame source `mode` ("pool" or "render") for `env`."""
    if mode == "pool":
        return CameraDriver(pool_capture(pool), hz, name="camera-pool")
    if mode == "render":
        capture = SimRenderCapture(env.model, env.cameras, env.image_size)
        return CameraDriver(capture, hz, publish=capture.publish_state, name="camera-render")
    raise ValueError(f"unknown camera mode {mode!r}")


def render_frame_pool(n: int) -> tuple[dict[str, list[np.ndarray]], list[float]]:
    """`n` real frames per camera from a noisy-reach rollout, and the inline render time/step."""
    env = SimArmEnv(cameras=CAMERAS, image_size=FRAME_SIZE, max_steps=10 * n, seed=SEED)
    policy = make_policy("noisy-reach", env, seed=SEED)
    ts = env.reset()
    pool: dict[str, list[np.ndarray]] = {c: [] for c in CAMERAS}
    render_s = []
    for _ in range(n):
        for _ in range(3):
            ts = env.step(policy(ts.observation))
        t = time.perf_counter()
        frames = env.render_frames()
        render_s.append(time.perf_counter() - t)
        for c in CAMERAS:
            pool[c].append(frames[c])
    env.close()
    return pool, render_s[1:]  # the first call creates the renderer


# ---------------------------------------------------------------------------
# Input replay.
# ---------------------------------------------------------------------------


def write_replay(path: str, every: float = TOUCH_EVERY_S, hold: float = TOUCH_HOLD_S) -> None:
    """A looping replay: the operator pushes the arm for `hold` s at the end of every `every` s,
    in a direction that turns by 90 degrees from one touch to the next (4 touches per loop)."""
    lines = [{"format": FORMAT_NAME, "version": FORMAT_VERSION, "frame": "robot",
              "num_buttons": 2, "duration": 4 * every, "device": "generated"}]
    for k in range(4):
        start = k * every
        angle = k * math.pi / 2 + math.pi / 4
        lines.append({"t": start, "axes": [0.0] * 6, "buttons": [0, 0]})
        lines.append({"t": start + every - hold,
                      "axes": [0.7 * math.cos(angle), 0.7 * math.sin(angle), 0, 0, 0, 0],
                      "buttons": [0, 0]})
    with open(path, "w", encoding="utf-8") as f:
        for obj in lines:
            f.write(json.dumps(obj) + "\n")


# ---------------------------------------------------------------------------
# The two loops.
# ---------------------------------------------------------------------------


def bare_session(env, device, policy, episodes: int, pacer: ControlRate,
                 clock: Callable[[], float] = time.monotonic) -> dict[str, int]:
    """`RolloutRecorder.run_episode`'s per-step work as `run_session` wires it, minus recording.

    Per episode: model and policy reset with ``seed + index``, pacer reset,
    env reset. Per step: `pacer.wait()`, policy action (checked), the takeover
    model's decision (a device read), the operator's action when engaged (a
    device read), the step info, `env.step`, and the session watcher's device
    read and clip check.
    """
    model = iv.ExternalTakeover(device, device=type(device).__name__)

    def expert(observation) -> np.ndarray:
        del observation
        return np.asarray(device.read().action[:ACTION_DIM], np.float32)

    steps = intervened = 0
    for index in range(episodes):
        seed = SEED + index
        model.reset(seed=seed)
        if hasattr(policy, "reset"):
            policy.reset(seed=seed)
        pacer.reset()
        start = clock()
        timestep = env.reset()
        step = 0
        while not timestep.last():
            pacer.wait()
            obs = timestep.observation
            policy_action = ep.check_action(policy(obs), ACTION_DIM, "bare: policy action")
            intervene = model.decide(iv.DecisionContext(step, obs, policy_action, None))
            expert_action = (ep.check_action(expert(obs), ACTION_DIM, "bare: expert action")
                             if intervene else None)
            action = expert_action if intervene else policy_action
            ep.StepInfo(bool(intervene), policy_action, expert_action,
                        sc.Source.HUMAN if intervene else sc.Source.POLICY, clock() - start)
            timestep = env.step(action)
            sample = device.read()  # the session watcher's per-step check
            _ = (sample.connected, sample.flags, env.last_action_clipped)
            intervened += bool(intervene)
            step += 1
        steps += step
    return {"steps": steps, "intervened_steps": intervened}


def idle_session(episodes: int, episode_steps: int, pacer: ControlRate) -> dict[str, int]:
    """The machine's floor: the same pacing (reset per episode, a wait per step), no work."""
    for _ in range(episodes):
        pacer.reset()
        for _ in range(episode_steps):
            pacer.wait()
    return {"steps": episodes * episode_steps, "intervened_steps": 0}


def run_cell(rate: float, mode: str, frames: str, duration: float, episode_steps: int,
             camera_hz: float, pool, replay_path: str, tmp_root: str, policy_spec: str,
             measure: bool = True) -> dict[str, Any]:
    """One continuous session at `rate`; `mode` "on" / "sync" / "off" (recording) or "idle"."""
    episodes = max(1, math.ceil(duration * rate / episode_steps))
    profile = StepProfile()
    env = TimedArmEnv(profile, cameras=CAMERAS, image_size=FRAME_SIZE,
                      max_steps=episode_steps, seed=SEED)
    source = None
    if mode == "idle":
        frames = "none"
    elif frames != "inline":
        source = camera_driver(frames, env, camera_hz, pool)
    env.frame_source = fetch = ProfiledFrames(env, profile, source)
    device = TimedReplayDevice(replay_path, loop=True, profile=profile)
    policy = Timed(make_policy(policy_spec, env, seed=SEED), "policy", profile)
    schema = sc.camera_schema(STATE_DIM, ACTION_DIM, cameras=CAMERAS, size=FRAME_SIZE)
    pacer = TracingRate(rate, profile)
    commits: list[dict[str, float]] = []
    workdir = tempfile.mkdtemp(prefix=f"{mode}-{rate:g}hz-", dir=tmp_root)
    load_before, cpu_before = os.getloadavg(), cpu_times()
    out: dict[str, Any] = {}
    try:
        if source is not None:
            source.start()
        device.start()
        with GcMonitor(profile) as gcm:
            t0 = time.monotonic()
            if mode in ("on", "sync"):
                config = SessionConfig(out=workdir, episodes=episodes, rate_hz=rate,
                                       operator="replay", policy_version=policy_spec, seed=SEED)
                result = run_session(env, device, policy, schema, config, pacer=pacer,
                                     progress=False, on_write=commit_timer(profile, commits),
                                     background_commit=mode == "on")
                s = result["summary"]
                counts = {"steps": s.transitions,
                          "intervened_steps": sum(e.intervened_steps for e in s.episodes)}
                out["run_session_timing"] = result["timing"]
                out["session_events"] = result["events"]
            elif mode == "off":
                counts = bare_session(env, device, policy, episodes, pacer)
            else:
                counts = idle_session(episodes, episode_steps, pacer)
            pacer.finish()
            wall = time.monotonic() - t0
            cpu_after = cpu_times()
    finally:
        device.stop()
        if source is not None:
            source.stop()
        env.close()
        written = sum(os.path.getsize(os.path.join(workdir, f)) for f in os.listdir(workdir)
                      if os.path.isfile(os.path.join(workdir, f)))
        shutil.rmtree(workdir, ignore_errors=True)
    if not measure:
        return {}
    nominal = pacer.period
    stats = period_stats(pacer.periods, nominal, TOLERANCE)

    # Ticks -> lateness and the periods across episode boundaries.
    ticks = pacer.ticks
    lateness = [r - d for (_, i, d, r) in ticks if i > 0]
    boundary_gaps = [b[3] - a[3] for a, b in zip(ticks, ticks[1:]) if b[0] != a[0]]
    limit = nominal * (1 + TOLERANCE)
    rows = pacer.rows
    steps_rows = [r for r in rows if r["kind"] == "step"]
    last_rows = [r for r in rows if r["kind"] == "last_step"]
    start_rows = [r for r in rows if r["kind"] == "episode_start"]
    parts = sorted({k for r in steps_rows for k in r if k not in ("kind", "episode", "tick",
                                                                  "seconds")})
    work = {"total": ms_summary(r["seconds"] for r in steps_rows)}
    # The longest stretch of control-thread work between a tick and the next wait,
    # the episodes' last steps (where a sync commit lands) included.
    max_step = max((r["seconds"] for r in steps_rows + last_rows), default=0.0)
    for p in parts:
        work[p] = ms_summary(r.get(p, 0.0) for r in steps_rows)
    work["other"] = ms_summary(r["seconds"] - sum(r.get(p, 0.0) for p in parts
                                           if p not in ("frames",)) for r in steps_rows)
    # Longest in-episode periods, with the work of the step before and the tick's lateness.
    by_tick = {(e, i): (d, r) for (e, i, d, r) in ticks}
    step_row = {(r["episode"], r["tick"]): r for r in steps_rows}
    longest = []
    for (e, i, d, r) in ticks:
        if i == 0:
            continue
        period = r - by_tick[(e, i - 1)][1]
        longest.append((period, e, i, r - d, step_row.get((e, i - 1), {})))
    longest.sort(key=lambda x: -x[0])
    out.update({
        "rate_hz": rate, "mode": mode, "frames": frames,
        "frame_source": FRAME_SOURCES[frames].format(hz=camera_hz),
        "nominal_ms": nominal * 1e3,
        "duration_s": wall, "episodes": episodes, "episode_steps": episode_steps,
        "steps": counts["steps"],
        "intervened_fraction": counts["intervened_steps"] / max(counts["steps"], 1),
        "periods_in_episode": stats,
        "overruns": pacer.overruns,
        "max_control_step_ms": 1e3 * max_step,
        "lateness_ms": ms_summary(lateness),
        "work_ms": work,
        "longest_periods": [
            {"period_ms": p * 1e3, "episode": e, "tick": i, "late_ms": late * 1e3,
             "previous_step_ms": {k: v * 1e3 for k, v in row.items()
                                  if k not in ("kind", "episode", "tick")}}
            for p, e, i, late, row in longest[:5]],
        "boundaries": {
            "note": "not in periods_in_episode: RolloutRecorder resets the ControlRate at each "
                    "episode start; the recorder's commit runs inside each episode's last step",
            "count": len(boundary_gaps),
            "gap_ms": ms_summary(boundary_gaps),
            "gaps_over_limit": int(sum(g > limit for g in boundary_gaps)),
            "last_step_ms": ms_summary(r["seconds"] for r in last_rows),
            "commit_thread": sorted({c["thread"] for c in commits}),
            "episode_start_ms": ms_summary(r["seconds"] for r in start_rows[1:]),
            "commit_ms": ms_summary(c["commit_s"] for c in commits),
            "commit_parts_ms": {part: ms_summary(c[f"{part}_s"] for c in commits)
                                for part in ("serialize", "shard_write", "index")},
        },
        "periods_all_ms": {
            "note": "in-episode periods plus each boundary gap counted as one period",
            **{k: v for k, v in period_stats(list(pacer.periods) + boundary_gaps, nominal,
                                             TOLERANCE).items() if k != "p99_within_tolerance"},
        },
        "gc": {"collections": len(gcm.pauses), "max_pause_ms": 1e3 * max(
            (p for _, p in gcm.pauses), default=0.0),
            "gen2": sum(g == 2 for g, _ in gcm.pauses),
            "pauses_over_1ms": sum(p > 1e-3 for _, p in gcm.pauses)},
        "bytes_written": written,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "steal_pct": steal_pct(cpu_before, cpu_after, wall),
    })
    if source is not None:
        out["camera"] = {"hz": camera_hz, "capture_ms": ms_summary(source.capture_s[1:]),
                         "frame_age_ms": ms_summary(fetch.frame_ages),
                         "repeated_frames": fetch.repeated_frames}
    return out


# ---------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------


def targets(cells: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    out = {}
    for c in cells:
        if c["mode"] not in ("on", "sync"):
            continue
        key = f"{c['rate_hz']:g}hz_{c['frames']}" + ("_sync" if c["mode"] == "sync" else "")
        s = c["periods_in_episode"]
        limit = c["nominal_ms"] * (1 + TOLERANCE)
        out[key] = {
            "p99_within_5pct": {"p99_ms": s["p99_ms"], "limit_ms": limit,
                                "met": s["p99_ms"] <= limit},
            "zero_missed_deadlines": {"missed": s["missed_deadlines"],
                                      "session_s": round(c["duration_s"], 1),
                                      "five_minutes": duration >= 300,
                                      "met": s["missed_deadlines"] == 0},
            "boundary_gaps_over_limit": c["boundaries"]["gaps_over_limit"],
            "max_control_step_ms": c["max_control_step_ms"],
        }
    return out


def print_table(cells: list[dict[str, Any]], target_report: dict[str, Any]) -> None:
    header = (f"{'rate':>5} {'rec':<6} {'frames':<6} {'steps':>5} {'p50':>7} {'p99':>7} "
              f"{'max':>7} {'jit':>5} {'miss':>4} {'late99':>6} {'work50':>6} {'work99':>6} "
              f"{'stepMax':>7} | {'eps':>3} {'commit50':>8} {'commitMax':>9} {'lastMax':>7} "
              f"{'startMax':>8} {'gapMax':>7} {'load':>4} {'steal%':>6}")
    print(header)
    print("-" * len(header))
    for c in cells:
        s, b, w = c["periods_in_episode"], c["boundaries"], c["work_ms"]["total"]
        commit = b["commit_ms"]
        nan = float("nan")
        print(f"{c['rate_hz']:4g}Hz {c['mode']:<6} {c['frames']:<6} {s['steps']:5d} "
              f"{s['p50_ms']:7.2f} {s['p99_ms']:7.2f} {s['max_ms']:7.2f} {s['jitter_ms']:5.2f} "
              f"{s['missed_deadlines']:4d} {c['lateness_ms'].get('p99', 0):6.2f} "
              f"{w.get('p50', 0):6.2f} {w.get('p99', 0):6.2f} {c['max_control_step_ms']:7.1f} | "
              f"{c['episodes']:3d} "
              f"{commit.get('p50', nan):8.1f} {commit.get('max', nan):9.1f} "
              f"{b['last_step_ms'].get('max', nan):7.1f} "
              f"{b['episode_start_ms'].get('max', nan):8.1f} "
              f"{b['gap_ms'].get('max', nan):7.1f} {c['loadavg_after'][0]:4.1f} "
              f"{c['steal_pct'] if c['steal_pct'] is not None else float('nan'):6.1f}")
    print("ms. p50/p99/max/jit(std)/miss: in-episode periods (miss = period > 1.05 x nominal); "
          "late99: p99 of tick wake-up after its deadline;\nwork: tick -> next wait; stepMax: "
          "longest control step (tick -> next wait, the episodes' last steps included); commit: "
          "the store's episode write (EpisodeStore.on_write; on the writer thread when on, "
          "inside the last step when sync);\nlastMax: longest last step (last tick -> next "
          "reset); startMax: longest episode start (reset -> first tick: env reset + the wait "
          "for the writer); gapMax: longest period across an episode boundary;\n"
          "idle: pacer only (the machine's floor); "
          "load: 1-min loadavg after the session; steal%: CPU time taken by the hypervisor.")
    for key, t in target_report.items():
        p, m = t["p99_within_5pct"], t["zero_missed_deadlines"]
        span = "5-minute" if m["five_minutes"] else f"{m['session_s']:g} s (not 5-minute)"
        print(f"target {key} recording on: p99 {p['p99_ms']:.2f} <= {p['limit_ms']:.2f} ms -> "
              f"{'MET' if p['met'] else 'MISSED'}; missed deadlines in a {span} session: "
              f"{m['missed']} -> {'MET' if m['met'] else 'MISSED'} (episode boundaries over "
              f"the limit, excluded: {t['boundary_gaps_over_limit']})")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=None,
                   help="seconds per (rate, mode) session (default 60; --quick: 10)")
    p.add_argument("--rates", default="10,20", help="comma list of control rates in Hz")
    p.add_argument("--episode-steps", type=int, default=100, help="steps per episode")
    p.add_argument("--frames", default="pool",
                   help="comma list of frame sources: pool, render, inline (see the docstring)")
    p.add_argument("--camera-hz", type=float, default=30.0, help="camera thread capture rate")
    p.add_argument("--modes", default="idle,off,sync,on",
                   help="comma list: idle (pacer only, the machine's floor), off, sync "
                   "(recording, commit inside the last step), on (recording, commit on the "
                   "writer thread)")
    p.add_argument("--policy", default="noisy-reach", help="random or noisy-reach")
    p.add_argument("--priority", default="normal", choices=PRIORITIES,
                   help="scheduling of the benchmark process: normal (default), nice (-10) or "
                   "fifo (SCHED_FIFO 10, as a robot host would run its control loop); the "
                   "threads started later (camera) inherit it")
    p.add_argument("--quick", action="store_true", help="10 s per session")
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON results path")
    args = p.parse_args(argv)
    args.duration = args.duration or (10.0 if args.quick else 60.0)
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    args.frames = [f.strip() for f in args.frames.split(",") if f.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for f in args.frames:
        if f not in FRAME_SOURCES or f == "none":
            p.error(f"unknown frame source {f!r}; use pool, render or inline")
    for m in args.modes:
        if m not in ("idle", "on", "off", "sync"):
            p.error(f"unknown mode {m!r}; use idle, off, sync and/or on")
    if args.episode_steps < 2:
        p.error("--episode-steps must be >= 2")
    return args


def set_priority(kind: str) -> str:
    """Raise this process's scheduling priority; returns what was applied (or why not)."""
    try:
        if kind == "nice":
            os.setpriority(os.PRIO_PROCESS, 0, -10)
            return "nice -10"
        if kind == "fifo":
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            return "SCHED_FIFO priority 10"
    except (OSError, AttributeError) as exc:
        print(f"note: could not set priority {kind!r} ({exc}); running at normal priority",
              file=sys.stderr)
        return f"normal ({kind} refused: {exc})"
    return "normal"


def main(argv=None) -> int:
    args = parse_args(argv)
    priority = set_priority(args.priority)
    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()
    pool, render_s = render_frame_pool(32)
    print(f"inline render of {len(CAMERAS)} x {FRAME_SIZE}x{FRAME_SIZE} frames on this machine "
          f"(MUJOCO_GL={os.environ.get('MUJOCO_GL')}): p50 {1e3 * np.median(render_s):.1f} ms, "
          f"max {1e3 * max(render_s):.1f} ms per step", file=sys.stderr)
    tmp_root = tempfile.mkdtemp(prefix="rlif-control-loop-")
    replay = os.path.join(tmp_root, "operator.jsonl")
    write_replay(replay)
    cells = []
    try:
        # Warm-up (imports, TFDS features, first array_record writer, GL contexts): untimed.
        for mode in [m for m in args.modes if m != "idle"]:
            run_cell(args.rates[0], mode, args.frames[0], 0.5, 5, args.camera_hz, pool, replay,
                     tmp_root, args.policy, measure=False)
        for frames in args.frames:
            for rate in args.rates:
                for mode in args.modes:  # interleaved: idle, off, sync, on per rate
                    if mode == "idle" and frames != args.frames[0]:
                        continue  # the floor does not depend on the frame source
                    print(f"  {rate:g} Hz {mode:<4} frames={frames}: "
                          f"{args.duration:g} s ...", file=sys.stderr, flush=True)
                    cells.append(run_cell(rate, mode, frames, args.duration, args.episode_steps,
                                          args.camera_hz, pool, replay, tmp_root, args.policy))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    target_report = targets(cells, args.duration)
    print_table(cells, target_report)
    for frames in args.frames:
        print(f"frames={frames}: {FRAME_SOURCES[frames].format(hz=args.camera_hz)}")
    loads = [c["loadavg_before"][0] for c in cells] + [c["loadavg_after"][0] for c in cells]
    print(f"priority: {priority}; machine load (1-min loadavg, {os.cpu_count()} CPUs) during the "
          f"sessions: {min(loads):.1f}-{max(loads):.1f}")
    from importlib import metadata

    payload = {
        "benchmark": "control_loop",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "env": "SimArmEnv (Reacher-v5, end-effector deltas)",
        "cameras": list(CAMERAS), "frame_size": FRAME_SIZE,
        "frame_sources": {f: FRAME_SOURCES[f].format(hz=args.camera_hz) for f in args.frames},
        "inline_render_ms_per_step": ms_summary(render_s),
        "policy": args.policy,
        "operator": f"ReplayDevice, looping: a {TOUCH_HOLD_S:g} s push every {TOUCH_EVERY_S:g} s",
        "tolerance": TOLERANCE,
        "duration_per_session_s": args.duration, "episode_steps": args.episode_steps,
        "quick": args.quick,
        "priority": priority,
        "wall_s": time.perf_counter() - t_start,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "mujoco": metadata.version("mujoco"),
                    "envlogger": metadata.version("envlogger")},
        "cells": cells,
        "targets": target_report,
    }
    write_results(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
