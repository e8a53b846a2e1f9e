"""Export a registry version as one archive file, and import such a file safely.

For sharing without a remote (USB stick, e-mail, a shared drive). An archive
is a tar file (plain by default: array_record shards hardly compress; gzip
when the name ends in ``.tar.gz``/``.tgz``) holding::

    rlif-archive.json          {"format", "format_version", "name", "version",
                                "content_sha256", "tags", "exported_at", "exported_by"}
    <name>/<version>/MANIFEST.json
    <name>/<version>/...       every file of the version, as listed in the manifest

Import treats the file as hostile until proven otherwise: every member is
checked *before anything is extracted* (regular files and directories only,
no absolute paths, no ``..``, all under the one ``<name>/<version>/`` the
header declares, no duplicates, sizes as the manifest records), extraction
happens only into a registry staging directory (with tarfile's ``"data"``
filter as a second line of defence), and the version becomes visible only
through `Registry.install`, which checks every SHA-256 against the manifest.
A rejected archive therefore changes nothing in the registry.

Tags are local decisions, so import applies only the tags the caller names;
the tags the version had where it was exported are in `inspect_archive(...).tags`.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import uuid
import zlib
from typing import Any, BinaryIO, Iterable, Optional

from rlif_data import errors
from rlif_data.faults import checkpoint
from rlif_data.fsutil import fsync_path
from rlif_data.registry import checksums
from rlif_data.registry.archive_format import (  # noqa: F401  (re-exported: the archive API)
    FORMAT,
    FORMAT_VERSION,
    GZIP_SUFFIXES,
    HEADER,
    PLAIN_SUFFIX,
    ArchiveError,
    ArchiveHeader,
    UnsafeArchiveError,
    open_archive,
    validate,
)
from rlif_data.registry.store import (
    IntegrityError,
    Registry,
    RegistryError,
    VersionExistsError,
    VersionInfo,
    current_user,
    disk_errors,
)
from rlif_data.registry.versions import Ref, check_tag

log = logging.getLogger(__name__)
_FILTER_ERRORS = getattr(tarfile, "FilterError", ())  # () matches nothing where it is missing


# -- export -------------------------------------------------------------------------


def export_version(registry: Registry, ref: str | Ref, out_path: str) -> str:
    """Write one version of `registry` into a single archive file.

    The archive is written to a temporary file next to `out_path` and moved
    into place only when complete, so `out_path` never holds half an archive.
    Every file is hashed as it is written into the archive and compared with
    the manifest: the bytes verified are exactly the bytes shipped (no window
    between a separate verification pass and the copy), and a damaged version
    produces no archive.

    Args:
      registry: the registry holding the version.
      ref: ``name:version``, ``name@tag`` or ``name``.
      out_path: the archive file to create; ``.tar.gz``/``.tgz`` gzip it,
        ``.tar`` does not. An existing directory receives
        ``<name>-<version>.tar``.

    Returns:
      The absolute path of the archive written.

    Raises:
      UnknownDatasetError: `ref` is not in the registry.
      IntegrityError: the version's files differ from its manifest.
      RegistryError: `out_path` already exists.
      ValueError: `out_path` has a suffix other than .tar, .tar.gz or .tgz.
    """
    info = registry.info(ref)
    if os.path.isdir(out_path):
        out_path = os.path.join(out_path, f"{info.name}-{info.version}{PLAIN_SUFFIX}")
    out_path = os.path.abspath(out_path)
    mode = _write_mode(out_path)
    if os.path.lexists(out_path):
        raise RegistryError(f"{out_path} already exists; not overwriting it "
                            "(remove it or choose another name)")
    # The cheap check first: a missing, resized or extra file fails before any writing.
    problems = checksums.check_files(info.path, info.manifest["files"], full=False)
    if problems:
        raise IntegrityError(f"{info.ref} at {info.path} is damaged, not exporting it: "
                             + "; ".join(problems))
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": info.name,
        "version": str(info.version), "content_sha256": info.manifest["content_sha256"],
        "tags": list(info.tags),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "exported_by": current_user(),
    }
    directory, base = os.path.split(out_path)
    tmp = os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open(tmp, "xb") as raw:
            # gzip level 6: level 9 is much slower and hardly smaller on these shards.
            kwargs = {"compresslevel": 6} if mode == "w:gz" else {}
            with tarfile.open(fileobj=raw, mode=mode, format=tarfile.PAX_FORMAT, **kwargs) as tar:
                _add_bytes(tar, HEADER, json.dumps(header, indent=1, sort_keys=True).encode())
                prefix = f"{info.name}/{info.version}"
                with open(os.path.join(info.path, checksums.MANIFEST), "rb") as f:
                    _add_bytes(tar, f"{prefix}/{checksums.MANIFEST}", f.read())
                for rel, entry in sorted(info.manifest["files"].items()):
                    _add_verified_file(tar, info, rel, entry, f"{prefix}/{rel}")
            raw.flush()
            os.fsync(raw.fileno())
        _move_no_clobber(tmp, out_path)
    except BaseException:
        _remove(tmp)
        raise
    fsync_path(directory, best_effort=True)
    return out_path


def _write_mode(path: str) -> str:
    lower = path.lower()
    if lower.endswith(GZIP_SUFFIXES):
        return "w:gz"
    if lower.endswith(PLAIN_SUFFIX):
        return "w"
    raise ValueError(f"{path}: an archive name must end in .tar (recommended: shards hardly "
                     "compress), .tar.gz or .tgz")


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    # Fixed owner and modes: the receiver's files should not carry the sender's
    # uid/user name or odd permissions.
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.type = size, int(mtime), 0o644, tarfile.REGTYPE
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    tar.addfile(_tarinfo(name, len(data), now), io.BytesIO(data))


class _HashingReader:
    """A read-only file wrapper that hashes everything read through it."""

    def __init__(self, f: BinaryIO):
        self._f = f
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        block = self._f.read(n)
        self.digest.update(block)
        return block


def _add_verified_file(tar: tarfile.TarFile, info: VersionInfo, rel: str,
                       entry: dict[str, Any], arcname: str) -> None:
    path = os.path.join(info.path, rel)
    with open(path, "rb") as f:
        reader = _HashingReader(f)
        try:
            tar.addfile(_tarinfo(arcname, entry["size"], os.fstat(f.fileno()).st_mtime), reader)
        except OSError as exc:  # tarfile's "unexpected end of data": the file shrank
            raise IntegrityError(f"{info.ref}: {rel} changed while exporting: {exc}") from None
    if reader.digest.hexdigest() != entry["sha256"]:
        raise IntegrityError(f"{info.ref} at {info.path} is damaged, not exporting it: "
                             f"{rel}: SHA-256 differs from the one recorded at publish")


def _move_no_clobber(tmp: str, final: str) -> None:
    """Move `tmp` to `final` unless `final` exists, atomically where the filesystem allows."""
    try:
        os.link(tmp, final)  # fails if `final` exists: no race with another writer
    except FileExistsError:
        raise RegistryError(f"{final} already exists; not overwriting it") from None
    except OSError as exc:
        # FAT/exFAT USB sticks have no hard links; fall back to check-then-rename.
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(final):
            raise RegistryError(f"{final} already exists; not overwriting it") from None
        os.rename(tmp, final)
        return
    os.unlink(tmp)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass





# -- import ---------------------------------------------------------------------------


def inspect_archive(archive_path: str) -> ArchiveHeader:
    """Check an archive completely without extracting it, and return its header.

    Use it to show what an archive holds (name, version, the tags it had where
    it was exported) before importing.

    Raises:
      ArchiveError: unreadable, truncated, or not an rlif-data archive.
      UnsafeArchiveError: a member that could write outside its version.
      IntegrityError: the members disagree with the archive's manifest.
    """
    archive_path = os.path.abspath(archive_path)
    with open_archive(archive_path) as tar:
        header, _, _ = validate(archive_path, tar)
    return header


@disk_errors("import")
def import_archive(registry: Registry, archive_path: str,
                   tags: Optional[Iterable[str]] = None) -> VersionInfo:
    """Import a version from an archive written by `export_version`.

    All members are validated before anything is written; extraction goes only
    into a registry staging directory, and `Registry.install` verifies every
    SHA-256 before the version becomes visible by one rename. Importing a
    version that already exists with the same content succeeds and changes
    nothing (except applying `tags`).

    Tags: only `tags` are applied (default none), never the archive's own:
    an imported ``latest`` would silently change what ``name`` means here.
    The archive's tags are logged and available from `inspect_archive`.

    Args:
      registry: the registry to import into.
      archive_path: a ``.tar``, ``.tar.gz`` or ``.tgz`` file (the compression
        is detected from the content, not the name).
      tags: local tags to point at the imported version.

    Returns:
      The `VersionInfo` of the imported (or already present) version.

    Raises:
      ValueError: an invalid tag in `tags`.
      ArchiveError: unreadable, truncated, or not an rlif-data archive.
      UnsafeArchiveError: a member that could write outside its version
        (absolute path, ``..``, link, device, outside the declared prefix...).
      IntegrityError: the files differ from the archive's manifest.
      VersionExistsError: the version exists locally with different content.
    """
    tags = tuple(check_tag(t) for t in (tags or ()))  # a typo should fail before the work
    archive_path = os.path.abspath(archive_path)
    with open_archive(archive_path) as tar:
        header, members, total = validate(archive_path, tar)
        log.info("%s holds %s (tags where exported: %s)", archive_path, header.ref,
                 ", ".join(header.tags) or "none")
        _check_no_conflict(registry, header)
        os.makedirs(registry.staging_dir(), exist_ok=True)
        free = shutil.disk_usage(registry.staging_dir()).free
        if total > free:
            raise ArchiveError(f"{archive_path}: {header.ref} needs {total} bytes, only {free} "
                               f"are free under {registry.staging_dir()}")
        with registry.staging("import") as staging:
            dest = os.path.join(staging, "extract")
            os.makedirs(dest)
            _extract(archive_path, tar, members, dest)
            checkpoint("import.extracted")
            return registry.install(os.path.join(dest, header.name, str(header.version)),
                                    tags=tags)


def _check_no_conflict(registry: Registry, header: ArchiveHeader) -> None:
    """Fail before extracting anything if the version exists here with other content."""
    final = registry.version_dir(header.name, header.version)
    if not os.path.exists(os.path.join(final, checksums.MANIFEST)):
        return
    local = checksums.read_manifest(final)
    if local.get("content_sha256") != header.content_sha256:
        raise VersionExistsError(f"{header.ref} already exists locally with different content; "
                                 "versions are immutable, so the archive was not imported")


def _extract(archive_path: str, tar: tarfile.TarFile, members: list[tarfile.TarInfo],
             dest: str) -> None:
    tar.errorlevel = 2  # raise every extraction problem, never skip a file silently
    # The "data" filter re-checks paths, links and modes: defence in depth
    # should the checks above ever miss a case.
    # (Python < 3.11.4 has no filters; the checks above still hold there.)
    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        tar.extractall(dest, members=members, **kwargs)
    except _FILTER_ERRORS as exc:
        member = getattr(exc, "tarinfo", None)
        raise UnsafeArchiveError(f"{archive_path}: unsafe member "
                                 f"{member.name if member else '?'!r}: {exc}") from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{archive_path}: truncated or corrupt: {exc}") from None
    except OSError as exc:
        if errors.os_error_fix(exc.errno):
            raise  # our disk, not the archive: `disk_errors` says how to fix it
        raise ArchiveError(f"{archive_path}: extraction failed: {exc}") from None
