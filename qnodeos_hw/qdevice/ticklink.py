"""The tick link between QNodeOS and a QDevice.

Both sides exchange 4-byte messages (:mod:`.message`) on ticks of a fixed rate
(``spec.tick_rate_hz``; tick ``k`` starts at ``k * spec.tick_ns``). Rules:

1. In one tick the QNodeOS side sends at most one instruction: :meth:`TickLink.send`
   puts a message on the first tick at or after *now* that has not carried one yet
   (so back-to-back sends go out on consecutive ticks).
2. In one tick the QDevice side sends at most one response.
3. An instruction that starts on tick ``s`` and takes ``D`` ns is answered on tick
   ``s + max(1, ceil(D / tick_ns))``: the first tick after it completes, never the
   tick it was sent on.
4. Busy rule: the device is busy from the tick it starts an instruction until the
   tick of its response (a new instruction may arrive on that response tick).
   With ``BusyPolicy.QUEUE`` (default) an instruction that arrives while the device
   is busy waits in the device's instruction FIFO (``fifo_depth`` entries;
   overflow raises :class:`FifoOverflowError` and the message is not sent) and
   starts on the tick the previous response goes out. With ``BusyPolicy.REFUSE``
   such a send raises :class:`DeviceBusyError` and nothing is sent.
5. Responses come back in instruction order.

The link is discrete-event: time only moves in :meth:`advance_to` /
:meth:`wait_response`, through the clock it was given (a
:class:`~.clock.VirtualClock` jumps, a :class:`~.clock.PacedClock` sleeps).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from .clock import Clock
from .errors import DeviceBusyError, FifoOverflowError, TickLinkError
from .message import MESSAGE_BYTES
from .spec import QDeviceSpec


class TickDevice(Protocol):
    """The QDevice side of the link (a controller, or a simulator of one)."""

    def start(self, message: bytes, t_ns: int) -> int:
        """Begin executing ``message`` at ``t_ns``; return its duration in ns (>= 0)."""
        ...

    def finish(self, t_ns: int) -> bytes:
        """Return the 4-byte response of the instruction that just completed."""
        ...


class BusyPolicy(enum.Enum):
    """What happens to an instruction sent while the device is busy (rule 4)."""

    QUEUE = "queue"
    REFUSE = "refuse"


class Direction(enum.Enum):
    TO_DEVICE = "instruction"
    TO_HOST = "response"


@dataclass(frozen=True, slots=True)
class TickEvent:
    """One message on the link: tick number, its start time (ns), direction, bytes."""

    tick: int
    t_ns: int
    direction: Direction
    message: bytes


class _Pending:
    """An instruction on the link: its bytes and ticks (sent, started, answered)."""

    __slots__ = ("message", "sent_tick", "start_tick", "response_tick")

    def __init__(self, message: bytes, sent_tick: int) -> None:
        self.message, self.sent_tick = message, sent_tick
        self.start_tick = self.response_tick = -1


class TickLink:
    """Tick-synchronous QNodeOS <-> QDevice channel (rules in the module docstring)."""

    def __init__(self, spec: QDeviceSpec, device: TickDevice, clock: Clock,
                 policy: BusyPolicy = BusyPolicy.QUEUE, fifo_depth: int = 16,
                 record: bool = True) -> None:
        if fifo_depth < 1:
            raise ValueError("fifo_depth must be >= 1")
        self.spec, self.device, self.clock = spec, device, clock
        self.policy, self.fifo_depth = policy, fifo_depth
        self.tick_ns = spec.tick_ns
        self.record = record
        self.timeline: list[TickEvent] = []
        self._last_host_tick = -1
        self._current: _Pending | None = None       # started, response not yet sent
        self._fifo: deque[_Pending] = deque()      # arrived, not started
        # responses delivered to the host (a list: at most a FIFO's worth, and list
        # operations compile to C under mypyc where deque methods stay generic calls)
        self._inbox: list[bytes] = []
        self.sent = 0
        self.answered = 0
        #: when the executing instruction's response goes out (ns); ``math.inf`` while the
        #: device is idle. Read-only for users: a cheap "is anything due?" test.
        self.next_response_ns: float = math.inf

    # -- time ---------------------------------------------------------------------------
    def tick_at(self, t_ns: int) -> int:
        """First tick starting at or after ``t_ns``."""
        return -(-t_ns // self.tick_ns)

    @property
    def now_tick(self) -> int:
        return self.tick_at(self.clock.now_ns())

    @property
    def busy(self) -> bool:
        """True while an instruction is executing or queued."""
        return self._current is not None or bool(self._fifo)

    @property
    def outstanding(self) -> int:
        """Instructions sent whose responses have not reached the host yet."""
        return self.sent - self.answered

    def _start(self, p: _Pending, tick: int) -> None:
        tick_ns = self.tick_ns
        duration = self.device.start(p.message, tick * tick_ns)
        if duration < 0:
            raise TickLinkError(f"device reported negative duration {duration} ns")
        ticks = -(-duration // tick_ns)
        p.start_tick = tick
        p.response_tick = response_tick = tick + (ticks if ticks > 1 else 1)
        self._current = p
        self.next_response_ns = float(response_tick * tick_ns)

    def _log(self, tick: int, direction: Direction, msg: bytes) -> None:
        if self.record:
            self.timeline.append(TickEvent(tick, tick * self.tick_ns, direction, msg))

    def advance_to(self, t_ns: int) -> None:
        """Run the link up to time ``t_ns``: deliver responses, start queued instructions."""
        if self.next_response_ns <= t_ns:
            self._deliver_until(t_ns)
        clock = self.clock
        if t_ns > clock.now_ns():
            clock.advance_to(t_ns)

    def _deliver_until(self, t_ns: float) -> None:
        tick_ns = self.tick_ns
        while self._current is not None and self._current.response_tick * tick_ns <= t_ns:
            cur = self._current
            tick = cur.response_tick
            self.clock.advance_to(tick * tick_ns)
            resp = self.device.finish(tick * tick_ns)
            if len(resp) != MESSAGE_BYTES:
                raise TickLinkError(f"device answered {len(resp)} bytes, not {MESSAGE_BYTES}")
            if self.record:
                self._log(tick, Direction.TO_HOST, resp)
            self._inbox.append(resp)
            self.answered += 1
            self._current = None
            self.next_response_ns = math.inf
            if self._fifo:
                self._start(self._fifo.popleft(), tick)

    # -- QNodeOS side --------------------------------------------------------------------
    def send(self, message: bytes) -> int:
        """Send one instruction on the next free tick; return that tick number."""
        if len(message) != MESSAGE_BYTES:
            raise TickLinkError(f"instruction must be {MESSAGE_BYTES} bytes, got {len(message)}")
        tick_ns, clock = self.tick_ns, self.clock
        now = clock.now_ns()
        tick = -(-now // tick_ns)  # self.now_tick, inlined (hot path)
        if tick <= self._last_host_tick:
            tick = self._last_host_tick + 1
        t_ns = tick * tick_ns
        # self.advance_to(t_ns), inlined (hot path)
        if self.next_response_ns <= t_ns:
            self._deliver_until(t_ns)
            now = clock.now_ns()
        if t_ns > now:
            clock.advance_to(t_ns)
        if self._current is not None:  # busy at this tick (its response tick is later)
            if self.policy is BusyPolicy.REFUSE:
                raise DeviceBusyError(
                    f"device busy until tick {self._current.response_tick}; instruction "
                    f"{message.hex()} refused at tick {tick}")
            if len(self._fifo) >= self.fifo_depth:
                raise FifoOverflowError(
                    f"instruction FIFO full ({self.fifo_depth} entries) at tick {tick}; "
                    f"{message.hex()} not sent")
        p = _Pending(message if type(message) is bytes else bytes(message), tick)
        self._last_host_tick = tick
        if self.record:
            self._log(tick, Direction.TO_DEVICE, p.message)
        self.sent += 1
        if self._current is None:
            self._start(p, tick)
        else:
            self._fifo.append(p)
        return tick

    def poll(self) -> bytes | None:
        """The oldest response that has arrived by now, or None."""
        return self._inbox.pop(0) if self._inbox else None

    def wait_response(self) -> bytes:
        """Advance time until the next response arrives and return it."""
        if not self._inbox:
            if self._current is None:
                raise TickLinkError("no instruction outstanding: nothing to wait for")
            # self.advance_to(response time): delivering moves the clock there
            self._deliver_until(self.next_response_ns)
        return self._inbox.pop(0)

    def transact(self, message: bytes) -> bytes:
        """Send one instruction and wait for *its* response (earlier ones are kept in order
        and must have been collected first)."""
        if self.outstanding or self._inbox:
            raise TickLinkError("transact() needs an idle link; collect earlier responses first")
        self.send(message)
        return self.wait_response()

    def run_until_idle(self) -> None:
        """Advance until every sent instruction has been answered."""
        while self._current is not None:
            self.advance_to(self._current.response_tick * self.tick_ns)
