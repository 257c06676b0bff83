"""``qnodeos-hw node serve --session FILE``: one node -- its QDriver and instruments
(simulated or real), QNPU and end-node API server -- as one OS process.

Life of the process (one JSON object per line on stdout / stdin, so that the runner
that started it can follow it; nothing read is executed):

1. build the node from the session (:mod:`.session`): instruments, QDriver, QNPU with
   the shared clock over TCP (:class:`~qnodeos_hw.timebase.RemoteCoordinator`, modelled
   time) and the QNPU peer protocol over TCP
   (:class:`~qnodeos_hw.qnpu.peer_tcp.TcpPeerBus`, listening on loopback unless the
   session says otherwise, accepting only the network's nodes, each by its pair secret);
2. print ``{"ready": {"node", "qnpu": [host, port], "peer": [host, port]}}``;
3. read ``{"peers": {node: [host, port]}}`` (where the other nodes listen) and serve;
4. on ``{"quiesce": true}`` (the run is over, every node is told before any stops) answer
   ``{"quiet": node}``: from then on a peer closing its connection is no fault;
5. on ``{"stop": true}`` or end of input: stop, write the trace (session
   ``trace_file``), print ``{"done": {"node", "errors": [...], "ordered_runs": n}}``.

``node serve --network FILE --node NAME`` (a node started by hand, :mod:`.hand`): the
session comes from the network file -- the node listens at its ``address`` (end-node API,
programs must prove the node's API key) and ``peer_address``, reaches its peers at
theirs and its links' heralding stations at the links' ``address`` -- with keys derived
from ``$QNODEOS_HW_NETWORK_KEY``; it needs no ``{"peers"}`` line and serves until
``{"stop": true}``, SIGTERM or SIGINT (the end of input does not stop it).

A node that cannot be built (e.g. a lab instrument that does not answer) prints one
line ``node serve: <ErrorType>: <message>`` on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import numpy as np

from .session import NodeSession, SessionError, read_session

log = logging.getLogger(__name__)


class NodeBuildError(RuntimeError):
    """A session asks for a node this process cannot build (names the platform)."""


def build_qdriver(session: NodeSession) -> Any:
    """The node's QDriver side: an object with ``qdriver``, ``clock``, ``progress`` and
    ``close()`` (:class:`qnodeos_hw.nodes.SimulatedNode`)."""
    b = dict(session.build)
    platform = b.pop("platform", None)
    if platform == "nv":
        from ..nodes import simulated_nv_node_distributed
        links = {peer: (str(v["address"][0]), int(v["address"][1]))
                 for peer, v in session.links.items()}
        return simulated_nv_node_distributed(
            session.node, tuple(session.nodes), links=links, secret=session.physics_key,
            host=session.host, **b)
    if platform == "nv-station":  # over the drivers of the node's QCoDeS station YAML
        from ..networks.build import StationNVNetworkFactory
        bin_ns = b.pop("bin_ns", None)
        factory = StationNVNetworkFactory(**b)
        factory.set_bin_ns(bin_ns)
        return factory.make_nodes([session.node])[session.node]
    raise NodeBuildError(f"node '{session.node}': platform {platform!r} cannot run as its own "
                         "process (the per-node layout builds simulated NV nodes; ideal nodes "
                         "share one in-process quantum state: use --processes single)")


class NodeProcess:
    """The running node of a session (see the module docstring); :meth:`close` stops it."""

    def __init__(self, session: NodeSession) -> None:
        from ..qnpu.peer_tcp import TcpPeerBus
        from ..qnpu.qnpu import QNPU, QNPUConfig
        from ..qnpu.server import QNPUServer
        from ..protocol.trace import Trace
        from ..timebase import LatencyModel, RemoteCoordinator

        self.session = s = session
        st = s.settings
        modelled = st["time_mode"] == "modelled"
        self.trace = Trace(instructions=bool(st.get("trace_instructions", True)), ordered=modelled)
        self.built = build_qdriver(s)
        self.coordinator: RemoteCoordinator | None = None
        self.peers: TcpPeerBus | None = None
        self.server: QNPUServer | None = None
        try:
            latency = LatencyModel.from_dict(st["latency"]) if st.get("latency") else None
            if modelled:
                if s.clock is None:
                    raise SessionError(f"node '{s.node}': modelled time needs the shared clock")
                self.coordinator = RemoteCoordinator(s.clock, s.token)
            keys = s.peer_keys

            def key(a: str, b: str) -> bytes:
                k = keys.get("|".join(sorted((a, b))))
                if k is None:
                    raise KeyError(f"no peer secret for {a}-{b}")
                return k.encode()
            self.peers = TcpPeerBus({n: ((s.host, s.peer_port) if n == s.node else
                                         tuple(s.peers.get(n, (s.host, 0))))  # type: ignore[misc]
                                     for n in s.nodes}, key)
            wall = float(st.get("idle_wall_scale", 0.0))
            if not modelled and wall == 0:
                wall = 1.0
            cfg = QNPUConfig(bin_ns=int(st["bin_ns"]),
                             links=tuple(frozenset(link) for link in st.get("links", [])),
                             attempts_per_bin=int(st["attempts_per_bin"]),
                             idle_wall_scale=0.0 if modelled else wall,
                             time_mode="modelled" if modelled else "free", latency=latency,
                             request_timeout_ns=st.get("request_timeout_ns"))
            # the QNPU's generator: the one the single-process network gives this node
            rng = np.random.default_rng(st.get("seed"))
            seeds = {n: rng.integers(2**63) for n in s.nodes}
            ids = {n: i for i, n in enumerate(s.nodes)}
            self.qnpu = QNPU(s.node, self.built.qdriver, ids, None, cfg, self.trace,
                             np.random.default_rng(seeds[s.node]), clock=self.built.clock,
                             peers=self.peers, coordinator=self.coordinator,
                             progress=getattr(self.built, "progress", None))
            if s.api_key:  # programs prove the key (runner-started: its own; by hand: derived)
                from .api_server import AuthenticatedQNPUServer
                self.server = AuthenticatedQNPUServer(self.qnpu, s.api_key.encode(), s.host,
                                                      s.qnpu_port)
            else:
                self.server = QNPUServer(self.qnpu, s.host, s.qnpu_port)
        except BaseException:
            self._close_parts()
            raise

    def ready(self) -> dict[str, Any]:
        assert self.server is not None and self.peers is not None
        return {"node": self.session.node, "qnpu": list(self.server.address),
                "peer": list(self.peers.addresses[self.session.node])}

    def start(self) -> "NodeProcess":
        self.qnpu.start()
        assert self.server is not None
        self.server.start()
        return self

    def set_peers(self, addresses: dict[str, Any]) -> None:
        assert self.peers is not None
        for n, a in addresses.items():
            if n != self.session.node and n in self.session.nodes:
                self.peers.addresses[n] = (str(a[0]), int(a[1]))

    def close(self) -> dict[str, Any]:
        self.qnpu.stop()
        self._close_parts()
        if self.session.trace_file:
            self.trace.save(self.session.trace_file)
        return {"node": self.session.node, "errors": list(self.qnpu.errors),
                "ordered_runs": self.qnpu.ordered_runs}

    def _close_parts(self) -> None:
        for part in (self.server, self.peers, self.coordinator):
            if part is not None:
                try:
                    part.close()
                except OSError:
                    pass
        self.built.close()


def serve(session: NodeSession, stdin: Any = None, stdout: Any = None,
          by_hand: bool = False) -> int:
    """Run the node of ``session`` until told to stop (see the module docstring).
    ``by_hand`` (``--network``): the end of input does not stop it; SIGTERM / SIGINT do."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    if by_hand:
        stop_on_sigterm()
    node = NodeProcess(session).start()
    print(json.dumps({"ready": node.ready()}), file=stdout, flush=True)
    try:
        for line in commands(stdin, by_hand):
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("node serve: ignored a line that is no JSON")
                continue
            if not isinstance(msg, dict):
                continue
            if isinstance(msg.get("peers"), dict):
                node.set_peers(msg["peers"])
            if msg.get("quiesce"):  # the run is over: peers closing is no fault any more
                assert node.peers is not None
                node.peers.quiesce()
                print(json.dumps({"quiet": node.session.node}), file=stdout, flush=True)
            if msg.get("stop"):
                break
    except KeyboardInterrupt:  # SIGINT / SIGTERM of a node started by hand
        pass
    finally:
        done = node.close()
    print(json.dumps({"done": done}), file=stdout, flush=True)
    return 0


def stop_on_sigterm() -> None:
    """SIGTERM stops a process started by hand as SIGINT does (KeyboardInterrupt)."""
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, stop)


def commands(stdin: Any, by_hand: bool) -> Any:
    """The lines of ``stdin``; ``by_hand``: then, when it ends (a terminal closed, or
    ``< /dev/null``), nothing more until SIGTERM or SIGINT (KeyboardInterrupt)."""
    yield from stdin
    if by_hand:
        import signal
        while True:
            signal.pause()


#: the network's secret of a network started by hand (:mod:`.hand`)
KEY_ENV = "QNODEOS_HW_NETWORK_KEY"


def session_from_network(path: str, node: str, seed: int | None = None) -> NodeSession:
    """The session of ``node`` started by hand from a network file
    (:func:`qnodeos_hw.runner.hand.node_session`)."""
    from .hand import node_session
    return node_session(path, node, seed)


def run_cli(args: argparse.Namespace) -> int:
    """``qnodeos-hw node serve (--session FILE | --network FILE --node NAME)``."""
    if args.session:
        session = read_session(args.session)
        if not isinstance(session, NodeSession):
            raise SessionError(f"{args.session}: a link session; use 'qnodeos-hw link serve'")
    elif args.network and args.node:
        session = session_from_network(args.network, args.node, getattr(args, "seed", None))
        return serve(session, by_hand=True)
    else:
        raise SessionError("node serve needs --session FILE, or --network FILE and --node NAME")
    return serve(session)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--session", default=None, help="session JSON written by the runner")
    ap.add_argument("--network", default=None, help="network YAML (a node started by hand)")
    ap.add_argument("--node", default=None, help="with --network: the node to serve")
    ap.add_argument("--seed", type=int, default=None, help="with --network: random seed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="qnodeos-hw node serve", description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        return run_cli(args)
    except Exception as exc:  # one line, no traceback: what failed and why
        print(f"node serve: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
