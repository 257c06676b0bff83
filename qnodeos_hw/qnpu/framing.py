"""Framing of netqasm messages on a byte stream (netqasm itself does not frame):
each frame is a 4-byte big-endian length followed by that many bytes."""

from __future__ import annotations

import socket
import struct
import threading

MAX_FRAME = 16 * 1024 * 1024
_LEN = struct.Struct(">I")


class FramingError(ConnectionError):
    """A frame header announces an impossible length."""


def send_frame(sock: socket.socket, payload: bytes, lock: threading.Lock | None = None) -> None:
    data = _LEN.pack(len(payload)) + payload
    if lock is None:
        sock.sendall(data)
    else:
        with lock:
            sock.sendall(data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes | None:
    """Next frame, or None when the peer closed the stream."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (n,) = _LEN.unpack(head)
    if n > MAX_FRAME:
        raise FramingError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
    return _recv_exact(sock, n) if n else b""


def close_listener(listener: socket.socket, clients) -> None:
    """Close a listening socket (waking its blocked ``accept()``) and shut down the
    connections it accepted; their serving threads then see end of stream."""
    for fn in (lambda: listener.shutdown(socket.SHUT_RDWR), listener.close):
        try:
            fn()
        except OSError:
            pass
    for c in list(clients):
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
