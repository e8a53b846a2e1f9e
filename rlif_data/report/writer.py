"""Write a dataset's static HTML view: pages from `rlif_data.report.pages`, frames as JPEG files.

The report is built in a hidden sibling folder and moved into place with a
rename, so a failed or interrupted run leaves any earlier report as it was.
An existing `out` that is not an earlier report is refused.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.report import assets, pages

MARKER_FILE = ".rlif-view"  # marks a folder as a report `write_view` may replace
FRAME_EXT = "jpg"
JPEG_QUALITY = 90
# Pillow releases the GIL while it encodes: threads use both cores.
ENCODER_THREADS = 2


class ViewOutputError(errors.RlifDataError, ValueError):
    """The output folder of a view exists and is not an earlier report."""


@dataclasses.dataclass
class ViewResult:
    """What `write_view` wrote.

    Attributes:
      out: the report folder.
      episodes: episode pages written.
      index_pages: episode-list pages written.
      frames: camera frame files written.
      seconds: wall time.
    """

    out: str
    episodes: int
    index_pages: int
    frames: int
    seconds: float

    @property
    def index(self) -> str:
        """The first page to open."""
        return os.path.join(self.out, pages.index_file(1))


def _check_out(out: str) -> None:
    if os.path.isfile(out):
        raise ViewOutputError(f"{out} is a file; give a folder for the report (--out)")
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(
            os.path.join(out, MARKER_FILE)):
        raise ViewOutputError(f"{out} exists and is not an rlif-data view; give a new or empty "
                              "folder (--out)")


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _save_frame(frame: np.ndarray, path: str) -> None:
    from PIL import Image

    if frame.shape[-1] == 1:
        frame = frame[..., 0]
    elif frame.shape[-1] == 4:
        frame = frame[..., :3]
    Image.fromarray(np.ascontiguousarray(frame)).save(path, quality=JPEG_QUALITY)


def write_view(episodes: Iterable[Mapping[str, Any]], out: str, *, title: str,
               total: Optional[int] = None, view: Optional[str] = None,
               facts: Optional[Mapping[str, Any]] = None,
               per_page: int = pages.EPISODES_PER_PAGE,
               progress: Optional[Callable[[int], None]] = None,
               invalid: Optional[Mapping[str, str]] = None) -> ViewResult:
    """Write the report of `episodes` into the folder `out`.

    Args:
      episodes: decoded episodes, in dataset order (read one at a time).
      out: the report folder: new, empty, or an earlier report (replaced).
      title: the dataset's name or path, shown on every page.
      total: how many episodes there are, if known (for next links).
      view: the dataset's relabel view (None: raw data).
      facts: extra dataset-wide facts for the list pages (schema, ...).
      per_page: rows per list page.
      progress: called with the number of episodes written so far.
      invalid: episode id -> reason of the episodes marked invalid
        (`rlif_data.invalid`); the list and the episode pages show it.

    Returns:
      A `ViewResult`.

    Raises:
      ViewOutputError: `out` is a file, or a folder holding something else.
      ValueError: no episodes, or `per_page` not positive.
    """
    t0 = time.perf_counter()
    out = os.path.abspath(out)
    _check_out(out)
    pages.page_count(0, per_page)  # validates per_page before any work
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.partial-", dir=parent)
    try:
        result = _write_into(staging, episodes, title, total, view, facts or {}, per_page,
                             progress, invalid or {})
        _write_text(os.path.join(staging, MARKER_FILE), "rlif-data view\n")
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.out = out
    result.seconds = time.perf_counter() - t0
    return result


def _swap_in(staging: str, out: str) -> None:
    """Replace `out` (absent, empty, or an earlier report) by `staging`."""
    old = None
    if os.path.exists(out):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=os.path.dirname(out))
        os.rmdir(old)
        os.rename(out, old)
    os.rename(staging, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _write_into(root: str, episodes: Iterable[Mapping[str, Any]], title: str,
                total: Optional[int], view: Optional[str], facts: Mapping[str, Any],
                per_page: int, progress: Optional[Callable[[int], None]],
                invalid: Mapping[str, str]) -> ViewResult:
    os.makedirs(os.path.join(root, "episodes"))
    _write_text(os.path.join(root, assets.STYLE_FILE), assets.STYLE)
    _write_text(os.path.join(root, assets.SCRIPT_FILE), assets.SCRIPT)
    rows: list[dict[str, Any]] = []
    frames = 0
    previous: list[concurrent.futures.Future] = []
    with concurrent.futures.ThreadPoolExecutor(ENCODER_THREADS) as pool:
        for index, episode in enumerate(episodes):
            count = total if total is not None else index + 2  # unknown: allow a next link
            pending: list[concurrent.futures.Future] = []
            reason = invalid.get(str(episode.get(sc.EPISODE_ID, "")))
            frames += _write_episode(root, episode, index, title, count, view, per_page, pool,
                                     pending, reason)
            rows.append(pages.episode_row(index, episode, reason))
            # The next episode decodes while this one's frames encode; at most two
            # episodes' frames wait in memory.
            _wait(previous)
            previous = pending
            if progress is not None:
                progress(index + 1)
        _wait(previous)
    if not rows:
        raise ValueError(f"{title}: holds no episodes; nothing to view")
    n_pages = pages.page_count(len(rows), per_page)
    transitions = sum(r["transitions"] for r in rows)
    intervened = sum(r["intervened_steps"] for r in rows)
    marked = sum(r["invalid"] is not None for r in rows)
    summary = {"episodes": len(rows), "transitions": transitions,
               "intervention rate": f"{intervened / transitions:.1%}" if transitions else "-",
               "view": view or "raw", "invalid": f"{marked} of {len(rows)} episodes", **facts}
    for page in range(1, n_pages + 1):
        chunk = rows[(page - 1) * per_page: page * per_page]
        _write_text(os.path.join(root, pages.index_file(page)),
                    pages.index_page(chunk, page, n_pages, title, summary))
    return ViewResult(root, len(rows), n_pages, frames, 0.0)


def _wait(futures: list) -> None:
    """Wait for queued frame writes; the first failure is raised."""
    for future in futures:
        future.result()


def _write_episode(root: str, episode: Mapping[str, Any], index: int, title: str, total: int,
                   view: Optional[str], per_page: int,
                   pool: concurrent.futures.Executor, pending: list,
                   invalid_reason: Optional[str] = None) -> int:
    """Write one episode's page and queue its frames on `pool`; returns the frame count."""
    steps = episode[sc.STEPS]
    obs = steps[sc.OBSERVATION]
    cameras = pages.camera_leaves(obs)
    data = pages.episode_data(episode, index, cameras, FRAME_EXT, view)
    metadata = {k: v for k, v in episode.items() if k != sc.STEPS}
    shapes = {name: np.asarray(obs[name]).shape[1:] for name in cameras}
    _write_text(os.path.join(root, pages.episode_file(index)),
                pages.episode_page(data, metadata, title, index // per_page + 1, total, shapes,
                                   invalid_reason))
    written = 0
    for slot, name in enumerate(cameras):
        folder = os.path.join(root, pages.frame_dir(index, f"c{slot}"))
        os.makedirs(folder)
        for step, frame in enumerate(np.asarray(obs[name])):
            pending.append(pool.submit(_save_frame, frame,
                                       os.path.join(folder, pages.frame_name(step, FRAME_EXT))))
            written += 1
    return written


def view_dataset(path: str, out: str, *, root: Optional[str] = None,
                 per_page: int = pages.EPISODES_PER_PAGE,
                 progress: Optional[Callable[[int, int], None]] = None) -> ViewResult:
    """Write the report of a recording, dataset directory or registry reference.

    Args:
      path: a directory, ``name@tag`` or ``name:version``.
      out: the report folder (see `write_view`).
      root: registry root for references.
      per_page: rows per list page.
      progress: called as ``progress(done, total)``.

    Raises:
      FileNotFoundError, CorruptRecordingError, FormatVersionError: unreadable input.
      MarkFileError: a malformed invalid_episodes.jsonl (naming file:line).
      ViewOutputError: see `write_view`.
      ValueError: the dataset holds no episodes.
    """
    from rlif_data import invalid
    from rlif_data.lineage import dataset_view
    from rlif_data.recording.reader import EpisodeReader
    from rlif_data.registry.store import resolve_dataset

    directory = resolve_dataset(path, root)
    reasons = {m.episode_id: m.reason for m in invalid.read_marks(directory)}
    with EpisodeReader(directory, repair=False) as reader:
        total = len(reader)
        if total == 0:
            raise ValueError(f"{directory}: holds no episodes; nothing to view")
        cameras = ([k for k, v in reader.schema.observation.items()
                    if isinstance(v, sc.ImageSpec)]
                   if isinstance(reader.schema.observation, Mapping) else [])
        facts = {"cameras": ", ".join(cameras) or "none", "action dims": reader.schema.action_dim}
        title = path if path == directory else f"{path} ({directory})"
        return write_view(iter(reader), out, title=title, total=total,
                          view=dataset_view(directory), facts=facts, per_page=per_page,
                          progress=(lambda done: progress(done, total)) if progress else None,
                          invalid=reasons)
