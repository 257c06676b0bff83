"""Multitasking (the paper's Fig. 5d): N DQC-client + N LGT programs on the client node
and N DQC-server programs on the server node of the simulated NV network, with
multitasking on (all programs at once; the QNPU interleaves their subroutines) and off
(one program, or one client/server pair, at a time). LGT programs run the paper's L1
subroutine (:mod:`.lgt`: six bases per subroutine).

Per (N, on/off), repeated over ``repeats`` seeds (error bars: the standard deviation
over seeds):

* client-QDevice utilisation ``T_util = 1 - T_idle / T_total``, entanglement attempt
  windows excluded from T_total: busy = virtual time inside quantum instructions,
  T_total = the client's virtual span of the run(s) minus the attempt windows;
* how many LGT blocks (subroutines) run between consecutive DQC-client blocks;
* of the times a DQC-client process enters *waiting* (for its entanglement, or a
  qubit), the fraction in which the scheduler runs another user process before the
  DQC process is ready again -- from the trace's process states (the paper: 56 %, 81 %,
  99 % for N = 1, 2, > 2);
* LGT fidelities (readout-corrected, physical) and, as a sanity check, DQC fidelities.

Time modes and process layout as in :mod:`.dqc` (``time_mode``, default modelled;
``cnpu_processes``: each node's CNPU is its own OS process running that node's programs
as threads, as on the paper's CNPU).
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
from .tomography import physical_fidelity, target_bloch_dqc

APPS = "qnodeos_hw.experiments.apps"


#: the paper's figures (Fig. 5d and text)
PAPER = {"waiting_other_process_fraction": {"1": 0.56, "2": 0.81, ">2": 0.99},
         "t_util": "higher with multitasking on than off at every N (Fig. 5d)",
         "source": "Delle Donne et al., Nature 639, 321 (2025), Fig. 5d"}


@dataclass(frozen=True)
class MultitaskConfig:
    """``dqc_reps``: circuits per DQC program; ``lgt_k``: L1 subroutines per (D, phi)
    input per LGT program (6 x lgt_k subroutines; the default 120 outlast 30 DQC circuits,
    so that the DQC programs run beside LGT throughout); ``repeats``: seeds per (N,
    on/off)."""

    dqc_reps: int = 30
    lgt_k: int = 20
    seed: int = 1
    idle_wall_scale: float = 1.0
    cnpu_processes: bool = True
    #: 'modelled' (default) or 'host' (see :mod:`.dqc`)
    time_mode: str = "modelled"
    repeats: int = 3

    def __post_init__(self) -> None:
        if self.dqc_reps < 3 or self.lgt_k < 1 or self.repeats < 1:
            raise ValueError(f"multitask needs dqc_reps >= 3, lgt_k >= 1, repeats >= 1; got "
                             f"{self.dqc_reps}, {self.lgt_k}, {self.repeats}")


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
    from ..runner.network import NVNetworkFactory, run_mains, run_mains_in_processes
    run = run_mains_in_processes if cfg.cnpu_processes else run_mains
    with host_tuning(cfg.time_mode):
        res = run(mains, NVNetworkFactory(seed=seed, num_qubits=1),
                  nv_network_settings(10_000_000, seed, cfg.idle_wall_scale, True, cfg.time_mode),
                  roles=roles, inputs=inputs)
    if not res.ok:
        raise MultitaskRunError(f"multitask run failed: "
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


def waiting_handover(events, node: str = "client", prefix: str = "dqc_client") -> dict[str, Any]:
    """What the scheduler does when a process whose program name starts with ``prefix``
    enters WAITING on ``node`` (for its entanglement, or a qubit):

    * ``immediate``: the next process it runs is another *user* process, at once (same
      virtual time: one was ready) -- the paper's figure (56 %, 81 %, 99 %);
    * ``during``: another user process runs at some point before the waiting one is
      READY again (the wait is used at all).

    Returns counts (``waits``, ``other_ran`` = immediate, ``other_ran_during``) and the
    fractions ``fraction`` (immediate) and ``fraction_during``."""
    from ..qnpu.qmmu import NETWORK_PID
    names = {e.pid: e.data["app"] for e in events if e.kind == "process_named" and e.node == node}
    open_: dict[int, bool] = {}
    first: list[tuple[int, int]] = []  # waits whose first next RUNNING is still to come
    waits = immediate = during = 0
    for e in events:
        if e.node != node or e.kind != "process_state":
            continue
        st, pid = e.data.get("state"), e.pid
        if pid in open_ and st in ("ready", "running", "idle"):
            during += open_.pop(pid)
        if st == "waiting" and names.get(pid, "").startswith(prefix):
            waits += 1
            open_[pid] = False
            first.append((pid, e.t_ns))
        elif st == "running":
            user = pid != NETWORK_PID and pid in names
            for w, t in first:
                immediate += int(user and pid != w and e.t_ns == t)
            first = []
            if user:
                for w in open_:
                    if w != pid:
                        open_[w] = True
    return {"waits": waits, "other_ran": immediate, "other_ran_during": during,
            "fraction": immediate / waits if waits else float("nan"),
            "fraction_during": during / waits if waits else float("nan")}


def run_n(n: int, cfg: MultitaskConfig, multitasking: bool, seed: int) -> dict[str, Any]:
    """One (N, on/off) measurement with one seed."""
    mains, roles, inputs = programs(n, cfg, seed)
    t0 = time.perf_counter()
    usage = {"busy_ns": 0, "ent_ns": 0, "span_ns": 0}
    between: list[int] = []
    hand = {"waits": 0, "other_ran": 0, "other_ran_during": 0}
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
        h = waiting_handover(ev)
        for k in hand:
            hand[k] += h[k]
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
                dqc_f.append(physical_fidelity(r["bases"], r["m"], target_bloch_dqc(a * np.pi / 4),
                                               ro).fidelity)
    total = usage["span_ns"] - usage["ent_ns"]
    util = usage["busy_ns"] / total if total > 0 else float("nan")
    lgt = analyse_lgt(lgt_b, lgt_m)
    hand["fraction"] = hand["other_ran"] / hand["waits"] if hand["waits"] else float("nan")
    hand["fraction_during"] = (hand["other_ran_during"] / hand["waits"] if hand["waits"]
                               else float("nan"))
    return {"n": n, "multitasking": multitasking, "seed": seed, "t_util": util, **usage,
            "t_total_ns": total, "t_idle_ns": total - usage["busy_ns"],
            "lgt_blocks_between_dqc": {"mean": float(np.mean(between)) if between else 0.0,
                                       "max": int(max(between)) if between else 0},
            "waiting_other_process": hand,
            "lgt_fidelity_corrected_mean": float(np.mean([d["corrected"]["fidelity"] for d in lgt.values()])),
            "lgt": lgt, "dqc_fidelity_corrected": dqc_f, "wall_s": time.perf_counter() - t0}


def _mean_sd(xs: list[float]) -> dict[str, Any]:
    a = np.array([x for x in xs if np.isfinite(x)], float)
    return {"mean": float(a.mean()) if a.size else float("nan"),
            "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0, "values": [float(x) for x in xs]}


def aggregate(rows: list[dict]) -> list[dict]:
    """Per (N, on/off): T_util, LGT blocks between DQC blocks and the waiting fraction over
    the seeds (mean, sd, values); the waiting fraction also pooled over every wait."""
    out = []
    keys = sorted({(r["n"], r["multitasking"]) for r in rows}, key=lambda k: (k[0], not k[1]))
    for n, on in keys:
        rs = [r for r in rows if r["n"] == n and r["multitasking"] == on]
        waits = sum(r["waiting_other_process"]["waits"] for r in rs)
        other = sum(r["waiting_other_process"]["other_ran"] for r in rs)
        during = sum(r["waiting_other_process"]["other_ran_during"] for r in rs)
        out.append({"n": n, "multitasking": on, "seeds": [r["seed"] for r in rs],
                    "t_util": _mean_sd([r["t_util"] for r in rs]),
                    "lgt_blocks_between_dqc": _mean_sd([r["lgt_blocks_between_dqc"]["mean"]
                                                        for r in rs]),
                    "waiting_other_process": {
                        **_mean_sd([r["waiting_other_process"]["fraction"] for r in rs]),
                        "waits": waits, "other_ran": other,
                        "pooled": other / waits if waits else float("nan"),
                        "other_ran_during": during,
                        "pooled_during": during / waits if waits else float("nan")},
                    "lgt_fidelity_corrected": _mean_sd([r["lgt_fidelity_corrected_mean"] for r in rs])})
    return out


def paper_fraction(n: int) -> float:
    f = PAPER["waiting_other_process_fraction"]
    return f[str(n)] if str(n) in f else f[">2"]


def run_multitask(ns: list[int], cfg: MultitaskConfig = MultitaskConfig(), progress: bool = True) -> dict:
    from tqdm import tqdm

    from ..logs import progress_enabled
    rows = []
    jobs = [(n, on, rep) for n in ns for on in (True, False) for rep in range(cfg.repeats)]
    for n, on, rep in tqdm(jobs, desc="multitask (N, on/off, seed)",
                           disable=not (progress and progress_enabled())):
        rows.append(run_n(n, cfg, on, cfg.seed * 100 + n + 1000 * rep))
    agg = aggregate(rows)
    for a in agg:
        if a["multitasking"]:
            a["paper_waiting_other_process"] = paper_fraction(a["n"])
    return {"experiment": "multitask", "dqc_reps": cfg.dqc_reps,
            "lgt_subroutines": cfg.lgt_k * 6, "repeats": cfg.repeats,
            "time_mode": cfg.time_mode,
            "idle_wall_scale": cfg.idle_wall_scale if cfg.time_mode == "host" else None,
            "error_bars": "standard deviation over the seeds",
            "paper": PAPER, "summary": agg, "runs": rows}


class MultitaskRunError(RuntimeError):
    """A multitasking run's programs failed (names each program's error)."""


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
    rows = [f"multitasking: client QDevice utilisation (entanglement windows excluded); "
            f"{summ.get('repeats', 1)} seed(s) per row, +- = sd over seeds",
            f"{'N':>2} {'mt':>4} {'T_util':>15} {'LGT between DQC':>15} "
            f"{'DQC wait -> other runs':>22} {'paper':>6} {'(during wait)':>13} {'LGT F corr':>10}"]
    for a in summ["summary"]:
        w = a["waiting_other_process"]
        wtxt = f"{w['pooled']:.2f} ({w['other_ran']}/{w['waits']})" if w["waits"] else "-"
        paper = f"{a['paper_waiting_other_process']:.2f}" if a["multitasking"] else "-"
        rows.append(f"{a['n']:>2} {'on' if a['multitasking'] else 'off':>4} "
                    f"{a['t_util']['mean']:>7.3f}+-{a['t_util']['sd']:.3f} "
                    f"{a['lgt_blocks_between_dqc']['mean']:>10.2f}+-{a['lgt_blocks_between_dqc']['sd']:.2f} "
                    f"{wtxt:>22} {paper:>6} {w['pooled_during']:>13.2f} "
                    f"{a['lgt_fidelity_corrected']['mean']:>10.3f}")
    rows.append("(DQC wait -> other runs: the scheduler runs another user process at once when a "
                "DQC-client process starts waiting, pooled over seeds; during wait: at some point "
                "before it is ready again)")
    reps = summ.get("dqc_reps", 0)
    if reps:
        rows.append(f"(DQC programs of {reps} circuits each; `demo dqc` is the DQC measurement)")
    return "\n".join(rows)


def run_cli(args) -> int:
    summ = run_multitask(parse_n(args.n), MultitaskConfig(
        seed=args.seed, time_mode=getattr(args, "time", None) or "modelled",
        repeats=getattr(args, "repeats", 3)))
    files = save(args.out, summ, db=getattr(args, "db", None))
    print(format_table(summ))
    print(f"files: {files['json']}  {files['png']}  {files['db']} (run {files['run_id']})")
    return 0
