"""The ``qnodeos-hw`` command.

Each sub-command is implemented by a function ``run(args) -> int`` in the module
named in :data:`COMMANDS`; modules are imported only when their command runs.

Conventions (every sub-command): ``--version``; ``-v/--verbose`` (repeat for more),
``-q/--quiet`` and ``--debug`` (see :mod:`qnodeos_hw.logs`), before or after the
sub-command; help with defaults on every argument; any failure is one line on standard
error, ``qnodeos-hw <command>: <ErrorType>: <message>``, exit code 2 (the traceback
with ``--debug``). ``python -m qnodeos_hw`` is the same command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

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
    ("run", ""): "qnodeos_hw.networks.build:run_cli",
    ("calibrate", "rabi"): "qnodeos_hw.experiments.calibrations:run_cli",
    ("calibrate", "ramsey"): "qnodeos_hw.experiments.calibrations:run_cli",
    ("calibrate", "dd"): "qnodeos_hw.experiments.calibrations:run_cli",
    ("calibrate", "ssro"): "qnodeos_hw.experiments.calibrations:run_cli",
    ("trace", "export"): "qnodeos_hw.trace_export:run_cli",
    ("node", "serve"): "qnodeos_hw.runner.node_serve:run_cli",
    ("link", "serve"): "qnodeos_hw.runner.link_serve:run_cli",
}


class AppDirNotFoundError(FileNotFoundError):
    """``qnodeos-hw run APP_DIR``: the application directory does not exist."""


def version() -> str:
    """The installed distribution's version (the source tree's pyproject otherwise)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version
    try:
        return _version("qnodeos-hw")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "unknown"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown in every argument's help; "(default: None)" left out."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is argparse.SUPPRESS \
                or isinstance(action.default, bool):
            return action.help or ""
        return super()._get_help_string(action)


def _common(defaults: bool, p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """-v/-q/--debug (added to ``p``, or a new parent parser); on sub-commands with
    SUPPRESS defaults, so that they may stand before or after the sub-command."""
    p = p if p is not None else argparse.ArgumentParser(add_help=False)

    def d(value):
        return value if defaults else argparse.SUPPRESS
    p.add_argument("-v", "--verbose", action="count", default=d(0),
                   help="more output on stderr: instrument connections, dataset runs (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", default=d(False),
                   help="errors only; no progress bars")
    p.add_argument("--debug", action="store_true", default=d(False),
                   help="debug logging, and the full traceback of a failure")
    return p


def _name_choices(sub) -> None:
    """argparse names a missing sub-command by its metavar: list the sub-commands."""
    sub.metavar = "{" + ",".join(sub.choices) + "}"


TIME_HELP = ("time base: 'modelled' (classical latencies drawn from the seeded latency model, "
             "node clocks under the shared clock; same seed, same bytes) or 'host' (this "
             "machine's real latencies count in virtual time); default: the configuration's, "
             "else modelled")


def _time_arg(p) -> None:
    p.add_argument("--time", choices=["modelled", "host"], default=None, help=TIME_HELP)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qnodeos-hw", description=__doc__.splitlines()[0],
                                formatter_class=_Formatter, parents=[_common(defaults=True)])
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="group", required=True)

    demo = sub.add_parser("demo", help="run a demonstration on the simulated lab")
    dsub = demo.add_subparsers(dest="action", required=True)
    m = dsub.add_parser("main", help="the main job (what ./run demo runs)")
    m.add_argument("--out", default="out/demo", help="output folder")
    m.add_argument("--db", default=None, help="QCoDeS database file for all three datasets "
                   "(default: one per demonstration under OUT)")
    _time_arg(m)
    t = dsub.add_parser("ticks", help="physical instructions through the tick link")
    t.add_argument("--platform", choices=["nv", "ion"], default="nv", help="simulated QDevice")
    t.add_argument("--seed", type=int, default=1, help="random seed of the physics")
    d = dsub.add_parser("dqc", help="delegated quantum computation (client/server)")
    d.add_argument("--k", type=int, default=1200, help="circuits per (alpha, theta) setting")
    _time_arg(d)
    d.add_argument("--out", default="out/dqc", help="output folder (JSON, PNG, dataset)")
    d.add_argument("--db", default=None, help="QCoDeS database file (default: OUT/dqc.db)")
    d.add_argument("--seed", type=int, default=1, help="random seed")
    d.add_argument("--workers", type=int, default=None, help="settings run side by side in this many "
                   "OS processes (each setting is already three: the QNPUs and one CNPU per node; "
                   "default: 1.5 per core in modelled time, 1 in host time)")
    d.add_argument("--max-wait-ms", type=float, default=None,
                   help="latency filter: keep circuits whose server qubit waited at most this "
                        "long (default: derived from the noise model's F_ent and T_coh, the "
                        "longest wait with F >= 2/3 in the depolarising model)")
    d.add_argument("--extra-wait-ms", default=None, metavar="LIST",
                   help="instead: fidelity against injected extra server wait, e.g. 0,3,6,9,12,15 "
                        "or 0..15:3 (modelled time; writes dqc_wait.json and dqc_wait.png)")
    lg = dsub.add_parser("lgt", help="local gate tomography")
    lg.add_argument("--k", type=int, default=1000, help="shots per basis")
    _time_arg(lg)
    lg.add_argument("--out", default="out/lgt", help="output folder (JSON, PNG, dataset)")
    lg.add_argument("--db", default=None, help="QCoDeS database file (default: OUT/lgt.db)")
    lg.add_argument("--seed", type=int, default=1, help="random seed")
    mt = dsub.add_parser("multitask", help="N DQC + N LGT programs, multitasking on/off")
    mt.add_argument("--n", default="1..5", help="N or a range such as 1..5")
    _time_arg(mt)
    mt.add_argument("--out", default="out/multitask", help="output folder (JSON, PNG, dataset)")
    mt.add_argument("--db", default=None, help="QCoDeS database file (default: OUT/multitask.db)")
    mt.add_argument("--seed", type=int, default=1, help="random seed")
    mt.add_argument("--repeats", type=int, default=3,
                    help="seeds per (N, on/off): error bars are the sd over them")

    wf = sub.add_parser("waveforms", help="NV pulse library")
    wsub = wf.add_subparsers(dest="action", required=True)
    b = wsub.add_parser("build", help="build the waveform table, command table and SeqC program")
    b.add_argument("--platform", choices=["nv"], default="nv", help="platform")
    b.add_argument("--calibration", default=None, help="calibration YAML (default: shipped)")
    b.add_argument("--out", required=True, help="output folder")

    sq = sub.add_parser("sequences", help="trapped-ion TTL sequences")
    ssub = sq.add_subparsers(dest="action", required=True)
    b = ssub.add_parser("build", help="build the 7 ion TTL sequences")
    b.add_argument("--platform", choices=["ion"], default="ion", help="platform")
    b.add_argument("--calibration", default=None, help="ion calibration YAML (default: shipped)")
    b.add_argument("--out", required=True, help="output folder")

    st = sub.add_parser("station", help="QCoDeS station")
    stsub = st.add_subparsers(dest="action", required=True)
    c = stsub.add_parser("check", help="load the station, connect and describe every instrument")
    c.add_argument("--config", default=None, help="station YAML (default: the built-in sim)")

    r = sub.add_parser("run", help="run a netqasm application directory on a network")
    r.add_argument("app_dir", help="netqasm application directory (app_<role>.py files)")
    r.add_argument("--network", default=None, metavar="NAME_OR_FILE",
                   help="network YAML, or a shipped one (ideal_2node, nv_2node, nv_3node); "
                        "default: an ideal 5-qubit node per app node. When the app's nodes "
                        "already serve at the file's fixed addresses (node serve --network, "
                        "started by hand) run starts only the CNPUs, on them")
    r.add_argument("--station", default=None,
                   help="deprecated: an old network-model YAML (platform, num_qubits, bin_ns, "
                        "...), run with a warning; a QCoDeS station YAML belongs to a node of "
                        "a network file (nodes.NAME.station)")
    r.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    r.add_argument("--trace", default=None, help="write the event trace as JSON lines")
    _time_arg(r)
    r.add_argument("--processes", choices=["auto", "single", "per-node"], default="auto",
                   help="per-node: every node, link and CNPU its own OS process (simulated NV "
                        "networks); single: everything in this process (tests, debugging; "
                        "the same results in modelled time; never attaches to nodes started "
                        "by hand); auto: per-node where the network allows it, else single")
    r.set_defaults(action="")

    from .runner import link_serve, node_serve
    nd = sub.add_parser("node", help="one node as its own process")
    nsub = nd.add_subparsers(dest="action", required=True)
    node_serve.add_arguments(nsub.add_parser(
        "serve", help="serve one node (QNPU, QDriver, instruments) of a network"))
    ln = sub.add_parser("link", help="one simulated heralding station as its own process")
    lsub = ln.add_subparsers(dest="action", required=True)
    link_serve.add_arguments(lsub.add_parser(
        "serve", help="serve one link's heralding station (joint states of its pairs)"))

    cal = sub.add_parser("calibrate", help="calibration sequences on the station")
    csub = cal.add_subparsers(dest="action", required=True)
    for name in ("rabi", "ramsey", "dd", "ssro"):
        c = csub.add_parser(name, help=f"{name} calibration")
        c.add_argument("--station", default=None,
                       help="QCoDeS station YAML (default: the built-in simulated station)")
        c.add_argument("--out", default=f"out/calibrate-{name}",
                       help="output folder (versions, PNG, JSON)")
        c.add_argument("--db", default=None,
                       help="QCoDeS database file (default: OUT/calibrations.db)")
        c.add_argument("--seed", type=int, default=1, help="random seed of the simulated physics")
        c.add_argument("--calibration", default=None,
                       help="input calibration YAML (default: OUT/calibration.yaml, else shipped)")
        c.add_argument("--noise-model", dest="noise_model", default=None,
                       help="noise-model YAML for the simulated station's physics")
        c.add_argument("--shots", type=int, default=None, help="shots per scan point")
        c.add_argument("--force", action="store_true",
                       help="write a new version even from a weak fit (parameter at the scan "
                            "edge, or relative error above the bound)")

    tr = sub.add_parser("trace", help="event traces (qnodeos-hw run --trace FILE.jsonl)")
    tsub = tr.add_subparsers(dest="action", required=True)
    te = tsub.add_parser("export", help="JSON-lines trace -> Chrome/Perfetto trace-event JSON")
    te.add_argument("trace_file", help="JSON-lines trace written by --trace")
    te.add_argument("--out", default=None, help="output JSON (default: TRACE with .json suffix)")

    _conventions(p, top=True)
    return p


def _conventions(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """Every (sub-)command: defaults in its help, -v/-q/--debug, and a missing
    sub-command named by the list of sub-commands."""
    parser.formatter_class = _Formatter
    if not top:
        _common(defaults=False, p=parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            _name_choices(action)
            for child in action.choices.values():
                _conventions(child)


def main(argv: list[str] | None = None) -> int:
    from . import logs

    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logs.configure(-1 if getattr(args, "quiet", False) else int(getattr(args, "verbose", 0)),
                   debug)
    command = " ".join(x for x in (args.group, args.action) if x)
    target = COMMANDS[(args.group, args.action)]
    module, func = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            print(f"qnodeos-hw: '{command}' is not available in this build "
                  f"({module} missing)", file=sys.stderr)
            return 2
        raise
    try:
        if args.group == "run" and not Path(args.app_dir).is_dir():
            raise AppDirNotFoundError(f"application directory {args.app_dir!r} does not exist")
        return int(getattr(mod, func)(args) or 0)
    except KeyboardInterrupt:
        print(f"qnodeos-hw {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        log.debug("%s failed", command, exc_info=True)
        print(f"qnodeos-hw {command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
