"""Does RLIF beat a suboptimal expert and HG-DAgger? The CPU experiment (issue 16 item 8).

Setting: `InvertedPendulumPushed-v5` (InvertedPendulum-v5 whose pole gets
``+= N(0, 0.9)`` rad/s every 50 steps), episodes cut at `episode_steps`.
From nothing, in one registry under ``--workdir``:

1. **Reference data and Q^ref**: the reference controller (``lqr-aggressive``)
   records episodes alone, clean and with Gaussian action noise (so the data
   holds off-policy actions and falls), and an RLPD run on them with the
   environment reward gives the critic the value-based intervention model
   asks (Q^ref).
2. **Expert demonstrations**: each weak expert (``lqr-cap:1.5``,
   ``lqr-cap:0.7`` by default) records episodes alone; BC learns from them.
3. **Rounds**: for each expert and seed, `trainers.rounds.RoundsDriver` runs
   RLIF (RLPD on the RLIF reward), HG-DAgger and DAgger, each with the same
   expert and the same value-based intervention model (Q^ref, alpha, beta).
4. **Report**: final return and survival (mean and std over seeds) of every
   method, the expert alone and BC, all evaluated on the same seeded
   episodes; the intervention rate per round; a table, two PNGs and a JSON.

Every stage is resumable: datasets and policies live in the registry and
rounds continue from the last published stage, so a killed run restarts
where it stopped (finished runs are read back, not rerun).

```
.venv/bin/python benchmarks/rlif_experiment.py            # the full run (see docs/experiments.md)
.venv/bin/python benchmarks/rlif_experiment.py --quick    # 1 seed, 2 rounds, tiny steps
```
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from results_io import write_results  # noqa: E402

from rlif_data.envs.pushed_pendulum import DEFAULT_SETUP, ENV_ID  # noqa: E402

REFERENCE = "lqr-aggressive"
METHODS = ("rlif", "hg-dagger", "dagger")
"""Methods run as rounds; BC and the expert alone are evaluated beside them."""
ALGO_OF_METHOD = {"rlif": "rlpd", "hg-dagger": "hg-dagger", "dagger": "dagger"}
ALL_METHODS = ("expert", "bc") + METHODS
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(HERE)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a run of the experiment.

    Attributes:
      experts: the weak experts' policy specs (one column of results each).
      seeds: run seeds (spaced so that recorded episode seeds do not overlap).
      methods: round-based methods to run (subset of `METHODS`).
      rounds: RLIF rounds per run (round 0's policy is untrained).
      episodes: episodes recorded per round.
      episode_steps: time limit of every recording and evaluation episode.
      rlpd_steps: RLPD updates per round (each runs `utd` critic steps).
      bc_steps: BC / HG-DAgger / DAgger updates per round.
      hidden: hidden sizes of every learner's networks.
      num_qs: RLPD critic ensemble size.
      utd: RLPD update-to-data ratio U.
      batch_size: minibatch size of every learner.
      alpha: relative margin of the value-based intervention model.
      beta: intervention probability when the margin is crossed.
      offline: RLIF's offline prior: "none" or "demos" (the expert's own
        demonstrations, RLPD's offline half).
      offline_reward: reward of the prior ("zero", "env").
      eval_episodes: evaluation episodes per round and for the final table.
      ref_episodes: reference episodes per noise level for Q^ref.
      ref_noise: action-noise standard deviations of the reference episodes.
      qref_steps: RLPD updates of the Q^ref run.
      qref_discount: discount of the Q^ref critic.
      demo_episodes: expert demonstrations for BC (and the RLIF prior).
    """

    experts: tuple[str, ...] = ("lqr-cap:1.5", "lqr-cap:0.7")
    seeds: tuple[int, ...] = (0, 100, 200)
    methods: tuple[str, ...] = METHODS
    rounds: int = 4
    episodes: int = 4
    episode_steps: int = 500
    rlpd_steps: int = 300
    bc_steps: int = 1000
    hidden: tuple[int, ...] = (128, 128)
    num_qs: int = 10
    utd: int = 4
    batch_size: int = 128
    alpha: float = 0.97
    beta: float = 0.95
    offline: str = "none"
    offline_reward: str = "zero"
    eval_episodes: int = 10
    ref_episodes: int = 4
    ref_noise: tuple[float, ...] = (0.0, 0.5, 1.5)
    qref_steps: int = 1500
    qref_discount: float = 0.95
    demo_episodes: int = 4

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
        if self.offline not in ("none", "demos"):
            raise ValueError(f"offline must be 'none' or 'demos', got {self.offline!r}")
        for name in ("rounds", "episodes", "episode_steps", "rlpd_steps", "bc_steps",
                     "eval_episodes", "ref_episodes", "qref_steps", "demo_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.experts or not self.seeds:
            raise ValueError("give at least one expert and one seed")

    def to_json_dict(self) -> dict[str, Any]:
        """The config, JSON-ready."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


QUICK = ExperimentConfig(experts=("lqr-cap:0.7",), seeds=(0,), rounds=2, episodes=2,
                         episode_steps=200, rlpd_steps=30, bc_steps=100, eval_episodes=3,
                         ref_episodes=2, qref_steps=60, demo_episodes=2, num_qs=4, utd=2)


# -- learner configs ----------------------------------------------------------------

def rlpd_agent(cfg: ExperimentConfig) -> dict[str, Any]:
    """The RLIF learner's RLPDConfig as JSON (the paper's values but smaller)."""
    from trainers.configs import RLPDConfig

    return RLPDConfig(hidden_dims=cfg.hidden, num_qs=cfg.num_qs, utd_ratio=cfg.utd,
                      batch_size=cfg.batch_size).to_json_dict()


def qref_agent(cfg: ExperimentConfig) -> dict[str, Any]:
    """The Q^ref run's RLPDConfig: same networks, its own discount, no entropy in the target.

    The value-based model compares Q^ref of two actions; an entropy bonus in
    the backup would add the SAC actor's entropy to both and blur the gap.
    """
    from trainers.configs import RLPDConfig

    return RLPDConfig(hidden_dims=cfg.hidden, num_qs=cfg.num_qs, utd_ratio=cfg.utd * 2,
                      batch_size=cfg.batch_size, discount=cfg.qref_discount,
                      backup_entropy=False).to_json_dict()


def bc_agent(cfg: ExperimentConfig) -> dict[str, Any]:
    """The imitation learners' BCConfig as JSON."""
    from trainers.configs import BCConfig

    return BCConfig(hidden_dims=cfg.hidden, batch_size=cfg.batch_size).to_json_dict()


# -- pure summaries -------------------------------------------------------------------

def slug(spec: str) -> str:
    """A registry-safe name part for a policy spec ("lqr-cap:1.5" -> "lqr-cap1-5")."""
    return spec.replace(":", "").replace(".", "-")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std of `values` (nan, nan when empty)."""
    arr = np.asarray(values, np.float64)
    if not arr.size:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std())


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per expert and method: mean/std over seeds of final return and survival, rates per round.

    Args:
      runs: one record per (expert, method, seed) with ``final`` (an
        evaluation dict with ``mean_return`` and ``survival``) and, for round
        methods, ``rows`` (the rounds table as dicts).

    Returns:
      ``{expert: {method: {"return": (m, s), "survival": (m, s), "seeds": n,
      "round_return": [(m, s)...], "round_interventions": [(m, s)...]}}}``.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for expert in dict.fromkeys(r["expert"] for r in runs):
        out[expert] = {}
        for method in ALL_METHODS:
            mine = [r for r in runs if r["expert"] == expert and r["method"] == method]
            if not mine:
                continue
            entry: dict[str, Any] = {
                "return": mean_std([r["final"]["mean_return"] for r in mine]),
                "survival": mean_std([r["final"]["survival"] for r in mine]),
                "seeds": len(mine)}
            if all(r.get("rows") for r in mine):
                n = min(len(r["rows"]) for r in mine)
                entry["round_return"] = [mean_std([r["rows"][k]["eval_return"] for r in mine])
                                         for k in range(n)]
                entry["round_interventions"] = [
                    mean_std([r["rows"][k]["intervention_rate"] for r in mine]) for k in range(n)]
            out[expert][method] = entry
    return out


def format_table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The final-results table (Markdown), one block of rows per expert."""
    lines = ["| expert | method | final return | survival | intervention rate per round |",
             "|---|---|---|---|---|"]
    for expert, methods in summary.items():
        for method, e in methods.items():
            rates = " → ".join(f"{100 * m:.0f}%" for m, _ in e.get("round_interventions", []))
            lines.append(f"| {expert} | {method} | {e['return'][0]:.0f} ± {e['return'][1]:.0f} "
                         f"| {100 * e['survival'][0]:.0f} ± {100 * e['survival'][1]:.0f} % "
                         f"| {rates or '–'} |")
    return "\n".join(lines)


# -- plots -----------------------------------------------------------------------------

COLORS = {"rlif": "tab:red", "hg-dagger": "tab:blue", "dagger": "tab:green",
          "bc": "tab:purple", "expert": "black"}


def plot_returns(summary: dict, out_png: str, episode_steps: int) -> str:
    """Evaluation return per round per method, one panel per expert; expert and BC as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experts = list(summary)
    fig, axes = plt.subplots(1, len(experts), figsize=(5.5 * len(experts), 4), squeeze=False)
    for ax, expert in zip(axes[0], experts):
        for method, e in summary[expert].items():
            if "round_return" in e:
                m = np.array([v[0] for v in e["round_return"]])
                s = np.array([v[1] for v in e["round_return"]])
                ks = np.arange(len(m))
                ax.plot(ks, m, marker="o", color=COLORS[method], label=method)
                ax.fill_between(ks, m - s, m + s, color=COLORS[method], alpha=0.15)
            else:
                ax.axhline(e["return"][0], color=COLORS[method], ls="--",
                           label=f"{method} (alone)" if method == "expert" else f"{method} (demos)")
        ax.set_title(f"expert {expert}")
        ax.set_xlabel("round")
        ax.set_ylabel(f"return (policy alone, {episode_steps}-step episodes)")
        ax.set_ylim(0, episode_steps * 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Pushed pendulum: return per round (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def plot_interventions(summary: dict, out_png: str) -> str:
    """Intervened share of recorded steps per round per method, one panel per expert."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experts = list(summary)
    fig, axes = plt.subplots(1, len(experts), figsize=(5.5 * len(experts), 4), squeeze=False)
    for ax, expert in zip(axes[0], experts):
        for method, e in summary[expert].items():
            if "round_interventions" not in e:
                continue
            m = 100 * np.array([v[0] for v in e["round_interventions"]])
            s = 100 * np.array([v[1] for v in e["round_interventions"]])
            ks = np.arange(len(m))
            ax.plot(ks, m, marker="o", color=COLORS[method], label=method)
            ax.fill_between(ks, m - s, m + s, color=COLORS[method], alpha=0.15)
        ax.set_title(f"expert {expert}")
        ax.set_xlabel("round (the round's policy acts, the expert intervenes)")
        ax.set_ylabel("intervened steps (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Value-based interventions per round (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


# -- stages (I/O) ------------------------------------------------------------------------

class Experiment:
    """Runs the stages of `ExperimentConfig` in `workdir`, resuming what exists.

    Args:
      cfg: the experiment.
      workdir: registry, training runs and recordings.
      log: a callable taking one line of text.
    """

    def __init__(self, cfg: ExperimentConfig, workdir: str, log=print):
        from rlif_data.registry.store import Registry

        cfg.validate()
        self.cfg = cfg
        self.workdir = os.path.abspath(workdir)
        self.root = os.path.join(self.workdir, "registry")
        os.makedirs(self.root, exist_ok=True)
        # Policy refs in specs resolve through the default registry root.
        os.environ["RLIF_DATA_ROOT"] = self.root
        self.registry = Registry(self.root)
        self.log = log
        self.timings: dict[str, float] = {}

    def _timed(self, key: str, fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start

    def _published(self, name: str) -> Optional[str]:
        if name in self.registry.names() and "latest" in self.registry.tags(name):
            return f"{name}@latest"
        return None

    def _record(self, name: str, learner, expert, episodes: int, seed: int,
                operator: str, lineage: dict[str, Any]) -> str:
        """Record `episodes` episodes with no interventions and publish them as `name`."""
        import shutil

        from rlif_data import intervention as iv
        from rlif_data import schema as sc
        from rlif_data.envs.gym_dm_env import make_dm_env
        from rlif_data.recording.recorder import SessionInfo, record_session

        ref = self._published(name)
        if ref:
            return ref
        out = os.path.join(self.workdir, "recordings", name)
        if os.path.exists(out):
            shutil.rmtree(out)  # never published: record it again from its seeds
        env = make_dm_env(ENV_ID, seed=seed, max_episode_steps=self.cfg.episode_steps)
        obs_dim = env.gym_env.observation_space.shape[0]
        schema = sc.vector_schema(obs_dim, env.gym_env.action_space.shape[0])
        session = SessionInfo(env_id=ENV_ID, operator=operator, round=0,
                              policy_version=operator, seed=seed)
        record_session(env, out, schema, learner, expert, iv.NoIntervention(), session,
                       episodes, progress=False)
        self.registry.publish(out, name, tags=("latest",),
                              lineage={"job": "rlif_experiment/record", **lineage})
        return f"{name}@latest"

    def reference_data(self) -> str:
        """Reference episodes (clean and noisy), published as ``reference``."""
        from rlif_data.policies import from_spec
        from rlif_data.policies.base import NoisyPolicy
        from rlif_data.envs.pushed_pendulum import make_env

        space = make_env().action_space
        refs = []
        for j, noise in enumerate(self.cfg.ref_noise):
            ref = from_spec(REFERENCE, space, env_id=ENV_ID, seed=j)
            learner = ref if noise == 0 else NoisyPolicy(ref, noise, space.low, space.high,
                                                         seed=5000 + j)
            refs.append(self._record(
                f"reference-noise{j}", learner, ref, self.cfg.ref_episodes, 5000 + 100 * j,
                f"{REFERENCE}+noise{noise}", {"noise_std": noise, "policy": REFERENCE}))
        return refs

    def train_qref(self) -> str:
        """The Q^ref run directory: RLPD on the reference data with the env reward."""
        from trainers import train as train_lib

        out = os.path.join(self.workdir, "qref")
        if train_lib.is_run_directory(out):
            return out
        refs = self._timed("reference data", self.reference_data)
        tc = train_lib.TrainConfig(
            algo="rlpd", dataset=tuple(refs), out=out, steps=self.cfg.qref_steps, reward="env",
            seed=0, env_id=ENV_ID, max_episode_steps=self.cfg.episode_steps, eval_episodes=1,
            checkpoint_every=self.cfg.qref_steps, log_every=max(self.cfg.qref_steps // 10, 1),
            root=self.root, agent=qref_agent(self.cfg))
        self.log(f"Q^ref: RLPD on {', '.join(refs)} for {self.cfg.qref_steps} updates")
        self._timed("Q^ref training", train_lib.train, tc, progress=False)
        return out

    def demos(self, expert: str) -> str:
        """The expert's own episodes (no interventions), published as ``demos-<expert>``."""
        from rlif_data.policies import from_spec
        from rlif_data.envs.pushed_pendulum import make_env

        policy = from_spec(expert, make_env().action_space, env_id=ENV_ID, seed=0)
        return self._timed("demos", self._record, f"demos-{slug(expert)}", policy, policy,
                           self.cfg.demo_episodes, 7000, expert, {"policy": expert})

    def rounds(self, expert: str, method: str, seed: int, qref: str,
               demos: str) -> list[dict[str, Any]]:
        """One rounds run; returns its table as dicts."""
        from trainers.rounds import RoundsConfig, RoundsDriver

        cfg = self.cfg
        rlif = method == "rlif"
        offline = (demos,) if rlif and cfg.offline == "demos" else ()
        name = f"{method}-{slug(expert)}-s{seed}"
        rc = RoundsConfig(
            name=name, env_id=ENV_ID, rounds=cfg.rounds, episodes=cfg.episodes, expert=expert,
            algo=ALGO_OF_METHOD[method], intervention="value", alpha=cfg.alpha, beta=cfg.beta,
            qref=qref, offline=offline, offline_reward=cfg.offline_reward,
            steps=cfg.rlpd_steps if rlif else cfg.bc_steps,
            agent=rlpd_agent(cfg) if rlif else bc_agent(cfg),
            max_episode_steps=cfg.episode_steps, eval_episodes=cfg.eval_episodes, seed=seed,
            workdir=os.path.join(self.workdir, "rounds", name), root=self.root)
        driver = RoundsDriver(rc, progress=False, log=lambda line: self.log(f"  {name}: {line}"))
        rows = self._timed(f"rounds {method}", driver.run)
        return [r.to_json_dict() for r in rows]

    def bc(self, expert: str, seed: int, demos: str, eval_seed: int) -> dict[str, Any]:
        """BC on the expert's demonstrations; its evaluation on the final round's episodes."""
        from trainers import train as train_lib

        cfg = self.cfg
        out = os.path.join(self.workdir, "bc", f"{slug(expert)}-s{seed}")
        tc = train_lib.TrainConfig(
            algo="bc", dataset=(demos,), out=out, steps=cfg.bc_steps * cfg.rounds, seed=seed,
            env_id=ENV_ID, max_episode_steps=cfg.episode_steps, eval_episodes=cfg.eval_episodes,
            checkpoint_every=cfg.bc_steps * cfg.rounds, log_every=cfg.bc_steps, root=self.root,
            agent=bc_agent(cfg))
        if train_lib.is_run_directory(out):
            with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
                trained = json.load(f)
        else:
            trained = dataclasses.asdict(self._timed("bc", train_lib.train, tc, progress=False))
        return self.evaluate_policy_dir(trained["policy_dir"], eval_seed)

    def evaluate_policy_dir(self, policy_dir: str, eval_seed: int) -> dict[str, Any]:
        """A policy directory evaluated on `eval_episodes` episodes from `eval_seed`."""
        from rlif_data.policies import load_mlp_policy

        return self.evaluate(load_mlp_policy(policy_dir), eval_seed)

    def evaluate(self, policy, eval_seed: int) -> dict[str, Any]:
        """`policy` alone on `eval_episodes` episodes seeded from `eval_seed`."""
        from trainers.evaluation import evaluate

        return self._timed("evaluation", lambda: evaluate(
            policy, ENV_ID, self.cfg.eval_episodes, seed=eval_seed,
            max_episode_steps=self.cfg.episode_steps).to_json_dict())

    def expert_alone(self, expert: str, eval_seed: int) -> dict[str, Any]:
        """The expert evaluated on the same episodes as the final round's policies."""
        from rlif_data.policies import from_spec
        from rlif_data.envs.pushed_pendulum import make_env

        return self.evaluate(from_spec(expert, make_env().action_space, env_id=ENV_ID, seed=0),
                             eval_seed)

    def run(self) -> list[dict[str, Any]]:
        """Every stage; returns one record per (expert, method, seed)."""
        cfg = self.cfg
        qref = self.train_qref()
        runs = []
        for expert in cfg.experts:
            demos = self.demos(expert)
            for seed in cfg.seeds:
                # The final round k = rounds-1 evaluates from 10_000 + seed + k
                # (trainers.train); BC and the expert meet the same episodes.
                eval_seed = 10_000 + seed + cfg.rounds - 1
                runs.append({"expert": expert, "method": "expert", "seed": seed,
                             "final": self.expert_alone(expert, eval_seed)})
                runs.append({"expert": expert, "method": "bc", "seed": seed,
                             "final": self.bc(expert, seed, demos, eval_seed)})
                for method in cfg.methods:
                    self.log(f"{expert} seed {seed}: {method}")
                    rows = self.rounds(expert, method, seed, qref, demos)
                    final = self._final_eval(rows[-1])
                    runs.append({"expert": expert, "method": method, "seed": seed,
                                 "rows": rows, "final": final})
        return runs

    def _final_eval(self, row: dict[str, Any]) -> dict[str, Any]:
        """The evaluation stored with the last round's policy."""
        info = self.registry.info(row["policy"])
        return info.manifest["lineage"]["evaluation"]


# -- main -------------------------------------------------------------------------------------

def _parse_config(args) -> ExperimentConfig:
    base = QUICK if args.quick else ExperimentConfig()
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(ExperimentConfig):
        value = getattr(args, field.name, None)
        if value is None:
            continue
        default = getattr(base, field.name)
        if isinstance(default, tuple):
            kind = type(default[0]) if default else str
            value = tuple(kind(v) for v in str(value).split(",") if v)
        changes[field.name] = value
    return dataclasses.replace(base, **changes)


def main(argv=None) -> None:
    """Run the experiment and write the table, plots and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 rounds, tiny steps")
    parser.add_argument("--workdir", default="/tmp/rlif_experiment")
    parser.add_argument("--out", default=None, help="results JSON (default: "
                        "benchmarks/results/rlif_experiment[_quick].json)")
    parser.add_argument("--docs", default=None,
                        help="where the PNGs go (default: docs/, or the workdir with --quick)")
    for field in dataclasses.fields(ExperimentConfig):
        default = getattr(ExperimentConfig(), field.name)
        kind = str if isinstance(default, (tuple, str)) else type(default)
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, type=kind,
                            default=None, help=f"default {default}")
    args = parser.parse_args(argv)
    cfg = _parse_config(args)
    suffix = "_quick" if args.quick else ""
    out = args.out or os.path.join(HERE, "results", f"rlif_experiment{suffix}.json")
    docs = args.docs or (args.workdir if args.quick else os.path.join(ROOT_DIR, "docs"))
    os.makedirs(docs, exist_ok=True)

    started = time.perf_counter()
    experiment = Experiment(cfg, args.workdir,
                            log=lambda line: print(f"[{time.perf_counter() - started:6.0f}s] "
                                                   f"{line}", flush=True))
    runs = experiment.run()
    wall = time.perf_counter() - started
    summary = aggregate(runs)
    returns_png = plot_returns(summary, os.path.join(docs, f"rlif_experiment_return{suffix}.png"),
                               cfg.episode_steps)
    rates_png = plot_interventions(
        summary, os.path.join(docs, f"rlif_experiment_interventions{suffix}.png"))
    print(format_table(summary))
    print(f"wall time {wall:.0f} s; stages: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in experiment.timings.items()))
    write_results(out, {
        "env_id": ENV_ID, "setup": DEFAULT_SETUP.to_json_dict(), "config": cfg.to_json_dict(),
        "command": "benchmarks/rlif_experiment.py " + " ".join(argv or sys.argv[1:]),
        "wall_s": wall, "stage_s": experiment.timings,
        "summary": {e: {m: v for m, v in ms.items()} for e, ms in summary.items()},
        "runs": runs, "plots": [returns_png, rates_png]})
    print(f"wrote {out}, {returns_png}, {rates_png}")


if __name__ == "__main__":
    main()
