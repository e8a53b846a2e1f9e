"""The lineage tree of a registry version: back through every job to the raw logs.

Ancestors that are not in the registry are drawn from the records a pull
brought along (`lineage_records`), marked ``"local": False`` with the remote
they came from; one with no record is marked ``"missing"``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional

from rlif_data import lineage
from rlif_data.registry import lineage_records
from rlif_data.registry.common import UnknownDatasetError

if TYPE_CHECKING:  # the registry imports this module
    from rlif_data.registry.store import Registry, VersionInfo


def tree(registry: "Registry", ref: str) -> dict[str, Any]:
    """The lineage tree of the version `ref` names.

    Returns:
      ``{"ref", "job", "params", "created", "code_version", "content_sha256",
      "published_by", "local", "inputs": [subtree | raw input]}``; an input
      that names a registry version is expanded recursively. A subtree whose
      content digest differs from the one its child recorded carries
      ``"mismatch": <recorded digest>``; an ancestor drawn twice (a merge and
      a policy that share inputs) is shown once and then named.

    Raises:
      UnknownDatasetError: `ref` is not in the registry.
    """
    return _node(registry, registry.info(ref), seen=set())


def node_fields(ref: str, manifest: dict[str, Any], job: "lineage.JobRecord",
                local: bool) -> dict[str, Any]:
    """One node of a lineage tree, without its inputs. Pure."""
    return {"ref": ref, "job": job.job, "params": dict(job.params),
            "created": manifest.get("created"), "code_version": job.code_version,
            "content_sha256": manifest.get("content_sha256"),
            "published_by": manifest.get("published_by"), "local": local, "inputs": []}


def _node(registry: "Registry", info: "VersionInfo", seen: set) -> dict[str, Any]:
    job = lineage.lineage_of(lineage.read_record(info.path),
                             info.manifest.get(lineage.LINEAGE_KEY),
                             info.manifest.get("source"))
    return _expand(registry, node_fields(info.ref, info.manifest, job, local=True), job, seen)


def _expand(registry: "Registry", node: dict[str, Any], job: "lineage.JobRecord",
            seen: set) -> dict[str, Any]:
    seen.add(node["ref"])
    for item in job.inputs:
        parent = item.ref or ref_of_path(registry.root, item.path)
        if parent and parent in seen:
            node["inputs"].append({"ref": parent, "job": "(shown above)", "params": {},
                                   "inputs": []})
        elif parent:
            node["inputs"].append(_parent(registry, parent, item.content_sha256, seen))
        else:
            node["inputs"].append({"raw": item.to_json()})
    return node


def _parent(registry: "Registry", ref: str, recorded: Optional[str], seen: set) -> dict[str, Any]:
    """An ancestor's subtree: from its version here, else from its lineage record."""
    try:
        child = _node(registry, registry.info(ref), seen)
    except (UnknownDatasetError, ValueError):
        record = registry.known_record(ref) if ":" in ref else None
        if record is None:
            return {"ref": ref, "job": "(not here)", "params": {}, "inputs": [],
                    "content_sha256": recorded, "local": False, "missing": True}
        job = lineage_records.job_of(record["manifest"], record.get("metadata_json"))
        child = node_fields(ref, record["manifest"], job, local=False)
        child["remote"] = record.get("remote")
        child = _expand(registry, child, job, seen)
    if recorded and child.get("content_sha256") not in (None, recorded):
        child["mismatch"] = recorded
    return child


def ref_of_path(root: str, path: Optional[str]) -> Optional[str]:
    """``name:version`` of a version directory under registry `root`. Pure.

    Old job records name their inputs by path, not by reference.
    """
    path = os.path.abspath(path) if path else ""
    base = os.path.join(root, "datasets") + os.sep
    if path.startswith(base):
        parts = path[len(base):].split(os.sep)
        if len(parts) >= 2:
            return f"{parts[0]}:{parts[1]}"
    return None
