"""Benchmark: NV waveform build end to end (table + DD copies + SeqC + command table + vendor compile).

Each run starts from the calibration YAML and rebuilds everything (nothing cached
across runs); imports are done once before timing. Prints progress, then, as the
last line, JSON: build_s (median of the runs), build_s_min, per-stage medians,
entries, memory_fraction, fpga_cache_fraction, runs. Goal: build_s <= 1.0, entries == 170.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from tqdm import tqdm

from qnodeos_hw.sequences.hdawg_program import build_hdawg_program, compile_program
from qnodeos_hw.waveforms.calibration import load_calibration
from qnodeos_hw.waveforms.table import build_table


def one_run() -> dict:
    t0 = time.perf_counter()
    cal = load_calibration()
    table = build_table(cal)
    t1 = time.perf_counter()
    program = build_hdawg_program(table, cal, devtype="HDAWG8", n_channels=2)  # DD copies, SeqC, CT
    t2 = time.perf_counter()
    _, info = compile_program(program)
    t3 = time.perf_counter()
    return {"build_s": t3 - t0, "table_s": t1 - t0, "program_s": t2 - t1, "compile_s": t3 - t2,
            "entries": len(table), "memory_fraction": program.memory.memory_fraction,
            "fpga_cache_fraction": info["wavemem"]["fpgaMemoryUsed"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    runs = [one_run() for _ in tqdm(range(args.runs), desc="waveform build", unit="run")]
    med = {k: statistics.median(r[k] for r in runs) for k in ("build_s", "table_s", "program_s", "compile_s")}
    out = {**med, "build_s_min": min(r["build_s"] for r in runs), "entries": runs[0]["entries"],
           "memory_fraction": runs[0]["memory_fraction"],
           "fpga_cache_fraction": runs[0]["fpga_cache_fraction"], "runs": args.runs}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
