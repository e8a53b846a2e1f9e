"""File manifests: sizes and SHA-256 of every file of a dataset version."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
from typing import Any, BinaryIO, Callable, Optional

from rlif_data import errors
from rlif_data.registry import safe_paths

MANIFEST = "MANIFEST.json"
CHUNK = 4 << 20  # 4 MiB: large reads keep hashing near disk speed
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(errors.RlifDataError, ValueError):
    """A MANIFEST.json is malformed (not the structure `write_manifest` writes)."""


def sha256_file(path: str) -> str:
    """SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def copy_and_hash(src: BinaryIO, dst: BinaryIO, progress: Optional[Callable[[int], None]] = None,
                  digest=None) -> tuple[int, str]:
    """Copy `src` to `dst` and hash the bytes in the same pass; returns (bytes, sha256).

    Args:
      digest: a hashlib object already fed with earlier bytes (resumed downloads).
    """
    digest = digest or hashlib.sha256()
    block = src.read(CHUNK)
    if len(block) < CHUNK:  # a small file: no thread to start
        dst.write(block)
        digest.update(block)
        if progress and block:
            progress(len(block))
        return len(block), digest.hexdigest()
    n = 0
    # Hash each block on a second thread while this one writes it: both
    # release the GIL, so a large file costs max(write, hash), not the sum.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        while block:
            hashed = pool.submit(digest.update, block)
            dst.write(block)
            hashed.result()
            n += len(block)
            if progress:
                progress(len(block))
            block = src.read(CHUNK)
    return n, digest.hexdigest()


def list_files(directory: str) -> list[str]:
    """Relative paths of the regular files under `directory` (sorted), manifest excluded."""
    out = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), directory)
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def content_digest(files: dict[str, dict[str, Any]]) -> str:
    """One digest for a whole version: over the sorted (path, size, sha256) triples."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(f"{rel}\0{files[rel]['size']}\0{files[rel]['sha256']}\n".encode())
    return digest.hexdigest()


def build_manifest(files: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    """A manifest: `extra` + the files + their content digest. Pure."""
    return {**extra, "files": files, "content_sha256": content_digest(files)}


def save_manifest(directory: str, manifest: dict[str, Any]) -> None:
    """Write `manifest` as the directory's MANIFEST.json (fsynced)."""
    path = os.path.join(directory, MANIFEST)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def write_manifest(directory: str, files: dict[str, dict[str, Any]],
                   extra: dict[str, Any]) -> dict[str, Any]:
    """Write MANIFEST.json (files + content digest + `extra`) and return it."""
    manifest = build_manifest(files, extra)
    save_manifest(directory, manifest)
    return manifest


def check_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """Check a parsed manifest's structure and file names before anything uses them.

    Args:
      manifest: the parsed JSON.
      where: the manifest's path or URL, for the message.

    Returns:
      `manifest`, unchanged.

    Raises:
      ManifestError: not an object with a ``files`` object of
        ``{"size": int >= 0, "sha256": 64 hex digits}`` entries.
      UnsafePathError: a file name that is not a safe relative path
        (`safe_paths.unsafe_reason`), or MANIFEST.json itself listed as a file.
    """
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ManifestError(f"{where}: not a manifest (no 'files' object)")
    safe_paths.check_names(files, where)
    if MANIFEST in files:
        raise safe_paths.UnsafePathError(f"{where}: unsafe file name {MANIFEST!r}: a manifest "
                                         "cannot list itself; nothing was written")
    for rel, entry in files.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("size"), int)
                and not isinstance(entry.get("size"), bool) and entry["size"] >= 0
                and isinstance(entry.get("sha256"), str) and _SHA256_RE.match(entry["sha256"])):
            raise ManifestError(f"{where}: entry {rel!r} is not {{'size': bytes, 'sha256': "
                                f"64 hex digits}}: {entry!r:.200}")
    return manifest


def read_manifest(directory: str) -> dict[str, Any]:
    """The manifest of a version directory, checked with `check_manifest`.

    Raises:
      FileNotFoundError: no manifest.
      ManifestError / UnsafePathError: unreadable, malformed, or unsafe file names.
    """
    path = os.path.join(directory, MANIFEST)
    with open(path) as f:
        try:
            manifest = json.load(f)
        except ValueError as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc})") from None
    return check_manifest(manifest, path)


def list_links(directory: str) -> list[str]:
    """Relative paths of the symbolic links under `directory` (a version holds none)."""
    out = []
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                out.append(os.path.relpath(path, directory))
    return sorted(out)


def check_files(directory: str, files: dict[str, dict[str, Any]], full: bool) -> list[str]:
    """Problems found comparing `directory` with its manifest entries (empty: all good).

    Args:
      full: also recompute every SHA-256 (otherwise sizes only, which is cheap).
    """
    problems = [f"{rel} is a symbolic link" for rel in list_links(directory)]
    present = set(list_files(directory))
    for rel, entry in sorted(files.items()):
        path = os.path.join(directory, rel)
        if rel not in present:
            problems.append(f"missing file {rel}")
            continue
        size = os.path.getsize(path)
        if size != entry["size"]:
            problems.append(f"{rel}: size {size} != {entry['size']} recorded at publish")
        elif full and sha256_file(path) != entry["sha256"]:
            problems.append(f"{rel}: SHA-256 differs from the one recorded at publish")
    for rel in sorted(present - set(files)):
        problems.append(f"unexpected file {rel}")
    return problems
