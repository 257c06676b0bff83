"""The ``qnodeos-hw`` command.

Each sub-command is implemented by a function ``run(args) -> int`` in the module
named in :data:`COMMANDS`; modules are imported only when their command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: (group, action) -> "module:function"
COMMANDS: dict[tuple[str, str], str] = {
    ("demo", "main"): "qnodeos_hw.experiments.main_job:run",
    ("demo", "ticks"): "qnodeos_hw.experiments.tick_demo:run",
    ("demo", "dqc"): "qnodeos_hw.experiments.dqc:run_cli",
    ("demo", "lgt"): "qnodeos_hw.experiments.lgt:run_cli",
    ("demo", "multitask"): "qnodeos_hw.experiments.multitask:run_cli",
    ("waveforms", "build"): "qnodeos_hw.waveforms.build:run_cli",
    ("sequences", "build"): "qnodeos_hw.sequences.build:run_cli",
    ("station", "check"): "qnodeos_hw.instruments.station_check:run_cli",
    ("run", ""): "qnodeos_hw.cnpu.network:run_cli",
    ("calibrate", "rabi"): "qnodeos_hw.experiments.calibrations:run_cli",
    ("calibrate", "ramsey"): "qnodeos_hw.experiments.calibrations:run_cli",
    ("calibrate", "dd"): "qnodeos_hw.experiments.calibrations:run_cli",
    ("calibrate", "ssro"): "qnodeos_hw.experiments.calibrations:run_cli",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qnodeos-hw", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="group", required=True)

    demo = sub.add_parser("demo", help="run a demonstration on the simulated lab")
    dsub = demo.add_subparsers(dest="action", required=True)
    m = dsub.add_parser("main", help="the main job (what ./run demo runs)")
    m.add_argument("--out", default="out/demo", help="output folder")
    t = dsub.add_parser("ticks", help="physical instructions through the tick link")
    t.add_argument("--platform", choices=["nv", "ion"], default="nv")
    t.add_argument("--seed", type=int, default=1)
    d = dsub.add_parser("dqc", help="delegated quantum computation (client/server)")
    d.add_argument("--k", type=int, default=1200, help="circuits per (alpha, theta) setting")
    d.add_argument("--out", default="out/dqc")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--workers", type=int, default=1, help="settings run side by side in this many "
                   "OS processes (each setting is already three: the QNPUs and one CNPU per node)")
    d.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="latency filter: keep circuits whose server qubit waited at most this long")
    lg = dsub.add_parser("lgt", help="local gate tomography")
    lg.add_argument("--k", type=int, default=1000, help="shots per basis")
    lg.add_argument("--out", default="out/lgt")
    lg.add_argument("--seed", type=int, default=1)
    mt = dsub.add_parser("multitask", help="N DQC + N LGT programs, multitasking on/off")
    mt.add_argument("--n", default="1..5", help="N or a range such as 1..5")
    mt.add_argument("--out", default="out/multitask")
    mt.add_argument("--seed", type=int, default=1)

    wf = sub.add_parser("waveforms", help="NV pulse library")
    wsub = wf.add_subparsers(dest="action", required=True)
    b = wsub.add_parser("build", help="build the waveform table, command table and SeqC program")
    b.add_argument("--platform", choices=["nv"], default="nv")
    b.add_argument("--calibration", default=None, help="calibration YAML (default: shipped)")
    b.add_argument("--out", required=True)

    sq = sub.add_parser("sequences", help="trapped-ion TTL sequences")
    ssub = sq.add_subparsers(dest="action", required=True)
    b = ssub.add_parser("build", help="build the 7 ion TTL sequences")
    b.add_argument("--platform", choices=["ion"], default="ion")
    b.add_argument("--calibration", default=None, help="ion calibration YAML (default: shipped)")
    b.add_argument("--out", required=True)

    st = sub.add_parser("station", help="QCoDeS station")
    stsub = st.add_subparsers(dest="action", required=True)
    c = stsub.add_parser("check", help="load the station, connect and describe every instrument")
    c.add_argument("--config", default=None, help="station YAML (default: the built-in sim)")

    r = sub.add_parser("run", help="run a netqasm application directory on a simulated network")
    r.add_argument("app_dir")
    r.add_argument("--station", default=None)
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--trace", default=None, help="write the event trace as JSON lines")
    r.set_defaults(action="")

    cal = sub.add_parser("calibrate", help="calibration sequences on the station")
    csub = cal.add_subparsers(dest="action", required=True)
    for name in ("rabi", "ramsey", "dd", "ssro"):
        c = csub.add_parser(name)
        c.add_argument("--station", default=None)
        c.add_argument("--out", default=f"out/calibrate-{name}")
        c.add_argument("--seed", type=int, default=1)
        c.add_argument("--calibration", default=None,
                       help="input calibration YAML (default: OUT/calibration.yaml, else shipped)")
        c.add_argument("--noise-model", dest="noise_model", default=None,
                       help="noise-model YAML for the simulated station's physics")
        c.add_argument("--shots", type=int, default=None, help="shots per scan point")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    target = COMMANDS[(args.group, args.action)]
    module, func = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            print(f"qnodeos-hw: '{args.group} {args.action}' is not available in this build "
                  f"({module} missing)", file=sys.stderr)
            return 2
        raise
    return int(getattr(mod, func)(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
