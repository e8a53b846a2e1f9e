"""The two-camera part of `pipeline_throughput.py`: relabel bytes/s beside `cp` of the same input.

Input (generated once, cached under ``benchmarks/results/cache/cams/``):
episodes of an 11-dim state, 3-dim actions and two 128x128 RGB cameras stored
raw (the size and encoding `record --camera` uses), written through the real
`EpisodeStore` (one shard per episode). Frames are a smooth texture panned by
the step plus seeded sensor noise (sigma 2 levels), so the shards' compression
(array_record's default zstd:3) meets what a real camera gives it: close to
nothing, unlike flat colour or a pure texture.

Measured, in one run and each on the same input directory:

  ``cp``         ``cp -r INPUT OUT`` (what moving the bytes costs: the floor);
  ``relabel``    ``pipelines.relabel.run`` per Beam variant (the whole call:
                 start-up, read, relabel, serialise, write, the output check,
                 rename); bytes/s is the input's size on disk over the wall time,
                 and steps/s its transitions over it;
  ``check``      the job's own data check (per episode on its workers, the
                 rest in the driver): both parts' seconds, from the lineage.

Run by ``pipeline_throughput.py`` (``--camera-steps``, ``--camera-modes``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

from rlif_data import episodes as ep
from rlif_data import schema as sc

CAMERAS = ("front", "wrist")
STATE_DIM, ACTION_DIM, SIZE = 11, 3, 128
EPISODE_STEPS = 200
NOISE_SIGMA = 2.0
GENERATOR_VERSION = 1
SCHEMA = sc.camera_schema(STATE_DIM, ACTION_DIM, CAMERAS, SIZE, name="cams_bench")


def texture(seed: int) -> np.ndarray:
    """A smooth random RGB texture, twice the frame size (frames are windows of it)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (2 * SIZE // 8, 2 * SIZE // 8, 3)).astype(np.float32)
    big = np.kron(coarse, np.ones((8, 8, 1), np.float32))
    for axis in (0, 1):  # blur the blocks into gradients
        big = (big + np.roll(big, 4, axis) + np.roll(big, -4, axis)) / 3
    return big


def make_episode(i: int, steps: int, textures: list) -> dict[str, Any]:
    """Episode i: random state/actions, ~30 % intervened, two noisy cameras panning."""
    rng = np.random.default_rng((7, i))
    flags = rng.random(steps) < 0.3
    obs = {sc.STATE_KEY: rng.normal(size=(steps + 1, STATE_DIM)).astype(np.float32)}
    for k, name in enumerate(CAMERAS):
        offsets = [(t * (k + 1) + i) % SIZE for t in range(steps + 1)]
        frames = np.stack([textures[k][o:o + SIZE, (o // 2):(o // 2) + SIZE] for o in offsets])
        frames += rng.normal(0, NOISE_SIGMA, frames.shape).astype(np.float32)
        obs[name] = np.clip(frames, 0, 255).astype(np.uint8)
    policy = rng.uniform(-1, 1, (steps, ACTION_DIM))
    expert = rng.uniform(-1, 1, (steps, ACTION_DIM))
    step_arrays = ep.build_steps(
        obs, np.where(flags[:, None], expert, policy), rng.normal(size=steps), np.ones(steps),
        terminated=False, intervention=flags, policy_actions=policy, expert_actions=expert,
        has_expert_action=np.ones(steps, bool),
        source=np.where(flags, int(sc.Source.EXPERT), int(sc.Source.POLICY)),
        timestamps=np.arange(steps) * 0.1)
    meta = ep.complete_metadata({sc.EPISODE_ID: f"cams-bench/{i}", sc.ENV_ID: "sim-arm/reach",
                                 sc.OPERATOR: "random"}, "bench")
    return {**meta, sc.STEPS: step_arrays}


def dir_bytes(directory: str) -> int:
    """Bytes of the regular files directly under `directory`."""
    return sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory)
               if os.path.isfile(os.path.join(directory, n)))


def ensure_input(cache_dir: str, total_steps: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The cached two-camera recording of about `total_steps` transitions (made if missing)."""
    from rlif_data.recording.reader import EpisodeReader
    from rlif_data.recording.store import EpisodeStore

    episodes = max(1, total_steps // EPISODE_STEPS)
    spec = {"episodes": episodes, "steps": EPISODE_STEPS, "size": SIZE, "cameras": list(CAMERAS),
            "noise": NOISE_SIGMA, "generator": GENERATOR_VERSION, "format": sc.FORMAT_VERSION}
    directory = os.path.join(cache_dir, "cams", f"cams-{episodes}x{EPISODE_STEPS}")
    marker = os.path.join(directory, ".bench-complete.json")
    seconds = 0.0
    try:
        with open(marker) as f:
            fresh = json.load(f) != spec
        if not fresh:
            with EpisodeReader(directory, repair=False) as reader:
                fresh = len(reader) != episodes
    except (OSError, ValueError):
        fresh = True
    if fresh:
        shutil.rmtree(directory, ignore_errors=True)
        log(f"generating {episodes} x {EPISODE_STEPS} steps, two {SIZE}x{SIZE} cameras "
            f"-> {directory}")
        t0 = time.perf_counter()
        textures = [texture(k) for k in range(len(CAMERAS))]
        with EpisodeStore.open(directory, SCHEMA) as store:
            for i in range(episodes):
                store.write_episode(make_episode(i, EPISODE_STEPS, textures))
        seconds = time.perf_counter() - t0
        with open(marker, "w") as f:
            json.dump(spec, f)
        log(f"  generated in {seconds:.1f} s")
    raw = (EPISODE_STEPS + 1) * episodes * len(CAMERAS) * SIZE * SIZE * 3
    return {"path": directory, "episodes": episodes, "transitions": episodes * EPISODE_STEPS,
            "bytes": dir_bytes(directory), "raw_frame_bytes": raw, "generated_s": seconds}


def time_cp(src: str, dst: str) -> float:
    """Wall seconds of ``cp -r src dst`` (a fresh process, as a user runs it)."""
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", src, dst], check=True)
    return time.perf_counter() - t0


def read_through(directory: str) -> None:
    """Read every file under `directory` once, into the page cache.

    Done before the timings, so that `cp` and every relabel start from the
    same cache: otherwise `cp` runs first on whatever of the input the cache
    still holds (3.6 s in run 8, 2.8 s after this) and pulls in the rest for
    the relabels after it.
    """
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while f.read(8 << 20):
                    pass


def run(inputs: dict[str, Any], modes: list[str], beam_args: Callable[[str], list[str]],
        tmp_root: str, capacity: Callable[[], float], cpu_seconds: Callable[[], float],
        quiet: Callable[[], Any], log: Callable[[str], None]) -> dict[str, Any]:
    """Time `cp` and relabel (each of `modes`) on the camera input, its files read once first.

    Args:
      inputs: `ensure_input`'s result.
      modes: Beam variants of `pipeline_throughput.BEAM_MODES`, or "default"
        (no runner flags: the job picks its mode by size).
      beam_args: a variant's Beam options.
      tmp_root: where outputs go (each removed after its run).
      capacity, cpu_seconds, quiet: `pipeline_throughput`'s parallel capacity
        probe, CPU clock and output redirection.

    Returns:
      ``{variant: {seconds, bytes_per_s, steps_per_s, cpu_s, capacity_before,
      load_before, check_cpu_s, mode}}`` with ``cp`` among the variants.
    """
    from pipelines import relabel

    src, size, steps = inputs["path"], inputs["bytes"], inputs["transitions"]
    read_through(src)
    out: dict[str, Any] = {}
    for name in ["cp", *modes]:
        dst = os.path.join(tmp_root, f"cams-{name}")
        cap, load, cpu0 = capacity(), os.getloadavg()[0], cpu_seconds()
        meta: dict[str, Any] = {}
        if name == "cp":
            seconds = time_cp(src, dst)
        else:
            args = [] if name == "default" else beam_args(name)
            with quiet():
                t0 = time.perf_counter()
                relabel.run(src, dst, "paper", args or None)
                seconds = time.perf_counter() - t0
            with open(os.path.join(dst, sc.METADATA_FILE)) as f:
                lineage = json.load(f)["lineage"]
            check_cpu = lineage["check"]["seconds"] + lineage["check"]["worker_seconds"]
            meta = {"check_cpu_s": check_cpu, "mode": lineage["run"]["mode"],
                    "workers": lineage["run"]["workers"], "out_bytes": dir_bytes(dst)}
        cpu = cpu_seconds() - cpu0
        shutil.rmtree(dst, ignore_errors=True)
        out[name] = {"seconds": seconds, "bytes_per_s": size / seconds,
                     "steps_per_s": steps / seconds, "cpu_s": cpu, "capacity_before": cap,
                     "load_before": load, **meta}
        log(f"  cameras {name:<9} {seconds:7.1f} s {size / seconds / 1e6:8.1f} MB/s "
            f"{steps / seconds:8.0f} steps/s  cpu {cpu:6.1f} s  (load before {load:.2f}, "
            f"capacity {cap:.2f})")
    return out


def print_table(inputs: dict[str, Any], results: dict[str, Any]) -> None:
    """The camera rows: seconds, MB/s of the input on disk, steps/s, x cp."""
    print(f"two cameras: {inputs['transitions']} steps = {inputs['episodes']} x {EPISODE_STEPS}, "
          f"2 x {SIZE}x{SIZE} RGB raw + {STATE_DIM}-dim state; input {inputs['bytes'] / 1e6:.0f} "
          f"MB on disk ({inputs['raw_frame_bytes'] / 1e6:.0f} MB of frames before compression)")
    header = (f"{'variant':<10} {'mode':<16} {'workers':>7} {'seconds':>8} {'MB/s':>8} "
              f"{'steps/s':>8} {'x cp':>6} {'check':>8} {'cpu s':>7} {'cap':>4}")
    print(header)
    print("-" * len(header))
    cp = results.get("cp", {}).get("bytes_per_s")
    for name, r in results.items():
        ratio = f"{r['bytes_per_s'] / cp:6.3f}" if cp else ""
        check = f"{r['check_cpu_s']:8.1f}" if "check_cpu_s" in r else ""
        print(f"{name:<10} {r.get('mode', '-'):<16} {r.get('workers', 1):>7} "
              f"{r['seconds']:8.1f} {r['bytes_per_s'] / 1e6:8.1f} {r['steps_per_s']:8.0f} "
              f"{ratio:>6} {check:>8} {r['cpu_s']:7.1f} {r['capacity_before']:4.2f}")
    print("MB/s: the input's bytes on disk over the wall time; x cp: relabel's bytes/s over cp's "
          "of the same directory; check: CPU s of the job's own data check (workers + "
          "driver), inside its cpu s")


if __name__ == "__main__":
    sys.exit("run benchmarks/pipeline_throughput.py (--camera-steps N)")
