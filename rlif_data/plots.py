"""PNG plots a person would rather look at than read.

The intervention timeline draws one row per episode. What a row shows is
decided by pure functions over the episode arrays (`timeline_row`,
`episode_labels`, `sample_indices`); `plot_intervention_timeline` only draws
it, so tests check what is shown without reading pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from rlif_data import episodes as ep
from rlif_data import schema as sc

# Who produced each step's action -> (legend label, colour). Human takeovers are
# the operator's, imported D4RL/Minari steps the dataset's.
SOURCE_STYLE = {
    sc.Source.POLICY: ("learner", "#a6cee3"),
    sc.Source.EXPERT: ("expert", "#f28e2b"),
    sc.Source.HUMAN: ("operator", "#b07aa1"),
    sc.Source.DATASET: ("dataset", "#59a14f"),
}
MINUS_ONE_COLOUR = "#d62728"
EXCLUDED_STYLE = {"facecolor": "white", "alpha": 0.7, "hatch": "////", "edgecolor": "#7f7f7f",
                  "linewidth": 0.0}
# The RLIF reward of the transition before a takeover (see `rlif_data.relabel`).
TAKEOVER_REWARD = -1.0


@dataclasses.dataclass(frozen=True)
class TimelineRow:
    """What one episode's row shows.

    Attributes:
      length: transitions.
      source_runs: legend label -> (start, length) runs of steps whose action it produced.
      takeover_starts: steps where a takeover starts.
      minus_one: steps whose reward the view set to -1 (the transition before a takeover).
      excluded_runs: (start, length) runs of steps the view's `include` mask leaves out.
      terminated: the episode ended in a termination (not a truncation).
    """

    length: int
    source_runs: dict[str, list[tuple[int, int]]]
    takeover_starts: list[int]
    minus_one: list[int]
    excluded_runs: list[tuple[int, int]]
    terminated: bool


@dataclasses.dataclass(frozen=True)
class TimelinePlot:
    """What `plot_intervention_timeline` drew.

    Attributes:
      path: the PNG written.
      labels: the row labels, top to bottom.
      rows: what each row shows.
      caption: the second title line ("showing 40 of 74 episodes ...").
      legend: the legend's entries.
    """

    path: str
    labels: list[str]
    rows: list[TimelineRow]
    caption: str
    legend: list[str]


def sample_indices(total: int, limit: int) -> list[int]:
    """Which of `total` episodes to draw when at most `limit` rows fit: all, or evenly spaced. Pure.

    Args:
      total: episodes available.
      limit: rows that fit (>= 1).

    Returns:
      Sorted indices; the first and last episode are always among them.
    """
    if total <= limit:
        return list(range(total))
    if limit == 1:
        return [0]
    return sorted({int(round(x)) for x in np.linspace(0, total - 1, limit)})


def episode_labels(episode_ids: Sequence[str]) -> list[str]:
    """Short row labels that tell every episode apart. Pure.

    The part after the last "/" (the index within a session) when that is
    unique; otherwise session and index ("3f2a9c/00000"), with the session id
    cut to the shortest prefix that keeps the labels unique; the full id if
    nothing shorter does.

    Args:
      episode_ids: ids as stored ("<session>/<index>", or anything else).

    Returns:
      One label per id, all different when the ids are.
    """
    ids = [str(x) for x in episode_ids]
    short = [x.rsplit("/", 1)[-1] for x in ids]
    if len(set(short)) == len(short):
        return short
    longest = max((len(x.rsplit("/", 1)[0]) for x in ids if "/" in x), default=0)
    for width in (6, 8, 12, longest):
        labels = [f"{x.rsplit('/', 1)[0][:width]}/{x.rsplit('/', 1)[1]}" if "/" in x else x
                  for x in ids]
        if len(set(labels)) == len(labels):
            return labels
    return ids


def timeline_row(episode: ep.Episode, view: Optional[str] = None) -> TimelineRow:
    """What the row of `episode` shows. Pure.

    Args:
      episode: an episode in memory (raw, relabelled or ingested).
      view: the dataset's relabel view; with an RLIF view (`relabel.RULES`)
        or None, a derived episode's -1 rewards are marked (steps of
        imported data keep their environment rewards and are never marked).

    Returns:
      The `TimelineRow`.
    """
    from rlif_data import relabel

    steps = episode[sc.STEPS]
    t = ep.episode_length(episode)
    source = np.asarray(steps[sc.SOURCE][:t], np.int64)
    runs = {}
    for member, (label, _) in SOURCE_STYLE.items():
        found = _runs(source == int(member))
        if found:
            runs[label] = found
    starts = np.flatnonzero(np.asarray(steps[sc.INTERVENTION_START][:t], bool))
    derived = sc.INCLUDE in steps
    minus_one: list[int] = []
    excluded: list[tuple[int, int]] = []
    if derived:
        if view is None or view in relabel.RULES:
            reward = np.asarray(steps[sc.REWARD][:t], np.float64)
            hit = (reward == TAKEOVER_REWARD) & (source != int(sc.Source.DATASET))
            minus_one = [int(i) for i in np.flatnonzero(hit)]
        excluded = _runs(~np.asarray(steps[sc.INCLUDE][:t], bool))
    return TimelineRow(t, runs, [int(i) for i in starts], minus_one, excluded,
                       bool(steps[sc.IS_TERMINAL][-1]))


def plot_intervention_timeline(episodes: Sequence[ep.Episode], path: str,
                               title: str = "", max_episodes: int = 40,
                               view: Optional[str] = None) -> TimelinePlot:
    """Draw who was in control at each step of each episode into a PNG.

    One row per episode, coloured by who produced each action (learner,
    expert, operator, dataset), a black tick at each takeover start, a red
    triangle on each transition a view rewarded -1, hatched grey over the
    steps a view's `include` mask leaves out, a cross where the episode
    terminated (fell) rather than being truncated. More episodes than
    `max_episodes` are sampled evenly, and the title says so.

    Args:
      episodes: the episodes.
      path: the PNG to write.
      title: first title line (default: "Who was in control").
      max_episodes: rows at most.
      view: the dataset's relabel view (None: raw, ingested or unknown).

    Returns:
      A `TimelinePlot`: what was drawn (labels, rows, caption, legend).

    Raises:
      ValueError: no episodes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    episodes = list(episodes)
    if not episodes:
        raise ValueError("no episodes to plot")
    shown = [episodes[i] for i in sample_indices(len(episodes), max_episodes)]
    rows = [timeline_row(e, view) for e in shown]
    labels = episode_labels([e.get(sc.EPISODE_ID, str(i)) for i, e in enumerate(shown)])
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.28 * len(shown)))
    colours = {label: colour for label, colour in SOURCE_STYLE.values()}
    present: set[str] = set()
    for y, row in enumerate(rows):
        for label, runs in row.source_runs.items():
            ax.broken_barh(runs, (y - 0.35, 0.7), facecolors=colours[label])
            present.add(label)
        if row.excluded_runs:
            ax.broken_barh(row.excluded_runs, (y - 0.35, 0.7), **EXCLUDED_STYLE)
            present.add("excluded")
        if row.takeover_starts:
            ax.vlines(row.takeover_starts, y - 0.4, y + 0.4, colors="black", linewidth=0.8)
            present.add("takeover")
        if row.minus_one:
            ax.plot(np.asarray(row.minus_one) + 0.5, [y - 0.42] * len(row.minus_one),
                    linestyle="", marker="v", markersize=4, color=MINUS_ONE_COLOUR)
            present.add("minus_one")
        if row.terminated:
            ax.plot([row.length], [y], marker="x", color="black", markersize=6)
            present.add("terminated")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(r.length for r in rows) * 1.02 + 1)
    ax.set_xlabel("step")
    ax.set_ylabel("episode")
    text = caption(len(shown), len(episodes), _rate(shown), view)
    ax.set_title(f"{title or 'Who was in control'}\n{text}", fontsize=9)
    handles = [Patch(color=colours[label], label=label) for label in colours if label in present]
    extras = [
        ("excluded", Patch(label="not in the view (include = 0)", **EXCLUDED_STYLE)),
        ("takeover", plt.Line2D([], [], color="black", label="takeover start")),
        ("minus_one", plt.Line2D([], [], color=MINUS_ONE_COLOUR, marker="v", linestyle="",
                                 label="reward -1 (before a takeover)")),
        ("terminated", plt.Line2D([], [], color="black", marker="x", linestyle="",
                                  label="terminated")),
    ]
    handles += [h for key, h in extras if key in present]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
              framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return TimelinePlot(path, labels, rows, text, [h.get_label() for h in handles])


def caption(shown: int, total: int, rate: float, view: Optional[str]) -> str:
    """The timeline's second title line. Pure.

    Args:
      shown: episodes drawn.
      total: episodes in the dataset.
      rate: intervention rate of the drawn episodes.
      view: the dataset's view (None: raw or ingested).

    Returns:
      e.g. "showing 40 of 74 episodes (evenly spaced) · view paper · intervention rate 31%".
    """
    count = (f"showing {shown} of {total} episodes (evenly spaced)" if shown < total
             else f"{total} episodes")
    return f"{count} · view {view or 'raw'} · intervention rate {rate:.0%}"


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True values."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e - s)) for s, e in zip(edges[::2], edges[1::2])]


def _rate(episodes: Sequence[ep.Episode]) -> float:
    total = sum(ep.episode_length(e) for e in episodes)
    hit = sum(int(np.asarray(e[sc.STEPS][sc.INTERVENTION][:ep.episode_length(e)]).sum())
              for e in episodes)
    return hit / total if total else 0.0
