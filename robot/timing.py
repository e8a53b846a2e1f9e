"""Fixed-rate control loops: pacing, overrun counting, and latency statistics.

`ControlRate` sleeps until the next tick of a fixed period (absolute
deadlines, so jitter does not accumulate) and counts overruns: ticks whose
work took longer than the period. `period_stats` summarises step periods
(p50/p99/max, jitter, missed deadlines) and is pure.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np


class ControlRate:
    """Paces a loop at `hz` against an injectable monotonic clock and sleep.

    Args:
      hz: control rate.
      clock: monotonic seconds.
      sleep: sleeps for the given seconds.
    """

    def __init__(self, hz: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not hz > 0:
            raise ValueError(f"control rate must be positive, got {hz!r}")
        self.period = 1.0 / hz
        self._clock = clock
        self._sleep = sleep
        self._next = None
        self._last = None
        self.periods: list[float] = []
        self.overruns = 0

    def reset(self) -> None:
        """Start a new episode: the next `wait` returns at once."""
        self._next = None
        self._last = None

    def wait(self) -> float:
        """Block until the next tick; returns how late this tick is (seconds, >= 0)."""
        now = self._clock()
        if self._next is None:
            self._next = now
        late = now - self._next
        if late > self.period:
            # The work of the previous tick overran a whole period: count it and
            # re-anchor instead of firing a burst of catch-up ticks.
            self.overruns += 1
            self._next = now
            late = 0.0
        elif late < 0:
            self._sleep(-late)
            now = self._clock()
            late = max(0.0, now - self._next)
        if self._last is not None:
            self.periods.append(now - self._last)
        self._last = now
        self._next += self.period
        return late


def period_stats(periods: Sequence[float], nominal: float, tolerance: float = 0.05) -> dict:
    """Latency statistics of a control loop. Pure.

    Args:
      periods: seconds between consecutive ticks.
      nominal: the intended period.
      tolerance: a period longer than ``nominal * (1 + tolerance)`` is a missed deadline.

    Returns:
      p50/p99/max period (ms), jitter (std, ms), missed deadlines, and whether
      p99 is within the tolerance.
    """
    p = np.asarray(periods, dtype=np.float64)
    if p.size == 0:
        return {"steps": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "jitter_ms": 0.0,
                "missed_deadlines": 0, "p99_within_tolerance": True}
    p99 = float(np.percentile(p, 99))
    return {
        "steps": int(p.size),
        "p50_ms": float(np.percentile(p, 50) * 1e3),
        "p99_ms": p99 * 1e3,
        "max_ms": float(p.max() * 1e3),
        "jitter_ms": float(p.std() * 1e3),
        "missed_deadlines": int((p > nominal * (1 + tolerance)).sum()),
        "p99_within_tolerance": p99 <= nominal * (1 + tolerance),
    }
