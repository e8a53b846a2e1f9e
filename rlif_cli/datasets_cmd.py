"""Registry commands: publish, ls, show, tag, untag, lineage, verify, push, pull, export, import,
gc, upgrade, keygen."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.tree import Tree

from rlif_cli.common import ROOT_HELP, console, user_errors
from rlif_data import schema as sc


def _registry(root: Optional[Path]):
    from rlif_data.registry.store import Registry

    return Registry(str(root) if root else None)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def publish_tags(tags: list[str], latest: bool) -> tuple[str, ...]:
    """The tags a publish sets: those given, plus `latest` unless told not to. Pure."""
    from rlif_data.registry.versions import LATEST

    extra = (LATEST,) if latest and LATEST not in tags else ()
    return tuple(dict.fromkeys(tags)) + extra


def publish(
    source: Path = typer.Argument(..., help="Dataset directory (pipeline output or recording)."),
    name: str = typer.Option(..., help="Dataset name."),
    version: Optional[str] = typer.Option(None, help="Exact version (default: bump the highest)."),
    bump: str = typer.Option("minor", help="major, minor or patch (when --version is not given)."),
    tag: list[str] = typer.Option([], help="Tags to point at the new version (repeatable)."),
    latest: bool = typer.Option(True, "--latest/--no-latest",
                                help="Also move the `latest` tag to the new version."),
    sign_key: Optional[Path] = typer.Option(None, help="Sign the manifest with this ed25519 "
                                            "private key (PEM; `rlif-data keygen` makes one)."),
    root: Optional[Path] = typer.Option(None, help=ROOT_HELP),
):
    """Publish a dataset directory as a new immutable version (only new files are stored)."""
    tags = publish_tags(tag, latest)
    with user_errors():
        info = _registry(root).publish(str(source), name, version, bump, tags,
                                       sign_key=str(sign_key) if sign_key else None)
    signed = ", signed" if "signature" in info.manifest else ""
    console.print(f"published {info.ref} ({_size(info.size)}, {len(info.manifest['files'])} files"
                  f"{signed}) tags: {', '.join(info.tags) or 'none'}")


def ls(remote: Optional[str] = typer.Argument(None, help="A remote (fsspec URL): list its "
                                              "versions and tags without pulling anything."),
       root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """List every dataset version with its tags and size (here, or on REMOTE)."""
    if remote is not None:
        return _ls_remote(remote)
    with user_errors():
        reg = _registry(root)
        infos = reg.list()
    if not infos:
        console.print(f"{reg.root}: no datasets")
        return
    table = Table("dataset", "version", "tags", "size", "files", "created")
    for info in infos:
        table.add_row(info.name, str(info.version), ", ".join(info.tags), _size(info.size),
                      str(len(info.manifest["files"])), str(info.manifest.get("created", ""))[:19])
    console.print(table)


def _ls_remote(url: str) -> None:
    from rlif_data.registry import remote as remote_lib

    with user_errors():
        entries = remote_lib.list_remote(url)
    if not entries:
        console.print(f"{url}: no datasets")
        return
    table = Table("dataset", "version", "tags", "size", "files", "created", "by", "signed")
    for e in entries:
        table.add_row(e["name"], e["version"], ", ".join(e["tags"]), _size(e["size"]),
                      str(e["files"]), str(e["created"] or "")[:19], str(e["published_by"] or ""),
                      "yes" if e["signed"] else "")
    console.print(table)


def show(ref: str = typer.Argument(..., help="name@tag, name:version or name."),
         root: Optional[Path] = typer.Option(None, help=ROOT_HELP),
         json_out: bool = typer.Option(False, "--json", help="Print the version's summary as "
                                       "one JSON object (ref, tags, counts, view, episodes "
                                       "marked invalid) instead.")):
    """Sizes, episodes, steps, intervention rate, view, invalid episodes, lineage summary and
    schema of a version."""
    from rlif_data import invalid
    from rlif_data.inspection import (describe_invalid, describe_mask, invalid_summary,
                                      summarize, summary_json)
    from rlif_data.lineage import dataset_view
    from rlif_data.recording.reader import read_episodes

    with user_errors():
        reg = _registry(root)
        info = reg.info(ref)
        path = reg.path(ref)
        data = read_episodes(path)
        stats = summarize(data)
        marks = invalid_summary([str(e.get(sc.EPISODE_ID, "")) for e in data],
                                invalid.read_marks(path))
        view = dataset_view(path)
        tree = reg.lineage(ref)
        with open(os.path.join(path, sc.METADATA_FILE)) as f:
            schema = json.load(f).get(sc.SCHEMA_KEY)
    if json_out:
        print(json.dumps({"ref": info.ref, "tags": list(info.tags), "size": info.size,
                          "path": path, **summary_json(stats, view, marks)}, sort_keys=True))
        return
    console.print(f"[bold]{info.ref}[/]  tags: {', '.join(info.tags) or 'none'}  "
                  f"size: {_size(info.size)}  created: {info.manifest.get('created')}  "
                  f"by: {info.manifest.get('published_by')}  code: "
                  f"{info.manifest.get('code_version', 'unknown')}"
                  + ("  signed" if "signature" in info.manifest else ""))
    console.print(f"episodes: {stats.episodes}  steps: {stats.transitions}  intervention rate: "
                  f"{stats.intervention_rate:.1%}  takeovers/episode: "
                  f"{stats.takeovers_per_episode:.2f}  mean return: {stats.mean_return:.1f}")
    console.print(describe_mask(stats, view), highlight=False)
    console.print(describe_invalid(marks), highlight=False, markup=False)
    console.print(f"lineage: {tree['job']} {tree['params'] or ''} <- "
                  + ", ".join(i.get("ref") or i["raw"].get("path", "?") for i in tree["inputs"])
                  if tree["inputs"] else f"lineage: {tree['job']} (no recorded inputs)")
    console.print(f"schema: {json.dumps(schema, sort_keys=True)}", highlight=False)
    console.print(f"path: {path}")


def tag(ref: str = typer.Argument(...), tag_name: str = typer.Argument(..., metavar="TAG"),
        root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Point TAG at the version REF names (moves it if it exists; history is kept)."""
    with user_errors():
        reg = _registry(root)
        version = reg.tag(ref, tag_name)
        name = reg.resolve(ref)[0]
    console.print(f"{name}@{tag_name} -> {name}:{version}")


def untag(ref: str = typer.Argument(..., help="name@tag to remove."),
          root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Remove a tag (the version stays)."""
    from rlif_data.registry.versions import parse_ref

    with user_errors():
        parsed = parse_ref(ref)
        if parsed.tag is None:
            raise ValueError(f"{ref}: give name@tag")
        _registry(root).untag(parsed.name, parsed.tag)
    console.print(f"removed {ref}")


def lineage(ref: str = typer.Argument(...), root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Print the lineage tree of a version back to raw logs."""
    with user_errors():
        node = _registry(root).lineage(ref)

    def add(branch: Tree, n: dict) -> None:
        for item in n["inputs"]:
            if "ref" in item:
                add(branch.add(_label(item)), item)
            else:
                raw = item["raw"]
                branch.add(f"raw: {raw.get('path', raw)}"
                           + (f"  ({raw['episodes']} episodes)" if "episodes" in raw else "")
                           + (f"  sha256 {raw['sha256'][:12]}" if "sha256" in raw else ""))

    root_tree = Tree(_label(node))
    add(root_tree, node)
    console.print(root_tree)


def _label(n: dict) -> str:
    params = json.dumps(n["params"], sort_keys=True) if n["params"] else ""
    digest = f"  sha256 {n['content_sha256'][:12]}" if n.get("content_sha256") else ""
    where = ""
    if n.get("missing"):
        where = "  [yellow](not here, no record: pull it from the remote that has it)[/]"
    elif n.get("local") is False:
        where = (f"  [cyan](not pulled: rlif-data pull {n['ref']} "
                 f"{n.get('remote') or 'REMOTE'})[/]")
    if n.get("mismatch"):
        where += f"  [red](its child recorded content {n['mismatch'][:12]})[/]"
    return (f"[bold]{n['ref']}[/]  {n['job']} {params}  {str(n.get('created') or '')[:19]}"
            f"{digest}{where}")


def verify(ref: str = typer.Argument(...), quick: bool = typer.Option(False, help="Sizes only."),
           deep: bool = typer.Option(False, help="Also parse every record of every shard (finds "
                                     "damage that happened before publishing)."),
           root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Check a version's files against the checksums recorded at publish."""
    if quick and deep:
        raise typer.BadParameter("--quick and --deep exclude each other")
    with user_errors():
        info = _registry(root).verify(ref, full=not quick, deep=deep)
    how = "sizes" if quick else "SHA-256" + (" + every record parsed" if deep else "")
    console.print(f"{info.ref}: {len(info.manifest['files'])} files OK ({how})")


def push(ref: str = typer.Argument(...), remote: str = typer.Argument(..., help="fsspec URL."),
         root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Upload a version to a remote root (local path, file://, gs://, s3://)."""
    from rlif_data.registry import remote as remote_lib

    with user_errors():
        out = remote_lib.push(_registry(root), ref, remote)
    what = ("already there" if out["skipped"] else
            f"{out['uploaded_files']} new objects uploaded ({_size(out['uploaded_bytes'])})")
    console.print(f"pushed {out['ref']} to {remote}: {what}; tags {out['tags'] or 'none'}")


def pull(ref: str = typer.Argument(...), remote: str = typer.Argument(..., help="fsspec URL."),
         trust: list[str] = typer.Option([], help="Accept only a version signed by this "
                                         "ed25519 public key (a .pub file or 64 hex digits; "
                                         "repeatable)."),
         root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Download a version from a remote root: only missing files, resumable, checksums verified."""
    from tqdm.auto import tqdm

    from rlif_data.registry import remote as remote_lib
    from rlif_data.registry.signing import load_public_key

    with user_errors():
        keys = [load_public_key(k) for k in trust] if trust else None
    with user_errors(), tqdm(unit="B", unit_scale=True, desc="pull") as bar:
        info = remote_lib.pull(_registry(root), ref, remote, progress=bar.update, trust=keys)
    console.print(f"pulled {info.ref} ({_size(info.size)}); tags {', '.join(info.tags) or 'none'}")


def export(ref: str = typer.Argument(...), out: Path = typer.Argument(..., help="Archive path."),
           root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Write a version as one archive file (for USB sticks, email)."""
    from rlif_data.registry import archive

    with user_errors():
        path = archive.export_version(_registry(root), ref, str(out))
    console.print(f"exported {ref} to {path} ({_size(os.path.getsize(path))})")


def import_(archive_path: Path = typer.Argument(..., metavar="ARCHIVE"),
            tag: list[str] = typer.Option([], help="Tags to set on the imported version."),
            root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Import a version from an archive (safe extraction, checksums verified)."""
    from rlif_data.registry import archive

    with user_errors():
        info = archive.import_archive(_registry(root), str(archive_path), tags=tuple(tag))
    console.print(f"imported {info.ref}; tags {', '.join(info.tags) or 'none'}")


def gc(root: Optional[Path] = typer.Option(None, help=ROOT_HELP),
       jobs: list[Path] = typer.Option([], help="Also remove the staging directories that "
                                        "killed jobs left in this output folder (repeatable)."),
       grace: float = typer.Option(3600.0, help="Keep unreferenced objects younger than this "
                                   "many seconds.")):
    """Remove what crashed writers left behind, and objects no version uses."""
    from pipelines.output import remove_stale_staging

    if grace < 0:
        raise typer.BadParameter("--grace must be 0 or more seconds")
    with user_errors():
        report = _registry(root).gc(grace_s=grace)
        removed = list(report)
        for folder in jobs:
            if not folder.is_dir():
                raise ValueError(f"--jobs {folder}: not a directory; give the folder that "
                                 "holds the jobs' --out directories")
            removed += remove_stale_staging(str(folder))
    console.print(f"removed {len(removed)} leftover{'' if len(removed) == 1 else 's'}"
                  f" ({report.objects_removed} unreferenced objects), freed "
                  f"{_size(report.bytes_freed)}"
                  + (f"; objects not swept: {report.objects_skipped}"
                     if report.objects_skipped else "")
                  + "".join(f"\n  {path}" for path in removed))


def upgrade(root: Optional[Path] = typer.Option(None, help=ROOT_HELP)):
    """Store a registry written before objects existed once per file (versions and tags stay)."""
    with user_errors():
        report = _registry(root).upgrade()
    console.print(f"{report.versions} versions: {report.objects_added} files became objects, "
                  f"{report.files_linked} copies became links ({_size(report.bytes_freed)} "
                  "freed)" + "".join(f"\n  left as is: {p}" for p in report.damaged))


def keygen(out: Path = typer.Argument(..., help="Path prefix: writes PREFIX.key (private, "
                                      "0600) and PREFIX.pub.")):
    """Make an ed25519 key pair: sign versions (publish --sign-key), trust them (pull --trust)."""
    from rlif_data.registry.signing import generate_keypair

    with user_errors():
        fp = generate_keypair(f"{out}.key", f"{out}.pub")
    console.print(f"wrote {out}.key (keep it private) and {out}.pub (key {fp})")


def register(app: typer.Typer) -> None:
    """Add the registry commands."""
    for fn in (publish, ls, show, tag, untag, lineage, verify, push, pull, export, gc, upgrade,
               keygen):
        app.command()(fn)
    app.command(name="import")(import_)
