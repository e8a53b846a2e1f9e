"""RLIF reward relabelling and the baselines' views of the same logs. Pure.

The RLIF reward (paper): a takeover that starts at step t (t > 0: the expert
is in control at t and was not at t-1) gives the transition (s_{t-1}, a_{t-1},
s_t) reward -1; every other transition gets 0. A takeover at t = 0 gives no -1.

Named rules, because published numbers depend on them:

* ``paper``: every transition stays in the RL data, expert-controlled ones
  included, with the rewards above.
* ``paper-policy-only``: same rewards; only transitions where the learner
  acted stay (the -1 transition always does: the learner acted at t-1).
* ``official``: what pd-perry/RLIF's scripts insert into the online buffer.
  Transition t-1 is inserted when step t is decided: -1 if a takeover starts
  at t, 0 if the learner acts at t, nothing while a takeover continues. So
  expert transitions are dropped except the last of each takeover, and the
  last transition of an episode is never inserted.

Baseline views: ``hg-dagger`` keeps the expert-controlled steps (their action
is the expert's); ``dagger`` keeps every step with an expert label and puts
`expert_action` in `action`.

Discounts are never changed: a termination has discount 0, a time-limit
truncation keeps 1 (bootstrap).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rlif_data import episodes as ep
from rlif_data import schema as sc


@dataclasses.dataclass(frozen=True)
class RelabelRule:
    """One named way of turning intervention flags into RL data.

    Attributes:
      name: the rule's name (stored in dataset metadata).
      keep_expert_transitions: expert-controlled transitions stay in the data.
      official_insertion: apply the official code's insertion order (see module doc).
      intervention_reward: reward of the transition that precedes a takeover.
      other_reward: reward of every other transition.
    """

    name: str
    keep_expert_transitions: bool = True
    official_insertion: bool = False
    intervention_reward: float = -1.0
    other_reward: float = 0.0


PAPER = RelabelRule("paper")
PAPER_POLICY_ONLY = RelabelRule("paper-policy-only", keep_expert_transitions=False)
OFFICIAL = RelabelRule("official", keep_expert_transitions=False, official_insertion=True)
RULES = {rule.name: rule for rule in (PAPER, PAPER_POLICY_ONLY, OFFICIAL)}

HG_DAGGER = "hg-dagger"
DAGGER = "dagger"
VIEWS = tuple(RULES) + (HG_DAGGER, DAGGER)


def rlif_rewards(intervention: np.ndarray, rule: RelabelRule = PAPER) -> tuple[np.ndarray, np.ndarray]:
    """RLIF rewards and inclusion flags for one episode's transitions.

    Args:
      intervention: [T] bool, expert in control at transition t (the final
        observation step is not part of it).
      rule: the relabel rule.

    Returns:
      (reward [T] float32, include [T] bool).
    """
    flags = np.asarray(intervention, dtype=bool)
    t = len(flags)
    prev = np.concatenate([[False], flags[:-1]]) if t else flags
    starts = flags & ~prev
    starts[:1] = False  # a takeover at t = 0 has no preceding learner transition
    reward = np.full(t, rule.other_reward, np.float32)
    reward[:-1][starts[1:]] = rule.intervention_reward
    if rule.official_insertion:
        include = np.zeros(t, bool)
        # transition t-1 is inserted unless a takeover continues at t
        include[:-1] = ~(flags[1:] & flags[:-1])
    elif rule.keep_expert_transitions:
        include = np.ones(t, bool)
    else:
        include = ~flags
    return reward, include


def relabel_episode(episode: ep.Episode, view: str) -> ep.Episode:
    """A copy of `episode` in a derived view, with `ENV_REWARD` and `INCLUDE` filled.

    Args:
      episode: an episode in the recording schema.
      view: a rule name in `RULES`, or `HG_DAGGER` / `DAGGER`.

    Returns:
      The episode with `REWARD` replaced (RLIF views), `ACTION` replaced by
      the expert label (DAgger), `ENV_REWARD` holding the original reward and
      `INCLUDE` marking the steps that belong to the view.

    Raises:
      ValueError: unknown view.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown relabel view {view!r}; choose one of {list(VIEWS)}")
    steps = dict(episode[sc.STEPS])
    t = len(steps[sc.IS_FIRST]) - 1
    flags = np.asarray(steps[sc.INTERVENTION][:t], bool)
    include = np.zeros(t + 1, bool)
    steps[sc.ENV_REWARD] = np.asarray(steps[sc.REWARD], np.float32).copy()
    if view in RULES:
        reward, include[:t] = rlif_rewards(flags, RULES[view])
        steps[sc.REWARD] = np.concatenate([reward, np.zeros(1, np.float32)])
    elif view == HG_DAGGER:
        include[:t] = flags
    else:  # DAGGER: label every visited state that has an expert action
        has_label = np.asarray(steps[sc.HAS_EXPERT_ACTION][:t], bool)
        include[:t] = has_label
        action = np.asarray(steps[sc.ACTION], np.float32).copy()
        action[:t][has_label] = np.asarray(steps[sc.EXPERT_ACTION], np.float32)[:t][has_label]
        steps[sc.ACTION] = action
    steps[sc.INCLUDE] = include
    return {**episode, sc.STEPS: steps}


def _take(observations: Any, index: np.ndarray) -> Any:
    if isinstance(observations, dict):
        return {k: np.asarray(v)[index] for k, v in observations.items()}
    return np.asarray(observations)[index]


def episode_transitions(episode: ep.Episode) -> dict[str, Any]:
    """(s, a, r, discount, s') of the included transitions of a derived episode.

    Returns:
      dict with `observations`, `actions`, `rewards`, `discounts` (0 only after
      a termination) and `next_observations`, each [N, ...].
    """
    steps = episode[sc.STEPS]
    t = len(steps[sc.IS_FIRST]) - 1
    idx = np.flatnonzero(np.asarray(steps[sc.INCLUDE][:t], bool))
    return {
        "observations": _take(steps[sc.OBSERVATION], idx),
        "actions": np.asarray(steps[sc.ACTION], np.float32)[idx],
        "rewards": np.asarray(steps[sc.REWARD], np.float32)[idx],
        "discounts": np.asarray(steps[sc.DISCOUNT], np.float32)[idx],
        "next_observations": _take(steps[sc.OBSERVATION], idx + 1),
    }
