"""Errors a user can fix are one line through the CLI: exit 2, what and how, prior data intact.

Real file systems where the machine lets us mount them: a read-only tmpfs
for the read-only registry and recording, a tiny tmpfs for a full disk
(skipped, with the reason, where mounting is not permitted). The same code
paths are also driven by an injected ENOSPC (`RLIF_FAULT=<point>=ENOSPC`),
which needs no mount.
"""

import contextlib
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import faults
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from rlif_data.registry import archive, remote
from rlif_data.registry.store import ROOT_ENV, Registry
from tests.fakes.episodes import make_episode, write_recording

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
runner = CliRunner()
SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
PROGRESS = re.compile(r"\[\d\d:\d\d")  # a progress bar's redraw (elapsed time), not a message


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.delenv(faults.ENV, raising=False)
    monkeypatch.setattr(faults, "_hits", {})


@contextlib.contextmanager
def tmpfs(path, size):
    """A tmpfs of `size` mounted at `path` (skips the test where mounting is not permitted)."""
    os.makedirs(path)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'no mount'}); "
                    "the injected-error tests cover the same code paths")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount_read_only(path):
    done = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")


def error_line(result):
    """The one error line: exit 2, no traceback, exactly one line on stderr."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not PROGRESS.search(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return " ".join(lines[0].split())


def registry_state(root):
    reg = Registry(root)
    return {name: ([str(v) for v in reg.versions(name)], reg.tags(name),
                   [(e["tag"], e["new"]) for e in reg.tag_history(name)],
                   [reg.verify(f"{name}:{v}").manifest["content_sha256"]
                    for v in reg.versions(name)])
            for name in reg.names()}


def episode_ids(directory):
    return [e[sc.EPISODE_ID] for e in read_episodes(directory)]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Writable inputs: a small and a large recording, a remote with d:2.0.0, an archive."""
    base = tmp_path_factory.mktemp("sources")
    small = write_recording(base / "small", [make_episode(i) for i in range(3)])
    large = write_recording(base / "large", [make_episode(i, length=200) for i in range(12)])
    src = Registry(str(base / "src"))
    src.publish(small, "d", version="2.0.0")
    remote.push(src, "d:2.0.0", str(base / "remote"), tags=("latest",))
    src.publish(small, "e")
    archive.export_version(src, "e:1.0.0", str(base / "e.tar"))
    return {"small": small, "large": large, "remote": str(base / "remote"),
            "archive": str(base / "e.tar")}


@pytest.fixture(scope="module")
def read_only(tmp_path_factory, sources):
    """A read-only file system holding a registry (d:1.0.0) and a recording."""
    mount = tmp_path_factory.mktemp("ro") / "fs"
    with tmpfs(mount, "16m") as path:
        root = os.path.join(path, "root")
        Registry(root).publish(sources["small"], "d")
        write_recording(os.path.join(path, "rec"), [make_episode(i) for i in range(2)])
        remount_read_only(path)
        yield {"root": root, "rec": os.path.join(path, "rec")}


READ_ONLY_COMMANDS = {
    "publish": lambda ro, s: ["publish", s["small"], "--name", "d", "--root", ro["root"]],
    "tag": lambda ro, s: ["tag", "d:1.0.0", "stable", "--root", ro["root"]],
    "import": lambda ro, s: ["import", s["archive"], "--root", ro["root"]],
    "pull": lambda ro, s: ["pull", "d:2.0.0", s["remote"], "--root", ro["root"]],
    "recover": lambda ro, s: ["recover", ro["rec"]],
    "record": lambda ro, s: ["record", "--out", ro["rec"], "--episodes", "1", "--quiet",
                             "--max-episode-steps", "5"],
}


@pytest.mark.parametrize("command", sorted(READ_ONLY_COMMANDS))
def test_a_read_only_registry_or_recording_is_one_line(read_only, sources, command):
    before = registry_state(read_only["root"]), episode_ids(read_only["rec"])
    result = runner.invoke(app, READ_ONLY_COMMANDS[command](read_only, sources))
    line = error_line(result)
    assert "Read-only file system" in line and "remount it read-write" in line
    assert (registry_state(read_only["root"]), episode_ids(read_only["rec"])) == before


@pytest.fixture
def full_disk(tmp_path, sources):
    """A 1 MiB file system holding a registry with d:1.0.0 (the large recording is 1.5 MB)."""
    with tmpfs(tmp_path / "full", "1m") as path:
        root = os.path.join(path, "root")
        Registry(root).publish(sources["small"], "d")
        yield path


def test_publish_on_a_full_disk_is_one_line_and_leaves_the_registry(full_disk, sources):
    root = os.path.join(full_disk, "root")
    before = registry_state(root)
    line = error_line(runner.invoke(app, ["publish", sources["large"], "--name", "d",
                                          "--root", root]))
    assert line.startswith("error: publish failed:") and "No space left on device" in line
    assert "free space on that disk" in line and root in line  # which disk is full
    assert registry_state(root) == before
    assert os.listdir(os.path.join(root, "staging")) == []  # the partial copy is gone


def test_a_job_on_a_full_disk_is_one_line_naming_its_log(tmp_path, sources):
    with tmpfs(tmp_path / "tiny", "128k") as disk:
        check_job_on_a_full_disk(disk, sources)


def check_job_on_a_full_disk(full_disk, sources):
    os.mkdir(os.path.join(full_disk, "root"))  # prior data on that disk
    out = os.path.join(full_disk, "relabelled")
    result = runner.invoke(app, ["relabel", "--input", sources["large"], "--out", out] + SINGLE)
    line = error_line(result)
    assert "job 'relabel' failed, nothing was written" in line
    assert "No space left on device" in line and "free space on that disk" in line
    log = line.split("full log: ")[1]
    assert "Traceback" in open(log).read()  # the detail is kept, just not printed
    os.unlink(log)
    assert len(result.output) < 2000
    assert sorted(os.listdir(full_disk)) == ["root"]  # no output, no staging left


@pytest.mark.parametrize("point", ["publish.copied", "tag.intent_written"])
def test_an_injected_full_disk_during_publish_is_one_line(tmp_path, sources, monkeypatch, point):
    root = str(tmp_path / "root")
    Registry(root).publish(sources["small"], "d")
    before = registry_state(root)
    monkeypatch.setenv(faults.ENV, f"{point}=ENOSPC")
    line = error_line(runner.invoke(app, ["publish", sources["small"], "--name", "d",
                                          "--root", root]))
    assert f"No space left on device (injected at {point})" in line
    assert "free space on that disk" in line and "the registry is as it was" in line
    monkeypatch.delenv(faults.ENV)
    assert registry_state(root) == before
    Registry(root).gc()
    assert registry_state(root) == before


@pytest.mark.parametrize("point", ["tag.log_appended", "tag.replaced"])
def test_a_full_disk_after_the_commit_point_still_publishes(tmp_path, sources, monkeypatch,
                                                            point):
    """Past its commit point the publish happened: success, and gc finishes the files."""
    root = str(tmp_path / "root")
    Registry(root).publish(sources["small"], "d")
    monkeypatch.setenv(faults.ENV, f"{point}=ENOSPC")
    result = runner.invoke(app, ["publish", sources["small"], "--name", "d", "--root", root])
    assert result.exit_code == 0, result.output
    monkeypatch.delenv(faults.ENV)
    after = registry_state(root)
    assert after["d"][0] == ["1.0.0", "1.1.0"] and after["d"][1] == {"latest": "1.1.0"}
    Registry(root).gc()
    assert registry_state(root) == after
    assert not os.path.exists(os.path.join(root, "datasets", "d", ".pending-tags.json"))


def test_an_injected_full_disk_after_a_job_is_one_line(tmp_path, sources, monkeypatch):
    monkeypatch.setenv(faults.ENV, "job.built=ENOSPC")
    out = tmp_path / "jobs" / "out"
    line = error_line(runner.invoke(app, ["relabel", "--input", sources["small"],
                                          "--out", str(out)] + SINGLE))
    assert "No space left on device (injected at job.built)" in line
    assert os.listdir(tmp_path / "jobs") == []


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("not a directory\n")
    return str(path)


FILE_ARGUMENTS = {
    "ls --root": (lambda f, s: ["ls", "--root", f], "is a file, not a registry root"),
    "publish --root": (lambda f, s: ["publish", s["small"], "--name", "d", "--root", f],
                       "is a file, not a registry root"),
    "record --out": (lambda f, s: ["record", "--out", f, "--episodes", "1", "--quiet",
                                   "--max-episode-steps", "5"],
                     "is a file, not a directory"),
    "relabel --out": (lambda f, s: ["relabel", "--input", s["small"], "--out", f] + SINGLE,
                      "already exists; choose a new output directory"),
    "relabel --out inside": (lambda f, s: ["relabel", "--input", s["small"],
                                           "--out", os.path.join(f, "out")] + SINGLE,
                             ("is a file", "exists already")),
    "inspect": (lambda f, s: ["inspect", f], "is a file, not a directory"),
    "recover": (lambda f, s: ["recover", f], "is a file, not a directory"),
}


@pytest.mark.parametrize("case", sorted(FILE_ARGUMENTS))
def test_a_file_where_a_directory_belongs_is_one_line(a_file, sources, case):
    args, expected = FILE_ARGUMENTS[case]
    line = error_line(runner.invoke(app, args(a_file, sources)))
    assert a_file in line and any(e in line for e in (
        expected if isinstance(expected, tuple) else (expected,)))
    assert open(a_file).read() == "not a directory\n"


def test_the_installed_command_prints_one_line_on_a_read_only_registry(read_only, sources):
    """The console script itself (logging set up by main, no CliRunner)."""
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "rlif-data"),
                           "tag", "d:1.0.0", "stable", "--root", read_only["root"]],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Read-only file system" in lines[0], done.stderr


def test_os_errors_are_described_in_one_line_with_their_fix():
    import errno

    from rlif_data import errors

    line = errors.describe_os_error(OSError(errno.EROFS, "Read-only file system", "/r/.lock"))
    assert line.startswith("/r/.lock: Read-only file system; ") and "remount" in line
    assert errors.describe_os_error(OSError(errno.EIO, "I/O error")) == "I/O error"  # no fix
    assert errors.errno_in_text("RuntimeError: write() failed: No space left on device; "
                                "writing x") == errno.ENOSPC
    assert errors.errno_in_text("ValueError: bad view") is None


def test_a_failure_summary_is_the_innermost_error_line():
    from pipelines.output import failure_summary

    text = ("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
            "RuntimeError: write() failed: No space left on device [while running 'w']\n\n"
            "During handling ...\nTraceback ...\n"
            "apache_beam.runners.direct.SomeFailure: write() failed: disk [while running 'w']\n")
    assert failure_summary(text) == "apache_beam.runners.direct.SomeFailure: write() failed: disk"
    assert failure_summary("no error line here\nlast words") == "last words"
    assert len(failure_summary("KeyError: " + "x" * 1000)) == 400
