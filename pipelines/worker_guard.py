"""Beam worker processes die with the rlif-data job that started them.

`pipelines.output.write_dataset` passes ``--beam_plugins=pipelines.worker_guard``,
so Beam's worker main imports this module first thing in every worker
process, and sets `output.JOB_OWNER_ENV` (``pid:start time`` of the job) in
the environment the workers inherit. Without it, a SIGKILLed job leaves its
DirectRunner workers running (they wait for a control channel that is gone).

Two guards, because a worker's parent may be the shell Beam starts it with:

* ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the
  moment its parent dies (Linux);
* where the parent is not the job itself, a daemon thread checks every
  `POLL_S` seconds that the job (pid and start time) is still there.

Outside an rlif-data job (no `JOB_OWNER_ENV`, e.g. a Dataflow worker)
importing this module does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from typing import Optional

from pipelines import output

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_S = 0.5


def parse_owner(token: str) -> Optional[tuple[int, int]]:
    """``"pid:start"`` as (pid, start), or None if malformed. Pure."""
    pid, _, start = token.partition(":")
    if not (pid.isdigit() and start.isdigit()):
        return None
    return int(pid), int(start)


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
    while output.owner_alive(pid, start):
        time.sleep(POLL_S)
    _die()


def install() -> None:
    """Tie this worker's life to its job's (no-op outside an rlif-data job)."""
    owner = parse_owner(os.environ.get(output.JOB_OWNER_ENV, ""))
    if owner is None:
        return
    pid, start = owner
    guarded = _set_parent_death_signal() and os.getppid() == pid
    if not output.owner_alive(pid, start):
        _die()  # the job died before the guard was in place
    if not guarded:
        threading.Thread(target=_watch, args=owner, name="rlif-worker-guard", daemon=True).start()


install()
