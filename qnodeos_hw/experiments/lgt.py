"""Local gate tomography (LGT) on one simulated NV node: one subroutine per block
(allocate, prepare one of the six cardinal states, rotate into X/Y/Z, measure, free),
k shots per (state, basis). Fidelity per state, raw and readout-corrected.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tomography import CARDINAL, fidelity

APPS = "qnodeos_hw.experiments.apps"


@dataclass(frozen=True)
class LGTConfig:
    """``k``: shots per (state, basis) pair (18 pairs)."""

    k: int = 1000
    seed: int = 1
    #: 'modelled' (default) or 'host' (see :mod:`.dqc`)
    time_mode: str = "modelled"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


def lgt_blocks(k: int, rng: np.random.Generator | None = None) -> list[tuple[str, str]]:
    """k blocks of each (state, basis), interleaved (shuffled when ``rng`` is given)."""
    blocks = [(s, b) for _ in range(k) for s in CARDINAL for b in "XYZ"]
    if rng is not None:
        rng.shuffle(blocks)
    return blocks


def analyse_lgt(blocks: list, outcomes: list[int], readout=None) -> dict[str, Any]:
    from .dqc import readout_fidelity
    readout = readout or readout_fidelity("client")
    st = np.array([b[0] for b in blocks])
    bs = np.array([b[1] for b in blocks])
    m = np.array(outcomes)
    out = {}
    for s, t in CARDINAL.items():
        sel = st == s
        out[s] = {"raw": fidelity(bs[sel], m[sel], t).as_dict(),
                  "corrected": fidelity(bs[sel], m[sel], t, readout).as_dict()}
    return out


def run_lgt(cfg: LGTConfig = LGTConfig(), progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    from ..cnpu.network import NVNetworkFactory, run_mains
    from .dqc import nv_network_settings

    blocks = lgt_blocks(cfg.k, np.random.default_rng(cfg.seed))
    from ..logs import progress_enabled
    bar = tqdm(total=1, desc=f"LGT ({len(blocks)} subroutines)",
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
        raise RuntimeError(f"LGT failed: {res.outcomes['lgt'].error}")
    ev = res.trace.events
    durs = _subroutine_durations_ns(ev, "client")
    states = analyse_lgt(blocks, res.results["lgt"]["m"])
    return {"experiment": "lgt", "k": cfg.k, "seed": cfg.seed, "subroutines": len(blocks),
            "subroutine_ms": {"mean": float(np.mean(durs)) * 1e-6 if durs else float("nan"),
                              "median": float(np.median(durs)) * 1e-6 if durs else float("nan")},
            "states": states, "wall_s": wall,
            "sim_s": max((e.t_ns for e in ev), default=0) * 1e-9,
            "blocks": [list(b) for b in blocks], "m": res.results["lgt"]["m"]}


def _subroutine_durations_ns(events, node: str) -> list[int]:
    """Virtual duration of each subroutine on ``node`` (process RUNNING -> subroutine_done)."""
    start: dict[int, int] = {}
    out = []
    for e in events:
        if e.node != node or e.t_ns < 0:
            continue
        if e.kind == "process_state" and e.data.get("state") == "running" and e.pid:
            start.setdefault(e.pid, e.t_ns)
        elif e.kind == "subroutine_done" and e.pid in start:
            out.append(e.t_ns - start.pop(e.pid))
    return out


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
    rows = [f"LGT k={summ['k']} per (state, basis); subroutine {summ['subroutine_ms']['mean']:.2f} ms (virtual)",
            f"{'state':>6} {'F raw':>14} {'F corrected':>14}"]
    for s, d in summ["states"].items():
        rows.append(f"{s:>6} {d['raw']['fidelity']:.3f}+-{d['raw']['three_sigma']:.3f} "
                    f"{d['corrected']['fidelity']:.3f}+-{d['corrected']['three_sigma']:.3f}")
    return "\n".join(rows)


def run_cli(args) -> int:
    res = run_lgt(LGTConfig(k=args.k, seed=args.seed,
                            time_mode=getattr(args, "time", None) or "modelled"))
    files = save(args.out, res, db=getattr(args, "db", None))
    print(format_table(res))
    print(f"files: {files['json']}  {files['png']}  {files['db']} (run {files['run_id']})")
    return 0
