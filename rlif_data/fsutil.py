"""Small filesystem helpers shared by the stores."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any


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
