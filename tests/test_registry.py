"""The local registry: publish, tags, resolve, verify, lineage, gc, concurrency."""

import json
import os
import subprocess
import sys

import pytest

from pipelines import relabel
from rlif_data.recording.reader import read_episodes
from rlif_data.registry import checksums
from rlif_data.registry.store import (
    IntegrityError,
    Registry,
    RegistryError,
    UnknownDatasetError,
    VersionExistsError,
    resolve_dataset,
)
from rlif_data.registry.versions import Version
from tests.fakes.episodes import make_episode, write_recording

SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def reg(tmp_path):
    return Registry(str(tmp_path / "root"))


@pytest.fixture
def rec(tmp_path):
    return write_recording(tmp_path / "rec", [make_episode(i) for i in range(4)])


def test_publish_resolve_and_read(reg, rec):
    info = reg.publish(rec, "hopper")
    assert info.version == Version(1, 0, 0) and info.tags == ("latest",)
    assert reg.resolve("hopper") == ("hopper", Version(1, 0, 0))
    assert reg.resolve("hopper@latest") == reg.resolve("hopper:1.0.0")
    assert len(read_episodes(reg.path("hopper@latest"))) == 4
    files = info.manifest["files"]
    assert all(len(f["sha256"]) == 64 for f in files.values())
    assert not any(os.path.basename(k).startswith(".") for k in files)  # no lock file
    second = reg.publish(rec, "hopper", tags=("latest", "round-1"))
    assert second.version == Version(1, 1, 0)
    assert reg.tags("hopper") == {"latest": "1.1.0", "round-1": "1.1.0"}


def test_versions_are_immutable(reg, rec):
    reg.publish(rec, "hopper", version="2.0.0")
    with pytest.raises(VersionExistsError, match="hopper:2.0.0 is already published"):
        reg.publish(rec, "hopper", version="2.0.0")
    assert reg.versions("hopper") == [Version(2, 0, 0)]


def test_tag_history_keeps_who_when_and_before(reg, rec):
    reg.publish(rec, "hopper")
    reg.publish(rec, "hopper", tags=())
    reg.tag("hopper:1.1.0", "latest")
    reg.tag("hopper:1.0.0", "paper")
    reg.untag("hopper", "paper")
    history = reg.tag_history("hopper")
    assert [(h["action"], h["tag"], h["old"], h["new"]) for h in history] == [
        ("tag", "latest", None, "1.0.0"),
        ("tag", "latest", "1.0.0", "1.1.0"),
        ("tag", "paper", None, "1.0.0"),
        ("untag", "paper", "1.0.0", None),
    ]
    assert all(h["user"] and h["time"] for h in history)


def test_unknown_names_tags_versions(reg, rec):
    with pytest.raises(UnknownDatasetError, match="no dataset 'nope'.*empty.*pull"):
        reg.resolve("nope@latest")
    reg.publish(rec, "hopper")
    with pytest.raises(UnknownDatasetError, match="hopper@round-9 is not a known tag.*latest->1.0.0"):
        reg.resolve("hopper@round-9")
    with pytest.raises(UnknownDatasetError, match="hopper:3.0.0 is not in the local registry.*1.0.0"):
        reg.resolve("hopper:3.0.0")
    with pytest.raises(UnknownDatasetError, match="not a tag"):
        reg.untag("hopper", "round-9")


def test_tag_pointing_at_deleted_version(reg, rec):
    import shutil

    reg.publish(rec, "hopper")
    reg.publish(rec, "hopper", tags=("round-2",))
    shutil.rmtree(reg.version_dir("hopper", Version(1, 1, 0)))
    with pytest.raises(UnknownDatasetError, match="points at hopper:1.1.0, which is no longer"):
        reg.path("hopper@round-2")
    assert len(read_episodes(reg.path("hopper:1.0.0"))) == 4


def test_tampered_and_missing_files_are_detected(reg, rec):
    info = reg.publish(rec, "hopper")
    shard = sorted(k for k in info.manifest["files"] if "array_record" in k)[1]
    path = os.path.join(info.path, shard)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    os.chmod(path, 0o644)  # objects are read-only; this is damage, not a write of ours
    open(path, "wb").write(bytes(data))
    reg.path("hopper")  # same size: the cheap check passes
    with pytest.raises(IntegrityError, match=f"{shard}: SHA-256 differs"):
        reg.verify("hopper")
    with pytest.raises(IntegrityError):
        reg.path("hopper", verify="full")
    os.unlink(path)
    with pytest.raises(IntegrityError, match=f"missing file {shard}"):
        reg.path("hopper")


def test_publish_refuses_non_dataset_and_live_recording(reg, tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(RegistryError, match="not a dataset directory"):
        reg.publish(str(tmp_path / "junk"), "x")
    from rlif_data.recording.store import EpisodeStore
    from tests.fakes.episodes import SCHEMA

    with EpisodeStore.open(str(tmp_path / "live"), SCHEMA) as st:
        st.write_episode(make_episode(0))
        with pytest.raises(RegistryError, match="cannot publish while recording"):
            reg.publish(str(tmp_path / "live"), "x")
    assert reg.names() == []


def test_crashed_publish_leaves_nothing_visible_and_gc_cleans(reg, rec, tmp_path):
    code = (
        "import os, signal\n"
        "from rlif_data.registry import checksums, store\n"
        "real = checksums.save_manifest\n"
        "def die(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "checksums.save_manifest = die\n"
        f"store.Registry({reg.root!r}).publish({rec!r}, 'hopper')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    assert proc.returncode == -9
    assert reg.names() == [] and reg.versions("hopper") == []
    assert len(os.listdir(reg.staging_dir())) == 1
    removed = reg.gc()
    assert len(removed) == 1 and os.listdir(reg.staging_dir()) == []


def test_two_concurrent_publishers_get_distinct_complete_versions(reg, rec):
    code = (f"from rlif_data.registry.store import Registry\n"
            f"print(Registry({reg.root!r}).publish({rec!r}, 'hopper').version)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert outs == ["1.0.0", "1.1.0"]
    for v in outs:
        reg.verify(f"hopper:{v}")
        assert len(read_episodes(reg.path(f"hopper:{v}"))) == 4
    assert reg.tags("hopper")["latest"] in outs


def test_lineage_goes_back_to_raw_logs(reg, rec, tmp_path):
    reg.publish(rec, "raw-round-0")
    out = str(tmp_path / "rl")
    relabel.run(resolve_dataset("raw-round-0@latest", reg.root), out, "paper", SINGLE)
    reg.publish(out, "rlif-round-0")
    tree = reg.lineage("rlif-round-0")
    assert tree["ref"] == "rlif-round-0:1.0.0" and tree["job"] == "relabel"
    assert tree["params"] == {"view": "paper"}
    parent = tree["inputs"][0]
    assert parent["ref"] == "raw-round-0:1.0.0" and parent["job"] == "recording"
    assert parent["inputs"] == [{"raw": {"path": rec}}]


def test_resolve_dataset_accepts_paths_and_refs(reg, rec):
    assert resolve_dataset(rec) == rec
    reg.publish(rec, "hopper")
    assert resolve_dataset("hopper@latest", reg.root) == reg.version_dir("hopper", Version(1, 0, 0))
    with pytest.raises(FileNotFoundError, match="not a dataset reference"):
        resolve_dataset("/no/such/dir", reg.root)


def test_manifest_content_digest_changes_with_content(reg, rec, tmp_path):
    a = reg.publish(rec, "a").manifest["content_sha256"]
    b = reg.publish(rec, "b").manifest["content_sha256"]
    assert a == b
    other = write_recording(tmp_path / "other", [make_episode(9)])
    assert reg.publish(other, "c").manifest["content_sha256"] != a
    assert checksums.read_manifest(reg.path("a"))["name"] == "a"
    assert json.load(open(os.path.join(reg.path("a"), "dataset_info.json")))["name"] == "unit"
