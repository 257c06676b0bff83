"""The QNPU peer protocol over TCP: the wire between the QNPUs of different processes
or hosts (same interface as :class:`~qnodeos_hw.qnpu.peers.LocalPeerBus`).

Each node listens on its peer address (loopback by default). A node's messages to one
peer travel over one connection it opens (so they arrive in order, as the time base
needs). Opening a connection: the listener sends a challenge ``{"nonce"}``; the
connecting node answers ``{"node", "mac"}`` with ``mac`` = HMAC-SHA256 of the nonce and
both node names under the secret of that pair of nodes (from the network's directory).
A name that is not a node of the network, or a wrong MAC, closes the connection. From
then on every frame is one peer message as JSON (an object, at most
:data:`MAX_PEER_FRAME` bytes, refused before allocation when longer); its sender is the
node that proved itself on that connection, never a field it fills in. Nothing received
is executed: frames are parsed as JSON and checked by the network stack
(``netstack.check_peer_message``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
from typing import Callable

from ..protocol.framing import FramingError, close_listener, recv_frame, send_frame
from .peers import PeerUnreachableError

log = logging.getLogger(__name__)

#: largest peer message (bytes); requests and their replies are a few hundred
MAX_PEER_FRAME = 64 * 1024
_MAX_HELLO = 1024


class PeerAuthError(PermissionError):
    """A peer connection did not prove which node it is (names the claimed node)."""


def peer_mac(key: bytes, nonce: str, src: str, dst: str) -> str:
    return hmac.new(key, f"{nonce}|{src}|{dst}".encode(), hashlib.sha256).hexdigest()


class TcpPeerBus:
    """Peer transport over TCP between nodes at ``addresses`` (node -> (host, port)).

    ``key(a, b)``: the secret of nodes ``a`` and ``b`` (e.g. ``NetworkDirectory.pair_key``).
    :meth:`register` starts a node's listener (port 0: any free port; see
    :attr:`addresses` afterwards) -- a process registers only the nodes it runs and
    reaches the others at their addresses. ``deliver(src, msg)`` is called on the
    connection's reader thread.
    """

    def __init__(self, addresses: dict[str, tuple[str, int]], key: Callable[[str, str], bytes],
                 timeout_s: float = 10.0) -> None:
        self.addresses = {n: (str(h), int(p)) for n, (h, p) in addresses.items()}
        self._key = key
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._listeners: dict[str, socket.socket] = {}
        self._accepted: dict[str, set] = {}
        self._out: dict[tuple[str, str], tuple[socket.socket, threading.Lock]] = {}
        self._lost: dict[str, Callable[[str], None] | None] = {}
        self._closing = False
        #: connections refused (bad hello) and frames refused (not a JSON object, too long)
        self.refused = 0
        self.bad_frames = 0

    # -- receiving ---------------------------------------------------------------------
    def register(self, node: str, deliver: Callable[[str, dict], None],
                 lost: Callable[[str], None] | None = None) -> None:
        """Listen for ``node``'s peers; ``deliver(src, msg)`` per message, ``lost(src)``
        when a proven peer's connection ends while the bus is open (its process died
        or it stopped)."""
        if node not in self.addresses:
            raise PeerUnreachableError(f"node '{node}' has no peer address in the network")
        host, port = self.addresses[node]
        lsock = socket.create_server((host, port))
        with self._lock:
            self.addresses[node] = lsock.getsockname()[:2]
            self._listeners[node] = lsock
            self._accepted[node] = set()
        self._lost[node] = lost
        threading.Thread(target=self._accept, args=(node, lsock, deliver), daemon=True,
                         name=f"peer-{node}-accept").start()

    def _accept(self, node: str, lsock: socket.socket, deliver: Callable[[str, dict], None]) -> None:
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._accepted[node].add(c)
            threading.Thread(target=self._serve, args=(node, c, deliver), daemon=True,
                             name=f"peer-{node}-conn").start()

    def _hello(self, node: str, c: socket.socket) -> str:
        nonce = secrets.token_hex(16)
        send_frame(c, json.dumps({"nonce": nonce}).encode())
        c.settimeout(self.timeout_s)
        raw = recv_frame(c, _MAX_HELLO)
        c.settimeout(None)
        try:
            hello = json.loads(raw) if raw else None
        except ValueError:
            hello = None
        src = hello.get("node") if isinstance(hello, dict) else None
        mac = hello.get("mac") if isinstance(hello, dict) else None
        if not isinstance(src, str) or src not in self.addresses or src == node \
                or not isinstance(mac, str):
            raise PeerAuthError(f"node '{node}': a peer connection named no node of the "
                                f"network ({src!r})")
        if not hmac.compare_digest(mac, peer_mac(self._key(src, node), nonce, src, node)):
            raise PeerAuthError(f"node '{node}': a connection claiming to be '{src}' did not "
                                "prove it (wrong key)")
        return src

    def _serve(self, node: str, c: socket.socket, deliver: Callable[[str, dict], None]) -> None:
        src: str | None = None
        try:
            try:
                src = self._hello(node, c)
            except (PeerAuthError, FramingError, OSError) as exc:
                self.refused += 1
                log.warning("%s", exc)
                return
            while True:
                try:
                    raw = recv_frame(c, MAX_PEER_FRAME)
                except FramingError as exc:  # too long or cut: this connection is done
                    self.bad_frames += 1
                    log.warning("node '%s': peer '%s': %s", node, src, exc)
                    return
                if raw is None:
                    return
                try:
                    msg = json.loads(raw)
                except ValueError:
                    msg = None
                if not isinstance(msg, dict):
                    self.bad_frames += 1
                    log.warning("node '%s': peer '%s' sent a frame that is no JSON object",
                                node, src)
                    continue
                deliver(src, msg)
        except OSError:
            return
        finally:
            self._accepted.get(node, set()).discard(c)
            try:
                c.close()
            except OSError:
                pass
            lost = self._lost.get(node)
            if src is not None and lost is not None and not self._closing:
                lost(src)

    # -- sending -----------------------------------------------------------------------
    def _connection(self, src: str, dst: str) -> tuple[socket.socket, threading.Lock]:
        with self._lock:
            conn = self._out.get((src, dst))
        if conn is not None:
            return conn
        addr = self.addresses.get(dst)
        if addr is None:
            raise PeerUnreachableError(f"node '{src}': no peer address for '{dst}'")
        try:
            s = socket.create_connection(addr, timeout=self.timeout_s)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            challenge = recv_frame(s, _MAX_HELLO)
            nonce = json.loads(challenge or b"null")
            if not isinstance(nonce, dict) or not isinstance(nonce.get("nonce"), str):
                raise PeerAuthError(f"node '{src}': peer '{dst}' sent no challenge")
            send_frame(s, json.dumps({"node": src, "mac": peer_mac(
                self._key(src, dst), nonce["nonce"], src, dst)}).encode())
            s.settimeout(None)
        except (OSError, ValueError) as exc:
            raise PeerUnreachableError(f"node '{src}': peer '{dst}' at {addr[0]}:{addr[1]} "
                                       f"unreachable: {exc}") from exc
        conn = (s, threading.Lock())
        with self._lock:
            self._out.setdefault((src, dst), conn)
            return self._out[(src, dst)]

    def send(self, src: str, dst: str, msg: dict) -> None:
        data = json.dumps(msg).encode()
        if len(data) > MAX_PEER_FRAME:
            raise ValueError(f"peer message of {len(data)} bytes exceeds {MAX_PEER_FRAME}")
        s, lock = self._connection(src, dst)
        try:
            send_frame(s, data, lock)
        except OSError as exc:
            with self._lock:
                self._out.pop((src, dst), None)
            raise PeerUnreachableError(f"node '{src}': lost the connection to '{dst}': {exc}") from exc

    def quiesce(self) -> None:
        """The run is over: peers closing their connections from now on are not lost."""
        self._closing = True

    def close(self) -> None:
        self._closing = True
        with self._lock:
            outs, self._out = list(self._out.values()), {}
            listeners = list(self._listeners.items())
        for s, _ in outs:
            try:
                s.close()
            except OSError:
                pass
        for node, lsock in listeners:
            close_listener(lsock, self._accepted.get(node, set()))
