"""`rlif-data check`: find silent misalignments in a dataset before training does."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from rlif_cli.common import ROOT_HELP, console, err_console, user_errors

EXIT_FINDINGS = 1


def check(
    dataset: str = typer.Argument(..., metavar="DATASET",
                                  help="Recording or dataset directory, name@tag, name:version, "
                                  "or a D4RL .hdf5 file."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE",
                                            help="Also write the report as JSON to FILE "
                                            "(folders created)."),
    strict: bool = typer.Option(False, "--strict",
                                help="Warnings fail too (exit 1 on any finding)."),
    control_hz: Optional[float] = typer.Option(
        None, "--control-hz", help="Control rate the data was recorded at; enables the missed "
        "control deadline check (gaps over 1 + --deadline-slack periods)."),
    deadline_slack: float = typer.Option(0.5, help="Allowed lateness, in control periods."),
    time_limit: Optional[int] = typer.Option(
        None, help="Episodes' time limit in steps (default: the registered env's, and any "
        "length at which the dataset truncates episodes)."),
    rows: int = typer.Option(50, help="Findings shown in the table (all are in --json)."),
    root: Optional[Path] = typer.Option(None, help=ROOT_HELP),
    workers: int = typer.Option(0, help="Processes that check a recording's episodes, this one "
                                "included: 1 for one process, 0 to decide by its size and "
                                "the idle cores."),
):
    """Check a dataset: structure, NaN/inf, discounts, truncations stored as terminations,
    RLIF rewards against the flags, action bounds, off-by-one alignments, constant or
    duplicated episodes, timestamps.

    Each finding names the episode and step. Exit status: 0 when no error is found
    (warnings are printed), 1 when there are errors (with --strict: any finding),
    2 on bad input (missing, empty or unreadable dataset).
    """
    from rlif_data.checks import check_dataset, write_report

    with user_errors():
        report = check_dataset(dataset, control_hz=control_hz, deadline_slack=deadline_slack,
                               time_limit=time_limit, root=str(root) if root else None,
                               workers=workers)
        if json_out is not None:
            write_report(report, str(json_out))
    if report.findings:
        table = Table("episode", "step", "severity", "kind", "message", "episode id",
                      title=f"findings ({len(report.findings)})")
        for finding in report.findings[:rows]:
            style = "red" if finding.severity == "error" else "yellow"
            table.add_row("-" if finding.episode < 0 else str(finding.episode),
                          "-" if finding.step is None else str(finding.step),
                          f"[{style}]{finding.severity}[/]", finding.kind,
                          escape(finding.message), escape(finding.episode_id))
        console.print(table)
        if len(report.findings) > rows:
            console.print(f"... {len(report.findings) - rows} more finding(s)"
                          + (f" in {json_out}" if json_out else " (--rows, --json FILE)"))
    for note in report.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    console.print(escape(report.summary()) + f" in {report.seconds:.1f} s", highlight=False)
    if json_out is not None:
        console.print(f"report written to {json_out}", highlight=False)
    if report.failed(strict):
        err_console.print("check failed" + (" (--strict: warnings count)" if strict and
                                            not report.errors else ""), highlight=False)
        raise typer.Exit(code=EXIT_FINDINGS)


def register(app: typer.Typer) -> None:
    """Add `check` to the CLI."""
    app.command()(check)
