"""Lineage across machines: ancestors' records go up with push and come down with pull.

push uploads a lineage record (`lineage_records`) for every ancestor of the
version that this machine knows (as a version or as a kept record); pull
reads the records of every ancestor the remote knows, checks each against
the content digest its child recorded, and keeps those that are not here as
versions. A remote manifest whose content differs from what a kept record
says about that version is refused as rewritten.
"""

from __future__ import annotations

import posixpath
from typing import Any, Optional

from rlif_data.registry import checksums, lineage_records
from rlif_data.registry.remote_layout import RemoteError, join, read_remote_record, write_json
from rlif_data.registry.store import Registry, VersionInfo
from rlif_data.registry.versions import Version, parse_ref


def ancestor_records(registry: Registry, info: VersionInfo) -> list[dict[str, Any]]:
    """Lineage records of every ancestor of `info` known here (versions or kept records)."""
    out, seen = [], {info.ref}
    queue = lineage_records.parents(lineage_records.job_of(
        info.manifest, lineage_records.read_metadata_text(info.path)))
    while queue:
        ref, _ = queue.pop(0)
        if ref in seen:
            continue
        seen.add(ref)
        record = _local_record(registry, ref)
        if record is None:
            continue  # an ancestor this machine never had: nothing to pass on
        out.append(record)
        queue.extend(lineage_records.parents(lineage_records.job_of(
            record["manifest"], record.get("metadata_json"))))
    return out


def _local_record(registry: Registry, ref: str) -> Optional[dict[str, Any]]:
    """The record of ``name:version`` from the version here, else from a kept record."""
    try:
        parsed = parse_ref(ref)
    except ValueError:
        return None
    if parsed.version is None:
        return None
    if parsed.version in registry.versions(parsed.name):
        path = registry.version_dir(parsed.name, parsed.version)
        try:
            manifest = checksums.read_manifest(path)
        except (OSError, ValueError):
            return None
        return lineage_records.make_record(manifest, lineage_records.read_metadata_text(path))
    return registry.known_record(ref)


def upload_record(fs, root: str, record: dict[str, Any]) -> None:
    """Put an ancestor's lineage record on the remote unless it holds one already."""
    manifest = record["manifest"]
    path = join(root, lineage_records.record_rel(manifest["name"], manifest["version"]))
    if fs.exists(path):
        return
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    write_json(fs, path, {**record, "remote": None})


def check_known_content(registry: Registry, name: str, version: Version,
                         manifest: dict[str, Any], where: str) -> None:
    """Refuse a remote manifest whose content differs from what a kept record says.

    Raises:
      RemoteError: naming both digests (the remote manifest was rewritten).
    """
    record = registry.known_record(f"{name}:{version}")
    if record is None:
        return
    known = record["manifest"].get("content_sha256")
    if known != manifest.get("content_sha256"):
        raise RemoteError(f"{where} has content {str(manifest.get('content_sha256'))[:12]}..., "
                          f"but {name}:{version} is recorded here with {str(known)[:12]}... "
                          "(from a descendant's lineage): the remote manifest was rewritten "
                          "(tampered); nothing was pulled")


def fetch_ancestors(fs, root: str, url: str, manifest: dict[str, Any],
                     metadata_json: Optional[str]) -> list[dict[str, Any]]:
    """The checked lineage records of every ancestor of a version that the remote has.

    Raises:
      LineageRecordError / ManifestError / RemoteError: an ancestor's record
        does not check (its content differs from what its child recorded,
        a rewritten job record, a malformed manifest).
    """
    out, seen = [], {f"{manifest['name']}:{manifest['version']}"}
    queue = lineage_records.parents(lineage_records.job_of(manifest, metadata_json))
    try:
        while queue:
            ref, expected = queue.pop(0)
            if ref in seen:
                continue
            seen.add(ref)
            try:
                parsed = parse_ref(ref)
            except ValueError:
                continue  # not a name:version this release writes
            if parsed.version is None:
                continue
            record = read_remote_record(fs, root, parsed.name, str(parsed.version), expected)
            if record is None:
                continue  # never pushed: lineage shows it as unknown
            out.append({**record, "remote": url})
            queue.extend(lineage_records.parents(lineage_records.job_of(
                record["manifest"], record.get("metadata_json"))))
    except OSError as exc:
        raise RemoteError(f"cannot read the lineage of {manifest['name']}:"
                          f"{manifest['version']} from {url}: {exc}") from None
    return out


def keep_ancestors(registry: Registry, records: list[dict[str, Any]]) -> None:
    """Keep the records of ancestors that are not here as versions."""
    for record in records:
        manifest = record["manifest"]
        if Version.parse(manifest["version"]) in registry.versions(manifest["name"]):
            continue  # the version itself is here: it is its own record
        lineage_records.write_local(registry.root, record)
