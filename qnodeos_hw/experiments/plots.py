"""PNG figures of the demonstrations (matplotlib, Agg backend).

``figure_dqc`` / ``figure_lgt`` / ``figure_multitask`` build the figures (for checks and
notebooks); ``plot_*`` write them as PNG. Fidelity axes reach above 1 when an error bar
does (nothing is clipped; the dotted line marks F = 1); legends stand outside the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .tomography import CLASSICAL_BOUND

_SEG_COLOURS = {"cnpu_ms": "tab:orange", "qnpu_ms": "tab:blue", "qdevice_ms": "tab:purple",
                "classical_ms": "tab:green"}
_SEG_NAMES = {"cnpu_ms": "CNPU", "qnpu_ms": "QNPU", "qdevice_ms": "QDevice",
              "classical_ms": "classical comm."}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _bars(ax, labels, series: dict[str, list[dict]], title: str) -> None:
    """Grouped fidelity bars with 3-sigma error bars; the y axis reaches the highest bar
    top (error bars included, so none is clipped at 1); legend below the axes."""
    x = np.arange(len(labels))
    w = 0.8 / max(1, len(series))
    top = 1.0
    for i, (name, ds) in enumerate(series.items()):
        f = np.array([d.get("fidelity", np.nan) for d in ds], float)
        e = np.array([d.get("three_sigma", 0.0) for d in ds], float)
        ax.bar(x + (i - (len(series) - 1) / 2) * w, f, w, yerr=e, capsize=3, label=name)
        if np.isfinite(f + e).any():
            top = max(top, float(np.nanmax(f + e)))
    ax.axhline(CLASSICAL_BOUND, color="k", ls="--", lw=1, label="classical bound 2/3")
    ax.axhline(1.0, color="grey", ls=":", lw=1, label="F = 1")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0.4, top + 0.03)
    ax.set_ylabel("fidelity")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=min(3, len(series) + 2), frameon=False)


def _save(plt, fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_dqc(summ: dict, recs: list[dict], path: str | Path) -> Path:
    """Fidelity per setting (raw, readout-corrected, + latency filter; 3-sigma bars), mean
    latency breakdown, and a timeline of one client/server iteration."""
    return _save(_plt(), figure_dqc(summ, recs), path)


def figure_dqc(summ: dict, recs: list[dict]):
    """The figure of :func:`plot_dqc`."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [2.2, 1, 1.6]})
    sets = summ["settings"]
    labels = [f"a={a['alpha_pi4']}pi/4\nt={a['theta_pi4']}pi/4" for a in sets]
    _bars(axes[0], labels, {"raw": [a["raw"] for a in sets],
                            "readout-corrected": [a["corrected"] for a in sets],
                            f"corrected, wait <= {summ['max_wait_ms']} ms":
                                [a["filtered_corrected"] for a in sets]},
          f"DQC fidelity to H Rz(alpha)|+> (k={summ['k']}, 3-sigma)")
    ax = axes[1]
    bottom = 0.0
    for seg in _SEG_COLOURS:
        v = float(np.nanmean([a["latency_ms"][seg] for a in sets]))
        ax.bar(0, v, bottom=bottom, color=_SEG_COLOURS[seg], label=f"{_SEG_NAMES[seg]} {v:.2f} ms")
        bottom += v
    waits = [a["server_wait_ms"]["mean"] for a in sets]
    ax.bar(1, float(np.mean(waits)), color="grey", label=f"server wait {np.mean(waits):.2f} ms")
    ax.set_xticks([0, 1], ["breakdown", "server wait"])
    ax.set_ylabel("ms per iteration (mean)")
    ax.set_title("latency of one iteration", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    _timeline(axes[2], recs)
    fig.tight_layout()
    return fig


def _timeline(ax, recs: list[dict]) -> None:
    """One iteration (the median-wait one of the first setting) as lanes."""
    its = [it for it in (recs[0]["iterations"] if recs else []) if it]
    if not its:
        ax.set_title("no complete iteration in the trace")
        return
    it = sorted(its, key=lambda d: d["server_wait_ns"])[len(its) // 2]
    if "segments_ms" in it:  # modelled time: the chain's own segments, in virtual time
        from .latency import MODELLED_SEGMENTS
        steps = [(*_MODELLED_LANES[name][:1], text.split(":")[0], it["segments_ms"][name],
                  _MODELLED_LANES[name][1]) for name, text in MODELLED_SEGMENTS]
        _draw_lanes(ax, steps, it, kept_ms=sum(st[2] for st in steps),
                    kept="herald -> S2", approx="",
                    xlabel="virtual ms after the herald (modelled time)",
                    title="one client/server iteration (median wait)")
        return
    qd = it["qdevice_ms"] / 2
    half_q, half_c = it["qnpu_ms"] / 2, it["cnpu_ms"] / 2
    steps = [("client", "QDevice: C1 gates + readout", qd, "qdevice_ms"),
             ("client", "QNPU -> CNPU reply", half_q, "qnpu_ms"),
             ("client", "CNPU: compute delta, send", half_c, "cnpu_ms"),
             ("network", "classical message delta", it["classical_ms"], "classical_ms"),
             ("server", "CNPU: build S2, flush", half_c, "cnpu_ms"),
             ("server", "CNPU -> QNPU", half_q, "qnpu_ms"),
             ("server", "QDevice: S2 Rz(delta) H meas", qd, "qdevice_ms")]
    _draw_lanes(ax, steps, it, kept_ms=sum(st[2] for st in steps) - qd, kept="EPR -> S2",
                approx="~ ", xlabel="ms (sequential, not to scale between lanes)",
                title="timeline of one client/server iteration")


#: modelled segment -> (lane, colour key)
_MODELLED_LANES = {"qdevice_c1": ("client", "qdevice_ms"), "qnpu_to_cnpu_c1": ("client", "qnpu_ms"),
                   "cnpu_client_delta": ("client", "cnpu_ms"),
                   "classical_delta": ("network", "classical_ms"),
                   "cnpu_server_s2": ("server", "cnpu_ms"), "cnpu_to_qnpu_s2": ("server", "qnpu_ms"),
                   "qnpu_s2": ("server", "qnpu_ms")}


def _draw_lanes(ax, steps: list, it: dict, kept_ms: float, kept: str, approx: str,
                xlabel: str, title: str) -> None:
    """``steps`` (lane, text, ms, colour key) one after another on client/network/server
    lanes, and the span the server's qubit is kept."""
    lanes = {"client": 2, "network": 1, "server": 0}
    t = 0.0
    for i, (lane, text, dur, seg) in enumerate(steps):
        ax.barh(lanes[lane], dur, left=t, color=_SEG_COLOURS[seg], edgecolor="k", lw=0.5)
        dy = 0.3 if lane == "network" else (0.45 if i % 2 == 0 else -0.55)
        ax.text(t + dur / 2, lanes[lane] + dy, text, ha="center", fontsize=6)
        t += dur
    ax.barh(0, kept_ms, left=0, color="none", edgecolor="tab:red", lw=1.2, ls="--")
    ax.text(0, -0.95, f"server qubit kept under DD ({kept}) {approx}"
            f"{it['server_wait_ns'] * 1e-6:.2f} ms", fontsize=7, color="tab:red")
    ax.set_yticks(list(lanes.values()), list(lanes))
    ax.set_ylim(-1.1, 2.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)


def plot_lgt(summ: dict, path: str | Path) -> Path:
    """Fidelity per cardinal state (raw and readout-corrected, 3-sigma)."""
    return _save(_plt(), figure_lgt(summ), path)


def figure_lgt(summ: dict):
    """The figure of :func:`plot_lgt`."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.4))
    st = summ["states"]
    _bars(ax, list(st), {"raw": [d["raw"] for d in st.values()],
                         "readout-corrected": [d["corrected"] for d in st.values()]},
          f"LGT: six cardinal states (k={summ['k']} per basis, 3-sigma)")
    fig.tight_layout()
    return fig


def _lgt_mean_sigma(run: dict) -> float:
    """Standard error of the mean corrected LGT fidelity over the states (NaN without
    per-state sigmas)."""
    sig = [d["corrected"].get("sigma") for d in (run.get("lgt") or {}).values()]
    if not sig or any(s is None for s in sig):
        return float("nan")
    return float(np.sqrt(np.sum(np.square(sig))) / len(sig))


def plot_multitask(summ: dict, path: str | Path) -> Path:
    """Utilisation vs N (on/off), LGT fidelity vs N, LGT blocks between DQC blocks."""
    return _save(_plt(), figure_multitask(summ), path)


def figure_multitask(summ: dict):
    """The figure of :func:`plot_multitask`: integer N ticks; the LGT fidelity with its
    3-sigma error bars (from the per-state sigmas); the others have none in the data."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    ns = sorted({r["n"] for r in summ["runs"]})
    for on, style in ((True, "o-"), (False, "s--")):
        rs = sorted((r for r in summ["runs"] if r["multitasking"] is on), key=lambda r: r["n"])
        n = [r["n"] for r in rs]
        lab = "multitasking on" if on else "off"
        axes[0].plot(n, [r["t_util"] for r in rs], style, label=lab)
        err = [3 * _lgt_mean_sigma(r) for r in rs]
        axes[1].errorbar(n, [r["lgt_fidelity_corrected_mean"] for r in rs],
                         yerr=None if all(np.isnan(err)) else err, fmt=style, capsize=3,
                         label=lab)
        axes[2].plot(n, [r["lgt_blocks_between_dqc"]["mean"] for r in rs], style, label=lab)
    axes[0].set_ylabel("T_util = 1 - T_idle/T_total")
    axes[1].set_ylabel("LGT fidelity (readout-corrected, mean, 3-sigma)")
    axes[1].axhline(CLASSICAL_BOUND, color="k", ls="--", lw=1)
    axes[2].set_ylabel("LGT blocks between DQC blocks (mean)")
    for ax in axes:
        ax.set_xlabel("N (DQC + LGT programs each)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ns:
            ax.set_xticks(ns)
            ax.set_xlim(min(ns) - 0.5, max(ns) + 0.5)
        ax.legend(fontsize=8)
    fig.suptitle("multitasking on the client node (entanglement windows excluded)")
    fig.tight_layout()
    return fig
