"""Conservative synchronisation of a network's virtual clocks (modelled time mode).

Every component that sends timestamped messages is a *logical process* (LP): each
node's QNPU (``qnpu:<node>``) and each CNPU program (``prog:<role>``). A message
carries the virtual time at which it *arrives* (send time + modelled delay), so the
receiver can order what reaches it. Components share nothing but messages; the one
extra party is the network's shared clock, :class:`TimeCoordinator` (in the paper the
QDevices share a clock that synchronises their QNPUs; in simulation this object stands
for it, reachable in-process or over TCP through :class:`ClockServer`).

Protocol (all messages JSON-able dicts):

* ``report`` LP -> clock: ``{"lp", "seq", "next_ns", "sent": {dst: n}, "recv": {src: n},
  "round", "done"}`` -- sent when the LP cannot go on by itself: ``next_ns`` is the
  virtual time of its next own event (None: it waits for a message), ``sent``/``recv``
  count the timestamped messages per channel so far, ``round`` the last grant the LP
  has acted on (QNPUs only), ``ordered_ns`` (QNPUs only, optional) the time of a process
  run the QNPU holds back until it is its turn (see below), ``window_ns`` (QNPUs only,
  optional) set when the QNPU is about to wait in an attempt window for its peer.
* ``grant`` clock -> QNPU: ``{"round", "until_ns", "pass_lp"}`` -- the QNPU may process
  every event whose time is below ``until_ns``; ``pass_lp`` names the one QNPU that may
  run its held-back process (None in an ordinary grant).

The clock grants a new round only when every LP has reported since the last grant it
got, every channel is balanced (nothing in flight: the count a sender reports equals
the count its receiver reports), and then grants ``GVT + lookahead``, where GVT is the
earliest ``next_ns`` and the lookahead the smallest modelled one-way delay: no event
at or after GVT can cause a message that arrives before ``GVT + lookahead``. CNPU
programs never wait for grants: what a program does depends only on the contents of
the messages it receives (their virtual times are carried, not observed), so it may
run ahead in wall time; it reports whenever it blocks.

*Ordered runs.* Within one grant the QNPUs run in parallel, which is exact as long as
what one node does cannot change another's outcomes. A measurement of a qubit whose
joint state spans another node's qubit (the half of an entangled pair) is the
exception: its random outcome depends on whether the partner's half was measured
first. A QNPU that holds such a qubit therefore does not run a user process by itself:
it reports ``ordered_ns`` (the run's virtual time) and waits. Once every QNPU is blocked,
the clock passes the turn to the held run with the least ``(ordered_ns, lp)``, one run
at a time, before it grants further time (programs and messages in flight need not be
waited for: by the lookahead nothing they send arrives before the current grant). Runs touching
joint states thus happen in one order fixed by virtual time and node names, on any
machine under any load. A QNPU waiting in an attempt window counts as blocked (its peer
may be the one holding a run back), but while it is there no held run later than its
window goes (whatever it holds after the window comes after the window), and no new
time is granted: a grant never changes while a QNPU runs.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
import struct
import threading
from collections import defaultdict
from typing import Any, Callable

from .latency import LatencyModel

_LEN = struct.Struct(">I")


class TimeSyncError(RuntimeError):
    """The synchronisation protocol was violated (names the LP and what it did)."""


class _LPState:
    __slots__ = ("kind", "reported", "seq", "next_ns", "sent", "recv", "round", "done", "gone",
                 "ordered_ns", "window_ns")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.reported = False
        self.seq = -1
        self.next_ns: int | None = None
        self.sent: dict[str, int] = {}
        self.recv: dict[str, int] = {}
        self.round = -1
        self.done = False
        self.gone = False
        self.ordered_ns: int | None = None
        self.window_ns: int | None = None


class TimeCoordinator:
    """The shared clock of one simulated network (see the module docstring).

    ``lookahead_ns``: smallest modelled one-way delay (> 0). LPs must be declared
    before they send anything (:meth:`expect`), so that the clock waits for their
    first report; QNPUs :meth:`attach` a callback that receives grants.
    """

    def __init__(self, lookahead_ns: int) -> None:
        if lookahead_ns <= 0:
            raise TimeSyncError(f"lookahead must be > 0 ns, got {lookahead_ns}")
        self.lookahead_ns = int(lookahead_ns)
        self._lock = threading.Lock()
        self._lps: dict[str, _LPState] = {}
        self._grant_cb: dict[str, Callable[[int, int, str | None], None]] = {}
        self.round = 0
        self.until_ns = 0
        self.rounds = 0
        self.gvt_ns = 0
        #: turns passed to held-back (ordered) runs
        self.passes = 0

    # -- membership ---------------------------------------------------------------------
    def expect(self, lp: str, kind: str = "program") -> None:
        with self._lock:
            self._lps.setdefault(lp, _LPState(kind))

    def attach(self, qnpu_lp: str, on_grant: Callable[[int, int, str | None], None]) -> None:
        """A QNPU: ``on_grant(round, until_ns, pass_lp)`` is called (from any thread) per
        grant (``pass_lp``: the QNPU whose held-back run may go, or None)."""
        with self._lock:
            self._lps.setdefault(qnpu_lp, _LPState("qnpu")).kind = "qnpu"
            self._grant_cb[qnpu_lp] = on_grant
        on_grant(self.round, self.until_ns, None)

    def gone(self, lp: str) -> None:
        """``lp`` went away without finishing (e.g. its process was killed): its channels
        no longer count."""
        with self._lock:
            st = self._lps.get(lp)
            if st is not None:
                st.gone = True
            self._try_advance()

    # -- reports ------------------------------------------------------------------------
    def report(self, msg: dict[str, Any]) -> None:
        """A report message (see the module docstring), e.g. as read from the wire."""
        nxt, ordered, window = msg.get("next_ns"), msg.get("ordered_ns"), msg.get("window_ns")
        self.report_state(
            str(msg["lp"]), int(msg.get("seq", 0)), None if nxt is None else int(nxt),
            {str(k): int(v) for k, v in (msg.get("sent") or {}).items()},
            {str(k): int(v) for k, v in (msg.get("recv") or {}).items()},
            int(msg.get("round", -1)), bool(msg.get("done", False)),
            None if ordered is None else int(ordered), None if window is None else int(window))

    def report_state(self, lp: str, seq: int, next_ns: int | None, sent: dict[str, int],
                     recv: dict[str, int], round_: int = -1, done: bool = False,
                     ordered_ns: int | None = None, window_ns: int | None = None) -> None:
        """:meth:`report` with its fields as arguments (typed; ``sent``/``recv`` are kept,
        not copied: the caller passes its own copies)."""
        with self._lock:
            st = self._lps.get(lp)
            if st is None:
                raise TimeSyncError(f"report from undeclared logical process '{lp}'")
            if seq <= st.seq:
                return  # stale (reports of one LP may overtake each other across threads)
            st.seq, st.reported = seq, True
            st.next_ns, st.sent, st.recv, st.round, st.done = next_ns, sent, recv, round_, done
            st.ordered_ns, st.window_ns = ordered_ns, window_ns
            self._try_advance()

    def _try_advance(self) -> None:
        lps = self._lps
        for st in lps.values():
            if st.kind == "qnpu" and not st.gone and (not st.reported or st.round < self.round):
                return
        held = [(st.ordered_ns, name) for name, st in lps.items()
                if not st.gone and st.ordered_ns is not None]
        if held:
            # every QNPU is blocked and nothing in flight or still to be sent arrives
            # before until_ns (lookahead): programs need not be waited for. The earliest
            # held-back run goes, alone.
            t, turn = min(held)
            windows = [st.window_ns for st in lps.values()
                       if not st.gone and st.window_ns is not None]
            if windows and t > min(windows):
                return  # a QNPU in an earlier window may hold a run before this one
            self.round += 1
            self.passes += 1
            for cb in self._grant_cb.values():
                cb(self.round, self.until_ns, turn)
            return
        if any(st.window_ns is not None for st in lps.values() if not st.gone):
            return  # no new time while a QNPU is inside its run (grants stay fixed then)
        for name, st in lps.items():
            if st.gone:
                continue
            if not st.reported:
                return
            for dst, n in st.sent.items():
                d = lps.get(dst)
                if d is not None and not d.gone and d.recv.get(name, 0) != n:
                    return
        times = [st.next_ns for st in lps.values() if not st.gone and st.next_ns is not None]
        if not times:
            return  # nothing can happen until some LP acts (or the run is over)
        gvt = min(times)
        until = max(gvt + self.lookahead_ns, self.until_ns + 1)
        self.gvt_ns = gvt
        self.round += 1
        self.rounds += 1
        self.until_ns = until
        for cb in self._grant_cb.values():
            cb(self.round, until, None)

    def status(self) -> dict[str, Any]:
        """What the clock waits for (for error messages and tests)."""
        with self._lock:
            return {"round": self.round, "until_ns": self.until_ns, "gvt_ns": self.gvt_ns,
                    "passes": self.passes,
                    "lps": {n: {"reported": s.reported, "next_ns": s.next_ns, "round": s.round,
                                "ordered_ns": s.ordered_ns, "window_ns": s.window_ns,
                                "done": s.done, "gone": s.gone, "sent": dict(s.sent),
                                "recv": dict(s.recv)} for n, s in self._lps.items()}}


# -- a CNPU program as a logical process ---------------------------------------------------
class ProgramClock:
    """The virtual clock of one CNPU program (``lp`` = ``prog:<role>``).

    The program's time ``t_ns`` starts at 0 and moves only by modelled latencies:
    sending a subroutine costs a ``cnpu_subroutine`` draw, a classical message a
    ``cnpu_classical`` draw, each indexed by the program's own message counters;
    consuming a message moves ``t_ns`` to at least its arrival time. Every blocking
    wait of the program goes through :meth:`wait` (which reports to the clock, see the
    module docstring) and every message arriving for it through :meth:`deliver`, under
    one lock, so that "blocked" is reported exactly when the program cannot proceed.
    """

    def __init__(self, lp: str, model: LatencyModel, reporter: Callable[[dict], None]) -> None:
        self.lp, self.model, self._reporter = lp, model, reporter
        self.t_ns = 0
        self.cond = threading.Condition()
        self._sent: dict[str, int] = defaultdict(int)
        self._recv: dict[str, int] = defaultdict(int)
        self._blocked = False
        self._pred: Callable[[], bool] | None = None
        self._count: dict[str, int] = defaultdict(int)
        self._last: dict[str, int] = {}
        self._seq = 0
        self._done = False
        #: count of this program's trace events (orders events of equal time)
        self.trace_seq = 0

    def _draw(self, segment: str) -> int:
        i = self._count[segment]
        self._count[segment] = i + 1
        return self.model.draw(segment, self.lp, i)

    def stamp(self, dst_lp: str, kind: str) -> int:
        """Arrival time (ns) of the next message to ``dst_lp``: ``kind`` 'subroutine'
        (CNPU processing + CNPU->QNPU), 'control' (CNPU->QNPU only: app registration,
        sockets, stop) or 'classical' (CNPU processing + CNPU->CNPU). Counts it sent."""
        with self.cond:
            if kind == "subroutine":
                self.t_ns += self._draw("cnpu_subroutine")
                ts = self.t_ns + self._draw("cnpu_to_qnpu")
            elif kind == "control":
                ts = self.t_ns + self._draw("cnpu_to_qnpu")
            elif kind == "classical":
                self.t_ns += self._draw("cnpu_classical")
                ts = self.t_ns + self._draw("cnpu_to_cnpu")
            else:
                raise ValueError(f"unknown message kind {kind!r}")
            # a channel is FIFO (TCP): no message overtakes an earlier one
            ts = max(ts, self._last.get(dst_lp, 0))
            self._last[dst_lp] = ts
            self._sent[dst_lp] += 1
            return ts

    def consume(self, ts_ns: int) -> None:
        """The program takes a message that arrived at ``ts_ns``."""
        with self.cond:
            if ts_ns > self.t_ns:
                self.t_ns = ts_ns

    def deliver(self, src_lp: str, put: Callable[[], None]) -> None:
        """A message from ``src_lp`` arrives: ``put()`` stores it (under the lock)."""
        with self.cond:
            put()
            self._recv[src_lp] += 1
            if self._blocked:
                if self._pred is not None and self._pred():
                    self._blocked = False  # the waiter wakes with this message
                else:
                    self._report()
            self.cond.notify_all()

    def wait(self, pred: Callable[[], bool], timeout: float | None) -> bool:
        """Block until ``pred()`` (called under the lock) holds; reports the program
        blocked meanwhile. Returns ``pred()``'s final value (False on timeout)."""
        with self.cond:
            if pred():
                return True
            self._blocked, self._pred = True, pred
            self._report()
            ok = self.cond.wait_for(pred, timeout)
            self._blocked, self._pred = False, None
            return ok

    def finish(self) -> None:
        """The program ended: it sends nothing more."""
        with self.cond:
            self._done = True
            self._blocked = True
            self._report()

    def _report(self) -> None:
        self._seq += 1
        self._reporter({"type": "report", "lp": self.lp, "seq": self._seq, "next_ns": None,
                        "sent": dict(self._sent), "recv": dict(self._recv), "round": -1,
                        "done": self._done})


# -- the clock over TCP (CNPU processes) ---------------------------------------------------
def _send(sock: socket.socket, obj: dict, lock: threading.Lock) -> None:
    data = json.dumps(obj).encode()
    with lock:
        sock.sendall(_LEN.pack(len(data)) + data)


def _recv(sock: socket.socket) -> dict | None:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = _LEN.unpack(head)
    if n > 1 << 20:
        raise TimeSyncError(f"clock frame of {n} bytes is too long")
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    msg = json.loads(bytes(buf))
    if not isinstance(msg, dict):
        raise TimeSyncError("clock frame is not a JSON object")
    return msg


class ClockServer:
    """The shared clock's TCP endpoint (loopback by default): CNPU processes send their
    programs' reports here. The first frame must carry ``token`` (from the network
    directory): anyone else is disconnected. Reports are data (JSON), never code."""

    def __init__(self, coordinator: TimeCoordinator, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        self.coordinator = coordinator
        self.token = token or secrets.token_hex(16)
        self._sock = socket.create_server((host, port))
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._clients: set[socket.socket] = set()
        self.rejected = 0
        threading.Thread(target=self._accept, daemon=True, name="clock-accept").start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            self._clients.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True, name="clock-conn").start()

    def _serve(self, c: socket.socket) -> None:
        attached: set[str] = set()
        finished: set[str] = set()
        try:
            hello = _recv(c)
            if hello is None or not hmac.compare_digest(str(hello.get("token", "")), self.token):
                self.rejected += 1
                return
            lock = threading.Lock()
            while True:
                msg = _recv(c)
                if msg is None:
                    return
                kind = msg.get("type")
                if kind == "report":
                    if msg.get("done") and str(msg.get("lp")) in attached:
                        finished.add(str(msg["lp"]))
                    self.coordinator.report(msg)
                elif kind == "gone":
                    self.coordinator.gone(str(msg["lp"]))
                elif kind == "attach":  # a QNPU in another process: grants go back here
                    lp = str(msg["lp"])
                    if not lp.startswith("qnpu:"):
                        raise TimeSyncError(f"only QNPUs attach to the clock, not '{lp}'")
                    attached.add(lp)

                    def on_grant(r: int, until: int, turn: str | None = None) -> None:
                        try:
                            _send(c, {"type": "grant", "round": r, "until_ns": until,
                                      "pass_lp": turn}, lock)
                        except OSError:
                            pass  # the QNPU's process went away: noticed by the reader
                    self.coordinator.attach(lp, on_grant)
        except (OSError, ValueError, KeyError, TimeSyncError):
            return
        finally:
            self._clients.discard(c)
            c.close()
            for lp in attached - finished:  # a QNPU's process died: it counts no more
                self.coordinator.gone(lp)

    def close(self) -> None:
        for fn in (lambda: self._sock.shutdown(socket.SHUT_RDWR), self._sock.close):
            try:
                fn()
            except OSError:
                pass
        for c in list(self._clients):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ClockClient:
    """A CNPU process' connection to the shared clock (``send(report)``); a QNPU in its
    own process uses :class:`RemoteCoordinator` on top of it."""

    def __init__(self, address: tuple[str, int], token: str, timeout_s: float = 30.0) -> None:
        self._sock = socket.create_connection(tuple(address), timeout=timeout_s)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._lock = threading.Lock()
        _send(self._sock, {"token": token}, self._lock)

    def recv(self) -> dict | None:
        """The next frame from the clock (None: the connection closed); one reader."""
        return _recv(self._sock)

    def send(self, msg: dict) -> None:
        try:
            _send(self._sock, msg, self._lock)
        except OSError as exc:
            raise TimeSyncError(f"the shared clock is unreachable: {exc}") from exc

    def close(self) -> None:
        for fn in (lambda: self._sock.shutdown(socket.SHUT_RDWR), self._sock.close):
            try:  # shutdown first: a reader thread blocked in recv() wakes up
                fn()
            except OSError:
                pass


class RemoteCoordinator:
    """The shared clock as a QNPU in another process sees it: the interface of
    :class:`TimeCoordinator` the QNPU uses (``attach``, ``report``, ``gone``,
    ``until_ns``), over one authenticated connection to the :class:`ClockServer`.
    Grants arrive on a reader thread, in the order the clock sent them."""

    def __init__(self, address: tuple[str, int], token: str, timeout_s: float = 30.0) -> None:
        self._client = ClockClient(address, token, timeout_s)
        self._cbs: dict[str, Callable[[int, int, str | None], None]] = {}
        self.until_ns = 0
        #: set when the connection to the clock is lost (the QNPU then stops getting time)
        self.lost: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True, name="clock-grants")
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                msg = self._client.recv()
                if msg is None:
                    self.lost = "the shared clock closed the connection"
                    return
                if msg.get("type") != "grant":
                    continue
                r, until = int(msg["round"]), int(msg["until_ns"])
                turn = msg.get("pass_lp")
                self.until_ns = max(self.until_ns, until)
                for cb in list(self._cbs.values()):
                    cb(r, until, None if turn is None else str(turn))
        except (OSError, ValueError, KeyError, TimeSyncError) as exc:
            self.lost = f"the shared clock is unreachable: {exc}"

    def attach(self, qnpu_lp: str, on_grant: Callable[[int, int, str | None], None]) -> None:
        self._cbs[qnpu_lp] = on_grant
        self._client.send({"type": "attach", "lp": qnpu_lp})

    def report(self, msg: dict[str, Any]) -> None:
        self._client.send(msg)

    def report_state(self, lp: str, seq: int, next_ns: int | None, sent: dict[str, int],
                     recv: dict[str, int], round_: int = -1, done: bool = False,
                     ordered_ns: int | None = None, window_ns: int | None = None) -> None:
        self._client.send({"type": "report", "lp": lp, "seq": seq, "next_ns": next_ns,
                           "sent": sent, "recv": recv, "round": round_, "done": done,
                           "ordered_ns": ordered_ns, "window_ns": window_ns})

    def gone(self, lp: str) -> None:
        self._client.send({"type": "gone", "lp": lp})

    def close(self) -> None:
        self._client.close()
