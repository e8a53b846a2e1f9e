"""Per-step recording cost: bare env loop vs envlogger's TFDS backend vs our recorder.

Measures steps/s of three variants that run the *same* control loop
(learner policy, expert, intervention model, dm_env step):

  (a) ``bare``            the loop with no logging at all;
  (b) ``envlogger_tfds``  envlogger 1.2's plain ``TFDSBackendWriter`` wrapping the env;
  (c) ``recorder``        our ``RolloutRecorder`` over an ``EpisodeStore`` (one
                          durable, fsync'ed commit per episode).

for two observation layouts:

  ``state``   HalfCheetah-v5's 17-dim float32 state (6-dim action);
  ``camera``  the same state plus two 128x128 RGB uint8 frames ("front", "wrist").

Camera frames: MuJoCo renders in software here (~100 ms a frame), which is not
what we measure, so a small pool of frames is rendered once up front and the
observation function hands out fresh copies of them each step, as a camera
driver would deliver new buffers at the control rate. The copy happens in all
variants, so it cancels in the overhead.

Timing covers each run from the first reset to the end of ``close()``, so the
episode-end work (our per-episode commit, envlogger's shard writes and final
flush) is included. Building the writer (dataset_info, lock) is reported
separately as ``setup_ms``. Variants are interleaved (a, b, c, a, b, c, ...)
and the median of ``--repeats`` runs is reported.

Targets (project issue): our recorder costs at most 1 ms per step over the
bare loop for state-only data, and stays under 10 % of a 10 Hz control period
(10 ms) for the camera case.

Usage:
  .venv/bin/python benchmarks/record_overhead.py            # defaults, ~3-4 minutes
  .venv/bin/python benchmarks/record_overhead.py --quick    # smoke run
"""

# Why this file is over ~450 lines: it is one experiment, read top to bottom
# (the environments and schemas of the two cases, the shared control loop,
# the five variants, the interleaved runs and the report against the
# targets); splitting it would scatter one measurement over files.

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

import numpy as np  # noqa: E402

# Allow `python benchmarks/record_overhead.py` from the repository root.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from dm_env import specs  # noqa: E402

from rlif_data import schema as sc  # noqa: E402
from rlif_data.envs.gym_dm_env import GymnasiumDmEnv  # noqa: E402
from rlif_data.intervention import DecisionContext, RandomTakeover  # noqa: E402
from rlif_data.policies import RandomPolicy  # noqa: E402

from results_io import write_results  # benchmarks/ is on sys.path when run as a script

ENV_ID = "HalfCheetah-v5"  # 17-dim state, 6-dim action, never terminates: fixed episode lengths
STATE_DIM = 17
ACTION_DIM = 6
CAMERAS = ("front", "wrist")
FRAME_SIZE = 128
INTERVENTION_RATE = 0.5
SEED = 0
CONTROL_PERIOD_MS = 10.0  # 10 Hz
STATE_TARGET_MS = 1.0
CAMERA_TARGET_FRACTION = 0.10
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           "record_overhead.json")


# ---------------------------------------------------------------------------
# Environments and observations.
# ---------------------------------------------------------------------------


def _make_gym(max_episode_steps: int):
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(ENV_ID, max_episode_steps=max_episode_steps)


def render_frame_pool(n: int, synthetic: bool = False) -> tuple[dict[str, list[np.ndarray]], str]:
    """`n` 128x128 RGB frames per camera, rendered once from the real env.

    "front" is MuJoCo's free camera, "wrist" the model's "track" camera. Falls
    back to synthetic frames (smooth gradients plus noise, so PNG sizes stay
    realistic) when rendering is unavailable or `synthetic` is set.
    """
    if not synthetic:
        try:
            import mujoco

            env = _make_gym(1000)
            env.reset(seed=SEED)
            model, data = env.unwrapped.model, env.unwrapped.data
            renderer = mujoco.Renderer(model, FRAME_SIZE, FRAME_SIZE)
            rng = np.random.default_rng(SEED)
            pool: dict[str, list[np.ndarray]] = {cam: [] for cam in CAMERAS}
            for _ in range(n):
                for _ in range(5):
                    env.step(rng.uniform(-1, 1, ACTION_DIM).astype(np.float32))
                for cam, camera in zip(CAMERAS, (-1, "track")):
                    renderer.update_scene(data, camera=camera)
                    pool[cam].append(np.array(renderer.render(), dtype=np.uint8))
            renderer.close()
            env.close()
            return pool, f"rendered (MUJOCO_GL={os.environ.get('MUJOCO_GL')})"
        except Exception as exc:  # no GL here: synthetic frames are as good for raw storage
            print(f"note: rendering failed ({type(exc).__name__}: {exc}); using synthetic frames",
                  file=sys.stderr)
    rng = np.random.default_rng(SEED)
    yy, xx = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE]
    pool = {cam: [] for cam in CAMERAS}
    for i in range(n):
        for j, cam in enumerate(CAMERAS):
            base = np.stack([(xx + 8 * i) % 256, (yy + 16 * j) % 256, (xx + yy + 4 * i) % 256], -1)
            noise = rng.integers(0, 16, base.shape)
            pool[cam].append((base + noise).clip(0, 255).astype(np.uint8))
    return pool, "synthetic"


class CameraObservation:
    """`observation_fn`: the float32 state plus a fresh copy of one frame per camera."""

    def __init__(self, pool: dict[str, list[np.ndarray]]):
        self._pool = pool
        self._n = len(next(iter(pool.values())))
        self._i = 0

    def __call__(self, obs: np.ndarray, env: Any) -> dict[str, np.ndarray]:
        del env
        i = self._i % self._n
        self._i += 1
        out = {"state": np.asarray(obs, dtype=np.float32)}
        for cam in CAMERAS:
            out[cam] = self._pool[cam][i].copy()
        return out

    @staticmethod
    def spec() -> dict[str, specs.Array]:
        out = {"state": specs.Array((STATE_DIM,), np.float32, name="state")}
        for cam in CAMERAS:
            out[cam] = specs.Array((FRAME_SIZE, FRAME_SIZE, 3), np.uint8, name=cam)
        return out


def make_env(case: str, episode_steps: int, pool: Optional[dict]) -> GymnasiumDmEnv:
    """A fresh dm_env for `case` ("state" or "camera"); seeded identically every time."""
    gym_env = _make_gym(episode_steps)
    if case == "state":
        return GymnasiumDmEnv(gym_env, seed=SEED)
    obs_fn = CameraObservation(pool)
    return GymnasiumDmEnv(gym_env, seed=SEED, observation_fn=obs_fn,
                          observation_spec=obs_fn.spec())


def make_schema(case: str, encoding: str = "raw") -> sc.EpisodeSchema:
    if case == "state":
        return sc.vector_schema(STATE_DIM, ACTION_DIM)
    return sc.camera_schema(STATE_DIM, ACTION_DIM, cameras=CAMERAS, size=FRAME_SIZE,
                            encoding=encoding)


def plain_ds_config(schema: sc.EpisodeSchema):
    """envlogger's TFDS backend config: our features, without step/episode metadata.

    envlogger's TFDS backend cannot store our `StepInfo` step metadata (it
    writes `custom_data` nowhere), so it gets the same observation/action/
    reward/discount features and no metadata, and no `step_fn`.
    """
    import tensorflow_datasets as tfds

    full = sc.dataset_config(schema)
    return tfds.rlds.rlds_base.DatasetConfig(
        name=full.name,
        overall_description=full.overall_description,
        observation_info=full.observation_info,
        action_info=full.action_info,
        reward_info=full.reward_info,
        discount_info=full.discount_info,
    )


# ---------------------------------------------------------------------------
# The control loop.
# ---------------------------------------------------------------------------


class Controller:
    """Learner, expert and intervention model, reset per episode like `RolloutRecorder`."""

    def __init__(self, action_spec):
        low, high = action_spec.minimum, action_spec.maximum
        self.policy = RandomPolicy(low, high, seed=SEED)
        self.expert = RandomPolicy(low, high, seed=SEED + 1)  # a cheap stand-in expert
        self.model = RandomTakeover(INTERVENTION_RATE, seed=SEED)


class StepTimer:
    """Wraps a dm_env-like object and keeps the longest single reset/step call.

    `add_to_last_call` charges work done inside the latest call but outside
    the wrapped env (the recorder's episode write, reported by the store's
    `on_write` hook while the env's last step is in flight) to that call.
    """

    def __init__(self, env):
        self._env = env
        self.max_call_s = 0.0
        self._last_s = 0.0

    def _timed(self, fn, *args):
        t = time.perf_counter()
        ts = fn(*args)
        self._last_s = time.perf_counter() - t
        self.max_call_s = max(self.max_call_s, self._last_s)
        return ts

    def reset(self):
        return self._timed(self._env.reset)

    def step(self, action):
        return self._timed(self._env.step, action)

    def add_to_last_call(self, seconds: float) -> None:
        self._last_s += seconds
        self.max_call_s = max(self.max_call_s, self._last_s)

    def close(self):
        self._env.close()

    def __getattr__(self, name):
        return getattr(self._env, name)


def control_loop(env, ctl: Controller, num_episodes: int) -> int:
    """The per-step work of `RolloutRecorder.run_episode`, minus the recording.

    Per episode: model/policy/expert reset with seed + index. Per step:
    policy action, expert action (``always_query_expert``), `model.decide`,
    choose, `env.step`, accumulate the return. Returns the number of steps.
    """
    steps = 0
    for index in range(num_episodes):
        seed = SEED + index
        ctl.model.reset(seed=seed)
        ctl.policy.reset(seed=seed)
        ctl.expert.reset(seed=seed)
        timestep = env.reset()
        step = 0
        ret = 0.0
        while not timestep.last():
            obs = timestep.observation
            policy_action = ctl.policy(obs)
            expert_action = ctl.expert(obs)
            intervene = ctl.model.decide(DecisionContext(step, obs, policy_action, expert_action))
            action = expert_action if intervene else policy_action
            timestep = env.step(action)
            ret += float(timestep.reward)
            step += 1
        steps += step
    return steps


# ---------------------------------------------------------------------------
# Variants. Each returns (setup_s, run_s, close_s, steps, max_call_s).
# ---------------------------------------------------------------------------

RunResult = tuple[float, float, float, int, float]


def run_bare(case: str, episode_steps: int, num_episodes: int, pool, workdir: str,
             encoding: str = "raw") -> RunResult:
    del workdir, encoding
    env = make_env(case, episode_steps, pool)
    ctl = Controller(env.action_spec())
    timed = StepTimer(env)
    t0 = time.perf_counter()
    steps = control_loop(timed, ctl, num_episodes)
    t1 = time.perf_counter()
    timed.close()
    t2 = time.perf_counter()
    return 0.0, t2 - t0, t2 - t1, steps, timed.max_call_s


def run_envlogger_tfds(case: str, episode_steps: int, num_episodes: int, pool, workdir: str,
                       encoding: str = "raw") -> RunResult:
    import envlogger
    from envlogger.backends.tfds_backend_writer import TFDSBackendWriter

    env = make_env(case, episode_steps, pool)
    ctl = Controller(env.action_spec())
    config = plain_ds_config(make_schema(case, encoding))
    ts = time.perf_counter()
    backend = TFDSBackendWriter(data_directory=workdir, ds_config=config,
                                max_episodes_per_file=1000)  # envlogger's default
    logged = envlogger.EnvLogger(env, backend=backend)
    setup = time.perf_counter() - ts
    timed = StepTimer(logged)
    t0 = time.perf_counter()
    steps = control_loop(timed, ctl, num_episodes)
    t1 = time.perf_counter()
    timed.close()  # writes the last episode, closes the shard, writes dataset_info
    t2 = time.perf_counter()
    return setup, t2 - t0, t2 - t1, steps, timed.max_call_s


def run_recorder(case: str, episode_steps: int, num_episodes: int, pool, workdir: str,
                 encoding: str = "raw") -> RunResult:
    from rlif_data.recording.recorder import RolloutRecorder, SessionInfo
    from rlif_data.recording.store import EpisodeStore

    env = make_env(case, episode_steps, pool)
    ctl = Controller(env.action_spec())
    schema = make_schema(case, encoding)
    # The longest step: the env's step plus the episode write the recorder does
    # inside the LAST step (the store's public timing hook reports it).
    timed = StepTimer(env)
    ts = time.perf_counter()
    store = EpisodeStore.open(workdir, schema, metadata={"env_id": ENV_ID},
                              on_write=lambda timing: timed.add_to_last_call(timing.total_s))
    recorder = RolloutRecorder(timed, store, ctl.policy, ctl.expert, ctl.model,
                               SessionInfo(env_id=ENV_ID, operator="random", seed=SEED))
    setup = time.perf_counter() - ts
    t0 = time.perf_counter()
    steps = sum(recorder.run_episode().transitions for _ in range(num_episodes))
    t1 = time.perf_counter()
    recorder.close()
    t2 = time.perf_counter()
    return setup, t2 - t0, t2 - t1, steps, timed.max_call_s


VARIANTS: dict[str, tuple[Callable[..., RunResult], str]] = {
    "bare": (run_bare, "raw"),
    "envlogger_tfds": (run_envlogger_tfds, "raw"),
    "recorder": (run_recorder, "raw"),
    "envlogger_tfds_png": (run_envlogger_tfds, "png"),
    "recorder_png": (run_recorder, "png"),
}


# ---------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------


def bench_case(case: str, steps: int, episode_steps: int, repeats: int, variants: list[str],
               pool, tmp_root: str, warmup: bool) -> dict[str, Any]:
    num_episodes = max(1, math.ceil(steps / episode_steps))
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}

    def one(variant: str, n_eps: int, ep_steps: int) -> RunResult:
        fn, encoding = VARIANTS[variant]
        workdir = tempfile.mkdtemp(prefix=f"{case}-{variant}-", dir=tmp_root)
        try:
            return fn(case, ep_steps, n_eps, pool, workdir, encoding)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    if warmup:  # imports, TFDS feature building, first array_record/TFRecord writers
        for variant in variants:
            one(variant, 1, 20)
    for r in range(repeats):
        for variant in variants:
            setup, run_s, close_s, n, max_call = one(variant, num_episodes, episode_steps)
            runs[variant].append({"setup_s": setup, "run_s": run_s, "close_s": close_s,
                                  "steps": n, "max_call_s": max_call,
                                  "steps_per_s": n / run_s})
            print(f"  [{case}] repeat {r + 1}/{repeats} {variant:<19} "
                  f"{n / run_s:9.0f} steps/s", file=sys.stderr, flush=True)

    summary: dict[str, Any] = {}
    for variant, rs in runs.items():
        sps = statistics.median(r["steps_per_s"] for r in rs)
        summary[variant] = {
            "steps_per_s": sps,
            "ms_per_step": 1000.0 / sps,
            "setup_ms": 1000.0 * statistics.median(r["setup_s"] for r in rs),
            "close_ms": 1000.0 * statistics.median(r["close_s"] for r in rs),
            "max_call_ms": 1000.0 * statistics.median(r["max_call_s"] for r in rs),
            "runs": rs,
        }
    bare = summary.get("bare")
    for variant, s in summary.items():
        if bare is None:
            break
        s["overhead_ms_per_step"] = s["ms_per_step"] - bare["ms_per_step"]
        s["ratio_to_bare"] = s["ms_per_step"] / bare["ms_per_step"]
        s["overhead_pct_of_10hz"] = 100.0 * s["overhead_ms_per_step"] / CONTROL_PERIOD_MS
    return {"steps_per_run": num_episodes * episode_steps, "episode_steps": episode_steps,
            "episodes_per_run": num_episodes, "repeats": repeats, "variants": summary}


def targets(results: dict[str, Any]) -> dict[str, Any]:
    out = {}
    state = results.get("state", {}).get("variants", {}).get("recorder")
    if state and "overhead_ms_per_step" in state:
        out["state_overhead_le_1ms"] = {
            "overhead_ms": state["overhead_ms_per_step"], "limit_ms": STATE_TARGET_MS,
            "met": state["overhead_ms_per_step"] <= STATE_TARGET_MS}
    cam = results.get("camera", {}).get("variants", {}).get("recorder")
    if cam and "overhead_ms_per_step" in cam:
        limit = CAMERA_TARGET_FRACTION * CONTROL_PERIOD_MS
        out["camera_overhead_lt_10pct_of_10hz"] = {
            "overhead_ms": cam["overhead_ms_per_step"], "limit_ms": limit,
            "pct_of_period": cam["overhead_pct_of_10hz"],
            "met": cam["overhead_ms_per_step"] < limit}
    return out


def print_table(results: dict[str, Any], target_report: dict[str, Any]) -> None:
    header = (f"{'case':<7} {'variant':<19} {'steps/s':>9} {'ms/step':>8} {'+ms/step':>9} "
              f"{'x bare':>7} {'%10Hz':>6} {'close ms':>9} {'max step ms':>12}")
    print(header)
    print("-" * len(header))
    for case, res in results.items():
        for variant, s in res["variants"].items():
            print(f"{case:<7} {variant:<19} {s['steps_per_s']:9.0f} {s['ms_per_step']:8.4f} "
                  f"{s.get('overhead_ms_per_step', float('nan')):+9.4f} "
                  f"{s.get('ratio_to_bare', float('nan')):7.2f} "
                  f"{s.get('overhead_pct_of_10hz', float('nan')):6.2f} "
                  f"{s['close_ms']:9.1f} {s['max_call_ms']:12.1f}")
        print(f"{'':<7} ({res['steps_per_run']} steps/run = {res['episodes_per_run']} x "
              f"{res['episode_steps']}-step episodes, median of {res['repeats']})")
    for name, t in target_report.items():
        extra = f", {t['pct_of_period']:.2f} % of 10 ms" if "pct_of_period" in t else ""
        print(f"target {name}: {t['overhead_ms']:+.4f} ms/step (limit {t['limit_ms']} ms{extra})"
              f" -> {'MET' if t['met'] else 'MISSED'}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=None,
                   help="total steps per run, state case (default 5000; --quick: 300)")
    p.add_argument("--camera-steps", type=int, default=None,
                   help="total steps per run, camera case (default 1000; --quick: 200); "
                   "raw frames currently cost ~20 ms/step to store, so 1000 keeps the "
                   "default run near 3 minutes")
    p.add_argument("--episode-steps", type=int, default=None,
                   help="episode length (time limit) (default 500; --quick: 100)")
    p.add_argument("--repeats", type=int, default=None, help="runs per variant (default 3)")
    p.add_argument("--cases", default="state,camera", help="comma list of state,camera")
    p.add_argument("--no-png", action="store_true",
                   help="skip the PNG-encoded camera variants")
    p.add_argument("--synthetic-frames", action="store_true",
                   help="do not render the camera frame pool; use synthetic frames")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON results path")
    args = p.parse_args(argv)
    q = args.quick
    args.steps = args.steps or (300 if q else 5000)
    args.camera_steps = args.camera_steps or (200 if q else 1000)
    args.episode_steps = args.episode_steps or (100 if q else 500)
    args.repeats = args.repeats or (1 if q else 3)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in args.cases:
        if c not in ("state", "camera"):
            p.error(f"unknown case {c!r}; use state and/or camera")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    pool, frames = (None, "none")
    if "camera" in args.cases:
        pool, frames = render_frame_pool(8 if args.quick else 16, args.synthetic_frames)
    results: dict[str, Any] = {}
    tmp_root = tempfile.mkdtemp(prefix="rlif-record-overhead-")
    try:
        for case in args.cases:
            variants = ["bare", "envlogger_tfds", "recorder"]
            if case == "camera" and not args.no_png:
                variants += ["envlogger_tfds_png", "recorder_png"]
            steps = args.steps if case == "state" else args.camera_steps
            results[case] = bench_case(case, steps, args.episode_steps, args.repeats,
                                       variants, pool, tmp_root, warmup=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    target_report = targets(results)
    print_table(results, target_report)
    from importlib import metadata

    payload = {
        "benchmark": "record_overhead",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "env_id": ENV_ID,
        "state_dim": STATE_DIM,
        "action_dim": ACTION_DIM,
        "cameras": list(CAMERAS),
        "frame_size": FRAME_SIZE,
        "frames": frames,
        "takeover_model": {"model": "RandomTakeover", "rate": INTERVENTION_RATE},
        "quick": args.quick,
        "wall_s": time.perf_counter() - t_start,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "envlogger": metadata.version("envlogger"),
                    "tensorflow_datasets": metadata.version("tensorflow-datasets")},
        "results": results,
        "targets": target_report,
    }
    write_results(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
