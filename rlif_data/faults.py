"""Named crash points of every write protocol, for fault-injection tests.

Each write protocol (a recording commit, recover, publish, a tag change,
install, pull, import, a job's output rename, gc) calls
``checkpoint("<protocol>.<step>")`` between two of its durable steps. That
is a dictionary look-up and nothing more, unless the environment variable
``RLIF_FAULT`` names the point; then the process kills itself with SIGKILL
there (no ``finally``, no flush: what a power cut or the OOM killer does),
or raises an injected `OSError`::

    RLIF_FAULT=version.renamed          SIGKILL the first time the point is reached
    RLIF_FAULT=record.shard_written@2   SIGKILL the second time
    RLIF_FAULT=publish.copied=ENOSPC    raise OSError(ENOSPC) there instead

`POINTS` enumerates every point, and `checkpoint` refuses a name it does
not list. tests/test_faults.py runs every point of `POINTS` (and checks that
each one is called somewhere), so a new step of a protocol is killed at and
checked by default once it is listed here.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
from typing import Optional

ENV = "RLIF_FAULT"

# protocol.step -> the state a kill at that point leaves behind.
POINTS: dict[str, str] = {
    # rlif_data.recording.store.EpisodeStore.write_episode
    "record.shard_written": "the episode's temporary shard is complete and fsynced, not renamed",
    "record.shard_renamed": "the shard is in place, the index does not list it yet",
    # rlif_data.recording.envlogger_backend.StoreBackend (its writer thread)
    "writer.episode_taken": "the writer thread holds a finished episode, nothing of it on disk",
    # rlif_data.recording.store.write_info (the index write of record, creation and recover)
    "index.staged": "the new index files are in a hidden staging directory, none moved in",
    "index.partly_moved": "metadata.json and features.json are replaced, dataset_info.json not",
    # rlif_data.recording.store.recover
    "recover.temporaries_removed": "temporary shards are deleted, nothing else changed",
    "recover.shard_linked": "a damaged shard has its .damaged- link, the empty shard is not in",
    "recover.before_index": "damaged shards are replaced, the index is not rewritten yet",
    # rlif_data.registry.store.Registry.publish
    "publish.copied": "every file is copied (or linked) into staging and stored as an object, "
                      "the name lock is not taken",
    # rlif_data.registry.objects.ObjectStore.add (publish, pull, import, upgrade)
    "object.added": "a new object is in objects/, no visible version names it yet",
    # rlif_data.registry.store (every tag change: publish, install, tag, untag)
    "tag.intent_written": "the pending tag change is written (its commit point), nothing else",
    "tag.log_appended": "tags.log.jsonl has the change, tags.json does not",
    "tag.replaced": "tags.json has the change, the pending record is not removed yet",
    # rlif_data.registry.store.Registry.install (pull and import)
    "install.verified": "the staged version verified, the name lock is not taken",
    # rlif_data.registry.store.Registry._rename_in (publish, pull, import)
    "version.renamed": "a new version is visible; its tag change, recorded before, not applied",
    # rlif_data.registry.store.Registry.install(replace_damaged=True) (pull's repair)
    "repair.exchanged": "the repaired copy is in place, the damaged one still in staging",
    # rlif_data.registry.remote.pull
    "pull.file_fetched": "one file is downloaded into staging",
    "pull.staged": "every file and the manifest are in staging, nothing is installed",
    # rlif_data.registry.lineage_records.write_local (pull)
    "lineage.recorded": "the version is installed, one ancestor's lineage record is written",
    # rlif_data.registry.upkeep.upgrade
    "upgrade.file_linked": "one full copy of a version is replaced by a link to its object",
    # rlif_data.registry.archive.import_archive
    "import.extracted": "the archive is extracted into staging, nothing is installed",
    # pipelines.output.write_dataset
    "job.built": "TFDS finished the dataset in the job's staging directory, not renamed",
    "job.renamed": "the output is in place, the job's staging directory is not removed",
    # rlif_data.registry.store.Registry.gc
    "gc.tags_recovered": "a dataset's pending tag change is applied, staging not yet cleaned",
    "gc.staging_emptied": "a dead staging directory is emptied but for its lock file",
    "gc.object_removed": "one unreferenced object is removed",
}

_hits: dict[str, int] = {}


class UnknownFaultPointError(ValueError):
    """`checkpoint` or ``$RLIF_FAULT`` names a point that `POINTS` does not list."""


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """What ``$RLIF_FAULT`` asks for.

    Attributes:
      point: the checkpoint name, one of `POINTS`.
      hit: act at the hit-th time the point is reached (1 = the first).
      error: an errno name (``"ENOSPC"``) to raise as OSError instead of
        killing the process, or None to SIGKILL.
    """

    point: str
    hit: int = 1
    error: Optional[str] = None


def parse_spec(text: str) -> FaultSpec:
    """Parse ``point[@hit][=ERRNO]``. Pure.

    Raises:
      UnknownFaultPointError: the point is not in `POINTS`, the hit count is
        not a positive integer or the errno name is unknown.
    """
    rest, _, error = text.strip().partition("=")
    point, _, hit = rest.partition("@")
    if point not in POINTS:
        raise UnknownFaultPointError(f"${ENV}={text!r}: no fault point {point!r}; "
                                     f"known: {', '.join(sorted(POINTS))}")
    if hit and (not hit.isdigit() or int(hit) < 1):
        raise UnknownFaultPointError(f"${ENV}={text!r}: the hit count after @ must be 1 or more")
    if error and not isinstance(getattr(errno, error, None), int):
        raise UnknownFaultPointError(f"${ENV}={text!r}: {error!r} is not an errno name "
                                     "(e.g. ENOSPC, EROFS)")
    return FaultSpec(point, int(hit) if hit else 1, error or None)


def checkpoint(point: str) -> None:
    """Mark a step of a write protocol; a no-op unless ``$RLIF_FAULT`` names `point`.

    Args:
      point: a name from `POINTS`.

    Raises:
      UnknownFaultPointError: `point` is not in `POINTS` (a typo would
        silently never fire).
      OSError: ``$RLIF_FAULT`` asks for an injected error at this point.
    """
    if point not in POINTS:
        raise UnknownFaultPointError(f"checkpoint {point!r} is not listed in faults.POINTS")
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    spec = parse_spec(wanted)
    if spec.point != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] != spec.hit:
        return
    if spec.error:
        code = getattr(errno, spec.error)
        raise OSError(code, f"{os.strerror(code)} (injected at {point})")
    os.kill(os.getpid(), signal.SIGKILL)
