"""Which process a job's staging directory and Beam workers belong to; cleaning up after it.

A process is named by its pid and start time (``"pid:start"``, a *token*):
a pid reused by a later process has another start time. A job puts its
token into the environment its Beam workers inherit (`JOB_OWNER_ENV`) and
into its staging directory's name (`pipelines.output.make_staging_dir`).

A SIGKILLed job runs no cleanup, and DirectRunner workers then wait
forever for a control channel that is gone. So each job starts a *janitor*
(``python -m pipelines.processes TOKEN [STAGING]``, standard library only):
it blocks on a pipe that only the job holds open, and when the pipe closes
(the job ended, normally or not) it SIGKILLs every process that carries the
job's token and removes the job's staging directory. `pipelines.worker_guard`
adds a guard inside each worker that has started.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import Optional

JOB_OWNER_ENV = "RLIF_JOB_OWNER"


def process_start_time(pid: int) -> Optional[int]:
    """When process `pid` started (clock ticks since boot, from /proc), or None if it is gone.

    Where there is no /proc (macOS): 0 for a live process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        return 0
    # Field 22; the command name (field 2) may hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[19])


def owner_token(pid: Optional[int] = None) -> str:
    """``pid:start`` of a process (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{process_start_time(pid) or 0}"


def parse_owner(token: str) -> Optional[tuple[int, int]]:
    """``"pid:start"`` as (pid, start), or None if malformed. Pure."""
    pid, _, start = token.partition(":")
    if not (pid.isdigit() and start.isdigit()):
        return None
    return int(pid), int(start)


def owner_alive(pid: int, start: int) -> bool:
    """Whether process `pid`, started at `start` (0: unknown), is still running."""
    now = process_start_time(pid)
    return now is not None and (start == 0 or now == start)


def processes_of(token: str) -> list[int]:
    """Pids of the processes whose environment names `token` as their job (Linux; else [])."""
    marker = f"{JOB_OWNER_ENV}={token}".encode()
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc/self") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def kill_processes_of(token: str, passes: int = 3) -> list[int]:
    """SIGKILL every process of job `token`; returns their pids.

    Several passes, because a worker's shell may fork the worker between
    one pass's listing and its kill.
    """
    killed = []
    for _ in range(passes):
        pids = processes_of(token)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        if not pids:
            break
        time.sleep(0.1)
    return killed


def start_janitor(token: str, staging: Optional[str] = None) -> subprocess.Popen:
    """Start the janitor of job `token` (module docstring); keep the result until the job ends.

    Args:
      token: the job's `owner_token`.
      staging: the job's staging directory, removed when the job is gone.
    """
    env = {k: v for k, v in os.environ.items() if k != JOB_OWNER_ENV}
    argv = [sys.executable, "-m", __name__, token] + ([staging] if staging else [])
    return subprocess.Popen(argv, stdin=subprocess.PIPE, env=env, close_fds=True)


def stop_janitor(janitor: subprocess.Popen, timeout: float = 30) -> None:
    """The job is ending normally: let the janitor clean up after it, and wait until it has.

    The wait matters: a next job in this process has the same token, and a
    janitor still at work would kill that job's new workers.
    """
    janitor.stdin.close()
    deadline = time.monotonic() + timeout
    _wait_for_exit(janitor, timeout)
    try:
        janitor.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        janitor.kill()
        janitor.wait()


def _wait_for_exit(process: subprocess.Popen, timeout: float) -> None:
    """Block until `process` exits or `timeout` passes, woken by the exit itself (Linux).

    `Popen.wait` with a timeout polls with doubling sleeps, which found a
    janitor that was done after 8 ms only at 16 ms, at the end of every job.
    A pidfd becomes readable the moment the process exits. Elsewhere (no
    pidfd) this returns at once and `Popen.wait` polls as before.
    """
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or the process is gone already
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def main(argv: list[str]) -> None:
    """The janitor: wait for the job's end (EOF on stdin), then clean up after it."""
    token, staging = argv[0], (argv[1] if len(argv) > 1 else None)
    # Ctrl-C reaches the whole process group; the janitor's work starts when the job is gone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while sys.stdin.buffer.read(1 << 16):
            pass
    except OSError:
        pass
    kill_processes_of(token)
    if staging:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
    # The job waits for this exit; the interpreter's teardown was most of the time between
    # the job's end and it, and the janitor has nothing left to flush or close.
    os._exit(0)
