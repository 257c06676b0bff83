"""``--processes per-node``: every link, node and CNPU of a network its own OS process.

:func:`run_per_node` starts, on this host,

* one ``qnodeos-hw link serve`` process per quantum link (the simulated heralding
  station; it holds the joint state of a pair while both halves live),
* one ``qnodeos-hw node serve`` process per node (QDriver, simulated instruments and
  QNPU; the QNPUs talk to each other over TCP, to the links over TCP),
* one CNPU process per node (:mod:`qnodeos_hw.cnpu.program`),

and keeps only the network's shared clock (:class:`~qnodeos_hw.timebase.TimeCoordinator`
behind a :class:`~qnodeos_hw.timebase.ClockServer`) in this process. Nothing is shared
between them but messages. Every process is told what it needs in a session file only
its owner can read (:mod:`.session`); when the programs are done the runner stops the
nodes and links, merges their traces with the CNPUs' and returns the same
:class:`~qnodeos_hw.runner.network.RunResult` as the single-process runner -- in modelled
time with the same bytes (tests compare them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..cnpu.directory import NetworkDirectory, NodeEntry
from ..cnpu.timing import program_lp
from ..protocol.trace import Trace, load_jsonl
from ..timebase import ClockServer, LatencyModel, TimeCoordinator, load_latency_model
from .network import NetworkSettings, RunResult, _free_port, run_cnpu_processes
from .session import LinkSession, NodeSession, settings_to_dict, write_private

#: how long a node or link process may take to come up (s): imports and the simulated
#: instruments' start-up take 1-3 s on this project's 2-core reference machine
START_TIMEOUT_S = 60.0


class ProcessStartError(RuntimeError):
    """A node or link process did not come up (names it, with its last error line)."""


class LayoutNotSupportedError(ValueError):
    """The network cannot run in the per-node layout (names why)."""


class _Child:
    """A started node/link process: JSON lines on its stdout, commands on its stdin."""

    def __init__(self, name: str, cmd: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                self.lines.put(msg)
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())
            del self.stderr[:-200]

    def expect(self, key: str, timeout_s: float) -> dict:
        """The next message with ``key`` (ProcessStartError if the process ends first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                msg = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ProcessStartError(f"{self.name}: no '{key}' after {timeout_s:.0f} s") from None
            if msg is None:
                self.proc.wait(5)
                why = next((ln for ln in reversed(self.stderr) if ln.strip()), "no output")
                raise ProcessStartError(f"{self.name} exited with {self.proc.returncode}: {why}")
            if key in msg:
                return msg[key]

    def send(self, msg: dict) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass  # it is gone; noticed when its answer does not come

    def stop(self, timeout_s: float = 30.0) -> dict | None:
        """Tell it to stop; its ``done`` report (None if it died)."""
        self.send({"stop": True})
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.expect("done", timeout_s)
        except ProcessStartError:
            return None
        finally:
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class ProcessNetwork:
    """What a per-node run leaves behind (the single runner's ``network`` attribute)."""

    settings: NetworkSettings
    directory: NetworkDirectory
    trace: Trace
    coordinator: TimeCoordinator | None
    latency: LatencyModel | None
    #: node -> its ``ready`` report (``qnpu``, ``peer`` addresses); link -> address
    nodes: dict[str, dict] = field(default_factory=dict)
    links: dict[str, list] = field(default_factory=dict)
    done: dict[str, dict] = field(default_factory=dict)
    #: node -> process id, while the run goes (fault tests kill one)
    pids: dict[str, int] = field(default_factory=dict)
    #: node -> exit status of a node process that ended before it was told to stop
    died: dict[str, int] = field(default_factory=dict)

    def program_gone(self, role: str) -> None:
        if self.coordinator is not None:
            self.coordinator.gone(program_lp(role))

    def errors(self) -> list[str]:
        out = []
        for n in sorted(self.nodes):
            d = self.done.get(n)
            if d is None:
                out.append(f"{n}: the node process ended without reporting (killed?)")
            else:
                out += [f"{n}: {e}" for e in d.get("errors", [])]
        return out


#: how long a dead node's CNPU may go on by itself before it is stopped (s): its programs
#: learn of the loss from their QNPU connection, unless they wait for a classical message
DEAD_NODE_GRACE_S = 2.0


def _watch(nodes: dict[str, "_Child"], cnpus: dict[str, Any], net: "ProcessNetwork",
           stop: threading.Event) -> None:
    """Supervise the node processes while the programs run: a node whose process ends is
    recorded (``net.died``) and, after :data:`DEAD_NODE_GRACE_S`, its CNPU process is
    stopped -- the node is gone, so nothing of it may hang the run. Its peers learn of it
    by themselves (their peer connections and the link's close)."""
    dead_at: dict[str, float] = {}
    while not stop.wait(0.1):
        for n, c in nodes.items():
            rc = c.proc.poll()
            if rc is not None and n not in net.died:
                net.died[n] = rc
                dead_at[n] = time.monotonic()
        for n, t in list(dead_at.items()):
            p = cnpus.get(n)
            if p is not None and time.monotonic() - t >= DEAD_NODE_GRACE_S:
                if p.poll() is None:
                    p.terminate()
                del dead_at[n]


def _link_pairs(names: list[str], settings: NetworkSettings) -> list[tuple[str, str]]:
    """The node pairs that get a heralding station: the schedule's links (every pair
    when the schedule names none), in the single-process network's order."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    if settings.links:
        wanted = {frozenset(link) for link in settings.links}
        pairs = [p for p in pairs if frozenset(p) in wanted]
    return pairs


def supports_per_node(factory: Any) -> bool:
    """Whether ``factory``'s nodes can each run as their own process: the simulated NV
    network (nodes on station YAMLs share their simulated heralding station in one
    process; a lab node is started by hand with ``node serve --network``)."""
    spec_of = getattr(factory, "build_spec", None)
    return spec_of is not None and spec_of().get("platform") == "nv"


def run_per_node(programs: dict[str, dict], factory: Any, settings: NetworkSettings | None = None,
                 roles: dict[str, str] | None = None, inputs: dict[str, dict] | None = None,
                 timeout_s: float = 300.0, cnpu_nice: int = 10,
                 on_started: Any = None) -> RunResult:
    """Run ``programs`` (role -> ``{"main": "module:function"}`` or ``{"app_dir": DIR}``)
    with every node, link and CNPU in its own process (module docstring). ``factory``
    must describe its nodes as data (``build_spec()``: today the simulated NV network,
    :class:`~qnodeos_hw.runner.network.NVNetworkFactory`). ``on_started(network)`` is
    called once everything runs (tests kill a node there)."""
    settings = settings or NetworkSettings()
    if not supports_per_node(factory):
        raise LayoutNotSupportedError(
            f"{type(factory).__name__} cannot build its nodes in separate processes: the "
            "per-node layout runs simulated NV networks (ideal nodes share one in-process "
            "quantum state, simulated station-YAML nodes one heralding station); use "
            "--processes single")
    build = dict(factory.build_spec())
    build["bin_ns"] = settings.bin_ns
    roles = dict(roles or {})
    node_of = {r: roles.get(r, r) for r in programs}
    names = sorted(set(node_of.values()))
    modelled = settings.time_mode == "modelled"
    token = secrets.token_hex(16)
    physics_key = secrets.token_hex(16)
    #: per node: the key its end-node API asks programs to prove (protocol.api_auth)
    api_keys = {n: secrets.token_hex(16) for n in names}
    peer_keys = {f"{a}|{b}": secrets.token_hex(16) for i, a in enumerate(names) for b in names[i + 1:]}
    latency: LatencyModel | None = None
    coordinator: TimeCoordinator | None = None
    clock_server: ClockServer | None = None
    time_info: dict = {"mode": settings.time_mode, "seed": settings.seed}
    if modelled:
        latency = settings.latency if settings.latency is not None else \
            load_latency_model(seed=settings.seed or 0)
        coordinator = TimeCoordinator(latency.lookahead_ns())
        clock_server = ClockServer(coordinator, settings.host, token=token)
        time_info.update(latency=latency.to_dict(), clock=list(clock_server.address))
        for n in names:
            coordinator.expect(f"qnpu:{n}", kind="qnpu")
        for r in programs:
            coordinator.expect(program_lp(r))
    # what a node process needs, with the latency model this runner uses
    st = settings_to_dict(dataclasses.replace(settings, latency=latency))
    pairs = _link_pairs(names, settings)
    children: list[_Child] = []
    trace = Trace(instructions=settings.trace_instructions, ordered=modelled)
    net: ProcessNetwork | None = None
    with tempfile.TemporaryDirectory(prefix="qnodeos-hw-run-") as tmp:
        try:
            links: dict[str, list] = {}
            link_children: list[_Child] = []
            for a, b in pairs:
                ls = LinkSession(link=f"{a}-{b}", nodes=(a, b), network_nodes=tuple(names),
                                 host=settings.host, port=0, build=build, physics_key=physics_key)
                f = os.path.join(tmp, f"link-{a}-{b}.json")
                write_private(f, ls.to_json())
                c = _Child(f"link {a}-{b}", [sys.executable, "-m", "qnodeos_hw.runner.link_serve",
                                             "--session", f])
                children.append(c)
                link_children.append(c)
            for c, (a, b) in zip(link_children, pairs):
                links[f"{a}-{b}"] = c.expect("ready", START_TIMEOUT_S)["address"]
            node_children: dict[str, _Child] = {}
            for n in names:
                mine = {(b if a == n else a): {"address": links[f"{a}-{b}"]}
                        for a, b in pairs if n in (a, b)}
                ns = NodeSession(
                    node=n, nodes=tuple(names), host=settings.host,
                    qnpu_port=settings.ports.get(n, (0, 0))[0], peer_port=0,
                    clock=tuple(clock_server.address) if clock_server else None,  # type: ignore[arg-type]
                    token=token, peer_keys={k: v for k, v in peer_keys.items() if n in k.split("|")},
                    settings=st, build=build, links=mine, physics_key=physics_key,
                    trace_file=os.path.join(tmp, f"trace-node-{n}.jsonl"),
                    api_key=api_keys[n])
                f = os.path.join(tmp, f"node-{n}.json")
                write_private(f, ns.to_json())
                c = _Child(f"node {n}", [sys.executable, "-m", "qnodeos_hw.runner.node_serve",
                                         "--session", f])
                children.append(c)
                node_children[n] = c
            ready = {n: c.expect("ready", START_TIMEOUT_S) for n, c in node_children.items()}
            for c in node_children.values():
                c.send({"peers": {n: r["peer"] for n, r in ready.items()}})
            flavour = getattr(factory, "flavour_name", "vanilla")
            directory = NetworkDirectory(
                {n: NodeEntry(n, i, tuple(ready[n]["qnpu"]),  # type: ignore[arg-type]
                              (settings.host, _free_port(settings.host)), flavour)
                 for i, n in enumerate(names)}, roles, time_info, token, qnpu_keys=api_keys)
            net = ProcessNetwork(settings, directory, trace, coordinator, latency, ready, links,
                                 pids={n: c.proc.pid for n, c in node_children.items()})
            if on_started is not None:
                on_started(net)
            cnpus: dict[str, Any] = {}
            stop_watch = threading.Event()
            watcher = threading.Thread(target=_watch, args=(node_children, cnpus, net, stop_watch),
                                       daemon=True)
            watcher.start()
            try:
                outcomes = run_cnpu_processes(net, programs, node_of, inputs, timeout_s,
                                              cnpu_nice, tmp, started=cnpus.__setitem__)
            finally:
                stop_watch.set()
                watcher.join()
            for r, o in outcomes.items():
                rc = net.died.get(node_of[r])
                if rc is not None:
                    o.error = (f"node '{node_of[r]}': its node process ended during the run "
                               f"(exit status {rc}); its programs were stopped"
                               + (f" ({o.error.splitlines()[0]})" if o.error else ""))
            for c in node_children.values():  # every node first, then stop them
                c.send({"quiesce": True})
            for c in node_children.values():
                try:
                    c.expect("quiet", 10.0)
                except ProcessStartError:
                    pass  # a dead node: nothing to quiesce
            for n, c in node_children.items():
                done = c.stop()
                if done is not None:
                    net.done[n] = done
                tf = os.path.join(tmp, f"trace-node-{n}.jsonl")
                if os.path.exists(tf):
                    trace.extend(load_jsonl(tf))
            for (a, b), c in zip(pairs, link_children):
                done = c.stop()
                if done is not None:
                    net.done[f"link {a}-{b}"] = done
        finally:
            for c in children:
                c.kill()
            if clock_server is not None:
                clock_server.close()
    assert net is not None
    return RunResult(outcomes, trace, net)  # type: ignore[arg-type]
