"""`rlif-data rounds`: the RLIF loop, round after round, resumable from the registry.

Round k:

1. **train** policy k from the data of rounds < k (warm-started from round
   k-1's run; round 0 trains on the offline prior when one is given, else
   its policy is an untrained MLP: near-random actions) and publish it as
   ``<name>-policy`` tagged ``round-k``,
   with its evaluation (no interventions) and the datasets it learnt from;
2. **record** `episodes` episodes in which policy k acts and the simulated
   expert intervenes, and publish them raw as ``<name>-raw`` tagged ``round-k``
   (each episode's `policy_version` is the policy's registry ref);
3. **relabel** the raw round with the algorithm's view, **merge** it with
   ``<name>@round-(k-1)`` and publish the result as ``<name>`` tagged
   ``round-k`` and ``latest``.

The registry is the state: a stage is done exactly when its tag exists, so a
run killed anywhere continues from the first missing tag and never records or
publishes a round twice. Working files (recordings before they are published,
training runs) live under ``workdir``; an unpublished recording is discarded
and recorded again (its episodes were never visible). Every version this
driver publishes carries the run's id and round in its lineage; a tag that
points elsewhere (moved by hand) stops the run with a message instead of
silently training on other data.

The offline prior (e.g. a downsampled D4RL set) is kept as RLPD's separate
offline source, with its own named reward, not merged into the round data:
RLPD samples the two halves apart, and merging would mix reward meanings.
The imitation baselines aggregate it with the rounds instead (DAgger's
D <- D u D_k starts from the demonstrations), so it must be in their view
(DAgger: a `dagger` view; HG-DAgger: steps flagged as expert-controlled).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from typing import Any, Optional

import numpy as np

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.fsutil import write_json_atomic
from rlif_data.lineage import registry_input

ROUNDS_FORMAT_VERSION = 1
# The relabel view each algorithm learns from.
VIEW_OF_ALGO = {"rlpd": "paper", "hg-dagger": "hg-dagger", "dagger": "dagger"}
INTERVENTIONS = ("value", "value-official", "random", "random-official")  # sim.INTERVENTIONS


class RoundsError(errors.RlifDataError):
    """The rounds run cannot continue; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class RoundsConfig:
    """An RLIF rounds run.

    Attributes:
      name: dataset name; raw rounds are ``<name>-raw``, policies ``<name>-policy``.
      env_id: Gymnasium environment id.
      rounds: number of rounds (0 .. rounds-1).
      episodes: episodes recorded per round.
      expert: the simulated expert's policy spec (e.g. "scripted", "lqr-cap:0.7").
      algo: "rlpd" (RLIF), "hg-dagger" or "dagger".
      intervention: "value" (paper: decide every step), "value-official"
        (decide outside takeovers, 4-step takeovers), "random" or "random-official".
      rate: target intervention rate of the random models.
      alpha: relative margin of the value-based models (paper 0.97).
      delta: absolute margin of the value-based models
        (``Q(s, a_pi) < Q(s, a_exp) - delta``); replaces `alpha` when set.
      beta: intervention probability when the margin is crossed (paper 0.95).
      qref: the Q^ref of the value-based models: a run directory or a
        registry ref of a policy that carries a critic.
      offline: refs of the offline prior (RLPD's offline source).
      offline_reward: reward of the prior ("env", "zero" or "rlif").
      steps: learner updates per round.
      agent: learner config overrides (JSON dict, see trainers.configs).
      max_episode_steps: episode time limit for recording and evaluation.
      eval_episodes: evaluation episodes per round (no interventions).
      seed: base seed; round k records with seed ``seed + 1000 * k``.
      workdir: working files (training runs, recordings before publishing).
      root: the registry root (None: `$RLIF_DATA_ROOT` or the default).
    """

    name: str
    env_id: str
    rounds: int = 3
    episodes: int = 10
    expert: str = "scripted"
    algo: str = "rlpd"
    intervention: str = "value"
    rate: float = 0.5
    alpha: float = 0.97
    delta: Optional[float] = None
    beta: float = 0.95
    qref: Optional[str] = None
    offline: tuple[str, ...] = ()
    offline_reward: str = "env"
    steps: int = 2000
    agent: Optional[dict[str, Any]] = None
    max_episode_steps: Optional[int] = 200
    eval_episodes: int = 5
    seed: int = 0
    workdir: str = "rounds_work"
    root: Optional[str] = None

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        if self.algo not in VIEW_OF_ALGO:
            raise ValueError(f"algo must be one of {sorted(VIEW_OF_ALGO)}, got {self.algo!r}")
        if self.intervention not in INTERVENTIONS:
            raise ValueError(f"intervention must be one of {INTERVENTIONS}, "
                             f"got {self.intervention!r}")
        if self.intervention.startswith("value") and not self.qref:
            raise ValueError("value-based intervention needs --qref (a run directory or policy "
                             "ref whose critic gives Q^ref)")
        if self.delta is not None and not (math.isfinite(self.delta) and self.delta >= 0):
            raise ValueError(f"delta must be finite and >= 0, got {self.delta!r}")
        for field in ("rounds", "episodes", "steps", "eval_episodes"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")

    def run_id(self) -> str:
        """A short hash of everything that defines the run's data (not where it lives)."""
        data = dataclasses.asdict(self)
        for key in ("workdir", "root", "rounds"):
            data.pop(key)  # more rounds may be added to the same run later
        if data["delta"] is None:
            data.pop("delta")  # runs from before `delta` existed keep their id
        blob = json.dumps(data, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def raw_name(self) -> str:
        """Registry name of the raw rounds."""
        return f"{self.name}-raw"

    @property
    def policy_name(self) -> str:
        """Registry name of the round policies."""
        return f"{self.name}-policy"


def _version_input(info: Any) -> dict[str, Any]:
    """A registry version as a lineage input: its ``name:version`` and content hash."""
    return registry_input(info.ref, info.manifest["content_sha256"]).to_json()


def round_tag(k: int) -> str:
    """The tag of round k."""
    return f"round-{k}"


@dataclasses.dataclass
class RoundRow:
    """One row of the rounds table."""

    round: int
    policy: str
    eval_return: float
    eval_std: float
    survival: float
    intervention_rate: float
    episodes: int
    transitions: int
    dataset: str

    def to_json_dict(self) -> dict[str, Any]:
        """The row as JSON."""
        return dataclasses.asdict(self)


class RoundsDriver:
    """Runs the stages of `RoundsConfig`, continuing from what the registry holds.

    Args:
      config: the run.
      progress: show progress bars.
      log: a callable taking one line of text (stage messages).
    """

    def __init__(self, config: RoundsConfig, progress: bool = True, log=print):
        from rlif_data.registry.store import Registry

        config.validate()
        self.config = config
        self.progress = progress
        self.log = log
        self.registry = Registry(config.root)
        self.run_id = config.run_id()
        # Every round's policy is scored on the same episodes, so rounds compare.
        self.eval_seed = 10_000 + config.seed
        os.makedirs(config.workdir, exist_ok=True)

    # -- registry state -----------------------------------------------------------
    def _tagged(self, name: str, k: int) -> Optional[Any]:
        """The version `name@round-k`, checked to be this run's, or None."""
        if name not in self.registry.names() or round_tag(k) not in self.registry.tags(name):
            return None
        info = self.registry.info(f"{name}@{round_tag(k)}")
        mark = info.manifest.get("lineage", {}).get("rounds", {})
        if mark.get("run_id") != self.run_id or mark.get("round") != k:
            raise RoundsError(
                f"{name}@{round_tag(k)} points to {info.ref}, which this rounds run did not "
                f"publish (its lineage says run {mark.get('run_id')!r} round "
                f"{mark.get('round')!r}, expected {self.run_id!r} round {k}); the registry was "
                f"changed by hand: move the tag back (`rlif-data tag`) or use a new --name")
        return info

    def _mark(self, k: int, stage: str, inputs: list[dict[str, Any]],
              extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        return {"job": f"rounds/{stage}", "inputs": inputs,
                "rounds": {"run_id": self.run_id, "round": k, "stage": stage,
                           "config": _config_json(self.config)}, **(extra or {})}

    # -- stages -----------------------------------------------------------------
    def run(self) -> list[RoundRow]:
        """Run every missing stage of every round; returns the table of all rounds."""
        rows = []
        for k in range(self.config.rounds):
            policy = self._tagged(self.config.policy_name, k) or self._train(k)
            raw = self._tagged(self.config.raw_name, k) or self._record(k, policy)
            dataset = self._tagged(self.config.name, k) or self._build_dataset(k, raw)
            rows.append(self._row(k, policy, raw, dataset))
        self._write_outputs(rows)
        return rows

    def _train(self, k: int):
        from trainers import train as train_lib
        from trainers.artifacts import publish_policy

        cfg = self.config
        inputs = []
        datasets: tuple[str, ...] = ()
        if k > 0:
            prev = self._tagged(cfg.name, k - 1)
            datasets = (prev.ref,)
            inputs.append(_version_input(prev))
        for ref in cfg.offline:
            inputs.append({"ref": ref})
        run_out = os.path.join(cfg.workdir, round_tag(k), "train")
        if not datasets and not cfg.offline:
            self.log(f"round {k}: initial learner (untrained policy, no data yet)")
            policy_dir = self._initial_policy(run_out)
            evaluation = self._evaluate_dir(policy_dir)
            info = self.registry.publish(
                policy_dir, cfg.policy_name, tags=(round_tag(k), "latest"),
                lineage=self._mark(k, "train", inputs, {"evaluation": evaluation}))
        else:
            algo = cfg.algo
            dataset, offline = datasets, cfg.offline
            if not datasets:  # round 0 with a prior: the prior is the only data
                dataset, offline = cfg.offline, ()
            elif algo != "rlpd":
                # (HG-)DAgger aggregate every dataset, the initial demonstrations
                # included; only RLPD keeps the prior as a separate source.
                dataset, offline = cfg.offline + datasets, ()
            init_from = None
            if k > 0:
                prev_run = os.path.join(cfg.workdir, round_tag(k - 1), "train")
                if os.path.isdir(os.path.join(prev_run, "checkpoints")):
                    init_from = prev_run
            tc = train_lib.TrainConfig(
                algo=algo, dataset=dataset, offline=offline, out=run_out, steps=cfg.steps,
                reward="rlif" if datasets else cfg.offline_reward,
                offline_reward=cfg.offline_reward, seed=cfg.seed + k, env_id=cfg.env_id,
                max_episode_steps=cfg.max_episode_steps, eval_episodes=cfg.eval_episodes,
                eval_seed=self.eval_seed,
                checkpoint_every=max(cfg.steps // 4, 1), log_every=max(cfg.steps // 20, 1),
                init_from=init_from, root=cfg.root, agent=cfg.agent)
            self.log(f"round {k}: training {algo} on {', '.join(dataset)} for {cfg.steps} updates")
            result = train_lib.train(tc, progress=self.progress)
            evaluation = result.final_eval
            mark = self._mark(k, "train", [])
            info = publish_policy(result, cfg.policy_name, root=cfg.root,
                                  tags=(round_tag(k), "latest"),
                                  extra={"rounds": mark["rounds"]})
        self.log(f"round {k}: published policy {info.ref} (return {evaluation['mean_return']:.1f})")
        return info

    def _initial_policy(self, out: str) -> str:
        """Round 0's policy without data: an untrained MLP exported in the policy format."""
        from rlif_data import policies
        from rlif_data.envs.gym_dm_env import make_gym_env

        env = make_gym_env(self.config.env_id)
        try:
            pc = policies.MLPPolicyConfig.for_spaces(env.observation_space, env.action_space,
                                                     hidden_dims=(64, 64))
        finally:
            env.close()
        policy_dir = os.path.join(out, "policy")
        if os.path.isdir(policy_dir):
            shutil.rmtree(policy_dir)
        params = policies.init_mlp_policy_params(pc, seed=self.config.seed)
        policies.save_mlp_policy(policy_dir, pc, params)
        return policy_dir

    def _evaluate_dir(self, policy_dir: str) -> dict[str, Any]:
        from rlif_data import policies
        from trainers.evaluation import evaluate

        policy = policies.load_mlp_policy(policy_dir)
        return evaluate(policy, self.config.env_id, self.config.eval_episodes,
                        seed=self.eval_seed,
                        max_episode_steps=self.config.max_episode_steps).to_json_dict()

    def _record(self, k: int, policy_info) -> Any:
        from trainers import collect

        cfg = self.config
        out = os.path.join(cfg.workdir, round_tag(k), "recording")
        if os.path.exists(out):
            shutil.rmtree(out)  # unpublished: never visible, recorded again from its seed
        summary = collect.record_round(
            env_id=cfg.env_id, out=out, policy_dir=policy_info.path, policy_ref=policy_info.ref,
            expert=cfg.expert, intervention=cfg.intervention, rate=cfg.rate, alpha=cfg.alpha,
            beta=cfg.beta, delta=cfg.delta, qref=self._qref_path(), episodes=cfg.episodes,
            round=k, seed=cfg.seed + 1000 * k,
            max_episode_steps=cfg.max_episode_steps, progress=self.progress)
        inputs = [_version_input(policy_info)]
        info = self.registry.publish(out, cfg.raw_name, tags=(round_tag(k), "latest"),
                                     lineage=self._mark(k, "record", inputs))
        self.log(f"round {k}: recorded {cfg.episodes} episodes "
                 f"({summary.intervention_rate:.0%} intervened) -> {info.ref}")
        return info

    def _qref_path(self) -> Optional[str]:
        """Q^ref as a local path: a published policy ref resolves in this run's registry."""
        qref = self.config.qref
        if not qref or os.path.exists(qref):
            return qref
        return self.registry.path(qref)

    def _build_dataset(self, k: int, raw) -> Any:
        import tempfile

        from pipelines import merge, relabel

        cfg = self.config
        view = VIEW_OF_ALGO[cfg.algo]
        inputs = [_version_input(raw)]
        with tempfile.TemporaryDirectory(dir=cfg.workdir) as tmp:
            # drop: an episode marked invalid never reaches a round's data (and never
            # stops the round with a question).
            relabelled = relabel.run(raw.path, os.path.join(tmp, "relabelled"), view,
                                     _beam_args(), invalid_episodes="drop")
            source = relabelled
            if k > 0:
                prev = self._tagged(cfg.name, k - 1)
                inputs.insert(0, _version_input(prev))
                source = merge.run([prev.path, relabelled], os.path.join(tmp, "merged"),
                                   invalid_episodes="drop")
            info = self.registry.publish(source, cfg.name, tags=(round_tag(k), "latest"),
                                         lineage=self._mark(k, "dataset", inputs, {"view": view}))
        self.log(f"round {k}: published {info.ref} ({view} view of rounds 0..{k})")
        return info

    # -- reporting ----------------------------------------------------------------
    def _row(self, k: int, policy, raw, dataset) -> RoundRow:
        from rlif_data.recording.reader import EpisodeReader

        evaluation = policy.manifest.get("lineage", {}).get("evaluation", {})
        steps = intervened = 0
        with EpisodeReader(raw.path, repair=False) as reader:
            episodes = len(reader)
            for i in range(episodes):
                flags = np.asarray(reader[i][sc.STEPS][sc.INTERVENTION], bool)[:-1]
                steps += len(flags)
                intervened += int(flags.sum())
        with EpisodeReader(dataset.path, repair=False) as reader:
            transitions = sum(len(reader.summary(i)[sc.STEPS][sc.IS_FIRST]) - 1
                              for i in range(len(reader)))
        return RoundRow(round=k, policy=policy.ref,
                        eval_return=float(evaluation.get("mean_return", float("nan"))),
                        eval_std=float(evaluation.get("std_return", float("nan"))),
                        survival=float(evaluation.get("survival", float("nan"))),
                        intervention_rate=intervened / max(steps, 1), episodes=episodes,
                        transitions=transitions, dataset=dataset.ref)

    def _write_outputs(self, rows: list[RoundRow]) -> None:
        write_json_atomic(os.path.join(self.config.workdir, "rounds.json"),
                          {"run_id": self.run_id, "rows": [r.to_json_dict() for r in rows]})
        plot_rounds(rows, os.path.join(self.config.workdir, "rounds.png"),
                    f"{self.config.algo} on {self.config.env_id} ({self.config.name})")


def _config_json(config: RoundsConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["offline"] = list(config.offline)
    data.pop("root")
    data.pop("workdir")
    return data


def _beam_args() -> list[str]:
    # One in-process worker: round datasets are small, and process start-up
    # would cost more than the work.
    return ["--runner=DirectRunner", "--direct_num_workers=1",
            "--direct_running_mode=in_memory"]


def format_table(rows: list[RoundRow]) -> str:
    """The rounds table as aligned text."""
    header = (f"{'round':>5}  {'return':>14}  {'survival':>8}  {'interv.':>7}  "
              f"{'episodes':>8}  {'transitions':>11}  policy")
    lines = [header]
    for r in rows:
        lines.append(f"{r.round:>5}  {r.eval_return:>8.1f} ± {r.eval_std:<4.0f}  "
                     f"{r.survival:>8.0%}  {r.intervention_rate:>7.0%}  {r.episodes:>8}  "
                     f"{r.transitions:>11}  {r.policy}")
    return "\n".join(lines)


def plot_rounds(rows: list[RoundRow], out_png: str, title: str) -> str:
    """Intervention rate and evaluation return across rounds, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    ks = [r.round for r in rows]
    left.plot(ks, [100 * r.intervention_rate for r in rows], marker="o", color="tab:red")
    left.set_title("expert interventions while the round's policy acts")
    left.set_xlabel("round")
    left.set_ylabel("intervened steps (%)")
    left.set_ylim(bottom=0)
    mean = np.array([r.eval_return for r in rows])
    std = np.array([r.eval_std for r in rows])
    right.errorbar(ks, mean, yerr=std, marker="o", capsize=3)
    right.set_title("policy alone (no interventions)")
    right.set_xlabel("round")
    right.set_ylabel("return")
    for ax in (left, right):
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
