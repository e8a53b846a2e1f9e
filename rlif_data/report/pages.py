"""The report's pages as HTML strings, and the per-episode data they carry. Pure: no I/O.

Layout of a report directory (paths relative to it):

  ``index.html``, ``index-2.html``, ...   the episode list, `EPISODES_PER_PAGE` rows a page
  ``episodes/000017.html``                one page per episode
  ``frames/000017/c0/00000.jpg``          camera ``c0``'s frame at step 0 of episode 17
  ``report.css``, ``report.js``           shared by every page (`rlif_data.report.assets`)

Every text that comes from the data (episode ids, metadata, camera names)
is HTML-escaped; the inlined episode data is JSON with ``</`` escaped, so a
stored string cannot end the script element.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rlif_data import episodes as ep
from rlif_data import schema as sc
from rlif_data.report import assets

EPISODES_PER_PAGE = 200
STATE_NUMBERS_MAX = 200_000  # above this, the state values are left out of the page
DEFAULT_FPS = 10.0


def page_count(episodes: int, per_page: int = EPISODES_PER_PAGE) -> int:
    """Index pages needed for `episodes` rows (at least one, for an empty list)."""
    if per_page <= 0:
        raise ValueError(f"episodes per page must be positive, got {per_page}")
    return max(1, math.ceil(episodes / per_page))


def index_file(page: int) -> str:
    """File name of index page `page` (1-based): ``index.html``, ``index-2.html``, ..."""
    return "index.html" if page == 1 else f"index-{page}.html"


def episode_file(index: int) -> str:
    """Path of episode `index`'s page, relative to the report root."""
    return f"episodes/{index:06d}.html"


def frame_dir(index: int, slot: str) -> str:
    """Folder of one camera's frames of episode `index`, relative to the report root."""
    return f"frames/{index:06d}/{slot}"


def frame_name(step: int, ext: str) -> str:
    """File name of the frame of `step` (what the page's script asks for)."""
    return f"{step:05d}.{ext}"


def camera_leaves(observation: Any) -> list[str]:
    """Names of the observation entries that are camera frames (uint8 [T+1, H, W, 1|3|4])."""
    if not isinstance(observation, Mapping):
        return []
    return [k for k, v in sorted(observation.items())
            if np.asarray(v).dtype == np.uint8 and np.asarray(v).ndim == 4
            and np.asarray(v).shape[-1] in (1, 3, 4)]


def _finite_or_none(values: np.ndarray) -> list:
    """A float list for JSON: NaN/inf become null (JSON has no NaN)."""
    arr = np.asarray(values, np.float64)
    return [float(v) if math.isfinite(v) else None for v in arr.tolist()] if arr.ndim == 1 else \
        [_finite_or_none(row) for row in arr]


def _fps(stamps_us: np.ndarray) -> float:
    """Play speed: the recorded rate (median step gap), else `DEFAULT_FPS`."""
    gaps = np.diff(np.asarray(stamps_us, np.int64))
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        return DEFAULT_FPS
    return float(min(60.0, max(1.0, 1e6 / float(np.median(gaps)))))


def episode_row(index: int, episode: Mapping[str, Any],
                invalid_reason: Optional[str] = None) -> dict[str, Any]:
    """One row of the episode list: id, length, return, intervention rate, takeovers, end,
    and ``invalid``: the reason it was marked invalid with, or None (valid)."""
    row = ep.summarize_episode(dict(episode))
    row["index"] = index
    row["invalid"] = invalid_reason
    return row


def _validity(reason: Optional[str]) -> str:
    """The validity cell of an episode: "valid", or "invalid: <reason>" (escaped)."""
    if reason is None:
        return '<span class="valid">valid</span>'
    return f'<span class="invalid">invalid: {html.escape(reason)}</span>'


def episode_data(episode: Mapping[str, Any], index: int, cameras: Sequence[str],
                 frame_ext: str, view: Optional[str]) -> dict[str, Any]:
    """What an episode page's script draws (JSON-able).

    Args:
      episode: the decoded episode.
      index: its index in the dataset.
      cameras: its camera entries (`camera_leaves`), in slot order c0, c1, ...
      frame_ext: the frames' file extension.
      view: the dataset's relabel view (names what `reward` holds).

    Returns:
      ``steps`` (T+1), ``transitions`` (T), per-transition ``intervention``,
      ``takeover_start``, ``reward`` and ``include`` (None without a view's
      mask), ``action`` as one list per dimension,
      ``state`` (the non-camera observation per step, when small), the
      cameras' frame folders relative to the episode page, and ``fps``.
    """
    steps = episode[sc.STEPS]
    t = ep.episode_length(dict(episode))
    obs = steps[sc.OBSERVATION]
    action = np.asarray(steps[sc.ACTION], np.float64)[:t].reshape(t, -1)
    if isinstance(obs, Mapping):
        others = [np.asarray(v, np.float64).reshape(t + 1, -1) for k, v in sorted(obs.items())
                  if k not in cameras]
        state = np.concatenate(others, axis=1) if others else None
    else:
        state = np.asarray(obs, np.float64).reshape(t + 1, -1)
    if state is not None and state.size > STATE_NUMBERS_MAX:
        state = None
    return {
        "index": index,
        "steps": t + 1,
        "transitions": t,
        "intervention": np.asarray(steps[sc.INTERVENTION], bool)[:t].astype(int).tolist(),
        "takeover_start": np.asarray(steps[sc.INTERVENTION_START], bool)[:t].astype(int).tolist(),
        "reward": _finite_or_none(np.asarray(steps[sc.REWARD])[:t]),
        "reward_label": f"{view} view" if view else "environment",
        # The view's mask: which transitions belong to the view (None: raw data, all do).
        "include": (np.asarray(steps[sc.INCLUDE], bool)[:t].astype(int).tolist()
                    if sc.INCLUDE in steps else None),
        "action": [_finite_or_none(action[:, d]) for d in range(action.shape[1])],
        "state": None if state is None else _finite_or_none(state),
        "cameras": [{"slot": f"c{i}", "name": name, "dir": f"../{frame_dir(index, f'c{i}')}"}
                    for i, name in enumerate(cameras)],
        "frame_ext": frame_ext,
        "fps": _fps(steps[sc.TIMESTAMP_US]) if sc.TIMESTAMP_US in steps else DEFAULT_FPS,
    }


def _head(title: str, prefix: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>"
            f'<link rel="stylesheet" href="{prefix}{assets.STYLE_FILE}"></head>\n<body>\n')


def pager(page: int, pages: int, window: int = 3) -> str:
    """Links to the first, last, previous, next and nearby index pages."""
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(1, page - window), min(pages, page + window) + 1)})
    parts = []
    if page > 1:
        parts.append(f'<a href="{index_file(page - 1)}" rel="prev">&larr; prev</a>')
    last = 0
    for p in shown:
        if p - last > 1:
            parts.append("<span>&hellip;</span>")
        parts.append(f'<span class="current">{p}</span>' if p == page
                     else f'<a href="{index_file(p)}">{p}</a>')
        last = p
    if page < pages:
        parts.append(f'<a href="{index_file(page + 1)}" rel="next">next &rarr;</a>')
    return f'<div class="pager">page {page} of {pages}: {" ".join(parts)}</div>'


def index_page(rows: Sequence[Mapping[str, Any]], page: int, pages: int, title: str,
               facts: Mapping[str, Any]) -> str:
    """One page of the episode list.

    Args:
      rows: this page's `episode_row`s.
      page, pages: this page's number (1-based) and the page count.
      title: the dataset's name or path.
      facts: dataset-wide facts shown above the list (episodes, view, ...).
    """
    out = [_head(f"{title}: episodes (page {page})", ""), f"<h1>{html.escape(title)}</h1>",
           '<div class="summary">']
    out += [f"<span>{html.escape(str(k))}: <b>{html.escape(str(v))}</b></span>"
            for k, v in facts.items()]
    out.append("</div>")
    out.append(pager(page, pages))
    out.append('<table id="episodes"><thead><tr><th>#</th><th class="id">episode id</th>'
               "<th>length</th><th>return</th><th>intervention rate</th><th>takeovers</th>"
               '<th>end</th><th class="id">validity</th></tr></thead><tbody>')
    for row in rows:
        end = ('<span class="terminal">terminal</span>' if row["terminated"]
               else '<span class="muted">truncated</span>')
        out.append(
            f'<tr><td><a href="{episode_file(row["index"])}">{row["index"]}</a></td>'
            f'<td class="id">{html.escape(str(row[sc.EPISODE_ID]))}</td>'
            f'<td>{row["transitions"]}</td><td>{row["return"]:.2f}</td>'
            f'<td>{row["intervention_rate"]:.0%}</td><td>{row["takeovers"]}</td>'
            f'<td>{end}</td><td class="id">{_validity(row.get("invalid"))}</td></tr>')
    out.append("</tbody></table>")
    out.append(pager(page, pages))
    out.append("</body></html>\n")
    return "\n".join(out)


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def episode_page(data: Mapping[str, Any], metadata: Mapping[str, Any], title: str,
                 page_of_list: int, episodes: int, camera_shapes: Mapping[str, Sequence[int]],
                 invalid_reason: Optional[str] = None) -> str:
    """The page of one episode: metadata, scrubbable frames, timeline, rewards, actions.

    Args:
      data: `episode_data` of the episode.
      metadata: its episode metadata (shown as a table).
      title: the dataset's name or path.
      page_of_list: the index page that lists it (for the back link).
      episodes: episodes in the dataset (for previous/next links).
      camera_shapes: each camera's frame shape (H, W, C), to size the images.
      invalid_reason: the reason it was marked invalid with (a banner), or None.
    """
    i = data["index"]
    name = metadata.get(sc.EPISODE_ID, "") or f"episode {i}"
    nav = [f'<a href="../{index_file(page_of_list)}">&uarr; episode list</a>']
    if i > 0:
        nav.append(f'<a href="{i - 1:06d}.html" rel="prev">&larr; episode {i - 1}</a>')
    if i + 1 < episodes:
        nav.append(f'<a href="{i + 1:06d}.html" rel="next">episode {i + 1} &rarr;</a>')
    out = [_head(f"{title}: {name}", "../"), f'<div class="pager">{" ".join(nav)}</div>',
           f"<h1>episode {i}: {html.escape(str(name))}</h1>",
           *([f'<p class="banner">marked invalid: {html.escape(invalid_reason)} (kept in the '
              "data; jobs drop or keep it by --invalid_episodes)</p>"]
             if invalid_reason is not None else []),
           f'<p>{data["transitions"]} transitions, {data["steps"]} steps &middot; frames: '
           f'<b id="frame-count">{data["steps"] if data["cameras"] else 0}</b> '
           f'&middot; cameras: {len(data["cameras"])}</p>']
    if data["cameras"]:
        out.append('<div class="frames">')
        for camera in data["cameras"]:
            h, w = (list(camera_shapes.get(camera["name"], (128, 128)))[:2] + [128, 128])[:2]
            scale = max(1, 256 // max(h, w))
            out.append(f'<figure><img id="cam-{camera["slot"]}" alt="{html.escape(camera["name"])}"'
                       f' width="{w * scale}" height="{h * scale}">'
                       f'<figcaption>{html.escape(camera["name"])}</figcaption></figure>')
        out.append("</div>")
    out.append('<div class="controls"><button id="play" type="button">Play</button>'
               f'<input id="step" type="range" min="0" max="{data["steps"] - 1}" value="0" '
               'aria-label="step"><span id="step-label"></span></div>')
    if data["state"] is not None:
        out.append('<p id="state">observation: <span id="state-values"></span></p>')
    for plot, height in (("intervention", 70), ("reward", 140), ("action", 180)):
        out.append(f'<canvas id="plot-{plot}" width="900" height="{height}"></canvas>')
    out.append("<h2>episode metadata</h2><table>")
    out += [f'<tr><td class="id">{html.escape(str(k))}</td>'
            f'<td class="id">{html.escape(str(v))}</td></tr>' for k, v in metadata.items()]
    out.append("</table>")
    out.append(f"<script>window.EPISODE = {_script_json(data)};</script>")
    out.append(f'<script src="../{assets.SCRIPT_FILE}"></script>')
    out.append("</body></html>\n")
    return "\n".join(out)
