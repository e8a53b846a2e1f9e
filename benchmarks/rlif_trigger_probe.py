"""Would Q^ref's trigger fire before the learner's falls? A probe of recorded RLIF rounds.

The falling-pole pitfall (docs/experiments.md): a fall under the learner
ends the episode with value 0, so RLIF only learns to avoid it when the
value-based model intervenes shortly before. This probe reads the rounds an
`rlif_experiment.py` run recorded, takes every episode that ends in a fall
while the learner acts, and asks, for the `--window` learner steps before the
fall, whether the relative trigger ``Q(a_pi) < alpha * Q(a_exp)`` or an
absolute one ``Q(a_pi) < Q(a_exp) - delta`` holds at any of them (the
trigger alone, before beta's coin). Beside it: the share of all decision
steps where each trigger holds, i.e. what it would cost in interventions.
Decision steps are the learner's steps and each takeover's first step (the
learner's proposal was refused there). The counterfactual is exact up to
the first firing step, since the recorded trajectory is the same until
then.

```
.venv/bin/python benchmarks/rlif_trigger_probe.py --workdir /tmp/rlif_experiment
```
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def trigger_hits(q_pi: np.ndarray, q_exp: np.ndarray, alphas: Sequence[float],
                 deltas: Sequence[float]) -> dict[str, np.ndarray]:
    """Where each trigger holds, per step.

    Args:
      q_pi: (N,) Q^ref of the learner's actions.
      q_exp: (N,) Q^ref of the expert's actions at the same states.
      alphas: relative margins (``q_pi < alpha * q_exp``).
      deltas: absolute margins (``q_pi < q_exp - delta``).

    Returns:
      ``{"alpha=A": (N,) bool, "delta=D": (N,) bool}``.
    """
    q_pi, q_exp = np.asarray(q_pi, np.float64), np.asarray(q_exp, np.float64)
    out = {f"alpha={a:g}": q_pi < a * q_exp for a in alphas}
    out.update({f"delta={d:g}": q_pi < q_exp - d for d in deltas})
    return out


def decision_steps(intervention: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Steps where the model chose between learner and expert (bool per action).

    The learner's own steps and the first step of each takeover: there the
    learner proposed an action and the model sent the expert in; later
    takeover steps were never the learner's to lose.
    """
    return ~np.asarray(intervention, bool) | np.asarray(starts, bool)


def fall_window(intervention: np.ndarray, starts: np.ndarray, terminal: bool,
                window: int) -> np.ndarray:
    """Indices of the decision steps among the last `window` actions before a fall.

    Args:
      intervention: (T,) flag per action taken.
      starts: (T,) takeover-start flag per action taken.
      terminal: whether the episode ended in a fall.
      window: how many final actions to look at.

    Returns:
      Indices (possibly empty): empty unless the episode fell with the
      learner acting last.
    """
    flags = np.asarray(intervention, bool)
    if not terminal or not flags.size or flags[-1]:
        return np.zeros((0,), np.int64)
    idx = np.arange(max(0, flags.size - window), flags.size)
    return idx[decision_steps(flags, starts)[idx]]


def probe(workdir: str, window: int, alphas, deltas, qref: str = "") -> dict:
    """Per RLIF run of `workdir`: falls, and for each trigger the warned share and cost.

    `qref` is the critic directory (default: the run's own ``qref``).
    """
    from rlif_data import schema as sc
    from rlif_data.policies.critic import find_critic, load_critic
    from rlif_data.recording.reader import EpisodeReader
    from rlif_data.registry.store import Registry

    critic = load_critic(find_critic(qref or os.path.join(workdir, "qref")))
    registry = Registry(os.path.join(workdir, "registry"))
    results = {}
    for name in sorted(n for n in registry.names() if n.endswith("-raw") and "rlif" in n):
        falls, warned, steps, fired = 0, {}, 0, {}
        gaps = []
        for tag in sorted(t for t in registry.tags(name) if t.startswith("round-")):
            with EpisodeReader(registry.path(f"{name}@{tag}"), repair=False) as reader:
                for i in range(len(reader)):
                    st = reader[i][sc.STEPS]
                    flags = np.asarray(st[sc.INTERVENTION], bool)[:-1]
                    starts = np.asarray(st[sc.INTERVENTION_START], bool)[:-1]
                    obs = np.asarray(st[sc.OBSERVATION], np.float32)[:-1]
                    a_pi = np.asarray(st[sc.POLICY_ACTION], np.float32)[:-1]
                    a_exp = np.asarray(st[sc.EXPERT_ACTION], np.float32)[:-1]
                    hits = trigger_hits(critic.mean_q(obs, a_pi), critic.mean_q(obs, a_exp),
                                        alphas, deltas)
                    learner = decision_steps(flags, starts)
                    steps += int(learner.sum())
                    for key, h in hits.items():
                        fired[key] = fired.get(key, 0) + int(h[learner].sum())
                    fell = bool(np.asarray(st[sc.IS_TERMINAL])[-1])
                    idx = fall_window(flags, starts, fell, window)
                    if idx.size:
                        falls += 1
                        gaps.append(float(np.max(critic.mean_q(obs[idx], a_exp[idx])
                                                 - critic.mean_q(obs[idx], a_pi[idx]))))
                        for key, h in hits.items():
                            warned[key] = warned.get(key, 0) + int(h[idx].any())
        results[name] = {"learner_falls": falls, "learner_steps": steps,
                         "warned": warned, "fired_share": {k: v / max(steps, 1)
                                                           for k, v in fired.items()},
                         "max_gap_before_fall": gaps}
    return results


def main(argv=None) -> None:
    """Print the probe as JSON (and write it with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--alphas", default="0.97")
    parser.add_argument("--deltas", default="0.05,0.1,0.2,0.5")
    parser.add_argument("--qref", default="", help="critic directory (default WORKDIR/qref)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    res = probe(args.workdir, args.window, [float(v) for v in args.alphas.split(",")],
                [float(v) for v in args.deltas.split(",")], args.qref)
    for name, r in res.items():
        gaps = np.asarray(r["max_gap_before_fall"])
        print(f"{name}: {r['learner_falls']} learner falls, {r['learner_steps']} decision steps; "
              f"max gap Q(a_exp)-Q(a_pi) before a fall: median "
              f"{np.median(gaps) if gaps.size else float('nan'):.3f}")
        for key in r["fired_share"]:
            print(f"  {key}: warned {r['warned'].get(key, 0)}/{r['learner_falls']}, "
                  f"fires on {100 * r['fired_share'][key]:.1f}% of decision steps")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
