"""A network of nodes (QDriver + QNPU + TCP server + CNPU hub per node) and
``qnodeos-hw run APP_DIR``.

Plug a platform in through a *QDriver factory*: any callable
``factory(node_name: str, clock: VirtualClock) -> QDriver`` (one factory object per
network, so it can hold the shared heralding station). Its optional attribute
``flavour_name`` ('vanilla', 'nv', 'trapped_ion') tells the CNPU which netqasm
flavour to compile for. :class:`IdealNetworkFactory` is the built-in one.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import sys
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
from netqasm.lang.instr.flavour import NVFlavour, TrappedIonFlavour, VanillaFlavour
from netqasm.runtime.settings import SIMULATOR_ENV, Simulator

from ..qdevice.clock import VirtualClock
from ..qdrivers.ideal import IdealLink, IdealQDriver, NetworkQuantumState
from ..qnpu.peer_tcp import TcpPeerBus
from ..qnpu.peers import LocalPeerBus
from ..qnpu.qnpu import QNPU, QNPUConfig
from ..qnpu.server import QNPUServer
from .api_server import AuthenticatedQNPUServer
from ..protocol.trace import Trace, load_jsonl
from ..timebase import ClockServer, LatencyModel, TimeCoordinator, load_latency_model
from ..cnpu.directory import NetworkDirectory, NodeEntry
from ..cnpu.timing import CNPUClocks, program_lp
from ..cnpu.runtime import (AppDir, ProgramOutcome, external_names, load_app_dir, make_external_module,
                      program_random, run_programs)
from ..cnpu.socket import ClassicalHub

QDriverFactory = Callable[[str, VirtualClock], Any]


class NVNetworkFactory:
    """NV nodes on simulated stations (physics -> simulated instruments -> QCoDeS drivers ->
    NVQDriver), all sharing one heralding station: :func:`qnodeos_hw.nodes.simulated_nv_network`.
    At most two nodes (one heralding station)."""

    flavour_name = "nv"

    def __init__(self, seed: int = 0, num_qubits: int = 2, noise_file: str | None = None,
                 calibration_file: str | None = None) -> None:
        self.kwargs = dict(seed=seed, num_qubits=num_qubits, noise_file=noise_file,
                           calibration_file=calibration_file)

    def set_bin_ns(self, bin_ns: int) -> None:
        """Pair attempt windows by this TDMA bin (the network's schedule)."""
        self.kwargs["bin_ns"] = bin_ns

    def build_spec(self) -> dict[str, Any]:
        """How a node process builds its node of this network (``--processes per-node``)."""
        return {"platform": "nv", **self.kwargs}

    def make_nodes(self, names: list[str]) -> dict[str, Any]:
        """name -> object with ``qdriver``, ``clock`` and ``close()``."""
        from ..nodes import simulated_nv_network
        return simulated_nv_network(tuple(names), **self.kwargs)
_FLAVOURS = {"vanilla": VanillaFlavour, "nv": NVFlavour, "trapped_ion": TrappedIonFlavour}


class IdealNetworkFactory:
    """Makes :class:`IdealQDriver` s of ``num_qubits`` sharing one :class:`IdealLink`
    (Werner ``fidelity``, ``p_success`` per attempt, seeded by ``seed``)."""

    def __init__(self, num_qubits: int = 5, fidelity: float = 1.0, p_success: float = 1.0,
                 seed: int | None = None, flavour_name: str = "vanilla",
                 random_bell: bool = False, bin_ns: int | None = None) -> None:
        self.num_qubits, self.flavour_name = num_qubits, flavour_name
        self.seed = seed
        self.link = IdealLink(NetworkQuantumState(np.random.default_rng(seed)), fidelity=fidelity,
                              p_success=p_success, random_bell=random_bell, bin_ns=bin_ns,
                              seed=seed)

    def set_bin_ns(self, bin_ns: int) -> None:
        """Pair attempt windows by this TDMA bin (the network's schedule)."""
        self.link.bin_ns = bin_ns

    def progress(self, node: str, t_ns: int, peer: str | None = None) -> None:
        self.link.progress(node, t_ns, peer)

    def __call__(self, node: str, clock: VirtualClock) -> IdealQDriver:
        # each node draws its measurement outcomes from its own stream (seeded by name):
        # outcomes then do not depend on how the nodes' threads interleave
        rng = None
        if self.seed is not None:
            rng = np.random.default_rng([int(self.seed) % 2**63, zlib.crc32(node.encode())])
        return IdealQDriver(node, self.num_qubits, clock, self.link,
                            flavour=_FLAVOURS[self.flavour_name](), rng=rng)


@dataclass
class Node:
    """One running node."""

    name: str
    node_id: int
    clock: VirtualClock
    driver: Any
    qnpu: QNPU
    server: QNPUServer
    hub: ClassicalHub | None
    classical: tuple[str, int] = ("", 0)


TIME_MODES = ("modelled", "host")


@dataclass
class NetworkSettings:
    """``bin_ns``: TDMA time bin (ns); ``host``: where servers listen; ``ports``: node ->
    (qnpu port, classical port) (0/absent: any free port).

    ``time_mode``: ``modelled`` (default: the classical side's latencies are drawn from
    ``latency``, default the shipped :func:`~qnodeos_hw.timebase.load_latency_model`
    seeded with ``seed``; node clocks advance under the network's shared clock; no wall
    time enters; same seed, same bytes) or ``host`` (real host latencies are charged to
    the qubits: the QNPUs run free with ``idle_wall_scale``, 1 if left at 0)."""

    bin_ns: int = 10_000_000
    host: str = "127.0.0.1"
    ports: dict[str, tuple[int, int]] = field(default_factory=dict)
    seed: int | None = None
    trace_instructions: bool = True
    #: nodes whose CNPU runs in another OS process (no classical hub here; its port is
    #: ``ports[node][1]`` or a free one picked now)
    external_cnpus: frozenset[str] = frozenset()
    idle_wall_scale: float = 0.0
    #: TDMA order of links, e.g. ``(frozenset({"a", "b"}), frozenset({"b", "c"}))``;
    #: empty: every bin serves every link
    links: tuple[frozenset, ...] = ()
    attempts_per_bin: int = 1000
    time_mode: str = "modelled"
    latency: LatencyModel | None = None
    #: how long (node ns) an entanglement request waits for its other end (None: forever)
    request_timeout_ns: int | None = 30_000_000_000
    #: the wire between the QNPUs: ``local`` (in-process, JSON text) or ``tcp``
    #: (:class:`~qnodeos_hw.qnpu.peer_tcp.TcpPeerBus` on ``host``, authenticated per
    #: pair of nodes); results are the same in modelled time
    peer_transport: str = "local"

    def __post_init__(self) -> None:
        if self.time_mode not in TIME_MODES:
            raise ValueError(f"time mode must be one of {TIME_MODES}, got {self.time_mode!r}")
        if self.peer_transport not in ("local", "tcp"):
            raise ValueError(f"peer transport must be 'local' or 'tcp', got {self.peer_transport!r}")


class SimulatedNetwork:
    """Nodes named ``node_names`` built by ``factory``; start with ``with`` or :meth:`start`."""

    def __init__(self, node_names: list[str], factory: QDriverFactory,
                 settings: NetworkSettings = NetworkSettings(), roles: dict[str, str] | None = None) -> None:
        import secrets
        self.settings = settings
        self.modelled = settings.time_mode == "modelled"
        self.trace = Trace(instructions=settings.trace_instructions, ordered=self.modelled)
        self.token = secrets.token_hex(16)
        names = sorted(node_names)
        #: the QNPUs' peer secrets, one per pair of nodes (not the CNPUs' hub keys)
        self.pair_keys = {f"{a}|{b}": secrets.token_hex(16)
                          for i, a in enumerate(names) for b in names[i:]}
        self.peers: Any
        if settings.peer_transport == "tcp":
            self.peers = TcpPeerBus({n: (settings.host, 0) for n in node_names},
                                    lambda a, b: self.pair_keys["|".join(sorted((a, b)))].encode())
        else:
            self.peers = LocalPeerBus()
        self.nodes: dict[str, Node] = {}
        flavour = getattr(factory, "flavour_name", "vanilla")
        ids = {name: i for i, name in enumerate(node_names)}
        rng = np.random.default_rng(settings.seed)
        self.latency: LatencyModel | None = None
        self.coordinator: TimeCoordinator | None = None
        self.clock_server: ClockServer | None = None
        self.clocks: CNPUClocks | None = None
        time_info: dict = {"mode": settings.time_mode, "seed": settings.seed}
        if self.modelled:
            self.latency = (settings.latency if settings.latency is not None
                            else load_latency_model(seed=settings.seed or 0))
            self.coordinator = TimeCoordinator(self.latency.lookahead_ns())
            self.clock_server = ClockServer(self.coordinator, settings.host, token=self.token)
            self.clocks = CNPUClocks(self.latency, self.coordinator.report)
            time_info.update(latency=self.latency.to_dict(), clock=list(self.clock_server.address))
        if hasattr(factory, "set_bin_ns"):  # attempt windows pair by the network's bins
            factory.set_bin_ns(settings.bin_ns)
        wall_scale = settings.idle_wall_scale
        if settings.time_mode == "host" and wall_scale == 0:
            wall_scale = 1.0
        built = factory.make_nodes(list(node_names)) if hasattr(factory, "make_nodes") else {}
        self._built = built
        api_keys: dict[str, str] = {}
        for name in node_names:
            if built:
                clock, driver = built[name].clock, built[name].qdriver
                progress = getattr(built[name], "progress", None)
            else:
                clock = VirtualClock()
                driver = factory(name, clock)
                fp = getattr(factory, "progress", None)
                progress = ((lambda t, peer=None, n=name, fp=fp: fp(n, t, peer))
                            if fp is not None else None)
            cfg = QNPUConfig(bin_ns=settings.bin_ns, links=settings.links,
                             attempts_per_bin=settings.attempts_per_bin,
                             idle_wall_scale=0.0 if self.modelled else wall_scale,
                             time_mode="modelled" if self.modelled else "free",
                             latency=self.latency,
                             request_timeout_ns=settings.request_timeout_ns)
            qnpu = QNPU(name, driver, ids, None, cfg, self.trace,
                        np.random.default_rng(rng.integers(2**63)), clock=clock,
                        peers=self.peers, coordinator=self.coordinator, progress=progress)
            qport, cport = settings.ports.get(name, (0, 0))
            api_keys[name] = secrets.token_hex(16)  # programs must prove it (api_auth)
            server = AuthenticatedQNPUServer(qnpu, api_keys[name].encode(), settings.host, qport)
            if name in settings.external_cnpus:
                hub, classical = None, (settings.host, cport or _free_port(settings.host))
            else:
                hub = ClassicalHub(settings.host, cport, token=self.token, clocks=self.clocks)
                classical = hub.address
            self.nodes[name] = Node(name, ids[name], clock, driver, qnpu, server, hub, classical)
        self.directory = NetworkDirectory(
            {n.name: NodeEntry(n.name, n.node_id, n.server.address, n.classical, flavour)
             for n in self.nodes.values()}, dict(roles or {}), time_info, self.token,
            qnpu_keys=api_keys)

    def expect_programs(self, roles: list[str]) -> None:
        """Modelled time: the shared clock waits for these programs' first reports."""
        if self.coordinator is not None:
            for r in roles:
                self.coordinator.expect(program_lp(r))

    def program_gone(self, role: str) -> None:
        """A program's CNPU went away (its process exited): it counts no more."""
        if self.coordinator is not None:
            self.coordinator.gone(program_lp(role))

    def start(self) -> "SimulatedNetwork":
        for n in self.nodes.values():
            n.qnpu.start()
            n.server.start()
        return self

    def close(self) -> None:
        for n in self.nodes.values():
            n.server.close()
            if n.hub is not None:
                n.hub.close()
            n.qnpu.stop()
        if self.clock_server is not None:
            self.clock_server.close()
        if isinstance(self.peers, TcpPeerBus):
            self.peers.close()
        for b in self._built.values():
            b.close()

    def __enter__(self) -> "SimulatedNetwork":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def external_module(self, timeout_s: float = 120.0):
        return make_external_module(self.directory, {n.name: n.hub for n in self.nodes.values()
                                                     if n.hub is not None}, timeout_s, self.trace,
                                    self.clocks)

    def errors(self) -> list[str]:
        return [f"{n.name}: {e}" for n in self.nodes.values() for e in n.qnpu.errors]


@dataclass
class RunResult:
    outcomes: dict[str, ProgramOutcome]
    trace: Trace
    network: SimulatedNetwork

    @property
    def results(self) -> dict[str, Any]:
        return {r: o.result for r, o in self.outcomes.items()}

    @property
    def ok(self) -> bool:
        return all(o.error is None for o in self.outcomes.values())


def run_app_dir(app_dir: str, factory: QDriverFactory | None = None,
                settings: NetworkSettings | None = None, inputs: dict[str, dict] | None = None,
                timeout_s: float = 300.0) -> RunResult:
    """Run every program of a netqasm application directory on a simulated network
    with one node per role (names from ``roles.yaml`` when present)."""
    # roles must be known before the app is imported; read them from the file names
    from netqasm.runtime import env
    roles_list = sorted(env.load_app_files(os.path.abspath(app_dir)))
    roles_cfg = env.load_roles_config(os.path.join(os.path.abspath(app_dir), "roles.yaml")) or {}
    return _run(lambda: load_app_dir(app_dir), roles_list, roles_cfg, factory, settings,
                inputs, timeout_s)


def run_mains(mains: dict[str, Callable | str], factory: QDriverFactory | None = None,
              settings: NetworkSettings | None = None, roles: dict[str, str] | None = None,
              inputs: dict[str, dict] | None = None, timeout_s: float = 300.0) -> RunResult:
    """Run programs given as ``role -> main`` (a callable, or ``"module:function"``
    imported once ``netqasm.sdk.external`` is ours -- use that form, or import
    ``netqasm.sdk.external`` inside ``main``, when the module imports it at top level).
    ``roles``: role -> node name (default: a node per role)."""
    roles = dict(roles or {})

    def load() -> AppDir:
        progs = {}
        for role, m in mains.items():
            if isinstance(m, str):
                mod, fn = m.split(":")
                # a fresh import each run: the module binds this network's external names
                module = sys.modules.get(mod)
                module = importlib.reload(module) if module is not None else importlib.import_module(mod)
                m = getattr(module, fn)
            progs[role] = m
        return AppDir(os.getcwd(), progs, {r: {} for r in mains}, roles)

    return _run(load, sorted(mains), roles, factory, settings, inputs, timeout_s)


def run_mains_in_processes(mains: dict[str, str], factory: QDriverFactory | None = None,
                           settings: NetworkSettings | None = None,
                           roles: dict[str, str] | None = None,
                           inputs: dict[str, dict] | None = None,
                           timeout_s: float = 300.0, cnpu_nice: int = 10) -> RunResult:
    """:func:`run_mains` with every node's CNPU in its own OS process, as in the paper's
    node (CNPU and QNPU on separate processors, talking TCP): the programs of one node
    run as threads of that node's ``python -m qnodeos_hw.cnpu.program`` process, while
    this process runs the QNPUs and the simulated QDevices. ``mains``: role ->
    ``"module:function"``. The CNPUs' trace events are merged into the result's trace.
    Host latencies then no longer include other programs' Python work (one GIL per CNPU).
    ``cnpu_nice``: the CNPU processes lower their CPU priority by this much, so that on a
    small host the QNPUs and simulated QDevices (separate hardware in a lab, which never
    waits for a CNPU's CPU) get a core first when a message arrives (DQC on 2 cores: the
    server's median wait 2.2-2.5 ms at 10 against 3.0-3.4 ms at 0)."""
    import tempfile

    settings = settings or NetworkSettings()
    roles = dict(roles or {})
    factory = factory or IdealNetworkFactory(seed=settings.seed)
    node_of = {r: roles.get(r, r) for r in mains}
    node_names = sorted(set(node_of.values()))
    settings = replace(settings, external_cnpus=frozenset(node_names))
    net = SimulatedNetwork(node_names, factory, settings, roles=roles)
    net.expect_programs(list(mains))
    with tempfile.TemporaryDirectory(prefix="qnodeos-hw-cnpu-") as tmp, net:
        outcomes = run_cnpu_processes(net, {r: {"main": m} for r, m in mains.items()}, node_of,
                                      inputs, timeout_s, cnpu_nice, tmp)
    return RunResult(outcomes, net.trace, net)


def run_cnpu_processes(net: Any, programs: dict[str, dict], node_of: dict[str, str],
                       inputs: dict[str, dict] | None, timeout_s: float, cnpu_nice: int,
                       tmp: str, started: Callable[[str, Any], None] | None = None
                       ) -> dict[str, ProgramOutcome]:
    """Start one ``qnodeos_hw.cnpu.program`` process per node of ``node_of`` (role ->
    node; forked from the pre-loaded zygote of :mod:`.cnpu_launcher`) against ``net`` (its
    ``directory``, ``trace`` and ``program_gone(role)``), wait for them and merge their
    traces into ``net.trace``.
    ``programs``: role -> ``{"main": "module:function"}`` or ``{"app_dir": DIR}`` (one
    role per node then); ``started(node, popen)`` is told each process. Returns the
    programs' outcomes."""
    import subprocess

    from .cnpu_launcher import start_cnpu

    outcomes: dict[str, ProgramOutcome] = {r: ProgramOutcome(r) for r in programs}
    procs = {}
    for node in sorted(set(node_of.values())):
        dfile = os.path.join(tmp, f"directory-{node}.json")  # only this node's keys
        fd = os.open(dfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            fp.write(net.directory.for_node(node).to_json())
        mine = [r for r in programs if node_of[r] == node]
        tfile = os.path.join(tmp, f"trace-{node}.jsonl")
        cmd = [sys.executable, "-m", "qnodeos_hw.cnpu.program", "--directory", dfile,
               "--timeout", str(timeout_s), "--trace", tfile, "--nice", str(cnpu_nice)]
        app_dir = programs[mine[0]].get("app_dir")
        if app_dir is not None:
            if len(mine) != 1:
                raise ValueError(f"node '{node}' runs roles {mine} of an app directory: one "
                                 "CNPU process runs one role of an app directory")
            cmd += ["--app-dir", str(app_dir), "--role", mine[0],
                    "--inputs", json.dumps((inputs or {}).get(mine[0], {}))]
        else:
            progs = {r: {"main": programs[r]["main"], "inputs": (inputs or {}).get(r, {})}
                     for r in mine}
            pfile = os.path.join(tmp, f"programs-{node}.json")
            with open(pfile, "w", encoding="utf-8") as fp:
                json.dump(progs, fp)
            cmd += ["--programs", f"@{pfile}"]
        procs[node] = (start_cnpu(cmd[3:]), tfile, mine, app_dir is not None)
        if started is not None:
            started(node, procs[node][0])
    waiters = {}
    for node, (proc, _, node_roles, _) in procs.items():
        def wait(proc=proc, node_roles=node_roles):
            res = proc.communicate(timeout=timeout_s)
            for r in node_roles:  # whatever the process left undone counts no more
                net.program_gone(r)
            return res
        waiters[node] = _Waiter(wait)
    for node, (proc, tfile, node_roles, one_role) in procs.items():
        try:
            out, err = waiters[node].result(timeout_s + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err = f"TimeoutError: CNPU process of node '{node}' still running after " \
                  f"{timeout_s} s\n{err}"
        results: Any = {}
        lines = out.strip().splitlines()
        if lines:
            try:
                results = json.loads(lines[-1])
            except ValueError:
                results = {}
        if one_role:
            results = {node_roles[0]: results}
        for r in node_roles:
            outcomes[r].result = results.get(r) if isinstance(results, dict) else None
            if proc.returncode != 0 and (outcomes[r].result is None or f"[{r}]" in err):
                outcomes[r].error = (f"CNPU process of node '{node}' exited with "
                                     f"{proc.returncode}: {err.strip()[-2000:]}")
        if os.path.exists(tfile):
            net.trace.extend(load_jsonl(tfile))
    return outcomes


class _Waiter:
    """Runs ``fn`` in a thread (a CNPU process' lifetime); :meth:`result` joins it."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        import threading
        self._out: Any = None
        self._exc: BaseException | None = None

        def target() -> None:
            try:
                self._out = fn()
            except BaseException as exc:  # re-raised in result()
                self._exc = exc
        self._t = threading.Thread(target=target, daemon=True)
        self._t.start()

    def result(self, timeout: float) -> Any:
        self._t.join(timeout)
        if self._exc is not None:
            raise self._exc
        if self._t.is_alive():
            import subprocess
            raise subprocess.TimeoutExpired("cnpu", timeout)
        return self._out


def _run(load: Callable[[], AppDir], roles_list: list[str], roles_cfg: dict[str, str],
         factory: QDriverFactory | None, settings: NetworkSettings | None,
         inputs: dict[str, dict] | None, timeout_s: float) -> RunResult:
    settings = settings or NetworkSettings()
    if settings.seed is not None:
        np.random.seed(settings.seed % 2**32)
    factory = factory or IdealNetworkFactory(seed=settings.seed)
    node_names = sorted({roles_cfg.get(r, r) for r in roles_list})
    net = SimulatedNetwork(node_names, factory, settings, roles=roles_cfg)
    net.expect_programs(list(roles_list))
    # netqasm's default simulator setting (NetSquid) makes apps import netsquid; we are
    # neither, so present ourselves as netqasm's "debug" runtime while the apps run.
    old_sim = os.environ.get(SIMULATOR_ENV)
    os.environ[SIMULATOR_ENV] = Simulator.DEBUG.value
    # the example apps draw from the global `random`: one stream per program
    rnd = program_random(settings.seed) if settings.seed is not None else None
    try:
        with net, external_names(net.external_module(timeout_s)), (rnd or contextlib.nullcontext()) as rng:
            try:
                app = load()
            except BaseException:
                for r in roles_list:
                    net.program_gone(r)
                raise
            for r in set(roles_list) - set(app.programs):
                net.program_gone(r)
            outcomes = run_programs(app, inputs, timeout_s, clocks=net.clocks, rng=rng)
    finally:
        if old_sim is None:
            os.environ.pop(SIMULATOR_ENV, None)
        else:
            os.environ[SIMULATOR_ENV] = old_sim
    return RunResult(outcomes, net.trace, net)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, complex):
        return [x.real, x.imag]
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    return str(x)
