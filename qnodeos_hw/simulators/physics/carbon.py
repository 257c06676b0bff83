"""Electron + 13C evolution from the samples the AWG plays (sample-level model).

The electron (two levels m_s = 0 -> |0>, m_s = -1 -> |1>) is driven in the MW frame by
the played I/Q samples, ``H_e = (Omega/2)(i sx + q sy) + (delta/2) sz`` (as
:mod:`.pulses`); each carbon couples as ``|0><0| H0 + |1><1| H1`` with the Hamiltonians
of :func:`qnodeos_hw.waveforms.carbon_gates.carbon_hamiltonians`, and is reported in its
own frame rotating at ``omega_bar`` (:func:`~qnodeos_hw.waveforms.carbon_gates.frame_rate`).
Samples are piecewise constant: each pulse's samples are exponentiated exactly (one
Hermitian eigendecomposition per sample, batched; cached per pulse waveform), the zero
gaps in one step.

:func:`train_unitary` gives the electron (x) carbons unitary of a train (any number of
carbons: 2^(1+M) dimensions). The NV node applies the one-carbon unitary of the carbon the
train addresses (the *effective model*, :meth:`NVNode.play_train`): crosstalk onto the
other carbons is neglected; :func:`crosstalk` measures what that neglects.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import numpy as np

from ...waveforms.carbon_gates import carbon_hamiltonians, frame_correction, frame_rate
from .pulses import ordered_product

_SX = np.array([[0, 1], [1, 0]], dtype=complex) / 2
_SY = np.array([[0, -1j], [1j, 0]], dtype=complex) / 2
_SZ = np.array([[1, 0], [0, -1]], dtype=complex) / 2
_P0 = np.diag([1.0, 0.0]).astype(complex)
_P1 = np.diag([0.0, 1.0]).astype(complex)

Carbon = tuple[float, float, float]  # (larmor_hz, a_par_hz, a_perp_hz)


def _embed(op: np.ndarray, pos: int, n: int) -> np.ndarray:
    out = np.ones((1, 1), dtype=complex)
    for k in range(n):
        out = np.kron(out, op if k == pos else np.eye(2))
    return out


class _System:
    """Electron + carbons: static Hamiltonian and the electron drive operators."""

    def __init__(self, carbons: Sequence[Carbon], detuning_hz: float) -> None:
        n = 1 + len(carbons)
        self.n = n
        h = math.pi * detuning_hz * 2 * _embed(_SZ, 0, n)
        for k, (wl, ap, ax) in enumerate(carbons, start=1):
            h0, h1 = carbon_hamiltonians(wl, ap, ax)
            h = h + _embed(_P0, 0, n) @ _embed(h0, k, n) + _embed(_P1, 0, n) @ _embed(h1, k, n)
        self.h_static = h
        self.dx, self.dy = 2 * _embed(_SX, 0, n), 2 * _embed(_SY, 0, n)  # sigma_x, sigma_y
        self.wbar = [frame_rate(*c) for c in carbons]

    def expm(self, hs: np.ndarray, dt: float) -> np.ndarray:
        """exp(-i H dt) for a batch of Hermitian H (N, d, d)."""
        w, v = np.linalg.eigh(hs)
        return (v * np.exp(-1j * w * dt)[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))

    def frame(self, duration_s: float) -> np.ndarray:
        out = np.ones((1, 1), dtype=complex)
        out = np.kron(out, np.eye(2))
        for wb in self.wbar:
            out = np.kron(out, frame_correction(wb, duration_s))
        return out


_PULSE_CACHE: dict[tuple, np.ndarray] = {}


def _pulse_unitary(sys_: _System, key: tuple, wi: np.ndarray, wq: np.ndarray,
                   rate: float, rabi_hz: float) -> np.ndarray:
    digest = hashlib.blake2b(wi.tobytes() + wq.tobytes(), digest_size=12).digest()
    ck = key + (digest, rate, rabi_hz)
    u = _PULSE_CACHE.get(ck)
    if u is None:
        half = math.pi * rabi_hz  # Omega / 2 per unit amplitude (rad/s)
        hs = (sys_.h_static[None] + half * (wi[:, None, None] * sys_.dx[None]
                                            + wq[:, None, None] * sys_.dy[None]))
        u = ordered_product(sys_.expm(hs, 1.0 / rate))
        if len(_PULSE_CACHE) > 4096:
            _PULSE_CACHE.clear()
        _PULSE_CACHE[ck] = u
    return u


def train_unitary(carbons: Sequence[Carbon], offsets: Sequence[int], waves_i: Sequence[np.ndarray],
                  waves_q: Sequence[np.ndarray], n_samples: int, sample_rate_hz: float,
                  rabi_hz_per_amplitude: float, detuning_hz: float = 0.0) -> np.ndarray:
    """Unitary (electron (x) carbons, tensor order electron first; carbons in their frames)
    of a pulse train: pulse ``k`` (samples ``waves_i[k]``/``waves_q[k]``) at sample
    ``offsets[k]``, zeros elsewhere, ``n_samples`` in all."""
    sys_ = _System(carbons, detuning_hz)
    key = (tuple(carbons), detuning_hz)
    d = 2 ** sys_.n
    u = np.eye(d, dtype=complex)
    cur = 0
    gaps: dict[int, np.ndarray] = {}

    def gap(n: int) -> np.ndarray:
        g = gaps.get(n)
        if g is None:
            g = gaps[n] = sys_.expm(sys_.h_static[None], n / sample_rate_hz)[0]
        return g

    for off, wi, wq in zip(offsets, waves_i, waves_q):
        if off < cur:
            raise ValueError(f"pulses overlap at sample {off}")
        if off > cur:
            u = gap(off - cur) @ u
        u = _pulse_unitary(sys_, key, np.asarray(wi, float), np.asarray(wq, float),
                           sample_rate_hz, rabi_hz_per_amplitude) @ u
        cur = off + len(wi)
    if n_samples > cur:
        u = gap(n_samples - cur) @ u
    return sys_.frame(n_samples / sample_rate_hz) @ u


def electron_part(u4: np.ndarray) -> np.ndarray:
    """The electron's 2x2 of a 4x4 whose carbon factor is traced out as a unitary would
    be if the gate did nothing to the carbon (for the crosstalk measure)."""
    t = u4.reshape(2, 2, 2, 2)
    return np.einsum("ikjk->ij", t) / 2


def action(u4: np.ndarray) -> float:
    """How much a 4x4 electron (x) carbon unitary does to the carbon:
    ``1 - max_{U_e} |Tr((U_e (x) I)^dagger U)| / 4`` (0: the carbon is untouched; a carbon
    rotation or an entangling gate counts). The maximum over electron unitaries is the
    nuclear norm of the partial trace over the carbon."""
    x = np.einsum("ikjk->ij", u4.reshape(2, 2, 2, 2))
    return float(1.0 - np.linalg.svd(x, compute_uv=False).sum() / 4.0)


def crosstalk(carbons: Sequence[Carbon], target: int, offsets, waves_i, waves_q, n_samples: int,
              sample_rate_hz: float, rabi_hz_per_amplitude: float) -> dict[str, float]:
    """Compare the effective model (the target carbon's 4x4 alone) with the joint
    sample-level unitary of electron + all ``carbons``: returns ``{'fidelity': overlap
    of the joint unitary with (target's 4x4) (x) (best product on the others),
    'others_action': largest entangling action on a non-target carbon}``."""
    full = train_unitary(carbons, offsets, waves_i, waves_q, n_samples, sample_rate_hz,
                         rabi_hz_per_amplitude)
    single = train_unitary([carbons[target - 1]], offsets, waves_i, waves_q, n_samples,
                           sample_rate_hz, rabi_hz_per_amplitude)
    others = []
    for k, c in enumerate(carbons, start=1):
        if k != target:
            others.append(action(train_unitary([c], offsets, waves_i, waves_q, n_samples,
                                               sample_rate_hz, rabi_hz_per_amplitude)))
    # effective: single on (e, target), each other carbon's own frame evolution ignored;
    # compare the reduced action: trace distance of the Choi states is costly, so use the
    # average overlap over the other carbons' computational states
    n = len(carbons)
    d = 2 ** (n + 1)
    perm_dims = [2] * (n + 1)
    t = full.reshape(perm_dims * 2)
    # move the target carbon next to the electron: axes (e, target, rest...)
    order = [0, target] + [k for k in range(1, n + 1) if k != target]
    t = np.transpose(t, order + [n + 1 + k for k in order]).reshape(d, d)
    rest = 2 ** (n - 1)
    # overlap with single (x) W for the best W on the rest: Schmidt across (e,target)|(rest)
    m = t.reshape(4, rest, 4, rest).transpose(0, 2, 1, 3).reshape(16, rest * rest)
    proj = single.conj().reshape(16) @ m / 4  # <single, block> per rest-block
    w = proj.reshape(rest, rest)
    s = np.linalg.svd(w, compute_uv=False)
    fid = float(s.sum() / rest)
    return {"fidelity": fid, "others_action": max(others, default=0.0)}
