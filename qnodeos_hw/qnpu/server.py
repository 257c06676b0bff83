"""End-node API server: TCP, one connection per program, framed netqasm messages."""

from __future__ import annotations

import socket
import threading

from .framing import FramingError, close_listener, recv_frame, send_frame
from .qnpu import QNPU


class QNPUServer:
    """Accepts program connections on ``host:port`` (port 0: pick a free one) and hands
    their frames to ``qnpu``. ``address`` is the bound (host, port)."""

    def __init__(self, qnpu: QNPU, host: str = "127.0.0.1", port: int = 0) -> None:
        self.qnpu = qnpu
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

    def _serve(self, client: socket.socket) -> None:
        lock = threading.Lock()
        def drop() -> None:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        cid = self.qnpu.connect(lambda payload: send_frame(client, payload, lock), drop)
        try:
            while True:
                frame = recv_frame(client)
                if frame is None:
                    break
                self.qnpu.deliver(cid, frame)
        except (OSError, FramingError):
            pass
        finally:
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
