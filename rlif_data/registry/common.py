"""What every registry module shares: its errors, its file lock, and who/when a change is made.

Kept apart from `store` so the tag protocol (`tagbook`) and upkeep can use
them without importing the `Registry` class.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import getpass
import os
import socket
import time

from rlif_data import errors


class RegistryError(errors.RlifDataError):
    """A registry operation failed; nothing visible was changed."""


class UnknownDatasetError(RegistryError, KeyError):
    """A name, version or tag is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class VersionExistsError(RegistryError):
    """A version is already published (versions are immutable)."""


class IntegrityError(RegistryError):
    """A version's files differ from what was recorded at publish."""


class DiskError(RegistryError):
    """The disk refused a write (full, read-only, no permission); the registry is as it was."""


def disk_errors(operation: str):
    """Decorate a write operation: an OSError becomes one `DiskError` line with its fix.

    What a reader sees is unchanged after such a failure (every protocol
    here makes its change visible in one step at its end); files a failed
    pull fetched stay in staging for the next attempt.

    Args:
      operation: the verb for the message, e.g. "publish".
    """
    def decorate(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except errors.RlifDataError:
                raise
            except OSError as exc:
                raise DiskError(f"{operation} failed: {errors.describe_os_error(exc)}; "
                                "the registry is as it was") from exc
        return wrapped
    return decorate


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return f"uid{os.getuid()}"


def current_user() -> str:
    """``user@host`` of this process (who publishes, tags, exports)."""
    return f"{_user_name()}@{socket.gethostname()}"


def publisher_fields() -> dict[str, str]:
    """Who publishes a version, recorded in its manifest: user, host, code version."""
    from rlif_data.version import code_version

    return {"published_by": current_user(), "publisher": _user_name(),
            "host": socket.gethostname(), "code_version": code_version()}


@contextlib.contextmanager
def _flock(path: str, timeout: float = 60.0, shared: bool = False):
    """A lock on `path` (released when the holder dies), waiting up to `timeout`.

    Args:
      shared: a shared lock (many holders) instead of an exclusive one.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RegistryError(f"{path}: still locked by another process after "
                                        f"{timeout:.0f} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
