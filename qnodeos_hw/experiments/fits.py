"""Fits of calibration data (scipy.optimize.curve_fit, binomial weights).

Each fit returns a :class:`Fit`: best parameters, their standard errors (from the
covariance with absolute binomial sigmas) and reduced chi^2. Models are module-level
functions so plots draw exactly what was fitted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit


class FitError(RuntimeError):
    """A fit did not converge or the data cannot constrain it; ``fit`` names which."""

    def __init__(self, fit: str, message: str) -> None:
        super().__init__(f"{fit} fit: {message}")
        self.fit = fit


@dataclass(frozen=True)
class Fit:
    """Fitted ``params`` with standard errors ``stderr`` (same keys); ``chi2_red``:
    chi^2 per degree of freedom with binomial sigmas (~1 for a good model)."""

    model: str
    params: Mapping[str, float]
    stderr: Mapping[str, float]
    chi2_red: float
    extra: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "stderr", MappingProxyType(dict(self.stderr)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def as_dict(self) -> dict:
        return {"model": self.model, "params": dict(self.params), "stderr": dict(self.stderr),
                "chi2_red": self.chi2_red, **({"extra": dict(self.extra)} if self.extra else {})}


def binomial_sigma(counts: np.ndarray, shots: int | np.ndarray) -> np.ndarray:
    """Standard error of ``counts/shots``, with the (k+1/2)/(n+1) estimate so that
    0 or ``shots`` counts still get a finite sigma."""
    n = np.asarray(shots, dtype=float)
    p = (np.asarray(counts, dtype=float) + 0.5) / (n + 1.0)
    return np.sqrt(p * (1 - p) / n)


def _finish(name: str, f, x, y, sigma, popt, pcov, keys) -> Fit:
    if not np.all(np.isfinite(pcov)):
        raise FitError(name, "the data do not constrain every parameter (infinite covariance)")
    resid = (y - f(x, *popt)) / sigma
    dof = max(1, y.size - len(popt))
    return Fit(name, dict(zip(keys, map(float, popt))),
               dict(zip(keys, map(float, np.sqrt(np.diag(pcov))))), float(resid @ resid / dof))


def _fit_binomial(name: str, f, x, counts, shots: int, p0, bounds=(-np.inf, np.inf),
                  passes: int = 3):
    """curve_fit of probabilities ``counts/shots`` with binomial sigmas taken from the
    model (iteratively reweighted: the first pass uses the data), so that points
    near 0 or 1 that happen to be low are not over-weighted."""
    y = np.asarray(counts, float) / shots
    s = binomial_sigma(counts, shots)
    popt = np.asarray(p0, float)
    for _ in range(passes):
        try:
            with warnings.catch_warnings():  # an infinite covariance is checked in _finish
                warnings.simplefilter("ignore", OptimizeWarning)
                popt, pcov = curve_fit(f, x, y, p0=popt, sigma=s, absolute_sigma=True,
                                       maxfev=20000, bounds=bounds)
        except (RuntimeError, ValueError) as exc:
            raise FitError(name, str(exc)) from exc
        pm = np.clip(f(x, *popt), 0.5 / shots, 1 - 0.5 / shots)
        s = np.sqrt(pm * (1 - pm) / shots)
    return y, s, popt, pcov


# ------------------------------------------------------------------------------ Rabi
def rabi_model(a, offset, contrast, a_pi, pulses=2):
    """P(1) after ``pulses`` pi pulses scaled by ``a``: offset + contrast sin^2(pulses pi a / (2 a_pi))."""
    return offset + contrast * np.sin(pulses * np.pi * np.asarray(a) / (2 * a_pi)) ** 2


def fit_rabi(amplitudes, ones, shots: int, pulses: int = 2) -> Fit:
    """Fit the amplitude ``a_pi`` (same units as ``amplitudes``) that makes one pi pulse.
    A grid search over ``a_pi`` (offset and contrast solved linearly) seeds curve_fit,
    so no initial guess is needed."""
    a = np.asarray(amplitudes, float)
    y = np.asarray(ones, float) / shots
    s = binomial_sigma(ones, shots)
    if a.size < 4:
        raise FitError("rabi", f"{a.size} points; need at least 4")
    amax = float(np.max(np.abs(a)))
    best = (math.inf, None)
    w = 1 / s
    for api in np.geomspace(amax * pulses / 8, amax * pulses * 4, 600):
        basis = np.column_stack((np.ones_like(a), np.sin(pulses * np.pi * a / (2 * api)) ** 2))
        coef, *_ = np.linalg.lstsq(basis * w[:, None], y * w, rcond=None)
        chi = float(np.sum(((basis @ coef - y) * w) ** 2))
        if chi < best[0]:
            best = (chi, (coef[0], coef[1], api))

    def f(x, o, c, api):
        return rabi_model(x, o, c, api, pulses)

    y, s, popt, pcov = _fit_binomial("rabi", f, a, ones, shots, best[1])
    fit = _finish("rabi", f, a, y, s, popt, pcov, ("offset", "contrast", "a_pi"))
    if fit.params["contrast"] <= 0:
        raise FitError("rabi", f"no Rabi oscillation (contrast {fit.params['contrast']:.3g})")
    return fit


# ---------------------------------------------------------------------------- Ramsey
def ramsey_model(t_s, offset, contrast, detuning_hz, phase_rad, gamma_per_s2, quadrature,
                 virtual_hz=0.0):
    """P(1) after x(pi/2), free evolution ``t_s``, then a pi/2 pulse about the axis at
    phase ``2 pi virtual_hz t`` (``quadrature`` 0) or that + pi/2 (1):
    offset + contrast exp(-gamma t^2) cos / sin(2 pi (detuning - virtual) t + phase).
    With H = (detuning/2) sigma_z (detuning = qubit - drive frequency) the state's phase
    advances at +detuning, so the sign is measured."""
    t = np.asarray(t_s)
    arg = 2 * np.pi * (detuning_hz - virtual_hz) * t + phase_rad
    env = np.exp(-gamma_per_s2 * t ** 2)
    return offset + contrast * env * np.where(np.asarray(quadrature) == 0, np.cos(arg), np.sin(arg))


def ramsey_guess_hz(t_s, p_x, p_y) -> float:
    """Signed frequency of the complex fringe (p_x - m) + i (p_y - m), m the mean of
    both: the peak of its discrete-time Fourier transform on a fine grid up to the
    Nyquist frequency of the delay step."""
    t = np.asarray(t_s, float)
    m = (np.mean(p_x) + np.mean(p_y)) / 2
    z = (np.asarray(p_x) - m) + 1j * (np.asarray(p_y) - m)
    dt = float(np.min(np.diff(np.sort(t)))) if t.size > 1 else 1.0
    span = float(np.ptp(t)) or dt
    nyq = 0.5 / dt
    freqs = np.linspace(-nyq, nyq, int(max(201, 16 * nyq * span)) | 1)
    power = np.abs(np.exp(-2j * np.pi * np.outer(freqs, t)) @ z)
    return float(freqs[int(np.argmax(power))])


def fit_ramsey(delays_s, ones_x, ones_y, shots: int, virtual_hz: float = 0.0) -> Fit:
    """Fit detuning (Hz, signed), phase, contrast and a Gaussian decay rate to both
    Ramsey quadratures at once (``virtual_hz``: the phase ramp of the last pulse, see
    :func:`ramsey_model`). ``extra['t2star_s']``: 1/sqrt(gamma) when the decay is
    resolved (gamma > 2 sigma), otherwise absent."""
    t = np.asarray(delays_s, float)
    if t.size < 5:
        raise FitError("ramsey", f"{t.size} delays; need at least 5")
    px, py = np.asarray(ones_x, float) / shots, np.asarray(ones_y, float) / shots
    x = np.concatenate((t, t))
    q = np.concatenate((np.zeros(t.size), np.ones(t.size)))
    y = np.concatenate((px, py))
    s = np.concatenate((binomial_sigma(ones_x, shots), binomial_sigma(ones_y, shots)))
    f0 = ramsey_guess_hz(t, px, py)
    o0 = float(np.mean(y))
    rot = ((px - o0) + 1j * (py - o0)) * np.exp(-2j * np.pi * f0 * t)
    ph0 = float(np.angle(np.mean(rot)))
    c0 = max(float(np.abs(np.mean(rot))), 0.05)
    span = float(np.ptp(t)) or 1e-6

    # fitted in scan units (cycles over the scan, decay over the scan) for conditioning
    def f(xx, o, c, d_cyc, ph, g_scan):
        return ramsey_model(xx, o, c, d_cyc / span, ph, g_scan / span ** 2, q, virtual_hz)

    y, s, popt, pcov = _fit_binomial(
        "ramsey", f, x, np.concatenate((ones_x, ones_y)), shots,
        [o0, c0, (f0 + virtual_hz) * span, ph0, 0.1],
        bounds=([-1, 0, -np.inf, -np.inf, 0], [2, 2, np.inf, np.inf, np.inf]))
    scale = np.array([1, 1, 1 / span, 1, 1 / span ** 2])
    fit = _finish("ramsey", lambda xx, *p: f(xx, *(np.asarray(p) / scale)), x, y, s,
                  popt * scale, pcov * np.outer(scale, scale),
                  ("offset", "contrast", "detuning_hz", "phase_rad", "gamma_per_s2"))
    g, sg = fit.params["gamma_per_s2"], fit.stderr["gamma_per_s2"]
    extra = {"t2star_s": 1 / math.sqrt(g)} if g > 2 * sg and g > 0 else {}
    return Fit(fit.model, fit.params, fit.stderr, fit.chi2_red, extra)


# ------------------------------------------------------------------------- DD decay
def decay_model(t_s, contrast, t_coh_s):
    """Differential DD signal: contrast exp(-t / T_coh) (the paper's depolarising model)."""
    return contrast * np.exp(-np.asarray(t_s) / t_coh_s)


def fit_dd_decay(waits_s, zeros_back, zeros_fwd, shots: int) -> Fit:
    """Fit (contrast, T_coh) to ``(zeros_back - zeros_fwd) / shots`` (see
    :func:`qnodeos_hw.experiments.scans.dd_decay_scan`). Under the depolarising DD model
    the whole Bloch vector shrinks, so the difference decays as exp(-t/T_coh) whatever
    the pulse errors; they only change the contrast, which may even be negative."""
    t = np.asarray(waits_s, float)
    if t.size < 3:
        raise FitError("dd", f"{t.size} waits; need at least 3")
    b, fw = np.asarray(zeros_back, float), np.asarray(zeros_fwd, float)
    y = (b - fw) / shots
    s = np.hypot(binomial_sigma(b, shots), binomial_sigma(fw, shots))
    sign = 1.0 if y[np.argmin(t)] >= 0 else -1.0  # the contrast may be negative (phase errors)
    good = sign * y > 2 * s
    if good.sum() >= 2 and np.ptp(t[good]) > 0:
        slope = np.polyfit(t[good], np.log(sign * y[good]), 1)[0]
        t0 = -1 / slope if slope < 0 else float(np.ptp(t))
    else:
        t0 = float(np.ptp(t)) or 1.0
    try:
        popt, pcov = curve_fit(decay_model, t, y, p0=[float(y[0]), t0], sigma=s,
                               absolute_sigma=True, maxfev=20000,
                               bounds=([-2, 1e-12], [2, np.inf]))
    except (RuntimeError, ValueError) as exc:
        raise FitError("dd", str(exc)) from exc
    fit = _finish("dd", decay_model, t, y, s, popt, pcov, ("contrast", "t_coh_s"))
    if abs(fit.params["contrast"]) < 3 * fit.stderr["contrast"]:
        raise FitError("dd", f"no contrast ({fit.params['contrast']:.3g} +- "
                             f"{fit.stderr['contrast']:.2g}): check the pi/2 pulses (rabi) "
                             "and the detuning (ramsey)")
    return fit


# ------------------------------------------------------------------------------ SSRO
@dataclass(frozen=True)
class SSROEstimate:
    """Readout fidelities from heralded shots, the raw P(report 0 | INIT) and the
    initialisation fidelity it implies: ``m0 = F0 p + (1 - F1)(1 - p)``."""

    f0: float
    f0_stderr: float
    f1: float
    f1_stderr: float
    raw_p0_after_init: float
    raw_p0_stderr: float
    init_fidelity: float
    init_fidelity_stderr: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def estimate_ssro(shots: int, herald0_prep0: int, herald0_prep1: int, zero_given_0: int,
                  one_given_1: int) -> SSROEstimate:
    """Binomial estimates (see :func:`qnodeos_hw.experiments.scans.ssro_scan`)."""
    if min(herald0_prep0, herald0_prep1) < 1:
        raise FitError("ssro", "no shot was heralded in |0> (readout or INIT broken)")
    f0 = zero_given_0 / herald0_prep0
    f1 = one_given_1 / herald0_prep1
    s0 = float(binomial_sigma(zero_given_0, herald0_prep0))
    s1 = float(binomial_sigma(one_given_1, herald0_prep1))
    n = 2 * shots
    m0 = (herald0_prep0 + herald0_prep1) / n
    sm = float(binomial_sigma(herald0_prep0 + herald0_prep1, n))
    contrast = f0 + f1 - 1
    if contrast <= 0:
        raise FitError("ssro", f"F0 + F1 - 1 = {contrast:.3g}: outcomes do not depend on the state")
    p = (m0 - (1 - f1)) / contrast
    # error propagation of p = (m0 - 1 + F1) / (F0 + F1 - 1)
    dp_dm, dp_df0 = 1 / contrast, -p / contrast
    dp_df1 = (1 - p) / contrast
    sp = math.sqrt((dp_dm * sm) ** 2 + (dp_df0 * s0) ** 2 + (dp_df1 * s1) ** 2)
    return SSROEstimate(f0, s0, f1, s1, m0, sm, p, sp)
