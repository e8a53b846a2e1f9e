"""Transitions per episode, stored beside a job's output so downsample needs no read pass.

The sink's shard notes already carry every episode's length (the job
checks' summaries, `pipelines.job_checks`), so the driver writes them down
for free as `schema.EPISODE_LENGTHS_FILE` (`side_file`, called by
`pipelines.output.write_dataset`); a merge, which decodes nothing, carries
its inputs' lengths over (`merged_side_file`). Without them `pipelines.downsample`
reads and parses every input episode once, in the driver, before its job
(0.3 s per 1000 episodes of 1000 steps: a third of the job).

The file is a hint, never the truth: `read` takes it only when it is
well formed and describes the dataset's index (the same shards, each with
the same episode count), and downsample's workers check each episode they
read against it (`pipelines.downsample.EpisodesOfKnownLength`). Datasets
without it (recordings, older outputs, TFDS' legacy writer) are read as
before.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Mapping, Optional, Sequence

from pipelines import job_checks
from rlif_data import schema as sc

log = logging.getLogger(__name__)
# Keys of the file's JSON object.
VERSION_KEY, SHARDS_KEY, TRANSITIONS_KEY = "version", "shard_lengths", "transitions"
VERSION = 1


def from_notes(notes: Sequence[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    """The file's content for a job's output, from its shard notes; None when they lack it. Pure.

    Args:
      notes: the sink's notes, by shard (`pipelines.sink.collect_shards`),
        each with its episodes' check summaries.

    Returns:
      ``{"version", "shard_lengths": episodes per shard, "transitions": per
      episode in output order}``, or None when a note has no summaries for
      some of its episodes (a job run without checks).
    """
    notes = sorted(notes, key=lambda n: int(n["shard"]))
    summaries = sorted((s for n in notes for s in n.get("checks", ())),
                       key=lambda s: int(s[job_checks.KEY]))
    shard_lengths = [int(n["episodes"]) for n in notes]
    if not shard_lengths or len(summaries) != sum(shard_lengths):
        return None
    return {VERSION_KEY: VERSION, SHARDS_KEY: shard_lengths,
            TRANSITIONS_KEY: [int(s[job_checks.LENGTH]) for s in summaries]}


def side_file(notes: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{EPISODE_LENGTHS_FILE: text}`` for `output.write_side_files`, {} without summaries."""
    content = from_notes(notes)
    return {} if content is None else _as_side_file(content)


def merged_side_file(shards: Sequence[tuple[Optional[Sequence[int]], Sequence[int]]]
                     ) -> dict[str, str]:
    """``{EPISODE_LENGTHS_FILE: text}`` for a merge's output; {} when an input has none. Pure.

    A merge links or rewrites its inputs' shards without decoding an
    episode, so it takes the lengths from its inputs' files (as `read`
    accepted them; downsample's workers still check every episode it
    selects).

    Args:
      shards: per output shard, in order: (its input's transitions per
        episode, None when that input has no usable file; the input's
        episode indices the shard keeps).
    """
    transitions: list[int] = []
    for lengths, kept in shards:
        if lengths is None:
            return {}
        transitions += [int(lengths[i]) for i in kept]
    return _as_side_file({VERSION_KEY: VERSION, SHARDS_KEY: [len(kept) for _, kept in shards],
                          TRANSITIONS_KEY: transitions})


def _as_side_file(content: Mapping[str, Any]) -> dict[str, str]:
    """``{EPISODE_LENGTHS_FILE: text}`` of the file's content (compact JSON, one line)."""
    return {sc.EPISODE_LENGTHS_FILE: json.dumps(content, separators=(",", ":")) + "\n"}


def parse(text: str, shard_lengths: Sequence[int]) -> tuple[Optional[list[int]], str]:
    """The per-episode transitions of the file's `text` if they fit the dataset's index. Pure.

    Args:
      text: the file's content.
      shard_lengths: episodes per shard, as the dataset's index says.

    Returns:
      (transitions per episode, "") when the file is well formed and records
      exactly `shard_lengths`; else (None, why not).
    """
    try:
        content = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(content, dict) or content.get(VERSION_KEY) != VERSION:
        return None, f"not a version-{VERSION} lengths file"
    stored_shards = content.get(SHARDS_KEY)
    transitions = content.get(TRANSITIONS_KEY)
    if not _ints(stored_shards) or not _ints(transitions):
        return None, f"{SHARDS_KEY!r} and {TRANSITIONS_KEY!r} must be lists of whole numbers >= 0"
    if list(stored_shards) != [int(n) for n in shard_lengths]:
        return None, (f"it records shards of {stored_shards[:8]} episodes, the index "
                      f"{list(shard_lengths)[:8]} (the dataset changed since it was written)")
    if len(transitions) != sum(stored_shards):
        return None, (f"{len(transitions)} lengths for {sum(stored_shards)} episodes")
    return list(transitions), ""


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def path(directory: str) -> str:
    """Where the lengths file of dataset `directory` is."""
    return os.path.join(directory, sc.EPISODE_LENGTHS_FILE)


def read(directory: str) -> Optional[list[int]]:
    """Transitions per episode of dataset `directory` from its lengths file, or None.

    None when the file is absent (recordings, older data: nothing logged) or
    does not fit the dataset (`parse`; logged as a warning naming the file,
    and the caller reads the episodes instead).

    Raises:
      CorruptRecordingError: no readable index (`store.read_index`).
    """
    from rlif_data.recording import store

    try:
        with open(path(directory), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("%s: unreadable (%s); reading every episode's length instead",
                    path(directory), exc)
        return None
    shard_lengths, _ = store.indexed_shard_lengths(store.read_index(directory))
    lengths, why = parse(text, shard_lengths)
    if lengths is None:
        log.warning("%s: ignored, %s; reading every episode's length instead",
                    path(directory), why)
    return lengths
