"""Sharing versions: push to and pull from a remote root given as an fsspec URL.

The remote has the local layout (`rlif_data.registry.remote_layout`):
``objects/`` named by SHA-256, one MANIFEST.json per version, tags, and
lineage records. Any fsspec filesystem works: a local path or ``file://``
(tests, NFS mounts), ``gs://`` with gcsfs, ``s3://`` with s3fs; nothing here
is specific to one of them. Both directions move only what the other side
lacks, so a round that adds N episodes to a merge of all earlier rounds
costs N episodes of transfer, not the whole merge.

* push uploads the objects of the version's manifest that the remote lacks,
  each hashed as it is read (one pass: a local file that no longer matches
  its manifest is refused, and its partial upload removed), under a
  temporary name then renamed; then the lineage records of the version's
  ancestors; then MANIFEST.json last: a remote version without a manifest is
  incomplete and is never pulled. Pushing a version that exists remotely
  with other content is refused. An interrupted push is resumed by pushing
  again (the objects that arrived are not sent twice).
* pull treats the remote as untrusted: the manifest's structure, its file
  names (`safe_paths`: relative, normalised, inside the version), the remote
  tags and, with ``trust``, the manifest's ed25519 signature are checked
  before any byte is written; a manifest whose content digest differs from
  the one recorded here for that version (by a descendant's job record) is
  refused as tampered. Only objects missing locally are downloaded, into a
  fixed staging directory per version, resuming partial files, each one
  verified against its SHA-256 and stored as an object at once; the version
  is installed locally in one rename only after all of them verified. If the
  remote goes away mid-pull, what arrived is kept for the next attempt.
  The lineage records of the version's ancestors come along (manifests and
  job records, not data), so `Registry.lineage` draws the whole tree.
* pull of a version that is already here re-verifies the local copy (full
  SHA-256) and repairs it: damaged or missing files are fetched again (and
  replace their damaged objects), linked next to the good ones, and the
  repaired copy replaces the damaged one in one exchange, so a reader never
  sees a half-repaired version.

Why this module is over ~450 lines: push, pull and pull's repair are one
protocol (staging, object checks, manifest last) over one fsspec layout; the
layout and the lineage records of a remote are already their own modules.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import shutil
import uuid
from typing import Any, Callable, Iterable, Optional

from rlif_data import errors
from rlif_data.faults import checkpoint
from rlif_data.registry import checksums, lineage_records, safe_paths, signing
from rlif_data.registry import remote_lineage
from rlif_data.registry.remote_layout import (  # noqa: F401  (re-exported: the remote API)
    MAX_JSON_BYTES,
    RemoteError,
    check_remote_manifest,
    check_remote_tags,
    join as _join,
    legacy_files,
    list_remote,
    object_path,
    open_fs as _fs,
    read_json as _read_json,
    remote_names,
    remote_tags,
    remote_versions,
    resolve_remote,
    version_path,
    write_json as _write_json,
)
from rlif_data.registry.store import (
    IntegrityError,
    Registry,
    STAGING_LOCK,
    UnknownDatasetError,
    VersionExistsError,
    VersionInfo,
    _flock,
    disk_errors,
)
from rlif_data.registry.versions import Version

log = logging.getLogger(__name__)
Progress = Optional[Callable[[int], None]]


# -- push ---------------------------------------------------------------------------------


def push(registry: Registry, ref: str, url: str, tags: Optional[tuple[str, ...]] = None,
         progress: Progress = None) -> dict[str, Any]:
    """Upload the objects a remote lacks, the ancestors' lineage records, then the manifest.

    Args:
      registry: the local registry.
      ref: the version to push.
      url: the remote root.
      tags: remote tags to set (default: the local tags of this version).
      progress: optional callable(bytes).

    Returns:
      ``{"ref", "uploaded_files", "uploaded_bytes", "skipped": bool, "tags"}``
      (uploaded_files counts objects; a file whose object the remote holds is
      not sent).

    Raises:
      IntegrityError: a local file that had to be sent is missing or differs
        from its manifest (the version stays invisible on the remote).
      VersionExistsError: the remote holds this version with different content.
      RemoteError: the remote failed mid-way (its version stays incomplete,
        invisible to pulls; push again).
    """
    info = registry.info(ref)
    files = info.manifest["files"]
    problems = checksums.check_files(info.path, files, full=False)
    if problems:
        raise IntegrityError(f"{info.ref} at {info.path} is damaged, not pushing it: "
                             + "; ".join(problems))
    fs, root = _fs(url)
    base = _join(root, "datasets", info.name)
    target = version_path(root, info.name, info.version)
    tags = info.tags if tags is None else tags
    uploaded = uploaded_bytes = 0
    try:
        existing = _read_json(fs, _join(target, checksums.MANIFEST))
        if existing is not None:
            if existing.get("content_sha256") != info.manifest["content_sha256"]:
                raise VersionExistsError(
                    f"{info.ref} exists on {url} with different content; versions are immutable, "
                    "publish a new version instead")
        else:
            for sha, rel in sorted(_one_file_per_object(files).items()):
                dst = object_path(root, sha)
                if _remote_size(fs, dst) == files[rel]["size"]:
                    continue  # the remote has it (pushed with an earlier version)
                _upload_object(fs, info, rel, files[rel], dst, url, progress)
                uploaded += 1
                uploaded_bytes += files[rel]["size"]
        for record in remote_lineage.ancestor_records(registry, info):
            remote_lineage.upload_record(fs, root, record)
        if existing is None:
            # The manifest last: it is what makes the remote version complete.
            tmp = _join(target, f"{checksums.MANIFEST}.{uuid.uuid4().hex[:8]}.tmp")
            fs.makedirs(target, exist_ok=True)
            fs.put_file(os.path.join(info.path, checksums.MANIFEST), tmp)
            fs.mv(tmp, _join(target, checksums.MANIFEST))
        if tags:
            current = _read_json(fs, _join(base, "tags.json")) or {}
            current.update({t: str(info.version) for t in tags})
            _write_json(fs, _join(base, "tags.json"), current)
    except (VersionExistsError, UnknownDatasetError, IntegrityError):
        raise
    except OSError as exc:
        raise RemoteError(f"push of {info.ref} to {url} failed: {exc}; push again") from None
    return {"ref": info.ref, "uploaded_files": uploaded, "uploaded_bytes": uploaded_bytes,
            "skipped": existing is not None, "tags": list(tags)}


def _one_file_per_object(files: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{sha256: the first file (sorted) with that content}: each object is sent once. Pure."""
    out: dict[str, str] = {}
    for rel in sorted(files):
        out.setdefault(files[rel]["sha256"], rel)
    return out


def _remote_size(fs, path: str) -> Optional[int]:
    try:
        return fs.size(path)
    except FileNotFoundError:
        return None


def _upload_object(fs, info: VersionInfo, rel: str, entry: dict[str, Any], dst: str, url: str,
                   progress: Progress) -> None:
    """Send one local file as the object `dst`, hashing it on the way (one pass).

    Raises:
      IntegrityError: the bytes read are not the ones the manifest names
        (the partial upload is removed; nothing names it).
    """
    part = f"{dst}.{uuid.uuid4().hex[:8]}.part"  # unique: two pushers never share one
    fs.makedirs(posixpath.dirname(dst), exist_ok=True)
    with open(os.path.join(info.path, rel), "rb") as fi, fs.open(part, "wb") as fo:
        size, digest = checksums.copy_and_hash(fi, fo, progress)
        _fsync_if_local(fo)
    if (size, digest) != (entry["size"], entry["sha256"]):
        with contextlib.suppress(FileNotFoundError):
            fs.rm(part)
        raise IntegrityError(f"{info.ref} at {info.path} is damaged, not pushing it: {rel}: "
                             "SHA-256 differs from the one recorded at publish (nothing of it "
                             f"was made visible on {url})")
    fs.mv(part, dst)


def _fsync_if_local(f) -> None:
    """Make an uploaded file durable where it is a local file (a path remote); object stores
    commit on close."""
    try:
        fd = f.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return
    f.flush()
    os.fsync(fd)


# -- pull ---------------------------------------------------------------------------------


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
    # Not O_APPEND (the kernel copy refuses it): the write starts where the part ends.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with fs.open(src, "rb") as fi, os.fdopen(fd, "wb") as fo:
        if offset:
            fi.seek(offset)
            fo.seek(offset)
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
def pull(registry: Registry, ref: str, url: str, progress: Progress = None,
         trust: Optional[Iterable[str]] = None) -> VersionInfo:
    """Download a remote version into the local registry: only missing objects, resumable, verified.

    Remote tags naming this version are applied locally, except that a local
    tag is never moved to an older version (`forward_tags`). Nothing from the
    remote is trusted: every file name, the manifest's structure and the tags
    are checked before any byte is written, and files land only in staging.
    A version that is already here is re-verified (full SHA-256) and, if
    damaged, repaired from the remote. The lineage records of its ancestors
    are kept here (`lineage_records`).

    Args:
      registry: the local registry.
      ref: ``name:version``, ``name@tag`` or ``name`` on the remote.
      url: the remote root.
      progress: optional callable(bytes downloaded).
      trust: public keys (64 hex digits, `signing.load_public_key`): accept
        only a manifest validly signed by one of them. None: no signature
        is required.

    Raises:
      UnknownDatasetError: the reference is not on the remote.
      UnsafePathError: the remote manifest names a file outside the version
        (nothing was written).
      ManifestError: the remote manifest is malformed (nothing was written).
      SignatureError: with `trust`, an unsigned, tampered or untrusted
        manifest (nothing was written).
      RemoteError: the remote failed mid-pull or is inconsistent (a missing
        object, a rewritten manifest); partial files are kept for the next
        `pull` of the same version, nothing is visible locally.
      IntegrityError / VersionExistsError: see `Registry.install`.
    """
    fs, root = _fs(url)
    try:
        name, version = resolve_remote(url, ref)
        source = version_path(root, name, version)
        manifest_url = _join(source, checksums.MANIFEST)
        manifest = _read_json(fs, manifest_url)
        tags = tuple(t for t, v in remote_tags(url, name).items() if v == str(version))
    except OSError as exc:
        raise RemoteError(f"cannot read {ref} from {url}: {exc}") from None
    if manifest is None:
        raise RemoteError(f"{name}:{version} on {url} has no manifest (an interrupted push)")
    manifest = check_remote_manifest(manifest, manifest_url, name, version)
    if trust is not None:
        signing.check_trusted(manifest, trust, manifest_url)
    remote_lineage.check_known_content(registry, name, version, manifest, manifest_url)
    tags = forward_tags(registry.tags(name), tags, version)
    files = manifest["files"]
    intact = _local_state(registry, name, version, manifest)
    local_dir = registry.version_dir(name, version)
    if intact is not None:
        extra = set(checksums.list_files(local_dir)) - set(files)
        if intact == set(files) and not extra and not checksums.list_links(local_dir):
            ancestors = remote_lineage.fetch_ancestors(
                fs, root, url, manifest, lineage_records.read_metadata_text(local_dir))
            info = registry.install_tags_only(name, version, manifest, tags)
            remote_lineage.keep_ancestors(registry, ancestors)
            return info
        log.warning("%s:%s is damaged locally (%d of %d files intact); repairing it from %s",
                    name, version, len(intact), len(files), url)
    staging = os.path.join(registry.staging_dir(), f"pull-{name}-{version}")
    os.makedirs(staging, exist_ok=True)
    with _flock(os.path.join(staging, STAGING_LOCK), timeout=1), registry.objects_lock():
        target = os.path.join(staging, "version")
        _stage_version(registry, fs, root, url, manifest, target, staging, intact, progress)
        with open(os.path.join(target, checksums.MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        checkpoint("pull.staged")
        ancestors = remote_lineage.fetch_ancestors(
            fs, root, url, manifest, lineage_records.read_metadata_text(target))
        # Every file was hashed against the manifest as it was written (or,
        # for intact local files, just before; local objects are trusted by
        # name and size, as `verify` re-hashes them).
        info = registry.install(target, tags, hashes_verified=True,
                                replace_damaged=intact is not None)
    shutil.rmtree(staging, ignore_errors=True)
    remote_lineage.keep_ancestors(registry, ancestors)
    return info


def _stage_version(registry: Registry, fs, root: str, url: str, manifest: dict[str, Any],
                   target: str, staging: str, intact: Optional[set[str]],
                   progress: Progress) -> None:
    """Fill `target` with one link per file: to an intact local file, a local object, or a download.

    A downloaded file becomes an object at once, so a pull that stops
    half-way keeps what arrived for the next pull of any version.

    Raises:
      RemoteError: a download failed (the message says how far it got).
    """
    name, version = manifest["name"], Version.parse(manifest["version"])
    files = manifest["files"]
    source = version_path(root, name, version)
    local_dir = registry.version_dir(name, version)
    legacy: Optional[set[str]] = None
    done = 0
    # Links are cheap to make again, and what an earlier attempt fetched is in
    # the object store (or in staging/objects, to resume): start `target`
    # afresh, so nothing left or planted in it can end up in the version.
    if os.path.islink(target):
        os.unlink(target)
    shutil.rmtree(target, ignore_errors=True)
    try:
        for rel, entry in sorted(files.items()):
            dst = _staged_path(target, rel)
            sha, size = entry["sha256"], entry["size"]
            if intact and rel in intact:
                _link_or_copy(os.path.join(local_dir, rel), dst)
            elif intact is None and _have_object(registry, sha, size):
                registry.objects.link_into(sha, dst)  # already here: nothing travels
            else:
                if legacy is None:  # one listing per version: files of the older layout
                    legacy = legacy_files(fs, root, name, version)
                src = _join(source, rel) if rel in legacy else object_path(root, sha)
                tmp = _staged_path(staging, f"objects/{sha}")
                try:
                    _download(fs, src, tmp, size, sha, progress)
                except FileNotFoundError:
                    raise RemoteError(f"the remote has no object {sha[:12]}... for {rel} (its "
                                      "manifest names a missing object; push the version "
                                      "again)") from None
                registry.objects.add(tmp, sha, replace=intact is not None)
                registry.objects.link_into(sha, dst)
                os.unlink(tmp)
            done += 1
            checkpoint("pull.file_fetched")
    except (OSError, RemoteError) as exc:
        if isinstance(exc, OSError) and errors.os_error_fix(exc.errno):
            raise  # our disk, not the remote: `disk_errors` says how to fix it
        raise RemoteError(
            f"pull of {name}:{version} from {url} stopped after {done}/"
            f"{len(files)} files ({exc}); run pull again to resume") from None


def _have_object(registry: Registry, sha256: str, size: int) -> bool:
    st = registry.objects.stat(sha256)
    return st is not None and st.st_size == size
