"""`rlif-data download`: fetch a catalogued D4RL file (resumable, checked), then ingest it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from rlif_cli.common import console, user_errors


def download(
    name: str = typer.Argument(..., metavar="D4RL_NAME", help="A catalogued D4RL dataset, "
                               "e.g. hopper-medium-v2."),
    out: Optional[Path] = typer.Option(None, help="Dataset directory to ingest into (default "
                                       "./d4rl-NAME; must not exist)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Where the .hdf5 file is kept "
                                             "(default $RLIF_DATA_ROOT/downloads or "
                                             "~/.rlif_data/downloads)."),
    mirror: Optional[str] = typer.Option(None, help="Base address of a copy of the D4RL files "
                                         "(same file names) instead of the catalogue's host."),
    sha256: Optional[str] = typer.Option(None, help="Expected SHA-256 of the file."),
    size: Optional[int] = typer.Option(None, help="Expected size of the file in bytes."),
    ingest: bool = typer.Option(True, "--ingest/--no-ingest", help="Ingest the file after "
                                "the download (pipelines.ingest_d4rl)."),
    drop_infos: bool = typer.Option(False, "--drop-infos", help="Ingest without the file's "
                                    "infos/* columns (qpos, qvel, ...), which are otherwise "
                                    "kept bit-exact as step fields steps/infos/<name>."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Download a D4RL file from the catalogue's address with a progress bar, check its size
    and SHA-256, resume an interrupted download (run it again), then ingest it as RLDS
    episodes. Exit 2 on a failed or mismatching download (partial bytes are kept to resume;
    mismatching bytes are deleted)."""
    from tqdm.auto import tqdm

    from rlif_data.registry.store import default_root
    from rlif_data.sources.download import d4rl_source
    from rlif_data.sources.download import download as fetch

    with user_errors():
        source = d4rl_source(name, mirror=mirror, sha256=sha256, size=size)
        out_dir = str(out) if out is not None else f"d4rl-{source.name}"
        if ingest and os.path.exists(out_dir):
            raise ValueError(f"{out_dir} exists; give a new --out (or --no-ingest)")
        folder = str(cache_dir) if cache_dir else os.path.join(default_root(), "downloads")
        dest = os.path.join(folder, source.file_name)
        console.print(f"downloading {source.name} from {source.url}", highlight=False)
        with tqdm(desc=source.file_name, unit="B", unit_scale=True, unit_divisor=1024,
                  disable=quiet) as bar:
            def progress(done: int, total: Optional[int]) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = fetch(source.url, dest, expected_size=source.bytes,
                           expected_sha256=source.sha256, progress=progress)
    how = ("already there" if result.reused else
           f"resumed from byte {result.resumed_from}" if result.resumed_from else "downloaded")
    check = ("matches the expected SHA-256" if result.verified else
             "no published SHA-256 to compare with (give --sha256 to check)")
    console.print(f"{result.path}: {result.bytes} bytes, {how}; SHA-256 {result.sha256} {check}",
                  highlight=False)
    if not ingest:
        return
    from pipelines import ingest_d4rl, output

    with user_errors():
        path = ingest_d4rl.run(result.path, out_dir, env_id=source.env_id,
                               beam_args=output.default_beam_args(), drop_infos=drop_infos)
    console.print(f"ingested {source.name} -> {path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `download` to the CLI."""
    app.command()(download)
