"""SIGKILL at every named step of every write protocol, then check what a reader sees.

The steps are `rlif_data.faults.POINTS`; each is run under every scenario
of its protocol (`write_protocols.PROTOCOLS`), in a child process that kills
itself there. A new checkpoint is therefore killed at and checked without
touching this file. After each kill:

* registry: the visible state (versions with their content and integrity,
  tags, tag history) is exactly the state before or after the whole
  operation; every visible version verifies (deep), every tag resolves, the
  history replays to the tags, no half-written entry is visible; `gc` then
  changes nothing visible, leaves tags.json equal to the log's replay and no
  pending record, temporary file or staging directory; an operation that
  did not take effect can be run to its end.
* recording: after `recover` (or nothing, if no episode was committed)
  every episode reported committed is there, in order, plus at most the
  one in flight; every visible shard parses; appending works.
* job: the output is absent or complete; the killed job's staging directory
  is removed by the next sweep.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import faults
from rlif_data import schema as sc
from rlif_data.recording import store
from rlif_data.recording.reader import read_episodes
from rlif_data.registry import store as reg_store
from rlif_data.registry.store import IntegrityError, Registry
from rlif_data.registry.versions import Version
from tests.fakes import write_protocols as wp
from tests.fakes.episodes import SCHEMA, make_episode, write_recording
from tests.fakes.processes import descendants as _descendants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow

CASES = [(point, scenario) for point in sorted(faults.POINTS)
         for scenario in wp.PROTOCOLS.get(point.split(".")[0], ())]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("prepared"))
    wp.prepare(base)
    return base


def fresh(prepared, tmp_path, name="work"):
    work = str(tmp_path / name)
    shutil.copytree(prepared, work, symlinks=True)
    return work


# -- registry invariants -------------------------------------------------------------


def registry_state(root):
    """What readers see: per name, versions (content digest, deep-verifies), tags, history."""
    reg = Registry(root)
    state = {}
    base = os.path.join(root, "datasets")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        versions = {}
        for version in reg.versions(name):
            ref = f"{name}:{version}"
            try:
                reg.verify(ref, full=True, deep=True)
                ok = True
            except IntegrityError:
                ok = False
            versions[str(version)] = (reg.info(ref).manifest["content_sha256"], ok)
        history = [(e["tag"], e["old"], e["new"]) for e in reg.tag_history(name)]
        if versions or history:  # else only a lock file: nothing a reader sees
            state[name] = {"versions": versions, "tags": reg.tags(name), "history": history}
    return state


def replay(events):
    tags = {}
    for event in events:
        if event["new"] is None:
            tags.pop(event["tag"], None)
        else:
            tags[event["tag"]] = event["new"]
    return tags


def registry_problems(root):
    """Violations of the invariants a reader relies on (empty: none)."""
    reg = Registry(root)
    problems = []
    base = os.path.join(root, "datasets")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        for entry in sorted(os.listdir(os.path.join(base, name))):
            if entry.startswith(".") or entry in (reg_store.TAGS_FILE, reg_store.TAG_LOG):
                continue  # hidden: the lock, a pending record, temporary files
            try:
                Version.parse(entry)
            except ValueError:
                problems.append(f"{name}/{entry}: a visible entry that is no version")
                continue
            if not os.path.exists(os.path.join(base, name, entry, "MANIFEST.json")):
                problems.append(f"{name}/{entry}: a version directory without its manifest")
        tags = reg.tags(name)
        for tag in tags:
            try:
                reg.resolve(f"{name}@{tag}")
            except reg_store.UnknownDatasetError as exc:
                problems.append(f"{name}@{tag}: {exc}")
        if replay(reg.tag_history(name)) != tags:
            problems.append(f"{name}: history replays to {replay(reg.tag_history(name))}, "
                            f"tags are {tags}")
    return problems


def files_agree(root):
    """After gc: the files themselves (not the readers' view) are consistent and clean."""
    base = os.path.join(root, "datasets")
    for name in os.listdir(base):
        d = os.path.join(base, name)
        assert not os.path.exists(os.path.join(d, reg_store.PENDING_TAGS)), name
        assert not glob.glob(os.path.join(d, ".tags-*.json")), name
        tags_path = os.path.join(d, reg_store.TAGS_FILE)
        tags = json.load(open(tags_path)) if os.path.exists(tags_path) else {}
        log_path = os.path.join(d, reg_store.TAG_LOG)
        lines = open(log_path).read().splitlines() if os.path.exists(log_path) else []
        assert replay([json.loads(line) for line in lines]) == tags, name
    staging = os.path.join(root, "staging")
    assert not os.path.isdir(staging) or os.listdir(staging) == []


# What each registry scenario must have done when it ran without a fault: the
# sweep compares kills with that run, so the run itself is checked here.
EFFECTS = {
    "publish": lambda st: list(st["d"]["versions"])[-1] == "1.2.0"
    and st["d"]["tags"]["latest"] == "1.2.0",
    "tag": lambda st: st["d"]["tags"]["stable"] == "1.1.0",
    "untag": lambda st: "stable" not in st["d"]["tags"],
    "pull": lambda st: st["d"]["tags"]["latest"] == "2.0.0" and "2.0.0" in st["d"]["versions"],
    "pull-repair": lambda st: st["d"]["versions"]["1.1.0"][1],
    "import": lambda st: st["e"]["tags"] == {"latest": "1.0.0"},
    "gc": lambda st: st["d"]["tags"]["stable"] == "1.1.0",  # the killed tag move, applied
    "pull-lineage": lambda st: "1.0.0" in st["f"]["versions"],
    # What readers see does not change; test_registry_objects checks the links.
    "upgrade": lambda st: st["d"]["versions"]["1.1.0"][1] and st["d"]["tags"]["stable"] == "1.0.0",
}
_after = {}


def expected_after(name, prepared, tmp_path_factory):
    """The registry state after the scenario ran without a fault (once per scenario)."""
    if name not in _after:
        work = fresh(prepared, tmp_path_factory.mktemp(f"after-{name}"))
        wp.SCENARIOS[name].setup(work)
        done = wp.run_child(name, work)
        assert done.returncode == 0, done.stderr[-3000:]
        state = registry_state(os.path.join(work, "root"))
        assert all(ok for s in state.values() for _, ok in s["versions"].values())
        assert EFFECTS[name](state), f"{name} without a fault did not do its job: {state}"
        _after[name] = state
    return _after[name]


def check_registry(scenario, work, before, after, name):
    root = os.path.join(work, "root")
    seen = registry_state(root)
    assert seen in (before, after), f"a state no complete sequence of operations makes: {seen}"
    assert registry_problems(root) == []
    Registry(root).gc()
    assert registry_state(root) == seen, "gc changed what readers see"
    files_agree(root)
    if seen == before or name == "publish":
        scenario.op(work)  # it can be done (again: publish makes one more version)
    assert registry_problems(root) == []
    if name != "publish":
        assert registry_state(root) == after


# -- recording invariants -------------------------------------------------------------


def visible_shards_parse(directory, already_damaged=()):
    for path in sorted(glob.glob(os.path.join(directory, "*.array_record-*"))):
        if os.path.basename(path) not in already_damaged:
            store.count_records(path)  # raises on a half-written file


def damaged_shards(directory):
    damaged = set()
    for path in glob.glob(os.path.join(directory, "*.array_record-*")):
        try:
            store.count_records(path)
        except Exception:  # noqa: BLE001 - any failure to parse counts
            damaged.add(os.path.basename(path))
    return damaged


def check_recording(scenario, work, stdout, damaged_before):
    directory = os.path.join(work, scenario.target)
    done = [line.split()[1] for line in stdout.splitlines() if line.startswith("DONE")]
    if os.path.isdir(directory):
        visible_shards_parse(directory, damaged_before)
        index = os.path.join(directory, store.INFO_FILE)
        if os.path.exists(index):
            json.load(open(index))  # replaced whole, never half-written
    if os.path.exists(os.path.join(directory, sc.METADATA_FILE)):
        store.recover(directory)
    else:  # killed before the first index write finished: nothing was committed
        assert done == []
    expected = list(scenario.kept) + done
    ids = ([e[sc.EPISODE_ID] for e in read_episodes(directory)]
           if os.path.exists(os.path.join(directory, store.INFO_FILE)) else [])
    assert ids[:len(expected)] == expected
    assert len(ids) - len(expected) <= (1 if scenario.in_flight else 0), ids
    with store.EpisodeStore.open(directory, SCHEMA) as st:  # recording can go on
        st.write_episode(make_episode(99))
    assert [e[sc.EPISODE_ID] for e in read_episodes(directory)] == ids + ["s/99"]
    assert not [n for n in os.listdir(directory) if n.startswith(store.TMP_PREFIX)]
    assert store.shard_problems(directory) == []


# -- job invariants -------------------------------------------------------------------


def check_job(scenario, work):
    from pipelines import output

    out = os.path.join(work, scenario.target)
    parent = os.path.dirname(out)
    visible = [n for n in os.listdir(parent) if not n.startswith(".")]
    assert visible in ([], ["out"])
    if visible:
        assert [e[sc.EPISODE_ID] for e in read_episodes(out)] == ["s/0", "s/1", "s/2"]
    output.remove_stale_staging(parent)  # what the next job (or gc --jobs) does
    assert not [n for n in os.listdir(parent) if n.startswith(output.STAGING_PREFIX)]


# -- the sweep --------------------------------------------------------------------------


@pytest.mark.parametrize("point,name", CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_kill_at_every_step_leaves_a_consistent_state(prepared, tmp_path, tmp_path_factory,
                                                      point, name):
    scenario = wp.SCENARIOS[name]
    work = fresh(prepared, tmp_path)
    scenario.setup(work)
    before = after = None
    damaged_before = set()
    if scenario.kind == wp.REGISTRY:
        before = registry_state(os.path.join(work, "root"))
        after = expected_after(name, prepared, tmp_path_factory)
    elif scenario.kind == wp.RECORDING and os.path.isdir(os.path.join(work, scenario.target)):
        damaged_before = damaged_shards(os.path.join(work, scenario.target))
    killed = wp.run_child(name, work, f"{point}@{scenario.hit}")
    assert killed.returncode == -signal.SIGKILL, (
        f"{name} did not die at {point} (exit {killed.returncode}): {killed.stderr[-3000:]}")
    if scenario.kind == wp.REGISTRY:
        check_registry(scenario, work, before, after, name)
    elif scenario.kind == wp.RECORDING:
        check_recording(scenario, work, killed.stdout, damaged_before)
    else:
        check_job(scenario, work)


def test_every_point_is_in_the_code_and_every_protocol_has_scenarios():
    called = set()
    for package in ("rlif_data", "pipelines"):
        for path in glob.glob(os.path.join(ROOT, package, "**", "*.py"), recursive=True):
            called |= set(re.findall(r'checkpoint\("([\w.]+)"\)', open(path).read()))
    assert called == set(faults.POINTS)
    protocols = {point.split(".")[0] for point in faults.POINTS}
    assert protocols == set(wp.PROTOCOLS), "give each new protocol its scenarios"
    assert set(wp.SCENARIOS) == {s for names in wp.PROTOCOLS.values() for s in names}
    assert set(EFFECTS) == {n for n, s in wp.SCENARIOS.items() if s.kind == wp.REGISTRY}


def test_recovery_of_a_kill_between_log_and_tags_keeps_both_agreeing(prepared, tmp_path):
    """The second known hole: the log has the move, tags.json not; readers see the move."""
    work = fresh(prepared, tmp_path)
    root = os.path.join(work, "root")
    killed = wp.run_child("tag", work, "tag.log_appended")
    assert killed.returncode == -signal.SIGKILL
    raw = json.load(open(os.path.join(root, "datasets", "d", reg_store.TAGS_FILE)))
    assert raw["stable"] == "1.0.0"  # the file lags behind ...
    reg = Registry(root)
    assert reg.tags("d")["stable"] == "1.1.0"  # ... but no reader sees it
    assert reg.tag_history("d")[-1]["new"] == "1.1.0"
    reg.tag("d:1.0.0", "other")  # the next writer applies it first
    raw = json.load(open(os.path.join(root, "datasets", "d", reg_store.TAGS_FILE)))
    assert raw == {"latest": "1.1.0", "stable": "1.1.0", "other": "1.0.0"}
    assert [e["tag"] for e in reg.tag_history("d")].count("stable") == 2  # no duplicate


def test_kill_after_the_rename_publishes_with_latest(prepared, tmp_path):
    """The first known hole: a version visible without its tags."""
    work = fresh(prepared, tmp_path)
    killed = wp.run_child("publish", work, "version.renamed")
    assert killed.returncode == -signal.SIGKILL
    reg = Registry(os.path.join(work, "root"))
    assert reg.versions("d")[-1] == Version.parse("1.2.0")
    assert reg.resolve("d@latest") == ("d", Version.parse("1.2.0"))


def test_a_kill_before_the_rename_leaves_no_tag_change(prepared, tmp_path):
    work = fresh(prepared, tmp_path)
    killed = wp.run_child("publish", work, "tag.intent_written")
    assert killed.returncode == -signal.SIGKILL
    reg = Registry(os.path.join(work, "root"))
    assert [str(v) for v in reg.versions("d")] == ["1.0.0", "1.1.0"]
    assert reg.resolve("d@latest") == ("d", Version.parse("1.1.0"))
    removed = reg.gc()
    assert any(p.startswith(reg.staging_dir()) for p in removed)
    assert not os.path.exists(os.path.join(reg.root, "datasets", "d", reg_store.PENDING_TAGS))
    assert reg.publish(os.path.join(work, "rec"), "d").ref == "d:1.2.0"


def test_a_torn_log_line_is_cut_and_the_change_appended_whole(prepared, tmp_path):
    work = fresh(prepared, tmp_path)
    root = os.path.join(work, "root")
    killed = wp.run_child("tag", work, "tag.intent_written")
    assert killed.returncode == -signal.SIGKILL
    with open(os.path.join(root, "datasets", "d", reg_store.TAG_LOG), "a") as f:
        f.write('{"id": "half a line')  # what a power cut mid-append can leave
    reg = Registry(root)
    assert reg.tag_history("d")[-1]["new"] == "1.1.0"
    reg.gc()
    files_agree(root)


def test_gc_removes_temporary_tags_files(prepared, tmp_path):
    work = fresh(prepared, tmp_path)
    leftover = os.path.join(work, "root", "datasets", "d", ".tags-0123abcd.json")
    with open(leftover, "w") as f:
        f.write("{")
    assert leftover in Registry(os.path.join(work, "root")).gc()
    assert not os.path.exists(leftover)


# -- fault specs ------------------------------------------------------------------------


def test_fault_specs_parse_and_refuse_unknown_points():
    assert faults.parse_spec("version.renamed") == faults.FaultSpec("version.renamed", 1, None)
    assert faults.parse_spec("record.shard_written@3=ENOSPC") == faults.FaultSpec(
        "record.shard_written", 3, "ENOSPC")
    for bad in ("publish.nope", "version.renamed@0", "version.renamed@x",
                "version.renamed=ENOTANERRNO"):
        with pytest.raises(faults.UnknownFaultPointError):
            faults.parse_spec(bad)
    with pytest.raises(faults.UnknownFaultPointError):
        faults.checkpoint("not.listed")


def test_injected_error_is_raised_at_its_hit(monkeypatch):
    import errno

    monkeypatch.setattr(faults, "_hits", {})
    monkeypatch.setenv(faults.ENV, "gc.tags_recovered@2=ENOSPC")
    faults.checkpoint("gc.tags_recovered")  # the first arrival passes
    faults.checkpoint("publish.copied")  # another point passes
    with pytest.raises(OSError) as exc:
        faults.checkpoint("gc.tags_recovered")
    assert exc.value.errno == errno.ENOSPC


# -- killed Beam jobs (issue 11 item 9) ------------------------------------------------------


def _running(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _is_worker(pid):
    try:
        return b"sdk_worker_main" in open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to find the workers")
def test_workers_of_a_killed_job_die_and_its_staging_is_swept(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(i, length=200) for i in range(120)])
    jobs = tmp_path / "jobs"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # Worker processes asked for explicitly: a job this small runs in-process by default.
    job = subprocess.Popen([sys.executable, "-m", "pipelines.relabel", "--input", rec,
                            "--out", str(jobs / "out"), "--direct_num_workers=2",
                            "--direct_running_mode=multi_processing"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        workers = []
        while not workers:
            assert job.poll() is None, "the job ended before its workers were seen"
            assert time.monotonic() < deadline, "no worker process appeared"
            workers = [p for p in _descendants(job.pid) if _is_worker(p)]
            time.sleep(0.1)
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
        deadline = time.monotonic() + 60  # they die within a second; a bound, not a timing check
        while any(_running(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in workers if _running(p)], "workers outlived their job"
    finally:
        job.kill()
    # The job's janitor removes its staging directory; gc --jobs would, if the janitor died too.
    result = CliRunner().invoke(app, ["gc", "--root", str(tmp_path / "reg"), "--jobs", str(jobs)])
    assert result.exit_code == 0, result.output
    assert os.listdir(jobs) == []


def test_gc_jobs_removes_the_staging_of_a_dead_job_only(tmp_path):
    from pipelines import output

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    dead = jobs / f"{output.STAGING_PREFIX}out-{output._host_id()}-999999999-5-0123abcd"
    (dead / "unit").mkdir(parents=True)
    live = output.make_staging_dir(str(jobs / "other"))
    result = CliRunner().invoke(app, ["gc", "--root", str(tmp_path / "reg"), "--jobs", str(jobs)])
    assert result.exit_code == 0, result.output
    assert str(dead) in result.output and not dead.exists() and os.path.isdir(live)
    result = CliRunner().invoke(app, ["gc", "--root", str(tmp_path / "reg"),
                                      "--jobs", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not a directory" in result.output


def test_staging_of_a_live_job_is_kept(tmp_path):
    from pipelines import output

    host = output._host_id()
    live = output.make_staging_dir(str(tmp_path / "out"))
    dead = tmp_path / f"{output.STAGING_PREFIX}out-{host}-999999999-5-0123abcd"
    legacy = tmp_path / f"{output.STAGING_PREFIX}out-0123abcd"  # no owner recorded
    other = "000000" if host != "000000" else "111111"
    elsewhere = tmp_path / f"{output.STAGING_PREFIX}out-{other}-1-5-0123abcd"
    for path in (dead, legacy, elsewhere):
        path.mkdir()
    removed = output.remove_stale_staging(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(legacy)])
    assert os.path.isdir(live) and elsewhere.is_dir()


def test_staging_owner_rules_are_pure():
    from pipelines import output

    host = "abc123"
    alive = {(10, 7)}.__contains__
    name = f"{output.STAGING_PREFIX}my-out-{host}-10-7-0123abcd"
    assert not output.staging_is_stale(name, host, lambda p, s: alive((p, s)))
    assert output.staging_is_stale(name.replace("-10-7-", "-10-8-"), host,
                                   lambda p, s: alive((p, s)))  # pid reused
    assert not output.staging_is_stale(name, "ffffff", lambda p, s: False)  # another host
    assert output.staging_is_stale(f"{output.STAGING_PREFIX}old-0123abcd", host,
                                   lambda p, s: True)  # no owner recorded
    assert not output.staging_is_stale("out", host, lambda p, s: False)


def test_a_stopped_janitor_has_killed_its_jobs_processes_and_removed_staging(tmp_path):
    from pipelines import processes

    token = f"{os.getpid()}:test-{tmp_path.name}"
    staging = tmp_path / "staging"
    staging.mkdir()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                              env=dict(os.environ, **{processes.JOB_OWNER_ENV: token}))
    try:
        janitor = processes.start_janitor(token, str(staging))
        processes.stop_janitor(janitor)
        # Returned only once the janitor is done: its work is visible right away.
        assert janitor.returncode == 0
        assert worker.wait(timeout=60) == -signal.SIGKILL
        assert not staging.exists()
    finally:
        worker.kill()


def test_a_janitor_that_does_not_finish_is_killed(tmp_path):
    from pipelines import processes

    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             stdin=subprocess.PIPE)
    processes.stop_janitor(stuck, timeout=0.5)
    assert stuck.returncode == -signal.SIGKILL
