"""End-node API server: TCP, one connection per program, framed netqasm messages.

Trust: the server listens on loopback by default. Each connection is its own program:
the QNPU serves only the app ids a connection registered itself (another connection's
app id gets ``AppIdNotOwnedError``). A frame longer than ``max_frame`` is refused before
anything is allocated for it and the connection is dropped (the QNPU frees what the
program held, as for any disconnection); a connection that floods frames faster than
the QNPU handles them is read no further until the QNPU catches up (its backlog is
bounded), and one that does not read its answers is dropped once more than
``max_unsent`` bytes of them wait (the QNPU never blocks on a connection), so one
program cannot stall the node for the others or exhaust its memory.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections import deque

from ..protocol.framing import FrameTooLargeError, FramingError, close_listener, recv_frame
from .qnpu import QNPU

#: largest host -> QNPU frame (bytes): netqasm subroutines are 10-1,000 bytes
API_MAX_FRAME = 1 << 20
#: frames the QNPU may have waiting before the server stops reading connections
MAX_BACKLOG = 2_000
#: bytes of answers a connection may leave unread before it is dropped
MAX_UNSENT = 8 << 20
_LEN = struct.Struct(">I")

_log = logging.getLogger(__name__)


class QNPUServer:
    """Accepts program connections on ``host:port`` (port 0: pick a free one) and hands
    their frames to ``qnpu``. ``address`` is the bound (host, port); ``refused`` lists
    the connections dropped for an oversized frame (one line each)."""

    def __init__(self, qnpu: QNPU, host: str = "127.0.0.1", port: int = 0,
                 max_frame: int = API_MAX_FRAME, max_backlog: int = MAX_BACKLOG,
                 max_unsent: int = MAX_UNSENT) -> None:
        self.qnpu = qnpu
        self.max_frame, self.max_backlog, self.max_unsent = max_frame, max_backlog, max_unsent
        self.refused: deque[str] = deque(maxlen=100)
        self._sock = socket.create_server((host, port))
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        self._closed = threading.Event()
        self._accept = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"qnpu-{qnpu.name}-accept")

    def start(self) -> "QNPUServer":
        self._accept.start()
        return self

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._clients.add(client)
            t = threading.Thread(target=self._serve, args=(client,), daemon=True,
                                 name=f"qnpu-{self.qnpu.name}-conn")
            t.start()

    def _backlog(self) -> int:
        return self.qnpu._inbox.qsize()

    def _serve(self, client: socket.socket) -> None:
        def drop() -> None:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        out = _Sender(client, self.max_unsent, drop, self.refused, self.qnpu.name)
        cid = self.qnpu.connect(out.send, drop)
        try:
            while not self._closed.is_set():
                while self._backlog() > self.max_backlog and not self._closed.is_set():
                    time.sleep(0.001)  # back-pressure: the client's TCP window fills
                frame = recv_frame(client, self.max_frame)
                if frame is None:
                    break
                self.qnpu.deliver(cid, frame)
        except FrameTooLargeError as exc:
            line = f"QNPU '{self.qnpu.name}': connection {cid} dropped: {exc}"
            self.refused.append(line)
            _log.warning("%s", line)
        except (OSError, FramingError):
            pass
        finally:
            out.close()
            self.qnpu.disconnect(cid)
            self._clients.discard(client)
            try:
                client.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed.set()
        close_listener(self._sock, self._clients)
        for c in list(self._clients):
            try:
                c.close()
            except OSError:
                pass


class _Sender:
    """Answers to one connection without ever blocking the QNPU: sent at once when the
    socket takes them, else queued for a writer thread; a connection that leaves more
    than ``limit`` bytes unread is dropped."""

    def __init__(self, sock: socket.socket, limit: int, drop, refused, node: str) -> None:
        self.sock, self.limit, self.drop, self.refused, self.node = sock, limit, drop, refused, node
        self.cv = threading.Condition()
        self.pending: deque[bytes] = deque()
        self.unsent = 0
        self.busy = False
        self.closed = False
        self.writer: threading.Thread | None = None

    def send(self, payload: bytes) -> None:
        data = _LEN.pack(len(payload)) + payload
        with self.cv:
            if self.closed:
                raise OSError("connection closed")
            if not self.pending and not self.busy:
                try:
                    n = self.sock.send(data, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    n = 0
                if n == len(data):
                    return
                data = data[n:]
            if self.unsent + len(data) > self.limit:
                self.closed = True
                self.refused.append(f"QNPU '{self.node}': a connection dropped: more than "
                                    f"{self.limit} bytes of its answers unread")
                self.drop()
                raise OSError("connection does not read its answers")
            self.pending.append(data)
            self.unsent += len(data)
            if self.writer is None:
                self.writer = threading.Thread(target=self._write, daemon=True,
                                               name=f"qnpu-{self.node}-send")
                self.writer.start()
            self.cv.notify()

    def _write(self) -> None:
        while True:
            with self.cv:
                while not self.pending and not self.closed:
                    self.cv.wait()
                if not self.pending:
                    return
                data = self.pending.popleft()
                self.busy = True
            try:
                self.sock.sendall(data)
            except OSError:
                with self.cv:
                    self.closed, self.busy = True, False
                    self.pending.clear()
                return
            with self.cv:
                self.unsent -= len(data)
                self.busy = False

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify_all()
