"""Classical sockets between programs of different nodes, over TCP, with netqasm's
``Socket`` interface.

Each node's CNPU runs a :class:`ClassicalHub` (a TCP listener). A socket sends by
connecting to the remote node's hub (first frame: a hello naming sender, receiver
and socket id) and receives from its own hub's queue for (remote, socket id).
Messages are pickled Python objects (str for ``send``, ``StructuredMessage`` for
``send_structured``), as netqasm's thread sockets pass objects: trusted networks only.
"""

from __future__ import annotations

import json
import pickle
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


class ClassicalHub:
    """A node's classical endpoint: accepts peers' connections and queues what they send,
    keyed by (receiving app, sending app, socket id)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
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
            q = self.inbox(h["to"], h["from"], int(h["sid"]))
            while True:
                f = recv_frame(c)
                if f is None:
                    return
                q.put(pickle.loads(f))
        except (OSError, ValueError):
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
                                          "sid": socket_id}).encode())
        self._lock = threading.Lock()

    def _put(self, obj: object) -> None:
        if self._trace is not None:
            self._trace.record(-1, self._node, "cnpu_socket_sent", None, app=self.app_name,
                               to=self.remote_app_name, sid=self.id)
        send_frame(self._out, pickle.dumps(obj), self._lock)

    def _get(self, block: bool, timeout: Optional[float]) -> object:
        try:
            obj = self._inbox.get(block=block, timeout=timeout if timeout is not None else self._timeout)
            if self._trace is not None:
                self._trace.record(-1, self._node, "cnpu_socket_received", None, app=self.app_name,
                                   frm=self.remote_app_name, sid=self.id)
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
    """netqasm's socket-based broadcast channel over ``socket_class``."""

    class BroadcastChannel(BroadcastChannelBySockets):
        _socket_class = socket_class  # type: ignore[assignment]

    return BroadcastChannel
