"""The CLI as a lab meets it (issue 13): strict job flags, --root for jobs, quiet jobs,
references wherever a dataset is named, the view and its mask shown, headless rendering."""

import argparse
import logging
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipelines import common, relabel
from rlif_cli.main import app
from rlif_data import schema as sc
from rlif_data.registry.store import ROOT_ENV, Registry
from tests.fakes.episodes import make_episode, write_recording

runner = CliRunner()
# In-process runner: the graph is the same, without worker start-up.
SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
TFDS_NOISE = ("Downloading and preparing dataset", "Subsequent calls will reuse this data")
WORKER_NOISE = ("semi_persistent_directory", "Discarding unparseable args")


def one_line(text):
    return " ".join(text.split())


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("rec") / "round-0",
                           [make_episode(i, length=6) for i in range(4)])


@pytest.fixture(autouse=True)
def no_default_root(monkeypatch):
    # Every registry here is named by --root: a leaked $RLIF_DATA_ROOT would hide a bug.
    monkeypatch.delenv(ROOT_ENV, raising=False)


# ---------------------------------------------------------------------------
# Item 1: jobs accept only their flags and Beam's pipeline options.
# ---------------------------------------------------------------------------

def test_misspelt_job_flag_exits_2_naming_it_and_writes_nothing(recording, tmp_path):
    out = tmp_path / "ds"
    result = runner.invoke(app, ["relabel", "--input", recording, "--out", str(out),
                                 "--veiw", "hg-dagger"])
    assert result.exit_code == 2
    text = one_line(result.output)
    assert "unknown option --veiw" in text and "did you mean --view?" in text
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("typo,guess", [
    ("--runer=DataflowRunner", "--runner"),
    ("--direct_num_worker=2", "--direct_num_workers"),
    ("--outt", "--out"),
])
def test_typos_of_beam_and_job_flags_get_the_closest_spelling(recording, tmp_path, typo, guess):
    result = runner.invoke(app, ["downsample", "--input", recording, "--out",
                                 str(tmp_path / "ds"), "--episodes", "2", typo])
    assert result.exit_code == 2
    assert f"did you mean {guess}?" in one_line(result.output)


def test_stray_argument_and_bad_beam_value_are_refused(recording, tmp_path):
    base = ["relabel", "--input", recording, "--out", str(tmp_path / "ds")]
    result = runner.invoke(app, [*base, "hg-dagger"])
    assert result.exit_code == 2 and "unexpected argument 'hg-dagger'" in one_line(result.output)
    result = runner.invoke(app, [*base, "--direct_num_workers=two"])
    assert result.exit_code == 2 and "--direct_num_workers" in one_line(result.output)
    assert not (tmp_path / "ds").exists()


def test_beam_pipeline_options_of_every_runner_are_accepted():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    beam = ["--runner=DataflowRunner", "--project=p", "--region", "us-central1",
            "--temp_location=gs://b/tmp", "--flink_master=host:8081",
            "--spark_master_url=spark://h:7077", "--environment_type=LOOPBACK",
            "--experiments=a,b", "--direct_num_workers=2"]
    args, passed = common.split_job_args(parser, ["--input", "x", *beam])
    assert args.input == "x" and passed == beam
    with pytest.raises(common.UnknownOptionError, match="--inptu: did you mean --input"):
        common.split_job_args(parser, ["--inptu", "x"])
    # No abbreviations: `--inp` is not `--input`.
    with pytest.raises(common.UnknownOptionError, match="unknown option --inp"):
        common.split_job_args(argparse.ArgumentParser(), ["--inp", "x"])


def test_beam_options_come_from_beam_itself():
    flags = set(common.option_names(common.beam_option_parser()))
    # One option of several PipelineOptions classes: nothing is hand-listed.
    assert {"--runner", "--direct_running_mode", "--project", "--flink_master",
            "--spark_master_url", "--requirements_file", "--s3_region_name"} <= flags


def test_closest_flag_prefers_the_jobs_own_flags():
    beam = common.option_names(common.beam_option_parser())
    assert common.closest_flag("--veiw", ["--input", "--view"], beam) == "--view"
    assert common.closest_flag("--proejct", ["--input", "--view"], beam) == "--project"
    assert common.closest_flag("--zzzzzz", ["--input"], beam) is None


def test_jobs_resolve_references_in_the_root_given_by_flag(recording, tmp_path):
    root = str(tmp_path / "reg")
    Registry(root).publish(recording, "demo-raw")
    out = tmp_path / "ds"
    result = runner.invoke(app, ["relabel", "--input", "demo-raw@latest", "--out", str(out),
                                 "--view", "hg-dagger", "--root", root, *SINGLE])
    assert result.exit_code == 0, result.output
    assert "relabelled demo-raw@latest (hg-dagger)" in one_line(result.output)
    assert (out / sc.METADATA_FILE).exists()
    assert ROOT_ENV not in os.environ  # the job's root does not leak into the caller
    # Without --root the reference is looked up in the default root, where it is not.
    result = runner.invoke(app, ["relabel", "--input", "demo-raw@latest", "--out",
                                 str(tmp_path / "ds2"), *SINGLE],
                           env={ROOT_ENV: str(tmp_path / "empty")})
    assert result.exit_code == 2 and not (tmp_path / "ds2").exists()


# ---------------------------------------------------------------------------
# Item 7: quiet by default, --verbose shows the rest.
# ---------------------------------------------------------------------------

def test_relabel_run_prints_no_tfds_messages(recording, tmp_path, capfd):
    # The rounds driver calls relabel.run directly: the source must be quiet, not the CLI.
    relabel.run(recording, str(tmp_path / "ds"), "paper", SINGLE)
    captured = capfd.readouterr()
    for noise in TFDS_NOISE:
        assert noise not in captured.out + captured.err


def test_verbose_brings_the_build_messages_back(recording, tmp_path, caplog):
    caplog.handler.setLevel(logging.DEBUG)  # the handler takes all; logger levels decide

    def built_messages(*flags):
        caplog.clear()
        result = runner.invoke(app, ["relabel", "--input", recording, "--out",
                                     str(tmp_path / f"ds{len(flags)}"), *flags, *SINGLE])
        assert result.exit_code == 0, result.output
        return [r for r in caplog.records if "building dataset" in r.getMessage()]

    assert built_messages() == []
    assert len(built_messages("--verbose")) == 1
    assert logging.getLogger("pipelines").level == logging.NOTSET  # restored after the job


def test_a_job_prints_one_summary_line_and_no_worker_warnings(recording, tmp_path):
    # The real command with its default runner (2 worker processes), as a user runs it.
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    out = subprocess.run([exe, "relabel", "--input", recording, "--out", str(tmp_path / "ds")],
                         capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != ROOT_ENV})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == [
        f"relabelled {recording} (paper) -> {tmp_path / 'ds'}"]
    for noise in TFDS_NOISE + WORKER_NOISE:
        assert noise not in out.stdout + out.stderr, noise


# ---------------------------------------------------------------------------
# Items 5 and 6: references everywhere, the view and its mask shown, publish
# moves latest, --plot creates its folder, tables whole in a pipe.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry(recording, tmp_path_factory):
    """A raw version and an hg-dagger view of it, published."""
    base = tmp_path_factory.mktemp("views")
    view = relabel.run(recording, str(base / "hg"), "hg-dagger", SINGLE)
    root = str(base / "reg")
    Registry(root).publish(recording, "demo-raw")
    Registry(root).publish(view, "demo-hg")
    return root


def test_inspect_takes_references_and_shows_the_view_and_its_mask(registry, tmp_path):
    from rlif_data.recording.reader import read_episodes

    kept = sum(int(e[sc.STEPS][sc.INCLUDE][:-1].sum())
               for e in read_episodes(Registry(registry).path("demo-hg@latest")))
    for ref in ("demo-hg@latest", "demo-hg:1.0.0"):
        result = runner.invoke(app, ["inspect", ref, "--root", registry])
        assert result.exit_code == 0, result.output
        text = one_line(result.output)
        assert "view: hg-dagger" in text and f"keeps {kept} of 24 transitions" in text
        assert "kept" in text  # the per-episode column
    result = runner.invoke(app, ["inspect", "demo-raw@latest", "--root", registry])
    assert result.exit_code == 0 and "view: raw (no include mask" in one_line(result.output)
    result = runner.invoke(app, ["inspect", "demo-hg@nope", "--root", registry])
    assert result.exit_code == 2 and "demo-hg@nope" in one_line(result.output)


def test_show_prints_the_view_and_the_steps_its_mask_keeps(registry):
    result = runner.invoke(app, ["show", "demo-hg@latest", "--root", registry])
    assert result.exit_code == 0, result.output
    assert "view: hg-dagger; the include mask keeps" in one_line(result.output)


def test_publish_with_a_tag_also_moves_latest_unless_told_not_to(recording, tmp_path):
    root = ["--root", str(tmp_path / "reg")]
    assert runner.invoke(app, ["publish", recording, "--name", "d", *root]).exit_code == 0
    result = runner.invoke(app, ["publish", recording, "--name", "d", "--tag", "round-1", *root])
    assert "published d:1.1.0" in result.output and "latest" in result.output
    assert str(Registry(str(tmp_path / "reg")).resolve("d@latest")[1]) == "1.1.0"
    result = runner.invoke(app, ["publish", recording, "--name", "d", "--tag", "round-2",
                                 "--no-latest", *root])
    assert result.exit_code == 0 and "tags: round-2" in one_line(result.output)
    reg = Registry(str(tmp_path / "reg"))
    assert str(reg.resolve("d@latest")[1]) == "1.1.0"
    assert str(reg.resolve("d@round-2")[1]) == "1.2.0"


def test_plot_into_a_missing_folder_creates_it(recording, tmp_path):
    png = tmp_path / "plots" / "round-0" / "timeline.png"
    result = runner.invoke(app, ["inspect", recording, "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_tables_are_whole_when_stdout_is_a_pipe(recording, tmp_path):
    long_tag = "paper-hopper-medium-replay-round-12-seed-3-operator-alice"
    root = str(tmp_path / "reg")
    Registry(root).publish(recording, "hopper-medium-replay-rlif", tags=("latest", long_tag))
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([exe, "ls", "--root", root], capture_output=True, text=True,
                         timeout=120, env=env, check=True)
    row = [line for line in out.stdout.splitlines() if "hopper-medium-replay-rlif" in line]
    assert len(row) == 1 and long_tag in row[0] and "…" not in out.stdout


# ---------------------------------------------------------------------------
# Item 9: rendering without a display.
# ---------------------------------------------------------------------------

def without_gl_env():
    return {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}


def test_record_with_a_camera_picks_a_headless_backend_and_says_which(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    out = subprocess.run([exe, "record", "--out", str(tmp_path / "rec"), "--episodes", "1",
                          "--max-episode-steps", "4", "--camera", "track", "--image-size", "16",
                          "--quiet"], capture_output=True, text=True, timeout=300,
                         env=without_gl_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rendering with MUJOCO_GL=egl" in out.stderr  # this machine has EGL (libegl1)
    from rlif_data.recording.reader import read_episodes

    frames = read_episodes(str(tmp_path / "rec"))[0][sc.STEPS][sc.OBSERVATION]["track"]
    assert frames.shape == (5, 16, 16, 3) and frames.any()  # rendered, not blank


def test_robot_session_with_cameras_renders_headless(tmp_path):
    replay = tmp_path / "input.jsonl"
    replay.write_text('{"format": "rlif-input-replay", "version": 1, "frame": "robot", '
                      '"duration": 1.0}\n{"t": 0.0, "axes": [0, 0, 0, 0, 0, 0], '
                      '"buttons": [0, 0]}\n')
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    out = subprocess.run([exe, "robot-session", "--device", f"replay:{replay}", "--out",
                          str(tmp_path / "sess"), "--max-steps", "3", "--rate", "50",
                          "--image-size", "16", "--quiet"], capture_output=True, text=True,
                         timeout=300, env=without_gl_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rendering with MUJOCO_GL=egl" in out.stderr and "recorded 1 episodes" in out.stdout


def test_backend_choice_falls_back_and_keeps_the_users_choice(monkeypatch):
    from rlif_cli.common import choose_headless_gl

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    tried = []
    assert choose_headless_gl(lambda b: tried.append(b) or b == "osmesa") == "osmesa"
    assert tried == ["egl", "osmesa"] and os.environ["MUJOCO_GL"] == "osmesa"
    monkeypatch.setenv("MUJOCO_GL", "glfw")
    assert choose_headless_gl(lambda b: pytest.fail("probed although MUJOCO_GL is set")) is None
    assert os.environ["MUJOCO_GL"] == "glfw"
    monkeypatch.delenv("MUJOCO_GL")
    with pytest.raises(ValueError, match="install libegl1 .* or libosmesa6"):
        choose_headless_gl(lambda b: False)
    assert "MUJOCO_GL" not in os.environ
