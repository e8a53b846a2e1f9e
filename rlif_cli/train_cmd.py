"""`rlif-data train` and `rlif-data rounds`: the learning half of the RLIF loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rlif_cli.common import console, user_errors


def _agent_overrides(algo: str, hidden: Optional[str], utd: Optional[int],
                     batch_size: Optional[int], num_qs: Optional[int],
                     offline_ratio: Optional[float], agent_json: Optional[str]):
    """The learner config as JSON: paper defaults, then the flags given."""
    import dataclasses

    from trainers.configs import BCConfig, RLPDConfig

    cls = RLPDConfig if algo == "rlpd" else BCConfig
    base = cls.from_json_dict(json.loads(agent_json)) if agent_json else cls()
    changes = {}
    if hidden:
        changes["hidden_dims"] = tuple(int(h) for h in hidden.split(","))
    if batch_size:
        changes["batch_size"] = batch_size
    if cls is RLPDConfig:
        if utd:
            changes["utd_ratio"] = utd
        if num_qs:
            changes["num_qs"] = num_qs
        if offline_ratio is not None:
            changes["offline_ratio"] = offline_ratio
    elif utd or num_qs or offline_ratio is not None:
        raise ValueError("--utd, --num-qs and --offline-ratio are RLPD options; "
                         f"{algo} does not use them")
    return dataclasses.replace(base, **changes).to_json_dict()


def train(
    algo: str = typer.Option(..., help="rlpd (RLIF), bc, hg-dagger or dagger."),
    dataset: list[str] = typer.Option(..., help="Dataset ref (name@tag, name:version or a "
                                      "directory); repeatable. RLPD's online source."),
    out: Path = typer.Option(..., help="Run directory: created, or resumed if it holds this run."),
    steps: int = typer.Option(10_000, min=1, help="Learner updates (RLPD: U critic steps each)."),
    offline: list[str] = typer.Option([], help="RLPD's offline source (prior data); repeatable."),
    reward: str = typer.Option("rlif", help="Reward of --dataset for RLPD: rlif, env or zero."),
    offline_reward: str = typer.Option("env", help="Reward of --offline: env (official RLIF "
                                       "code), zero or rlif."),
    env: Optional[str] = typer.Option(None, help="Evaluation environment (default: the data's)."),
    max_episode_steps: Optional[int] = typer.Option(None, help="Evaluation time limit."),
    eval_every: int = typer.Option(0, min=0, help="Evaluate every N updates (0: at the end)."),
    eval_episodes: int = typer.Option(5, min=1, help="Episodes per evaluation."),
    checkpoint_every: int = typer.Option(1000, min=1, help="Checkpoint every N updates."),
    log_every: int = typer.Option(100, min=1, help="Metrics record every N updates."),
    init_from: Optional[Path] = typer.Option(None, help="Warm start from another run's newest "
                                             "checkpoint."),
    seed: int = typer.Option(0, help="Seed of the learner and the batch draws."),
    hidden: Optional[str] = typer.Option(None, help="Hidden sizes, e.g. 256,256,256."),
    utd: Optional[int] = typer.Option(None, min=1, help="RLPD critic steps per update (U)."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Minibatch size."),
    num_qs: Optional[int] = typer.Option(None, min=2, help="RLPD critic ensemble size."),
    offline_ratio: Optional[float] = typer.Option(None, min=0.0, max=1.0,
                                                  help="Share of each RLPD batch from --offline."),
    agent_config: Optional[str] = typer.Option(None, help="Learner config as JSON (see "
                                               "trainers/configs.py)."),
    publish: Optional[str] = typer.Option(None, help="Publish the trained policy under this "
                                          "registry name (tag latest)."),
    root: Optional[str] = typer.Option(None, help="Registry root (default $RLIF_DATA_ROOT)."),
    invalid_episodes: Optional[str] = typer.Option(
        None, "--invalid-episodes", "--invalid_episodes",
        help="drop or keep episodes marked invalid; required when a dataset holds marks."),
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Train RLPD or an imitation baseline from dataset versions; resumable."""
    from trainers.train import TrainConfig, parse_refs
    from trainers.train import train as run_training

    with user_errors():
        agent = _agent_overrides(algo, hidden, utd, batch_size, num_qs, offline_ratio, agent_config)
        config = TrainConfig(
            algo=algo, dataset=parse_refs(dataset), offline=parse_refs(offline), out=str(out),
            steps=steps, reward=reward, offline_reward=offline_reward, seed=seed, env_id=env,
            max_episode_steps=max_episode_steps, eval_every=eval_every,
            eval_episodes=eval_episodes, checkpoint_every=checkpoint_every, log_every=log_every,
            init_from=str(init_from) if init_from else None, root=root, agent=agent,
            invalid_episodes=invalid_episodes)
        result = run_training(config, progress=not quiet)
        published = ""
        if publish:
            from trainers.artifacts import publish_policy

            info = publish_policy(result, publish, root=root)
            published = f"; published {info.ref}"
    resumed = f" (resumed at {result.resumed_from})" if result.resumed_from else ""
    ev = result.final_eval
    console.print(
        f"trained {algo} for {result.steps} updates{resumed} on {', '.join(config.dataset)}: "
        f"return {ev['mean_return']:.1f} ± {ev['std_return']:.1f} over {ev['episodes']} "
        f"{result.env_id} episodes (no interventions); policy {result.policy_dir}{published}")


def rounds(
    name: str = typer.Option(..., help="Dataset name; raw rounds go to NAME-raw, policies to "
                             "NAME-policy."),
    env: str = typer.Option(..., help="Gymnasium environment id."),
    rounds_: int = typer.Option(3, "--rounds", min=1, help="Rounds to run (0 .. N-1)."),
    episodes: int = typer.Option(10, min=1, help="Episodes recorded per round."),
    expert: str = typer.Option("scripted", help="Simulated expert: a policy spec "
                               "(scripted, lqr, lqr-cap:0.7, a checkpoint or a policy ref)."),
    algo: str = typer.Option("rlpd", help="rlpd (RLIF), hg-dagger or dagger."),
    intervention: str = typer.Option("value", help="value, value-official, random or "
                                     "random-official."),
    qref: Optional[str] = typer.Option(None, help="Q^ref for value-based intervention: a run "
                                       "directory or policy ref trained with RLPD."),
    rate: float = typer.Option(0.5, help="Target rate of the random models."),
    alpha: float = typer.Option(0.97, help="Relative margin of the value-based models."),
    beta: float = typer.Option(0.95, help="Intervention probability past the margin."),
    offline: list[str] = typer.Option([], help="Offline prior refs (RLPD's offline source)."),
    offline_reward: str = typer.Option("env", help="Reward of the prior: env, zero or rlif."),
    steps: int = typer.Option(2000, min=1, help="Learner updates per round."),
    hidden: Optional[str] = typer.Option(None, help="Hidden sizes, e.g. 256,256."),
    utd: Optional[int] = typer.Option(None, min=1, help="RLPD critic steps per update (U)."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Minibatch size."),
    num_qs: Optional[int] = typer.Option(None, min=2, help="RLPD critic ensemble size."),
    max_episode_steps: Optional[int] = typer.Option(200, help="Episode time limit."),
    eval_episodes: int = typer.Option(5, min=1, help="Evaluation episodes per round."),
    seed: int = typer.Option(0, help="Base seed."),
    workdir: Path = typer.Option(Path("rounds_work"), help="Working files and the rounds "
                                 "table/plot."),
    root: Optional[str] = typer.Option(None, help="Registry root (default $RLIF_DATA_ROOT)."),
    quiet: bool = typer.Option(False, help="No progress bars."),
):
    """Run RLIF rounds: train, record with interventions, relabel, merge, publish; resumable."""
    from trainers.rounds import RoundsConfig, RoundsDriver, format_table

    with user_errors():
        agent = _agent_overrides(algo if algo == "rlpd" else "bc", hidden, utd, batch_size,
                                 num_qs, None, None)
        config = RoundsConfig(
            name=name, env_id=env, rounds=rounds_, episodes=episodes, expert=expert, algo=algo,
            intervention=intervention, rate=rate, alpha=alpha, beta=beta, qref=qref,
            offline=tuple(offline), offline_reward=offline_reward, steps=steps, agent=agent,
            max_episode_steps=max_episode_steps, eval_episodes=eval_episodes, seed=seed,
            workdir=str(workdir), root=root)
        driver = RoundsDriver(config, progress=not quiet,
                              log=lambda line: console.print(line, highlight=False))
        rows = driver.run()
    console.print(format_table(rows), highlight=False)
    last = rows[-1]
    console.print(f"{len(rows)} rounds of {algo} on {env}: round {last.round} policy "
                  f"{last.policy} returns {last.eval_return:.1f}, interventions "
                  f"{rows[0].intervention_rate:.0%} -> {last.intervention_rate:.0%}; table and "
                  f"plot in {workdir}/rounds.json, {workdir}/rounds.png")


def register(app: typer.Typer) -> None:
    """Add `train` and `rounds` to the CLI."""
    app.command()(train)
    app.command()(rounds)
