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
                  the project's serializer (`pipelines.sink.episode_encoder`,
                  the same tf.train.Example TFDS writes) -> one
                  `ArrayRecordWriter(path, "group_size:1")`. The practical
                  limit of "read and rewrite the same records".
  ``plain_checked`` the same loop, plus the per-episode check every job runs
                  on what it writes (`pipelines.job_checks.EpisodeChecker`);
                  context only (column ``x chk``): the targets are against
                  ``plain``.
  ``beam``        `pipelines.relabel.run` / `pipelines.downsample.run` through
                  the Beam-native sink (`pipelines.sink`): DirectRunner
                  ``in_memory`` (1 worker) and ``multi_processing`` with 1 and
                  2 workers (``mp1``, ``mp2``), and Beam's DaskRunner on a
                  local ``dask.distributed`` cluster of 1 and 2 worker
                  processes (``dask1``, ``dask2``; scheduler and workers run
                  in processes of their own, never in the benchmark's, as a
                  lab's cluster does; the cluster is started once
                  before the timings and runs one 20-episode relabel, as a
                  user's cluster is already up and has run jobs: that first
                  job's time on the fresh workers is reported on its own).
  ``tfds``        the same jobs through TFDS' own Beam writer, as before the
                  sink (``tfds_mp1``, ``tfds_mp2``; `output.legacy_tfds_writer`).
                  The whole `run` call is timed in every Beam variant: graph
                  construction, worker start-up, the writer and the rename.
  ``small job``   wall time of ``python -m pipelines.relabel`` and of
                  ``rlif-data relabel`` (``python -m rlif_cli.main``) on a
                  20-episode recording as a user runs them (default runner
                  options: the job runs in-process at that size), process start
                  and imports included, beside the old default (2 DirectRunner
                  worker processes, given as flags) in the same run.
  ``check``       every sink variant's job checks what it writes, as `rlif-data
                  check` would (inside its seconds: per episode on the workers,
                  the dataset-level checks in the driver; `pipelines.job_checks`).
                  The output's lineage gives both parts' seconds; ``check_cpu_s``
                  is their sum and ``check_over_pass`` that over the rest of the
                  job's CPU time (issue 14 target: <= 0.25).
  ``cameras``     a two-camera (2 x 128x128 RGB) recording of ``--camera-steps``
                  transitions: relabel bytes/s beside ``cp -r`` of the same
                  directory (`pipeline_cameras`).

Relabel uses the ``paper`` view on every episode. Downsample keeps
``--transitions N/2`` (seed 0); its steps/s counts the *selected* transitions.
`downsample.run` learns episode lengths before the Beam job: from the
``episode_lengths.json`` every job leaves beside its output (the ``built``
input has it), else by decoding every input episode once. That step is inside
the Beam timing and is also reported on its own (``select_s``, with where the
lengths came from). The plain loop is handed its selection.

Targets (issue 17): with 1 worker the Beam job reaches >= 0.9x the plain
loop's steps/s, 2 workers are >= 1.7x faster than 1 (where the machine has 2
idle cores), and a small job takes <= 5 s wall.

Results also give each run's CPU time (this process plus Beam's and Dask's
worker processes) and the machine's spare parallelism before each run: on a
shared 2-core box, other processes cut the 2-worker speedup directly.

Usage:
  .venv/bin/python benchmarks/pipeline_throughput.py          # 1M steps: ~13 min on 2 loaded
                                                              # cores before run 8 (the TFDS-
                                                              # writer variants most of it); not
                                                              # timed since each variant runs
                                                              # twice in its process; +~2 min to
                                                              # generate the inputs once
  ... --modes in_memory,mp1,mp2,dask1,dask2 --repeats 5       # the sink's variants: ~6 min
  .venv/bin/python benchmarks/pipeline_throughput.py --quick  # 50k steps smoke run, ~2.5 min
  ... --camera-steps 0                                        # without the camera dataset
  ... --jobs none --no-small-job                              # the camera dataset only
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
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Callable, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

# Allow `python benchmarks/pipeline_throughput.py` from anywhere; Beam's worker
# processes inherit PYTHONPATH, so they can import `pipelines` too.
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _path in (_ROOT, _HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

import pipeline_cameras  # noqa: E402

from rlif_data import episodes as ep  # noqa: E402
from rlif_data import schema as sc  # noqa: E402

STATE_DIM = 17
ACTION_DIM = 6
INTERVENTION_RATE = 0.3
SEED = 0
VIEW = "paper"
GENERATOR_VERSION = 1  # bump when the generated data changes
# 2: job outputs carry episode_lengths.json, which downsample reads instead of a pass.
BUILT_GENERATOR_VERSION = 2
PLAIN_TARGET = 0.9  # Beam 1 worker >= 0.9x the plain loop
SPEEDUP_TARGET = 1.7  # 2 workers >= 1.7x 1 worker
SMALL_JOB_TARGET_S = 5.0  # a 20-episode job, wall time
SMALL_JOB_EPISODES = 20
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_OUT = os.path.join(RESULTS, "pipeline_throughput.json")
QUICK_OUT = os.path.join(RESULTS, "pipeline_throughput_quick.json")
DEFAULT_CACHE = os.path.join(RESULTS, "cache")
SCHEMA = sc.vector_schema(STATE_DIM, ACTION_DIM, name="bench_episodes")

# label -> (runner, DirectRunner mode, workers, writer)
BEAM_MODES = {
    "in_memory": ("direct", "in_memory", 1, "sink"),
    "mp1": ("direct", "multi_processing", 1, "sink"),
    "mp2": ("direct", "multi_processing", 2, "sink"),
    "tfds_mp1": ("direct", "multi_processing", 1, "tfds"),
    "tfds_mp2": ("direct", "multi_processing", 2, "tfds"),
    "dask1": ("dask", "-", 1, "sink"),
    "dask2": ("dask", "-", 2, "sink"),
}
# (1-worker variant, 2-worker variant) pairs whose speedup is a target.
SPEEDUP_PAIRS = (("mp1", "mp2"), ("dask1", "dask2"), ("tfds_mp1", "tfds_mp2"))


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
                         description="Generated benchmark episodes.", keys=range(episodes))


def ensure_inputs(cache_dir: str, episodes: int, steps: int, layouts: set[str],
                  chatter: str) -> dict[str, Any]:
    """Paths of the cached inputs (generated when missing or stale), with timings."""
    out: dict[str, Any] = {}
    for layout, gen in (("recording", generate_recording), ("built", generate_built)):
        if layout not in layouts:
            continue
        spec = {"layout": layout, "episodes": episodes, "episode_steps": steps,
                "state_dim": STATE_DIM, "action_dim": ACTION_DIM, "seed": SEED,
                "intervention_rate": INTERVENTION_RATE,
                "generator": BUILT_GENERATOR_VERSION if layout == "built" else GENERATOR_VERSION,
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


def relabelled_schema() -> sc.EpisodeSchema:
    """`SCHEMA` as the relabel job writes it (derived: RLIF rewards and the include mask)."""
    return sc.EpisodeSchema(SCHEMA.observation, SCHEMA.action_dim, SCHEMA.name, derived=True)


def plain_loop(input_dir: str, out_dir: str, indices: Optional[list[int]],
               fn: Callable[[dict], dict], out_schema: sc.EpisodeSchema,
               check_view: Any = False) -> tuple[float, int]:
    """Read, apply `fn`, serialise with the project's serializer, write one shard.

    With `check_view` (the output's view, None for raw data; False: no
    check) each episode also goes through the per-episode check every job
    runs on what it writes (`pipelines.job_checks.EpisodeChecker`).
    """
    from array_record.python import array_record_module

    from pipelines.job_checks import EpisodeChecker
    from pipelines.sink import episode_encoder
    from rlif_data.recording.reader import EpisodeReader

    t0 = time.perf_counter()
    encode = episode_encoder(out_schema)
    check = None if check_view is False else EpisodeChecker(check_view)
    os.makedirs(out_dir)
    writer = array_record_module.ArrayRecordWriter(
        os.path.join(out_dir, "plain.array_record-00000-of-00001"), "group_size:1")
    transitions = 0
    with EpisodeReader(input_dir, repair=False) as reader:
        for i in (range(len(reader)) if indices is None else indices):
            episode = fn(reader[i])
            transitions += ep.episode_length(episode)
            if check is not None:
                check(i, episode)
            writer.write(encode(episode))
    writer.close()
    return time.perf_counter() - t0, transitions, len(indices) if indices else None


def beam_args(variant: str, dask_addresses: dict[int, str]) -> list[str]:
    """The Beam options of a variant of `BEAM_MODES`."""
    runner, mode, workers, _ = BEAM_MODES[variant]
    if runner == "dask":
        return ["--runner=DaskRunner", f"--dask_client_address={dask_addresses[workers]}"]
    # The log level only quiets the worker processes' INFO output.
    return ["--runner=DirectRunner", f"--direct_num_workers={workers}",
            f"--direct_running_mode={mode}", "--default_sdk_harness_log_level=WARNING"]


def writer_context(variant: str):
    """The writer a variant uses: the sink, or TFDS' Beam writer."""
    import contextlib

    from pipelines import output

    return (output.legacy_tfds_writer() if BEAM_MODES[variant][3] == "tfds"
            else contextlib.nullcontext())


class DaskCluster:
    """A dask.distributed cluster in processes of its own: ``dask scheduler`` and ``dask worker``.

    As a lab runs one: neither the scheduler nor a worker lives in a process
    that a variant is timed in (a `LocalCluster` puts the scheduler's event
    loop, and its share of the GIL, in the process that starts it). Nannies
    start the workers with Dask's defaults, as on a user's cluster.

    Args:
      workers: worker processes, one thread each.
      directory: where the scheduler file goes.
    """

    def __init__(self, workers: int, directory: str):
        from distributed import Client

        self.scheduler_file = os.path.join(directory, f"scheduler-{workers}.json")
        dask = [sys.executable, "-m", "dask"]
        self._procs = [subprocess.Popen(
            dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", self.scheduler_file],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        self._procs.append(subprocess.Popen(
            dask + ["worker", "--scheduler-file", self.scheduler_file, "--nworkers",
                    str(workers), "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            with Client(scheduler_file=self.scheduler_file, timeout=60,
                        set_as_default=False) as client:
                client.wait_for_workers(workers, timeout=120)
                self.address = client.scheduler.address
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """The scheduler's and the worker launcher's (nannies and workers are their children)."""
        return [proc.pid for proc in self._procs]

    def close(self) -> None:
        """Stop the workers, then the scheduler (SIGTERM: each shuts down cleanly)."""
        for proc in reversed(self._procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_dask_clusters(modes: list[str], directory: str
                        ) -> tuple[dict[int, str], list[DaskCluster], float]:
    """One `DaskCluster` per worker count the Dask variants of `modes` use.

    Returns:
      (workers -> scheduler address, the clusters to close, seconds to start them).
    """
    t0 = time.perf_counter()
    clusters, addresses = [], {}
    try:
        for workers in sorted({BEAM_MODES[m][2] for m in modes
                               if BEAM_MODES[m][0] == "dask"}):
            cluster = DaskCluster(workers, directory)
            clusters.append(cluster)
            addresses[workers] = cluster.address
    except BaseException:
        for cluster in clusters:
            cluster.close()
        raise
    return addresses, clusters, time.perf_counter() - t0


def warm_dask_clusters(addresses: dict[int, str], cache_dir: str, chatter: str
                       ) -> dict[str, float]:
    """Run one small relabel on each Dask cluster; seconds of each, by worker count.

    A user's cluster that is up has run jobs before: its workers have
    imported Beam and the project's modules (0.4-0.7 s per fresh worker,
    docs/scaling.md run 5). The in-process variants are warmed the same way
    (this process imports everything first); DirectRunner worker processes
    are fresh in every job by design and are not warmed. The first job's
    time on the fresh workers is reported beside the table.
    """
    from pipelines import relabel

    if not addresses:
        return {}
    rec = ensure_inputs(cache_dir, SMALL_JOB_EPISODES, 200, {"recording"},
                        chatter)["recording"]["path"]
    seconds = {}
    tmp = tempfile.mkdtemp(prefix="rlif-dask-warm-")
    try:
        for workers, address in sorted(addresses.items()):
            out = os.path.join(tmp, f"dask{workers}")
            t0 = time.perf_counter()
            with RedirectedOutput(chatter):
                relabel.run(rec, out, VIEW, beam_args(f"dask{workers}", addresses))
            seconds[f"dask{workers}"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return seconds


def output_lineage(out_dir: str) -> dict[str, Any]:
    """The lineage record a job wrote into its output's metadata."""
    with open(os.path.join(out_dir, sc.METADATA_FILE)) as f:
        return json.load(f)["lineage"]


def written_episodes(out_dir: str) -> int:
    """Episodes in a job's output, from its index (checks that the job wrote everything)."""
    from rlif_data.recording.store import indexed_shard_lengths, read_index

    return sum(indexed_shard_lengths(read_index(out_dir))[0])


def cpu_seconds(also: Sequence[int] = ()) -> float:
    """CPU time of this process and its descendants, and of the process trees of `also`.

    Waited-for ones (Beam's DirectRunner workers) from `getrusage`, live ones
    (Dask's worker processes, which outlive a job) from /proc via psutil;
    `also` names processes that are not this one's descendants (the Dask
    clusters, seen from a variant's own process).
    """
    import resource

    import psutil

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    procs = psutil.Process().children(recursive=True)
    for pid in also:
        try:
            root = psutil.Process(pid)
            procs += [root] + root.children(recursive=True)
        except psutil.Error:
            continue
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        live += times.user + times.system
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + live


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
                  downsample_transitions: int, dask_addresses: dict[int, str]
                  ) -> dict[tuple[str, str], Callable[[str], Any]]:
    """(job, variant) -> fn(out_dir) -> (seconds, transitions, episodes or None)."""
    from pipelines import downsample, relabel
    from rlif_data import relabel as rl

    variants: dict[tuple[str, str], Callable[[str], Any]] = {}
    if "relabel" in jobs:
        rec = inputs["recording"]["path"]
        episodes, total = inputs["recording"]["episodes"], inputs["recording"]["transitions"]
        derived = relabelled_schema()
        variants[("relabel", "plain")] = lambda out: plain_loop(
            rec, out, None, lambda e: rl.relabel_episode(e, VIEW), derived)
        variants[("relabel", "plain_checked")] = lambda out: plain_loop(
            rec, out, None, lambda e: rl.relabel_episode(e, VIEW), derived, check_view=VIEW)
        for m in modes:
            def run_relabel(out, m=m):
                args = beam_args(m, dask_addresses)
                with writer_context(m):
                    t0 = time.perf_counter()
                    relabel.run(rec, out, VIEW, args)
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
        variants[("downsample", "plain_checked")] = lambda out: plain_loop(
            built, out, indices, lambda e: e, SCHEMA, check_view=None)
        for m in modes:
            def run_downsample(out, m=m):
                args = beam_args(m, dask_addresses)
                with writer_context(m):
                    t0 = time.perf_counter()
                    downsample.run(built, out, transitions=downsample_transitions, seed=SEED,
                                   beam_args=args)
                    return time.perf_counter() - t0, selection.transitions, len(indices)

            variants[("downsample", m)] = run_downsample
    return variants


def run_variant_isolated(spec: dict[str, Any], job: str, name: str, out: str,
                         chatter: str) -> dict[str, Any]:
    """Time one variant in a process of its own (`variant_main`); returns its result.

    Each job then runs in a process like the one ``rlif-data relabel``
    gives it, never in one that earlier variants left their heap, threads
    and caches in: run in this process, the plain downsample loop took
    0.7-0.8 s after the relabel variants against 0.55-0.62 s with no
    relabel before it, which flattered every ratio over it (docs/scaling.md
    run 8). The process runs its variant once untimed, then times the
    second run: the steady state of a process that runs jobs (a round
    driver, a notebook), as the Dask workers were warmed before
    (`warm_dask_clusters`); a process's first job is the small-job figure.

    Args:
      spec: what `variant_main` needs beside the variant (inputs, Dask
        addresses and process ids, the downsample size).

    Returns:
      ``{"seconds", "transitions", "episodes", "cpu_s"}``; cpu_s: the
      variant process's, its DirectRunner workers' and the Dask clusters'
      CPU during the timed call.
    """
    result = out + ".result.json"
    request = {**spec, "job": job, "name": name, "out": out, "result": result}
    with open(chatter, "a") as log_file:
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--variant",
                               json.dumps(request)], cwd=_ROOT, stdout=log_file,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{job} {name} failed in its own process (exit {done.returncode}); "
                           f"its output is at the end of {chatter}")
    with open(result) as f:
        got = json.load(f)
    os.remove(result)
    return got


def variant_main(request: dict[str, Any]) -> int:
    """Entry of a variant's own process (`run_variant_isolated`): warm up, time, write the result."""
    quiet_logging()
    job, name = request["job"], request["name"]
    addresses = {int(k): v for k, v in request["dask_addresses"].items()}
    variants = make_variants(request["inputs"], [job], [name] if name in BEAM_MODES else [],
                             request["downsample_transitions"], addresses)
    # Run once untimed: a process's first jobs pay for imports, Beam's caches and
    # the heap's growth (downsample 0.97, 0.83, then 0.75-0.80 s in one process).
    fn = variants[(job, name)]
    fn(request["out"] + ".warm-up")
    shutil.rmtree(request["out"] + ".warm-up")
    cpu0 = cpu_seconds(request["cluster_pids"])
    seconds, transitions, episodes = fn(request["out"])
    cpu = cpu_seconds(request["cluster_pids"]) - cpu0
    with open(request["result"], "w") as f:
        json.dump({"seconds": seconds, "transitions": transitions, "episodes": episodes,
                   "cpu_s": cpu}, f)
    return 0


def time_selection_pass(built: str) -> tuple[float, str]:
    """Seconds downsample takes to learn the input's episode lengths, and from where."""
    from pipelines import downsample

    t0 = time.perf_counter()
    stored = downsample.stored_infos(built)
    if stored is None:
        downsample.episode_infos(built)
    return time.perf_counter() - t0, "read pass" if stored is None else "episode_lengths.json"


# ---------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------


def summarize(runs: dict[tuple[str, str], list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for (job, variant), rs in runs.items():
        seconds = statistics.median(r["seconds"] for r in rs)
        transitions = rs[0]["transitions"]
        cpu = statistics.median(r["cpu_s"] for r in rs)
        check = [r["check_cpu_s"] for r in rs if r.get("check_cpu_s") is not None]
        check_cpu = statistics.median(check) if check else None
        out.setdefault(job, {})[variant] = {
            "check_cpu_s": check_cpu,
            "check_over_pass": check_cpu / (cpu - check_cpu) if check_cpu is not None else None,
            "seconds": seconds, "transitions": transitions,
            "steps_per_s": transitions / seconds, "cpu_s": cpu,
            "cpu_us_per_step": 1e6 * cpu / transitions,
            "capacity_before": statistics.median(r["capacity_before"] for r in rs),
            "runs": rs,
        }
    for job, variants in out.items():
        plain = variants.get("plain")
        checked = variants.get("plain_checked")
        for name, v in variants.items():
            if plain:
                v["ratio_to_plain"] = v["steps_per_s"] / plain["steps_per_s"]
            if checked:
                v["ratio_to_checked_plain"] = v["steps_per_s"] / checked["steps_per_s"]
        for one, two in SPEEDUP_PAIRS:
            if one in variants and two in variants:
                variants[two]["speedup_vs_1_worker"] = (
                    variants[two]["steps_per_s"] / variants[one]["steps_per_s"])
        for name in ("mp1", "mp2"):
            if name in variants and f"tfds_{name}" in variants:
                variants[name]["ratio_to_tfds_writer"] = (
                    variants[name]["steps_per_s"] / variants[f"tfds_{name}"]["steps_per_s"])
    return out


def targets(summary: dict[str, dict[str, Any]], small_job: Optional[dict[str, Any]]
            ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for job, variants in summary.items():
        for one, _ in SPEEDUP_PAIRS[:2]:  # the sink's variants; tfds_* is the old path
            if one in variants and "ratio_to_plain" in variants[one]:
                r = variants[one]["ratio_to_plain"]
                out[f"{job}_{one}_ge_{PLAIN_TARGET}x_plain"] = {
                    "value": r, "limit": PLAIN_TARGET, "met": r >= PLAIN_TARGET}
        for _, two in SPEEDUP_PAIRS[:2]:
            if two in variants and "speedup_vs_1_worker" in variants[two]:
                s = variants[two]["speedup_vs_1_worker"]
                out[f"{job}_{two}_ge_{SPEEDUP_TARGET}x_1_worker"] = {
                    "value": s, "limit": SPEEDUP_TARGET, "met": s >= SPEEDUP_TARGET,
                    "capacity_before": variants[two]["capacity_before"]}
    if small_job:
        s = max(small_job["default_s"], small_job["cli_s"])
        out["small_job_le_5s"] = {"value": s, "limit": SMALL_JOB_TARGET_S,
                                  "met": s <= SMALL_JOB_TARGET_S}
    return out


def _mode_label(name: str) -> tuple[str, str, int]:
    if name == "plain":
        return "plain loop", "-", 1
    if name == "plain_checked":
        return "loop+check", "-", 1
    runner, mode, workers, writer = BEAM_MODES[name]
    label = {"direct": "direct", "dask": "dask"}[runner] + ("+tfds" if writer == "tfds" else "")
    return label, mode, workers


def print_table(summary: dict[str, dict[str, Any]], extra: dict[str, Any]) -> None:
    header = (f"{'job':<10} {'runner':<12} {'mode':<16} {'workers':>7} {'seconds':>8} "
              f"{'steps':>8} {'steps/s':>8} {'x plain':>8} {'x chk':>6} {'x tfds':>6} {'2w/1w':>6} "
              f"{'cpu s':>7} {'cap':>4}  target")
    print(header)
    print("-" * len(header))
    for job, variants in summary.items():
        for name, v in variants.items():
            runner, mode, workers = _mode_label(name)
            verdict = ""
            if name in ("mp1", "dask1") and "ratio_to_plain" in v:
                met = v["ratio_to_plain"] >= PLAIN_TARGET
                verdict = f">={PLAIN_TARGET}x plain: {'PASS' if met else 'MISS'}"
            speed = v.get("speedup_vs_1_worker")
            if speed is not None and not name.startswith("tfds"):
                verdict = (f">={SPEEDUP_TARGET}x 1w: "
                           f"{'PASS' if speed >= SPEEDUP_TARGET else 'MISS'}")
            vs_tfds = v.get("ratio_to_tfds_writer")
            print(f"{job:<10} {runner:<12} {mode:<16} {workers:>7} {v['seconds']:8.1f} "
                  f"{v['transitions']:>8} {v['steps_per_s']:8.0f} "
                  f"{v.get('ratio_to_plain', float('nan')):8.2f} "
                  f"{v.get('ratio_to_checked_plain', float('nan')):6.2f} "
                  f"{'' if vs_tfds is None else f'{vs_tfds:6.2f}':>6} "
                  f"{'' if speed is None else f'{speed:6.2f}':>6} {v['cpu_s']:7.1f} "
                  f"{v['capacity_before']:4.2f}  {verdict}")
    print("cpu s: CPU time of the benchmark process and its Beam/Dask worker processes during "
          "the run; cap: parallel capacity just before the run, of 2 cores (2.0 = nothing "
          "else running); x tfds: steps/s over the same runner with TFDS' Beam writer; "
          "x chk: over the loop+check row, the plain loop that also runs the per-episode check "
          "every job runs on what it writes (issue 14), for context: the targets are against "
          "the plain loop")
    if "isolation" in extra:
        print(f"timed: {extra['isolation']}")
    if "dask_cluster_start_s" in extra:
        print(f"dask: local clusters (scheduler and workers in processes of their own) started "
              f"once before the timings "
              f"({extra['dask_cluster_start_s']:.1f} s, not in the table) and warmed with one "
              f"{SMALL_JOB_EPISODES}-episode relabel each on the fresh workers ("
              + ", ".join(f"{k} {v:.1f} s" for k, v in extra.get("dask_first_job_s", {}).items())
              + ")")
    if "downsample_select_s" in extra:
        print(f"downsample: the Beam timings include learning the input's episode lengths "
              f"({extra['downsample_lengths_from']}: {extra['downsample_select_s']:.3f} s on "
              f"its own); steps = selected transitions")
    small = extra.get("small_job")
    if small:
        small_worst = max(small["default_s"], small["cli_s"])
        print(f"small job: `python -m pipelines.relabel` on {small['episodes']} episodes "
              f"({small['transitions']} steps): {small['default_s']:.1f} s wall with the "
              f"default options ({small['default_mode']}), {small['cli_s']:.1f} s as "
              f"`rlif-data relabel`, {small['old_default_s']:.1f} s with the old default "
              f"(2 worker processes) (cap {small['capacity_before']:.2f}); target <= "
              f"{SMALL_JOB_TARGET_S:.0f} s: "
              f"{'PASS' if small_worst <= SMALL_JOB_TARGET_S else 'MISS'}")
    checks = [(job, name, v) for job, variants in summary.items() for name, v in variants.items()
              if v.get("check_cpu_s") is not None]
    for job, name, v in checks:
        print(f"check inside {job} {name}: {v['check_cpu_s']:.2f} s of the job's "
              f"{v['cpu_s']:.1f} CPU s, {v['check_over_pass']:.3f}x the rest (target <= 0.25)")


def time_small_job(cache_dir: str, steps: int, chatter: str) -> dict[str, Any]:
    """Wall time of the relabel command on a small recording, in a fresh process each."""
    inputs = ensure_inputs(cache_dir, SMALL_JOB_EPISODES, steps, {"recording"}, chatter)
    rec = inputs["recording"]["path"]
    out: dict[str, Any] = {"episodes": SMALL_JOB_EPISODES,
                           "transitions": SMALL_JOB_EPISODES * steps,
                           "capacity_before": parallel_capacity()}
    tmp = tempfile.mkdtemp(prefix="rlif-small-job-")
    old_default = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    try:
        for label, entry, extra_args in (("default_s", "pipelines.relabel", []),
                                         ("cli_s", "rlif_cli.main", []),
                                         ("old_default_s", "pipelines.relabel", old_default)):
            job = [entry] if entry == "pipelines.relabel" else [entry, "relabel"]
            cmd = [sys.executable, "-m", *job, "--input", rec,
                   "--out", os.path.join(tmp, label), *extra_args]
            t0 = time.perf_counter()
            with open(chatter, "a") as log_file:
                subprocess.run(cmd, check=True, cwd=_ROOT, stdout=log_file, stderr=log_file)
            out[label] = time.perf_counter() - t0
            if label == "default_s":
                out["default_mode"] = output_lineage(os.path.join(tmp, label))["run"]["mode"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=None,
                   help="total input transitions (default 1,000,000; --quick: 50,000)")
    p.add_argument("--episode-steps", type=int, default=1000, help="transitions per episode")
    p.add_argument("--repeats", type=int, default=1, help="runs per variant (interleaved)")
    p.add_argument("--jobs", default="relabel,downsample", help="comma list")
    p.add_argument("--modes", default=",".join(BEAM_MODES),
                   help=f"comma list of Beam variants: {', '.join(BEAM_MODES)}")
    p.add_argument("--camera-steps", type=int, default=None,
                   help="transitions of the two-camera dataset (default 20,000; --quick: "
                   "2,000; 0: skip it)")
    p.add_argument("--camera-modes", default="default,in_memory,dask1,dask2",
                   help="comma list: 'default' (the job picks by size) and/or variants of "
                   "--modes, timed on the camera dataset beside cp")
    p.add_argument("--no-small-job", action="store_true",
                   help="skip the small-job wall-time measurement")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="generated inputs (reused)")
    p.add_argument("--quick", action="store_true", help="~50k-step smoke run")
    p.add_argument("--same-process", action="store_true",
                   help="time every variant in this process, as runs 1-7 did (default: each "
                   "in a fresh process, the second of two runs there)")
    p.add_argument("--variant", help=argparse.SUPPRESS)  # a variant's own process
    p.add_argument("--out", default=None,
                   help=f"JSON results path (default {os.path.relpath(DEFAULT_OUT, _ROOT)}, "
                   f"--quick: {os.path.relpath(QUICK_OUT, _ROOT)}); Beam/TFDS output goes "
                   "to the same path with .log")
    args = p.parse_args(argv)
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    args.steps = args.steps or (50_000 if args.quick else 1_000_000)
    if args.camera_steps is None:
        args.camera_steps = 2_000 if args.quick else 20_000
    args.jobs = [j.strip() for j in args.jobs.split(",") if j.strip() and j.strip() != "none"]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.camera_modes = [m.strip() for m in args.camera_modes.split(",") if m.strip()]
    for m in args.camera_modes:
        if m != "default" and m not in BEAM_MODES:
            p.error(f"unknown camera mode {m!r}; use default or one of {list(BEAM_MODES)}")
    for j in args.jobs:
        if j not in ("relabel", "downsample"):
            p.error(f"unknown job {j!r}")
    for m in args.modes:
        if m not in BEAM_MODES:
            p.error(f"unknown mode {m!r}; use {list(BEAM_MODES)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.variant:
        return variant_main(json.loads(args.variant))
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
    extra: dict[str, Any] = {}
    if not args.no_small_job:
        log("timing the small job (fresh processes) ...")
        extra["small_job"] = time_small_job(args.cache_dir, min(args.episode_steps, 200),
                                            chatter)
    cluster_dir = tempfile.mkdtemp(prefix="rlif-bench-dask-")
    dask_addresses, clusters, extra["dask_cluster_start_s"] = start_dask_clusters(
        args.modes + [m for m in args.camera_modes if m in BEAM_MODES and args.camera_steps],
        cluster_dir)
    if not clusters:
        del extra["dask_cluster_start_s"]
    else:
        extra["dask_first_job_s"] = warm_dask_clusters(dask_addresses, args.cache_dir, chatter)
    variants = make_variants(inputs, args.jobs, args.modes, total // 2, dask_addresses)
    if "downsample" in args.jobs:
        extra["downsample_select_s"], extra["downsample_lengths_from"] = time_selection_pass(
            inputs["built"]["path"])
    runs: dict[tuple[str, str], list[dict[str, float]]] = {k: [] for k in variants}
    spec = {"inputs": inputs, "dask_addresses": dask_addresses,
            "cluster_pids": [pid for cluster in clusters for pid in cluster.pids],
            "downsample_transitions": total // 2}
    extra["isolation"] = ("every variant in this process" if args.same_process else
                          "every variant in a fresh process, the second of two runs there")
    extra["parallel_capacity"] = parallel_capacity()
    log(f"parallel capacity now: {extra['parallel_capacity']:.2f} of 2 cores "
        f"(load average {os.getloadavg()[0]:.2f})")
    tmp_root = tempfile.mkdtemp(prefix="rlif-pipeline-throughput-")
    cameras = (pipeline_cameras.ensure_input(args.cache_dir, args.camera_steps, log)
               if args.camera_steps else None)
    try:
        if cameras:
            extra["cameras"] = {"input": cameras, "results": pipeline_cameras.run(
                cameras, args.camera_modes, lambda m: beam_args(m, dask_addresses), tmp_root,
                parallel_capacity, cpu_seconds, lambda: RedirectedOutput(chatter), log)}
        for r in range(args.repeats):
            for (job, name), fn in variants.items():
                out = os.path.join(tmp_root, f"{job}-{name}-{r}")
                capacity = parallel_capacity()
                load = os.getloadavg()[0]
                if args.same_process:
                    cpu0 = cpu_seconds()
                    with RedirectedOutput(chatter):
                        seconds, transitions, want_episodes = fn(out)
                    cpu = cpu_seconds() - cpu0
                else:
                    got = run_variant_isolated(spec, job, name, out, chatter)
                    seconds, transitions, cpu = got["seconds"], got["transitions"], got["cpu_s"]
                    want_episodes = got["episodes"]
                check_cpu_s = None
                if not name.startswith("plain"):
                    got = written_episodes(out)
                    if got != want_episodes:
                        raise RuntimeError(f"{job} {name} wrote {got} episodes, expected "
                                           f"{want_episodes}")
                    check = output_lineage(out).get("check", {})
                    check_cpu_s = check.get("seconds", 0) + check.get("worker_seconds", 0)
                shutil.rmtree(out, ignore_errors=True)
                runs[(job, name)].append({"seconds": seconds, "transitions": transitions,
                                          "check_cpu_s": check_cpu_s,
                                          "steps_per_s": transitions / seconds,
                                          "cpu_s": cpu, "load_before": load,
                                          "capacity_before": capacity})
                log(f"  repeat {r + 1}/{args.repeats} {job:<10} {name:<9} {seconds:7.1f} s "
                    f"{transitions / seconds:8.0f} steps/s  cpu {cpu:6.1f} s  "
                    f"(load before {load:.2f}, capacity {capacity:.2f})")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
        for cluster in clusters:
            cluster.close()
        shutil.rmtree(cluster_dir, ignore_errors=True)
    summary = summarize(runs)
    target_report = targets(summary, extra.get("small_job"))
    print(f"input: {total} transitions = {episodes} x {args.episode_steps}-step episodes, "
          f"{STATE_DIM}-dim state, {ACTION_DIM}-dim action; relabel reads the recording "
          f"layout ({inputs.get('recording', {}).get('shards', '-')} shards), downsample "
          f"the built layout ({inputs.get('built', {}).get('shards', '-')} shards); "
          f"median of {args.repeats}")
    print_table(summary, extra)
    if cameras:
        pipeline_cameras.print_table(cameras, extra["cameras"]["results"])
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
                     ("apache-beam", "tensorflow-datasets", "array_record", "numpy",
                      "dask", "distributed")},
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
