"""The rlif-data archive format, and the checks that an archive is what it claims (pure reads).

An archive (written by `rlif_data.registry.archive.export_version`) is a tar
file holding ``rlif-archive.json`` (`ArchiveHeader`) and the files of one
version under ``<name>/<version>/``, its ``MANIFEST.json`` included.

`validate` reads every member header and checks the archive *before anything
is extracted*: regular files and directories only, no absolute paths, no
``..``, no links or devices, no duplicates, all under the one
``<name>/<version>/`` the header declares, and the members agree with the
manifest (names and sizes; SHA-256s are checked by `Registry.install`).
Nothing here writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tarfile
import zlib
from typing import Any, Optional

from rlif_data import errors
from rlif_data.registry import checksums, safe_paths
from rlif_data.registry.store import IntegrityError, RegistryError
from rlif_data.registry.versions import Version, check_name, check_tag

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


def open_archive(archive_path: str) -> tarfile.TarFile:
    """Open an archive for reading (gzip/bz2/xz detected from the bytes).

    Raises:
      ArchiveError: no such file, or not a tar archive.
    """
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


def validate(archive_path: str, tar: tarfile.TarFile
              ) -> tuple[ArchiveHeader, list[tarfile.TarInfo], int]:
    """Check every member before extraction (see the module docstring).

    Raises:
      ArchiveError: unreadable, truncated, or not an rlif-data archive.
      UnsafeArchiveError: a member that could write outside its version.
      IntegrityError: the members disagree with the archive's manifest.

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
