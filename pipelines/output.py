"""Write a Beam PCollection of episodes as a TFDS dataset (array_record), atomically.

The sink (`pipelines.sink`) does the work: shards planned by the driver,
written by one worker each, checked against the plan, then TFDS'
`dataset_info.json` and features (on every runner Beam's Dask translation
handles too; `pipelines.runners`). TFDS' own Beam writer remains behind
`legacy_tfds_writer`, for benchmarks. Around it:

* the dataset is built under a hidden staging directory beside the target and
  moved into place with one `rename` only after TFDS finished, so a failed or
  killed job never leaves a directory a reader could take for a complete one;
* an existing target is refused: nothing is overwritten silently;
* the dataset metadata names the job, its parameters, its inputs and the code
  version (lineage for the registry), plus the schema and format version;
* the staging directory's name carries its owner (host, pid, process start
  time), so the next job writing beside it, or ``rlif-data gc --jobs DIR``,
  removes the staging directories of killed jobs and never a live one's;
* Beam's worker processes import `pipelines.worker_guard` (``--beam_plugins``)
  and die with the job, even when it is SIGKILLed;
* a job started from the command line keeps what the workers print in a log
  file: a failure is one line naming that file, not pages of worker logs;
* a DirectRunner job not told how to run picks in-process or 2 worker
  processes by its size (`runners.choose_direct_mode`, recorded in the
  lineage's ``run``);
* before the rename the job checks what it wrote, as ``rlif-data check``
  would (`pipelines.job_checks`: per episode on the workers, the dataset-level
  checks in the driver from the shard notes): errors (with ``strict``,
  warnings too) fail the job and nothing is published; the findings per kind
  go to the lineage's ``check``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import traceback
import uuid
from typing import Any, Callable, Mapping, Optional, Sequence

from pipelines import episode_lengths, graph_rules, job_checks, processes, runners, sink
from rlif_data import errors, lineage
from rlif_data import schema as sc
from rlif_data.faults import checkpoint

log = logging.getLogger(__name__)
STAGING_PREFIX = ".staging-"
WORKER_GUARD = "pipelines.worker_guard"
# <prefix><output name>-<host hash>-<pid>-<process start time>-<random>
_STAGING_RE = re.compile(r"^" + re.escape(STAGING_PREFIX)
                         + r"(?P<out>.*)-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-(?P<start>\d+)-[0-9a-f]{8}$")
_FAILURE_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception|Failure|Exit)\w*: \S")
# Set by `show_job_logs`: whether a job keeps worker output in a log file.
_capture = {"worker_output": False}
# Set by `legacy_tfds_writer`: jobs write through TFDS' Beam writer instead of the sink.
_writer = {"tfds": False}
EpisodeSource = Callable[[], Any]
"""Returns a Beam PTransform (applied to the pipeline root) yielding (int key, episode).

A `pipelines.common.EpisodesByKey` is one too, and lets the sink read each
episode where its shard is written (no shuffle of serialised episodes)."""


class OutputExistsError(errors.RlifDataError):
    """The job's output directory already exists."""


class PipelineFailedError(errors.RlifDataError):
    """A job failed; the message names the failing input and episode when known."""


def _input_failure(exc: BaseException) -> Optional[str]:
    """The message of the `PipelineInputError` behind a Beam failure, if any.

    Beam re-raises the innermost error of a failed element (e.g. the C++
    reader's "file too small"), so our message naming the file and episode
    sits further down the exception chain, or, from worker processes, inside
    the remote traceback text.
    """
    from pipelines.common import PipelineInputError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, PipelineInputError):
            return str(exc).split(" [while running")[0]
        exc = exc.__cause__ or exc.__context__
    return None


def _remote_input_failure(text: str) -> Optional[str]:
    marker = "PipelineInputError: "
    if marker not in text:
        return None
    return text.split(marker, 1)[1].splitlines()[0].split(" [while running")[0]


# The job record is the lineage contract's (`rlif_data.lineage`); jobs build it by this name.
JobInfo = lineage.JobRecord


def _builder_class(schema: sc.EpisodeSchema, metadata: dict[str, Any], source: EpisodeSource,
                   description: str):
    import tensorflow_datasets as tfds

    dataset_name = schema.name

    class RlifBeamDataset(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """A dataset whose examples come from a Beam transform given at run time."""

        name = dataset_name
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            info = tfds.rlds.rlds_base.build_info(
                sc.dataset_config(schema, description), self, tfds.core.MetadataDict(metadata)
            )
            # Examples sorted by key (input order), so a rebuild gives the same
            # files; rlds_base.build_info has no argument for it.
            info.as_proto.disable_shuffling = True
            return info

        def _split_generators(self, dl_manager):
            del dl_manager
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            return source()

        # TFDS prints these two with termcolor, whatever the log level: "Downloading
        # and preparing dataset Unknown size ..." (nothing is downloaded) and
        # "Subsequent calls will reuse this data" (about a staging directory the
        # job renames away). Logged instead, so --verbose still shows them.
        def _log_download_bytes(self):
            log.info("building dataset %s under %s", self.name, self.data_dir)

        def _log_download_done(self):
            log.info("dataset %s built under %s", self.name, self.data_dir)

    return RlifBeamDataset


def write_dataset(
    source: EpisodeSource,
    out_dir: str,
    schema: sc.EpisodeSchema,
    job: JobInfo,
    beam_args: Optional[Sequence[str]] = None,
    description: str = "",
    *,
    keys: Optional[Sequence[int]] = None,
    estimated_bytes: int = 0,
    strict: bool = False,
    side_files: Optional[Mapping[str, str]] = None,
) -> str:
    """Run the Beam graph `source` and publish its episodes at `out_dir`.

    Args:
      source: returns the PTransform producing ``(unique int key, episode)`` pairs;
        the dataset stores episodes in key order.
      out_dir: the dataset directory to create (must not exist).
      schema: schema of the episodes.
      job: lineage recorded in the metadata.
      beam_args: Beam pipeline options, e.g. ``["--runner=DirectRunner",
        "--direct_num_workers=2", "--direct_running_mode=multi_processing"]``
        or ``["--runner=DaskRunner", "--dask_client_address=HOST:8786"]``.
      description: dataset description.
      keys: every key `source` produces (the sink plans its shards from
        them and checks that each one was written).
      estimated_bytes: expected size of the output, to size the shards
        (about `sink.TARGET_SHARD_BYTES` each, at least one per worker) and,
        with the number of keys, to run a small DirectRunner job in-process
        (`runners.choose_direct_mode`; options in `beam_args` win).
      strict: fail the job on check warnings too (errors always fail it).
      side_files: file name -> text written (and fsynced) beside the shards
        before the dataset becomes visible, e.g. the invalid marks of the
        episodes it kept (`rlif_data.invalid`).

    Returns:
      `out_dir`, now holding a complete TFDS dataset.

    Raises:
      OutputExistsError: `out_dir` exists.
      PipelineFailedError: the pipeline failed, or its shards are not the
        planned ones (episodes lost on the way); the message names the input
        and episode, or (command-line jobs) gives the failure's last line and
        the log file with everything the workers printed. Nothing is left at
        `out_dir`.
      CheckFailedError: what the job wrote fails `rlif_data.checks` (one line:
        counts, the first finding, the path of the full JSON report).
      DaskSchedulerError: the Dask scheduler does not answer or has no workers.
      UnsafeGraphError: the job's graph breaks a rule of `pipelines.graph_rules`.
      ValueError: no `keys`, or a key given twice.
      Exception: whatever else failed inside the pipeline (library use).
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir):
        raise OutputExistsError(
            f"{out_dir} already exists; choose a new output directory (jobs never overwrite)"
        )
    if _writer["tfds"]:
        if side_files:
            raise ValueError("the legacy TFDS writer writes no side files")
        return _write_with_tfds(source, out_dir, schema, job, beam_args, description)
    if not keys:
        raise ValueError(f"job {job.job!r} gave no episode keys; nothing to write")
    staging, metadata = _new_staging(out_dir, schema, job)
    args = list(beam_args or default_beam_args())
    mode = runners.choose_direct_mode(args, len(keys), estimated_bytes)
    args += [*mode.args, f"--beam_plugins={WORKER_GUARD}"]
    try:
        with _job_processes(staging):
            setup, plan, notes = _run_sink(source, staging, out_dir, schema, job, args,
                                           list(keys), estimated_bytes, mode)
            metadata = _with_run(metadata, setup, plan, notes, mode)
            metadata["lineage"]["check"] = check_output(notes, out_dir, job, strict)
            sink.write_metadata(staging, schema, metadata, description, plan, notes)
            write_side_files(staging, side_files or {})
            write_side_files(staging, episode_lengths.side_file(notes))  # for downsample
            _rename_into_place(staging, out_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return out_dir


def _rename_into_place(built: str, out_dir: str) -> None:
    """Publish a job's complete output with one rename: readers see nothing or everything.

    The named fault points on both sides let tests kill a job just before and after it.
    """
    checkpoint("job.built")
    os.rename(built, out_dir)
    checkpoint("job.renamed")


def write_side_files(directory: str, files: Mapping[str, str]) -> None:
    """Write each ``name -> text`` of `files` into `directory` (new files, fsynced).

    Raises:
      ValueError: a name that is not a plain file name.
      FileExistsError: the file exists.
    """
    for name, text in files.items():
        if os.path.basename(name) != name or name.startswith("."):
            raise ValueError(f"side file {name!r}: give a plain, non-hidden file name")
        with open(os.path.join(directory, name), "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def _graph_source(source: EpisodeSource) -> Any:
    """What the sink builds its graph from: an `EpisodesByKey` as is, else the job's transform."""
    from pipelines.common import EpisodesByKey

    return source if isinstance(source, EpisodesByKey) else source()


def _input_label(job: JobInfo) -> str:
    """The job's inputs as element errors name them."""
    names = [i.path or i.ref for i in job.inputs if i.path or i.ref]
    return ", ".join(names) if names else str(job.job)


def _run_sink(source: EpisodeSource, staging: str, out_dir: str, schema: sc.EpisodeSchema,
              job: JobInfo, args: list[str], keys: list[int], estimated_bytes: int,
              mode: "runners.DirectMode"):
    """Run the job's graph and the sink into `staging`; returns (setup, plan, checked notes).

    The runner's set-up (a local Dask cluster's worker processes included)
    writes its output to the job log like the pipeline's workers.
    """
    job_log = _job_log_path(job.job) if _capture["worker_output"] else None
    try:
        with _stderr_to(job_log), runners.runner_setup(
                args, items=len(keys), estimated_bytes=estimated_bytes) as setup:
            plan = sink.plan_shards(keys, estimated_bytes, setup.workers)
            log.info("building dataset %s under %s: %d episodes in %d shards on %s "
                     "(%d workers; %s: %s)", schema.name, staging, plan.num_episodes,
                     plan.num_shards, setup.runner, setup.workers, mode.mode, mode.reason)
            sink.run_sink(_graph_source(source), schema, plan, staging, setup.options,
                          _input_label(job),
                          graph_check=graph_rules.check, view=lineage.view_of_job(job),
                          runner=runners.direct_pipeline_runner(setup.options),
                          workers=setup.workers)
    except (graph_rules.UnsafeGraphError, runners.DaskSchedulerError):
        _discard_log(job_log)  # raised before anything ran: the log holds nothing
        raise
    except Exception as exc:
        failure = _job_failure(job.job, out_dir, exc, job_log)
        if failure is None:
            raise
        raise failure from exc
    _discard_log(job_log)  # nothing went wrong: the workers' chatter is not news
    try:
        notes = sink.collect_shards(staging, schema.name, plan)
    except sink.ShardCheckError as exc:
        raise PipelineFailedError(
            f"job {job.job!r} failed, nothing was written to {out_dir}: {exc}") from exc
    return setup, plan, notes


def _with_run(metadata: dict[str, Any], setup: "runners.RunnerSetup",
              plan: "sink.ShardPlan", notes: Sequence[dict[str, Any]],
              mode: "runners.DirectMode") -> dict[str, Any]:
    """`metadata` with the run's runner, mode, workers, shards and the processes that wrote them."""
    lineage = dict(metadata["lineage"])
    lineage["run"] = {"runner": setup.runner, "mode": mode.mode, "mode_reason": mode.reason,
                      "workers": setup.workers, "shards": plan.num_shards,
                      "writers": sorted({str(n["writer"]) for n in notes})}
    return {**metadata, "lineage": lineage}


def check_output(notes: Sequence[dict[str, Any]], out_dir: str, job: JobInfo,
                 strict: bool = False) -> dict[str, Any]:
    """Check a job's output from its shard notes; returns what the lineage records.

    The workers ran the per-episode checks on what they wrote; this runs the
    dataset-level ones (`job_checks.dataset_report`): the report equals
    ``rlif-data check OUT_DIR`` once the output is in place.

    Args:
      notes: the shard notes (`sink.collect_shards`), with the episodes' summaries.
      out_dir: where the output is going (reports name it).
      job: the job (its name, and its view for the RLIF reward checks).
      strict: warnings fail the job too.

    Returns:
      ``{"errors", "warnings", "counts" (findings per kind), "strict",
      "seconds" (the driver's), "worker_seconds" (the workers', summed)}``.

    Raises:
      CheckFailedError: the output fails the check; one line with the counts,
        the first finding and the path of the full JSON report.
    """
    from rlif_data import checks

    t0 = time.perf_counter()
    summaries = [s for note in notes for s in note.get("checks", ())]
    # Looking up the episodes' envs (for the report's notes) makes them, and
    # MuJoCo prints its warnings on fd 2: a quiet job drops them.
    noise = _job_log_path(f"{job.job}-check") if _capture["worker_output"] else None
    try:
        with _stderr_to(noise):
            report = job_checks.dataset_report(summaries, out_dir, lineage.view_of_job(job))
    finally:
        _discard_log(noise)
    report.seconds = time.perf_counter() - t0
    workers = job_checks.worker_seconds(summaries)
    log.info("check: %s (%.2f s in the driver, %.2f s in the workers)", report.summary(),
             report.seconds, workers)
    try:
        checks.enforce(report, strict=strict)
    except checks.CheckFailedError:
        raise checks.CheckFailedError(check_failure_line(report, job.job, strict,
                                                         _check_report_path(report, job.job)))
    return {"errors": len(report.errors), "warnings": len(report.warnings),
            "counts": report.counts(), "strict": strict, "seconds": round(report.seconds, 3),
            "worker_seconds": round(workers, 3)}


def check_failure_line(report: Any, job: str, strict: bool, report_path: Optional[str]) -> str:
    """The one line a job that fails its check ends with. Pure.

    Args:
      report: the `rlif_data.checks.Report` (its `dataset` the job's output path).
      job: the job's name.
      strict: whether warnings failed it.
      report_path: where the full JSON report went (None: it could not be written).
    """
    first = (report.errors or report.findings)[0]
    where = f"episode {first.episode}" + (f" step {first.step}" if first.step is not None else "")
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.counts().items()))
    fix = ("fix the input or drop --strict to accept warnings" if strict and not report.errors
           else "fix the input it was made from")
    full = f"; full report: {report_path}" if report_path else ""
    return (f"job {job!r} wrote data that fails its check, nothing was written to "
            f"{report.dataset}: {len(report.errors)} error(s), {len(report.warnings)} "
            f"warning(s) ({counts}); first: {where}: {first.kind}: {first.message}; "
            f"{fix}{full}")


def _check_report_path(report: Any, job: str) -> Optional[str]:
    """Write a failed check's full report beside the job logs; its path, or None."""
    from rlif_data import checks

    path = _job_log_path(f"{job}-check", suffix=".json")
    if path is None:
        return None
    try:
        return checks.write_report(report, path)
    except OSError:
        return None


@contextlib.contextmanager
def legacy_tfds_writer():
    """Meanwhile, jobs write through TFDS' own Beam writer, as before `pipelines.sink`.

    For benchmarks that compare the two paths in one run. That writer needs
    TensorFlow on the driver and fails on Beam's DaskRunner (its shard
    assignment reads a side input that Dask leaves empty).
    """
    before = _writer["tfds"]
    _writer["tfds"] = True
    try:
        yield
    finally:
        _writer["tfds"] = before


def _new_staging(out_dir: str, schema: sc.EpisodeSchema, job: JobInfo
                 ) -> tuple[str, dict[str, Any]]:
    """A fresh staging directory beside `out_dir` (dead ones of killed jobs removed first),
    and the output's metadata: format version, schema, lineage."""
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    for path in remove_stale_staging(parent):
        log.warning("removed %s, left by a job that was killed", path)
    metadata = {sc.FORMAT_VERSION_KEY: sc.FORMAT_VERSION, sc.SCHEMA_KEY: schema.to_json(),
                "lineage": job.metadata()}
    return make_staging_dir(out_dir), metadata


def _write_with_tfds(source: EpisodeSource, out_dir: str, schema: sc.EpisodeSchema,
                     job: JobInfo, beam_args: Optional[Sequence[str]], description: str) -> str:
    """`write_dataset` through TFDS' Beam writer (`legacy_tfds_writer`)."""
    staging, metadata = _new_staging(out_dir, schema, job)
    builder_cls = _builder_class(schema, metadata, source, description)
    with _job_processes(staging):
        _build_and_rename(builder_cls, staging, out_dir, job, beam_args)
    return out_dir


def _build_and_rename(builder_cls, staging: str, out_dir: str, job: JobInfo,
                      beam_args: Optional[Sequence[str]]) -> None:
    """Run TFDS' Beam build in `staging`, then rename the dataset to `out_dir`."""
    import tensorflow_datasets as tfds
    from apache_beam.options.pipeline_options import PipelineOptions

    try:
        builder = builder_cls(data_dir=staging, file_format="array_record")
        args = list(beam_args or default_beam_args())
        options = PipelineOptions(args + [f"--beam_plugins={WORKER_GUARD}"])
        job_log = _job_log_path(job.job) if _capture["worker_output"] else None
        try:
            with _stderr_to(job_log):
                builder.download_and_prepare(
                    download_config=tfds.download.DownloadConfig(beam_options=options)
                )
        except Exception as exc:
            failure = _job_failure(job.job, out_dir, exc, job_log)
            if failure is None:
                raise
            raise failure from exc
        _discard_log(job_log)  # nothing went wrong: the workers' chatter is not news
        _rename_into_place(os.fspath(builder.data_dir), out_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)


# -- staging directories and their owners -------------------------------------------


def _host_id() -> str:
    """Six hex digits naming this host (staging directories on a shared disk)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def make_staging_dir(out_dir: str) -> str:
    """Create the staging directory of a job writing `out_dir`, named after its owner."""
    pid = os.getpid()
    name = (f"{STAGING_PREFIX}{os.path.basename(out_dir)}-{_host_id()}-{pid}-"
            f"{processes.process_start_time(pid) or 0}-{uuid.uuid4().hex[:8]}")
    path = os.path.join(os.path.dirname(out_dir), name)
    os.makedirs(path)
    return path


def staging_is_stale(entry: str, host: str,
                     alive: Callable[[int, int], bool]) -> bool:
    """Whether staging directory `entry` (a name) belongs to a job that is gone. Pure.

    Args:
      entry: a directory name starting with `STAGING_PREFIX`.
      host: this host's id; another host's directories are never judged.
      alive: ``alive(pid, start time)`` for this host's processes.

    Returns:
      True for a dead owner, and for names without an owner (written by
      rlif-data before owners were recorded); False for a live owner, for
      another host, and for names that are not staging directories.
    """
    if not entry.startswith(STAGING_PREFIX):
        return False
    m = _STAGING_RE.match(entry)
    if m is None:
        return True
    if m["host"] != host:
        return False
    return not alive(int(m["pid"]), int(m["start"]))


def remove_stale_staging(parent: str) -> list[str]:
    """Remove the staging directories of killed jobs under `parent`; returns them.

    Staging directories of live jobs (on this host or any other) are kept.
    """
    removed = []
    host = _host_id()
    try:
        entries = sorted(os.listdir(parent))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        path = os.path.join(parent, entry)
        if os.path.isdir(path) and staging_is_stale(entry, host, processes.owner_alive):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def _job_processes(staging: str):
    """Mark the worker processes started meanwhile as this job's, and clean up if it dies.

    The janitor (`pipelines.processes`) kills them and removes `staging`
    when this process ends: at the end of the block, or at a SIGKILL.
    """
    token = processes.owner_token()
    janitor = processes.start_janitor(token, staging)
    before = os.environ.get(processes.JOB_OWNER_ENV)
    os.environ[processes.JOB_OWNER_ENV] = token
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(processes.JOB_OWNER_ENV, None)
        else:
            os.environ[processes.JOB_OWNER_ENV] = before
        processes.stop_janitor(janitor)


# -- what the workers print -------------------------------------------------------------


def _job_log_path(job: str, suffix: str = ".log") -> Optional[str]:
    """A new log file for a job's worker output (or check report), or None if none can be made."""
    directory = os.path.join(tempfile.gettempdir(), "rlif-data-logs")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        os.makedirs(directory, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"{job}-{stamp}-", suffix=suffix, dir=directory)
        os.close(fd)
    except OSError:
        return None  # no room even there: the output stays on the terminal
    return path


@contextlib.contextmanager
def _stderr_to(path: Optional[str]):
    """Send file descriptor 2 (worker processes, C++ libraries) to `path` meanwhile.

    Python's own writes to ``sys.stderr`` (progress bars) still reach the
    terminal through a copy of the original descriptor. None: no change.
    """
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 2)
    os.close(fd)
    python_stderr = sys.stderr
    sys.stderr = open(saved, "w", buffering=1, closefd=False)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


def _job_failure(job: str, out_dir: str, exc: BaseException,
                 job_log: Optional[str]) -> Optional[PipelineFailedError]:
    """The one-line error for a failed job, or None to let `exc` through (library use).

    A failure of one input names the file and episode (and the log is
    dropped: it holds nothing more); any other failure, when the workers'
    output went to `job_log`, gets its last line, a fix where the cause is
    a full or read-only disk, and the log's path.
    """
    where = _input_failure(exc) or _remote_input_failure(str(exc))
    if where is not None:
        _discard_log(job_log)
    elif job_log is None:
        return None
    else:
        text = _log_failure(job_log, exc)
        fix = errors.os_error_fix(errors.errno_in_text(text)) or worker_death_fix(text)
        where = failure_summary(text) + (f"; {fix}" if fix else "") + f"; full log: {job_log}"
    return PipelineFailedError(f"job {job!r} failed, nothing was written to {out_dir}: {where}")


# What a failure says when a worker process died under the job (SIGKILL, the
# kernel's OOM killer): Beam's DirectRunner loses its data channel, Dask gives
# up on a task after its workers died running it.
_WORKER_DEATH = ("Channel closed prematurely", "KilledWorker", "workers died while running")


def worker_death_fix(text: str) -> Optional[str]:
    """The fix for a failure caused by a worker process that died, or None. Pure."""
    if not any(marker in text for marker in _WORKER_DEATH):
        return None
    return "a worker process died (killed, or out of memory: see `dmesg`); run the job again"


def _discard_log(path: Optional[str]) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _log_failure(path: str, exc: BaseException) -> str:
    """Append the failure's traceback to the job log; returns the traceback text."""
    text = "".join(traceback.format_exception(exc))
    with contextlib.suppress(OSError):
        with open(path, "a") as f:
            f.write(text)
    return text


def failure_summary(text: str, limit: int = 400) -> str:
    """The line of a failure's text that says what went wrong. Pure.

    The last ``SomeError: message`` line of a traceback (Beam wraps the
    worker's error several times; the innermost one comes last), without
    Beam's `` [while running 'stage']`` suffix, cut to `limit` characters.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in lines if _FAILURE_LINE.match(line)]
    line = (found or lines or ["unknown error"])[-1].split(" [while running")[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."


def default_beam_args(verbose: bool = False) -> list[str]:
    """The DirectRunner, its mode left to `write_dataset` (`runners.choose_direct_mode`).

    A small job then runs in its own process and a large one on 2 worker
    processes; ``--direct_num_workers`` / ``--direct_running_mode`` given
    after these win.

    Args:
      verbose: let worker processes log warnings; by default they log errors
        only (Beam's "No semi_persistent_directory found" and "Discarding
        unparseable args" warnings are noise to a local user).
    """
    return ["--runner=DirectRunner",
            f"--default_sdk_harness_log_level={'WARNING' if verbose else 'ERROR'}"]


def show_job_logs(verbose: bool) -> None:
    """``--verbose``: let TFDS, Beam and this package log at INFO (no-op when False).

    A job is quiet by default (progress bar and one summary line): what its
    worker processes print goes to a log file, named if the job fails. The
    levels here are what `--verbose` brings back.
    """
    _capture["worker_output"] = not verbose
    if not verbose:
        return
    # Configures nothing when the CLI already did (it owns the root handler).
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name, level in (("pipelines", logging.INFO), ("absl", logging.INFO),
                        ("apache_beam", logging.WARNING)):  # Beam's INFO is per-stage chatter
        logging.getLogger(name).setLevel(level)
