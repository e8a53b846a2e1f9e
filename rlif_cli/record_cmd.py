"""`rlif-data record`, `rlif-data recover` and `rlif-data mark-invalid`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rlif_cli.common import console, headless_rendering, user_errors
from rlif_data.intervention import OFFICIAL_TAKEOVER_STEPS


def record(
    env: str = typer.Option("Hopper-v5", help="Gymnasium environment id."),
    out: Path = typer.Option(..., help="Recording directory (created, or appended to)."),
    episodes: int = typer.Option(20, min=1, help="Episodes to record."),
    intervention: str = typer.Option(
        "random", help="random (paper: k-step takeovers at --rate), random-official "
        "(official code: i.i.d. per step), value (paper: Q^ref compares learner and expert "
        "actions every step; needs --qref), value-official (decided outside 4-step "
        "takeovers), or none."),
    rate: float = typer.Option(0.5, help="Target intervention rate in [0, 1)."),
    takeover_steps: int = typer.Option(OFFICIAL_TAKEOVER_STEPS, min=1,
                                       help="Takeover length k for --intervention random."),
    learner: str = typer.Option("random", help="random, noisy-expert, a policy spec, a `train "
                                "--out` directory or a published policy (name@tag)."),
    expert: str = typer.Option("scripted", help="scripted, lqr, lqr-aggressive, lqr-cap:1.5, "
                               "lqr-cap:0.7 (pushed pendulum), or a policy as for --learner."),
    qref: Optional[str] = typer.Option(None, help="Q^ref critic for --intervention value: a "
                                       "`train --out` directory (RLPD) or a published policy."),
    alpha: float = typer.Option(0.97, help="Relative trigger Q(s,a_pi) < alpha Q(s,a_exp)."),
    delta: Optional[float] = typer.Option(None, help="Absolute trigger Q(s,a_pi) < Q(s,a_exp) - "
                                          "delta (replaces --alpha)."),
    beta: float = typer.Option(0.95, help="Intervention probability when the trigger fires."),
    root: Optional[str] = typer.Option(None, help="Registry root for policy refs (default "
                                       "$RLIF_DATA_ROOT)."),
    seed: int = typer.Option(0, help="Base seed; episode i uses seed + i."),
    max_episode_steps: Optional[int] = typer.Option(200, help="Time limit per episode."),
    round_: int = typer.Option(0, "--round", help="RLIF round number stored with episodes."),
    operator: str = typer.Option("scripted-expert", help="Expert/operator id stored with episodes."),
    camera: list[str] = typer.Option(
        [], help="Render this MuJoCo camera into the observation (repeatable; 'free' is the "
        "free camera), e.g. --camera track --camera free."),
    image_size: int = typer.Option(128, min=8, help="Camera frame size in pixels."),
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Record simulated-expert rollouts with interventions as RLDS episodes."""
    import os

    from rlif_data.recording.sim import RecordConfig, record_from_config

    if root:
        os.environ["RLIF_DATA_ROOT"] = root  # policy refs resolve in the default registry
    config = RecordConfig(
        env_id=env, out=str(out), episodes=episodes, intervention=intervention, rate=rate,
        takeover_steps=takeover_steps, learner=learner, expert=expert, seed=seed,
        max_episode_steps=max_episode_steps, round=round_, operator=operator,
        cameras=tuple(camera), image_size=image_size, qref=qref, alpha=alpha, delta=delta,
        beta=beta,
    )
    with user_errors():
        if camera:
            headless_rendering()
        summary = record_from_config(config, progress=not quiet)
    console.print(
        f"wrote {len(summary.episodes)} episodes ({summary.transitions} transitions, "
        f"intervention rate {summary.intervention_rate:.1%}) to {summary.directory} "
        f"in {summary.seconds:.1f} s; the directory now holds "
        f"{summary.total_episodes_in_directory} episodes"
    )


def recover(directory: Path = typer.Argument(..., help="Recording directory to repair.")):
    """Repair a recording whose writer was killed: drop the episode in flight, index the rest."""
    from rlif_data.recording.store import recover as recover_dir

    with user_errors():
        report = recover_dir(str(directory))
    if report.changed:
        damaged = report.damaged_shards
        rebuilt = report.rebuilt_files
        console.print(
            f"{directory}: removed {len(report.removed_temporary)} unfinished file(s), "
            f"indexed {len(report.indexed_shards)} complete episode shard(s)"
            + (f", set aside {len(damaged)} damaged shard(s) as .damaged-*" if damaged else "")
            + (f", rebuilt {', '.join(map(str, rebuilt))}" if rebuilt else "")
            + f"; {report.episodes} episodes readable"
        )
    else:
        console.print(f"{directory}: nothing to recover; {report.episodes} episodes readable")


def mark_invalid(
    directory: str = typer.Argument(..., metavar="DIR", help="Recording directory (not a "
                                    "published version: those are immutable)."),
    episode_id: str = typer.Argument(..., metavar="EPISODE_ID", help="The episode's id "
                                     "(`rlif-data inspect DIR` lists them)."),
    reason: str = typer.Option(..., help="Why the episode is invalid (at most 500 characters)."),
):
    """Mark an episode of a recording invalid after the session: it stays in the data,
    flagged in DIR/invalid_episodes.jsonl; jobs then drop or keep it (--invalid_episodes)."""
    from rlif_data import invalid

    with user_errors():
        mark = invalid.mark_episode(directory, episode_id, reason)
        marked = len(invalid.read_marks(directory))
    console.print(f"marked episode {mark.episode_id} in {directory} invalid ({mark.reason}); "
                  f"{marked} episode(s) of it are marked", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add `record`, `recover` and `mark-invalid` to the CLI."""
    app.command()(record)
    app.command()(recover)
    app.command(name="mark-invalid")(mark_invalid)
