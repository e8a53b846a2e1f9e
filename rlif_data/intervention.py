"""Intervention models: who is in control at each step. Pure and seeded.

A model sees a `DecisionContext` at every step and answers whether the expert
is in control at that step. Models keep their own state (an ongoing takeover,
their RNG); `reset(seed)` starts a new episode. Nothing here does I/O.

Named variants (docs/design.md, section 3):

* `RandomTakeover` -- paper §3.2: at each step not under takeover, start a
  takeover with probability ``p`` chosen so that the long-run fraction of
  intervened steps equals ``rate``; a takeover lasts ``k`` steps.
* `IIDRandom` -- what the official RLIF random script does: each step is an
  independent Bernoulli(rate) draw (its takeover length has no effect).
* `ValueBased` -- intervene with probability ``beta`` when the reference Q
  says the policy action is worse than the reference action by a margin,
  else with probability ``1 - beta``. `value_based_paper` decides at every
  step; `value_based_official` decides only outside a takeover, which then
  lasts 4 steps.
* `ExternalTakeover` -- a human input device (robot/) says when it is engaged.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from typing import Any, Callable, Optional, Protocol

import numpy as np

QFunction = Callable[[Any, np.ndarray], float]
"""A reference critic: Q^ref(observation, action) -> scalar value."""

# Model names: stored in each episode's `intervention_model` field and accepted
# on the command line, one spelling each.
MODEL_RANDOM = "random"  # `RandomTakeover`, paper §3.2
MODEL_RANDOM_OFFICIAL = "random-official"  # `IIDRandom`, official code
MODEL_VALUE = "value"  # `ValueBased` (both variants; `params` tell them apart)
MODEL_HUMAN = "human"  # `ExternalTakeover`: a person with an input device
MODEL_NONE = "none"  # `NoIntervention`, and imported data without takeovers
# Older spellings found in recordings -> today's name.
MODEL_NAME_ALIASES = {"random_official": MODEL_RANDOM_OFFICIAL}
# The models `make_named_model` builds from a name alone.
NAMED_MODELS = (MODEL_RANDOM, MODEL_RANDOM_OFFICIAL, MODEL_NONE)

# Official RLIF code: takeovers last `intervene_n_steps` = 4 steps.
OFFICIAL_TAKEOVER_STEPS = 4
PAPER_BETA = 0.95
PAPER_ALPHA = 0.97


@dataclasses.dataclass(frozen=True)
class DecisionContext:
    """What a model may look at when deciding step ``t``.

    Attributes:
      step: index of the step within the episode (0 = first observation).
      observation: the observation at this step.
      policy_action: what the learner proposes at this step.
      expert_action: what the expert would do, or None if not computed.
    """

    step: int
    observation: Any
    policy_action: np.ndarray
    expert_action: Optional[np.ndarray] = None


class InterventionModel(abc.ABC):
    """Decides, step by step, whether the expert is in control."""

    name: str = "abstract"

    @abc.abstractmethod
    def reset(self, seed: Optional[int] = None) -> None:
        """Start a new episode; `seed` re-seeds the model's RNG when given."""

    @abc.abstractmethod
    def decide(self, ctx: DecisionContext) -> bool:
        """Return True if the expert is in control at step ``ctx.step``."""

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """The model's parameters, JSON-able; stored in episode metadata."""

    @property
    def needs_expert_action(self) -> bool:
        """Whether `decide` reads ``ctx.expert_action`` (value-based models do)."""
        return False


def check_rate(rate: float) -> float:
    """Return `rate` as a float, or raise ValueError unless it is in [0, 1)."""
    # numbers.Real admits NumPy scalars (rates often come out of arrays); bool is not a rate.
    if (isinstance(rate, bool) or not isinstance(rate, numbers.Real)
            or not math.isfinite(rate) or not 0.0 <= rate < 1.0):
        raise ValueError(f"intervention rate must be in [0, 1), got {rate!r}")
    return float(rate)


def _check_takeover_steps(k: int) -> int:
    try:
        ok = int(k) == k and k >= 1
    except (TypeError, ValueError, OverflowError):  # int(inf) / int(nan) / int("x")
        ok = False
    if not ok:
        raise ValueError(f"takeover length must be a positive integer, got {k!r}")
    return int(k)


def start_probability(rate: float, takeover_steps: int) -> float:
    """Per-step probability of starting a takeover that yields `rate` in the long run.

    A cycle is a geometric number of free steps (mean ``(1 - p) / p``) followed
    by a takeover of ``k`` steps, so the intervened fraction is
    ``k / (k + (1 - p) / p)``; solving for ``p`` gives
    ``p = rate / (k (1 - rate) + rate)``. For ``k = 1`` this is ``rate``.
    """
    rate = check_rate(rate)
    k = _check_takeover_steps(takeover_steps)
    return rate / (k * (1.0 - rate) + rate)


class _TakeoverState:
    """Counts down the remaining steps of an ongoing takeover."""

    def __init__(self):
        self.remaining = 0

    def continue_takeover(self) -> bool:
        if self.remaining > 0:
            self.remaining -= 1
            return True
        return False

    def start(self, steps: int) -> bool:
        self.remaining = steps - 1  # this step is the first of the takeover
        return True


class _SeededModel(InterventionModel):
    """Shared by the stochastic models: a seeded RNG and the current takeover.

    `reset(seed)` re-seeds (when a seed is given) and ends any takeover.
    """

    def __init__(self, seed: int):
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._state = _TakeoverState()

    def reset(self, seed: Optional[int] = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._state = _TakeoverState()


class RandomTakeover(_SeededModel):
    """Paper §3.2: random takeovers of `takeover_steps` steps at a target `rate`.

    The realised rate converges to `rate` over long step streams; episode ends
    cut takeovers short, so short episodes see slightly less.
    """

    name = MODEL_RANDOM

    def __init__(self, rate: float, takeover_steps: int = OFFICIAL_TAKEOVER_STEPS, seed: int = 0):
        self.rate = check_rate(rate)
        self.takeover_steps = _check_takeover_steps(takeover_steps)
        self.p_start = start_probability(self.rate, self.takeover_steps)
        super().__init__(seed)

    def decide(self, ctx: DecisionContext) -> bool:
        if self._state.continue_takeover():
            return True
        if self._rng.random() < self.p_start:
            return self._state.start(self.takeover_steps)
        return False

    def params(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "takeover_steps": self.takeover_steps,
            "p_start": self.p_start,
            "seed": self._seed,
        }


class IIDRandom(_SeededModel):
    """Official RLIF random script: each step is an independent Bernoulli(rate)."""

    name = MODEL_RANDOM_OFFICIAL

    def __init__(self, rate: float, seed: int = 0):
        self.rate = check_rate(rate)
        super().__init__(seed)

    def decide(self, ctx: DecisionContext) -> bool:
        return bool(self._rng.random() < self.rate)

    def params(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self._seed}


def policy_is_worse(
    q_policy: float,
    q_ref: float,
    *,
    delta: Optional[float] = None,
    alpha: Optional[float] = None,
) -> bool:
    """The value-based trigger, in its absolute or relative form.

    Absolute: ``Q(s, a_pi) < Q(s, a_ref) - delta``.
    Relative: ``Q(s, a_pi) < alpha * Q(s, a_ref)`` (paper; meaningful for
    positive Q values: with negative Q, ``alpha < 1`` makes the bar higher).
    Exactly one of `delta` and `alpha` must be given.
    """
    if (delta is None) == (alpha is None):
        raise ValueError("give exactly one of delta (absolute) or alpha (relative)")
    if delta is not None:
        return q_policy < q_ref - delta
    return q_policy < alpha * q_ref


class ValueBased(_SeededModel):
    """Intervene with probability `beta` when Q^ref finds the policy action worse.

    Args:
      q_ref: any callable ``Q(observation, action) -> float`` (e.g. the mean
        of a reference critic ensemble).
      beta: probability of intervening when the trigger fires; otherwise the
        model intervenes with probability ``1 - beta``.
      delta / alpha: the absolute / relative trigger (see `policy_is_worse`).
      takeover_steps: 1 decides at every step (paper); k > 1 decides only when
        no takeover runs and then keeps the expert in control for k steps
        (official code, k = 4).
      seed: RNG seed.
    """

    name = MODEL_VALUE

    def __init__(
        self,
        q_ref: QFunction,
        *,
        beta: float = PAPER_BETA,
        delta: Optional[float] = None,
        alpha: Optional[float] = None,
        takeover_steps: int = 1,
        seed: int = 0,
    ):
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        if (delta is None) == (alpha is None):
            raise ValueError("give exactly one of delta (absolute) or alpha (relative)")
        if delta is not None and not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be finite and >= 0, got {delta!r}")
        if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be finite and > 0, got {alpha!r}")
        self.q_ref = q_ref
        self.beta = float(beta)
        self.delta = delta
        self.alpha = alpha
        self.takeover_steps = _check_takeover_steps(takeover_steps)
        super().__init__(seed)

    @property
    def needs_expert_action(self) -> bool:
        return True

    def decide(self, ctx: DecisionContext) -> bool:
        if self._state.continue_takeover():
            return True
        if ctx.expert_action is None:
            raise ValueError(f"step {ctx.step}: the value-based model needs the expert's action")
        q_pi = float(self.q_ref(ctx.observation, ctx.policy_action))
        q_ref = float(self.q_ref(ctx.observation, ctx.expert_action))
        if not (math.isfinite(q_pi) and math.isfinite(q_ref)):
            raise ValueError(f"step {ctx.step}: Q^ref returned a non-finite value ({q_pi}, {q_ref})")
        worse = policy_is_worse(q_pi, q_ref, delta=self.delta, alpha=self.alpha)
        prob = self.beta if worse else 1.0 - self.beta
        if self._rng.random() < prob:
            return self._state.start(self.takeover_steps)
        return False

    def params(self) -> dict[str, Any]:
        return {
            "beta": self.beta,
            "delta": self.delta,
            "alpha": self.alpha,
            "takeover_steps": self.takeover_steps,
            "seed": self._seed,
        }


def value_based_paper(q_ref: QFunction, *, alpha: float = PAPER_ALPHA, seed: int = 0) -> ValueBased:
    """Paper variant: relative trigger (alpha 0.97), beta 0.95, decided every step."""
    return ValueBased(q_ref, beta=PAPER_BETA, alpha=alpha, takeover_steps=1, seed=seed)


def value_based_official(q_ref: QFunction, *, threshold: float, seed: int = 0) -> ValueBased:
    """Official-code variant: relative trigger, 0.95/0.05, 4-step takeovers."""
    return ValueBased(
        q_ref, beta=PAPER_BETA, alpha=threshold, takeover_steps=OFFICIAL_TAKEOVER_STEPS, seed=seed
    )


class TakeoverSignal(Protocol):
    """What a human input device implements (see robot/): is the person in control?"""

    def engaged(self) -> bool:
        """True while the operator is taking over (device touched / button held)."""


class ExternalTakeover(InterventionModel):
    """Defers the decision to a human input device implementing `TakeoverSignal`."""

    name = MODEL_HUMAN

    def __init__(self, signal: TakeoverSignal, device: str = "unknown"):
        self.signal = signal
        self.device = device

    def reset(self, seed: Optional[int] = None) -> None:
        pass

    def decide(self, ctx: DecisionContext) -> bool:
        return bool(self.signal.engaged())

    def params(self) -> dict[str, Any]:
        return {"device": self.device}


class NoIntervention(InterventionModel):
    """The policy always acts (evaluation rollouts, pure-policy data)."""

    name = MODEL_NONE

    def reset(self, seed: Optional[int] = None) -> None:
        pass

    def decide(self, ctx: DecisionContext) -> bool:
        return False

    def params(self) -> dict[str, Any]:
        return {}


def takeover_starts(intervention: np.ndarray) -> np.ndarray:
    """Mark the first step of each takeover: expert in control at t, not at t-1.

    A takeover at t = 0 is a start too (it is the first step of a takeover);
    whether it earns a reward is the relabel rule's business, not this one's.
    """
    intervention = np.asarray(intervention, dtype=bool)
    prev = np.concatenate([[False], intervention[:-1]])
    return intervention & ~prev


def canonical_model_name(name: str) -> str:
    """Today's spelling of a stored intervention-model name.

    Args:
      name: an `intervention_model` value read from an episode.

    Returns:
      ``name``, or its current spelling if it is an old alias
      (``"random_official"`` -> ``"random-official"``).
    """
    return MODEL_NAME_ALIASES.get(name, name)


def make_named_model(name: str, rate: float, *, takeover_steps: int = OFFICIAL_TAKEOVER_STEPS,
                     seed: int = 0) -> InterventionModel:
    """A model from its name alone: one of `NAMED_MODELS` (old aliases accepted).

    Args:
      name: "random" (`RandomTakeover`), "random-official" (`IIDRandom`) or "none".
      rate: target intervention rate in [0, 1) (unused by "none").
      takeover_steps: takeover length k of "random".
      seed: RNG seed.

    Returns:
      The model.

    Raises:
      ValueError: an unknown name (the message lists the names), a bad rate or length.
    """
    name = canonical_model_name(name)
    if name == MODEL_NONE:
        return NoIntervention()
    if name in (MODEL_RANDOM, MODEL_RANDOM_OFFICIAL):
        variant = "official" if name == MODEL_RANDOM_OFFICIAL else "paper"
        return make_random_model(rate, variant=variant, takeover_steps=takeover_steps, seed=seed)
    raise ValueError(f"intervention must be one of {NAMED_MODELS}, got {name!r}")


def make_random_model(rate: float, *, variant: str = "paper", takeover_steps: int = 4,
                      seed: int = 0) -> InterventionModel:
    """Build a random model by variant name: "paper" (`RandomTakeover`) or "official" (`IIDRandom`)."""
    if variant == "paper":
        return RandomTakeover(rate, takeover_steps=takeover_steps, seed=seed)
    if variant == "official":
        return IIDRandom(rate, seed=seed)
    raise ValueError(f"unknown random intervention variant {variant!r}; use 'paper' or 'official'")
