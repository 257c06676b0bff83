"""``qnodeos-hw link serve (--session FILE | --network FILE --link A-B)``: the simulated
heralding station of one link as its own OS process. It pairs the two nodes' attempt windows by time bin and holds
the joint state of a pair while both halves live (in the lab, the real heralding
station and its DIO lines replace it).

Like ``node serve`` it prints ``{"ready": {"link", "address": [host, port]}}``, serves
until ``{"stop": true}`` or the end of its input, then prints ``{"done": {...}}``; a link
that cannot start prints one line ``link serve: <ErrorType>: <message>`` on stderr and
exits with status 2.

``--network FILE --link A-B`` (a link started by hand, :mod:`.hand`): listens at the
link's ``address`` in the file, accepts the network's nodes by the physics secret derived
from ``$QNODEOS_HW_NETWORK_KEY``, host time; serves until ``{"stop": true}``, SIGTERM or
SIGINT (the end of input does not stop it).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .session import LinkSession, SessionError, read_session


def start_link(session: LinkSession) -> Any:
    """The running link server of ``session`` (``.address``, ``.stats()``, ``.close()``)."""
    b = dict(session.build)
    platform = b.pop("platform", None)
    if platform != "nv":
        raise SessionError(f"link {session.link}: no simulated heralding station for platform "
                           f"{platform!r}")
    from ..simulators.physics.link_service import serve_link
    return serve_link(session.nodes, tuple(session.network_nodes), host=session.host,
                      port=session.port, secret=session.physics_key, **b)


def serve(session: LinkSession, stdin: Any = None, stdout: Any = None,
          by_hand: bool = False) -> int:
    """Serve the link of ``session`` until told to stop (``by_hand``: the end of input
    does not stop it; SIGTERM / SIGINT do)."""
    from .node_serve import commands, stop_on_sigterm
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    if by_hand:
        stop_on_sigterm()
    server = start_link(session)
    print(json.dumps({"ready": {"link": session.link, "address": list(server.address)}}),
          file=stdout, flush=True)
    try:
        for line in commands(stdin, by_hand):
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("stop"):
                break
    except KeyboardInterrupt:  # SIGINT / SIGTERM of a link started by hand
        pass
    finally:
        stats = getattr(server, "stats", lambda: {})()
        server.close()
    print(json.dumps({"done": {"link": session.link, **stats}}), file=stdout, flush=True)
    return 0


def run_cli(args: argparse.Namespace) -> int:
    """``qnodeos-hw link serve (--session FILE | --network FILE --link A-B)``."""
    if args.session:
        session = read_session(args.session)
        if not isinstance(session, LinkSession):
            raise SessionError(f"{args.session}: a node session; use 'qnodeos-hw node serve'")
        return serve(session)
    if args.network and args.link:
        from .hand import link_session
        return serve(link_session(args.network, args.link, args.seed), by_hand=True)
    raise SessionError("link serve needs --session FILE, or --network FILE and --link A-B")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--session", default=None, help="session JSON written by the runner")
    ap.add_argument("--network", default=None, help="network YAML (a link started by hand)")
    ap.add_argument("--link", default=None, help="with --network: the quantum link to serve "
                    "(its name, or A-B of its nodes)")
    ap.add_argument("--seed", type=int, default=None, help="with --network: random seed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="qnodeos-hw link serve", description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        return run_cli(args)
    except Exception as exc:  # one line, no traceback
        print(f"link serve: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
