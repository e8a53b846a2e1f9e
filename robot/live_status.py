"""Who is in control, shown to the operator while a robot session runs.

On a terminal one status line is redrawn in place (episode, step, who is in
control, a latched takeover, a lost device, an episode just marked invalid):
the operator of a keyboard has
no other way to see whether a key press took over. Elsewhere (a pipe, a log
file) it writes one line per finished episode instead of redrawing.

The text is made by pure functions (`control_line`, `episode_line`);
`LiveStatus` only decides when to write it. It redraws when what it shows
changes and otherwise at most every `min_interval` seconds, so a slow
terminal costs the control loop one short write now and then, not one per step.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, TextIO

# Carriage return + "erase to the end of the line": redraw the status line in place.
_REDRAW = "\r\x1b[K"


def control_line(episode: int, episodes: int, step: int, engaged: bool,
                 flags: tuple[str, ...] = (), notice: str = "") -> str:
    """The status line of one control step. Pure.

    Args:
      episode: 1-based episode number.
      episodes: episodes in the session.
      step: step index within the episode.
      engaged: the operator is in control.
      flags: the device's flags ("latched", "disconnected", "replay_finished", ...).
      notice: the latest operator notice of this episode (an invalid mark), or "".

    Returns:
      One line, e.g. ``episode 2/5  step   37  OPERATOR in control (latched: space hands back)``.
    """
    who = "OPERATOR in control" if engaged else "policy in control"
    notes = []
    if "latched" in flags:
        notes.append("latched: space hands back")
    if "disconnected" in flags:
        notes.append("input device disconnected")
    if "stuck_button" in flags:
        notes.append("a button is stuck and ignored")
    if "replay_finished" in flags:
        notes.append("replay finished")
    note = f" ({'; '.join(notes)})" if notes else ""
    tail = f"  | {notice}" if notice else ""
    return f"episode {episode}/{episodes}  step {step:4d}  {who}{note}{tail}"


def episode_line(episode: int, episodes: int, transitions: int, intervened: int,
                 takeovers: int, invalid_reason: str = "") -> str:
    """The line of one finished episode. Pure.

    Args:
      episode: 1-based episode number.
      episodes: episodes in the session.
      transitions: steps recorded.
      intervened: steps the operator was in control.
      takeovers: takeovers started.
      invalid_reason: the reason it was marked invalid with, "" if it was not.

    Returns:
      e.g. ``episode 2/5: 100 steps, operator in control 23% (2 takeovers)``,
      plus ``; MARKED INVALID (collision)`` for a marked episode.
    """
    share = intervened / transitions if transitions else 0.0
    plural = "" if takeovers == 1 else "s"
    marked = f"; MARKED INVALID ({invalid_reason})" if invalid_reason else ""
    return (f"episode {episode}/{episodes}: {transitions} steps, operator in control "
            f"{share:.0%} ({takeovers} takeover{plural}){marked}")


class LiveStatus:
    """Writes `control_line` in place on a terminal, `episode_line` per episode anywhere.

    Args:
      stream: where to write (the CLI: standard error).
      episodes: episodes in the session.
      interactive: redraw a live line (None: whether `stream` is a terminal).
      clock: monotonic seconds, for the redraw interval.
      min_interval: seconds between redraws while nothing shown changes.
    """

    def __init__(self, stream: TextIO, episodes: int, interactive: Optional[bool] = None,
                 clock: Callable[[], float] = time.monotonic, min_interval: float = 0.25):
        self._stream = stream
        self._episodes = episodes
        if interactive is None:
            isatty = getattr(stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self._clock = clock
        self._min_interval = min_interval
        self._episode = 0
        self._shown: Optional[tuple] = None
        self._drawn_at = -float("inf")
        self._notice = ""

    def begin_episode(self, index: int) -> None:
        """Episode `index` (0-based) starts."""
        self._episode = index + 1
        self._shown = None
        self._notice = ""

    def notice(self, text: str) -> None:
        """Show an operator notice (an invalid mark made or refused) until the episode ends.

        On a terminal it joins the live line at the next step; elsewhere it is
        written at once, on its own line.
        """
        self._notice = text
        if not self.interactive:
            self._write(f"episode {self._episode}/{self._episodes}: {text}\n")

    def step(self, step: int, engaged: bool, flags: tuple[str, ...] = ()) -> None:
        """After control step `step`: redraw if what it shows changed, or now and then."""
        if not self.interactive:
            return
        state = (self._episode, engaged, tuple(sorted(flags)), self._notice)
        now = self._clock()
        if state == self._shown and now - self._drawn_at < self._min_interval:
            return
        self._shown, self._drawn_at = state, now
        self._write(_REDRAW + control_line(self._episode, self._episodes, step, engaged, flags,
                                           self._notice))

    def end_episode(self, transitions: int, intervened: int, takeovers: int,
                    invalid_reason: str = "") -> None:
        """The current episode finished: its line replaces the live line, and stays."""
        line = episode_line(self._episode, self._episodes, transitions, intervened, takeovers,
                            invalid_reason)
        self._write((_REDRAW if self.interactive else "") + line + "\n")
        self._shown = None

    def close(self) -> None:
        """Leave the terminal on a fresh line (a session ended mid-episode)."""
        if self.interactive and self._shown is not None:
            self._write("\n")
            self._shown = None

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
