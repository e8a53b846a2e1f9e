"""A columnar cache of decoded transitions: one `.npy` file per column, memory-mapped on read.

Registry versions are immutable, so the decoded columns of a version never go
stale: an entry is keyed by the version's `content_sha256` (a digest over every
file's SHA-256) and `CACHE_FORMAT`, and holds every reward column the version
can provide, so one entry serves every reward mode.

Layout::

    <cache_dir>/<content_sha256>-c<CACHE_FORMAT>/
        entry.json      columns (file, shape, dtype, CRC-32), episode ids, view
        col00.npy ...   one plain .npy per column (never pickled)

Writes go to a hidden temporary directory renamed into place, so a reader
sees a whole entry or none; two processes building the same entry race
harmlessly (the first rename wins). Files are not fsynced: after a power cut
an entry may be renamed but hold short or zeroed files, which the checks below
catch, and the entry is rebuilt. On every read each column's shape and dtype
are compared with `entry.json` and the CRC-32 of each 8 MiB block is
recomputed, in threads (~1.2-2 GB/s per core here; most of a cache hit's
time): a damaged or partial entry is reported as `CacheEntryDamaged` and
never trusted. CRC-32 detects damage, not
tampering; whoever can write the cache can also write the registry it sits in.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

CACHE_FORMAT = 1
ENTRY_FILE = "entry.json"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
CRC_BLOCK = 8 << 20  # bytes per CRC-32: the unit of parallel checking
MAX_THREADS = 8
# Temporary/trash directories older than this were left by a killed process
# (a live build of even a huge dataset finishes well within it).
STALE_AFTER_S = 24 * 3600


class CacheEntryDamaged(Exception):
    """A cache entry exists but cannot be trusted; the message says why."""


def entry_dir(cache_dir: str, content_sha256: str) -> str:
    """Where the entry of a version with this content digest lives."""
    if not content_sha256 or not all(c in "0123456789abcdef" for c in content_sha256):
        raise ValueError(f"not a SHA-256 hex digest: {content_sha256!r}")
    return os.path.join(cache_dir, f"{content_sha256}-c{CACHE_FORMAT}")


def _blocks(values: np.ndarray) -> list[np.ndarray]:
    flat = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
    return [flat[start:start + CRC_BLOCK] for start in range(0, len(flat), CRC_BLOCK)]


def crc32_blocks(values: np.ndarray, pool: Optional[ThreadPoolExecutor] = None) -> list[int]:
    """CRC-32 of each `CRC_BLOCK`-byte block of an array's bytes (C order; memory maps too).

    Blocks let several threads check one large column: zlib releases the GIL.
    """
    blocks = _blocks(values)
    return list(pool.map(zlib.crc32, blocks)) if pool else [zlib.crc32(b) for b in blocks]


def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, min(MAX_THREADS, os.cpu_count() or 1)))


def write_entry(cache_dir: str, content_sha256: str, columns: dict[str, np.ndarray],
                info: dict[str, Any]) -> str:
    """Write `columns` (name -> array) and `info` as the entry for `content_sha256`.

    Args:
      cache_dir: the cache root (created if missing).
      content_sha256: the version's content digest.
      columns: plain numeric/bool arrays (no object dtype).
      info: JSON-able facts stored with the entry (episode ids, view, ...).

    Returns:
      The entry directory (ours, or an identical one another process renamed first).
    """
    final = entry_dir(cache_dir, content_sha256)
    os.makedirs(cache_dir, exist_ok=True)
    sweep_stale(cache_dir)
    tmp = os.path.join(cache_dir, f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}")
    os.makedirs(tmp)
    try:
        listing = {}
        for i, (name, values) in enumerate(sorted(columns.items())):
            values = np.ascontiguousarray(values)
            if values.dtype == object:
                raise TypeError(f"cache column {name} has dtype object")
            file = f"col{i:02d}.npy"
            np.save(os.path.join(tmp, file), values, allow_pickle=False)
            listing[name] = {"file": file, "shape": list(values.shape),
                             "dtype": values.dtype.str, "crc32": crc32_blocks(values)}
        entry = {"cache_format": CACHE_FORMAT, "content_sha256": content_sha256,
                 "columns": listing, "info": info}
        with open(os.path.join(tmp, ENTRY_FILE), "w") as f:
            json.dump(entry, f)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # Another process published the same entry first; keep theirs.
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return final


def _load_column(directory: str, name: str, spec: dict[str, Any]) -> np.ndarray:
    path = os.path.join(directory, str(spec["file"]))
    if os.path.basename(path) != spec["file"]:
        raise CacheEntryDamaged(f"column {name}: bad file name {spec['file']!r}")
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    try:
        if int(np.prod(shape)) == 0:
            values = np.load(path, allow_pickle=False)  # an empty file cannot be mapped
        else:
            values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CacheEntryDamaged(f"column {name} ({spec['file']}): {exc}") from None
    if values.shape != shape or values.dtype != dtype:
        raise CacheEntryDamaged(f"column {name}: {values.dtype.str}{values.shape} on disk, "
                                f"{dtype.str}{shape} recorded")
    return values


def _verify(columns: dict[str, np.ndarray], listing: dict[str, Any]) -> None:
    """Raise `CacheEntryDamaged` unless every column's block CRCs match the recorded ones."""
    with _pool() as pool:
        for name, values in columns.items():
            if crc32_blocks(values, pool) != listing[name]["crc32"]:
                raise CacheEntryDamaged(f"column {name} ({listing[name]['file']}): CRC-32 "
                                        "differs from the one recorded when it was written")


def read_entry(cache_dir: str, content_sha256: str,
               verify: bool = True) -> Optional[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """The columns (read-only memory maps) and info of an entry, or None if there is none.

    Args:
      verify: recompute every column's CRC-32 (otherwise only shapes/dtypes).

    Raises:
      CacheEntryDamaged: the entry exists but is incomplete, unreadable or altered.
    """
    directory = entry_dir(cache_dir, content_sha256)
    if not os.path.isdir(directory):
        return None
    try:
        with open(os.path.join(directory, ENTRY_FILE)) as f:
            entry = json.load(f)
    except (OSError, ValueError) as exc:
        raise CacheEntryDamaged(f"{ENTRY_FILE}: {exc}") from None
    if not isinstance(entry, dict) or entry.get("cache_format") != CACHE_FORMAT \
            or entry.get("content_sha256") != content_sha256 \
            or not isinstance(entry.get("columns"), dict):
        raise CacheEntryDamaged(f"{ENTRY_FILE} does not describe this entry")
    try:
        columns = {name: _load_column(directory, name, spec)
                   for name, spec in entry["columns"].items()}
        if verify:
            _verify(columns, entry["columns"])
    except (KeyError, TypeError) as exc:
        raise CacheEntryDamaged(f"{ENTRY_FILE}: malformed column record ({exc})") from None
    return columns, entry.get("info", {})


def discard_entry(cache_dir: str, content_sha256: str) -> None:
    """Remove an entry (first renamed aside, so no reader ever sees half of it)."""
    directory = entry_dir(cache_dir, content_sha256)
    trash = os.path.join(cache_dir, f"{TRASH_PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        os.rename(directory, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def sweep_stale(cache_dir: str, max_age_s: float = STALE_AFTER_S) -> list[str]:
    """Remove temporary and trash directories older than `max_age_s`; returns their names."""
    removed = []
    now = time.time()
    for name in os.listdir(cache_dir):
        if not name.startswith((TMP_PREFIX, TRASH_PREFIX)):
            continue
        path = os.path.join(cache_dir, name)
        try:
            if now - os.stat(path).st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(name)
        except FileNotFoundError:
            continue
    return removed
