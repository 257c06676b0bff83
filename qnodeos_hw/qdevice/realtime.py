"""A node clock that *is* real time: for a QNPU in front of a lab QDevice.

:class:`~qnodeos_hw.qdevice.clock.VirtualClock` moves only when told to, and
:class:`~qnodeos_hw.qdevice.clock.PacedClock` holds still between its ``advance_to``
calls; neither fits a lab, where the QDevice's time runs by itself while the QNPU
works. :class:`RealTimeClock` reads a monotonic source (default
:func:`time.monotonic_ns`) against an epoch, so ``now_ns()`` grows on its own, and
``advance_to(t)`` -- the QNPU's wait for the next TDMA time bin -- sleeps until
``now_ns() >= t``. Clocks of one network built with the same ``epoch_ns`` agree on
when bin k starts (in the paper the QDevices share a 1 MHz clock; here one host's
monotonic clock stands for it).

``advance_to`` of a time already passed returns at once (real time cannot be held
back) and counts it in ``late_calls``; ``max_late_ns`` is the worst lateness seen when
a wait ended (sleep overshoot), the figure to watch on a loaded host.

Not mypyc-compiled (the hot path's clock is the VirtualClock of ``clock.py``).
"""

from __future__ import annotations

import time
from typing import Callable

#: below this many ns left, spin (sleep(0)) instead of sleeping: sleep overshoots ~0.1 ms
SPIN_NS = 200_000


class RealTimeClock:
    """Real-time node clock (see module docstring).

    ``epoch_ns``: the source's reading that is time 0 (default: now); give every node
    of a network the same epoch. ``source``: monotonic ns (default
    :func:`time.monotonic_ns`); ``sleep``: seconds -> None (default :func:`time.sleep`).
    """

    def __init__(self, epoch_ns: int | None = None,
                 source: Callable[[], int] = time.monotonic_ns,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._source, self._sleep = source, sleep
        self.epoch_ns = int(source() if epoch_ns is None else epoch_ns)
        self._last = 0
        self.max_late_ns = 0
        self.late_calls = 0
        self.waits = 0

    def now_ns(self) -> int:
        """ns since the epoch (never less than an earlier reading)."""
        t = self._source() - self.epoch_ns
        if t > self._last:
            self._last = t
        return self._last

    def advance_to(self, t_ns: int) -> None:
        """Sleep until the clock reads at least ``t_ns`` (at once if it already does)."""
        t_ns = int(t_ns)
        left = t_ns - self.now_ns()
        if left <= 0:
            self.late_calls += 1
            return
        self.waits += 1
        while left > 0:
            self._sleep(left / 1e9 if left > SPIN_NS else 0)
            left = t_ns - self.now_ns()
        self.max_late_ns = max(self.max_late_ns, -left)

    def __repr__(self) -> str:
        return f"RealTimeClock(now_ns={self.now_ns()}, max_late_ns={self.max_late_ns})"
