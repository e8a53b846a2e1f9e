"""Child process for the kill tests: records Hopper episodes and reports each one.

Prints ``DONE <episode_id> <transitions> <intervened>`` after each episode is
durable, forever or until killed. With ``--die-at PHASE:N`` it SIGKILLs itself
at a chosen point of the N-th commit, to hit the narrow windows on purpose.
"""

import argparse
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--die-at", default="")
    args = parser.parse_args()

    from rlif_data import policies
    from rlif_data import schema as sc
    from rlif_data.envs.gym_dm_env import make_dm_env
    from rlif_data.intervention import RandomTakeover
    from rlif_data.recording import store
    from rlif_data.recording.recorder import RolloutRecorder, SessionInfo

    if args.die_at:
        phase, n = args.die_at.split(":")
        _install_kill_point(store, phase, int(n))

    env = make_dm_env("Hopper-v5", seed=0, max_episode_steps=60)
    schema = sc.vector_schema(11, 3)
    st = store.EpisodeStore.open(args.directory, schema)
    learner = policies.RandomPolicy.from_space(env.gym_env.action_space, seed=0)
    recorder = RolloutRecorder(env, st, learner, policies.scripted_expert("Hopper-v5"),
                               RandomTakeover(0.5, seed=0), SessionInfo("Hopper-v5", seed=0))
    print("READY", flush=True)
    while True:
        r = recorder.run_episode()
        recorder.flush()  # DONE means durable; run_episode returns while the writer writes
        print(f"DONE {r.episode_id} {r.transitions} {r.intervened_steps}", flush=True)


def _install_kill_point(store, phase: str, n: int) -> None:
    """SIGKILL this process during the n-th commit, at `phase`."""
    calls = {"count": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if phase == "mid-shard":  # the temporary shard is half written
        real = store.open_array_record_writer

        class HalfWriter:
            def __init__(self, path):
                calls["count"] += 1
                self._inner = real(path)
                self._path = path

            def write(self, record):
                if calls["count"] == n:
                    with open(self._path, "ab") as f:
                        f.write(record[: len(record) // 2])
                    die()
                self._inner.write(record)

            def close(self):
                self._inner.close()

        store.open_array_record_writer = HalfWriter
    elif phase == "before-index":  # the shard is in place, the index not yet updated
        real_info = store.write_info

        def write_info(info, directory):
            calls["count"] += 1
            if calls["count"] == n + 1:  # +1: the index written when the store is created
                die()
            real_info(info, directory)

        store.write_info = write_info
    else:
        sys.exit(f"unknown phase {phase}")


if __name__ == "__main__":
    main()
