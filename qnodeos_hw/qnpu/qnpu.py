"""The QNPU of one node: processes, scheduler, executor, QMMU and network process on
one thread, fed by connections (see :mod:`.server` for the TCP end-node API).

Host messages are netqasm's own (``netqasm.backend.messages``); replies are
``ReturnRegMessage``/``ReturnArrayMessage`` then ``MsgDoneMessage(msg_id)`` (or an
``ErrorMessage``), where ``msg_id`` counts the host messages of that connection from
0. Two extensions, outside netqasm's type space:

* host -> QNPU ``0xE0`` + JSON ``{"app_id", "qubits": [virtual...], "full": bool}``:
  ask for the density matrix of qubits (simulated stations only); answered by
  ``0xE1`` + JSON ``{"ok", "re", "im", "error"}``.
* host -> QNPU ``0xE3`` + JSON ``{"app_id", "name"}``: the program's name, recorded as a
  'process_named' trace event (no answer).
* QNPU -> host ``0xE2`` + JSON ``{"msg_id", "error", "message"}`` just before an
  ``ErrorMessage``: the named error that failed the subroutine.

* host -> QNPU ``0xE4`` + JSON ``{"lp"}`` (first frame, modelled time only): the
  program's logical-process name; every later frame in both directions is an 8-byte
  big-endian virtual arrival time (ns) followed by the message. ``0xE5`` (timed, no
  answer): the program closes its connection (processed at its arrival time).

Time (``QNPUConfig.time_mode``):

* ``free`` (bare QNPUs, tests): the QDriver advances the node clock while it works;
  when nothing is ready and the network process has work, the clock jumps to the next
  attempt window (or, with ``idle_wall_scale > 0``, waits for it in scaled wall time:
  the network's ``host`` mode).
* ``modelled``: every message carries its virtual arrival time; the QNPU processes its
  events (message arrivals, the scheduler, attempt windows) in virtual-time order and
  only below the bound the network's shared clock grants
  (:class:`qnodeos_hw.timebase.TimeCoordinator`); replies and peer messages get delays
  and the QNPU's own processing a cost from the latency model. No wall-clock reading
  enters virtual time.
"""

from __future__ import annotations

import heapq
import json
import queue
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from netqasm.backend.messages import (ErrorCode, ErrorMessage, MessageType, MsgDoneMessage,
                                      ReturnArrayMessage, ReturnRegMessage, deserialize_host_msg)
from netqasm.lang.encoding import RegisterName
from netqasm.lang.operand import Register

from ..qdrivers.base import NotSimulatedError
from .compiler import WAIT, SubroutineCache
from .errors import (AppIdNotOwnedError, ExecutionError, MalformedSubroutineError, ProtocolError,
                     QNPUError, QubitAllocationError, UnsupportedSubroutineError)
from .netstack import NetworkStack, RequestBoard, TDMASchedule, checked_peer_message
from .peers import LocalPeerBus, PeerUnreachableError
from .process import NETWORK_PRIORITY, USER_PRIORITY, Process, ProcessState, Scheduler
from .electron_moves import for_device
from .qmmu import NETWORK_PID, QMMU
from ..protocol.extensions import (EXT_APP_NAME, EXT_BYE, EXT_ERROR, EXT_HELLO,  # noqa: F401
                                   EXT_STATE_REP, EXT_STATE_REQ)
from ..protocol.trace import Trace

TIME_MODES = ("free", "modelled")
_TS = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class QNPUConfig:
    """``bin_ns``: TDMA bin (ns); ``links``: bin -> link order (empty: every bin for every
    link); ``attempts_per_bin``: entanglement attempts per link per bin (both ends of a
    link must agree); ``comm_qubits``: physical qubits that can be entangled (None: all);
    ``idle_wall_scale``: while the QNPU idles waiting for its programs, its virtual clock
    advances by the elapsed wall time times this factor (0: time stands still while
    idle, the default; 1: real host latencies show up in virtual time, e.g. for
    decoherence while a program thinks). With a positive scale the QNPU also waits for
    the next time bin in (scaled) wall time when a program is between subroutines, so
    that its next subroutine can run before the bin starts (multitasking); when every
    program waits for entanglement or a qubit, time jumps to the bin at once."""

    bin_ns: int = 10_000_000
    links: tuple[frozenset, ...] = ()
    comm_qubits: tuple[int, ...] | None = None
    idle_wall_scale: float = 0.0
    attempts_per_bin: int = 1000
    #: 'free' or 'modelled' (module docstring); modelled needs ``latency`` and a clock
    time_mode: str = "free"
    #: the latency model (:class:`qnodeos_hw.timebase.LatencyModel`) of modelled time
    latency: Any = None
    #: free mode: how far ahead (ns) a peer message's arrival time is put (the peer
    #: handles it at once; this margin lets both ends reach the agreed time bin)
    peer_margin_ns: int = 1_000_000
    #: how long (node ns) an entanglement request waits for the other end to take part
    #: before it ends with EntanglementTimeoutError (None: forever); a request the other
    #: end's program gave up ends at once (EntanglementAbortedError)
    request_timeout_ns: int | None = 30_000_000_000

    def __post_init__(self) -> None:
        if self.idle_wall_scale < 0:
            raise ValueError(f"idle_wall_scale must be >= 0, got {self.idle_wall_scale}")
        if self.time_mode not in TIME_MODES:
            raise ValueError(f"time_mode must be one of {TIME_MODES}, got {self.time_mode!r}")
        if self.time_mode == "modelled" and self.latency is None:
            raise ValueError("time_mode 'modelled' needs a latency model")


class _Conn:
    __slots__ = ("cid", "send", "close", "n_msgs", "pids", "lp", "bye")

    def __init__(self, cid: int, send: Callable[[bytes], None],
                 close: Callable[[], None] | None) -> None:
        self.cid, self.send, self.close, self.n_msgs, self.pids = cid, send, close, 0, []
        self.lp: str | None = None  # modelled time: the program's logical process
        self.bye = False


class _RunContext:
    """What compiled subroutines of one process call (see :mod:`.compiler`)."""

    def __init__(self, qnpu: "QNPU", proc: Process) -> None:
        self.regs, self.arrays = proc.regs, proc.arrays
        table = qnpu.qmmu.table(proc.pid)
        pid = proc.pid

        def ph(v: int) -> int:
            try:
                p = table[v]
            except (IndexError, TypeError):
                raise QubitAllocationError(f"virtual qubit {v} is outside process {pid}'s "
                                           f"range 0..{len(table) - 1}") from None
            if p is None:
                raise QubitAllocationError(f"virtual qubit {v} of process {pid} is not allocated")
            return p

        self.ph = ph
        self.drv = qnpu._traced_execute(pid) if qnpu.trace.instructions else qnpu.driver.execute
        # NV: moves through the electron, unbacked fresh qubits (electron_moves.py)
        self.moves = for_device(qnpu.qmmu, pid, self.drv, qnpu.driver.spec)
        if self.moves is not None:
            self.drv = self.moves.execute
        self.all_phys = lambda: tuple(p for p in table if p is not None and p >= 0)
        self._q, self._p = qnpu, proc

    def qalloc(self, v: int) -> bool:
        """Map ``v``; False (the process waits) when the device is full only *for now*: a
        qubit is held by the network process for entanglement, or by another process in
        the middle of a subroutine (e.g. waiting for its EPR pair, or about to measure
        it); the process retries when a qubit is released or a subroutine ends. A device
        whose qubits are held between subroutines raises :class:`QubitAllocationError`."""
        q, pid = self._q, self._p.pid
        if self.moves is not None and v in q.qmmu.pinned and q.qmmu.mappable(pid, v):
            self.moves.free_electron(f"qalloc of virtual qubit {v}")
        try:
            q.qmmu.allocate(pid, v)
            return True
        except QubitAllocationError:
            if q.qmmu.mappable(pid, v) and q._transiently_full(pid):
                if pid not in q._qubit_waiters:
                    q._qubit_waiters.append(pid)
                    q._record("qubit_wait", pid, vaddr=v)
                return False
            if self.moves is not None and v not in q.qmmu.pinned and q.qmmu.mappable(pid, v):
                q.qmmu.allocate_unbacked(pid, v)  # backed when used (a mov into it: a rename)
                return True
            raise

    def qfree(self, v: int) -> None:
        p = self._q.qmmu.free(self._p.pid, v)
        if p is not None:
            self._q.driver.free(p)
        self._q._wake(self._q.net.retry())
        self._q._wake_qubit_waiters()

    def ret_reg(self, name: str, index: int, value: int) -> None:
        self._p.returns.append(ReturnRegMessage(Register(RegisterName[name], index).cstruct, value))

    def ret_arr(self, address: int, values: list) -> None:
        self._p.returns.append(ReturnArrayMessage(address, list(values)))

    def create_epr(self, remote: int, sid: int, q_addr: int | None, arg_addr: int, res_addr: int) -> None:
        arrs = self.arrays
        if self.moves is not None:
            self.moves.free_electron("create_epr")
        self._q.net.create(self._p.pid, sid, remote, arrs.get(q_addr) if q_addr is not None else None,
                           _array(arrs, arg_addr, "argument"), _array(arrs, res_addr, "result"))

    def recv_epr(self, remote: int, sid: int, q_addr: int | None, res_addr: int) -> None:
        arrs = self.arrays
        if self.moves is not None:
            self.moves.free_electron("recv_epr")
        woken = self._q.net.recv(self._p.pid, sid, remote,
                                 arrs.get(q_addr) if q_addr is not None else None,
                                 _array(arrs, res_addr, "result"))
        self._q._wake(woken)


def _array(arrs: dict, addr: int | None, what: str) -> list:
    a = arrs.get(addr) if addr is not None else None
    if a is None:
        raise QNPUError(f"{what} array at address {addr} is not allocated")
    return a


class QNPU:
    """One node's QNPU. ``node_ids``: node name -> netqasm node id of every node;
    ``clock``: the node clock (the one the QDriver's device runs on).

    Start with :meth:`start` (a daemon thread) or drive with :meth:`run_forever`.
    Connections come from :meth:`connect` (the TCP server calls it per client).
    """

    def __init__(self, name: str, driver: Any, node_ids: dict[str, int],
                 board: RequestBoard | None = None, config: QNPUConfig = QNPUConfig(),
                 trace: Trace | None = None, rng: np.random.Generator | None = None,
                 clock: Any = None, peers: LocalPeerBus | None = None,
                 coordinator: Any = None, progress: Callable[..., None] | None = None) -> None:
        self.name, self.driver, self.config = name, driver, config
        #: the node clock the QNPU advances to time-bin starts (default: ``driver.clock``)
        self.clock = clock if clock is not None else getattr(driver, "clock", None)
        self.node_ids = dict(node_ids)
        self.trace = trace if trace is not None else Trace()
        self.board = board if board is not None else RequestBoard(name)
        self.board.node = name
        self.modelled = config.time_mode == "modelled"
        self.lp = f"qnpu:{name}"
        self.peers = peers
        self.coordinator = coordinator
        #: tells the node's heralding station how far its clock is (optional)
        self._progress = progress
        if self.modelled and coordinator is None:
            raise QNPUError(f"QNPU '{name}': modelled time needs the network's shared clock")
        self.qmmu = QMMU.for_spec(driver.spec, config.comm_qubits)
        self.cache = SubroutineCache(driver.flavour)
        self.scheduler = Scheduler()
        self.schedule = TDMASchedule(config.bin_ns, config.links, config.attempts_per_bin)
        self.net = NetworkStack(name, driver, self.qmmu, self.board, self.node_ids,
                                self.schedule, self._record,
                                rng if rng is not None else np.random.default_rng(),
                                send=self._send_peer, skip=self._skip_bin,
                                request_timeout_ns=config.request_timeout_ns,
                                deadline_events=self.modelled,
                                grant=(lambda: coordinator.until_ns) if self.modelled else None)
        self.net.defer_measure = self.modelled  # measure-directly pairs: by turns
        self.netproc = Process(NETWORK_PID, None, NETWORK_PRIORITY)
        self.procs: dict[int, Process] = {}
        self._by_app: dict[int, Process] = {}
        self._conns: dict[int, _Conn] = {}
        #: (subroutine bytes, whether it measures) of the last :meth:`_may_measure` asked
        self._measures_memo: tuple[bytes, bool] | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # C: cheap put/get across threads
        self._next_pid = 1
        self._next_cid = 1
        self._cid_lock = threading.Lock()
        self._qubit_waiters: list[int] = []  # pids waiting in qalloc for a qubit
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.errors: list[str] = []
        # modelled time: events by (arrival ns, source, per-source count), grants, counts
        self._events: list[tuple] = []
        self._until = 0
        self._round = -1
        self._sent: dict[str, int] = {}
        self._recv: dict[str, int] = {}
        self._draws: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}
        self._burst: dict[str, tuple[int, int]] = {}
        self._last_report: tuple | None = None
        self._report_seq = 0
        self._rec_seq = 0
        # ordered runs (see timebase.sync): a kept pair half lives on this node
        self._entangled = False
        self._ordered_ns: int | None = None
        self._turn = False
        self.ordered_runs = 0
        if peers is not None:
            peers.register(name, lambda src, msg: self._inbox.put(
                ("peer", src, checked_peer_message(src, msg, name))),
                lost=lambda src: self._inbox.put(("peer_lost", src)))
        if coordinator is not None:
            coordinator.attach(self.lp, lambda r, until, turn=None:
                               self._inbox.put(("grant", r, until, turn)))

    # -- outside API (thread-safe) ------------------------------------------------------
    def connect(self, send: Callable[[bytes], None], close: Callable[[], None] | None = None) -> int:
        """Register a program connection; ``send(frame)`` delivers our replies, ``close()``
        (optional) drops the connection if the QNPU itself fails."""
        with self._cid_lock:
            cid = self._next_cid
            self._next_cid += 1
        self._inbox.put(("open", cid, send, close))
        return cid

    def deliver(self, cid: int, raw: bytes) -> None:
        self._inbox.put(("msg", cid, raw))

    def disconnect(self, cid: int) -> None:
        self._inbox.put(("close", cid))

    def start(self) -> "QNPU":
        self._thread = threading.Thread(target=self.run_forever, name=f"qnpu-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._inbox.put(("stop",))
        if self._thread is not None:
            self._thread.join(timeout)

    def now_ns(self) -> int:
        return self.driver.now_ns()

    # -- main loop ---------------------------------------------------------------------
    def run_forever(self) -> None:
        try:
            if self.modelled:
                self._run_modelled()
            else:
                self._run_free()
        except Exception as exc:  # reported, never silent; programs are cut off at once
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self._record("qnpu_crashed", None, error=f"{type(exc).__name__}: {exc}")
            for conn in self._conns.values():
                if conn.close is not None:
                    conn.close()
            traceback.print_exc(file=sys.stderr)

    def _run_free(self) -> None:
        while not self._stopped.is_set():
            self._drain(block=False)
            if self._stopped.is_set():
                break
            now = self.driver.now_ns()
            self._wake(self.net.expire(now))  # requests whose peer never took part
            att = self.net.next_attempt_ns()
            if att is not None and att <= now and self.netproc.state is ProcessState.IDLE:
                self._set_state(self.netproc, ProcessState.READY)
                self.scheduler.make_ready(self.netproc)
            proc = self.scheduler.pop()
            if proc is not None:
                self._run(proc)
                continue
            if att is not None:
                if att > now:
                    if self.config.idle_wall_scale > 0 and self._may_get_work():
                        self._drain_until(att)  # a program may send work before the bin
                    else:
                        self._advance_to(att)
                continue
            if self._progress is not None:
                self._progress(self.driver.now_ns())
            deadline = self.net.next_deadline_ns()
            if deadline is not None and self.config.idle_wall_scale > 0:
                self._drain_until(max(deadline, now))  # (with scale 0 time stands still)
            else:
                self._drain(block=True)

    # -- modelled time -------------------------------------------------------------------
    def _run_modelled(self) -> None:
        while not self._stopped.is_set():
            self._ingest(block=False)
            if self._stopped.is_set():
                break
            if self._step():
                continue
            self._report()
            self._ingest(block=True)

    def _next_event_ns(self) -> int | None:
        cands = []
        if self._events:
            cands.append(self._events[0][0])
        if len(self.scheduler) or self.net.has_deferred():
            cands.append(self.driver.now_ns())
        if self.netproc.state is ProcessState.IDLE:
            att = self.net.next_attempt_ns()
            if att is not None:
                cands.append(att)
        return min(cands) if cands else None

    def _must_order(self) -> bool:
        """Whether a user process' run must wait for its turn (timebase.sync, "ordered
        runs"): while a kept pair half (or a qubit it may have been entangled with) is
        allocated on this node, a measurement's outcome depends on the partner node's."""
        if self._entangled and self.qmmu.used() == 0:
            self._entangled = False
        return self._entangled

    def _may_measure(self, proc: Process) -> bool:
        """Whether ``proc``'s next run may measure (a resumed subroutine: assume so)."""
        if proc.current is not None or not proc.pending:
            return True
        raw = proc.pending[0][1]
        memo = self._measures_memo
        if memo is not None and memo[0] is raw:  # asked again while it waits for its turn
            return memo[1]
        try:
            measures = self.cache.get(raw)[0].measures
        except QNPUError:
            measures = False  # it will fail without touching a qubit
        self._measures_memo = (raw, measures)
        return measures

    def _take_turn(self, now: int) -> bool:
        """Whether the shared clock gave this QNPU the turn for an ordered run at ``now``
        (it is used up); else the run is held back and reported (``ordered_ns``)."""
        if not self._turn:
            self._ordered_ns = now
            return False
        self._turn = False
        self.ordered_runs += 1
        return True

    def _step(self) -> bool:
        """Process the next event if the shared clock allows it (time below the grant)."""
        self._ordered_ns = None
        until = self._until
        e = self._next_event_ns()
        if e is None or e >= until:
            return False
        now = self.driver.now_ns()
        if e > now:
            self._advance_to(e)
            now = e
        ev = self._events
        while ev and ev[0][0] <= now and ev[0][0] < until:
            item = heapq.heappop(ev)
            self._handle_timed(item)
        if self.netproc.state is ProcessState.IDLE:
            att = self.net.next_attempt_ns()
            if att is not None and att <= now and att < until:
                self._set_state(self.netproc, ProcessState.READY)
                self.scheduler.make_ready(self.netproc)
        if self.net.has_deferred() and now < until:
            # measure-directly pairs heralded: their measurements go by turns
            if not self._take_turn(now):
                return False
            self._wake(self.net.run_deferred())
            self._wake_qubit_waiters()
            return True
        if now >= until and self.netproc.state is not ProcessState.READY:
            return True  # only messages due before the grant could be handled
        proc = self.scheduler.peek()
        if (proc is not None and proc is not self.netproc and self._must_order()
                and self._may_measure(proc)):
            if not self._take_turn(now):
                return False
        proc = self.scheduler.pop()
        if proc is self.netproc:
            # its window may wait for the peer, which may be holding a run for its turn
            self._report(window_ns=now)
        if proc is not None:
            self._run(proc)
        return True

    def _report(self, window_ns: int | None = None) -> None:
        """Tell the shared clock where this QNPU is: blocked (``next_ns`` its next event,
        ``ordered_ns`` a run held back for its turn) or, with ``window_ns``, about to
        wait in an attempt window for its peer (it does nothing else before then)."""
        if self._progress is not None:
            self._progress(self.driver.now_ns())
        nxt = window_ns if window_ns is not None else self._next_event_ns()
        state = (nxt, tuple(sorted(self._sent.items())),
                 tuple(sorted(self._recv.items())), self._round, self._ordered_ns, window_ns)
        if state == self._last_report:
            return
        self._last_report = state
        self._report_seq += 1
        self.coordinator.report_state(self.lp, self._report_seq, nxt, dict(self._sent),
                                      dict(self._recv), self._round, False, self._ordered_ns,
                                      window_ns)

    def _ingest(self, block: bool) -> None:
        """Move what arrived into the event queue (modelled time)."""
        try:
            item = self._inbox.get(block=block)
        except queue.Empty:
            return
        while True:
            kind = item[0]
            if kind == "msg":
                conn = self._conns.get(item[1])
                raw = item[2]
                if conn is None:
                    pass
                elif conn.lp is None:
                    self._hello(conn, raw)
                else:
                    ts = _TS.unpack_from(raw)[0]
                    n = self._recv[conn.lp] = self._recv.get(conn.lp, 0) + 1
                    heapq.heappush(self._events, (ts, conn.lp, n, "msg", conn.cid, raw[8:]))
            elif kind == "peer":
                src, msg = item[1], item[2]
                lp = f"qnpu:{src}"
                n = self._recv[lp] = self._recv.get(lp, 0) + 1
                heapq.heappush(self._events, (int(msg["ts"]), lp, n, "peer", src, msg))
            elif kind == "grant":
                if item[1] > self._round:
                    self._round, self._until = item[1], item[2]
                    self._turn = item[3] == self.lp
            elif kind == "close":
                conn = self._conns.get(item[1])
                if conn is not None and not conn.bye:
                    # gone without saying goodbye (killed): its channel no longer counts
                    if conn.lp is not None:
                        self.coordinator.gone(conn.lp)
                    self._handle(item)
                elif conn is not None:
                    self._conns.pop(item[1], None)
            else:
                self._handle(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _hello(self, conn: _Conn, raw: bytes) -> None:
        try:
            if not raw or raw[0] != EXT_HELLO:
                raise ProtocolError("this QNPU runs in modelled time: a connection must open "
                                    "with a 0xE4 hello naming its logical process")
            conn.lp = str(json.loads(raw[1:])["lp"])
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            self._record("error", None, error="ProtocolError", message=str(exc))
            if conn.close is not None:
                conn.close()

    def _handle_timed(self, item: tuple) -> None:
        if item[3] == "msg":
            raw = item[5]
            conn = self._conns.get(item[4])
            if raw and raw[0] == EXT_BYE:
                if conn is not None:
                    conn.bye = True
                    for pid in list(conn.pids):
                        self._remove_process(pid, reason="disconnected")
                return
            self._on_message(item[4], raw)
        else:
            self._wake(self.net.on_peer(item[4], item[5]))
            self._wake_qubit_waiters()

    def _draw(self, segment: str, stream: str) -> int:
        key = f"{segment}|{stream}"
        i = self._draws.get(key, 0)
        self._draws[key] = i + 1
        return self.config.latency.draw(segment, stream, i)

    def _skip_bin(self, peer: str, until_ns: int) -> None:
        """This node attempts nothing with ``peer`` before ``until_ns`` (it let a bin pass):
        the heralding station need not wait for it there."""
        if self._progress is not None:
            self._progress(until_ns, peer)

    def _fifo(self, lp: str, ts: int) -> int:
        """A channel is FIFO (TCP): a message never arrives before an earlier one."""
        ts = max(ts, self._last_ts.get(lp, 0))
        self._last_ts[lp] = ts
        return ts

    def _send_peer(self, peer: str, msg: dict) -> int:
        """Stamp, count and send a peer-protocol message; returns its arrival time."""
        if self.peers is None:
            raise QNPUError(f"QNPU '{self.name}' has no peer link (entanglement with '{peer}')")
        now = self.driver.now_ns()
        lp = f"qnpu:{peer}"
        if self.modelled:
            ts = self._fifo(lp, now + self._draw("qnpu_to_qnpu", f"{self.name}>{peer}"))
        else:
            ts = now + self.config.peer_margin_ns
        msg["ts"] = ts
        try:
            self.peers.send(self.name, peer, msg)
        except PeerUnreachableError as exc:
            # a peer that is down loses the message, not this node: its requests end
            # by their timeout (request_timeout_ns); nothing counted as in flight
            self._record("error", None, error="PeerUnreachableError", message=str(exc))
            return ts
        if self.modelled:
            self._sent[lp] = self._sent.get(lp, 0) + 1
        return ts

    def _advance_to(self, t: int) -> None:
        if self.clock is None:
            raise QNPUError(f"QNPU '{self.name}' was given no clock to advance to the next time "
                            f"bin ({type(self.driver).__name__} exposes none)")
        if t > self.clock.now_ns():
            self.clock.advance_to(t)

    def _may_get_work(self) -> bool:
        """Whether a user process is idle between subroutines: its CNPU may send the next
        one at any moment (the others wait for entanglement, a qubit or their queue)."""
        return any(p.state is ProcessState.IDLE for p in self.procs.values())

    def _drain_until(self, t_ns: int) -> None:
        """Real-time wait (``idle_wall_scale``) for host messages until virtual time
        ``t_ns`` (e.g. the next time bin): a program's subroutine arriving meanwhile is
        handled at once (it may run before the bin starts), else the clock reaches
        ``t_ns`` when the scaled wall time has passed."""
        now = self.driver.now_ns()
        scale = self.config.idle_wall_scale
        t0 = time.perf_counter_ns()
        try:
            item = self._inbox.get(timeout=(t_ns - now) / scale * 1e-9)
        except queue.Empty:
            self._advance_to(t_ns)
            return
        dt = int((time.perf_counter_ns() - t0) * scale)
        self._advance_to(min(t_ns, now + dt))
        self._handle_all(item)

    def _drain(self, block: bool) -> None:
        try:
            if block and self.config.idle_wall_scale > 0:
                t0 = time.perf_counter_ns()
                item = self._inbox.get()
                dt = int((time.perf_counter_ns() - t0) * self.config.idle_wall_scale)
                self._advance_to(self.driver.now_ns() + dt)
            else:
                item = self._inbox.get(block=block)
        except queue.Empty:
            return
        self._handle_all(item)

    def _handle_all(self, item: tuple) -> None:
        """Handle ``item`` and everything queued behind it."""
        while True:
            self._handle(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "msg":
            self._on_message(item[1], item[2])
        elif kind == "open":
            self._conns[item[1]] = _Conn(item[1], item[2], item[3])
            if not self.modelled:  # (connection ids and times are the host's, not modelled)
                self._record("connection_opened", None, conn=item[1])
        elif kind == "close":
            conn = self._conns.pop(item[1], None)
            if conn is not None:
                for pid in list(conn.pids):
                    self._remove_process(pid, reason="disconnected")
            if not self.modelled:
                self._record("connection_closed", None, conn=item[1])
        elif kind == "stop":
            self._stopped.set()
        elif kind == "peer":  # free mode: peer messages are handled on arrival
            self._wake(self.net.on_peer(item[1], item[2]))
            self._wake_qubit_waiters()
        elif kind == "peer_lost":  # the peer's process went away (its connection closed)
            self._record("peer_lost", None, peer=item[1])
            self._wake(self.net.peer_lost(item[1]))
            self._wake_qubit_waiters()

    # -- host messages -----------------------------------------------------------------
    def _reply(self, conn: _Conn, msg: Any) -> None:
        data = bytes(msg)
        if conn.lp is not None:  # modelled time: stamp the arrival time, count it
            now = self.driver.now_ns()
            last = self._burst.get(conn.lp)
            if last is not None and last[0] == now:
                ts = last[1]  # frames sent at one instant (results + done) travel together
            else:
                ts = self._fifo(conn.lp, now + self._draw("qnpu_to_cnpu", f"{self.name}>{conn.lp}"))
                self._burst[conn.lp] = (now, ts)
            self._sent[conn.lp] = self._sent.get(conn.lp, 0) + 1
            data = _TS.pack(ts) + data
        try:
            conn.send(data)
        except OSError:
            pass  # the program went away; the close event cleans up

    def _on_message(self, cid: int, raw: bytes) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            return
        msg_id = conn.n_msgs
        conn.n_msgs += 1
        if raw and raw[0] == EXT_APP_NAME:
            conn.n_msgs -= 1
            try:
                q = json.loads(raw[1:])
                proc = self._by_app.get((cid, q["app_id"]))
                if proc is None:
                    raise AppIdNotOwnedError(f"app id {q['app_id']!r:.20} is not registered on "
                                             f"this connection")
                self._record("process_named", proc.pid, app=str(q["name"]))
            except (ValueError, KeyError, TypeError) as exc:
                self._record("error", None, error="ProtocolError", message=f"bad 0xE3 message: {exc}")
            return
        if raw and raw[0] == EXT_STATE_REQ:
            conn.n_msgs -= 1  # extensions do not count as netqasm messages
            self._reply(conn, bytes([EXT_STATE_REP]) + json.dumps(self._state_query(cid, raw[1:])).encode())
            return
        try:
            mtype = MessageType(raw[0])
        except (ValueError, IndexError):
            self._error(conn, msg_id, ProtocolError(f"unknown host message type {raw[:1].hex()}"))
            return
        if mtype is MessageType.SUBROUTINE:
            app_id = int.from_bytes(raw[3:5], sys.byteorder) if len(raw) >= 5 else -1
            proc = self._by_app.get((cid, app_id))
            self._record("subroutine_received", proc.pid if proc else None, app_id=app_id,
                         bytes=len(raw) - 1, msg_id=msg_id)
            if proc is None:
                self._error(conn, msg_id, AppIdNotOwnedError(
                    f"subroutine for app id {app_id}, which is not registered on this connection"))
                return
            proc.pending.append((msg_id, raw[1:]))
            if proc.state is ProcessState.IDLE:
                self._set_state(proc, ProcessState.READY)
                self.scheduler.make_ready(proc)
            return
        try:
            msg = deserialize_host_msg(raw)
        except Exception as exc:
            self._error(conn, msg_id, ProtocolError(f"cannot decode {mtype.name} message: {exc}"))
            return
        if mtype is MessageType.INIT_NEW_APP:
            if (cid, msg.app_id) in self._by_app:
                self._error(conn, msg_id, ProtocolError(f"app id {msg.app_id} is already registered"))
                return
            pid = self._next_pid
            self._next_pid += 1
            proc = Process(pid, msg.app_id, USER_PRIORITY, cid, msg.max_qubits)
            # virtual address space: at least the app's max_qubits, and at least the device's
            # size (netqasm's NV compilation addresses virtual qubit max_qubits)
            self.qmmu.add_process(pid, max(msg.max_qubits, self.qmmu.num_qubits))
            proc.ctx = _RunContext(self, proc)  # type: ignore[attr-defined]
            self.procs[pid] = proc
            self._by_app[(cid, msg.app_id)] = proc
            conn.pids.append(pid)
            self._record("process_created", pid, app_id=msg.app_id, max_qubits=msg.max_qubits)
            self._set_state(proc, ProcessState.IDLE)
            self._reply(conn, MsgDoneMessage(msg_id))
        elif mtype is MessageType.OPEN_EPR_SOCKET:
            proc = self._by_app.get((cid, msg.app_id))
            try:
                if proc is None:
                    raise AppIdNotOwnedError(f"open EPR socket for app id {msg.app_id}, which "
                                             f"is not registered on this connection")
                remote = {v: k for k, v in self.node_ids.items()}.get(msg.remote_node_id)
                if remote is None:
                    raise ProtocolError(f"open EPR socket to unknown node id {msg.remote_node_id}")
                woken = self.net.open_socket(msg.epr_socket_id, remote, msg.remote_epr_socket_id)
            except QNPUError as exc:
                self._error(conn, msg_id, exc)
                return
            self._wake(woken)
            proc.epr_sockets[(msg.epr_socket_id, remote)] = msg.remote_epr_socket_id
            self._record("epr_socket_opened", proc.pid, socket=msg.epr_socket_id, remote=remote,
                         remote_socket=msg.remote_epr_socket_id)
            self._reply(conn, MsgDoneMessage(msg_id))
        elif mtype is MessageType.STOP_APP:
            proc = self._by_app.get((cid, msg.app_id))
            if proc is None:
                self._error(conn, msg_id, AppIdNotOwnedError(
                    f"stop app id {msg.app_id}, which is not registered on this connection"))
                return
            self._remove_process(proc.pid, reason="stopped")
            self._reply(conn, MsgDoneMessage(msg_id))
        # SIGNAL: nothing to stop here (the node outlives its programs)

    def _state_query(self, cid: int, body: bytes) -> dict:
        try:
            q = json.loads(body)
            proc = self._by_app.get((cid, q["app_id"]))
            if proc is None:
                raise AppIdNotOwnedError(f"app id {q['app_id']!r:.20} is not registered on this "
                                         f"connection")
            phys = tuple(proc.ctx.ph(v) for v in q["qubits"])  # type: ignore[attr-defined]
            if q.get("full") and hasattr(self.driver, "group_state"):
                _, rho = self.driver.group_state(phys[0])
            else:
                rho = self.driver.qubit_state(phys)
            # when the state was read (node time): what a model of the memories' decay needs
            self._record("qubit_state_read", proc.pid, qubits=list(phys))
            return {"ok": True, "re": np.real(rho).tolist(), "im": np.imag(rho).tolist()}
        except NotSimulatedError as exc:
            return {"ok": False, "error": "NotSimulatedError", "message": str(exc)}
        except QNPUError as exc:
            return {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        except Exception as exc:  # a malformed query: named, not the raw Python error
            return {"ok": False, "error": "ProtocolError",
                    "message": f"bad qubit-state query ({type(exc).__name__}: {exc})"}

    def _error(self, conn: _Conn, msg_id: int, exc: Exception, pid: int | None = None) -> None:
        name = type(exc).__name__
        if getattr(exc, "cause_type", None):
            name += f"({exc.cause_type})"  # type: ignore[attr-defined]
        self._record("error", pid, msg_id=msg_id, error=name, message=str(exc))
        detail = {"msg_id": msg_id, "error": name, "message": str(exc)}
        self._reply(conn, bytes([EXT_ERROR]) + json.dumps(detail).encode())
        code = ErrorCode.GENERAL
        if isinstance(exc, QubitAllocationError):
            code = ErrorCode.NO_QUBIT
        elif isinstance(exc, (UnsupportedSubroutineError, MalformedSubroutineError)):
            code = ErrorCode.UNSUPP
        self._reply(conn, ErrorMessage(code))

    # -- processes --------------------------------------------------------------------------
    def _record(self, kind: str, pid: int | None, **data: Any) -> None:
        if kind == "entanglement_delivered" and data.get("vaddr") is not None:
            self._entangled = True  # a kept half: its partner lives on another node
        self._rec_seq += 1
        self.trace.record_event(self.driver.now_ns(), self.name, kind, pid, data,
                                source="qnpu", seq=self._rec_seq)

    def _set_state(self, proc: Process, state: ProcessState) -> None:
        proc.state = state
        self._record("process_state", proc.pid, state=state.value)

    def _wake(self, pids: list[int]) -> None:
        for pid in pids:
            p = self.procs.get(pid)
            if p is not None and p.state is ProcessState.WAITING:
                self._set_state(p, ProcessState.READY)
                self.scheduler.make_ready(p)

    def _transiently_full(self, pid: int) -> bool:
        """Some qubit is held by the network process or by another process inside a
        subroutine (it will be released without the asking process doing anything)."""
        for p in range(self.qmmu.num_qubits):
            o = self.qmmu.owner(p)
            if o == NETWORK_PID:
                return True
            holder = self.procs.get(o) if o is not None else None
            if holder is not None and o != pid and holder.current is not None:
                return True
        return False

    def _wake_qubit_waiters(self) -> None:
        """Processes waiting in ``qalloc`` retry (FCFS) once a qubit may be free."""
        if self._qubit_waiters and self.qmmu.free_count():
            waiters, self._qubit_waiters = self._qubit_waiters, []
            self._wake(waiters)

    def _remove_process(self, pid: int, reason: str) -> None:
        proc = self.procs.pop(pid, None)
        if proc is None:
            return
        self.scheduler.remove(proc)
        self._by_app.pop((proc.conn_id, proc.app_id), None)
        self.net.drop_process(pid, list(proc.epr_sockets))
        for p in self.qmmu.remove_process(pid):
            self.driver.free(p)
        conn = self._conns.get(proc.conn_id)
        if conn is not None and pid in conn.pids:
            conn.pids.remove(pid)
        proc.current = None
        if pid in self._qubit_waiters:
            self._qubit_waiters.remove(pid)
        self._record("process_removed", pid, reason=reason)
        self._wake_qubit_waiters()

    def _traced_execute(self, pid: int) -> Callable:
        drv, rec = self.driver.execute, self._record

        def execute(instr: Any, qubits: tuple) -> Any:
            rec("instr_sent", pid, instr=instr.mnemonic, qubits=list(qubits))
            out = drv(instr, qubits)
            rec("instr_response", pid, instr=instr.mnemonic, outcome=out)
            return out
        return execute

    def _run(self, proc: Process) -> None:
        self._set_state(proc, ProcessState.RUNNING)
        if proc is self.netproc:
            try:
                woken = self.net.run(self._until if self.modelled else None)
            except Exception as exc:  # a link or device fault must not stop the node
                woken = []
                msg = f"{type(exc).__name__}: {exc}"
                self.errors.append(f"network process: {msg}")
                self._record("error", NETWORK_PID, error=type(exc).__name__, message=msg)
            self._set_state(proc, ProcessState.IDLE)
            self._wake(woken)
            self._wake_qubit_waiters()
            return
        conn = self._conns.get(proc.conn_id)
        failure = self.net.failures.pop(proc.pid, None)  # its entanglement request ended
        if proc.current is None:
            failure = None  # (a request of a subroutine that is over)
            msg_id, raw = proc.pending.popleft()
            proc.current_msg = msg_id
            try:
                compiled, _ = self.cache.get(raw)
            except QNPUError as exc:
                self._fail(proc, conn, msg_id, exc)
                return
            proc.current_sub = compiled
            proc.returns = []
            if self.modelled:  # the QNPU's own processing of the subroutine's instructions
                dt = len(compiled.instructions) * self._draw("qnpu_instruction", self.name)
                self._advance_to(self.driver.now_ns() + dt)
                self._record("subroutine_started", proc.pid, msg_id=msg_id,
                             instructions=len(compiled.instructions), qnpu_ns=dt)
            proc.current = compiled.run(proc.ctx)  # type: ignore[attr-defined]
        try:
            out = next(proc.current) if failure is None else proc.current.throw(failure)
        except StopIteration:
            proc.current = None
            # recorded before the reply, so the program's 'cnpu_done_received' comes after it
            self._record("subroutine_done", proc.pid, msg_id=proc.current_msg)
            if conn is not None:
                for m in proc.returns:
                    self._reply(conn, m)
                self._reply(conn, MsgDoneMessage(proc.current_msg))
            proc.returns = []
            self._after(proc)
            self._wake_qubit_waiters()
            return
        except Exception as exc:
            self._fail(proc, conn, proc.current_msg, self._named(proc, exc))
            return
        if out is WAIT:
            self._set_state(proc, ProcessState.WAITING)

    def _after(self, proc: Process) -> None:
        if proc.pending:
            self._set_state(proc, ProcessState.READY)
            self.scheduler.make_ready(proc)
        else:
            self._set_state(proc, ProcessState.IDLE)

    def _fail(self, proc: Process, conn: _Conn | None, msg_id: int | None, exc: Exception) -> None:
        proc.current = None
        proc.returns = []
        if conn is not None:
            self._error(conn, msg_id if msg_id is not None else -1, exc, proc.pid)
        self._after(proc)
        self._wake_qubit_waiters()

    @staticmethod
    def _named(proc: Process, exc: Exception) -> Exception:
        """Wrap a run-time exception as :class:`ExecutionError` naming the instruction."""
        compiled = proc.current_sub
        tb = exc.__traceback__
        idx = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == compiled.filename:
                idx = compiled.instr_at_line(tb.tb_lineno)
            tb = tb.tb_next
        if idx is None:
            return exc if isinstance(exc, QNPUError) else ExecutionError(-1, "?", f"{type(exc).__name__}: {exc}")
        mnem = compiled.instructions[idx].mnemonic
        err = ExecutionError(idx, mnem, f"{type(exc).__name__}: {exc}")
        err.cause_type = type(exc).__name__  # type: ignore[attr-defined]
        return err
