"""The job record a dataset carries: the one lineage contract, and the view it holds.

Every pipeline writes a job record (``lineage`` in the dataset's
``metadata.json``): the job's name, its parameters, its inputs, the code
version and when it ran. The registry reads it back to draw a version's
lineage tree. Both sides go through the dataclasses here, so the keys are
spelled once:

* `InputRef` names one input. An input that came from the registry is a
  ``ref`` (``name:version``, never a tag) with the version's
  ``content_sha256``, so the record still means something on a teammate's
  machine after ``pull``; any other input is a ``path`` with what identifies
  its bytes there (``episodes``, ``bytes``, ``sha256``). Other keys a job
  adds (``kind``, ``rows``, ...) travel in `InputRef.extra`.
* `JobRecord` is the whole record. Registry versions may carry a second,
  published one in their manifest (policies, rounds): `lineage_of` puts
  the two together the way the registry draws them.

Records written before this module (plain dicts, inputs with only a path)
are read as they are: unknown keys are kept, missing ones are None.

The *view* of a dataset (which relabel rule made its rewards and `include`
mask) is part of the data contract: a relabel job records it as its
``view`` parameter, a merge job records the one view all its inputs share
(it refuses inputs of different views), and recordings and ingested
datasets hold none ("raw"). Readers and trainers ask `dataset_view` instead
of guessing from the fields.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import Any, Mapping, Optional, Sequence, Union

from rlif_data import schema as sc

LINEAGE_KEY = "lineage"  # in metadata.json, and in a registry version's manifest
# JobRecord keys
JOB = "job"
PARAMS = "params"
INPUTS = "inputs"
CODE_VERSION = "code_version"
CREATED = "created"
# InputRef keys
REF = "ref"
CONTENT_SHA256 = "content_sha256"
PATH = "path"
EPISODES = "episodes"
BYTES = "bytes"
SHA256 = "sha256"
_INPUT_KEYS = (REF, CONTENT_SHA256, PATH, EPISODES, BYTES, SHA256)
_RECORD_KEYS = (JOB, PARAMS, INPUTS, CODE_VERSION, CREATED)

RELABEL_JOB = "relabel"
MERGE_JOB = "merge"
RECORDING_JOB = "recording"  # what the registry calls a version without a job record
VIEW_PARAM = "view"
RAW = "raw"  # how messages name a dataset without a view


class LineageError(ValueError):
    """A job record that cannot be written as asked (an input without a ref or path)."""


@dataclasses.dataclass(frozen=True)
class InputRef:
    """One input of a job.

    Attributes:
      ref: ``name:version`` of a registry version (None: not from the registry).
      content_sha256: that version's content hash (MANIFEST.json).
      path: absolute path of an input outside the registry.
      episodes: how many episodes the input holds, where known.
      bytes: its size in bytes, where known.
      sha256: SHA-256 of an input file, where known.
      extra: any other keys the job records about it (JSON-able).
    """

    ref: Optional[str] = None
    content_sha256: Optional[str] = None
    path: Optional[str] = None
    episodes: Optional[int] = None
    bytes: Optional[int] = None
    sha256: Optional[str] = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The input as stored: set fields and extra keys (None fields left out)."""
        out = dict(self.extra)
        out.update({k: getattr(self, k) for k in _INPUT_KEYS if getattr(self, k) is not None})
        return out

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "InputRef":
        """An input as stored, old or new; keys this module does not know go to `extra`. Pure."""
        if not isinstance(item, Mapping):
            return cls(extra={"value": item})  # not a record any version wrote; kept visible
        known = {k: item.get(k) for k in _INPUT_KEYS}
        return cls(**known, extra={k: v for k, v in item.items() if k not in _INPUT_KEYS})


InputLike = Union[InputRef, Mapping[str, Any]]


def _as_input(item: InputLike) -> InputRef:
    return item if isinstance(item, InputRef) else InputRef.from_json(item)


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """What a job records about itself in its output's metadata.

    Attributes:
      job: the job's name, e.g. "relabel" (None in a published record that
        only adds inputs).
      params: the job's parameters (JSON-able).
      inputs: its inputs; dicts given here are read as `InputRef.from_json`.
      code_version: `rlif_data.version.code_version()` of the writer.
      created: when it ran (UTC, ISO 8601).
      extra: any other keys of the record (e.g. a rounds run marker).
    """

    job: Optional[str]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inputs: Sequence[InputLike] = ()
    code_version: Optional[str] = None
    created: Optional[str] = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Jobs pass plain dicts for inputs; the record holds InputRefs only.
        object.__setattr__(self, "inputs", tuple(_as_input(i) for i in self.inputs))

    def to_json(self) -> dict[str, Any]:
        """The record as stored in metadata.json (None fields left out)."""
        out = dict(self.extra)
        out.update({JOB: self.job, PARAMS: dict(self.params),
                    INPUTS: [i.to_json() for i in self.inputs],
                    CODE_VERSION: self.code_version, CREATED: self.created})
        return {k: v for k, v in out.items() if v is not None}

    def metadata(self) -> dict[str, Any]:
        """The record to write now: `to_json`, stamped with the code version and time if unset.

        Raises:
          LineageError: an input has neither a ref nor a path.
        """
        from rlif_data.version import code_version

        for item in self.inputs:
            check_input(item, self.job)
        return dataclasses.replace(self, code_version=self.code_version or code_version(),
                                   created=self.created or utc_now()).to_json()

    @classmethod
    def from_json(cls, data: Any) -> "JobRecord":
        """A record as stored (old or new); anything but a dict reads as an empty record. Pure."""
        if not isinstance(data, Mapping):
            return cls(job=None)
        job = data.get(JOB)
        params = data.get(PARAMS)
        inputs = data.get(INPUTS)
        return cls(job=job if isinstance(job, str) else None,
                   params=params if isinstance(params, Mapping) else {},
                   inputs=inputs if isinstance(inputs, list) else (),
                   code_version=data.get(CODE_VERSION), created=data.get(CREATED),
                   extra={k: v for k, v in data.items() if k not in _RECORD_KEYS})


def check_input(item: InputRef, job: Optional[str] = None) -> None:
    """Refuse an input that names nothing (neither a registry ref nor a path). Pure.

    Raises:
      LineageError: naming the job and the input.
    """
    if not item.ref and not item.path:
        raise LineageError(f"job {job!r}: input {item.to_json()} has neither a registry ref "
                           "nor a path; record where the input came from")


def utc_now() -> str:
    """The current time, UTC, ISO 8601 (what `JobRecord.created` holds)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def registry_input(ref: str, content_sha256: Optional[str], **known: Any) -> InputRef:
    """An input that came from the registry: its ``name:version`` and content hash."""
    return InputRef(ref=ref, content_sha256=content_sha256, **known)


def path_input(path: str, **known: Any) -> InputRef:
    """An input outside the registry, by absolute path (``episodes``, ``bytes``, ``sha256``, extra)."""
    extra = {k: v for k, v in known.items() if k not in _INPUT_KEYS}
    fields = {k: v for k, v in known.items() if k in _INPUT_KEYS}
    return InputRef(path=os.path.abspath(path), extra=extra, **fields)


# -- reading ----------------------------------------------------------------------------


def read_record(directory: str) -> JobRecord:
    """The job record in ``metadata.json`` (job None for recordings, old datasets or no file)."""
    try:
        with open(os.path.join(directory, sc.METADATA_FILE), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return JobRecord(job=None)
    return JobRecord.from_json(data.get(LINEAGE_KEY) if isinstance(data, dict) else None)


def lineage_of(record: JobRecord, published: Any = None,
               source: Optional[str] = None) -> JobRecord:
    """One version's lineage as the registry draws it. Pure.

    Args:
      record: the dataset's own job record (`read_record`).
      published: the ``lineage`` dict of the version's manifest (given at
        publish), or None.
      source: the directory the version was published from.

    Returns:
      The dataset's job (or, for artifacts without one such as policies, the
      published job; else "recording"), its params and code version, and the
      inputs of both records; a version with no inputs at all is a raw
      recording whose one input is `source`.
    """
    extra = JobRecord.from_json(published)
    own = record
    if own.job is None and extra.job:
        own = dataclasses.replace(extra, inputs=())
    inputs = list(record.inputs) + list(extra.inputs)
    if not inputs and source:
        inputs = [InputRef(path=source)]
    return dataclasses.replace(own, job=own.job or RECORDING_JOB, inputs=inputs)


def view_of_job(job: JobRecord) -> Optional[str]:
    """The view a job record names (relabel and merge jobs), else None. Pure."""
    if job.job in (RELABEL_JOB, MERGE_JOB):
        view = job.params.get(VIEW_PARAM)
        return view if isinstance(view, str) else None
    return None


def dataset_view(directory: str) -> Optional[str]:
    """The relabel view of the dataset at `directory`; None for raw and ingested data."""
    return view_of_job(read_record(directory))


def describe_view(view: Optional[str]) -> str:
    """A view for messages: its name, or "raw"."""
    return view if view else RAW
