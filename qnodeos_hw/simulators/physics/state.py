"""Joint quantum state of all simulated qubits: a registry of subsystems.

A qubit is identified by ``(node_name, address)``. Qubits that were never entangled
live in one-qubit subsystems stored as Bloch vectors (the fast path: pure-Python
float arithmetic). Entangling operations merge subsystems into a density matrix;
measuring or re-initialising a qubit splits it off again. Every single-qubit
operation is an affine map of the Bloch vector ``r -> M r + c``; the registry
applies it to a one-qubit subsystem directly, or to a qubit inside a joint density
matrix through the equivalent superoperator. One lock guards the whole registry so
that nodes driven from different threads can share it.
"""

from __future__ import annotations

import math
import threading
from typing import Hashable, Iterable, Sequence

import numpy as np

try:  # only mypyc reads the decorator; without mypy installed it is a no-op
    from mypy_extensions import mypyc_attr
except ImportError:  # pragma: no cover - depends on the install
    def mypyc_attr(*_a: object, **_k: object):  # type: ignore[misc,no-redef]
        return lambda cls: cls

from .errors import QubitAddressError

QubitKey = tuple[str, int]
_I2 = np.eye(2, dtype=complex)


class _Sub:
    """One subsystem: ``keys`` in tensor order (first = most significant) and either a
    Bloch vector ``r`` (one qubit) or a density matrix ``rho``."""

    __slots__ = ("keys", "r", "rho")

    def __init__(self, keys: list, r: list[float] | None = None,
                 rho: np.ndarray | None = None) -> None:
        self.keys, self.r, self.rho = keys, r, rho


def bloch_to_rho(r: Sequence[float]) -> np.ndarray:
    """2x2 density matrix of Bloch vector ``r``."""
    x, y, z = r
    return np.array([[1 + z, x - 1j * y], [x + 1j * y, 1 - z]], dtype=complex) / 2


def rho_to_bloch(rho: np.ndarray) -> list[float]:
    """Bloch vector of a 2x2 density matrix."""
    return [2 * rho[1, 0].real, 2 * rho[1, 0].imag, (rho[0, 0] - rho[1, 1]).real]


@mypyc_attr(allow_interpreted_subclasses=True)  # DistributedRegistry (physics/distributed.py)
class QuantumRegistry:
    """All qubits of a simulated network (one instance shared by the nodes and the
    heralding station). Qubits are created by :meth:`add_qubit`, fully mixed."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._where: dict[Hashable, _Sub] = {}

    # ----------------------------------------------------------------- bookkeeping
    def add_qubit(self, key: QubitKey) -> None:
        """Create qubit ``key`` in the fully mixed state."""
        with self.lock:
            if key in self._where:
                raise QubitAddressError(f"qubit {key} already exists in the registry")
            self._where[key] = _Sub([key], r=[0.0, 0.0, 0.0])

    def _sub(self, key) -> _Sub:
        try:
            return self._where[key]
        except KeyError:
            raise QubitAddressError(f"no qubit {key} in the registry") from None

    def partners(self, key: QubitKey) -> list:
        """Keys of the qubits sharing a subsystem with ``key`` (``key`` included)."""
        with self.lock:
            return list(self._sub(key).keys)

    # ---------------------------------------------------------- single-qubit maps
    def apply_affine(self, key, m: Sequence[float], c: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        """Apply the Bloch map ``r -> M r + c`` (M row-major 9 floats) to qubit ``key``."""
        with self.lock:
            sub = self._where.get(key) or self._sub(key)
            if sub.r is not None:
                x, y, z = sub.r
                sub.r = [m[0] * x + m[1] * y + m[2] * z + c[0],
                         m[3] * x + m[4] * y + m[5] * z + c[1],
                         m[6] * x + m[7] * y + m[8] * z + c[2]]
            else:
                _apply_superop(sub, sub.keys.index(key), _affine_superop(m, c))

    def apply_unitary_1q(self, key, u: np.ndarray, rot: tuple[float, ...]) -> None:
        """Apply 2x2 unitary ``u`` whose Bloch rotation is ``rot`` (both given, for speed)."""
        lock = self.lock  # acquire/release: cheaper than `with` on the hot path
        lock.acquire()
        try:
            sub = self._where.get(key) or self._sub(key)
            if sub.r is not None:
                m = rot
                x, y, z = sub.r
                sub.r = [m[0] * x + m[1] * y + m[2] * z, m[3] * x + m[4] * y + m[5] * z,
                         m[6] * x + m[7] * y + m[8] * z]
            else:
                _apply_1q(sub, sub.keys.index(key), u)
        finally:
            lock.release()

    def decohere(self, key, a: float, b: float, c: float, phi: float = 0.0) -> None:
        """Memory channel: precession by ``phi`` (rad) about z, then
        ``x, y -> a x, a y``; ``z -> b z + c``."""
        lock = self.lock  # acquire/release: cheaper than `with` on the hot path
        lock.acquire()
        try:
            sub = self._where.get(key) or self._sub(key)
            if sub.r is not None:
                x, y, z = sub.r
                if phi:
                    cp, sp = math.cos(phi), math.sin(phi)
                    x, y = cp * x - sp * y, sp * x + cp * y
                sub.r = [a * x, a * y, b * z + c]
            else:
                t = _tensor(sub, sub.keys.index(key))  # a view into sub.rho
                f = a * complex(math.cos(phi), -math.sin(phi)) if phi else a
                t[:, 0, :, :, 1, :] *= f
                t[:, 1, :, :, 0, :] *= f.conjugate() if phi else a
                d0 = t[:, 0, :, :, 0, :].copy()
                d1 = t[:, 1, :, :, 1, :]
                t[:, 0, :, :, 0, :] = d0 * ((1 + b + c) / 2) + d1 * ((1 - b + c) / 2)
                t[:, 1, :, :, 1, :] = d0 * ((1 - b - c) / 2) + d1 * ((1 + b - c) / 2)
        finally:
            lock.release()

    # -------------------------------------------------------------- measurement
    def prob_zero(self, key) -> float:
        """P(outcome 0) of a Z measurement of ``key``."""
        with self.lock:
            sub = self._where.get(key) or self._sub(key)
            if sub.r is not None:
                return 0.5 * (1.0 + sub.r[2])
            return _p0(sub, sub.keys.index(key))

    def measure(self, key, u01: float) -> int:
        """Projective Z measurement with uniform random number ``u01``: outcome 0 if
        ``u01 < P(0)``. The qubit is split off in the post-measurement state."""
        lock = self.lock  # acquire/release: cheaper than `with` on the hot path
        lock.acquire()
        try:
            sub = self._where.get(key) or self._sub(key)
            if sub.r is not None:
                out = 0 if u01 < 0.5 * (1.0 + sub.r[2]) else 1
                sub.r = [0.0, 0.0, 1.0 if out == 0 else -1.0]
                return out
            k = sub.keys.index(key)
            p0 = _p0(sub, k)
            out = 0 if u01 < p0 else 1
            p = p0 if out == 0 else 1.0 - p0
            rest = _tensor(sub, k)[:, out, :, :, out, :] / p
            self._replace(sub, k, rest, [0.0, 0.0, 1.0 if out == 0 else -1.0])
            return out
        finally:
            lock.release()

    def reset(self, key, r: Sequence[float]) -> None:
        """Trace ``key`` out of its subsystem and give it Bloch vector ``r``."""
        lock = self.lock  # acquire/release: cheaper than `with` on the hot path
        lock.acquire()
        try:
            sub = self._where.get(key) or self._sub(key)
            if sub.r is not None:
                sub.r = list(r)
                return
            k = sub.keys.index(key)
            t = _tensor(sub, k)
            self._replace(sub, k, t[:, 0, :, :, 0, :] + t[:, 1, :, :, 1, :], list(r))
        finally:
            lock.release()

    def _replace(self, sub: _Sub, k: int, rest: np.ndarray, r: list) -> None:
        key = sub.keys[k]
        keys = sub.keys[:k] + sub.keys[k + 1:]
        dim = 2 ** len(keys)
        rest = rest.reshape(dim, dim)
        new = _Sub(keys, r=rho_to_bloch(rest)) if len(keys) == 1 else _Sub(keys, rho=rest)
        for q in keys:
            self._where[q] = new
        self._where[key] = _Sub([key], r=r)

    # --------------------------------------------------------- multi-qubit state
    def set_joint_state(self, keys: Sequence, rho: np.ndarray) -> None:
        """Discard the current state of ``keys`` and put them in joint state ``rho``
        (tensor order = order of ``keys``)."""
        rho = np.asarray(rho, dtype=complex)
        n = len(keys)
        if rho.shape != (2 ** n, 2 ** n):
            raise ValueError(f"joint state of {n} qubits must be {2**n}x{2**n}, got {rho.shape}")
        with self.lock:
            for q in keys:
                self.reset(q, [0.0, 0.0, 0.0])
            if n == 1:
                self._where[keys[0]].r = rho_to_bloch(rho)
                return
            new = _Sub(list(keys), rho=rho.copy())
            for q in keys:
                self._where[q] = new

    def apply_unitary(self, keys: Sequence, u: np.ndarray) -> None:
        """Apply a 2^n x 2^n unitary to qubits ``keys`` (merging their subsystems)."""
        u = np.asarray(u, dtype=complex)
        with self.lock:
            sub = self._merge(keys)
            _apply_op(sub, [sub.keys.index(q) for q in keys], u)

    def _merge(self, keys: Iterable) -> _Sub:
        subs: list[_Sub] = []
        for q in keys:
            s = self._sub(q)
            if all(s is not o for o in subs):
                subs.append(s)
        if len(subs) == 1 and subs[0].rho is not None:
            return subs[0]
        all_keys: list = []
        rho = np.ones((1, 1), dtype=complex)
        for s in subs:
            all_keys += s.keys
            rho = np.kron(rho, bloch_to_rho(s.r) if s.r is not None else s.rho)
        new = _Sub(all_keys, rho=rho)
        for q in all_keys:
            self._where[q] = new
        return new

    def reduced_density_matrix(self, keys: Sequence) -> np.ndarray:
        """Density matrix of ``keys`` (tensor order = order given), others traced out."""
        with self.lock:
            subs: list[_Sub] = []
            for q in keys:
                s = self._sub(q)
                if all(s is not o for o in subs):
                    subs.append(s)
            all_keys: list = []
            rho = np.ones((1, 1), dtype=complex)
            for s in subs:
                all_keys += s.keys
                rho = np.kron(rho, bloch_to_rho(s.r) if s.r is not None else s.rho)
        n = len(all_keys)
        keep = [all_keys.index(q) for q in keys]
        if len(set(keep)) != len(keep):
            raise QubitAddressError(f"repeated qubit in {list(keys)}")
        t = rho.reshape((2,) * (2 * n))
        rest = [i for i in range(n) if i not in keep]
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        row = [letters[i] for i in range(n)]
        col = [letters[n + i] for i in range(n)]
        for i in rest:
            col[i] = row[i]
        out = "".join(row[i] for i in keep) + "".join(col[i] for i in keep)
        red = np.einsum("".join(row) + "".join(col) + "->" + out, t)
        d = 2 ** len(keys)
        return red.reshape(d, d)


# ------------------------------------------------------------------ tensor helpers
def _rho(sub: _Sub) -> np.ndarray:
    """The density matrix of a multi-qubit subsystem."""
    rho = sub.rho
    assert rho is not None, "a one-qubit subsystem has a Bloch vector, not a matrix"
    return rho


def _tensor(sub: _Sub, k: int) -> np.ndarray:
    n = len(sub.keys)
    left, right = 2 ** k, 2 ** (n - k - 1)
    return _rho(sub).reshape(left, 2, right, left, 2, right)


def _p0(sub: _Sub, k: int) -> float:
    """P(0) of qubit position ``k`` from the diagonal of the joint density matrix."""
    n = len(sub.keys)
    d = _rho(sub).diagonal().real.reshape(2 ** k, 2, 2 ** (n - k - 1))
    return float(d[:, 0, :].sum())


def _apply_1q(sub: _Sub, k: int, u: np.ndarray) -> None:
    """rho -> U rho U^dagger for a 2x2 ``u`` on qubit position ``k`` (two batched matmuls)."""
    n = len(sub.keys)
    d = 2 ** n
    left, right = 2 ** k, 2 ** (n - k - 1)
    x = np.matmul(u, _rho(sub).reshape(left, 2, right * d))  # rows
    y = np.matmul(u.conj(), x.reshape(d * left, 2, right))  # columns
    sub.rho = y.reshape(d, d)


def _apply_superop(sub: _Sub, k: int, s: np.ndarray) -> None:
    """Apply a one-qubit superoperator ``s[i', j', i, j]`` to qubit position ``k``."""
    t = _tensor(sub, k)
    out = np.einsum("pqij,aibcjd->apbcqd", s, t)
    sub.rho = out.reshape(_rho(sub).shape)


def _apply_op(sub: _Sub, pos: list[int], u: np.ndarray) -> None:
    """rho -> U rho U^dagger with U acting on qubit positions ``pos`` (in that order)."""
    n = len(sub.keys)
    m = len(pos)
    t = _rho(sub).reshape((2,) * (2 * n))
    ut = u.reshape((2,) * (2 * m))
    # left multiplication on row axes pos
    t = np.tensordot(ut, t, axes=(list(range(m, 2 * m)), pos))
    t = np.moveaxis(t, list(range(m)), pos)
    cols = [n + p for p in pos]
    t = np.tensordot(t, ut.conj(), axes=(cols, list(range(m, 2 * m))))
    t = np.moveaxis(t, list(range(2 * n - m, 2 * n)), cols)
    d = 2 ** n
    sub.rho = np.ascontiguousarray(t.reshape(d, d))


_PAULIS = np.array([_I2, [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]],
                   dtype=complex)


def _affine_superop(m: Sequence[float], c: Sequence[float]) -> np.ndarray:
    """Superoperator ``s[i', j', i, j]`` of the Bloch map ``r -> M r + c``.

    With Pauli coordinates ``v_a = Tr(P_a rho)`` the map is the Pauli transfer matrix
    ``T = [[1, 0], [c, M]]`` and ``rho' = sum_ab P_a T_ab Tr(P_b rho) / 2``."""
    ptm = np.zeros((4, 4))
    ptm[0, 0] = 1.0
    ptm[1:, 0] = c
    ptm[1:, 1:] = np.asarray(m, dtype=float).reshape(3, 3)
    return np.einsum("apq,ab,bji->pqij", _PAULIS, ptm, _PAULIS) / 2
