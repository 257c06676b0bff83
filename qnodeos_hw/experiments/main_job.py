"""The main job behind ``./run demo``: a short version of the paper's demonstrations on
the two-node simulated NV network (whole stack: SDK programs -> CNPU -> QNPU -> NV
QDriver -> simulated ADwin/HDAWG -> physics): DQC with a small k, LGT (L1), and
multitasking with N = 1 and 2 (two seeds each). ``--db PATH``: the three datasets go
into that QCoDeS database (the user's), not one file per demonstration. Prints a table of the results and where the plots are.
(``qnodeos-hw demo ticks`` still shows single physical instructions on the tick link.)
"""

from __future__ import annotations

import time
from pathlib import Path

#: short-run sizes (the full runs: ``qnodeos-hw demo dqc --k 1200`` etc.)
DQC_K = 600
LGT_K = 100
MULTITASK_N = [1, 2]
MULTITASK_REPEATS = 2
MULTITASK_SIZES = {"dqc_reps": 30, "lgt_k": 20}


def run(args) -> int:
    from . import dqc, lgt, multitask

    out = Path(getattr(args, "out", "out/demo"))
    db = getattr(args, "db", None)  # one QCoDeS database of the user's for all three runs
    mode = getattr(args, "time", None) or "modelled"
    t0 = time.perf_counter()
    print(f"== DQC: 6 (alpha, theta) settings x k={DQC_K} circuits, two simulated NV nodes")
    cfg = dqc.DQCConfig(k=DQC_K, seed=1, time_mode=mode)
    recs, analyses = dqc.run_dqc(cfg, workers=1)  # CNPUs are processes already: 3 per setting
    summ = dqc.summary(cfg, analyses, time.perf_counter() - t0)
    f_dqc = dqc.save(out / "dqc", cfg, recs, summ, db=db)
    print(f"== LGT (the paper's L1: six bases per subroutine): six (D, phi) inputs x k={LGT_K} "
          "subroutines")
    res_lgt = lgt.run_lgt(lgt.LGTConfig(k=LGT_K, seed=1, time_mode=mode))
    f_lgt = lgt.save(out / "lgt", res_lgt, db=db)
    print(f"== multitasking: N = {MULTITASK_N}, on and off")
    mt = multitask.run_multitask(MULTITASK_N, multitask.MultitaskConfig(
        seed=1, time_mode=mode, repeats=MULTITASK_REPEATS, **MULTITASK_SIZES))
    f_mt = multitask.save(out / "multitask", mt, db=db)
    wall = time.perf_counter() - t0

    print()
    print(dqc.format_table(summ))
    verdict = summ["message"]
    print(f"DQC: {verdict}; mean server wait "
          f"{sum(a['server_wait_ms']['mean'] for a in analyses) / len(analyses):.2f} ms")
    print()
    print(lgt.format_table(res_lgt))
    print()
    print(multitask.format_table(mt))
    print()
    print(f"plots:    {f_dqc['png']}  {f_lgt['png']}  {f_mt['png']}")
    print(f"json:     {f_dqc['json']}  {f_lgt['json']}  {f_mt['json']}")
    if db is not None:
        print(f"datasets: {db} (QCoDeS sqlite; runs {f_dqc['run_id']}, {f_lgt['run_id']}, "
              f"{f_mt['run_id']})")
    else:
        print(f"datasets: {f_dqc['db']}  {f_lgt['db']}  {f_mt['db']} (QCoDeS sqlite)")
    print(f"main job wall time: {wall:.1f} s")
    return 1 if summ["verdict"] == "fail" else 0
