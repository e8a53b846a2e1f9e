"""Imports point one way: rlif_data <- pipelines, robot, trainers <- rlif_cli.

Each check runs in a fresh interpreter, imports every module of the lower
packages (found by walking them, so new modules are covered), and looks at
sys.modules: a module of a higher package must not have been loaded.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Imports each module of PACKAGES, then prints which FORBIDDEN top-level
# packages ended up in sys.modules, and which modules failed to import.
WALK = """
import importlib, json, pkgutil, sys
packages, forbidden = json.loads(sys.argv[1]), json.loads(sys.argv[2])
failed, walked = {}, []
for name in packages:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, prefix=name + "."):
        walked.append(info.name)
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # reported, so a broken module is not a silent pass
            failed[info.name] = f"{type(exc).__name__}: {exc}"
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(forbidden))
print(json.dumps({"loaded": loaded, "failed": failed, "walked": walked}))
"""


def walk(packages, forbidden):
    """Import all modules of ``packages`` in a subprocess; which ``forbidden`` got loaded."""
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
               TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", WALK, json.dumps(packages), json.dumps(forbidden)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def optional_extra_missing(error):
    """True if an import failed only because an optional extra (minari, hidapi) is absent."""
    return error.startswith(("ModuleNotFoundError: No module named 'minari",
                             "ModuleNotFoundError: No module named 'hid'"))


def test_plain_import_of_rlif_data_loads_no_higher_package():
    code = ("import sys, rlif_data; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pipelines', 'robot', 'trainers', 'rlif_cli'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_no_rlif_data_module_imports_a_higher_package():
    result = walk(["rlif_data"], ["pipelines", "robot", "trainers", "rlif_cli"])
    assert {"rlif_data.policies.spec", "rlif_data.recording.sim"} <= set(result["walked"])
    # Every module imports (modules of optional extras aside), so none is skipped silently.
    assert result["loaded"] == [], result
    assert all(optional_extra_missing(e) for e in result["failed"].values()), result["failed"]


@pytest.mark.slow
def test_middle_packages_never_import_the_cli():
    result = walk(["pipelines", "robot", "trainers"], ["rlif_cli"])
    assert result["loaded"] == [], result
    assert all(optional_extra_missing(e) for e in result["failed"].values()), result["failed"]


def test_the_walk_sees_a_forbidden_import():
    # The check itself works: walking the CLI loads the packages below it.
    result = walk(["rlif_cli"], ["pipelines", "robot", "rlif_cli"])
    assert "rlif_cli" in result["loaded"]
