"""push / pull between a local registry and a remote root given as an fsspec URL."""

import os
import shutil

import pytest

from rlif_data.recording.reader import read_episodes
from rlif_data.registry import remote
from rlif_data.registry.store import (
    IntegrityError,
    Registry,
    UnknownDatasetError,
    VersionExistsError,
)
from tests.fakes.episodes import make_episode, write_recording


@pytest.fixture
def alice(tmp_path):
    reg = Registry(str(tmp_path / "alice"))
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(5)])
    reg.publish(rec, "hopper", tags=("latest", "round-1"))
    return reg


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_push_then_pull_on_another_machine(alice, tmp_path, scheme):
    url = f"{scheme}{tmp_path / 'shared'}"
    out = remote.push(alice, "hopper@latest", url)
    assert out["uploaded_files"] > 3 and sorted(out["tags"]) == ["latest", "round-1"]
    bob = Registry(str(tmp_path / "bob"))
    with pytest.raises(UnknownDatasetError, match="`rlif-data pull` it first"):
        bob.resolve("hopper@round-1")  # offline: only known remotely
    info = remote.pull(bob, "hopper@round-1", url)
    assert info.version == alice.info("hopper").version
    assert info.manifest["content_sha256"] == alice.info("hopper").manifest["content_sha256"]
    assert bob.tags("hopper") == {"latest": "1.0.0", "round-1": "1.0.0"}
    assert len(read_episodes(bob.path("hopper@round-1", verify="full"))) == 5
    # Pushing the same content again uploads nothing.
    assert remote.push(alice, "hopper:1.0.0", url)["skipped"]


def test_push_refuses_different_content_under_the_same_version(alice, tmp_path):
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    carol = Registry(str(tmp_path / "carol"))
    other = write_recording(tmp_path / "other", [make_episode(42)])
    carol.publish(other, "hopper")  # also 1.0.0, other bytes
    with pytest.raises(VersionExistsError, match="exists on .* with different content"):
        remote.push(carol, "hopper", url)
    assert remote.remote_versions(url, "hopper") == [alice.info("hopper").version]
    bob = Registry(str(tmp_path / "bob"))
    remote.pull(bob, "hopper", url)
    assert len(read_episodes(bob.path("hopper"))) == 5


def test_push_refuses_a_damaged_local_version(alice, tmp_path):
    info = alice.info("hopper")
    shard = next(k for k in info.manifest["files"] if "array_record" in k)
    with open(os.path.join(info.path, shard), "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="SHA-256 differs"):
        remote.push(alice, "hopper", str(tmp_path / "shared"))
    assert not os.path.exists(tmp_path / "shared" / "datasets" / "hopper" / "1.0.0")


def test_remote_vanishing_mid_pull_then_resume(alice, tmp_path, monkeypatch):
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    bob = Registry(str(tmp_path / "bob"))
    hidden = tmp_path / "hidden"
    real = remote._download
    calls = {"n": 0}

    def flaky(fs, src, dst, size, sha, progress):
        calls["n"] += 1
        if calls["n"] == 3:  # the remote goes away after two files
            shutil.move(str(tmp_path / "shared"), str(hidden))
        return real(fs, src, dst, size, sha, progress)

    monkeypatch.setattr(remote, "_download", flaky)
    with pytest.raises(remote.RemoteError, match="stopped after 2/.*run pull again to resume"):
        remote.pull(bob, "hopper", url)
    assert bob.versions("hopper") == []  # nothing visible
    monkeypatch.setattr(remote, "_download", real)
    shutil.move(str(hidden), str(tmp_path / "shared"))
    sent = []
    remote.pull(bob, "hopper", url, progress=sent.append)
    total = sum(f["size"] for f in alice.info("hopper").manifest["files"].values())
    assert 0 < sum(sent) < total  # the two finished files were not fetched again
    bob.verify("hopper")
    assert not os.listdir(bob.staging_dir())


def test_corrupt_remote_file_is_detected_on_pull(alice, tmp_path):
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    files = alice.info("hopper").manifest["files"]
    shard = sorted(p for p in files if "array_record" in p)[0]
    # The remote object whose bytes no longer match its name.
    with open(remote.object_path(url, files[shard]["sha256"]), "r+b") as f:
        f.write(b"\x00\x01\x02")
    bob = Registry(str(tmp_path / "bob"))
    with pytest.raises(remote.RemoteError, match="remote file is damaged"):
        remote.pull(bob, "hopper", url)
    assert bob.versions("hopper") == []


def test_unknown_remote_refs(alice, tmp_path):
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    bob = Registry(str(tmp_path / "bob"))
    with pytest.raises(UnknownDatasetError, match="hopper@nope is not a tag on"):
        remote.pull(bob, "hopper@nope", url)
    with pytest.raises(UnknownDatasetError, match="hopper:9.0.0 is not on"):
        remote.pull(bob, "hopper:9.0.0", url)
