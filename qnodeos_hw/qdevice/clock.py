"""Clocks in integer nanoseconds, passed explicitly to whatever needs time.

* :class:`VirtualClock` -- discrete-event time: ``advance_to`` jumps at once, so
  simulated time runs far faster than wall time.
* :class:`PacedClock` -- real-time pacing for hardware in the loop: ``advance_to``
  sleeps until the wall clock has caught up (optionally scaled) and records how
  late it was.

There is no global clock: every object that needs time receives one.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol


class Clock(Protocol):
    """What time-keeping users need."""

    def now_ns(self) -> int:
        """Current time in ns since the clock's epoch."""
        ...

    def advance_to(self, t_ns: int) -> None:
        """Let time reach ``t_ns`` (never goes backwards)."""
        ...


class ClockError(ValueError):
    """Time was asked to run backwards."""


class VirtualClock:
    """Discrete-event clock: time moves only when told to."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, t_ns: int) -> None:
        if t_ns < self._now:
            raise ClockError(f"virtual clock cannot go back from {self._now} ns to {t_ns} ns")
        self._now = int(t_ns)

    def advance(self, dt_ns: int) -> None:
        """Move forward by ``dt_ns`` (ns, >= 0)."""
        self.advance_to(self._now + dt_ns)

    def __repr__(self) -> str:
        return f"VirtualClock(now_ns={self._now})"


class PacedClock:
    """Real-time clock: virtual ns track wall ns (times ``slowdown``).

    ``advance_to(t)`` sleeps until ``epoch + t * slowdown`` on ``wall`` (default
    :func:`time.perf_counter_ns`); ``max_late_ns`` is the worst lateness seen, the
    figure to watch when pacing a 10 us tick from Python.
    """

    def __init__(self, slowdown: float = 1.0,
                 wall: Callable[[], int] = time.perf_counter_ns,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if slowdown <= 0:
            raise ValueError("slowdown must be positive")
        self._wall, self._sleep, self._slow = wall, sleep, slowdown
        self._epoch = wall()
        self._now = 0
        self.max_late_ns = 0

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, t_ns: int) -> None:
        if t_ns < self._now:
            raise ClockError(f"paced clock cannot go back from {self._now} ns to {t_ns} ns")
        due = self._epoch + int(t_ns * self._slow)
        while True:
            left = due - self._wall()
            if left <= 0:
                self.max_late_ns = max(self.max_late_ns, -left)
                break
            self._sleep(left / 1e9 if left > 200_000 else 0)
        self._now = int(t_ns)
