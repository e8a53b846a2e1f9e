"""Lineage that travels: the manifests and job records of ancestors, without their data.

Pulling a version brings the records of its ancestors along, so `lineage`
on another machine draws the whole tree (refs, content hashes, jobs,
params) and any ancestor can be pulled on demand. A record is one JSON
file, in the same place locally and on a remote::

    lineage/<name>/<version>.json
      {"format": "rlif-lineage-record", "format_version": 1,
       "manifest": {... the version's MANIFEST.json ...},
       "metadata_json": "<the version's metadata.json, verbatim>" | null,
       "remote": "<where it came from>" | null}

Nothing in a record is trusted: its manifest is checked like a pulled one,
its ``metadata_json`` must hash to the manifest's entry for that file, and
its content digest must equal the one the child's job record holds for it
(`check_record`), so a record rewritten on a remote is detected.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

from rlif_data import errors, lineage
from rlif_data import schema as sc
from rlif_data.faults import checkpoint
from rlif_data.fsutil import write_json_atomic
from rlif_data.registry import checksums
from rlif_data.registry.versions import Version, check_name

LINEAGE_DIR = "lineage"
FORMAT = "rlif-lineage-record"
FORMAT_VERSION = 1
# A job record is a few KB; far above that is not a file rlif-data wrote.
MAX_METADATA_CHARS = 4 << 20


class LineageRecordError(errors.RlifDataError, ValueError):
    """A lineage record is malformed or does not match what its child recorded."""


def record_rel(name: str, version: str | Version) -> str:
    """``lineage/<name>/<version>.json`` (checked name and version). Pure."""
    return f"{LINEAGE_DIR}/{check_name(name)}/{Version.parse(str(version))}.json"


def make_record(manifest: dict[str, Any], metadata_json: Optional[str],
                remote: Optional[str] = None) -> dict[str, Any]:
    """A record of one version. Pure."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "manifest": manifest,
            "metadata_json": metadata_json, "remote": remote}


def check_record(data: Any, where: str, name: str, version: str,
                 expected_content: Optional[str] = None) -> dict[str, Any]:
    """A record read from a remote or disk, checked before it is kept or drawn.

    Args:
      data: the parsed JSON.
      where: its path or URL, for the message.
      name, version: the ancestor it must describe.
      expected_content: the content digest the child recorded for it.

    Returns:
      `data`.

    Raises:
      LineageRecordError: not a record, another version, a content digest
        that disagrees with its file list or with `expected_content`, or a
        job record whose bytes are not those the manifest lists.
      ManifestError / UnsafePathError: a malformed manifest.
    """
    if not (isinstance(data, dict) and data.get("format") == FORMAT
            and isinstance(data.get("manifest"), dict)):
        raise LineageRecordError(f"{where}: not a lineage record")
    manifest = checksums.check_manifest(data["manifest"], where)
    if (manifest.get("name"), manifest.get("version")) != (name, str(version)):
        raise LineageRecordError(f"{where} describes {manifest.get('name')!r}:"
                                 f"{manifest.get('version')!r}, not {name}:{version}")
    digest = checksums.content_digest(manifest["files"])
    if digest != manifest.get("content_sha256"):
        raise LineageRecordError(f"{where}: the content digest does not match its file list "
                                 "(tampered)")
    if expected_content and digest != expected_content:
        raise LineageRecordError(
            f"{where}: {name}:{version} has content {digest[:12]}..., but its child's job "
            f"record names {expected_content[:12]}...; the record was rewritten (tampered)")
    text = data.get("metadata_json")
    if text is not None:
        entry = manifest["files"].get(sc.METADATA_FILE)
        if not isinstance(text, str) or len(text) > MAX_METADATA_CHARS or entry is None or (
                hashlib.sha256(text.encode()).hexdigest() != entry["sha256"]):
            raise LineageRecordError(f"{where}: its job record is not the {sc.METADATA_FILE} "
                                     "its manifest lists (tampered)")
    return data


def job_of(manifest: dict[str, Any], metadata_json: Optional[str]) -> lineage.JobRecord:
    """The lineage of a version as the registry draws it, from its manifest and job record. Pure."""
    own = lineage.JobRecord(job=None)
    if metadata_json:
        try:
            data = json.loads(metadata_json)
        except ValueError:
            data = None
        if isinstance(data, dict):
            own = lineage.JobRecord.from_json(data.get(lineage.LINEAGE_KEY))
    return lineage.lineage_of(own, manifest.get(lineage.LINEAGE_KEY), manifest.get("source"))


def parents(job: lineage.JobRecord) -> list[tuple[str, Optional[str]]]:
    """(``name:version``, content digest) of the registry inputs of a job record. Pure."""
    out = []
    for item in job.inputs:
        if item.ref and ":" in item.ref:
            out.append((item.ref, item.content_sha256))
    return out


def read_metadata_text(version_dir: str) -> Optional[str]:
    """A version's metadata.json text (None if it has none or it is not UTF-8)."""
    try:
        with open(os.path.join(version_dir, sc.METADATA_FILE), "rb") as f:
            return f.read(MAX_METADATA_CHARS + 1).decode()
    except (OSError, UnicodeDecodeError):
        return None


def local_path(root: str, name: str, version: str | Version) -> str:
    """Where a record lives in the registry at `root`."""
    return os.path.join(root, *record_rel(name, version).split("/"))


def read_local(root: str, name: str, version: str | Version) -> Optional[dict[str, Any]]:
    """The record of `name:version` kept in the registry at `root`, or None.

    A record that no longer checks (edited by hand) reads as None: lineage
    then shows the ancestor as unknown rather than drawing wrong data.
    """
    path = local_path(root, name, version)
    try:
        with open(path) as f:
            data = json.load(f)
        return check_record(data, path, name, str(version))
    except (OSError, ValueError):
        return None


def write_local(root: str, record: dict[str, Any]) -> bool:
    """Keep a record (one atomic file write); False if an identical one is already there."""
    manifest = record["manifest"]
    name, version = manifest["name"], manifest["version"]
    existing = read_local(root, name, version)
    if existing is not None and existing["manifest"] == manifest:
        return False
    path = local_path(root, name, version)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json_atomic(path, record)
    checkpoint("lineage.recorded")
    return True
