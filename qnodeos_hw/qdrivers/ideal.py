"""Ideal QDriver: exact density-matrix simulation, the reference for the node OS tests.

* :class:`NetworkQuantumState` -- the quantum state of every simulated qubit of a
  network, kept as independent groups (one density matrix per group of qubits that
  interacted); qubits are keyed ``(node, physical address)``.
* :class:`IdealLink` -- an ideal heralding station pairing the ``entangle`` calls of
  two :class:`IdealQDriver` s: a Werner state of fidelity ``fidelity`` (1.0: a perfect
  Bell pair), heralded with probability ``p_success`` per attempt.
* :class:`IdealQDriver` -- accepts the core, vanilla, NV and trapped-ion NetQASM
  instructions on any number of qubits; each instruction advances the node's clock
  by its duration (virtual ns, :class:`IdealDurations`).

Conventions: ``R_n(theta) = exp(-i theta/2 n.sigma)``, angles ``n pi / 2**d`` rad;
two-qubit matrices act on (first operand, second operand) with the first as the
most significant bit. Bell indices follow netqasm's ``BellState``
(0 Phi+, 1 Psi+, 2 Psi-, 3 Phi-).
"""

from __future__ import annotations

import dataclasses

import math
import threading
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import numpy as np
from netqasm.lang.instr.flavour import Flavour, VanillaFlavour

from ..qdevice.clock import Clock, VirtualClock
from ..qdevice.instructions import ENT_FAILURE, EntangleMode, Response, ResponseKind
from ..qdevice.spec import QDeviceSpec, nv_spec
from ..qdevice.windows import LONE, PartnerMissingError, WindowRendezvous
from .base import QDriver, QDriverError, UnsupportedNetQASMError

Key = Hashable

_I2 = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)
_AXIS = {"x": _X, "y": _Y, "z": _Z}
_P0 = np.array([[1, 0], [0, 0]], dtype=complex)
_P1 = np.array([[0, 0], [0, 1]], dtype=complex)
_FIXED = {
    "x": _X, "y": _Y, "z": _Z,
    "h": (_X + _Z) / math.sqrt(2),
    "k": (_Y + _Z) / math.sqrt(2),
    "s": np.diag([1, 1j]).astype(complex),
    "t": np.diag([1, np.exp(1j * math.pi / 4)]).astype(complex),
    "cnot": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex),
    "cphase": np.diag([1, 1, 1, -1]).astype(complex),
    "swp": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex),
}
_FIXED["mov"] = _FIXED["swp"]  # move = swap (target's old state is discarded by the SDK)
_FIXED_DAG = {k: (v, v.conj().T.copy()) for k, v in _FIXED.items()}
_PHI_PLUS = np.array([1, 0, 0, 1], dtype=complex) / math.sqrt(2)
_BELL_CORRECTION = {0: _I2, 1: _X, 2: _Z @ _X, 3: _Z}  # Pauli on the 2nd qubit from Phi+


def rotation(axis: str, angle: float) -> np.ndarray:
    """``exp(-i angle/2 sigma_axis)`` for axis 'x', 'y' or 'z' (angle in rad)."""
    return math.cos(angle / 2) * _I2 - 1j * math.sin(angle / 2) * _AXIS[axis]


def werner_state(fidelity: float, bell_index: int = 0) -> np.ndarray:
    """Two-qubit Werner state ``F |B><B| + (1-F)/3 (1 - |B><B|)`` around Bell state ``B``."""
    if not 0.25 <= fidelity <= 1.0:
        raise ValueError(f"Werner fidelity must be in [0.25, 1], got {fidelity}")
    v = np.kron(_I2, _BELL_CORRECTION[bell_index]) @ _PHI_PLUS
    bell = np.outer(v, v.conj())
    return fidelity * bell + (1 - fidelity) / 3 * (np.eye(4) - bell)


class _Group:
    __slots__ = ("keys", "rho")

    def __init__(self, keys: list, rho: np.ndarray) -> None:
        self.keys = keys
        self.rho = rho


def _apply(rho: np.ndarray, n: int, u: np.ndarray, pos: list[int]) -> np.ndarray:
    """``U rho U^dag`` with U acting on qubit positions ``pos`` of an n-qubit rho."""
    if n == 1:
        return u @ rho @ u.conj().T
    k = len(pos)
    t = rho.reshape([2] * (2 * n))
    ut = u.reshape([2] * (2 * k))
    t = np.tensordot(ut, t, axes=(list(range(k, 2 * k)), pos))
    t = np.moveaxis(t, list(range(k)), pos)
    bra = [n + p for p in pos]
    t = np.tensordot(t, ut.conj(), axes=(bra, list(range(k, 2 * k))))
    t = np.moveaxis(t, list(range(2 * n - k, 2 * n)), bra)
    return t.reshape(2 ** n, 2 ** n)


def _trace_out(rho: np.ndarray, n: int, p: int) -> np.ndarray:
    t = rho.reshape([2] * (2 * n))
    t = np.trace(t, axis1=p, axis2=n + p)
    return t.reshape(2 ** (n - 1), 2 ** (n - 1))


class NetworkQuantumState:
    """The joint state of all simulated qubits, as independent density-matrix groups.

    Thread-safe (one lock): the QNPUs of several nodes share one instance.
    ``rng`` draws the measurement outcomes.
    """

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng if rng is not None else np.random.default_rng()
        self.lock = threading.RLock()
        self._group: dict[Key, _Group] = {}

    def _get(self, key: Key) -> _Group:
        g = self._group.get(key)
        if g is None:
            g = _Group([key], _P0)
            self._group[key] = g
        return g

    def _split_off(self, key: Key) -> None:
        """Remove ``key`` from its group (tracing it out); it gets a fresh |0> group."""
        g = self._get(key)
        if len(g.keys) > 1:
            p = g.keys.index(key)
            g.rho = _trace_out(g.rho, len(g.keys), p)
            g.keys.pop(p)
            self._group[key] = _Group([key], _P0)
        else:
            g.rho = _P0  # density matrices are never modified in place

    def _merge(self, keys: tuple) -> _Group:
        g = self._get(keys[0])
        for k in keys[1:]:
            h = self._get(k)
            if h is g:
                continue
            g.rho = np.kron(g.rho, h.rho)
            g.keys.extend(h.keys)
            for kk in h.keys:
                self._group[kk] = g
        return g

    def reset(self, key: Key) -> None:
        """Put qubit ``key`` in |0> (its correlations are traced out)."""
        with self.lock:
            self._split_off(key)

    def discard(self, key: Key) -> None:
        """Forget qubit ``key`` (traced out)."""
        with self.lock:
            self._split_off(key)
            del self._group[key]

    def apply(self, keys: tuple, u: np.ndarray, u_dag: np.ndarray | None = None) -> None:
        """Apply unitary ``u`` to qubits ``keys`` (first key = most significant);
        ``u_dag`` (its adjoint) may be passed to save a conjugation."""
        with self.lock:
            if len(keys) == 1:
                g = self._get(keys[0])
                if len(g.keys) == 1:
                    g.rho = u @ g.rho @ (u.conj().T if u_dag is None else u_dag)
                    return
            g = self._merge(keys)
            pos = [g.keys.index(k) for k in keys]
            g.rho = _apply(g.rho, len(g.keys), u, pos)

    def measure(self, key: Key, rng: np.random.Generator | None = None) -> int:
        """Z-basis projective measurement; the qubit is left in the |outcome> state.
        ``rng`` (default: the shared one) draws the outcome: a node's own stream keeps
        outcomes independent of how the nodes' threads interleave."""
        rng = rng if rng is not None else self.rng
        with self.lock:
            g = self._get(key)
            n = len(g.keys)
            if n == 1:
                m = int(rng.random() < g.rho[1, 1].real)
                g.rho = _P1 if m else _P0
                return m
            p = g.keys.index(key)
            diag = np.real(np.diagonal(g.rho)).reshape([2] * n)
            p1 = float(np.clip(diag.take(1, axis=p).sum(), 0.0, 1.0))
            m = int(rng.random() < p1)
            if n > 1:
                t = g.rho.reshape([2] * (2 * n))
                idx: list[Any] = [slice(None)] * (2 * n)
                idx[p] = m
                idx[n + p] = m
                rest = t[tuple(idx)].reshape(2 ** (n - 1), 2 ** (n - 1))
                g.rho = rest / (p1 if m else 1 - p1)
                g.keys.pop(p)
            self._group[key] = _Group([key], _P1 if m else _P0)
            return m

    def set_pair(self, a: Key, b: Key, rho4: np.ndarray) -> None:
        """Put qubits ``a``, ``b`` in the two-qubit state ``rho4`` (old states traced out)."""
        with self.lock:
            self._split_off(a)
            self._split_off(b)
            g = _Group([a, b], np.array(rho4, dtype=complex))
            self._group[a] = g
            self._group[b] = g

    def state(self, keys: tuple) -> np.ndarray:
        """Reduced density matrix of ``keys`` (in that order)."""
        with self.lock:
            groups: list[_Group] = []
            for k in keys:
                g = self._get(k)
                if all(g is not h for h in groups):
                    groups.append(g)
            rho = np.ones((1, 1), dtype=complex)
            order: list = []
            for g in groups:
                rho = np.kron(rho, g.rho)
                order.extend(g.keys)
            n = len(order)
            for k in [k for k in order if k not in keys][::-1]:
                p = order.index(k)
                rho = _trace_out(rho, n, p)
                order.pop(p)
                n -= 1
            perm = [order.index(k) for k in keys]
            t = rho.reshape([2] * (2 * n)).transpose(perm + [n + q for q in perm])
            return t.reshape(2 ** n, 2 ** n).copy()

    def group_of(self, key: Key) -> tuple:
        """All qubit keys sharing a density matrix with ``key``."""
        with self.lock:
            return tuple(self._get(key).keys)


@dataclass(frozen=True, slots=True)
class IdealDurations:
    """Instruction durations (ns) of the ideal device."""

    init_ns: int = 10_000
    single_ns: int = 1_000
    two_qubit_ns: int = 10_000
    measure_ns: int = 10_000
    entangle_attempt_ns: int = 10_000


class LinkError(QDriverError, RuntimeError):
    """The heralding station was used wrongly (unknown peer, peer never came)."""


class IdealLink:
    """Ideal heralding station between two or more nodes' IdealQDrivers.

    Two drivers meet in :meth:`herald` (each calls its own ``entangle`` with the
    other as peer); the attempt succeeds with ``p_success`` and leaves the two
    qubits in a Werner state of ``fidelity`` around Bell state ``bell_index``
    (random per success when ``random_bell``). Both clocks are aligned to the later
    one plus the attempts used. ``timeout_s`` bounds the real-time wait for the peer.
    With ``bin_ns`` the windows of two nodes pair by TDMA time bin
    (:class:`~qnodeos_hw.qdevice.windows.WindowRendezvous`; a window whose peer
    attempts nothing in its bin fails), else by order of arrival.
    """

    def __init__(self, state: NetworkQuantumState | None = None, fidelity: float = 1.0,
                 p_success: float = 1.0, random_bell: bool = False,
                 timeout_s: float = 30.0, bin_ns: int | None = None,
                 seed: int | None = None) -> None:
        if not 0 < p_success <= 1:
            raise ValueError(f"p_success must be in (0, 1], got {p_success}")
        werner_state(fidelity)  # validates
        self.state = state if state is not None else NetworkQuantumState()
        self.fidelity, self.p_success, self.random_bell = fidelity, p_success, random_bell
        self.timeout_s = timeout_s
        self._cv = threading.Condition()
        self._drivers: dict[str, IdealQDriver] = {}
        self._waiting: dict[tuple[str, str], tuple[int, int, EntangleMode]] = {}
        self._results: dict[tuple[str, str], tuple[Response, int]] = {}
        self.bin_ns = bin_ns
        self.seed = seed
        self._rv: dict[frozenset, tuple[WindowRendezvous, np.random.Generator]] = {}
        self._clock_of: dict[str, int] = {}  # node -> latest progress (ns)

    def attach(self, driver: "IdealQDriver") -> None:
        self._drivers[driver.node] = driver

    def herald(self, node: str, qubit: int, mode: EntangleMode, peer: str,
               now_ns: int, attempt_ns: int, attempts: int = 1) -> tuple[Response, int]:
        """One attempt window (up to ``attempts`` attempts, the smaller budget of the two
        ends) of ``node`` with ``peer``: blocks until the peer's matching call. The first
        herald is drawn at once (geometric). Returns (response, time after the window in ns)."""
        if attempts < 1:
            raise ValueError(f"attempt budget must be >= 1, got {attempts}")
        if peer not in self._drivers:
            raise LinkError(f"node '{node}' asked to entangle with unknown peer '{peer}'")
        if self.bin_ns is not None:
            return self._herald_by_bin(node, qubit, mode, peer, now_ns, attempt_ns, attempts)
        with self._cv:
            other = self._waiting.pop((peer, node), None)
            if other is None:
                self._waiting[(node, peer)] = (qubit, now_ns, mode, attempts)
                ok = self._cv.wait_for(lambda: (node, peer) in self._results, self.timeout_s)
                if not ok:
                    self._waiting.pop((node, peer), None)
                    raise LinkError(f"node '{node}': peer '{peer}' did not attempt "
                                    f"entanglement within {self.timeout_s} s")
                return self._results.pop((node, peer))
            p_qubit, p_now, p_mode, p_attempts = other
            budget = min(attempts, p_attempts)
            rng = self.state.rng
            # attempt number of the first herald (1 = the first attempt), geometric
            first = 1 if self.p_success >= 1 else int(rng.geometric(self.p_success))
            used = min(first, budget)
            t = max(now_ns, p_now) + used * attempt_ns
            if first > budget:
                self._results[(peer, node)] = (ENT_FAILURE, t)
                self._cv.notify_all()
                return ENT_FAILURE, t
            bell = int(rng.integers(4)) if self.random_bell else 0
            # the creator-side qubit is the first of the pair: order by node name
            a, b = sorted([(node, qubit), (peer, p_qubit)])
            self.state.set_pair(a, b, werner_state(self.fidelity, bell))
            out_me = self.state.measure((node, qubit)) if mode is EntangleMode.MEASURE else None
            out_peer = self.state.measure((peer, p_qubit)) if p_mode is EntangleMode.MEASURE else None
            self._results[(peer, node)] = (Response(ResponseKind.ENT_SUCCESS, out_peer, bell), t)
            self._cv.notify_all()
            return Response(ResponseKind.ENT_SUCCESS, out_me, bell), t


    def progress(self, node: str, t_ns: int, peer: str | None = None) -> None:
        """``node``'s clock reached ``t_ns`` (with ``peer``: it attempts nothing with that
        peer before ``t_ns``): partners stop waiting for its windows of bins that ended by
        then (:meth:`WindowRendezvous.passed`)."""
        if self.bin_ns is None:
            return
        if peer is not None:
            rvs = [self._rendezvous(frozenset((node, peer)))[0]]
        else:
            with self._cv:
                self._clock_of[node] = max(t_ns, self._clock_of.get(node, 0))
                rvs = [rv for key, (rv, _) in self._rv.items() if node in key]
        for rv in rvs:
            rv.passed(node, t_ns)

    def _rendezvous(self, key: frozenset) -> tuple[WindowRendezvous, np.random.Generator]:
        with self._cv:
            if key not in self._rv:
                # one random stream per link (seeded by its nodes' names), so links
                # resolving on different threads do not reorder each other's draws
                rng = (np.random.default_rng([int(self.seed) % 2**63,
                                              zlib.crc32("|".join(sorted(key)).encode())])
                       if self.seed is not None else self.state.rng)
                rv = WindowRendezvous(self.bin_ns, self.timeout_s)
                for n in key:
                    if n in self._clock_of:
                        rv.passed(n, self._clock_of[n])
                self._rv[key] = (rv, rng)
            return self._rv[key]

    def _herald_by_bin(self, node: str, qubit: int, mode: EntangleMode, peer: str,
                       now_ns: int, attempt_ns: int, attempts: int) -> tuple[Response, int]:
        rv, rng = self._rendezvous(frozenset((node, peer)))

        bin_end = (now_ns // self.bin_ns + 1) * self.bin_ns

        def resolve(arr: dict) -> dict:
            start = max(a[1] for a in arr.values())
            # a window never runs past its bin: the next bin may belong to another link
            budget = min(min(a[3] for a in arr.values()), max(0, (bin_end - start) // attempt_ns))
            if budget == 0:
                return {n: (ENT_FAILURE, start) for n in arr}
            first = 1 if self.p_success >= 1 else int(rng.geometric(self.p_success))
            used = min(first, budget)
            t = start + used * attempt_ns
            if first > budget:
                return {n: (ENT_FAILURE, t) for n in arr}
            bell = int(rng.integers(4)) if self.random_bell else 0
            a, b = sorted((n, q) for n, (q, _, _, _) in arr.items())
            self.state.set_pair(a, b, werner_state(self.fidelity, bell))
            out = {}
            for n in sorted(arr):
                q, _, m, _ = arr[n]
                o = self.state.measure((n, q)) if m is EntangleMode.MEASURE else None
                out[n] = (Response(ResponseKind.ENT_SUCCESS, o, bell), t)
            return out

        try:
            res = rv.meet(node, peer, now_ns, (qubit, now_ns, mode, attempts), resolve)
        except PartnerMissingError as exc:
            raise LinkError(str(exc)) from None
        if res is LONE:
            self.state.reset((node, qubit))
            return ENT_FAILURE, now_ns + min(attempts, max(0, (bin_end - now_ns) // attempt_ns)) * attempt_ns
        return res


class IdealQDriver(QDriver):
    """Exact simulation of ``num_qubits`` perfect qubits of node ``node``.

    ``clock`` is advanced by each instruction's duration. ``flavour`` is what the
    QNPU decodes subroutines with (default vanilla); instructions of every flavour
    are accepted anyway. ``link`` connects to other nodes for ``entangle``.
    """

    def __init__(self, node: str, num_qubits: int = 5, clock: Clock | None = None,
                 link: IdealLink | None = None, flavour: Flavour | None = None,
                 durations: IdealDurations = IdealDurations(),
                 rng: np.random.Generator | None = None) -> None:
        if num_qubits < 1:
            raise ValueError("an IdealQDriver needs at least one qubit")
        self.node = node
        # every qubit communicates and is measured, no pinned placement (an ideal device)
        self.spec: QDeviceSpec = dataclasses.replace(nv_spec(num_qubits), name="ideal",
                                                     comm_qubits=None, measurable_qubits=None,
                                                     pinned=())
        self.flavour = flavour if flavour is not None else VanillaFlavour()
        self.clock = clock if clock is not None else VirtualClock()
        self.durations = durations
        self.link = link
        if link is not None:
            self.state = link.state
            link.attach(self)
        else:
            self.state = NetworkQuantumState(rng)
        #: this node's measurement outcomes (None: the shared stream of ``state``)
        self.rng = rng
        self._cache: dict[tuple, np.ndarray] = {}
        self._handlers: dict[str, Callable[[Any, tuple], int | None]] = {
            "init": self._init, "meas": self._meas, "meas_basis": self._meas_basis,
            "meas_basis_yzy": self._meas_basis, "meas_basis_zxz": self._meas_basis,
            "rot_x": self._rot, "rot_y": self._rot, "rot_z": self._rot,
            "crot_x": self._crot, "crot_y": self._crot,
            "init_all": self._init_all, "meas_all": self._meas_all,
            "rot_x_all": self._rot_all, "rot_y_all": self._rot_all, "rot_z_all": self._rot_all,
            "bichromatic": self._bichromatic,
        }
        for name in _FIXED:
            self._handlers[name] = self._fixed

    # -- QDriver interface -------------------------------------------------------------
    def execute(self, instr: Any, qubits: tuple[int, ...]) -> int | None:
        h = self._handlers.get(instr.mnemonic)
        if h is None:
            raise UnsupportedNetQASMError(
                f"IdealQDriver: instruction '{instr.mnemonic}' has no quantum meaning here")
        for q in qubits:
            if not 0 <= q < self.spec.num_qubits:
                raise UnsupportedNetQASMError(
                    f"IdealQDriver: '{instr.mnemonic}' addresses physical qubit {q}; "
                    f"node '{self.node}' has {self.spec.num_qubits}")
        return h(instr, qubits)

    def entangle(self, qubit: int, mode: EntangleMode, peer: str, attempts: int = 1) -> Response:
        """One attempt window of up to ``attempts`` attempts with ``peer``."""
        if self.link is None:
            raise LinkError(f"node '{self.node}' has no link to entangle with '{peer}'")
        resp, t = self.link.herald(self.node, qubit, mode, peer, self.clock.now_ns(),
                                   self.durations.entangle_attempt_ns, attempts)
        if t > self.clock.now_ns():
            self.clock.advance_to(t)
        return resp

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def free(self, qubit: int) -> None:
        self.state.reset((self.node, qubit))

    def qubit_state(self, qubits: tuple[int, ...]) -> np.ndarray:
        return self.state.state(tuple((self.node, q) for q in qubits))

    def group_state(self, qubit: int) -> tuple[tuple, np.ndarray]:
        """All qubits (``(node, address)``) entangled with ``qubit`` and their joint state."""
        keys = self.state.group_of((self.node, qubit))
        return keys, self.state.state(keys)

    # -- handlers ------------------------------------------------------------------------
    def _tick(self, dt: int) -> None:
        clock = self.clock
        clock.advance_to(clock.now_ns() + dt)

    def _init(self, instr: Any, qubits: tuple) -> None:
        self.state.reset((self.node, qubits[0]))
        self._tick(self.durations.init_ns)

    def _meas(self, instr: Any, qubits: tuple) -> int:
        m = self.state.measure((self.node, qubits[0]), self.rng)
        self._tick(self.durations.measure_ns)
        return m

    def _meas_basis(self, instr: Any, qubits: tuple) -> int:
        axes = {"meas_basis": "xyx", "meas_basis_yzy": "yzy", "meas_basis_zxz": "zxz"}[instr.mnemonic]
        d = instr.imm3.value
        u = _I2
        for axis, imm in zip(axes, (instr.imm0, instr.imm1, instr.imm2)):
            u = rotation(axis, imm.value * math.pi / (1 << d)) @ u
        self.state.apply(((self.node, qubits[0]),), u)
        self._tick(3 * self.durations.single_ns)
        return self._meas(instr, qubits)

    def _fixed(self, instr: Any, qubits: tuple) -> None:
        u, ud = _FIXED_DAG[instr.mnemonic]
        if u.shape[0] == 2:
            self.state.apply(((self.node, qubits[0]),), u, ud)
            self._tick(self.durations.single_ns)
        else:
            self.state.apply(((self.node, qubits[0]), (self.node, qubits[1])), u, ud)
            self._tick(self.durations.two_qubit_ns)

    def _angle_matrix(self, instr: Any, build: Callable[[float], np.ndarray]) -> np.ndarray:
        key = (instr.mnemonic, instr.angle_num.value, instr.angle_denom.value)
        u = self._cache.get(key)
        if u is None:
            u = build(key[1] * math.pi / (1 << key[2]))
            self._cache[key] = u
        return u

    def _rot(self, instr: Any, qubits: tuple) -> None:
        key = (instr.mnemonic, instr.angle_num.value, instr.angle_denom.value)
        ud = self._cache.get(key)
        if ud is None:
            u = rotation(instr.mnemonic[-1], key[1] * math.pi / (1 << key[2]))
            ud = self._cache[key] = (u, u.conj().T.copy())
        self.state.apply(((self.node, qubits[0]),), ud[0], ud[1])
        self._tick(self.durations.single_ns)

    def _crot(self, instr: Any, qubits: tuple) -> None:
        axis = instr.mnemonic[-1]
        u = self._angle_matrix(instr, lambda a: np.kron(_P0, rotation(axis, a))
                               + np.kron(_P1, rotation(axis, -a)))
        self.state.apply(((self.node, qubits[0]), (self.node, qubits[1])), u)
        self._tick(self.durations.two_qubit_ns)

    def _init_all(self, instr: Any, qubits: tuple) -> None:
        for q in qubits:
            self.state.reset((self.node, q))
        self._tick(self.durations.init_ns)

    def _meas_all(self, instr: Any, qubits: tuple) -> int:
        """Measures every qubit; returns the outcomes as bits of an int (qubit i -> bit i)."""
        word = 0
        for i, q in enumerate(qubits):
            word |= self.state.measure((self.node, q), self.rng) << i
        self._tick(self.durations.measure_ns)
        return word

    def _rot_all(self, instr: Any, qubits: tuple) -> None:
        u = self._angle_matrix(instr, lambda a: rotation(instr.mnemonic[4], a))
        for q in qubits:
            self.state.apply(((self.node, q),), u)
        self._tick(self.durations.single_ns)

    def _bichromatic(self, instr: Any, qubits: tuple) -> None:
        """Molmer-Sorensen gate ``exp(-i theta/2 sum_{i<j} X_i X_j)`` on all ``qubits``."""
        n = len(qubits)
        a = instr.angle_num.value * math.pi / (1 << instr.angle_denom.value)
        xs = []
        for i in range(n):
            ops = [_X if j == i else _I2 for j in range(n)]
            m = ops[0]
            for o in ops[1:]:
                m = np.kron(m, o)
            xs.append(m)
        h = sum(xs[i] @ xs[j] for i in range(n) for j in range(i + 1, n)) if n > 1 else np.zeros((2, 2))
        w, v = np.linalg.eigh(h)
        u = (v * np.exp(-1j * a / 2 * w)) @ v.conj().T
        self.state.apply(tuple((self.node, q) for q in qubits), u)
        self._tick(self.durations.two_qubit_ns)
