"""Which Beam runner a job runs on, how many workers it has, and the Dask cluster behind it.

Jobs take Beam's own pipeline options. Two things are added here:

* ``--runner=DaskRunner`` (or ``dask``) names Beam's Dask runner, which Beam's
  runner table does not list (it would want the full class path);
* a Dask job talks to a ``dask.distributed`` scheduler given by
  ``--dask_client_address`` or ``--dask_scheduler_file``; without either,
  the job starts a local cluster of worker processes for its own run and
  stops it afterwards. The scheduler is asked first, with a short timeout, so
  an address that does not answer is one clear error before anything runs,
  and its workers are counted: the sink makes at least that many shards and
  the job's input is split into ``--dask_npartitions`` partitions sized by
  bytes (Beam's Dask translation keeps a partition's output in memory);
* a DirectRunner job given no ``--direct_num_workers`` / ``--direct_running_mode``
  picks them by size (`choose_direct_mode`): small jobs run in the job's own
  process (no worker start-up, which costs more than their whole run), larger
  ones on 2 worker processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import dataclasses
import functools
import json
import logging
import math
import os
import threading
import time
from typing import Awaitable, Callable, Iterator, Mapping, Optional, Sequence

from rlif_data import errors

log = logging.getLogger(__name__)

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
_DASK_NAMES = ("dask", "daskrunner", DASK_RUNNER.lower())
# Seconds to wait for a scheduler to answer, and for it to have a worker.
DEFAULT_DASK_TIMEOUT_S = 10
# Bytes of job output per Dask partition: the translation holds a
# partition's whole output in a worker's memory between two steps.
PARTITION_BYTES = 64 << 20
# A DirectRunner job writing at most this much (bytes, episodes) runs in its
# own process unless told otherwise. 2 worker processes cost ~1.35 s of start-up
# per job (spawn, Beam's import, gRPC) and then halve the rest; measured on 2 idle
# cores (docs/scaling.md, run 7): 1M state steps (197 MB) 2.0 s in-process against
# 2.5 s on 2 workers, 20k two-camera steps (1837 MB) 16.6 s against 10.9 s. The two
# meet where the in-process job takes ~3.2 s: ~320 MB of either kind.
IN_PROCESS_MAX_BYTES = 320 << 20
# Recordings hold one shard file per episode: past this many, opening them
# is itself worth spreading over workers.
IN_PROCESS_MAX_EPISODES = 2000
# Dask's setting of the environment its worker processes start with (see `_local_cluster`).
MALLOC_TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
WORKER_MALLOC_TRIM = f"distributed.nanny.pre-spawn-environ.{MALLOC_TRIM_ENV}"
# glibc's malloc settings that an environment variable read at process start freezes
# (any of them turns off the adaptive mmap threshold), with glibc's default values.
_MALLOC_ENV_DEFAULTS = {"MALLOC_TRIM_THRESHOLD_": 128 << 10, "MALLOC_MMAP_THRESHOLD_": 128 << 10}
_MALLOC_FREEZING_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                        "MALLOC_MMAP_MAX_")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
# While a shard is written: the ceiling of glibc's adaptive mmap threshold on 64-bit
# (32 MiB), and its trim threshold (twice that), i.e. where it would settle by itself.
SHARD_MMAP_THRESHOLD = 32 << 20
SHARD_TRIM_THRESHOLD = 64 << 20
_shard_malloc = {"lock": threading.Lock(), "users": 0}
IN_PROCESS_ARGS = ("--direct_num_workers=1", "--direct_running_mode=in_memory")
PARALLEL_ARGS = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")
_DIRECT_MODE_FLAGS = ("--direct_num_workers", "--direct_running_mode")
_DIRECT_NAMES = ("DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")


class DaskSchedulerError(errors.RlifDataError):
    """The Dask scheduler a job was pointed at does not answer or has no workers."""


@dataclasses.dataclass(frozen=True)
class RunnerSetup:
    """What a job runs on, resolved from its Beam options.

    Attributes:
      options: the `PipelineOptions` to run with (Dask's runner by its class
        path, its scheduler address and partition count filled in).
      workers: worker processes (or threads) that run the job's elements at once.
      runner: the runner's short name, e.g. "DirectRunner", "DaskRunner".
      dask_workers: for Dask, the worker addresses of the scheduler (empty otherwise).
    """

    options: object
    workers: int
    runner: str
    dask_workers: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DirectMode:
    """How a job runs on the DirectRunner, and why (recorded in its lineage).

    Attributes:
      mode: "in_memory" (the job's own process), "multi_processing" (worker
        processes), "as given" (the job's options named the mode or worker
        count) or "not direct" (another runner).
      args: Beam options to append to the job's (empty unless chosen here).
      reason: one line saying why, e.g. "20 episodes, 2.6 MB: small job,
        in-process".
    """

    mode: str
    args: tuple[str, ...]
    reason: str


def _flag_values(args: Sequence[str], flag: str) -> list[str]:
    """Values given to `flag` (``--flag=v`` or ``--flag v``) in a command line, in order. Pure."""
    out = []
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            out.append(arg.split("=", 1)[1])
        elif arg == flag and i + 1 < len(args):
            out.append(args[i + 1])
    return out


def choose_direct_mode(beam_args: Sequence[str], episodes: int, num_bytes: int,
                       max_bytes: Optional[int] = None,
                       max_episodes: Optional[int] = None) -> DirectMode:
    """In-process or worker processes for a DirectRunner job, by its size. Pure.

    Options the job was given win: another ``--runner``, or either of
    ``--direct_num_workers`` / ``--direct_running_mode``, leaves them as they
    are. Otherwise a job of at most `max_episodes` episodes and `max_bytes`
    bytes runs in its own process (``in_memory``, 1 worker) and a larger one
    on 2 worker processes (``multi_processing``).

    Args:
      beam_args: the job's Beam options (a later ``--runner`` wins).
      episodes: episodes the job writes.
      num_bytes: the size of what it writes (its input's, as estimated).
      max_bytes, max_episodes: the largest job that runs in-process (None:
        `IN_PROCESS_MAX_BYTES`, `IN_PROCESS_MAX_EPISODES`).

    Returns:
      The `DirectMode`; its `args` go after `beam_args`.
    """
    runners = _flag_values(beam_args, "--runner")
    if runners and runner_name(runners[-1]) not in _DIRECT_NAMES:
        return DirectMode("not direct", (), f"runner {runner_name(runners[-1])}")
    given = [f for f in _DIRECT_MODE_FLAGS if _flag_values(beam_args, f)]
    if given:
        return DirectMode("as given", (), f"{', '.join(given)} given")
    max_bytes = IN_PROCESS_MAX_BYTES if max_bytes is None else max_bytes
    max_episodes = IN_PROCESS_MAX_EPISODES if max_episodes is None else max_episodes
    size = f"{episodes} episodes, {num_bytes / 1e6:.1f} MB"
    if episodes <= max_episodes and num_bytes <= max_bytes:
        return DirectMode("in_memory", IN_PROCESS_ARGS,
                          f"{size} (at most {max_episodes} episodes and "
                          f"{max_bytes >> 20} MiB): in-process, no worker start-up")
    return DirectMode("multi_processing", PARALLEL_ARGS,
                      f"{size} (over {max_episodes} episodes or {max_bytes >> 20} MiB): "
                      "2 worker processes")


def direct_pipeline_runner(options) -> Optional[object]:
    """The runner a DirectRunner job runs on: Beam's FnApiRunner, set up as the DirectRunner would.

    Beam's DirectRunner (``SwitchingDirectRunner``) first tries its Prism
    runner, a Go binary it downloads on first use: offline that attempt fails
    after ~0.1 s per job (docs/scaling.md, run 5) and falls back to the
    FnApiRunner; online it would run the job on another runner than the
    options say. The sink's graphs (Create, ParDo, GroupByKey, Flatten) are
    always ones the FnApiRunner runs, so a job goes there directly, with the
    provision info the DirectRunner gives it (``--direct_num_workers`` and
    ``--direct_running_mode`` are read by the FnApiRunner itself).

    Args:
      options: the job's `PipelineOptions`.

    Returns:
      An FnApiRunner for ``--runner=DirectRunner`` (or unset, or
      ``SwitchingDirectRunner``); None for any other runner (Beam picks it
      from the options), ``BundleBasedDirectRunner`` included, and where
      this Beam release lays its internals out otherwise.
    """
    from apache_beam.options.pipeline_options import StandardOptions

    if runner_name(options.view_as(StandardOptions).runner) not in (
            "DirectRunner", "SwitchingDirectRunner"):
        return None
    # Beam's internals, pinned only to 2.x in pyproject.toml: a release that moves them
    # gets Beam's own DirectRunner back (None) instead of a failed job.
    try:
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))
    except (ImportError, AttributeError, TypeError) as exc:
        log.debug("Beam's FnApiRunner set-up moved (%s): using its DirectRunner", exc)
        return None


def is_dask(runner: Optional[str]) -> bool:
    """Whether a ``--runner`` value names Beam's Dask runner. Pure."""
    return bool(runner) and runner.lower() in _DASK_NAMES


def runner_name(runner: Optional[str]) -> str:
    """The short name of a ``--runner`` value ("DirectRunner" when unset). Pure."""
    if not runner:
        return "DirectRunner"
    if is_dask(runner):
        return "DaskRunner"
    return runner.rsplit(".", 1)[-1]


def default_npartitions(threads: int, items: int, estimated_bytes: int) -> int:
    """Dask partitions for a job's input. Pure.

    Two per worker thread, so a slow partition does not leave a thread idle,
    and more when the output is large: about `PARTITION_BYTES` each. Never
    more than the input has items.

    Args:
      threads: worker threads of the Dask cluster.
      items: elements the job's first step creates (e.g. episode indices).
      estimated_bytes: expected size of the job's output.
    """
    by_size = math.ceil(max(0, estimated_bytes) / PARTITION_BYTES)
    return max(1, min(max(1, items), max(2 * max(1, threads), by_size)))


def direct_workers(options) -> int:
    """Workers of a DirectRunner run: ``--direct_num_workers`` (0: every core)."""
    from apache_beam.options.pipeline_options import DirectOptions

    n = options.view_as(DirectOptions).direct_num_workers
    return n if n and n > 0 else (os.cpu_count() or 1)


def other_runner_workers(options) -> int:
    """Workers of a remote runner as its options say (Dataflow ``--num_workers``), else 1."""
    from apache_beam.options.pipeline_options import WorkerOptions

    worker = options.view_as(WorkerOptions)
    return max(1, worker.num_workers or 0, worker.max_num_workers or 0)


@contextlib.contextmanager
def runner_setup(beam_args: Sequence[str], *, items: int,
                 estimated_bytes: int) -> Iterator[RunnerSetup]:
    """Resolve a job's Beam options; for Dask, connect to (or start) its cluster meanwhile.

    Args:
      beam_args: the job's Beam pipeline options.
      items: elements the job's first step creates (sizes Dask's partitions).
      estimated_bytes: expected size of the job's output (sizes Dask's partitions).

    Yields:
      The `RunnerSetup`. A local Dask cluster started here is stopped on exit.

    Raises:
      DaskSchedulerError: the scheduler did not answer within the connection
        timeout (``--dask_connection_timeout``, default 10 s) or has no workers.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    name = runner_name(standard.runner)
    if name != "DaskRunner":
        local = name in _DIRECT_NAMES
        workers = direct_workers(options) if local else other_runner_workers(options)
        yield RunnerSetup(options, workers, name)
        return
    # Registers DaskOptions, so the options parse the --dask_* flags as Beam's own.
    import apache_beam.runners.dask.dask_runner  # noqa: F401

    options = PipelineOptions(list(beam_args))
    options.view_as(StandardOptions).runner = DASK_RUNNER
    with _dask_cluster(options, items, estimated_bytes) as setup:
        yield setup


@contextlib.contextmanager
def _dask_cluster(options, items: int, estimated_bytes: int) -> Iterator[RunnerSetup]:
    from apache_beam.runners.dask.dask_runner import DaskOptions

    dask = options.view_as(DaskOptions)
    timeout = dask.timeout if isinstance(dask.timeout, int) else DEFAULT_DASK_TIMEOUT_S
    dask.timeout = timeout  # the runner's own client waits as long as the probe did
    with contextlib.ExitStack() as stack:
        if not dask.address and not dask.scheduler_file:
            dask.address = stack.enter_context(_local_cluster())
        workers, threads = _probe_scheduler(dask.address, dask.scheduler_file, timeout)
        if not dask.npartitions and not dask.partition_size:
            dask.npartitions = default_npartitions(threads, items, estimated_bytes)
        log.info("Dask scheduler %s: %d workers, %d threads, %s partitions",
                 dask.address or dask.scheduler_file, len(workers), threads,
                 dask.npartitions or f"{dask.partition_size}-element")
        yield RunnerSetup(options, len(workers), "DaskRunner", tuple(workers))


@contextlib.contextmanager
def without_env(name: str) -> Iterator[None]:
    """Leave environment variable `name` out of ``os.environ`` meanwhile (restored after).

    Dask's nannies write their workers' start-up variables into the
    environment of the process that hosts them, for good: processes started
    later there inherit them (`_local_cluster`).
    """
    before = os.environ.pop(name, None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def frozen_malloc_settings(start_env: Mapping[str, str]) -> Optional[tuple[int, int]]:
    """glibc's (trim threshold, mmap threshold) when the start-up environment froze them. Pure.

    Args:
      start_env: the environment the process was started with (its
        ``/proc/self/environ``; not ``os.environ``, which Dask's nannies
        change after glibc has read it).

    Returns:
      None when no ``MALLOC_*_`` variable that turns off glibc's adaptive
      mmap threshold was set (malloc adapts by itself: nothing to undo);
      else the two thresholds glibc runs with, as the variables set them
      (glibc's 128 KiB where one is not given).

    Raises:
      ValueError: a threshold variable that is not an integer (what glibc
        made of it is not known: the caller leaves such a process alone).
    """
    if not any(name in start_env for name in _MALLOC_FREEZING_ENV):
        return None
    trim, mmap = (int(start_env.get(name, default))
                  for name, default in _MALLOC_ENV_DEFAULTS.items())
    return trim, mmap


def _start_environ() -> dict[str, str]:
    """The environment this process was started with (empty where /proc is missing)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


@functools.lru_cache(maxsize=1)
def _frozen_malloc() -> Optional[tuple[ctypes.CDLL, tuple[int, int]]]:
    """(libc, the frozen thresholds) for a glibc process started with them frozen, else None."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        settings = frozen_malloc_settings(_start_environ())
        libc = ctypes.CDLL("libc.so.6")
    except (ValueError, OSError):
        return None
    return None if settings is None else (libc, settings)


@contextlib.contextmanager
def shard_allocator() -> Iterator[None]:
    """Meanwhile, glibc's malloc keeps the memory a shard's episodes churn through.

    Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``
    (``distributed.nanny.pre-spawn-environ``), which fixes glibc's mmap
    threshold at 128 KiB and trims the heap at 64 KiB: every episode's
    record and buffers above that are mapped, faulted in and unmapped anew.
    On the 1M-step relabel that made a Dask worker's shards take 2.8 s
    where the same work takes 2.0-2.3 s in-process (docs/scaling.md, run 5).
    In a process started so, this raises both thresholds to where glibc's
    adaptive threshold would settle (`SHARD_MMAP_THRESHOLD`,
    `SHARD_TRIM_THRESHOLD`) while a shard is written, then sets them back to
    what the environment said and hands the free memory back to the system
    (``malloc_trim``), which is what Dask's setting is for. Nested and
    concurrent uses (worker threads) share one raise: the last one out
    restores. Any other process (glibc adapting by itself, or not glibc) is
    left alone: changing a threshold would turn the adaptation off for good.
    """
    frozen = _frozen_malloc()
    if frozen is None:
        yield
        return
    libc, (trim, mmap) = frozen

    def raise_thresholds() -> None:
        libc.mallopt(_M_MMAP_THRESHOLD, SHARD_MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, SHARD_TRIM_THRESHOLD)

    def restore() -> None:
        libc.mallopt(_M_MMAP_THRESHOLD, mmap)
        libc.mallopt(_M_TRIM_THRESHOLD, trim)
        libc.malloc_trim(0)

    with _while_used(_shard_malloc, raise_thresholds, restore):
        yield


@contextlib.contextmanager
def _while_used(state: dict, apply: Callable[[], None],
                restore: Callable[[], None]) -> Iterator[None]:
    """A process-wide setting `apply`'d by the first of its users in and `restore`'d by the
    last one out (nested and concurrent users: worker threads, jobs run from threads)."""
    with state["lock"]:
        state["users"] += 1
        if state["users"] == 1:
            apply()
    try:
        yield
    finally:
        with state["lock"]:
            state["users"] -= 1
            if state["users"] == 0:
                restore()


# Milliseconds between two samples of Beam's state sampler in this process (`short_state_sampling`).
STATE_SAMPLING_MS = 10
_state_sampling = {"lock": threading.Lock(), "users": 0, "saved": None}


@contextlib.contextmanager
def short_state_sampling() -> Iterator[None]:
    """Meanwhile, bundles run in this process wait at most `STATE_SAMPLING_MS` as they end.

    Beam's state sampler (time per step, for its metrics) sleeps between
    samples in a thread of its own, ramping up to 200 ms; a bundle's end
    joins that thread, so it waits out the current sleep: 0.05-0.19 s at
    the end of every in-process job of a second or more (docs/scaling.md,
    run 7), on a 2 s job up to a tenth of its time. The period is a default
    argument of the sampler's constructor, which the bundle processor never
    passes, so the default is what changes here, for as long as a job runs
    in this process (nested and concurrent jobs share one change; the last
    one out restores it). Worker processes are not reached (theirs keep
    Beam's period). A Beam release that lays the sampler out otherwise is
    left as it is.
    """
    try:
        from apache_beam.runners.worker import statesampler

        init = statesampler.StateSampler.__init__
        defaults = init.__defaults__
    except (ImportError, AttributeError):
        defaults = None
    if not (isinstance(defaults, tuple) and len(defaults) == 1
            and isinstance(defaults[0], int)):
        yield
        return
    state = _state_sampling

    def shorten() -> None:
        state["saved"] = init.__defaults__
        init.__defaults__ = (min(STATE_SAMPLING_MS, defaults[0]),)

    def restore() -> None:
        init.__defaults__ = state["saved"]

    with _while_used(state, shorten, restore):
        yield


@contextlib.contextmanager
def _local_cluster(workers: Optional[int] = None) -> Iterator[str]:
    """A ``dask.distributed`` cluster of worker processes on 127.0.0.1 for one job."""
    import dask
    from distributed import LocalCluster

    n = workers or os.cpu_count() or 1
    # The scheduler runs in this process and logs every worker's start and stop
    # at INFO; a job shows that with --verbose only.
    chatter = logging.getLogger("distributed")
    level = chatter.level
    if not logging.getLogger("pipelines").isEnabledFor(logging.INFO):
        chatter.setLevel(logging.ERROR)
    try:
        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
        # adaptive mmap threshold: every large array is then mapped and faulted in anew.
        # The same in-process relabel took 6-8 % more CPU so on state data and 38 % on
        # camera frames (docs/scaling.md). This cluster lives for one job: handing freed
        # memory back to the system early buys nothing. None unsets the variable; a
        # cluster started earlier in this process left it in os.environ, where the
        # workers would inherit it.
        with dask.config.set({WORKER_MALLOC_TRIM: None}), without_env(MALLOC_TRIM_ENV):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR)
        try:
            yield cluster.scheduler_address
        finally:
            cluster.close()
    finally:
        chatter.setLevel(level)


def describe_scheduler(address: Optional[str], scheduler_file: Optional[str]) -> str:
    """How a message names the scheduler. Pure."""
    if address:
        return f"Dask scheduler {address} (--dask_client_address)"
    return f"the Dask scheduler named in {scheduler_file} (--dask_scheduler_file)"


def _probe_scheduler(address: Optional[str], scheduler_file: Optional[str],
                     timeout: int) -> tuple[list[str], int]:
    """(worker addresses, worker threads) of a scheduler, asked within `timeout` seconds.

    One ``identity`` call over a bare connection (with the security settings
    a client would use), repeated until the scheduler has a worker: 1-3 ms
    where a `distributed.Client` took 15 ms to connect and close, in every job.
    """
    where = describe_scheduler(address, scheduler_file)
    fix = ("start one (`dask scheduler`, then `dask worker ADDRESS`) or fix the address; "
           "nothing was written")
    if scheduler_file and not address:
        address = _scheduler_file_address(scheduler_file, where, fix)
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = _run_coroutine(lambda: _scheduler_identity(address, timeout))
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskSchedulerError(
                f"{where} did not answer within {timeout} s ({type(exc).__name__}); "
                f"{fix}") from None
        workers = info.get("workers") or {}
        if workers:
            return sorted(workers), sum(int(w.get("nthreads", 1)) for w in workers.values())
        if time.monotonic() >= deadline:
            raise DaskSchedulerError(
                f"{where} has no workers (waited {timeout} s); start `dask worker "
                f"{info.get('address', address)}` on each machine; nothing was written")
        time.sleep(0.1)


def _scheduler_file_address(path: str, where: str, fix: str) -> str:
    """The address a scheduler wrote into its ``--scheduler-file`` (JSON)."""
    try:
        with open(path) as f:
            address = json.load(f).get("address")
    except FileNotFoundError:
        raise DaskSchedulerError(f"{where}: no such file; {fix}") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise DaskSchedulerError(f"{where}: not a scheduler file ({exc}); {fix}") from None
    if not isinstance(address, str) or not address:
        raise DaskSchedulerError(f"{where}: names no scheduler address; {fix}")
    return address


async def _scheduler_identity(address: str, timeout: float) -> dict:
    """The scheduler's answer to ``identity``: its address, workers and their threads."""
    from distributed.core import rpc
    from distributed.security import Security

    args = Security().get_connection_args("client")
    async with rpc(address, timeout=timeout, connection_args=args) as scheduler:
        return await scheduler.identity()


def _run_coroutine(make: Callable[[], Awaitable]):
    """Run a coroutine to its end from synchronous code, inside a running event loop too."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop runs here (a notebook)
        return pool.submit(lambda: asyncio.run(make())).result()
