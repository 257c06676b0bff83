"""Single-qubit unitaries of physical instructions, equality up to global phase,
and the ZYZ Euler decomposition.

Convention: ``R_n(theta) = exp(-i theta/2 n.sigma)``; a sequence is listed in time
order, so its operator is ``U_k ... U_2 U_1``.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..qdevice.instructions import Axis, Rotation

_I2 = np.eye(2, dtype=complex)
_PAULI = {
    Axis.X: np.array([[0, 1], [1, 0]], dtype=complex),
    Axis.Y: np.array([[0, -1j], [1j, 0]], dtype=complex),
    Axis.Z: np.array([[1, 0], [0, -1]], dtype=complex),
}


def rotation_matrix(axis: Axis, angle: float) -> np.ndarray:
    """``exp(-i angle/2 sigma_axis)`` (angle in rad)."""
    return math.cos(angle / 2) * _I2 - 1j * math.sin(angle / 2) * _PAULI[axis]


def sequence_matrix(rotations: Iterable[Rotation]) -> np.ndarray:
    """Operator of rotations applied in time order."""
    u = _I2.copy()
    for r in rotations:
        u = rotation_matrix(r.axis, r.angle) @ u
    return u


def equal_up_to_phase(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> bool:
    """True when ``a = e^{i phi} b`` for some phi."""
    overlap = np.vdot(b, a)  # tr(b^dag a)
    if abs(overlap) < 1e-12:
        return False
    phase = overlap / abs(overlap)
    return bool(np.allclose(a, phase * b, atol=atol))


def phase_key(u: np.ndarray, decimals: int = 9) -> tuple:
    """Hashable key of a unitary modulo global phase."""
    flat = u.ravel()
    k = int(np.argmax(np.abs(flat) > 1e-6))
    v = flat * (abs(flat[k]) / flat[k])
    v = np.round(v, decimals) + 0.0  # normalise -0.0
    return tuple(np.concatenate([v.real, v.imag]).tolist())


def euler_zyz(u: np.ndarray) -> tuple[float, float, float]:
    """Angles (a, b, c) with ``u = e^{i g} Rz(a) Ry(b) Rz(c)``; b in [0, pi]."""
    det = np.linalg.det(u)
    v = np.asarray(u, dtype=complex) / np.sqrt(complex(det))  # SU(2)
    b = 2 * math.atan2(abs(v[1, 0]), abs(v[0, 0]))
    if abs(v[0, 0]) < 1e-12:
        a_minus_c, a_plus_c = 2 * np.angle(v[1, 0]), 0.0
    elif abs(v[1, 0]) < 1e-12:
        a_minus_c, a_plus_c = 0.0, 2 * np.angle(v[1, 1])
    else:
        a_plus_c = 2 * np.angle(v[1, 1])
        a_minus_c = 2 * np.angle(v[1, 0])
    a = (a_plus_c + a_minus_c) / 2
    c = (a_plus_c - a_minus_c) / 2
    return float(a), float(b), float(c)
