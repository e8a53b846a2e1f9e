"""The `rlif-data` command line, through typer's runner and as an installed command."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rlif_data import schema as sc
from rlif_cli.main import app
from rlif_data.recording import store
from rlif_data.recording.reader import read_episodes

runner = CliRunner()
SUBCOMMANDS = ["record", "recover", "inspect", "quickstart"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_on_every_subcommand(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_installed_console_command():
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for command in SUBCOMMANDS:
        assert command in out.stdout


def test_record_then_inspect_with_plot(tmp_path):
    out = tmp_path / "rec"
    result = runner.invoke(app, ["record", "--env", "Hopper-v5", "--intervention", "random",
                                 "--rate", "0.5", "--episodes", "3", "--out", str(out),
                                 "--max-episode-steps", "50", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 episodes" in result.output
    assert len(read_episodes(str(out))) == 3
    png = tmp_path / "timeline.png"
    result = runner.invoke(app, ["inspect", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "episodes: 3" in result.output and "intervention rate" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["--rate", "1.0"], "rate must be in [0, 1)"),
    (["--rate", "-0.2"], "rate must be in [0, 1)"),
    (["--env", "Hopper-v99"], "unknown environment id 'Hopper-v99'"),
    (["--intervention", "sometimes"], "intervention must be one of"),
    (["--learner", "/no/such/ckpt"], "learner must be one of"),
])
def test_record_bad_input_exits_2_with_message(tmp_path, args, message):
    result = runner.invoke(app, ["record", "--out", str(tmp_path / "rec"), "--episodes", "1",
                                 "--quiet", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_record_into_directory_with_other_schema(tmp_path):
    out = tmp_path / "rec"
    base = ["record", "--out", str(out), "--episodes", "1", "--max-episode-steps", "20", "--quiet"]
    assert runner.invoke(app, base).exit_code == 0
    result = runner.invoke(app, [*base, "--env", "Walker2d-v5"])
    assert result.exit_code == 2
    assert "another schema" in " ".join(result.output.split())
    assert len(read_episodes(str(out))) == 1


def test_recover_command(tmp_path):
    out = tmp_path / "rec"
    assert runner.invoke(app, ["record", "--out", str(out), "--episodes", "2",
                               "--max-episode-steps", "20", "--quiet"]).exit_code == 0
    (out / f"{store.TMP_PREFIX}{store.shard_name('rlif_episodes', 2)}").write_bytes(b"half")
    result = runner.invoke(app, ["recover", str(out)])
    assert result.exit_code == 0
    assert "removed 1 unfinished file(s)" in result.output and "2 episodes readable" in result.output
    result = runner.invoke(app, ["recover", str(tmp_path / "missing")])
    assert result.exit_code == 2


def test_inspect_missing_directory(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "not an rlif-data recording" in " ".join(result.output.split())


def test_quickstart_records_trains_and_runs_one_more_round(tmp_path):
    from rlif_data.registry.store import Registry

    quick = ["--train-steps", "4", "--round-episodes", "2"]
    result = runner.invoke(app, ["quickstart", "--workdir", str(tmp_path), "--episodes", "4",
                                 *quick])
    assert result.exit_code == 0, result.output
    eps = read_episodes(str(tmp_path / "recordings" / "round-0"))
    assert len(eps) == 4
    assert any(e[sc.STEPS][sc.INTERVENTION].any() for e in eps)
    assert (tmp_path / "intervention_timeline.png").exists()
    registry = Registry(str(tmp_path / "registry"))
    assert registry.info("quickstart-policy@latest").manifest["kind"] == "policy"
    # The extra round was collected by the trained policy and merged into the dataset.
    round_1 = read_episodes(registry.path("quickstart-raw@round-1"))
    assert {e[sc.POLICY_VERSION] for e in round_1} == {"quickstart-policy:1.0.0"}
    assert len(read_episodes(registry.path("quickstart@latest"))) == 4 + 2
    assert "quickstart-policy:1.0.0" in result.output and "round" in result.output
    # data -> policy -> data: lineage reaches the policy and the dataset it learnt from.
    refs = []

    def walk(node):
        refs.append(node.get("ref"))
        for child in node.get("inputs", []):
            walk(child)

    walk(registry.lineage("quickstart@latest"))
    assert {"quickstart-policy:1.0.0", "quickstart:1.0.0", "quickstart-raw:1.0.0"} <= set(refs)
    # Running it again appends to the same recording.
    again = runner.invoke(app, ["quickstart", "--workdir", str(tmp_path), "--episodes", "2",
                                *quick])
    assert again.exit_code == 0, again.output
    assert len(read_episodes(str(tmp_path / "recordings" / "round-0"))) == 6


def test_registry_commands(tmp_path):
    from tests.fakes.episodes import make_episode, write_recording

    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    root = ["--root", str(tmp_path / "reg")]

    def run(*args):
        result = runner.invoke(app, [*args, *root])
        return result.exit_code, " ".join(result.output.split())

    assert run("publish", rec, "--name", "demo")[1].startswith("published demo:1.0.0")
    assert "published demo:1.1.0" in run("publish", rec, "--name", "demo", "--tag", "latest",
                                         "--tag", "round-1")[1]
    code, out = run("ls")
    assert code == 0 and "demo" in out and "1.1.0" in out and "round-1" in out
    code, out = run("show", "demo@round-1")
    assert code == 0 and "episodes: 3" in out and "intervention rate" in out and "schema:" in out
    assert run("tag", "demo:1.0.0", "paper") == (0, "demo@paper -> demo:1.0.0")
    assert run("untag", "demo@paper")[0] == 0
    code, out = run("show", "demo@paper")
    assert code == 2 and "not a known tag" in out
    assert "SHA-256" in run("verify", "demo@latest")[1]
    code, out = run("lineage", "demo")
    assert code == 0 and "raw:" in out
    shared = str(tmp_path / "shared")
    assert "pushed demo:1.1.0" in run("push", "demo@latest", shared)[1]
    code, out = runner.invoke(app, ["pull", "demo@round-1", shared, "--root",
                                    str(tmp_path / "other")]).exit_code, ""
    assert code == 0
    assert "removed 0" in run("gc")[1]


def test_export_import_commands(tmp_path):
    from tests.fakes.episodes import make_episode, write_recording

    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    a, b = ["--root", str(tmp_path / "a")], ["--root", str(tmp_path / "b")]
    assert runner.invoke(app, ["publish", rec, "--name", "demo", *a]).exit_code == 0
    archive = str(tmp_path / "demo.tar")
    result = runner.invoke(app, ["export", "demo@latest", archive, *a])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["import", archive, "--tag", "usb", *b])
    assert result.exit_code == 0, result.output
    assert "imported demo:1.0.0" in result.output
    assert len(read_episodes(os.path.join(str(tmp_path / "b"), "datasets", "demo", "1.0.0"))) == 2
    again = runner.invoke(app, ["export", "demo@latest", archive, *a])
    assert again.exit_code == 2 and "exists" in again.output


def test_verify_deep_through_the_cli_finds_damage_the_hashes_accept(tmp_path):
    from rlif_data.registry import checksums
    from rlif_data.registry.store import Registry
    from tests.fakes.episodes import make_episode, write_recording

    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    registry = Registry(str(tmp_path / "reg"))
    info = registry.publish(rec, "d")
    root = ["--root", str(tmp_path / "reg")]
    ok = runner.invoke(app, ["verify", "d@latest", "--deep", *root])
    assert ok.exit_code == 0 and "every record parsed" in ok.output
    # Damage a shard after publishing and re-sign the manifest: the hashes agree, records do not.
    shard = next(rel for rel in info.manifest["files"] if "array_record" in rel)
    path = os.path.join(info.path, shard)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:  # zero the footer (array_record pads the file with zeros)
        end = len(f.read().rstrip(b"\0"))
        f.seek(end - 512)
        f.write(b"\0" * 512)
    files = {**info.manifest["files"], shard: {**info.manifest["files"][shard],
                                               "sha256": checksums.sha256_file(path)}}
    extra = {k: v for k, v in info.manifest.items() if k not in ("files", "content_sha256")}
    os.chmod(info.path, 0o755)
    checksums.write_manifest(info.path, files, extra)
    assert runner.invoke(app, ["verify", "d@latest", *root]).exit_code == 0
    bad = runner.invoke(app, ["verify", "d@latest", "--deep", *root])
    assert bad.exit_code == 2 and shard.split("/")[-1] in " ".join(bad.output.split())
