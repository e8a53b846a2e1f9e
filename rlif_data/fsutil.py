"""Small filesystem helpers shared by the stores."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import uuid
from typing import Any, Optional

# Bytes written between two requests to start writing a file out (`Writeback`).
WRITEBACK_BYTES = 32 << 20
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start write-out of dirty pages, do not wait


def fsync_path(path: str, best_effort: bool = False) -> None:
    """fsync a file or a directory (a directory's fsync makes renames in it durable).

    Args:
      best_effort: ignore filesystems that refuse it (FAT USB sticks, some
        network mounts refuse fsync on directories).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if best_effort:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not best_effort:
            raise
    finally:
        os.close(fd)


@functools.cache
def _sync_file_range() -> Optional[Any]:
    """libc's ``sync_file_range`` (Linux), or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return function


class Writeback:
    """Has the kernel start writing a file out while more of it is still being written.

    A file written whole and then fsynced waits at the end for all of it to
    reach the disk: 0.07-0.1 s for a 200 MB shard here (docs/scaling.md, run 7),
    the disk idle until then. Every `every` bytes this asks the kernel to
    start writing what is dirty so far (Linux ``sync_file_range``, which
    returns without waiting), so the closing fsync finds most of it written.
    Durability still comes from that fsync alone: this only moves the disk's
    work earlier, and does nothing where the call is missing or refused
    (another OS, some network filesystems).

    Args:
      path: the file, created by its writer before the first `wrote`.
      every: bytes between two requests (default `WRITEBACK_BYTES`).
    """

    def __init__(self, path: str, every: Optional[int] = None):
        self._path = path
        self._every = WRITEBACK_BYTES if every is None else every
        self._pending = 0
        self._fd: Optional[int] = None
        self._call = _sync_file_range()

    def wrote(self, nbytes: int) -> None:
        """Count `nbytes` more written; past `every` since the last request, make one."""
        self._pending += nbytes
        if self._pending < self._every or self._call is None:
            return
        self._pending = 0
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDONLY)
            if self._call(self._fd, 0, 0, _SYNC_FILE_RANGE_WRITE) != 0:
                self._call = None  # refused (EINVAL, ENOSYS, ...): the fsync does it all
        except OSError:
            self._call = None

    def close(self) -> None:
        """Let go of the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "Writeback":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_json_atomic(path: str | os.PathLike, data: Any, *, indent: int = 1) -> None:
    """Write ``data`` as JSON so that readers see the old file or the whole new one.

    The JSON goes to a uniquely named temporary file beside ``path``, is
    fsynced, renamed over ``path``, and the directory is fsynced so the rename
    survives a power cut.

    Args:
      path: destination file; its directory must exist.
      data: a JSON-serialisable value (keys are sorted).
      indent: JSON indentation.

    Raises:
      OSError: the file cannot be written (the temporary file is removed).
      TypeError: ``data`` is not JSON-serialisable (nothing is written).
    """
    path = os.fspath(path)
    text = json.dumps(data, indent=indent, sort_keys=True) + "\n"
    # Unique per writer, so two processes writing the same file never share a temp file.
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_path(os.path.dirname(os.path.abspath(path)), best_effort=True)
