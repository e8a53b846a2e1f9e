"""Survival and return of the pushed-pendulum experts (the CPU experiment's setting).

Each policy spec (``lqr-aggressive``, ``lqr``, ``lqr-cap:1.5``, ``lqr-cap:0.7``,
``random``) runs ``--episodes`` episodes of ``InvertedPendulumPushed-v5`` with
the setting of `rlif_data.envs.pushed_pendulum.DEFAULT_SETUP` (a pole push of
N(0, 0.9) rad/s every 50 steps, 1000-step episodes). Episode i is reset with
seed ``--seed + i``, so every policy meets the same reset noise and, until it
acts differently, the same pushes. Policies come from
`rlif_data.policies.from_spec`, the path `rlif-data record --expert` takes.

An episode "survives" when it reaches the time limit without the pole passing
0.2 rad. Because the pushes of a shorter episode are a prefix of a longer
one's, the survival for shorter limits (``--also-at``, default 200 and 500
steps) is read off the same runs: the share of episodes still alive then.

```
.venv/bin/python benchmarks/pendulum_experts.py            # 100 episodes each, ~20 s on 2 cores
.venv/bin/python benchmarks/pendulum_experts.py --quick    # 10 episodes each
```
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from results_io import write_results  # noqa: E402

from rlif_data import policies  # noqa: E402
from rlif_data.envs.pushed_pendulum import (  # noqa: E402
    DEFAULT_SETUP,
    ENV_ID,
    make_env,
)

SPECS = ("lqr-aggressive", "lqr", "lqr-cap:1.5", "lqr-cap:0.7", "random")


def run_episode(env, policy, seed: int) -> tuple[float, int, bool]:
    """One episode from ``reset(seed=seed)``: (return, steps, survived)."""
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset(seed)
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total += float(reward)
        steps += 1
        if terminated or truncated:
            return total, steps, not terminated


def measure(spec: str, episodes: int, seed: int, also_at: list[int]) -> dict:
    """Survival (at the time limit and at `also_at` steps) and returns of one policy."""
    env = make_env(DEFAULT_SETUP)
    policy = policies.from_spec(spec, env.action_space, env_id=ENV_ID, seed=seed)
    start = time.perf_counter()
    returns, lengths, survived = [], [], []
    for i in range(episodes):
        ret, steps, alive = run_episode(env, policy, seed + i)
        returns.append(ret)
        lengths.append(steps)
        survived.append(alive)
    seconds = time.perf_counter() - start
    env.close()
    lengths_a, survived_a = np.asarray(lengths), np.asarray(survived)
    rate = float(survived_a.mean())
    row = {
        "spec": spec,
        "episodes": episodes,
        "survival": rate,
        # Binomial standard error: how far 100 episodes may sit from the true rate.
        "survival_se": float(np.sqrt(rate * (1 - rate) / episodes)),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_steps": float(lengths_a.mean()),
        "steps_per_s": float(lengths_a.sum() / seconds),
        "survival_at": {str(t): float(np.mean(survived_a | (lengths_a > t))) for t in also_at},
    }
    if hasattr(policy, "gain"):
        row["gain"] = [float(g) for g in np.ravel(policy.gain)]
        row["cap"] = policy.cap
    return row


def main(argv=None) -> None:
    """Measure every spec and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    parser.add_argument("--specs", default=",".join(SPECS))
    parser.add_argument("--also-at", default="200,500",
                        help="shorter time limits to read survival at")
    parser.add_argument("--quick", action="store_true", help="10 episodes per policy")
    parser.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", "pendulum_experts.json"))
    args = parser.parse_args(argv)
    episodes = 10 if args.quick else args.episodes
    also_at = [int(t) for t in args.also_at.split(",") if t]
    start = time.time()
    rows = [measure(spec, episodes, args.seed, also_at) for spec in args.specs.split(",")]
    print(f"{ENV_ID}: push N(0, {DEFAULT_SETUP.push_std}) every {DEFAULT_SETUP.push_every} "
          f"steps, {DEFAULT_SETUP.episode_steps}-step episodes, {episodes} episodes "
          f"(seeds {args.seed}..{args.seed + episodes - 1})")
    header = f"{'policy':15s} {'survive':>8s} {'+-se':>5s} {'return':>7s} {'+-sd':>5s} " + \
        " ".join(f"{'@' + str(t):>6s}" for t in also_at) + f" {'steps/s':>8s}"
    print(header)
    for r in rows:
        print(f"{r['spec']:15s} {r['survival']:8.2f} {r['survival_se']:5.2f} "
              f"{r['mean_return']:7.1f} {r['std_return']:5.0f} "
              + " ".join(f"{r['survival_at'][str(t)]:6.2f}" for t in also_at)
              + f" {r['steps_per_s']:8.0f}")
    write_results(args.out, {
        "env_id": ENV_ID,
        "setup": DEFAULT_SETUP.to_json_dict(),
        "episodes": episodes,
        "seed": args.seed,
        "rows": rows,
        "wall_s": time.time() - start,
    })


if __name__ == "__main__":
    main()
