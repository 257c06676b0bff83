"""The physics wire: requests between the processes of a distributed simulated network
(node processes, link processes) about the qubits' joint state and the heralding stations.

Transport: one TCP connection per (client process, server process), TCP_NODELAY,
length-prefixed frames (:mod:`qnodeos_hw.protocol.framing`), each frame one JSON object
of at most :data:`MAX_PHYSICS_FRAME` bytes (a longer length prefix is refused before
anything is allocated and closes the connection). Complex matrices travel as
``{"shape": [d, d], "c128": base64 of the np.complex128 bytes}`` (square, d a power of
two up to ``2**MAX_WIRE_QUBITS``, length checked before decoding). Nothing received is
executed: frames are parsed as JSON and every field is checked (type, range, finite).

Opening a connection (mutual, under the network's one physics secret):

1. listener -> ``{"nonce": n1, "server": S}``
2. client   -> ``{"name": C, "mac": HMAC(secret, n1|C|S), "nonce": n2, "listen": [h, p] | null}``
   (``C`` must be a name of the network: a node or a ``link:A-B`` holder; ``listen``: where
   C serves its own holder requests, so that others can follow pointers to it)
3. listener -> ``{"ok": true, "mac": HMAC(secret, n2|S|C)}`` -- else the connection closes.

From then on the client sends requests ``{"op": ..., ...}``; each gets exactly one reply
(``{...result}``, ``{"moved": holder, "address": [h, p]}`` or ``{"error": TypeName,
"message": ..., "fields": {...}}``), in order, except the server's one-way ops (no reply,
not even for an error). The sender of a request is the name proved on its connection,
never a field it fills in; servers authorise by it (a node acts only on its own qubits).
A malformed request gets an error reply and the server goes on serving (that connection
and the others); a client sees a typed error (:class:`RemoteOpError`,
:class:`HolderUnreachableError`, :class:`PhysicsAuthError`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import socket
import struct
import threading
from typing import Any, Callable, Collection

import numpy as np

from ...protocol.framing import FramingError, close_listener, recv_frame, send_frame
from .errors import PhysicsError

log = logging.getLogger(__name__)

#: largest frame (bytes) either side accepts: a density matrix of MAX_WIRE_QUBITS qubits
MAX_PHYSICS_FRAME = 8 * 1024 * 1024
#: largest subsystem (qubits) that travels on the wire
MAX_WIRE_QUBITS = 9
_MAX_HELLO = 1024
#: pointer hops a client follows before giving up (a chain this long means a bug)
MAX_HOPS = 16


class PhysicsWireError(PhysicsError, ConnectionError):
    """Base of the physics wire's transport errors."""


class PhysicsAuthError(PhysicsWireError, PermissionError):
    """A physics connection did not prove who is talking (names the claimed peer)."""


class HolderUnreachableError(PhysicsWireError):
    """The process holding a qubit (or a link's station) cannot be reached.

    ``holder`` names it, ``address`` is where it was looked for, ``key`` the qubit the
    request was about (None for station requests)."""

    def __init__(self, holder: str, address: Any, key: Any, detail: str) -> None:
        self.holder, self.address, self.key = holder, address, key
        what = f" about qubit {tuple(key)}" if key is not None else ""
        super().__init__(f"physics holder '{holder}' at {address}{what}: {detail}")


class RemoteOpError(PhysicsError):
    """A holder refused a request: ``holder``, ``op``, the remote error type ``kind``
    and its ``detail``."""

    def __init__(self, holder: str, op: str, kind: str, detail: str) -> None:
        self.holder, self.op, self.kind, self.detail = holder, op, kind, detail
        super().__init__(f"physics holder '{holder}' refused '{op}': {kind}: {detail}")


class MalformedRequestError(PhysicsError, ValueError):
    """A request or reply on the physics wire fails its checks (names the field)."""


# ------------------------------------------------------------------------- field checks
def secret_bytes(secret: str | bytes) -> bytes:
    """The physics secret as bytes (a hex string, or bytes); empty is refused."""
    if isinstance(secret, str):
        try:
            secret = bytes.fromhex(secret)
        except ValueError:
            raise PhysicsAuthError("the physics secret must be a hex string") from None
    if not isinstance(secret, bytes) or not secret:
        raise PhysicsAuthError("the physics wire needs a non-empty secret")
    return secret


def wire_mac(secret: bytes, nonce: str, src: str, dst: str) -> str:
    return hmac.new(secret, f"qnodeos-physics|{nonce}|{src}|{dst}".encode(),
                    hashlib.sha256).hexdigest()


def get_int(msg: dict, name: str, lo: int, hi: int) -> int:
    v = msg.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise MalformedRequestError(f"field '{name}' must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def get_float(msg: dict, name: str) -> float:
    v = msg.get(name)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise MalformedRequestError(f"field '{name}' must be a finite number, got {v!r}")
    return float(v)


def get_floats(msg: dict, name: str, n: int) -> list[float]:
    v = msg.get(name)
    if not isinstance(v, list) or len(v) != n or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for x in v):
        raise MalformedRequestError(f"field '{name}' must be a list of {n} finite numbers")
    return [float(x) for x in v]


def get_name(msg: dict, name: str, allowed: Collection[str]) -> str:
    v = msg.get(name)
    if not isinstance(v, str) or v not in allowed:
        raise MalformedRequestError(f"field '{name}' must name a process of the network, "
                                    f"got {v!r}")
    return v


def decode_key(v: Any, owners: Collection[str], field: str = "key") -> tuple[str, int]:
    """A qubit key ``[node, address]`` (node one of ``owners``, address 0..63)."""
    if (not isinstance(v, list) or len(v) != 2 or not isinstance(v[0], str)
            or v[0] not in owners or not isinstance(v[1], int) or isinstance(v[1], bool)
            or not 0 <= v[1] < 64):
        raise MalformedRequestError(f"field '{field}' must be [node, 0..63] of a node of the "
                                    f"network, got {v!r}")
    return (v[0], v[1])


def decode_keys(v: Any, owners: Collection[str], field: str = "keys") -> list[tuple[str, int]]:
    if not isinstance(v, list) or not 1 <= len(v) <= MAX_WIRE_QUBITS:
        raise MalformedRequestError(f"field '{field}' must be a list of 1..{MAX_WIRE_QUBITS} keys")
    keys = [decode_key(k, owners, field) for k in v]
    if len(set(keys)) != len(keys):
        raise MalformedRequestError(f"field '{field}' repeats a qubit: {v!r}")
    return keys


def encode_matrix(a: np.ndarray) -> dict:
    """A complex matrix as JSON-able data (base64 of its complex128 bytes, with shape)."""
    a = np.ascontiguousarray(a, dtype=np.complex128)
    return {"shape": list(a.shape), "c128": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_matrix(v: Any, field: str, dim: int | None = None) -> np.ndarray:
    """A square complex matrix of :func:`encode_matrix` (``dim`` x ``dim`` when given; a
    power of two up to ``2**MAX_WIRE_QUBITS`` otherwise), finite entries."""
    if not isinstance(v, dict) or set(v) != {"shape", "c128"}:
        raise MalformedRequestError(f"field '{field}' must be {{'shape', 'c128'}}")
    shape, data = v["shape"], v["c128"]
    if (not isinstance(shape, list) or len(shape) != 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in shape)
            or shape[0] != shape[1] or not 2 <= shape[0] <= 2 ** MAX_WIRE_QUBITS
            or shape[0] & (shape[0] - 1) or (dim is not None and shape[0] != dim)):
        raise MalformedRequestError(f"field '{field}': shape {shape!r} is not a square "
                                    f"2^n matrix{'' if dim is None else f' of size {dim}'}")
    n = shape[0] * shape[1] * 16
    if not isinstance(data, str) or len(data) != 4 * ((n + 2) // 3):
        raise MalformedRequestError(f"field '{field}': data is not {n} bytes of base64")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise MalformedRequestError(f"field '{field}': data is not base64") from None
    if len(raw) != n:
        raise MalformedRequestError(f"field '{field}': data is not {n} bytes")
    a = np.frombuffer(raw, dtype=np.complex128).reshape(shape).copy()
    if not np.isfinite(a).all():
        raise MalformedRequestError(f"field '{field}': non-finite entries")
    return a


def error_reply(exc: BaseException) -> dict:
    """The reply naming ``exc`` (type, message and, for the errors a client rebuilds,
    their fields)."""
    fields = {k: v for k, v in vars(exc).items()
              if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    return {"error": type(exc).__name__, "message": str(exc), "fields": fields}


# ------------------------------------------------------------------------------ server
Handler = Callable[[str, dict], "dict | None"]


class PhysicsServer:
    """A physics listener named ``name`` (loopback by default): authenticates each
    connection (module docstring), then serves its requests in order on one thread per
    connection with ``handler(peer, msg) -> reply`` (None for ops in ``one_way``).
    ``on_hello(peer, listen)`` learns where a peer serves its own requests."""

    def __init__(self, name: str, secret: str | bytes, allowed: Collection[str],
                 handler: Handler, host: str = "127.0.0.1", port: int = 0,
                 one_way: Collection[str] = (), hello_timeout_s: float = 5.0,
                 on_hello: Callable[[str, "tuple[str, int] | None"], None] | None = None) -> None:
        self.name = name
        self._secret = secret_bytes(secret)
        self._allowed = frozenset(allowed) - {name}
        self._handler, self._one_way = handler, frozenset(one_way)
        self._hello_timeout_s = hello_timeout_s
        self._on_hello = on_hello
        self._lsock = socket.create_server((host, port))
        self.address: tuple[str, int] = tuple(self._lsock.getsockname()[:2])  # type: ignore
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        #: counters: connections accepted (authenticated), refused, bad frames, requests
        self.counts = {"connections": 0, "refused": 0, "bad_frames": 0, "requests": 0}
        #: requests per op (at most 64 distinct names are counted)
        self.by_op: dict[str, int] = {}
        self._closed = False
        #: ``on_gone(peer)``: a proven peer's connection ended while serving (its process
        #: died or closed); set by the owner (a link marks the node gone)
        self.on_gone: Callable[[str], None] | None = None
        threading.Thread(target=self._accept, daemon=True, name=f"physics-{name}-accept").start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self._lsock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True,
                             name=f"physics-{self.name}-conn").start()

    def _hello(self, c: socket.socket) -> tuple[str, "tuple[str, int] | None"]:
        nonce = secrets.token_hex(16)
        send_frame(c, json.dumps({"nonce": nonce, "server": self.name}).encode())
        c.settimeout(self._hello_timeout_s)
        raw = recv_frame(c, _MAX_HELLO)
        try:
            hello = json.loads(raw) if raw else None
        except ValueError:
            hello = None
        if not isinstance(hello, dict):
            raise PhysicsAuthError(f"'{self.name}': a connection sent no hello")
        peer, mac, n2 = hello.get("name"), hello.get("mac"), hello.get("nonce")
        if not isinstance(peer, str) or peer not in self._allowed:
            raise PhysicsAuthError(f"'{self.name}': a connection named no process of the "
                                   f"network ({peer!r})")
        if not isinstance(mac, str) or not isinstance(n2, str) or not 16 <= len(n2) <= 128:
            raise PhysicsAuthError(f"'{self.name}': malformed hello from '{peer}'")
        if not hmac.compare_digest(mac, wire_mac(self._secret, nonce, peer, self.name)):
            raise PhysicsAuthError(f"'{self.name}': a connection claiming to be '{peer}' did "
                                   "not prove it (wrong secret)")
        listen = hello.get("listen")
        addr = None
        if (isinstance(listen, list) and len(listen) == 2 and isinstance(listen[0], str)
                and isinstance(listen[1], int) and not isinstance(listen[1], bool)
                and 0 < listen[1] < 65536):
            addr = (listen[0], listen[1])
        send_frame(c, json.dumps({"ok": True, "mac": wire_mac(self._secret, n2, self.name,
                                                              peer)}).encode())
        c.settimeout(None)
        return peer, addr

    def _serve(self, c: socket.socket) -> None:
        peer: str | None = None
        try:
            try:
                peer, addr = self._hello(c)
            except (PhysicsAuthError, FramingError, OSError) as exc:
                self.counts["refused"] += 1
                log.warning("%s", exc)
                return
            self.counts["connections"] += 1
            if self._on_hello is not None:
                self._on_hello(peer, addr)
            while True:
                try:
                    raw = recv_frame(c, MAX_PHYSICS_FRAME)
                except FramingError as exc:  # too long or cut: this connection is done
                    self.counts["bad_frames"] += 1
                    log.warning("'%s': peer '%s': %s", self.name, peer, exc)
                    return
                if raw is None:
                    return
                reply = self._one(peer, raw)
                if reply is not None:
                    send_frame(c, json.dumps(reply).encode())
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(c)
            try:
                c.close()
            except OSError:
                pass
            if peer is not None and self.on_gone is not None and not self._closed:
                self.on_gone(peer)

    def _one(self, peer: str, raw: bytes) -> dict | None:
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = None
        op = msg.get("op") if isinstance(msg, dict) else None
        if not isinstance(op, str):
            self.counts["bad_frames"] += 1
            return error_reply(MalformedRequestError("a request must be a JSON object with "
                                                     "a string 'op'"))
        self.counts["requests"] += 1
        by_op = self.by_op
        if op in by_op or len(by_op) < 64:
            by_op[op] = by_op.get(op, 0) + 1
        try:
            return self._handler(peer, msg)
        except Exception as exc:  # named in the reply; the server goes on
            if op in self._one_way:
                log.warning("'%s': one-way '%s' from '%s' failed: %s", self.name, op, peer, exc)
                return None
            if not isinstance(exc, (PhysicsError, ValueError, TimeoutError, RuntimeError,
                                    PermissionError)):
                log.exception("'%s': '%s' from '%s'", self.name, op, peer)
            return error_reply(exc)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns = list(self._conns)
        close_listener(self._lsock, conns)


# ------------------------------------------------------------------------------ client
class PhysicsClient:
    """This process (``me``) talking to the physics server ``server`` at ``address``:
    one connection, opened on first use and kept; one request at a time (a lock)."""

    def __init__(self, me: str, server: str, address: tuple[str, int], secret: str | bytes,
                 listen: "tuple[str, int] | None" = None, timeout_s: float = 30.0) -> None:
        self.me, self.server, self.address = me, server, (str(address[0]), int(address[1]))
        self._secret = secret_bytes(secret)
        self._listen = listen
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._rcvtimeo = 0.0
        self._lock = threading.Lock()
        self.calls = 0

    def _connect(self, key: Any) -> socket.socket:
        try:
            s = socket.create_connection(self.address, timeout=self.timeout_s)
        except OSError as exc:
            raise HolderUnreachableError(self.server, self.address, key, str(exc)) from exc
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ch = json.loads(recv_frame(s, _MAX_HELLO) or b"null")
            if (not isinstance(ch, dict) or not isinstance(ch.get("nonce"), str)
                    or ch.get("server") != self.server):
                raise PhysicsAuthError(f"'{self.me}': {self.address} is not physics server "
                                       f"'{self.server}' (challenge {ch!r})")
            n2 = secrets.token_hex(16)
            send_frame(s, json.dumps({
                "name": self.me, "mac": wire_mac(self._secret, ch["nonce"], self.me, self.server),
                "nonce": n2, "listen": list(self._listen) if self._listen else None}).encode())
            ok = json.loads(recv_frame(s, _MAX_HELLO) or b"null")
            if not isinstance(ok, dict) or not isinstance(ok.get("mac"), str) or not \
                    hmac.compare_digest(ok["mac"], wire_mac(self._secret, n2, self.server, self.me)):
                raise PhysicsAuthError(f"'{self.me}': physics server '{self.server}' at "
                                       f"{self.address} refused us or did not prove itself")
            s.settimeout(None)  # blocking; the reply timeout is the kernel's (SO_RCVTIMEO)
            self._rcvtimeo = 0.0
        except PhysicsAuthError:
            s.close()
            raise
        except (OSError, ValueError) as exc:  # closed during the hello: refused
            s.close()
            raise PhysicsAuthError(f"'{self.me}': physics server '{self.server}' at "
                                   f"{self.address} closed the connection during the hello "
                                   f"({type(exc).__name__}: {exc})") from exc
        return s

    def _sock_for(self, key: Any, timeout_s: float) -> socket.socket:
        if self._sock is None:
            self._sock = self._connect(key)
        if timeout_s != self._rcvtimeo:  # a kernel timeout: no poll() per receive
            sec = int(timeout_s)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                  struct.pack("ll", sec, int((timeout_s - sec) * 1e6)))
            self._rcvtimeo = timeout_s
        return self._sock

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def call(self, msg: dict, key: Any = None, timeout_s: float | None = None) -> dict:
        """Send request ``msg``, return its reply (an error reply raises
        :class:`RemoteOpError`; a lost connection :class:`HolderUnreachableError`)."""
        data = json.dumps(msg).encode()
        with self._lock:
            s = self._sock_for(key, timeout_s if timeout_s is not None else self.timeout_s)
            try:
                send_frame(s, data)
                raw = recv_frame(s, MAX_PHYSICS_FRAME)
            except (OSError, FramingError) as exc:
                self._drop()
                raise HolderUnreachableError(self.server, self.address, key,
                                             f"'{msg.get('op')}' failed: {exc}") from exc
            self.calls += 1
        if raw is None:
            self._drop()
            raise HolderUnreachableError(self.server, self.address, key,
                                         f"closed the connection during '{msg.get('op')}'")
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise MalformedRequestError(f"physics holder '{self.server}' sent a reply that is "
                                        "no JSON object")
        return reply

    def send(self, msg: dict, key: Any = None) -> None:
        """Send one-way request ``msg`` (no reply; in order with the calls)."""
        data = json.dumps(msg).encode()
        with self._lock:
            s = self._sock_for(key, self._rcvtimeo or self.timeout_s)
            try:
                send_frame(s, data)
            except OSError as exc:
                self._drop()
                raise HolderUnreachableError(self.server, self.address, key,
                                             f"'{msg.get('op')}' failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._drop()
