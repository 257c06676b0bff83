"""Framing of netqasm messages on a byte stream (netqasm itself does not frame):
each frame is a 4-byte big-endian length followed by that many bytes.

A receiver states the largest frame it accepts; a length prefix above it is refused
(:class:`FrameTooLargeError`) before any buffer for the frame is allocated, so a peer
cannot make a listener reserve memory by announcing a huge frame."""

from __future__ import annotations

import socket
import struct
import threading

#: default limit (bytes) of a received frame (qubit-state answers of large simulated
#: groups are the largest frames of the stack)
MAX_FRAME = 16 * 1024 * 1024
_LEN = struct.Struct(">I")


class FramingError(ConnectionError):
    """A frame header announces an impossible length, or the stream ended inside a frame."""


class FrameTooLargeError(FramingError):
    """A frame's length prefix exceeds the receiver's limit (refused before allocation)."""

    def __init__(self, n: int, limit: int) -> None:
        self.length, self.limit = n, limit
        super().__init__(f"frame of {n} bytes exceeds the {limit}-byte limit")


def send_frame(sock: socket.socket, payload: bytes, lock: threading.Lock | None = None) -> None:
    data = _LEN.pack(len(payload)) + payload
    if lock is None:
        sock.sendall(data)
    else:
        with lock:
            sock.sendall(data)


def _recv_into(sock: socket.socket, buf: bytearray | memoryview) -> bool:
    """Fill ``buf`` from the stream; False if it ended first."""
    view = memoryview(buf)
    got, n = 0, len(buf)
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            return False
        got += k
    return True


def recv_frame(sock: socket.socket, max_size: int = MAX_FRAME) -> bytes | None:
    """Next frame, or None when the peer closed the stream between frames. Raises
    :class:`FrameTooLargeError` for a length above ``max_size`` (nothing allocated for
    it) and :class:`FramingError` when the stream ends inside a frame."""
    head = bytearray(4)
    view = memoryview(head)
    k = sock.recv_into(view, 4)
    if k == 0:
        return None
    if k < 4 and not _recv_into(sock, view[k:]):
        raise FramingError(f"stream ended inside a frame header ({k} of 4 bytes)")
    (n,) = _LEN.unpack(head)
    if n > max_size:
        raise FrameTooLargeError(n, max_size)
    if n == 0:
        return b""
    buf = bytearray(n)
    if not _recv_into(sock, buf):
        raise FramingError(f"stream ended inside a frame of {n} bytes")
    return bytes(buf)


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
