"""rlif_data.fsutil: early write-out of a file being written (`Writeback`)."""

import os
import sys

import pytest

from rlif_data import fsutil

MIB = 1 << 20


class _Recorder:
    """Stands in for libc's sync_file_range: records (path of fd, offset, nbytes, flags)."""

    def __init__(self, result: int = 0):
        self.calls = []
        self.result = result

    def __call__(self, fd, offset, nbytes, flags):
        self.calls.append((os.readlink(f"/proc/self/fd/{fd}"), offset, nbytes, flags))
        return self.result


@pytest.fixture
def recorder(monkeypatch):
    fake = _Recorder()
    monkeypatch.setattr(fsutil, "_sync_file_range", lambda: fake)
    return fake


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
def test_writeback_is_asked_for_once_per_every_bytes_of_the_file(tmp_path, recorder):
    path = str(tmp_path / "shard")
    with open(path, "wb") as f, fsutil.Writeback(path, every=3 * MIB) as writeback:
        for _ in range(10):  # 10 MiB in 1 MiB writes: requests after 3, 6 and 9
            f.write(b"\0" * MIB)
            writeback.wrote(MIB)
    # The whole file, without waiting (SYNC_FILE_RANGE_WRITE), on the file being written.
    assert recorder.calls == [(path, 0, 0, 2)] * 3
    assert os.path.getsize(path) == 10 * MIB


def test_a_refused_request_is_not_repeated_and_a_missing_file_is_no_error(tmp_path, recorder):
    path = str(tmp_path / "shard")
    open(path, "wb").close()
    recorder.result = -1  # e.g. EINVAL on a filesystem without it
    writeback = fsutil.Writeback(path, every=MIB)
    for _ in range(5):
        writeback.wrote(MIB)
    writeback.close()
    assert len(recorder.calls) == 1
    # A file that is not there (its writer failed): the fsync that follows will say so.
    with fsutil.Writeback(str(tmp_path / "gone"), every=MIB) as writeback:
        writeback.wrote(2 * MIB)
        writeback.wrote(2 * MIB)
    assert len(recorder.calls) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_real_call_is_found_and_accepted_here(tmp_path):
    assert fsutil._sync_file_range() is not None
    path = str(tmp_path / "shard")
    with open(path, "wb") as f, fsutil.Writeback(path, every=MIB) as writeback:
        f.write(os.urandom(2 * MIB))
        f.flush()
        writeback.wrote(2 * MIB)
        assert writeback._call is not None  # not refused: the kernel took the request
    with open(path, "rb") as f:
        assert len(f.read()) == 2 * MIB
