"""PNG plots a person would rather look at than read."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rlif_data import episodes as ep
from rlif_data import schema as sc


def plot_intervention_timeline(episodes: Sequence[ep.Episode], path: str,
                               title: str = "", max_episodes: int = 40) -> str:
    """Draw who was in control at each step of each episode; returns `path`.

    One row per episode: grey where the learner acted, orange where the expert
    was in control, a black tick at each takeover start, a red cross where the
    episode terminated (fell) rather than being truncated.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    shown = list(episodes)[:max_episodes]
    if not shown:
        raise ValueError("no episodes to plot")
    height = 1.2 + 0.28 * len(shown)
    fig, ax = plt.subplots(figsize=(10, height))
    max_len = 1
    for row, episode in enumerate(shown):
        steps = episode[sc.STEPS]
        t = ep.episode_length(episode)
        max_len = max(max_len, t)
        intervention = np.asarray(steps[sc.INTERVENTION][:t], bool)
        ax.broken_barh([(0, t)], (row - 0.35, 0.7), facecolors="#d0d0d0")
        runs = _runs(intervention)
        if runs:
            ax.broken_barh(runs, (row - 0.35, 0.7), facecolors="#f28e2b")
        starts = np.flatnonzero(np.asarray(steps[sc.INTERVENTION_START][:t], bool))
        ax.vlines(starts, row - 0.4, row + 0.4, colors="black", linewidth=0.8)
        if bool(steps[sc.IS_TERMINAL][-1]):
            ax.plot([t], [row], marker="x", color="#c0392b", markersize=6)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([str(e.get(sc.EPISODE_ID, i)).split("/")[-1] for i, e in enumerate(shown)],
                       fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max_len * 1.02 + 1)
    ax.set_xlabel("step")
    ax.set_ylabel("episode")
    rate = _rate(shown)
    ax.set_title(title or f"Who was in control ({len(shown)} episodes, intervention rate {rate:.0%})")
    ax.legend(
        handles=[Patch(color="#d0d0d0", label="learner"), Patch(color="#f28e2b", label="expert"),
                 plt.Line2D([], [], color="black", label="takeover start"),
                 plt.Line2D([], [], color="#c0392b", marker="x", linestyle="", label="terminated")],
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, framealpha=0.9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
