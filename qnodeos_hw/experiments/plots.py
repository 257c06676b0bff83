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
        # physical estimates carry asymmetric 3-sigma intervals (ending at F = 1)
        lo = np.array([f[j] - d["interval_3sigma"][0] if "interval_3sigma" in d
                       else d.get("three_sigma", 0.0) for j, d in enumerate(ds)], float)
        hi = np.array([d["interval_3sigma"][1] - f[j] if "interval_3sigma" in d
                       else d.get("three_sigma", 0.0) for j, d in enumerate(ds)], float)
        ax.bar(x + (i - (len(series) - 1) / 2) * w, f, w, yerr=np.vstack([lo, hi]), capsize=3,
               label=name)
        if np.isfinite(f + hi).any():
            top = max(top, float(np.nanmax(f + hi)))
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
                            f"corrected, wait <= {summ['max_wait_ms']:.2f} ms":
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


def plot_dqc_wait(res: dict, path: str | Path) -> Path:
    """DQC fidelity against injected extra server wait, the depolarising model overlaid
    and the 2/3 crossings marked."""
    return _save(_plt(), figure_dqc_wait(res), path)


def figure_dqc_wait(res: dict):
    """The figure of :func:`plot_dqc_wait`: measured readout-corrected fidelity (mean over
    the settings, 3-sigma error bars) against the injected extra wait; the model curves
    evaluated at each wait the server's qubit actually had (the measured waits at zero
    extra, shifted); the 2/3 line, the model's crossing (the derived latency filter,
    in extra wait) and the data's."""
    from .latency import depolarising_fidelity
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    pts = res["points"]
    x = np.array([p["extra_wait_ms"] for p in pts])
    ax.errorbar(x, [p["fidelity"] for p in pts], yerr=[3 * p["sigma"] for p in pts], fmt="o",
                capsize=3, color="tab:blue", label="measured (readout-corrected, all circuits)")
    f = res["latency_filter"]
    base = res["base_mean_server_wait_ms"]
    xs = np.linspace(0, max(float(x.max()), res["model_crossing_extra_wait_ms"]) * 1.1 + 0.5, 200)
    ax.plot(xs, depolarising_fidelity(base + xs, f["f_ent"], f["t_coh_ms"], f["t_coh_exponent"]),
            "k-", lw=1, label=f"depolarising model (F_ent={f['f_ent']}, T_coh={f['t_coh_ms']:.0f} ms)")
    ax.plot(xs, depolarising_fidelity(base + xs, f["f_ent"], f["t_coh_ms"], f["t_coh_exponent"],
                                      res["client_readout_contrast"]),
            "k:", lw=1, label="model x client readout contrast")
    ax.axhline(CLASSICAL_BOUND, color="grey", ls="--", lw=1, label="classical bound 2/3")
    mx = res["model_crossing_extra_wait_ms"]
    ax.axvline(mx, color="k", ls="-.", lw=0.8)
    ax.annotate(f"model 2/3 crossing: {f['max_wait_ms']:.2f} ms total wait\n(= filter; paper "
                f"{f['paper_max_wait_ms']} ms)", (mx, CLASSICAL_BOUND), xytext=(5, 25),
                textcoords="offset points", fontsize=7)
    mc = res.get("measured_crossing_extra_wait_ms")
    if mc is not None:
        ax.plot([mc], [CLASSICAL_BOUND], "rv", ms=8, label=f"measured crossing {mc:.2f} ms extra")
    ax.set_xlabel(f"injected extra server wait (ms); mean wait without: {base:.2f} ms")
    ax.set_ylabel("fidelity to H Rz(alpha)|+>")
    ax.set_title(f"DQC fidelity vs server wait (k={res['k']} per setting, "
                 f"{len(res['settings'])} settings)", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def plot_lgt(summ: dict, path: str | Path) -> Path:
    """Fidelity per cardinal state (raw and readout-corrected, 3-sigma)."""
    return _save(_plt(), figure_lgt(summ), path)


def figure_lgt(summ: dict):
    """The figure of :func:`plot_lgt`: per (D, phi) input, raw and readout-corrected
    physical fidelities with their 3-sigma profile-likelihood intervals."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.6))
    st = summ["inputs"]
    labels = [f"{k}\n{v['state']}" for k, v in st.items()]
    d = summ.get("l1_duration_ms", {})
    _bars(ax, labels, {"raw": [v["raw"] for v in st.values()],
                       "readout-corrected (ML, physical)": [v["corrected"] for v in st.values()]},
          f"LGT L1: R_D(phi)|0> from six bases per subroutine (k={summ['k']} per input; "
          f"L1 {d.get('mean', float('nan')):.2f} ms)")
    fig.tight_layout()
    return fig


def plot_multitask(summ: dict, path: str | Path) -> Path:
    """Utilisation vs N (on/off), LGT blocks between DQC blocks, and the fraction of DQC
    waits in which another process ran (with the paper's)."""
    return _save(_plt(), figure_multitask(summ), path)


def figure_multitask(summ: dict):
    """The figure of :func:`plot_multitask`: integer N ticks; error bars = standard
    deviation over the seeds; the paper's waiting fractions as crosses."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    agg = summ["summary"]
    ns = sorted({a["n"] for a in agg})
    for on, style in ((True, "o-"), (False, "s--")):
        rs = sorted((a for a in agg if a["multitasking"] is on), key=lambda a: a["n"])
        n = [a["n"] for a in rs]
        lab = "multitasking on" if on else "off"
        for ax, key in ((axes[0], "t_util"), (axes[1], "lgt_blocks_between_dqc"),
                        (axes[2], "waiting_other_process")):
            ax.errorbar(n, [a[key]["mean"] for a in rs], yerr=[a[key]["sd"] for a in rs],
                        fmt=style, capsize=3, label=lab)
    paper = [(a["n"], a["paper_waiting_other_process"]) for a in agg
             if a["multitasking"] and "paper_waiting_other_process" in a]
    if paper:
        axes[2].plot(*zip(*paper), "kx", ms=8, label="paper (Fig. 5d)")
    axes[0].set_ylabel("T_util = 1 - T_idle/T_total")
    axes[1].set_ylabel("LGT blocks between DQC blocks (mean)")
    axes[2].set_ylabel("DQC waits in which another process ran")
    axes[2].set_ylim(-0.05, 1.05)
    for ax in axes:
        ax.set_xlabel("N (DQC + LGT programs each)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ns:
            ax.set_xticks(ns)
            ax.set_xlim(min(ns) - 0.5, max(ns) + 0.5)
        ax.legend(fontsize=8)
    fig.suptitle(f"multitasking on the client node ({summ.get('repeats', 1)} seeds per point; "
                 "error bars: sd over seeds; entanglement windows excluded)")
    fig.tight_layout()
    return fig
