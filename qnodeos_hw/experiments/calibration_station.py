"""The NV station a calibration runs on: its HDAWG, controller and MW source drivers.

:func:`open_calibration_station` loads a QCoDeS station YAML. Instruments with
``simlab://`` addresses (the built-in ``sim`` station) get a simulated NV lab under
the ordinary drivers (:func:`qnodeos_hw.simulators.nv_lab.open_nv_node`), driving the
NV physics given here; waiting then moves the lab's virtual clock. Any other
station is loaded as it is (real instruments) and waiting sleeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from ..simulators.nv_lab import (SCHEME, load_station, open_nv_node, parse_simlab_address,
                                 read_instrument_config)

#: the built-in simulated station
SIM_STATION = Path(__file__).resolve().parents[1] / "instruments" / "stations" / "sim.yaml"
#: driver class names that identify each role in a station YAML
_ROLE_TYPES = {"hdawg": "ZIHDAWG", "adwin": "ADwinController", "mw": "SGS100A"}


class StationFileError(FileNotFoundError):
    """The station YAML does not exist, cannot be read, or lacks an NV role; ``path``
    names the file."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"station file {path}: {message}")
        self.path = path


@dataclass
class CalibrationStation:
    """Drivers of one NV node plus how to wait on it.

    ``physics``: the simulated qubit backend, or None on a real station;
    ``wait_ns(ns)``: let ``ns`` nanoseconds pass (virtual or wall clock);
    ``now_ns()``: the node's time (virtual ns; wall ns on a real station).
    """

    source: str
    hdawg: Any
    adwin: Any
    mw: Any
    physics: Any
    wait_ns: Callable[[int], None]
    now_ns: Callable[[], int]
    _close: Callable[[], None]

    @property
    def simulated(self) -> bool:
        return self.physics is not None

    def load_node_program(self, program: Any) -> None:
        """Load the NV node program (DD idle + table entries; an ``HdawgProgram``) and set
        the controller's DIO protocol to match it; MW source on."""
        self.hdawg.load_nv_program(program)
        self.adwin.configure_dio("toggle", int(getattr(program, "dio_toggle_bit", 8)))
        self.mw.status("on")

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "CalibrationStation":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_station_config(station_file: str | Path | None) -> tuple[Path, dict[str, dict]]:
    """The station file (default: the built-in sim) and its ``instruments`` section;
    :class:`StationFileError` if it is missing or unreadable."""
    path = Path(station_file) if station_file is not None else SIM_STATION
    if not path.is_file():
        raise StationFileError(path, "no such file")
    try:
        cfg = read_instrument_config(path)
    except OSError as exc:
        raise StationFileError(path, f"cannot be read: {exc}") from exc
    except (yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        raise StationFileError(path, f"is not a station YAML ({exc})") from exc
    return path, cfg


def _roles(path: Path, cfg: dict[str, dict]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for ident, c in cfg.items():
        addr, typ = str((c or {}).get("address", "")), str((c or {}).get("type", ""))
        if addr.startswith(SCHEME):
            roles.setdefault(parse_simlab_address(addr)[1], ident)
            continue
        for role, cls in _ROLE_TYPES.items():
            if typ.endswith(cls):
                roles.setdefault(role, ident)
    missing = sorted(set(_ROLE_TYPES) - set(roles))
    if missing:
        raise StationFileError(path, f"no instrument for role(s) {missing} "
                                     "(an HDAWG, an ADwin controller and an SGS100A are needed)")
    return roles


def open_calibration_station(station_file: str | Path | None = None, *, physics: Any = None,
                             seed: int = 1, name: str = "cal") -> CalibrationStation:
    """Open the NV node of ``station_file`` (default: the built-in sim station).

    On a simulated station ``physics`` is the NV qubit backend (None: the packaged
    noise model, seeded with ``seed``); instruments are named ``<name>_<ident>``."""
    path, cfg = read_station_config(station_file)
    roles = _roles(path, cfg)
    simulated = any(str((cfg[roles[r]] or {}).get("address", "")).startswith(SCHEME)
                    for r in ("hdawg", "adwin"))
    if simulated:
        node = open_nv_node(physics=physics, seed=seed, name=name, config_file=path)
        clock = node.clock
        return CalibrationStation(
            str(path), node.hdawg, node.adwin, node.mw, node.lab.physics,
            wait_ns=lambda ns: clock.advance_to(clock.now_ns() + int(ns)),
            now_ns=clock.now_ns, _close=node.close)
    handle = load_station(path, only=roles.values(), name_prefix=f"{name}_")
    comp = handle.station.components
    return CalibrationStation(
        str(path), comp[f"{name}_{roles['hdawg']}"], comp[f"{name}_{roles['adwin']}"],
        comp[f"{name}_{roles['mw']}"], None, wait_ns=lambda ns: time.sleep(ns / 1e9),
        now_ns=time.perf_counter_ns, _close=handle.close)
