"""Time from ``name@tag`` to a filled buffer, first and second load, beside h5py on a D4RL file.

Data: ``--transitions`` (default 1,000,000) transitions in episodes of
``--episode-steps`` (1000) steps, 17-dim float32 observations, 6-dim actions,
~30 % i.i.d. intervention flags, written as a real recording (`EpisodeStore`)
and published into a registry in a temporary root as ``bench-load@latest``.
The same transitions are written to an HDF5 file in D4RL's layout
(``observations, actions, rewards, terminals, timeouts, next_observations``).

Timed, interleaved, median of ``--repeats`` (all on a warm page cache: each
input is read once, untimed, before the runs):

* ``h5py``: open the D4RL file and read the six arrays into memory (what a
  D4RL loader does before any buffer exists): the reference.
* ``h5py + buffer``: the same, then the arrays copied into a `ReplayBuffer`.
* ``first load``: `load_transitions("bench-load@latest", reward="env")` with an
  empty cache directory (resolve, size-check, decode every episode, write
  the cache entry), then `ReplayBuffer.insert`.
* ``second load``: the same call again (cache hit: memory-map + CRC-32 check
  of every column), then `ReplayBuffer.insert`.
* ``second load, mapped``: the cache hit alone: the memory-mapped
  `Transitions` are what the RLPD sampler draws offline batches from.

Target (project issue): second load <= 2x h5py. The trainer samples its
offline half straight from the mapped `Transitions` (`MixedSampler`), so the
target is checked on ``second load, mapped``; the copy into a `ReplayBuffer`
(what online data gets) is reported beside it, with and without the target,
and so is h5py followed by the same copy.

Usage:
  .venv/bin/python benchmarks/load_transitions.py           # 1M transitions, ~3 min on 2 cores
  .venv/bin/python benchmarks/load_transitions.py --quick   # 50k transitions, ~20 s
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from rlif_data import episodes as ep  # noqa: E402
from rlif_data import schema as sc  # noqa: E402
from rlif_data.registry.store import Registry  # noqa: E402
from trainers.data import ReplayBuffer, Transitions, load_transitions  # noqa: E402

from results_io import write_results  # benchmarks/ is on sys.path when run as a script

NAME = "bench-load"
STATE_DIM = 17
ACTION_DIM = 6
INTERVENTION_RATE = 0.3
SEED = 0
TARGET_RATIO = 2.0
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_OUT = os.path.join(RESULTS, "load_transitions.json")
QUICK_OUT = os.path.join(RESULTS, "load_transitions_quick.json")
# D4RL's keys (file layout, not rlif schema fields).
D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")


def log(msg: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(msg, file=sys.stderr, flush=True)


def make_episode(i: int, steps: int) -> dict[str, Any]:
    """Episode `i`: seeded random states/actions/rewards, time-limit truncated at the end."""
    rng = np.random.default_rng((SEED, i))
    flags = rng.random(steps) < INTERVENTION_RATE
    step_arrays = ep.build_steps(
        rng.normal(size=(steps + 1, STATE_DIM)).astype(np.float32),
        rng.uniform(-1, 1, (steps, ACTION_DIM)).astype(np.float32),
        rng.normal(size=steps).astype(np.float32),
        np.ones(steps, np.float32),
        terminated=False,
        intervention=flags,
        source=np.where(flags, int(sc.Source.EXPERT), int(sc.Source.POLICY)),
    )
    meta = ep.complete_metadata({sc.EPISODE_ID: f"bench/{i}", sc.ENV_ID: "HalfCheetah-v5",
                                 sc.SEED: i}, "bench")
    return {**meta, sc.STEPS: step_arrays}


def generate(workdir: str, episodes: int, steps: int) -> tuple[str, str]:
    """Write the recording and the D4RL file; returns (recording dir, hdf5 path)."""
    import h5py

    from rlif_data.recording.store import EpisodeStore

    rec = os.path.join(workdir, "recording")
    path = os.path.join(workdir, "bench-load.hdf5")
    n = episodes * steps
    with h5py.File(path, "w") as f:
        data = {
            "observations": f.create_dataset("observations", (n, STATE_DIM), np.float32),
            "next_observations": f.create_dataset("next_observations", (n, STATE_DIM), np.float32),
            "actions": f.create_dataset("actions", (n, ACTION_DIM), np.float32),
            "rewards": f.create_dataset("rewards", (n,), np.float32),
            "terminals": f.create_dataset("terminals", (n,), bool),
            "timeouts": f.create_dataset("timeouts", (n,), bool),
        }
        schema = sc.vector_schema(STATE_DIM, ACTION_DIM, name="bench_load")
        with EpisodeStore.open(rec, schema) as store:
            for i in range(episodes):
                episode = make_episode(i, steps)
                store.write_episode(episode)
                s = episode[sc.STEPS]
                rows = slice(i * steps, (i + 1) * steps)
                data["observations"][rows] = s[sc.OBSERVATION][:-1]
                data["next_observations"][rows] = s[sc.OBSERVATION][1:]
                data["actions"][rows] = s[sc.ACTION][:-1]
                data["rewards"][rows] = s[sc.REWARD][:-1]
                timeouts = np.zeros(steps, bool)
                timeouts[-1] = True
                data["timeouts"][rows] = timeouts
                if i % 100 == 0:
                    log(f"  generated {i}/{episodes} episodes")
    return rec, path


def read_h5py(path: str) -> dict[str, np.ndarray]:
    """The D4RL loader's part: every array of the file into memory."""
    import h5py

    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in D4RL_KEYS}


def d4rl_transitions(data: dict[str, np.ndarray]) -> Transitions:
    """D4RL arrays as `Transitions` (discount 0 on terminals), for the same buffer fill."""
    n = len(data["actions"])
    return Transitions(
        observations=data["observations"], actions=data["actions"], rewards=data["rewards"],
        discounts=(~data["terminals"]).astype(np.float32),
        next_observations=data["next_observations"], intervention=np.zeros(n, bool),
        episode_ids=np.zeros(n, np.int32), step_index=np.zeros(n, np.int32),
        episode_names=("dataset d4rl, episode 0",), reward_mode="env")


def fill(transitions: Transitions) -> ReplayBuffer:
    """A buffer of exactly the data's size, filled."""
    buffer = ReplayBuffer.like(transitions, capacity=len(transitions))
    buffer.insert(transitions)
    return buffer


def warm(paths: list[str]) -> None:
    """Read files once (untimed) so every variant runs on a warm page cache."""
    for top in paths:
        walk = ([(os.path.dirname(top), [], [os.path.basename(top)])] if os.path.isfile(top)
                else os.walk(top))
        for root, _, files in walk:
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    while f.read(16 << 20):
                        pass


def time_it(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate, publish, time every variant; returns the results payload."""
    t_start = time.perf_counter()
    episodes = max(args.transitions // args.episode_steps, 1)
    n = episodes * args.episode_steps
    workdir = tempfile.mkdtemp(prefix="bench-load-", dir=args.tmp)
    try:
        log(f"generating {n} transitions ({episodes} x {args.episode_steps}) in {workdir}")
        gen_s, (rec, h5) = time_it(lambda: generate(workdir, episodes, args.episode_steps))
        root = os.path.join(workdir, "registry")
        pub_s, info = time_it(lambda: Registry(root).publish(rec, NAME))
        log(f"  generated in {gen_s:.1f} s, published {info.ref} ({info.size / 2**20:.0f} MiB) "
            f"in {pub_s:.1f} s")
        shutil.rmtree(rec)
        ref = f"{NAME}@latest"
        times: dict[str, list[float]] = {k: [] for k in (
            "h5py", "h5py + buffer", "first load", "first load + buffer", "second load, mapped",
            "second load + buffer")}
        for r in range(args.repeats):
            cache_dir = os.path.join(workdir, f"cache-{r}")
            warm([h5, info.path])
            s, data = time_it(lambda: read_h5py(h5))
            times["h5py"].append(s)
            s, _ = time_it(lambda: fill(d4rl_transitions(read_h5py(h5))))
            times["h5py + buffer"].append(s)
            del data
            s, (t, sources) = time_it(lambda: load_transitions(ref, reward="env", root=root,
                                                               cache_dir=cache_dir))
            assert sources[0].cache == "built" and len(t) == n
            times["first load"].append(s)
            s_fill, _ = time_it(lambda: fill(t))
            times["first load + buffer"].append(s + s_fill)
            del t
            warm([cache_dir])
            s, (t, sources) = time_it(lambda: load_transitions(ref, reward="env", root=root,
                                                               cache_dir=cache_dir))
            assert sources[0].cache == "hit" and len(t) == n
            times["second load, mapped"].append(s)
            del t
            s, _ = time_it(lambda: fill(load_transitions(ref, reward="env", root=root,
                                                         cache_dir=cache_dir)[0]))
            times["second load + buffer"].append(s)
            shutil.rmtree(cache_dir)
            log(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(
                f"{k} {v[-1]:.3f} s" for k, v in times.items()))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratios = {k: med[k] / med["h5py"] for k in med}
        payload = {
            "benchmark": "load_transitions",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "host": {"python": platform.python_version(), "cpus": os.cpu_count(),
                     "load_before": os.getloadavg()},
            "params": {"transitions": n, "episodes": episodes, "episode_steps": args.episode_steps,
                       "state_dim": STATE_DIM, "action_dim": ACTION_DIM, "repeats": args.repeats},
            "dataset_mib": info.size / 2**20,
            "generate_s": gen_s,
            "publish_s": pub_s,
            "seconds": times,
            "median_s": med,
            "ratio_to_h5py": ratios,
            "target": {"max_ratio": TARGET_RATIO,
                       "second_load_mapped_ratio": ratios["second load, mapped"],
                       "pass": ratios["second load, mapped"] <= TARGET_RATIO,
                       "second_load_buffer_ratio": ratios["second load + buffer"],
                       "buffer_pass": ratios["second load + buffer"] <= TARGET_RATIO},
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    payload["wall_s"] = time.perf_counter() - t_start
    return payload


def print_table(payload: dict[str, Any]) -> None:
    """The result as a fixed-width table."""
    n = payload["params"]["transitions"]
    print(f"{n} transitions, {payload['dataset_mib']:.0f} MiB published, median of "
          f"{payload['params']['repeats']}, load {payload['host']['load_before'][0]:.1f}")
    print(f"{'variant':24s} {'seconds':>8s} {'M tr/s':>7s} {'x h5py':>7s}")
    for key, s in payload["median_s"].items():
        print(f"{key:24s} {s:8.3f} {n / s / 1e6:7.2f} {payload['ratio_to_h5py'][key]:7.2f}")
    t = payload["target"]
    print(f"second load, mapped (what the sampler draws from) <= {t['max_ratio']}x h5py: "
          f"{'PASS' if t['pass'] else 'MISS'} ({t['second_load_mapped_ratio']:.2f}x)")
    print(f"second load + ReplayBuffer copy <= {t['max_ratio']}x h5py: "
          f"{'PASS' if t['buffer_pass'] else 'MISS'} ({t['second_load_buffer_ratio']:.2f}x; "
          f"h5py + the same copy: {payload['ratio_to_h5py']['h5py + buffer']:.2f}x)")


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--episode-steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", default=None, help="where temporary data goes")
    parser.add_argument("--out", default=None)
    parser.add_argument("--quick", action="store_true", help="50k transitions, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.transitions, args.repeats = 50_000, 1
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    return args


def main(argv=None) -> int:
    """Run, print the table, write the JSON; exit 0 whatever the target says."""
    args = parse_args(argv)
    payload = run(args)
    print_table(payload)
    write_results(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
