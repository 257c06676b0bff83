"""Entanglement management: EPR sockets, entanglement requests and the network process.

* :class:`RequestBoard` -- what the nodes of a network agree on: open EPR sockets and
  the queue of entanglement requests of each link (served first come, first served).
  One instance is shared by the QNPUs of an in-process network; QNPUs subscribe and
  are woken (``notify``) when it changes.
* :class:`NetworkStack` -- one node's network (kernel) process: in each TDMA time
  bin it serves the head request of each of its links: it reserves a communication
  qubit, marks itself ready on the board, and once both ends are ready makes one
  attempt window through the QDriver (``entangle(..., attempts=attempts_per_bin)``,
  one controller instruction); it then delivers
  the qubit (ownership moved to the user process by the QMMU) or, on the receiver
  side with no recv request yet, keeps it for the request to come (an open socket
  lets the receiver comply without its own request).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from netqasm.lang.encoding import RegisterName
from netqasm.lang.instr import core
from netqasm.lang.operand import Immediate, Register
from netqasm.qlink_compat import Basis, RandomBasis
from netqasm.sdk.build_epr import EprMeasBasis, SerializedCreateRequestIndex as CI, basis_to_rotation
from netqasm.sdk.qubit import QubitMeasureAxes

from ..qdevice.instructions import EntangleMode, ResponseKind
from .errors import EPRSocketError, QubitAllocationError
from .qmmu import QMMU

RESULT_FIELDS = 10  # netqasm OK_FIELDS_K == OK_FIELDS_M
TYPE_K, TYPE_M = 0, 1


@dataclass(frozen=True, slots=True)
class TDMASchedule:
    """Network schedule: time bins of ``bin_ns``; bin k belongs to link
    ``links[k % len(links)]`` (all links when ``links`` is empty); in its bin a link
    gets one attempt window of up to ``attempts_per_bin`` entanglement attempts (one
    controller instruction; choose ``bin_ns // attempt duration`` so the window fills
    the bin; at most 65535, the controller message's budget field)."""

    bin_ns: int = 10_000_000
    links: tuple[frozenset, ...] = ()
    #: entanglement attempts per link per time bin (the same at both ends of a link)
    attempts_per_bin: int = 1000

    def __post_init__(self) -> None:
        if self.bin_ns <= 0:
            raise ValueError(f"time bin must be > 0 ns, got {self.bin_ns}")
        if not 1 <= self.attempts_per_bin <= 0xFFFF:
            raise ValueError(f"attempts_per_bin must be 1..65535, got {self.attempts_per_bin}")

    def bin_of(self, t_ns: int) -> int:
        return t_ns // self.bin_ns

    def link_active(self, bin_index: int, a: str, b: str) -> bool:
        if not self.links:
            return True
        return self.links[bin_index % len(self.links)] == frozenset((a, b))


@dataclass(eq=False)
class EntRequest:
    """One create request between ``creator`` and ``receiver`` (node names)."""

    rid: int
    creator: str
    receiver: str
    creator_socket: int
    receiver_socket: int
    type: int
    number: int
    args: tuple
    ready: set = field(default_factory=set)  # (node, pair index)
    finished: set = field(default_factory=set)  # nodes done with it
    cancelled: bool = False

    def other(self, node: str) -> str:
        return self.receiver if node == self.creator else self.creator


class RequestBoard:
    """Shared view of EPR sockets and entanglement requests of an in-process network."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._sockets: dict[tuple[str, int, str], int] = {}  # (node, id, remote) -> remote id
        self._requests: list[EntRequest] = []
        self._subs: dict[str, Callable[[], None]] = {}
        self._ids = itertools.count(1)

    def subscribe(self, node: str, notify: Callable[[], None]) -> None:
        self._subs[node] = notify

    def _notify(self, *nodes: str) -> None:
        for n in nodes:
            cb = self._subs.get(n)
            if cb is not None:
                cb()

    def open_socket(self, node: str, sid: int, remote: str, remote_sid: int) -> None:
        """EPR sockets are identified by (node, socket id, remote node), as netqasm's
        purpose ids are per (remote node, socket id)."""
        with self.lock:
            if (node, sid, remote) in self._sockets:
                raise EPRSocketError(f"node '{node}': EPR socket {sid} to '{remote}' is already open")
            self._sockets[(node, sid, remote)] = remote_sid
        self._notify(remote)

    def close_socket(self, node: str, sid: int, remote: str) -> None:
        with self.lock:
            self._sockets.pop((node, sid, remote), None)

    def socket(self, node: str, sid: int, remote: str) -> int | None:
        """The remote socket id of an open socket, or None."""
        with self.lock:
            return self._sockets.get((node, sid, remote))

    def open_sockets(self) -> list[tuple[str, int, str]]:
        with self.lock:
            return list(self._sockets)

    def receiver_complies(self, r: EntRequest) -> bool:
        """The receiver has the socket open that the creator's request names."""
        with self.lock:
            return self._sockets.get((r.receiver, r.receiver_socket, r.creator)) == r.creator_socket

    def post(self, creator: str, creator_socket: int, remote: str, type_: int, number: int,
             args: tuple) -> EntRequest:
        with self.lock:
            remote_sid = self._sockets.get((creator, creator_socket, remote))
            if remote_sid is None:
                raise EPRSocketError(f"node '{creator}': EPR socket {creator_socket} to "
                                     f"'{remote}' is not open")
            r = EntRequest(next(self._ids), creator, remote, creator_socket, remote_sid,
                           type_, number, args)
            self._requests.append(r)
        self._notify(r.creator, r.receiver)
        return r

    def heads(self, node: str) -> list[EntRequest]:
        """The oldest unfinished request of each link that ``node`` is on."""
        with self.lock:
            seen: set[str] = set()
            out = []
            for r in self._requests:
                if node not in (r.creator, r.receiver):
                    continue
                peer = r.other(node)
                if peer in seen:
                    continue
                seen.add(peer)
                out.append(r)
            return out

    def mark_ready(self, r: EntRequest, node: str, pair: int) -> None:
        with self.lock:
            r.ready.add((node, pair))
        self._notify(r.other(node))

    def both_ready(self, r: EntRequest, pair: int) -> bool:
        with self.lock:
            return (r.creator, pair) in r.ready and (r.receiver, pair) in r.ready

    def finish(self, r: EntRequest, node: str) -> None:
        with self.lock:
            r.finished.add(node)
            if {r.creator, r.receiver} <= r.finished and r in self._requests:
                self._requests.remove(r)
        self._notify(r.other(node))

    def cancel(self, r: EntRequest) -> None:
        with self.lock:
            r.cancelled = True
        self._notify(r.creator, r.receiver)

    def pending(self) -> list[EntRequest]:
        with self.lock:
            return list(self._requests)


@dataclass(eq=False)
class _CreateTask:
    """Local side of a request this node created."""

    pid: int
    q_array: list | None
    results: list
    rotations: tuple[int, int, int]
    axes: int
    random_basis: int


@dataclass(eq=False)
class _RecvTask:
    pid: int
    q_array: list | None
    results: list
    number: int
    delivered: int = 0


@dataclass(eq=False)
class _Held:
    """A pair the receiver made under an open socket before any recv request."""

    phys: int | None
    fields: list


class NetworkStack:
    """The network process of one node (see module docstring)."""

    def __init__(self, node: str, driver: Any, qmmu: QMMU, board: RequestBoard,
                 node_ids: dict[str, int], schedule: TDMASchedule,
                 record: Callable[..., None], rng: Any) -> None:
        self.node, self.driver, self.qmmu, self.board = node, driver, qmmu, board
        self.node_ids = node_ids
        self.names = {v: k for k, v in node_ids.items()}
        self.schedule = schedule
        self.record = record
        self.rng = rng
        self._create: dict[int, _CreateTask] = {}  # rid -> task
        self._done: dict[int, int] = {}  # rid -> pairs completed on this side
        self._reserved: dict[int, int] = {}  # rid -> physical qubit reserved for the current pair
        self._windows: dict[tuple[int, int], int] = {}  # (rid, pair) -> attempt windows so far
        self._recv: dict[tuple[str, int], deque] = {}  # (remote node, my socket) -> recv tasks
        self._held: dict[tuple[str, int], deque] = {}
        self._blocked: list[tuple] = []  # creator-side deliveries waiting for a free vaddr
        self._meas_instr = core.MeasInstruction(reg0=Register(RegisterName.Q, 0),
                                                reg1=Register(RegisterName.M, 0))

    # -- requests from user processes ------------------------------------------------
    def create(self, pid: int, sid: int, remote_node_id: int, q_array: list | None,
               args: list, results: list) -> None:
        remote = self.names.get(remote_node_id)
        if remote is None or self.board.socket(self.node, sid, remote) is None:
            raise EPRSocketError(f"create_epr: node '{self.node}' has no open EPR socket {sid} "
                                 f"to node id {remote_node_id} ({remote})")
        type_ = args[CI.TYPE] if args[CI.TYPE] is not None else TYPE_K
        number = args[CI.NUMBER] if args[CI.NUMBER] is not None else 1
        if type_ not in (TYPE_K, TYPE_M):
            raise EPRSocketError(f"create_epr: request type {type_} (remote state preparation) "
                                 f"is not supported")
        if type_ == TYPE_K and (q_array is None or len(q_array) < number):
            raise EPRSocketError(f"create_epr: {number} pair(s) requested but qubit array "
                                 f"holds {0 if q_array is None else len(q_array)} address(es)")
        if len(results) < number * RESULT_FIELDS:
            raise EPRSocketError(f"create_epr: result array of {len(results)} entries is too "
                                 f"short for {number} pair(s)")
        g = lambda i: args[i] or 0  # noqa: E731
        rot_local = (g(CI.ROTATION_LOCAL_1), g(CI.ROTATION_LOCAL_2), g(CI.ROTATION_LOCAL_3))
        rot_remote = (g(CI.ROTATION_REMOTE_1), g(CI.ROTATION_REMOTE_2), g(CI.ROTATION_REMOTE_3))
        req_args = (rot_remote, g(CI.ROTATION_AXES_REMOTE), g(CI.RANDOM_BASIS_REMOTE))
        r = self.board.post(self.node, sid, remote, type_, number, req_args)
        self._create[r.rid] = _CreateTask(pid, q_array, results, rot_local,
                                          g(CI.ROTATION_AXES_LOCAL), g(CI.RANDOM_BASIS_LOCAL))
        self.record("epr_request", pid, rid=r.rid, role="create", peer=r.receiver,
                    type=type_, number=number)

    def recv(self, pid: int, sid: int, remote_node_id: int, q_array: list | None,
             results: list) -> list[int]:
        """Register a recv request; returns pids to wake (held pairs delivered at once)."""
        remote = self.names.get(remote_node_id)
        if remote is None or self.board.socket(self.node, sid, remote) is None:
            raise EPRSocketError(f"recv_epr: node '{self.node}' has no open EPR socket {sid} "
                                 f"to node id {remote_node_id} ({remote})")
        number = len(results) // RESULT_FIELDS
        task = _RecvTask(pid, q_array, results, number)
        self._recv.setdefault((remote, sid), deque()).append(task)
        self.record("epr_request", pid, role="recv", peer=remote, number=number)
        woken: list[int] = []
        self._drain_held((remote, sid), woken)
        return woken

    def retry(self) -> list[int]:
        """Deliver pairs that waited for their virtual qubit address to be freed."""
        woken: list[int] = []
        for key in list(self._held):
            self._drain_held(key, woken)
        blocked, self._blocked = self._blocked, []
        for r, pair, phys, bell, t, task in blocked:
            self._deliver_create(r, pair, phys, bell, t, woken, task)
        return woken

    def _vaddr_free(self, pid: int, vaddr: int) -> bool:
        try:
            return self.qmmu.table(pid)[vaddr] is None
        except (KeyError, IndexError, TypeError):
            return True  # the transfer will raise the named error

    def _drain_held(self, key: tuple[str, int], woken: list[int]) -> None:
        held, q = self._held.get(key), self._recv.get(key)
        while held and q:
            task, h = q[0], held[0]
            if h.phys is not None and task.q_array is not None and task.delivered < len(task.q_array) \
                    and not self._vaddr_free(task.pid, task.q_array[task.delivered]):
                return  # the program still uses that virtual qubit (sequential requests)
            held.popleft()
            self._deliver_recv(task, h.phys, h.fields, woken)
            self._pop_finished(key)

    def _recv_done(self, t: _RecvTask) -> bool:
        return t.delivered >= t.number

    def _pop_finished(self, key: tuple[str, int]) -> None:
        q = self._recv.get(key)
        while q and self._recv_done(q[0]):
            q.popleft()

    # -- process cleanup ----------------------------------------------------------------
    def drop_process(self, pid: int, sockets: list[tuple[int, str]]) -> None:
        """A user process went away: cancel its requests, forget its recv requests, close
        its sockets and release the qubits held for them."""
        for rid, t in list(self._create.items()):
            if t.pid == pid:
                for r in self.board.pending():
                    if r.rid == rid:
                        self.board.cancel(r)
                t.q_array, t.results = None, [None] * len(t.results)
                t.pid = -1
        for key, q in self._recv.items():
            self._recv[key] = deque(t for t in q if t.pid != pid)
        for sid, remote in sockets:
            self.board.close_socket(self.node, sid, remote)
            for h in self._held.pop((remote, sid), ()):
                if h.phys is not None:
                    self._release(h.phys)

    def _release(self, phys: int) -> None:
        self.qmmu.release(phys)
        self.driver.free(phys)

    # -- the network process --------------------------------------------------------------
    def _my_socket_ok(self, r: EntRequest) -> bool:
        if r.creator == self.node:
            return r.rid in self._create
        return self.board.receiver_complies(r)

    def has_demand(self) -> bool:
        """Whether running the network process now can make progress (no real-time waits)."""
        for r in self.board.heads(self.node):
            if self.node in r.finished:
                continue
            pair = self._done.get(r.rid, 0)
            if r.cancelled:
                return True
            if self.board.both_ready(r, pair):
                return True
            if (self.node, pair) in r.ready:
                continue
            if self._my_socket_ok(r) and (r.rid in self._reserved or self.qmmu.free_count(comm=True)):
                return True
        return False

    def run(self) -> list[int]:
        """Run the network process for the current time bin; returns pids to wake."""
        woken: list[int] = []
        t0 = self.driver.now_ns()
        bin_index = self.schedule.bin_of(t0)
        for r in self.board.heads(self.node):
            if self.node in r.finished:
                continue
            peer = r.other(self.node)
            if not self.schedule.link_active(bin_index, self.node, peer):
                continue
            pair = self._done.get(r.rid, 0)
            both = self.board.both_ready(r, pair)
            if r.cancelled and not both:
                self._abandon(r)
                continue
            if (self.node, pair) not in r.ready:
                if not self._my_socket_ok(r):
                    continue
                if r.rid not in self._reserved:
                    try:
                        self._reserved[r.rid] = self.qmmu.reserve_comm()
                    except QubitAllocationError:
                        continue
                self.board.mark_ready(r, self.node, pair)
                both = self.board.both_ready(r, pair)
            if both:
                self._attempt(r, pair, peer, woken)
        return woken

    def _abandon(self, r: EntRequest) -> None:
        phys = self._reserved.pop(r.rid, None)
        if phys is not None:
            self._release(phys)
        self._create.pop(r.rid, None)
        self.board.finish(r, self.node)

    def _attempt(self, r: EntRequest, pair: int, peer: str, woken: list[int]) -> None:
        """One attempt window of ``attempts_per_bin`` attempts (one controller instruction);
        both ends of the link issue exactly one window per network-process run with the
        same budget, so the k-th windows of the two ends pair up (their clocks need not
        agree)."""
        phys = self._reserved[r.rid]
        budget = self.schedule.attempts_per_bin
        t0 = self.driver.now_ns()
        resp = self.driver.entangle(phys, EntangleMode.KEEP, peer, attempts=budget)
        window_ns = self.driver.now_ns() - t0
        windows = self._windows[(r.rid, pair)] = self._windows.get((r.rid, pair), 0) + 1
        if resp.kind is not ResponseKind.ENT_SUCCESS:
            self.record("entanglement_failed", None, rid=r.rid, pair=pair, budget=budget,
                        window=windows, window_ns=window_ns)
            return
        del self._windows[(r.rid, pair)]
        del self._reserved[r.rid]
        self._done[r.rid] = pair + 1
        t = self.driver.now_ns()
        self.record("entanglement_heralded", None, rid=r.rid, pair=pair, peer=peer,
                    phys=phys, budget=budget, window=windows, window_ns=window_ns,
                    bell_state=resp.bell_index)
        if r.cancelled:
            self._release(phys)
        elif r.creator == self.node:
            self._deliver_create(r, pair, phys, resp.bell_index, t, woken)
        else:
            self._on_receiver_pair(r, pair, phys, resp.bell_index, t, woken)
        if pair + 1 >= r.number or r.cancelled:
            self._create.pop(r.rid, None)
            self.board.finish(r, self.node)

    def _measure(self, phys: int, rotations: tuple, axes: int, random_basis: int) -> tuple[int, int]:
        basis = Basis.Z.value
        if random_basis == RandomBasis.XZ.value:
            b = [EprMeasBasis.Z, EprMeasBasis.X][int(self.rng.integers(2))]
            rotations, axes = basis_to_rotation(b, QubitMeasureAxes.XYX), 0
            basis = {EprMeasBasis.Z: Basis.Z, EprMeasBasis.X: Basis.X}[b].value
        elif random_basis == RandomBasis.XYZ.value:
            b = [EprMeasBasis.Z, EprMeasBasis.X, EprMeasBasis.Y][int(self.rng.integers(3))]
            rotations, axes = basis_to_rotation(b, QubitMeasureAxes.XYX), 0
            basis = {EprMeasBasis.Z: Basis.Z, EprMeasBasis.X: Basis.X, EprMeasBasis.Y: Basis.Y}[b].value
        elif random_basis:
            raise EPRSocketError(f"random basis {random_basis} (CHSH) is not supported")
        if any(rotations):
            cls = {0: core.MeasBasisInstruction, 1: core.MeasBasisYZYInstruction,
                   2: core.MeasBasisZXZInstruction}[int(axes)]
            instr = cls(reg0=Register(RegisterName.Q, 0), reg1=Register(RegisterName.M, 0),
                        imm0=Immediate(rotations[0]), imm1=Immediate(rotations[1]),
                        imm2=Immediate(rotations[2]), imm3=Immediate(4))
        else:
            instr = self._meas_instr
        m = self.driver.execute(instr, (phys,))
        self._release(phys)
        return int(m), basis

    def _fields(self, r: EntRequest, type_: int, pair: int, phys_or_outcome: int, basis: int,
                bell: int, t: int, creator: bool) -> list[int]:
        remote = self.node_ids[r.other(self.node)]
        sid = r.creator_socket if creator else r.receiver_socket
        if type_ == TYPE_K:
            return [TYPE_K, r.rid, phys_or_outcome, 0 if creator else 1, pair, sid, remote,
                    t // 1000, t // 1000, bell]
        return [TYPE_M, r.rid, phys_or_outcome, basis, 0 if creator else 1, pair, sid, remote,
                t // 1000, bell]

    def _deliver_create(self, r: EntRequest, pair: int, phys: int, bell: int, t: int,
                        woken: list[int], task: _CreateTask | None = None) -> None:
        task = task or self._create.get(r.rid)
        if task is None or task.pid < 0:
            self._release(phys)
            return
        if r.type == TYPE_K:
            vaddr = task.q_array[pair]
            if not self._vaddr_free(task.pid, vaddr):
                self._blocked.append((r, pair, phys, bell, t, task))
                return
            self.qmmu.transfer(phys, task.pid, vaddr)
            fields = self._fields(r, TYPE_K, pair, phys, 0, bell, t, True)
        else:
            m, basis = self._measure(phys, task.rotations, task.axes, task.random_basis)
            vaddr = None
            fields = self._fields(r, TYPE_M, pair, m, basis, bell, t, True)
        task.results[pair * RESULT_FIELDS:(pair + 1) * RESULT_FIELDS] = fields
        self.record("entanglement_delivered", task.pid, rid=r.rid, pair=pair, phys=phys,
                    vaddr=vaddr, role="create")
        woken.append(task.pid)

    def _on_receiver_pair(self, r: EntRequest, pair: int, phys: int, bell: int, t: int,
                          woken: list[int]) -> None:
        key = (r.creator, r.receiver_socket)
        if r.type == TYPE_M:
            rot, axes, rb = r.args
            m, basis = self._measure(phys, rot, axes, rb)
            fields = self._fields(r, TYPE_M, pair, m, basis, bell, t, False)
            held_phys = None
        else:
            fields = self._fields(r, TYPE_K, pair, phys, 0, bell, t, False)
            held_phys = phys
        self._held.setdefault(key, deque()).append(_Held(held_phys, fields))
        if not self._recv.get(key):
            self.record("entanglement_held", None, rid=r.rid, pair=pair, phys=phys)
        self._drain_held(key, woken)

    def _deliver_recv(self, task: _RecvTask, phys: int | None, fields: list, woken: list[int]) -> None:
        k = task.delivered
        vaddr = None
        if phys is not None:
            if task.q_array is None or k >= len(task.q_array):
                self._release(phys)
                raise EPRSocketError("recv_epr: a kept pair arrived but the request has no "
                                     "qubit address for it")
            vaddr = task.q_array[k]
            self.qmmu.transfer(phys, task.pid, vaddr)
        task.results[k * RESULT_FIELDS:(k + 1) * RESULT_FIELDS] = fields
        task.delivered += 1
        self.record("entanglement_delivered", task.pid, rid=fields[1], pair=k, phys=phys,
                    vaddr=vaddr, role="recv")
        woken.append(task.pid)
