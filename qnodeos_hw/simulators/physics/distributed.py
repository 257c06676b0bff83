"""Joint quantum state spread over processes: one :class:`DistributedRegistry` per node
process (and per link process), sharing nothing but messages (:mod:`.physics_wire`).

Placement. A qubit ``(node, q)`` is *owned* by its node. It is *held* by exactly one
process: its owner (a *local* key: the fast path, the registry's own arithmetic
unchanged), or -- while it shares a joint state kept elsewhere -- the holder of that
joint state: the link process that heralded it, or a node that pulled it. A process
knows, for every key it does not hold but was told about, the holder it last heard of
(``away``): for its own keys that is where to send their ops; for others' keys it is a
forwarding pointer left when a subsystem moved on.

Ops on a key that is not local:

* single-key ops (``apply_affine``, ``apply_unitary_1q``, ``decohere``, ``prob_zero``,
  ``measure``, ``reset``, ``partners``) are forwarded to the holder, one round trip
  each; ``measure`` carries the owner's own uniform variate, so outcomes are those of
  the shared registry. After ``measure``/``reset`` -- or any op after which the key is
  alone in its subsystem at the holder -- the holder forgets it and the reply brings it
  home with its Bloch vector.
* ``apply_unitary`` over keys of several holders *pulls* each non-local key's whole
  subsystem here; the old holder keeps a pointer to us for every key of it, so the
  other owners' next ops follow it (a reply ``moved``; a client follows at most
  :data:`~.physics_wire.MAX_HOPS` pointers and then remembers the holder found).
* ``reduced_density_matrix`` reads without moving anything: each holder computes the
  reduced matrix of its keys (keys of different holders are in different subsystems,
  so the result is their tensor product, reordered).
* ``set_joint_state`` first brings away keys home (a remote ``reset``).

A request for a key that is neither held nor pointed to waits (at most
``inflight_timeout_s``) for it: a subsystem on its way here is announced by the old
holder's pointer before it arrives. No process holds its registry lock while it waits
for a reply, and servers never send requests, so requests cannot deadlock.

Trust: every process of the network proves itself with the network's physics secret
(:mod:`.physics_wire`); a node may act only on its own qubits (the server checks the
key's owner against the name proved on the connection) and may pull only a subsystem
containing one of its qubits. Nothing received is executed; every field is checked.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Collection, Sequence

import numpy as np

from .errors import HeraldingError, PartnerTimeoutError, PhysicsError, PhysicsTimeError, \
    QubitAddressError, WaveformError
from .noise_model import HeraldingModel
from .physics_wire import (MAX_HOPS, MAX_WIRE_QUBITS, HolderUnreachableError, MalformedRequestError,
                           PhysicsClient, PhysicsServer, RemoteOpError, decode_key, decode_keys,
                           decode_matrix, encode_matrix, get_float, get_floats, get_int, get_name)
from .state import QuantumRegistry, _Sub, bloch_to_rho

try:  # a stale compiled state.py (built before QuantumRegistry allowed subclasses)
    class _Probe(QuantumRegistry):
        pass
    _SUBCLASSABLE = True
except TypeError:  # pragma: no cover - depends on the build
    _SUBCLASSABLE = False

Key = tuple[str, int]
_BASE: Any = QuantumRegistry if _SUBCLASSABLE else object


class KeyNotHeldError(PhysicsError, LookupError):
    """A holder was asked about a qubit it neither holds nor knows a pointer for
    (``holder``, ``key``)."""

    def __init__(self, holder: str, key: Key, detail: str = "") -> None:
        self.holder, self.key = holder, key
        super().__init__(f"'{holder}' does not hold qubit {key}{detail}")


class StaleBuildError(PhysicsError, RuntimeError):
    """The compiled ``state`` extension predates subclassable registries (rebuild)."""


class PointerLoopError(HolderUnreachableError):
    """Forwarding pointers for a key did not lead to its holder within MAX_HOPS."""


def _remote_error(holder: str, op: str, reply: dict, key: Any) -> Exception:
    """The local typed error for an error reply (the physics errors a caller handles are
    rebuilt as themselves; others are :class:`RemoteOpError`)."""
    kind, msg = str(reply.get("error")), str(reply.get("message", ""))
    f = reply.get("fields") if isinstance(reply.get("fields"), dict) else {}
    where = f"{msg} (at '{holder}')"
    if kind == "PartnerTimeoutError":
        try:
            return PartnerTimeoutError(str(f["node"]), str(f["partner"]), int(f["attempt"]),
                                       float(reply.get("fields", {}).get("timeout_s", 0.0)))
        except (KeyError, TypeError, ValueError):
            return HeraldingError(where)
    if kind == "PartnerMissingError":
        from ...qdevice.windows import PartnerMissingError
        try:
            return PartnerMissingError(str(f["node"]), str(f["peer"]), int(f["bin_index"]),
                                       float(f.get("timeout_s", 0.0)))
        except (KeyError, TypeError, ValueError):
            return HeraldingError(where)
    known = {"HeraldingError": HeraldingError, "QubitAddressError": QubitAddressError,
             "PhysicsTimeError": PhysicsTimeError, "WaveformError": WaveformError}
    if kind in known:
        return known[kind](where)
    if kind == "KeyNotHeldError" and key is not None:
        return KeyNotHeldError(holder, tuple(key), f": {msg}")
    return RemoteOpError(holder, op, kind, msg)


class DistributedRegistry(_BASE):  # type: ignore[misc,valid-type]
    """The :class:`QuantumRegistry` of one process (``name``: a node, or a ``link:A-B``
    holder) of a network whose processes are ``names``; ``owners`` are the node names
    (default: the names without a ``link:`` prefix). Serves the other processes'
    requests for the keys it holds on ``host:port`` (loopback, any free port by
    default; see :attr:`address`) unless ``serve`` is False. ``addresses``: holder name
    -> (host, port) known up front (the links); others are learned from hellos and
    ``moved`` replies."""

    def __init__(self, name: str, names: Collection[str], secret: str | bytes,
                 host: str = "127.0.0.1", port: int = 0, serve: bool = True,
                 addresses: dict[str, tuple[str, int]] | None = None,
                 owners: Collection[str] | None = None, timeout_s: float = 30.0,
                 inflight_timeout_s: float = 5.0) -> None:
        if not _SUBCLASSABLE:
            raise StaleBuildError("the compiled qnodeos_hw.simulators.physics.state predates "
                                  "subclassable registries: rebuild (./run, or pip install -e .)")
        super().__init__()
        self.name = name
        self.names = frozenset(names) | {name}
        self.owners = frozenset(owners if owners is not None else
                                (n for n in self.names if not n.startswith("link:")))
        self._secret = secret
        self.timeout_s, self.inflight_timeout_s = timeout_s, inflight_timeout_s
        #: key -> the holder last heard of (own keys: where their ops go; others: pointers)
        self.away: dict[Key, str] = {}
        self._addresses: dict[str, tuple[str, int]] = dict(addresses or {})
        self._clients: dict[str, PhysicsClient] = {}
        self._clients_lock = threading.Lock()
        self._arrived = threading.Condition(self.lock)
        #: requests this registry sent (forwarded ops, pulls, reads) and pointers followed
        self.forwarded = 0
        self.hops = 0
        #: one-way ops (affine, u1q, decohere) on own keys held elsewhere, not sent yet:
        #: they travel as ``before`` with the next request about the key (one round trip
        #: for a whole gate sequence; their order is kept, and local maps on one qubit
        #: change nothing another process can observe of its own qubits meanwhile)
        self._pending: dict[Key, list[dict]] = {}
        #: one-way ops sent that way
        self.deferred = 0
        self.extra_ops: dict[str, Callable[[str, dict], "dict | None"]] = {}
        self.server: PhysicsServer | None = None
        if serve:
            self.server = PhysicsServer(name, secret, self.names, self._handle, host, port,
                                        one_way=("progress",), on_hello=self._learn)

    # ------------------------------------------------------------------ plumbing
    @property
    def address(self) -> tuple[str, int] | None:
        """Where this registry serves requests (None without a server)."""
        return self.server.address if self.server is not None else None

    def _learn(self, peer: str, addr: "tuple[str, int] | None") -> None:
        if addr is not None:
            self._addresses[peer] = addr

    def client(self, holder: str) -> PhysicsClient:
        """The (kept) connection to ``holder``."""
        with self._clients_lock:
            c = self._clients.get(holder)
            if c is None:
                addr = self._addresses.get(holder)
                if addr is None:
                    raise HolderUnreachableError(holder, None, None, "no address known")
                c = self._clients[holder] = PhysicsClient(self.name, holder, addr, self._secret,
                                                          self.address, self.timeout_s)
            return c

    def close(self) -> None:
        """Stop serving and close the connections this registry opened."""
        if self.server is not None:
            self.server.close()
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def is_local(self, key: Key) -> bool:
        """Whether ``key`` is held here."""
        return key in self._where

    def _install(self, keys: list, r: list[float] | None, rho: np.ndarray | None) -> None:
        """Hold subsystem ``keys`` here (arrived from another process)."""
        with self._arrived:
            clash = [q for q in keys if q in self._where]
            if clash:
                raise PhysicsError(f"'{self.name}': qubit(s) {clash} arrived but are held here "
                                   "already (placement inconsistent)")
            new = _Sub(list(keys), r=r) if r is not None else _Sub(list(keys), rho=rho)
            for q in keys:
                self._where[q] = new
                self.away.pop(q, None)
            self._arrived.notify_all()

    def _request(self, key: Key, msg: dict, timeout_s: float | None = None) -> tuple[str, dict]:
        """Send ``msg`` about own-or-pointed ``key`` to its holder, following ``moved``
        pointers; returns (holder, reply). The key's pointer is updated to the holder."""
        holder = self.away.get(key)
        if holder is None:
            raise QubitAddressError(f"no qubit {key} in the registry of '{self.name}' "
                                    "(neither held nor known elsewhere)")
        msg["key"] = list(key)
        with self.lock:
            before = self._pending.pop(key, None)
        if before:
            msg["before"] = before
        for _ in range(MAX_HOPS):
            if holder == self.name:
                raise PointerLoopError(holder, self.address, key, "a pointer leads back here")
            reply = self.client(holder).call(msg, key, timeout_s)
            self.forwarded += 1
            moved = reply.get("moved")
            if moved is None:
                if "error" in reply:
                    raise _remote_error(holder, str(msg.get("op")), reply, key)
                with self.lock:
                    if key in self.away:
                        self.away[key] = holder
                return holder, reply
            holder = get_name(reply, "moved", self.names)
            addr = reply.get("address")
            if (isinstance(addr, list) and len(addr) == 2 and isinstance(addr[0], str)
                    and isinstance(addr[1], int)):
                self._addresses.setdefault(holder, (addr[0], addr[1]))
            self.hops += 1
        raise PointerLoopError(holder, self._addresses.get(holder), key,
                               f"no holder within {MAX_HOPS} pointer hops")

    def _come_home(self, key: Key, reply: dict) -> None:
        """The holder released ``key`` (alone in its subsystem): hold it here again."""
        if "r" in reply:
            self._install([key], get_floats(reply, "r", 3), None)

    def _forward(self, key: Key, msg: dict) -> dict:
        _, reply = self._request(key, msg)
        self._come_home(key, reply)
        return reply

    def _defer(self, key: Key, msg: dict) -> None:
        """Queue a one-way op on remote ``key`` (see ``_pending``)."""
        with self.lock:
            q = self._pending.setdefault(key, [])
            q.append(msg)
            self.deferred += 1
            full = len(q) >= MAX_BEFORE
        if full:
            self.flush(key)

    def flush(self, key: Key) -> None:
        """Send ``key``'s queued one-way ops now (one round trip; nothing if none)."""
        with self.lock:
            if not self._pending.get(key) or key in self._where:
                return
        self._forward(key, {"op": "batch"})

    # -------------------------------------------------------------- single-key ops
    def apply_affine(self, key, m: Sequence[float], c: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        with self.lock:
            if key in self._where:
                return _BASE.apply_affine(self, key, m, c)
        self._defer(key, {"op": "affine", "m": [float(x) for x in m],
                          "c": [float(x) for x in c]})

    def apply_unitary_1q(self, key, u: np.ndarray, rot: tuple[float, ...]) -> None:
        with self.lock:
            if key in self._where:
                return _BASE.apply_unitary_1q(self, key, u, rot)
        self._defer(key, {"op": "u1q", "u": encode_matrix(u), "rot": [float(x) for x in rot]})

    def decohere(self, key, a: float, b: float, c: float, phi: float = 0.0) -> None:
        with self.lock:
            if key in self._where:
                return _BASE.decohere(self, key, a, b, c, phi)
        self._defer(key, {"op": "decohere", "a": float(a), "b": float(b), "c": float(c),
                          "phi": float(phi)})

    def prob_zero(self, key) -> float:
        with self.lock:
            if key in self._where:
                return _BASE.prob_zero(self, key)
        return get_float(self._forward(key, {"op": "p0"}), "p0")

    def measure(self, key, u01: float) -> int:
        with self.lock:
            if key in self._where:
                return _BASE.measure(self, key, u01)
        reply = self._forward(key, {"op": "measure", "u01": float(u01)})
        return get_int(reply, "out", 0, 1)

    def reset(self, key, r: Sequence[float]) -> None:
        with self.lock:
            if key in self._where:
                return _BASE.reset(self, key, r)
        self._request(key, {"op": "reset"})
        self._install([key], [float(x) for x in r], None)

    def partners(self, key) -> list:
        with self.lock:
            if key in self._where:
                return _BASE.partners(self, key)
        reply = self._forward(key, {"op": "partners"})
        return decode_keys(reply.get("keys"), self.owners)

    # --------------------------------------------------------------- multi-key ops
    def pull(self, key: Key) -> None:
        """Bring the subsystem holding own (or pointed-to) ``key`` here."""
        _, reply = self._request(key, {"op": "pull"})
        keys = decode_keys(reply.get("keys"), self.owners)
        if key not in keys:
            raise MalformedRequestError(f"pull of {key}: the subsystem sent lacks it")
        if len(keys) == 1:
            self._install(keys, get_floats(reply, "r", 3), None)
        else:
            self._install(keys, None, decode_matrix(reply.get("rho"), "rho", 2 ** len(keys)))

    def _gather(self, keys: Sequence) -> None:
        for _ in range(MAX_HOPS):
            with self.lock:
                missing = [q for q in keys if q not in self._where]
            if not missing:
                return
            for q in missing:
                with self.lock:
                    here = q in self._where
                if not here:
                    if q not in self.away:
                        raise QubitAddressError(f"no qubit {q} in the registry of '{self.name}' "
                                                "(neither held nor known elsewhere)")
                    self.pull(q)
        raise PhysicsError(f"'{self.name}': qubits {list(keys)} kept moving away")

    def apply_unitary(self, keys: Sequence, u: np.ndarray) -> None:
        """Apply a unitary to ``keys``, pulling their subsystems here first."""
        keys = list(keys)
        for _ in range(MAX_HOPS):
            self._gather(keys)
            with self.lock:
                if all(q in self._where for q in keys):
                    return _BASE.apply_unitary(self, keys, u)
        raise PhysicsError(f"'{self.name}': qubits {keys} kept moving away")

    def set_joint_state(self, keys: Sequence, rho: np.ndarray) -> None:
        for q in keys:
            with self.lock:
                away = q not in self._where and q in self.away
            if away:
                self.reset(q, (0.0, 0.0, 0.0))
        _BASE.set_joint_state(self, keys, rho)

    def reduced_density_matrix(self, keys: Sequence) -> np.ndarray:
        """Density matrix of ``keys`` without moving any state: each holder reduces its
        keys (one round trip per holder)."""
        keys = list(keys)
        if len(set(keys)) != len(keys):
            raise QubitAddressError(f"repeated qubit in {keys}")
        for q in keys:  # what this node did to them before it reads them
            self.flush(q)
        for _ in range(MAX_HOPS):
            with self.lock:
                local = [q for q in keys if q in self._where]
                remote = [q for q in keys if q not in self._where]
                unknown = [q for q in remote if q not in self.away]
                if unknown:
                    raise QubitAddressError(f"no qubit {unknown[0]} in the registry of "
                                            f"'{self.name}' (neither held nor known elsewhere)")
                if not remote:
                    return _BASE.reduced_density_matrix(self, keys)
                groups: dict[str, list] = {}
                for q in remote:
                    groups.setdefault(self.away[q], []).append(q)
                parts = [(local, _BASE.reduced_density_matrix(self, local))] if local else []
            moved = False
            for holder, qs in groups.items():
                reply = self.client(holder).call({"op": "rdm", "keys": [list(q) for q in qs]},
                                                 qs[0])
                self.forwarded += 1
                if "moved" in reply:  # one of them moved on: learn where, regroup
                    q = decode_key(reply.get("key"), self.owners)
                    to = get_name(reply, "moved", self.names)
                    with self.lock:
                        if q in self.away:
                            self.away[q] = to
                    addr = reply.get("address")
                    if isinstance(addr, list) and len(addr) == 2:
                        self._addresses.setdefault(to, (str(addr[0]), int(addr[1])))
                    self.hops += 1
                    moved = True
                    break
                if "error" in reply:
                    raise _remote_error(holder, "rdm", reply, qs[0])
                parts.append((qs, decode_matrix(reply.get("rho"), "rho", 2 ** len(qs))))
            if not moved:
                return _combine(parts, keys)
        raise PhysicsError(f"'{self.name}': qubits {keys} kept moving away")

    # ------------------------------------------------------------------ serving
    def _wait_held(self, key: Key) -> dict | None:
        """With the lock held: None once ``key`` is held here, or the ``moved`` reply."""
        deadline = time.monotonic() + self.inflight_timeout_s
        while key not in self._where:
            holder = self.away.get(key)
            if holder is not None:
                addr = self._addresses.get(holder)
                return {"moved": holder, "address": list(addr) if addr else None,
                        "key": list(key)}
            left = deadline - time.monotonic()
            if left <= 0:
                raise KeyNotHeldError(self.name, key)
            self._arrived.wait(left)
        return None

    def _release_if_alone(self, key: Key, reply: dict) -> dict:
        sub = self._where[key]
        if sub.r is not None:  # alone: back to its owner
            del self._where[key]
            reply["r"] = list(sub.r)
        return reply

    def _handle(self, peer: str, msg: dict) -> dict | None:
        op = msg["op"]
        extra = self.extra_ops.get(op)
        if extra is not None:
            return extra(peer, msg)
        if op == "rdm":
            keys = decode_keys(msg.get("keys"), self.owners)
            if any(q[0] != peer for q in keys):
                raise PermissionError(f"'{self.name}': '{peer}' may read only its own qubits")
            with self._arrived:
                for q in keys:
                    moved = self._wait_held(q)
                    if moved is not None:
                        return moved
                return {"rho": encode_matrix(_BASE.reduced_density_matrix(self, keys))}
        key = decode_key(msg.get("key"), self.owners)
        if key[0] != peer:
            raise PermissionError(f"'{self.name}': '{peer}' may act only on its own qubits, "
                                  f"not {key}")
        before = msg.get("before")
        if before is not None:  # the owner's queued one-way ops, applied first, in order
            if not isinstance(before, list) or len(before) > MAX_BEFORE:
                raise MalformedRequestError(f"'before' must be a list of at most {MAX_BEFORE} "
                                            "ops")
            pre = [self._one_way_op(key, m) for m in before]  # all checked before any runs
            with self._arrived:  # re-entrant: the op itself runs under the same lock
                moved = self._wait_held(key)
                if moved is not None:
                    return moved
                for f in pre:
                    f()
                return self._handle(peer, {k: v for k, v in msg.items() if k != "before"})
        if op in ("affine", "u1q", "decohere"):
            return self._serve(key, self._one_way_op(key, msg))
        if op == "batch":  # only the queued ops ('before'), already applied
            return self._serve(key, lambda: None)
        if op == "p0":
            return self._serve(key, lambda: {"p0": _BASE.prob_zero(self, key)})
        if op == "partners":
            return self._serve(key, lambda: {"keys": [list(q) for q in
                                                      _BASE.partners(self, key)]})
        if op == "measure":
            u01 = get_float(msg, "u01")
            return self._serve(key, lambda: {"out": _BASE.measure(self, key, u01)})
        if op == "reset":
            def trace_out() -> None:
                _BASE.reset(self, key, (0.0, 0.0, 0.0))
            return self._serve(key, trace_out, release=True, with_r=False)
        if op == "pull":
            with self._arrived:
                moved = self._wait_held(key)
                if moved is not None:
                    return moved
                sub = self._where[key]
                for q in sub.keys:
                    del self._where[q]
                    self.away[q] = peer
                if sub.r is not None:
                    return {"keys": [list(q) for q in sub.keys], "r": list(sub.r)}
                return {"keys": [list(q) for q in sub.keys], "rho": encode_matrix(sub.rho)}
        raise MalformedRequestError(f"unknown op {op!r}")

    def _one_way_op(self, key: Key, msg: Any) -> Callable[[], None]:
        """The checked map of one affine / u1q / decohere op on ``key`` (not run yet)."""
        if not isinstance(msg, dict):
            raise MalformedRequestError("an op must be a JSON object")
        op = msg.get("op")
        if op == "affine":
            m, c = get_floats(msg, "m", 9), get_floats(msg, "c", 3)
            return lambda: _BASE.apply_affine(self, key, m, c)
        if op == "u1q":
            u, rot = decode_matrix(msg.get("u"), "u", 2), get_floats(msg, "rot", 9)
            return lambda: _BASE.apply_unitary_1q(self, key, u, tuple(rot))
        if op == "decohere":
            a, b, c, phi = (get_float(msg, f) for f in ("a", "b", "c", "phi"))
            return lambda: _BASE.decohere(self, key, a, b, c, phi)
        raise MalformedRequestError(f"op {op!r} cannot be queued (only affine, u1q, decohere)")

    def _serve(self, key: Key, fn: Callable[[], Any], release: bool = False,
               with_r: bool = True) -> dict:
        with self._arrived:
            moved = self._wait_held(key)
            if moved is not None:
                return moved
            out = fn()
            reply = dict(out) if isinstance(out, dict) else {}
            if release:
                self._where.pop(key, None)
                return reply
            return self._release_if_alone(key, reply) if with_r else reply

    # ------------------------------------------------------------------ links
    def hand_over(self, key: Key, holder: str) -> None:
        """``key`` now lives in a joint state at ``holder`` (a herald): drop it here."""
        with self.lock:
            sub = self._where.get(key)
            if sub is None or sub.r is None:
                raise PhysicsError(f"'{self.name}': qubit {key} must be alone here to be "
                                   "handed to its link")
            del self._where[key]
            self.away[key] = holder


#: one-way ops a node queues for one remote qubit before it sends them anyway
MAX_BEFORE = 256


def _combine(parts: list, keys: list) -> np.ndarray:
    """Tensor product of independent reduced matrices ``[(keys_i, rho_i)]``, reordered
    to ``keys``."""
    order: list = []
    rho = np.ones((1, 1), dtype=complex)
    for qs, r in parts:
        order += qs
        rho = np.kron(rho, r)
    n = len(order)
    perm = [order.index(q) for q in keys]
    t = rho.reshape((2,) * (2 * n)).transpose(perm + [n + p for p in perm])
    return np.ascontiguousarray(t.reshape(2 ** n, 2 ** n))


class LinkRegistry(DistributedRegistry):
    """The registry of a link process: holds the joint states its station heralds. Its
    station puts fresh qubits in (``set_joint_state``/``reset`` of keys it does not hold
    create them: the nodes bring a qubit home before its attempt window); it never sends
    requests."""

    def _fresh(self, key: Key) -> None:
        if key not in self._where:
            self.away.pop(key, None)  # a stale pointer: the key came home and now here
            self._where[key] = _Sub([key], r=[0.0, 0.0, 0.0])

    def set_joint_state(self, keys: Sequence, rho: np.ndarray) -> None:
        with self._arrived:
            for q in keys:
                self._fresh(q)
            _BASE.set_joint_state(self, keys, rho)
            self._arrived.notify_all()

    def reset(self, key, r: Sequence[float]) -> None:
        with self.lock:
            self._fresh(key)
            _BASE.reset(self, key, r)

    def forget(self, key: Key) -> None:
        """Drop ``key`` if it is alone here (a failed window: its owner resets it)."""
        with self.lock:
            sub = self._where.get(key)
            if sub is not None and sub.r is not None:
                del self._where[key]


# ------------------------------------------------------------------- node side of a link
class RemoteStation:
    """A node's proxy of the heralding station of one link, served by a link process
    (``holder``, e.g. ``link:alice-bob``): the interface :class:`NVNode` uses of
    :class:`HeraldingStation`. After a window it updates the node's registry: a herald
    hands the qubit to the link (it is then held there); a failed window leaves it fully
    mixed here (as the shared station does)."""

    def __init__(self, model: HeraldingModel, pair: tuple[str, str], registry: DistributedRegistry,
                 holder: str, name: str = "heralding", bin_ns: int | None = None) -> None:
        self.model, self.name, self.holder = model, name, holder
        #: the link pairs windows by this bin: progress within a bin already told is not
        #: sent again (the station's rendezvous looks at the bin only)
        self.bin_ns = bin_ns
        self._told_bin = -1
        self._pair = (str(pair[0]), str(pair[1]))
        self.registry = registry
        self.attempts = 0
        self.heralds = 0

    @property
    def node_names(self) -> tuple[str, ...]:
        """The link's two nodes, in tensor order."""
        return self._pair

    def partner_of(self, name: str) -> str:
        if name not in self._pair:
            raise HeraldingError(f"node '{name}' is not attached to station '{self.name}' "
                                 f"(attached: {self._pair})")
        return self._pair[1] if self._pair[0] == name else self._pair[0]

    def attach(self, node: Any) -> None:
        """Connect this process's node (it must use this proxy's registry)."""
        if node.registry is not self.registry:
            raise HeraldingError(f"node '{node.name}' uses a different registry than "
                                 f"station '{self.name}'")
        self.partner_of(node.name)
        node.add_link(self)

    def _timeout(self) -> float:
        return float(self.model.partner_timeout_s) + self.registry.timeout_s

    def attempt_window(self, node: str, qubit: int, t_ns: int, max_attempts: int
                       ) -> tuple[bool, int, int]:
        """One attempt window at the link (blocks until the partner's window pairs with
        it). Returns (heralded, bell_index, attempts used)."""
        self.partner_of(node)
        key = (node, int(qubit))
        reg = self.registry
        # the herald (or the failure) discards the qubit's state: trace it out now, here
        reg.reset(key, (0.0, 0.0, 0.0))
        reply = reg.client(self.holder).call(
            {"op": "window", "qubit": int(qubit), "t_ns": int(t_ns),
             "max_attempts": int(max_attempts)}, key, self._timeout())
        reg.forwarded += 1
        if "error" in reply:
            raise _remote_error(self.holder, "window", reply, key)
        heralded = reply.get("heralded")
        if not isinstance(heralded, bool):
            raise MalformedRequestError(f"link '{self.holder}': window reply lacks 'heralded'")
        bell = get_int(reply, "bell", 0, 3)
        used = get_int(reply, "used", 0, max(0, int(max_attempts)))
        self.attempts += used
        if heralded:
            self.heralds += 1
            reg.hand_over(key, self.holder)
        else:
            reg.reset(key, (0.0, 0.0, 0.0))
        return heralded, bell, used

    def attempt(self, node: str, qubit: int, t_ns: int) -> tuple[bool, int]:
        return self.attempt_window(node, qubit, t_ns, 1)[:2]

    def progress(self, node: str, t_ns: int, peer: str | None = None) -> None:
        """``node``'s clock reached ``t_ns`` (one-way; in order with its windows; once
        per bin)."""
        if self.bin_ns:
            k = int(t_ns) // self.bin_ns
            if k <= self._told_bin:
                return
            self._told_bin = k
        self.registry.client(self.holder).send({"op": "progress", "t_ns": int(t_ns)})


class UnservedStation(RemoteStation):
    """A pair of the network without a link process (not in the schedule): keeps the
    node's link numbering; an attempt on it raises :class:`HeraldingError`."""

    def attempt_window(self, node: str, qubit: int, t_ns: int, max_attempts: int
                       ) -> tuple[bool, int, int]:
        raise HeraldingError(f"node '{node}': no link process serves {self._pair} "
                             f"(station '{self.name}')")

    def progress(self, node: str, t_ns: int, peer: str | None = None) -> None:
        return None


def link_holder(pair: Sequence[str]) -> str:
    """Physics-wire name of the link process of ``pair`` (in network order)."""
    return f"link:{pair[0]}-{pair[1]}"


__all__ = ["DistributedRegistry", "HolderUnreachableError", "KeyNotHeldError", "LinkRegistry",
           "PointerLoopError", "RemoteOpError", "RemoteStation", "StaleBuildError",
           "UnservedStation", "link_holder", "MAX_WIRE_QUBITS",
           "bloch_to_rho"]
