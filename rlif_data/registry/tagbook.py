"""The tags of one dataset name, changed recoverably through an intent record.

Files in the name's directory (``datasets/<name>/``)::

    tags.json            {tag: version}
    tags.log.jsonl       every tag change: who, when, what the tag pointed at before
    .pending-tags.json   a change that was decided but maybe not yet applied
    .lock                serialises version allocation and tag moves

A tag change touches two files (tags.json and the log), so it is made
recoverable: the complete new tags and the log events go to
``.pending-tags.json`` first (one atomic rename), then the log is appended,
tags.json replaced and the record removed. A record is in force once it is
written, or, when it names the version it waits for (a publish or install
writes it before the version's rename), once that version exists. Readers
(`TagBook.tags`, `TagBook.history`) apply a record in force, and the next
writer of the name or `gc` applies it to the files (appending only the
events the log lacks). So a kill at any step shows either the state before
the whole operation or the state after it, and the history always agrees
with the tags.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from typing import Any, Iterator, Optional

from rlif_data import errors
from rlif_data.faults import checkpoint
from rlif_data.fsutil import fsync_path
from rlif_data.registry import checksums
from rlif_data.registry.common import RegistryError, _flock, _now, current_user
from rlif_data.registry.versions import Version

log = logging.getLogger(__name__)
TAGS_FILE = "tags.json"
TAG_LOG = "tags.log.jsonl"
PENDING_TAGS = ".pending-tags.json"
NAME_LOCK = ".lock"
# Temporary files of tags.json and PENDING_TAGS writes (gc removes dead ones).
TAGS_TMP_PREFIX, TAGS_TMP_SUFFIX = ".tags-", ".json"


def read_json(path: str) -> Optional[dict[str, Any]]:
    """A JSON object the registry wrote, or None if the file is absent.

    Raises:
      RegistryError: the file is not valid JSON.
    """
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise RegistryError(f"{path}: unreadable ({exc}); it is written only by "
                            "rlif-data, restore it from a backup") from None


class TagBook:
    """Reads and changes the tags of the dataset name whose directory is `name_dir`.

    Args:
      name_dir: ``<root>/datasets/<name>`` (need not exist for reading).
    """

    def __init__(self, name_dir: str):
        self.name_dir = name_dir

    def _path(self, filename: str) -> str:
        return os.path.join(self.name_dir, filename)

    # -- reading ----------------------------------------------------------------------------

    def tags(self) -> dict[str, str]:
        """{tag: version}, including a change in force but not yet applied to the files."""
        pending = self.pending_in_force()
        if pending is not None:
            return dict(pending["tags"])
        return read_json(self._path(TAGS_FILE)) or {}

    def history(self) -> list[dict[str, Any]]:
        """Every tag change, oldest first (its `tags` replay to `tags()`)."""
        events = self.logged_events()
        pending = self.pending_in_force()
        if pending is not None:
            logged = {e.get("id") for e in events}
            events += [e for e in pending["events"] if e["id"] not in logged]
        return events

    def logged_events(self) -> list[dict[str, Any]]:
        """The complete lines of tags.log.jsonl (a torn last line is an unfinished append).

        Raises:
          RegistryError: a complete line is not JSON.
        """
        path = self._path(TAG_LOG)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        try:
            return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]
        except ValueError as exc:
            raise RegistryError(f"{path}: unreadable tag history ({exc}); it is written "
                                "only by rlif-data, restore it from a backup") from None

    def pending_in_force(self) -> Optional[dict[str, Any]]:
        """The pending change if it has taken effect, else None."""
        pending = read_json(self._path(PENDING_TAGS))
        if pending is None:
            return None
        requires = pending.get("requires")
        if requires is not None and not os.path.exists(
                os.path.join(self.name_dir, requires, checksums.MANIFEST)):
            return None  # its publish or install was killed before the rename
        return pending

    # -- changing (the caller holds `locked()`) ----------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[str]:
        """Hold the name's lock, after applying a change a killed writer left; yields the dir."""
        os.makedirs(self.name_dir, exist_ok=True)
        with _flock(self._path(NAME_LOCK)):
            self.finish_change()
            yield self.name_dir

    def change(self, changes: dict[str, Optional[Version]],
               requires: Optional[Version] = None) -> None:
        """Apply tag moves (None: remove the tag), recoverably.

        Args:
          changes: {tag: new version or None}.
          requires: the version whose rename makes the change take effect
            (publish and install write the record before that rename); None:
            in force as soon as it is written.
        """
        if self.begin_change(changes, requires):
            self.finish_after_commit()

    def begin_change(self, changes: dict[str, Optional[Version]],
                     requires: Optional[Version] = None) -> bool:
        """Write the pending record of a change (its commit point); False if none is needed."""
        tags = self.tags()
        events = []
        for tag, version in changes.items():
            new = None if version is None else str(version)
            if tags.get(tag) == new:
                continue  # no event for a tag that already points there
            events.append({"id": uuid.uuid4().hex, "time": _now(), "user": current_user(),
                           "action": "tag" if new else "untag", "tag": tag,
                           "old": tags.get(tag), "new": new})
            if new is None:
                tags.pop(tag, None)
            else:
                tags[tag] = new
        if not events:
            return False
        record = {"tags": tags, "events": events,
                  "requires": None if requires is None else str(requires)}
        self._write_atomic(PENDING_TAGS, record)
        checkpoint("tag.intent_written")
        return True

    def drop_change(self) -> None:
        """Withdraw a pending record whose version never appeared (its rename failed)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(PENDING_TAGS))
        fsync_path(self.name_dir)

    def finish_after_commit(self) -> None:
        """Apply a change that has taken effect; a disk error here is only a warning.

        The operation is done once its record is in force (readers see it):
        failing it now would report a change that happened as one that did
        not. The next writer of the name or `gc` applies it to the files.
        """
        try:
            self.finish_change()
        except OSError as exc:
            log.warning("%s: the tag change is in force but tags.json was not rewritten (%s); "
                        "run `rlif-data gc` once that is fixed", self.name_dir,
                        errors.describe_os_error(exc))

    def finish_change(self) -> bool:
        """Apply (or, if void, drop) a pending change.

        Idempotent, so a kill here is repaired by running it again: only the
        events the log lacks are appended, and tags.json is replaced whole.

        Returns:
          Whether a pending change was applied.
        """
        path = self._path(PENDING_TAGS)
        if not os.path.exists(path):
            return False
        pending = self.pending_in_force()
        if pending is not None:
            logged = {e.get("id") for e in self.logged_events()}
            missing = [e for e in pending["events"] if e["id"] not in logged]
            if missing:
                self._append_log(missing)
            checkpoint("tag.log_appended")
            self._write_atomic(TAGS_FILE, pending["tags"])
            checkpoint("tag.replaced")
        os.unlink(path)
        fsync_path(self.name_dir)
        return pending is not None

    def _append_log(self, events: list[dict[str, Any]]) -> None:
        """Append events to the log, first cutting a torn line a kill left at its end."""
        with open(self._path(TAG_LOG), "ab+") as f:
            f.seek(0)
            data = f.read()  # one short line per tag change
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
            f.seek(0, os.SEEK_END)
            f.write(b"".join(json.dumps(e).encode() + b"\n" for e in events))
            f.flush()
            os.fsync(f.fileno())

    def _write_atomic(self, filename: str, data: dict[str, Any]) -> None:
        """Replace a file of the name directory whole (temporary file, fsync, rename, fsync dir)."""
        tmp = self._path(f"{TAGS_TMP_PREFIX}{uuid.uuid4().hex[:8]}{TAGS_TMP_SUFFIX}")
        try:
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path(filename))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # a full disk: leave no partial file behind
            raise
        fsync_path(self.name_dir)
