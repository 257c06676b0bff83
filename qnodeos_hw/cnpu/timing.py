"""The CNPU's side of modelled time: one :class:`~qnodeos_hw.timebase.ProgramClock`
per program, reporting to the network's shared clock (in-process, or over TCP from a
CNPU process)."""

from __future__ import annotations

import threading
from typing import Callable

from ..timebase import LatencyModel, ProgramClock


def program_lp(role: str) -> str:
    """Logical-process name of a program."""
    return f"prog:{role}"


def qnpu_lp(node: str) -> str:
    return f"qnpu:{node}"


class CNPUClocks:
    """Program clocks of one CNPU by role (created on first use)."""

    def __init__(self, model: LatencyModel, reporter: Callable[[dict], None]) -> None:
        self.model = model
        self._reporter = reporter
        self._lock = threading.Lock()
        self._clocks: dict[str, ProgramClock] = {}

    def of(self, role: str) -> ProgramClock:
        with self._lock:
            pc = self._clocks.get(role)
            if pc is None:
                pc = self._clocks[role] = ProgramClock(program_lp(role), self.model, self._reporter)
            return pc

    def finish(self, role: str) -> None:
        """The program of ``role`` ended (normally or not): it sends nothing more. (A
        shared clock already gone -- the run is over -- is no error here.)"""
        from ..timebase import TimeSyncError
        try:
            self.of(role).finish()
        except TimeSyncError:
            pass
