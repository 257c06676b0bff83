"""Classical sockets between programs of different nodes, over TCP, with netqasm's
``Socket`` interface.

Each node's CNPU runs a :class:`ClassicalHub` (a TCP listener, loopback by default).
A socket sends by connecting to the remote node's hub and receives from its own hub's
queue for (remote, socket id).

Who is speaking is the connection's, not a field of a message: the hub opens with a
challenge (``{"nonce"}``); the sender answers with a hello ``{"from", "to", "sid",
"mac"}``, ``mac`` = HMAC-SHA256 of the nonce and those fields under the secret of the
two nodes (:meth:`NetworkDirectory.pair_key`). The hub accepts it only if ``from`` is
a role of a node that holds that secret with this node and ``to`` a role of this node;
every message on the connection is then from ``from`` to ``to``. A peer that fails
is disconnected (``rejected`` counts them).

Messages are JSON data, never code: ``{"s": text}`` for ``send``, ``{"h": header,
"p": payload}`` for ``send_structured`` (payload: anything JSON can carry), plus
``"ts"``, the virtual arrival time, in modelled time; at most :data:`MAX_MESSAGE`
bytes each (a longer frame is refused before it is read; the sender refuses to send
one). A malformed frame drops its connection; the hub serves the others.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import queue
import socket
import threading
import time
from typing import Any, Optional

from netqasm.sdk.classical_communication.broadcast_channel import BroadcastChannelBySockets
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.classical_communication.socket import Socket

from ..protocol.framing import FramingError, close_listener, recv_frame, send_frame
from .directory import NetworkDirectory
from .timing import CNPUClocks, program_lp


#: largest classical message (bytes of its JSON frame)
MAX_MESSAGE = 1 << 20
#: largest challenge / hello frame (bytes)
_MAX_HELLO = 4096
#: how long (s) a hub waits for a connection's hello (or for its network directory)
HELLO_TIMEOUT_S = 30.0


class ClassicalMessageError(ValueError):
    """A classical message cannot be sent as data (not JSON-serialisable, too long) or a
    received frame is not a valid message."""


class ClassicalAuthError(ClassicalMessageError, PermissionError):
    """A connection to a classical hub did not prove the identity it claims."""


def hello_mac(key: bytes, nonce: str, frm: str, to: str, sid: int) -> str:
    return hmac.new(key, f"{nonce}|{frm}|{to}|{sid}".encode(), hashlib.sha256).hexdigest()


def encode_message(obj: object, ts: int | None = None) -> bytes:
    if isinstance(obj, StructuredMessage):
        d: dict = {"h": obj.header, "p": obj.payload}
    elif isinstance(obj, str):
        d = {"s": obj}
    else:
        raise ClassicalMessageError(f"a classical message is a str or a StructuredMessage, "
                                    f"got {type(obj).__name__}")
    if ts is not None:
        d["ts"] = int(ts)
    try:
        data = json.dumps(d).encode()
    except (TypeError, ValueError) as exc:
        raise ClassicalMessageError(f"classical message payload is not JSON data: {exc}") from None
    if len(data) > MAX_MESSAGE:
        raise ClassicalMessageError(f"classical message of {len(data)} bytes exceeds the "
                                    f"{MAX_MESSAGE}-byte limit")
    return data


def decode_message(frame: bytes) -> tuple[object, int]:
    """(message, arrival ns or 0)."""
    d = _json_object(frame, "classical frame")
    ts = d.get("ts", 0)
    if type(ts) is not int or not 0 <= ts < 2**63:
        raise ClassicalMessageError(f"classical frame: 'ts' must be a non-negative integer, "
                                    f"got {ts!r:.40}")
    if "s" in d and isinstance(d["s"], str):
        return d["s"], ts
    if "h" in d:
        return StructuredMessage(d["h"], d.get("p")), ts
    raise ClassicalMessageError(f"classical frame has neither a text 's' nor 'h': "
                                f"{sorted(d)[:8]}")


def _json_object(frame: bytes, what: str) -> dict:
    try:
        d = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise ClassicalMessageError(f"{what} is not JSON: {type(exc).__name__}") from None
    if not isinstance(d, dict):
        raise ClassicalMessageError(f"{what} is not a JSON object")
    return d


class ClassicalHub:
    """A node's classical endpoint: accepts peers' connections and queues what they send,
    keyed by (receiving app, sending app, socket id)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = "",
                 clocks: CNPUClocks | None = None, directory: NetworkDirectory | None = None,
                 node: str | None = None) -> None:
        self.token = token
        self.clocks = clocks
        self.rejected = 0
        self.directory: NetworkDirectory | None = None
        self.node: str | None = None
        self._bound = threading.Event()
        if directory is not None and node is not None:
            self.bind(directory, node)
        self._sock = socket.create_server((host, port))
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._queues: dict[tuple[str, str, int], queue.Queue] = {}
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        threading.Thread(target=self._accept_loop, daemon=True, name="cnpu-hub").start()

    def bind(self, directory: NetworkDirectory, node: str) -> None:
        """The hub serves node ``node`` of ``directory`` (whose keys prove identities);
        connections that arrive before are held until then."""
        self.directory, self.node = directory, node
        self._bound.set()

    def inbox(self, app: str, remote: str, sid: int) -> queue.Queue:
        with self._lock:
            return self._queues.setdefault((app, remote, sid), queue.Queue())

    def _accept_loop(self) -> None:
        while True:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            self._clients.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True, name="cnpu-hub-conn").start()

    def _hello(self, c: socket.socket) -> tuple[str, str, int]:
        """Challenge the connection; (from, to, sid) it proved, else ClassicalAuthError."""
        nonce = secrets.token_hex(16)
        send_frame(c, json.dumps({"nonce": nonce}).encode())
        frame = recv_frame(c, _MAX_HELLO)
        if frame is None:
            raise ClassicalAuthError("connection closed before its hello")
        h = _json_object(frame, "hello")
        frm, to, sid, mac = h.get("from"), h.get("to"), h.get("sid"), h.get("mac")
        if not (isinstance(frm, str) and isinstance(to, str) and type(sid) is int
                and isinstance(mac, str)):
            raise ClassicalAuthError("hello needs 'from', 'to' (str), 'sid' (int), 'mac' (str)")
        if not self._bound.wait(HELLO_TIMEOUT_S):
            raise ClassicalAuthError("this hub was never given its network directory")
        d, node = self.directory, self.node
        assert d is not None and node is not None
        src = d.roles.get(frm, frm)
        if src not in d.nodes or d.roles.get(to, to) != node:
            raise ClassicalAuthError(f"hello from {frm!r:.40} to {to!r:.40}: not a program of "
                                     f"this network to one of node '{node}'")
        try:
            key = d.pair_key(src, node)
        except KeyError as exc:
            raise ClassicalAuthError(str(exc)) from None
        if not hmac.compare_digest(mac, hello_mac(key, nonce, frm, to, sid)):
            raise ClassicalAuthError(f"hello claiming {frm!r:.40} (node '{src}') did not "
                                     f"prove it")
        return frm, to, sid

    def _serve(self, c: socket.socket) -> None:
        try:
            c.settimeout(HELLO_TIMEOUT_S)
            try:
                frm, to, sid = self._hello(c)
            except ClassicalMessageError:
                self.rejected += 1
                return
            c.settimeout(None)
            q = self.inbox(to, frm, sid)
            pc = self.clocks.of(to) if self.clocks is not None else None
            src = program_lp(frm)
            while True:
                f = recv_frame(c, MAX_MESSAGE)
                if f is None:
                    return
                item = decode_message(f)
                if pc is None:
                    q.put(item)
                else:
                    pc.deliver(src, lambda item=item: q.put(item))
        except (OSError, FramingError, ClassicalMessageError):
            return  # a broken or malformed peer: its connection ends, the hub goes on
        finally:
            self._clients.discard(c)
            c.close()

    def close(self) -> None:
        close_listener(self._sock, self._clients)


class ClassicalSocket(Socket):
    """netqasm ``Socket`` over TCP; ``timeout`` (s) bounds connect and ``recv``."""

    def __init__(self, app_name: str, remote_app_name: str, socket_id: int = 0,
                 timeout: Optional[float] = None, use_callbacks: bool = False,
                 log_config=None, *, directory: NetworkDirectory, hub: ClassicalHub,
                 default_timeout: float = 120.0, trace: Any = None) -> None:
        self.app_name, self.remote_app_name, self.id = app_name, remote_app_name, socket_id
        self._pc = hub.clocks.of(app_name) if hub.clocks is not None else None
        self._remote_lp = program_lp(remote_app_name)
        #: where 'cnpu_socket_sent' / 'cnpu_socket_received' events go (wall time), optional
        self._trace = trace
        self._node = directory.node_of_role(app_name).name
        self.use_callbacks = use_callbacks
        self._timeout = timeout if timeout is not None else default_timeout
        self._inbox = hub.inbox(app_name, remote_app_name, socket_id)
        remote = directory.node_of_role(remote_app_name)
        deadline = time.monotonic() + self._timeout
        while True:  # the remote CNPU may still be starting (netqasm sockets wait too)
            try:
                self._out = socket.create_connection(remote.classical, timeout=self._timeout)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ConnectionError(f"socket {app_name}->{remote_app_name}: cannot reach "
                                          f"node '{remote.name}' at {remote.classical}: {exc}") from exc
                time.sleep(0.02)
        self._out.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            challenge = recv_frame(self._out, _MAX_HELLO)
            nonce = _json_object(challenge or b"null", "hub challenge").get("nonce")
            if not isinstance(nonce, str):
                raise ClassicalMessageError("hub challenge without a nonce")
        except (OSError, ClassicalMessageError) as exc:
            raise ConnectionError(f"socket {app_name}->{remote_app_name}: node '{remote.name}' "
                                  f"at {remote.classical} is no classical hub: {exc}") from exc
        self._out.settimeout(None)
        key = directory.pair_key(self._node, remote.name)
        send_frame(self._out, json.dumps({
            "from": app_name, "to": remote_app_name, "sid": socket_id,
            "mac": hello_mac(key, nonce, app_name, remote_app_name, socket_id)}).encode())
        self._lock = threading.Lock()

    def _rec(self, kind: str, **data: Any) -> None:
        if self._trace is None:
            return
        if self._pc is None:
            self._trace.record(-1, self._node, kind, None, app=self.app_name, **data)
        else:
            with self._pc.cond:
                self._pc.trace_seq += 1
                self._trace.record_event(self._pc.t_ns, self._node, kind, None,
                                         {"app": self.app_name, **data},
                                         source=f"cnpu:{self.app_name}", seq=self._pc.trace_seq)

    def _put(self, obj: object) -> None:
        ts = self._pc.stamp(self._remote_lp, "classical") if self._pc is not None else None
        data = encode_message(obj, ts)
        self._rec("cnpu_socket_sent", to=self.remote_app_name, sid=self.id)
        send_frame(self._out, data, self._lock)

    def _get(self, block: bool, timeout: Optional[float]) -> object:
        t = timeout if timeout is not None else self._timeout
        try:
            if self._pc is not None:
                if block and not self._pc.wait(lambda: not self._inbox.empty(), t):
                    raise queue.Empty
                obj, ts = self._inbox.get_nowait()
                self._pc.consume(ts)
            else:
                obj, _ = self._inbox.get(block=block, timeout=t)
            self._rec("cnpu_socket_received", frm=self.remote_app_name, sid=self.id)
            return obj
        except queue.Empty:
            if not block:  # netqasm's contract (broadcast channels poll with block=False)
                raise RuntimeError(f"no message on socket {self.app_name}<-{self.remote_app_name}") from None
            raise TimeoutError(f"socket {self.app_name}<-{self.remote_app_name}: no message "
                               f"within {timeout if timeout is not None else self._timeout} s") from None

    def send(self, msg: str) -> None:
        if not isinstance(msg, str):
            raise TypeError(f"Socket.send takes a str, got {type(msg).__name__}")
        self._put(msg)

    def recv(self, block: bool = True, timeout: Optional[float] = None,
             maxsize: Optional[int] = None) -> str:
        msg = self._get(block, timeout)
        if self.use_callbacks:
            self.recv_callback(msg)  # type: ignore[arg-type]
        return msg  # type: ignore[return-value]

    def send_structured(self, msg: StructuredMessage) -> None:
        self._put(msg)

    def recv_structured(self, block: bool = True, timeout: Optional[float] = None,
                        maxsize: Optional[int] = None) -> StructuredMessage:
        return self._get(block, timeout)  # type: ignore[return-value]

    def send_silent(self, msg: str) -> None:
        self.send(msg)

    def recv_silent(self, block: bool = True, timeout: Optional[float] = None,
                    maxsize: Optional[int] = None) -> str:
        return self.recv(block, timeout, maxsize)

    def close(self) -> None:
        try:
            self._out.close()
        except OSError:
            pass


def broadcast_channel_class(socket_class: type) -> type:
    """netqasm's socket-based broadcast channel over ``socket_class``. ``recv`` waits
    through the program's clock (netqasm's polls in a busy loop, which modelled time
    cannot see as waiting) and, of the messages present, takes the earliest arrival."""

    class BroadcastChannel(BroadcastChannelBySockets):
        _socket_class = socket_class  # type: ignore[assignment]

        def recv(self, block: bool = True, timeout: Optional[float] = None) -> tuple[str, str]:
            socks = list(self._sockets.items())
            pc = socks[0][1]._pc if socks else None
            if pc is None:
                return super().recv(block, timeout)
            t = timeout if timeout is not None else socks[0][1]._timeout
            ready = lambda: any(not s._inbox.empty() for _, s in socks)  # noqa: E731
            if not (pc.wait(ready, t) if block else ready()):
                if block:
                    raise TimeoutError("Timeout while trying to receive broadcasted message")
                raise RuntimeError("No message broadcasted")
            with pc.cond:
                first = min(((s._inbox.queue[0][1], name) for name, s in socks
                             if not s._inbox.empty()))
            return first[1], self._sockets[first[1]].recv(block=False)

    return BroadcastChannel
