"""Wall time per entangled pair on chains of 2, 3, 4 and 6 simulated NV nodes, modelled
time (issue 14): every node, link and CNPU its own OS process (``--processes per-node``,
default) or the nodes in one process (``single``); ``--compare`` runs both.

Each link of the chain takes ``--pairs`` pairs (the TDMA schedule gives the links bins in
turn); the figures are the run's wall time over its pairs, and the slope between a run of
``--pairs`` and one of a fifth as many (start-up cancels; ``startup_s`` is the
intercept). Prints JSON (last line)
and, with ``--plot FILE``, a PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tqdm import tqdm

from qnodeos_hw.experiments.dqc import nv_network_settings
from qnodeos_hw.runner.network import NVNetworkFactory, run_mains_in_processes
from qnodeos_hw.runner.per_node import run_per_node

APP = "qnodeos_hw.experiments.apps.chain:main"


def run_chain(n: int, pairs: int, layout: str, seed: int = 1, qubits: int = 2) -> dict:
    names = [f"n{i}" for i in range(n)]
    links = tuple(frozenset((names[i], names[i + 1])) for i in range(n - 1))
    settings = nv_network_settings(10_000_000, seed, 0.0, False)
    import dataclasses
    settings = dataclasses.replace(settings, links=links)
    inputs = {nm: {"left": names[i - 1] if i else None,
                   "right": names[i + 1] if i + 1 < n else None, "pairs": pairs}
              for i, nm in enumerate(names)}
    factory = NVNetworkFactory(seed=seed, num_qubits=qubits)
    t0 = time.perf_counter()
    if layout == "per-node":
        res = run_per_node({nm: {"main": APP} for nm in names}, factory, settings, inputs=inputs)
    else:
        res = run_mains_in_processes({nm: APP for nm in names}, factory, settings, inputs=inputs)
    wall = time.perf_counter() - t0
    if not res.ok:
        raise RuntimeError({r: o.error for r, o in res.outcomes.items() if o.error})
    sim_ns = max((e.t_ns for e in res.trace.events), default=0)
    got = sum(len(res.results[nm]["right"]) for nm in names)
    return {"nodes": n, "layout": layout, "pairs": got, "wall_s": round(wall, 3),
            "sim_s": round(sim_ns * 1e-9, 3), "results": res.results}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", default="2,3,4,6")
    p.add_argument("--pairs", type=int, default=20, help="pairs per link")
    p.add_argument("--processes", choices=["single", "per-node"], default="per-node")
    p.add_argument("--compare", action="store_true")
    p.add_argument("--plot", default=None, help="write a PNG of wall time per pair")
    a = p.parse_args(argv)
    layouts = ["single", "per-node"] if a.compare else [a.processes]
    sizes = [int(x) for x in a.nodes.split(",")]
    rows = []
    for layout in layouts:
        for n in tqdm(sizes, desc=f"chains ({layout})", disable=not sys.stderr.isatty()):
            small = run_chain(n, max(1, a.pairs // 5), layout)
            r = run_chain(n, a.pairs, layout)
            r["wall_per_pair_ms"] = round(1e3 * r["wall_s"] / max(1, r["pairs"]), 2)
            # the slope between the two runs: start-up (processes, imports) cancels
            r["wall_per_pair_after_startup_ms"] = round(
                1e3 * (r["wall_s"] - small["wall_s"]) / max(1, r["pairs"] - small["pairs"]), 2)
            r["startup_s"] = round(r["wall_s"] - r["pairs"] * r["wall_per_pair_after_startup_ms"]
                                   * 1e-3, 2)
            rows.append(r)
    same = None
    if a.compare:
        by = {(r["layout"], r["nodes"]): r["results"] for r in rows}
        same = all(by[("single", n)] == by[("per-node", n)] for n in sizes)
    for r in rows:
        r.pop("results")
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for layout in layouts:
            rs = [r for r in rows if r["layout"] == layout]
            ax.plot([r["nodes"] for r in rs], [r["wall_per_pair_after_startup_ms"] for r in rs],
                    "o-", label=layout)
        ax.set_xlabel("NV nodes in the chain")
        ax.set_ylabel("wall time per pair (ms, after start-up)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
    print(json.dumps({"benchmark": "chain_pairs", "pairs_per_link": a.pairs, "rows": rows,
                      "identical_results": same}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
