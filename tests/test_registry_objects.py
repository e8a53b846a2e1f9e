"""Issue 15: content-addressed objects, O(new data) publish/push/pull, lineage that travels,
gc of objects, upgrade of full-copy registries, signatures, and the bad inputs of each.

Every registry, remote and recording here is real files on disk (a remote is a local
path used as the fsspec URL); concurrency and interruptions use real processes.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipelines import merge
from rlif_cli.main import app
from rlif_data import faults
from rlif_data.recording.reader import read_episodes
from rlif_data.registry import checksums, lineage_records, remote, signing
from rlif_data.registry.store import IntegrityError, Registry, UnknownDatasetError
from rlif_data.registry.versions import Version
from tests.fakes.episodes import make_episode, write_recording
from tests.fakes.write_protocols import to_legacy_layout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
runner = CliRunner()


def inode(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def shards(info):
    return sorted(rel for rel in info.manifest["files"] if "array_record" in rel)


def object_bytes(reg, shas):
    return sum(os.path.getsize(reg.objects.path(s)) for s in set(shas))


def new_shas(old, new):
    """SHA-256s of `new`'s files that `old` does not hold."""
    have = {f["sha256"] for f in old.manifest["files"].values()}
    return {f["sha256"] for f in new.manifest["files"].values()} - have


@pytest.fixture
def rounds(tmp_path, monkeypatch):
    """Alice's registry: raw-a (round 1), raw-b (round 2), merged = merge(raw-a, raw-b)."""
    alice = Registry(str(tmp_path / "alice"))
    monkeypatch.setenv("RLIF_DATA_ROOT", alice.root)  # the merge job resolves refs here
    a = alice.publish(write_recording(tmp_path / "rec-a", [make_episode(i) for i in range(3)]),
                      "raw-a")
    b = alice.publish(write_recording(tmp_path / "rec-b", [make_episode(i) for i in range(3, 5)]),
                      "raw-b")
    out = merge.run(["raw-a:1.0.0", "raw-b:1.0.0"], str(tmp_path / "merged-out"))
    return alice, a, b, out


# -- 1. content-addressed storage -----------------------------------------------------------


def test_versions_are_links_to_read_only_objects_that_tfds_reads(tmp_path):
    import tensorflow_datasets as tfds

    reg = Registry(str(tmp_path / "root"))
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    first = reg.publish(rec, "hopper")
    second = reg.publish(rec, "hopper")
    for rel, entry in first.manifest["files"].items():
        obj = reg.objects.path(entry["sha256"])
        assert inode(os.path.join(first.path, rel)) == inode(obj)
        assert inode(os.path.join(second.path, rel)) == inode(obj)  # stored once
        assert os.stat(obj).st_mode & 0o222 == 0  # read-only
        assert checksums.sha256_file(obj) == entry["sha256"]
    objects = list(reg.objects.iter_objects())
    assert len(objects) == len({f["sha256"] for f in first.manifest["files"].values()})
    builder = tfds.builder_from_directory(reg.path("hopper:1.1.0"))
    assert len(builder.as_data_source("train")) == 3
    assert len(read_episodes(reg.path("hopper"))) == 3


def test_publishing_a_merge_of_versions_copies_only_the_new_files(rounds):
    alice, a, b, out = rounds
    copied = []
    merged = alice.publish(out, "merged", progress=copied.append)
    # The merge hard-linked the shards of raw-a and raw-b, which are objects: not even read.
    index_bytes = sum(merged.manifest["files"][rel]["size"] for rel in merged.manifest["files"]
                      if "array_record" not in rel)
    assert sum(copied) == index_bytes
    for rel in shards(merged):
        sha = merged.manifest["files"][rel]["sha256"]
        assert inode(os.path.join(merged.path, rel)) == inode(alice.objects.path(sha))
    # Publishing a version directory under another name reads and copies nothing.
    copied.clear()
    alice.publish(alice.path("merged"), "again", progress=copied.append)
    assert copied == []
    alice.verify("again", full=True, deep=True)


def test_manifest_records_who_published_it(tmp_path):
    from rlif_data.version import code_version

    reg = Registry(str(tmp_path / "root"))
    info = reg.publish(write_recording(tmp_path / "rec", [make_episode(0)]), "hopper")
    m = info.manifest
    assert m["publisher"] and m["host"] and m["published_by"] == f"{m['publisher']}@{m['host']}"
    assert m["code_version"] == code_version()


# -- 2. push and pull move only missing objects ----------------------------------------------


def test_push_and_pull_move_only_the_objects_the_other_side_lacks(rounds, tmp_path):
    alice, a, b, out = rounds
    merged = alice.publish(out, "merged")
    url = str(tmp_path / "shared")
    first = remote.push(alice, "raw-a:1.0.0", url)
    assert first["uploaded_bytes"] == a.size
    second = remote.push(alice, "merged:1.0.0", url)
    assert second["uploaded_bytes"] == object_bytes(alice, new_shas(a, merged))
    assert second["uploaded_bytes"] < merged.size
    # The remote keeps the layout: objects, and one manifest per version.
    assert os.listdir(os.path.join(url, "datasets", "merged", "1.0.0")) == [checksums.MANIFEST]
    bob = Registry(str(tmp_path / "bob"))
    got = []
    remote.pull(bob, "raw-a:1.0.0", url, progress=got.append)
    assert sum(got) == a.size
    got.clear()
    pulled = remote.pull(bob, "merged:1.0.0", url, progress=got.append)
    assert sum(got) == second["uploaded_bytes"]
    bob.verify("merged", full=True, deep=True)
    assert pulled.manifest["content_sha256"] == merged.manifest["content_sha256"]
    assert remote.push(alice, "merged:1.0.0", url)["skipped"]


def test_ls_remote_lists_versions_and_tags_without_pulling(rounds, tmp_path):
    alice, a, b, out = rounds
    url = str(tmp_path / "shared")
    remote.push(alice, "raw-a:1.0.0", url, tags=("latest", "round-1"))
    remote.push(alice, "raw-b:1.0.0", url, tags=())
    bob = tmp_path / "bob"
    result = runner.invoke(app, ["ls", url, "--root", str(bob)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "raw-a" in text and "raw-b" in text and "latest, round-1" in text
    entries = remote.list_remote(url)
    assert [(e["name"], e["version"], e["tags"]) for e in entries] == [
        ("raw-a", "1.0.0", ["latest", "round-1"]), ("raw-b", "1.0.0", [])]
    assert entries[0]["size"] == a.size and entries[0]["published_by"]
    assert not bob.exists()  # nothing was pulled, nothing created


# -- 3. lineage travels -------------------------------------------------------------------------


def test_pull_brings_the_ancestors_records_and_any_ancestor_can_be_pulled(rounds, tmp_path):
    alice, a, b, out = rounds
    merged = alice.publish(out, "merged")
    url = str(tmp_path / "shared")
    remote.push(alice, "merged:1.0.0", url)  # only the merge's data goes up
    bob = Registry(str(tmp_path / "bob"))
    remote.pull(bob, "merged:1.0.0", url)
    assert bob.names() == ["merged"]  # the ancestors' data did not come
    tree = bob.lineage("merged")
    assert tree["job"] == "merge" and tree["local"] is True
    parents = {p["ref"]: p for p in tree["inputs"]}
    assert set(parents) == {"raw-a:1.0.0", "raw-b:1.0.0"}
    for info in (a, b):
        node = parents[info.ref]
        assert node["content_sha256"] == info.manifest["content_sha256"]
        assert node["job"] == "recording" and node["local"] is False and node["remote"] == url
        assert node["published_by"] == info.manifest["published_by"]
        assert "mismatch" not in node
    result = runner.invoke(app, ["lineage", "merged", "--root", bob.root])
    assert result.exit_code == 0 and "not pulled: rlif-data pull raw-a:1.0.0" in " ".join(
        result.output.split())
    with pytest.raises(UnknownDatasetError, match=f"known from lineage only: `rlif-data pull "
                       f"raw-a:1.0.0 {url}`"):
        bob.path("raw-a:1.0.0")
    # On demand: the ancestor's data, once pushed, is pulled like any version.
    remote.push(alice, "raw-a:1.0.0", url)
    got = []
    remote.pull(bob, "raw-a:1.0.0", url, progress=got.append)
    assert sum(got) < a.size  # its shards came with the merge already
    assert {p["ref"]: p["local"] for p in bob.lineage("merged")["inputs"]} == {
        "raw-a:1.0.0": True, "raw-b:1.0.0": False}


def test_a_rewritten_ancestor_record_or_manifest_on_the_remote_is_detected(rounds, tmp_path):
    alice, a, b, out = rounds
    alice.publish(out, "merged")
    url = str(tmp_path / "shared")
    remote.push(alice, "merged:1.0.0", url)
    remote.push(alice, "raw-b:1.0.0", url)
    record_path = os.path.join(url, *lineage_records.record_rel("raw-a", "1.0.0").split("/"))
    record = json.load(open(record_path))
    manifest = record["manifest"]
    shard = shards(a)[0]
    manifest["files"][shard]["sha256"] = "0" * 64  # consistent, but not what the merge used
    manifest["content_sha256"] = checksums.content_digest(manifest["files"])
    json.dump(record, open(record_path, "w"))
    bob = Registry(str(tmp_path / "bob"))
    with pytest.raises(lineage_records.LineageRecordError, match="raw-a:1.0.0.*tampered"):
        remote.pull(bob, "merged:1.0.0", url)
    assert bob.versions("merged") == []
    # A rewritten manifest of a version whose content a kept record knows is refused too.
    carol = Registry(str(tmp_path / "carol"))
    os.unlink(record_path)
    remote.pull(carol, "merged:1.0.0", url)
    assert carol.known_record("raw-b:1.0.0") is not None
    path = os.path.join(url, "datasets", "raw-b", "1.0.0", checksums.MANIFEST)
    forged = json.load(open(path))
    forged["files"].pop(shards(b)[0])
    forged["content_sha256"] = checksums.content_digest(forged["files"])
    json.dump(forged, open(path, "w"))
    with pytest.raises(remote.RemoteError, match="rewritten.*tampered"):
        remote.pull(carol, "raw-b:1.0.0", url)
    assert carol.versions("raw-b") == []


# -- 4. gc --------------------------------------------------------------------------------------


def test_gc_removes_only_unreferenced_objects_past_the_grace_period(rounds):
    alice, a, b, out = rounds
    merged = alice.publish(out, "merged")
    only_b = new_shas(a, b) - {f["sha256"] for f in merged.manifest["files"].values()}
    shutil.rmtree(alice.version_dir("merged", Version(1, 0, 0)))  # its own index files go
    shutil.rmtree(alice.version_dir("raw-b", Version(1, 0, 0)))
    shutil.rmtree(out)  # the merge job's output links raw-b's shards too
    orphans = (new_shas(a, merged) | new_shas(a, b)) - {f["sha256"] for f in a.manifest[
        "files"].values()}
    assert only_b <= orphans and orphans
    expected = object_bytes(alice, orphans)
    young = alice.gc()  # default grace: objects made a moment ago stay
    assert young.objects_removed == 0 and all(os.path.exists(alice.objects.path(s))
                                              for s in orphans)
    report = alice.gc(grace_s=0)
    # Bytes count once nothing links them any more.
    assert report.objects_removed == len(orphans) and report.bytes_freed == expected
    assert not any(os.path.exists(alice.objects.path(s)) for s in orphans)
    alice.verify("raw-a", full=True, deep=True)  # what a version names is kept


def test_gc_never_sweeps_while_a_writer_holds_the_object_lock(rounds):
    alice, a, b, out = rounds
    shutil.rmtree(alice.version_dir("raw-b", Version(1, 0, 0)))
    orphans = new_shas(a, b)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from rlif_data.registry.store import Registry\n"
         "with Registry(sys.argv[1]).objects_lock():\n"
         "    print('held', flush=True)\n"
         "    sys.stdin.readline()\n", alice.root],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        report = alice.gc(grace_s=0)
        assert report.objects_removed == 0 and "holds the object lock" in report.objects_skipped
        assert all(os.path.exists(alice.objects.path(s)) for s in orphans)
    finally:
        holder.communicate("done\n", timeout=60)
    assert alice.gc(grace_s=0).objects_removed == len(orphans)


def test_gc_sweeps_nothing_when_a_manifest_is_unreadable(rounds):
    alice, a, b, out = rounds
    shutil.rmtree(alice.version_dir("raw-b", Version(1, 0, 0)))
    with open(os.path.join(a.path, checksums.MANIFEST), "w") as f:
        f.write("{not json")
    report = alice.gc(grace_s=0)
    assert report.objects_removed == 0 and "cannot read" in report.objects_skipped
    assert all(os.path.exists(alice.objects.path(f["sha256"]))
               for f in b.manifest["files"].values())


# -- 5. upgrade in place ----------------------------------------------------------------------


def write_old_registry(root, rec, versions=("1.0.0", "1.1.0")):
    """A registry exactly as the release before objects wrote it: full copies, tags, history."""
    name_dir = os.path.join(root, "datasets", "hopper")
    for version in versions:
        path = os.path.join(name_dir, version)
        shutil.copytree(rec, path)
        files = {rel: {"size": os.path.getsize(os.path.join(path, rel)),
                       "sha256": checksums.sha256_file(os.path.join(path, rel))}
                 for rel in checksums.list_files(path)}
        checksums.write_manifest(path, files, {
            "name": "hopper", "version": version, "kind": "dataset", "created": "2026-11-01",
            "published_by": "old@host", "source": rec, "lineage": {}})
    with open(os.path.join(name_dir, "tags.json"), "w") as f:
        json.dump({"latest": versions[-1], "paper": versions[0]}, f)
    with open(os.path.join(name_dir, "tags.log.jsonl"), "w") as f:
        for i, (tag, version) in enumerate([("paper", versions[0]), ("latest", versions[-1])]):
            f.write(json.dumps({"id": str(i), "time": "t", "user": "old@host", "action": "tag",
                                "tag": tag, "old": None, "new": version}) + "\n")


def test_a_full_copy_registry_is_read_as_is_then_upgraded_without_losing_anything(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    root = str(tmp_path / "old")
    write_old_registry(root, rec)
    reg = Registry(root)
    before = {v: reg.verify(f"hopper:{v}", full=True).manifest for v in ("1.0.0", "1.1.0")}
    tags, history = reg.tags("hopper"), reg.tag_history("hopper")
    assert tags == {"latest": "1.1.0", "paper": "1.0.0"}
    url = str(tmp_path / "shared")
    remote.push(reg, "hopper@paper", url)  # an old version pushes as it is
    size = sum(f["size"] for f in before["1.0.0"]["files"].values())
    report = reg.upgrade()
    assert (report.versions, report.damaged) == (2, [])
    assert report.bytes_freed == size  # the second copy became links
    for rel in before["1.0.0"]["files"]:
        a, b = (os.path.join(reg.version_dir("hopper", Version.parse(v)), rel)
                for v in ("1.0.0", "1.1.0"))
        assert inode(a) == inode(b) == inode(reg.objects.path(before["1.0.0"]["files"][rel][
            "sha256"]))
    for version, manifest in before.items():
        assert reg.verify(f"hopper:{version}", full=True, deep=True).manifest == manifest
    assert reg.tags("hopper") == tags and reg.tag_history("hopper") == history
    assert reg.upgrade().files_linked == 0  # done: nothing to do again
    bob = Registry(str(tmp_path / "bob"))
    assert len(read_episodes(bob.path(remote.pull(bob, "hopper:1.0.0", url).ref))) == 3


def test_upgrade_leaves_a_damaged_copy_as_it_is_and_names_it(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    root = str(tmp_path / "old")
    write_old_registry(root, rec)
    reg = Registry(root)
    rel = shards(reg.info("hopper:1.1.0"))[0]
    path = os.path.join(reg.version_dir("hopper", Version(1, 1, 0)), rel)
    with open(path, "r+b") as f:
        f.seek(10)
        f.write(b"\xff\xfe")
    report = reg.upgrade()
    assert report.damaged == [f"hopper:1.1.0: {rel} differs from its manifest; left as it is "
                              "(pull the version again to repair it)"]
    assert open(path, "rb").read(12)[10:] == b"\xff\xfe"  # not replaced by good bytes silently
    reg.verify("hopper:1.0.0", full=True)
    with pytest.raises(IntegrityError, match="SHA-256 differs"):
        reg.verify("hopper:1.1.0", full=True)


def test_the_fault_harness_legacy_layout_helper_makes_independent_copies(tmp_path):
    reg = Registry(str(tmp_path / "root"))
    rec = write_recording(tmp_path / "rec", [make_episode(0)])
    one, two = reg.publish(rec, "d"), reg.publish(rec, "d")
    to_legacy_layout(reg.root)
    rel = shards(one)[0]
    assert inode(os.path.join(one.path, rel)) != inode(os.path.join(two.path, rel))
    assert not os.path.exists(reg.objects.dir)
    reg.verify("d:1.0.0", full=True)


# -- 6. signatures ------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path):
    signing.generate_keypair(str(tmp_path / "alice.key"), str(tmp_path / "alice.pub"))
    signing.generate_keypair(str(tmp_path / "eve.key"), str(tmp_path / "eve.pub"))
    return {who: signing.load_public_key(str(tmp_path / f"{who}.pub")) for who in ("alice", "eve")}


def test_pull_with_trust_accepts_only_a_validly_signed_manifest(tmp_path, keys):
    alice = Registry(str(tmp_path / "alice"))
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    result = runner.invoke(app, ["publish", rec, "--name", "hopper", "--sign-key",
                                 str(tmp_path / "alice.key"), "--root", alice.root])
    assert result.exit_code == 0 and "signed" in result.output, result.output
    alice.publish(rec, "plain")
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    remote.push(alice, "plain", url)
    bob = Registry(str(tmp_path / "bob"))
    with pytest.raises(signing.SignatureError, match="not trusted"):
        remote.pull(bob, "hopper", url, trust=[keys["eve"]])
    with pytest.raises(signing.SignatureError, match="not signed"):
        remote.pull(bob, "plain", url, trust=[keys["alice"]])
    assert bob.names() == []
    result = runner.invoke(app, ["pull", "hopper", url, "--trust", str(tmp_path / "alice.pub"),
                                 "--root", bob.root])
    assert result.exit_code == 0, result.output
    assert bob.verify("hopper").manifest["signature"]["public_key"] == keys["alice"]
    # Any edit of the remote manifest breaks the signature, even one that keeps it consistent.
    path = os.path.join(url, "datasets", "hopper", "1.0.0", checksums.MANIFEST)
    forged = json.load(open(path))
    forged["published_by"] = "alice@trusted-host"
    json.dump(forged, open(path, "w"))
    carol = Registry(str(tmp_path / "carol"))
    result = runner.invoke(app, ["pull", "hopper", url, "--trust", keys["alice"], "--root",
                                 carol.root])
    assert result.exit_code == 2 and "tampered" in result.output
    assert carol.names() == [] and not os.path.exists(carol.objects.dir)


# -- bad inputs -----------------------------------------------------------------------------------


def test_an_object_whose_bytes_do_not_match_its_name_is_found_and_repaired(tmp_path):
    alice = Registry(str(tmp_path / "alice"))
    info = alice.publish(write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)]),
                         "hopper")
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    bob = Registry(str(tmp_path / "bob"))
    remote.pull(bob, "hopper", url)
    rel = shards(info)[1]
    obj = bob.objects.path(info.manifest["files"][rel]["sha256"])
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01")
    with pytest.raises(IntegrityError, match=f"{rel}: SHA-256 differs"):
        bob.verify("hopper")
    remote.pull(bob, "hopper", url)  # pull re-verifies a local copy and repairs it
    assert checksums.sha256_file(obj) == info.manifest["files"][rel]["sha256"]
    bob.verify("hopper", full=True, deep=True)


def test_a_manifest_naming_a_missing_object_is_refused(tmp_path):
    alice = Registry(str(tmp_path / "alice"))
    info = alice.publish(write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)]),
                         "hopper")
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    os.unlink(remote.object_path(url, info.manifest["files"][shards(info)[0]]["sha256"]))
    bob = Registry(str(tmp_path / "bob"))
    with pytest.raises(remote.RemoteError, match="names a missing object.*run pull again"):
        remote.pull(bob, "hopper", url)
    assert bob.versions("hopper") == []
    remote.push(alice, "hopper:1.0.0", url)  # the version exists there: nothing is re-sent ...
    assert bob.versions("hopper") == []
    # ... but a local version that names a missing file refuses to push (the hashes are the
    # only way a remote could tell) and verify names the file.
    os.unlink(os.path.join(info.path, shards(info)[1]))
    with pytest.raises(IntegrityError, match=f"missing file {shards(info)[1]}"):
        remote.push(alice, "hopper", str(tmp_path / "other"))
    with pytest.raises(IntegrityError, match="missing file"):
        alice.verify("hopper")


PUBLISH = """
import sys, time
from rlif_data.registry.store import Registry
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
print(Registry(sys.argv[1]).publish(sys.argv[2], sys.argv[4]).ref)
"""


def test_two_publishers_adding_the_same_objects_at_once(tmp_path):
    import time

    reg = Registry(str(tmp_path / "root"))
    rec = write_recording(tmp_path / "rec", [make_episode(i, length=50) for i in range(40)])
    start = str(time.time() + 8)  # both processes start copying at the same moment
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([sys.executable, "-c", PUBLISH, reg.root, rec, start, name],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for name in ("one", "two")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert sorted(o[0].strip() for o in outs) == ["one:1.0.0", "two:1.0.0"]
    one, two = reg.info("one"), reg.info("two")
    assert one.manifest["files"] == two.manifest["files"]
    for rel, entry in one.manifest["files"].items():
        assert inode(os.path.join(one.path, rel)) == inode(os.path.join(two.path, rel)) == inode(
            reg.objects.path(entry["sha256"]))
    names = [n for _, _, files in os.walk(reg.objects.dir) for n in files]
    assert len(names) == len({f["sha256"] for f in one.manifest["files"].values()})  # no temps
    reg.verify("one", full=True, deep=True)
    reg.verify("two", full=True)


def test_a_pull_killed_between_objects_and_manifest_resumes_without_downloading(tmp_path):
    alice = Registry(str(tmp_path / "alice"))
    info = alice.publish(write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)]),
                         "hopper")
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    bob = Registry(str(tmp_path / "bob"))
    code = ("import sys\nfrom rlif_data.registry import remote\n"
            "from rlif_data.registry.store import Registry\n"
            "remote.pull(Registry(sys.argv[1]), 'hopper', sys.argv[2])\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", faults.ENV: "pull.staged"}
    killed = subprocess.run([sys.executable, "-c", code, bob.root, url], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert bob.versions("hopper") == []  # every object arrived; no version is visible
    got = []
    remote.pull(bob, "hopper", url, progress=got.append)
    assert got == []  # nothing travels twice
    assert bob.verify("hopper", full=True).manifest["content_sha256"] == info.manifest[
        "content_sha256"]
    assert bob.gc().objects_removed == 0 and os.listdir(bob.staging_dir()) == []


def test_a_remote_written_by_the_older_layout_is_pulled_and_extended(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    old_remote = str(tmp_path / "shared")
    write_old_registry(old_remote, rec, versions=("1.0.0",))  # an old push: files + manifest
    assert not os.path.exists(os.path.join(old_remote, "objects"))
    bob = Registry(str(tmp_path / "bob"))
    got = []
    info = remote.pull(bob, "hopper@latest", old_remote, progress=got.append)
    assert sum(got) == info.size and info.tags == ("latest", "paper")
    bob.verify("hopper", full=True, deep=True)
    assert [e["version"] for e in remote.list_remote(old_remote)] == ["1.0.0"]
    # Corrupt a file of the old layout: the pull of it is refused like any damaged object.
    other = write_recording(tmp_path / "rec2", [make_episode(i) for i in range(3, 5)])
    bob.publish(other, "hopper")
    pushed = remote.push(bob, "hopper:1.1.0", old_remote)
    assert pushed["uploaded_files"] > 0 and os.path.isdir(os.path.join(old_remote, "objects"))
    carol = Registry(str(tmp_path / "carol"))
    remote.pull(carol, "hopper:1.1.0", old_remote)
    remote.pull(carol, "hopper:1.0.0", old_remote)
    assert len(read_episodes(carol.path("hopper:1.0.0"))) == 3
    path = os.path.join(old_remote, "datasets", "hopper", "1.0.0", shards(info)[0])
    with open(path, "r+b") as f:
        f.write(b"\x00\x01\x02")
    dave = Registry(str(tmp_path / "dave"))
    with pytest.raises(remote.RemoteError, match="remote file is damaged"):
        remote.pull(dave, "hopper:1.0.0", old_remote)
    assert dave.versions("hopper") == []


def test_keys_that_are_not_ed25519_are_refused_in_one_line(tmp_path):
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    with pytest.raises(signing.KeyFileError, match="not a PEM public key"):
        signing.load_public_key(str(bad))
    with pytest.raises(signing.KeyFileError, match="neither 64 hex digits"):
        signing.load_public_key(str(tmp_path / "missing.pub"))
    with pytest.raises(signing.KeyFileError, match="not an unencrypted PEM private key"):
        signing.load_private_key(str(bad))
    reg = Registry(str(tmp_path / "root"))
    with pytest.raises(signing.KeyFileError):
        reg.publish(write_recording(tmp_path / "rec", [make_episode(0)]), "x",
                    sign_key=str(bad))
    assert reg.names() == []


def test_object_names_are_checked():
    from rlif_data.registry.objects import object_rel, sha_of_object

    sha = hashlib.sha256(b"x").hexdigest()
    assert object_rel(sha) == f"{sha[:2]}/{sha[2:]}"
    assert sha_of_object(sha[:2], sha[2:]) == sha and sha_of_object("zz", sha[2:]) is None
    for bad in ("../" + sha[3:], sha.upper(), sha[:-1], 7):
        with pytest.raises(ValueError):
            object_rel(bad)
