"""`rlif-data convert`: a dataset as a LeRobotDataset or a Minari dataset, for other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rlif_cli.common import ROOT_HELP, console, user_errors


def convert(
    dataset: str = typer.Argument(..., metavar="DATASET",
                                  help="Recording or dataset directory, name@tag or name:version."),
    to: str = typer.Option(..., "--to", metavar="lerobot|minari",
                           help="Target format: lerobot (LeRobotDataset v3.0, camera frames as "
                           "lossless PNG images; steps/infos left out) or minari (HDF5; camera "
                           "frames as lossless PNG in Minari's image layout, bit-exact through "
                           "minari.load_dataset; steps/infos kept)."),
    out: Path = typer.Option(..., "--out", help="Output directory (must not exist)."),
    fps: Optional[int] = typer.Option(None, help="LeRobot frame rate (default: from the step "
                                      "timestamps, else 10)."),
    dataset_id: Optional[str] = typer.Option(None, help="Minari dataset id, "
                                             "(namespace/)name-vN (default rlif/<name>-v0)."),
    root: Optional[Path] = typer.Option(None, help=ROOT_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Convert a dataset for LeRobot or Minari, keeping intervention fields and episode metadata.

    LeRobot: one frame per RLDS step (the final frame, marked rlds.is_last, holds the last
    observation), intervention fields as complementary_info.*, episode metadata as rlif/*
    columns of meta/episodes. Minari: intervention fields as per-step infos, metadata as
    rlif/* episode attributes, cameras as Box(0, 255, (H, W, 3), uint8) entries of a Dict
    observation space (frames PNG-encoded: Minari's own writer would store lossy JPEG).
    `rlif-data ingest-lerobot` and `ingest-minari` read them back.
    """
    from tqdm.auto import tqdm

    from rlif_data.convert.export import convert_dataset

    with user_errors():
        with tqdm(desc=f"convert to {to}", unit="ep", disable=quiet) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = convert_dataset(dataset, to, str(out), root=str(root) if root else None,
                                     fps=fps, dataset_id=dataset_id, progress=progress)
    console.print(f"wrote {result.episodes} episodes ({result.steps} steps) as {result.target} "
                  f"to {result.out} in {result.seconds:.1f} s: {result.detail}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `convert` to the CLI."""
    app.command()(convert)
