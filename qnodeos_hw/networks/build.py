"""Today's single-process :class:`~qnodeos_hw.runner.network.SimulatedNetwork` from a
network file, and ``qnodeos-hw run APP_DIR --network NAME_OR_FILE``.

:func:`plan_network` turns a :class:`~qnodeos_hw.networks.NetworkConfig` and the app's
node names into a QDriver factory and :class:`~qnodeos_hw.runner.network.NetworkSettings`:

* ideal nodes: :class:`~qnodeos_hw.runner.network.IdealNetworkFactory`;
* NV nodes without a station: :class:`~qnodeos_hw.runner.network.NVNetworkFactory` (the
  built-in simulated stations);
* NV nodes on a QCoDeS station YAML: :class:`StationNVNetworkFactory` -- the NV QDriver
  over the drivers loaded from that station, real instruments (the lab path: a
  :class:`~qnodeos_hw.qdevice.realtime.RealTimeClock` paces the QNPU's bin wait) or
  ``simlab://`` simulated backends;
* ``platform: custom``: the file's ``qdriver_factory``.

What the single-process network cannot build yet raises
:class:`~qnodeos_hw.networks.UnsupportedNetworkError` before anything starts (e.g. more
than two NV nodes: one heralding station joins two).

``run --station FILE`` with an old network-model YAML (``platform``, ``num_qubits``,
``bin_ns``, ``time_mode``, ...) is deprecated: it still runs, with a warning, as the
equivalent network (:func:`legacy_network`). ``--station`` is a QCoDeS station YAML,
which belongs to a node of a network file (``nodes.<name>.station``).
"""

from __future__ import annotations

import json
import os
import logging
import sys
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..instruments.station_check import StationInstrumentError
from . import (NV_INSTRUMENT_ROLES, Address, NetworkConfig,
               NetworkConfigError, NodeConfig, QuantumLinkConfig, ScheduleConfig, load_network)

log = logging.getLogger(__name__)


#: NV nodes today's single-process network builds: one heralding station joins two nodes.
#: NV nodes over station YAMLs (:class:`StationNVNetworkFactory`, one heralding station);
#: the built-in simulated NV nodes (NVNetworkFactory) have a station per pair, any number
MAX_NV_NODES = 2


class NetworkBindingError(NetworkConfigError):
    """The app's nodes cannot be placed on the network's nodes."""


class StationRoleError(NetworkConfigError):
    """A node's station YAML has no instrument for a role the NV node needs."""


# ------------------------------------------------------------------ NV nodes on stations
def _nv_program(calibration_file: Path | None, num_qubits: int):
    """(waveform table, HDAWG program) as the simulated NV network builds them."""
    from ..nodes import _nv_program as build
    if num_qubits == 1:
        return build(calibration_file)
    return build(calibration_file, num_qubits - 1)


def station_roles(station: Path, given: dict[str, str] | None = None) -> dict[str, str]:
    """role (hdawg, adwin, mw) -> instrument name in the station YAML: ``given``, else
    by driver type (ZIHDAWG, ADwinController, SGS100A)."""
    from ..simulators.nv_lab import read_instrument_config
    cfg = read_instrument_config(station)
    roles = dict(given or {})
    by_type = {"hdawg": "ZIHDAWG", "adwin": "ADwinController", "mw": "SGS100A"}
    for role in NV_INSTRUMENT_ROLES:
        if role in roles:
            if roles[role] not in cfg:
                raise StationRoleError(station, f"instruments.{roles[role]}",
                                       f"no instrument '{roles[role]}' for the node's {role}")
            continue
        hits = [i for i, c in cfg.items() if str(c.get("type", "")).endswith(by_type[role])]
        if len(hits) != 1:
            what = "no" if not hits else f"{len(hits)} ({', '.join(hits)})"
            raise StationRoleError(station, "instruments",
                                   f"{what} instrument of type {by_type[role]} for the NV node's "
                                   f"{role}; name it under nodes.<node>.instruments.{role}")
        roles[role] = hits[0]
    return roles


@dataclass
class StationNode:
    """One NV node on its station: what :class:`SimulatedNetwork` needs of it."""

    name: str
    qdriver: Any
    clock: Any
    station: Any
    progress: Any = None

    def close(self) -> None:
        self.station.close()


class StationNVNetworkFactory:
    """NV nodes whose QDriver runs over the QCoDeS drivers of each node's station YAML.

    ``stations``: node -> station YAML; ``instruments``: node -> {role: instrument name}
    (optional); ``clocks``: node -> 'virtual' | 'paced'. Instruments at ``simlab://``
    addresses get simulated backends (the NV physics of ``noise_file``, every simulated
    node on one heralding station, seeded as :func:`qnodeos_hw.nodes.simulated_nv_network`
    seeds its nodes); any other address is a real instrument. A 'paced' node runs on a
    :class:`~qnodeos_hw.qdevice.realtime.RealTimeClock` (one epoch for the network), the
    QNPU's bin wait sleeping in real time; a lab node is always paced.

    An instrument that cannot be loaded raises :class:`NodeInstrumentError` (node,
    station file, instrument, address and the driver's typed error)."""

    flavour_name = "nv"

    def __init__(self, stations: dict[str, Path], seed: int = 0, num_qubits: int = 1,
                 noise_file: Path | None = None, calibration_file: Path | None = None,
                 instruments: dict[str, dict[str, str]] | None = None,
                 clocks: dict[str, str] | None = None, bin_ns: int | None = None) -> None:
        self.stations = {n: Path(p) for n, p in stations.items()}
        self.seed, self.num_qubits = seed, num_qubits
        self.noise_file, self.calibration_file = noise_file, calibration_file
        self.instruments = dict(instruments or {})
        self.clocks = dict(clocks or {})
        self.bin_ns = bin_ns

    def set_bin_ns(self, bin_ns: int) -> None:
        self.bin_ns = bin_ns

    def build_spec(self) -> dict[str, Any]:
        """This factory as data, for a node process (``node serve``)."""
        def s(p: Any) -> Any:
            return None if p is None else str(p)
        return {"platform": "nv-station", "stations": {n: str(p) for n, p in self.stations.items()},
                "seed": self.seed, "num_qubits": self.num_qubits,
                "noise_file": s(self.noise_file), "calibration_file": s(self.calibration_file),
                "instruments": self.instruments, "clocks": self.clocks}

    def is_simulated(self, node: str) -> bool:
        from ..simulators.nv_lab import SCHEME, read_instrument_config
        cfg = read_instrument_config(self.stations[node])
        roles = station_roles(self.stations[node], self.instruments.get(node))
        return all(str(cfg[roles[r]].get("address", "")).startswith(SCHEME)
                   for r in ("hdawg", "adwin"))

    def make_nodes(self, names: list[str]) -> dict[str, StationNode]:
        from ..qdevice.clock import VirtualClock
        from ..qdevice.realtime import RealTimeClock
        from ..qdevice.spec import nv_spec
        from ..qdrivers.nv import NVQDriver
        from ..simulators.nv_lab import (NVNodeStation, SimulatedNVLab, load_station,
                                         parse_simlab_address, read_instrument_config)

        table, program = _nv_program(self.calibration_file, self.num_qubits)
        simulated = {n: self.is_simulated(n) for n in names}
        herald = registry = models = None
        gens = [np.random.default_rng(s)
                for s in np.random.SeedSequence(self.seed).spawn(len(names) + 1)]
        if any(simulated.values()):
            from ..simulators.physics import HeraldingStation, QuantumRegistry, load_noise_models
            models = load_noise_models(self.noise_file)
            registry = QuantumRegistry()
            herald = HeraldingStation(models.heralding, gens[0], registry, bin_ns=self.bin_ns)
        epoch = None
        nodes: dict[str, StationNode] = {}
        try:
            for name, gen in zip(names, gens[1:]):
                path = self.stations[name]
                roles = station_roles(path, self.instruments.get(name))
                paced = not simulated[name] or self.clocks.get(name) == "paced"
                if paced:
                    clock = RealTimeClock(epoch)
                    epoch = clock.epoch_ns
                else:
                    clock = VirtualClock()
                labs, lab, physics = {}, None, None
                if simulated[name]:
                    from ..simulators.physics import NVNode
                    physics = NVNode(name, models.nv_for(name), gen, registry, self.num_qubits,
                                     station=herald)
                    lab = SimulatedNVLab(physics, clock, self.seed, name=name)
                    cfg = read_instrument_config(path)
                    labs = {parse_simlab_address(str(cfg[roles["hdawg"]]["address"]))[0]: lab}

                def on_error(ident: str, address: str, exc: BaseException, node=name,
                             path=path) -> None:
                    raise NodeInstrumentError(node, path, ident, address, exc) from exc
                try:
                    handle = load_station(path, only=list(roles.values()), labs=labs,
                                          name_prefix=f"{name}_", on_error=on_error)
                except BaseException:
                    _close_instruments([f"{name}_{i}" for i in roles.values()])
                    raise
                comp = handle.station.components
                st = NVNodeStation(handle, lab, *(comp[f"{name}_{roles[r]}"]
                                                  for r in NV_INSTRUMENT_ROLES))
                try:
                    st.prepare(program)
                except Exception:
                    st.close()
                    raise
                probe = None
                if physics is not None:
                    probe = (lambda qs, p=physics, c=clock: p.reduced_density_matrix(qs, c.now_ns()))
                qd = NVQDriver(st.adwin, table, spec=nv_spec(self.num_qubits), now_ns=clock.now_ns,
                               state_probe=probe)
                progress = None
                if herald is not None and simulated[name]:
                    progress = (lambda t, peer=None, n=name: herald.progress(n, t))
                nodes[name] = StationNode(name, qd, clock, st, progress)
        except BaseException:
            for n in nodes.values():
                n.close()
            raise
        return nodes


def _close_instruments(names: list[str]) -> None:
    """Close the instruments of a station that failed half-way (loaded before the failure)."""
    from qcodes.instrument import Instrument
    for n in names:
        if Instrument.exist(n):
            Instrument.find_instrument(n).close()


class NodeInstrumentError(StationInstrumentError):
    """An instrument of a node's station could not be loaded or connected: names the
    node, the station file, the instrument and its address, and the driver's error."""

    def __init__(self, node: str, station: Path, instrument: str, address: str,
                 cause: BaseException) -> None:
        super().__init__(instrument, address, cause)
        self.node, self.station = node, str(station)
        self.args = (f"node '{node}' (station {station}): {self.args[0]}",)

    def __str__(self) -> str:
        return str(self.args[0])


# ------------------------------------------------------------------------------ planning
@dataclass
class NetworkPlan:
    """What :func:`qnodeos_hw.runner.network.run_app_dir` needs, from a network file."""

    config: NetworkConfig
    factory: Any
    settings: Any
    #: network node -> the app's node name it runs as
    binding: dict[str, str]


def bind_nodes(config: NetworkConfig, app_nodes: list[str]) -> dict[str, str]:
    """network node -> app node. Same names: themselves (the app may use fewer nodes than
    the network has); otherwise, with as many nodes, the app's node names in sorted order
    onto the network's nodes in file order."""
    net = list(config.nodes)
    if set(app_nodes) <= set(net):
        return {n: n for n in net if n in app_nodes}
    if len(app_nodes) == len(net):
        return dict(zip(net, sorted(app_nodes)))
    raise NetworkBindingError(config.source, "nodes",
                              f"the app runs on {len(app_nodes)} node(s) "
                              f"({', '.join(sorted(app_nodes))}) but network '{config.name}' "
                              f"has {len(net)} ({', '.join(net)}) under other names")


def _rename(config: NetworkConfig, binding: dict[str, str]) -> NetworkConfig:
    """The network restricted to the bound nodes, renamed to the app's names."""
    def pair(p):
        return (binding[p[0]], binding[p[1]])

    def kept(p):
        return p[0] in binding and p[1] in binding
    nodes = {binding[n]: replace(c, name=binding[n]) for n, c in config.nodes.items()
             if n in binding}
    ql = {k: replace(v, nodes=pair(v.nodes)) for k, v in config.quantum_links.items()
          if kept(v.nodes)}
    cl = {k: replace(v, nodes=pair(v.nodes)) for k, v in config.classical_links.items()
          if kept(v.nodes)}
    return replace(config, nodes=nodes, quantum_links=ql, classical_links=cl)


def check_supported(config: NetworkConfig, hand_started: bool = False) -> None:
    """What today's single-process network cannot build (UnsupportedNetworkError);
    ``hand_started``: a network whose nodes are started by hand (then on any hosts)."""
    nodes = list(config.nodes.values())
    nv = [n.name for n in nodes if n.platform == "nv"]
    if len(nv) > MAX_NV_NODES and any(n.station is not None for n in nodes):
        raise config.unsupported(
            "nodes", f"{len(nv)} NV nodes ({', '.join(nv)}) on station YAMLs: more than two "
            "NV nodes on lab stations are not supported yet (the station factory wires one "
            "heralding station; the built-in simulated NV nodes have one per pair)")
    platforms = sorted({n.platform for n in nodes})
    if len(platforms) > 1:
        raise config.unsupported("nodes", f"nodes of different platforms ({', '.join(platforms)}) "
                                          "in one network are not supported yet")
    if platforms == ["ion"]:
        raise config.unsupported(f"nodes.{nodes[0].name}.platform",
                                 "trapped-ion nodes cannot run SDK apps: netqasm has no compiler "
                                 "to the trapped-ion flavour")
    if len({n.qubits for n in nodes}) > 1:
        raise config.unsupported("nodes", "nodes with different numbers of qubits are not "
                                          "supported yet (one factory builds every node)")
    hosts = sorted({n.address.host for n in nodes})
    if len(hosts) > 1 and not hand_started:
        raise config.unsupported("nodes", f"nodes on different hosts ({', '.join(hosts)}): start "
                                          "each node by hand on its host (node serve --network, "
                                          "README 'Start a network by hand')")
    for b, entry in enumerate(config.schedule.bins):
        if len(entry) > 1:
            raise config.unsupported(f"schedule.bins.{b}", "several links in one time bin are "
                                                           "not supported yet (one link per bin)")
    if platforms == ["ideal"]:
        params = {(q.fidelity, q.p_success, q.random_bell) for q in config.quantum_links.values()}
        if len(params) > 1:
            raise config.unsupported("quantum_links", "ideal links with different parameters are "
                                                      "not supported yet (one IdealLink)")
        if len({n.flavour for n in nodes}) > 1:
            raise config.unsupported("nodes", "ideal nodes of different flavours in one network")
    if platforms == ["nv"]:
        for field_ in ("calibration_file",):
            if len({getattr(n, field_) for n in nodes}) > 1:
                raise config.unsupported("nodes", f"NV nodes with different {field_}s are not "
                                                  "supported yet")
        with_station = [n.name for n in nodes if n.station is not None]
        if with_station and len(with_station) != len(nodes):
            raise config.unsupported(f"nodes.{with_station[0]}.station",
                                     "some NV nodes on a station YAML and others on the built-in "
                                     "simulated station: give every NV node a station")
    lat = {json.dumps(c.latency, sort_keys=True) for c in config.classical_links.values()}
    if len(lat) > 1:
        raise config.unsupported("classical_links", "classical links with different latencies "
                                                    "are not supported yet (one latency model)")


def plan_network(config: NetworkConfig, app_nodes: list[str], seed: int | None = None,
                 time_mode: str | None = None, trace_instructions: bool = True,
                 hand_started: bool = False) -> NetworkPlan:
    """Factory and settings of the single-process network for an app (see module doc);
    ``hand_started``: for nodes started by hand (:func:`check_supported`)."""
    from ..runner.network import IdealNetworkFactory, NetworkSettings, NVNetworkFactory
    from ..timebase import load_latency_model

    check_supported(config, hand_started)
    binding = bind_nodes(config, app_nodes)
    cfg = _rename(config, binding)
    nodes = list(cfg.nodes.values())
    first = nodes[0]
    mode = time_mode or cfg.time_mode
    factory: Any
    attempt_ns: int | None = None
    if cfg.qdriver_factory:
        import importlib
        mod, fn = cfg.qdriver_factory.split(":")
        factory = getattr(importlib.import_module(mod), fn)(seed=seed, **cfg.factory_args)
    elif first.platform == "ideal":
        q = next(iter(cfg.quantum_links.values()), QuantumLinkConfig("", ("", ""), "ideal"))
        factory = IdealNetworkFactory(num_qubits=first.qubits, fidelity=q.fidelity,
                                      p_success=q.p_success, seed=seed,
                                      flavour_name=first.flavour, random_bell=q.random_bell)
    else:  # nv
        q = next(iter(cfg.quantum_links.values()), None)
        noise = q.noise_file if q is not None else None
        if first.station is None:
            factory = NVNetworkFactory(seed=seed or 0, num_qubits=first.qubits, noise_file=noise,
                                       calibration_file=first.calibration_file)
        else:
            factory = StationNVNetworkFactory(
                {n.name: n.station for n in nodes}, seed=seed or 0, num_qubits=first.qubits,
                noise_file=noise, calibration_file=first.calibration_file,
                instruments={n.name: n.instruments for n in nodes},
                clocks={n.name: n.clock for n in nodes})
            real_nodes = [n.name for n in nodes if not factory.is_simulated(n.name)]
            if real_nodes and len(real_nodes) != len(nodes) and cfg.quantum_links:
                raise config.unsupported(
                    f"nodes.{real_nodes[0]}.station", "a quantum link between a node on lab "
                    "instruments and a node on simulated ones: their qubits cannot share a "
                    "heralding station")
            for n in nodes:
                real = n.name in real_nodes
                if (real or n.clock == "paced") and mode != "host":
                    why = "runs on lab instruments" if real else "has clock: paced"
                    raise config.error("time.mode", f"node '{n.name}' {why} (real time): the "
                                                    f"time mode must be 'host', got {mode!r}")
        from ..simulators.physics import load_noise_models
        attempt_ns = load_noise_models(noise).heralding.attempt_duration_ns
    apb = cfg.schedule.attempts_per_bin
    if apb is None:  # auto: as many attempts as fit in the bin
        apb = min(0xFFFF, max(1, cfg.schedule.bin_ns // attempt_ns)) if attempt_ns else 1000
    ports = {n.name: (n.address.port, n.classical_address.port if n.classical_address else 0)
             for n in nodes}
    # bin k serves links[k % len]; a bin of a link to a node the app does not use keeps
    # its turn, attempted by nobody
    links = tuple(frozenset(binding.get(n, f"<unused:{n}>")
                            for n in config.quantum_links[entry[0]].nodes)
                  for entry in cfg.schedule.bins)
    overrides = next(iter(cfg.classical_links.values())).latency if cfg.classical_links else {}
    latency = None
    if cfg.latency_file is not None or overrides:
        latency = load_latency_model(cfg.latency_file, seed=seed or 0, overrides=overrides or None)
    settings = NetworkSettings(bin_ns=cfg.schedule.bin_ns, host=first.address.host, ports=ports,
                               seed=seed, links=links, attempts_per_bin=apb, time_mode=mode,
                               latency=latency, trace_instructions=trace_instructions)
    for n in nodes:
        if not n.address.loopback:
            log.warning("node '%s' listens on %s, not loopback: anyone who reaches this host "
                        "may connect (README, Trust model)", n.name, n.address)
    return NetworkPlan(cfg, factory, settings, binding)


# ------------------------------------------------------------------ the old --station file
LEGACY_IDEAL_KEYS = {"platform", "num_qubits", "fidelity", "p_success", "bin_ns", "flavour",
                     "random_bell", "time_mode", "latency_file"}
LEGACY_NV_KEYS = {"platform", "num_qubits", "noise_file", "calibration_file", "bin_ns",
                  "time_mode", "latency_file"}


def legacy_network(path: str | Path | None, app_nodes: list[str]) -> NetworkConfig:
    """The network an old ``run --station`` network-model YAML (or none: two ideal nodes
    of 5 qubits, one node per app node) described, with the same errors as before
    (``KeyError`` naming the key)."""
    cfg: dict = {}
    if path:
        with open(path, encoding="utf-8") as fp:
            cfg = yaml.safe_load(fp) or {}
    if not isinstance(cfg, dict):
        raise KeyError(f"station file {path}: must be a mapping")
    mode = cfg.get("time_mode")
    from . import TIME_MODES
    if mode not in (None,) + TIME_MODES:
        raise KeyError(f"station file {path}: time_mode must be one of {TIME_MODES}, got {mode!r}")
    target = cfg.get("qdriver_factory")
    platform = cfg.get("platform", "ideal")
    names = sorted(app_nodes)
    host = Address("127.0.0.1", 0)
    if target:
        platform = "custom"
    elif platform == "nv":
        unknown = set(cfg) - LEGACY_NV_KEYS
        if unknown:
            raise KeyError(f"station file {path}: unknown key(s) {sorted(unknown)} for platform nv")
    elif platform != "ideal":
        raise KeyError(f"station file {path}: platform must be 'ideal' or 'nv', got {platform!r}")
    else:
        unknown = set(cfg) - LEGACY_IDEAL_KEYS
        if unknown:
            raise KeyError(f"station file {path}: unknown key(s) {sorted(unknown)}")
    qubits = int(cfg.get("num_qubits", 5 if platform == "ideal" else 1))
    nodes = {n: NodeConfig(n, platform, qubits, host,
                           calibration_file=(Path(cfg["calibration_file"])
                                             if cfg.get("calibration_file") else None),
                           flavour=cfg.get("flavour", "vanilla")) for n in names}
    qlinks = {}
    if platform in ("ideal", "nv"):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                qlinks[f"{a}-{b}"] = QuantumLinkConfig(
                    f"{a}-{b}", (a, b), platform, float(cfg.get("fidelity", 1.0)),
                    float(cfg.get("p_success", 1.0)), bool(cfg.get("random_bell", False)),
                    Path(cfg["noise_file"]) if cfg.get("noise_file") else None)
    return NetworkConfig(
        name=f"--station {path}" if path else "default", nodes=nodes, quantum_links=qlinks,
        classical_links={}, schedule=ScheduleConfig(int(cfg.get("bin_ns", 10_000_000)), 1000, ()),
        time_mode=mode or "modelled",
        latency_file=Path(cfg["latency_file"]) if cfg.get("latency_file") else None,
        qdriver_factory=target, factory_args=dict(cfg.get("factory_args") or {}),
        source=str(path) if path else "<default>")


def _is_qcodes_station(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as fp:
            doc = yaml.safe_load(fp)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and "instruments" in doc


class AppHasNoProgramsError(ValueError):
    """``run APP_DIR``: the directory holds no ``app_<role>.py`` program."""


class StationIsNotANetworkError(NetworkConfigError):
    """``run --station`` was given a QCoDeS station YAML: it belongs to a node."""


# ------------------------------------------------------------------------------ the CLI
def app_node_names(app_dir: str) -> list[str]:
    """The node names of an app directory (one per role unless ``roles.yaml`` says)."""
    import os

    from netqasm.runtime import env
    roles = sorted(env.load_app_files(os.path.abspath(app_dir)))
    cfg = env.load_roles_config(os.path.join(os.path.abspath(app_dir), "roles.yaml")) or {}
    return sorted({cfg.get(r, r) for r in roles})


def config_for_run(network: str | None, station: str | None, app_nodes: list[str]
                   ) -> NetworkConfig:
    """The network of ``run``: ``--network``, else the deprecated ``--station``
    network-model file, else the default (ideal nodes, one per app node)."""
    if station and network:
        raise StationIsNotANetworkError(station, "<file>", "give the network with --network "
                                        "only: each node's QCoDeS station is named in the "
                                        "network file (nodes.<name>.station)")
    if network:
        return load_network(network)
    if station and _is_qcodes_station(station):
        raise StationIsNotANetworkError(
            station, "<file>", "a QCoDeS station YAML gives one node's instruments: name it "
            "under nodes.<name>.station in a network file and run with --network FILE "
            "(README, Networks)")
    config = legacy_network(station, app_nodes)
    if station:
        log.warning("--station %s: a network-model YAML on --station is deprecated; move its "
                    "keys to a network file and use --network (README, Networks)", station)
    return config


def run_cli(args: Any) -> int:
    """``qnodeos-hw run APP_DIR [--network NAME_OR_FILE] [--seed N] [--time MODE]
    [--trace FILE]``. When the app's nodes already serve at the network file's
    addresses (started by hand), only the CNPUs are started (:mod:`qnodeos_hw.runner.hand`)."""
    from ..runner.network import _jsonable, run_app_dir

    nodes = app_node_names(args.app_dir)
    if not nodes:
        raise AppHasNoProgramsError(f"application directory {args.app_dir!r} has no "
                                    "app_<role>.py files")
    config = config_for_run(getattr(args, "network", None), getattr(args, "station", None), nodes)
    processes = getattr(args, "processes", None) or "auto"
    attached = None
    if processes != "single" and getattr(args, "network", None):
        from ..runner.hand import attach_status
        attached = attach_status(config, nodes)  # the nodes already serving by hand
    plan = plan_network(config, nodes, seed=args.seed, time_mode=getattr(args, "time", None),
                        hand_started=attached is not None)
    renamed = {k: v for k, v in plan.binding.items() if k != v}
    if renamed:
        log.info("network '%s': %s", config.name,
                 ", ".join(f"node {k} runs the app's {v}" for k, v in renamed.items()))
    if attached is not None:
        processes = "attached"
        log.info("network '%s': nodes %s serve at their addresses: running the CNPUs only",
                 config.name, ", ".join(attached))
    if processes == "auto":  # every node its own process where the network allows it
        from ..runner.per_node import supports_per_node
        processes = "per-node" if supports_per_node(plan.factory) else "single"
        log.info("network '%s': %s layout", config.name, processes)
    if processes == "attached":
        from ..runner.hand import run_attached
        res = run_attached(args.app_dir, config, plan)
    elif processes == "per-node":
        from netqasm.runtime import env

        from ..runner.per_node import run_per_node
        app = os.path.abspath(args.app_dir)
        roles = sorted(env.load_app_files(app))
        roles_cfg = env.load_roles_config(os.path.join(app, "roles.yaml")) or {}
        res = run_per_node({r: {"app_dir": app} for r in roles}, plan.factory, plan.settings,
                           roles=roles_cfg)
    else:
        res = run_app_dir(args.app_dir, plan.factory, plan.settings)
    for role, o in sorted(res.outcomes.items()):
        if o.error:
            print(f"[{role}] FAILED: {o.error}", file=sys.stderr)
    if args.trace:
        n = res.trace.save(args.trace)
        print(f"trace: {n} events -> {args.trace}", file=sys.stderr)
    print(json.dumps({r: o.result for r, o in sorted(res.outcomes.items())}, default=_jsonable))
    return 0 if res.ok else 1
