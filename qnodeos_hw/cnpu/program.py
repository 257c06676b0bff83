"""Run one role of a netqasm application directory as its own CNPU process, against
QNPUs reachable over TCP (``python -m qnodeos_hw.cnpu.program --help``).

The network's directory (JSON, :meth:`NetworkDirectory.to_json`) says where every
QNPU and classical hub listens; this process opens the classical hub of its node at
the address the directory gives, so the node's QNPU may live in another process or
host. Prints the program's return value as JSON (last line).
"""

from __future__ import annotations

import argparse
import json
import sys

from .directory import NetworkDirectory
from .runtime import AppDir, external_names, load_app_dir, make_external_module, run_programs
from .socket import ClassicalHub


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--directory", required=True, help="network directory JSON file")
    ap.add_argument("--app-dir", required=True)
    ap.add_argument("--role", required=True)
    ap.add_argument("--inputs", default="{}", help="JSON object of keyword inputs for main()")
    ap.add_argument("--timeout", type=float, default=120.0, help="s")
    args = ap.parse_args(argv)
    with open(args.directory, encoding="utf-8") as fp:
        directory = NetworkDirectory.from_json(fp.read())
    node = directory.node_of_role(args.role)
    hub = ClassicalHub(*node.classical)
    try:
        import os

        from netqasm.runtime.settings import SIMULATOR_ENV, Simulator
        os.environ[SIMULATOR_ENV] = Simulator.DEBUG.value
        with external_names(make_external_module(directory, {node.name: hub}, args.timeout)):
            app = load_app_dir(args.app_dir)
            if args.role not in app.programs:
                raise SystemExit(f"no program for role '{args.role}' in {args.app_dir}")
            one = AppDir(app.path, {args.role: app.programs[args.role]},
                         {args.role: app.inputs.get(args.role, {})}, app.roles)
            out = run_programs(one, {args.role: json.loads(args.inputs)}, args.timeout)[args.role]
    finally:
        hub.close()
    if out.error:
        print(out.error, file=sys.stderr)
        return 1
    print(json.dumps(out.result, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
