"""`rlif-data robot-session`: a policy acts, a person takes over, everything is recorded."""

from __future__ import annotations

from pathlib import Path

import typer

from rlif_cli.common import console, err_console, headless_rendering, user_errors


def robot_session(
    out: Path = typer.Option(..., help="Recording directory (created, or appended to)."),
    env: str = typer.Option("sim-arm", help="Robot environment: sim-arm (MuJoCo, offline)."),
    device: str = typer.Option("replay:", help="spacemouse, keyboard, or replay:FILE."),
    policy: str = typer.Option("noisy-reach", help="random, noisy-reach, or a checkpoint dir."),
    episodes: int = typer.Option(1, min=1),
    rate: float = typer.Option(10.0, help="Control rate in Hz."),
    max_steps: int = typer.Option(100, min=1, help="Steps per episode."),
    image_size: int = typer.Option(128, min=0, help="Camera frame size (0: no cameras)."),
    operator: str = typer.Option("operator", help="Who holds the device."),
    policy_version: str = typer.Option("", help="Stored with each episode (default: --policy)."),
    round_: int = typer.Option(0, "--round", help="RLIF round number."),
    seed: int = typer.Option(0),
    quiet: bool = typer.Option(False, help="No live status (who is in control) and no key map."),
    invalid_reasons: str = typer.Option(
        "marked by operator", help="Preset reasons for marking an episode invalid, comma-"
        "separated (\"collision,dropped object\"); keys 1..9 choose one, x / z mark the "
        "current / previous episode, a SpaceMouse marks the current one with both buttons "
        "held 1 s."),
):
    """Record a robot session: policy control with human takeovers through an input device.

    The keyboard prints its key map first; a terminal shows who is in control
    live. A replay's file times count from the control loop's first step.
    Episodes marked invalid stay in the recording, flagged in invalid_episodes.jsonl.
    """
    from robot.env import make_robot_env
    from robot.invalid_marks import parse_reasons
    from robot.session import (SessionConfig, describe_events, make_device, make_policy,
                               run_session)

    with user_errors():
        reasons = parse_reasons(invalid_reasons)
        if image_size:
            headless_rendering()
        robot = make_robot_env(env, image_size=image_size, max_steps=max_steps, seed=seed)
        if device == "replay:":
            raise ValueError("give the replay file: --device replay:FILE")
        schema = robot.episode_schema()
        dev = make_device(device)
        if not quiet:
            for line in how_to_take_over(device, schema.action_dim, reasons):
                err_console.print(line, highlight=False, markup=False)
        config = SessionConfig(out=str(out), episodes=episodes, rate_hz=rate, operator=operator,
                               robot=env, policy_version=policy_version or policy, round=round_,
                               seed=seed, invalid_reasons=reasons)
        with dev:
            result = run_session(robot, dev, make_policy(policy, robot, seed), schema, config,
                                 progress=not quiet)
    s, t = result["summary"], result["timing"]
    console.print(
        f"recorded {len(s.episodes)} episodes ({s.transitions} steps, operator in control "
        f"{s.intervention_rate:.0%}) to {s.directory}\n"
        f"control period at {rate:g} Hz: p50 {t['p50_ms']:.1f} ms, p99 {t['p99_ms']:.1f} ms, "
        f"max {t['max_ms']:.1f} ms, missed deadlines {t['missed_deadlines']}\n"
        f"session events: {describe_events(result['events'])}",
        highlight=False,
    )
    marks = result["invalid"]
    if marks:
        console.print(f"marked invalid: {len(marks)} episode(s), kept in the recording and "
                      "listed in invalid_episodes.jsonl: "
                      + "; ".join(f"{m.episode_id} ({m.reason})" for m in marks),
                      highlight=False, markup=False)


def how_to_take_over(device: str, action_dim: int,
                     reasons: tuple[str, ...] = ("marked by operator",)) -> list[str]:
    """What the operator does to take over with `device`, printed before the session.

    Args:
      device: the --device value.
      action_dim: the robot's action size (keys of unused axes are marked).
      reasons: the preset reasons of invalid marks.

    Returns:
      Lines of text (the keyboard's key map; one or two lines for the other devices).
    """
    if device == "keyboard":
        from robot.keyboard_device import key_map_lines

        return key_map_lines(action_dim, reasons=reasons)
    if device == "spacemouse":
        from robot.invalid_marks import CHORD_HOLD_S

        return ["spacemouse: move it or press a button to take over, let go to hand back",
                f"            hold both buttons {CHORD_HOLD_S:g} s to mark this episode invalid "
                f"({reasons[0]})"]
    return [f"replaying {device.split(':', 1)[1]} from the first control step"]


def register(app: typer.Typer) -> None:
    """Add `robot-session` to the CLI."""
    app.command(name="robot-session")(robot_session)
