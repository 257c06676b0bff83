"""Node factories: a node's QDriver on its station, simulated or in the lab.

This is the one place that wires a *simulated* station together (physics +
vendor-API simulators + the ordinary QCoDeS drivers + the QDriver); the drivers
and QDrivers themselves never know. A lab builds the same QDrivers over drivers
loaded from its own station YAML (see ``instruments/stations/lab.yaml``).

* :func:`simulated_nv_network` -- NV nodes sharing one heralding station and one
  quantum registry (so their qubits can be entangled), each with its own virtual
  clock (nodes may run in separate threads).
* :func:`simulated_ion_node` -- one trapped-ion node.

``SimulatedNode.qdriver.qubit_state`` returns the physics' density matrix (the
``state_probe``); on a lab station it raises ``NotSimulatedError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .qdevice.clock import VirtualClock
from .qdevice.spec import ion_spec, nv_spec
from .qdrivers.base import QDriver


@dataclass
class SimulatedNode:
    """One simulated node: its QDriver and what must be closed with it."""

    name: str
    platform: str
    qdriver: QDriver
    clock: VirtualClock
    physics: Any
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    #: ``progress(t_ns, peer=None)``: the node's clock reached t_ns -- or, with ``peer``,
    #: it attempts nothing with that peer before t_ns (tells its heralding station,
    #: which then stops waiting for windows of bins the node has passed)
    progress: Callable[[int], None] | None = None

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


_PROGRAMS: dict[tuple, tuple] = {}


def _nv_program(calibration_file: str | Path | None, n_carbons: int = 0,
                carbons_file: str | Path | None = None):
    """(table, HDAWG program) of the calibration with gates for the first ``n_carbons``
    carbons of the register (built once per process; both are immutable)."""
    from .sequences.hdawg_program import build_hdawg_program
    from .waveforms.calibration import load_calibration
    from .waveforms.carbon_gates import load_carbon_register
    from .waveforms.table import build_table

    key = (str(calibration_file), n_carbons, str(carbons_file))
    hit = _PROGRAMS.get(key)
    if hit is None:
        cal = load_calibration(calibration_file)
        register = load_carbon_register(carbons_file).first(n_carbons) if n_carbons else None
        table = build_table(cal, carbons=register)
        hit = _PROGRAMS[key] = (table, build_hdawg_program(table, cal))
    return hit


def simulated_nv_network(names: tuple[str, ...] = ("client", "server"), seed: int = 0,
                         noise_file: str | Path | None = None, num_qubits: int = 1,
                         calibration_file: str | Path | None = None,
                         bin_ns: int | None = None) -> dict[str, SimulatedNode]:
    """NV nodes on simulated stations; every pair of them can entangle through one
    heralding station (paper defaults from the noise model, or ``noise_file``), which
    pairs attempt windows by time bin when ``bin_ns`` is given.

    ``num_qubits``: the electron and ``num_qubits - 1`` carbons (0..5; the first ones of
    the noise model's ``nv.carbons`` and of the carbon register the table's gates are
    designed from, ``waveforms/nv_carbons.yaml``)."""
    _check_nv_qubits(num_qubits)
    from .simulators.physics import HeraldingStation, NVNode, QuantumRegistry, load_noise_models

    models = load_noise_models(noise_file)
    registry = QuantumRegistry()
    gens, pairs, link_gens = _nv_streams(names, seed)
    stations = {p: HeraldingStation(models.heralding, g, registry, name=_station_name(k, p),
                                    bin_ns=bin_ns)
                for k, (p, g) in enumerate(zip(pairs, link_gens))}
    table, program = _nv_program(calibration_file, num_qubits - 1)
    from .simulators.nv_lab import check_attempt_duration
    check_attempt_duration(calibration_file, models.heralding)  # one attempt duration
    nodes: dict[str, SimulatedNode] = {}
    try:
        for name, gen in zip(names, gens[1:]):
            physics = NVNode(name, models.nv_for(name), gen, registry, num_qubits)
            mine = [(p, st) for p, st in stations.items() if name in p]
            nodes[name] = _wire_nv_node(name, names, physics, mine, seed, num_qubits, table,
                                        program)
    except Exception:
        for n in nodes.values():
            n.close()
        raise
    return nodes


def _check_nv_qubits(num_qubits: int) -> None:
    if not 1 <= num_qubits <= 6:
        from .simulators.physics.errors import QubitAddressError
        raise QubitAddressError(f"an NV node has the electron and 0..5 carbons: num_qubits "
                                f"must be 1..6, got {num_qubits}")


def _nv_streams(names: tuple[str, ...], seed: int
                ) -> tuple[list, list[tuple[str, str]], list]:
    """(generators: [first station's, node 0's, node 1's, ...], the node pairs, one
    generator per pair) of the NV network ``names`` with ``seed``. One heralding station
    per pair of nodes (an optical link each); the first pair's station draws from the
    stream of the two-node network (same seed, same bytes)."""
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(names) + 1)]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    link_gens = [gens[0]] + [np.random.default_rng(s) for s in
                             np.random.SeedSequence([seed, 1]).spawn(max(0, len(pairs) - 1))]
    return gens, pairs, link_gens


def _station_name(k: int, pair: tuple[str, str]) -> str:
    return "heralding" if k == 0 else f"heralding-{pair[0]}-{pair[1]}"


def _wire_nv_node(name: str, names: tuple[str, ...], physics: Any, mine: list, seed: int,
                  num_qubits: int, table: Any, program: Any) -> SimulatedNode:
    """Node ``name``'s simulated station and QDriver over ``physics``, attached to its
    heralding stations ``mine`` (``[(pair, station)]`` in pair order; link k = the k-th)."""
    from .qdrivers.nv import NVQDriver
    from .simulators.nv_lab import open_nv_node

    links = {}
    for k, (p, st) in enumerate(mine):
        st.attach(physics)
        links[p[1] if p[0] == name else p[0]] = k
    clock = VirtualClock()
    st_ = open_nv_node(physics=physics, clock=clock, seed=seed, name=name, program=program)
    if mine:  # the controller times attempts by the heralding model's duration (Par_8)
        from .simulators.adwin_sim import PAR_ENT_ATTEMPT_NS
        st_.lab.adwin.Set_Par(PAR_ENT_ATTEMPT_NS, int(mine[0][1].model.attempt_duration_ns))
    if len(names) > 2:  # the controller selects the optical link per attempt window
        from .simulators.adwin_sim import PAR_OPTICAL_LINKS
        st_.lab.adwin.Set_Par(PAR_OPTICAL_LINKS, max(1, len(links)))
    probe = (lambda qs, p=physics, c=clock: p.reduced_density_matrix(qs, c.now_ns()))
    qd = NVQDriver(st_.adwin, table, spec=nv_spec(num_qubits), now_ns=clock.now_ns,
                   state_probe=probe, links=links if len(names) > 2 else None)
    by_peer = {(p[1] if p[0] == name else p[0]): st for p, st in mine}

    def progress(t: int, peer: str | None = None, n: str = name,
                 by_peer: dict = by_peer) -> None:
        for other, st in by_peer.items():
            if peer is None or peer == other:
                st.progress(n, t)

    return SimulatedNode(name, "nv", qd, clock, physics, [st_.close], progress=progress)


def simulated_nv_node_distributed(name: str, names: tuple[str, ...], seed: int = 0,
                                  noise_file: str | Path | None = None, num_qubits: int = 1,
                                  calibration_file: str | Path | None = None,
                                  bin_ns: int | None = None,
                                  links: dict[str, tuple[str, int]] | None = None,
                                  secret: str | bytes = "", host: str = "127.0.0.1",
                                  port: int = 0, timeout_s: float = 30.0) -> SimulatedNode:
    """Node ``name`` of the NV network ``names`` for a process of its own: the node
    ``simulated_nv_network(names, seed, ...)[name]`` gives (same generator streams, same
    draws), over a :class:`~qnodeos_hw.simulators.physics.distributed.DistributedRegistry`
    serving on ``host:port`` (loopback, any free port by default) and one
    :class:`~qnodeos_hw.simulators.physics.distributed.RemoteStation` per pair of
    ``names`` with this node, talking to the link process at ``links[peer]`` = (host,
    port) (a pair without an address keeps its link number and refuses attempts).
    ``secret``: the network's physics secret (hex or bytes)."""
    _check_nv_qubits(num_qubits)
    from .simulators.physics import NVNode, load_noise_models
    from .simulators.physics.distributed import (DistributedRegistry, RemoteStation,
                                                 UnservedStation, link_holder)

    names = tuple(names)
    if name not in names:
        raise ValueError(f"node '{name}' is not one of the network's nodes {names}")
    links = dict(links or {})
    unknown = sorted(set(links) - set(names) - {name})
    if unknown:
        raise ValueError(f"node '{name}': links to {unknown}, which are not nodes of {names}")
    models = load_noise_models(noise_file)
    gens, pairs, _ = _nv_streams(names, seed)
    holders = {link_holder(p): p for p in pairs}
    addresses = {}
    for p in pairs:
        peer = p[1] if p[0] == name else p[0]
        if name in p and peer in links:
            addresses[link_holder(p)] = (str(links[peer][0]), int(links[peer][1]))
    registry = DistributedRegistry(name, set(names) | set(holders), secret, host=host, port=port,
                                   addresses=addresses, owners=names, timeout_s=timeout_s)
    try:
        physics = NVNode(name, models.nv_for(name), gens[1 + names.index(name)], registry,
                         num_qubits)
        mine = []
        for k, p in enumerate(pairs):
            if name in p:
                cls = RemoteStation if link_holder(p) in addresses else UnservedStation
                mine.append((p, cls(models.heralding, p, registry, link_holder(p),
                                    name=_station_name(k, p), bin_ns=bin_ns)))
        table, program = _nv_program(calibration_file, num_qubits - 1)
        from .simulators.nv_lab import check_attempt_duration
        check_attempt_duration(calibration_file, models.heralding)  # one attempt duration
        node = _wire_nv_node(name, names, physics, mine, seed, num_qubits, table, program)
    except Exception:
        registry.close()
        raise
    node._closers.insert(0, registry.close)
    return node


def simulated_ion_node(name: str = "ion", seed: int = 0,
                       noise_file: str | Path | None = None) -> SimulatedNode:
    """A trapped-ion node: serial ``sim://`` bridge with the packaged ion physics."""
    from qcodes.instrument import Instrument

    from .instruments.ion_bridge import IonFPGABridge
    from .qdrivers.ion import IonQDriver
    from .simulators.physics import IonNode, QuantumRegistry, load_noise_models

    models = load_noise_models(noise_file)
    physics = IonNode(name, models.ion_for(name), np.random.default_rng(seed), QuantumRegistry())
    bridge = IonFPGABridge(f"{name}_bridge", "sim://ion",
                           protocol_handler_packages=["qnodeos_hw.simulators.serial_sim"])
    try:
        bridge.port.attach(physics)
        clock = VirtualClock()
        probe = (lambda qs: physics.reduced_density_matrix(qs, clock.now_ns()))
        qd = IonQDriver(bridge, clock, spec=ion_spec(), state_probe=probe)
    except Exception:
        bridge.close()
        raise
    return SimulatedNode(name, "ion", qd, clock, physics,
                         [lambda: Instrument.exist(bridge.name) and bridge.close()])
