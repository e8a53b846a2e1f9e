"""Build (once, cached) a virtual environment with the real `lerobot` package.

LeRobot needs torch and NumPy 2; this project's TensorFlow 2.15 stack pins
NumPy 1.26, so LeRobot cannot live in the project's .venv. The test set-up
builds this environment from the package registries with pip, once per
requirements hash, under ``~/.cache/rlif-data/lerobot-venv-<hash>``
(``$RLIF_LEROBOT_VENV_CACHE`` overrides the folder), and reuses it after.

Why these pins:

* lerobot 0.5+ requires Python >= 3.12; the project runs Python 3.11, and
  lerobot 0.4.4 is the last release for it. It writes and reads the same
  dataset layout as lerobot's current main (``CODEBASE_VERSION = "v3.0"``).
* lerobot 0.4.4 pins ``torch<2.11``; no such wheel lies on this disk (a CUDA
  build from PyPI is several GB). torch 2.14.1 and torchvision 0.29.1 do lie
  here for Python 3.11 (pip takes them from the local index: ~90 s,
  5.5 GB installed), and LeRobot's dataset code runs with them, so lerobot
  itself is installed with ``--no-deps`` beside exactly the packages its
  dataset loading imports. torch 2.13.0's CPU wheel is smaller, but
  PyPI's torchvision does not import beside it ("operator torchvision::nms
  does not exist", checked here).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH = ["torch==2.14.1", "torchvision==0.29.1"]
DEPENDENCIES = [
    "numpy>=2,<2.3", "datasets>=4.0,<5", "huggingface-hub>=0.34.2,<0.36", "pandas>=2,<3",
    "av>=15,<16", "jsonlines>=4,<5", "draccus==0.10.0", "packaging>=24.2,<26",
    "termcolor>=2.4,<4", "einops>=0.8,<0.9", "accelerate>=1.10,<2",
]
LEROBOT = "lerobot==0.4.4"
CACHE_ENV = "RLIF_LEROBOT_VENV_CACHE"
IMPORT_CHECK = "from lerobot.datasets.lerobot_dataset import LeRobotDataset"


def requirements_hash() -> str:
    """Names the cached environment: changes whenever a pin (or the Python version) does."""
    text = "\n".join(TORCH + DEPENDENCIES + [LEROBOT, sys.version.split()[0]])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_root() -> Path:
    """Where environments are kept."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "rlif-data")


def venv_python(venv: Path) -> Path:
    """The environment's interpreter."""
    return venv / "bin" / "python"


def _run(cmd: list[str], log) -> None:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=3600)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {result.returncode}); "
                           f"see {log.name}")


def ensure_lerobot_venv(report=print) -> Path:
    """The cached LeRobot environment, built first if missing.

    Built in a temporary folder and renamed into place when its import check
    passes, so an interrupted build is never taken for a finished one.

    Args:
      report: called with one line on how long a build took.

    Returns:
      The environment's directory.

    Raises:
      RuntimeError: pip or the import check failed (the message names the log).
    """
    root = cache_root()
    venv = root / f"lerobot-venv-{requirements_hash()}"
    if venv_python(venv).exists():
        return venv
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".lerobot-venv-", dir=root))
    log_path = root / f"lerobot-venv-{requirements_hash()}.log"
    t0 = time.perf_counter()
    try:
        with open(log_path, "w") as log:
            # The base interpreter: a venv made from inside .venv would see its packages.
            base = getattr(sys, "_base_executable", sys.executable)
            _run([base, "-m", "venv", str(staging)], log)
            pip = [str(venv_python(staging)), "-m", "pip", "install", "--no-input"]
            _run(pip + TORCH + DEPENDENCIES, log)
            _run(pip + ["--no-deps", LEROBOT], log)
            _run([str(venv_python(staging)), "-c", IMPORT_CHECK], log)
        # Only `bin/python` is used, and it finds the environment by its own place
        # (pyvenv.cfg beside it): console scripts' stale paths do not matter.
        os.rename(staging, venv)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report(f"built the LeRobot environment {venv} in {time.perf_counter() - t0:.0f} s")
    return venv
