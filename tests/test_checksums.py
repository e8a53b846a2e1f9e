"""copy_and_hash: the kernel copy (local files) and the user-space copy give the same bytes and
the same SHA-256, resume from an offset, and a large damaged object on a remote is caught.

Files are larger than checksums.CHUNK so the threaded paths run, not the small-file shortcut.
"""

import hashlib
import io
import os

import pytest

from rlif_data.registry import checksums, remote
from rlif_data.registry.store import Registry
from rlif_data.registry.remote_layout import object_path
from tests.fakes.episodes import make_episode, write_recording

SIZE = 2 * checksums.CHUNK + 12345  # three blocks, the last one short


@pytest.fixture
def payload(tmp_path):
    data = os.urandom(SIZE)
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return str(path), data


def test_kernel_copy_between_local_files_copies_and_hashes_every_byte(payload, tmp_path):
    src, data = payload
    seen = []
    with open(src, "rb") as fi, open(tmp_path / "dst.bin", "wb") as fo:
        n, sha = checksums.copy_and_hash(fi, fo, seen.append)
        assert fo.tell() == SIZE  # the file object's position follows the kernel copy
    assert (n, sha) == (SIZE, hashlib.sha256(data).hexdigest())
    assert (tmp_path / "dst.bin").read_bytes() == data
    assert sum(seen) == SIZE
    # and it was the kernel path that ran (None would mean the user-space fallback)
    digest = hashlib.sha256()
    with open(src, "rb") as fi, open(tmp_path / "again.bin", "wb") as fo:
        assert checksums._kernel_copy_and_hash(fi, fo, None, digest) == SIZE
    assert digest.hexdigest() == sha


def test_user_space_copy_gives_the_same_result(payload):
    src, data = payload
    out = io.BytesIO()  # no file descriptor: the kernel copy cannot be used
    with open(src, "rb") as fi:
        n, sha = checksums.copy_and_hash(fi, out)
    assert (n, sha) == (SIZE, hashlib.sha256(data).hexdigest())
    assert out.getvalue() == data


def test_an_append_only_destination_falls_back_to_user_space(payload, tmp_path):
    src, data = payload
    dst = tmp_path / "dst.bin"
    dst.write_bytes(b"head")
    with open(src, "rb") as fi, open(dst, "ab") as fo:  # copy_file_range refuses O_APPEND
        n, sha = checksums.copy_and_hash(fi, fo)
    assert (n, sha) == (SIZE, hashlib.sha256(data).hexdigest())
    assert dst.read_bytes() == b"head" + data


def test_a_resumed_copy_continues_the_digest_from_the_offset(payload, tmp_path):
    src, data = payload
    cut = checksums.CHUNK + 7
    dst = tmp_path / "dst.bin"
    dst.write_bytes(data[:cut])
    digest = hashlib.sha256(data[:cut])
    with open(src, "rb") as fi, open(dst, "r+b") as fo:
        fi.seek(cut)
        fo.seek(cut)
        n, sha = checksums.copy_and_hash(fi, fo, digest=digest)
    assert (n, sha) == (SIZE - cut, hashlib.sha256(data).hexdigest())
    assert dst.read_bytes() == data


def test_sha256_file_matches_hashlib(payload):
    src, data = payload
    assert checksums.sha256_file(src) == hashlib.sha256(data).hexdigest()


def test_large_objects_travel_intact_and_a_damaged_one_is_refused(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    big = os.path.join(rec, "extra.bin")  # large enough for the kernel-copy path
    with open(big, "wb") as f:
        f.write(os.urandom(SIZE))
    alice, bob = Registry(str(tmp_path / "alice")), Registry(str(tmp_path / "bob"))
    info = alice.publish(rec, "hopper")
    url = str(tmp_path / "remote")
    remote.push(alice, "hopper", url)
    pulled = remote.pull(bob, "hopper", url)
    assert pulled.manifest["content_sha256"] == info.manifest["content_sha256"]
    bob.verify("hopper", full=True)
    with open(os.path.join(pulled.path, "extra.bin"), "rb") as f:
        assert f.read() == open(big, "rb").read()

    # One flipped byte in the remote's copy of the large object: a fresh pull refuses it.
    obj = object_path(url, info.manifest["files"]["extra.bin"]["sha256"])
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.seek(checksums.CHUNK + 3)
        byte = f.read(1)
        f.seek(checksums.CHUNK + 3)
        f.write(bytes([byte[0] ^ 1]))
    carol = Registry(str(tmp_path / "carol"))
    with pytest.raises(remote.RemoteError, match="the remote file is damaged"):
        remote.pull(carol, "hopper", url)
    assert carol.list() == []  # nothing became visible
