"""Local gate tomography (LGT), the paper's L1 (Fig. 5c), on one simulated NV node.

One subroutine (:mod:`.apps.lgt`) runs the six tomography bases B in {+-X, +-Y, +-Z}:
initialise |0>, rotate about D by phi, rotate B onto Z, measure -- six results per
subroutine. The six (D, phi) inputs are the paper's: (X, 0), (X, pi), (Y, pi/2),
(Y, -pi/2), (X, -pi/2), (X, pi/2), preparing +Z, -Z, +X, -X, +Y, -Y. ``k`` subroutines
per input (the paper: k = 1,000, so 6,000 executions and 36,000 results).

Reported per input: the fidelity of R_D(phi)|0> raw and readout-corrected, both as
maximum-likelihood Bloch vectors inside the Bloch ball (physical: never above 1) with
profile-likelihood intervals (:func:`.tomography.physical_fidelity`); the plain linear
inversion of the readout error (which can exceed 1) as ``corrected_linear``; and the
L1 duration: virtual time from the subroutine's first instruction to its end (the
paper: about 2.4 ms), and ``l1_on_qnpu_ms``, from the process turning RUNNING (plus the
QNPU's modelled processing of the subroutine's instructions).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .apps.lgt_bases import BASES6, INPUTS
from .tomography import ReadoutFidelity, basis_axis, physical_fidelity

APPS = "qnodeos_hw.experiments.apps"
#: the paper's figures for L1 (Fig. 5c)
PAPER = {"l1_duration_ms": 2.4, "subroutines_per_input": 1000, "executions": 6000,
         "results": 36000, "source": "Delle Donne et al., Nature 639, 321 (2025), Fig. 5c"}
#: name of the state each input prepares from |0>
STATE_OF_INPUT = {("X", 0): "+Z", ("X", 2): "-Z", ("Y", 1): "+X", ("Y", -1): "-X",
                  ("X", -1): "+Y", ("X", 1): "-Y"}


@dataclass(frozen=True)
class LGTConfig:
    """``k``: L1 subroutines per (D, phi) input (6 inputs, 6 results per subroutine)."""

    k: int = 1000
    seed: int = 1
    #: 'modelled' (default) or 'host' (see :mod:`.dqc`)
    time_mode: str = "modelled"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


def input_label(d_axis: str, phi: int) -> str:
    """'(X, pi/2)' style label of an input (phi in units of pi/2)."""
    names = {0: "0", 2: "pi", 1: "pi/2", -1: "-pi/2"}
    return f"({d_axis}, {names.get(int(phi), f'{phi}pi/2')})"


def target_bloch(d_axis: str, phi: int) -> tuple[float, float, float]:
    """Bloch vector of R_D(phi)|0> (phi in units of pi/2): Rx(a)|0> -> (0, -sin a, cos a),
    Ry(a)|0> -> (sin a, 0, cos a)."""
    a = phi * math.pi / 2
    s, c = round(math.sin(a), 12), round(math.cos(a), 12)
    return (0.0, -s, c) if d_axis == "X" else (s, 0.0, c)


def lgt_blocks(k: int, rng: np.random.Generator | None = None) -> list[tuple[str, int]]:
    """k subroutines of each (D, phi) input, interleaved (shuffled when ``rng`` is given)."""
    blocks = [b for _ in range(k) for b in INPUTS]
    if rng is not None:
        order = rng.permutation(len(blocks))
        blocks = [blocks[i] for i in order]
    return blocks


def _linear_corrected(bases: list[str], m: np.ndarray, target, readout: ReadoutFidelity) -> float:
    """Readout-inverted linear estimate (each basis group inverted, the two signs of an
    axis averaged): what a naive correction prints; it can leave the Bloch ball."""
    f = 0.5
    for a, t in enumerate(target):
        if abs(t) < 1e-12:
            continue
        vals = []
        for s in (1, -1):
            sel = np.array([basis_axis(b) == (a, s) for b in bases])
            if sel.any():
                vals.append(s * readout.correct(1.0 - 2.0 * m[sel].mean()))
        f += 0.5 * t * float(np.mean(vals))
    return f


def analyse_lgt(blocks: list, outcomes: list[list[int]], readout: ReadoutFidelity | None = None
                ) -> dict[str, Any]:
    """Per (D, phi) input: raw and readout-corrected physical fidelities of R_D(phi)|0>."""
    from .dqc import readout_fidelity
    readout = readout or readout_fidelity("client")
    out: dict[str, Any] = {}
    for d_axis, phi in INPUTS:
        rows = [ms for b, ms in zip(blocks, outcomes) if (b[0], int(b[1])) == (d_axis, phi)]
        if not rows:
            continue
        bases = [b for _ in rows for b in BASES6]
        m = np.array([x for ms in rows for x in ms], int)
        t = target_bloch(d_axis, phi)
        out[input_label(d_axis, phi)] = {
            "d_axis": d_axis, "phi_rad": phi * math.pi / 2, "state": STATE_OF_INPUT[(d_axis, phi)],
            "target_bloch": list(t), "subroutines": len(rows), "results": int(m.size),
            "raw": physical_fidelity(bases, m, t).as_dict(),
            "corrected": physical_fidelity(bases, m, t, readout).as_dict(),
            "corrected_linear": _linear_corrected(bases, m, t, readout)}
    return out


def run_lgt(cfg: LGTConfig = LGTConfig(), progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    from ..runner.network import NVNetworkFactory, run_mains
    from ..logs import progress_enabled
    from .dqc import nv_network_settings, readout_fidelity

    blocks = lgt_blocks(cfg.k, np.random.default_rng(cfg.seed))
    bar = tqdm(total=1, desc=f"LGT ({len(blocks)} L1 subroutines, {6 * len(blocks)} results)",
               disable=not (progress and progress_enabled()))
    t0 = time.perf_counter()
    res = run_mains({"lgt": f"{APPS}.lgt:main"}, NVNetworkFactory(seed=cfg.seed, num_qubits=1),
                    nv_network_settings(10_000_000, cfg.seed, 0.0 if cfg.time_mode == "modelled"
                                        else 1.0, True, cfg.time_mode),
                    roles={"lgt": "client"}, inputs={"lgt": {"blocks": blocks}})
    wall = time.perf_counter() - t0
    bar.update()
    bar.close()
    if not res.ok:
        raise LGTRunError(f"LGT program failed: {res.outcomes['lgt'].error}")
    ev = res.trace.events
    exec_ns = subroutine_durations_ns(ev, "client", start="started")
    on_qnpu_ns = subroutine_durations_ns(ev, "client", start="running")
    ro = readout_fidelity("client")
    inputs = analyse_lgt(blocks, res.results["lgt"]["m"], ro)
    fc = [d["corrected"]["fidelity"] for d in inputs.values()]
    return {"experiment": "lgt", "k": cfg.k, "seed": cfg.seed, "time_mode": cfg.time_mode,
            "subroutines": len(blocks), "results": 6 * len(blocks),
            # execution on the QNPU: first instruction to the end (host time: from RUNNING)
            "l1_duration_ms": _stats_ms(exec_ns or on_qnpu_ns),
            # from RUNNING: plus the QNPU's modelled processing of its instructions
            "l1_on_qnpu_ms": _stats_ms(on_qnpu_ns),
            "inputs": inputs, "mean_corrected_fidelity": float(np.mean(fc)),
            "readout": {"f0": ro.f0, "f1": ro.f1},
            "paper": PAPER, "wall_s": wall,
            "sim_s": max((e.t_ns for e in ev), default=0) * 1e-9,
            "blocks": [list(b) for b in blocks], "m": res.results["lgt"]["m"]}


class LGTRunError(RuntimeError):
    """The LGT program failed on the node (names the program's error)."""


def subroutine_durations_ns(events, node: str, pids: set[int] | None = None,
                            start: str = "running") -> list[int]:
    """Virtual duration of each subroutine on ``node`` until 'subroutine_done', from
    ``start``: 'running' (the process turns RUNNING: includes the QNPU's modelled
    processing of the subroutine's instructions) or 'started' ('subroutine_started',
    modelled time: the subroutine's execution, its first instruction on); ``pids``: only
    these processes."""
    begin: dict[int, int] = {}
    out = []
    for e in events:
        if e.node != node or e.t_ns < 0 or (pids is not None and e.pid not in pids):
            continue
        if start == "running" and e.kind == "process_state" and e.data.get("state") == "running" \
                and e.pid:
            begin.setdefault(e.pid, e.t_ns)
        elif start == "started" and e.kind == "subroutine_started":
            begin.setdefault(e.pid, e.t_ns)
        elif e.kind == "subroutine_done" and e.pid in begin:
            out.append(e.t_ns - begin.pop(e.pid))
    return out


def _stats_ms(durs_ns: list[int]) -> dict[str, float]:
    d = np.array(durs_ns, float) * 1e-6
    if not d.size:
        return {k: float("nan") for k in ("mean", "median", "sd", "min", "max")}
    return {"mean": float(d.mean()), "median": float(np.median(d)), "sd": float(d.std()),
            "min": float(d.min()), "max": float(d.max())}


def save(out: str | Path, res: dict, db: str | Path | None = None) -> dict[str, str]:
    """lgt.json, lgt.png and the QCoDeS dataset (``db``, default lgt.db in ``out``)."""
    from .datasets import save_lgt
    from .plots import plot_lgt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summ = {k: v for k, v in res.items() if k not in ("blocks", "m")}
    js = out / "lgt.json"
    js.write_text(json.dumps(summ, indent=1))
    png = plot_lgt(summ, out / "lgt.png")
    db = Path(db) if db is not None else out / "lgt.db"
    run_id = save_lgt(db, res)
    return {"json": str(js), "png": str(png), "db": str(db), "run_id": str(run_id)}


def format_table(summ: dict) -> str:
    d = summ["l1_duration_ms"]
    rows = [f"LGT (L1): k={summ['k']} subroutines per (D, phi) input, {summ['subroutines']} "
            f"subroutines, {summ['results']} results (paper: 1,000 / 6,000 / 36,000)",
            f"L1 duration {d['mean']:.2f} ms mean (sd {d['sd']:.2f}; virtual, execution; paper "
            f"~2.4 ms); {summ['l1_on_qnpu_ms']['mean']:.2f} ms with the QNPU's processing",
            f"{'input':>12} {'state':>5} {'F raw':>7} {'F corrected [3-sigma interval]':>32}"]
    for label, x in summ["inputs"].items():
        c = x["corrected"]
        lo, hi = c["interval_3sigma"]
        rows.append(f"{label:>12} {x['state']:>5} {x['raw']['fidelity']:>7.3f} "
                    f"{c['fidelity']:>12.3f} [{lo:.3f}, {hi:.3f}]")
    rows.append("(corrected: maximum-likelihood Bloch vector inside the ball, readout model "
                "F0/F1; intervals: profile likelihood)")
    return "\n".join(rows)


def run_cli(args) -> int:
    res = run_lgt(LGTConfig(k=args.k, seed=args.seed,
                            time_mode=getattr(args, "time", None) or "modelled"))
    files = save(args.out, res, db=getattr(args, "db", None))
    print(format_table(res))
    print(f"files: {files['json']}  {files['png']}  {files['db']} (run {files['run_id']})")
    return 0
