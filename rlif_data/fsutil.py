"""Small filesystem helpers shared by the stores."""

from __future__ import annotations

import os


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
