"""RLPD critic updates per second: our ``lax.scan`` update vs a Python loop vs ikostrikov/rlpd.

Three implementations of the same RLPD update (U critic steps, then one actor
and one temperature step; 10 LayerNorm critics, min over a random 2, hidden
(256, 256), batch 256, 17-dim observations, 6-dim actions, U = 20), on the
same random batch, in the same run:

  scan         `RLPDLearner.update`: the U critic steps are one ``jax.lax.scan``
               inside one jitted call.
  python-loop  the straightforward version of the same network: a Python loop
               over U calling a jitted single critic step
               (`RLPDLearner.update_critic_step`), then the jitted actor +
               temperature step (`update_actor_and_temperature`).
  rlpd         ikostrikov/rlpd's own ``SACLearner.update`` (a Python loop
               unrolled inside ``jit``), run unmodified in a separate virtual
               environment (``--rlpd-python``) from a checkout of its source
               (``--rlpd-src``). Its code never enters this repository: a small
               driver script is written to a temporary directory, imports rlpd
               from ``--rlpd-src`` and answers timing requests over a pipe, so
               its windows interleave with ours. Omitted without ``--rlpd-src``.

Per implementation: ``compile s`` is the wall time of the first call (trace +
compile + one run; JAX's caches are cleared first); ``2nd call s`` is the
second call (rlpd retraces there, and once more at the third call: its
initial and updated states have different pytree metadata; the third call's
time is in the JSON). After one untimed call each (starting one implementation
clears JAX's caches for the others), ``--repeats`` windows of ``--calls`` update
calls each are timed, interleaved across the implementations; ``updates/s``
is U * calls / window seconds (critic updates), median over windows;
``cpu ms/upd`` is the process CPU time per critic update (all threads), which
other processes on a shared machine disturb less than the wall time.

Targets (project issue): compile < 15 s at U = 20; scan updates/s >= the
Python loop and >= rlpd. On a GPU the scan should reach >= 1.5x the loop.

Scratch environment for rlpd (outside the repository)::

  python3.11 -m venv /tmp/rlpd-venv
  /tmp/rlpd-venv/bin/pip install jax==0.4.34 jaxlib==0.4.34 flax==0.10.4 optax \\
      tensorflow-probability==0.25 gym==0.23.1 ml_collections 'numpy<2'
  # the source: any checkout of github.com/ikostrikov/rlpd in /tmp/rlpd-src

Usage:
  .venv/bin/python benchmarks/train_throughput.py --rlpd-src /tmp/rlpd-src \\
      --rlpd-python /tmp/rlpd-venv/bin/python      # ~4-5 min on 2 cores
  .venv/bin/python benchmarks/train_throughput.py --quick   # ours only, ~1 min
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

import numpy as np

# Allow `python benchmarks/train_throughput.py` from the repository root.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import jax  # noqa: E402

from trainers.agents import batch as bk  # noqa: E402
from trainers.agents.rlpd import RLPDLearner  # noqa: E402
from trainers.configs import RLPDConfig  # noqa: E402

from results_io import write_results  # benchmarks/ is on sys.path when run as a script

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                           "train_throughput.json")
COMPILE_TARGET_S = 15.0

# The driver run inside rlpd's environment. It is this project's code (it only
# calls rlpd's public SACLearner API); rlpd reads `tfp.substrates` as an
# attribute, which TFP 0.25 loads lazily, so the substrate is imported first.
RLPD_DRIVER = r'''
import json, sys, time
args = json.loads(sys.argv[1])
sys.path.insert(0, args["src"])
import tensorflow_probability.substrates.jax  # noqa: F401
import gym
import jax
import numpy as np
from rlpd.agents import SACLearner


def emit(data):
    print(json.dumps(data), flush=True)


u, b = args["utd"], args["batch"]
rng = np.random.default_rng(args["seed"])
rows = u * b
batch = {
    "observations": rng.normal(size=(rows, args["obs_dim"])).astype(np.float32),
    "actions": rng.uniform(-1, 1, (rows, args["action_dim"])).astype(np.float32),
    "rewards": rng.normal(size=(rows,)).astype(np.float32),
    "masks": np.ones(rows, np.float32),
    "next_observations": rng.normal(size=(rows, args["obs_dim"])).astype(np.float32),
}
obs_space = gym.spaces.Box(-np.inf, np.inf, (args["obs_dim"],), np.float32)
act_space = gym.spaces.Box(-1.0, 1.0, (args["action_dim"],), np.float32)
agent = SACLearner.create(args["seed"], obs_space, act_space, hidden_dims=tuple(args["hidden"]),
                          num_qs=args["num_qs"], num_min_qs=args["num_min_qs"],
                          critic_layer_norm=True)
times = []
for _ in range(3):
    t = time.perf_counter()
    agent, info = agent.update(batch, u)
    jax.block_until_ready(info)
    times.append(time.perf_counter() - t)
emit({"compile_s": times[0], "second_call_s": times[1], "third_call_s": times[2],
      "cache_size": agent.update._cache_size(), "jax": jax.__version__,
      "device": str(jax.devices()[0])})
for line in sys.stdin:
    cmd = line.split()
    if not cmd or cmd[0] != "run":
        break
    t, c = time.perf_counter(), time.process_time()
    for _ in range(int(cmd[1])):
        agent, info = agent.update(batch, u)
    jax.block_until_ready(info)
    emit({"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c})
'''


def make_batch(rows: int, obs_dim: int, action_dim: int, seed: int) -> dict[str, np.ndarray]:
    """Random transitions in the layout of the RLPD sampler (the same draws as the driver)."""
    rng = np.random.default_rng(seed)
    return {
        bk.OBSERVATIONS: rng.normal(size=(rows, obs_dim)).astype(np.float32),
        bk.ACTIONS: rng.uniform(-1, 1, (rows, action_dim)).astype(np.float32),
        bk.REWARDS: rng.normal(size=(rows,)).astype(np.float32),
        bk.DISCOUNTS: np.ones(rows, np.float32),
        bk.NEXT_OBSERVATIONS: rng.normal(size=(rows, obs_dim)).astype(np.float32),
    }


class InProcess:
    """One of our implementations: a function ``agent -> agent`` doing one update."""

    def __init__(self, name: str, agent: RLPDLearner, step: Callable[[RLPDLearner], Any]):
        self.name = name
        self.agent = agent
        self.step = step

    def start(self) -> dict[str, float]:
        """Clear JAX's caches, then time the first three calls."""
        jax.clear_caches()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            self.agent = self.step(self.agent)
            jax.block_until_ready(self.agent)
            times.append(time.perf_counter() - t)
        return {"compile_s": times[0], "second_call_s": times[1], "third_call_s": times[2]}

    def window(self, calls: int) -> tuple[float, float]:
        """Wall and process CPU seconds for ``calls`` update calls."""
        t, c = time.perf_counter(), time.process_time()
        for _ in range(calls):
            self.agent = self.step(self.agent)
        jax.block_until_ready(self.agent)
        return time.perf_counter() - t, time.process_time() - c

    def close(self) -> None:
        """Nothing to release."""


class RlpdProcess:
    """ikostrikov/rlpd's SACLearner in its own environment, driven over a pipe."""

    name = "rlpd"

    def __init__(self, python: str, src: str, spec: dict[str, Any]):
        self._dir = tempfile.mkdtemp(prefix="rlpd-driver-")
        self._script = os.path.join(self._dir, "rlpd_driver.py")
        with open(self._script, "w") as f:
            f.write(RLPD_DRIVER)
        self._cmd = [python, self._script, json.dumps({**spec, "src": os.path.abspath(src)})]
        self._proc: Optional[subprocess.Popen] = None
        self._log = open(os.path.join(self._dir, "stderr.log"), "w+")

    def _reply(self) -> dict[str, Any]:
        line = self._proc.stdout.readline()
        if not line:
            self._log.seek(0)
            tail = self._log.read()[-2000:]
            raise RuntimeError(f"rlpd driver exited ({' '.join(self._cmd[:2])}):\n{tail}")
        return json.loads(line)

    def start(self) -> dict[str, float]:
        """Start the driver; it reports its first three calls."""
        self._proc = subprocess.Popen(self._cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, text=True)
        return self._reply()

    def window(self, calls: int) -> tuple[float, float]:
        """Wall and CPU seconds for ``calls`` update calls, measured inside the driver."""
        self._proc.stdin.write(f"run {calls}\n")
        self._proc.stdin.flush()
        reply = self._reply()
        return float(reply["seconds"]), float(reply["cpu_s"])

    def close(self) -> None:
        """Stop the driver and remove its directory."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.write("quit\n")
            self._proc.stdin.flush()
            self._proc.wait(timeout=60)
        self._log.close()
        for name in os.listdir(self._dir):
            os.remove(os.path.join(self._dir, name))
        os.rmdir(self._dir)


def python_loop_step(utd: int, batch_size: int, batch: dict[str, np.ndarray]):
    """The straightforward update: U jitted critic steps from Python, then actor + temperature."""
    minibatches = [{k: v[i * batch_size:(i + 1) * batch_size] for k, v in batch.items()}
                   for i in range(utd)]

    def step(agent: RLPDLearner) -> RLPDLearner:
        for minibatch in minibatches:
            agent, _ = agent.update_critic_step(minibatch)
        agent, _ = agent.update_actor_and_temperature(minibatches[-1])
        return agent

    return step


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--utd", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-qs", type=int, default=10)
    p.add_argument("--num-min-qs", type=int, default=2)
    p.add_argument("--hidden", default="256,256", help="comma-separated hidden sizes")
    p.add_argument("--obs-dim", type=int, default=17)
    p.add_argument("--action-dim", type=int, default=6)
    p.add_argument("--calls", type=int, default=10, help="update calls per timed window")
    p.add_argument("--repeats", type=int, default=3, help="timed windows per implementation")
    p.add_argument("--impls", default="scan,python-loop,rlpd")
    p.add_argument("--rlpd-src", default=None, help="checkout of ikostrikov/rlpd")
    p.add_argument("--rlpd-python", default=None, help="python of rlpd's environment")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2 calls x 1 window, ours only")
    p.add_argument("--out", default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.calls, args.repeats, args.rlpd_src = 2, 1, None
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    wall = time.perf_counter()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    config = RLPDConfig(hidden_dims=hidden, num_qs=args.num_qs, num_min_qs=args.num_min_qs,
                        batch_size=args.batch_size, utd_ratio=args.utd)
    batch = make_batch(args.utd * args.batch_size, args.obs_dim, args.action_dim, args.seed)
    agent = RLPDLearner.create(args.seed, args.obs_dim, args.action_dim, config)
    wanted = args.impls.split(",")
    impls: list[Any] = []
    if "scan" in wanted:
        impls.append(InProcess("scan", agent, lambda a: a.update(batch, args.utd)[0]))
    if "python-loop" in wanted:
        impls.append(InProcess("python-loop", agent,
                               python_loop_step(args.utd, args.batch_size, batch)))
    if "rlpd" in wanted and args.rlpd_src:
        if not args.rlpd_python:
            raise SystemExit("--rlpd-src needs --rlpd-python (the python of rlpd's environment)")
        spec = {"utd": args.utd, "batch": args.batch_size, "obs_dim": args.obs_dim,
                "action_dim": args.action_dim, "hidden": list(hidden), "num_qs": args.num_qs,
                "num_min_qs": args.num_min_qs, "seed": args.seed}
        impls.append(RlpdProcess(args.rlpd_python, args.rlpd_src, spec))

    load_before = os.getloadavg()
    print(f"device {jax.devices()[0]}; {os.cpu_count()} CPUs; load {load_before[0]:.2f}; "
          f"U={args.utd} B={args.batch_size} critics={args.num_qs} hidden={hidden}")
    results: dict[str, dict[str, Any]] = {}
    try:
        for impl in impls:
            results[impl.name] = {**impl.start(), "windows_s": [], "windows_cpu_s": []}
            print(f"  {impl.name}: first call {results[impl.name]['compile_s']:.1f} s", flush=True)
        # Each start cleared JAX's caches, so recompile the others once, untimed.
        for impl in impls:
            impl.window(1)
        for _ in range(args.repeats):
            for impl in impls:
                seconds, cpu = impl.window(args.calls)
                results[impl.name]["windows_s"].append(seconds)
                results[impl.name]["windows_cpu_s"].append(cpu)
    finally:
        for impl in impls:
            impl.close()
    load_after = os.getloadavg()

    updates = args.utd * args.calls
    for r in results.values():
        r["updates_per_s"] = [updates / s for s in r["windows_s"]]
        r["median_updates_per_s"] = statistics.median(r["updates_per_s"])
        r["median_cpu_ms_per_update"] = 1000 * statistics.median(r["windows_cpu_s"]) / updates
    scan = results.get("scan")
    print(f"\n{'impl':12} {'compile s':>9} {'2nd call s':>10} {'updates/s':>9} {'x loop':>6} "
          f"{'x rlpd':>6} {'cpu ms/upd':>10}  windows (updates/s)")
    for name, r in results.items():
        ratio = {ref: (r["median_updates_per_s"] / results[ref]["median_updates_per_s"]
                       if ref in results else float("nan")) for ref in ("python-loop", "rlpd")}
        r["ratio_vs"] = ratio
        print(f"{name:12} {r['compile_s']:9.1f} {r['second_call_s']:10.2f} "
              f"{r['median_updates_per_s']:9.1f} {ratio['python-loop']:6.2f} {ratio['rlpd']:6.2f} "
              f"{r['median_cpu_ms_per_update']:10.1f}  "
              + " ".join(f"{v:.1f}" for v in r["updates_per_s"]))
    targets = {}
    if scan:
        targets["compile_under_15s"] = scan["compile_s"] < COMPILE_TARGET_S
        for ref in ("python-loop", "rlpd"):
            if ref in results:
                targets[f"updates_at_least_{ref}"] = scan["ratio_vs"][ref] >= 1.0
        print("targets: " + ", ".join(f"{k} {'PASS' if v else 'MISS'}" for k, v in targets.items()))
    print(f"load (1-min loadavg) before {load_before[0]:.2f}, after {load_after[0]:.2f}")

    payload = {
        "benchmark": "train_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(),
                 "device": str(jax.devices()[0]), "jax": jax.__version__},
        "settings": {**vars(args), "hidden": list(hidden)},
        "loadavg_before": load_before, "loadavg_after": load_after,
        "results": results,
        "targets": targets,
        "wall_s": time.perf_counter() - wall,
    }
    write_results(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
