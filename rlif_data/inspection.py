"""Summaries of recorded episodes: counts, intervention rate, takeovers, returns."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import numpy as np

from rlif_data import episodes as ep
from rlif_data import intervention as iv
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

    @property
    def intervention_rate(self) -> float:
        """Fraction of transitions under expert control."""
        return self.intervened_steps / self.transitions if self.transitions else 0.0

    @property
    def takeovers_per_episode(self) -> float:
        """Mean number of takeovers per episode."""
        return self.takeovers / self.episodes if self.episodes else 0.0


def summarize(episodes: Iterable[ep.Episode]) -> RecordingSummary:
    """Summarize episodes (pure: works on any in-memory episodes)."""
    rows = []
    models: dict[str, int] = {}
    for episode in episodes:
        row = ep.summarize_episode(episode)
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
    )
