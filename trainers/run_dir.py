"""A training run's directory: its config, orbax checkpoints, and the resume rule.

Layout of ``--out``::

    train_config.json   the run's full config (written once, compared on resume)
    checkpoints/<step>/ orbax checkpoints of the whole learner state
    metrics.jsonl       one JSON object per logged step
    learning_curve.png  returns and losses over steps
    policy/             the trained actor in rlif-data's policy format
    summary.json        written last: the run finished

An existing directory is resumed when it holds a run with the same config
(only the number of steps may grow), and refused with a one-line message
otherwise; never overwritten, never a prompt. SERL's most common complaint is
a learner that crashes on an existing checkpoint directory; this is the fix.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from rlif_data import errors
from rlif_data.fsutil import write_json_atomic

CONFIG_FILE = "train_config.json"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "learning_curve.png"
POLICY_DIR = "policy"
SUMMARY_FILE = "summary.json"
# Fields that may differ between the run on disk and a resuming call.
RESUMABLE_FIELDS = ("steps", "out")


class TrainingError(errors.RlifDataError):
    """Training cannot start or continue; the message says why and what to do."""


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted((set(old) | set(new)) - set(RESUMABLE_FIELDS))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _first_sentence(exc: BaseException) -> str:
    return str(exc).splitlines()[0].split(". ")[0][:200]


class RunDirectory:
    """The directory of one training run.

    Args:
      path: the run directory (``train --out``).
    """

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._manager = None

    def file(self, name: str) -> str:
        """Absolute path of a file of the run."""
        return os.path.join(self.path, name)

    def prepare(self, config: dict[str, Any]) -> Optional[int]:
        """Create the run, or accept it for resuming.

        Args:
          config: the run's JSON-ready config.

        Returns:
          The step of the latest checkpoint to resume from, or None for a new run.

        Raises:
          TrainingError: the path is a file, a non-empty directory that is not a
            run, or a run with a different config.
        """
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise TrainingError(f"{self.path} is a file; give --out a directory path")
        config_path = self.file(CONFIG_FILE)
        if os.path.isdir(self.path) and os.listdir(self.path):
            if not os.path.isfile(config_path):
                raise TrainingError(
                    f"{self.path} exists and is not a training run (no {CONFIG_FILE}); "
                    "choose a new --out directory")
            try:
                with open(config_path, encoding="utf-8") as f:
                    old = json.load(f)
            except (OSError, ValueError) as exc:
                raise TrainingError(f"{config_path} is unreadable ({exc}); choose a new --out "
                                    "directory") from None
            diff = _config_diff(old, config)
            if diff:
                raise TrainingError(
                    f"{self.path} holds a run with another config ({'; '.join(diff[:3])}); "
                    "resume it with the same options or choose a new --out directory")
            write_json_atomic(config_path, config)  # records the new step budget
            return self.latest_step()
        os.makedirs(self.path, exist_ok=True)
        write_json_atomic(config_path, config)
        return None

    def _checkpoints(self):
        if self._manager is None:
            import orbax.checkpoint as ocp

            options = ocp.CheckpointManagerOptions(
                max_to_keep=2, create=True, cleanup_tmp_directories=True,
                # Synchronous: a returned save is on disk, so a kill right after loses nothing.
                enable_async_checkpointing=False)
            self._manager = ocp.CheckpointManager(self.file(CHECKPOINTS_DIR), options=options)
        return self._manager

    def latest_step(self) -> Optional[int]:
        """Step of the newest complete checkpoint, or None."""
        if not os.path.isdir(self.file(CHECKPOINTS_DIR)):
            return None
        return self._checkpoints().latest_step()

    def save(self, step: int, state: Any) -> None:
        """Checkpoint `state` (any pytree of arrays) at `step`; written atomically by orbax."""
        import orbax.checkpoint as ocp

        self._checkpoints().save(step, args=ocp.args.StandardSave(state), force=True)

    def restore(self, step: int, target: Any) -> Any:
        """Restore the checkpoint at `step` into the structure of `target`.

        Raises:
          TrainingError: the checkpoint does not match `target` (another
            observation/action space or network size).
        """
        import jax
        import orbax.checkpoint as ocp

        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        try:
            return self._checkpoints().restore(step, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError) as exc:
            raise TrainingError(
                f"checkpoint {self.file(CHECKPOINTS_DIR)}/{step} does not match this learner "
                f"({_first_sentence(exc)}); it was written for another observation/action "
                "space or network; choose a new --out directory") from None

    def close(self) -> None:
        """Release orbax's manager."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None
