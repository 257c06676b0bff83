"""Multitasking: N DQC-client + N LGT programs on the client node and N DQC-server
programs on the server node of the simulated NV network, with multitasking on (all
programs at once; the QNPU interleaves their subroutines) and off (one program, or one
client/server pair, at a time).

Client-QDevice utilisation ``T_util = 1 - T_idle / T_total`` with entanglement attempt
windows excluded from T_total: busy = virtual time inside quantum instructions,
T_total = the client's virtual span of the run(s) minus the attempt windows. Also:
LGT fidelities and how many LGT blocks (subroutines) run between consecutive DQC-client
blocks. Time modes and process layout as in :mod:`.dqc` (``time_mode``, default modelled;
``cnpu_processes``: each node's CNPU is its own OS process running that node's programs as
threads, as on the paper's CNPU).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .dqc import SETTINGS, bases_for, host_tuning, nv_network_settings, readout_fidelity
from .lgt import analyse_lgt, lgt_blocks
from .tomography import fidelity, target_bloch_dqc

APPS = "qnodeos_hw.experiments.apps"


@dataclass(frozen=True)
class MultitaskConfig:
    """``dqc_reps``: circuits per DQC program; ``lgt_blocks``: subroutines per LGT program
    (multiple of 18: every (state, basis) equally often)."""

    dqc_reps: int = 30
    lgt_k: int = 4  # LGT program = lgt_k x 18 blocks
    seed: int = 1
    idle_wall_scale: float = 1.0
    cnpu_processes: bool = True
    #: 'modelled' (default) or 'host' (see :mod:`.dqc`)
    time_mode: str = "modelled"


def programs(n: int, cfg: MultitaskConfig, seed: int) -> tuple[dict, dict, dict]:
    """(mains, roles, inputs) of N DQC pairs and N LGT programs."""
    mains, roles, inputs = {}, {}, {}
    rng = np.random.default_rng(seed)
    for i in range(n):
        a, t = SETTINGS[i % len(SETTINGS)]
        c, s, l_ = f"dqc_client_{i}", f"dqc_server_{i}", f"lgt_{i}"
        mains[c], roles[c] = f"{APPS}.dqc_client:main", "client"
        mains[s], roles[s] = f"{APPS}.dqc_server:main", "server"
        mains[l_], roles[l_] = f"{APPS}.lgt:main", "client"
        inputs[c] = {"alpha": a, "theta": t, "reps": cfg.dqc_reps, "server": s,
                     "epr_socket_id": i, "socket_id": i}
        inputs[s] = {"bases": bases_for(cfg.dqc_reps), "client": c, "epr_socket_id": i,
                     "socket_id": i}
        inputs[l_] = {"blocks": lgt_blocks(cfg.lgt_k, rng)}
    return mains, roles, inputs


def _run(mains: dict, roles: dict, inputs: dict, cfg: MultitaskConfig, seed: int):
    from ..cnpu.network import NVNetworkFactory, run_mains, run_mains_in_processes
    run = run_mains_in_processes if cfg.cnpu_processes else run_mains
    with host_tuning(cfg.time_mode):
        res = run(mains, NVNetworkFactory(seed=seed, num_qubits=1),
                  nv_network_settings(10_000_000, seed, cfg.idle_wall_scale, True, cfg.time_mode),
                  roles=roles, inputs=inputs)
    if not res.ok:
        raise RuntimeError(f"multitask run failed: "
                           f"{ {r: o.error for r, o in res.outcomes.items() if o.error} }")
    return res


def client_usage(events, node: str = "client") -> dict[str, float]:
    """busy (instructions), entanglement windows and span of ``node``'s QDevice (ns)."""
    busy = ent = 0
    t_first, t_last = None, 0
    sent: dict[int | None, int] = {}
    for e in events:
        if e.node != node or e.t_ns < 0:
            continue
        k = e.kind
        if k == "instr_sent":
            sent[e.pid] = e.t_ns
        elif k == "instr_response" and e.pid in sent:
            busy += e.t_ns - sent.pop(e.pid)
        elif k in ("entanglement_failed", "entanglement_heralded"):
            ent += e.data.get("window_ns", 0)
        elif k == "subroutine_received" and t_first is None:
            t_first = e.t_ns
        if k in ("subroutine_done", "instr_response"):
            t_last = max(t_last, e.t_ns)
    span = max(0, t_last - (t_first or 0))
    return {"busy_ns": busy, "ent_ns": ent, "span_ns": span}


def blocks_between(events, node: str = "client") -> list[int]:
    """Number of LGT subroutines completed between consecutive DQC-client subroutines."""
    names = {e.pid: e.data["app"] for e in events if e.kind == "process_named" and e.node == node}
    seq = [names.get(e.pid, "") for e in events if e.kind == "subroutine_done" and e.node == node]
    out, count, seen_dqc = [], 0, False
    for name in seq:
        if name.startswith("dqc_client"):
            if seen_dqc:
                out.append(count)
            seen_dqc, count = True, 0
        elif name.startswith("lgt"):
            count += 1
    return out


def run_n(n: int, cfg: MultitaskConfig, multitasking: bool, seed: int) -> dict[str, Any]:
    mains, roles, inputs = programs(n, cfg, seed)
    t0 = time.perf_counter()
    usage = {"busy_ns": 0, "ent_ns": 0, "span_ns": 0}
    between: list[int] = []
    lgt_b, lgt_m, dqc_f = [], [], []
    if multitasking:
        groups = [list(mains)]
    else:  # one DQC pair, or one LGT program, at a time
        groups = [[f"dqc_client_{i}", f"dqc_server_{i}"] for i in range(n)] + \
                 [[f"lgt_{i}"] for i in range(n)]
    for j, g in enumerate(groups):
        res = _run({r: mains[r] for r in g}, {r: roles[r] for r in g}, {r: inputs[r] for r in g},
                   cfg, seed + j)
        ev = res.trace.events
        u = client_usage(ev)
        for k in usage:
            usage[k] += u[k]
        between += blocks_between(ev)
        for r in g:
            if r.startswith("lgt"):
                lgt_b += inputs[r]["blocks"]
                lgt_m += res.results[r]["m"]
        if any(r.startswith("dqc_server") for r in g):
            idx = [int(r.rsplit("_", 1)[1]) for r in g if r.startswith("dqc_server")]
            ro = readout_fidelity()
            for i in idx:
                a, _ = SETTINGS[i % len(SETTINGS)]
                r = res.results[f"dqc_server_{i}"]
                dqc_f.append(fidelity(r["bases"], r["m"], target_bloch_dqc(a * np.pi / 4), ro).fidelity)
    total = usage["span_ns"] - usage["ent_ns"]
    util = usage["busy_ns"] / total if total > 0 else float("nan")
    lgt = analyse_lgt(lgt_b, lgt_m)
    return {"n": n, "multitasking": multitasking, "t_util": util, **usage,
            "t_total_ns": total, "t_idle_ns": total - usage["busy_ns"],
            "lgt_blocks_between_dqc": {"mean": float(np.mean(between)) if between else 0.0,
                                       "max": int(max(between)) if between else 0},
            "lgt_fidelity_corrected_mean": float(np.mean([d["corrected"]["fidelity"] for d in lgt.values()])),
            "lgt": lgt, "dqc_fidelity_corrected": dqc_f, "wall_s": time.perf_counter() - t0}


def run_multitask(ns: list[int], cfg: MultitaskConfig = MultitaskConfig(), progress: bool = True) -> dict:
    from tqdm import tqdm
    rows = []
    jobs = [(n, on) for n in ns for on in (True, False)]
    from ..logs import progress_enabled
    for n, on in tqdm(jobs, desc="multitask (N, on/off)",
                      disable=not (progress and progress_enabled())):
        rows.append(run_n(n, cfg, on, cfg.seed * 100 + n))
    return {"experiment": "multitask", "dqc_reps": cfg.dqc_reps, "lgt_blocks": cfg.lgt_k * 18,
            "time_mode": cfg.time_mode,
            "idle_wall_scale": cfg.idle_wall_scale if cfg.time_mode == "host" else None,
            "runs": rows}


def parse_n(text: str) -> list[int]:
    if ".." in text:
        a, b = text.split("..")
        ns = list(range(int(a), int(b) + 1))
    else:
        ns = [int(x) for x in text.split(",")]
    bad = [n for n in ns if not 1 <= n <= 5]
    if bad or not ns:
        raise ValueError(f"--n must name N in 1..5, got {text!r}")
    return ns


def save(out: str | Path, summ: dict, db: str | Path | None = None) -> dict[str, str]:
    """multitask.json, multitask.png and the QCoDeS dataset (``db``, default multitask.db
    in ``out``)."""
    from .datasets import save_multitask
    from .plots import plot_multitask

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js = out / "multitask.json"
    js.write_text(json.dumps(summ, indent=1))
    png = plot_multitask(summ, out / "multitask.png")
    db = Path(db) if db is not None else out / "multitask.db"
    run_id = save_multitask(db, summ)
    return {"json": str(js), "png": str(png), "db": str(db), "run_id": str(run_id)}


def format_table(summ: dict) -> str:
    rows = ["multitasking: client QDevice utilisation (entanglement windows excluded)",
            f"{'N':>2} {'mt':>4} {'T_util':>7} {'LGT F corr':>10} {'LGT between DQC':>15} "
            f"{'DQC F corr (mean)':>17}"]
    for r in summ["runs"]:
        df = np.mean(r["dqc_fidelity_corrected"]) if r["dqc_fidelity_corrected"] else float("nan")
        rows.append(f"{r['n']:>2} {'on' if r['multitasking'] else 'off':>4} {r['t_util']:>7.3f} "
                    f"{r['lgt_fidelity_corrected_mean']:>10.3f} {r['lgt_blocks_between_dqc']['mean']:>15.2f} "
                    f"{df:>17.3f}")
    reps = summ.get("dqc_reps", 0)
    if reps:  # one DQC program's tomography: reps/3 shots per basis, corrected by ~1/0.93
        sigma = 0.5 * (3 / reps) ** 0.5 / 0.925
        rows.append(f"(DQC fidelities from {reps} circuits per program: 3 sigma ~ {3 * sigma:.2f} "
                    "per program; a sanity check, see `demo dqc` for the measurement)")
    return "\n".join(rows)


def run_cli(args) -> int:
    summ = run_multitask(parse_n(args.n), MultitaskConfig(
        seed=args.seed, time_mode=getattr(args, "time", None) or "modelled"))
    files = save(args.out, summ, db=getattr(args, "db", None))
    print(format_table(summ))
    print(f"files: {files['json']}  {files['png']}  {files['db']} (run {files['run_id']})")
    return 0
