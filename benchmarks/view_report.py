"""`rlif-data view` on a two-camera dataset: seconds to write the report, page load in Chromium.

Input (generated once, cached under ``benchmarks/results/cache/view/``): 100
episodes of 100 steps, each step an 11-dim state and two 128x128 RGB cameras
(the size `record --camera` uses), written through `EpisodeStore`. Frames are
a fixed smooth texture shifted by the step (so JPEG has realistic work, not
flat colour or pure noise).

Measured:

  ``write``  `rlif_data.report.writer.view_dataset` into a fresh folder (read,
             decode, pages, one JPEG per camera per step, rename into place),
             median of ``--repeats``.
  ``load``   Debian's headless Chromium over the DevTools protocol: the
             first list page and the first 5 episode pages, each loaded
             ``--repeats`` times; ``load_ms`` is the page's own navigation
             start to load event end, ``ready_ms`` adds the script drawing the
             plots and every image decoded. Console errors are counted.

Usage:
  .venv/bin/python benchmarks/view_report.py           # ~2 min on 2 cores (+~1 min to generate)
  .venv/bin/python benchmarks/view_report.py --quick   # 10 episodes of 30 steps, ~20 s
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for path in (_ROOT, _HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

from results_io import write_results  # noqa: E402

from rlif_data import episodes as ep  # noqa: E402
from rlif_data import schema as sc  # noqa: E402

RESULTS = os.path.join(_HERE, "results")
DEFAULT_OUT = os.path.join(RESULTS, "view_report.json")
QUICK_OUT = os.path.join(RESULTS, "view_report_quick.json")
CACHE = os.path.join(RESULTS, "cache", "view")
CAMERAS = ("front", "wrist")
STATE_DIM, ACTION_DIM, SIZE = 11, 3, 128
GENERATOR_VERSION = 1
PAGES_TIMED = 5


def texture(seed: int) -> np.ndarray:
    """A smooth random RGB texture, twice the frame size (frames are windows of it)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (2 * SIZE // 8, 2 * SIZE // 8, 3)).astype(np.float32)
    big = np.kron(coarse, np.ones((8, 8, 1), np.float32))
    for axis in (0, 1):  # blur the blocks into gradients
        big = (big + np.roll(big, 4, axis) + np.roll(big, -4, axis)) / 3
    return big.astype(np.uint8)


def make_episode(i: int, steps: int, textures: list) -> dict:
    """Episode i: random state/actions, ~30 % intervened, two cameras panning over textures."""
    rng = np.random.default_rng(i)
    flags = rng.random(steps) < 0.3
    obs = {sc.STATE_KEY: rng.normal(size=(steps + 1, STATE_DIM)).astype(np.float32)}
    for k, name in enumerate(CAMERAS):
        offsets = [(t * (k + 1)) % SIZE for t in range(steps + 1)]
        obs[name] = np.stack([textures[k][o:o + SIZE, (o // 2):(o // 2) + SIZE]
                              for o in offsets])
    step_arrays = ep.build_steps(
        obs, rng.uniform(-1, 1, (steps, ACTION_DIM)), rng.normal(size=steps), np.ones(steps),
        terminated=False, intervention=flags,
        policy_actions=rng.uniform(-1, 1, (steps, ACTION_DIM)),
        source=np.where(flags, int(sc.Source.EXPERT), int(sc.Source.POLICY)),
        timestamps=np.arange(steps) * 0.1)
    meta = ep.complete_metadata({sc.EPISODE_ID: f"view-bench/{i}", sc.ENV_ID: "sim-arm/reach"},
                                "bench")
    return {**meta, sc.STEPS: step_arrays}


def ensure_input(episodes: int, steps: int) -> str:
    """The cached dataset (generated when missing or stale)."""
    from rlif_data.recording.reader import EpisodeReader
    from rlif_data.recording.store import EpisodeStore

    spec = {"episodes": episodes, "steps": steps, "size": SIZE, "cameras": list(CAMERAS),
            "generator": GENERATOR_VERSION, "format": sc.FORMAT_VERSION}
    directory = os.path.join(CACHE, f"cams-{episodes}x{steps}")
    marker = os.path.join(directory, ".bench-complete.json")
    try:
        with open(marker) as f:
            if json.load(f) == spec:
                with EpisodeReader(directory, repair=False) as reader:
                    if len(reader) == episodes:
                        return directory
    except (OSError, ValueError):
        pass
    shutil.rmtree(directory, ignore_errors=True)
    print(f"generating {episodes} x {steps} steps, two {SIZE}x{SIZE} cameras -> {directory}",
          file=sys.stderr)
    textures = [texture(k) for k in range(len(CAMERAS))]
    schema = sc.camera_schema(STATE_DIM, ACTION_DIM, CAMERAS, SIZE, name="view_bench")
    with EpisodeStore.open(directory, schema) as store:
        for i in range(episodes):
            store.write_episode(make_episode(i, steps, textures))
    with open(marker, "w") as f:
        json.dump(spec, f)
    return directory


def main(argv=None) -> None:
    """Generate (or reuse) the input, time the report and its pages, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 episodes of 30 steps")
    parser.add_argument("--episodes", type=int, default=None, help="default 100")
    parser.add_argument("--steps", type=int, default=None, help="steps per episode (100)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    episodes = args.episodes or (10 if args.quick else 100)
    steps = args.steps or (30 if args.quick else 100)
    repeats = args.repeats or (1 if args.quick else 3)
    wall0 = time.perf_counter()
    directory = ensure_input(episodes, steps)

    from rlif_data.report import pages
    from rlif_data.report.writer import view_dataset
    from tests import chromium

    scratch = tempfile.mkdtemp(prefix="view-bench-")
    try:
        writes = []
        for r in range(repeats):
            report = os.path.join(scratch, f"report-{r}")
            result = view_dataset(directory, report)
            writes.append(result.seconds)
            print(f"[{r + 1}/{repeats}] write {result.seconds:6.1f} s "
                  f"({result.frames} frames)", file=sys.stderr)
        files = sum(len(f) for _, _, f in os.walk(report))
        size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(report) for n in ns)
        loads: dict[str, list] = {"index": [], "episode": []}
        errors = []
        with chromium.Browser() as browser:
            targets = [("index", os.path.join(report, pages.index_file(1)))]
            targets += [("episode", os.path.join(report, pages.episode_file(i)))
                        for i in range(min(PAGES_TIMED, episodes))]
            for _ in range(repeats):
                for kind, page in targets:
                    t0 = time.perf_counter()
                    opened = browser.open(page)
                    ready_ms = (time.perf_counter() - t0) * 1e3
                    loads[kind].append({"load_ms": opened["load_ms"], "ready_ms": ready_ms})
                    errors += opened["errors"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = {kind: {"median_load_ms": statistics.median(x["load_ms"] for x in items),
                      "median_ready_ms": statistics.median(x["ready_ms"] for x in items),
                      "samples": len(items)} for kind, items in loads.items()}
    payload = {
        "benchmark": "view_report",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "input": {"episodes": episodes, "steps_per_episode": steps, "cameras": list(CAMERAS),
                  "frame_size": SIZE, "frames": result.frames},
        "write_s": {"median": statistics.median(writes), "runs": writes},
        "report": {"files": files, "bytes": size},
        "pages": summary,
        "console_errors": errors,
        "command": " ".join([".venv/bin/python", "benchmarks/view_report.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "wall_s": time.perf_counter() - wall0,
    }
    print(f"write: {statistics.median(writes):.1f} s for {episodes} episodes, {result.frames} "
          f"frames ({result.frames / statistics.median(writes):,.0f} frames/s), "
          f"{size / 1e6:.0f} MB")
    for kind, s in summary.items():
        print(f"{kind} page: load {s['median_load_ms']:.0f} ms, ready (plots drawn, images "
              f"decoded) {s['median_ready_ms']:.0f} ms")
    print(f"console errors: {len(errors)}")
    write_results(args.out or (QUICK_OUT if args.quick else DEFAULT_OUT), payload)


if __name__ == "__main__":
    main()
