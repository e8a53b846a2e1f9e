"""Episodes marked invalid, end to end (issue 14 item 1).

An operator marks the current or previous episode invalid (API, keyboard key,
SpaceMouse chord from real HID report bytes, or `rlif-data mark-invalid`);
the episode stays in the recording, its mark goes to invalid_episodes.jsonl;
jobs drop or keep marked episodes by an explicit option recorded in lineage;
inspect / show / view / check report them; publish carries the file.
Real recordings (the crash-safe store, Hopper-v5 and the MuJoCo sim arm) and
real Beam jobs (DirectRunner, in-process).
"""

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import intervention as iv
from rlif_data import invalid, policies
from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from rlif_data.recording.recorder import NoEpisodeToMarkError, RolloutRecorder, SessionInfo
from rlif_data.recording.store import EpisodeStore
from tests.fakes.episodes import make_episode, write_recording

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = "2026-11-30T10:00:00+00:00"


def mark_line(episode_id, reason="collision", how="cli", by="alice", at=T0, **extra):
    return json.dumps({"episode_id": episode_id, "reason": reason, "marked_at": at, "by": by,
                       "how": how, **extra}) + "\n"


def marks_file(directory):
    return os.path.join(str(directory), sc.INVALID_EPISODES_FILE)


def ids_of(directory):
    return [e[sc.EPISODE_ID] for e in read_episodes(str(directory))]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# -- the marks file: format, the marked-once rule, torn and hostile lines ---------------------


def test_a_mark_is_appended_once_and_a_second_mark_leaves_the_file_unchanged(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    stored = invalid.mark_episode(rec, "s/1", "dropped object", by="bob")
    assert stored.line == 1 and stored.how == "cli"
    before = open(marks_file(rec), "rb").read()
    line = json.loads(before)
    assert line == {"episode_id": "s/1", "reason": "dropped object",
                    "marked_at": stored.marked_at, "by": "bob", "how": "cli"}
    assert line["marked_at"].endswith("+00:00")
    with pytest.raises(invalid.AlreadyInvalidError,
                       match=r"episode s/1 in .* is already marked invalid \(reason 'dropped "
                             r"object', at .*\); an episode is marked once"):
        invalid.mark_episode(rec, "s/1", "collision")
    assert open(marks_file(rec), "rb").read() == before
    assert [m.episode_id for m in invalid.read_marks(rec)] == ["s/1"]
    assert ids_of(rec) == ["s/0", "s/1", "s/2"]  # nothing deleted


def test_a_torn_last_line_is_ignored_on_read_and_cut_off_by_the_next_append(tmp_path, caplog):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    whole = mark_line("s/0")
    with open(marks_file(rec), "w") as f:
        f.write(whole + mark_line("s/2")[:25])  # a kill in the middle of the second append
    marks = invalid.read_marks(rec)
    assert [m.episode_id for m in marks] == ["s/0"]
    assert "torn last line" in caplog.text
    # s/2's mark never landed: it can be made now, and the fragment is gone.
    invalid.mark_episode(rec, "s/2", "collision")
    text = open(marks_file(rec)).read()
    assert text.startswith(whole) and text.count("\n") == 2
    assert [m.episode_id for m in invalid.read_marks(rec)] == ["s/0", "s/2"]


HOSTILE = [
    ("not json at all\n", r":2: not a JSON mark"),
    (mark_line("s/1", reason="\x1b[2Jwiped"), r":2: 'reason' holds the control character U\+001B"),
    (mark_line("s/1", reason="evil\u202etxt.exe"), r":2: 'reason' holds the control character"),
    (mark_line("s/1", reason=7), r":2: 'reason' must be text, got int"),
    (mark_line("s/1", reason=""), r":2: 'reason' is empty"),
    (mark_line("s/1", reason="x" * 501), r":2: 'reason' has 501 characters, at most 500"),
    (mark_line("s/1", how="telepathy"), r":2: 'how' must be one of key, button, api, cli"),
    (mark_line("s/1", at="yesterday"), r":2: 'marked_at' 'yesterday' is not an ISO 8601"),
    (mark_line("s/1", at="2026-11-30T10:00:00+02:00"), r":2: .* is not UTC"),
    (mark_line("s/1", extra="x"), r":2: a mark has the keys .*; unknown extra"),
    ('["s/1", "collision"]\n', r":2: a mark is a JSON object, got list"),
    ('{"episode_id": "s/1", "episode_id": "s/2"}\n', r":2: not a JSON mark .*given twice"),
    ('{"episode_id": NaN}\n', r":2: not a JSON mark .*NaN is not JSON"),
    (b"\xff\xfe{}\n", r":2: not a JSON mark"),
    (mark_line("s/" + "1" * 9000), r":2: a line of \d+ bytes"),
    (mark_line("s/0", reason="again"), r":2: episode 's/0' is marked again \(first at line 1\)"),
    ("\n", r":2: an empty line"),
]


@pytest.mark.parametrize("line,match", HOSTILE)
def test_a_hostile_line_is_refused_naming_file_and_line(tmp_path, line, match):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    content = mark_line("s/0").encode() + (line if isinstance(line, bytes) else line.encode())
    with open(marks_file(rec), "wb") as f:
        f.write(content + mark_line("s/1", reason="ok").encode())  # not the last line: not torn
    with pytest.raises(invalid.MarkFileError, match=r"invalid_episodes\.jsonl" + match):
        invalid.read_marks(rec)
    # Appending refuses too and changes nothing; the CLI says the same in one line.
    with pytest.raises(invalid.MarkFileError):
        invalid.append_mark(rec, invalid.new_mark("s/1", "collision", "cli"))
    assert open(marks_file(rec), "rb").read() == content + mark_line("s/1", reason="ok").encode()
    result = cli("inspect", rec)
    assert result.exit_code == 2 and "invalid_episodes.jsonl:2" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_split_episodes_decides_and_refuses_without_an_option():
    marks = [invalid.new_mark("b", "collision", "key"), invalid.new_mark("zz", "typo", "cli")]
    ids = ["a", "b", "c"]
    with pytest.raises(invalid.InvalidOptionRequiredError,
                       match=r"^D holds 1 episode marked invalid; pass --invalid_episodes=drop "
                             r"\(leave them out\) or --invalid_episodes=keep$"):
        invalid.split_episodes(ids, marks, None, "D")
    drop = invalid.split_episodes(ids, marks, "drop", "D")
    assert (drop.kept, drop.dropped, drop.marked, drop.kept_marks) == ((0, 2), (1,), (1,), ())
    assert drop.lineage() == {"option": "drop", "marked": 1, "dropped": 1}
    assert [m.episode_id for m in drop.dangling] == ["zz"]
    keep = invalid.split_episodes(ids, marks, "keep", "D")
    assert keep.kept == (0, 1, 2) and [m.episode_id for m in keep.kept_marks] == ["b"]
    assert keep.lineage() == {"option": "keep", "marked": 1, "dropped": 0}
    unmarked = invalid.split_episodes(ids, [], None, "D")
    assert unmarked.kept == (0, 1, 2) and unmarked.lineage()["marked"] == 0
    with pytest.raises(ValueError, match="--invalid_episodes must be drop or keep"):
        invalid.split_episodes(ids, marks, "maybe", "D")


# -- marking during a session: the recorder's API -------------------------------------------


HOPPER = sc.vector_schema(11, 3)


def hopper_recorder(directory, max_steps=15, observer=None):
    from rlif_data.envs.gym_dm_env import make_dm_env

    env = make_dm_env("Hopper-v5", seed=0, max_episode_steps=max_steps)
    store = EpisodeStore.open(str(directory), HOPPER)
    learner = policies.RandomPolicy.from_space(env.gym_env.action_space, seed=0)
    return RolloutRecorder(env, store, learner, policies.scripted_expert("Hopper-v5"),
                           iv.RandomTakeover(0.5, seed=0),
                           SessionInfo("Hopper-v5", operator="alice"), observer=observer)


def test_api_marks_the_current_and_the_previous_episode(tmp_path):
    calls = []

    def observer(episode_id, step, action, timestep):
        if step == 3 and episode_id.endswith("/00001"):
            # In flight: held, written right after the episode's commit.
            calls.append(recorder.mark_invalid("collision"))
            assert not os.path.exists(marks_file(tmp_path / "rec"))
            with pytest.raises(invalid.AlreadyInvalidError, match="already marked"):
                recorder.mark_invalid("again")

    recorder = hopper_recorder(tmp_path / "rec", observer=observer)
    with pytest.raises(NoEpisodeToMarkError, match="no episode of this session has ended"):
        recorder.mark_invalid("x", which="previous")
    with pytest.raises(NoEpisodeToMarkError, match="no episode is being recorded"):
        recorder.mark_invalid("x")
    for _ in range(3):
        recorder.run_episode()
    previous = recorder.mark_invalid("dropped object", which="previous", how="api")
    # The previous episode (the third) may still be on the writer thread: a current-then-
    # previous double mark of one episode is refused like any other.
    with pytest.raises(invalid.AlreadyInvalidError, match="00002 in .* already marked"):
        recorder.mark_invalid("twice", which="previous")
    recorder.flush()
    recorder.close()
    ids = ids_of(tmp_path / "rec")
    marks = invalid.read_marks(str(tmp_path / "rec"))
    assert [(m.episode_id, m.reason, m.how, m.by) for m in marks] == [
        (ids[1], "collision", "api", "alice"), (ids[2], "dropped object", "api", "alice")]
    assert calls[0].episode_id == ids[1] and previous.episode_id == ids[2]
    assert len(ids) == 3  # marked episodes stay in the recording


def test_a_kill_between_an_episodes_commit_and_its_mark_loses_only_the_mark(tmp_path):
    """Episode 1 is marked while in flight; SIGKILL after its shard is committed, before
    the held mark is appended: the episode survives, unmarked, and can be marked after."""
    rec = tmp_path / "rec"
    child = killed_session(rec, "record.shard_renamed@2")
    assert "MARKED" in child.stdout
    assert cli("recover", rec).exit_code == 0
    ids = ids_of(rec)
    assert len(ids) == 2  # episode 1 was committed (renamed) before the kill
    marks = invalid.read_marks(str(rec))
    assert [m.episode_id for m in marks] == [ids[0]]  # its own mark did not make it
    assert open(marks_file(rec)).read().endswith("\n")  # no torn line either
    result = cli("mark-invalid", rec, ids[1], "--reason", "collision")
    assert result.exit_code == 0, result.output
    assert [m.episode_id for m in invalid.read_marks(str(rec))] == ids


def test_a_kill_before_the_commit_loses_the_episode_and_its_mark_together(tmp_path):
    rec = tmp_path / "rec"
    killed_session(rec, "writer.episode_taken@2")
    cli("recover", rec)
    ids = ids_of(rec)
    assert len(ids) == 1
    assert [m.episode_id for m in invalid.read_marks(str(rec))] == ids


def killed_session(rec, fault):
    """Run `KILLED_SESSION` into `rec`, SIGKILLed at fault point `fault`; its finished process."""
    child = subprocess.run(
        [sys.executable, "-c", KILLED_SESSION, str(rec)], cwd=ROOT, capture_output=True,
        text=True, timeout=300,
        env=dict(os.environ, RLIF_FAULT=fault, TF_CPP_MIN_LOG_LEVEL="3"))
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    return child


KILLED_SESSION = """
import sys
from tests.test_invalid_episodes import hopper_recorder

def observer(episode_id, step, action, timestep):
    if step == 2:
        recorder.mark_invalid("collision")
        print("MARKED", episode_id, flush=True)

recorder = hopper_recorder(sys.argv[1], observer=observer)
for _ in range(4):
    recorder.run_episode()
recorder.close()
"""


# -- jobs: drop or keep, never silently -------------------------------------------------------


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """A 6-episode recording with episodes s/1 and s/4 marked invalid."""
    base = tmp_path_factory.mktemp("marked")
    rec = write_recording(base / "rec", [make_episode(i, length=6) for i in range(6)])
    invalid.mark_episode(rec, "s/1", "collision", by="alice")
    invalid.mark_episode(rec, "s/4", "dropped object", by="alice")
    return rec


def lineage_of(directory):
    with open(os.path.join(str(directory), sc.METADATA_FILE)) as f:
        return json.load(f)["lineage"]


def test_relabel_refuses_marked_input_without_the_option_then_drops_or_keeps(marked, tmp_path):
    out = tmp_path / "out"
    result = cli("relabel", "--input", marked, "--out", out, "--view", "paper")
    assert result.exit_code == 2
    assert (f"{marked} holds 2 episodes marked invalid; pass --invalid_episodes=drop (leave "
            "them out) or --invalid_episodes=keep") in " ".join(result.output.split())
    assert not out.exists()

    drop = cli("relabel", "--input", marked, "--out", tmp_path / "drop",
               "--invalid_episodes=drop")
    assert drop.exit_code == 0, drop.output
    assert ids_of(tmp_path / "drop") == ["s/0", "s/2", "s/3", "s/5"]
    assert lineage_of(tmp_path / "drop")["invalid_episodes"] == {
        "option": "drop", "marked": 2, "dropped": 2}
    assert not os.path.exists(marks_file(tmp_path / "drop"))

    keep = cli("relabel", "--input", marked, "--out", tmp_path / "keep",
               "--invalid_episodes", "keep")
    assert keep.exit_code == 0, keep.output
    assert ids_of(tmp_path / "keep") == [f"s/{i}" for i in range(6)]
    assert lineage_of(tmp_path / "keep")["invalid_episodes"] == {
        "option": "keep", "marked": 2, "dropped": 0}
    assert invalid.read_marks(str(tmp_path / "keep")) == invalid.read_marks(marked)
    # The kept marks travel on: a job reading the output must choose again.
    again = cli("merge", "--input", tmp_path / "drop", "--input", tmp_path / "keep",
                "--out", tmp_path / "m")
    assert again.exit_code == 2 and "holds 2 episodes marked invalid" in again.output


def test_unmarked_input_needs_no_option_and_records_none(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(3)])
    result = cli("relabel", "--input", rec, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert lineage_of(tmp_path / "out")["invalid_episodes"] == {
        "option": None, "marked": 0, "dropped": 0}


def test_merge_drops_marked_episodes_rewriting_only_the_shards_that_hold_them(marked,
                                                                              tmp_path):
    from pipelines import merge, relabel

    kept = relabel.run(marked, str(tmp_path / "kept"), "paper", invalid_episodes="keep")
    other = write_recording(tmp_path / "rec2", [make_episode(i, length=6) for i in range(6, 9)])
    other_view = relabel.run(other, str(tmp_path / "other"), "paper")
    out = merge.run([kept, other_view], str(tmp_path / "merged"), invalid_episodes="drop")
    assert ids_of(out) == ["s/0", "s/2", "s/3", "s/5", "s/6", "s/7", "s/8"]
    line = lineage_of(out)
    assert line["invalid_episodes"] == {"option": "drop", "marked": 2, "dropped": 2}
    assert line["params"]["rewritten_shards"] >= 1
    # Kept episodes' records are the inputs' bytes: decoded they are equal.
    for got, want in zip(read_episodes(out), [e for e in read_episodes(kept)
                                              if e[sc.EPISODE_ID] not in ("s/1", "s/4")]):
        np.testing.assert_array_equal(got[sc.STEPS][sc.REWARD], want[sc.STEPS][sc.REWARD])
    keep = merge.run([kept, other_view], str(tmp_path / "merged-keep"), invalid_episodes="keep")
    assert len(ids_of(keep)) == 9
    assert [m.episode_id for m in invalid.read_marks(keep)] == ["s/1", "s/4"]


def test_downsample_and_ingest_human_drop_or_keep(marked, tmp_path):
    from pipelines import downsample, ingest_human

    with pytest.raises(invalid.InvalidOptionRequiredError):
        downsample.run(marked, str(tmp_path / "x"), episodes=3)
    out = downsample.run(marked, str(tmp_path / "small"), episodes=4, invalid_episodes="drop")
    assert sorted(ids_of(out)) == ["s/0", "s/2", "s/3", "s/5"]
    assert lineage_of(out)["invalid_episodes"]["dropped"] == 2
    everything = downsample.run(marked, str(tmp_path / "all"), episodes=6,
                                invalid_episodes="keep")
    assert [m.episode_id for m in invalid.read_marks(everything)] == ["s/1", "s/4"]

    human = ingest_human.run(str(tmp_path / "human"), sessions=[marked], invalid_episodes="drop")
    assert ids_of(human) == ["s/0", "s/2", "s/3", "s/5"]
    assert lineage_of(human)["invalid_episodes"] == {"option": "drop", "marked": 2, "dropped": 2}


# -- inspect, show, publish, mark-invalid, check, view ----------------------------------------


def test_inspect_and_show_count_marked_episodes_and_publish_carries_the_file(marked, tmp_path):
    result = cli("inspect", marked)
    assert result.exit_code == 0, result.output
    assert "invalid: 2 of 6 episodes" in result.output
    assert "dropped object" in result.output  # the table's invalid column
    data = json.loads(cli("inspect", marked, "--json").output)
    assert data["invalid"]["marked"] == 2 and data["invalid"]["episodes"] == 6
    assert [m["episode_id"] for m in data["invalid"]["marks"]] == ["s/1", "s/4"]

    root = tmp_path / "root"
    published = cli("publish", marked, "--name", "marked", "--root", root)
    assert published.exit_code == 0, published.output
    shown = cli("show", "marked@latest", "--root", root)
    assert shown.exit_code == 0 and "invalid: 2 of 6 episodes" in shown.output
    data = json.loads(cli("show", "marked@latest", "--root", root, "--json").output)
    assert data["invalid"]["marked"] == 2 and data["ref"] == "marked:1.0.0"
    from rlif_data.registry.store import Registry

    version = Registry(str(root)).path("marked@latest")
    assert sc.INVALID_EPISODES_FILE in Registry(str(root)).info("marked@latest").manifest["files"]
    assert open(marks_file(version)).read() == open(marks_file(marked)).read()
    # A published version is immutable: the command says where to mark instead.
    for target in ("marked@latest", version):
        refused = cli("mark-invalid", target, "s/0", "--reason", "collision")
        assert refused.exit_code == 2 and "immutable" in refused.output
    clean = write_recording(tmp_path / "clean", [make_episode(0)])
    assert "invalid: 0 of 1 episodes" in cli("inspect", clean).output


@pytest.mark.parametrize("args,match", [
    (["s/1", "--reason", "again"], "already marked invalid (reason 'collision'"),
    (["s/99", "--reason", "collision"], "holds no episode 's/99'"),
    (["s/2", "--reason", "  "], "'reason' is empty"),
])
def test_mark_invalid_cli_refuses_bad_input_in_one_line(marked, args, match):
    before = open(marks_file(marked), "rb").read()
    result = cli("mark-invalid", marked, *args)
    assert result.exit_code == 2 and match in " ".join(result.output.split())
    assert len(result.output.strip().splitlines()) <= 2  # one line, wrapped at most once
    assert open(marks_file(marked), "rb").read() == before


def test_mark_invalid_cli_refuses_what_is_not_a_recording(tmp_path):
    (tmp_path / "plain").mkdir()
    result = cli("mark-invalid", tmp_path / "plain", "s/0", "--reason", "collision")
    assert result.exit_code == 2 and "not an rlif-data recording directory" in result.output
    assert not os.path.exists(marks_file(tmp_path / "plain"))
    missing = cli("mark-invalid", tmp_path / "nowhere", "s/0", "--reason", "collision")
    assert missing.exit_code == 2 and "no such directory" in missing.output


def test_check_reports_a_mark_that_names_no_episode(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)])
    with open(marks_file(rec), "w") as f:
        f.write(mark_line("s/1") + mark_line("s/7", reason="wrong recording"))
    from rlif_data.checks import INVALID_MARK, check_dataset

    report = check_dataset(rec)
    found = [f for f in report.findings if f.kind == INVALID_MARK]
    assert len(found) == 1 and found[0].episode_id == "s/7" and found[0].severity == "warning"
    assert "invalid_episodes.jsonl:2: marks episode 's/7' invalid" in found[0].message
    result = cli("check", rec)
    assert "invalid-mark" in result.output and "s/7" in result.output


def test_view_shows_validity_with_the_reason(marked, tmp_path):
    from rlif_data.report.writer import view_dataset

    out = tmp_path / "report"
    view_dataset(marked, str(out))
    index = (out / "index.html").read_text()
    assert index.count('class="invalid"') == 2 and "invalid: dropped object" in index
    assert index.count('class="valid"') == 4 and "invalid: <b>2 of 6 episodes</b>" in index
    page = (out / "episodes" / "000001.html").read_text()
    assert "marked invalid: collision" in page
    assert "marked invalid" not in (out / "episodes" / "000000.html").read_text()


# -- robot sessions: a keyboard key, a SpaceMouse button chord --------------------------------


class FakeClock:
    """Session time that moves only when the control loop sleeps; `at` runs actions on the way."""

    def __init__(self, actions=()):
        self.t = 100.0
        self.actions = sorted(actions, key=lambda a: a[0])

    def __call__(self):
        return self.t

    def sleep(self, dt):
        self.t += dt
        while self.actions and self.actions[0][0] <= self.t - 100.0:
            self.actions.pop(0)[1]()


def robot_session(tmp_path, device, clock, episodes=3, steps=20, stream=None,
                  reasons=("collision", "dropped object")):
    from robot.env import SimArmEnv
    from robot.session import SessionConfig, make_policy, run_session
    from robot.timing import ControlRate

    env = SimArmEnv(image_size=0, max_steps=steps, seed=0)
    return run_session(env, device, make_policy("random", env), env.episode_schema(),
                       SessionConfig(out=str(tmp_path / "rec"), episodes=episodes,
                                     operator="alice", invalid_reasons=reasons),
                       pacer=ControlRate(10.0, clock=clock, sleep=clock.sleep),
                       progress=stream is not None, status_stream=stream, clock=clock)


class Terminal:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return True


def test_keyboard_x_marks_the_current_episode_and_z_the_previous_one(tmp_path):
    from robot.keyboard_device import KeyboardDevice
    from robot.session import read_events

    clock = FakeClock()
    device = KeyboardDevice(clock=clock)
    press = lambda key: (lambda: device.on_key(key))  # noqa: E731
    clock.actions = sorted([
        (0.55, press("x")), (0.65, press("x")),  # held: the auto-repeat asks nothing more
        (2.55, press("z")),                      # the previous episode is marked already
        (2.65, press("2")),                      # the next marks say "dropped object"
        (4.55, press("z")),                      # marks episode 1
        (4.75, press("9")),                      # no 9th reason: refused, nothing changes
    ], key=lambda a: a[0])
    screen = Terminal()
    result = robot_session(tmp_path, device, clock, stream=screen)
    rec = str(tmp_path / "rec")
    ids = ids_of(rec)
    assert len(ids) == 3
    marks = invalid.read_marks(rec)
    assert [(m.episode_id, m.reason, m.how, m.by) for m in marks] == [
        (ids[0], "collision", "key", "alice"), (ids[1], "dropped object", "key", "alice")]
    assert [m.episode_id for m in result["invalid"]] == ids[:2]
    # Mark keys never take over.
    for episode in read_episodes(rec):
        assert not episode[sc.STEPS][sc.INTERVENTION].any()
    events = [e for e in read_events(rec) if "invalid" in e["event"]]
    assert [(e["event"], e.get("which")) for e in events] == [
        ("episode_marked_invalid", "current"), ("invalid_mark_refused", "previous"),
        ("episode_marked_invalid", "previous"), ("invalid_mark_refused", None)]
    assert "already marked invalid" in events[1]["why"]
    shown = screen.text
    assert "| current episode marked invalid: collision" in shown
    assert "| reason 2: dropped object" in shown
    assert "episode 1/3: 20 steps, operator in control 0% (0 takeovers); MARKED INVALID " \
           "(collision)\n" in shown


def test_a_spacemouse_chord_from_hid_reports_marks_the_current_episode_once(tmp_path):
    from robot.spacemouse_hid import SpaceMouseHID
    from tests.test_robot_input import NAV, WAIT, FakeHidHandle, hx

    gates = [threading.Event() for _ in range(4)]
    # SpaceNavigator button report: 03 | bit 0 LEFT, bit 1 RIGHT | 00.
    handle = FakeHidHandle([gates[0], hx("03 03 00"), gates[1], hx("03 00 00"),
                            gates[2], hx("03 03 00"), gates[3], hx("03 00 00")])
    clock = FakeClock()
    device = SpaceMouseHID(NAV, opener=lambda specs: (handle, specs[0]), clock=clock)

    def report(n):
        def send():
            gates[n].set()
            assert device.wait_for_reports(n + 1, WAIT)
        return send

    # Episode 0: both buttons held 1.5 s (marks it); episode 1: held 0.5 s (too short).
    clock.actions = [(0.5, report(0)), (2.0, report(1)), (2.5, report(2)), (3.0, report(3))]
    with device:
        result = robot_session(tmp_path, device, clock, episodes=2)
    rec = str(tmp_path / "rec")
    ids = ids_of(rec)
    marks = invalid.read_marks(rec)
    assert [(m.episode_id, m.reason, m.how) for m in marks] == [(ids[0], "collision", "button")]
    assert len(result["invalid"]) == 1
    # The buttons also count as a touch (operator in control, no motion) while held.
    flags = read_episodes(rec)[0][sc.STEPS][sc.INTERVENTION]
    assert flags[6:19].all() and not flags[:4].any()


def test_chord_and_key_requests_are_pure():
    from robot import invalid_marks as im

    state, fired = im.chord_step(im.ChordState(), (True, True), 10.0)
    assert not fired and state.since == 10.0
    state, fired = im.chord_step(state, (True, True), 10.99)
    assert not fired
    state, fired = im.chord_step(state, (True, True), 11.0)
    assert fired
    state, fired = im.chord_step(state, (True, True), 15.0)
    assert not fired  # once per hold
    state, fired = im.chord_step(state, (True, False), 15.1)
    assert state == im.ChordState() and not fired
    assert im.chord_step(im.ChordState(since=0.0), (True,), 5.0)[1] is False  # one button only
    assert im.key_request("x") == im.MarkRequest("current", "key")
    assert im.key_request("z") == im.MarkRequest("previous", "key")
    assert im.key_request("3") == im.ReasonChoice(2) and im.key_request("w") is None
    assert im.parse_reasons(None) == ("marked by operator",)
    assert im.parse_reasons(" collision, dropped object ") == ("collision", "dropped object")
    for bad, match in [("a,,b", "empty reason"), (",".join("abcdefghij"), "at most 9"),
                       ("a,a", "twice"), ("ok,\x1b[2J", "control character")]:
        with pytest.raises(ValueError, match=match):
            im.parse_reasons(bad)


def test_robot_session_cli_shows_the_mark_keys_and_refuses_bad_reasons(tmp_path):
    from robot.keyboard_device import MOTION_KEYS, key_map_lines

    lines = key_map_lines(2, reasons=("collision", "dropped object"))
    text = "\n".join(lines)
    assert "  x       mark invalid" in text and "  z       mark invalid" in text
    assert "1 collision, 2 dropped object" in text
    assert not {"x", "z", "1", "2"} & set(MOTION_KEYS)
    bad = cli("robot-session", "--device", "keyboard", "--out", tmp_path / "r",
              "--invalid-reasons", "a,,b")
    assert bad.exit_code == 2 and "empty reason" in bad.output
    assert not (tmp_path / "r").exists()


def test_a_reason_with_brackets_is_printed_as_written(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(0)])
    reason = "collision [/] [bold]left arm"
    assert cli("mark-invalid", rec, "s/0", "--reason", reason).exit_code == 0
    again = cli("mark-invalid", rec, "s/0", "--reason", "x")
    assert again.exit_code == 2 and f"(reason '{reason}'" in again.output
    assert reason in cli("inspect", rec).output
