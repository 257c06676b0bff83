"""Every figure renders: the demonstrations' (DQC, LGT, multitasking) and the
calibrations' (Rabi, Ramsey, DD, SSRO); fidelity axes are not clipped at 1, N ticks are
integers, legends stand outside the data."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from qnodeos_hw.experiments import calibration_plots as cp
from qnodeos_hw.experiments import plots
from qnodeos_hw.experiments.fits import Fit, estimate_ssro


def f(v, s=0.02):
    return {"fidelity": v, "sigma": s, "three_sigma": 3 * s, "shots": 100}


STATES = {s: {"raw": f(0.97), "corrected": f(0.99, 0.015)}
          for s in ("+X", "-X", "+Y", "-Y", "+Z", "-Z")}


def phys(v, lo, hi):
    return {"fidelity": v, "sigma": (hi - lo) / 6, "three_sigma": (hi - lo) / 2,
            "interval_1sigma": [v - (v - lo) / 3, v + (hi - v) / 3], "interval_3sigma": [lo, hi]}


LGT = {"k": 10, "l1_duration_ms": {"mean": 2.3},
       "inputs": {f"(X, {i})": {"state": s, "raw": phys(0.96, 0.9, 0.99),
                                "corrected": phys(0.995, 0.95, 1.0)}
                  for i, s in enumerate(("+X", "-X", "+Y", "-Y", "+Z", "-Z"))}}
IT = {"server_wait_ns": 2.5e6, "qdevice_ms": 0.4, "qnpu_ms": 0.3, "cnpu_ms": 0.8,
      "classical_ms": 0.5}
DQC = {"k": 30, "max_wait_ms": 5.0, "settings": [
    {"alpha_pi4": a, "theta_pi4": t, "raw": f(0.75), "corrected": f(0.8),
     "filtered_corrected": f(0.82), "server_wait_ms": {"mean": 2.5},
     "latency_ms": {"cnpu_ms": 0.8, "qnpu_ms": 0.3, "qdevice_ms": 0.4, "classical_ms": 0.5}}
    for a, t in ((0, 0), (2, 1))]}


def ms(m, sd):
    return {"mean": m, "sd": sd}


MT = {"repeats": 3, "summary": [
    {"n": n, "multitasking": on, "t_util": ms(0.05 + 0.01 * n + 0.02 * on, 0.01),
     "lgt_blocks_between_dqc": ms(2.0 * on, 0.3 * on),
     "waiting_other_process": ms(0.5 * on, 0.05 * on),
     **({"paper_waiting_other_process": {1: 0.56, 2: 0.81}.get(n, 0.99)} if on else {})}
    for n in (1, 2, 3) for on in (True, False)]}


def png_ok(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert float(img[..., :3].std()) > 0.01  # not blank


def test_demo_figures_render(tmp_path):
    png_ok(plots.plot_dqc(DQC, [{"iterations": [IT, IT, None]}], tmp_path / "dqc.png"))
    png_ok(plots.plot_lgt(LGT, tmp_path / "lgt.png"))
    png_ok(plots.plot_multitask(MT, tmp_path / "multitask.png"))


def test_lgt_axis_shows_intervals_and_ends_them_at_one():
    """Physical estimates: the error bar of the corrected fidelity is its asymmetric
    interval, which ends at F = 1; the axis reaches the bar's top, no more is needed."""
    fig = plots.figure_lgt(LGT)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] >= 1.0
    from matplotlib.collections import LineCollection
    tops = [seg[:, 1].max() for c in ax.collections if isinstance(c, LineCollection)
            for seg in c.get_segments()]
    assert max(tops) == pytest.approx(1.0)  # 0.995 + its interval's upper end at 1
    assert min(seg[:, 1].min() for c in ax.collections if isinstance(c, LineCollection)
               for seg in c.get_segments()) == pytest.approx(0.9)


def test_multitask_integer_ticks_and_error_bars():
    fig = plots.figure_multitask(MT)
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert list(ticks) == [1, 2, 3]
    # every panel carries error bars (sd over seeds; a LineCollection per series)
    from matplotlib.collections import LineCollection
    for ax in fig.axes:
        assert sum(isinstance(c, LineCollection) for c in ax.collections) == 2
    # the paper's waiting fractions are drawn beside ours
    ys = [tuple(line.get_ydata()) for line in fig.axes[2].get_lines() if line.get_marker() == "x"]
    assert ys == [(0.56, 0.81, 0.99)]


def test_dqc_legend_outside_the_data():
    fig = plots.figure_dqc(DQC, [{"iterations": [IT]}])
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in fig.axes[:2]:
        leg = ax.get_legend().get_window_extent(r)
        box = ax.get_window_extent(r)
        assert leg.y1 <= box.y0 + 1  # below the axes


def test_calibration_figures_render(tmp_path):
    a = np.linspace(0.05, 1.5, 20)
    rabi = Fit("rabi", {"offset": 0.02, "contrast": 0.95, "a_pi": 1.0},
               {"offset": 0.01, "contrast": 0.01, "a_pi": 0.003}, 1.0)
    ones = np.round(100 * (0.02 + 0.95 * np.sin(np.pi * a) ** 2)).astype(int)
    png_ok(cp.plot_rabi(tmp_path / "rabi.png", a, ones, 100, rabi, 0.72, 2, 0.72))
    t = np.linspace(0, 7.5e-6, 30)
    ram = Fit("ramsey", {"offset": 0.5, "contrast": 0.45, "detuning_hz": 1e3, "phase_rad": 0.0,
                         "gamma_per_s2": 0.0},
              {"offset": 0.01, "contrast": 0.01, "detuning_hz": 300.0, "phase_rad": 0.01,
               "gamma_per_s2": 1.0}, 1.0)
    px = np.round(100 * (0.5 + 0.45 * np.cos(2 * np.pi * -1e6 * t))).astype(int)
    py = np.round(100 * (0.5 + 0.45 * np.sin(2 * np.pi * -1e6 * t))).astype(int)
    png_ok(cp.plot_ramsey(tmp_path / "ramsey.png", t, px, py, 100, ram, 0.0, 1e6))
    w = np.linspace(0, 0.03, 6)
    dd = Fit("dd", {"contrast": 0.9, "t_coh_s": 0.013}, {"contrast": 0.01, "t_coh_s": 4e-4}, 1.0)
    back = np.round(100 * (0.5 + 0.45 * np.exp(-w / 0.013))).astype(int)
    png_ok(cp.plot_dd(tmp_path / "dd.png", w, back, 100 - back, 100, dd, 0.013))
    est = estimate_ssro(1000, 950, 940, 880, 935)
    png_ok(cp.plot_ssro(tmp_path / "ssro.png", est, 0.93, 0.995))


@pytest.mark.parametrize("fn", ["plot_dqc", "plot_lgt", "plot_multitask"])
def test_plot_functions_return_the_written_path(tmp_path, fn):
    args = {"plot_dqc": (DQC, [{"iterations": [IT]}]), "plot_lgt": (LGT,),
            "plot_multitask": (MT,)}[fn]
    p = getattr(plots, fn)(*args, tmp_path / f"{fn}.png")
    assert p == tmp_path / f"{fn}.png" and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
