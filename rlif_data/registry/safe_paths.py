"""The one rule for file names that come from elsewhere. Pure, no I/O.

Manifests, archives and remote listings name the files of a version. Those
names are data written by someone else, so before any byte is written each
must be a normalised relative POSIX path that stays inside the version
directory: ``shards/a-00000`` is fine; ``/etc/x``, ``../x``, ``a/../../b``,
``a//b``, ``./a``, ``a\\b`` and names with NUL are not. Pull, archive import
and manifest reading all apply this one rule (`unsafe_reason`).
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

from rlif_data import errors

_DRIVE_RE = re.compile(r"^[A-Za-z]:")
# Far above any real file name; stops names built to exhaust memory or PATH_MAX.
MAX_NAME_CHARS = 1024


class UnsafePathError(errors.UnsafeDataError):
    """A file name from a manifest, archive or remote would land outside its version."""


def unsafe_reason(name: object) -> Optional[str]:
    """Why `name` is not a safe relative path inside a version, or None if it is.

    Args:
      name: a file name as a manifest, archive member or remote listing gives it.

    Returns:
      A short reason ("absolute path", "'..' path component (path traversal)",
      ...) or None for a safe name.
    """
    if not isinstance(name, str):
        return f"not a string ({type(name).__name__})"
    if not name:
        return "empty name"
    if len(name) > MAX_NAME_CHARS:
        return f"longer than {MAX_NAME_CHARS} characters"
    if "\x00" in name or "\\" in name:
        return "NUL or backslash in the path"
    if any(ord(c) < 32 for c in name):
        return "control character in the path"
    if name.startswith("/") or _DRIVE_RE.match(name):
        return "absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "'..' path component (path traversal)"
    if any(p in ("", ".") for p in parts):
        return "non-canonical path (empty or '.' component)"
    return None


def nested_in_file(names: Iterable[str]) -> Optional[tuple[str, str]]:
    """A pair (name, file it would lie inside) if one name uses another as a directory.

    Writing ``a`` as a file and then ``a/b`` would fail half-way through, or,
    with ``a`` made a link in between, go somewhere else: refuse such sets.

    Args:
      names: safe names (see `unsafe_reason`) of the files of one version.

    Returns:
      The first offending (name, parent file) pair in sorted order, or None.
    """
    files = set(names)
    for name in sorted(files):
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                return name, parent
    return None


def check_names(names: Iterable[object], where: str) -> list[str]:
    """Check every name of a version's file list; return them as a list.

    Args:
      names: file names from a manifest or listing.
      where: what they came from (a URL or file), for the message.

    Returns:
      The names, unchanged, in the order given.

    Raises:
      UnsafePathError: naming the first bad name, why, and where it came from.
    """
    out = list(names)
    for name in out:
        reason = unsafe_reason(name)
        if reason is not None:
            raise UnsafePathError(f"{where}: unsafe file name {name!r}: {reason}; nothing was "
                                  "written")
    pair = nested_in_file(out)  # type: ignore[arg-type]
    if pair is not None:
        raise UnsafePathError(f"{where}: unsafe file name {pair[0]!r}: it lies inside the file "
                              f"{pair[1]!r}; nothing was written")
    return out
