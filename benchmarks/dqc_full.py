"""Paper-size DQC through the whole stack: 6 (alpha, theta) settings x 1,200 circuits
on the two-node simulated NV network (SDK programs -> CNPU -> QNPU -> NV QDriver ->
simulated ADwin -> simulated HDAWG -> physics; heralded pairs of fidelity 0.72).

Prints a table, then, last line, JSON: ``wall_s`` (whole run), ``sim_s`` (virtual time
simulated, summed over settings), ``circuits``, ``min_fidelity`` (readout-corrected after
the latency filter: the documented pass criterion, see qnodeos_hw.experiments.dqc), the
unfiltered and raw minima, ``all_above_2_3``, per-setting
fidelities and ``goal_met`` (modelled: wall_s <= 30, the time-base goal; host: wall_s <=
120; and every setting above 2/3).
Options: ``--k N`` circuits per setting, ``--workers W`` settings run side by side in W OS
processes (default :func:`qnodeos_hw.experiments.dqc.default_workers`: in modelled time,
where results do not depend on the load -- ``--workers 1`` gives the same bytes -- 1.5
per core, 3 on two cores, as one setting keeps about 1.2 cores busy; 1 in host time,
where settings sharing the cores would lengthen the server's wait),
``--out DIR`` also writes dqc.json/png/db there.
``--processes single|per-node`` (issue 14): every node and link in this process' worker, or
each its own OS process; ``--compare`` runs both, one after the other, and adds
``per_node_over_single`` (wall-time ratio; goal <= 1.3) and ``identical_fidelities``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from qnodeos_hw.experiments import dqc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=1200)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--time", choices=["modelled", "host"], default="modelled",
                   help="time base (see qnodeos_hw.experiments.dqc)")
    p.add_argument("--processes", choices=["single", "per-node"], default="single")
    p.add_argument("--compare", action="store_true",
                   help="run single and per-node, report the wall-time ratio")
    a = p.parse_args(argv)
    if a.workers is None:
        a.workers = dqc.default_workers(a.time)
    if a.compare:
        out = {}
        for layout in ("single", "per-node"):
            out[layout] = _run(a, layout)
        s, n = out["single"], out["per-node"]
        print(json.dumps({
            "benchmark": "dqc_full_compare", "time": a.time, "k": a.k, "workers": a.workers,
            "single_wall_s": s["wall_s"], "per_node_wall_s": n["wall_s"],
            "per_node_over_single": round(n["wall_s"] / s["wall_s"], 3),
            "goal_ratio": 1.3, "goal_met": n["wall_s"] <= 1.3 * s["wall_s"],
            "identical_fidelities": s["corrected"] == n["corrected"] and s["raw"] == n["raw"],
            "single_corrected": s["corrected"], "per_node_corrected": n["corrected"],
            "min_fidelity": min(s["min_fidelity"], n["min_fidelity"])}))
        return 0
    print(json.dumps(_run(a, a.processes)))
    return 0


def _run(a: argparse.Namespace, layout: str) -> dict:
    cfg = dqc.DQCConfig(k=a.k, seed=a.seed, time_mode=a.time, processes=layout)
    t0 = time.perf_counter()
    recs, analyses = dqc.run_dqc(cfg, workers=a.workers, progress=sys.stderr.isatty())
    wall = time.perf_counter() - t0
    summ = dqc.summary(cfg, analyses, wall)
    if a.out:
        dqc.save(a.out, cfg, recs, summ)
    print(dqc.format_table(summ), file=sys.stderr if a.compare else sys.stdout)
    return ({
        "processes": layout,
        "benchmark": "dqc_full", "time": a.time, "wall_s": round(wall, 2),
        "sim_s": round(summ["sim_s"], 3), "simulated_s": round(summ["sim_s"], 3),
        "sim_over_wall": round(summ["sim_s"] / wall, 3),
        "circuits": summ["circuits"], "workers": a.workers,
        "min_fidelity": round(summ["min_filtered_corrected_fidelity"], 4),
        "fidelity_kind": f"readout-corrected tomography fidelity after the latency filter "
                         f"(server wait <= {cfg.filter_ms:.2f} ms; the documented pass criterion)",
        "min_corrected_unfiltered": round(summ["min_corrected_fidelity"], 4),
        "min_raw_fidelity": round(summ["min_raw_fidelity"], 4),
        "all_above_2_3": summ["all_beat_classical_bound"],
        "all_unfiltered_corrected_above_2_3": summ["all_corrected_unfiltered_above_bound"],
        "all_raw_above_2_3": summ["all_raw_above_bound"],
        "kept_fraction": [round(s["kept_fraction"], 3) for s in analyses],
        "corrected": [round(s["corrected"]["fidelity"], 4) for s in analyses],
        "raw": [round(s["raw"]["fidelity"], 4) for s in analyses],
        "filtered_corrected": [round(s["filtered_corrected"].get("fidelity", float("nan")), 4)
                               for s in analyses],
        "mean_server_wait_ms": round(sum(s["server_wait_ms"]["mean"] for s in analyses) / len(analyses), 3),
        "goal_wall_s": 30 if a.time == "modelled" else 120,
        "goal_met": bool(wall <= (30 if a.time == "modelled" else 120)
                         and summ["all_beat_classical_bound"]),
    })


if __name__ == "__main__":
    sys.exit(main())
