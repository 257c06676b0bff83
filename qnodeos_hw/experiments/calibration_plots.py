"""PNG plots of calibration data and fits (matplotlib Agg canvas, no pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .fits import Fit, SSROEstimate, binomial_sigma, decay_model, rabi_model, ramsey_model


def _figure(size=(7.0, 4.2)) -> tuple[Figure, object]:
    fig = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _truth_line(ax, x, label, vertical=True) -> None:
    if x is not None:
        (ax.axvline if vertical else ax.axhline)(x, color="k", ls="--", lw=1, label=label)


def plot_rabi(path: Path, pi_amplitudes, ones, shots: int, fit: Fit, scale: float, pulses: int,
              true_pi: float | None) -> Path:
    """P(1) vs pulse amplitude (full scale) with the fit; ``scale`` converts the scanned
    command-table amplitude to the pi pulse's full-scale amplitude."""
    fig, ax = _figure()
    a = np.asarray(pi_amplitudes) * scale
    ax.errorbar(a, np.asarray(ones) / shots, binomial_sigma(ones, shots), fmt="o", ms=4,
                label=f"data ({shots} shots/point)")
    fine = np.linspace(0, a.max(), 400)
    p = fit.params
    ax.plot(fine, rabi_model(fine / scale, p["offset"], p["contrast"], p["a_pi"], pulses), "-",
            label="fit")
    ax.axvline(p["a_pi"] * scale, color="C1", lw=1,
               label=f"fitted pi amplitude {p['a_pi'] * scale:.5f}")
    _truth_line(ax, true_pi, f"true {true_pi:.5f}" if true_pi is not None else None)
    ax.set_xlabel(f"pulse amplitude (full scale), {pulses} x pi pulse")
    ax.set_ylabel("P(outcome 1)")
    ax.set_title("Rabi amplitude calibration")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_ramsey(path: Path, delays_s, ones_x, ones_y, shots: int, fit: Fit,
                true_hz: float | None, virtual_hz: float = 0.0) -> Path:
    fig, ax = _figure()
    t = np.asarray(delays_s)
    fine = np.linspace(0, t.max(), 800)
    p = fit.params
    for q, ones, lab in ((0, ones_x, "last pi/2 at phase 2 pi f_v t"),
                         (1, ones_y, "last pi/2 at phase 2 pi f_v t + pi/2")):
        ax.errorbar(t * 1e6, np.asarray(ones) / shots, binomial_sigma(ones, shots), fmt="o",
                    ms=3, color=f"C{q}", label=lab)
        ax.plot(fine * 1e6, ramsey_model(fine, p["offset"], p["contrast"], p["detuning_hz"],
                                         p["phase_rad"], p["gamma_per_s2"], q, virtual_hz),
                color=f"C{q}")
    title = f"Ramsey: detuning {p['detuning_hz'] / 1e3:.2f} +- {fit.stderr['detuning_hz'] / 1e3:.2f} kHz"
    if true_hz is not None:
        title += f" (true {true_hz / 1e3:.2f} kHz)"
    ax.set_title(title)
    ax.set_xlabel(f"free evolution (us); virtual detuning f_v = {virtual_hz / 1e6:g} MHz")
    ax.set_ylabel("P(outcome 1)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_dd(path: Path, waits_s, zeros_back, zeros_fwd, shots: int, fit: Fit,
            true_t: float | None) -> Path:
    fig, ax = _figure()
    t = np.asarray(waits_s)
    b, f = np.asarray(zeros_back, float), np.asarray(zeros_fwd, float)
    sig = np.hypot(binomial_sigma(b, shots), binomial_sigma(f, shots))
    ax.errorbar(t * 1e3, (b - f) / shots, sig, fmt="o", ms=4,
                label="P(0 | x(-pi/2)) - P(0 | x(pi/2))")
    ax.plot(t * 1e3, b / shots, "v", ms=3, alpha=0.5, label="P(0 | x(-pi/2))")
    ax.plot(t * 1e3, f / shots, "^", ms=3, alpha=0.5, label="P(0 | x(pi/2))")
    fine = np.linspace(0, t.max(), 400)
    p = fit.params
    ax.plot(fine * 1e3, decay_model(fine, p["contrast"], p["t_coh_s"]), "-",
            label=f"fit: T_coh = {p['t_coh_s'] * 1e3:.2f} +- {fit.stderr['t_coh_s'] * 1e3:.2f} ms")
    if true_t is not None:
        ax.plot(fine * 1e3, decay_model(fine, p["contrast"], true_t), "k--", lw=1,
                label=f"true T_coh = {true_t * 1e3:.2f} ms")
    ax.set_xlabel("time under DD (ms)")
    ax.set_ylabel("population / signal")
    ax.set_title("DD-protected coherence")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_ssro(path: Path, est: SSROEstimate, true_f0: float | None, true_f1: float | None,
              bright: Sequence[int] = (), dark: Sequence[int] = (),
              threshold: int | None = None) -> Path:
    """Photon-count histograms of the second readout for heralded |0> (bright) and |1>
    (dark) with the threshold (counts >= threshold read 0), beside F0, F1 and the raw
    P(0 | INIT) with their errors (dashed: the simulation's truth)."""
    fig = Figure(figsize=(11.0, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    hx, ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    if bright or dark:
        n = np.arange(max(len(bright), len(dark)))
        b = np.asarray(list(bright) + [0] * (len(n) - len(bright)), dtype=float)
        d = np.asarray(list(dark) + [0] * (len(n) - len(dark)), dtype=float)
        # keep the bins that hold anything (the tail of a 64-bin controller histogram is empty)
        last = int(max(np.max(np.nonzero(b + d)[0], initial=0), threshold or 0)) + 2
        n, b, d = n[:last], b[:last], d[:last]
        hx.bar(n - 0.2, b, width=0.4, color="C0", label=f"|0> prepared (bright), {int(b.sum())} shots")
        hx.bar(n + 0.2, d, width=0.4, color="C1", label=f"|1> prepared (dark), {int(d.sum())} shots")
        if threshold is not None:
            hx.axvline(threshold - 0.5, color="k", ls="--", lw=1,
                       label=f"threshold: >= {threshold} photon(s) reads 0")
        hx.set_yscale("log")
        hx.set_xlabel("photon counts in the readout window")
        hx.set_ylabel("shots")
        hx.set_xticks(n)
        hx.legend(fontsize=7)
        hx.set_title("Single-shot readout: photon counts")
    else:
        hx.text(0.5, 0.5, "no photon counts from this controller", ha="center", va="center",
                transform=hx.transAxes)
        hx.set_axis_off()
    names = ["F0 (heralded |0>)", "F1 (heralded |1>)", "P(0 | INIT) raw"]
    vals = [est.f0, est.f1, est.raw_p0_after_init]
    errs = [est.f0_stderr, est.f1_stderr, est.raw_p0_stderr]
    ax.bar(range(3), vals, yerr=errs, color=["C0", "C1", "C2"], capsize=4)
    for k, v in enumerate(vals):
        ax.text(k, v + 0.005, f"{v:.4f}", ha="center", va="bottom", fontsize=8)
    for k, tv in ((0, true_f0), (1, true_f1)):
        if tv is not None:
            ax.hlines(tv, k - 0.4, k + 0.4, colors="k", linestyles="--", lw=1)
    ax.set_xticks(range(3), names, fontsize=8)
    lo = min(vals) - 0.05
    ax.set_ylim(max(0.0, lo), 1.02)
    ax.set_ylabel("probability")
    ax.set_title(f"Fidelities (init fidelity {est.init_fidelity:.4f}; dashed: true)")
    return _save(fig, path)
