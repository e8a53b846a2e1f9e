"""`rlif-data check` throughput beside the relabel job's, on the same data, in the same run.

Input: the relabel job's real input, a recording of N transitions (17-dim
state, 6-dim actions, 1,000-step episodes, ~30 % intervened; one shard per
episode, written through `EpisodeStore`), generated once and cached under
``benchmarks/results/cache/check/`` (by `pipeline_throughput.py`'s generator).

Measured, interleaved over ``--repeats`` rounds:

  ``check``    `rlif_data.checks.check_dataset` over the recording (every
               check; the env's action bounds included), with
               ``--check-workers`` processes (default 0: its own choice by the
               data's size and the cores idle at that moment, see
               `rlif_data.check_workers.check_recording`; 1: one process). The
               processes each run used are in the results (``processes``).
  ``relabel``  `pipelines.relabel.run` (``paper`` view) as a user runs it:
               default options, i.e. the DirectRunner in the mode the job
               picks by size (`pipelines.runners.choose_direct_mode`; since
               run 7 of docs/scaling.md, in-process up to 320 MiB, so for
               the 1M-step input; before, 2 worker processes), the whole call
               timed (start-up, decode, relabel, encode, check, write,
               rename). The mode is in the results (``relabel.mode``).

Target (project issue 14): a check costs at most 25 % of a relabel pass,
i.e. ``check_s / relabel_s <= 0.25`` (medians of wall time). The CPU-time
ratio (this process with its check workers, and Beam's workers) is reported
beside it: on a shared 2-core machine, wall time also counts the time spent
waiting for a core.

Usage:
  .venv/bin/python benchmarks/check_throughput.py           # 1M steps (~6 min on 2 cores,
                                                            # +~4 min to generate once)
  .venv/bin/python benchmarks/check_throughput.py --quick   # 50k steps, ~1 min
  ... --relabel-workers 2    # relabel on 2 DirectRunner worker processes (the default before run 7)
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for path in (_ROOT, _HERE):
    if path not in sys.path:
        sys.path.insert(0, path)
# Beam's worker processes inherit PYTHONPATH and must import `pipelines`.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

import pipeline_throughput as pt  # noqa: E402  (input generation and helpers, one copy)
from results_io import write_results  # noqa: E402

TARGET_RATIO = 0.25
DEFAULT_OUT = os.path.join(pt.RESULTS, "check_throughput.json")
QUICK_OUT = os.path.join(pt.RESULTS, "check_throughput_quick.json")
# Its own cache folder: another benchmark regenerating the shared one would pull the
# input away mid-run.
DEFAULT_CACHE = os.path.join(pt.DEFAULT_CACHE, "check")


def time_check(directory: str, workers: int = 0) -> dict:
    """One `check_dataset` pass: seconds, CPU seconds (its worker processes' included),
    findings, processes used."""
    from rlif_data.checks import check_dataset

    cpu0, t0 = pt.cpu_seconds(), time.perf_counter()
    report = check_dataset(directory, workers=workers)
    return {"s": time.perf_counter() - t0, "cpu_s": pt.cpu_seconds() - cpu0,
            "steps": report.steps, "findings": len(report.findings),
            "processes": report.processes, "load_1min": os.getloadavg()[0]}


def time_relabel(directory: str, scratch: str, chatter: str,
                 beam_args: Optional[list[str]] = None) -> dict:
    """One `pipelines.relabel.run` (paper view; default options unless `beam_args`): seconds,
    CPU, its mode."""
    from pipelines import output, relabel

    out = tempfile.mkdtemp(prefix="relabel-", dir=scratch)
    os.rmdir(out)  # the job refuses an existing output
    cpu0, t0 = pt.cpu_seconds(), time.perf_counter()
    with pt.RedirectedOutput(chatter):
        relabel.run(directory, out, pt.VIEW, beam_args or output.default_beam_args())
    seconds = time.perf_counter() - t0
    result = {"s": seconds, "cpu_s": pt.cpu_seconds() - cpu0, "steps": None,
              "mode": pt.output_lineage(out).get("run", {}).get("mode")}
    shutil.rmtree(out, ignore_errors=True)
    return result


def main(argv=None) -> None:
    """Generate (or reuse) the input, time check and relabel, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k steps, 1 repeat")
    parser.add_argument("--steps", type=int, default=None, help="transitions (default 1M)")
    parser.add_argument("--episode-steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=None, help="default 2 (quick: 1)")
    parser.add_argument("--check-workers", type=int, default=0,
                        help="check_dataset's workers: 0 its own choice (default), 1 one process")
    parser.add_argument("--relabel-workers", type=int, default=0,
                        help="relabel on N DirectRunner worker processes (default 0: the job's "
                             "own choice by size, as a user runs it)")
    parser.add_argument("--cache", default=DEFAULT_CACHE)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    steps = args.steps or (50_000 if args.quick else 1_000_000)
    repeats = args.repeats or (1 if args.quick else 2)
    out_path = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    episodes = max(1, steps // args.episode_steps)
    relabel_args = ([f"--direct_num_workers={args.relabel_workers}",
                     "--direct_running_mode=multi_processing"] if args.relabel_workers else None)
    pt.quiet_logging()
    wall0 = time.perf_counter()
    scratch = tempfile.mkdtemp(prefix="check-bench-")
    chatter = os.path.join(scratch, "chatter.log")
    try:
        inputs = pt.ensure_inputs(args.cache, episodes, args.episode_steps, {"recording"},
                                  chatter)
        directory = inputs["recording"]["path"]
        transitions = inputs["recording"]["transitions"]
        capacity = pt.parallel_capacity()
        # Warm-up: imports, the env's bounds, the page cache.
        time_check(directory, args.check_workers)
        runs: dict[str, list[dict]] = {"check": [], "relabel": []}
        for r in range(repeats):
            runs["check"].append(time_check(directory, args.check_workers))
            pt.log(f"[{r + 1}/{repeats}] check   {runs['check'][-1]['s']:7.2f} s "
                   f"({runs['check'][-1]['processes']} process(es))")
            runs["relabel"].append(time_relabel(directory, scratch, chatter, relabel_args))
            pt.log(f"[{r + 1}/{repeats}] relabel {runs['relabel'][-1]['s']:7.1f} s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = {}
    for name, items in runs.items():
        seconds = statistics.median(i["s"] for i in items)
        summary[name] = {"median_s": seconds, "steps_per_s": transitions / seconds,
                         "runs_s": [i["s"] for i in items],
                         "cpu_s": [i["cpu_s"] for i in items]}
    summary["relabel"]["mode"] = sorted({str(i["mode"]) for i in runs["relabel"]})
    summary["check"]["processes"] = [i["processes"] for i in runs["check"]]
    summary["check"]["load_1min_after"] = [round(i["load_1min"], 2) for i in runs["check"]]
    ratio = summary["check"]["median_s"] / summary["relabel"]["median_s"]
    # CPU time too: on a shared 2-core box, wall time also counts waiting for a core.
    cpu_ratio = (statistics.median(summary["check"]["cpu_s"])
                 / statistics.median(summary["relabel"]["cpu_s"]))
    payload = {
        "benchmark": "check_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "parallel_capacity_at_start": capacity},
        "input": {k: v for k, v in inputs["recording"].items() if k != "path"},
        "repeats": repeats,
        "findings_in_generated_data": runs["check"][-1]["findings"],
        "check": summary["check"],
        "relabel": summary["relabel"],
        "check_over_relabel": ratio,
        "check_over_relabel_cpu": cpu_ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "command": " ".join([".venv/bin/python", "benchmarks/check_throughput.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "wall_s": time.perf_counter() - wall0,
    }
    print(f"check   {summary['check']['steps_per_s']:10,.0f} steps/s "
          f"({summary['check']['median_s']:.2f} s, {summary['check']['processes']} process(es))")
    print(f"relabel {summary['relabel']['steps_per_s']:10,.0f} steps/s "
          f"({summary['relabel']['median_s']:.1f} s, DirectRunner "
          f"{'/'.join(summary['relabel']['mode'])})")
    print(f"check / relabel = {ratio:.1%} wall, {cpu_ratio:.1%} CPU time "
          f"(target <= {TARGET_RATIO:.0%}): {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    write_results(out_path, payload)


if __name__ == "__main__":
    main()
