"""Episodes an operator marked invalid: the marks file, its rules, and what jobs keep.

A botched episode (a collision, a dropped object, the wrong task) is not
deleted: committed shards are never rewritten, and the episode stays in the
raw log. Instead a *mark* names it in a side file of the dataset directory,
`schema.INVALID_EPISODES_FILE` (``invalid_episodes.jsonl``), one JSON object
per line::

    {"episode_id": "3f2a.../00004", "reason": "collision", "marked_at":
     "2026-11-30T10:12:03.120000+00:00", "by": "alice", "how": "key"}

* ``episode_id``: the episode's `schema.EPISODE_ID` metadata value;
* ``reason``: non-empty text of at most `MAX_REASON_CHARS` characters;
* ``marked_at``: ISO 8601 UTC; ``by``: the operator, or user@host;
* ``how``: one of `HOWS` (a keyboard key, a SpaceMouse button, an API call
  or the ``mark-invalid`` command).

A mark is appended with ``O_APPEND`` under an exclusive ``flock`` (so the
"marked once" rule holds between a session and a ``mark-invalid`` run),
flushed and fsynced; the directory is fsynced when the file is created. The
file is a plain, non-hidden file, so ``publish`` carries it into a version.

Reading is strict: any line that is not a well-formed mark (not JSON, wrong
types, unknown keys, control characters, an episode marked twice) is a
one-line `MarkFileError` naming ``file:line``. The one exception is a torn
last line (no newline: a writer killed mid-append), which is ignored with a
warning; the next append cuts it off before writing.

Jobs decide with `split_episodes` (pure) / `select_episodes` (reads the
directory): drop marked episodes or keep them, never silently either way.

Pure parts (`validate_mark`, `parse_marks`, `marks_by_episode`,
`split_episodes`, `marks_text`) do no I/O; `read_marks`, `append_mark`,
`select_episodes` and `mark_episode` wrap them thinly.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import getpass
import json
import logging
import os
import socket
import unicodedata
from typing import Any, Iterable, Mapping, Optional, Sequence

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.fsutil import fsync_path

log = logging.getLogger(__name__)

FILE = sc.INVALID_EPISODES_FILE

# Keys of one mark (a line of the marks file).
EPISODE_ID = sc.EPISODE_ID
REASON = "reason"
MARKED_AT = "marked_at"
BY = "by"
HOW = "how"
KEYS = (EPISODE_ID, REASON, MARKED_AT, BY, HOW)

# How a mark was made.
HOW_KEY = "key"
HOW_BUTTON = "button"
HOW_API = "api"
HOW_CLI = "cli"
HOWS = (HOW_KEY, HOW_BUTTON, HOW_API, HOW_CLI)

# What a job does with marked episodes (`--invalid_episodes`).
DROP = "drop"
KEEP = "keep"
OPTIONS = (DROP, KEEP)
LINEAGE_KEY = "invalid_episodes"  # in a job's lineage record
OPTION_FLAG = "--invalid_episodes"

MAX_REASON_CHARS = 500
MAX_TEXT_CHARS = 1000  # episode ids and `by`
MAX_LINE_BYTES = 8192  # a longer line is not a mark this code wrote


class MarkError(errors.RlifDataError, ValueError):
    """A mark that breaks the format: empty or long reason, unknown `how`, control characters."""


class MarkFileError(MarkError):
    """A line of a marks file that is not a well-formed mark; the message names file:line."""


class AlreadyInvalidError(errors.RlifDataError):
    """The episode is marked invalid already; an episode is marked once."""


class UnknownEpisodeError(errors.RlifDataError, ValueError):
    """A mark names an episode id the dataset does not hold."""


class InvalidOptionRequiredError(errors.RlifDataError, ValueError):
    """A job's input holds marked episodes and the job was not told to drop or keep them."""


class PublishedVersionError(errors.RlifDataError, ValueError):
    """Marks go into a recording, never into a published (immutable) registry version."""


@dataclasses.dataclass(frozen=True)
class Mark:
    """One episode marked invalid.

    Attributes:
      episode_id: the episode's `schema.EPISODE_ID` value.
      reason: why (non-empty, at most `MAX_REASON_CHARS` characters).
      marked_at: when, ISO 8601 UTC.
      by: who: the operator, or user@host.
      how: one of `HOWS`.
      line: the line of the marks file it was read from (0: not read from a file).
    """

    episode_id: str
    reason: str
    marked_at: str
    by: str
    how: str
    line: int = dataclasses.field(default=0, compare=False)

    def to_json(self) -> dict[str, str]:
        """The mark as one line of the marks file stores it."""
        return {EPISODE_ID: self.episode_id, REASON: self.reason, MARKED_AT: self.marked_at,
                BY: self.by, HOW: self.how}


# ---------------------------------------------------------------------------
# Pure: validation, parsing, splitting.
# ---------------------------------------------------------------------------


def _check_text(value: Any, key: str, limit: int, where: str) -> str:
    """`value` as a non-empty string without control characters, at most `limit` characters."""
    if not isinstance(value, str):
        raise MarkError(f"{where}: '{key}' must be text, got {type(value).__name__}")
    if not value.strip():
        raise MarkError(f"{where}: '{key}' is empty; give a non-empty {key}")
    if len(value) > limit:
        raise MarkError(f"{where}: '{key}' has {len(value)} characters, at most {limit} allowed")
    # Control characters (escape sequences, newlines) would rewrite a terminal
    # that prints the mark; nothing an operator types needs them.
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise MarkError(f"{where}: '{key}' holds the control character U+{ord(bad):04X}; "
                        "use plain text")
    return value


def _check_time(value: Any, where: str) -> str:
    text = _check_text(value, MARKED_AT, 64, where)
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise MarkError(f"{where}: '{MARKED_AT}' {text!r} is not an ISO 8601 time") from None
    if stamp.utcoffset() != datetime.timedelta(0):
        raise MarkError(f"{where}: '{MARKED_AT}' {text!r} is not UTC (+00:00)")
    return text


def validate_mark(data: Any, where: str = "mark") -> Mark:
    """A mark from its JSON object, checked field by field. Pure.

    Args:
      data: the decoded JSON object.
      where: names the mark in messages (``file:line``).

    Returns:
      The `Mark`.

    Raises:
      MarkError: not an object, missing or unknown keys, wrong types, empty
        or too long texts, control characters, a time that is not ISO 8601
        UTC, or an unknown `how`.
    """
    if not isinstance(data, Mapping):
        raise MarkError(f"{where}: a mark is a JSON object, got {type(data).__name__}")
    missing = [k for k in KEYS if k not in data]
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if missing or unknown:
        raise MarkError(f"{where}: a mark has the keys {', '.join(KEYS)}"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    how = data[HOW]
    if how not in HOWS:
        raise MarkError(f"{where}: '{HOW}' must be one of {', '.join(HOWS)}, got {how!r}")
    return Mark(episode_id=_check_text(data[EPISODE_ID], EPISODE_ID, MAX_TEXT_CHARS, where),
                reason=_check_text(data[REASON], REASON, MAX_REASON_CHARS, where),
                marked_at=_check_time(data[MARKED_AT], where),
                by=_check_text(data[BY], BY, MAX_TEXT_CHARS, where), how=how)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key {twice[0]!r} given twice")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_line(raw: bytes, where: str) -> Mark:
    """One line of a marks file (without its newline) as a `Mark`. Pure.

    Raises:
      MarkFileError: not UTF-8, too long, not JSON (NaN, duplicate keys
        included), or not a valid mark (`validate_mark`); named by `where`.
    """
    if len(raw) > MAX_LINE_BYTES:
        raise MarkFileError(f"{where}: a line of {len(raw)} bytes; a mark is at most "
                            f"{MAX_LINE_BYTES}")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MarkFileError(f"{where}: not a JSON mark ({exc})") from None
    try:
        return validate_mark(data, where)
    except MarkFileError:
        raise
    except MarkError as exc:
        raise MarkFileError(str(exc)) from None


def parse_marks(content: bytes, path: str) -> tuple[list[Mark], bool]:
    """Every mark of a marks file's bytes, in file order. Pure.

    Args:
      content: the file's bytes.
      path: the file, for messages.

    Returns:
      (marks, torn): `torn` is True when the last line has no newline (a
      writer killed mid-append); that line is not parsed.

    Raises:
      MarkFileError: a line (other than a torn last one) is not a mark, or
        an episode is marked twice; the message names ``path:line``.
    """
    lines = content.split(b"\n")
    torn = lines[-1] != b""
    marks: list[Mark] = []
    for number, raw in enumerate(lines[:-1], start=1):
        if not raw.strip():
            raise MarkFileError(f"{path}:{number}: an empty line; each line holds one mark")
        mark = parse_line(raw, f"{path}:{number}")
        marks.append(dataclasses.replace(mark, line=number))
    marks_by_episode(marks, path)
    return marks, torn


def marks_by_episode(marks: Iterable[Mark], path: str = FILE) -> dict[str, Mark]:
    """Marks by episode id. Pure.

    Raises:
      MarkFileError: one episode marked twice (naming both lines).
    """
    out: dict[str, Mark] = {}
    for mark in marks:
        first = out.get(mark.episode_id)
        if first is not None:
            raise MarkFileError(f"{path}:{mark.line}: episode {mark.episode_id!r} is marked "
                                f"again (first at line {first.line}); an episode is marked once")
        out[mark.episode_id] = mark
    return out


def already_invalid(directory: str, mark: Mark) -> AlreadyInvalidError:
    """The error for a second mark of an episode `mark` (the first one) covers. Pure."""
    return AlreadyInvalidError(
        f"episode {mark.episode_id} in {directory} is already marked invalid (reason "
        f"'{mark.reason}', at {mark.marked_at}); an episode is marked once")


def utc_now() -> str:
    """The current time, ISO 8601 UTC (what `Mark.marked_at` holds)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def default_by() -> str:
    """user@host of this process, for marks made outside a session."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def new_mark(episode_id: str, reason: str, how: str, by: Optional[str] = None,
             marked_at: Optional[str] = None) -> Mark:
    """A new mark, validated.

    Args:
      episode_id: the episode's id.
      reason: why it is invalid.
      how: one of `HOWS`.
      by: who marks it (default: user@host).
      marked_at: when (default: now, UTC).

    Raises:
      MarkError: an empty or too long reason, an unknown `how`, ...
    """
    return validate_mark({EPISODE_ID: episode_id, REASON: reason,
                          MARKED_AT: marked_at or utc_now(), BY: by or default_by(), HOW: how},
                         f"mark of episode {episode_id!r}")


def marks_text(marks: Iterable[Mark]) -> str:
    """The marks file holding `marks`, one line each. Pure."""
    return "".join(_line(m) for m in marks)


def _line(mark: Mark) -> str:
    # ensure_ascii: a line is plain ASCII whatever the reason's script.
    return json.dumps(mark.to_json(), sort_keys=False, ensure_ascii=True) + "\n"


def check_option(option: Optional[str]) -> Optional[str]:
    """`option` if it is None, "drop" or "keep". Pure.

    Raises:
      ValueError: anything else.
    """
    if option is not None and option not in OPTIONS:
        raise ValueError(f"{OPTION_FLAG} must be {' or '.join(OPTIONS)}, got {option!r}")
    return option


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which episodes of one input a job reads, given its marks and the option.

    Attributes:
      kept: indices of the episodes the job reads, ascending.
      dropped: indices left out (marked, with "drop").
      marked: indices of the marked episodes (dropped or kept).
      option: "drop", "keep", or None (no option given: only without marks).
      kept_marks: the marks of the kept, marked episodes (a "keep" output carries them).
      dangling: marks naming no episode of the input (`check` reports them).
    """

    kept: tuple[int, ...]
    dropped: tuple[int, ...] = ()
    marked: tuple[int, ...] = ()
    option: Optional[str] = None
    kept_marks: tuple[Mark, ...] = ()
    dangling: tuple[Mark, ...] = ()

    def lineage(self) -> dict[str, Any]:
        """What the job's lineage records: ``{"option", "marked", "dropped"}``."""
        return {"option": self.option, "marked": len(self.marked), "dropped": len(self.dropped)}


def marked_indices(episode_ids: Sequence[str], marks: Iterable[Mark]) -> dict[int, Mark]:
    """Index -> mark of every marked episode (an id held twice: both indices). Pure."""
    by_id = {m.episode_id: m for m in marks}
    return {i: by_id[eid] for i, eid in enumerate(episode_ids) if eid in by_id}


def dangling_marks(episode_ids: Iterable[str], marks: Iterable[Mark]) -> list[Mark]:
    """Marks naming an episode id that `episode_ids` does not hold. Pure."""
    ids = set(episode_ids)
    return [m for m in marks if m.episode_id not in ids]


def option_required_message(where: str, marked: int) -> str:
    """The one line a job ends with when its input holds marks and no option was given. Pure."""
    episodes = "episode" if marked == 1 else "episodes"
    return (f"{where} holds {marked} {episodes} marked invalid; pass {OPTION_FLAG}={DROP} "
            f"(leave them out) or {OPTION_FLAG}={KEEP}")


def split_episodes(episode_ids: Sequence[str], marks: Sequence[Mark], option: Optional[str],
                   where: str) -> Selection:
    """Split an input's episode indices into kept and dropped by its marks and `option`. Pure.

    Args:
      episode_ids: the input's episode ids, in dataset order.
      marks: its marks (`read_marks`).
      option: "drop", "keep", or None.
      where: the input, for messages.

    Returns:
      The `Selection`.

    Raises:
      InvalidOptionRequiredError: episodes are marked and `option` is None.
      ValueError: an unknown option.
    """
    check_option(option)
    marked = marked_indices(episode_ids, marks)
    if marked and option is None:
        raise InvalidOptionRequiredError(option_required_message(where, len(marked)))
    drop = option == DROP
    kept = tuple(i for i in range(len(episode_ids)) if not (drop and i in marked))
    dropped = tuple(sorted(marked)) if drop else ()
    kept_marks = () if drop else tuple(dict.fromkeys(marked[i] for i in sorted(marked)))
    return Selection(kept, dropped, tuple(sorted(marked)), option, kept_marks,
                     tuple(dangling_marks(episode_ids, marks)))


def combined_lineage(selections: Iterable[Selection], option: Optional[str]) -> dict[str, Any]:
    """The lineage entry of a job with several inputs: counts summed. Pure."""
    selections = list(selections)
    return {"option": option, "marked": sum(len(s.marked) for s in selections),
            "dropped": sum(len(s.dropped) for s in selections)}


# ---------------------------------------------------------------------------
# I/O.
# ---------------------------------------------------------------------------


def marks_path(directory: str) -> str:
    """The marks file of a dataset directory."""
    return os.path.join(directory, FILE)


def read_marks(directory: str) -> list[Mark]:
    """The marks of a dataset directory, in file order ([] without a marks file).

    A torn last line (a kill mid-append) is ignored with a warning.

    Raises:
      MarkFileError: a malformed line (naming file:line).
    """
    path = marks_path(directory)
    try:
        with open(path, "rb") as f:
            content = f.read()
    except FileNotFoundError:
        return []
    marks, torn = parse_marks(content, path)
    if torn:
        log.warning("%s: ignoring a torn last line (a writer killed mid-append)", path)
    return marks


def _cut_torn_tail(fd: int, path: str) -> None:
    """Cut a torn last line off the (locked) marks file, so the next line starts clean."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    # Files are small (a line per marked episode): read back to the last newline.
    content = os.pread(fd, size, 0)
    keep = content.rfind(b"\n") + 1
    log.warning("%s: cutting off a torn last line (%d bytes) before appending", path,
                size - keep)
    os.ftruncate(fd, keep)


def append_mark(directory: str, mark: Mark) -> Mark:
    """Append `mark` to the directory's marks file, durably; refuse a second mark.

    The check and the append happen under an exclusive lock of the file, so
    two processes marking the same episode cannot both succeed.

    Args:
      directory: the dataset directory (must exist).
      mark: a validated mark.

    Returns:
      The mark as stored (with its line number).

    Raises:
      AlreadyInvalidError: the episode is marked already; the file is unchanged.
      MarkFileError: the existing file is malformed; the file is unchanged.
      OSError: the disk refused the write.
    """
    path = marks_path(directory)
    created = not os.path.exists(path)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        existing, torn = parse_marks(os.pread(fd, size, 0), path)
        first = marks_by_episode(existing, path).get(mark.episode_id)
        if first is not None:
            raise already_invalid(directory, first)
        if torn:
            _cut_torn_tail(fd, path)
        data = _line(mark).encode("ascii")
        view = memoryview(data)
        while view:  # O_APPEND: each write lands at the end
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the flock
    if created:
        fsync_path(directory)
    return dataclasses.replace(mark, line=len(existing) + 1)


def write_marks(directory: str, marks: Sequence[Mark]) -> Optional[str]:
    """Write a new marks file holding `marks` (a job's output); nothing when `marks` is empty.

    Returns:
      The file's path, or None when nothing was written.

    Raises:
      FileExistsError: the directory has a marks file already.
    """
    if not marks:
        return None
    path = marks_path(directory)
    with open(path, "x", encoding="ascii") as f:
        f.write(marks_text(marks))
        f.flush()
        os.fsync(f.fileno())
    return path


def episode_ids(directory: str) -> list[str]:
    """The episode ids of a dataset directory, in order (reads each episode's metadata).

    Raises:
      CorruptRecordingError / FormatVersionError: not a readable dataset.
    """
    from rlif_data.recording.reader import EpisodeReader

    with EpisodeReader(directory, repair=False) as reader:
        return [str(reader.summary(i)[sc.EPISODE_ID]) for i in range(len(reader))]


def select_episodes(directory: str, option: Optional[str],
                    ids: Optional[Sequence[str]] = None) -> Selection:
    """The episodes of `directory` a job reads (see `split_episodes`).

    Without a marks file only the index is read; with one, every episode's id.

    Args:
      directory: the input dataset directory.
      option: "drop", "keep", or None.
      ids: its episode ids, if the caller read them already.

    Raises:
      InvalidOptionRequiredError: marked episodes and no option.
      MarkFileError: a malformed marks file.
    """
    from rlif_data.recording import store

    check_option(option)
    marks = read_marks(directory)
    if not marks:
        lengths, _ = store.indexed_shard_lengths(store.read_index(directory))
        return Selection(tuple(range(sum(lengths))), option=option)
    selection = split_episodes(ids if ids is not None else episode_ids(directory), marks,
                               option, directory)
    for mark in selection.dangling:
        log.warning("%s:%d: marks episode %r invalid, but %s holds no such episode",
                    marks_path(directory), mark.line, mark.episode_id, directory)
    return selection


def refuse_published(path: str) -> None:
    """Refuse to mark inside a published registry version (or a reference to one).

    Raises:
      PublishedVersionError: `path` is a ``name@tag`` / ``name:version``
        reference, or a version directory (it has a registry manifest).
    """
    from rlif_data.registry.versions import parse_ref

    fix = ("published versions are immutable: mark the recording it was published from "
           "(`rlif-data mark-invalid DIR ...`), then publish it again")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, sc.MANIFEST_FILE)):
            raise PublishedVersionError(f"{path} is a published registry version; {fix}")
        return
    try:
        parse_ref(path)
    except ValueError:
        return
    if "@" in path or ":" in path:
        raise PublishedVersionError(f"{path} is a registry reference; {fix}")


def mark_episode(directory: str, episode_id: str, reason: str, how: str = HOW_CLI,
                 by: Optional[str] = None) -> Mark:
    """Mark one episode of a recording invalid, after the session (``rlif-data mark-invalid``).

    Args:
      directory: a recording (or an unpublished dataset) directory.
      episode_id: the episode's `schema.EPISODE_ID`.
      reason: why.
      how: how the mark was made.
      by: who (default: user@host).

    Returns:
      The stored mark.

    Raises:
      PublishedVersionError: `directory` is a registry reference or version.
      MarkError: an empty or too long reason.
      CorruptRecordingError: not a recording directory (or one needing `recover`).
      UnknownEpisodeError: no episode has that id.
      AlreadyInvalidError: the episode is marked already; nothing is written.
    """
    refuse_published(directory)
    mark = new_mark(episode_id, reason, how, by)  # a bad reason fails before any read
    ids = episode_ids(directory)
    if episode_id not in ids:
        sample = ", ".join(repr(i) for i in ids[:3]) or "none"
        raise UnknownEpisodeError(
            f"{directory} holds no episode {episode_id!r} ({len(ids)} episodes, ids like "
            f"{sample}); `rlif-data inspect {directory}` lists them")
    return append_mark(directory, mark)
