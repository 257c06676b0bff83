"""Processes of the QNPU and the scheduler (priority based, non-pre-emptive, FCFS
within a priority)."""

from __future__ import annotations

import enum
import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .compiler import ArrayMemory


class ProcessState(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    RUNNING = "running"
    WAITING = "waiting"


#: priorities: lower number = more important
NETWORK_PRIORITY = 0
USER_PRIORITY = 1


@dataclass(eq=False)
class Process:
    """A user process (one per registered application) or the network kernel process."""

    pid: int
    app_id: int | None
    priority: int
    conn_id: int | None = None
    max_qubits: int = 0
    state: ProcessState = ProcessState.IDLE
    regs: dict[str, Any] = field(default_factory=dict)
    arrays: dict[int, list] = field(default_factory=ArrayMemory)
    pending: deque = field(default_factory=deque)  # (msg_id, raw subroutine bytes)
    current: Any = None  # running generator of the current subroutine
    current_msg: int | None = None
    current_sub: Any = None
    returns: list = field(default_factory=list)
    epr_sockets: dict[tuple[int, str], int] = field(default_factory=dict)  # (id, remote) -> remote id

    @property
    def is_kernel(self) -> bool:
        return self.app_id is None


class Scheduler:
    """Ready queue: highest priority first, first come first served within a priority."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Process]] = []
        self._seq = itertools.count()
        self._queued: dict[int, int] = {}  # pid -> sequence number of its live entry

    def make_ready(self, proc: Process) -> None:
        if proc.pid in self._queued:
            return
        seq = next(self._seq)
        self._queued[proc.pid] = seq
        heapq.heappush(self._heap, (proc.priority, seq, proc))

    def pop(self) -> Process | None:
        while self._heap:
            _, seq, proc = heapq.heappop(self._heap)
            if self._queued.get(proc.pid) == seq:
                del self._queued[proc.pid]
                return proc
        return None

    def peek(self) -> Process | None:
        """The process :meth:`pop` would return, left in the queue."""
        heap = self._heap
        while heap:
            _, seq, proc = heap[0]
            if self._queued.get(proc.pid) == seq:
                return proc
            heapq.heappop(heap)  # a stale entry
        return None

    def remove(self, proc: Process) -> None:
        self._queued.pop(proc.pid, None)

    def __len__(self) -> int:
        return len(self._queued)
