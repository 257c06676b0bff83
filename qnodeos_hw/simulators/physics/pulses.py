"""Unitaries of microwave / laser pulses in the rotating frame.

Convention (rotating frame, hbar = 1): a sample with full-scale I/Q values
``(i, q)`` drives ``H = (Omega/2) (i sigma_x + q sigma_y) + (delta/2) sigma_z`` with
``Omega = 2 pi * rabi_hz_per_amplitude`` (rad/s) and ``delta = 2 pi * detuning_hz``
(detuning = qubit frequency minus drive frequency, the frame rotating with the drive).
So a positive I pulse of area ``theta`` is ``Rx(theta) = exp(-i theta sigma_x / 2)``,
positive Q gives ``Ry``. |0> is the Bloch north pole (z = +1).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import WaveformError

_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)


def waveform_unitary(wave_i: np.ndarray, wave_q: np.ndarray, sample_rate_hz: float,
                     rabi_hz_per_amplitude: float, detuning_hz: float = 0.0) -> np.ndarray:
    """The 2x2 unitary of a piecewise-constant I/Q waveform (one value per sample).

    Runs of equal samples are merged, each run's SU(2) element is computed in closed
    form (vectorised), and the time-ordered product is reduced pairwise in log2(N)
    batched matmuls.
    """
    wi = np.asarray(wave_i, dtype=float).ravel()
    wq = np.asarray(wave_q, dtype=float).ravel()
    if wi.shape != wq.shape:
        raise WaveformError(f"I and Q waveforms differ in length: {wi.size} vs {wq.size} samples")
    if not sample_rate_hz > 0:
        raise WaveformError(f"sample rate must be positive, got {sample_rate_hz} Hz")
    if wi.size == 0:
        return np.eye(2, dtype=complex)
    if not (np.all(np.isfinite(wi)) and np.all(np.isfinite(wq))):
        raise WaveformError("waveform contains non-finite samples")
    # run-length encoding of (i, q) pairs
    change = np.flatnonzero((wi[1:] != wi[:-1]) | (wq[1:] != wq[:-1])) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [wi.size])))
    dt = lengths / sample_rate_hz
    half = math.pi * rabi_hz_per_amplitude  # Omega / 2
    hx, hy = half * wi[starts], half * wq[starts]
    hz = np.full_like(hx, math.pi * detuning_hz)
    mats = su2_from_field(hx, hy, hz, dt)
    return ordered_product(mats)


def su2_from_field(hx, hy, hz, dt) -> np.ndarray:
    """``exp(-i dt (hx X + hy Y + hz Z))`` for arrays of fields (rad/s) and durations (s);
    returns shape (N, 2, 2)."""
    hx, hy, hz, dt = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (hx, hy, hz, dt)))
    norm = np.sqrt(hx * hx + hy * hy + hz * hz)
    c = np.cos(norm * dt)
    s = dt * np.sinc(norm * dt / math.pi)  # sin(|h| dt) / |h|, finite at |h| = 0
    out = np.empty(hx.shape + (2, 2), dtype=complex)
    out[..., 0, 0] = c - 1j * s * hz
    out[..., 1, 1] = c + 1j * s * hz
    out[..., 0, 1] = -1j * s * (hx - 1j * hy)
    out[..., 1, 0] = -1j * s * (hx + 1j * hy)
    return out


def ordered_product(mats: np.ndarray) -> np.ndarray:
    """``M[N-1] @ ... @ M[1] @ M[0]`` (time order: first element acts first)."""
    m = mats
    while m.shape[0] > 1:
        if m.shape[0] % 2:
            tail = m[-1:]
            pairs = np.matmul(m[1:-1:2], m[0:-1:2])
            m = np.concatenate((pairs, tail))
        else:
            m = np.matmul(m[1::2], m[0::2])
    return m[0].copy()


def rotation_unitary(angle_rad: float, phase_rad: float) -> np.ndarray:
    """``exp(-i angle/2 (cos(phase) X + sin(phase) Y))``."""
    c, s = math.cos(angle_rad / 2), math.sin(angle_rad / 2)
    e = complex(math.cos(phase_rad), math.sin(phase_rad))
    return np.array([[c, -1j * s * e.conjugate()], [-1j * s * e, c]], dtype=complex)


def bloch_rotation(u: np.ndarray) -> tuple[float, ...]:
    """The SO(3) matrix (row-major 9-tuple) that ``u`` applies to Bloch vectors:
    ``R_jk = Tr(sigma_j u sigma_k u^dagger) / 2``."""
    u = np.asarray(u, dtype=complex)
    r = np.einsum("jab,bc,kcd,ad->jk", _PAULI, u, _PAULI, u.conj()).real / 2
    return tuple(float(v) for v in r.ravel())
