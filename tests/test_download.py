"""`rlif-data download`: against an HTTP server on 127.0.0.1 that the test starts, serving a
small D4RL-layout file whole, cut short, corrupted, or ignoring ranges."""

import hashlib
import http.server
import os
import socket
import threading

import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from rlif_data.sources import download as dl
from tests.fakes import d4rl_files

runner = CliRunner()
FILE_NAME = "hopper_medium-v2.hdf5"  # the catalogue's file name for hopper-medium-v2


class FakeD4RLServer:
    """A bounded local HTTP server: one file, Range support, and faults on demand.

    Modes: ``ok``; ``truncate`` (announce the whole length, send half, close; once,
    then ``ok``); ``corrupt`` (flip a byte in the middle); ``no-range`` (answer
    every request with the whole file, 200).
    """

    def __init__(self, data: bytes):
        self.data = data
        self.mode = "ok"
        self.ranges: list = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                if self.path.rsplit("/", 1)[-1] != FILE_NAME:
                    self.send_error(404)
                    return
                body = server.data
                if server.mode == "corrupt":
                    mid = len(body) // 2
                    body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1:]
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = 0
                if header and server.mode != "no-range":
                    start = int(header.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.mode == "truncate":
                    server.mode = "ok"
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/d4rl"
        self.url = f"{self.base}/{FILE_NAME}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def served(tmp_path):
    (tmp_path / "src").mkdir()
    fake = d4rl_files.write_d4rl_file(tmp_path / "src" / FILE_NAME, episode_lengths=(6, 5, 7),
                                      obs_dim=11, act_dim=3)
    data = fake.path.read_bytes()
    server = FakeD4RLServer(data)
    try:
        yield server, data, hashlib.sha256(data).hexdigest(), fake
    finally:
        server.close()


def test_a_whole_download_is_checked_and_renamed(served, tmp_path):
    server, data, sha, _ = served
    seen = []
    result = dl.download(server.url, str(tmp_path / "dl" / FILE_NAME), expected_sha256=sha,
                         expected_size=len(data), progress=lambda n, total: seen.append((n, total)),
                         chunk=4096)
    assert (result.bytes, result.sha256, result.verified) == (len(data), sha, True)
    assert (tmp_path / "dl" / FILE_NAME).read_bytes() == data
    assert seen[-1] == (len(data), len(data)) and len(seen) > 2
    assert not (tmp_path / "dl" / (FILE_NAME + dl.PART_SUFFIX)).exists()
    again = dl.download(server.url, str(tmp_path / "dl" / FILE_NAME), expected_sha256=sha)
    assert again.reused and server.ranges == [None]  # nothing fetched the second time


def test_a_truncated_response_is_kept_and_resumed_with_a_range(served, tmp_path):
    server, data, sha, _ = served
    tmp_path = tmp_path / "dl"
    dest = tmp_path / FILE_NAME
    server.mode = "truncate"
    with pytest.raises(dl.DownloadError, match="connection ended after .* run the command "
                                               "again to resume"):
        dl.download(server.url, str(dest), expected_sha256=sha)
    part = tmp_path / (FILE_NAME + dl.PART_SUFFIX)
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not dest.exists()
    result = dl.download(server.url, str(dest), expected_sha256=sha)
    assert server.ranges == [None, f"bytes={kept}-"]
    assert result.resumed_from == kept and result.verified
    assert dest.read_bytes() == data and not part.exists()


def test_a_server_that_ignores_the_range_restarts_the_file(served, tmp_path):
    server, data, sha, _ = served
    tmp_path = tmp_path / "dl"
    tmp_path.mkdir()
    part = tmp_path / (FILE_NAME + dl.PART_SUFFIX)
    part.write_bytes(b"stale bytes from another file")
    server.mode = "no-range"
    result = dl.download(server.url, str(tmp_path / FILE_NAME), expected_sha256=sha)
    assert result.resumed_from == 0 and (tmp_path / FILE_NAME).read_bytes() == data


def test_corrupted_bytes_are_refused_and_deleted(served, tmp_path):
    server, data, sha, _ = served
    server.mode = "corrupt"
    with pytest.raises(dl.DownloadIntegrityError, match="do not match .*SHA-256.*deleted"):
        dl.download(server.url, str(tmp_path / "dl" / FILE_NAME), expected_sha256=sha)
    assert os.listdir(tmp_path / "dl") == []  # neither the file nor a part to resume from


def test_wrong_size_is_refused_before_writing(served, tmp_path):
    server, data, _, _ = served
    with pytest.raises(dl.DownloadIntegrityError, match=f"has {len(data)} bytes, expected 10"):
        dl.download(server.url, str(tmp_path / "dl" / "x.hdf5"), expected_size=10)
    assert os.listdir(tmp_path / "dl") == []


def test_unreachable_server_and_bad_addresses(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(dl.DownloadError, match="cannot connect"):
        dl.download(f"http://127.0.0.1:{port}/x.hdf5", str(tmp_path / "x.hdf5"), timeout=5)
    with pytest.raises(ValueError, match="only http"):
        dl.download("file:///etc/passwd", str(tmp_path / "y"))


def test_pure_helpers():
    assert dl.content_range_start("bytes 100-199/200") == 100
    assert dl.content_range_total("bytes 100-199/200") == 200
    assert dl.content_range_total("bytes */200") == 200
    assert dl.content_range_start(None) is None and dl.content_range_total("bytes 0-1/*") is None
    src = dl.d4rl_source("hopper-medium-v2", mirror="http://127.0.0.1:1/m/")
    assert src.url == "http://127.0.0.1:1/m/hopper_medium-v2.hdf5"
    assert src.env_id == "Hopper-v5" and src.file_name == FILE_NAME
    with pytest.raises(ValueError, match="64 hex digits"):
        dl.d4rl_source("hopper-medium-v2", sha256="abc")


def test_cli_downloads_checks_and_ingests(served, tmp_path):
    server, data, sha, fake = served
    out = tmp_path / "ds"
    args = ["download", "hopper-medium-v2", "--mirror", server.base, "--sha256", sha,
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "matches the expected SHA-256" in text and "ingested hopper-medium-v2" in text
    episodes = read_episodes(str(out))
    assert len(episodes) == 3
    assert [e["env_id"] for e in episodes] == ["Hopper-v5"] * 3
    assert (tmp_path / "cache" / FILE_NAME).read_bytes() == data
    # The file's infos/* columns are kept as step fields (issue 14 item 4).
    assert set(episodes[0][sc.STEPS][sc.INFOS]) == {"qpos", "qvel"}


def test_cli_mismatching_download_exits_2_and_ingests_nothing(served, tmp_path):
    server, _, sha, _ = served
    server.mode = "corrupt"
    out = tmp_path / "ds"
    result = runner.invoke(app, ["download", "hopper-medium-v2", "--mirror", server.base,
                                 "--sha256", sha, "--cache-dir", str(tmp_path / "cache"),
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 2
    assert "downloaded bytes do not match" in " ".join(result.output.split())
    assert not out.exists() and os.listdir(tmp_path / "cache") == []


def test_cli_unknown_dataset_name(tmp_path):
    result = runner.invoke(app, ["download", "hoper-medium-v2", "--no-ingest",
                                 "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and "did you mean hopper-medium-v2" in result.output


def test_the_catalogue_carries_the_published_size_and_hash():
    # Published by TFDS' D4RL builders (rlif_data/sources/d4rl_checksums.py).
    src = dl.d4rl_source("hopper-medium-v2")
    assert (src.bytes, src.sha256) == (
        152_756_557, "5bdf1bc4a713c82941de44633df669b36c89850b652a25985166796d25cf71a0")
    # A hash given by the user names another file: the catalogue's size no longer applies.
    other = dl.d4rl_source("hopper-medium-v2", sha256="AB" * 32)
    assert (other.bytes, other.sha256) == (None, "ab" * 32)
    assert dl.d4rl_source("relocate-human-v1").sha256 is None  # none published: unverified


def test_cli_without_a_hash_checks_the_catalogues_and_refuses_another_file(served, tmp_path):
    server, _, _, _ = served  # serves a small file under hopper-medium-v2's name
    result = runner.invoke(app, ["download", "hopper-medium-v2", "--mirror", server.base,
                                 "--cache-dir", str(tmp_path / "cache"),
                                 "--out", str(tmp_path / "ds"), "--quiet"])
    assert result.exit_code == 2
    assert "expected 152756557" in " ".join(result.output.split())
    assert not (tmp_path / "ds").exists()
    assert not (tmp_path / "cache" / FILE_NAME).exists()
