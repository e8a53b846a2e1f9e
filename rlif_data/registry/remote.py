"""Sharing versions: push to and pull from a remote root given as an fsspec URL.

The remote has the local layout (``datasets/<name>/<version>/...``,
``datasets/<name>/tags.json``). Any fsspec filesystem works: a local path or
``file://`` (tests, NFS mounts), ``gs://`` with gcsfs, ``s3://`` with s3fs;
nothing here is specific to one of them.

* push uploads each file under a temporary name and renames it, and uploads
  MANIFEST.json last: a remote version without a manifest is incomplete and is
  never pulled. Pushing a version that exists remotely with other content is
  refused.
* pull downloads into a fixed staging directory per version, resuming partial
  files, verifies every SHA-256, then installs the version locally in one
  rename. If the remote goes away mid-pull, what arrived is kept for the next
  attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
from typing import Any, Callable, Optional

from rlif_data.registry import checksums
from rlif_data.registry.store import (
    Registry,
    RegistryError,
    STAGING_LOCK,
    UnknownDatasetError,
    VersionExistsError,
    VersionInfo,
    _flock,
)
from rlif_data.registry.versions import Ref, Version, parse_ref

Progress = Optional[Callable[[int], None]]


class RemoteError(RegistryError):
    """The remote could not be read or written; local data is unchanged."""


def _fs(url: str):
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise RemoteError(f"cannot open remote {url!r}: {exc} (gs:// needs `pip install "
                          "rlif-data[gcs]`, s3:// needs `pip install rlif-data[s3]`)") from None
    return fs, root.rstrip("/")


def _join(*parts: str) -> str:
    return posixpath.join(*parts)


def _read_json(fs, path: str) -> Optional[dict]:
    try:
        with fs.open(path, "rb") as f:
            return json.loads(f.read().decode())
    except FileNotFoundError:
        return None


def _write_json(fs, path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with fs.open(tmp, "wb") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True).encode())
    fs.mv(tmp, path)


def remote_tags(url: str, name: str) -> dict[str, str]:
    """{tag: version} of `name` on the remote."""
    fs, root = _fs(url)
    return _read_json(fs, _join(root, "datasets", name, "tags.json")) or {}


def remote_versions(url: str, name: str) -> list[Version]:
    """Complete versions (with a manifest) of `name` on the remote."""
    fs, root = _fs(url)
    base = _join(root, "datasets", name)
    try:
        entries = fs.ls(base, detail=False)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        try:
            version = Version.parse(posixpath.basename(entry.rstrip("/")))
        except ValueError:
            continue
        if fs.exists(_join(base, str(version), checksums.MANIFEST)):
            out.append(version)
    return sorted(out)


def resolve_remote(url: str, ref: str | Ref) -> tuple[str, Version]:
    """(name, version) a reference names on the remote.

    Raises:
      UnknownDatasetError: not on the remote (the message lists what is).
    """
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    versions = remote_versions(url, ref.name)
    if ref.version is not None:
        if ref.version not in versions:
            raise UnknownDatasetError(f"{ref} is not on {url}; versions there: "
                                      f"{', '.join(map(str, versions)) or 'none'}")
        return ref.name, ref.version
    tags = remote_tags(url, ref.name)
    if ref.tag not in tags:
        raise UnknownDatasetError(f"{ref} is not a tag on {url}; tags there: "
                                  f"{', '.join(sorted(tags)) or 'none'}")
    version = Version.parse(tags[ref.tag])
    if version not in versions:
        raise UnknownDatasetError(f"{ref} on {url} points at {version}, which is incomplete "
                                  "or missing there")
    return ref.name, version


def push(registry: Registry, ref: str, url: str, tags: Optional[tuple[str, ...]] = None,
         progress: Progress = None) -> dict[str, Any]:
    """Upload a local version (verified first) and point remote tags at it.

    Args:
      registry: the local registry.
      ref: the version to push.
      url: the remote root.
      tags: remote tags to set (default: the local tags of this version).
      progress: optional callable(bytes).

    Returns:
      ``{"ref", "uploaded_files", "skipped": bool, "tags"}``.

    Raises:
      IntegrityError: the local version is damaged (nothing is uploaded).
      VersionExistsError: the remote holds this version with different content.
      RemoteError: the remote failed mid-way (its version stays incomplete,
        invisible to pulls; push again).
    """
    info = registry.verify(ref, full=True)
    fs, root = _fs(url)
    base = _join(root, "datasets", info.name)
    target = _join(base, str(info.version))
    tags = info.tags if tags is None else tags
    try:
        existing = _read_json(fs, _join(target, checksums.MANIFEST))
        uploaded = 0
        if existing is not None:
            if existing.get("content_sha256") != info.manifest["content_sha256"]:
                raise VersionExistsError(
                    f"{info.ref} exists on {url} with different content; versions are immutable, "
                    "publish a new version instead")
        else:
            for rel in sorted(info.manifest["files"]):
                dst = _join(target, *rel.split(os.sep))
                fs.makedirs(posixpath.dirname(dst), exist_ok=True)
                with open(os.path.join(info.path, rel), "rb") as fi, fs.open(f"{dst}.part", "wb") as fo:
                    checksums.copy_and_hash(fi, fo, progress)
                fs.mv(f"{dst}.part", dst)
                uploaded += 1
            # The manifest last: it is what makes the remote version complete.
            fs.put_file(os.path.join(info.path, checksums.MANIFEST), _join(target, checksums.MANIFEST))
        if tags:
            current = _read_json(fs, _join(base, "tags.json")) or {}
            current.update({t: str(info.version) for t in tags})
            _write_json(fs, _join(base, "tags.json"), current)
    except (VersionExistsError, UnknownDatasetError):
        raise
    except OSError as exc:
        raise RemoteError(f"push of {info.ref} to {url} failed: {exc}; push again") from None
    return {"ref": info.ref, "uploaded_files": uploaded, "skipped": existing is not None,
            "tags": list(tags)}


def _download(fs, src: str, dst: str, size: int, sha256: str, progress: Progress) -> int:
    """Fetch one file into `dst`, resuming `dst.part`; returns bytes transferred."""
    if os.path.exists(dst) and os.path.getsize(dst) == size and checksums.sha256_file(dst) == sha256:
        return 0
    part = f"{dst}.part"
    digest = hashlib.sha256()
    offset = 0
    if os.path.exists(part) and os.path.getsize(part) <= size:
        with open(part, "rb") as f:  # re-hash what arrived last time
            while block := f.read(checksums.CHUNK):
                digest.update(block)
                offset += len(block)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
    with fs.open(src, "rb") as fi, open(part, "ab") as fo:
        if offset:
            fi.seek(offset)
        n, got = checksums.copy_and_hash(fi, fo, progress, digest)
        fo.flush()
        os.fsync(fo.fileno())
    if offset + n != size or got != sha256:
        os.unlink(part)
        raise RemoteError(f"{src}: downloaded {offset + n} bytes with SHA-256 {got[:12]}..., "
                          f"expected {size} bytes {sha256[:12]}...; the remote file is damaged")
    os.replace(part, dst)
    return n


def pull(registry: Registry, ref: str, url: str, progress: Progress = None) -> VersionInfo:
    """Download a remote version into the local registry (resumable, verified).

    Remote tags naming this version are applied locally.

    Raises:
      UnknownDatasetError: the reference is not on the remote.
      RemoteError: the remote failed mid-pull; partial files are kept for the
        next `pull` of the same version, nothing is visible locally.
      IntegrityError / VersionExistsError: see `Registry.install`.
    """
    fs, root = _fs(url)
    try:
        name, version = resolve_remote(url, ref)
        source = _join(root, "datasets", name, str(version))
        manifest = _read_json(fs, _join(source, checksums.MANIFEST))
        tags = tuple(t for t, v in remote_tags(url, name).items() if v == str(version))
    except OSError as exc:
        raise RemoteError(f"cannot read {ref} from {url}: {exc}") from None
    if manifest is None:
        raise RemoteError(f"{name}:{version} on {url} has no manifest (an interrupted push)")
    if version in registry.versions(name):
        return registry.install_tags_only(name, version, manifest, tags)
    staging = os.path.join(registry.staging_dir(), f"pull-{name}-{version}")
    os.makedirs(staging, exist_ok=True)
    with _flock(os.path.join(staging, STAGING_LOCK), timeout=1):
        target = os.path.join(staging, "version")
        done = 0
        try:
            for rel, entry in sorted(manifest["files"].items()):
                dst = os.path.join(target, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                _download(fs, _join(source, *rel.split(os.sep)), dst, entry["size"],
                          entry["sha256"], progress)
                done += 1
        except (OSError, RemoteError) as exc:
            raise RemoteError(
                f"pull of {name}:{version} from {url} stopped after {done}/"
                f"{len(manifest['files'])} files ({exc}); run pull again to resume") from None
        with open(os.path.join(target, checksums.MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        # Every file was hashed against the manifest as it was written above.
        info = registry.install(target, tags, hashes_verified=True)
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
    return info
