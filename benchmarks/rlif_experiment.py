"""Does RLIF beat a suboptimal expert and HG-DAgger? The CPU experiment (issue 16 item 8).

Setting: `InvertedPendulumPushed-v5` (InvertedPendulum-v5 whose pole gets
``+= N(0, 0.9)`` rad/s every 50 steps), episodes cut at `episode_steps`.
From nothing, in one registry under ``--workdir``:

1. **Reference data and Q^ref**: the reference controller (``lqr-aggressive``)
   records episodes clean, with Gaussian action noise, and taking over from
   a random learner (so the data hold off-policy actions and falls); Q^ref
   is the reference's own action value, fitted by policy evaluation with
   RLPD's critic step and saved in rlif-data's critic format.
2. **Expert demonstrations**: each weak expert (``lqr-cap:1.5``,
   ``lqr-cap:0.7`` by default) records episodes in control of every step;
   BC learns from them, and they are every round method's prior (RLPD's
   offline half with a named reward; the imitation baselines' initial data).
3. **Rounds**: for each expert and seed, `trainers.rounds.RoundsDriver` runs
   RLIF (RLPD on the RLIF reward), HG-DAgger and DAgger, each with the same
   expert and the same value-based intervention model (Q^ref; by default
   the official 4-step takeovers and the absolute trigger delta; beta),
   and the ``rlif-zero`` ablation (prior reward 0) for `ablation_experts`.
4. **Report**: final return and survival (mean and std over seeds) of every
   method, the expert alone and BC, all evaluated on the same seeded
   episodes; the intervention rate per round; how many of the learner's
   falls in the recorded rounds had an intervention shortly before; a
   table, two PNGs and a JSON.

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

from rlif_data import intervention as iv  # noqa: E402
from rlif_data.envs.pushed_pendulum import DEFAULT_SETUP, ENV_ID  # noqa: E402

REFERENCE = "lqr-aggressive"
METHODS = ("rlif", "hg-dagger", "dagger", "rlif-zero")
"""Methods run as rounds; BC and the expert alone are evaluated beside them.
``rlif-zero`` is the ablation: RLIF whose prior carries reward 0 instead of
the environment's (the intervention signal alone)."""
ALGO_OF_METHOD = {"rlif": "rlpd", "hg-dagger": "hg-dagger", "dagger": "dagger",
                  "rlif-zero": "rlpd"}
DEMO_VIEW_OF_METHOD = {"rlif": "raw", "rlif-zero": "raw", "hg-dagger": "raw", "dagger": "dagger"}
"""Which form of the demonstrations each method's prior is: RLPD reads the raw
recording (rewards named separately), HG-DAgger its expert-controlled steps
(all of them), DAgger needs the `dagger` view."""
ALL_METHODS = ("expert", "bc") + METHODS
INTERVENTIONS = ("value", "value-official")
"""The value-based models a run may use (`trainers.rounds.INTERVENTIONS`)."""
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
      lr: learning rate of every learner (RLPD: actor, critic and temperature).
      discount: RLPD's discount.
      init_temperature: RLPD's initial entropy temperature.
      intervention: the value-based model of every round method: "value"
        (paper: decided every step) or "value-official" (decided only
        outside takeovers, which last 4 steps).
      alpha: relative margin of the value-based intervention model.
      delta: absolute margin (``Q(a_pi) < Q(a_exp) - delta``); replaces
        `alpha` when set (``--delta none`` selects the relative `alpha`).
      beta: intervention probability when the margin is crossed.
      offline: the prior of every round method: "none" (round 0 is an
        untrained policy) or "demos" (the expert's own demonstrations: RLPD's
        offline half; the imitation baselines' initial data).
      offline_reward: reward of RLIF's prior ("env" as the official code
        keeps for its D4RL half, or "zero"); ``rlif-zero`` always uses "zero".
      ablation_experts: the experts ``rlif-zero`` runs for (it costs as
        much as RLIF).
      eval_episodes: evaluation episodes per round and for the final table
        (every round and the expert and BC meet the same seeded episodes).
      warn_steps: k of the fall-warning measure: a fall under the learner
        counts as warned when an intervention came within the k steps before.
      ref_mix: the reference data for Q^ref, as "KIND:VALUE:EPISODES" entries:
        ``noise:S:N`` -- N episodes of the reference with N(0, S) action
        noise; ``takeover:R:N`` -- N episodes of a random learner from which
        the reference takes over at rate R (4-step takeovers): states on the
        way to a fall and back, which clean reference data never visits.
      qref_steps: critic steps of the Q^ref fit.
      qref_discount: discount of the Q^ref critic.
      qref_tau: target-network rate of the Q^ref fit.
      demo_episodes: expert demonstrations for BC (and the RLIF prior).
    """

    experts: tuple[str, ...] = ("lqr-cap:1.5", "lqr-cap:0.7")
    seeds: tuple[int, ...] = (0, 100, 200)
    methods: tuple[str, ...] = METHODS
    ablation_experts: tuple[str, ...] = ("lqr-cap:0.7",)
    rounds: int = 5
    episodes: int = 5
    episode_steps: int = 500
    rlpd_steps: int = 600
    bc_steps: int = 1000
    hidden: tuple[int, ...] = (64, 64)
    num_qs: int = 10
    utd: int = 4
    batch_size: int = 128
    lr: float = 3e-4
    discount: float = 0.95
    init_temperature: float = 0.1
    intervention: str = "value-official"
    alpha: float = 0.97
    delta: Optional[float] = 0.1
    beta: float = 0.95
    offline: str = "demos"
    offline_reward: str = "env"
    eval_episodes: int = 20
    warn_steps: int = 10
    ref_mix: tuple[str, ...] = ("noise:0:4", "noise:0.5:4", "noise:1.5:4", "takeover:0.5:40")
    qref_steps: int = 3000
    qref_discount: float = 0.95
    qref_tau: float = 0.02
    demo_episodes: int = 10

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
        if self.intervention not in INTERVENTIONS:
            raise ValueError(f"intervention must be one of {list(INTERVENTIONS)}, "
                             f"got {self.intervention!r}")
        if self.offline not in ("none", "demos"):
            raise ValueError(f"offline must be 'none' or 'demos', got {self.offline!r}")
        for name in ("rounds", "episodes", "episode_steps", "rlpd_steps", "bc_steps",
                     "eval_episodes", "qref_steps", "demo_episodes", "warn_steps"):
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
                         ref_mix=("noise:0:2", "takeover:0.5:4"), qref_steps=60,
                         demo_episodes=2, num_qs=4, utd=2)


# -- learner configs ----------------------------------------------------------------

def rlpd_agent(cfg: ExperimentConfig) -> dict[str, Any]:
    """The RLIF learner's RLPDConfig as JSON (the paper's values but smaller)."""
    from trainers.configs import RLPDConfig

    return RLPDConfig(hidden_dims=cfg.hidden, num_qs=cfg.num_qs, utd_ratio=cfg.utd,
                      batch_size=cfg.batch_size, actor_lr=cfg.lr, critic_lr=cfg.lr,
                      temp_lr=cfg.lr, discount=cfg.discount,
                      init_temperature=cfg.init_temperature).to_json_dict()


def bc_agent(cfg: ExperimentConfig) -> dict[str, Any]:
    """The imitation learners' BCConfig as JSON."""
    from trainers.configs import BCConfig

    return BCConfig(hidden_dims=cfg.hidden, batch_size=cfg.batch_size, lr=cfg.lr).to_json_dict()


# -- pure summaries -------------------------------------------------------------------

def parse_mix_entry(entry: str) -> tuple[str, float, int]:
    """``"KIND:VALUE:EPISODES"`` of `ExperimentConfig.ref_mix` -> (kind, value, episodes).

    Raises:
      ValueError: not three fields, an unknown kind, or bad numbers.
    """
    parts = entry.split(":")
    if len(parts) != 3 or parts[0] not in ("noise", "takeover"):
        raise ValueError(f"ref_mix entry {entry!r} is not noise:STD:EPISODES or "
                         "takeover:RATE:EPISODES")
    try:
        value, episodes = float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"ref_mix entry {entry!r}: value and episodes must be numbers") from None
    if episodes < 1 or value < 0 or (parts[0] == "takeover" and not value < 1):
        raise ValueError(f"ref_mix entry {entry!r}: episodes >= 1, noise >= 0, rate in [0, 1)")
    return parts[0], value, episodes


def slug(spec: str) -> str:
    """A registry-safe name part for a policy spec ("lqr-cap:1.5" -> "lqr-cap1-5")."""
    return spec.replace(":", "").replace(".", "-")


def fall_warning(intervention: np.ndarray, terminal: bool, k: int) -> tuple[bool, bool]:
    """Did the episode end in a fall under the learner, and was it warned?

    Args:
      intervention: (T,) intervention flag of each action taken (the
        final observation's row excluded).
      terminal: whether the episode ended in a true termination (a fall).
      k: how many steps before the fall an intervention counts as a warning.

    Returns:
      ``(learner_fall, warned)``: the last action was the learner's and the
      episode terminated; and, if so, whether any of the `k` actions before
      the last one was the expert's.
    """
    flags = np.asarray(intervention, bool)
    if not terminal or not flags.size or flags[-1]:
        return False, False
    return True, bool(flags[max(0, flags.size - 1 - k):-1].any())


def warned_fraction(episodes: Sequence[tuple[np.ndarray, bool]], k: int) -> tuple[int, int]:
    """Falls under the learner and how many of them were warned, over `episodes`.

    Args:
      episodes: ``(intervention flags, terminal)`` per episode (see `fall_warning`).
      k: the warning window.

    Returns:
      ``(falls, warned)``.
    """
    falls = warned = 0
    for flags, terminal in episodes:
        fell, hit = fall_warning(flags, terminal, k)
        falls += fell
        warned += hit
    return falls, warned


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
      "round_return": [(m, s)...], "round_interventions": [(m, s)...],
      "falls_warned": (warned, falls)}}}``; the last sums the recorded
      rounds' falls under the learner (when the rows carry them).
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
                if all("learner_falls" in row for r in mine for row in r["rows"]):
                    entry["falls_warned"] = (
                        sum(row["warned_falls"] for r in mine for row in r["rows"]),
                        sum(row["learner_falls"] for r in mine for row in r["rows"]))
            out[expert][method] = entry
    return out


def format_table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The final-results table (Markdown), one block of rows per expert."""
    lines = ["| expert | method | final return | survival | intervention rate per round "
             "| learner falls warned |", "|---|---|---|---|---|---|"]
    for expert, methods in summary.items():
        for method, e in methods.items():
            rates = " → ".join(f"{100 * m:.0f}%" for m, _ in e.get("round_interventions", []))
            lines.append(f"| {expert} | {method} | {e['return'][0]:.0f} ± {e['return'][1]:.0f} "
                         f"| {100 * e['survival'][0]:.0f} ± {100 * e['survival'][1]:.0f} % "
                         f"| {rates or '–'} | {_warned_text(e.get('falls_warned'))} |")
    return "\n".join(lines)


def _warned_text(falls_warned) -> str:
    if not falls_warned:
        return "–"
    warned, falls = falls_warned
    return f"{warned}/{falls}" + (f" ({100 * warned / falls:.0f}%)" if falls else "")


# -- plots -----------------------------------------------------------------------------

COLORS = {"rlif": "tab:red", "rlif-zero": "tab:orange", "hg-dagger": "tab:blue",
          "dagger": "tab:green",
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
        ax.xaxis.get_major_locator().set_params(integer=True)
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
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("intervened steps (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Value-based interventions per round (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


# -- Q^ref by policy evaluation ------------------------------------------------------------

def linear_policy_actions(gain: np.ndarray, observations: np.ndarray, low: np.ndarray,
                          high: np.ndarray) -> np.ndarray:
    """A linear controller's actions ``clip(-K s)`` for a batch of states (float32).

    Args:
      gain: (m, n) feedback gain K.
      observations: (N, n) states.
      low, high: (m,) action bounds.

    Returns:
      (N, m) actions.
    """
    actions = -np.asarray(observations, np.float64) @ np.asarray(gain, np.float64).T
    return np.clip(actions, low, high).astype(np.float32)


def policy_evaluation_scan(agent, data: dict, key, steps: int, batch_size: int):
    """`steps` critic steps of Q^pi evaluation, as one ``lax.scan`` (jit it).

    Each step draws a minibatch of rows uniformly and applies RLPD's
    `critic_step` with the evaluated policy's next actions, stored in
    ``data["next_policy_actions"]``, and zero log-probabilities (the target
    has no entropy term when the config's ``backup_entropy`` is False).

    Args:
      agent: an `RLPDLearner` (its critic is fitted; the actor is unused).
      data: device arrays: the `RL_KEYS` columns and ``next_policy_actions``,
        actions scaled to [-1, 1].
      key: a ``jax.random`` key.
      steps: critic steps.
      batch_size: rows per step.

    Returns:
      ``(agent, losses)`` with the (steps,) critic losses.
    """
    import jax
    import jax.numpy as jnp

    from trainers.agents import batch as bk
    from trainers.agents.rlpd.critic import critic_step

    rows = data[bk.REWARDS].shape[0]

    def body(agent, step_key):
        pick_key, subset_key = jax.random.split(step_key)
        idx = jax.random.randint(pick_key, (batch_size,), 0, rows)
        batch = {k: data[k][idx] for k in bk.RL_KEYS}
        agent, info = critic_step(agent, batch, data["next_policy_actions"][idx],
                                  jnp.zeros((batch_size,), jnp.float32), subset_key)
        return agent, info["critic_loss"]

    return jax.lax.scan(body, agent, jax.random.split(key, steps))


def fit_reference_q(refs: Sequence[str], out: str, cfg: "ExperimentConfig", root: str,
                    log=print) -> str:
    """Fit Q^{pi_ref} on `refs` (env reward) and save it in rlif-data's critic format.

    Args:
      refs: the reference datasets.
      out: the critic directory to write (`rlif_data.policies.critic.save_critic`).
      cfg: the experiment (Q^ref steps, discount, network sizes).
      root: the registry root.
      log: one-line progress messages.

    Returns:
      `out`.
    """
    import functools

    import jax
    import jax.numpy as jnp

    from rlif_data.envs.pushed_pendulum import make_env
    from rlif_data.policies import from_spec
    from trainers.agents import batch as bk
    from trainers.agents.rlpd import RLPDLearner
    from trainers.agents.rlpd.export import save_critic
    from trainers.configs import RLPDConfig
    from trainers.data import load_transitions, normalize_actions

    space = make_env().action_space
    low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
    reference = from_spec(REFERENCE, space, env_id=ENV_ID, seed=0)
    tr, _ = load_transitions(list(refs), reward="env", root=root)
    data = {bk.OBSERVATIONS: tr.observations, bk.ACTIONS: normalize_actions(tr.actions, low, high),
            bk.REWARDS: tr.rewards, bk.DISCOUNTS: tr.discounts,
            bk.NEXT_OBSERVATIONS: tr.next_observations,
            "next_policy_actions": normalize_actions(
                linear_policy_actions(reference.gain, tr.next_observations, low, high),
                low, high)}
    data = {k: jnp.asarray(v, jnp.float32) for k, v in data.items()}
    config = RLPDConfig(hidden_dims=cfg.hidden, num_qs=cfg.num_qs, batch_size=cfg.batch_size * 2,
                        discount=cfg.qref_discount, tau=cfg.qref_tau, backup_entropy=False)
    agent = RLPDLearner.create(0, int(tr.observations.shape[-1]), tr.action_dim, config)
    chunk = max(cfg.qref_steps // 5, 1)
    run = jax.jit(functools.partial(policy_evaluation_scan, batch_size=config.batch_size),
                  static_argnames="steps")
    key, done = jax.random.PRNGKey(0), 0
    while done < cfg.qref_steps:
        n = min(chunk, cfg.qref_steps - done)
        key, sub = jax.random.split(key)
        agent, losses = run(agent, data, sub, steps=n)
        done += n
        log(f"  Q^ref step {done}: critic loss {float(np.mean(np.asarray(losses))):.4f}")
    return str(save_critic(out, agent, [float(v) for v in low], [float(v) for v in high]))


BEAM_ARGS = ["--runner=DirectRunner", "--direct_num_workers=1",
             "--direct_running_mode=in_memory"]
"""One in-process Beam worker: the demonstrations are small."""


class ExpertInControl(iv.InterventionModel):
    """An intervention model under which the expert acts at every step (demonstrations).

    Recording demonstrations this way sets every step's intervention flag,
    so HG-DAgger (which learns from expert-controlled steps) can use them.
    """

    name = "demonstration"

    def reset(self, seed: Optional[int] = None) -> None:
        """Nothing to reset."""

    def decide(self, ctx) -> bool:
        """The expert is in control."""
        return True

    def params(self) -> dict[str, Any]:
        """No parameters."""
        return {}



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
                operator: str, lineage: dict[str, Any], model=None) -> str:
        """Record `episodes` episodes and publish them as `name` (if not yet published).

        `model` decides who acts (None: the learner alone).
        """
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
        record_session(env, out, schema, learner, expert, model or iv.NoIntervention(), session,
                       episodes, progress=False)
        self.registry.publish(out, name, tags=("latest",),
                              lineage={"job": "rlif_experiment/record", **lineage})
        return f"{name}@latest"

    def reference_data(self) -> list[str]:
        """The reference episodes of `ref_mix`, one published dataset per entry."""
        from rlif_data import intervention as iv
        from rlif_data.envs.pushed_pendulum import make_env
        from rlif_data.policies import from_spec
        from rlif_data.policies.base import NoisyPolicy, RandomPolicy

        space = make_env().action_space
        refs = []
        for j, entry in enumerate(self.cfg.ref_mix):
            kind, value, episodes = parse_mix_entry(entry)
            seed = 5000 + 1000 * j
            ref = from_spec(REFERENCE, space, env_id=ENV_ID, seed=seed)
            if kind == "noise":
                learner = ref if value == 0 else NoisyPolicy(ref, value, space.low, space.high,
                                                             seed=seed)
                model = iv.NoIntervention()
            else:
                learner = RandomPolicy(space.low, space.high, seed=seed)
                model = iv.RandomTakeover(value, seed=seed)
            refs.append(self._record(
                f"reference-{j}", learner, ref, episodes, seed, f"{REFERENCE}:{entry}",
                {"mix": entry, "policy": REFERENCE}, model=model))
        return refs

    def train_qref(self) -> str:
        """The Q^ref critic directory: the reference's Q fitted on the reference data.

        Q^ref is the reference policy's own action value (paper: Q^{pi_ref}),
        fitted by policy evaluation with RLPD's critic step (same ensemble,
        LayerNorm, min over a random 2 in the target) where the next action
        is the reference's, not a SAC actor's. An offline RLPD run's critic
        is the value of its own actor, which these narrow data cannot make
        good, so it barely tells actions apart (docs/experiments.md).
        """
        from rlif_data.policies.critic import CRITIC_CONFIG_FILENAME

        out = os.path.join(self.workdir, "qref")
        if os.path.isfile(os.path.join(out, CRITIC_CONFIG_FILENAME)):
            return out
        refs = self._timed("reference data", self.reference_data)
        self.log(f"Q^ref: policy evaluation of {REFERENCE} on {', '.join(refs)} "
                 f"for {self.cfg.qref_steps} critic steps")
        self._timed("Q^ref fit", fit_reference_q, refs, out, self.cfg, self.root, self.log)
        return out

    def demos(self, expert: str) -> dict[str, str]:
        """The expert's own episodes, published raw and in the `dagger` view.

        The expert controls every step and the steps say so (intervention
        flags set), which is what HG-DAgger learns from.

        Returns:
          ``{"raw": ref, "dagger": ref}``.
        """
        import tempfile

        from pipelines import relabel
        from rlif_data.envs.pushed_pendulum import make_env
        from rlif_data.policies import from_spec

        policy = from_spec(expert, make_env().action_space, env_id=ENV_ID, seed=0)
        name = f"demos-{slug(expert)}"
        raw = self._timed("demos", self._record, name, policy, policy, self.cfg.demo_episodes,
                          7000, expert, {"policy": expert}, model=ExpertInControl())
        dagger = self._published(f"{name}-dagger")
        if dagger is None:
            info = self.registry.info(raw)
            with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
                out = relabel.run(info.path, os.path.join(tmp, "dagger"), "dagger", BEAM_ARGS)
                source = {"ref": info.ref, "content_sha256": info.manifest["content_sha256"]}
                self.registry.publish(out, f"{name}-dagger", tags=("latest",), lineage={
                    "job": "rlif_experiment/relabel", "view": "dagger", "inputs": [source]})
            dagger = f"{name}-dagger@latest"
        return {"raw": raw, "dagger": dagger}

    def rounds(self, expert: str, method: str, seed: int, qref: str,
               demos: dict[str, str]) -> list[dict[str, Any]]:
        """One rounds run; returns its table as dicts."""
        from trainers.rounds import RoundsConfig, RoundsDriver, round_tag

        cfg = self.cfg
        rlpd = ALGO_OF_METHOD[method] == "rlpd"
        offline = (demos[DEMO_VIEW_OF_METHOD[method]],) if cfg.offline == "demos" else ()
        name = f"{method}-{slug(expert)}-s{seed}"
        rc = RoundsConfig(
            name=name, env_id=ENV_ID, rounds=cfg.rounds, episodes=cfg.episodes, expert=expert,
            algo=ALGO_OF_METHOD[method], intervention=cfg.intervention, alpha=cfg.alpha,
            delta=cfg.delta, beta=cfg.beta, qref=qref, offline=offline,
            offline_reward="zero" if method == "rlif-zero" else cfg.offline_reward,
            steps=cfg.rlpd_steps if rlpd else cfg.bc_steps,
            agent=rlpd_agent(cfg) if rlpd else bc_agent(cfg),
            max_episode_steps=cfg.episode_steps, eval_episodes=cfg.eval_episodes, seed=seed,
            workdir=os.path.join(self.workdir, "rounds", name), root=self.root)
        driver = RoundsDriver(rc, progress=False, log=lambda line: self.log(f"  {name}: {line}"))
        rows = [r.to_json_dict() for r in self._timed(f"rounds {method}", driver.run)]
        for k, row in enumerate(rows):
            row["learner_falls"], row["warned_falls"] = self.fall_warnings(
                f"{rc.raw_name}@{round_tag(k)}")
        return rows

    def fall_warnings(self, raw_ref: str) -> tuple[int, int]:
        """Falls under the learner in a recorded round, and how many were warned."""
        from rlif_data import schema as sc
        from rlif_data.recording.reader import EpisodeReader

        episodes = []
        with EpisodeReader(self.registry.path(raw_ref), repair=False) as reader:
            for i in range(len(reader)):
                steps = reader[i][sc.STEPS]
                episodes.append((np.asarray(steps[sc.INTERVENTION], bool)[:-1],
                                 bool(np.asarray(steps[sc.IS_TERMINAL])[-1])))
        return warned_fraction(episodes, self.cfg.warn_steps)

    def bc(self, expert: str, seed: int, demos: str, eval_seed: int) -> dict[str, Any]:
        """BC on the expert's demonstrations; its evaluation on the rounds' episodes."""
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
        """The expert evaluated on the same episodes as the rounds' policies."""
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
                # Every round evaluates from 10_000 + seed (trainers.rounds), so
                # rounds, BC and the expert all meet the same episodes.
                eval_seed = 10_000 + seed
                runs.append({"expert": expert, "method": "expert", "seed": seed,
                             "final": self.expert_alone(expert, eval_seed)})
                runs.append({"expert": expert, "method": "bc", "seed": seed,
                             "final": self.bc(expert, seed, demos["raw"], eval_seed)})
                for method in cfg.methods:
                    if method == "rlif-zero" and expert not in cfg.ablation_experts:
                        continue
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
        if field.name == "delta":  # "none" selects the relative trigger (alpha)
            value = None if str(value).lower() == "none" else float(value)
        elif isinstance(default, tuple):
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
    parser.add_argument("--replot", default=None, metavar="JSON",
                        help="only redraw the table and plots from a results JSON")
    for field in dataclasses.fields(ExperimentConfig):
        default = getattr(ExperimentConfig(), field.name)
        kind = (str if isinstance(default, (tuple, str)) or field.name == "delta"
                else type(default))
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, type=kind,
                            default=None, help=f"default {default}")
    args = parser.parse_args(argv)
    cfg = _parse_config(args)
    suffix = "_quick" if args.quick else ""
    out = args.out or os.path.join(HERE, "results", f"rlif_experiment{suffix}.json")
    docs = args.docs or (args.workdir if args.quick else os.path.join(ROOT_DIR, "docs"))
    os.makedirs(docs, exist_ok=True)
    if args.replot:
        with open(args.replot, encoding="utf-8") as f:
            saved = json.load(f)
        summary = aggregate(saved["runs"])
        print(format_table(summary))
        for png in (plot_returns(summary, os.path.join(docs, f"rlif_experiment_return{suffix}.png"),
                                 saved["config"]["episode_steps"]),
                    plot_interventions(summary, os.path.join(
                        docs, f"rlif_experiment_interventions{suffix}.png"))):
            print(f"wrote {png}")
        return

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
