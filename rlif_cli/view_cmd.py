"""`rlif-data view`: a static HTML report of a dataset, opened from the disk (no server)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rlif_cli.common import ROOT_HELP, console, user_errors


def view(
    dataset: str = typer.Argument(..., metavar="DATASET",
                                  help="Recording or dataset directory, name@tag or name:version."),
    out: Path = typer.Option(..., "--out", help="Report folder: new, empty, or an earlier "
                             "report (replaced only once the new one is complete)."),
    per_page: int = typer.Option(200, help="Episodes per page of the episode list."),
    root: Optional[Path] = typer.Option(None, help=ROOT_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Write an HTML report: the episode list (return, length, intervention rate; paginated)
    and one page per episode with scrubbable camera frames, the intervention timeline, rewards
    (-1 marked) and actions. Open OUT/index.html in a browser."""
    from tqdm.auto import tqdm

    from rlif_data.report.writer import view_dataset

    with user_errors():
        with tqdm(desc="view", unit="ep", disable=quiet) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = view_dataset(dataset, str(out), root=str(root) if root else None,
                                  per_page=per_page, progress=progress)
    console.print(f"wrote {result.episodes} episode pages, {result.index_pages} list page(s) and "
                  f"{result.frames} frames in {result.seconds:.1f} s; open {result.index}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add `view` to the CLI."""
    app.command()(view)
