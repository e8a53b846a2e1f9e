"""The local dataset registry: immutable versions, movable tags, lineage. Offline-first.

Layout under the data root (``$RLIF_DATA_ROOT``, default ``~/.rlif_data``)::

    objects/<ab>/<cdef...>          every distinct file once, named by its SHA-256, read-only
                                    (`rlif_data.registry.objects`)
    datasets/<name>/<version>/      a TFDS dataset: hard links to its objects + MANIFEST.json
                                    (sizes, SHA-256, publisher, host, code version, signature)
    datasets/<name>/tags.json       {tag: version}
    datasets/<name>/tags.log.jsonl  tag history: who, when, what it pointed at before
    datasets/<name>/.pending-tags.json  a tag change that was decided but maybe not applied
    datasets/<name>/.lock           serialises version allocation and tag moves
    lineage/<name>/<version>.json   manifest + job record of an ancestor that was not pulled
    staging/<id>/                   publishes and pulls in progress (gc removes dead ones)
    .objects.lock                   shared by writers of objects, exclusive for gc's sweep

A version directory is read like any dataset directory; a new version that
shares files with earlier ones stores only its new objects. Registries
written before objects existed (each version a full copy) are read as they
are; `upgrade` turns their copies into links (`rlif_data.registry.upkeep`).

A version becomes visible by one `rename` of a fully written, verified
staging directory, so readers never see half a version, and a crashed publish
leaves only a staging directory. Published versions are never modified.

A tag change (with a publish, pull or import, or alone) goes through an
intent record so that a kill at any step shows the state before or after the
whole operation (`rlif_data.registry.tagbook`); a publish or install writes
that record before its version's rename, naming the version it waits for.

Why this module is still long (about 870 lines, over the project's ~450):
the `Registry` class is where versions, tags and the locks that order them
meet, and the publish/install/gc protocols share one lock and one intent
rule, so they are read together. Objects, the tag protocol (`tagbook`), the
lineage walk (`lineage_tree`), upkeep (gc sweep, upgrade), remote layout,
lineage records and signing are their own modules; errors and the file lock
are in `common`.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import logging
import os
import shutil
import uuid
from typing import Any, Callable, Iterator, Optional

from rlif_data import errors, lineage
from rlif_data.faults import checkpoint
from rlif_data.fsutil import fsync_path
from rlif_data.registry import checksums, lineage_records, lineage_tree
from rlif_data.registry.common import (  # noqa: F401  (re-exported: the registry API)
    DiskError,
    IntegrityError,
    RegistryError,
    UnknownDatasetError,
    VersionExistsError,
    _flock,
    _now,
    current_user,
    disk_errors,
    publisher_fields,
)
from rlif_data.registry.objects import OBJECTS_LOCK, ObjectStore
from rlif_data.registry.tagbook import (  # noqa: F401  (re-exported: tests read these files)
    NAME_LOCK,
    PENDING_TAGS,
    TAG_LOG,
    TAGS_FILE,
    TAGS_TMP_PREFIX,
    TAGS_TMP_SUFFIX,
    TagBook,
)
from rlif_data.registry.versions import (
    LATEST,
    Ref,
    Version,
    check_name,
    check_tag,
    next_version,
    parse_ref,
)

log = logging.getLogger(__name__)
ROOT_ENV = "RLIF_DATA_ROOT"
STAGING_LOCK = ".publisher.lock"


# gc removes an unreferenced object only once it is this old (seconds): a
# writer on another machine sharing the root over NFS, where flock may not
# reach, has had time to make the version that names it visible.
GC_GRACE_S = 3600.0


class GcReport(list):
    """What `Registry.gc` removed: the paths (a list), and what that freed.

    Attributes:
      bytes_freed: bytes of removed files no version still links.
      objects_removed: unreferenced objects removed.
      objects_skipped: why the object sweep did not run (None: it ran).
    """

    bytes_freed: int = 0
    objects_removed: int = 0
    objects_skipped: Optional[str] = None


DATASET = "dataset"
POLICY = "policy"
# A policy artifact's marker file: rlif_data.policies.checkpoint.CONFIG_FILENAME
# (spelled here so the registry does not import the policy package).
POLICY_CONFIG_FILE = "policy_config.json"


def artifact_kind(directory: str) -> Optional[str]:
    """What a directory to publish holds: a dataset, a policy, or None (neither).

    Policies (trained actors, with their critic and training record) are
    versioned like datasets so that a round's data can name the exact policy
    that collected it, and `lineage` can walk data -> policy -> data.
    """
    if os.path.exists(os.path.join(directory, "dataset_info.json")):
        return DATASET
    if os.path.exists(os.path.join(directory, POLICY_CONFIG_FILE)):
        return POLICY
    return None


def default_root() -> str:
    """``$RLIF_DATA_ROOT`` or ``~/.rlif_data``."""
    return os.environ.get(ROOT_ENV) or os.path.join(os.path.expanduser("~"), ".rlif_data")


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange_dirs(a: str, b: str) -> bool:
    """Swap two directories in one atomic step (Linux renameat2); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False  # not glibc >= 2.28 / not Linux
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # a filesystem without RENAME_EXCHANGE
    raise OSError(err, os.strerror(err), a)


def replace_dir(new: str, final: str) -> None:
    """Put directory `new` in place of the existing `final`; the old one ends up at `new`.

    Atomic where the filesystem can exchange two directories (Linux: ext4,
    xfs, btrfs, tmpfs); elsewhere two renames, with a moment in which `final`
    is absent (never half-written).
    """
    if _exchange_dirs(new, final):
        return
    aside = f"{new}.old"
    os.rename(final, aside)
    os.rename(new, final)
    os.rename(aside, new)


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    """A published version as `ls`/`show` report it."""

    name: str
    version: Version
    path: str
    manifest: dict[str, Any]
    tags: tuple[str, ...]

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"

    @property
    def size(self) -> int:
        """Total bytes of the version's files."""
        return sum(f["size"] for f in self.manifest["files"].values())


class Registry:
    """A dataset registry rooted at a local directory.

    Args:
      root: the data root (default `default_root()`).

    Raises:
      RegistryError: `root` exists and is not a directory.
    """

    def __init__(self, root: Optional[str] = None):
        self.root = os.path.abspath(root or default_root())
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise RegistryError(f"{self.root} is a file, not a registry root; give a directory "
                                f"with --root or ${ROOT_ENV} (it is created if missing)")
        self.objects = ObjectStore(self.root)

    @contextlib.contextmanager
    def objects_lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Hold the object store's lock shared: gc removes no object while it is held.

        Publish, pull, import and upgrade hold it from the moment they find
        or add an object until the version that links it is visible.
        """
        os.makedirs(self.root, exist_ok=True)
        with _flock(os.path.join(self.root, OBJECTS_LOCK), timeout=timeout, shared=True):
            yield

    # -- paths --------------------------------------------------------------
    def _name_dir(self, name: str) -> str:
        return os.path.join(self.root, "datasets", check_name(name))

    def version_dir(self, name: str, version: Version) -> str:
        """Where `name:version` lives (whether or not it exists)."""
        return os.path.join(self._name_dir(name), str(version))

    def staging_dir(self) -> str:
        """Parent of in-progress publishes and pulls."""
        return os.path.join(self.root, "staging")

    # -- reading ------------------------------------------------------------
    def names(self) -> list[str]:
        """Dataset names with at least one version."""
        base = os.path.join(self.root, "datasets")
        if not os.path.isdir(base):
            return []
        return sorted(n for n in os.listdir(base) if self.versions(n))

    def versions(self, name: str) -> list[Version]:
        """Published versions of `name`, ascending."""
        d = self._name_dir(name)
        if not os.path.isdir(d):
            return []
        out = []
        for entry in os.listdir(d):
            try:
                v = Version.parse(entry)
            except ValueError:
                continue
            if os.path.exists(os.path.join(d, entry, checksums.MANIFEST)):
                out.append(v)
        return sorted(out)

    def tags(self, name: str) -> dict[str, str]:
        """{tag: version} of `name`, including a tag change in force but not yet applied."""
        return self._tagbook(name).tags()

    def tag_history(self, name: str) -> list[dict[str, Any]]:
        """Every tag change of `name`, oldest first (its `tags` replay to `Registry.tags`)."""
        return self._tagbook(name).history()

    def _tagbook(self, name: str) -> TagBook:
        return TagBook(self._name_dir(name))

    def resolve(self, ref: str | Ref) -> tuple[str, Version]:
        """(name, version) that a reference names.

        Raises:
          ValueError: malformed reference.
          UnknownDatasetError: unknown name/version/tag, or a tag pointing at a
            version that is no longer there; the message lists what exists.
        """
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        known = self.versions(ref.name)
        if not known and not self.tags(ref.name):
            names = self.names()
            raise UnknownDatasetError(
                f"no dataset {ref.name!r} in the local registry {self.root}"
                + (f"; known: {', '.join(names)}" if names else "; it is empty")
                + (self._pull_hint(ref) or ". If it exists on a remote, `rlif-data pull` it "
                   "first."))
        if ref.version is not None:
            if ref.version not in known:
                raise UnknownDatasetError(
                    f"{ref} is not in the local registry; versions of {ref.name}: "
                    f"{', '.join(map(str, known)) or 'none'}" + (self._pull_hint(ref) or ""))
            return ref.name, ref.version
        tags = self.tags(ref.name)
        if ref.tag not in tags:
            raise UnknownDatasetError(
                f"{ref} is not a known tag; tags of {ref.name}: "
                f"{', '.join(f'{t}->{v}' for t, v in sorted(tags.items())) or 'none'}. "
                "If the tag exists only on a remote, `rlif-data pull` it first.")
        version = Version.parse(tags[ref.tag])
        if version not in known:
            raise UnknownDatasetError(
                f"{ref} points at {ref.name}:{version}, which is no longer in the registry "
                f"(deleted?); re-tag it with `rlif-data tag`")
        return ref.name, version

    def _pull_hint(self, ref: Ref) -> Optional[str]:
        """How to get a version known here only from lineage (its data was never pulled)."""
        record = self.known_record(str(ref)) if ref.version is not None else None
        if record is None:
            return None
        return (f". It is an ancestor known from lineage only: `rlif-data pull {ref} "
                f"{record.get('remote') or 'REMOTE'}` fetches it")

    def info(self, ref: str | Ref) -> VersionInfo:
        """The `VersionInfo` of a reference."""
        name, version = self.resolve(ref)
        path = self.version_dir(name, version)
        tags = tuple(sorted(t for t, v in self.tags(name).items() if v == str(version)))
        return VersionInfo(name, version, path, checksums.read_manifest(path), tags)

    def path(self, ref: str | Ref, verify: str = "size") -> str:
        """The directory of a version, checked first ("size": cheap; "full": SHA-256; "none").

        Raises:
          IntegrityError: the files differ from the manifest.
        """
        info = self.info(ref)
        if verify != "none":
            self._check(info, full=verify == "full")
        return info.path

    def verify(self, ref: str | Ref, full: bool = True, deep: bool = False) -> VersionInfo:
        """Check a version's files against its manifest.

        Args:
          ref: the version.
          full: recompute every SHA-256 (else sizes only).
          deep: also parse every record of every shard and decode every
            episode (catches damage that was already there at publish, when
            the hashes were taken of broken files).

        Raises:
          IntegrityError: naming every missing, resized, altered or extra
            file, or (deep) the first record that does not parse.
        """
        info = self.info(ref)
        self._check(info, full)
        if deep:
            self._check_records(info)
        return info

    @staticmethod
    def _check_records(info: VersionInfo) -> None:
        from rlif_data.recording import store as rec_store
        from rlif_data.recording.reader import EpisodeReader

        problems = rec_store.shard_problems(info.path)
        if problems:
            raise IntegrityError(f"{info.ref} at {info.path} is damaged: " + "; ".join(problems))
        try:
            with EpisodeReader(info.path, repair=False) as reader:
                for i in range(len(reader)):
                    reader[i]
        except errors.RlifDataError as exc:
            raise IntegrityError(f"{info.ref} at {info.path} is damaged: {exc}") from None

    def _check(self, info: VersionInfo, full: bool) -> None:
        problems = checksums.check_files(info.path, info.manifest["files"], full)
        if problems:
            raise IntegrityError(f"{info.ref} at {info.path} is damaged: " + "; ".join(problems))

    def list(self) -> list[VersionInfo]:
        """Every version of every dataset."""
        return [self.info(f"{n}:{v}") for n in self.names() for v in self.versions(n)]

    # -- publishing -----------------------------------------------------------
    @contextlib.contextmanager
    def _staging(self, kind: str) -> Iterator[str]:
        """A fresh staging directory, locked by this process while it works in it."""
        os.makedirs(self.staging_dir(), exist_ok=True)
        path = os.path.join(self.staging_dir(), f"{kind}-{uuid.uuid4().hex[:12]}")
        os.makedirs(path)
        with _flock(os.path.join(path, STAGING_LOCK)):
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)

    @disk_errors("publish")
    def publish(self, source: str, name: str, version: Optional[str] = None,
                bump: str = "minor", tags: tuple[str, ...] = (LATEST,),
                lineage: Optional[dict[str, Any]] = None, progress=None,
                sign_key: Optional[str] = None) -> VersionInfo:
        """Store a dataset directory in the registry as a new immutable version.

        Each file is copied and hashed in one pass into a staging directory
        and becomes an object (`rlif_data.registry.objects`); a file whose
        object is already here costs a link, not a copy. A source file that
        *is* an object (hard-linked, as a merge of registry versions is) is
        neither read nor copied. The staged files are verified, and the
        version appears with one rename. Version allocation, the rename and
        tag moves happen under the name's lock, so concurrent publishers
        never collide.

        Args:
          source: a dataset directory (pipeline output or recording).
          name: dataset name.
          version: exact version to publish, or None for `bump` of the highest.
          bump: "major", "minor" or "patch" (used when `version` is None).
          tags: tags to point at the new version.
          lineage: extra lineage merged into the manifest (the dataset's own
            metadata.json lineage is always kept with its files).
          progress: optional callable(bytes) for progress bars (bytes copied).
          sign_key: a PEM ed25519 private key file: sign the manifest with it
            (`rlif_data.registry.signing`).

        Raises:
          VersionExistsError: `version` is already published.
          RegistryError: the source is not a dataset directory, or the copy did
            not verify; nothing became visible.
          KeyFileError: `sign_key` is not an ed25519 private key.
        """
        check_name(name)
        for tag in tags:
            check_tag(tag)
        wanted = Version.parse(version) if version else None
        source = os.path.abspath(source)
        kind = artifact_kind(source)
        if kind is None:
            raise RegistryError(f"{source} is not a dataset directory (no dataset_info.json) "
                                f"nor a policy directory (no {POLICY_CONFIG_FILE})")
        key = None
        if sign_key:
            from rlif_data.registry import signing

            key = signing.load_private_key(sign_key)
        self._assert_not_in_use(source)
        with self.objects_lock(), self._staging("publish") as staging:
            target = os.path.join(staging, "version")
            os.makedirs(target)
            files = self._stage_files(source, target, progress)
            problems = checksums.check_files(target, files, full=False)
            if problems:
                raise RegistryError(f"copy of {source} did not verify: {'; '.join(problems)}")
            if kind == DATASET:
                self._check_dataset_files(target, source)
            self.objects.store_files(target, files)
            checkpoint("publish.copied")
            with self._name_lock(name):
                chosen = wanted or next_version(self.versions(name), bump)
                final = self.version_dir(name, chosen)
                if os.path.exists(final):
                    raise VersionExistsError(
                        f"{name}:{chosen} is already published; versions are immutable, "
                        "publish a new version instead")
                manifest = checksums.build_manifest(files, {
                    "name": name, "version": str(chosen), "kind": kind, "created": _now(),
                    "source": source, "lineage": lineage or {}, **publisher_fields()})
                if key is not None:
                    manifest = signing.sign_manifest(manifest, key)
                checksums.save_manifest(target, manifest)
                self._rename_in(target, name, chosen, tags)
                self._tagbook(name).finish_after_commit()
        return self.info(f"{name}:{chosen}")

    def _stage_files(self, source: str, target: str, progress=None) -> dict[str, dict[str, Any]]:
        """Copy and hash (or link, if it is an object) every file of `source` into `target`.

        Returns:
          The manifest's ``files``: {relative path: {"size", "sha256"}}.
        """
        files = {}
        for rel in checksums.list_files(source):
            if os.path.basename(rel).startswith("."):
                continue  # lock files, temporary files of a live writer
            src, dst = os.path.join(source, rel), os.path.join(target, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            known = self.objects.known_inode(os.stat(src))
            if known is not None and self._link_known(src, dst):
                files[rel] = {"size": known[1], "sha256": known[0]}
                continue
            try:
                with open(src, "rb") as fi, open(dst, "wb") as fo:
                    size, digest = checksums.copy_and_hash(fi, fo, progress)
                    fo.flush()
                    os.fsync(fo.fileno())
            except OSError as exc:
                if exc.filename is None:
                    exc.filename = dst  # a failed write() names no file; say which disk
                raise
            files[rel] = {"size": size, "sha256": digest}
        return files

    @staticmethod
    def _link_known(src: str, dst: str) -> bool:
        """Link a source file that is an object into staging; False where links fail (copy it)."""
        try:
            os.link(src, dst)
            return True
        except OSError:
            return False

    def _rename_in(self, staged: str, name: str, version: Version, tags: tuple[str, ...],
                   move: Callable[[str, str], None] = os.rename) -> None:
        """Make a staged version visible with its tags, as one recoverable step (lock held).

        The tag change is recorded first, to take effect with the rename: a
        kill after the rename shows the version with its tags, never a new
        version that `latest` does not reach. The caller applies the change
        to the files (`TagBook.finish_change`).

        Args:
          staged: the complete version directory (with its manifest).
          name, version: where it goes.
          tags: tags to point at it.
          move: the atomic step that makes `staged` the version directory.

        Raises:
          VersionExistsError: the version appeared meanwhile (the record is withdrawn).
        """
        final = self.version_dir(name, version)
        recorded = self._tagbook(name).begin_change(dict.fromkeys(tags, version), requires=version)
        try:
            move(staged, final)
        except OSError as exc:
            if recorded:
                self._tagbook(name).drop_change()
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise VersionExistsError(f"{name}:{version} appeared meanwhile") from None
            raise
        checkpoint("version.renamed")
        fsync_path(self._name_dir(name))

    @staticmethod
    def _check_dataset_files(directory: str, where: str) -> None:
        """Refuse foreign feature classes and shards that do not parse (cheap: footers only).

        Raises:
          UnsafeDataError: features.json names a class rlif-data does not write.
          IntegrityError: a shard's footer or record count is wrong.
        """
        from rlif_data.recording import store as rec_store
        from rlif_data.recording.feature_config import check_features_json

        check_features_json(directory)
        # Name the files the user has (the source), not their copies in staging.
        problems = [p.replace(directory, where) for p in rec_store.shard_problems(directory)]
        if problems:
            raise IntegrityError(f"{where} has damaged shards, not publishing it: "
                                 + "; ".join(problems) + "; run `rlif-data recover` on it")

    @disk_errors("install")
    def install(self, staged: str, tags: tuple[str, ...] = (),
                hashes_verified: bool = False, replace_damaged: bool = False) -> VersionInfo:
        """Make a staged, complete version directory (files + MANIFEST.json) visible.

        Used by pull and import: the manifest names the version; every file is
        checked against it before the rename: full SHA-256, or only sizes and
        the file list when the caller hashed every byte as it wrote it
        (`hashes_verified`, as pull does; hashing twice cost 17 % of a pull).
        Its feature classes are checked too (`check_features_json`): a version
        from elsewhere must not make TFDS import anything.

        Args:
          staged: the staged version directory.
          tags: tags to point at the version.
          hashes_verified: see above.
          replace_damaged: the version exists here with the same content but
            damaged files: replace it with `staged` in one exchange (pull's
            repair). A directory without a manifest (no version) is always
            replaced.

        Raises:
          IntegrityError: the staged files differ from their manifest.
          UnsafeDataError: a feature class rlif-data does not write.
          VersionExistsError: the version exists locally with other content
            (the same content is accepted as already installed).
        """
        from rlif_data.recording.feature_config import check_features_json

        manifest = checksums.read_manifest(staged)
        name, version = check_name(manifest["name"]), Version.parse(manifest["version"])
        problems = checksums.check_files(staged, manifest["files"], full=not hashes_verified)
        if checksums.content_digest(manifest["files"]) != manifest.get("content_sha256"):
            problems.append("the manifest's content digest does not match its file list")
        if problems:
            raise IntegrityError(f"{name}:{version} failed verification: " + "; ".join(problems))
        check_features_json(staged)
        tags = tuple(check_tag(tag) for tag in tags)
        checkpoint("install.verified")
        with self.objects_lock():
            if replace_damaged or not os.path.exists(
                    os.path.join(self.version_dir(name, version), checksums.MANIFEST)):
                # Its files become objects (or links to the ones already here).
                self.objects.store_files(staged, manifest["files"])
            with self._name_lock(name) as name_dir:
                final = self.version_dir(name, version)
                if os.path.exists(os.path.join(final, checksums.MANIFEST)):
                    try:
                        local = checksums.read_manifest(final)
                    except ValueError:
                        local = None  # a damaged manifest: only a repair may replace it
                    if local is None and not replace_damaged:
                        raise IntegrityError(f"{name}:{version} at {final} has an unreadable "
                                             "manifest; pull it again to repair it")
                    if local is not None and (local.get("content_sha256")
                                              != manifest.get("content_sha256")):
                        raise VersionExistsError(
                            f"{name}:{version} already exists locally with different content; "
                            "versions are immutable")
                    if replace_damaged:
                        self._replace_version(staged, final, name_dir)
                    self._tagbook(name).change(dict.fromkeys(tags, version))
                else:
                    if os.path.lexists(final):  # a leftover, not a version: swap it out
                        self._rename_in(staged, name, version, tags,
                                        move=lambda a, b: self._replace_version(a, b, name_dir))
                    else:
                        self._rename_in(staged, name, version, tags)
                    self._tagbook(name).finish_after_commit()
        return self.info(f"{name}:{version}")

    @staticmethod
    def _replace_version(staged: str, final: str, name_dir: str) -> None:
        """Swap a repaired copy in; the damaged one is left at `staged` and removed."""
        replace_dir(staged, final)
        fsync_path(name_dir)
        checkpoint("repair.exchanged")
        shutil.rmtree(staged, ignore_errors=True)

    @disk_errors("tag")
    def install_tags_only(self, name: str, version: Version, manifest: dict[str, Any],
                          tags: tuple[str, ...]) -> VersionInfo:
        """A version that is already here (same content): only apply `tags`.

        Raises:
          VersionExistsError: the local version has different content.
        """
        local = checksums.read_manifest(self.version_dir(name, version))
        if local.get("content_sha256") != manifest.get("content_sha256"):
            raise VersionExistsError(f"{name}:{version} exists locally with different content; "
                                     "versions are immutable")
        tags = tuple(check_tag(tag) for tag in tags)
        with self._name_lock(name):
            self._tagbook(name).change(dict.fromkeys(tags, version))
        return self.info(f"{name}:{version}")

    @contextlib.contextmanager
    def staging(self, kind: str) -> Iterator[str]:
        """A fresh staging directory for `kind` work (removed afterwards; `gc` removes it after a crash)."""
        with self._staging(kind) as path:
            yield path

    @staticmethod
    def _assert_not_in_use(source: str) -> None:
        """Refuse a recording whose writer is still running (it would change under us)."""
        from rlif_data.recording import store as rec_store

        pid = rec_store.active_writer(source)
        if pid is not None:
            raise RegistryError(f"cannot publish while recording: {source} is being written "
                                f"by pid {pid}; publish it when the session has ended")

    # -- tags -----------------------------------------------------------------
    @disk_errors("tag")
    def tag(self, ref: str, tag: str) -> Version:
        """Point `tag` at the version `ref` names (moving it if it exists)."""
        check_tag(tag)
        name, version = self.resolve(ref)
        with self._name_lock(name):
            self._tagbook(name).change({tag: version})
        return version

    @disk_errors("untag")
    def untag(self, name: str, tag: str) -> None:
        """Remove a tag (the version stays).

        Raises:
          UnknownDatasetError: no such tag.
        """
        with self._name_lock(name):
            tags = self.tags(name)
            if tag not in tags:
                raise UnknownDatasetError(f"{name}@{tag} is not a tag; tags: {sorted(tags)}")
            self._tagbook(name).change({tag: None})

    def _name_lock(self, name: str):
        """Hold `name`'s lock (`TagBook.locked`): after applying a change a killed writer left."""
        return self._tagbook(name).locked()

    # -- lineage --------------------------------------------------------------
    def lineage(self, ref: str | Ref) -> dict[str, Any]:
        """The lineage tree of a version back to raw logs (`lineage_tree.tree`).

        Returns:
          ``{"ref", "job", "params", "created", "code_version", "content_sha256",
          "published_by", "local", "inputs": [subtree | raw input]}``.
        """
        return lineage_tree.tree(self, ref)

    def known_record(self, ref: str) -> Optional[dict[str, Any]]:
        """The lineage record of ``name:version`` kept here (an ancestor not pulled), or None."""
        parsed = parse_ref(ref)
        if parsed.version is None:
            return None
        return lineage_records.read_local(self.root, parsed.name, parsed.version)

    # -- garbage collection ------------------------------------------------------
    @disk_errors("gc")
    def gc(self, grace_s: float = GC_GRACE_S) -> "GcReport":
        """Clean up after killed writers and remove objects no version uses.

        * applies the tag change a killed publish, install or tag move
          recorded (or drops it, if its version never appeared), exactly as
          the next writer of that name would;
        * removes temporary tags files (``.tags-*.json``) of killed writers;
        * removes staging directories of crashed publishes, pulls and imports;
          one whose lock is held by a live process is skipped;
        * removes objects that no version's manifest names and that are older
          than `grace_s`, unless a publish, pull or import holds the object
          lock (then the sweep is skipped and the report says why), or a
          manifest cannot be read (the sweep never guesses what is in use).

        Args:
          grace_s: minimum age in seconds of an object gc may remove.

        Returns:
          A `GcReport`: the removed paths (a list), with bytes freed.
        """
        from rlif_data.registry import upkeep

        removed = GcReport()
        for name in self._name_dirs():
            with self._name_lock(name) as name_dir:  # applies a pending tag change
                for entry in sorted(os.listdir(name_dir)):
                    if entry.startswith(TAGS_TMP_PREFIX) and entry.endswith(TAGS_TMP_SUFFIX):
                        os.unlink(os.path.join(name_dir, entry))  # no live writer: we hold the lock
                        removed.append(os.path.join(name_dir, entry))
            checkpoint("gc.tags_recovered")
        base = self.staging_dir()
        for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            path = os.path.join(base, entry)
            lock = os.path.join(path, STAGING_LOCK)
            size = upkeep.unshared_bytes(path)
            if not os.path.exists(lock):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
                removed.bytes_freed += size
                continue
            try:
                with _flock(lock, timeout=0):
                    # The lock file goes last, so a kill here leaves a directory
                    # that the next gc still recognises as dead.
                    for child in os.listdir(path):
                        if child != STAGING_LOCK:
                            _remove(os.path.join(path, child))
                    checkpoint("gc.staging_emptied")
                    shutil.rmtree(path, ignore_errors=True)
            except RegistryError:
                continue  # a live publisher
            removed.append(path)
            removed.bytes_freed += size
        removed.extend(upkeep.remove_stale_records_tmp(self.root, grace_s))
        paths, freed, removed.objects_skipped = upkeep.sweep_objects(self, grace_s)
        removed.extend(paths)
        removed.objects_removed = len(paths)
        removed.bytes_freed += freed
        return removed

    def upgrade(self) -> "upkeep.UpgradeReport":
        """Turn full-copy versions (written before objects existed) into links to objects.

        See `rlif_data.registry.upkeep.upgrade`.
        """
        from rlif_data.registry import upkeep

        return upkeep.upgrade(self)

    def _name_dirs(self) -> list[str]:
        """Names that have a directory (with or without versions yet)."""
        base = os.path.join(self.root, "datasets")
        if not os.path.isdir(base):
            return []
        names = []
        for entry in sorted(os.listdir(base)):
            try:
                names.append(check_name(entry))
            except ValueError:
                continue  # not a directory the registry made
        return [n for n in names if os.path.isdir(os.path.join(base, n))]


def _remove(path: str) -> None:
    """Delete a file or a directory tree."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@dataclasses.dataclass(frozen=True)
class ResolvedDataset:
    """What a dataset argument named.

    Attributes:
      path: the dataset directory.
      ref: ``name:version`` when the argument was a registry reference
        (a tag is resolved to the version it pointed at), else None.
      content_sha256: that version's content hash (None for a path).
    """

    path: str
    ref: Optional[str] = None
    content_sha256: Optional[str] = None

    def as_input(self, **known: Any) -> "lineage.InputRef":
        """This dataset as a job's input: the ref and content hash, else the path."""
        if self.ref:
            return lineage.registry_input(self.ref, self.content_sha256, **known)
        return lineage.path_input(self.path, **known)


def resolve_dataset_ref(arg: str, root: Optional[str] = None) -> ResolvedDataset:
    """A dataset argument as a directory, with the registry version it came from.

    An existing path is taken as is; else `arg` is a registry reference
    (``name@tag``, ``name:version``) whose version's files are size-checked.

    Raises:
      FileNotFoundError: neither an existing path nor a reference.
      UnknownDatasetError: a reference the registry at `root` does not know.
      IntegrityError: the version's files differ from its manifest.
    """
    if os.path.exists(arg):
        return ResolvedDataset(arg)
    try:
        parse_ref(arg)
    except ValueError:
        raise FileNotFoundError(f"{arg}: no such directory, and not a dataset reference "
                                "(name:1.0.0, name@tag)") from None
    registry = Registry(root)
    info = registry.info(arg)
    # By version, not by `arg`: a tag moved meanwhile must not change the path.
    return ResolvedDataset(registry.path(info.ref), info.ref,
                           info.manifest.get("content_sha256"))


def resolve_dataset(arg: str, root: Optional[str] = None) -> str:
    """A dataset argument as a directory: an existing path as is, else a registry reference.

    This is how pipelines, trainers and the CLI accept ``name@tag`` and
    ``name:version`` wherever they take a dataset directory; jobs that
    record their inputs use `resolve_dataset_ref`.
    """
    return resolve_dataset_ref(arg, root).path
