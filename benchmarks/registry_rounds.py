"""One run of the rounds scenario of benchmarks/registry.py, with the rlif-data code in --code.

    python benchmarks/registry_rounds.py --code DIR --work DIR [--rounds 10 --episodes 4 --steps 50]

imports `rlif_data` and `pipelines` from DIR (this checkout, or an older
release extracted by benchmarks/registry.py for the full-copy baseline) and
runs the RLIF loop's registry traffic: each round records N episodes with
two 128x128 cameras (random, incompressible frames), merges them with the
previous round's published merge (`pipelines.merge`: shards hard-linked),
publishes the merge, pushes it to a local-path remote and pulls it into a
second registry. Only publish, push and pull are timed; before each one
everything dirty is synced (untimed), as in the single-version scenario.

Per round and operation it reports seconds, bytes written by this process
(``wchar`` of /proc/self/io: every byte passed to write()) and bytes the
operation added to the disk (growth of the unique inodes under the target
root), next to the new round's own bytes. The last stdout line is the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--code", required=True, help="directory holding rlif_data/ and pipelines/")
    p.add_argument("--work", required=True, help="an empty directory for the registries")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--episodes", type=int, default=4, help="episodes added per round")
    p.add_argument("--steps", type=int, default=50, help="steps per episode")
    return p.parse_args(argv)


def written_bytes() -> int:
    """Bytes this process has passed to write() so far (Linux /proc/self/io ``wchar``)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def stored_bytes(root: str) -> int:
    """Bytes of the distinct files (inodes) under `root`."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def measure(fn, root: str) -> tuple[dict, object]:
    """Run `fn` after a sync; its seconds, bytes written and bytes added under `root`."""
    os.sync()
    before_stored, before_written = stored_bytes(root), written_bytes()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    return {"s": seconds, "written": written_bytes() - before_written,
            "stored": stored_bytes(root) - before_stored}, out


def camera_episode(round_no: int, i: int, steps: int):
    """One episode with a 7-dim state and two 128x128 RGB cameras of random pixels."""
    import numpy as np

    from rlif_data import episodes as ep
    from rlif_data import schema as sc

    rng = np.random.default_rng(1000 * round_no + i)
    obs = {sc.STATE_KEY: rng.normal(size=(steps + 1, 7)).astype(np.float32),
           "front": rng.integers(0, 256, (steps + 1, 128, 128, 3), dtype=np.uint8),
           "wrist": rng.integers(0, 256, (steps + 1, 128, 128, 3), dtype=np.uint8)}
    built = ep.build_steps(obs, rng.uniform(-1, 1, (steps, 2)), np.zeros(steps),
                           np.ones(steps), terminated=False)
    meta = ep.complete_metadata({sc.EPISODE_ID: f"r{round_no}/{i}", sc.ENV_ID: "Bench-v0",
                                 sc.SEED: i}, "bench")
    return {**meta, sc.STEPS: built}


def record_round(path: str, round_no: int, episodes: int, steps: int) -> int:
    """Write one round's recording; returns its bytes."""
    from rlif_data import schema as sc
    from rlif_data.recording.store import EpisodeStore

    schema = sc.camera_schema(7, 2, cameras=("front", "wrist"), size=128, name="bench")
    with EpisodeStore.open(path, schema) as store:
        for i in range(episodes):
            store.write_episode(camera_episode(round_no, i, steps))
    return stored_bytes(path)


def run(args: argparse.Namespace) -> dict:
    from pipelines import merge
    from rlif_data.registry import remote
    from rlif_data.registry.store import ROOT_ENV, Registry

    work = os.path.abspath(args.work)
    alice, bob = Registry(os.path.join(work, "alice")), Registry(os.path.join(work, "bob"))
    url = os.path.join(work, "remote")
    for d in (alice.root, bob.root, url):
        os.makedirs(d, exist_ok=True)
    os.environ[ROOT_ENV] = alice.root  # the merge job resolves refs in Alice's registry
    rounds, previous = [], None
    for k in range(1, args.rounds + 1):
        rec = os.path.join(work, "recordings", f"round-{k}")
        new = record_round(rec, k, args.episodes, args.steps)
        source = rec if previous is None else merge.run([previous, rec],
                                                        os.path.join(work, "merged", f"r{k}"))
        publish, info = measure(lambda: alice.publish(source, "rounds"), alice.root)
        push, _ = measure(lambda: remote.push(alice, info.ref, url), url)
        pull, got = measure(lambda: remote.pull(bob, info.ref, url), bob.root)
        assert got.manifest["content_sha256"] == info.manifest["content_sha256"]
        previous = info.ref
        rounds.append({"round": k, "new_bytes": new, "version_bytes": info.size,
                       "publish": publish, "push": push, "pull": pull})
        print(f"  round {k}: new {new / 2**20:.1f} MiB, version {info.size / 2**20:.1f} MiB, "
              + ", ".join(f"{op} {rounds[-1][op]['s']:.2f}s/"
                          f"{rounds[-1][op]['written'] / 2**20:.1f} MiB"
                          for op in ("publish", "push", "pull")), file=sys.stderr, flush=True)
    return {"rounds": rounds, "disk": {"alice": stored_bytes(alice.root),
                                       "bob": stored_bytes(bob.root),
                                       "remote": stored_bytes(url)}}


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.code))  # before any rlif_data import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run(args)
    import rlif_data

    result["code"] = os.path.dirname(os.path.dirname(os.path.abspath(rlif_data.__file__)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
