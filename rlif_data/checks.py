"""Data checks: silent misalignments that poison training, found before training does.

Each check is a pure function over one decoded episode's step arrays (the
layout of `rlif_data.episodes`) and returns `Finding`s naming the episode,
the step and what is wrong. `check_episode` runs them all; the dataset-level
checks (duplicated episodes, time limits stored as terminations) work on
what one pass over the episodes collected. `check_dataset` is the thin I/O
runner over a recording, a dataset directory, a registry reference, or a
D4RL HDF5 file (the one layout that stores both observations and next
observations, so the one where their off-by-one can be seen).

What is checked:

* ``structure``: ``is_first`` only at step 0, ``is_last`` only at the final
  step, ``is_terminal`` only on the final step, arrays of one length;
* ``non-finite``: NaN/inf in any float field (observations included);
* ``discount``: 0 only on the transition into a termination, 1 after a
  truncation, nothing outside [0, 1];
* ``truncation-as-termination``: an episode that ends at its time limit
  (the registered env's, the one given, or a length at which other episodes
  of the dataset are truncated) but is stored as a termination: learners
  then do not bootstrap through a time limit (D4RL issues #162, #189);
* ``takeover-start``, ``rlif-reward``, ``include-mask``: intervention flags
  and what a view made of them (`rlif_data.relabel.rlif_rewards`) disagree;
* ``action-bounds``: actions outside the env's action space (bounds from the
  episode's registered env id; other ids are skipped with a note);
* ``action-alignment``: `action` equals `policy_action` / `expert_action`
  of the neighbouring step rather than its own (a writer one step off);
* ``next-observation``: D4RL files: ``next_observations[i]`` is not
  ``observations[i + 1]`` inside an episode (and says if it is shifted);
* ``constant-episode``, ``duplicate-episode``: a frozen sensor or camera,
  the same episode written twice;
* ``timestamp-backwards``, ``missed-deadline``: step times that decrease, or
  gaps longer than the control period allows (when the rate is known);
* ``invalid-mark``: the dataset's ``invalid_episodes.jsonl`` names an episode
  it does not hold (a warning), or is malformed (an error); see
  `rlif_data.invalid`. Such findings concern no episode: their index is -1.

Errors are data that is wrong; warnings are data that is probably wrong
(a real termination can coincide with a time limit). `Report.failed` says
whether a report should fail a command or job: errors do, warnings only
under ``strict``.

Why this module is over ~450 lines: each check is a small pure function over
one episode, and they only make sense read together (one finding format, one
severity rule, one report); the runner over a dataset is the thin rest.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
# collections.abc's Mapping, not typing's: isinstance against typing.Mapping
# costs 3x as much, and jobs check every episode they write.
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import xxhash

from rlif_data import errors
from rlif_data import intervention as iv
from rlif_data import relabel as rl
from rlif_data import schema as sc

ERROR = "error"
WARNING = "warning"

# Finding kinds (stable names: they appear in JSON reports).
STRUCTURE = "structure"
NON_FINITE = "non-finite"
DISCOUNT = "discount"
TRUNCATION_AS_TERMINATION = "truncation-as-termination"
TAKEOVER_START = "takeover-start"
RLIF_REWARD = "rlif-reward"
INCLUDE_MASK = "include-mask"
ACTION_BOUNDS = "action-bounds"
ACTION_ALIGNMENT = "action-alignment"
NEXT_OBSERVATION = "next-observation"
CONSTANT_EPISODE = "constant-episode"
DUPLICATE_EPISODE = "duplicate-episode"
TIMESTAMP_BACKWARDS = "timestamp-backwards"
MISSED_DEADLINE = "missed-deadline"
INVALID_MARK = "invalid-mark"
KINDS = (STRUCTURE, NON_FINITE, DISCOUNT, TRUNCATION_AS_TERMINATION, TAKEOVER_START, RLIF_REWARD,
         INCLUDE_MASK, ACTION_BOUNDS, ACTION_ALIGNMENT, NEXT_OBSERVATION, CONSTANT_EPISODE,
         DUPLICATE_EPISODE, TIMESTAMP_BACKWARDS, MISSED_DEADLINE, INVALID_MARK)
NO_EPISODE = -1  # `Finding.episode` of a finding about the dataset's files, not an episode

# Per episode and kind, the steps named one by one; the rest are counted in
# one more finding, so a broken million-step dataset gives a readable report.
STEPS_NAMED = 5
BOUNDS_TOLERANCE = 1e-5  # float32 round-off of a clipped action
DEFAULT_DEADLINE_SLACK = 0.5  # a gap over 1.5 control periods missed a deadline
REPORT_VERSION = 1


class EmptyDatasetError(errors.RlifDataError, ValueError):
    """A dataset to check holds no episodes."""


class CheckFailedError(errors.RlifDataError):
    """A check found errors (with ``strict``: any finding) in data a job wrote."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing wrong with the data.

    Attributes:
      episode: index of the episode in the dataset (commit order).
      step: the step (RLDS index t: o_t and what followed it), None when the
        finding concerns the whole episode. For D4RL files: the file row.
      kind: one of `KINDS`.
      message: what is wrong, in one line.
      severity: `ERROR` (the data is wrong) or `WARNING` (probably wrong).
      episode_id: the episode's stored id ("" if none).
    """

    episode: int
    step: Optional[int]
    kind: str
    message: str
    severity: str = ERROR
    episode_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """The finding as stored in a JSON report."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Report:
    """What `check_dataset` found.

    Attributes:
      dataset: the path checked.
      episodes: episodes read.
      steps: transitions read (steps minus each episode's final step).
      findings: every finding, by episode then step.
      notes: checks that were skipped and why (not findings).
      view: the dataset's relabel view (None: raw or ingested data).
      seconds: wall time of the check.
      processes: processes that checked the episodes (1: the caller's alone;
        not part of the JSON report, which is the same either way).
    """

    dataset: str
    episodes: int = 0
    steps: int = 0
    findings: list[Finding] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    view: Optional[str] = None
    seconds: float = 0.0
    processes: int = 1

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity `ERROR`."""
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        """Findings of severity `WARNING`."""
        return [f for f in self.findings if f.severity == WARNING]

    def failed(self, strict: bool = False) -> bool:
        """Whether the data fails the check: any error, or (strict) any finding at all."""
        return bool(self.findings) if strict else bool(self.errors)

    def counts(self) -> dict[str, int]:
        """Findings per kind, kinds without findings left out."""
        out: dict[str, int] = {}
        for finding in self.findings:
            out[finding.kind] = out.get(finding.kind, 0) + 1
        return out

    def summary(self) -> str:
        """One line: episodes, steps, errors and warnings by kind."""
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts().items()))
        return (f"{self.dataset}: {self.episodes} episodes, {self.steps} steps checked: "
                f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
                + (f" ({counts})" if counts else ""))

    def to_json(self) -> dict[str, Any]:
        """The report as written by ``rlif-data check --json``."""
        return {
            "report_version": REPORT_VERSION,
            "dataset": self.dataset,
            "view": self.view,
            "episodes": self.episodes,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "counts": self.counts(),
            "findings": [f.to_json() for f in self.findings],
            "notes": list(self.notes),
        }


@dataclasses.dataclass(frozen=True)
class CheckContext:
    """What the per-episode checks need besides the episode.

    Attributes:
      view: the dataset's relabel view (`rlif_data.lineage.dataset_view`).
      action_low, action_high: the env's action bounds, None to skip.
      control_period_us: the control period in microseconds, None when the
        rate is unknown (deadlines are then not checked).
      deadline_slack: a gap longer than (1 + slack) periods misses a deadline.
    """

    view: Optional[str] = None
    action_low: Optional[np.ndarray] = None
    action_high: Optional[np.ndarray] = None
    control_period_us: Optional[float] = None
    deadline_slack: float = DEFAULT_DEADLINE_SLACK


# ---------------------------------------------------------------------------
# Pure helpers.
# ---------------------------------------------------------------------------


def _per_step(episode: int, steps: Iterable[int], kind: str, describe: Callable[[int], str],
              severity: str = ERROR, episode_id: str = "") -> list[Finding]:
    """One finding per step for the first `STEPS_NAMED` steps, then one counting the rest."""
    steps = [int(s) for s in steps]
    out = [Finding(episode, s, kind, describe(s), severity, episode_id)
           for s in steps[:STEPS_NAMED]]
    rest = steps[STEPS_NAMED:]
    if rest:
        out.append(Finding(episode, rest[0], kind,
                           f"{len(rest)} more step(s) like these (steps {rest[0]}..{rest[-1]})",
                           severity, episode_id))
    return out


def _length(steps: Mapping[str, Any]) -> int:
    """Number of transitions T (the final step holds only the last observation)."""
    return len(steps[sc.IS_FIRST]) - 1


def _observation_leaves(observation: Any) -> dict[str, np.ndarray]:
    if isinstance(observation, np.ndarray):
        return {sc.OBSERVATION: observation}
    if isinstance(observation, Mapping):
        return {f"{sc.OBSERVATION}[{k!r}]": np.asarray(v) for k, v in observation.items()}
    return {sc.OBSERVATION: np.asarray(observation)}


def _fmt(values: np.ndarray) -> str:
    return np.array2string(np.asarray(values), precision=4, separator=", ", threshold=8)


# ---------------------------------------------------------------------------
# Per-episode checks (pure).
# ---------------------------------------------------------------------------


def structure_findings(steps: Mapping[str, Any], episode: int = 0,
                       episode_id: str = "") -> list[Finding]:
    """``is_first`` / ``is_last`` / ``is_terminal`` placement and array lengths.

    Args:
      steps: the episode's `STEPS` dict ([T+1] per field).
      episode, episode_id: for the findings.

    Returns:
      Findings of kind `STRUCTURE`.
    """
    return _structure_findings(steps, _observation_leaves(steps[sc.OBSERVATION]), episode,
                               episode_id)


def _structure_findings(steps: Mapping[str, Any], leaves: Mapping[str, np.ndarray], episode: int,
                        episode_id: str) -> list[Finding]:
    """`structure_findings` with the observation's leaves (`_observation_leaves`) given."""
    out: list[Finding] = []
    n = len(steps[sc.IS_FIRST])
    if n > 1 and _lengths_agree(steps, leaves, n):
        first = np.asarray(steps[sc.IS_FIRST], bool)
        last = np.asarray(steps[sc.IS_LAST], bool)
        terminal = np.asarray(steps[sc.IS_TERMINAL], bool)
        if _flags_placed(first, last, terminal):
            return []  # the usual case: no dict of lengths, three counts for the flags
    lengths = {k: len(v) for k, v in steps.items() if k not in (sc.OBSERVATION, sc.INFOS)}
    lengths.update({k: len(v) for k, v in leaves.items()})
    # Extra step fields (a dict of arrays, `schema.INFOS`): one row per step too.
    lengths.update({f"{sc.INFOS}[{k!r}]": len(v) for k, v in (steps.get(sc.INFOS) or {}).items()})
    odd = {k: v for k, v in lengths.items() if v != n}
    if odd:
        return [Finding(episode, None, STRUCTURE,
                        f"step fields differ in length: {n} {sc.IS_FIRST} values, but {odd}",
                        ERROR, episode_id)]
    if n == 0:
        return [Finding(episode, None, STRUCTURE, "episode has no steps at all", ERROR,
                        episode_id)]
    first = np.asarray(steps[sc.IS_FIRST], bool)
    last = np.asarray(steps[sc.IS_LAST], bool)
    terminal = np.asarray(steps[sc.IS_TERMINAL], bool)
    if not first[0]:
        out.append(Finding(episode, 0, STRUCTURE, f"step 0 is not marked {sc.IS_FIRST}", ERROR,
                           episode_id))
    out += _per_step(episode, np.flatnonzero(first[1:]) + 1, STRUCTURE,
                     lambda s: f"{sc.IS_FIRST} set inside the episode (only step 0 may be first)",
                     ERROR, episode_id)
    if not last[-1]:
        out.append(Finding(episode, n - 1, STRUCTURE,
                           f"the final step {n - 1} is not marked {sc.IS_LAST}", ERROR, episode_id))
    out += _per_step(episode, np.flatnonzero(last[:-1]), STRUCTURE,
                     lambda s: f"{sc.IS_LAST} set before the final step {n - 1} "
                               "(two episodes written as one?)", ERROR, episode_id)
    out += _per_step(episode, np.flatnonzero(terminal[:-1]), STRUCTURE,
                     lambda s: f"{sc.IS_TERMINAL} set before the final step {n - 1}",
                     ERROR, episode_id)
    if n == 1:
        out.append(Finding(episode, None, STRUCTURE,
                           "episode has no transition (only a final observation)", WARNING,
                           episode_id))
    return out


def _lengths_agree(steps: Mapping[str, Any], leaves: Mapping[str, np.ndarray], n: int) -> bool:
    """Whether every step field, observation leaf and extra field has `n` rows."""
    for key, values in steps.items():
        if key == sc.INFOS or key == sc.OBSERVATION:
            continue
        if len(values) != n:
            return False
    infos = steps.get(sc.INFOS) or {}
    return all(len(v) == n for v in leaves.values()) and all(len(v) == n for v in infos.values())


def _flags_placed(first: np.ndarray, last: np.ndarray, terminal: np.ndarray) -> bool:
    """Whether [n] flags (n >= 2) are first only at step 0, last only at the final step and
    terminal nowhere before it: exactly when `structure_findings` finds nothing in them."""
    if first.ndim != 1 or last.ndim != 1 or terminal.ndim != 1:
        return False
    return bool(first[0] and last[-1] and np.count_nonzero(first) == 1
                and np.count_nonzero(last) == 1 and not np.count_nonzero(terminal[:-1]))


def non_finite_findings(steps: Mapping[str, Any], episode: int = 0,
                        episode_id: str = "") -> list[Finding]:
    """NaN/inf in any float field, observations included (the final step too).

    Returns:
      Findings of kind `NON_FINITE`, up to `STEPS_NAMED` steps per field.
    """
    return _non_finite_findings(steps, _observation_leaves(steps[sc.OBSERVATION]), episode,
                                episode_id)


def _non_finite_findings(steps: Mapping[str, Any], leaves: Mapping[str, np.ndarray],
                         episode: int, episode_id: str) -> list[Finding]:
    """`non_finite_findings` with the observation's leaves given."""
    if all(_no_non_finite(v) for k, v in steps.items() if k != sc.OBSERVATION) \
            and all(_no_non_finite(v) for v in leaves.values()):
        return []  # the usual case (jobs check every episode they write)
    fields = {k: np.asarray(v) for k, v in steps.items() if k != sc.OBSERVATION}
    fields.update(leaves)
    out: list[Finding] = []
    for name, values in fields.items():
        if values.dtype.kind != "f" or values.ndim == 0:
            continue
        if np.isfinite(values).all():
            continue
        finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
        bad = np.flatnonzero(~finite)
        out += _per_step(episode, bad, NON_FINITE,
                         lambda s, n=name, v=values: f"{n} holds NaN/inf: {_fmt(v[s])}",
                         ERROR, episode_id)
    return out


def _no_non_finite(field: Any) -> bool:
    """Whether `non_finite_findings` finds nothing in one field: not a float array, or finite.

    A finite sum of squares holds no NaN/inf (one BLAS call, half the time of
    ``isfinite().all()``); when it is not (NaN, inf, or squares that overflow),
    the exact test decides.
    """
    values = np.asarray(field)
    if values.dtype.kind != "f" or values.ndim == 0:
        return True
    flat = values.reshape(-1)
    return math.isfinite(np.dot(flat, flat)) or bool(np.isfinite(values).all())


def discount_findings(steps: Mapping[str, Any], episode: int = 0,
                      episode_id: str = "") -> list[Finding]:
    """Discounts against the termination flag.

    A termination has discount 0 on its last transition; a truncation keeps 1
    (bootstrap); no transition before the last may have discount 0, and none
    lies outside [0, 1].

    Returns:
      Findings of kind `DISCOUNT`.
    """
    t = _length(steps)
    if t <= 0:
        return []
    stored = np.asarray(steps[sc.DISCOUNT])
    terminated = bool(np.asarray(steps[sc.IS_TERMINAL])[-1])
    if _discounts_fine(stored, t, terminated):
        return []
    discount = np.asarray(stored, np.float64)[:t]
    out = _per_step(episode, np.flatnonzero((discount < 0) | (discount > 1)), DISCOUNT,
                    lambda s: f"discount {discount[s]:g} outside [0, 1]", ERROR, episode_id)
    out += _per_step(episode, np.flatnonzero(discount[:-1] == 0), DISCOUNT,
                     lambda s: "discount 0 before the last transition: a termination inside "
                               "the episode", ERROR, episode_id)
    if terminated and discount[-1] != 0:
        out.append(Finding(episode, t - 1, DISCOUNT,
                           f"the episode is terminal but its last transition has discount "
                           f"{discount[-1]:g} (a termination has 0)", ERROR, episode_id))
    if not terminated and discount[-1] == 0:
        out.append(Finding(episode, t - 1, DISCOUNT,
                           "the last transition has discount 0 but the episode is not terminal "
                           f"({sc.IS_TERMINAL} False): a truncation keeps 1", ERROR, episode_id))
    return out


def _discounts_fine(discount: np.ndarray, t: int, terminated: bool) -> bool:
    """Whether `discount_findings` surely finds nothing: two reductions instead of four index
    lists. False (NaN, other dtypes or shapes, or a finding) leaves it to the exact test."""
    # float32 and float64 compare with 0 and 1 as their float64 copy would.
    if discount.dtype not in _FLOAT32_64 or discount.ndim != 1 or len(discount) < t:
        return False
    body = discount[:t - 1]
    # Python floats: comparing NumPy scalars costs more than the reductions.
    if t > 1 and not (float(body.min()) > 0 and float(body.max()) <= 1):
        return False
    final = float(discount[t - 1])
    return 0 <= final <= 1 and (final == 0) == terminated


_FLOAT32_64 = (np.dtype(np.float32), np.dtype(np.float64))


def takeover_start_findings(steps: Mapping[str, Any], episode: int = 0,
                            episode_id: str = "") -> list[Finding]:
    """``intervention_start`` against the ``intervention`` flags (first step of each takeover).

    Returns:
      Findings of kind `TAKEOVER_START`.
    """
    t = _length(steps)
    if t <= 0 or sc.INTERVENTION not in steps or sc.INTERVENTION_START not in steps:
        return []
    flags = np.asarray(steps[sc.INTERVENTION], bool)[:t]
    have = np.asarray(steps[sc.INTERVENTION_START], bool)[:t]
    if _starts_follow(flags, have, t):
        return []  # the usual case, without the index list
    want = iv.takeover_starts(flags)
    return _per_step(episode, np.flatnonzero(want != have), TAKEOVER_START,
                     lambda s: f"{sc.INTERVENTION_START} is {bool(have[s])} but the flags say a "
                               f"takeover {'starts' if want[s] else 'does not start'} here",
                     ERROR, episode_id)


def _starts_follow(flags: np.ndarray, have: np.ndarray, t: int) -> bool:
    """Whether [t] start flags `have` are `iv.takeover_starts(flags)`: two passes, no copies.

    For bools, ``a < b`` is "b and not a": a takeover starts at s > 0 when
    flags[s] and not flags[s - 1]; at step 0 when flags[0].
    """
    return (flags.shape == have.shape == (t,) and bool(have[0] == flags[0])
            and not np.not_equal(np.less(flags[:-1], flags[1:]), have[1:]).any())


def view_findings(steps: Mapping[str, Any], view: Optional[str], episode: int = 0,
                  episode_id: str = "") -> list[Finding]:
    """Rewards and the include mask of a relabelled view against the intervention flags.

    RLIF views (`rlif_data.relabel.RULES`) must hold exactly
    `rlif_data.relabel.rlif_rewards` of their flags; ``hg-dagger`` includes
    the expert-controlled steps, ``dagger`` the steps with an expert label
    (whose action is that label). Raw data (view None) is not checked here.

    Returns:
      Findings of kinds `RLIF_REWARD` and `INCLUDE_MASK`.
    """
    t = _length(steps)
    if view is None or t <= 0:
        return []
    flags = np.asarray(steps[sc.INTERVENTION], bool)[:t]
    include = np.asarray(steps[sc.INCLUDE], bool)[:t] if sc.INCLUDE in steps else None
    out: list[Finding] = []
    if include is None:
        return [Finding(episode, None, INCLUDE_MASK,
                        f"the dataset's view is {view!r} but its steps carry no {sc.INCLUDE} "
                        "mask", ERROR, episode_id)]
    if view in rl.RULES:
        want_reward, want_include = rl.rlif_rewards(flags, rl.RULES[view])
        reward = np.asarray(steps[sc.REWARD], np.float32)[:t]
        if _same(reward, want_reward) and _same(include, want_include):
            return []  # the usual case, without the index lists
        out += _per_step(
            episode, np.flatnonzero(reward != want_reward), RLIF_REWARD,
            lambda s: f"reward {reward[s]:g}, the {view!r} rule gives {want_reward[s]:g} "
                      f"(intervention here {bool(flags[s])}, next step "
                      f"{bool(flags[s + 1]) if s + 1 < t else '-'})", ERROR, episode_id)
    elif view == rl.HG_DAGGER:
        want_include = flags
    elif view == rl.DAGGER:
        want_include = np.asarray(steps[sc.HAS_EXPERT_ACTION], bool)[:t]
        action = np.asarray(steps[sc.ACTION], np.float32)[:t]
        label = np.asarray(steps[sc.EXPERT_ACTION], np.float32)[:t]
        if _same(include, want_include) and action.ndim == 2 and action.shape == label.shape \
                and want_include.shape == action.shape[:1] \
                and _masked_rows_equal(action, label, want_include):
            return []  # the usual case: no labelled step differs (any(axis=-1) is slow)
        wrong = np.flatnonzero(want_include & np.any(action != label, axis=-1))
        out += _per_step(episode, wrong, INCLUDE_MASK,
                         lambda s: f"dagger view: action {_fmt(action[s])} is not the expert "
                                   f"label {_fmt(label[s])}", ERROR, episode_id)
    else:
        return [Finding(episode, None, INCLUDE_MASK, f"unknown view {view!r}; known: "
                        f"{list(rl.VIEWS)}", ERROR, episode_id)]
    out += _per_step(episode, np.flatnonzero(include != want_include), INCLUDE_MASK,
                     lambda s: f"{sc.INCLUDE} is {bool(include[s])}, the {view!r} view gives "
                               f"{bool(want_include[s])}", ERROR, episode_id)
    return out


def _same(values: np.ndarray, wanted: np.ndarray) -> bool:
    """Whether two arrays of one shape hold equal values (NaN differs); one pass, no index list."""
    return values.shape == wanted.shape and not np.not_equal(values, wanted).any()


def action_bound_findings(steps: Mapping[str, Any], low: np.ndarray, high: np.ndarray,
                          episode: int = 0, episode_id: str = "",
                          env_id: str = "") -> list[Finding]:
    """Applied actions outside the env's action space [low, high] (float32 round-off allowed).

    Returns:
      Findings of kind `ACTION_BOUNDS`.
    """
    t = _length(steps)
    stored = np.asarray(steps[sc.ACTION])
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if t <= 0:
        return []
    if stored.shape[1:] != low.shape:
        return [Finding(episode, None, ACTION_BOUNDS,
                        f"actions have shape {stored.shape[1:]}, {env_id or 'the env'} takes "
                        f"{low.shape}", ERROR, episode_id)]
    if _inside_bounds(stored[:t], low, high):
        return []  # the usual case, without the float64 pass (30 -> 8 us per 1000 steps)
    action = stored.astype(np.float64)[:t]
    outside = (action < low - BOUNDS_TOLERANCE) | (action > high + BOUNDS_TOLERANCE)
    return _per_step(episode, np.flatnonzero(outside.any(axis=1)), ACTION_BOUNDS,
                     lambda s: f"action {_fmt(action[s])} outside {env_id or 'the'} action "
                               f"space [{_fmt(low)}, {_fmt(high)}]", ERROR, episode_id)


def _inside_bounds(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> bool:
    """Whether `action` ([T, D]) surely lies within [low, high] (tolerance included).

    A float32 comparison against float32 limits rounded inwards: True only when
    every value passes the float64 test too; False (NaN, values near or past a
    limit, other dtypes) leaves the decision to the exact float64 pass.
    """
    if action.dtype != np.float32:
        return False
    key = (low.tobytes(), high.tobytes(), low.shape)
    limits = _FLOAT32_LIMITS.get(key)
    if limits is None:
        limits = _FLOAT32_LIMITS[key] = _float32_limits(low, high)
    lo32, hi32, lo_all, hi_all = limits
    if action.size and action.min() >= lo_all and action.max() <= hi_all:
        return True  # within the tightest limit of all dimensions: two contiguous reductions
    return bool((action >= lo32).all() and (action <= hi32).all())


_FLOAT32_LIMITS: dict = {}  # (low, high) bytes -> `_float32_limits` (one env: one entry)


def _float32_limits(low: np.ndarray, high: np.ndarray) -> tuple:
    """float32 limits rounded inwards of [low - tol, high + tol], and their tightest values."""
    lo = low - BOUNDS_TOLERANCE
    hi = high + BOUNDS_TOLERANCE
    with np.errstate(over="ignore"):
        lo32 = lo.astype(np.float32)
        hi32 = hi.astype(np.float32)
    # Rounded inwards: x >= lo32 >= lo, so x is not below lo in float64 either.
    lo32 = np.where(lo32.astype(np.float64) < lo, np.nextafter(lo32, np.float32(np.inf)), lo32)
    hi32 = np.where(hi32.astype(np.float64) > hi, np.nextafter(hi32, np.float32(-np.inf)), hi32)
    if lo32.size == 0:
        return lo32, hi32, np.float32(-np.inf), np.float32(np.inf)
    return lo32, hi32, lo32.max(), hi32.min()


def _rows_equal(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """[N] bool: row i of `values` equals row i of `reference` exactly ([N, D] arrays).

    Column by column: for a few columns, twice as fast as ``np.all(axis=1)``.
    """
    equal = values == reference
    if equal.ndim != 2:
        return equal.reshape(len(equal), -1).all(axis=1)
    if equal.shape[1] == 0:
        return np.ones(len(equal), bool)
    out = equal[:, 0].copy()
    for column in range(1, equal.shape[1]):
        out &= equal[:, column]
    return out


def _masked_rows_equal(values: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> bool:
    """Whether every row of `values` that `mask` selects equals that row of `reference`.

    The same answer as counting `_rows_equal` on the mask, in a third of the
    time: one comparison, the mask applied to its transpose (a [D, T] & [T]
    broadcast along rows: SIMD, unlike [T, D] & [T, 1] or ``compress``), one ``any``.
    """
    if values.ndim != 2 or values.shape != reference.shape or mask.shape != values.shape[:1]:
        return bool(np.count_nonzero(_rows_equal(values, reference) & mask)
                    == np.count_nonzero(mask))
    return not np.logical_and((values != reference).T, mask, order="C").any()


def _shifted_matches(values: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> tuple:
    """(same-step, one-back, one-ahead) exact matches of `values` to `reference` on `mask`."""
    same = np.count_nonzero(_rows_equal(values, reference) & mask)
    back = np.count_nonzero(_rows_equal(values[1:], reference[:-1]) & mask[1:])
    ahead = np.count_nonzero(_rows_equal(values[:-1], reference[1:]) & mask[:-1])
    return int(same), int(back), int(ahead)


_POLICY = int(sc.Source.POLICY)


def action_alignment_findings(steps: Mapping[str, Any], episode: int = 0,
                              episode_id: str = "", min_steps: int = 3) -> list[Finding]:
    """`action` one step off the `policy_action` / `expert_action` it was taken from.

    Where the learner acted, `action` is its proposal (clipped at most);
    where the expert did, the expert's action. A writer that stores one of
    them a step late or early makes `action` match the neighbouring step's
    proposal instead. Flagged when such shifted matches outnumber same-step
    matches and cover at least half the steps (so clipping and unrelated
    values do not trigger it).

    Returns:
      Findings of kind `ACTION_ALIGNMENT` (at most one per source).
    """
    t = _length(steps)
    if t < min_steps or sc.POLICY_ACTION not in steps:
        return []
    action = np.asarray(steps[sc.ACTION], np.float32)[:t]
    flags = np.asarray(steps[sc.INTERVENTION], bool)[:t]
    source = np.asarray(steps[sc.SOURCE])[:t]
    checks = [(sc.POLICY_ACTION, ~flags & (source == _POLICY))]
    if sc.HAS_EXPERT_ACTION in steps:
        checks.append((sc.EXPERT_ACTION, flags & np.asarray(steps[sc.HAS_EXPERT_ACTION],
                                                            bool)[:t]))
    out = []
    for field, mask in checks:
        n = np.count_nonzero(mask)
        if n < min_steps:
            continue
        reference = np.asarray(steps[field], np.float32)[:t]
        if _masked_rows_equal(action, reference, mask):
            continue  # every step matches its own: no shift can match more (the usual case)
        same, back, ahead = _shifted_matches(action, reference, mask)
        shifted, where = max((back, "the previous"), (ahead, "the next"))
        if shifted > same and shifted * 2 >= n:
            first = int(np.flatnonzero(mask)[0])
            out.append(Finding(episode, first, ACTION_ALIGNMENT,
                               f"{sc.ACTION} equals {where} step's {field} at {shifted} of {n} "
                               f"steps (its own at {same}): the two are stored one step apart",
                               ERROR, episode_id))
    return out


def constant_findings(steps: Mapping[str, Any], episode: int = 0,
                      episode_id: str = "") -> list[Finding]:
    """Observation entries that never change over an episode of 2+ transitions.

    Returns:
      `WARNING` findings of kind `CONSTANT_EPISODE`, one per frozen entry.
    """
    if _length(steps) < 2:
        return []
    return _constant_findings(_observation_leaves(steps[sc.OBSERVATION]), episode, episode_id)


def _constant_findings(leaves: Mapping[str, np.ndarray], episode: int,
                       episode_id: str) -> list[Finding]:
    """`constant_findings` of an episode of 2+ transitions, the observation's leaves given."""
    out = []
    for name, values in leaves.items():
        # Rows 0 and 1 differ in the usual case: no pass over the whole episode.
        if values.size and (len(values) < 2 or _all(values[1] == values[0])) \
                and _all(values == values[:1]):
            out.append(Finding(episode, None, CONSTANT_EPISODE,
                               f"{name} is the same at all {len(values)} steps (a frozen sensor "
                               "or camera?)", WARNING, episode_id))
    return out


def _all(equal: Any) -> bool:
    """``np.all(equal)``, without its Python-level wrapper for arrays and NumPy scalars."""
    if isinstance(equal, (np.ndarray, np.generic)):
        return bool(equal.all())
    return bool(np.all(equal))


def timestamp_findings(steps: Mapping[str, Any], control_period_us: Optional[float] = None,
                       deadline_slack: float = DEFAULT_DEADLINE_SLACK, episode: int = 0,
                       episode_id: str = "") -> list[Finding]:
    """Step times that go backwards, and (rate known) gaps that missed a control deadline.

    Args:
      steps: the episode's steps; `TIMESTAMP_US` is checked over its T
        transition steps (the final step repeats the last time).
      control_period_us: the control period; None skips the deadline check.
      deadline_slack: a gap longer than (1 + slack) periods is a missed deadline.

    Returns:
      Findings of kind `TIMESTAMP_BACKWARDS` (errors) and `MISSED_DEADLINE` (warnings).
    """
    t = _length(steps)
    if sc.TIMESTAMP_US not in steps or t < 2:
        return []
    stamps = np.asarray(steps[sc.TIMESTAMP_US], np.int64)[:t]
    # np.diff of a 1-D array, without its Python wrapper.
    gaps = stamps[1:] - stamps[:-1] if stamps.ndim == 1 else np.diff(stamps)
    limit = control_period_us * (1.0 + deadline_slack) if control_period_us else None
    if _gaps_fine(gaps, limit):
        return []  # the usual case: two reductions, no index lists
    out = _per_step(episode, np.flatnonzero(gaps < 0) + 1, TIMESTAMP_BACKWARDS,
                    lambda s: f"{sc.TIMESTAMP_US} goes back {-gaps[s - 1] / 1e3:.3f} ms from "
                              f"step {s - 1}", ERROR, episode_id)
    if control_period_us:
        out += _per_step(episode, np.flatnonzero(gaps > limit) + 1, MISSED_DEADLINE,
                         lambda s: f"{gaps[s - 1] / 1e3:.1f} ms since step {s - 1}, the control "
                                   f"period is {control_period_us / 1e3:.1f} ms",
                         WARNING, episode_id)
    return out


def _gaps_fine(gaps: np.ndarray, limit: Optional[float]) -> bool:
    """Whether no gap is negative nor (limit given) longer than `limit`."""
    if gaps.ndim != 1 or not gaps.size:
        return gaps.ndim == 1
    # Python ints: cheaper than NumPy scalars, and exact (a gap NumPy's float64
    # would round to the limit then fails here and goes to the exact test).
    return int(gaps.min()) >= 0 and (limit is None or int(gaps.max()) <= limit)


def _nothing_to_report(steps: Mapping[str, Any], leaves: Mapping[str, np.ndarray],
                       context: CheckContext) -> bool:
    """Whether `check_episode` surely finds nothing: the checks' own fast tests, on arrays
    read once, without the checks' per-call setup (a tenth of a job's check).

    False (an unusual layout, a short episode, anything a test cannot clear)
    sends the episode through every check, which then gives the findings.
    """
    try:
        return _usual_and_clear(steps, leaves, context)
    except Exception:  # noqa: BLE001 -- the checks themselves then raise, or find, as they do
        return False


def _usual_and_clear(steps: Mapping[str, Any], leaves: Mapping[str, np.ndarray],
                     context: CheckContext) -> bool:
    """`_nothing_to_report` without its guard; may raise on unusual input.

    One test per check of `check_episode`, each true only where that check
    finds nothing; a check added there without its test here would be
    skipped for every episode this clears.
    """
    n = len(steps[sc.IS_FIRST])
    t = n - 1
    if t < 3 or not _lengths_agree(steps, leaves, n) or sc.INTERVENTION not in steps:
        return False
    terminal = np.asarray(steps[sc.IS_TERMINAL], bool)
    if not (_flags_placed(np.asarray(steps[sc.IS_FIRST], bool),
                          np.asarray(steps[sc.IS_LAST], bool), terminal)
            and all(_no_non_finite(v) for k, v in steps.items() if k != sc.OBSERVATION)
            and all(_no_non_finite(v) for v in leaves.values())
            and _discounts_fine(np.asarray(steps[sc.DISCOUNT]), t, bool(terminal[-1]))):
        return False
    flags = np.asarray(steps[sc.INTERVENTION], bool)[:t]
    if sc.INTERVENTION_START in steps and not _starts_follow(
            flags, np.asarray(steps[sc.INTERVENTION_START], bool)[:t], t):
        return False
    # The checks below clear a usual episode by their own fast tests.
    if view_findings(steps, context.view):
        return False
    if context.action_low is not None and action_bound_findings(steps, context.action_low,
                                                                context.action_high):
        return False
    if action_alignment_findings(steps) or _constant_findings(leaves, 0, ""):
        return False
    return not timestamp_findings(steps, context.control_period_us, context.deadline_slack)


def check_episode(episode: Mapping[str, Any], index: int = 0,
                  context: CheckContext = CheckContext()) -> list[Finding]:
    """Every per-episode check on one decoded episode. Pure.

    Args:
      episode: ``{STEPS: {field: [T+1, ...]}, <metadata>: value}``.
      index: the episode's index in its dataset.
      context: view, action bounds and control period.

    Returns:
      The findings, by check.
    """
    steps = episode[sc.STEPS]
    leaves = _observation_leaves(steps[sc.OBSERVATION])  # once, for the checks that read it
    # A new check below needs its clearing test in `_usual_and_clear` too: an episode that
    # test clears never reaches the checks below.
    if _nothing_to_report(steps, leaves, context):
        return []
    eid = str(episode.get(sc.EPISODE_ID, ""))
    out = _structure_findings(steps, leaves, index, eid)
    if any(f.severity == ERROR and f.step is None for f in out):
        return out  # lengths disagree: the other checks would index garbage
    out += _non_finite_findings(steps, leaves, index, eid)
    out += discount_findings(steps, index, eid)
    out += takeover_start_findings(steps, index, eid)
    out += view_findings(steps, context.view, index, eid)
    if context.action_low is not None:
        out += action_bound_findings(steps, context.action_low, context.action_high, index, eid,
                                     str(episode.get(sc.ENV_ID, "")))
    out += action_alignment_findings(steps, index, eid)
    if _length(steps) >= 2:
        out += _constant_findings(leaves, index, eid)
    out += timestamp_findings(steps, context.control_period_us, context.deadline_slack, index,
                              eid)
    return out


# ---------------------------------------------------------------------------
# Dataset-level checks (pure, over what one pass collected).
# ---------------------------------------------------------------------------


def episode_fingerprint(episode: Mapping[str, Any]) -> str:
    """A 128-bit content hash of an episode's observations and actions: equal for a duplicate.

    XXH3-128, not a cryptographic hash: it only finds copies within one
    report (nothing stores it across versions), and every job hashes every
    episode it writes (SHA-256 was a third of the per-episode check).

    Returns:
      32 hex digits.
    """
    steps = episode[sc.STEPS]
    digest = xxhash.xxh3_128()
    for name, values in sorted(_observation_leaves(steps[sc.OBSERVATION]).items()):
        digest.update(name.encode())
        digest.update(_bytes_of(values))
    digest.update(_bytes_of(np.asarray(steps[sc.ACTION], np.float32)))
    return digest.hexdigest()


def _bytes_of(values: np.ndarray) -> Any:
    """An array's bytes in C order (its buffer: no copy where the array already is C-ordered)."""
    values = np.ascontiguousarray(values)
    return values.tobytes() if values.dtype.hasobject else values


def duplicate_findings(fingerprints: Sequence[str],
                       episode_ids: Sequence[str] = ()) -> list[Finding]:
    """Episodes whose fingerprint equals an earlier one's.

    Returns:
      `WARNING` findings of kind `DUPLICATE_EPISODE`, naming the first copy.
    """
    seen: dict[str, int] = {}
    out = []
    for i, fp in enumerate(fingerprints):
        eid = episode_ids[i] if i < len(episode_ids) else ""
        if fp in seen:
            j = seen[fp]
            first_id = episode_ids[j] if j < len(episode_ids) else ""
            out.append(Finding(i, None, DUPLICATE_EPISODE,
                               f"same observations and actions as episode {j}"
                               + (f" ({first_id})" if first_id else ""), WARNING, eid))
        else:
            seen[fp] = i
    return out


def invalid_mark_findings(episode_ids: Sequence[str], marks: Sequence[Any],
                          path: str) -> list[Finding]:
    """Marks (`rlif_data.invalid.Mark`) that name an episode the dataset does not hold. Pure.

    Args:
      episode_ids: the dataset's episode ids.
      marks: its marks, read from `path`.
      path: the marks file, for messages.

    Returns:
      One warning per such mark: the episode it meant is not in the data
      (marked in another recording, or the id mistyped), so no job drops it.
    """
    ids = set(episode_ids)
    return [Finding(NO_EPISODE, None, INVALID_MARK,
                    f"{path}:{m.line}: marks episode {m.episode_id!r} invalid, but the dataset "
                    "holds no such episode", WARNING, m.episode_id)
            for m in marks if m.episode_id not in ids]


def _mark_findings(directory: str, episode_ids: Sequence[str]) -> list[Finding]:
    """The marks file's findings: unknown episodes, or the file's one error."""
    from rlif_data import invalid

    try:
        marks = invalid.read_marks(directory)
    except invalid.MarkFileError as exc:
        return [Finding(NO_EPISODE, None, INVALID_MARK, str(exc))]
    return invalid_mark_findings(episode_ids, marks, invalid.marks_path(directory))


def time_limits_seen(lengths: Sequence[int], terminal: Sequence[bool]) -> set[int]:
    """Lengths at which the dataset truncates episodes: the longest length, if some
    episode of that length is not terminal. Pure.

    A recording cut by ``--max-episode-steps 200`` truncates at 200; an
    episode of 200 steps stored as terminal then is suspicious.
    """
    if not lengths:
        return set()
    longest = max(lengths)
    truncated = any(n == longest and not d for n, d in zip(lengths, terminal))
    return {longest} if truncated and longest > 0 else set()


def truncation_findings(lengths: Sequence[int], terminal: Sequence[bool],
                        limits: Sequence[Optional[int]],
                        episode_ids: Sequence[str] = ()) -> list[Finding]:
    """Terminal episodes exactly as long as their time limit.

    Args:
      lengths: transitions per episode.
      terminal: whether each episode is stored as a termination.
      limits: each episode's known time limit(s) (an int, or None when unknown).
      episode_ids: for the findings.

    Returns:
      `WARNING` findings of kind `TRUNCATION_AS_TERMINATION` (a real
      termination can coincide with the limit, rarely for many episodes).
    """
    out = []
    for i, (n, done, limit) in enumerate(zip(lengths, terminal, limits)):
        if done and limit and n == limit:
            out.append(Finding(i, n - 1, TRUNCATION_AS_TERMINATION,
                               f"ends at the time limit ({limit} steps) but is stored as a "
                               "termination (discount 0): learners will not bootstrap through "
                               "a time limit; store it as a truncation (discount 1, is_terminal "
                               "False)", WARNING, episode_ids[i] if i < len(episode_ids) else ""))
    return out


def next_observation_findings(observations: np.ndarray, next_observations: np.ndarray,
                              spans: Sequence[tuple[int, int]],
                              atol: float = 1e-6) -> list[Finding]:
    """Flat tables (D4RL): ``next_observations[i]`` against ``observations[i + 1]``.

    Inside an episode (rows ``[start, end)``) row i's next observation is the
    next row's observation. When most rows disagree, says whether the column
    is shifted by one (it equals ``observations[i]`` or ``observations[i + 2]``).

    Args:
      observations, next_observations: [N, obs_dim].
      spans: (start, end) rows of each episode.
      atol: absolute tolerance of the comparison.

    Returns:
      Findings of kind `NEXT_OBSERVATION`; `step` is the file row.
    """
    obs = np.asarray(observations)
    nxt = np.asarray(next_observations)
    out: list[Finding] = []
    for index, (start, end) in enumerate(spans):
        if end - start < 2:
            continue
        rows = np.arange(start, end - 1)
        bad = ~np.all(np.isclose(nxt[rows], obs[rows + 1], atol=atol), axis=1)
        if not bad.any():
            continue
        hint = ""
        if np.all(np.isclose(nxt[rows], obs[rows], atol=atol)):
            hint = " (it repeats observations[i]: shifted one row back)"
        elif end - start >= 3 and np.all(np.isclose(nxt[start:end - 2], obs[start + 2:end],
                                                    atol=atol)):
            hint = " (it equals observations[i + 2]: shifted one row ahead)"
        out += _per_step(index, rows[bad], NEXT_OBSERVATION,
                         lambda r: f"next_observations[{r}] differs from observations[{r + 1}]"
                                   f"{hint}", ERROR)
    return out


# ---------------------------------------------------------------------------
# The runner (I/O).
# ---------------------------------------------------------------------------


def _env_info(env_id: str, cache: dict, notes: list[str]) -> tuple:
    """(action low, action high, max_episode_steps) of a registered env id; Nones if not."""
    if env_id in cache:
        return cache[env_id]
    info: tuple = (None, None, None)
    if not env_id:
        notes.append("action bounds not checked for episodes without an env id")
    else:
        import gymnasium as gym

        import rlif_data.envs  # noqa: F401  (registers the project's own ids)

        if env_id not in gym.registry:
            notes.append(f"action bounds not checked for env {env_id!r}: not a registered "
                         "Gymnasium id")
        else:
            try:
                env = gym.make(env_id)
                try:
                    space = env.action_space
                    info = (np.asarray(space.low, np.float64), np.asarray(space.high, np.float64),
                            gym.spec(env_id).max_episode_steps)
                finally:
                    env.close()
            except Exception as exc:  # an env whose extra package is missing: skip, say why
                notes.append(f"action bounds not checked for env {env_id!r}: cannot make it "
                             f"({type(exc).__name__}: {exc})")
    cache[env_id] = info
    return info


def env_info(env_id: str, cache: dict, notes: list[str]) -> tuple:
    """(action low, action high, max_episode_steps) of a registered env id; Nones if not.

    What `check_dataset` uses per episode, for runners that check episodes
    elsewhere (jobs check them on their workers: `pipelines.job_checks`).

    Args:
      env_id: the episode's env id ("" for none).
      cache: one entry per env id, kept by the caller between calls.
      notes: gets one line per id whose bounds cannot be checked, and why.
    """
    return _env_info(env_id, cache, notes)


def check_dataset(path: str, *, control_hz: Optional[float] = None,
                  deadline_slack: float = DEFAULT_DEADLINE_SLACK,
                  time_limit: Optional[int] = None, root: Optional[str] = None,
                  progress: Optional[Callable[[int, int], None]] = None,
                  workers: int = 0) -> Report:
    """Check every episode of a dataset.

    Args:
      path: a recording or dataset directory, a registry reference
        (``name@tag``, ``name:version``), or a D4RL ``.hdf5`` file.
      control_hz: the control rate the data was recorded at; None skips the
        deadline check (the rate is not stored with the data).
      deadline_slack: see `timestamp_findings`.
      time_limit: the episodes' time limit when known (else the registered
        env's, and any length at which the dataset truncates).
      root: registry root for references.
      progress: called as ``progress(done, total)`` as episodes are checked.
      workers: processes that check a recording's episodes, this one
        included: 1 checks in this process only, 0 picks by the data's size
        and the idle cores (`rlif_data.check_workers.check_recording`). The
        report is the same either way.

    Returns:
      The `Report`.

    Raises:
      EmptyDatasetError: the dataset holds no episodes.
      FileNotFoundError, CorruptRecordingError, FormatVersionError,
      D4RLFormatError: unreadable input.
      ValueError: a non-positive rate or time limit, a negative worker count.
    """
    if workers < 0:
        raise ValueError(f"workers must be 0 (auto) or more, got {workers}")
    if control_hz is not None and not control_hz > 0:
        raise ValueError(f"control rate must be positive, got {control_hz}")
    if time_limit is not None and time_limit <= 0:
        raise ValueError(f"time limit must be positive, got {time_limit}")
    t0 = time.perf_counter()
    if os.path.isfile(path):
        report = _check_d4rl_file(path, time_limit)
    else:
        report = _check_rlds(path, control_hz, deadline_slack, time_limit, root, progress,
                             workers)
    report.seconds = time.perf_counter() - t0
    return report


def _check_rlds(path: str, control_hz: Optional[float], deadline_slack: float,
                time_limit: Optional[int], root: Optional[str],
                progress: Optional[Callable[[int, int], None]], workers: int) -> Report:
    from rlif_data import check_workers
    from rlif_data.lineage import dataset_view
    from rlif_data.recording.reader import EpisodeReader
    from rlif_data.registry.store import resolve_dataset

    directory = resolve_dataset(path, root)
    # repair=False: a check must not change the data it looks at.
    with EpisodeReader(directory, repair=False) as reader:
        total = len(reader)
        if total == 0:
            raise EmptyDatasetError(f"{directory}: holds no episodes; nothing to check "
                                    "(record or ingest episodes first)")
        report = Report(dataset=directory, view=dataset_view(directory))
        task = EpisodeTask(report.view, 1e6 / control_hz if control_hz else None, deadline_slack)
        envs: dict = {}
        records, report.processes = check_workers.check_recording(reader, task, envs, workers,
                                                                  progress)
    return _dataset_report(report, records, envs, time_limit, task.control_period_us)


@dataclasses.dataclass(frozen=True)
class EpisodeTask:
    """What checking an episode of a dataset needs besides the episode and its env.

    Attributes:
      view: the dataset's relabel view.
      control_period_us: None when the rate is unknown.
      deadline_slack: see `timestamp_findings`.
    """

    view: Optional[str] = None
    control_period_us: Optional[float] = None
    deadline_slack: float = DEFAULT_DEADLINE_SLACK


def env_entry(env_id: str, envs: dict) -> tuple:
    """(low, high, max_episode_steps, notes) of an env id, looked up once per id into `envs`.

    Args:
      env_id: the episode's env id ("" for none).
      envs: ``{env id: entry}``, kept by the caller (worker processes get the
        driver's entries, so they make no env of their own).
    """
    if env_id not in envs:
        notes: list[str] = []
        low, high, limit = _env_info(env_id, {}, notes)
        envs[env_id] = (low, high, limit, notes)
    return envs[env_id]


def episode_record(episode: Mapping[str, Any], index: int, task: EpisodeTask,
                   envs: dict) -> dict[str, Any]:
    """One episode's findings and what the dataset-level checks need of it.

    Args:
      episode: the decoded episode.
      index: its index in the dataset.
      task: view and control period.
      envs: see `env_entry`.

    Returns:
      ``{"findings": [Finding], "length", "terminal", "id", "fingerprint", "env_id"}``.
    """
    env_id = str(episode.get(sc.ENV_ID, ""))
    low, high, _, _ = env_entry(env_id, envs)
    context = CheckContext(task.view, low, high, task.control_period_us, task.deadline_slack)
    steps = episode[sc.STEPS]
    return {"findings": check_episode(episode, index, context), "length": _length(steps),
            "terminal": bool(np.asarray(steps[sc.IS_TERMINAL])[-1]),
            "id": str(episode.get(sc.EPISODE_ID, "")),
            "fingerprint": episode_fingerprint(episode), "env_id": env_id}


def check_episodes(reader: Any, indices: Iterable[int], task: EpisodeTask, envs: dict,
                   progress: Optional[Callable[[int, int], None]] = None) -> list[dict[str, Any]]:
    """`episode_record` of each episode `indices` names, read from `reader` (an `EpisodeReader`).

    Raises:
      CorruptRecordingError, UnreadableShardError: an episode cannot be read.
    """
    out = []
    for i in indices:
        out.append(episode_record(reader[i], i, task, envs))
        if progress is not None:
            progress(i + 1, len(reader))
    return out


def _dataset_report(report: Report, records: Sequence[Mapping[str, Any]], envs: dict,
                    time_limit: Optional[int], period: Optional[float]) -> Report:
    """`report` completed from every episode's record (in episode order): dataset-level checks."""
    lengths, terminal, limits, ids, prints = [], [], [], [], []
    seen_envs: set = set()
    for record in records:
        report.findings += record["findings"]
        env_id = record["env_id"]
        if env_id not in seen_envs:  # an env's notes the first time an episode names it
            seen_envs.add(env_id)
            report.notes += envs[env_id][3]
        lengths.append(record["length"])
        terminal.append(record["terminal"])
        limits.append(time_limit or envs[env_id][2])
        ids.append(record["id"])
        prints.append(record["fingerprint"])
    if not time_limit:
        seen = time_limits_seen(lengths, terminal)
        limits = [limit or (next(iter(seen)) if seen else None) for limit in limits]
    report.findings += truncation_findings(lengths, terminal, limits, ids)
    report.findings += duplicate_findings(prints, ids)
    report.findings += _mark_findings(report.dataset, ids)
    report.findings.sort(key=lambda f: (f.episode, -1 if f.step is None else f.step))
    report.episodes = len(records)
    report.steps = int(sum(lengths))
    if report.view is None:
        report.notes.append("raw or ingested data (no relabel view): rewards are the "
                            "environment's, RLIF rewards not checked")
    if period is None and any(n > 1 for n in lengths):
        report.notes.append("control deadlines not checked: give the control rate "
                            "(--control-hz)")
    return report


def _check_d4rl_file(path: str, time_limit: Optional[int]) -> Report:
    """A D4RL HDF5 file: next-observation alignment, timeouts stored as terminals, NaN/inf."""
    from rlif_data.sources import d4rl_hdf5

    summary = d4rl_hdf5.inspect_d4rl(path)
    if summary["rows"] == 0:
        raise EmptyDatasetError(f"{path}: holds no rows; nothing to check")
    report = Report(dataset=os.path.abspath(path))
    with d4rl_hdf5.open_hdf5(path, d4rl_hdf5.D4RLFormatError) as handle:
        layout = d4rl_hdf5._read_layout(handle, path)  # noqa: SLF001 (same package's checks)
        spans = d4rl_hdf5.episode_boundaries(layout.terminals, layout.timeouts)
        obs = d4rl_hdf5.read_array(handle[d4rl_hdf5.OBSERVATIONS_KEY],
                                   d4rl_hdf5.OBSERVATIONS_KEY, path, d4rl_hdf5.D4RLFormatError)
        columns = {key: d4rl_hdf5.read_array(handle[key], key, path, d4rl_hdf5.D4RLFormatError)
                   for key in (d4rl_hdf5.ACTIONS_KEY, d4rl_hdf5.REWARDS_KEY)}
        nxt = (d4rl_hdf5.read_array(handle[d4rl_hdf5.NEXT_OBSERVATIONS_KEY],
                                    d4rl_hdf5.NEXT_OBSERVATIONS_KEY, path,
                                    d4rl_hdf5.D4RLFormatError)
               if layout.has_next_observations else None)
    columns[d4rl_hdf5.OBSERVATIONS_KEY] = obs
    if nxt is not None:
        columns[d4rl_hdf5.NEXT_OBSERVATIONS_KEY] = nxt
    episode_of = np.zeros(layout.rows, np.int64)
    for index, span in enumerate(spans):
        episode_of[span.start:span.end] = index
    for key, values in columns.items():
        values = np.asarray(values)
        if values.dtype.kind != "f":
            continue
        bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
        for row in bad[:STEPS_NAMED]:
            report.findings.append(Finding(int(episode_of[row]), int(row), NON_FINITE,
                                           f"'{key}' row {row} holds NaN/inf"))
        if len(bad) > STEPS_NAMED:
            report.findings.append(Finding(int(episode_of[bad[STEPS_NAMED]]),
                                           int(bad[STEPS_NAMED]), NON_FINITE,
                                           f"'{key}': {len(bad) - STEPS_NAMED} more row(s)"))
    if nxt is None:
        report.notes.append("no next_observations key: next-observation alignment not checked")
    else:
        report.findings += next_observation_findings(obs, nxt,
                                                     [(s.start, s.end) for s in spans])
    lengths = [s.num_rows for s in spans]
    terminal = [s.terminated for s in spans]
    limit = time_limit or _catalog_time_limit(path)
    if limit is None:
        report.notes.append("time limit unknown (give --time-limit): terminals at the limit not "
                            "checked beyond the file's own timeouts")
    limits = [limit or (max(lengths) if time_limits_seen(lengths, terminal) else None)
              for _ in spans]
    report.findings += truncation_findings(lengths, terminal, limits)
    report.findings.sort(key=lambda f: (f.episode, -1 if f.step is None else f.step))
    report.episodes = len(spans)
    report.steps = int(layout.rows)
    return report


def _catalog_time_limit(path: str) -> Optional[int]:
    """The D4RL catalogue's time limit for a file named like a catalogued dataset, else None."""
    from rlif_data.sources.d4rl_catalog import D4RL_DATASETS

    name = os.path.basename(path).rsplit(".", 1)[0].lower().replace("_", "-")
    for dataset in D4RL_DATASETS.values():
        if os.path.basename(dataset.url).rsplit(".", 1)[0].replace("_", "-") == name \
                or dataset.name == name:
            return dataset.max_episode_steps
    return None


def enforce(report: Report, strict: bool = False) -> Report:
    """Raise `CheckFailedError` if `report` fails (`Report.failed`); else return it.

    For jobs that check what they wrote: the message is one line with the
    summary, the first finding and the command that lists them all.

    Raises:
      CheckFailedError: errors found, or (strict) any finding.
    """
    if not report.failed(strict):
        return report
    first = (report.errors or report.findings)[0]
    where = f"episode {first.episode}" + (f" step {first.step}" if first.step is not None else "")
    raise CheckFailedError(
        f"{report.summary()}; first: {where}: {first.kind}: {first.message}; "
        f"list them all with `rlif-data check {report.dataset} --json FILE`")


def write_report(report: Report, path: str) -> str:
    """Write `report` as JSON to `path` (folders created); returns the path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report.to_json(), f, indent=2)
        f.write("\n")
    return path
