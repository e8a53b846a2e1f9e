"""Marking episodes invalid from an input device during a robot session.

The operator marks the episode being recorded, or the one before it,
invalid with a reason (`RolloutRecorder.mark_invalid`; the mark goes to the
recording's `invalid_episodes.jsonl`, the episode stays in the data):

* keyboard: ``x`` marks the current episode, ``z`` the previous one; ``1``..``9``
  choose which of the session's preset reasons the next mark carries (the
  first one until then). A key held down repeats; only a fresh press counts.
* SpaceMouse: both of the device's first two buttons (LEFT and RIGHT on the
  two-button models) held together for `CHORD_HOLD_S` seconds mark the
  current episode, once per hold. The buttons still count as a touch for
  the takeover logic (`robot.takeover`), which knows nothing of this: the
  operator is in control, with zero motion, while holding them.

Devices turn input into `MarkRequest` / `ReasonChoice` values
(`InputDevice.mark_requests`); the session's `MarkController` applies them
to the recorder. `key_request`, `chord_step` and `parse_reasons` are pure.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence, Union

from rlif_data import errors, invalid

MARK_CURRENT_KEY = "x"
MARK_PREVIOUS_KEY = "z"
REASON_KEYS = "123456789"
DEFAULT_REASON = "marked by operator"
CHORD_BUTTONS = (0, 1)
CHORD_HOLD_S = 1.0
CURRENT = "current"
PREVIOUS = "previous"


@dataclasses.dataclass(frozen=True)
class MarkRequest:
    """The operator asks to mark an episode invalid.

    Attributes:
      which: "current" (the episode being recorded) or "previous".
      how: `invalid.HOW_KEY` or `invalid.HOW_BUTTON`.
    """

    which: str
    how: str


@dataclasses.dataclass(frozen=True)
class ReasonChoice:
    """The operator picks preset reason `index` (0-based) for the next marks."""

    index: int


OperatorInput = Union[MarkRequest, ReasonChoice]


def parse_reasons(text: Optional[str]) -> tuple[str, ...]:
    """The preset reasons of ``--invalid-reasons "collision,dropped object"``. Pure.

    Args:
      text: comma-separated reasons; None or blank gives `DEFAULT_REASON` alone.

    Returns:
      One to nine reasons, stripped, in the order given.

    Raises:
      ValueError: an empty item, more than nine reasons (keys 1..9 pick
        them), a duplicate, or a reason the marks file refuses.
    """
    if text is None or not text.strip():
        return (DEFAULT_REASON,)
    reasons = tuple(item.strip() for item in text.split(","))
    if any(not r for r in reasons):
        raise ValueError(f"--invalid-reasons {text!r} has an empty reason; separate reasons "
                         "with single commas")
    if len(reasons) > len(REASON_KEYS):
        raise ValueError(f"--invalid-reasons has {len(reasons)} reasons; keys 1..9 choose "
                         f"among at most {len(REASON_KEYS)}")
    if len(set(reasons)) != len(reasons):
        raise ValueError(f"--invalid-reasons {text!r} lists a reason twice")
    for reason in reasons:
        invalid.validate_mark({invalid.EPISODE_ID: "-", invalid.REASON: reason,
                               invalid.MARKED_AT: "2000-01-01T00:00:00+00:00",
                               invalid.BY: "-", invalid.HOW: invalid.HOW_KEY},
                              f"--invalid-reasons {reason!r}")
    return reasons


def key_request(key: str) -> Optional[OperatorInput]:
    """What a fresh key press asks for, or None for any other key. Pure."""
    if key == MARK_CURRENT_KEY:
        return MarkRequest(CURRENT, invalid.HOW_KEY)
    if key == MARK_PREVIOUS_KEY:
        return MarkRequest(PREVIOUS, invalid.HOW_KEY)
    if len(key) == 1 and key in REASON_KEYS:
        return ReasonChoice(REASON_KEYS.index(key))
    return None


@dataclasses.dataclass(frozen=True)
class ChordState:
    """The button chord so far.

    Attributes:
      since: clock value when the chord's buttons were first seen held
        together (None: not held).
      fired: this hold already marked an episode (release to mark again).
    """

    since: Optional[float] = None
    fired: bool = False


def chord_step(state: ChordState, buttons: Sequence[bool], now: float,
               hold_s: float = CHORD_HOLD_S,
               chord: Sequence[int] = CHORD_BUTTONS) -> tuple[ChordState, bool]:
    """Advance the chord detector to time `now`. Pure.

    Args:
      state: the state so far.
      buttons: the device's button states now.
      now: the clock value, seconds.
      hold_s: how long the chord must be held.
      chord: the button indices held together (a device with fewer buttons never fires).

    Returns:
      (new state, True exactly once per hold, when it has lasted `hold_s`).
    """
    held = len(buttons) > max(chord) and all(buttons[i] for i in chord)
    if not held:
        return ChordState(), False
    since = now if state.since is None else state.since
    fire = not state.fired and now - since >= hold_s
    return ChordState(since, state.fired or fire), fire


class ChordWatcher:
    """A SpaceMouse-like device's chord detector and its queue of requests.

    Not thread-safe: the device calls it under its own lock.
    """

    def __init__(self, hold_s: float = CHORD_HOLD_S):
        self._hold_s = hold_s
        self._state = ChordState()
        self._pending: list[OperatorInput] = []

    def update(self, buttons: Sequence[bool], now: float) -> None:
        """Feed the current button states (released ones when disconnected)."""
        self._state, fired = chord_step(self._state, buttons, now, self._hold_s)
        if fired:
            self._pending.append(MarkRequest(CURRENT, invalid.HOW_BUTTON))

    def take(self) -> tuple[OperatorInput, ...]:
        """The requests since the last call."""
        out, self._pending = tuple(self._pending), []
        return out


@dataclasses.dataclass(frozen=True)
class MarkOutcome:
    """What became of one request.

    Attributes:
      text: one line for the operator (the live status) and the event log.
      mark: the mark made, or None (a reason chosen, or the mark refused).
      which: the request's "current" / "previous" (None for a reason choice).
      error: why it was refused ("" if it was not).
    """

    text: str
    mark: Optional[invalid.Mark] = None
    which: Optional[str] = None
    error: str = ""


class MarkController:
    """Applies operator requests to a recorder; refusals are reported, never raised.

    A session must not end because the operator pressed ``x`` twice or ``z``
    before any episode ended: those come back as a `MarkOutcome` with an error.

    Args:
      mark: ``mark(reason, which, how) -> Mark``, e.g. `RolloutRecorder.mark_invalid`.
      reasons: the preset reasons; the first is chosen until a key picks another.
    """

    def __init__(self, mark: Callable[..., invalid.Mark],
                 reasons: Sequence[str] = (DEFAULT_REASON,)):
        if not reasons:
            raise ValueError("give at least one preset reason")
        self._mark = mark
        self.reasons = tuple(reasons)
        self.chosen = 0
        self.marked: dict[str, invalid.Mark] = {}

    @property
    def reason(self) -> str:
        """The reason the next mark carries."""
        return self.reasons[self.chosen]

    def apply(self, request: OperatorInput) -> MarkOutcome:
        """Apply one request.

        Returns:
          The outcome; errors of the request itself (marked twice, nothing to
          mark, a reason key beyond the presets) are in it, not raised.
        """
        if isinstance(request, ReasonChoice):
            if request.index >= len(self.reasons):
                return MarkOutcome(f"no reason {request.index + 1}: the session has "
                                   f"{len(self.reasons)}", error="unknown reason")
            self.chosen = request.index
            return MarkOutcome(f"reason {request.index + 1}: {self.reason}")
        try:
            mark = self._mark(self.reason, request.which, how=request.how)
        except errors.RlifDataError as exc:
            return MarkOutcome(f"not marked: {exc}", which=request.which, error=str(exc))
        self.marked[mark.episode_id] = mark
        return MarkOutcome(f"{request.which} episode marked invalid: {mark.reason}", mark,
                           request.which)
