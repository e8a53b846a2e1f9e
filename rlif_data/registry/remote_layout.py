"""What a remote holds and how to read it without trusting it (no writes here but `write_json`).

A remote root given as an fsspec URL has the local registry's layout::

    objects/<2 hex>/<62 hex>            file contents, named by SHA-256
    datasets/<name>/<version>/MANIFEST.json   a complete version (every object is there:
                                        push uploads the manifest last)
    datasets/<name>/tags.json           {tag: version}
    lineage/<name>/<version>.json       manifests and job records of ancestors

A remote written by an older release holds each version's files next to
its manifest (``datasets/<name>/<version>/<file>``) and no ``objects/``;
pull reads a file from there when its object is absent, so both layouts
(and a mix of them) are read alike. Every byte is checked against the
manifest's SHA-256 wherever it comes from.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any, Optional

from rlif_data.registry import checksums, lineage_records
from rlif_data.registry.objects import OBJECTS, object_rel
from rlif_data.registry.store import RegistryError, UnknownDatasetError
from rlif_data.registry.versions import Ref, Version, check_name, check_tag, parse_ref

# A remote's tags.json, MANIFEST.json or lineage record larger than this is not
# one push wrote (a manifest takes about 150 bytes per file).
MAX_JSON_BYTES = 64 << 20


class RemoteError(RegistryError):
    """The remote could not be read or written; local data is unchanged."""


def open_fs(url: str):
    """(fsspec filesystem, root path) of a remote URL.

    Raises:
      RemoteError: an unknown scheme or a missing fsspec backend.
    """
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise RemoteError(f"cannot open remote {url!r}: {exc} (gs:// needs `pip install "
                          "rlif-data[gcs]`, s3:// needs `pip install rlif-data[s3]`)") from None
    return fs, root.rstrip("/")


def join(*parts: str) -> str:
    """Join remote path parts (always '/')."""
    return posixpath.join(*parts)


def object_path(root: str, sha256: str) -> str:
    """Where the object `sha256` lives on a remote."""
    return join(root, OBJECTS, object_rel(sha256))


def version_path(root: str, name: str, version: Version | str) -> str:
    """A version's directory on a remote."""
    return join(root, "datasets", name, str(version))


def read_json(fs, path: str) -> Optional[Any]:
    """A small JSON file of the remote, or None if it is absent.

    Raises:
      RemoteError: larger than `MAX_JSON_BYTES`, or not JSON.
    """
    try:
        with fs.open(path, "rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_JSON_BYTES:
        raise RemoteError(f"{path}: larger than {MAX_JSON_BYTES} bytes; not written by rlif-data")
    try:
        return json.loads(data.decode())
    except ValueError as exc:
        raise RemoteError(f"{path}: not valid JSON ({exc})") from None


def write_json(fs, path: str, data: dict) -> None:
    """Write a JSON file of the remote under a temporary name, then move it into place."""
    tmp = f"{path}.tmp"
    with fs.open(tmp, "wb") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True).encode())
    fs.mv(tmp, path)


def check_remote_tags(data: Any, where: str) -> dict[str, str]:
    """A remote ``tags.json`` checked entry by entry: valid tag -> valid version.

    Args:
      data: the parsed JSON (None when the remote has no tags file).
      where: its URL, for the message.

    Returns:
      ``{tag: version}``.

    Raises:
      RemoteError: not an object, an invalid tag name or an invalid version.
    """
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RemoteError(f"{where}: not a {{tag: version}} object")
    for tag, version in data.items():
        try:
            check_tag(tag)
            Version.parse(version if isinstance(version, str) else "")
        except ValueError as exc:
            raise RemoteError(f"{where}: bad entry {tag!r}: {version!r} ({exc})") from None
    return dict(data)


def check_remote_manifest(manifest: Any, where: str, name: str, version: Version) -> dict:
    """A remote version's manifest, checked before any byte of the version is written.

    Args:
      manifest: the parsed MANIFEST.json.
      where: its URL, for the message.
      name, version: what the pull asked for; the manifest must say the same.

    Returns:
      `manifest`.

    Raises:
      UnsafePathError: a file name that would land outside the version.
      ManifestError: malformed structure.
      RemoteError: it names another dataset or version, or its content digest
        does not match its file list.
    """
    checksums.check_manifest(manifest, where)
    if (manifest.get("name"), manifest.get("version")) != (name, str(version)):
        raise RemoteError(f"{where} names {manifest.get('name')!r}:{manifest.get('version')!r}, "
                          f"not {name}:{version}; the remote is damaged or hostile")
    if checksums.content_digest(manifest["files"]) != manifest.get("content_sha256"):
        raise RemoteError(f"{where}: the content digest does not match its file list")
    return manifest


def remote_tags(url: str, name: str) -> dict[str, str]:
    """{tag: version} of `name` on the remote."""
    fs, root = open_fs(url)
    path = join(root, "datasets", name, "tags.json")
    return check_remote_tags(read_json(fs, path), path)


def remote_versions(url: str, name: str) -> list[Version]:
    """Complete versions (with a manifest) of `name` on the remote."""
    fs, root = open_fs(url)
    base = join(root, "datasets", name)
    try:
        entries = fs.ls(base, detail=False)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        try:
            version = Version.parse(posixpath.basename(entry.rstrip("/")))
        except ValueError:
            continue
        if fs.exists(join(base, str(version), checksums.MANIFEST)):
            out.append(version)
    return sorted(out)


def remote_names(url: str) -> list[str]:
    """Dataset names on the remote (entries of ``datasets/`` that are valid names)."""
    fs, root = open_fs(url)
    try:
        entries = fs.ls(join(root, "datasets"), detail=False)
    except FileNotFoundError:
        return []
    names = []
    for entry in entries:
        try:
            names.append(check_name(posixpath.basename(entry.rstrip("/"))))
        except ValueError:
            continue
    return sorted(names)


def list_remote(url: str) -> list[dict[str, Any]]:
    """Every complete version on a remote with its tags, size and publisher; nothing is pulled.

    Returns:
      One dict per version: ``name, version, tags, size, files, created,
      published_by, signed`` (ascending by name, then version).

    Raises:
      RemoteError: the remote cannot be read, or holds a malformed manifest or tags file.
    """
    fs, root = open_fs(url)
    out = []
    try:
        for name in remote_names(url):
            tags = remote_tags(url, name)
            for version in remote_versions(url, name):
                where = join(version_path(root, name, version), checksums.MANIFEST)
                manifest = check_remote_manifest(read_json(fs, where), where, name, version)
                out.append({
                    "name": name, "version": str(version),
                    "tags": sorted(t for t, v in tags.items() if v == str(version)),
                    "size": sum(f["size"] for f in manifest["files"].values()),
                    "files": len(manifest["files"]), "created": manifest.get("created"),
                    "published_by": manifest.get("published_by"),
                    "signed": "signature" in manifest})
    except OSError as exc:
        raise RemoteError(f"cannot list {url}: {exc}") from None
    return out


def resolve_remote(url: str, ref: str | Ref) -> tuple[str, Version]:
    """(name, version) a reference names on the remote.

    Raises:
      UnknownDatasetError: not on the remote (the message lists what is).
    """
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    versions = remote_versions(url, ref.name)
    if ref.version is not None:
        if ref.version not in versions:
            raise UnknownDatasetError(f"{ref} is not on {url}; versions there: "
                                      f"{', '.join(map(str, versions)) or 'none'}")
        return ref.name, ref.version
    tags = remote_tags(url, ref.name)
    if ref.tag not in tags:
        raise UnknownDatasetError(f"{ref} is not a tag on {url}; tags there: "
                                  f"{', '.join(sorted(tags)) or 'none'}")
    version = Version.parse(tags[ref.tag])
    if version not in versions:
        raise UnknownDatasetError(f"{ref} on {url} points at {version}, which is incomplete "
                                  "or missing there")
    return ref.name, version


def legacy_files(fs, root: str, name: str, version: Version) -> set[str]:
    """Files a version holds in the older layout (beside its manifest on the remote)."""
    base = version_path(root, name, version)
    try:
        found = fs.find(base)
    except FileNotFoundError:
        return set()
    prefix = base.rstrip("/") + "/"
    out = set()
    for path in found:
        path = path if path.startswith("/") or not prefix.startswith("/") else "/" + path
        if path.startswith(prefix):
            rel = path[len(prefix):]
            if rel != checksums.MANIFEST:
                out.add(rel)
    return out


def read_remote_record(fs, root: str, name: str, version: str,
                       expected_content: Optional[str]) -> Optional[dict[str, Any]]:
    """An ancestor's lineage record from the remote, checked; None if the remote has none.

    A record is taken from ``lineage/`` or, for a version pushed whole by an
    older release, built from its manifest and metadata.json.

    Raises:
      LineageRecordError / ManifestError / RemoteError: a record that does
        not check (see `lineage_records.check_record`).
    """
    path = join(root, lineage_records.record_rel(name, version))
    data = read_json(fs, path)
    if data is None:
        where = join(version_path(root, name, version), checksums.MANIFEST)
        manifest = read_json(fs, where)
        if manifest is None:
            return None
        checksums.check_manifest(manifest, where)
        data = lineage_records.make_record(
            manifest, _remote_metadata(fs, version_path(root, name, version), root, manifest))
        path = where
    return lineage_records.check_record(data, path, name, version, expected_content)


def _remote_metadata(fs, base: str, root: str, manifest: dict[str, Any]) -> Optional[str]:
    """The metadata.json text of a remote version (object first, then the older layout)."""
    from rlif_data import schema as sc

    entry = manifest["files"].get(sc.METADATA_FILE)
    if entry is None or entry["size"] > lineage_records.MAX_METADATA_CHARS:
        return None
    candidates = [object_path(root, entry["sha256"]), join(base, sc.METADATA_FILE)]
    for path in candidates:
        try:
            with fs.open(path, "rb") as f:
                return f.read(lineage_records.MAX_METADATA_CHARS + 1).decode("utf-8", "replace")
        except FileNotFoundError:
            continue
    return None
