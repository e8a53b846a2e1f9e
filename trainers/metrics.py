"""Training metrics: a JSONL log that survives resumes, TensorBoard events, and the curve PNG.

JSONL is the record (one object per logged step, ``step`` first); TensorBoard
event files are written beside it with ``tensorboardX`` for people who browse
runs there (``tensorboard``'s own writer imports TensorFlow, 4 s per start).
A resumed run first drops the lines logged after its checkpoint, so
the log never holds a step twice.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable, Optional

import numpy as np


def read_metrics(path: str) -> list[dict[str, Any]]:
    """The records of a metrics JSONL file; a torn last line (a kill mid-write) is skipped."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def truncate_after(path: str, step: int) -> None:
    """Keep only the records with ``step <= step`` (called when resuming from a checkpoint)."""
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for record in kept:
            f.write(json.dumps(record) + "\n")
    os.replace(tmp, path)


def _scalar(value: Any) -> Optional[float]:
    try:
        out = float(np.asarray(value))
    except (TypeError, ValueError):
        return None
    return out


class MetricsLog:
    """Appends metric records to JSONL and, when available, TensorBoard.

    Args:
      path: the JSONL file.
      tensorboard_dir: where to write event files; None disables them.
    """

    def __init__(self, path: str, tensorboard_dir: Optional[str] = None):
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        self._tb = None
        if tensorboard_dir:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(tensorboard_dir)

    def log(self, step: int, values: dict[str, Any]) -> dict[str, Any]:
        """Write one record; returns it with values as plain floats."""
        record = {"step": int(step)}
        for key, value in values.items():
            scalar = _scalar(value)
            if scalar is not None:
                record[key] = scalar
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            self._write_tb(step, record)
        return record

    def _write_tb(self, step: int, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key != "step" and math.isfinite(value):
                self._tb.add_scalar(key, value, int(step))
        self._tb.flush()

    def close(self) -> None:
        """Close the files."""
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def plot_learning_curve(records: Iterable[dict[str, Any]], out_png: str, title: str) -> str:
    """Evaluation return (top) and losses (bottom) against update step.

    Args:
      records: metric records (see `MetricsLog`); ``eval/mean_return`` and
        keys ending in ``_loss`` are drawn.
      out_png: the PNG to write.
      title: the figure title (the run's algorithm and dataset).

    Returns:
      ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = list(records)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    evals = [r for r in records if "eval/mean_return" in r]
    if evals:
        steps = [r["step"] for r in evals]
        mean = np.array([r["eval/mean_return"] for r in evals])
        std = np.array([r.get("eval/std_return", 0.0) for r in evals])
        top.plot(steps, mean, marker="o", color="tab:blue", label="eval return (no interventions)")
        top.fill_between(steps, mean - std, mean + std, color="tab:blue", alpha=0.2)
        top.legend(loc="lower right")
    else:
        top.text(0.5, 0.5, "no evaluation in this run", ha="center", va="center",
                 transform=top.transAxes)
    top.set_ylabel("return")
    top.grid(alpha=0.3)
    loss_keys = sorted({k for r in records for k in r if k.endswith("_loss")})
    for key in loss_keys:
        points = [(r["step"], r[key]) for r in records if key in r]
        bottom.plot(*zip(*points), label=key)
    if loss_keys:
        bottom.legend(loc="upper right")
        bottom.set_yscale("symlog")
    bottom.set_xlabel("update step")
    bottom.set_ylabel("loss")
    bottom.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
