"""File manifests: sizes and SHA-256 of every file of a dataset version."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, BinaryIO, Callable, Optional

MANIFEST = "MANIFEST.json"
CHUNK = 4 << 20  # 4 MiB: large reads keep hashing near disk speed


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
    n = 0
    while block := src.read(CHUNK):
        digest.update(block)
        dst.write(block)
        n += len(block)
        if progress:
            progress(len(block))
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


def write_manifest(directory: str, files: dict[str, dict[str, Any]],
                   extra: dict[str, Any]) -> dict[str, Any]:
    """Write MANIFEST.json (files + content digest + `extra`) and return it."""
    manifest = {**extra, "files": files, "content_sha256": content_digest(files)}
    path = os.path.join(directory, MANIFEST)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    return manifest


def read_manifest(directory: str) -> dict[str, Any]:
    """The manifest of a version directory.

    Raises:
      FileNotFoundError / ValueError: missing or unreadable manifest.
    """
    with open(os.path.join(directory, MANIFEST)) as f:
        return json.load(f)


def check_files(directory: str, files: dict[str, dict[str, Any]], full: bool) -> list[str]:
    """Problems found comparing `directory` with its manifest entries (empty: all good).

    Args:
      full: also recompute every SHA-256 (otherwise sizes only, which is cheap).
    """
    problems = []
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
