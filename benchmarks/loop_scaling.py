"""How far this machine lets the jobs' per-episode work scale: one process vs two at once.

Issue 17 asks for 2 workers >= 1.7x of 1 worker "where the machine has 2
idle cores". `pipeline_throughput.parallel_capacity` answers that for pure
Python; this answers it for the jobs' own work, with no Beam and no Dask:
`pipeline_throughput.plain_loop` (read, the job's function, serialise, write
one shard; ``--check``: also the per-episode check every job runs) over

  ``1 process``    all the episodes;
  ``2 processes``  the first and the second half, started together.

Each process loads its imports, waits until every process of the round is
ready, then runs the loop twice and keeps the second (a process's first
pass pays its caches and heap growth, as in `pipeline_throughput`). A round
takes the slowest process's time; rounds alternate 1 and 2 processes. The
ratio ``1 process / 2 processes`` is the most a 2-worker job could reach
here (its shards do this work, plus start-up and the driver's part).

Usage:
  .venv/bin/python benchmarks/loop_scaling.py                 # 1M steps, 4 rounds, ~2 min
  .venv/bin/python benchmarks/loop_scaling.py --quick         # 50k steps, 2 rounds, ~25 s
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for path in (_ROOT, _HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import pipeline_throughput as pt  # noqa: E402  (inputs and the plain loop, one copy)
from results_io import write_results  # noqa: E402

DEFAULT_OUT = os.path.join(pt.RESULTS, "loop_scaling.json")
QUICK_OUT = os.path.join(pt.RESULTS, "loop_scaling_quick.json")
JOBS = ("relabel", "downsample")


def loop_pass(job: str, inputs: dict, lo: int, hi: int, check: bool, out: str) -> float:
    """Seconds of one plain-loop pass over episodes [lo, hi) of `job`'s input: the benchmark's
    ``plain`` (with `check`: ``plain_checked``) loop, except that downsample keeps every other
    episode of the range instead of the job's seeded selection (the same count of equal-length
    episodes, and no selection pass in the child)."""
    from rlif_data import relabel as rl

    if job == "relabel":
        seconds, *_ = pt.plain_loop(inputs["recording"]["path"], out, list(range(lo, hi)),
                                    lambda e: rl.relabel_episode(e, pt.VIEW),
                                    pt.relabelled_schema(),
                                    check_view=pt.VIEW if check else False)
    else:
        seconds, *_ = pt.plain_loop(inputs["built"]["path"], out, list(range(lo, hi, 2)),
                                    lambda e: e, pt.SCHEMA,
                                    check_view=None if check else False)
    return seconds


def child_main(request: dict) -> int:
    """One process of a round: imports, 'ready', wait for 'go', two passes, print the second."""
    pt.quiet_logging()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    passes = []
    for _ in range(2):
        out = tempfile.mkdtemp(dir=request["tmp"])
        shutil.rmtree(out)  # plain_loop makes it
        passes.append(loop_pass(request["job"], request["inputs"], request["lo"], request["hi"],
                                request["check"], out))
        shutil.rmtree(out)
    print(json.dumps({"seconds": passes[-1]}))
    return 0


def timed_round(job: str, inputs: dict, halves: list[tuple[int, int]], check: bool,
                tmp: str) -> float:
    """Start one process per (lo, hi), release them together; the slowest second pass."""
    procs = []
    try:
        for lo, hi in halves:
            request = {"job": job, "inputs": inputs, "lo": lo, "hi": hi, "check": check,
                       "tmp": tmp}
            procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--child", json.dumps(request)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, cwd=_ROOT))
        for proc in procs:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {job} loop process failed to start (run it alone)")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        seconds = []
        for proc in procs:
            stdout, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"a {job} loop process exited with {proc.returncode}")
            seconds.append(json.loads(stdout.strip().splitlines()[-1])["seconds"])
        return max(seconds)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main(argv=None) -> int:
    """Run the rounds, print a table and one summary line, write the results JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=None,
                   help="total input transitions (default 1,000,000; --quick: 50,000)")
    p.add_argument("--episode-steps", type=int, default=1000, help="transitions per episode")
    p.add_argument("--repeats", type=int, default=4, help="rounds of each (interleaved)")
    p.add_argument("--cache-dir", default=pt.DEFAULT_CACHE, help="generated inputs (reused)")
    p.add_argument("--quick", action="store_true", help="50k steps, 2 rounds")
    p.add_argument("--out", default=None, help="results JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)  # one loop process of a round
    args = p.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    steps = args.steps or (50_000 if args.quick else 1_000_000)
    repeats = 2 if args.quick and args.repeats == 4 else args.repeats
    out_path = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    episodes = steps // args.episode_steps
    pt.quiet_logging()
    t_start = time.perf_counter()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    inputs = pt.ensure_inputs(args.cache_dir, episodes, args.episode_steps,
                              {"recording", "built"}, os.path.splitext(out_path)[0] + ".log")
    half = episodes // 2
    results: dict = {}
    tmp = tempfile.mkdtemp(prefix="loop_scaling_")
    try:
        for job in JOBS:
            for check in (False, True):
                name = f"{job}{'+check' if check else ''}"
                one, two, capacity = [], [], []
                for _ in range(repeats):
                    capacity.append(pt.parallel_capacity())
                    one.append(timed_round(job, inputs, [(0, episodes)], check, tmp))
                    two.append(timed_round(job, inputs, [(0, half), (half, episodes)], check,
                                           tmp))
                results[name] = {"one_process_s": one, "two_processes_s": two,
                                 "capacity": capacity,
                                 "speedup": statistics.median(one) / statistics.median(two)}
                print(f"{name:18s} 1 process {statistics.median(one):6.3f} s  2 processes "
                      f"{statistics.median(two):6.3f} s  -> {results[name]['speedup']:.2f}x  "
                      f"(cap {min(capacity):.2f}-{max(capacity):.2f})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    worst = min(r["speedup"] for r in results.values())
    best = max(r["speedup"] for r in results.values())
    print(f"2 processes / 1 process of the plain loop: {worst:.2f}-{best:.2f}x over {len(results)} "
          f"workloads ({steps:,} steps, medians of {repeats})")
    write_results(out_path, {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "steps": steps, "episode_steps": args.episode_steps, "repeats": repeats,
        "results": results, "wall_s": time.perf_counter() - t_start,
        "command": " ".join([os.path.relpath(sys.argv[0], _ROOT)] + sys.argv[1:])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
