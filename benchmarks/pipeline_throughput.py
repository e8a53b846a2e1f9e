"""Beam job throughput (relabel, downsample) vs a plain single-process read/rewrite loop.

Input (generated once, cached under ``benchmarks/results/cache/``): N transitions
of a 17-dim float32 state and 6-dim actions (HalfCheetah-sized), as
``N / episode_steps`` episodes with i.i.d. ~30 % intervention flags, in two layouts:

  ``recording``  one episode per shard, written through the real `EpisodeStore`
                 (what `RolloutRecorder` leaves: relabel's real input). Records
                 are serialised in a 2-process pool and committed by the store.
  ``built``      a TFDS/Beam-built dataset with large shards, written through
                 `pipelines.output.write_dataset` from a Beam source that
                 generates the episodes (what ingest/merge/relabel produce:
                 downsample's usual input).

Measured (each job on its own input layout):

  ``plain``       one process: `EpisodeReader` -> the job's pure function ->
                  `features.encode_example` + TFDS `ExampleSerializer` with the
                  output schema -> one `ArrayRecordWriter(path, "group_size:1")`.
                  The practical limit of "read and rewrite the same records".
  ``beam``        `pipelines.relabel.run` / `pipelines.downsample.run` on the
                  DirectRunner, ``in_memory`` (1 worker, reference) and
                  ``multi_processing`` with 1 and 2 workers. The whole `run`
                  call is timed: graph construction, worker start-up, the
                  TFDS writer and the final rename.

Relabel uses the ``paper`` view on every episode. Downsample keeps
``--transitions N/2`` (seed 0); its steps/s counts the *selected* transitions.
`downsample.run` also decodes every input episode once, before the Beam job,
to learn episode lengths; that pass is inside the Beam timing and is also
reported on its own (``select_s``). The plain loop does not do it.

Targets (project issue): with 1 worker the Beam job reaches at least half the
plain loop's steps/s, and 2 workers are at least 1.6x faster than 1.

Results also give each run's CPU time (this process plus Beam's worker
processes) and the machine's spare parallelism at the start: on a shared
2-core box, other processes cut the 2-worker speedup directly.

Usage:
  .venv/bin/python benchmarks/pipeline_throughput.py          # 1M steps: ~12.5 min on 2 idle
                                                              # cores, +~4 min to generate
                                                              # the inputs on the first run
  .venv/bin/python benchmarks/pipeline_throughput.py --quick  # 50k steps smoke run, ~1.5 min
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

import numpy as np  # noqa: E402

# Allow `python benchmarks/pipeline_throughput.py` from anywhere; Beam's worker
# processes inherit PYTHONPATH, so they can import `pipelines` too.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

from rlif_data import episodes as ep  # noqa: E402
from rlif_data import schema as sc  # noqa: E402

STATE_DIM = 17
ACTION_DIM = 6
INTERVENTION_RATE = 0.3
SEED = 0
VIEW = "paper"
GENERATOR_VERSION = 1  # bump when the generated data changes
HALF_TARGET = 0.5  # Beam 1 worker >= half the plain loop
SPEEDUP_TARGET = 1.6  # 2 workers >= 1.6x 1 worker
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_OUT = os.path.join(RESULTS, "pipeline_throughput.json")
QUICK_OUT = os.path.join(RESULTS, "pipeline_throughput_quick.json")
DEFAULT_CACHE = os.path.join(RESULTS, "cache")
SCHEMA = sc.vector_schema(STATE_DIM, ACTION_DIM, name="bench_episodes")

# (label, beam mode, workers)
BEAM_MODES = {
    "in_memory": ("in_memory", 1),
    "mp1": ("multi_processing", 1),
    "mp2": ("multi_processing", 2),
}


def quiet_logging() -> None:
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # Beam's import-time "apitools not found" notice
    try:
        importlib.import_module("apache_beam")
    finally:
        root.setLevel(level)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger("tensorflow_datasets").setLevel(logging.WARNING)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)
    except ImportError:
        pass
    warnings.filterwarnings("ignore")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class RedirectedOutput:
    """Send fds 1 and 2 (ours and Beam's worker processes') to a log file meanwhile.

    TFDS prints progress and Beam's worker processes write start-up notices
    straight to the inherited stderr; this keeps the benchmark's own output
    readable. On failure the end of the log is shown.
    """

    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        return self

    def __exit__(self, exc_type, exc, tb):
        sys.stdout.flush()
        sys.stderr.flush()
        for target, saved in zip((1, 2), self._saved):
            os.dup2(saved, target)
            os.close(saved)
        if exc_type is not None:
            with open(self.path, errors="replace") as f:
                tail = f.read()[-4000:]
            log(f"--- end of {self.path} ---\n{tail}")


# ---------------------------------------------------------------------------
# Input generation (cached).
# ---------------------------------------------------------------------------


def make_episode(i: int, steps: int) -> dict[str, Any]:
    """Episode `i`: seeded random state/actions, ~30 % of steps intervened."""
    rng = np.random.default_rng((SEED, i))
    flags = rng.random(steps) < INTERVENTION_RATE
    expert = rng.uniform(-1, 1, (steps, ACTION_DIM)).astype(np.float32)
    policy = rng.uniform(-1, 1, (steps, ACTION_DIM)).astype(np.float32)
    step_arrays = ep.build_steps(
        rng.normal(size=(steps + 1, STATE_DIM)).astype(np.float32),
        np.where(flags[:, None], expert, policy),
        rng.normal(size=steps).astype(np.float32),
        np.ones(steps, np.float32),
        terminated=False,
        intervention=flags,
        policy_actions=policy,
        expert_actions=expert,
        has_expert_action=np.ones(steps, bool),
        source=np.where(flags, int(sc.Source.EXPERT), int(sc.Source.POLICY)),
        timestamps=np.arange(steps) * 0.05,
    )
    meta = ep.complete_metadata({sc.EPISODE_ID: f"bench/{i}", sc.SESSION_ID: "bench",
                                 sc.OPERATOR: "random", sc.INTERVENTION_MODEL: "random",
                                 sc.ENV_ID: "HalfCheetah-v5", sc.SEED: i}, "bench")
    return {**meta, sc.STEPS: step_arrays}


_POOL_STATE: dict[str, Any] = {}


def _serialize_generated(args: tuple[int, int]) -> bytes:
    """Pool worker: generate episode i and serialise it with the recording's features."""
    from tensorflow_datasets.core import example_serializer

    if "features" not in _POOL_STATE:
        features = sc.features_dict(SCHEMA)
        _POOL_STATE["features"] = features
        _POOL_STATE["serializer"] = example_serializer.ExampleSerializer(
            features.get_serialized_info())
    i, steps = args
    features = _POOL_STATE["features"]
    return _POOL_STATE["serializer"].serialize_example(
        features.encode_example(make_episode(i, steps)))


def _pre_serialized_store():
    from rlif_data.recording.store import EpisodeStore

    class PreSerializedStore(EpisodeStore):
        """`EpisodeStore` whose records were serialised by a process pool.

        Benchmark-only shortcut for generation speed: the commit path (temp
        shard, fsync, rename, index rewrite) is the real one.
        """

        def serialize(self, episode):
            return episode["_record"]

    return PreSerializedStore


def _marker(directory: str) -> str:
    return os.path.join(directory, ".bench-complete.json")


def _cache_ok(directory: str, spec: dict[str, Any]) -> bool:
    try:
        with open(_marker(directory)) as f:
            if json.load(f) != spec:
                return False
        from rlif_data.recording.reader import EpisodeReader

        with EpisodeReader(directory, repair=False) as reader:
            return len(reader) == spec["episodes"]
    except Exception:
        return False


def generate_recording(directory: str, episodes: int, steps: int) -> None:
    """Recording layout: one shard per episode via `EpisodeStore` (fsync per episode)."""
    store_cls = _pre_serialized_store()
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(min(2, os.cpu_count() or 1)) as pool, \
            store_cls.open(directory, SCHEMA, metadata={"env_id": "HalfCheetah-v5"}) as store:
        for i, record in enumerate(pool.imap(_serialize_generated,
                                             [(i, steps) for i in range(episodes)], chunksize=4)):
            store.write_episode({sc.EPISODE_ID: f"bench/{i}", "_record": record})


def _generated_kv(i: int, steps: int):
    return i, make_episode(i, steps)


def generate_built(directory: str, episodes: int, steps: int) -> None:
    """Built layout: a TFDS Beam build (large shards) from a generating Beam source."""
    import apache_beam as beam

    from pipelines import output

    def source():
        return ("Indices" >> beam.Create(range(episodes))
                | "Generate" >> beam.Map(_generated_kv, steps=steps))

    job = output.JobInfo("bench-generate", {"episodes": episodes, "steps": steps}, [])
    output.write_dataset(source, directory, SCHEMA, job, output.default_beam_args(),
                         description="Generated benchmark episodes.")


def ensure_inputs(cache_dir: str, episodes: int, steps: int, layouts: set[str],
                  chatter: str) -> dict[str, Any]:
    """Paths of the cached inputs (generated when missing or stale), with timings."""
    out: dict[str, Any] = {}
    for layout, gen in (("recording", generate_recording), ("built", generate_built)):
        if layout not in layouts:
            continue
        spec = {"layout": layout, "episodes": episodes, "episode_steps": steps,
                "state_dim": STATE_DIM, "action_dim": ACTION_DIM, "seed": SEED,
                "intervention_rate": INTERVENTION_RATE, "generator": GENERATOR_VERSION,
                "format": sc.FORMAT_VERSION}
        directory = os.path.join(cache_dir, f"{layout}-{episodes}x{steps}")
        seconds = 0.0
        if not _cache_ok(directory, spec):
            shutil.rmtree(directory, ignore_errors=True)
            log(f"generating {layout} input: {episodes} x {steps} steps -> {directory}")
            t0 = time.perf_counter()
            os.makedirs(cache_dir, exist_ok=True)
            with RedirectedOutput(chatter):
                gen(directory, episodes, steps)
            seconds = time.perf_counter() - t0
            with open(_marker(directory), "w") as f:
                json.dump(spec, f)
            log(f"  generated in {seconds:.1f} s")
        size = sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))
        shards = sum(1 for n in os.listdir(directory) if ".array_record-" in n
                     and not n.endswith(".index"))
        out[layout] = {"path": directory, "generated_s": seconds, "bytes": size,
                       "shards": shards, "episodes": episodes, "transitions": episodes * steps}
    return out


# ---------------------------------------------------------------------------
# Variants: each returns (seconds, transitions written).
# ---------------------------------------------------------------------------


def plain_loop(input_dir: str, out_dir: str, indices: Optional[list[int]],
               fn: Callable[[dict], dict], out_schema: sc.EpisodeSchema) -> tuple[float, int]:
    """Read, apply `fn`, encode + serialise with `out_schema`'s features, write one shard."""
    from array_record.python import array_record_module
    from tensorflow_datasets.core import example_serializer

    from rlif_data.recording.reader import EpisodeReader

    t0 = time.perf_counter()
    features = sc.features_dict(out_schema)  # TF/TFDS are imported already (warm-up)
    serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
    os.makedirs(out_dir)
    writer = array_record_module.ArrayRecordWriter(
        os.path.join(out_dir, "plain.array_record-00000-of-00001"), "group_size:1")
    transitions = 0
    with EpisodeReader(input_dir, repair=False) as reader:
        for i in (range(len(reader)) if indices is None else indices):
            episode = fn(reader[i])
            transitions += ep.episode_length(episode)
            writer.write(serializer.serialize_example(features.encode_example(episode)))
    writer.close()
    return time.perf_counter() - t0, transitions, len(indices) if indices else None


def beam_args(mode: str, workers: int) -> list[str]:
    # The log level only quiets the worker processes' INFO output.
    return ["--runner=DirectRunner", f"--direct_num_workers={workers}",
            f"--direct_running_mode={mode}", "--default_sdk_harness_log_level=WARNING"]


def written_episodes(out_dir: str) -> int:
    """Episodes in a job's output, from its index (checks that the job wrote everything)."""
    from rlif_data.recording.store import indexed_shard_lengths, read_index

    return sum(indexed_shard_lengths(read_index(out_dir))[0])


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for descendants (Beam's worker processes)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _burn(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def parallel_capacity(n: int = 6_000_000) -> float:
    """How many cores' worth of pure-Python work 2 processes get right now (2.0 = idle box).

    The 2-worker target needs two free cores; other processes on the machine
    show up here as a value well below 2.
    """
    ctx = multiprocessing.get_context("forkserver")  # no fork of a process running gRPC
    with ctx.Pool(2) as pool:
        pool.map(_burn, [1000, 1000])
        single = pool.apply(_burn, (n,))
        t0 = time.perf_counter()
        pool.map(_burn, [n, n], chunksize=1)
        pair = time.perf_counter() - t0
    return 2 * single / pair


def make_variants(inputs: dict[str, Any], jobs: list[str], modes: list[str],
                  downsample_transitions: int) -> dict[tuple[str, str], Callable[[str], Any]]:
    """(job, variant) -> fn(out_dir) -> (seconds, transitions, episodes or None)."""
    from pipelines import downsample, relabel
    from rlif_data import relabel as rl

    variants: dict[tuple[str, str], Callable[[str], Any]] = {}
    if "relabel" in jobs:
        rec = inputs["recording"]["path"]
        episodes, total = inputs["recording"]["episodes"], inputs["recording"]["transitions"]
        derived = sc.EpisodeSchema(SCHEMA.observation, SCHEMA.action_dim, SCHEMA.name,
                                   derived=True)
        variants[("relabel", "plain")] = lambda out: plain_loop(
            rec, out, None, lambda e: rl.relabel_episode(e, VIEW), derived)
        for m in modes:
            mode, workers = BEAM_MODES[m]

            def run_relabel(out, mode=mode, workers=workers):
                t0 = time.perf_counter()
                relabel.run(rec, out, VIEW, beam_args(mode, workers))
                return time.perf_counter() - t0, total, episodes

            variants[("relabel", m)] = run_relabel
    if "downsample" in jobs:
        built = inputs["built"]["path"]
        infos = downsample.episode_infos(built)
        from rlif_data import downsample as ds

        selection = ds.select_episodes(infos, transitions=downsample_transitions, seed=SEED)
        indices = list(selection.indices)
        variants[("downsample", "plain")] = lambda out: plain_loop(
            built, out, indices, lambda e: e, SCHEMA)
        for m in modes:
            mode, workers = BEAM_MODES[m]

            def run_downsample(out, mode=mode, workers=workers):
                t0 = time.perf_counter()
                downsample.run(built, out, transitions=downsample_transitions, seed=SEED,
                               beam_args=beam_args(mode, workers))
                return time.perf_counter() - t0, selection.transitions, len(indices)

            variants[("downsample", m)] = run_downsample
    return variants


def time_selection_pass(built: str) -> float:
    from pipelines import downsample

    t0 = time.perf_counter()
    downsample.episode_infos(built)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------


def summarize(runs: dict[tuple[str, str], list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (job, variant), rs in runs.items():
        seconds = statistics.median(r["seconds"] for r in rs)
        transitions = rs[0]["transitions"]
        cpu = statistics.median(r["cpu_s"] for r in rs)
        out.setdefault(job, {})[variant] = {
            "seconds": seconds, "transitions": transitions,
            "steps_per_s": transitions / seconds, "cpu_s": cpu,
            "cpu_us_per_step": 1e6 * cpu / transitions, "runs": rs,
        }
    for job, variants in out.items():
        plain = variants.get("plain")
        for name, v in variants.items():
            if plain:
                v["ratio_to_plain"] = v["steps_per_s"] / plain["steps_per_s"]
        if "mp1" in variants and "mp2" in variants:
            variants["mp2"]["speedup_vs_1_worker"] = (
                variants["mp2"]["steps_per_s"] / variants["mp1"]["steps_per_s"])
    return out


def targets(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for job, variants in summary.items():
        if "mp1" in variants and "ratio_to_plain" in variants["mp1"]:
            r = variants["mp1"]["ratio_to_plain"]
            out[f"{job}_1_worker_ge_half_plain"] = {"value": r, "limit": HALF_TARGET,
                                                    "met": r >= HALF_TARGET}
        if "mp2" in variants and "speedup_vs_1_worker" in variants["mp2"]:
            s = variants["mp2"]["speedup_vs_1_worker"]
            out[f"{job}_2_workers_ge_1.6x"] = {"value": s, "limit": SPEEDUP_TARGET,
                                               "met": s >= SPEEDUP_TARGET}
    return out


MODE_LABEL = {"plain": ("plain loop", "-", 1), "in_memory": ("beam", "in_memory", 1),
              "mp1": ("beam", "multi_processing", 1), "mp2": ("beam", "multi_processing", 2)}


def print_table(summary: dict[str, dict[str, Any]], extra: dict[str, Any]) -> None:
    header = (f"{'job':<10} {'runner':<10} {'mode':<16} {'workers':>7} {'seconds':>8} "
              f"{'steps':>8} {'steps/s':>8} {'x plain':>8} {'2w/1w':>6} {'cpu s':>7}  target")
    print(header)
    print("-" * len(header))
    for job, variants in summary.items():
        for name, v in variants.items():
            runner, mode, workers = MODE_LABEL[name]
            verdict = ""
            if name == "mp1" and "ratio_to_plain" in v:
                met = v["ratio_to_plain"] >= HALF_TARGET
                verdict = f">=0.5x plain: {'PASS' if met else 'MISS'}"
            speed = v.get("speedup_vs_1_worker")
            if speed is not None:
                verdict = f">=1.6x 1w: {'PASS' if speed >= SPEEDUP_TARGET else 'MISS'}"
            print(f"{job:<10} {runner:<10} {mode:<16} {workers:>7} {v['seconds']:8.1f} "
                  f"{v['transitions']:>8} {v['steps_per_s']:8.0f} "
                  f"{v.get('ratio_to_plain', float('nan')):8.2f} "
                  f"{'' if speed is None else f'{speed:6.2f}':>6} {v['cpu_s']:7.1f}  {verdict}")
    print(f"cpu s: CPU time of the benchmark process and Beam's worker processes during the "
          f"run; parallel capacity at the start: {extra['parallel_capacity']:.2f} of 2 cores "
          f"(2.0 = nothing else running)")
    if "downsample_select_s" in extra:
        print(f"downsample: the Beam timings include its length pass over all input "
              f"episodes before the job ({extra['downsample_select_s']:.1f} s on its own); "
              f"steps = selected transitions")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=None,
                   help="total input transitions (default 1,000,000; --quick: 50,000)")
    p.add_argument("--episode-steps", type=int, default=1000, help="transitions per episode")
    p.add_argument("--repeats", type=int, default=1, help="runs per variant (interleaved)")
    p.add_argument("--jobs", default="relabel,downsample", help="comma list")
    p.add_argument("--modes", default="in_memory,mp1,mp2",
                   help="comma list of Beam modes: in_memory, mp1, mp2")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="generated inputs (reused)")
    p.add_argument("--quick", action="store_true", help="~50k-step smoke run")
    p.add_argument("--out", default=None,
                   help=f"JSON results path (default {os.path.relpath(DEFAULT_OUT, _ROOT)}, "
                   f"--quick: {os.path.relpath(QUICK_OUT, _ROOT)}); Beam/TFDS output goes "
                   "to the same path with .log")
    args = p.parse_args(argv)
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    args.steps = args.steps or (50_000 if args.quick else 1_000_000)
    args.jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for j in args.jobs:
        if j not in ("relabel", "downsample"):
            p.error(f"unknown job {j!r}")
    for m in args.modes:
        if m not in BEAM_MODES:
            p.error(f"unknown mode {m!r}; use {list(BEAM_MODES)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_logging()
    t_start = time.perf_counter()
    episodes = max(1, args.steps // args.episode_steps)
    total = episodes * args.episode_steps
    layouts = {"relabel": "recording", "downsample": "built"}
    chatter = os.path.splitext(os.path.abspath(args.out))[0] + ".log"
    os.makedirs(os.path.dirname(chatter), exist_ok=True)
    with open(chatter, "w"):
        pass
    log(f"(Beam/TFDS output goes to {chatter})")
    inputs = ensure_inputs(args.cache_dir, episodes, args.episode_steps,
                           {layouts[j] for j in args.jobs}, chatter)
    # Warm-up outside the timings: TF/TFDS imports and feature building.
    sc.features_dict(SCHEMA)
    variants = make_variants(inputs, args.jobs, args.modes, total // 2)
    extra: dict[str, Any] = {}
    if "downsample" in args.jobs:
        extra["downsample_select_s"] = time_selection_pass(inputs["built"]["path"])
    runs: dict[tuple[str, str], list[dict[str, float]]] = {k: [] for k in variants}
    extra["parallel_capacity"] = parallel_capacity()
    log(f"parallel capacity now: {extra['parallel_capacity']:.2f} of 2 cores "
        f"(load average {os.getloadavg()[0]:.2f})")
    tmp_root = tempfile.mkdtemp(prefix="rlif-pipeline-throughput-")
    try:
        for r in range(args.repeats):
            for (job, name), fn in variants.items():
                out = os.path.join(tmp_root, f"{job}-{name}-{r}")
                load = os.getloadavg()[0]
                cpu0 = cpu_seconds()
                with RedirectedOutput(chatter):
                    seconds, transitions, want_episodes = fn(out)
                cpu = cpu_seconds() - cpu0
                if name != "plain":
                    got = written_episodes(out)
                    if got != want_episodes:
                        raise RuntimeError(f"{job} {name} wrote {got} episodes, expected "
                                           f"{want_episodes}")
                shutil.rmtree(out, ignore_errors=True)
                runs[(job, name)].append({"seconds": seconds, "transitions": transitions,
                                          "steps_per_s": transitions / seconds,
                                          "cpu_s": cpu, "load_before": load})
                log(f"  repeat {r + 1}/{args.repeats} {job:<10} {name:<9} {seconds:7.1f} s "
                    f"{transitions / seconds:8.0f} steps/s  cpu {cpu:6.1f} s  "
                    f"(load before {load:.2f})")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    summary = summarize(runs)
    target_report = targets(summary)
    print(f"input: {total} transitions = {episodes} x {args.episode_steps}-step episodes, "
          f"{STATE_DIM}-dim state, {ACTION_DIM}-dim action; relabel reads the recording "
          f"layout ({inputs.get('recording', {}).get('shards', '-')} shards), downsample "
          f"the built layout ({inputs.get('built', {}).get('shards', '-')} shards); "
          f"median of {args.repeats}")
    print_table(summary, extra)
    from importlib import metadata

    payload = {
        "benchmark": "pipeline_throughput",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "input_transitions": total, "episodes": episodes, "episode_steps": args.episode_steps,
        "state_dim": STATE_DIM, "action_dim": ACTION_DIM,
        "intervention_rate": INTERVENTION_RATE, "view": VIEW,
        "downsample_transitions": total // 2, "repeats": args.repeats,
        "inputs": inputs, **extra,
        "results": summary, "targets": target_report,
        "versions": {pkg: metadata.version(pkg) for pkg in
                     ("apache-beam", "tensorflow-datasets", "array_record", "numpy")},
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "wall_s": time.perf_counter() - t_start,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {args.out} ({payload['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
