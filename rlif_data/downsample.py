"""Which episodes to keep when downsampling a dataset. Pure and seeded.

The RLIF paper starts each task from a small initial dataset, given either as
a number of trajectories or as a number of transitions. Both are offered; the
choice is deterministic given the seed, optionally stratified (e.g. by
operator or by source) so that each group keeps its share.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class EpisodeInfo:
    """What selection needs to know about one episode.

    Attributes:
      index: position of the episode in its dataset.
      transitions: number of transitions (steps minus the final observation).
      stratum: group label for stratified selection (e.g. operator or source).
    """

    index: int
    transitions: int
    stratum: str = ""


@dataclasses.dataclass(frozen=True)
class Selection:
    """The chosen episodes, in dataset order, and their totals."""

    indices: tuple[int, ...]
    transitions: int
    per_stratum: dict[str, int]


def _allocate(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split `total` across strata in proportion to `sizes` (largest remainder)."""
    n = sum(sizes.values())
    exact = {k: total * v / n for k, v in sizes.items()}
    alloc = {k: int(np.floor(x)) for k, x in exact.items()}
    leftover = total - sum(alloc.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - alloc[k]), k))[:leftover]:
        alloc[k] += 1
    return alloc


def _first_fit(order: Sequence[EpisodeInfo], budget: int) -> list[EpisodeInfo]:
    chosen, total = [], 0
    for info in order:
        if total + info.transitions <= budget:
            chosen.append(info)
            total += info.transitions
    return chosen


def select_episodes(
    infos: Sequence[EpisodeInfo],
    *,
    episodes: Optional[int] = None,
    transitions: Optional[int] = None,
    seed: int = 0,
    stratify: bool = False,
) -> Selection:
    """Choose whole episodes by count or by a transition budget.

    Args:
      infos: one `EpisodeInfo` per episode of the input.
      episodes: keep exactly this many episodes, or
      transitions: keep episodes (in a seeded random order, first fit) while
        the total stays within this many transitions.
      seed: RNG seed; the same inputs and seed give the same selection.
      stratify: allocate the count/budget to strata in proportion to their
        size (episodes, or transitions), then select within each stratum.

    Returns:
      The `Selection`, indices sorted in dataset order.

    Raises:
      ValueError: not exactly one of `episodes`/`transitions`, a non-positive
        target, or more episodes asked than exist.
    """
    if (episodes is None) == (transitions is None):
        raise ValueError("give exactly one of episodes= or transitions=")
    target = episodes if episodes is not None else transitions
    if target is None or target <= 0:
        raise ValueError(f"the downsampling target must be positive, got {target}")
    if episodes is not None and episodes > len(infos):
        raise ValueError(f"asked for {episodes} episodes but the input has only {len(infos)}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[EpisodeInfo]] = {}
    for info in infos:
        groups.setdefault(info.stratum if stratify else "", []).append(info)
    if episodes is not None:
        sizes = {k: len(v) for k, v in groups.items()}
    else:
        sizes = {k: sum(i.transitions for i in v) for k, v in groups.items()}
    alloc = _allocate(target, sizes) if stratify else {"": target}
    chosen: list[EpisodeInfo] = []
    for key in sorted(groups):
        members = groups[key]
        order = [members[i] for i in rng.permutation(len(members))]
        if episodes is not None:
            chosen.extend(order[: alloc[key]])
        else:
            chosen.extend(_first_fit(order, alloc[key]))
    chosen.sort(key=lambda i: i.index)
    per = {}
    for info in chosen:
        per[info.stratum] = per.get(info.stratum, 0) + 1
    return Selection(tuple(i.index for i in chosen), sum(i.transitions for i in chosen), per)
