"""Issue 11, damaged data: truncated shards, damage already there at publish, damaged local copies.

Damage is done to real array_record files on disk: truncation (a copy cut
short), a zeroed footer (same size, so size checks pass), a flipped byte
inside a record (footer intact, so only parsing finds it), an empty shard
where the index expects an episode.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording import store
from rlif_data.recording.reader import EpisodeReader, read_episodes
from rlif_data.registry import checksums, remote
from rlif_data.registry.store import IntegrityError, Registry
from tests.fakes.episodes import make_episode, write_recording

SHARD_DATA_BYTE = 200  # inside the first record's chunk: the footer stays valid


def shard(directory, i):
    return os.path.join(directory, store.shard_name("unit", i))


def truncate(path, keep=70_000):
    with open(path, "r+b") as f:
        f.truncate(keep)


def zero_tail(path, n=512):
    """Overwrite the footer (the last bytes before the zero padding) with zeros, same size."""
    with open(path, "r+b") as f:
        end = len(f.read().rstrip(b"\0"))
        f.seek(end - n)
        f.write(b"\0" * n)


def flip(path, offset=SHARD_DATA_BYTE):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def empty_shard(path):
    os.unlink(path)
    store.open_array_record_writer(path).close()


DAMAGE = {"truncated": truncate, "zeroed_footer": zero_tail, "empty_shard": empty_shard}


def same_episode(a, b):
    assert a[sc.EPISODE_ID] == b[sc.EPISODE_ID]
    np.testing.assert_array_equal(a[sc.STEPS][sc.ACTION], b[sc.STEPS][sc.ACTION])


@pytest.fixture
def rec(tmp_path):
    return write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])


# -- 4. recover finds truncated shards; publish refuses them; verify --deep parses -------------


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_recover_finds_a_damaged_shard_and_keeps_the_rest(rec, damage):
    DAMAGE[damage](shard(rec, 1))
    damaged_bytes = open(shard(rec, 1), "rb").read()
    report = store.recover(rec)
    assert report.changed and report.damaged_shards == [store.shard_name("unit", 1)]
    assert report.episodes == 2
    # The damaged bytes are kept aside (hidden: publish and readers skip them).
    aside = os.path.join(rec, store.DAMAGED_PREFIX + store.shard_name("unit", 1))
    assert open(aside, "rb").read() == damaged_bytes
    got = read_episodes(rec)
    assert [e[sc.EPISODE_ID] for e in got] == ["s/0", "s/2"]
    same_episode(got[1], make_episode(2))
    assert not store.recover(rec).changed  # idempotent
    assert store.shard_problems(rec) == []
    # The recording takes new episodes after the repair.
    with store.EpisodeStore.open(rec, sc.vector_schema(3, 2, name="unit")) as s:
        s.write_episode(make_episode(7))
    assert [e[sc.EPISODE_ID] for e in read_episodes(rec)] == ["s/0", "s/2", "s/7"]


def test_recover_on_a_clean_recording_changes_nothing(rec):
    before = {n: open(os.path.join(rec, n), "rb").read() for n in os.listdir(rec)}
    report = store.recover(rec)
    assert not report.changed and report.episodes == 3 and report.damaged_shards == []
    assert {n: open(os.path.join(rec, n), "rb").read() for n in os.listdir(rec)} == before


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_publish_refuses_shards_that_do_not_parse(rec, tmp_path, damage):
    DAMAGE[damage](shard(rec, 2))
    reg = Registry(str(tmp_path / "root"))
    with pytest.raises(IntegrityError) as exc:
        reg.publish(rec, "hopper")
    message = str(exc.value)
    assert shard(rec, 2) in message and "episode 2" in message
    assert "\n" not in message and "recover" in message
    assert reg.versions("hopper") == [] and os.listdir(reg.staging_dir()) == []
    store.recover(rec)  # the fix the message names
    assert len(read_episodes(reg.path(reg.publish(rec, "hopper").ref))) == 2


def _damage_inside_a_version(reg, ref, i=1, offset=SHARD_DATA_BYTE):
    """Flip a record byte in a published version and re-hash it, as if broken before publish."""
    info = reg.info(ref)
    rel = store.shard_name("unit", i)
    flip(os.path.join(info.path, rel), offset)
    files = dict(info.manifest["files"])
    files[rel] = {"size": files[rel]["size"],
                  "sha256": checksums.sha256_file(os.path.join(info.path, rel))}
    extra = {k: v for k, v in info.manifest.items() if k not in ("files", "content_sha256")}
    checksums.write_manifest(info.path, files, extra)
    return os.path.join(info.path, rel)


def test_verify_deep_parses_every_record(rec, tmp_path):
    reg = Registry(str(tmp_path / "root"))
    reg.publish(rec, "hopper")
    reg.verify("hopper", deep=True)  # a good version passes
    path = _damage_inside_a_version(reg, "hopper")
    reg.verify("hopper", full=True)  # the hashes are of the broken file
    with pytest.raises(IntegrityError) as exc:
        reg.verify("hopper", deep=True)
    assert path in str(exc.value) and "episode 1" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_verify_deep_finds_a_zeroed_footer_the_hashes_accepted(rec, tmp_path):
    reg = Registry(str(tmp_path / "root"))
    info = reg.publish(rec, "hopper")
    rel = store.shard_name("unit", 0)
    zero_tail(os.path.join(info.path, rel))
    files = dict(info.manifest["files"])
    files[rel] = {**files[rel], "sha256": checksums.sha256_file(os.path.join(info.path, rel))}
    extra = {k: v for k, v in info.manifest.items() if k not in ("files", "content_sha256")}
    checksums.write_manifest(info.path, files, extra)
    reg.verify("hopper")
    with pytest.raises(IntegrityError, match=r"array_record-00000.*episode 0"):
        reg.verify("hopper", deep=True)


# -- 5. damaged shards give one line naming file and episode, never a traceback -------------


@pytest.mark.parametrize("damage", ["truncated", "zeroed_footer", "flipped_record"])
def test_reader_names_file_and_episode(rec, damage):
    path = shard(rec, 1)
    {"truncated": truncate, "zeroed_footer": zero_tail, "flipped_record": flip}[damage](path)
    with pytest.raises(errors.CorruptRecordingError) as exc:
        read_episodes(rec)  # the `with` block closes the reader: close() must not hide this
    message = str(exc.value)
    assert path in message and "episode 1" in message and "\n" not in message
    with EpisodeReader(rec) as reader:  # other episodes stay readable
        same_episode(reader[2], make_episode(2))
        with pytest.raises(errors.CorruptRecordingError, match="episode 1"):
            reader.summary(1)
        reader.close()
        reader.close()  # closing twice, or after a failed read, never raises


def run_cli(*args):
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, env=env)


def test_cli_inspect_and_show_print_one_line_on_a_damaged_shard(rec, tmp_path):
    reg = Registry(str(tmp_path / "root"))
    info = reg.publish(rec, "hopper")
    zero_tail(shard(rec, 1))  # same size: `show`'s size check passes
    zero_tail(os.path.join(info.path, store.shard_name("unit", 1)))
    for args, path in ((["inspect", rec], shard(rec, 1)),
                       (["show", "hopper", "--root", reg.root],
                        os.path.join(info.path, store.shard_name("unit", 1)))):
        out = run_cli(*args)
        assert out.returncode == 2, (args, out.stdout[-500:], out.stderr[-3000:])
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and path in lines[0] and "episode 1" in lines[0], out.stderr
    out = run_cli("publish", rec, "--name", "again", "--root", reg.root)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr
    assert shard(rec, 1) in lines[0] and "it holds episode 1" in lines[0], out.stderr


# -- 6. pull re-verifies a local copy and repairs it ---------------------------------------


@pytest.fixture
def pulled(tmp_path):
    alice = Registry(str(tmp_path / "alice"))
    alice.publish(write_recording(tmp_path / "arec", [make_episode(i) for i in range(3)]),
                  "hopper")
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    bob = Registry(str(tmp_path / "bob"))
    remote.pull(bob, "hopper", url)
    return alice, bob, url


def _damage_flip(path):
    flip(path, 300)


def _damage_delete(path):
    os.unlink(path)


@pytest.mark.parametrize("damage", [_damage_flip, _damage_delete, truncate])
def test_pull_repairs_a_damaged_local_copy(pulled, damage):
    alice, bob, url = pulled
    info = bob.info("hopper")
    rel = store.shard_name("unit", 1)
    damage(os.path.join(info.path, rel))
    with open(os.path.join(info.path, "stray.bin"), "wb") as f:
        f.write(b"not in the manifest")
    with pytest.raises(IntegrityError):
        bob.verify("hopper")
    sent = []
    repaired = remote.pull(bob, "hopper", url, progress=sent.append)
    bob.verify("hopper", deep=True)
    assert repaired.manifest["content_sha256"] == alice.info("hopper").manifest["content_sha256"]
    assert sum(sent) == info.manifest["files"][rel]["size"]  # only the damaged file travelled
    assert not os.path.exists(os.path.join(info.path, "stray.bin"))
    assert [e[sc.EPISODE_ID] for e in read_episodes(bob.path("hopper"))] == ["s/0", "s/1", "s/2"]
    assert os.listdir(bob.staging_dir()) == []


def test_pull_of_an_intact_local_copy_transfers_nothing(pulled):
    alice, bob, url = pulled
    before = os.stat(bob.path("hopper")).st_ino
    sent = []
    remote.pull(bob, "hopper", url, progress=sent.append)
    assert sent == [] and os.stat(bob.path("hopper")).st_ino == before


def test_pull_repairs_a_version_whose_manifest_is_gone(pulled):
    """A local directory without its manifest is no version; pull replaces it."""
    alice, bob, url = pulled
    path = bob.path("hopper")
    os.unlink(os.path.join(path, checksums.MANIFEST))
    assert bob.versions("hopper") == []
    remote.pull(bob, "hopper", url)
    bob.verify("hopper")


def test_a_reader_during_repair_sees_the_old_or_the_new_copy(pulled):
    """The repaired copy replaces the damaged one in one exchange: an open file keeps working."""
    alice, bob, url = pulled
    info = bob.info("hopper")
    rel = store.shard_name("unit", 2)
    held = open(os.path.join(info.path, "features.json"), "rb")
    flip(os.path.join(info.path, rel), 300)
    remote.pull(bob, "hopper", url)
    assert json.loads(held.read())  # the old inode is still readable
    held.close()
    bob.verify("hopper")


# -- 10. a kill during the very first index write; recover on a missing directory -----------

KILL_AT_FIRST_INDEX = """
import os, sys
sys.path.insert(0, sys.argv[2])
from rlif_data import schema as sc
from rlif_data.recording import store
from tests.fakes.episodes import SCHEMA

real_replace = os.replace

def replace_then_die(src, dst, *args, **kwargs):
    if os.path.basename(dst) == sc.DATASET_INFO_FILE:
        os._exit(9)  # killed: the metadata and feature files are in, the index is not
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace_then_die
store.EpisodeStore.open(sys.argv[1], SCHEMA)
"""


@pytest.fixture
def half_created(tmp_path):
    directory = str(tmp_path / "rec")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", KILL_AT_FIRST_INDEX, directory, root],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 9, out.stderr[-2000:]
    names = set(os.listdir(directory))
    assert {sc.METADATA_FILE, sc.FEATURES_FILE} <= names and sc.DATASET_INFO_FILE not in names
    return directory


def test_recover_rebuilds_the_index_after_a_kill_in_the_first_index_write(half_created):
    report = store.recover(half_created)
    assert report.changed and report.rebuilt_files == [sc.DATASET_INFO_FILE]
    assert report.episodes == 0 and not store.needs_recovery(half_created)
    assert not store.recover(half_created).changed
    with store.EpisodeStore.open(half_created, sc.vector_schema(3, 2, name="unit")) as s:
        s.write_episode(make_episode(0))
    assert [e[sc.EPISODE_ID] for e in read_episodes(half_created)] == ["s/0"]


def test_record_resumes_after_a_kill_in_the_first_index_write(half_created):
    with store.EpisodeStore.open(half_created, sc.vector_schema(3, 2, name="unit")) as s:
        s.write_episode(make_episode(1))
    assert [e[sc.EPISODE_ID] for e in read_episodes(half_created)] == ["s/1"]


def test_recover_of_a_missing_directory_names_the_directory(tmp_path):
    missing = str(tmp_path / "no-such-recording")
    with pytest.raises(errors.CorruptRecordingError) as exc:
        store.recover(missing)
    assert str(exc.value).startswith(f"{missing}: no such directory")
    assert store.LOCK_FILE not in str(exc.value) and not os.path.exists(missing)
    out = run_cli("recover", missing)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and missing in out.stderr
    assert store.LOCK_FILE not in out.stderr
