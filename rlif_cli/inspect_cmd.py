"""`rlif-data inspect`: what a recording holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from rlif_cli.common import console, user_errors


def inspect(
    directory: Path = typer.Argument(..., help="Recording directory."),
    plot: Optional[Path] = typer.Option(None, help="Write the intervention timeline as a PNG."),
    episodes: int = typer.Option(10, help="Rows of the per-episode table."),
):
    """Episodes, steps, intervention rate, takeovers, returns and schema of a recording."""
    from rlif_data.inspection import summarize
    from rlif_data.recording.reader import read_episodes
    from rlif_data.recording.store import read_schema

    with user_errors():
        schema = read_schema(str(directory))
        data = read_episodes(str(directory))
    s = summarize(data)
    console.print(f"[bold]{directory}[/]")
    console.print(f"schema: {schema.describe()}", highlight=False)
    console.print(
        f"episodes: {s.episodes}   transitions: {s.transitions}   "
        f"intervention rate: {s.intervention_rate:.1%}   takeovers/episode: "
        f"{s.takeovers_per_episode:.2f}   mean return: {s.mean_return:.1f}   "
        f"terminated: {s.terminated_episodes}/{s.episodes}"
    )
    console.print(f"intervention models: {s.intervention_models}")
    table = Table("steps", "intervened", "rate", "takeovers", "return", "end")
    table.add_column("episode", no_wrap=True)
    for row in s.per_episode[:episodes]:
        table.add_row(str(row["transitions"]), str(row["intervened_steps"]),
                      f"{row['intervention_rate']:.0%}", str(row["takeovers"]),
                      f"{row['return']:.1f}", "terminal" if row["terminated"] else "truncated",
                      row["episode_id"])
    console.print(table)
    if plot is not None:
        from rlif_data.plots import plot_intervention_timeline

        plot_intervention_timeline(data, str(plot), title=f"{directory}: who was in control")
        console.print(f"timeline written to {plot}")


def register(app: typer.Typer) -> None:
    """Add `inspect` to the CLI."""
    app.command()(inspect)
