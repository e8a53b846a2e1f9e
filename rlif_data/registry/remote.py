"""Sharing versions: push to and pull from a remote root given as an fsspec URL.

The remote has the local layout (``datasets/<name>/<version>/...``,
``datasets/<name>/tags.json``). Any fsspec filesystem works: a local path or
``file://`` (tests, NFS mounts), ``gs://`` with gcsfs, ``s3://`` with s3fs;
nothing here is specific to one of them.

* push uploads each file under a temporary name and renames it, and uploads
  MANIFEST.json last: a remote version without a manifest is incomplete and is
  never pulled. Pushing a version that exists remotely with other content is
  refused.
* pull treats the remote as untrusted: the manifest's structure, its file
  names (`safe_paths`: relative, normalised, inside the version) and the
  remote tags are checked before any byte is written; downloads go only into
  a fixed staging directory per version, resuming partial files, each one
  verified against its SHA-256; the version is installed locally in one
  rename only after all of them verified. If the remote goes away mid-pull,
  what arrived is kept for the next attempt.
* pull of a version that is already here re-verifies the local copy (full
  SHA-256) and repairs it: damaged or missing files are fetched again into
  staging next to links to the good ones, and the repaired copy replaces the
  damaged one in one exchange, so a reader never sees a half-repaired version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import shutil
from typing import Any, Callable, Optional

from rlif_data import errors
from rlif_data.faults import checkpoint
from rlif_data.registry import checksums, safe_paths
from rlif_data.registry.store import (
    Registry,
    RegistryError,
    STAGING_LOCK,
    UnknownDatasetError,
    VersionExistsError,
    VersionInfo,
    _flock,
    disk_errors,
)
from rlif_data.registry.versions import Ref, Version, check_tag, parse_ref

log = logging.getLogger(__name__)
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


# A remote's tags.json or MANIFEST.json larger than this is not one push wrote
# (a manifest takes about 150 bytes per file).
MAX_JSON_BYTES = 64 << 20


def _read_json(fs, path: str) -> Optional[dict]:
    try:
        with fs.open(path, "rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_JSON_BYTES:
        raise RemoteError(f"{path}: larger than {MAX_JSON_BYTES} bytes; not written by rlif-data")
    try:
        return json.loads(data.decode())
    except ValueError as exc:
        raise RemoteError(f"{path}: not valid JSON ({exc})") from None


def check_remote_tags(data: Any, where: str) -> dict[str, str]:
    """A remote ``tags.json`` checked entry by entry: valid tag -> valid version.

    Args:
      data: the parsed JSON (None when the remote has no tags file).
      where: its URL, for the message.

    Returns:
      ``{tag: version}``.

    Raises:
      RemoteError: not an object, an invalid tag name or an invalid version.
    """
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RemoteError(f"{where}: not a {{tag: version}} object")
    for tag, version in data.items():
        try:
            check_tag(tag)
            Version.parse(version if isinstance(version, str) else "")
        except ValueError as exc:
            raise RemoteError(f"{where}: bad entry {tag!r}: {version!r} ({exc})") from None
    return dict(data)


def check_remote_manifest(manifest: Any, where: str, name: str, version: Version) -> dict:
    """A remote version's manifest, checked before any byte of the version is written.

    Args:
      manifest: the parsed MANIFEST.json.
      where: its URL, for the message.
      name, version: what the pull asked for; the manifest must say the same.

    Returns:
      `manifest`.

    Raises:
      UnsafePathError: a file name that would land outside the version.
      ManifestError: malformed structure.
      RemoteError: it names another dataset or version, or its content digest
        does not match its file list.
    """
    checksums.check_manifest(manifest, where)
    if (manifest.get("name"), manifest.get("version")) != (name, str(version)):
        raise RemoteError(f"{where} names {manifest.get('name')!r}:{manifest.get('version')!r}, "
                          f"not {name}:{version}; the remote is damaged or hostile")
    if checksums.content_digest(manifest["files"]) != manifest.get("content_sha256"):
        raise RemoteError(f"{where}: the content digest does not match its file list")
    return manifest


def _write_json(fs, path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with fs.open(tmp, "wb") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True).encode())
    fs.mv(tmp, path)


def remote_tags(url: str, name: str) -> dict[str, str]:
    """{tag: version} of `name` on the remote."""
    fs, root = _fs(url)
    path = _join(root, "datasets", name, "tags.json")
    return check_remote_tags(_read_json(fs, path), path)


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
    for path in (dst, f"{dst}.part"):
        if os.path.islink(path):  # never ours: staging holds only files we wrote
            os.unlink(path)
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
    # O_NOFOLLOW: a link planted in staging must not redirect the write.
    fd = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with fs.open(src, "rb") as fi, os.fdopen(fd, "ab") as fo:
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


def _staged_path(target: str, rel: str) -> str:
    """Where file `rel` (a name `safe_paths` accepted) goes under `target`, created safely.

    Raises:
      UnsafePathError: a directory on the way is a link leading out of `target`.
    """
    dst = os.path.join(target, *rel.split("/"))
    parent = os.path.dirname(dst)
    inside = os.path.realpath(target) + os.sep

    def check() -> None:
        if not (os.path.realpath(parent) + os.sep).startswith(inside):
            raise safe_paths.UnsafePathError(f"{target}: {rel!r} would be written through a "
                                             "link outside the staging directory")

    check()
    os.makedirs(parent, exist_ok=True)
    check()  # makedirs must not have followed a link planted meanwhile
    return dst


def _good_local_files(path: str, files: dict[str, dict[str, Any]]) -> set[str]:
    """Names of the files of a local version whose size and SHA-256 match `files`."""
    good = set()
    present = set(checksums.list_files(path)) - set(checksums.list_links(path))
    for rel, entry in files.items():
        local = os.path.join(path, rel)
        if (rel in present and os.path.getsize(local) == entry["size"]
                and checksums.sha256_file(local) == entry["sha256"]):
            good.add(rel)
    return good


def _link_or_copy(src: str, dst: str) -> None:
    """Put a verified local file into staging (a hard link costs no copy)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _local_state(registry: Registry, name: str, version: Version,
                 manifest: dict[str, Any]) -> Optional[set[str]]:
    """None if `name:version` is not here; else the names of its intact files.

    Raises:
      VersionExistsError: the local version holds other content.
    """
    if version not in registry.versions(name):
        return None
    path = registry.version_dir(name, version)
    try:
        local = checksums.read_manifest(path)
    except (OSError, ValueError):
        return set()  # an unreadable local manifest: fetch everything again
    if local.get("content_sha256") != manifest.get("content_sha256"):
        raise VersionExistsError(f"{name}:{version} exists locally with different content; "
                                 "versions are immutable")
    return _good_local_files(path, manifest["files"])


def forward_tags(local: dict[str, str], remote: tuple[str, ...], version: Version
                 ) -> tuple[str, ...]:
    """The remote tags that may point at `version` locally: none moves backwards.

    Pulling an older version whose remote ``latest`` lags behind must not
    silently turn the local ``latest`` back; such tags are skipped with a
    warning (move them with `rlif-data tag` if that is really meant).

    Args:
      local: the local ``{tag: version}`` of the dataset.
      remote: the remote tags that name `version`.
      version: the version being pulled.

    Returns:
      The tags of `remote` that are new locally or do not move to an older version.
    """
    keep = []
    for tag in remote:
        current = local.get(tag)
        if current is not None and Version.parse(current) > version:
            log.warning("not moving local tag %s back from %s to %s (the remote's %s is older); "
                        "use `rlif-data tag` to move it", tag, current, version, tag)
            continue
        keep.append(tag)
    return tuple(keep)


@disk_errors("pull")
def pull(registry: Registry, ref: str, url: str, progress: Progress = None) -> VersionInfo:
    """Download a remote version into the local registry (resumable, verified).

    Remote tags naming this version are applied locally, except that a local
    tag is never moved to an older version (`forward_tags`). Nothing from the
    remote is trusted: every file name, the manifest's structure and the tags
    are checked before any byte is written, and files land only in staging.
    A version that is already here is re-verified (full SHA-256) and, if
    damaged, repaired from the remote.

    Raises:
      UnknownDatasetError: the reference is not on the remote.
      UnsafePathError: the remote manifest names a file outside the version
        (nothing was written).
      ManifestError: the remote manifest is malformed (nothing was written).
      RemoteError: the remote failed mid-pull or is inconsistent; partial
        files are kept for the next `pull` of the same version, nothing is
        visible locally.
      IntegrityError / VersionExistsError: see `Registry.install`.
    """
    fs, root = _fs(url)
    try:
        name, version = resolve_remote(url, ref)
        source = _join(root, "datasets", name, str(version))
        manifest_url = _join(source, checksums.MANIFEST)
        manifest = _read_json(fs, manifest_url)
        tags = tuple(t for t, v in remote_tags(url, name).items() if v == str(version))
    except OSError as exc:
        raise RemoteError(f"cannot read {ref} from {url}: {exc}") from None
    if manifest is None:
        raise RemoteError(f"{name}:{version} on {url} has no manifest (an interrupted push)")
    manifest = check_remote_manifest(manifest, manifest_url, name, version)
    tags = forward_tags(registry.tags(name), tags, version)
    files = manifest["files"]
    intact = _local_state(registry, name, version, manifest)
    local_dir = registry.version_dir(name, version)
    if intact is not None:
        extra = set(checksums.list_files(local_dir)) - set(files)
        if intact == set(files) and not extra and not checksums.list_links(local_dir):
            return registry.install_tags_only(name, version, manifest, tags)
        log.warning("%s:%s is damaged locally (%d of %d files intact); repairing it from %s",
                    name, version, len(intact), len(files), url)
    staging = os.path.join(registry.staging_dir(), f"pull-{name}-{version}")
    os.makedirs(staging, exist_ok=True)
    with _flock(os.path.join(staging, STAGING_LOCK), timeout=1):
        target = os.path.join(staging, "version")
        done = 0
        try:
            for rel, entry in sorted(files.items()):
                dst = _staged_path(target, rel)
                if intact and rel in intact:
                    _link_or_copy(os.path.join(local_dir, rel), dst)
                else:
                    _download(fs, _join(source, rel), dst, entry["size"], entry["sha256"],
                              progress)
                done += 1
                checkpoint("pull.file_fetched")
        except (OSError, RemoteError) as exc:
            if isinstance(exc, OSError) and errors.os_error_fix(exc.errno):
                raise  # our disk, not the remote: `disk_errors` says how to fix it
            raise RemoteError(
                f"pull of {name}:{version} from {url} stopped after {done}/"
                f"{len(files)} files ({exc}); run pull again to resume") from None
        with open(os.path.join(target, checksums.MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        checkpoint("pull.staged")
        # Every file was hashed against the manifest as it was written above
        # (or, for the links to intact local files, just before).
        info = registry.install(target, tags, hashes_verified=True,
                                replace_damaged=intact is not None)
    shutil.rmtree(staging, ignore_errors=True)
    return info
