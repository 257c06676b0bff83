"""Run a node's CNPU as its own OS process, against QNPUs reachable over TCP
(``python -m qnodeos_hw.cnpu.program --help``).

What runs: one role of a netqasm application directory (``--app-dir DIR --role R
[--inputs JSON]``), or one or more programs given as ``module:function`` mains
(``--programs JSON`` or ``--programs @FILE``: ``{"role": {"main": "module:function",
"inputs": {...}}, ...}``, imported once ``netqasm.sdk.external`` is ours; each program
runs in its own thread, as on the paper's CNPU). All roles must belong to one node: this process opens that
node's classical hub at the address the network directory (JSON,
:meth:`NetworkDirectory.to_json`) gives, so the node's QNPU may live in another
process or host. ``--trace FILE`` writes this CNPU's events (``cnpu_message_sent``,
``cnpu_done_received``, ``cnpu_socket_sent`` / ``_received``; ``wall_ns`` on the host's
monotonic clock, comparable across processes of one host) as JSON lines. Once the
programs are imported the process freezes its heap for the garbage collector (a full
collection of netqasm's and numpy's objects stalled every program thread for tens of
ms; in modelled time it also collects young objects every 20,000 allocations), switches threads every 0.5 ms, and lowers its priority by ``--nice``. Prints the
programs' return values as JSON (last line): the value itself with ``--role``, else
``{role: value}``; exit status 1 if any program failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

from .directory import NetworkDirectory
from .runtime import (AppDir, external_names, load_app_dir, make_external_module, program_random,
                      run_programs)
from .socket import ClassicalHub


def _load(args: argparse.Namespace) -> tuple[AppDir, dict[str, dict]]:
    if args.programs:
        spec = json.loads(_text(args.programs))
        if not isinstance(spec, dict) or not spec:
            raise SystemExit("--programs must be a non-empty JSON object role -> {main, inputs}")
        progs, inputs = {}, {}
        for role, p in spec.items():
            mod, _, fn = str(p.get("main", "")).partition(":")
            if not fn:
                raise SystemExit(f"--programs: role {role!r} needs main 'module:function'")
            progs[role] = getattr(importlib.import_module(mod), fn)
            inputs[role] = dict(p.get("inputs") or {})
        return AppDir(os.getcwd(), progs, {r: {} for r in progs}, {}), inputs
    if not args.role:
        raise SystemExit("--app-dir needs --role")
    app = load_app_dir(args.app_dir)
    if args.role not in app.programs:
        raise SystemExit(f"no program for role '{args.role}' in {args.app_dir}")
    one = AppDir(app.path, {args.role: app.programs[args.role]},
                 {args.role: app.inputs.get(args.role, {})}, app.roles)
    return one, {args.role: json.loads(args.inputs)}


def _text(value: str) -> str:
    """``value``, or the contents of file ``X`` for ``@X`` (inputs too long for a command
    line)."""
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as fp:
            return fp.read()
    return value


def _roles(args: argparse.Namespace) -> list[str]:
    return [args.role] if args.app_dir else list(json.loads(_text(args.programs)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--directory", required=True, help="network directory JSON file")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--app-dir", help="netqasm application directory (with --role)")
    src.add_argument("--programs", help="JSON: role -> {main: 'module:function', inputs: {}} "
                     "(or @FILE holding it)")
    ap.add_argument("--role", help="the role of --app-dir to run")
    ap.add_argument("--inputs", default="{}", help="JSON keyword inputs of --role's main()")
    ap.add_argument("--timeout", type=float, default=120.0, help="s")
    ap.add_argument("--trace", help="write this CNPU's trace events here (JSON lines)")
    ap.add_argument("--nice", type=int, default=0, help="lower this process' CPU priority "
                    "by this much (os.nice) once the programs are loaded")
    args = ap.parse_args(argv)
    with open(args.directory, encoding="utf-8") as fp:
        directory = NetworkDirectory.from_json(fp.read())
    nodes = {directory.node_of_role(r).name for r in _roles(args)}
    if len(nodes) != 1:
        raise SystemExit(f"one CNPU process serves one node; the roles are on {sorted(nodes)}")
    node = directory.node_of_role(_roles(args)[0])
    trace: Any = None
    if args.trace:
        from ..protocol.trace import Trace
        trace = Trace()
    clocks, clock_client = None, None
    if directory.modelled:  # modelled time: this CNPU's programs report to the shared clock
        from ..timebase import ClockClient, LatencyModel
        from .timing import CNPUClocks
        clock_client = ClockClient(tuple(directory.time["clock"]), directory.token)
        clocks = CNPUClocks(LatencyModel.from_dict(directory.time["latency"]), clock_client.send)
    hub = ClassicalHub(*node.classical, token=directory.token, clocks=clocks)
    try:
        from netqasm.runtime.settings import SIMULATOR_ENV, Simulator
        os.environ[SIMULATOR_ENV] = Simulator.DEBUG.value
        with external_names(make_external_module(directory, {node.name: hub}, args.timeout,
                                                 trace, clocks)):
            seed = directory.time.get("seed")
            rnd = program_random(seed) if seed is not None else None
            rng = rnd.__enter__() if rnd is not None else None
            app, inputs = _load(args)
            import gc
            gc.freeze()
            if directory.modelled:  # only CPU counts: collect young objects less often
                gc.set_threshold(20_000, 20, 20)
            sys.setswitchinterval(0.0005)
            if args.nice:
                os.nice(args.nice)
            outs = run_programs(app, inputs, args.timeout, clocks=clocks, rng=rng)
    finally:
        hub.close()
        if clock_client is not None:
            clock_client.close()
        if trace is not None:
            trace.save(args.trace)
    failed = [o for o in outs.values() if o.error]
    for o in failed:
        print(f"[{o.role}] {o.error}", file=sys.stderr)
    if args.app_dir:
        print(json.dumps(outs[args.role].result, default=str))
    else:
        print(json.dumps({r: o.result for r, o in outs.items()}, default=str))
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
