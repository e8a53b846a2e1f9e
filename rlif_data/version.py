"""The code version stored with every episode and dataset."""

from __future__ import annotations

import functools
import os
import subprocess

__version__ = "0.1.0"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``rlif-data <version>``, plus ``+g<commit>`` (and ``.dirty``) when run from a git checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version = f"rlif-data {__version__}"
    if not os.path.isdir(os.path.join(root, ".git")):
        return version
    try:
        sha = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{sha}{'.dirty' if dirty else ''}"
