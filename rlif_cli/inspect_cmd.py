"""`rlif-data inspect`: what a recording or dataset holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from rlif_cli.common import ROOT_HELP, console, dataset_dir, user_errors


def inspect(
    dataset: str = typer.Argument(..., metavar="DATASET",
                                  help="Recording or dataset directory, name@tag or name:version."),
    plot: Optional[Path] = typer.Option(None, help="Write the intervention timeline as a PNG: "
                                        "who acted at each step, a view's -1 rewards and "
                                        "excluded steps; at most 40 episodes, evenly sampled "
                                        "(missing folders are created)."),
    episodes: int = typer.Option(10, help="Rows of the per-episode table."),
    root: Optional[Path] = typer.Option(None, help=ROOT_HELP),
):
    """Episodes, steps, intervention rate, takeovers, returns, view and schema of a dataset."""
    from rlif_data.inspection import describe_mask, summarize
    from rlif_data.lineage import dataset_view
    from rlif_data.recording.reader import read_episodes
    from rlif_data.recording.store import read_schema

    with user_errors():
        directory = dataset_dir(dataset, root)
        schema = read_schema(directory)
        data = read_episodes(directory)
        view = dataset_view(directory)
    s = summarize(data)
    console.print(f"[bold]{dataset}[/]" + (f"  ({directory})" if directory != dataset else ""))
    console.print(f"schema: {schema.describe()}", highlight=False)
    console.print(describe_mask(s, view), highlight=False)
    console.print(
        f"episodes: {s.episodes}   transitions: {s.transitions}   "
        f"intervention rate: {s.intervention_rate:.1%}   takeovers/episode: "
        f"{s.takeovers_per_episode:.2f}   mean return: {s.mean_return:.1f}   "
        f"terminated: {s.terminated_episodes}/{s.episodes}"
    )
    console.print(f"intervention models: {s.intervention_models}")
    masked = s.included_transitions is not None
    table = Table("steps", *(["kept"] if masked else []), "intervened", "rate", "takeovers",
                  "return", "end")
    table.add_column("episode", no_wrap=True)
    for row in s.per_episode[:episodes]:
        table.add_row(str(row["transitions"]), *([str(row["included"])] if masked else []),
                      str(row["intervened_steps"]), f"{row['intervention_rate']:.0%}",
                      str(row["takeovers"]), f"{row['return']:.1f}",
                      "terminal" if row["terminated"] else "truncated", row["episode_id"])
    console.print(table)
    if plot is not None:
        from rlif_data.plots import plot_intervention_timeline

        with user_errors():
            if plot.parent and not plot.parent.is_dir():
                os.makedirs(plot.parent)
            drawn = plot_intervention_timeline(data, str(plot),
                                               title=f"{dataset}: who was in control", view=view)
        console.print(f"timeline written to {plot} ({drawn.caption})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `inspect` to the CLI."""
    app.command()(inspect)
