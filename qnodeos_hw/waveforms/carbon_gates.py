"""Electron-carbon gates of an NV node as DD trains timed to each carbon's coupling.

A weakly coupled 13C spin precesses about a direction that depends on the electron state
(``H = omega_L I_z + m_s (A_par I_z + A_perp I_x)``, m_s = 0 for the electron's |0>,
-1 for |1>; angular units rad/s). A train of electron pi pulses with half-spacing
``tau`` (pulses centred at ``(2j+1) tau``, j = 0..n-1, n even; the electron returns to
its basis) rotates the carbon about axes that are anti-parallel for the electron's two
states near ``tau = (2k-1) pi / (2 omega_bar)`` (a *conditional* rotation
``|0><0| Rx(+theta) + |1><1| Rx(-theta)``, netqasm's crot_x) and parallel near
``tau = k pi / omega_bar`` (an *unconditional* carbon rotation), ``omega_bar`` the mean of
the two precession frequencies (Taminiau et al., PRL 109, 137602 (2012); Nat.
Nanotechnol. 9, 171 (2014)). The carbon frame rotates at ``omega_bar``.

:func:`design_gate` picks ``(k, tau, n)`` for a target gate with instantaneous pulses;
the AWG then plays the train from the calibrated DD pulse copies (finite pulses), and
the simulated NV physics computes the effect from those samples
(:mod:`qnodeos_hw.simulators.physics.carbon`): the design errors and the finite-pulse
errors are real gate errors of the simulated node.

Carbon z rotations are not trains: the controller updates the carbon's frame phase
(virtual Z), as NV control software tracks every carbon's phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

DEFAULT_CARBONS_FILE = "nv_carbons.yaml"
#: carbon gates of the table, per carbon: (kind, signed angle in units of pi/2)
CARBON_GATES: tuple[tuple[str, int], ...] = (("crot_x", 1), ("crot_x", -1), ("rot_x", 1),
                                             ("rot_x", -1), ("rot_x", 2))

_SX = np.array([[0, 1], [1, 0]], dtype=complex) / 2
_SZ = np.array([[1, 0], [0, -1]], dtype=complex) / 2
_P0 = np.array([[1, 0], [0, 0]], dtype=complex)
_P1 = np.array([[0, 0], [0, 1]], dtype=complex)


class CarbonCalibrationError(ValueError):
    """The carbon register YAML is malformed; ``key`` names the field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"carbon register '{key}': {message}")
        self.key = key


@dataclass(frozen=True)
class CarbonCoupling:
    """What the lab measured about one carbon (DD spectroscopy): its couplings (Hz)."""

    name: str
    a_par_hz: float
    a_perp_hz: float


@dataclass(frozen=True)
class CarbonRegister:
    """The carbons a node's control knows: Larmor frequency and each coupling (Hz)."""

    larmor_hz: float
    carbons: tuple[CarbonCoupling, ...]

    def first(self, n: int) -> "CarbonRegister":
        """The register of the first ``n`` carbons (CarbonCalibrationError if fewer)."""
        if n > len(self.carbons):
            raise CarbonCalibrationError("carbons", f"{n} carbon(s) asked for, the register "
                                                    f"has {len(self.carbons)}")
        return CarbonRegister(self.larmor_hz, self.carbons[:n])


def load_carbon_register(path: str | Path | None = None) -> CarbonRegister:
    """The carbon register YAML (``None``: the shipped one, matching the default noise model)."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_CARBONS_FILE).read_text()
    else:
        text = Path(path).read_text()
    doc = yaml.safe_load(text) or {}
    if set(doc) - {"larmor_hz", "carbons"}:
        raise CarbonCalibrationError(str(sorted(set(doc) - {"larmor_hz", "carbons"})), "unknown key")
    try:
        larmor = float(doc["larmor_hz"])
        cs = tuple(CarbonCoupling(str(c["name"]), float(c["a_par_hz"]), float(c["a_perp_hz"]))
                   for c in doc["carbons"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CarbonCalibrationError("carbons", f"needs larmor_hz and carbons: [{{name, a_par_hz, "
                                                f"a_perp_hz}}]: {exc!r}") from None
    if not larmor > 0:
        raise CarbonCalibrationError("larmor_hz", f"must be > 0, got {larmor}")
    return CarbonRegister(larmor, cs)


# ------------------------------------------------------------------------- physics
def carbon_hamiltonians(larmor_hz: float, a_par_hz: float, a_perp_hz: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``(H0, H1)``: the carbon's Hamiltonian (rad/s) with the electron in |0> (m_s = 0)
    and |1> (m_s = -1)."""
    wl, ap, ax = (2 * math.pi * v for v in (larmor_hz, a_par_hz, a_perp_hz))
    return wl * _SZ, (wl - ap) * _SZ - ax * _SX


def frame_rate(larmor_hz: float, a_par_hz: float, a_perp_hz: float) -> float:
    """``omega_bar`` (rad/s): mean of the carbon's precession rates for the electron in
    |0> and |1>; the carbon's frame rotates at this rate."""
    wl = 2 * math.pi * larmor_hz
    w1 = math.hypot(wl - 2 * math.pi * a_par_hz, 2 * math.pi * a_perp_hz)
    return (wl + w1) / 2


def su2_evolution(h: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """``exp(-i h t)`` of a traceless 2x2 Hermitian ``h`` = a.sigma / 2 for times ``t``
    (array: shape (..., 2, 2))."""
    t = np.asarray(t, dtype=float)
    bx, bz = 2 * h[0, 1].real, (h[0, 0] - h[1, 1]).real  # h = (bx sx + bz sz) / 2 (by = 0)
    by = -2 * h[0, 1].imag
    norm = math.sqrt(bx * bx + by * by + bz * bz)
    half = norm * t / 2
    c, s = np.cos(half), np.sin(half)
    n = (bx / norm, by / norm, bz / norm) if norm else (0.0, 0.0, 1.0)
    out = np.empty(t.shape + (2, 2), dtype=complex)
    out[..., 0, 0] = c - 1j * s * n[2]
    out[..., 1, 1] = c + 1j * s * n[2]
    out[..., 0, 1] = -1j * s * (n[0] - 1j * n[1])
    out[..., 1, 0] = -1j * s * (n[0] + 1j * n[1])
    return out


def frame_correction(omega_bar: float, duration_s: float) -> np.ndarray:
    """Carbon 2x2 taking a lab-frame evolution of ``duration_s`` into the carbon frame."""
    a = omega_bar * duration_s / 2
    return np.array([[np.exp(1j * a), 0], [0, np.exp(-1j * a)]], dtype=complex)


def rx(theta: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]], dtype=complex)


def target_unitary(kind: str, angle: float) -> np.ndarray:
    """Ideal 4x4 (electron (x) carbon) of a carbon gate: ``crot_x`` = |0><0| Rx(+a) +
    |1><1| Rx(-a) (the NV convention netqasm's NV compiler relies on), ``rot_x`` = I Rx(a)."""
    if kind == "crot_x":
        return np.kron(_P0, rx(angle)) + np.kron(_P1, rx(-angle))
    if kind == "rot_x":
        return np.kron(np.eye(2), rx(angle))
    raise ValueError(f"unknown carbon gate kind {kind!r}")


def gate_fidelity(u: np.ndarray, target: np.ndarray) -> float:
    """``|Tr(T^dagger U)| / d`` (phase-insensitive overlap of two unitaries)."""
    return float(abs(np.trace(target.conj().T @ u)) / u.shape[0])


def ideal_train_unitary(h0: np.ndarray, h1: np.ndarray, omega_bar: float, tau_s: float,
                        n_pulses: int) -> np.ndarray:
    """4x4 (electron (x) carbon, carbon frame) of ``n_pulses`` (even) instantaneous
    electron pi pulses about x centred at ``(2j+1) tau``; electron pulses' own -iX
    included."""
    e0, e1 = su2_evolution(h0, tau_s), su2_evolution(h1, tau_s)
    e0d, e1d = su2_evolution(h0, 2 * tau_s), su2_evolution(h1, 2 * tau_s)
    v0 = e0 @ e1d @ e0   # starts in |0>: tau in ms0, 2 tau in ms1, tau in ms0
    v1 = e1 @ e0d @ e1
    m = n_pulses // 2
    v0n, v1n = np.linalg.matrix_power(v0, m), np.linalg.matrix_power(v1, m)
    sign = (-1) ** m  # (-iX)^(2m) = (-1)^m
    fc = frame_correction(omega_bar, 2 * n_pulses * tau_s)
    return sign * (np.kron(_P0, fc @ v0n) + np.kron(_P1, fc @ v1n))


@dataclass(frozen=True)
class CarbonGateDesign:
    """A DD train: ``n_pulses`` electron pi pulses with half-spacing ``tau_samples``
    (pulse centres at ``(2j+1) tau``), resonance order ``k``; ``fidelity`` with
    instantaneous pulses (the design model)."""

    carbon: int
    kind: str
    angle_rad: float
    k: int
    tau_samples: int
    n_pulses: int
    fidelity: float
    sample_rate_hz: float

    @property
    def duration_samples(self) -> int:
        return 2 * self.n_pulses * self.tau_samples

    @property
    def duration_s(self) -> float:
        return self.duration_samples / self.sample_rate_hz


def _units(h0, h1, taus_s, pulse_s):
    """One unit (tau, pi, 2 tau, pi, tau) per branch: the electron starting in |0> / |1>.
    A pulse of ``pulse_s`` is instantaneous at its centre with the carbon evolving under
    the mean Hamiltonian for the pulse's duration (the electron is half way)."""
    hm = (h0 + h1) / 2
    half = su2_evolution(hm, pulse_s / 2)
    a = pulse_s / 2
    e0, e1 = su2_evolution(h0, taus_s - a), su2_evolution(h1, taus_s - a)
    e0d, e1d = su2_evolution(h0, 2 * taus_s - 2 * a), su2_evolution(h1, 2 * taus_s - 2 * a)
    p = half @ half  # the carbon's evolution across one pulse (either branch)
    return e0 @ p @ e1d @ p @ e0, e1 @ p @ e0d @ p @ e1


def pulse_unitary_4x4(h0: np.ndarray, h1: np.ndarray, wave_i: np.ndarray, wave_q: np.ndarray,
                      sample_rate_hz: float, rabi_hz_per_amplitude: float) -> np.ndarray:
    """Electron (x) carbon unitary of one electron pulse given by its samples (the carbon
    coupled throughout), exponentiated sample by sample."""
    sx = np.array([[0, 1], [1, 0]], dtype=complex)
    sy = np.array([[0, -1j], [1j, 0]], dtype=complex)
    hs = np.kron(_P0, h0) + np.kron(_P1, h1)
    half = math.pi * rabi_hz_per_amplitude
    h = (hs[None] + half * (np.asarray(wave_i)[:, None, None] * np.kron(sx, np.eye(2))[None]
                            + np.asarray(wave_q)[:, None, None] * np.kron(sy, np.eye(2))[None]))
    w, v = np.linalg.eigh(h)
    steps = (v * np.exp(-1j * w / sample_rate_hz)[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))
    u = np.eye(4, dtype=complex)
    for m in steps:
        u = m @ u
    return u


def _finite_units(h0, h1, taus_s, pulse4, pulse_s):
    """Unit 4x4 (tau - w/2, pulse, 2 tau - w, pulse, tau - w/2) for each tau."""
    def gap(t):
        g = np.zeros(t.shape + (4, 4), dtype=complex)
        g[..., :2, :2] = su2_evolution(h0, t)
        g[..., 2:, 2:] = su2_evolution(h1, t)
        return g
    a, b = gap(taus_s - pulse_s / 2), gap(2 * taus_s - pulse_s)
    return a @ pulse4 @ b @ pulse4 @ a


def _gap4(h0, h1, t):
    g = np.zeros(np.shape(t) + (4, 4), dtype=complex)
    g[..., :2, :2] = su2_evolution(h0, t)
    g[..., 2:, 2:] = su2_evolution(h1, t)
    return g


def _untouched(larmor_hz, others, taus_s, max_units, pulse_s):
    """[tau, units-1]: product over the other carbons of ``1 - action`` (how little the
    train does to them, in their frames; action as in :func:`train_action`)."""
    out = np.ones((len(taus_s), max_units))
    for ap, ax in others:
        h0, h1 = carbon_hamiltonians(larmor_hz, ap, ax)
        wb = frame_rate(larmor_hz, ap, ax)
        v0, v1 = _units(h0, h1, taus_s, pulse_s)
        a0 = np.broadcast_to(np.eye(2, dtype=complex), v0.shape).copy()
        a1 = a0.copy()
        for m in range(1, max_units + 1):
            a0, a1 = v0 @ a0, v1 @ a1
            ph = np.exp(1j * wb * 4 * m * taus_s / 2)
            t0 = a0[:, 0, 0] * ph + a0[:, 1, 1] / ph
            t1 = a1[:, 0, 0] * ph + a1[:, 1, 1] / ph
            out[:, m - 1] *= (np.abs(t0) + np.abs(t1)) / 4
    return out


def _fidelities(h0, h1, wbar, taus_s, target, max_units, pulse_s=0.0, pulse4=None,
                lead_s=0.0):
    """Fidelity[tau, units-1] of the train against ``target`` (vectorised over tau); with
    ``pulse4`` (the 4x4 of the real pulse, :func:`pulse_unitary_4x4`) the finite pulses
    are exact."""
    if pulse4 is not None:
        u = _finite_units(h0, h1, taus_s, pulse4, pulse_s)
        fc_t = target
        # the AWG window starts lead_s before the train's reference and ends lead_s before
        # its echo point: U_window = G(-lead) U_train G(lead) (same duration)
        g_in, g_out = _gap4(h0, h1, lead_s), _gap4(h0, h1, -lead_s)
        acc = np.broadcast_to(np.eye(4, dtype=complex), u.shape).copy()
        out = np.zeros((len(taus_s), max_units))
        for m in range(1, max_units + 1):
            acc = u @ acc
            ph = np.exp(1j * wbar * 4 * m * taus_s / 2)
            d = np.array([1, 1, 1, 1])
            # frame on the carbon: diag(e^{ia}, e^{-ia}) in both electron blocks
            f = np.stack([ph, 1 / ph, ph, 1 / ph], axis=-1)
            win = g_out @ acc @ g_in
            tr = np.einsum("ij,tij->t", np.conj(fc_t), f[..., :, None] * win)
            out[:, m - 1] = np.abs(tr) / 4
            del d
        return out
    v0, v1 = _units(h0, h1, taus_s, pulse_s)
    t0, t1 = target[:2, :2], target[2:, 2:]
    acc0 = np.broadcast_to(np.eye(2, dtype=complex), v0.shape).copy()
    acc1 = acc0.copy()
    out = np.zeros((len(taus_s), max_units))
    for m in range(1, max_units + 1):
        acc0, acc1 = v0 @ acc0, v1 @ acc1
        a = wbar * 4 * m * taus_s / 2
        ph = np.exp(1j * a)
        # frame correction diag(e^{ia}, e^{-ia}) applied on the left: row 0 * e^{ia}, row 1 * e^{-ia}
        def tr(tt, acc):
            return (np.conj(tt[0, 0]) * acc[:, 0, 0] * ph + np.conj(tt[1, 0]) * acc[:, 1, 0] / ph
                    + np.conj(tt[0, 1]) * acc[:, 0, 1] * ph + np.conj(tt[1, 1]) * acc[:, 1, 1] / ph)
        sign = (-1) ** m
        out[:, m - 1] = np.abs(sign * (tr(t0, acc0) + tr(t1, acc1))) / 4
    return out


@lru_cache(maxsize=256)
def design_gate(larmor_hz: float, a_par_hz: float, a_perp_hz: float, kind: str, angle: float,
                sample_rate_hz: float, carbon: int = 1, min_tau_s: float = 0.5e-6,
                max_orders: int = 8, max_units: int = 120, min_fidelity: float = 0.99,
                pulse_s: float = 0.0, pulse: tuple | None = None, lead_samples: int = 0,
                tau_step: int = 2, others: tuple[tuple[float, float], ...] = ()
                ) -> CarbonGateDesign:
    """The shortest train (over resonance orders ``k`` and ``tau`` on the sample grid)
    whose design-model unitary (pulses of ``pulse_s``, see :func:`_units`; with ``pulse``
    the real pulse's samples, exact) reaches ``min_fidelity`` against the target; the best
    one found if none does. ``others``: the other carbons' ``(A_par, A_perp)``; the
    objective is the fidelity times how little the train does to them (crosstalk).
    ``lead_samples``: the AWG window starts that long before the
    train's reference (see :meth:`~qnodeos_hw.sequences.dd.DDSequence.train_playlist`);
    ``tau`` is a multiple of ``tau_step`` samples."""
    h0, h1 = carbon_hamiltonians(larmor_hz, a_par_hz, a_perp_hz)
    wbar = frame_rate(larmor_hz, a_par_hz, a_perp_hz)
    target = target_unitary(kind, angle)
    pulse4 = None
    if pulse is not None:  # (I samples, Q samples, rabi Hz per amplitude) of the DD pulse
        wi, wq, rabi = np.asarray(pulse[0]), np.asarray(pulse[1]), pulse[2]
        pulse4 = pulse_unitary_4x4(h0, h1, wi, wq, sample_rate_hz, rabi)
        pulse_s = len(wi) / sample_rate_hz
    best: tuple | None = None
    good: tuple | None = None
    for k in range(1, max_orders + 1):
        nominal = ((2 * k - 1) * math.pi / (2 * wbar)) if kind == "crot_x" else (k * math.pi / wbar)
        if nominal < min_tau_s:
            continue
        c = round(nominal * sample_rate_hz)
        span = max(4 * tau_step, int(0.01 * c))
        lo = ((c - span) // tau_step) * tau_step
        taus = np.arange(lo, c + span + 1, tau_step, dtype=np.int64)
        fid = _fidelities(h0, h1, wbar, taus / sample_rate_hz, target, max_units, pulse_s, pulse4,
                          lead_samples / sample_rate_hz)
        if others:
            fid = fid * _untouched(larmor_hz, others, taus / sample_rate_hz, max_units, pulse_s)
        i, m = np.unravel_index(np.argmax(fid), fid.shape)
        cand = (float(fid[i, m]), int(taus[i]), 2 * (m + 1), k)
        if best is None or cand[0] > best[0]:
            best = cand
        ok = np.argwhere(fid >= min_fidelity)
        for ti, mi in ok:
            dur = int(taus[ti]) * 4 * (mi + 1)
            if good is None or dur < good[0]:
                good = (dur, float(fid[ti, mi]), int(taus[ti]), 2 * (mi + 1), k)
    if good is not None:
        _, f, tau, n, k = good
    else:
        assert best is not None
        f, tau, n, k = best
    return CarbonGateDesign(carbon, kind, angle, int(k), int(tau), int(n), float(f), sample_rate_hz)


def register_designs(register: CarbonRegister, sample_rate_hz: float, pulse_s: float = 0.0,
                     pulse: tuple | None = None, lead_samples: int = 0, tau_step: int = 2
                     ) -> tuple[CarbonGateDesign, ...]:
    """Every table gate of every carbon of ``register`` (order of :data:`CARBON_GATES`),
    for DD pulses of ``pulse_s``, or exactly for the pulse ``(I, Q, rabi_hz_per_amplitude)``."""
    out = []
    for c, cc in enumerate(register.carbons, start=1):
        others = tuple((o.a_par_hz, o.a_perp_hz) for o in register.carbons if o is not cc)
        for kind, quarter in CARBON_GATES:
            out.append(design_gate(register.larmor_hz, cc.a_par_hz, cc.a_perp_hz, kind,
                                   quarter * math.pi / 2, sample_rate_hz, carbon=c,
                                   pulse_s=pulse_s, pulse=pulse, lead_samples=lead_samples,
                                   tau_step=tau_step, others=others))
    return tuple(out)


def as_dict(d: CarbonGateDesign) -> dict[str, Any]:
    return {"carbon": d.carbon, "kind": d.kind, "angle_rad": d.angle_rad, "k": d.k,
            "tau_samples": d.tau_samples, "n_pulses": d.n_pulses, "fidelity": d.fidelity,
            "duration_s": d.duration_s}
