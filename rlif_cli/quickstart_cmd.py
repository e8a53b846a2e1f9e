"""`rlif-data quickstart`: the main job on embedded defaults."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import typer

from rlif_cli.common import console, user_errors


def quickstart(
    workdir: Path = typer.Option(Path("quickstart_data"), help="Where everything is written."),
    episodes: int = typer.Option(20, min=1, help="Episodes to record."),
    train_steps: int = typer.Option(2000, min=1, help="RLPD updates in the train stage."),
    round_episodes: int = typer.Option(10, min=1, help="Episodes of the trained policy's round."),
    fresh: bool = typer.Option(False, help="Delete the quickstart recording first."),
):
    """The loop on embedded defaults: record, publish, relabel, train RLPD, one more round."""
    import shutil

    from rlif_data.inspection import summarize
    from rlif_data.plots import plot_intervention_timeline
    from rlif_cli.quickstart import QuickstartConfig, registry_root, run_quickstart
    from rlif_data.recording.reader import read_episodes
    from trainers.rounds import format_table

    config = QuickstartConfig(workdir=str(workdir))
    config = dataclasses.replace(config,
                                 record=dataclasses.replace(config.record, episodes=episodes),
                                 train_steps=train_steps, round_episodes=round_episodes)
    rec_dir = os.path.join(config.workdir, config.record.out)
    if fresh and os.path.isdir(rec_dir):
        shutil.rmtree(rec_dir)
    console.print(f"[bold]quickstart[/]: {config.record.episodes} {config.record.env_id} episodes, "
                  f"{config.record.intervention} interventions at {config.record.rate:.0%}, "
                  f"into {rec_dir}")
    with user_errors():
        results = run_quickstart(config)
    rec = results["recording"]
    recorded = read_episodes(rec.directory)
    s = summarize(recorded)
    plot = os.path.join(config.workdir, "intervention_timeline.png")
    plot_intervention_timeline(recorded[-20:], plot)
    console.print(
        f"recorded {len(rec.episodes)} episodes / {rec.transitions} transitions "
        f"(intervention rate {rec.intervention_rate:.1%}) in {rec.seconds:.1f} s\n"
        f"{rec.directory} holds {s.episodes} episodes, {s.transitions} transitions, "
        f"{s.takeovers_per_episode:.1f} takeovers/episode, mean return {s.mean_return:.1f}\n"
        f"published {results['raw_version']} (raw logs) and {results['dataset']} "
        f"({config.relabel_view} RLIF rewards), tagged latest, in {registry_root(config)}\n"
        f"timeline: {plot}\n"
        f"trained RLPD for {config.train_steps} updates -> {results['policy']}; one more round "
        f"with it -> {results['round_raw']} and {results['final_dataset']}"
    )
    console.print(format_table(results["rounds"]), highlight=False)
    console.print(
        f"next: rlif-data lineage quickstart@latest --root {registry_root(config)}\n"
        f"      rlif-data rounds --help   (the loop, round after round)"
    )


def register(app: typer.Typer) -> None:
    """Add `quickstart` to the CLI."""
    app.command()(quickstart)
