"""Wiring of a simulated NV lab: the backends that sit under the ordinary drivers.

:class:`SimulatedNVLab` creates, on one clock and one NV physics backend:

* ``hdawg_connection`` -- a :class:`~.hdawg_sim.SimulatedHDAWGConnection` (the LabOne
  data server with one HDAWG; give it to ``ZIHDAWG(connection=...)``);
* ``adwin`` -- a :class:`~.adwin_sim.SimulatedADwin` (give it to
  ``ADwinController(adwin=...)``), whose DIO output is wired to the HDAWG's DIO
  input (the "cable").

Station YAMLs name these backends with ``simlab://<lab>/<role>`` addresses
(role ``hdawg`` or ``adwin``). :func:`load_station` resolves them: one lab per
``<lab>``, its backend objects passed to the drivers as keyword arguments
through ``Station.load_instrument(name, **kwargs)``. Drivers never learn that
they are simulated. No global registry: the labs live in the returned
:class:`StationHandle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from qcodes.station import Station

from ..qdevice.clock import Clock, VirtualClock
from ..qdevice.spec import QDeviceSpec, nv_spec
from ..qdevice.ticklink import BusyPolicy
from .adwin_sim import SimulatedADwin
from .hdawg_sim import SimulatedHDAWGConnection
from .qubit_backend import NVQubitBackend

SCHEME = "simlab://"


class SimLabAddressError(ValueError):
    """A ``simlab://`` address that names no lab role (``hdawg`` or ``adwin``)."""


def default_nv_physics(name: str, seed: int) -> NVQubitBackend:
    """The packaged NV physics (paper noise defaults), seeded."""
    import numpy as np

    from .physics import NVNode, QuantumRegistry, load_noise_models
    models = load_noise_models()
    return NVNode(name, models.nv_for(name), np.random.default_rng(seed), QuantumRegistry())


def set_controller_timings(adwin: SimulatedADwin, model: Any) -> None:
    """The controller's durations from the NV noise model (``nv`` section of the noise-model
    YAML, where each has its source): CR check, charge repump, CR attempts, spin pumping,
    readout, carbon initialisation. The simulated lab's ADwin starts with these; a real
    ADwin gets them from the station YAML."""
    from .adwin_sim import (PAR_CARBON_INIT_NS, PAR_CHARGE_REPUMP_NS, PAR_CR_CHECK_NS,
                            PAR_CR_MAX_ATTEMPTS, PAR_INIT_NS, PAR_READOUT_NS)
    for par, value in ((PAR_CR_CHECK_NS, model.cr_check_ns),
                       (PAR_CHARGE_REPUMP_NS, model.charge_repump_ns),
                       (PAR_CR_MAX_ATTEMPTS, model.cr_max_attempts),
                       (PAR_INIT_NS, model.spin_pump_ns), (PAR_READOUT_NS, model.readout_ns),
                       (PAR_CARBON_INIT_NS, model.carbon_init_ns)):
        adwin.Set_Par(par, int(value))


class SimulatedNVLab:
    """One simulated NV node's instrument backends (see module docstring).

    ``physics``: the NV qubit backend (None: the packaged physics, seeded with
    ``seed``); ``clock``: the node clock (default a fresh VirtualClock; share one
    clock between labs of one network).
    """

    def __init__(self, physics: NVQubitBackend | None = None, clock: Clock | None = None,
                 seed: int = 0, *, name: str = "nv", serial: str = "dev8001",
                 devtype: str = "HDAWG8", adwin_device_no: int = 1,
                 spec: QDeviceSpec | None = None, fifo_depth: int = 16,
                 policy: BusyPolicy = BusyPolicy.QUEUE, record: bool = False) -> None:
        self.name, self.seed = name, seed
        self.clock = clock if clock is not None else VirtualClock()
        self.physics = physics if physics is not None else default_nv_physics(name, seed)
        self.hdawg_connection = SimulatedHDAWGConnection(self.clock, self.physics,
                                                         serial=serial, devtype=devtype)
        nq = int(getattr(self.physics, "num_qubits", 1))
        self.adwin = SimulatedADwin(self.clock, self.hdawg_connection, self.physics,
                                    spec=spec or nv_spec(nq), DeviceNo=adwin_device_no,
                                    fifo_depth=fifo_depth, policy=policy, record=record)
        model = getattr(self.physics, "model", None)
        if model is not None and hasattr(model, "cr_check_ns"):
            set_controller_timings(self.adwin, model)

    def instrument_kwargs(self, role: str) -> dict[str, Any]:
        """Driver keyword arguments that plug this lab's backend for ``role`` in."""
        if role == "hdawg":
            c = self.hdawg_connection
            return {"connection": c, "address": f"{c.host}:{c.port}"}
        if role == "adwin":
            return {"adwin": self.adwin, "address": str(self.adwin.DeviceNo)}
        raise SimLabAddressError(f"lab '{self.name}' has no instrument role '{role}' "
                                 "(roles: hdawg, adwin)")


def parse_simlab_address(address: str) -> tuple[str, str]:
    """``simlab://<lab>/<role>`` -> ``(lab, role)``."""
    rest = address[len(SCHEME):] if address.startswith(SCHEME) else None
    lab, _, role = (rest or "").partition("/")
    if not lab or role not in ("hdawg", "adwin"):
        raise SimLabAddressError(f"'{address}' is not simlab://<lab>/<hdawg|adwin>")
    return lab, role


@dataclass
class StationHandle:
    """A loaded station and the simulated labs behind its ``simlab://`` instruments."""

    station: Station
    labs: dict[str, SimulatedNVLab] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.station.components[name]

    def close(self) -> None:
        """Close every instrument of the station."""
        for name in list(self.order):
            inst = self.station.components.get(name)
            if inst is not None and hasattr(inst, "close"):
                inst.close()
            self.station.components.pop(name, None)


def read_instrument_config(config_file: str | Path) -> dict[str, dict[str, Any]]:
    """The ``instruments`` section of a station YAML."""
    doc = yaml.safe_load(Path(config_file).read_text()) or {}
    return dict(doc.get("instruments") or {})


def load_station(config_file: str | Path, *, only: Iterable[str] | None = None,
                 labs: dict[str, SimulatedNVLab] | None = None, physics: Any = None,
                 clock: Clock | None = None, seed: int = 0, name_prefix: str = "",
                 on_error: Any = None, default: bool = False) -> StationHandle:
    """Load a station YAML with QCoDeS ``Station`` and connect its instruments.

    ``simlab://`` instruments get their lab's backends (``labs`` given, or created
    here with ``physics``/``clock``/``seed``). ``only`` restricts which instruments
    are loaded; ``name_prefix`` renames them (several nodes in one process).
    ``on_error(name, address, exc)``: called instead of raising, to go on with the
    other instruments (the station check); it may re-raise.
    ``default``: make the loaded station qcodes' default station (``Station.default``,
    as ``Station(config_file=...)`` does); off by default, so that loading a station --
    the demonstrations' snapshots, the station check, a node -- leaves the default
    station a user's session set where it was.
    """
    station = Station(config_file=str(config_file), default=default)
    handle = StationHandle(station, dict(labs or {}))
    for ident, cfg in read_instrument_config(config_file).items():
        if only is not None and ident not in set(only):
            continue
        address = str(cfg.get("address", ""))
        kwargs: dict[str, Any] = {}
        if name_prefix:
            kwargs["name"] = name_prefix + ident
        try:
            if address.startswith(SCHEME):
                lab_name, role = parse_simlab_address(address)
                if lab_name not in handle.labs:
                    handle.labs[lab_name] = SimulatedNVLab(physics, clock, seed, name=lab_name)
                kwargs.update(handle.labs[lab_name].instrument_kwargs(role))
            inst = station.load_instrument(ident, **kwargs)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(ident, address, exc)
            continue
        handle.order.append(inst.name)
    return handle


@dataclass
class NVNodeStation:
    """A simulated NV node as the QDriver sees it: drivers + the lab behind them."""

    handle: StationHandle
    lab: SimulatedNVLab
    hdawg: Any
    adwin: Any
    mw: Any

    @property
    def clock(self) -> Clock:
        return self.lab.clock

    def prepare(self, program: Any, *, mw_on: bool = True) -> None:
        """Make the node ready to run: load the HDAWG program (an object like
        :class:`qnodeos_hw.sequences.hdawg_program.HdawgProgram`: ``seqc``, ``waveforms``,
        ``command_table``, ``sample_rate_hz``; its DIO protocol: codeword in bits
        ``0..DIO_TOGGLE_BIT-1``, request = toggle of that bit), set the controller to
        the same protocol, switch the MW source on."""
        bit = int(getattr(program, "dio_toggle_bit", 8))
        self.hdawg.load_nv_program(program)
        self.adwin.configure_dio("toggle", bit)
        self.adwin.load_entry_targets(tuple(getattr(program, "entry_targets", ())))
        if mw_on:
            self.mw.status("on")

    def close(self) -> None:
        self.handle.close()


def open_nv_node(physics: NVQubitBackend | None = None, clock: Clock | None = None,
                 seed: int = 0, *, name: str = "nv", config_file: str | Path | None = None,
                 program: Any = None, **lab_kwargs: Any) -> NVNodeStation:
    """Create a simulated NV lab and load its HDAWG, ADwin and MW source from the
    ``sim`` station YAML (or ``config_file``), instrument names prefixed ``<name>_``;
    with ``program`` (an HdawgProgram) the node is made ready (:meth:`NVNodeStation.prepare`)."""
    if config_file is None:
        config_file = Path(__file__).resolve().parents[1] / "instruments" / "stations" / "sim.yaml"
    lab = SimulatedNVLab(physics, clock, seed, name=name, **lab_kwargs)
    cfg = read_instrument_config(config_file)
    roles = {}
    for ident, c in cfg.items():
        addr = str(c.get("address", ""))
        if addr.startswith(SCHEME):
            roles[parse_simlab_address(addr)[1]] = ident
        elif "SGS100A" in str(c.get("type", "")):
            roles["mw"] = ident
    missing = {"hdawg", "adwin", "mw"} - set(roles)
    if missing:
        raise SimLabAddressError(f"{config_file}: no instrument for {sorted(missing)}")
    labs = {parse_simlab_address(str(cfg[roles["hdawg"]]["address"]))[0]: lab}
    handle = load_station(config_file, only=roles.values(), labs=labs, name_prefix=f"{name}_")
    comp = handle.station.components
    node = NVNodeStation(handle, lab, comp[f"{name}_{roles['hdawg']}"],
                         comp[f"{name}_{roles['adwin']}"], comp[f"{name}_{roles['mw']}"])
    if program is not None:
        try:
            node.prepare(program)
        except Exception:
            node.close()
            raise
    return node


class AttemptDurationMismatchError(ValueError):
    """The calibration's entanglement attempt (``ent_attempt_duration_s``, the AWG's
    attempt entry) and the noise model's (``heralding.attempt_duration_ns``, what the
    physics and the controller's Par_8 time an attempt by) disagree."""


def check_attempt_duration(calibration_file: Any, heralding: Any) -> int:
    """One attempt duration (ns) for the whole simulated node: the noise model's
    ``heralding.attempt_duration_ns`` (physics, Par_8, ``attempts_per_bin: auto``); the
    calibration's ``ent_attempt_duration_s`` must agree within 1 ns, or
    :class:`AttemptDurationMismatchError` names both files and values."""
    from ..waveforms.calibration import load_calibration
    cal = load_calibration(calibration_file)
    ns = int(heralding.attempt_duration_ns)
    if abs(cal.ent_attempt_duration_s * 1e9 - ns) > 1.0:
        raise AttemptDurationMismatchError(
            f"entanglement attempt: calibration {cal.source} has ent_attempt_duration_s = "
            f"{cal.ent_attempt_duration_s!r} s, the noise model's heralding.attempt_duration_ns "
            f"is {ns} ns; give both the same duration")
    return ns
