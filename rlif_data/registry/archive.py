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

import dataclasses
import datetime
import errno
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import uuid
import zlib
from typing import Any, BinaryIO, Iterable, Optional

from rlif_data import errors
from rlif_data.faults import checkpoint
from rlif_data.fsutil import fsync_path
from rlif_data.registry import checksums, safe_paths
from rlif_data.registry.store import (
    IntegrityError,
    Registry,
    RegistryError,
    VersionExistsError,
    VersionInfo,
    current_user,
    disk_errors,
)
from rlif_data.registry.versions import Ref, Version, check_name, check_tag

log = logging.getLogger(__name__)

HEADER = "rlif-archive.json"
FORMAT = "rlif-archive"
FORMAT_VERSION = 1
GZIP_SUFFIXES = (".tar.gz", ".tgz")
PLAIN_SUFFIX = ".tar"
# Caps on what is read into memory before extraction: a real header is a few
# hundred bytes and a manifest about 150 bytes per file.
MAX_HEADER_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FILTER_ERRORS = getattr(tarfile, "FilterError", ())  # () matches nothing where it is missing


class ArchiveError(RegistryError):
    """An archive file is unreadable, truncated or not an rlif-data archive; nothing was changed."""


class UnsafeArchiveError(ArchiveError, errors.UnsafeDataError):
    """An archive member could write outside its version (path traversal, links, devices...)."""


@dataclasses.dataclass(frozen=True)
class ArchiveHeader:
    """What an archive's ``rlif-archive.json`` declares (checked against the whole archive)."""

    name: str
    version: Version
    content_sha256: str
    tags: tuple[str, ...]
    exported_at: Optional[str] = None
    exported_by: Optional[str] = None

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"

    @property
    def prefix(self) -> str:
        """The one directory every version member lives under: ``name/version``."""
        return f"{self.name}/{self.version}"


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
    with _open(archive_path) as tar:
        header, _, _ = _validate(archive_path, tar)
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
    with _open(archive_path) as tar:
        header, members, total = _validate(archive_path, tar)
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


def _open(archive_path: str) -> tarfile.TarFile:
    if not os.path.isfile(archive_path):
        raise ArchiveError(f"{archive_path}: no such archive file")
    try:
        return tarfile.open(archive_path, mode="r:*")  # gzip/bz2/xz detected from the bytes
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"{archive_path}: not a readable tar archive: {exc}") from None


def _read_members(archive_path: str, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every member header, reading the archive to its end (a truncation fails here)."""
    members: list[tarfile.TarInfo] = []
    try:
        while (member := tar.next()) is not None:
            members.append(member)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        where = f"after member {members[-1].name!r}" if members else "at its start"
        raise ArchiveError(f"{archive_path}: truncated or corrupt {where}: {exc}") from None
    return members


def _read_small(archive_path: str, tar: tarfile.TarFile, member: tarfile.TarInfo,
                limit: int) -> bytes:
    if not member.isreg():
        raise UnsafeArchiveError(f"{archive_path}: member {member.name!r} must be a regular file")
    if member.size > limit:
        raise ArchiveError(f"{archive_path}: member {member.name!r} is {member.size} bytes, "
                           f"more than the {limit} allowed")
    try:
        data = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"{archive_path}: cannot read member {member.name!r}: {exc}") from None
    if len(data) != member.size:
        raise ArchiveError(f"{archive_path}: member {member.name!r} is truncated")
    return data


def _parse_header(archive_path: str, data: bytes) -> ArchiveHeader:
    def bad(why: str) -> ArchiveError:
        return ArchiveError(f"{archive_path}: member {HEADER!r} {why}")

    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise bad(f"is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise bad(f"does not declare format {FORMAT!r}; not an rlif-data archive")
    if raw.get("format_version") != FORMAT_VERSION:
        raise bad(f"has format_version {raw.get('format_version')!r}; this rlif-data reads "
                  f"{FORMAT_VERSION} (a newer rlif-data may read it)")
    try:
        name = check_name(raw.get("name"))
        version = Version.parse(raw.get("version"))
        tags = tuple(check_tag(t) for t in raw.get("tags", []))
    except (ValueError, TypeError) as exc:
        raise bad(f"is invalid: {exc}") from None
    digest = raw.get("content_sha256")
    if not isinstance(digest, str) or not _SHA256_RE.match(digest):
        raise bad(f"has an invalid content_sha256 {digest!r}")
    return ArchiveHeader(name, version, digest, tags, raw.get("exported_at"),
                         raw.get("exported_by"))


def _check_name_safe(archive_path: str, member: tarfile.TarInfo) -> list[str]:
    """The path components of a member name, or UnsafeArchiveError."""
    name = member.name

    def unsafe(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"{archive_path}: unsafe member {name!r}: {why}; "
                                  "nothing was extracted")

    reason = safe_paths.unsafe_reason(name)
    if reason is not None:
        raise unsafe(reason)
    if member.issym():
        raise unsafe(f"symbolic link to {member.linkname!r}")
    if member.islnk():
        raise unsafe(f"hard link to {member.linkname!r}")
    if member.ischr() or member.isblk():
        raise unsafe("device file")
    if member.isfifo():
        raise unsafe("FIFO")
    if not (member.isreg() or member.isdir()):
        raise unsafe(f"unsupported member type {member.type!r}")
    return name.split("/")


def _validate(archive_path: str, tar: tarfile.TarFile
              ) -> tuple[ArchiveHeader, list[tarfile.TarInfo], int]:
    """Check every member before extraction.

    Returns:
      (header, the version's members to extract, their total size in bytes).
    """
    members = _read_members(archive_path, tar)
    # Safety first, for every member, so an attack is reported as one even if
    # the archive is also malformed in other ways.
    seen: set[str] = set()
    files: set[str] = set()
    for member in members:
        _check_name_safe(archive_path, member)
        if member.name in seen:
            raise UnsafeArchiveError(f"{archive_path}: member {member.name!r} appears more than "
                                     "once (a later copy would replace the checked one)")
        seen.add(member.name)
        if member.isreg():
            files.add(member.name)
    for member in members:  # a file used as a directory: extraction would go sideways
        parts = member.name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise UnsafeArchiveError(f"{archive_path}: member {member.name!r} lies inside "
                                         f"the file member {'/'.join(parts[:i])!r}")

    by_name = {m.name: m for m in members}
    if HEADER not in by_name:
        raise ArchiveError(f"{archive_path}: no {HEADER!r} member; not an archive written by "
                           "`export_version`")
    header = _parse_header(archive_path, _read_small(archive_path, tar, by_name[HEADER],
                                                     MAX_HEADER_BYTES))
    prefix = header.prefix
    ancestors = {header.name, prefix}  # directory entries other tar tools may add
    version_files: dict[str, tarfile.TarInfo] = {}
    to_extract = []
    for member in members:
        if member.name == HEADER:
            continue
        if member.isdir() and member.name in ancestors:
            to_extract.append(member)
            continue
        if not member.name.startswith(prefix + "/"):
            raise UnsafeArchiveError(f"{archive_path}: member {member.name!r} is outside "
                                     f"{prefix}/, the version the archive declares")
        to_extract.append(member)
        if member.isreg():
            version_files[member.name[len(prefix) + 1:]] = member

    manifest_member = version_files.pop(checksums.MANIFEST, None)
    if manifest_member is None:
        raise ArchiveError(f"{archive_path}: no member {prefix}/{checksums.MANIFEST!s}")
    manifest = _parse_manifest(archive_path, header, manifest_member,
                               _read_small(archive_path, tar, manifest_member, MAX_MANIFEST_BYTES))
    _check_against_manifest(archive_path, header, manifest, version_files)
    total = sum(m.size for m in to_extract if m.isreg())
    return header, to_extract, total


def _parse_manifest(archive_path: str, header: ArchiveHeader, member: tarfile.TarInfo,
                    data: bytes) -> dict[str, Any]:
    where = f"{archive_path}: member {member.name!r}"
    try:
        manifest = checksums.check_manifest(json.loads(data), where)
    except safe_paths.UnsafePathError as exc:
        raise UnsafeArchiveError(str(exc)) from None
    except ValueError as exc:
        raise ArchiveError(f"{where} is not a valid manifest: {exc}") from None
    files = manifest["files"]
    if (manifest.get("name"), manifest.get("version")) != (header.name, str(header.version)):
        raise IntegrityError(f"{where} names {manifest.get('name')}:{manifest.get('version')}, "
                             f"but the archive declares {header.ref}")
    if manifest.get("content_sha256") != header.content_sha256:
        raise IntegrityError(f"{where}: content_sha256 differs from the one in {HEADER}")
    if checksums.content_digest(files) != header.content_sha256:
        raise IntegrityError(f"{where}: the content digest does not match its file list")
    return manifest


def _check_against_manifest(archive_path: str, header: ArchiveHeader, manifest: dict[str, Any],
                            members: dict[str, tarfile.TarInfo]) -> None:
    """Members and manifest list the same files with the same sizes (hashes: at install)."""
    problems = []
    files = manifest["files"]
    for rel in sorted(set(files) - set(members)):
        problems.append(f"missing member {header.prefix}/{rel}")
    for rel in sorted(set(members) - set(files)):
        problems.append(f"member {members[rel].name!r} is not in the manifest")
    for rel in sorted(set(files) & set(members)):
        if members[rel].size != files[rel]["size"]:
            problems.append(f"member {members[rel].name!r} is {members[rel].size} bytes, "
                            f"the manifest records {files[rel]['size']}")
    if problems:
        raise IntegrityError(f"{archive_path} ({header.ref}) failed verification: "
                             + "; ".join(problems))


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
