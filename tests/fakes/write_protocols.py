"""One scenario per write protocol, run in a child process that `RLIF_FAULT` may kill.

    python -m tests.fakes.write_protocols SCENARIO WORK

runs SCENARIO's operation on the prepared tree WORK (see `prepare`). The
recording scenarios print ``DONE <episode id>`` after each committed episode.
tests/test_faults.py runs each scenario once per fault point of the protocols
it exercises, with ``RLIF_FAULT=<point>@<hit>`` set, and checks what is left.

Layout of WORK::

    rec/        a recording of 3 episodes (s/0..s/2)
    rec-killed/ the same plus s/3, whose writer was killed between shard and index
    root/       a registry: d:1.0.0 (stable), d:1.1.0 (latest)
    remote/     a remote root: d:1.1.0, d:2.0.0 (latest), f:1.0.0 (whose lineage names
                e:1.0.0, pushed only as a lineage record)
    e.tar       an archive of e:1.0.0
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from typing import Callable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGISTRY, RECORDING, JOB = "registry", "recording", "job"
JOB_BEAM_ARGS = ["--runner=DirectRunner", "--direct_num_workers=1",
                 "--direct_running_mode=in_memory"]


def _episodes(first: int, n: int):
    from tests.fakes.episodes import make_episode

    return [make_episode(i) for i in range(first, first + n)]


def _registry(work: str):
    from rlif_data.registry.store import Registry

    return Registry(os.path.join(work, "root"))


def prepare(work: str) -> None:
    """Build the shared starting tree (a recording, a registry, a remote, an archive)."""
    from rlif_data.registry import archive, remote
    from rlif_data.registry.store import Registry
    from tests.fakes.episodes import write_recording

    rec = write_recording(os.path.join(work, "rec"), _episodes(0, 3))
    shutil.copytree(rec, os.path.join(work, "rec-killed"))
    killed = run_child("record-killed", work, "record.shard_renamed@1")  # s/3: not indexed
    assert killed.returncode < 0, killed.stderr[-2000:]
    reg = _registry(work)
    reg.publish(rec, "d", tags=("latest", "stable"))
    reg.publish(rec, "d")
    url = os.path.join(work, "remote")
    remote.push(reg, "d:1.1.0", url, tags=())
    other = Registry(os.path.join(work, "other"))
    other_rec = write_recording(os.path.join(work, "other-rec"), _episodes(10, 2))
    other.publish(other_rec, "d", version="2.0.0")
    remote.push(other, "d:2.0.0", url, tags=("latest",))
    e = other.publish(other_rec, "e")
    archive.export_version(other, "e:1.0.0", os.path.join(work, "e.tar"))
    other.publish(other_rec, "f", lineage={"job": "merge", "inputs": [
        {"ref": e.ref, "content_sha256": e.manifest["content_sha256"]}]})
    remote.push(other, "f:1.0.0", url, tags=())


# -- the operations (run in the child) -------------------------------------------------


def _record_into(directory: str, first: int) -> None:
    from rlif_data import schema as sc
    from rlif_data.recording.store import EpisodeStore
    from tests.fakes.episodes import SCHEMA

    with EpisodeStore.open(directory, SCHEMA) as store:
        for episode in _episodes(first, 3):
            store.write_episode(episode)
            print("DONE", episode[sc.EPISODE_ID], flush=True)


def op_record(work: str) -> None:
    _record_into(os.path.join(work, "rec"), 3)


def op_record_thread(work: str) -> None:
    """Episodes s/3..s/5 through the envlogger backend, committed on its writer thread.

    Prints DONE for an episode once it is durable: when the next episode's
    reset has been recorded (the backend's barrier), or after the close.
    """
    import dm_env
    from envlogger import step_data

    from rlif_data import episodes as ep
    from rlif_data import schema as sc
    from rlif_data.recording.envlogger_backend import StoreBackend
    from rlif_data.recording.store import EpisodeStore
    from tests.fakes.episodes import SCHEMA

    backend = StoreBackend(EpisodeStore.open(os.path.join(work, "rec"), SCHEMA))
    episodes = _episodes(3, 3)
    reported = 0

    def report() -> None:
        nonlocal reported
        for episode in episodes[reported:len(backend.written)]:
            print("DONE", episode[sc.EPISODE_ID], flush=True)
        reported = len(backend.written)

    for episode in episodes:
        steps = episode[sc.STEPS]
        n = len(steps[sc.IS_FIRST]) - 1
        backend.record_step(step_data.StepData(dm_env.restart(steps[sc.OBSERVATION][0]), None,
                                               None), is_new_episode=True)
        report()
        backend.set_episode_metadata({k: episode[k] for k in sc.EPISODE_METADATA_FIELDS})
        for t in range(n):
            obs, reward = steps[sc.OBSERVATION][t + 1], steps[sc.REWARD][t]
            if t < n - 1:
                timestep = dm_env.transition(reward, obs, steps[sc.DISCOUNT][t])
            elif steps[sc.IS_TERMINAL][-1]:
                timestep = dm_env.termination(reward, obs)
            else:
                timestep = dm_env.truncation(reward, obs, steps[sc.DISCOUNT][t])
            info = ep.StepInfo(bool(steps[sc.INTERVENTION][t]), steps[sc.POLICY_ACTION][t],
                               steps[sc.EXPERT_ACTION][t], sc.Source(int(steps[sc.SOURCE][t])),
                               t * 0.1)
            backend.record_step(step_data.StepData(timestep, steps[sc.ACTION][t], info),
                                is_new_episode=False)
    backend.close()
    report()


def op_record_create(work: str) -> None:
    _record_into(os.path.join(work, "new-rec"), 0)


def op_record_killed(work: str) -> None:
    _record_into(os.path.join(work, "rec-killed"), 3)


def op_recover(work: str) -> None:
    from rlif_data.recording import store

    store.recover(os.path.join(work, "rec-killed"))


def op_publish(work: str) -> None:
    _registry(work).publish(os.path.join(work, "rec"), "d")


def op_tag(work: str) -> None:
    _registry(work).tag("d:1.1.0", "stable")


def op_untag(work: str) -> None:
    _registry(work).untag("d", "stable")


def op_pull(work: str) -> None:
    from rlif_data.registry import remote

    remote.pull(_registry(work), "d@latest", os.path.join(work, "remote"))


def op_pull_repair(work: str) -> None:
    from rlif_data.registry import remote

    remote.pull(_registry(work), "d:1.1.0", os.path.join(work, "remote"))


def op_pull_lineage(work: str) -> None:
    from rlif_data.registry import remote

    remote.pull(_registry(work), "f:1.0.0", os.path.join(work, "remote"))


def op_upgrade(work: str) -> None:
    _registry(work).upgrade()


def op_import(work: str) -> None:
    from rlif_data.registry import archive

    archive.import_archive(_registry(work), os.path.join(work, "e.tar"), tags=("latest",))


def op_gc(work: str) -> None:
    _registry(work).gc()


def op_job(work: str) -> None:
    from pipelines import relabel

    relabel.run(os.path.join(work, "rec"), os.path.join(work, "jobs", "out"), "paper",
                JOB_BEAM_ARGS)


# -- set-ups (run in the test process, before the child) ----------------------------------


def run_child(scenario: str, work: str, fault: Optional[str] = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a scenario's operation in a child process, with ``RLIF_FAULT=fault`` if given."""
    from rlif_data import faults

    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if fault:
        env[faults.ENV] = fault
    return subprocess.run([sys.executable, "-m", "tests.fakes.write_protocols", scenario, work],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def setup_recover(work: str) -> None:
    """A recording needing every repair: an unindexed shard, a temporary file, a damaged shard."""
    from rlif_data.recording import store

    rec = os.path.join(work, "rec-killed")
    with open(os.path.join(rec, f"{store.TMP_PREFIX}leftover"), "wb") as f:
        f.write(b"half an episode")
    shard = os.path.join(rec, store.shard_name("unit", 1))
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)


def setup_pull_repair(work: str) -> None:
    """Damage one file of d:1.1.0 (the remote holds an intact copy)."""
    from rlif_data.registry import checksums

    path = _registry(work).version_dir("d", "1.1.0")
    name = sorted(checksums.list_files(path))[-1]
    os.chmod(os.path.join(path, name), 0o644)  # objects are read-only: this is damage
    with open(os.path.join(path, name), "r+b") as f:
        f.write(b"\0damaged\0")


def setup_gc(work: str) -> None:
    """What killed writers leave: a tag change not applied, a dead publish's staging directory,
    and an object no version names, older than gc's grace period."""
    import hashlib

    for scenario, fault in (("tag", "tag.intent_written"), ("publish", "publish.copied")):
        killed = run_child(scenario, work, fault)
        assert killed.returncode < 0, killed.stderr[-2000:]
    registry = _registry(work)
    data = b"an object of a publish killed long ago"
    path = registry.objects.path(hashlib.sha256(data).hexdigest())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (1, 1))


def setup_upgrade(work: str) -> None:
    """Turn the registry into today's full-copy layout: each version holds its own copies."""
    to_legacy_layout(os.path.join(work, "root"))


def to_legacy_layout(root: str) -> None:
    """Rewrite a registry as the release before objects wrote it (copies, no objects/)."""
    from rlif_data.registry import checksums

    base = os.path.join(root, "datasets")
    for name in os.listdir(base):
        for entry in os.listdir(os.path.join(base, name)):
            path = os.path.join(base, name, entry)
            if not os.path.exists(os.path.join(path, checksums.MANIFEST)):
                continue
            for rel in checksums.read_manifest(path)["files"]:
                file_path = os.path.join(path, rel)
                shutil.copyfile(file_path, f"{file_path}.copy")
                os.replace(f"{file_path}.copy", file_path)
    shutil.rmtree(os.path.join(root, "objects"), ignore_errors=True)


def no_setup(work: str) -> None:
    del work


@dataclasses.dataclass(frozen=True)
class Scenario:
    """An operation of one write protocol, and how to prepare for and judge it.

    Attributes:
      kind: REGISTRY, RECORDING or JOB (which invariants apply).
      op: the operation (runs in the child).
      setup: prepares the copied tree (runs in the test process).
      hit: which arrival at a fault point kills (``point@hit``).
      target: the directory a RECORDING or JOB scenario writes, relative to WORK.
      kept: episode ids a recording must hold after the operation or its
        recovery, before those the child reported committed.
      in_flight: whether one episode more than reported may survive (a
        kill after its commit, before the report).
    """

    kind: str
    op: Callable[[str], None]
    setup: Callable[[str], None] = no_setup
    hit: int = 1
    target: str = ""
    kept: tuple[str, ...] = ()
    in_flight: bool = False


SCENARIOS = {
    "record": Scenario(RECORDING, op_record, hit=2, target="rec",
                       kept=("s/0", "s/1", "s/2"), in_flight=True),
    "record-create": Scenario(RECORDING, op_record_create, target="new-rec", in_flight=True),
    # Through the envlogger backend: each commit on its writer thread.
    "record-thread": Scenario(RECORDING, op_record_thread, hit=2, target="rec",
                              kept=("s/0", "s/1", "s/2"), in_flight=True),
    # s/1's shard is damaged (lost), s/3's is complete but not indexed (kept).
    "recover": Scenario(RECORDING, op_recover, setup_recover, target="rec-killed",
                        kept=("s/0", "s/2", "s/3")),
    "publish": Scenario(REGISTRY, op_publish),
    "tag": Scenario(REGISTRY, op_tag),
    "untag": Scenario(REGISTRY, op_untag),
    "pull": Scenario(REGISTRY, op_pull),
    "pull-repair": Scenario(REGISTRY, op_pull_repair, setup_pull_repair),
    "pull-lineage": Scenario(REGISTRY, op_pull_lineage),
    "upgrade": Scenario(REGISTRY, op_upgrade, setup_upgrade),
    "import": Scenario(REGISTRY, op_import),
    "gc": Scenario(REGISTRY, op_gc, setup_gc),
    "job": Scenario(JOB, op_job, target="jobs/out"),
}

# Which scenarios reach every point of a protocol (the part of a point's name before the dot).
PROTOCOLS = {
    "record": ("record", "record-create", "record-thread"),
    "index": ("record", "record-create", "record-thread", "recover"),
    "writer": ("record-thread",),
    "recover": ("recover",),
    "publish": ("publish",),
    "tag": ("tag", "untag", "publish", "pull", "import"),
    "install": ("pull", "import"),
    "version": ("publish", "pull", "import"),
    "repair": ("pull-repair",),
    "pull": ("pull",),
    "import": ("import",),
    "object": ("pull", "import"),
    "lineage": ("pull-lineage",),
    "upgrade": ("upgrade",),
    "job": ("job",),
    "gc": ("gc",),
}


# Operations that only prepare a tree.
HELPERS = {"record-killed": op_record_killed}


def main() -> None:
    name, work = sys.argv[1], sys.argv[2]
    op = HELPERS[name] if name in HELPERS else SCENARIOS[name].op
    op(work)


if __name__ == "__main__":
    main()
