"""Delegated quantum computation (DQC, remote state preparation) on the two-node
simulated NV network -- the paper's Fig. 4.

Each (alpha, theta) setting runs k circuits of the client/server programs
(:mod:`.apps.dqc_client`, :mod:`.apps.dqc_server`) through the whole stack: CNPU ->
QNPU -> NV QDriver -> simulated ADwin -> simulated HDAWG -> physics, heralded Bell pairs
of fidelity 0.72 from the simulated heralding station. The server measures |psi> =
H Rz(alpha)|+> in X, Y, Z (k/3 circuits each) and the fidelity to |psi> is estimated:

* raw, and corrected for the server's readout error with the single-shot readout
  fidelities F0, F1 (the noise model's values = what an SSRO calibration measures);
* with and without a latency filter: circuits whose server waiting time (herald of the
  server's qubit -> S2 arrival at the server QNPU, virtual time) exceeds ``max_wait_ms``
  are discarded.

Time (``time_mode``): ``modelled`` (default) -- the classical side's latencies (CNPU
processing per subroutine and per classical block, CNPU<->QNPU and CNPU<->CNPU
messages, QNPU processing per instruction) are drawn from the seeded latency model
(:mod:`qnodeos_hw.timebase.latency`, defaults calibrated to the paper's 4.8 ms mean
server wait), the nodes' clocks advance under the network's shared clock, and the same
seed gives the same bytes on any machine; ``host`` -- while a QNPU idles waiting for its
CNPU its virtual clock advances by the elapsed wall time, so the real host latencies of
this Python CNPU/QNPU are what the server's qubit waits through under DD (T_coh =
13 ms); results then depend on the host's load, as on a lab's host.

Process layout (``cnpu_processes``, default on): as in the paper's nodes, each node's
CNPU is its own OS process (``python -m qnodeos_hw.cnpu.program``) talking TCP to its
QNPU; the QNPUs and simulated QDevices share this process. With every program in one
interpreter instead, the client's SDK compiling its next subroutine holds the one
interpreter lock the server's CNPU needs to receive delta, and that time is charged to
the server's waiting qubit (about 4.6 ms mean wait instead of 2.9 ms on this machine).

Latency filter, derived as the paper did (:func:`.latency.latency_filter_ms`): in the
depolarising model with the configured heralded-state fidelity F_ent and the server's
T_coh, the longest server wait that still gives F >= 2/3: T_coh ln(4 F_ent - 1) =
8.21 ms for F_ent = 0.72, T_coh = 13 ms (the paper: 8.95 ms, which this model gives for
F_ent = 0.748 or T_coh = 14.2 ms, both inside the paper's 0.72(2) and 13(2) ms). Used
by default (``max_wait_ms`` None); ``max_wait_ms`` overrides it.

Fidelities are physical estimates (:func:`.tomography.physical_fidelity`: the
maximum-likelihood Bloch vector inside the ball, with profile-likelihood intervals).

Verdict (documented, honest): a setting *beats the classical bound* when its
readout-corrected fidelity after the latency filter is above 2/3 -- the paper's own
post-selection; the run *fails* when a setting's 3-sigma interval lies entirely below
2/3; otherwise (a setting at or below 2/3 whose interval still reaches it) the run is
*inconclusive* at this k. The JSON states separately whether the corrected value over
*all* circuits, the raw value, and the 3-sigma lower bound are above 2/3 (with
k = 1,200 one sigma is about 0.026).

``extra_wait_ms`` (modelled time) injects extra server wait: the client->server
classical message (delta), which the server's qubit waits for under DD, is delayed by
that much more than the latency model draws (the same draws, shifted), as if the
server's CNPU held S2 back. Expected level: heralded F = 0.72
(single-photon state, 20 % bright population, V = 0.8: XY correlation 0.64), the client's
readout error (contrast 0.925) and the server's DD memory (T_coh = 13 ms) give about
0.5 + 0.5 * 0.925 * 0.64 * exp(-t_wait / 13 ms): 0.79 at zero wait, 0.74 at 3 ms.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tomography import CLASSICAL_BOUND, ReadoutFidelity, physical_fidelity, target_bloch_dqc

APPS = "qnodeos_hw.experiments.apps"
#: the six (alpha, theta) settings, in units of pi/4. The paper runs six settings but its
#: text available here does not list them; ours cover four |psi> (|0>, |-i>, |1>, |+i>
#: and two non-cardinal ones) each with a different theta.
SETTINGS: tuple[tuple[int, int], ...] = ((0, 0), (2, 1), (4, 2), (6, 3), (1, 4), (3, 6))
#: the paper's figures (Fig. 4 and Methods)
PAPER = {"k": 1200, "executions": 7200, "server_wait_ms": "4.8 +- 0.8 (Fig. 4d)",
         "mean_server_wait_ms": 4.8, "classical_bound": "2/3", "heralded_fidelity": 0.72,
         "t_coh_ms": 13.0, "latency_filter_ms": 8.95,
         "result": "every one of six settings above 2/3 (Fig. 4b)",
         "source": "Delle Donne et al., Nature 639, 321 (2025)"}
#: interpreter thread switch interval (s) while a network runs: CNPU, QNPU and socket
#: threads share one GIL; Python's default 5 ms lets a busy thread delay a woken one by
#: up to 5 ms, which would be charged to the waiting server qubit (host tuning, as a lab
#: gives its node software real-time priority)
SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class DQCConfig:
    """``k``: circuits per setting; ``idle_wall_scale``: see module docstring; ``bin_ns``:
    TDMA bin; ``max_wait_ms``: latency filter; ``trace_instructions``: record every
    quantum instruction (slower); ``cnpu_processes``: each node's CNPU in its own OS
    process (module docstring)."""

    k: int = 1200
    seed: int = 1
    #: 'modelled' (default) or 'host' (module docstring)
    time_mode: str = "modelled"
    idle_wall_scale: float = 1.0
    bin_ns: int = 10_000_000
    #: latency filter (ms); None: derived from the noise model (module docstring)
    max_wait_ms: float | None = None
    trace_instructions: bool = False
    cnpu_processes: bool = True
    #: 'single': both nodes' QNPUs and QDevices in one process (CNPUs as
    #: ``cnpu_processes`` says); 'per-node': every node, its link and every CNPU its own
    #: OS process (:mod:`qnodeos_hw.runner.per_node`)
    processes: str = "single"
    #: injected extra server wait (ms, modelled time; module docstring)
    extra_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.k < 3:
            raise ValueError(f"k must be >= 3 (one circuit per tomography basis), got {self.k}")
        if self.processes not in ("single", "per-node"):
            raise ValueError(f"processes must be 'single' or 'per-node', got {self.processes!r}")
        if self.time_mode not in ("modelled", "host"):
            raise ValueError(f"time mode must be 'modelled' or 'host', got {self.time_mode!r}")
        if self.extra_wait_ms < 0:
            raise ValueError(f"extra wait must be >= 0 ms, got {self.extra_wait_ms}")
        if self.extra_wait_ms and self.time_mode != "modelled":
            raise ValueError("an injected extra server wait needs modelled time (--time modelled)")
        if self.max_wait_ms is not None and self.max_wait_ms <= 0:
            raise ValueError(f"latency filter must be > 0 ms, got {self.max_wait_ms}")

    @property
    def filter_ms(self) -> float:
        """The latency filter in use: ``max_wait_ms``, or the derived one."""
        if self.max_wait_ms is not None:
            return float(self.max_wait_ms)
        from .latency import configured_filter
        return float(configured_filter()["max_wait_ms"])


def host_tuning(time_mode: str):
    """:class:`realtime_host` in host time (wall latencies count), :class:`throughput_host`
    in modelled time (only the CPU spent counts)."""
    return realtime_host() if time_mode == "host" else throughput_host()


#: generation-0 threshold of the garbage collector in modelled time (default 700): a DQC
#: setting's run allocates millions of short-lived objects, almost none cyclic garbage
GC_THRESHOLD0_MODELLED = 20_000


class throughput_host:
    """Context manager for a modelled-time run, where wall time changes no result: the
    objects that exist on entry frozen out of the garbage collector (``gc.freeze``) and
    generation-0 collections every :data:`GC_THRESHOLD0_MODELLED` allocations, so the
    collector does not walk the imported libraries over and over (0.62 -> 0.15 s of
    collections in a 1,200-circuit setting). Both restored on exit."""

    def __enter__(self) -> None:
        self._old = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD0_MODELLED, 20, 20)

    def __exit__(self, *exc: Any) -> None:
        gc.set_threshold(*self._old)
        gc.unfreeze()


class realtime_host:
    """Context manager for a run whose host latencies count (``idle_wall_scale`` > 0), as a
    lab tunes its node software: ``sys.setswitchinterval(SWITCH_INTERVAL_S)``, and the
    objects that exist on entry (the imported libraries: qcodes, matplotlib, netqasm,
    numpy ...) frozen out of the garbage collector (``gc.freeze``), so that a full
    collection does not walk them while the QNPU threads wait (a small effect next to
    the run-to-run noise here: mean server wait ~3.0 against ~3.4 ms in two runs of
    ``demo dqc --k 150``). Both restored on exit."""

    def __enter__(self) -> None:
        self._old = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        gc.freeze()

    def __exit__(self, *exc: Any) -> None:
        gc.unfreeze()
        sys.setswitchinterval(self._old)


def heralding_model():
    from ..simulators.physics import load_noise_models
    return load_noise_models()


def nv_network_settings(cfg_bin_ns: int, seed: int, idle_wall_scale: float, trace_instructions: bool,
                        time_mode: str = "modelled"):
    """NetworkSettings for the NV network: one attempt window per bin, as many attempts as
    fit in the bin (bin / attempt duration of the heralding model)."""
    from ..runner.network import NetworkSettings
    attempt_ns = heralding_model().heralding.attempt_duration_ns
    return NetworkSettings(bin_ns=cfg_bin_ns, seed=seed, idle_wall_scale=idle_wall_scale,
                           attempts_per_bin=min(0xFFFF, max(1, cfg_bin_ns // attempt_ns)),
                           trace_instructions=trace_instructions, time_mode=time_mode)


def readout_fidelity(node: str = "server") -> ReadoutFidelity:
    """The server's single-shot readout fidelities (noise model = calibrated SSRO)."""
    m = heralding_model().nv_for(node)
    return ReadoutFidelity(m.readout_f0, m.readout_f1)


def bases_for(k: int) -> list[str]:
    return [("X", "Y", "Z")[i % 3] for i in range(k)]


def run_setting(alpha: int, theta: int, cfg: DQCConfig, seed: int, factory: Any = None) -> dict[str, Any]:
    """Run one setting's k circuits on a fresh two-node network (default: the simulated NV
    stations; ``factory``: any QDriver factory of :mod:`qnodeos_hw.runner.network`); returns
    outcomes, bases, per-iteration latencies, wall and simulated time."""
    from ..runner.network import NVNetworkFactory, run_mains, run_mains_in_processes
    from .latency import dqc_iterations, dqc_iterations_modelled, model_segment_means_ms

    bases = bases_for(cfg.k)
    t0 = time.perf_counter()
    run = run_mains_in_processes if cfg.cnpu_processes else run_mains
    if cfg.processes == "per-node":
        from ..runner.per_node import run_per_node

        def run(mains, factory, settings, inputs):  # type: ignore[no-redef]
            return run_per_node({r: {"main": m} for r, m in mains.items()}, factory, settings,
                                inputs=inputs)
    settings = nv_network_settings(cfg.bin_ns, seed, cfg.idle_wall_scale, cfg.trace_instructions,
                                   cfg.time_mode)
    if cfg.extra_wait_ms:
        import dataclasses
        settings = dataclasses.replace(settings, latency=delayed_delta_latency(seed, cfg.extra_wait_ms))
    with host_tuning(cfg.time_mode):
        res = run({"client": f"{APPS}.dqc_client:main", "server": f"{APPS}.dqc_server:main"},
                  factory if factory is not None else NVNetworkFactory(seed=seed, num_qubits=1),
                  settings,
                  inputs={"client": {"alpha": alpha, "theta": theta, "reps": cfg.k},
                          "server": {"bases": bases}})
    wall = time.perf_counter() - t0
    if not res.ok:
        raise DQCRunError(f"DQC setting (alpha={alpha}, theta={theta}) failed: "
                          f"{ {r: o.error for r, o in res.outcomes.items() if o.error} }")
    events = res.trace.events
    sim_ns = max((e.t_ns for e in events), default=0)
    rec: dict[str, Any] = {"alpha": alpha, "theta": theta, "bases": bases,
                           "m": res.results["server"]["m"], "m_client": res.results["client"]["m"],
                           "time_mode": cfg.time_mode, "wall_s": wall, "sim_s": sim_ns * 1e-9}
    if cfg.time_mode == "modelled":
        its = dqc_iterations_modelled(events, "client", "server")
        rec["iterations"] = its
        n_s2 = [it["s2_instructions"] for it in its if it]
        rec["latency_model_ms"] = model_segment_means_ms(res.network.latency,
                                                         float(np.mean(n_s2)) if n_s2 else 0.0)
    else:
        iters = dqc_iterations(events, "client", "server")
        rec["iterations"] = [it.as_dict() if it is not None else None for it in iters]
    return rec


def delayed_delta_latency(seed: int, extra_ms: float):
    """The shipped latency model (seeded as the network seeds it) with the CNPU -> CNPU
    message delay shifted by ``extra_ms`` (mean and minimum): every draw is the unshifted
    draw plus ``extra_ms``. In DQC that message is delta, which the server's qubit waits
    for."""
    from ..timebase import load_latency_model
    base = load_latency_model(seed=seed)
    seg = base.cnpu_to_cnpu
    extra = int(round(extra_ms * 1e6))
    return load_latency_model(seed=seed, overrides={"cnpu_to_cnpu": {
        "mean_ns": seg.mean_ns + extra, "sd_ns": seg.sd_ns, "min_ns": seg.min_ns + extra}})


class DQCRunError(RuntimeError):
    """A DQC setting's programs failed (names the setting and each program's error)."""


def analyse_setting(rec: dict, readout: ReadoutFidelity, max_wait_ms: float | None) -> dict[str, Any]:
    """Fidelities (raw / readout-corrected, all / latency-filtered) and mean latencies;
    ``max_wait_ms`` None: the derived latency filter."""
    if max_wait_ms is None:
        max_wait_ms = float(_filter()["max_wait_ms"])
    alpha_rad = rec["alpha"] * math.pi / 4
    target = target_bloch_dqc(alpha_rad)
    b, m = np.array(rec["bases"]), np.array(rec["m"])
    waits = np.array([it["server_wait_ns"] * 1e-6 if it else np.inf for it in rec["iterations"]])
    keep = waits <= max_wait_ms
    out: dict[str, Any] = {"alpha_pi4": rec["alpha"], "theta_pi4": rec["theta"],
                           "target_bloch": list(target), "circuits": int(m.size)}
    out["raw"] = physical_fidelity(b, m, target).as_dict()
    out["corrected"] = physical_fidelity(b, m, target, readout).as_dict()
    try:
        out["filtered_raw"] = physical_fidelity(b[keep], m[keep], target).as_dict()
        out["filtered_corrected"] = physical_fidelity(b[keep], m[keep], target, readout).as_dict()
    except ValueError as exc:  # the filter left a needed basis empty
        out["filtered_raw"] = out["filtered_corrected"] = {"error": str(exc), "shots": int(keep.sum())}
    out["kept_fraction"] = float(keep.mean())
    its = [it for it in rec["iterations"] if it]
    if rec.get("time_mode") == "modelled":
        from .latency import MODELLED_SEGMENTS
        out["latency_segments_ms"] = {
            name: float(np.mean([it["segments_ms"][name] for it in its])) if its else float("nan")
            for name, _ in MODELLED_SEGMENTS}
        out["latency_model_ms"] = rec.get("latency_model_ms")
        seg = out["latency_segments_ms"]
        # the four groups of the host-time breakdown, from the same segments
        out["latency_ms"] = {
            "qdevice_ms": seg["qdevice_c1"],
            "qnpu_ms": seg["qnpu_to_cnpu_c1"] + seg["cnpu_to_qnpu_s2"] + seg["qnpu_s2"],
            "cnpu_ms": seg["cnpu_client_delta"] + seg["cnpu_server_s2"],
            "classical_ms": seg["classical_delta"],
            "held_ms": float(np.mean([it["held_ms"] for it in its])) if its else float("nan")}
    else:
        out["latency_ms"] = {k: float(np.mean([it[k] for it in its])) if its else float("nan")
                             for k in ("cnpu_ms", "qnpu_ms", "qdevice_ms", "classical_ms",
                                       "entanglement_ms", "held_ms")}
    out["server_wait_ms"] = {"mean": float(np.mean(waits[np.isfinite(waits)])),
                             "median": float(np.median(waits[np.isfinite(waits)]))}
    c = out["corrected"]
    fc = out["filtered_corrected"]
    out["beats_classical_bound"] = bool(fc.get("fidelity", 0.0) > CLASSICAL_BOUND)
    out["verdict"] = setting_verdict(fc)
    out["corrected_all_above_bound"] = bool(c["fidelity"] > CLASSICAL_BOUND)
    out["raw_above_bound"] = bool(out["raw"]["fidelity"] > CLASSICAL_BOUND)
    out["corrected_3sigma_above_bound"] = bool(c["interval_3sigma"][0] > CLASSICAL_BOUND)
    out["wall_s"], out["sim_s"] = rec["wall_s"], rec["sim_s"]
    return out


def setting_verdict(est: dict) -> str:
    """'above' (estimate > 2/3), 'below' (its 3-sigma interval entirely below 2/3) or
    'inconclusive' (at or below 2/3 but the interval reaches it; also when the latency
    filter left no estimate)."""
    if "fidelity" not in est:
        return "inconclusive"
    if est["fidelity"] > CLASSICAL_BOUND:
        return "above"
    return "below" if est["interval_3sigma"][1] < CLASSICAL_BOUND else "inconclusive"


def run_verdict(analyses: list[dict]) -> dict[str, Any]:
    """The run's verdict: 'pass' (every setting above 2/3), 'fail' (a setting's interval
    entirely below) or 'inconclusive'; ``message`` says it in words, naming settings."""
    def name(a):
        fc = a["filtered_corrected"]
        if "fidelity" not in fc:
            return f"(alpha={a['alpha_pi4']}pi/4, theta={a['theta_pi4']}pi/4): {fc.get('error')}"
        lo, hi = fc["interval_3sigma"]
        return (f"(alpha={a['alpha_pi4']}pi/4, theta={a['theta_pi4']}pi/4) F = "
                f"{fc['fidelity']:.3f}, 3-sigma interval [{lo:.3f}, {hi:.3f}]")
    below = [a for a in analyses if a["verdict"] == "below"]
    unsure = [a for a in analyses if a["verdict"] == "inconclusive"]
    k = analyses[0]["circuits"] if analyses else 0
    if below:
        return {"verdict": "fail", "message": "FAILED: below the classical bound 2/3 (readout-"
                "corrected, latency-filtered): " + "; ".join(name(a) for a in below)}
    if unsure:
        return {"verdict": "inconclusive", "message": f"INCONCLUSIVE at k={k}: not above 2/3 "
                "but consistent with it within 3 sigma: " + "; ".join(name(a) for a in unsure)
                + " -- a larger k decides (the paper: k = 1,200)"}
    return {"verdict": "pass", "message": f"PASS: every setting above the classical bound 2/3 "
            f"(readout-corrected, latency-filtered; k={k})"}


def _run_one(args: tuple) -> dict:
    alpha, theta, cfg, seed = args
    return run_setting(alpha, theta, cfg, seed)


def default_workers(time_mode: str, n_settings: int = len(SETTINGS)) -> int:
    """Settings run side by side by default: in modelled time (results do not depend on
    the load) 1.5 per core, at least 2 -- one setting's QNPU process and its two CNPUs
    hand work to each other and keep about 1.2 cores busy, so three settings fill two
    cores; in host time 1 (settings sharing the cores would lengthen the server's wait)."""
    import os
    if time_mode != "modelled":
        return 1
    return max(1, min(n_settings, max(2, round(1.5 * (os.cpu_count() or 1)))))


def _preload() -> None:
    """Import what every setting's run imports, once, before the worker processes fork
    (each would otherwise import netqasm, qcodes, zhinst and the simulators itself)."""
    import importlib
    for name in ("qnodeos_hw.runner.network", "qnodeos_hw.runner.cnpu_launcher",
                 "qnodeos_hw.nodes", "qnodeos_hw.simulators.nv_lab",
                 "qnodeos_hw.simulators.physics.network", "qnodeos_hw.instruments.hdawg",
                 "qnodeos_hw.instruments.adwin", "qnodeos_hw.instruments.sgs100a",
                 "qnodeos_hw.qdrivers.nv", "qnodeos_hw.qdrivers.link_driver",
                 "qnodeos_hw.sequences.hdawg_program", "qnodeos_hw.waveforms.table",
                 "qnodeos_hw.experiments.latency", "pyvisa_sim", "ruamel.yaml"):
        importlib.import_module(name)


def run_dqc(cfg: DQCConfig = DQCConfig(), settings=SETTINGS, workers: int = 1,
            progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Run every setting (``workers`` > 1: settings in parallel OS processes, forked
    after the libraries are imported); returns (raw records, analyses)."""
    from tqdm import tqdm

    if workers > 1:
        _preload()
    jobs = [(a, t, cfg, cfg.seed * 1000 + i) for i, (a, t) in enumerate(settings)]
    from ..logs import progress_enabled
    bar = tqdm(total=len(jobs), desc=f"DQC settings (k={cfg.k})", unit="setting",
               disable=not (progress and progress_enabled()))
    recs: list[dict] = []
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(min(workers, len(jobs))) as pool:
            for r in pool.imap(_run_one, jobs):
                recs.append(r)
                bar.update()
    else:
        for j in jobs:
            recs.append(_run_one(j))
            bar.update()
    bar.close()
    readout = readout_fidelity()
    filt = cfg.filter_ms
    return recs, [analyse_setting(r, readout, filt) for r in recs]


def summary(cfg: DQCConfig, analyses: list[dict], wall_s: float) -> dict[str, Any]:
    ro = readout_fidelity()
    return {
        "experiment": "dqc", "k": cfg.k, "seed": cfg.seed, "time_mode": cfg.time_mode,
        "idle_wall_scale": cfg.idle_wall_scale if cfg.time_mode == "host" else None,
        "bin_ns": cfg.bin_ns, "max_wait_ms": cfg.filter_ms,
        "latency_filter": ({"source": "--max-wait-ms", "max_wait_ms": cfg.max_wait_ms}
                           if cfg.max_wait_ms is not None else
                           {"source": "derived from the noise model", **_filter()}),
        "extra_wait_ms": cfg.extra_wait_ms,
        "readout_f0": ro.f0, "readout_f1": ro.f1, "classical_bound": CLASSICAL_BOUND,
        "pass_criterion": "readout-corrected fidelity after the latency filter (server wait <= "
                          "max_wait_ms) > 2/3 for every setting",
        "all_beat_classical_bound": all(a["beats_classical_bound"] for a in analyses),
        "all_corrected_unfiltered_above_bound": all(a["corrected_all_above_bound"] for a in analyses),
        "all_raw_above_bound": all(a["raw_above_bound"] for a in analyses),
        "min_filtered_corrected_fidelity": min(a["filtered_corrected"].get("fidelity", 0.0)
                                               for a in analyses),
        "min_corrected_fidelity": min(a["corrected"]["fidelity"] for a in analyses),
        "min_raw_fidelity": min(a["raw"]["fidelity"] for a in analyses),
        "circuits": sum(a["circuits"] for a in analyses),
        "wall_s": wall_s, "sim_s": sum(a["sim_s"] for a in analyses),
        "mean_server_wait_ms": float(np.mean([a["server_wait_ms"]["mean"] for a in analyses])),
        **run_verdict(analyses),
        "paper": PAPER,
        "settings": analyses,
    }


def _filter() -> dict:
    from .latency import configured_filter
    return configured_filter()


def save(out: str | Path, cfg: DQCConfig, recs: list[dict], summ: dict,
         db: str | Path | None = None) -> dict[str, str]:
    """dqc.json, dqc.png and the QCoDeS dataset (``db``, default dqc.db in ``out``)."""
    from .datasets import save_dqc
    from .plots import plot_dqc

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js = out / "dqc.json"
    js.write_text(json.dumps(summ, indent=1))
    png = plot_dqc(summ, recs, out / "dqc.png")
    db = Path(db) if db is not None else out / "dqc.db"
    run_id = save_dqc(db, cfg, recs, summ)
    return {"json": str(js), "png": str(png), "db": str(db), "run_id": str(run_id)}


def run_cli(args) -> int:
    extras = getattr(args, "extra_wait_ms", None)
    cfg = DQCConfig(k=args.k, seed=args.seed, max_wait_ms=getattr(args, "max_wait_ms", None),
                    time_mode=getattr(args, "time", None) or "modelled")
    if cfg.max_wait_ms is None:
        f = _filter()
        print(f"latency filter: server wait <= {f['max_wait_ms']:.2f} ms, derived from the "
              f"depolarising model (F_ent = {f['f_ent']}, T_coh = {f['t_coh_ms']:.1f} ms; paper: "
              f"{f['paper_max_wait_ms']} ms); --max-wait-ms overrides")
    if extras:
        return run_extra_wait_cli(args, cfg, parse_ms_list(extras))
    t0 = time.perf_counter()
    workers = getattr(args, "workers", None) or default_workers(cfg.time_mode)
    recs, analyses = run_dqc(cfg, workers=workers)
    summ = summary(cfg, analyses, time.perf_counter() - t0)
    files = save(args.out, cfg, recs, summ, db=getattr(args, "db", None))
    print(format_table(summ))
    print(summ["message"])
    print(f"files: {files['json']}  {files['png']}  {files['db']} (run {files['run_id']})")
    return 1 if summ["verdict"] == "fail" else 0


def parse_ms_list(text: str) -> list[float]:
    """'0,3,6' or '0..15:3' (start..stop:step, stop included) -> ms values."""
    try:
        if ".." in text:
            rng, _, step = text.partition(":")
            a, b = (float(x) for x in rng.split(".."))
            st = float(step) if step else 1.0
            vals = list(np.arange(a, b + st / 2, st))
        else:
            vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        vals = []
    if not vals or any(v < 0 for v in vals):
        raise ValueError(f"--extra-wait-ms must list waits >= 0 ms, e.g. 0,3,6 or 0..15:3; "
                         f"got {text!r}")
    return [float(v) for v in vals]


# ----------------------------------------------------------- fidelity vs extra wait
def run_extra_wait(cfg: DQCConfig, extras: list[float], settings=SETTINGS,
                   progress: bool = True) -> dict[str, Any]:
    """DQC at each injected extra server wait (every setting, k circuits each): the
    readout-corrected fidelity over all circuits (no latency filter) against the wait,
    with the depolarising model (F_ent, T_coh) overlaid and the 2/3 crossings."""
    import dataclasses

    from .latency import configured_filter, depolarising_fidelity
    filt = configured_filter()
    ro_client = readout_fidelity("client")
    points = []
    for e in extras:
        c = dataclasses.replace(cfg, extra_wait_ms=float(e))
        recs, analyses = run_dqc(c, settings=settings, progress=progress)
        waits = np.concatenate([[it["server_wait_ns"] * 1e-6 for it in r["iterations"] if it]
                                for r in recs])
        fs = np.array([a["corrected"]["fidelity"] for a in analyses])
        sig = np.array([a["corrected"]["sigma"] for a in analyses])
        model = float(np.mean(depolarising_fidelity(waits, filt["f_ent"], filt["t_coh_ms"],
                                                    filt["t_coh_exponent"])))
        model_ro = float(np.mean(depolarising_fidelity(waits, filt["f_ent"], filt["t_coh_ms"],
                                                       filt["t_coh_exponent"], ro_client.gain)))
        points.append({"extra_wait_ms": float(e), "mean_server_wait_ms": float(waits.mean()),
                       "fidelity": float(fs.mean()),
                       "sigma": float(np.sqrt(np.sum(sig ** 2)) / len(sig)),
                       "per_setting": [{"alpha_pi4": a["alpha_pi4"], "theta_pi4": a["theta_pi4"],
                                        "corrected": a["corrected"]} for a in analyses],
                       "model": model, "model_with_client_readout": model_ro})
    base = points[0]["mean_server_wait_ms"] - points[0]["extra_wait_ms"]
    return {"experiment": "dqc_extra_wait", "k": cfg.k, "seed": cfg.seed,
            "settings": [list(s) for s in settings], "latency_filter": filt,
            "client_readout_contrast": ro_client.gain,
            "base_mean_server_wait_ms": base,
            # the model's 2/3 crossing, in injected extra wait and in total wait
            "model_crossing_total_wait_ms": filt["max_wait_ms"],
            "model_crossing_extra_wait_ms": filt["max_wait_ms"] - base,
            "measured_crossing_extra_wait_ms": crossing([p["extra_wait_ms"] for p in points],
                                                        [p["fidelity"] for p in points]),
            "points": points, "paper": PAPER}


def crossing(x: list[float], y: list[float], level: float = CLASSICAL_BOUND) -> float | None:
    """First x where the piecewise-linear y(x) falls through ``level`` (None: it does not
    within the data)."""
    for (x0, y0), (x1, y1) in zip(zip(x, y), zip(x[1:], y[1:])):
        if y0 >= level > y1:
            return float(x0 + (y0 - level) * (x1 - x0) / (y0 - y1))
    return None


def run_extra_wait_cli(args, cfg: DQCConfig, extras: list[float]) -> int:
    from .plots import plot_dqc_wait
    res = run_extra_wait(cfg, extras)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    js = out / "dqc_wait.json"
    js.write_text(json.dumps(res, indent=1))
    png = plot_dqc_wait(res, out / "dqc_wait.png")
    print(format_wait_table(res))
    print(f"files: {js}  {png}")
    return 0


def format_wait_table(res: dict) -> str:
    f = res["latency_filter"]
    rows = [f"DQC fidelity vs injected extra server wait (k={res['k']} per setting, "
            f"{len(res['settings'])} settings; readout-corrected, no latency filter)",
            f"{'extra ms':>8} {'wait ms':>8} {'F':>12} {'model':>7} {'model+client RO':>15}"]
    for p in res["points"]:
        rows.append(f"{p['extra_wait_ms']:>8.2f} {p['mean_server_wait_ms']:>8.2f} "
                    f"{p['fidelity']:>6.3f}+-{p['sigma']:.3f} {p['model']:>7.3f} "
                    f"{p['model_with_client_readout']:>15.3f}")
    mc = res["measured_crossing_extra_wait_ms"]
    rows.append(f"model (F_ent = {f['f_ent']}, T_coh = {f['t_coh_ms']:.1f} ms) crosses 2/3 at "
                f"{f['max_wait_ms']:.2f} ms total wait = {res['model_crossing_extra_wait_ms']:.2f} "
                f"ms extra (paper: {f['paper_max_wait_ms']} ms); measured: "
                + (f"{mc:.2f} ms extra" if mc is not None else "not within the data"))
    return "\n".join(rows)


def format_table(summ: dict) -> str:
    rows = [f"DQC k={summ['k']}  (F0={summ['readout_f0']}, F1={summ['readout_f1']}; latency filter "
            f"server wait <= {summ['max_wait_ms']:.2f} ms)",
            f"{'alpha':>6} {'theta':>6} {'F raw':>14} {'F corrected':>14} {'F corr+filter':>14} "
            f"{'kept':>5} {'wait ms':>7} {'> 2/3':>5}"]
    for a in summ["settings"]:
        def f(d):
            return f"{d['fidelity']:.3f}+-{d['three_sigma']:.3f}" if "fidelity" in d else "n/a"
        rows.append(f"{a['alpha_pi4']:>4}pi/4 {a['theta_pi4']:>4}pi/4 {f(a['raw']):>14} "
                    f"{f(a['corrected']):>14} {f(a['filtered_corrected']):>14} "
                    f"{a['kept_fraction']:>5.2f} {a['server_wait_ms']['mean']:>7.2f} "
                    f"{'yes' if a['beats_classical_bound'] else 'NO':>5}")
    rows.append("(+- = 3 sigma: half the profile-likelihood interval of the physical estimate)")
    return "\n".join(rows)
