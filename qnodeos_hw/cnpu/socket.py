"""Classical sockets between programs of different nodes, over TCP, with netqasm's
``Socket`` interface.

Each node's CNPU runs a :class:`ClassicalHub` (a TCP listener). A socket sends by
connecting to the remote node's hub (first frame: a hello naming sender, receiver,
socket id and the network's token -- a peer that does not know the token is
disconnected) and receives from its own hub's queue for (remote, socket id).
Messages are JSON data, never code: ``{"s": text}`` for ``send``, ``{"h": header,
"p": payload}`` for ``send_structured`` (payload: anything JSON can carry), plus
``"ts"``, the virtual arrival time, in modelled time.
"""

from __future__ import annotations

import hmac
import json
import queue
import socket
import threading
import time
from typing import Any, Optional

from netqasm.sdk.classical_communication.broadcast_channel import BroadcastChannelBySockets
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.classical_communication.socket import Socket

from ..qnpu.framing import close_listener, recv_frame, send_frame
from .directory import NetworkDirectory
from .timing import CNPUClocks, program_lp


class ClassicalMessageError(ValueError):
    """A classical message cannot be sent as data (not JSON-serialisable) or a received
    frame is not a valid message."""


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
        return json.dumps(d).encode()
    except (TypeError, ValueError) as exc:
        raise ClassicalMessageError(f"classical message payload is not JSON data: {exc}") from None


def decode_message(frame: bytes) -> tuple[object, int]:
    """(message, arrival ns or 0)."""
    try:
        d = json.loads(frame)
    except ValueError as exc:
        raise ClassicalMessageError(f"classical frame is not JSON: {exc}") from None
    if not isinstance(d, dict):
        raise ClassicalMessageError("classical frame is not a JSON object")
    ts = int(d.get("ts", 0))
    if "s" in d:
        return str(d["s"]), ts
    if "h" in d:
        return StructuredMessage(d["h"], d.get("p")), ts
    raise ClassicalMessageError(f"classical frame has neither 's' nor 'h': {sorted(d)}")


class ClassicalHub:
    """A node's classical endpoint: accepts peers' connections and queues what they send,
    keyed by (receiving app, sending app, socket id)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = "",
                 clocks: CNPUClocks | None = None) -> None:
        self.token = token
        self.clocks = clocks
        self.rejected = 0
        self._sock = socket.create_server((host, port))
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._queues: dict[tuple[str, str, int], queue.Queue] = {}
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        threading.Thread(target=self._accept_loop, daemon=True, name="cnpu-hub").start()

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

    def _serve(self, c: socket.socket) -> None:
        try:
            hello = recv_frame(c)
            if hello is None:
                return
            h = json.loads(hello)
            if not hmac.compare_digest(str(h.get("token", "")), self.token):
                self.rejected += 1
                return
            to, frm = str(h["to"]), str(h["from"])
            q = self.inbox(to, frm, int(h["sid"]))
            pc = self.clocks.of(to) if self.clocks is not None else None
            src = program_lp(frm)
            while True:
                f = recv_frame(c)
                if f is None:
                    return
                item = decode_message(f)
                if pc is None:
                    q.put(item)
                else:
                    pc.deliver(src, lambda item=item: q.put(item))
        except (OSError, ValueError, KeyError, TypeError):
            return
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
        self._out.settimeout(None)
        self._out.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_frame(self._out, json.dumps({"from": app_name, "to": remote_app_name,
                                          "sid": socket_id, "token": directory.token}).encode())
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
