"""Beam worker processes die with the rlif-data job that started them.

`pipelines.output.write_dataset` passes ``--beam_plugins=pipelines.worker_guard``,
so Beam's worker main imports this module in every worker process once it
has started, and the job's token (`processes.JOB_OWNER_ENV`) is in the
environment the workers inherit. The job's janitor (`pipelines.processes`)
kills workers on Linux at any stage; this guard makes a started worker
react by itself, also where there is no /proc:

* ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the
  moment its parent dies (Linux), when the parent is the job itself;
* otherwise (Beam starts workers through a shell) a daemon thread checks
  every `POLL_S` seconds that the job (pid and start time) is still there.

Outside an rlif-data job (no token, e.g. a Dataflow worker) importing this
module does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

from pipelines import processes

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_S = 0.5


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _set_parent_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; False where unsupported."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (AttributeError, OSError):
        return False  # not Linux
    return prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0


def _watch(pid: int, start: int) -> None:
    while processes.owner_alive(pid, start):
        time.sleep(POLL_S)
    _die()


def install() -> None:
    """Tie this worker's life to its job's (no-op outside an rlif-data job)."""
    owner = processes.parse_owner(os.environ.get(processes.JOB_OWNER_ENV, ""))
    if owner is None:
        return
    pid, start = owner
    guarded = _set_parent_death_signal() and os.getppid() == pid
    if not processes.owner_alive(pid, start):
        _die()  # the job died before the guard was in place
    if not guarded:
        threading.Thread(target=_watch, args=owner, name="rlif-worker-guard", daemon=True).start()


install()
