"""The job record a dataset carries, and the view it holds.

Every pipeline writes a job record (``lineage`` in the dataset's
``metadata.json``): the job's name, its parameters and its inputs. The *view*
of a dataset (which relabel rule made its rewards and `include` mask) is part
of the data contract: a relabel job records it as its ``view`` parameter, a
merge job records the one view all its inputs share (it refuses inputs of
different views), and recordings and ingested datasets hold none ("raw").
Readers and trainers ask `dataset_view` instead of guessing from the fields.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from rlif_data import schema as sc

RELABEL_JOB = "relabel"
MERGE_JOB = "merge"
VIEW_PARAM = "view"
RAW = "raw"  # how messages name a dataset without a view


def read_job(directory: str) -> dict[str, Any]:
    """The job record in ``metadata.json`` ({} for recordings, old datasets or no file)."""
    try:
        with open(os.path.join(directory, sc.METADATA_FILE), encoding="utf-8") as f:
            lineage = json.load(f).get("lineage") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return lineage if isinstance(lineage, dict) else {}


def view_of_job(job: dict[str, Any]) -> Optional[str]:
    """The view a job record names (relabel and merge jobs), else None. Pure."""
    if job.get("job") in (RELABEL_JOB, MERGE_JOB):
        view = (job.get("params") or {}).get(VIEW_PARAM)
        return view if isinstance(view, str) else None
    return None


def dataset_view(directory: str) -> Optional[str]:
    """The relabel view of the dataset at `directory`; None for raw and ingested data."""
    return view_of_job(read_job(directory))


def describe_view(view: Optional[str]) -> str:
    """A view for messages: its name, or "raw"."""
    return view if view else RAW
