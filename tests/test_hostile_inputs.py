"""Issue 11, security: hostile remotes, manifests, archives and features.json; no unpickling.

Every hostile input here is a real file on disk (a remote is a local path used
as the fsspec URL); each test checks that the input is refused with one line
naming the bad name, and that nothing outside staging was created or changed.
"""

import ast
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

import pytest

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording.feature_config import (
    ALLOWED_FEATURE_CLASSES,
    check_features_json,
    disallowed_classes,
)
from rlif_data.recording.reader import read_episodes
from rlif_data.registry import archive, checksums, remote, safe_paths
from rlif_data.registry.store import Registry
from tests.fakes.episodes import make_episode, write_recording

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT_CLASS = "tensorflow_datasets.core.features.text_feature.Text"


# -- helpers ------------------------------------------------------------------------------


def tree(directory):
    """{relative path: (kind, sha256 of the bytes or link target)} of everything under it."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", "")
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", hashlib.sha256(f.read()).hexdigest())
    return out


def entry(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def rewrite_remote_manifest(version_dir, edit):
    """Let `edit(files)` change a remote manifest's file list; keep its digest consistent."""
    path = os.path.join(version_dir, checksums.MANIFEST)
    with open(path) as f:
        manifest = json.load(f)
    edit(manifest["files"])
    manifest["content_sha256"] = checksums.content_digest(manifest["files"])
    with open(path, "w") as f:
        json.dump(manifest, f)


@pytest.fixture
def world(tmp_path):
    """Alice pushes hopper:1.0.0 to a shared remote; Bob's registry holds `victim`."""
    alice = Registry(str(tmp_path / "alice"))
    alice.publish(write_recording(tmp_path / "rec", [make_episode(i) for i in range(2)]),
                  "hopper")
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url)
    bob = Registry(str(tmp_path / "bob"))
    bob.publish(write_recording(tmp_path / "vrec", [make_episode(9)]), "victim")
    return tmp_path, url, bob


def remote_version_dir(url):
    return os.path.join(url, "datasets", "hopper", "1.0.0")


# -- 1. remote manifest names ----------------------------------------------------------------

EVIL_NAMES = {
    "dotdot_to_victim": "../../../datasets/victim/tags.json",
    "dotdot_inside": "a/../../b",
    "dotdot_plain": "../outside",
    "absolute": "ABSOLUTE",  # replaced by a path under tmp_path
    "empty_part": "a//b",
    "dot_part": "./a",
    "trailing_slash": "a/",
    "backslash": "..\\..\\outside",
    "nul": "a\x00b",
    "newline": "a\nb",
    "empty": "",
    "manifest_itself": checksums.MANIFEST,
}


@pytest.mark.parametrize("case", sorted(EVIL_NAMES))
def test_pull_refuses_unsafe_manifest_names_before_writing(world, case):
    tmp_path, url, bob = world
    evil = EVIL_NAMES[case]
    if evil == "ABSOLUTE":
        evil = str(tmp_path / "abs-evil")
    payload = b'{"latest": "6.6.6"}'
    # Put the payload where the name resolves on the remote, so a pull that
    # trusted the name would fetch it and write it.
    where = os.path.normpath(os.path.join(remote_version_dir(url),
                                          evil.replace("\x00", "").replace("\n", "")))
    if where.startswith(url + os.sep) and not os.path.lexists(where):
        os.makedirs(os.path.dirname(where), exist_ok=True)
        with open(where, "wb") as f:
            f.write(payload)
    rewrite_remote_manifest(remote_version_dir(url), lambda files: files.update({evil: entry(payload)}))
    victim_tags = pathlib.Path(bob.root, "datasets", "victim", "tags.json").read_bytes()
    before = tree(tmp_path)
    with pytest.raises(errors.UnsafeDataError) as exc:
        remote.pull(bob, "hopper", url)
    message = str(exc.value)
    assert repr(evil) in message and "\n" not in message
    assert tree(tmp_path) == before  # nothing created or changed anywhere, staging included
    assert pathlib.Path(bob.root, "datasets", "victim", "tags.json").read_bytes() == victim_tags
    assert bob.versions("hopper") == []


def test_pull_refuses_a_file_used_as_a_directory(world):
    tmp_path, url, bob = world

    def edit(files):
        first = sorted(files)[0]
        files[f"{first}/inner"] = entry(b"x")

    rewrite_remote_manifest(remote_version_dir(url), edit)
    before = tree(tmp_path)
    with pytest.raises(safe_paths.UnsafePathError, match="lies inside the file"):
        remote.pull(bob, "hopper", url)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("bad", [
    {"files": {"a": {"size": "12", "sha256": "0" * 64}}},
    {"files": {"a": {"size": 1, "sha256": "../../x"}}},
    {"files": ["a"]},
    ["not", "an", "object"],
])
def test_pull_refuses_a_malformed_manifest(world, bad):
    tmp_path, url, bob = world
    with open(os.path.join(remote_version_dir(url), checksums.MANIFEST), "w") as f:
        json.dump(bad, f)
    before = tree(tmp_path)
    with pytest.raises(checksums.ManifestError, match="MANIFEST.json"):
        remote.pull(bob, "hopper", url)
    assert tree(tmp_path) == before


def test_pull_refuses_a_manifest_naming_another_dataset(world):
    """A remote hopper:1.0.0 whose manifest says victim:1.0.0 must not install as victim."""
    tmp_path, url, bob = world
    path = os.path.join(remote_version_dir(url), checksums.MANIFEST)
    manifest = json.load(open(path))
    manifest["name"] = "victim"
    json.dump(manifest, open(path, "w"))
    before = tree(tmp_path)
    with pytest.raises(remote.RemoteError, match="'victim'.*not hopper:1.0.0"):
        remote.pull(bob, "hopper", url)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("tags, why", [
    ({"../../evil": "1.0.0"}, "invalid tag"),
    ({"latest": 5}, "invalid version"),
    ({"latest": "../1.0.0"}, "invalid version"),
    (["latest"], "not a {tag: version} object"),
])
def test_pull_refuses_hostile_remote_tags(world, tags, why):
    tmp_path, url, bob = world
    with open(os.path.join(url, "datasets", "hopper", "tags.json"), "w") as f:
        json.dump(tags, f)
    before = tree(tmp_path)
    with pytest.raises(remote.RemoteError, match="tags.json") as exc:
        remote.pull(bob, "hopper:1.0.0", url)
    assert why in str(exc.value)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("suffix", [".part", ""])
def test_pull_does_not_write_through_a_link_planted_in_staging(world, suffix):
    """A staging directory is reused to resume; a link in it must not redirect writes."""
    tmp_path, url, bob = world
    stolen = tmp_path / "elsewhere"
    stolen.write_bytes(b"")
    staging = pathlib.Path(bob.staging_dir(), "pull-hopper-1.0.0", "version")
    staging.mkdir(parents=True)
    files = json.load(open(os.path.join(remote_version_dir(url), checksums.MANIFEST)))["files"]
    for rel in files:
        (staging / f"{rel}{suffix}").symlink_to(stolen)
    info = remote.pull(bob, "hopper", url)
    assert stolen.read_bytes() == b""
    assert checksums.list_links(info.path) == []
    bob.verify("hopper")


def test_unsafe_name_rule_is_shared():
    """One rule: the pure function, manifests and archives agree on every name."""
    for name in ["../x", "/abs", "a/../../b", "a//b", "./a", "a\\b", "a\x00b", "", "C:x"]:
        assert safe_paths.unsafe_reason(name) is not None, name
    for name in ["dataset_info.json", "a/b/c-00000", "features.json", "a..b", ".hidden"]:
        assert safe_paths.unsafe_reason(name) is None, name
    assert safe_paths.unsafe_reason(7) == "not a string (int)"


def test_read_manifest_refuses_unsafe_names(tmp_path):
    with open(tmp_path / checksums.MANIFEST, "w") as f:
        json.dump({"files": {"../../etc/passwd": entry(b"x")}}, f)
    with pytest.raises(safe_paths.UnsafePathError, match=r"'\.\./\.\./etc/passwd'.*traversal"):
        checksums.read_manifest(str(tmp_path))


def test_archive_manifest_with_an_unsafe_name_is_refused(world):
    """Members all safe, but the archive's manifest lists a traversal: refused before extraction."""
    tmp_path, url, bob = world
    src = Registry(str(tmp_path / "alice"))
    info = src.info("hopper")
    manifest = dict(info.manifest)
    manifest["files"] = {**manifest["files"], "../../evil": entry(b"x")}
    manifest["content_sha256"] = checksums.content_digest(manifest["files"])
    header = {"format": archive.FORMAT, "format_version": archive.FORMAT_VERSION,
              "name": "hopper", "version": "1.0.0", "tags": [],
              "content_sha256": manifest["content_sha256"]}
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in [(archive.HEADER, json.dumps(header).encode()),
                           (f"hopper/1.0.0/{checksums.MANIFEST}", json.dumps(manifest).encode())]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    before = tree(tmp_path)
    with pytest.raises(archive.UnsafeArchiveError, match=r"'\.\./\.\./evil'.*traversal"):
        archive.import_archive(bob, str(path))
    assert tree(tmp_path) == before


# -- 2. features.json classes ------------------------------------------------------------


def poison_features(directory, evil="this.Evil", keep_size=False):
    """Name `evil` instead of the first Text class in features.json (same byte size if asked)."""
    path = os.path.join(directory, "features.json")
    text = open(path).read()
    old, new = f'"{TEXT_CLASS}"', f'"{evil}"'
    if keep_size:
        new += " " * (len(old) - len(new))  # JSON whitespace: the size check still passes
    assert old in text
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


def run_python(code, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=str(ROOT))


def test_reader_refuses_a_foreign_feature_class_without_importing_it(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(0)])
    poison_features(rec)
    code = (
        "import sys\n"
        "from rlif_data.errors import UnsafeDataError\n"
        "from rlif_data.recording.reader import read_episodes\n"
        "try:\n"
        "    read_episodes(sys.argv[1])\n"
        "except UnsafeDataError as exc:\n"
        "    print('REFUSED', exc)\n"
        "print('IMPORTED' if 'this' in sys.modules else 'NOT-IMPORTED')\n"
    )
    out = run_python(code, rec)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "REFUSED" in out.stdout and "'this.Evil'" in out.stdout
    assert "NOT-IMPORTED" in out.stdout and "Zen of Python" not in out.stdout


def test_show_and_inspect_refuse_a_foreign_feature_class(tmp_path):
    reg = Registry(str(tmp_path / "root"))
    info = reg.publish(write_recording(tmp_path / "rec", [make_episode(0)]), "hopper")
    poison_features(info.path, keep_size=True)  # passes `show`'s size check
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for args in (["show", "hopper", "--root", reg.root], ["inspect", info.path]):
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 2, (args, out.stdout[-500:], out.stderr[-2000:])
        assert "Traceback" not in out.stderr and "Zen of Python" not in out.stdout
        assert out.stderr.strip().count("\n") == 0 and "'this.Evil'" in out.stderr


def test_publish_and_pull_refuse_a_foreign_feature_class(world):
    tmp_path, url, bob = world
    # Publish of a recording that names a foreign class.
    rec = write_recording(tmp_path / "evil-rec", [make_episode(1)])
    poison_features(rec)
    with pytest.raises(errors.UnsafeDataError, match="this.Evil"):
        bob.publish(rec, "evil")
    assert bob.versions("evil") == [] and os.listdir(bob.staging_dir()) == []
    # Pull of a remote version whose features.json (and manifest) were rewritten.
    version_dir = remote_version_dir(url)
    # features.json beside the manifest: the older remote layout, which pull still reads.
    sha = json.load(open(os.path.join(version_dir, checksums.MANIFEST)))["files"]["features.json"]
    shutil.copyfile(remote.object_path(url, sha["sha256"]), os.path.join(version_dir,
                                                                         "features.json"))
    poison_features(version_dir)
    data = open(os.path.join(version_dir, "features.json"), "rb").read()
    rewrite_remote_manifest(version_dir, lambda files: files.update({"features.json": entry(data)}))
    with pytest.raises(errors.UnsafeDataError, match="this.Evil"):
        remote.pull(bob, "hopper", url)
    assert bob.versions("hopper") == []


def test_job_input_with_a_foreign_feature_class_is_refused(tmp_path):
    """Jobs read their inputs through EpisodeReader: refused before the Beam graph runs."""
    from pipelines import downsample

    rec = write_recording(tmp_path / "rec", [make_episode(0), make_episode(1)])
    poison_features(rec, evil="os.system")
    with pytest.raises(errors.UnsafeDataError, match="'os.system'"):
        downsample.run(rec, str(tmp_path / "out"), episodes=1)
    assert not os.path.exists(tmp_path / "out")
    with pytest.raises(errors.UnsafeDataError, match="'os.system'"):
        read_episodes(rec)


def test_allow_list_covers_every_schema_the_project_writes(tmp_path):
    schemas = [sc.vector_schema(3, 2), sc.camera_schema(3, 2, size=8, encoding="png"),
               sc.camera_schema(3, 2, size=8, encoding="raw")]
    named = set()
    for i, schema in enumerate(schemas):
        directory = tmp_path / str(i)
        directory.mkdir()
        sc.features_dict(schema).save_config(str(directory))  # as TFDS writes features.json
        config = json.load(open(directory / "features.json"))
        assert disallowed_classes(config) == []
        check_features_json(str(directory))
        named |= {v for k, v in _class_names(config)}
    assert named == ALLOWED_FEATURE_CLASSES  # no class allowed that nothing writes
    check_features_json(write_recording(tmp_path / "rec", [make_episode(0)]))


def _class_names(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pythonClassName":
                yield k, v
            yield from _class_names(v)
    elif isinstance(node, list):
        for v in node:
            yield from _class_names(v)


@pytest.mark.parametrize("config, path", [
    ({"pythonClassName": "this.Evil"}, "/pythonClassName"),
    ({"type": TEXT_CLASS, "content": {}}, "/type"),
    ({"pythonClassName": TEXT_CLASS, "x": {"pythonClassName": ["a.b"]}}, "/x/pythonClassName"),
    ({"pythonClassName": TEXT_CLASS, "x": [{"python_class_name": "a.B"}]},
     "/x/0/python_class_name"),
])
def test_disallowed_classes_finds_every_form(config, path):
    assert [p for p, _ in disallowed_classes(config)] == [path]


def test_dataset_info_json_is_checked_too(tmp_path):
    rec = write_recording(tmp_path / "rec", [make_episode(0)])
    path = os.path.join(rec, "dataset_info.json")
    info = json.load(open(path))
    info["features"] = {"pythonClassName": "antigravity.Fly"}
    json.dump(info, open(path, "w"))
    with pytest.raises(errors.UnsafeDataError, match="dataset_info.json.*antigravity.Fly"):
        check_features_json(rec)


# -- 3. nothing unpickles or evaluates shared data -----------------------------------------

SCANNED = ("rlif_data", "rlif_cli", "pipelines", "robot", "trainers", "benchmarks", "scripts")
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "marshal", "shelve",
                  "jsonpickle", "joblib"}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_loads(source: str) -> list[str]:
    """Lines of `source` that import a pickle-family module, eval/exec, or load unsafely."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            hits += [f"{line}: import {a.name}" for a in node.names
                     if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            hits.append(f"{line}: from {node.module} import")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__"):
                hits.append(f"{line}: {name}(")
            elif name.endswith(("read_pickle", "yaml.unsafe_load", "yaml.full_load")):
                hits.append(f"{line}: {name}(")
            elif name == "yaml.load":
                loader = _dotted(keywords.get("Loader")) if "Loader" in keywords else (
                    _dotted(node.args[1]) if len(node.args) > 1 else "")
                if not loader.endswith(("SafeLoader", "CSafeLoader")):
                    hits.append(f"{line}: yaml.load( without SafeLoader")
            elif name.endswith("load") and "allow_pickle" in keywords:
                value = keywords["allow_pickle"]
                if not (isinstance(value, ast.Constant) and value.value is False):
                    hits.append(f"{line}: {name}(allow_pickle=...)")
    return hits


@pytest.mark.parametrize("snippet", [
    "import pickle\npickle.loads(b'')",
    "import cloudpickle as cp",
    "from dill import loads",
    "eval('1')",
    "exec('x = 1')",
    "import yaml\nyaml.load(s)",
    "import yaml\nyaml.load(s, Loader=yaml.Loader)",
    "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
    "import pandas as pd\npd.read_pickle('x')",
])
def test_scanner_catches_each_unsafe_form(snippet):
    assert unsafe_loads(snippet), snippet


def test_scanner_accepts_the_safe_forms():
    safe = ("import yaml\nyaml.load(s, Loader=yaml.SafeLoader)\nyaml.safe_load(s)\n"
            "import numpy as np\nnp.load('x.npz', allow_pickle=False)\n"
            "model.eval()\nx = 'eval(' \n")
    assert unsafe_loads(safe) == []


def test_no_project_code_unpickles_or_evaluates():
    files = [p for d in SCANNED if (ROOT / d).is_dir() for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 50  # the scan really saw the project
    hits = [f"{p.relative_to(ROOT)}:{h}" for p in files for h in unsafe_loads(p.read_text())]
    assert hits == []


# -- 12. bad input that used to be accepted ---------------------------------------------------


def run_cli(*args):
    exe = os.path.join(os.path.dirname(sys.executable), "rlif-data")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, env=env)


def assert_one_line_error(out, *needles):
    assert out.returncode == 2, (out.stdout[-500:], out.stderr[-3000:])
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("command", ["ls", "gc"])
def test_root_that_is_a_file_is_refused(tmp_path, command):
    not_a_dir = tmp_path / "root.txt"
    not_a_dir.write_text("keep me")
    with pytest.raises(errors.RlifDataError, match="is a file, not a registry root"):
        Registry(str(not_a_dir))
    assert_one_line_error(run_cli(command, "--root", str(not_a_dir)), str(not_a_dir),
                          "not a registry root")
    assert not_a_dir.read_text() == "keep me"


def test_pull_of_an_older_version_does_not_move_latest_back(tmp_path, caplog):
    alice = Registry(str(tmp_path / "alice"))
    alice.publish(write_recording(tmp_path / "r1", [make_episode(1)]), "hopper")
    url = str(tmp_path / "shared")
    remote.push(alice, "hopper", url, tags=("latest", "round-1"))  # remote latest -> 1.0.0
    alice.publish(write_recording(tmp_path / "r2", [make_episode(2)]), "hopper", version="2.0.0")
    remote.push(alice, "hopper:2.0.0", url, tags=())
    bob = Registry(str(tmp_path / "bob"))
    remote.pull(bob, "hopper:2.0.0", url)
    bob.tag("hopper:2.0.0", "latest")
    with caplog.at_level("WARNING", logger=remote.__name__):
        info = remote.pull(bob, "hopper:1.0.0", url)
    assert bob.tags("hopper") == {"latest": "2.0.0", "round-1": "1.0.0"}
    assert info.tags == ("round-1",)
    assert "not moving local tag latest back from 2.0.0 to 1.0.0" in caplog.text
    assert [e["new"] for e in bob.tag_history("hopper") if e["tag"] == "latest"] == ["2.0.0"]


def test_ingest_d4rl_refuses_an_unknown_env_id(tmp_path):
    from pipelines import ingest_d4rl
    from tests.fakes.d4rl_files import write_d4rl_file

    fake = write_d4rl_file(tmp_path / "hopper.hdf5", episode_lengths=(3, 4), obs_dim=11,
                           act_dim=3)
    out = tmp_path / "ds"
    with pytest.raises(errors.UnknownEnvironmentError, match="'NoSuch-v0'"):
        ingest_d4rl.run(str(fake.path), str(out), env_id="NoSuch-v0")
    assert not out.exists()
    assert_one_line_error(run_cli("ingest-d4rl", "--path", str(fake.path), "--out", str(out),
                                  "--env-id", "NoSuch-v0"), "unknown environment id 'NoSuch-v0'")
    assert not out.exists()


def test_ingest_d4rl_refuses_actions_of_another_width_than_the_env(tmp_path):
    from pipelines import ingest_d4rl
    from rlif_data.sources.d4rl_hdf5 import D4RLFormatError
    from tests.fakes.d4rl_files import write_d4rl_file

    fake = write_d4rl_file(tmp_path / "walker.hdf5", episode_lengths=(3, 4), obs_dim=11,
                           act_dim=6)
    out = tmp_path / "ds"
    with pytest.raises(D4RLFormatError, match=r"6 wide, but Hopper-v5 takes actions of shape "
                                              r"\(3,\)"):
        ingest_d4rl.run(str(fake.path), str(out), env_id="Hopper-v5")
    assert not out.exists()
