"""`rlif-data train`: RLPD or an imitation baseline from dataset versions, resumable.

One function, `train(config)`, does the whole run: load the datasets by ref,
build the learner, resume from the run directory's newest checkpoint (or
warm-start from another run), update, evaluate without interventions, write
metrics, the learning curve and checkpoints, and export the trained actor in
rlif-data's policy format (`policy/`), which `record --learner` and
`robot-session --policy` load without importing this package.

Batches are drawn with a NumPy generator seeded by ``(seed, step)``, so the
data a step sees does not depend on whether the run was resumed: a run
stopped and resumed ends with the same parameters as one that ran through.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Optional, Sequence

import numpy as np

from rlif_data.fsutil import write_json_atomic
from trainers import algorithms, run_dir
from trainers.metrics import MetricsLog, plot_learning_curve, read_metrics, truncate_after
from trainers.run_dir import TrainingError

TRAIN_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
      algo: "rlpd", "bc", "hg-dagger" or "dagger" (see `trainers.algorithms`).
      dataset: refs (directory, ``name@tag``, ``name:version``) of the main
        data: RLPD's online source, the imitation baselines' only source.
      out: the run directory.
      steps: learner updates (RLPD: each runs ``utd_ratio`` critic steps).
      offline: refs of RLPD's offline source (the prior data); empty: every
        batch comes from `dataset`.
      reward: reward of `dataset` for RLPD: "rlif", "env" or "zero".
      offline_reward: reward of `offline` for RLPD (official RLIF code: "env").
      seed: seeds the learner and the batch draws.
      env_id: environment for evaluation; None: the datasets' own.
      max_episode_steps: evaluation time limit; None: the environment's own.
      eval_every: evaluate every this many updates (0: only at the end).
      eval_episodes: episodes per evaluation.
      eval_seed: evaluation episode i resets with ``eval_seed + i``; None means
        ``10_000 + seed``. The rounds driver fixes it per run, so every round's
        policy is scored on the same episodes (and pushes).
      checkpoint_every: checkpoint every this many updates (and at the end).
      log_every: metrics record every this many updates.
      init_from: a run directory whose newest checkpoint starts this run
        (warm start across RLIF rounds); ignored when resuming.
      root: the registry root for refs (None: `$RLIF_DATA_ROOT` or the default).
      agent: the learner's config as a JSON dict (None: the paper defaults).
      invalid_episodes: "drop" or "keep" episodes marked invalid; required when
        a source holds marks (`trainers.data.load_transitions`).
    """

    algo: str
    dataset: tuple[str, ...]
    out: str
    steps: int = 10_000
    offline: tuple[str, ...] = ()
    reward: str = "rlif"
    offline_reward: str = "env"
    seed: int = 0
    env_id: Optional[str] = None
    max_episode_steps: Optional[int] = None
    eval_every: int = 0
    eval_episodes: int = 5
    eval_seed: Optional[int] = None
    checkpoint_every: int = 1000
    log_every: int = 100
    init_from: Optional[str] = None
    root: Optional[str] = None
    agent: Optional[dict[str, Any]] = None
    invalid_episodes: Optional[str] = None

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        algorithms.get(self.algo)
        if not self.dataset:
            raise ValueError("train needs at least one --dataset")
        for name in ("steps", "eval_episodes", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")

    def to_json_dict(self) -> dict[str, Any]:
        """The config as stored in ``train_config.json``."""
        data = dataclasses.asdict(self)
        data["dataset"], data["offline"] = list(self.dataset), list(self.offline)
        data.pop("root")  # where the registry lives is not part of what was trained
        if data["invalid_episodes"] is None:
            # Unset: written as runs before the option were, so they still resume.
            data.pop("invalid_episodes")
        return {"format_version": TRAIN_FORMAT_VERSION, **data}


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a finished run produced.

    Attributes:
      out: the run directory.
      policy_dir: the exported policy (rlif-data policy format).
      steps: updates done in total.
      resumed_from: the checkpoint step the run resumed from (None: fresh).
      final_eval: the last evaluation (see `trainers.evaluation.EvalResult.to_json_dict`).
      sources: the datasets trained on, with resolved versions and content hashes.
      env_id: the evaluation environment.
    """

    out: str
    policy_dir: str
    steps: int
    resumed_from: Optional[int]
    final_eval: dict[str, Any]
    sources: list[dict[str, Any]]
    env_id: str


def _check_finite(info: dict[str, Any], step: int, where: str) -> None:
    bad = [k for k, v in info.items() if not math.isfinite(float(np.asarray(v)))]
    if bad:
        raise TrainingError(
            f"{where}: {', '.join(sorted(bad))} became NaN/inf at update {step}; lower the "
            "learning rates or check the dataset's rewards (`rlif-data inspect`)")


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="upd", disable=not enabled,
                dynamic_ncols=True, leave=False)


def train(config: TrainConfig, progress: bool = True) -> TrainResult:
    """Run (or resume) the training run `config` describes.

    Returns:
      A `TrainResult`.

    Raises:
      ValueError: a bad config value.
      TrainingError: the run directory holds another run, a checkpoint does not
        fit, the data lacks what the algorithm needs, or a loss diverged.
      FileNotFoundError / RegistryError: a dataset ref does not resolve.
    """
    from trainers.evaluation import evaluate

    config.validate()
    algo = algorithms.get(config.algo)
    data = algo.load(config)
    env_id = config.env_id or data.env_id
    run = run_dir.RunDirectory(config.out)
    start = run.prepare(config.to_json_dict())
    learner = algo.create(config, data)
    if start is not None:
        learner = run.restore(start, learner)
        truncate_after(run.file(run_dir.METRICS_FILE), start)
    elif config.init_from:
        learner = _warm_start(config.init_from, learner)
    step = start or 0
    log = MetricsLog(run.file(run_dir.METRICS_FILE), run.file("tensorboard"))
    last_eval: dict[str, Any] = {}

    def run_eval(at: int) -> None:
        nonlocal last_eval
        result = evaluate(algo.act_fn(learner, data), env_id, config.eval_episodes,
                          seed=10_000 + config.seed if config.eval_seed is None
                          else config.eval_seed, max_episode_steps=config.max_episode_steps)
        last_eval = result.to_json_dict()
        log.log(at, {"eval/mean_return": result.mean_return,
                     "eval/std_return": last_eval["std_return"], "eval/survival": result.survival})

    bar = _progress(config.steps, step, progress)
    started, done_here = time.perf_counter(), 0
    try:
        while step < config.steps:
            batch = data.sampler(np.random.default_rng([config.seed, step]))
            learner, info = algo.update(learner, batch)
            step += 1
            done_here += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                info = {k: float(np.asarray(v)) for k, v in info.items()}
                _check_finite(info, step, config.out)
                rate = done_here / max(time.perf_counter() - started, 1e-9)
                log.log(step, {**info, "updates_per_s": rate})
                shown = {"upd/s": f"{rate:.0f}"}
                if last_eval:
                    shown["return"] = f"{last_eval['mean_return']:.1f}"
                bar.set_postfix(shown)
            if config.eval_every and step % config.eval_every == 0 and step < config.steps:
                run_eval(step)
            if step % config.checkpoint_every == 0 and step < config.steps:
                run.save(step, learner)
        run.save(step, learner)
        run_eval(step)
    finally:
        bar.close()
        log.close()
        run.close()
    policy_dir = algo.export(learner, data, run.file(run_dir.POLICY_DIR), config)
    plot_learning_curve(read_metrics(run.file(run_dir.METRICS_FILE)), run.file(run_dir.CURVE_FILE),
                        f"{config.algo} on {', '.join(config.dataset)}")
    result = TrainResult(out=run.path, policy_dir=policy_dir, steps=step, resumed_from=start,
                         final_eval=last_eval, sources=data.sources, env_id=env_id)
    write_json_atomic(run.file(run_dir.SUMMARY_FILE), dataclasses.asdict(result))
    return result


def _warm_start(init_from: str, learner: Any) -> Any:
    """The newest checkpoint of another run, loaded into `learner`'s structure."""
    other = run_dir.RunDirectory(init_from)
    step = other.latest_step()
    if step is None:
        raise TrainingError(f"--init-from {init_from}: no checkpoint there; give the directory "
                            "of an earlier `rlif-data train --out` run")
    try:
        return other.restore(step, learner)
    finally:
        other.close()


def parse_refs(values: Sequence[str]) -> tuple[str, ...]:
    """Refs from repeated options, each possibly comma-separated."""
    return tuple(ref.strip() for value in values for ref in value.split(",") if ref.strip())


def is_run_directory(path: str) -> bool:
    """Whether `path` is a finished `train --out` directory with an exported policy."""
    return os.path.isfile(os.path.join(path, run_dir.SUMMARY_FILE)) and os.path.isdir(
        os.path.join(path, run_dir.POLICY_DIR))
