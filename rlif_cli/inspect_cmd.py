"""`rlif-data inspect`: what a recording or dataset holds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
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
    json_out: bool = typer.Option(False, "--json", help="Print the summary as one JSON object "
                                  "(counts, view, episodes marked invalid) instead."),
):
    """Episodes, steps, intervention rate, takeovers, returns, view, invalid episodes and schema
    of a dataset."""
    from rlif_data import invalid
    from rlif_data import schema as sc
    from rlif_data.inspection import (describe_invalid, describe_mask, invalid_summary,
                                      summarize, summary_json)
    from rlif_data.lineage import dataset_view
    from rlif_data.recording.reader import read_episodes
    from rlif_data.recording.store import read_schema

    with user_errors():
        directory = dataset_dir(dataset, root)
        schema = read_schema(directory)
        data = read_episodes(directory)
        view = dataset_view(directory)
        marks = invalid_summary([str(e.get(sc.EPISODE_ID, "")) for e in data],
                                invalid.read_marks(directory))
    s = summarize(data)
    if json_out:
        print(json.dumps(summary_json(s, view, marks), sort_keys=True))
        return
    reasons = {m["index"]: m["reason"] for m in marks["marks"]}
    console.print(f"[bold]{dataset}[/]" + (f"  ({directory})" if directory != dataset else ""))
    console.print(f"schema: {schema.describe()}", highlight=False)
    console.print(describe_mask(s, view), highlight=False)
    console.print(describe_invalid(marks), highlight=False, markup=False)
    console.print(
        f"episodes: {s.episodes}   transitions: {s.transitions}   "
        f"intervention rate: {s.intervention_rate:.1%}   takeovers/episode: "
        f"{s.takeovers_per_episode:.2f}   mean return: {s.mean_return:.1f}   "
        f"terminated: {s.terminated_episodes}/{s.episodes}"
    )
    console.print(f"intervention models: {s.intervention_models}")
    masked = s.included_transitions is not None
    table = Table("steps", *(["kept"] if masked else []), "intervened", "rate", "takeovers",
                  "return", "end", *(["invalid"] if reasons else []))
    table.add_column("episode", no_wrap=True)
    for index, row in enumerate(s.per_episode[:episodes]):
        table.add_row(str(row["transitions"]), *([str(row["included"])] if masked else []),
                      str(row["intervened_steps"]), f"{row['intervention_rate']:.0%}",
                      str(row["takeovers"]), f"{row['return']:.1f}",
                      "terminal" if row["terminated"] else "truncated",
                      *([escape(reasons.get(index, ""))] if reasons else []),
                      escape(row["episode_id"]))
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
