"""Keeping a registry's object store tidy: gc's sweep, and upgrading full-copy registries.

* `sweep_objects` removes objects that no version's manifest names (gc).
  It runs only with the object lock held exclusively (no publish, pull or
  import is adding or linking objects), only if every manifest can be read,
  and only on objects older than the grace period.
* `upgrade` converts a registry written before objects existed, where each
  version directory holds full copies, in place: each file becomes its
  object (or, where the object is already there, a link to it). A file
  is replaced by a link to identical, verified bytes in one rename, so a
  reader sees the same content throughout and an interrupted upgrade is
  simply run again; no version or tag is touched, and a damaged file is
  left as it is and reported.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import uuid
from typing import Any, Optional

from rlif_data.faults import checkpoint
from rlif_data.fsutil import fsync_path
from rlif_data.registry import checksums, lineage_records
from rlif_data.registry.objects import OBJECTS_LOCK, ObjectStore, replace_over, try_link
from rlif_data.registry.store import Registry, RegistryError, _flock, disk_errors


def unshared_bytes(directory: str) -> int:
    """Bytes of the files under `directory` that nothing else links (what removing it frees)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                total += st.st_size
    return total


def remove_stale_records_tmp(root: str, grace_s: float) -> list[str]:
    """Remove temporary files a killed lineage-record write left (older than `grace_s`)."""
    import time

    base = os.path.join(root, lineage_records.LINEAGE_DIR)
    removed = []
    now = time.time()
    for dirpath, _, files in os.walk(base):
        for name in files:
            path = os.path.join(dirpath, name)
            if ".json.tmp-" in name and now - os.lstat(path).st_mtime >= grace_s:
                os.unlink(path)
                removed.append(path)
    return removed


def referenced_objects(registry: Registry) -> set[str]:
    """SHA-256 of every file every version here names (versions of any layout).

    Raises:
      RegistryError: a version's manifest cannot be read (nothing may be swept then).
    """
    referenced = set()
    base = os.path.join(registry.root, "datasets")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        name_dir = os.path.join(base, name)
        if not os.path.isdir(name_dir):
            continue
        for entry in sorted(os.listdir(name_dir)):
            path = os.path.join(name_dir, entry)
            if not os.path.exists(os.path.join(path, checksums.MANIFEST)):
                continue
            try:
                manifest = checksums.read_manifest(path)
            except (OSError, ValueError) as exc:
                raise RegistryError(f"cannot read {path}'s manifest ({exc})") from None
            referenced.update(f["sha256"] for f in manifest["files"].values())
    return referenced


def sweep_objects(registry: Registry, grace_s: float) -> tuple[list[str], int, Optional[str]]:
    """Remove unreferenced objects older than `grace_s` (gc's last step).

    Returns:
      (paths removed, bytes freed, why the sweep was skipped or None).
    """
    store = registry.objects
    if not os.path.isdir(store.dir):
        return [], 0, None
    lock = os.path.join(registry.root, OBJECTS_LOCK)
    try:
        with _flock(lock, timeout=0):
            try:
                referenced = referenced_objects(registry)
            except RegistryError as exc:
                return [], 0, f"{exc}; no object was removed (repair or pull that version first)"
            removed, freed = store.sweep(referenced, grace_s)
            return removed, freed, None
    except RegistryError:  # only the lock raises it here: a writer holds it
        return [], 0, "a publish, pull or import holds the object lock; run gc again later"


@dataclasses.dataclass
class UpgradeReport:
    """What `upgrade` did.

    Attributes:
      versions: versions looked at.
      objects_added: files that became objects.
      files_linked: copies replaced by links to an object already here.
      bytes_freed: bytes those copies held.
      damaged: ``name:version: problem`` for files left as they were.
    """

    versions: int = 0
    objects_added: int = 0
    files_linked: int = 0
    bytes_freed: int = 0
    damaged: list[str] = dataclasses.field(default_factory=list)


@disk_errors("upgrade")
def upgrade(registry: Registry) -> UpgradeReport:
    """Convert every version of a full-copy registry to links to objects, in place.

    Idempotent and safe to interrupt: files already linked to their object
    are skipped without reading them; every other file is hashed once and
    must match its manifest before it becomes (or is replaced by a link to)
    its object.

    Returns:
      An `UpgradeReport`.
    """
    report = UpgradeReport()
    if not os.path.isdir(os.path.join(registry.root, "datasets")):
        return report
    with registry.objects_lock(), registry.staging("upgrade") as staging:
        for name in registry.names():
            for version in registry.versions(name):
                path = registry.version_dir(name, version)
                report.versions += 1
                try:
                    files = checksums.read_manifest(path)["files"]
                except (OSError, ValueError) as exc:
                    report.damaged.append(f"{name}:{version}: unreadable manifest ({exc})")
                    continue
                for problem in _convert_version(registry.objects, path, files, staging, report):
                    report.damaged.append(f"{name}:{version}: {problem}")
    return report


def _convert_version(store: ObjectStore, path: str, files: dict[str, dict[str, Any]],
                     staging: str, report: UpgradeReport) -> list[str]:
    """Make each intact file of one version its object or a link to it; returns the problems."""
    problems = []
    touched = set()
    for rel, entry in sorted(files.items()):
        file_path = os.path.join(path, rel)
        sha, size = entry["sha256"], entry["size"]
        try:
            st = os.lstat(file_path)
        except FileNotFoundError:
            problems.append(f"missing file {rel}")
            continue
        obj = store.stat(sha)
        if obj is not None and (obj.st_dev, obj.st_ino) == (st.st_dev, st.st_ino):
            continue  # already converted
        if not stat.S_ISREG(st.st_mode) or st.st_size != size or (
                checksums.sha256_file(file_path) != sha):
            problems.append(f"{rel} differs from its manifest; left as it is (pull the "
                            "version again to repair it)")
            continue
        if obj is None or obj.st_size != size:
            if store.add(file_path, sha, replace=obj is not None):
                report.objects_added += 1
                touched.add(os.path.dirname(store.path(sha)))
                continue
        tmp = os.path.join(staging, uuid.uuid4().hex)
        if not try_link(store.path(sha), tmp):
            continue  # no hard links here: the copy stays, still correct
        replace_over(tmp, file_path)
        report.files_linked += 1
        report.bytes_freed += size if st.st_nlink == 1 else 0
        touched.add(os.path.dirname(file_path))
        checkpoint("upgrade.file_linked")
    for directory in sorted(touched):
        fsync_path(directory)
    return problems
