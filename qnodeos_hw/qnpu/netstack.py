"""Entanglement management: EPR sockets, entanglement requests and the network process.

Nodes share nothing but messages. Each node keeps its own :class:`RequestBoard` -- its
replica of the entanglement requests of its links -- and tells the peer QNPU of a link
what changed (peer protocol, JSON-able dicts carried with a virtual arrival time ``ts``):

* ``req``    the creator posted a request (its rid is unique in the network);
* ``ready``  an end reserved a communication qubit for pair ``pair`` of a request;
* ``unready`` it gave that reservation up (an earlier request of the link came first);
* ``fin``    an end is done with the request;
* ``cancel`` an end gives the request up (``why``: ``gone`` -- the program that owned it
  went away -- or ``timeout`` -- the peer did not take part within the request
  timeout; ``bound``: how far the shared clock had let the nodes run when it was sent).
  Both ends then attempt only the windows of bins that start before
  ``stop = next_bin_start(max(arrival of the cancel, bound))`` (both know these times;
  the peer may already be in any window before them), so windows stay paired; after
  that both abandon the request and release what they held for it.

A waiting program whose request is given up ends its subroutine with a named error
(:class:`~.errors.EntanglementAbortedError`, :class:`~.errors.EntanglementTimeoutError`).
Every peer message is checked by :func:`check_peer_message` before it is acted on
(sender identity: the link it came over, never a field of the message).

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
from .errors import (EntanglementAbortedError, EntanglementTimeoutError, EPRSocketError,
                     PeerProtocolError, QubitAllocationError)
from .qmmu import QMMU

RESULT_FIELDS = 10  # netqasm OK_FIELDS_K == OK_FIELDS_M
TYPE_K, TYPE_M = 0, 1
#: request ids: creator node id * RID_BASE + the creator's own counter (unique in a network)
RID_BASE = 1_000_000
#: entanglement requests of one peer a node keeps on its board at most
MAX_PENDING_PER_PEER = 1024


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
    #: when cancelled: why ('gone' or 'timeout'), by which node, and the first bin start
    #: at which neither end attempts a window of it any more
    why: str = ""
    cancelled_by: str = ""
    stop_ns: int = 0

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
        #: :meth:`heads`, until a request is added or this node finishes one
        self._heads: tuple[EntRequest, ...] | None = None

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
        self._heads = None

    def get(self, rid: int) -> EntRequest | None:
        return self._requests.get(rid)

    def receiver_complies(self, r: EntRequest) -> bool:
        """This node (the receiver) has the socket open that the creator's request names."""
        return self._sockets.get((r.receiver_socket, r.creator)) == r.creator_socket

    def heads(self) -> tuple[EntRequest, ...]:
        """The first unfinished request of each link (in (post time, creator, rid) order;
        a request's order never changes, so the answer holds until :meth:`add` or
        :meth:`finish` by this node)."""
        if self._heads is not None:
            return self._heads
        best: dict[str, EntRequest] = {}
        for r in self._requests.values():
            if self.node in r.finished:
                continue
            peer = r.other(self.node)
            h = best.get(peer)
            if h is None or r.order < h.order:
                best[peer] = r
        self._heads = tuple(sorted(best.values(), key=lambda r: r.order))
        return self._heads

    def finish(self, r: EntRequest, node: str) -> None:
        r.finished.add(node)
        self._heads = None
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
    since: int = 0  # node time (ns) of the request or of its last delivered pair


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
                 skip: Callable[[str, int], None] | None = None,
                 request_timeout_ns: int | None = None, deadline_events: bool = False,
                 grant: Callable[[], int] | None = None) -> None:
        self.node, self.driver, self.qmmu, self.board = node, driver, qmmu, board
        if request_timeout_ns is not None and request_timeout_ns <= 0:
            raise ValueError(f"request timeout must be > 0 ns, got {request_timeout_ns}")
        #: how long (node ns) a request waits for its peer to take part (None: forever)
        self.timeout_ns = request_timeout_ns
        #: whether :meth:`next_attempt_ns` includes request deadlines (modelled time: the
        #: QNPU then reaches them as events; free time: the QNPU calls :meth:`expire`)
        self.deadline_events = deadline_events
        #: modelled time: the latest bound the shared clock granted (the peer may already
        #: be in any window of a bin before it; no later grant comes before the peer has
        #: received what this node sends now)
        self._grant = grant
        #: modelled time: measure pairs of measure-directly requests in a later run of their
        #: own (:meth:`run_deferred`), which the QNPU holds for its turn of the shared
        #: clock -- the two ends' measurements of one pair then go in a fixed order
        self.defer_measure = False
        self._deferred: deque = deque()
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
        #: pid -> the named error its waiting subroutine ends with (taken by the QNPU)
        self.failures: dict[int, Exception] = {}
        self._wait_since: dict[tuple[int, int], int] = {}  # (rid, pair) -> ready, peer not yet
        self._engaged: set[int] = set()  # receiver side: rids this node was ready for
        #: requests of one peer this node keeps at most (more are refused: 'cancel' 'full')
        self.max_pending_per_peer = MAX_PENDING_PER_PEER
        #: peers whose QNPU went away (:meth:`peer_lost`): requests with them fail at once
        self.lost_peers: set[str] = set()
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
        self._check_not_lost(remote)
        type_ = args[CI.TYPE] if args[CI.TYPE] is not None else TYPE_K
        number = args[CI.NUMBER] if args[CI.NUMBER] is not None else 1
        if type_ not in (TYPE_K, TYPE_M):
            raise EPRSocketError(f"create_epr: request type {type_} (remote state preparation) "
                                 f"is not supported")
        if not isinstance(number, int) or not 1 <= number <= 0xFFFF:
            raise EPRSocketError(f"create_epr: number of pairs must be 1..65535, got {number}")
        for i, what in ((CI.ROTATION_AXES_LOCAL, "local"), (CI.ROTATION_AXES_REMOTE, "remote")):
            if (args[i] or 0) not in (0, 1, 2):
                raise EPRSocketError(f"create_epr: {what} rotation axes {args[i]} is not one "
                                     f"of 0 (XYX), 1 (YZY), 2 (ZXZ)")
        for i, what in ((CI.RANDOM_BASIS_LOCAL, "local"), (CI.RANDOM_BASIS_REMOTE, "remote")):
            if (args[i] or 0) not in (RandomBasis.NONE.value, RandomBasis.XZ.value,
                                      RandomBasis.XYZ.value):
                raise EPRSocketError(f"create_epr: {what} random basis {args[i]} is not "
                                     f"supported (none, XZ or XYZ)")
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
        self._check_not_lost(remote)
        number = len(results) // RESULT_FIELDS
        task = _RecvTask(pid, q_array, results, number, since=self.driver.now_ns())
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
        """A user process went away (stopped, disconnected or killed): give up its create
        requests and the requests its sockets were serving as receiver (the peer learns
        it: ``cancel``), forget its recv requests, close its sockets and release every
        qubit held for it (pairs held for its sockets, deliveries waiting for its
        addresses, reservations of the requests given up)."""
        self.failures.pop(pid, None)
        for rid, t in list(self._create.items()):
            if t.pid == pid:
                t.q_array, t.results = None, [None] * len(t.results)
                t.pid = -1
                r = self.board.get(rid)
                if r is not None:
                    self._cancel(r, "gone", self.node)
        keep = []
        for entry in self._blocked:
            if entry[5].pid in (pid, -1):
                self._release(entry[2])
            else:
                keep.append(entry)
        self._blocked = keep
        for key, q in list(self._recv.items()):
            q = deque(t for t in q if t.pid != pid)
            if q:
                self._recv[key] = q
            else:
                del self._recv[key]
        closed = set(sockets)
        for sid, remote in sockets:
            self.board.close_socket(sid, remote)
            for h in self._held.pop((remote, sid), ()):
                if h.phys is not None:
                    self._release(h.phys)
        for r in self.board.pending():
            if r.receiver == self.node and (r.receiver_socket, r.creator) in closed \
                    and r.rid in self._engaged and self.node not in r.finished:
                self._cancel(r, "gone", self.node)
        self.poll()

    # -- giving requests up ------------------------------------------------------------
    def _cancel(self, r: EntRequest, why: str, by: str, ts: int | None = None,
                bound: int = 0) -> list[int]:
        """Give ``r`` up (``by`` this node: tell the peer; else the peer's ``cancel``
        arrived at ``ts``). Waiting programs of this node get the named error at once;
        windows of bins before ``r.stop_ns`` are still attempted (both ends agreed on
        them), then :meth:`poll` abandons the request. Returns pids to wake."""
        if r.cancelled or self.node in r.finished:
            return []
        peer = r.other(self.node)
        r.cancelled, r.why, r.cancelled_by = True, why, by
        if ts is None:  # this end gives up; the peer may already be in any bin before
            bound = self.driver.now_ns()  # the shared clock's grant (modelled time)
            if self._grant is not None:
                bound = max(bound, self._grant())
            ts = self._tell(peer, {"t": "cancel", "rid": r.rid, "why": why, "bound": bound})
        try:  # windows of bins before the first one the peer cannot be in yet still go
            r.stop_ns = self.schedule.next_bin_start(max(int(ts), bound), self.node, peer)
        except EPRSocketError:
            r.stop_ns = max(int(ts), bound)
        self._wait_since = {k: v for k, v in self._wait_since.items() if k[0] != r.rid}
        self.record("entanglement_cancelled", None, rid=r.rid, peer=peer, why=why, by=by,
                    stop_ns=r.stop_ns)
        woken: list[int] = []
        err = self._abort_error(r)
        if r.creator == self.node:
            task = self._create.get(r.rid)
            if task is not None and task.pid >= 0:
                self._fail_pid(task.pid, err, woken)
                task.q_array, task.results = None, [None] * len(task.results)
                task.pid = -1
        elif self._done.get(r.rid, 0) < r.number:  # the pairs it still owed never come
            key = (r.creator, r.receiver_socket)
            q = self._recv.get(key)
            if q and not self._recv_done(q[0]):
                self._fail_pid(q.popleft().pid, err, woken)
                if not q:
                    del self._recv[key]
        return woken

    def _check_not_lost(self, peer: str) -> None:
        if peer in self.lost_peers:
            raise EntanglementAbortedError(f"node '{self.node}': node '{peer}' went away (its "
                                           "QNPU's connection closed): no pairs with it")

    def peer_lost(self, peer: str) -> list[int]:
        """``peer``'s QNPU went away (its process died: the peer connection closed):
        every pending request with it ends now -- no window is attempted any more, the
        waiting programs get :class:`EntanglementAbortedError` naming the peer, what was
        held for the requests is released -- and new requests with it fail at once.
        Returns pids to wake."""
        self.lost_peers.add(peer)
        woken: list[int] = []
        now = self.driver.now_ns()
        for r in list(self.board.pending()):
            if r.other(self.node) != peer or self.node in r.finished:
                continue
            if not r.cancelled:
                woken += self._cancel(r, "lost", peer, ts=now, bound=now)
            r.stop_ns = now  # nobody to meet in any bin: abandon at once
        return woken + self.poll()

    def _abort_error(self, r: EntRequest) -> Exception:
        peer = r.other(self.node)
        if r.why == "lost":
            return EntanglementAbortedError(
                f"node '{self.node}': entanglement request {r.rid} with node '{peer}' was given "
                f"up: node '{peer}' went away (its QNPU's connection closed)")
        if r.why == "timeout":
            who = "this node" if r.cancelled_by == self.node else f"node '{peer}'"
            return EntanglementTimeoutError(
                f"node '{self.node}': entanglement request {r.rid} with node '{peer}' timed "
                f"out: {who} waited {self._timeout_text()} for the other end to take part")
        if r.why == "full":
            return EntanglementAbortedError(
                f"node '{self.node}': entanglement request {r.rid} was refused by node "
                f"'{peer}': too many of this node's requests are pending there")
        whose = "this node's" if r.cancelled_by == self.node else f"node '{peer}''s"
        return EntanglementAbortedError(
            f"node '{self.node}': entanglement request {r.rid} with node '{peer}' was given "
            f"up: {whose} program that took part in it went away")

    def _timeout_text(self) -> str:
        return "forever" if self.timeout_ns is None else f"{self.timeout_ns / 1e9:g} s"

    def _fail_pid(self, pid: int, err: Exception, woken: list[int]) -> None:
        self.failures[pid] = err
        woken.append(pid)

    # -- request timeouts ---------------------------------------------------------------
    def _covered(self, key: tuple[str, int]) -> bool:
        """Whether a live request of the peer serves recv requests of ``key``."""
        return any(r.creator == key[0] and r.receiver_socket == key[1] and not r.cancelled
                   and self.node not in r.finished for r in self.board.pending())

    def next_deadline_ns(self) -> int | None:
        """When the next waiting request times out (node ns), or None."""
        if self.timeout_ns is None:
            return None
        cands = [t + self.timeout_ns for t in self._wait_since.values()]
        for key, q in self._recv.items():
            if q and not self._recv_done(q[0]) and not self._covered(key):
                cands.append(q[0].since + self.timeout_ns)
        return min(cands) if cands else None

    def expire(self, now_ns: int | None = None) -> list[int]:
        """Give up what waited for its peer longer than the request timeout: a create
        request the peer never became ready for (the peer learns it: ``cancel``), a recv
        request no create request came for. Their programs get
        :class:`EntanglementTimeoutError`. Returns pids to wake."""
        if self.timeout_ns is None:
            return []
        now = self.driver.now_ns() if now_ns is None else now_ns
        woken: list[int] = []
        for (rid, pair), t in list(self._wait_since.items()):
            r = self.board.get(rid)
            if r is None or r.both_ready(pair):
                self._wait_since.pop((rid, pair), None)
            elif now >= t + self.timeout_ns:
                self.record("entanglement_timeout", None, rid=rid, pair=pair, role="create",
                            peer=r.other(self.node), waited_ns=now - t)
                woken += self._cancel(r, "timeout", self.node)
        for key, q in list(self._recv.items()):
            if q and not self._recv_done(q[0]) and not self._covered(key) \
                    and now >= q[0].since + self.timeout_ns:
                task = q.popleft()
                if not q:
                    del self._recv[key]
                self.record("entanglement_timeout", task.pid, role="recv", peer=key[0],
                            socket=key[1], waited_ns=now - task.since)
                self._fail_pid(task.pid, EntanglementTimeoutError(
                    f"node '{self.node}': recv request on EPR socket {key[1]} got no "
                    f"entanglement request from node '{key[0]}' within "
                    f"{self._timeout_text()}"), woken)
        return woken + (self.poll() if woken else [])

    def _release(self, phys: int) -> None:
        self.qmmu.release(phys)
        self.driver.free(phys)

    # -- peer protocol ---------------------------------------------------------------------
    def on_peer(self, peer: str, msg: dict) -> list[int]:
        """A peer-protocol message from ``peer`` (the link it came over; already due);
        returns pids to wake. A malformed message is recorded as a
        :class:`PeerProtocolError` and dropped: it changes nothing."""
        try:
            if isinstance(msg, dict) and msg.get("t") == "invalid":  # checked on arrival
                raise PeerProtocolError(str(msg.get("error"))[:500])
            m = check_peer_message(peer, msg, self.node)
        except PeerProtocolError as exc:
            self.record("error", None, error="PeerProtocolError", message=str(exc))
            return []
        kind = m["t"]
        r = self.board.get(m["rid"])
        if kind == "req":
            if r is None and sum(1 for x in self.board.pending()
                                 if peer in (x.creator, x.receiver)) >= self.max_pending_per_peer:
                self.record("error", None, error="PeerProtocolError",
                            message=f"request {m['rid']} from '{peer}' refused: "
                                    f"{self.max_pending_per_peer} of its requests are pending")
                self._tell(peer, {"t": "cancel", "rid": m["rid"], "why": "full", "bound": 0})
                return []
            if r is None:
                r = EntRequest(m["rid"], peer, self.node, m["csock"], m["rsock"], m["type"],
                               m["number"], (tuple(m["rot"]), m["axes"], m["rb"]),
                               t_post=m["t_post"])
                self.board.add(r)
            return self.poll()
        if r is None or peer not in (r.creator, r.receiver):
            return []  # about a request this node has finished with (or not of this link)
        woken: list[int] = []
        if kind == "ready":
            r.ready[(peer, m["pair"])] = m["ts"]
        elif kind == "unready":
            r.ready.pop((peer, m["pair"]), None)
        elif kind == "fin":
            r.finished.add(peer)
            if self.node in r.finished:
                self.board.finish(r, self.node)
        elif kind == "cancel":
            woken = self._cancel(r, m["why"], peer, ts=m["ts"], bound=m["bound"])
        return woken + self.poll()

    # -- the network process --------------------------------------------------------------
    def _my_socket_ok(self, r: EntRequest) -> bool:
        if r.creator == self.node:
            return r.rid in self._create
        if not self.board.receiver_complies(r):
            return False
        if self._recv.get((r.creator, r.receiver_socket)):
            return True  # its own recv request waits for this pair
        # Without a recv request of its own a receiver complies only while all its EPR
        # sockets go to this one peer: a node of several links (a chain's middle node)
        # would otherwise hold its communication qubit for this pair while its program
        # waits for a pair on another link first -- both wait for ever.
        return all(remote == r.creator for _, remote in self.board.open_sockets())

    def _finish(self, r: EntRequest) -> None:
        peer = r.other(self.node)
        self._create.pop(r.rid, None)
        self._done.pop(r.rid, None)
        self._engaged.discard(r.rid)
        for d in (self._attempt_at, self._windows, self._wait_since):
            for k in [k for k in d if k[0] == r.rid]:
                del d[k]
        self.board.finish(r, self.node)
        self._tell(peer, {"t": "fin", "rid": r.rid})

    def _abandon(self, r: EntRequest) -> None:
        """A cancelled request with no more agreed windows: release, finish, and tell the
        heralding station this end attempts nothing more with the peer before the stop."""
        phys = self._reserved.pop(r.rid, None)
        if phys is not None:
            self._release(phys)
        self.record("entanglement_abandoned", None, rid=r.rid, peer=r.other(self.node),
                    why=r.why)
        self._finish(r)
        if self._skip is not None and r.stop_ns:
            self._skip(r.other(self.node), r.stop_ns)

    def _scheduled(self, r: EntRequest, pair: int) -> int | None:
        """Start of the next window of ``pair`` (both ends ready), or None."""
        if not r.both_ready(pair):
            return None
        key = (r.rid, pair)
        t = self._attempt_at.get(key)
        if t is None:
            t = self._attempt_at[key] = self.schedule.next_bin_start(
                r.known_by(pair), self.node, r.other(self.node))
        return t

    def poll(self) -> list[int]:
        """Kernel work that needs no time bin: tell the peer (ready) that this end takes
        part in the head request of each link; withdraw that when an earlier request of
        the link appeared; abandon cancelled requests not yet paired. (The communication
        qubit is taken only for the attempt window itself, when its bin starts: between
        windows other processes may use it -- multitasking.)"""
        woken: list[int] = []
        for r in self.board.pending():  # given up: abandon once no agreed window is left
            if r.cancelled and self.node not in r.finished:
                t = self._scheduled(r, self._done.get(r.rid, 0))
                if t is None or t >= r.stop_ns:
                    self._abandon(r)
        heads = {r.other(self.node): r for r in self.board.heads()}
        for r in self.board.pending():
            if self.node in r.finished:
                continue
            pair = self._done.get(r.rid, 0)
            if (self.node, pair) in r.ready and not r.both_ready(pair) and (
                    heads.get(r.other(self.node)) is not r or not self._my_socket_ok(r)):
                r.ready.pop((self.node, pair), None)
                self._wait_since.pop((r.rid, pair), None)
                self._tell(r.other(self.node), {"t": "unready", "rid": r.rid, "pair": pair})
                self.record("entanglement_unready", None, rid=r.rid, pair=pair)
        for peer, r in heads.items():
            pair = self._done.get(r.rid, 0)
            if r.cancelled or (self.node, pair) in r.ready or not self._my_socket_ok(r):
                if r.both_ready(pair):
                    self._wait_since.pop((r.rid, pair), None)
                continue
            r.ready[(self.node, pair)] = self._tell(peer, {"t": "ready", "rid": r.rid, "pair": pair})
            if r.receiver == self.node:
                self._engaged.add(r.rid)
            elif not r.both_ready(pair):
                self._wait_since[(r.rid, pair)] = self.driver.now_ns()
        return woken

    def next_attempt_ns(self) -> int | None:
        """Start (ns) of the next attempt window this node is committed to, or None."""
        best = None
        for r in self.board.heads():
            t = self._scheduled(r, self._done.get(r.rid, 0))
            if t is not None and (best is None or t < best):
                best = t
        if self.deadline_events:
            d = self.next_deadline_ns()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def has_demand(self) -> bool:
        """Whether an attempt window is due or scheduled."""
        return self.next_attempt_ns() is not None

    def run(self, until_ns: int | None = None) -> list[int]:
        """Run the network process: every attempt window due by now; returns pids to wake.
        ``until_ns`` (modelled time): the bound the shared clock granted -- a node late
        (its device was busy) into a bin that starts beyond it defers the window to that
        bin, so that its peer, bound by the same grant, can meet it there."""
        now = self.driver.now_ns()
        woken: list[int] = self.expire(now)
        self.next_attempt_ns()
        for r in self.board.heads():
            pair = self._done.get(r.rid, 0)
            t = self._attempt_at.get((r.rid, pair))
            if t is None or t > now or not r.both_ready(pair):
                continue
            if r.cancelled and t >= r.stop_ns:
                continue  # no agreed window left: poll() abandons it
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
        if r.cancelled:  # given up: the pair is nobody's
            self._release(phys)
            self._abandon(r)
            return
        if r.creator == self.node:
            self._deliver_create(r, pair, phys, resp.bell_index, t, woken)
        else:
            self._on_receiver_pair(r, pair, phys, resp.bell_index, t, woken)
        if pair + 1 >= r.number:
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

    def has_deferred(self) -> bool:
        """Whether heralded measure-directly pairs wait for :meth:`run_deferred`."""
        return bool(self._deferred)

    def run_deferred(self) -> list[int]:
        """Measure and deliver the heralded measure-directly pairs (in herald order);
        returns pids to wake."""
        woken: list[int] = []
        while self._deferred:
            self._deferred.popleft()(woken)
        return woken

    def _deliver_create(self, r: EntRequest, pair: int, phys: int, bell: int, t: int,
                        woken: list[int], task: _CreateTask | None = None,
                        measure_now: bool = False) -> None:
        task = task or self._create.get(r.rid)
        if task is None or task.pid < 0:
            self._release(phys)
            return
        if r.type != TYPE_K and self.defer_measure and not measure_now:
            self._deferred.append(lambda w: self._deliver_create(r, pair, phys, bell, t, w,
                                                                 task, True))
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
                          woken: list[int], measure_now: bool = False) -> None:
        key = (r.creator, r.receiver_socket)
        if not self.board.receiver_complies(r):  # its program went away meanwhile
            self._release(phys)
            return
        if r.type == TYPE_M and self.defer_measure and not measure_now:
            self._deferred.append(lambda w: self._on_receiver_pair(r, pair, phys, bell, t, w, True))
            return
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
        task.since = self.driver.now_ns()
        self.record("entanglement_delivered", task.pid, rid=fields[1], pair=k,
                    pair_id=f"{fields[1]}.{fields[4] if fields[0] == TYPE_K else fields[5]}",
                    phys=phys, vaddr=vaddr, role="recv")
        woken.append(task.pid)


# -- peer messages as data ----------------------------------------------------------------
_PEER_KINDS = ("req", "ready", "unready", "fin", "cancel")
_MAX_INT = 2**63 - 1


def _int(msg: dict, key: str, lo: int = 0, hi: int = _MAX_INT) -> int:
    v = msg.get(key)
    if type(v) is not int or not lo <= v <= hi:  # bool is no int here
        raise PeerProtocolError(f"peer message {msg.get('t')!r}: field {key!r} must be an "
                                f"integer in [{lo}, {hi}], got {v!r:.60}")
    return v


def check_peer_message(peer: str, msg: Any, node: str = "") -> dict:
    """The checked form of a peer-protocol message from ``peer`` to ``node`` (fields by
    kind, integers in range, JSON data only), or :class:`PeerProtocolError` naming what is
    wrong. A request's creator is the sending node (``peer``, the link the message came
    over) and its receiver this node: a field cannot claim another identity."""
    if node and peer == node:
        raise PeerProtocolError(f"node '{node}' got a peer message from itself")
    if not isinstance(msg, dict):
        raise PeerProtocolError(f"peer message from '{peer}' is not a JSON object "
                                f"({type(msg).__name__})")
    kind = msg.get("t")
    if kind not in _PEER_KINDS:
        raise PeerProtocolError(f"unknown peer message {kind!r:.40} from '{peer}'")
    out: dict = {"t": kind, "rid": _int(msg, "rid"), "ts": _int(msg, "ts")}
    if kind == "req":
        for k in ("csock", "rsock"):
            out[k] = _int(msg, k, 0, 0xFFFF)
        out["type"] = _int(msg, "type", TYPE_K, TYPE_M)
        out["number"] = _int(msg, "number", 1, 0xFFFF)
        out["axes"] = _int(msg, "axes", 0, 2)
        out["rb"] = _int(msg, "rb", 0, 2)
        out["t_post"] = _int(msg, "t_post")
        rot = msg.get("rot")
        if not isinstance(rot, list) or len(rot) != 3 or any(type(x) is not int or not
                                                             -2**31 <= x < 2**31 for x in rot):
            raise PeerProtocolError(f"peer message 'req': field 'rot' must be 3 integers, "
                                    f"got {rot!r:.60}")
        out["rot"] = list(rot)
        if msg.get("creator") != peer or (node and msg.get("receiver") != node):
            raise PeerProtocolError(
                f"peer message 'req' over the link from '{peer}' names creator "
                f"{msg.get('creator')!r:.40} and receiver {msg.get('receiver')!r:.40}: a node "
                f"requests only for itself, from the node it sends to")
        out["creator"], out["receiver"] = peer, msg["receiver"]
    elif kind in ("ready", "unready"):
        out["pair"] = _int(msg, "pair", 0, 0xFFFF)
    elif kind == "cancel":
        why = msg.get("why", "gone")
        if why not in ("gone", "timeout", "full"):
            raise PeerProtocolError(f"peer message 'cancel': 'why' must be 'gone', 'timeout' "
                                    f"or 'full', got {why!r:.40}")
        out["why"] = why
        out["bound"] = _int(msg, "bound") if "bound" in msg else 0
    return out


def checked_peer_message(peer: str, msg: Any, node: str = "") -> dict:
    """:func:`check_peer_message` for a transport: never raises. A malformed message
    becomes ``{"t": "invalid", "rid": -1, "ts": <its ts if valid, else 0>, "error": why}``,
    which still counts as received (the shared clock balances channels by count) and
    is recorded and dropped by :meth:`NetworkStack.on_peer`."""
    try:
        return check_peer_message(peer, msg, node)
    except PeerProtocolError as exc:
        ts = msg.get("ts") if isinstance(msg, dict) else None
        if type(ts) is not int or not 0 <= ts <= _MAX_INT:
            ts = 0
        return {"t": "invalid", "rid": -1, "ts": ts, "error": str(exc)}
