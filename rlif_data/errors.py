"""Errors raised by rlif-data. Each message names the directory, file, episode or step."""

import errno
import os
from typing import Optional


class RlifDataError(Exception):
    """Base class of every error rlif-data raises on purpose."""


class SchemaError(RlifDataError, ValueError):
    """Data does not match the schema (shape, dtype, missing field)."""


class SchemaMismatchError(SchemaError):
    """An output directory already holds data with a different schema."""


class InvalidActionError(RlifDataError, ValueError):
    """An action contains NaN/inf or has the wrong shape."""


class FormatVersionError(RlifDataError):
    """Data was written in a format version this code cannot read."""


class RecordingError(RlifDataError):
    """Writing an episode failed; earlier episodes are intact."""


class RecordingLockedError(RecordingError):
    """Another live process is writing to the same recording directory."""


class CorruptRecordingError(RlifDataError):
    """A recording directory is damaged beyond what `recover` can repair."""


class UnknownEnvironmentError(RlifDataError, ValueError):
    """An environment id is not registered."""


class UnsafeDataError(RlifDataError, ValueError):
    """Data from elsewhere would write outside its place or run code (file names, feature classes)."""


# What to do about the OS errors a user can fix; the keys are errno codes.
_OS_ERROR_FIXES = {
    errno.ENOSPC: "free space on that disk or write somewhere else (--root, --out)",
    errno.EDQUOT: "the disk quota is used up: free space or write somewhere else (--root, --out)",
    errno.EROFS: "that file system is mounted read-only: remount it read-write or give a "
                 "writable directory (--root, --out)",
    errno.EACCES: "permission denied: fix the permissions or use another directory "
                  "(--root, --out)",
    errno.EPERM: "the operation is not permitted there: give another directory (--root, --out)",
    errno.ENOTDIR: "a part of that path is a file, not a directory: give a directory path",
    errno.EISDIR: "that path is a directory: give a file path",
    errno.EEXIST: "that path exists already (a directory cannot be made where a file is): "
                  "give a new path",
}


def os_error_fix(code: Optional[int]) -> Optional[str]:
    """How to fix an OS error the user can do something about, or None. Pure."""
    return _OS_ERROR_FIXES.get(code) if code is not None else None


def errno_in_text(text: str) -> Optional[int]:
    """The errno whose message (``"No space left on device"``) a text quotes, or None. Pure.

    For errors that reach us as text only: a Beam worker's failure, a C++
    library's exception message.
    """
    for code in _OS_ERROR_FIXES:
        if os.strerror(code) in text:
            return code
    return None


def describe_os_error(exc: OSError, doing: str = "") -> str:
    """One line saying what failed, on which file, why and how to fix it. Pure.

    Args:
      exc: the error.
      doing: what was being done (``"publishing hopper"``), or "".
    """
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where += f" -> {exc.filename2}"
    why = exc.strerror or str(exc)
    fix = os_error_fix(exc.errno)
    return ": ".join(part for part in (doing, where, why) if part) + (f"; {fix}" if fix else "")
