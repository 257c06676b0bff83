"""Entanglement management: EPR sockets, entanglement requests and the network process.

Nodes share nothing but messages. Each node keeps its own :class:`RequestBoard` -- its
replica of the entanglement requests of its links -- and tells the peer QNPU of a link
what changed (peer protocol, JSON-able dicts carried with a virtual arrival time ``ts``):

* ``req``    the creator posted a request (its rid is unique in the network);
* ``ready``  an end reserved a communication qubit for pair ``pair`` of a request;
* ``unready`` it gave that reservation up (an earlier request of the link came first);
* ``fin``    an end is done with the request; ``cancel`` its program went away.

Requests of a link are served one at a time, in the order (post time, creator, rid),
which both ends compute alike. When both ends are ready for a pair, both know by
``T = max(arrival of the two ready messages)`` (each end stamped its own), and both
attempt in the first time bin of the link that starts at or after ``T`` -- one attempt
window (``entangle(..., attempts=attempts_per_bin)``, one controller instruction) per
bin, paired by bin at the heralding station; after a failed window they try again in
the link's next bin. A heralded qubit is delivered (ownership moved to the user process
by the QMMU) or, on the receiver side with no recv request yet, kept for the request to
come (an open socket lets the receiver comply without its own request).
"""

from __future__ import annotations

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
#: request ids: creator node id * RID_BASE + the creator's own counter (unique in a network)
RID_BASE = 1_000_000


@dataclass(frozen=True, slots=True)
class TDMASchedule:
    """Network schedule: time bins of ``bin_ns``; bin k belongs to link
    ``links[k % len(links)]`` (all links when ``links`` is empty); in its bin a link
    gets one attempt window of up to ``attempts_per_bin`` entanglement attempts (one
    controller instruction; choose ``bin_ns // attempt duration`` so the window fills
    the bin; at most 65535, the controller message's budget field). Bin k starts at
    ``k * bin_ns`` on every node (the QDevices' shared clock)."""

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

    def next_bin_start(self, t_ns: int, a: str, b: str) -> int:
        """Start (ns) of the first bin of link a-b that starts at or after ``t_ns``."""
        k = -(-t_ns // self.bin_ns)
        if self.links:
            if frozenset((a, b)) not in self.links:
                raise EPRSocketError(f"the network schedule has no time bins for link {a}-{b}")
            while not self.link_active(k, a, b):
                k += 1
        return k * self.bin_ns


@dataclass(eq=False)
class EntRequest:
    """One create request between ``creator`` and ``receiver`` (node names), as one
    node's replica knows it. ``ready``: (node, pair) -> arrival time (ns) of that end's
    ready message at the other end (both ends know both values)."""

    rid: int
    creator: str
    receiver: str
    creator_socket: int
    receiver_socket: int
    type: int
    number: int
    args: tuple
    t_post: int = 0
    ready: dict = field(default_factory=dict)
    finished: set = field(default_factory=set)  # nodes done with it
    cancelled: bool = False

    def other(self, node: str) -> str:
        return self.receiver if node == self.creator else self.creator

    @property
    def order(self) -> tuple:
        return (self.t_post, self.creator, self.rid)

    def both_ready(self, pair: int) -> bool:
        return (self.creator, pair) in self.ready and (self.receiver, pair) in self.ready

    def known_by(self, pair: int) -> int:
        """When both ends know that both are ready for ``pair`` (ns)."""
        return max(self.ready[(self.creator, pair)], self.ready[(self.receiver, pair)])


class RequestBoard:
    """One node's replica of its EPR sockets and of the entanglement requests of its
    links (changed only by this node's own actions and by peer messages)."""

    def __init__(self, node: str = "") -> None:
        self.node = node
        self._sockets: dict[tuple[int, str], int] = {}  # (id, remote) -> remote id
        self._requests: dict[int, EntRequest] = {}

    # sockets ------------------------------------------------------------------------------
    def open_socket(self, sid: int, remote: str, remote_sid: int) -> None:
        """EPR sockets are identified by (socket id, remote node), as netqasm's purpose
        ids are per (remote node, socket id)."""
        if (sid, remote) in self._sockets:
            raise EPRSocketError(f"node '{self.node}': EPR socket {sid} to '{remote}' is already open")
        self._sockets[(sid, remote)] = remote_sid

    def close_socket(self, sid: int, remote: str) -> None:
        self._sockets.pop((sid, remote), None)

    def socket(self, sid: int, remote: str) -> int | None:
        """The remote socket id of an open socket, or None."""
        return self._sockets.get((sid, remote))

    def open_sockets(self) -> list[tuple[int, str]]:
        return list(self._sockets)

    # requests -----------------------------------------------------------------------------
    def add(self, r: EntRequest) -> None:
        self._requests[r.rid] = r

    def get(self, rid: int) -> EntRequest | None:
        return self._requests.get(rid)

    def receiver_complies(self, r: EntRequest) -> bool:
        """This node (the receiver) has the socket open that the creator's request names."""
        return self._sockets.get((r.receiver_socket, r.creator)) == r.creator_socket

    def heads(self) -> list[EntRequest]:
        """The first unfinished request of each link (in (post time, creator, rid) order)."""
        best: dict[str, EntRequest] = {}
        for r in self._requests.values():
            if self.node in r.finished:
                continue
            peer = r.other(self.node)
            h = best.get(peer)
            if h is None or r.order < h.order:
                best[peer] = r
        return sorted(best.values(), key=lambda r: r.order)

    def finish(self, r: EntRequest, node: str) -> None:
        r.finished.add(node)
        if {r.creator, r.receiver} <= r.finished:
            self._requests.pop(r.rid, None)

    def pending(self) -> list[EntRequest]:
        return list(self._requests.values())


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
    """The network process of one node (see module docstring).

    ``send(peer, msg) -> arrival ns`` hands a peer-protocol message to the QNPU (which
    stamps, counts and delivers it); the QNPU feeds the peer's messages to
    :meth:`on_peer`. The QNPU runs :meth:`run` at :meth:`next_attempt_ns`.
    """

    def __init__(self, node: str, driver: Any, qmmu: QMMU, board: RequestBoard,
                 node_ids: dict[str, int], schedule: TDMASchedule,
                 record: Callable[..., None], rng: Any,
                 send: Callable[[str, dict], int] | None = None,
                 skip: Callable[[str, int], None] | None = None) -> None:
        self.node, self.driver, self.qmmu, self.board = node, driver, qmmu, board
        self.node_ids = node_ids
        self.names = {v: k for k, v in node_ids.items()}
        self.schedule = schedule
        self.record = record
        self.rng = rng
        self._send = send
        self._skip = skip
        self._next_rid = 1
        self._create: dict[int, _CreateTask] = {}  # rid -> task
        self._done: dict[int, int] = {}  # rid -> pairs completed on this side
        self._reserved: dict[int, int] = {}  # rid -> physical qubit reserved for the current pair
        self._windows: dict[tuple[int, int], int] = {}  # (rid, pair) -> attempt windows so far
        self._attempt_at: dict[tuple[int, int], int] = {}  # (rid, pair) -> next window start (ns)
        self._recv: dict[tuple[str, int], deque] = {}  # (remote node, my socket) -> recv tasks
        self._held: dict[tuple[str, int], deque] = {}
        self._blocked: list[tuple] = []  # creator-side deliveries waiting for a free vaddr
        self._meas_instr = core.MeasInstruction(reg0=Register(RegisterName.Q, 0),
                                                reg1=Register(RegisterName.M, 0))

    def _tell(self, peer: str, msg: dict) -> int:
        """Send a peer-protocol message; returns its arrival time at the peer (ns)."""
        if self._send is None:
            raise EPRSocketError(f"node '{self.node}' has no peer link to '{peer}'")
        return self._send(peer, msg)

    # -- sockets --------------------------------------------------------------------------
    def open_socket(self, sid: int, remote: str, remote_sid: int) -> list[int]:
        self.board.open_socket(sid, remote, remote_sid)
        return self.poll()

    # -- requests from user processes ------------------------------------------------
    def create(self, pid: int, sid: int, remote_node_id: int, q_array: list | None,
               args: list, results: list) -> None:
        remote = self.names.get(remote_node_id)
        if remote is None or self.board.socket(sid, remote) is None:
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
        remote_sid = self.board.socket(sid, remote)
        rid = self.node_ids[self.node] * RID_BASE + self._next_rid
        self._next_rid += 1
        r = EntRequest(rid, self.node, remote, sid, remote_sid, type_, number, req_args,
                       t_post=self.driver.now_ns())
        self.board.add(r)
        self._create[r.rid] = _CreateTask(pid, q_array, results, rot_local,
                                          g(CI.ROTATION_AXES_LOCAL), g(CI.RANDOM_BASIS_LOCAL))
        self.record("epr_request", pid, rid=r.rid, role="create", peer=r.receiver,
                    type=type_, number=number)
        self._tell(remote, {"t": "req", "rid": rid, "creator": self.node, "receiver": remote,
                            "csock": sid, "rsock": remote_sid, "type": type_, "number": number,
                            "rot": list(rot_remote), "axes": req_args[1], "rb": req_args[2],
                            "t_post": r.t_post})
        self.poll()

    def recv(self, pid: int, sid: int, remote_node_id: int, q_array: list | None,
             results: list) -> list[int]:
        """Register a recv request; returns pids to wake (held pairs delivered at once)."""
        remote = self.names.get(remote_node_id)
        if remote is None or self.board.socket(sid, remote) is None:
            raise EPRSocketError(f"recv_epr: node '{self.node}' has no open EPR socket {sid} "
                                 f"to node id {remote_node_id} ({remote})")
        number = len(results) // RESULT_FIELDS
        task = _RecvTask(pid, q_array, results, number)
        self._recv.setdefault((remote, sid), deque()).append(task)
        self.record("epr_request", pid, role="recv", peer=remote, number=number)
        woken: list[int] = []
        self._drain_held((remote, sid), woken)
        return woken + self.poll()

    def retry(self) -> list[int]:
        """Deliver pairs that waited for their virtual qubit address to be freed, and
        reserve freed qubits for waiting requests."""
        woken: list[int] = []
        for key in list(self._held):
            self._drain_held(key, woken)
        blocked, self._blocked = self._blocked, []
        for r, pair, phys, bell, t, task in blocked:
            self._deliver_create(r, pair, phys, bell, t, woken, task)
        return woken + self.poll()

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
                r = self.board.get(rid)
                if r is not None and not r.cancelled:
                    r.cancelled = True
                    self._tell(r.receiver, {"t": "cancel", "rid": rid})
                t.q_array, t.results = None, [None] * len(t.results)
                t.pid = -1
        for key, q in self._recv.items():
            self._recv[key] = deque(t for t in q if t.pid != pid)
        for sid, remote in sockets:
            self.board.close_socket(sid, remote)
            for h in self._held.pop((remote, sid), ()):
                if h.phys is not None:
                    self._release(h.phys)
        self.poll()

    def _release(self, phys: int) -> None:
        self.qmmu.release(phys)
        self.driver.free(phys)

    # -- peer protocol ---------------------------------------------------------------------
    def on_peer(self, peer: str, msg: dict) -> list[int]:
        """A peer-protocol message from ``peer`` (already due); returns pids to wake."""
        kind = msg.get("t")
        r = self.board.get(int(msg.get("rid", -1)))
        if kind == "req":
            if r is None:
                r = EntRequest(int(msg["rid"]), str(msg["creator"]), str(msg["receiver"]),
                               int(msg["csock"]), int(msg["rsock"]), int(msg["type"]),
                               int(msg["number"]),
                               (tuple(int(x) for x in msg["rot"]), int(msg["axes"]), int(msg["rb"])),
                               t_post=int(msg["t_post"]))
                self.board.add(r)
        elif r is None:
            return []  # about a request this node has finished with
        elif kind == "ready":
            r.ready[(peer, int(msg["pair"]))] = int(msg["ts"])
        elif kind == "unready":
            r.ready.pop((peer, int(msg["pair"])), None)
        elif kind == "fin":
            r.finished.add(peer)
            if self.node in r.finished:
                self.board.finish(r, self.node)
        elif kind == "cancel":
            r.cancelled = True
        else:
            self.record("error", None, error="ProtocolError",
                        message=f"unknown peer message {kind!r} from {peer}")
            return []
        return self.poll()

    # -- the network process --------------------------------------------------------------
    def _my_socket_ok(self, r: EntRequest) -> bool:
        if r.creator == self.node:
            return r.rid in self._create
        return self.board.receiver_complies(r)

    def _finish(self, r: EntRequest) -> None:
        peer = r.other(self.node)
        self._create.pop(r.rid, None)
        self.board.finish(r, self.node)
        self._tell(peer, {"t": "fin", "rid": r.rid})

    def _abandon(self, r: EntRequest) -> None:
        phys = self._reserved.pop(r.rid, None)
        if phys is not None:
            self._release(phys)
        self._finish(r)

    def poll(self) -> list[int]:
        """Kernel work that needs no time bin: tell the peer (ready) that this end takes
        part in the head request of each link; withdraw that when an earlier request of
        the link appeared; abandon cancelled requests not yet paired. (The communication
        qubit is taken only for the attempt window itself, when its bin starts: between
        windows other processes may use it -- multitasking.)"""
        woken: list[int] = []
        heads = {r.other(self.node): r for r in self.board.heads()}
        for r in self.board.pending():
            pair = self._done.get(r.rid, 0)
            if (self.node, pair) in r.ready and heads.get(r.other(self.node)) is not r \
                    and not r.both_ready(pair):
                r.ready.pop((self.node, pair), None)
                self._tell(r.other(self.node), {"t": "unready", "rid": r.rid, "pair": pair})
                self.record("entanglement_unready", None, rid=r.rid, pair=pair)
        for peer, r in heads.items():
            pair = self._done.get(r.rid, 0)
            if r.cancelled and not r.both_ready(pair):
                self._abandon(r)
                continue
            if (self.node, pair) in r.ready or not self._my_socket_ok(r):
                continue
            r.ready[(self.node, pair)] = self._tell(peer, {"t": "ready", "rid": r.rid, "pair": pair})
        return woken

    def next_attempt_ns(self) -> int | None:
        """Start (ns) of the next attempt window this node is committed to, or None."""
        best = None
        for r in self.board.heads():
            pair = self._done.get(r.rid, 0)
            if not r.both_ready(pair):
                continue
            key = (r.rid, pair)
            t = self._attempt_at.get(key)
            if t is None:
                t = self._attempt_at[key] = self.schedule.next_bin_start(
                    r.known_by(pair), self.node, r.other(self.node))
            if best is None or t < best:
                best = t
        return best

    def has_demand(self) -> bool:
        """Whether an attempt window is due or scheduled."""
        return self.next_attempt_ns() is not None

    def run(self, until_ns: int | None = None) -> list[int]:
        """Run the network process: every attempt window due by now; returns pids to wake.
        ``until_ns`` (modelled time): the bound the shared clock granted -- a node late
        (its device was busy) into a bin that starts beyond it defers the window to that
        bin, so that its peer, bound by the same grant, can meet it there."""
        woken: list[int] = []
        now = self.driver.now_ns()
        self.next_attempt_ns()
        for r in self.board.heads():
            pair = self._done.get(r.rid, 0)
            t = self._attempt_at.get((r.rid, pair))
            if t is None or t > now or not r.both_ready(pair):
                continue
            peer = r.other(self.node)
            b_now = self.schedule.bin_of(now)
            if not self.schedule.link_active(b_now, self.node, peer):
                # late (the device was busy) into a bin of another link: the next own bin
                nxt = self.schedule.next_bin_start(now, self.node, peer)
                self._attempt_at[(r.rid, pair)] = nxt
                if self._skip is not None:
                    self._skip(peer, nxt)
                continue
            if until_ns is not None and b_now * self.schedule.bin_ns >= until_ns:
                self._attempt_at[(r.rid, pair)] = b_now * self.schedule.bin_ns
                continue
            if r.rid not in self._reserved:
                try:
                    self._reserved[r.rid] = self.qmmu.reserve_comm()
                except QubitAllocationError:  # every communication qubit is in use: let the
                    nxt = self.schedule.next_bin_start(                              # bin pass
                        (b_now + 1) * self.schedule.bin_ns, self.node, peer)
                    self._attempt_at[(r.rid, pair)] = nxt
                    if self._skip is not None:
                        self._skip(peer, nxt)
                    self.record("entanglement_no_qubit", None, rid=r.rid, pair=pair,
                                pair_id=f"{r.rid}.{pair}", bin=b_now)
                    continue
            self._attempt(r, pair, peer, woken)
        return woken + self.poll()

    def _attempt(self, r: EntRequest, pair: int, peer: str, woken: list[int]) -> None:
        """One attempt window of ``attempts_per_bin`` attempts (one controller instruction),
        paired with the peer's window of the same bin by the heralding station."""
        phys = self._reserved[r.rid]
        budget = self.schedule.attempts_per_bin
        t0 = self.driver.now_ns()
        pair_id = f"{r.rid}.{pair}"
        scheduled = self._attempt_at.pop((r.rid, pair))
        resp = self.driver.entangle(phys, EntangleMode.KEEP, peer, attempts=budget)
        t = self.driver.now_ns()
        window_ns = t - t0
        windows = self._windows[(r.rid, pair)] = self._windows.get((r.rid, pair), 0) + 1
        if resp.kind is not ResponseKind.ENT_SUCCESS:
            self.record("entanglement_failed", None, rid=r.rid, pair=pair, pair_id=pair_id,
                        peer=peer, bin=self.schedule.bin_of(t0), budget=budget,
                        window=windows, window_ns=window_ns)
            # the window ended with its bin (or at its budget): both ends try the link's
            # next bin
            nxt_from = (self.schedule.bin_of(max(t0, scheduled)) + 1) * self.schedule.bin_ns
            self._attempt_at[(r.rid, pair)] = self.schedule.next_bin_start(
                max(nxt_from, t), self.node, peer)
            del self._reserved[r.rid]  # free between windows (others may use it)
            self._release(phys)
            return
        del self._windows[(r.rid, pair)]
        del self._reserved[r.rid]
        self._done[r.rid] = pair + 1
        self.record("entanglement_heralded", None, rid=r.rid, pair=pair, pair_id=pair_id,
                    peer=peer, bin=self.schedule.bin_of(t0), phys=phys, budget=budget,
                    window=windows, window_ns=window_ns, bell_state=resp.bell_index)
        if r.cancelled:
            self._release(phys)
        elif r.creator == self.node:
            self._deliver_create(r, pair, phys, resp.bell_index, t, woken)
        else:
            self._on_receiver_pair(r, pair, phys, resp.bell_index, t, woken)
        if pair + 1 >= r.number or r.cancelled:
            self._finish(r)

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
        self.record("entanglement_delivered", task.pid, rid=r.rid, pair=pair,
                    pair_id=f"{r.rid}.{pair}", phys=phys, vaddr=vaddr, role="create")
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
            self.record("entanglement_held", None, rid=r.rid, pair=pair, pair_id=f"{r.rid}.{pair}",
                        phys=phys)
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
        self.record("entanglement_delivered", task.pid, rid=fields[1], pair=k,
                    pair_id=f"{fields[1]}.{fields[4] if fields[0] == TYPE_K else fields[5]}",
                    phys=phys, vaddr=vaddr, role="recv")
        woken.append(task.pid)
