"""Content-addressed storage: every distinct file of a registry once, named by its SHA-256.

Layout under a registry root (a remote has the same ``objects/``)::

    objects/<2 hex>/<62 hex>    the bytes whose SHA-256 is the name; read-only (0444)
    .objects.lock               held shared by publish, pull, import and upgrade while
                                they add or link objects, exclusively by gc's sweep

A version directory is its MANIFEST.json plus one hard link per file to
the file's object, so every reader (``tfds.builder_from_directory``,
`EpisodeReader`) opens it as before, and a version that shares shards with
an earlier one costs only its new objects. Where a link is impossible (FAT,
another filesystem, the link limit of an inode) the object is copied.

An object enters the store in one step: a complete, fsynced, verified file
is hard-linked to its name (``link`` fails if the name exists, so two
writers adding the same object at once both end with the one object and
neither overwrites the other). Objects are never written in place; pull's
repair replaces a damaged one with a verified copy by one rename.

Removing an object name never loses a version's data: a version directory
holds its own link to the bytes. The store lock keeps gc from removing an
object between a publisher finding it and linking it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import time
import uuid
from typing import Any, Iterator, Optional

from rlif_data.faults import checkpoint
from rlif_data.fsutil import fsync_path
from rlif_data.registry import checksums

OBJECTS = "objects"
OBJECTS_LOCK = ".objects.lock"
READ_ONLY = 0o444
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Errors of os.link that mean "no link here", so the object is copied instead.
NO_LINK_ERRNOS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP,
                  errno.ENOSYS)


def object_rel(sha256: str) -> str:
    """The path of an object below ``objects/``: ``ab/cdef…``. Pure.

    Raises:
      ValueError: `sha256` is not 64 lowercase hex digits.
    """
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise ValueError(f"not a SHA-256 object name: {sha256!r:.80}")
    return f"{sha256[:2]}/{sha256[2:]}"


def sha_of_object(subdir: str, name: str) -> Optional[str]:
    """The SHA-256 an entry ``objects/<subdir>/<name>`` names, or None if it names none. Pure."""
    sha = subdir + name
    return sha if len(subdir) == 2 and _SHA256_RE.match(sha) else None


@dataclasses.dataclass
class StoreReport:
    """What storing a version's files did.

    Attributes:
      new_objects: objects that were not in the store before.
      new_bytes: their bytes.
      linked: files that became links to an object that was already there
        (their copies are freed when the staging directory goes).
    """

    new_objects: int = 0
    new_bytes: int = 0
    linked: int = 0


class ObjectStore:
    """The ``objects/`` directory of a local registry root.

    Args:
      root: the registry root.
    """

    def __init__(self, root: str):
        self.root = root
        self.dir = os.path.join(root, OBJECTS)
        self.lock_path = os.path.join(root, OBJECTS_LOCK)
        self._inodes: Optional[dict[tuple[int, int], tuple[str, int]]] = None

    def path(self, sha256: str) -> str:
        """Where the object `sha256` lives (whether or not it exists)."""
        return os.path.join(self.dir, *object_rel(sha256).split("/"))

    def stat(self, sha256: str) -> Optional[os.stat_result]:
        """The object's stat, or None if it is absent."""
        try:
            return os.stat(self.path(sha256))
        except FileNotFoundError:
            return None

    # -- finding objects by inode ---------------------------------------------------------

    def known_inode(self, st: os.stat_result) -> Optional[tuple[str, int]]:
        """(sha256, size) of the object a file *is* (same inode), or None.

        A file hard-linked to an object (a version's file, or a merge job's
        output linked from a version) needs neither reading nor copying to
        be published again. The object index is built on the first call
        that can hit (one stat per object) and kept for this instance.
        """
        if st.st_nlink < 2:
            return None
        if self._inodes is None:
            self._inodes = self._inode_index()
        hit = self._inodes.get((st.st_dev, st.st_ino))
        if hit is None:
            return None
        # The index may be older than a gc that removed the object and a new
        # file that reused its inode number: trust a hit only if the object
        # is still that inode (callers hold the object lock, so it stays).
        now = self.stat(hit[0])
        if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            del self._inodes[(st.st_dev, st.st_ino)]
            return None
        return hit[0], now.st_size

    def _inode_index(self) -> dict[tuple[int, int], tuple[str, int]]:
        index = {}
        for sha, _, st in self.iter_objects():
            index[(st.st_dev, st.st_ino)] = (sha, st.st_size)
        return index

    def iter_objects(self) -> Iterator[tuple[str, str, os.stat_result]]:
        """(sha256, path, stat) of every object; entries that are not objects are skipped."""
        if not os.path.isdir(self.dir):
            return
        for sub in sorted(os.listdir(self.dir)):
            subdir = os.path.join(self.dir, sub)
            if len(sub) != 2 or not os.path.isdir(subdir):
                continue
            with os.scandir(subdir) as entries:
                for entry in entries:
                    sha = sha_of_object(sub, entry.name)
                    if sha is None or not entry.is_file(follow_symlinks=False):
                        continue
                    try:
                        yield sha, entry.path, entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed meanwhile

    # -- adding objects ---------------------------------------------------------------------

    def add(self, path: str, sha256: str, replace: bool = False) -> bool:
        """Make the complete, verified file `path` the object `sha256` (by a hard link).

        Args:
          path: a fsynced file whose bytes hash to `sha256`; it is made read-only.
          sha256: its hash.
          replace: put `path` in place of an existing object (pull's repair of a
            damaged object); else an existing object is kept.

        Returns:
          Whether `path` became the object (False: the object was already there).
        """
        final = self.path(sha256)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.chmod(path, READ_ONLY)
        if replace:
            tmp = f"{final}.{uuid.uuid4().hex[:8]}.tmp"
            if not try_link(path, tmp):
                shutil.copyfile(path, tmp)
                os.chmod(tmp, READ_ONLY)
            replace_over(tmp, final)
        else:
            try:
                if not try_link(path, final):
                    _copy_no_clobber(path, final)
            except FileExistsError:
                return False  # another writer added it first: same name, same bytes
        if self._inodes is not None:
            st = os.stat(final)
            self._inodes[(st.st_dev, st.st_ino)] = (sha256, st.st_size)
        checkpoint("object.added")
        return True

    def store_files(self, directory: str, files: dict[str, dict[str, Any]]) -> StoreReport:
        """Make every file of a staged version directory a link to its object.

        A file whose object is new becomes the object; a file whose object
        exists is replaced by a link to it (the copy in staging is freed). The
        object directories touched are fsynced, so an object survives a power
        cut once a version names it.

        Args:
          directory: the staged version directory (verified by the caller).
          files: its manifest's ``files``.

        Returns:
          A `StoreReport`.
        """
        report = StoreReport()
        touched = set()
        for rel, entry in sorted(files.items()):
            path = os.path.join(directory, rel)
            sha, size = entry["sha256"], entry["size"]
            st = os.stat(path)
            existing = self.stat(sha)
            if existing is not None and (existing.st_dev, existing.st_ino) == (st.st_dev,
                                                                               st.st_ino):
                continue  # already the object (linked from it)
            if existing is None or existing.st_size != size:
                # No object yet, or a damaged one of the wrong size: this verified file is it.
                if self.add(path, sha, replace=existing is not None):
                    report.new_objects += 1
                    report.new_bytes += size
                    touched.add(os.path.dirname(self.path(sha)))
                    continue
            self.link_into(sha, path)
            report.linked += 1
        for subdir in sorted(touched):
            fsync_path(subdir)
        return report

    def link_into(self, sha256: str, dst: str) -> bool:
        """Put the object at `dst` (replacing a file there): a hard link, else a copy.

        Returns:
          True if linked, False if copied.
        """
        src = self.path(sha256)
        tmp = f"{dst}.{uuid.uuid4().hex[:8]}.link"
        if try_link(src, tmp):
            replace_over(tmp, dst)
            return True
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        replace_over(tmp, dst)
        return False

    # -- removing objects -------------------------------------------------------------------

    def sweep(self, referenced: set[str], grace_s: float,
              now: Optional[float] = None) -> tuple[list[str], int]:
        """Remove objects no version references and older than `grace_s` (caller holds the lock).

        Age is the object's mtime: when its bytes were written (a link to an
        old object does not make it young, but then a version references it).

        Returns:
          (paths removed, bytes freed). Bytes are counted for objects no
          version directory links any more (link count 1); an object whose
          bytes a version still holds by its own link frees nothing.
        """
        now = time.time() if now is None else now
        removed, freed = [], 0
        for sha, path, st in list(self.iter_objects()):
            if sha in referenced or now - st.st_mtime < grace_s:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
                freed += st.st_size if st.st_nlink <= 1 else 0
                checkpoint("gc.object_removed")
        for sub in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            subdir = os.path.join(self.dir, sub)
            if len(sub) != 2 or not os.path.isdir(subdir):
                continue
            for name in os.listdir(subdir):
                path = os.path.join(subdir, name)
                if name.endswith(".tmp") and _older_than(path, now - grace_s):
                    os.unlink(path)  # a killed writer's temporary object
                    removed.append(path)
            with contextlib.suppress(OSError):
                os.rmdir(subdir)  # only empty ones go
        return removed, freed


def replace_over(tmp: str, dst: str) -> None:
    """Rename `tmp` over `dst`, and never leave `tmp` behind.

    (Renaming one hard link over another of the same file does nothing, so
    `tmp` can survive a successful rename.)
    """
    os.replace(tmp, dst)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def _older_than(path: str, when: float) -> bool:
    try:
        return os.lstat(path).st_mtime < when
    except FileNotFoundError:
        return False


def try_link(src: str, dst: str) -> bool:
    """Hard-link `src` to `dst`; False where the filesystem cannot (then copy)."""
    try:
        os.link(src, dst)
        return True
    except OSError as exc:
        if exc.errno in NO_LINK_ERRNOS:
            return False
        raise


def _copy_no_clobber(src: str, dst: str) -> None:
    """Copy `src` to the new name `dst` without ever exposing a partial `dst`.

    Raises:
      FileExistsError: `dst` exists (another writer was first).
    """
    tmp = f"{dst}.{uuid.uuid4().hex[:8]}.tmp"
    with open(src, "rb") as fi, open(tmp, "xb") as fo:
        shutil.copyfileobj(fi, fo, checksums.CHUNK)
        fo.flush()
        os.fsync(fo.fileno())
    os.chmod(tmp, READ_ONLY)
    try:
        if os.path.exists(dst):
            raise FileExistsError(errno.EEXIST, "object exists", dst)
        os.rename(tmp, dst)  # no link here, so no atomic no-clobber: same bytes either way
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
