"""``rlif-data convert REF --to lerobot|minari --out DIR``: a dataset in another tool's format.

The output is built in a hidden folder beside ``DIR`` and renamed into place
once complete, so a failed or interrupted conversion leaves nothing a reader
could take for a dataset; an existing ``DIR`` is refused (nothing is
overwritten) and the input is only read.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from typing import Callable, Optional

from rlif_data import errors
from rlif_data import schema as sc

LEROBOT = "lerobot"
MINARI = "minari"
TARGETS = (LEROBOT, MINARI)


class ConvertOutputError(errors.RlifDataError, ValueError):
    """The output directory of a conversion exists already."""


@dataclasses.dataclass
class ConvertResult:
    """What `convert_dataset` wrote.

    Attributes:
      out: the output directory.
      target: "lerobot" or "minari".
      episodes: episodes written.
      steps: RLDS steps read (T+1 per episode).
      seconds: wall time.
      detail: one line about the output (frame rate, dataset id).
    """

    out: str
    target: str
    episodes: int
    steps: int
    seconds: float
    detail: str


def _check_out(out: str) -> None:
    if os.path.lexists(out):
        raise ConvertOutputError(f"{out} exists; give a new directory (--out): a conversion "
                                 "never overwrites")


def _counting(reader, counter: list):
    for episode in reader:
        counter[0] += len(episode[sc.STEPS][sc.IS_FIRST])
        yield episode


def convert_dataset(dataset: str, target: str, out: str, *, root: Optional[str] = None,
                    fps: Optional[int] = None, dataset_id: Optional[str] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> ConvertResult:
    """Write a recording or dataset in LeRobot's or Minari's format.

    Args:
      dataset: a directory, ``name@tag`` or ``name:version``.
      target: "lerobot" (LeRobotDataset v3.0; camera frames as lossless PNG
        image features; the extra step fields `schema.INFOS` as infos.<name>
        columns in their own dtype) or
        "minari" (HDF5; camera frames bit-exact as PNG in Minari's image
        layout, extra step fields as infos/infos/<name>).
      out: the output directory; must not exist.
      root: registry root for references.
      fps: LeRobot's frame rate (default: from the step timestamps).
      dataset_id: Minari's dataset id (default ``rlif/<name>-v0``).
      progress: called as ``progress(done, total)`` after each episode.

    Returns:
      A `ConvertResult`.

    Raises:
      ValueError: an unknown target, or a dataset with no episodes.
      ConvertOutputError: `out` exists.
      LeRobotFormatError / MinariExportError: a schema the target cannot hold.
      FileNotFoundError, CorruptRecordingError, FormatVersionError,
      RegistryError: unreadable input.
    """
    from rlif_data.recording.reader import EpisodeReader
    from rlif_data.registry.store import resolve_dataset

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; use one of {', '.join(TARGETS)} (--to)")
    t0 = time.perf_counter()
    out = os.path.abspath(out)
    _check_out(out)
    directory = resolve_dataset(dataset, root)
    source = dataset if dataset == directory else f"{dataset} ({directory})"
    with EpisodeReader(directory, repair=False) as reader:
        total = len(reader)
        if total == 0:
            raise ValueError(f"{directory}: holds no episodes; nothing to convert")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.partial-",
                                   dir=os.path.dirname(out))
        steps = [0]
        done = (lambda n: progress(n, total)) if progress else None
        try:
            episodes = _counting(iter(reader), steps)
            if target == LEROBOT:
                from rlif_data.convert.lerobot import write_lerobot

                res = write_lerobot(episodes, staging, reader.schema, fps=fps, source=source,
                                    progress=done)
                detail = f"{res.frames} frames at {res.fps} fps, {res.data_files} data file(s)"
                count = res.episodes
            else:
                from rlif_data.convert.minari_writer import write_minari

                res = write_minari(episodes, staging, reader.schema, dataset_id=dataset_id,
                                   source=source, progress=done)
                detail = f"Minari dataset id {res.dataset_id}, {res.steps} steps"
                count = res.episodes
            _check_out(out)  # created meanwhile: still never overwritten
            os.rename(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return ConvertResult(out, target, count, steps[0], time.perf_counter() - t0, detail)
