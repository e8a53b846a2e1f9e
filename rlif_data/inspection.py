"""Summaries of recorded episodes: counts, intervention rate, takeovers, returns, the mask."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from rlif_data import episodes as ep
from rlif_data import intervention as iv
from rlif_data import invalid
from rlif_data import schema as sc


@dataclasses.dataclass
class RecordingSummary:
    """Aggregate statistics of a set of episodes."""

    episodes: int
    transitions: int
    intervened_steps: int
    takeovers: int
    mean_return: float
    terminated_episodes: int
    per_episode: list[dict[str, Any]]
    intervention_models: dict[str, int]
    # Transitions the per-step `include` mask keeps (a relabelled view); None
    # when the episodes carry no mask (raw or ingested: every transition counts).
    included_transitions: Optional[int] = None

    @property
    def intervention_rate(self) -> float:
        """Fraction of transitions under expert control."""
        return self.intervened_steps / self.transitions if self.transitions else 0.0

    @property
    def takeovers_per_episode(self) -> float:
        """Mean number of takeovers per episode."""
        return self.takeovers / self.episodes if self.episodes else 0.0


def included_transitions(episode: ep.Episode) -> Optional[int]:
    """How many of an episode's transitions its `include` mask keeps; None without a mask. Pure."""
    steps = episode[sc.STEPS]
    if sc.INCLUDE not in steps:
        return None
    return int(np.asarray(steps[sc.INCLUDE][:ep.episode_length(episode)], bool).sum())


def describe_mask(summary: RecordingSummary, view: Optional[str]) -> str:
    """One line naming a dataset's view and what its mask keeps, for `inspect` and `show`. Pure.

    Args:
      summary: the dataset's summary.
      view: its view (`rlif_data.lineage.dataset_view`), None for raw data.
    """
    if summary.included_transitions is None:
        return f"view: {view or 'raw'} (no include mask: every transition counts)"
    share = summary.included_transitions / summary.transitions if summary.transitions else 0.0
    return (f"view: {view or 'unknown'}; the include mask keeps "
            f"{summary.included_transitions} of {summary.transitions} transitions ({share:.0%}): "
            "readers that ignore it get the wrong transitions")


def summarize(episodes: Iterable[ep.Episode]) -> RecordingSummary:
    """Summarize episodes (pure: works on any in-memory episodes)."""
    rows = []
    models: dict[str, int] = {}
    for episode in episodes:
        row = ep.summarize_episode(episode)
        row["included"] = included_transitions(episode)
        rows.append(row)
        name = iv.canonical_model_name(episode.get(sc.INTERVENTION_MODEL, ""))
        models[name] = models.get(name, 0) + 1
    return RecordingSummary(
        episodes=len(rows),
        transitions=sum(r["transitions"] for r in rows),
        intervened_steps=sum(r["intervened_steps"] for r in rows),
        takeovers=sum(r["takeovers"] for r in rows),
        mean_return=float(np.mean([r["return"] for r in rows])) if rows else 0.0,
        terminated_episodes=sum(r["terminated"] for r in rows),
        per_episode=rows,
        intervention_models=models,
        included_transitions=(sum(r["included"] for r in rows)
                              if rows and all(r["included"] is not None for r in rows) else None),
    )


def invalid_summary(episode_ids: Sequence[str],
                    marks: Sequence[invalid.Mark]) -> dict[str, Any]:
    """How many episodes are marked invalid, and which, for `inspect` and `show`. Pure.

    Args:
      episode_ids: the dataset's episode ids, in order.
      marks: its marks (`invalid.read_marks`).

    Returns:
      ``{"marked": n, "episodes": total, "marks": [{"index", "episode_id",
      "reason", "marked_at", "by", "how"}, ...], "unknown_ids": [...]}``
      (marks naming no episode of the dataset in ``unknown_ids``).
    """
    marked = invalid.marked_indices(episode_ids, marks)
    return {"marked": len(marked), "episodes": len(episode_ids),
            "marks": [{"index": i, **marked[i].to_json()} for i in sorted(marked)],
            "unknown_ids": [m.episode_id for m in invalid.dangling_marks(episode_ids, marks)]}


def describe_invalid(info: Mapping[str, Any]) -> str:
    """One line: ``invalid: 2 of 20 episodes ...`` from `invalid_summary`. Pure."""
    line = f"invalid: {info['marked']} of {info['episodes']} episodes"
    if info["marked"]:
        line += (" (marked by the operator, kept in the data; jobs take "
                 f"{invalid.OPTION_FLAG}=drop|keep)")
    if info["unknown_ids"]:
        line += f"; {len(info['unknown_ids'])} mark(s) name no episode here"
    return line


def summary_json(summary: RecordingSummary, view: Optional[str],
                 invalid_info: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of `inspect --json` / `show --json`. Pure."""
    return {"episodes": summary.episodes, "transitions": summary.transitions,
            "intervention_rate": summary.intervention_rate,
            "takeovers_per_episode": summary.takeovers_per_episode,
            "mean_return": summary.mean_return,
            "terminated_episodes": summary.terminated_episodes,
            "included_transitions": summary.included_transitions,
            "intervention_models": summary.intervention_models, "view": view,
            "invalid": dict(invalid_info)}
