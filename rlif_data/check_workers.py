"""`rlif-data check` over several processes: episode ranges checked in workers, one report.

`rlif_data.checks.check_dataset` reads, decodes and checks every episode;
on a 1M-step recording about two thirds of that is reading and decoding,
which one process does at one core's pace. Here the driver (the calling
process) starts worker processes and hands out ranges of episodes to
whichever process is free, itself included, so the workers' start-up
(interpreter, NumPy, the reader: ~0.11 s) overlaps the
driver's own checking instead of delaying it. Each worker opens its own
`EpisodeReader(repair=False)` and returns, per episode, plain data
(`rlif_data.checks.episode_record` as JSON: findings, length, terminal flag,
id, fingerprint, env id); the driver runs the dataset-level checks on all
of them in episode order, so the report equals the one-process report.

Workers are fresh interpreters (``python -m rlif_data.check_workers``,
exec'ed, never a fork of a process that may hold TF/JAX/Beam threads),
talking JSON lines over pipes (no pickles); their stderr is discarded. They get the env action bounds
and notes the driver already found, so they make no env (no Gymnasium or
MuJoCo import) unless they meet an env id the driver has not seen.

A range that fails in a worker (a corrupt shard, permission denied), or a
worker that dies, is left to the driver: it checks every range no one
finished in episode order itself, so the first unreadable episode raises
the same one-line error as a one-process check does.
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

from rlif_data import checks

AUTO = 0
# Below this many bytes of shards a check stays in one process. Measured on
# this project's 2-core machine, otherwise idle, with episodes of 1000 state
# steps (~197 kB of shard each): one process vs the driver + 1 worker,
#   episodes  200: 0.138 vs 0.142 s;  400: 0.277 vs 0.282 s;
#             700: 0.490 vs 0.411-0.436 s;  1000 (188 MiB): 0.689 vs 0.571 s.
# A worker takes 0.30-0.36 s of a core before it checks anything (interpreter,
# NumPy, the reader's TFDS import; `python -c` of the same imports: 0.36 s),
# which the driver's own checking hides; the gain starts near 500 episodes
# (~95 MiB), and `SAMPLE_SECONDS` more of checking alone moves it to ~110 MiB.
# Since then the reader imports no TFDS for serializer schemas and a worker is
# ready in ~0.11 s, so the threshold is conservative (not measured again).
# Without an idle core a worker only slows the driver (measured under a load
# of 2.2 on the 2 cores: 1000 episodes 0.73 s alone, 1.01 s with a worker;
# 200 episodes 0.15 vs 0.32 s), hence the idle cores are measured first.
MIN_PARALLEL_BYTES = 120 * 2**20
# How long the driver checks alone while it measures the cores left idle
# (/proc/stat counts in 10 ms ticks: ~10 per core in that time).
SAMPLE_SECONDS = 0.1
MAX_AUTO_PROCESSES = 8
MAX_CHUNK_EPISODES = 32  # small enough that the last range does not keep the others waiting
# Ranges a worker holds at once: the next one waits in its pipe while it checks one, so
# it never idles until the driver, busy with a range of its own (~20 ms), hands it
# another. With one at a time a worker checked 30 % of a 1M-step recording instead of
# half (its ranges finished while the driver was mid-range).
WORKER_QUEUE = 2


def check_recording(reader: Any, task: checks.EpisodeTask, envs: dict, workers: int = AUTO,
                    progress: Optional[Callable[[int, int], None]] = None
                    ) -> tuple[list[dict], int]:
    """`checks.episode_record` of every episode of `reader`, in one process or several.

    Args:
      reader: an open `EpisodeReader`.
      task: view and control period.
      envs: `checks.env_entry`'s table.
      workers: processes, this one included: 1 for one, N > 1 for N (at most
        one per episode), `AUTO` (0): one process below `MIN_PARALLEL_BYTES`
        of shards; above, this process checks alone for `SAMPLE_SECONDS`
        while one worker starts and it measures how many cores other work
        leaves idle, then keeps a worker for each (at most
        `MAX_AUTO_PROCESSES` processes in all; none: the one started stops).
      progress: called as ``progress(done, total)``.

    Returns:
      (the records in episode order, the processes that checked them).

    Raises:
      What `checks.check_episodes` raises for the first episode that cannot be read.
    """
    total = len(reader)
    if workers != AUTO:
        processes = max(1, min(workers, total))
        if processes == 1:
            return checks.check_episodes(reader, range(total), task, envs, progress), 1
        return check_in_parallel(reader, task, envs, processes, progress), processes
    cap = min(_usable_cores(), MAX_AUTO_PROCESSES, total)
    if cap < 2 or _shard_bytes(reader.directory) < MIN_PARALLEL_BYTES:
        return checks.check_episodes(reader, range(total), task, envs, progress), 1
    # One worker starts now, so that its start-up overlaps the measurement (a worker that
    # started after it checked its first range 0.1 s later: 0.48 instead of 0.42 s on
    # 1M steps); it is stopped if no core is idle. Only one: on a busy many-core machine
    # each would take ~0.12 s of CPU from others for nothing. More start after it.
    started = [_Worker(reader.directory, task, envs)]
    try:
        before, ours, t0 = cpu_ticks(), _process_ticks(started), time.monotonic()
        records: list[dict] = []
        while len(records) < total and time.monotonic() - t0 < SAMPLE_SECONDS:
            stop = min(len(records) + MAX_CHUNK_EPISODES, total)
            records += checks.check_episodes(reader, range(len(records), stop), task, envs,
                                             progress)
        after = cpu_ticks()
        if before and after:
            # The starting workers' own ticks are not other work: they count as idle.
            idle = idle_cores(before, after, _process_ticks(started) - ours)
        else:
            idle = _idle_cores_by_load()
        extra = min(cap - 1, int(idle + 0.25))  # a core 75 % idle is worth a worker
        first = len(records)
        if extra < 1 or first == total:
            for worker in started:
                worker.close()
            return records + checks.check_episodes(reader, range(first, total), task, envs,
                                                   progress), 1
        started += [_Worker(reader.directory, task, envs) for _ in range(extra - len(started))]
        return records + check_in_parallel(reader, task, envs, 1 + extra, progress,
                                           first=first, started=started), 1 + extra
    finally:
        for worker in started:
            worker.close()  # a no-op for the ones already closed


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_ticks() -> Optional[dict[int, tuple[int, int]]]:
    """(idle, all) clock ticks since boot of each CPU this process may run on; None if the
    system does not say (no /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    out = {}
    for line in lines:
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        if allowed is not None and int(name[3:]) not in allowed:
            continue
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        values = [int(v) for v in rest.split()[:8]]
        out[int(name[3:])] = (values[3] + values[4], sum(values))
    return out or None


def idle_cores(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]],
               own_ticks: int = 0) -> float:
    """Cores idle between two `cpu_ticks` readings (the sum of each CPU's idle fraction). Pure.

    Args:
      own_ticks: CPU ticks our own helper processes used meanwhile (their
        start-up): counted as idle, as it is not other work.
    """
    idle, elapsed = 0.0, []
    for cpu, (idle0, all0) in before.items():
        if cpu in after and after[cpu][1] > all0:
            idle += (after[cpu][0] - idle0) / (after[cpu][1] - all0)
            elapsed.append(after[cpu][1] - all0)
    if own_ticks > 0 and elapsed:
        idle = min(float(len(elapsed)), idle + own_ticks / (sum(elapsed) / len(elapsed)))
    return idle


def _process_ticks(workers: list["_Worker"]) -> int:
    """User + system clock ticks the workers' processes have used (0 where /proc says nothing)."""
    total = 0
    for worker in workers:
        try:
            with open(f"/proc/{worker.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            continue
    return total


def _idle_cores_by_load() -> float:
    """Without /proc/stat: cores besides this process's one that the 1-minute load leaves."""
    try:
        return max(0.0, _usable_cores() - 1 - os.getloadavg()[0])
    except OSError:
        return float(_usable_cores() - 1)


def _shard_bytes(directory: str) -> int:
    from rlif_data.recording import store

    total = 0
    for path in store.shard_paths(directory):
        try:
            total += os.path.getsize(path)
        except OSError:  # the reader names a missing shard when it gets there
            pass
    return total


def chunk_ranges(episodes: int, processes: int) -> list[tuple[int, int]]:
    """Ranges [start, stop) of episodes to hand out: about four per process, at most
    `MAX_CHUNK_EPISODES` long. Pure."""
    size = max(1, min(MAX_CHUNK_EPISODES, -(-episodes // (4 * processes))))
    return [(a, min(a + size, episodes)) for a in range(0, episodes, size)]


def check_in_parallel(reader: Any, task: checks.EpisodeTask, envs: dict, processes: int,
                      progress: Optional[Callable[[int, int], None]] = None,
                      driver_checks: bool = True, first: int = 0,
                      started: Optional[list["_Worker"]] = None) -> list[dict]:
    """`checks.episode_record` of every episode of `reader`, checked by `processes` processes.

    Args:
      reader: the driver's open `EpisodeReader` (it checks ranges too).
      task: view and control period.
      envs: `checks.env_entry`'s table; gets the entries workers found.
      processes: the driver and ``processes - 1`` workers.
      progress: called as ``progress(done, total)`` as ranges finish.
      driver_checks: False: the driver only hands out ranges until the
        workers are gone (tests: every range then goes through a worker).
      first: the episodes before it are checked already.
      started: workers started already (``processes - 1`` of them); None:
        started here.

    Returns:
      The records of episodes ``first..`` in order, equal to a one-process
      `checks.check_episodes`.

    Raises:
      What `checks.check_episodes` raises for the first episode that cannot be read.
    """
    total = len(reader)
    ranges = [(a + first, b + first) for a, b in chunk_ranges(total - first, processes)]
    queue = collections.deque(ranges)
    results: dict[int, list[dict]] = {}
    done = first

    def finished(span: tuple[int, int], records: list[dict]) -> None:
        nonlocal done
        results[span[0]] = records
        done += span[1] - span[0]
        if progress is not None:
            progress(done, total)

    def failed(span: tuple[int, int]) -> None:
        # Episodes after a failure are not needed: the driver re-reads this range
        # at the end and raises its error, as a one-process check would.
        for later in [r for r in queue if r[0] >= span[1]]:
            queue.remove(later)

    workers = (list(started) if started is not None
               else [_Worker(reader.directory, task, envs) for _ in range(processes - 1)])
    selector = selectors.DefaultSelector()
    for worker in workers:
        selector.register(worker.stdout, selectors.EVENT_READ, worker)
    try:
        while queue or any(w.pending for w in workers):
            if not driver_checks and all(w.dead for w in workers):
                break  # the rest is checked below
            for worker in workers:
                while (worker.ready and not worker.dead and queue
                       and len(worker.pending) < WORKER_QUEUE):
                    span = queue.popleft()
                    if not worker.send(span, envs):
                        queue.appendleft(span)
            if queue and driver_checks:
                span = queue.popleft()
                try:
                    finished(span, checks.check_episodes(reader, range(*span), task, envs))
                except Exception:  # raised again, in episode order, below
                    failed(span)
            if not queue and not any(w.pending for w in workers):
                break  # no waiting for workers still starting
            wait = not (queue and driver_checks)  # nothing to do here but wait for a worker
            for key, _ in selector.select(timeout=None if wait else 0):
                worker = key.data
                replies = worker.receive()
                if replies is None:  # died: its ranges go back to the queue
                    selector.unregister(worker.stdout)
                    queue.extendleft(reversed(worker.pending))
                    worker.pending.clear()
                    worker.dead = True
                    continue
                for reply in replies:
                    if not worker.ready:
                        worker.ready = True  # its first line says it is ready
                        continue
                    span = worker.pending.popleft()  # replies come in the order sent
                    for env_id, entry in reply.get("envs", {}).items():
                        envs.setdefault(env_id, _env_from_json(entry))
                    if "records" in reply:
                        finished(span, [_record_from_json(r) for r in reply["records"]])
                    else:
                        failed(span)
    finally:
        selector.close()
        for worker in workers:
            worker.close()
    records: list[dict] = []
    for span in ranges:  # what no one finished, in order: the first failure raises here
        if span[0] not in results:
            finished(span, checks.check_episodes(reader, range(*span), task, envs))
        records += results[span[0]]
    return records


class _Worker:
    """One worker process and the driver's side of its pipes."""

    def __init__(self, directory: str, task: checks.EpisodeTask, envs: dict):
        root = os.path.dirname(os.path.dirname(os.path.abspath(checks.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "")
                                                      .split(os.pathsep) if p])
        # stderr to /dev/null: whatever a worker could say (a traceback, a library's
        # warning), the driver says again in one line when it redoes the worker's range.
        self._process = subprocess.Popen([sys.executable, "-m", "rlif_data.check_workers"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=env)
        self.stdout = self._process.stdout
        self.pid = self._process.pid
        self.pending: collections.deque[tuple[int, int]] = collections.deque()  # sent, unanswered
        self._partial = b""  # the start of a reply line still being written
        self.ready = False
        self.dead = False
        self._sent_envs: set = set()
        self._write({"directory": directory, "view": task.view,
                     "control_period_us": task.control_period_us,
                     "deadline_slack": task.deadline_slack})

    def _write(self, message: dict) -> bool:
        try:
            self._process.stdin.write(json.dumps(message).encode() + b"\n")
            self._process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            self.dead = True
            return False

    def send(self, span: tuple[int, int], envs: dict) -> bool:
        """Hand the worker episodes [start, stop), with the env entries it has not had."""
        new = {k: _env_to_json(v) for k, v in envs.items() if k not in self._sent_envs}
        self._sent_envs.update(new)
        if self._write({"start": span[0], "stop": span[1], "envs": new}):
            self.pending.append(span)
            return True
        return False

    def receive(self) -> Optional[list[dict]]:
        """Every whole line the worker has written so far, read once the selector says its
        pipe is readable; None if it exited or wrote something else.

        Read straight from the pipe, not line by line through Python's buffered
        file: a worker holds two ranges, so two replies can arrive together, and a
        buffered `readline` would take both from the pipe and return one, leaving
        the other where the selector never reports it (the check then waited
        forever).
        """
        chunk = os.read(self.stdout.fileno(), 1 << 16)
        if not chunk:
            return None
        self._partial += chunk
        *lines, self._partial = self._partial.split(b"\n")
        try:
            return [json.loads(line) for line in lines]
        except ValueError:
            return None

    def close(self) -> None:
        """End the worker: it holds nothing to save (read-only shards), and its interpreter's
        exit took 0.1 s (measured) that the check would wait for."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for pipe in (self._process.stdin, self.stdout):
            try:
                pipe.close()
            except OSError:  # a write to the dead worker still buffered
                pass


def _env_to_json(entry: tuple) -> list:
    low, high, limit, notes = entry
    return [None if low is None else np.asarray(low).tolist(),
            None if high is None else np.asarray(high).tolist(), limit, list(notes)]


def _env_from_json(entry: list) -> tuple:
    low, high, limit, notes = entry
    return (None if low is None else np.asarray(low, np.float64),
            None if high is None else np.asarray(high, np.float64), limit, list(notes))


def _record_to_json(record: dict) -> dict:
    return {**record, "findings": [f.to_json() for f in record["findings"]]}


def _record_from_json(record: dict) -> dict:
    return {**record, "findings": [checks.Finding(**f) for f in record["findings"]]}


def serve(requests, replies) -> None:
    """A worker's loop over JSON lines: a setup line, then one reply per range.

    Args:
      requests: lines from the driver: ``{"directory", "view",
        "control_period_us", "deadline_slack"}``, then ``{"start", "stop",
        "envs"}`` per range (env entries as `checks.env_entry` has them, lists
        for arrays).
      replies: gets ``{"ready": true}`` once the reader is open, then per
        range ``{"records", "envs"}`` (the env entries this worker had to look
        up itself) or ``{"error"}``.
    """
    setup = json.loads(requests.readline())
    task = checks.EpisodeTask(setup["view"], setup["control_period_us"],
                              setup["deadline_slack"])
    from rlif_data.recording.reader import EpisodeReader

    envs: dict = {}
    reader = EpisodeReader(setup["directory"], repair=False)
    try:
        # Load what decoding needs before "ready" (TFDS only for PNG cameras).
        reader.prepare()
        _reply(replies, {"ready": True})
        for line in requests:
            request = json.loads(line)
            envs.update({k: _env_from_json(v) for k, v in request["envs"].items()})
            known = set(envs)
            try:
                records = checks.check_episodes(reader, range(request["start"], request["stop"]),
                                                task, envs)
            except Exception as exc:  # the driver re-reads the range and raises it
                _reply(replies, {"error": f"{type(exc).__name__}: {exc}"})
                continue
            _reply(replies, {"records": [_record_to_json(r) for r in records],
                             "envs": {k: _env_to_json(v) for k, v in envs.items()
                                      if k not in known}})
    finally:
        reader.close()


def _reply(replies, message: dict) -> None:
    replies.write(json.dumps(message) + "\n")
    replies.flush()


def main() -> None:
    """Worker entry point: JSON lines on stdin and stdout (anything else printed goes to stderr)."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library's print must not break a reply
    sys.stdout = sys.stderr
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
