"""A network started by hand: ``node serve --network``, ``link serve --network`` and
``run`` attaching to nodes that already serve (README "Start a network by hand").

Every process of such a network is found at the addresses of the network file (fixed
ports: :func:`~qnodeos_hw.networks.hand_started_addresses`) and runs in host time (the
shared clock of modelled time belongs to a runner that starts every node itself). All
secrets derive from the one network secret in ``$QNODEOS_HW_NETWORK_KEY``, the same on
every host (:func:`~qnodeos_hw.protocol.api_auth.derive_key`, one label each):

* ``peer|A|B`` -- the QNPU peer protocol secret of nodes A and B;
* ``physics`` -- the physics wire between node and link processes;
* ``qnpu-api|N`` -- what node N's end-node API asks every program connection to prove
  (``run`` gives each CNPU process only its own node's key).

``run`` (:func:`attach_status`) probes the app's nodes at their addresses: all serve ->
:func:`run_attached` starts only the CNPU processes, pointed at those QNPUs, and stops
only them (the nodes go on serving); none -> it starts its own network as before; some ->
:class:`PartlyServingNetworkError` naming which serve and which do not.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..protocol import api_auth
from ..protocol.api_auth import ApiAuthError, CredentialRefusedError, api_key, derive_key
from ..protocol.trace import Trace
from .session import LinkSession, NodeSession, SessionError, settings_to_dict

#: the network's secret for processes started by hand: every key of the network is
#: derived from it, so every node, link and ``run`` must be given the same one
KEY_ENV = "QNODEOS_HW_NETWORK_KEY"
#: how long ``run`` waits for a node's address to answer when it probes it (s)
PROBE_TIMEOUT_S = 2.0


class NetworkSecretError(SessionError):
    """``$QNODEOS_HW_NETWORK_KEY`` is not set, or is not the secret the nodes serve with."""


class PartlyServingNetworkError(RuntimeError):
    """``run``: some of the app's nodes serve at their addresses and others do not."""


class AttachTimeModeError(ValueError):
    """``run`` asked for modelled time against nodes started by hand (host time only)."""


class AttachError(RuntimeError):
    """``run`` cannot attach to the nodes serving at their addresses (names why)."""


def network_secret(required_by: str) -> str:
    """The network's secret (``$QNODEOS_HW_NETWORK_KEY``), NetworkSecretError if unset."""
    master = os.environ.get(KEY_ENV, "")
    if not master:
        raise NetworkSecretError(f"set ${KEY_ENV} to the network's secret (the same on every "
                                 f"node, link and run): {required_by}")
    return master


def peer_key(master: str, a: str, b: str) -> str:
    return derive_key(master, "peer", *sorted((a, b)))


def physics_key(master: str) -> str:
    return derive_key(master, "physics")


def _plan(config: Any, path: str, seed: int | None, what: str) -> Any:
    """The plan of a process started by hand from ``config`` (host time, fixed ports)."""
    from ..networks import hand_started_addresses
    from ..networks.build import plan_network

    plan = plan_network(config, list(config.nodes), seed=seed, hand_started=True)
    if plan.settings.time_mode != "host":
        raise SessionError(f"{config.source}: time.mode is {plan.settings.time_mode!r}; a {what} started "
                           "by hand runs in host time (in modelled time 'qnodeos-hw run' starts "
                           "every node and link under its shared clock)")
    hand_started_addresses(config)
    return plan


def node_session(path: str, node: str, seed: int | None = None) -> NodeSession:
    """The session of ``node`` started by hand from the network file ``path``: its build,
    addresses, peers' and links' addresses and schedule from the file, host time, keys
    derived from the network's secret (module docstring)."""
    from ..networks import load_network

    config = load_network(path)
    if node not in config.nodes:
        raise SessionError(f"{path}: no node '{node}' (nodes: {', '.join(config.nodes)})")
    master = network_secret("peers are accepted only with the secret of their pair")
    plan = _plan(config, path, seed, "node")
    spec_of = getattr(plan.factory, "build_spec", None)
    if spec_of is None:
        from .node_serve import NodeBuildError
        raise NodeBuildError(f"{path}: node '{node}': platform {config.nodes[node].platform!r} "
                             "cannot run as its own process")
    names = list(config.nodes)
    st = plan.settings
    build = dict(spec_of())
    build["bin_ns"] = st.bin_ns
    me = config.nodes[node]
    peers = {n: [c.peer_address.host, c.peer_address.port]  # type: ignore[union-attr]
             for n, c in config.nodes.items() if n != node}
    links = {}
    if build.get("platform") == "nv":  # simulated: a link serve process per quantum link
        for q in config.quantum_links.values():
            if node in q.nodes and q.address is not None:
                other = q.nodes[1] if q.nodes[0] == node else q.nodes[0]
                links[other] = {"address": [q.address.host, q.address.port]}
    assert me.peer_address is not None
    return NodeSession(node=node, nodes=tuple(names), host=me.address.host,
                       qnpu_port=me.address.port, peer_port=me.peer_address.port, clock=None,
                       token="", peer_keys={"|".join(sorted((node, o))): peer_key(master, node, o)
                                            for o in names if o != node},
                       settings=settings_to_dict(st), build=build, links=links,
                       physics_key=physics_key(master), peers=peers,
                       api_key=api_key(master, node))


def link_session(path: str, link: str, seed: int | None = None) -> LinkSession:
    """The session of the quantum link ``link`` (its name in the file, or ``A-B`` / ``B-A``
    of its nodes) started by hand: the simulated heralding station at the link's
    ``address``, host time, the physics secret derived from the network's."""
    from ..networks import load_network

    config = load_network(path)
    q = config.quantum_links.get(link)
    if q is None:
        q = next((x for x in config.quantum_links.values()
                  if sorted(x.nodes) == sorted(link.split("-"))), None)
    if q is None:
        raise SessionError(f"{path}: no quantum link '{link}' (quantum links: "
                           f"{', '.join(config.quantum_links) or 'none'})")
    if q.heralding != "nv" or any(config.nodes[n].station is not None for n in q.nodes):
        raise SessionError(f"{path}: quantum link '{q.name}': only a simulated NV link (nv "
                           "heralding between nodes on the built-in simulated station) has a "
                           "link process; a lab link's heralding station is hardware")
    master = network_secret("nodes are accepted only with the network's physics secret")
    plan = _plan(config, path, seed, "link")
    build = dict(plan.factory.build_spec())
    build["bin_ns"] = plan.settings.bin_ns
    assert q.address is not None
    return LinkSession(link=q.name, nodes=q.nodes, network_nodes=tuple(config.nodes),
                       host=q.address.host, port=q.address.port, build=build,
                       physics_key=physics_key(master))


# ------------------------------------------------------------------------ run attaches
def probe(node: str, address: tuple[str, int], master: str | None,
          timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``node`` serves at ``address`` (True: it proved the network's credential,
    and this run proved it; False: nothing listens). Raises NetworkSecretError (a node
    serves but the secret is unset or not the node's) or AttachError (something else
    answers there)."""
    where = f"{address[0]}:{address[1]}"
    try:
        sock = socket.create_connection(address, timeout=timeout_s)
    except OSError as exc:
        if isinstance(exc, (ConnectionRefusedError, socket.timeout)) or \
                exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
            return False
        raise AttachError(f"node '{node}' at {where}: {exc}") from None
    try:
        if not master:
            sock.settimeout(timeout_s)
            api_auth.read_challenge(sock, node)
            raise NetworkSecretError(f"node '{node}' serves at {where}: set ${KEY_ENV} to the "
                                     "network's secret to run on it")
        api_auth.answer(sock, api_key(master, node).encode(), node, timeout_s)
        return True
    except CredentialRefusedError as exc:
        raise NetworkSecretError(f"node '{node}' at {where} refused this run: ${KEY_ENV} is not "
                                 f"the secret the node serves with ({exc})") from None
    except ApiAuthError as exc:
        raise AttachError(f"something listens at node '{node}''s address {where} but it is not "
                          f"that node started by hand ({exc})") from None
    except OSError as exc:
        raise AttachError(f"node '{node}' at {where}: {exc}") from None
    finally:
        sock.close()


def attach_status(config: Any, app_nodes: list[str]) -> list[str] | None:
    """The app's nodes if every one serves at its address (``run`` then attaches), None if
    none does (``run`` starts its own network). PartlyServingNetworkError if only some
    do. Nodes without a fixed port cannot be serving (no probe)."""
    from ..networks.build import bind_nodes

    binding = bind_nodes(config, app_nodes)
    nodes = [n for n in config.nodes if n in binding]
    fixed = [n for n in nodes if config.nodes[n].address.port != 0]
    if not fixed:
        return None
    master = os.environ.get(KEY_ENV, "")
    serving = [n for n in fixed if probe(n, (config.nodes[n].address.host,
                                             config.nodes[n].address.port), master)]
    if not serving:
        return None
    missing = [n for n in nodes if n not in serving]
    if missing:
        def at(n: str) -> str:
            return f"{n} ({config.nodes[n].address})"
        raise PartlyServingNetworkError(
            f"{config.source}: node(s) {', '.join(map(at, serving))} serve at their addresses "
            f"but {', '.join(map(at, missing))} do(es) not: start "
            f"'qnodeos-hw node serve --network FILE --node NAME' for "
            f"{', '.join(missing)}, or stop the others to let run start its own network")
    renamed = {k: v for k, v in binding.items() if k != v}
    if renamed:
        raise AttachError(f"{config.source}: the app's nodes ({', '.join(sorted(app_nodes))}) are "
                          "not the network's node names: nodes serving by hand keep their names")
    return serving


@dataclass
class AttachedNetwork:
    """What an attached run leaves behind (a RunResult's ``network``): the CNPUs'
    directory and trace; the nodes it ran on, still serving."""

    directory: Any
    trace: Trace
    nodes: dict[str, tuple[str, int]] = field(default_factory=dict)

    def program_gone(self, role: str) -> None:  # host time: no shared clock to tell
        pass

    def errors(self) -> list[str]:  # the nodes' errors stay in the node processes
        return []


def run_attached(app_dir: str, config: Any, plan: Any, timeout_s: float = 300.0,
                 cnpu_nice: int = 10) -> Any:
    """Run the application directory ``app_dir`` on the nodes of ``config`` that serve at
    their addresses: one CNPU process per node of the app (this host; their classical
    hubs on loopback), each given its own node's end-node API key only; stops them when
    the programs end and leaves the nodes serving. A RunResult (CNPU trace only)."""
    from netqasm.runtime import env

    from ..cnpu.directory import NetworkDirectory, NodeEntry
    from .network import RunResult, _free_port, run_cnpu_processes

    if plan.settings.time_mode != "host":
        raise AttachTimeModeError(
            f"{config.source}: the nodes serving by hand run in host time, but this run asks "
            f"for {plan.settings.time_mode!r} time (time.mode or --time): modelled time needs "
            "the shared clock of a network that run starts itself (stop the nodes), or run "
            "with --time host")
    master = network_secret("run attaches to nodes started by hand")
    app = os.path.abspath(app_dir)
    roles = sorted(env.load_app_files(app))
    roles_cfg = env.load_roles_config(os.path.join(app, "roles.yaml")) or {}
    node_of = {r: roles_cfg.get(r, r) for r in roles}
    ids = {n: i for i, n in enumerate(config.nodes)}
    flavour = getattr(plan.factory, "flavour_name", "vanilla")
    used = sorted(set(node_of.values()))
    addresses = {n: (config.nodes[n].address.host, config.nodes[n].address.port) for n in used}
    directory = NetworkDirectory(
        {n: NodeEntry(n, ids[n], addresses[n], ("127.0.0.1", _free_port("127.0.0.1")), flavour)
         for n in used}, dict(roles_cfg), {"mode": "host", "seed": plan.settings.seed}, "",
        qnpu_keys={n: api_key(master, n) for n in used})
    net = AttachedNetwork(directory, Trace(instructions=plan.settings.trace_instructions),
                          addresses)
    with tempfile.TemporaryDirectory(prefix="qnodeos-hw-attach-") as tmp:
        outcomes = run_cnpu_processes(net, {r: {"app_dir": app} for r in roles}, node_of, None,
                                      timeout_s, cnpu_nice, tmp)
    return RunResult(outcomes, net.trace, net)  # type: ignore[arg-type]
