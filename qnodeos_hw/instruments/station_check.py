"""``qnodeos-hw station check [--config FILE]``: load a QCoDeS station, connect every
instrument, print its identity and key settings.

The default configuration is the packaged ``sim`` station. Instruments with
``simlab://`` addresses get their simulated backends from
:func:`qnodeos_hw.simulators.nv_lab.load_station` (imported only when such an
address appears); everything else is loaded by QCoDeS as written in the YAML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qcodes.instrument import Instrument

from .stations import station_file

#: parameters shown per instrument class (dotted paths); others: top-level parameters
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "ZIHDAWG": ("sample_rate", "reference_clock", "dio_mode", "ch1.output", "ch1.range",
                "ch2.output", "ch2.range", "awg1.enabled", "awg1.ready"),
    "ADwinController": ("process_running", "tick_rate", "cr_threshold", "ssro_threshold",
                        "cr_max_attempts", "ticks"),
    "RohdeSchwarzSGS100A": ("status", "frequency", "power", "phase", "IQ_state",
                            "ref_osc_source"),
}
KEY_SETTINGS["SGS100A"] = KEY_SETTINGS["RohdeSchwarzSGS100A"]  # ours: qcodes' driver, logged


class StationInstrumentError(RuntimeError):
    """An instrument of the station could not be loaded or connected.

    ``instrument`` and ``address`` name it; ``cause`` is the driver's error."""

    def __init__(self, instrument: str, address: str, cause: BaseException) -> None:
        self.instrument, self.address, self.cause = instrument, address, cause
        super().__init__(f"instrument '{instrument}' at '{address}': "
                         f"{type(cause).__name__}: {cause}")


class NoIdentityError(ConnectionError):
    """The instrument opened but answered no identity (nothing behind the address)."""


@dataclass(frozen=True)
class InstrumentReport:
    """What the check found for one instrument (``error`` None when it connected)."""

    name: str
    address: str
    idn: dict[str, Any] | None
    settings: tuple[tuple[str, Any, str], ...]
    seconds: float  # time to read identity and settings (s)
    error: StationInstrumentError | None = None


def _resolve(inst: Any, path: str) -> Any:
    obj = inst
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def key_settings(inst: Instrument) -> tuple[tuple[str, Any, str], ...]:
    """``(parameter, value, unit)`` of the instrument's key settings."""
    paths = KEY_SETTINGS.get(type(inst).__name__) or tuple(
        n for n in inst.parameters if n != "IDN")
    rows = []
    for path in paths:
        try:
            p = _resolve(inst, path)
            rows.append((path, p.get(), getattr(p, "unit", "")))
        except Exception as exc:  # a setting that cannot be read is reported, not fatal
            rows.append((path, f"<unreadable: {type(exc).__name__}: {exc}>", ""))
    return tuple(rows)


def check_station(config_file: str | Path | None = None, *, strict: bool = False,
                  close: bool = True) -> list[InstrumentReport]:
    """Load every instrument of the station and describe it.

    With ``strict`` the first failure raises :class:`StationInstrumentError`;
    otherwise failures are reported and the check goes on.
    """
    from ..simulators.nv_lab import load_station, read_instrument_config

    config_file = Path(config_file) if config_file else station_file("sim")
    cfg = read_instrument_config(config_file)
    errors: dict[str, StationInstrumentError] = {}

    def on_error(name: str, address: str, exc: BaseException) -> None:
        err = StationInstrumentError(name, address, exc)
        if strict:
            raise err from exc
        errors[name] = err

    handle = load_station(config_file, on_error=on_error)
    reports = []
    try:
        for ident, c in cfg.items():
            address = str(c.get("address", ""))
            if ident in errors:
                reports.append(InstrumentReport(ident, address, None, (), 0.0, errors[ident]))
                continue
            inst = handle.station.components[ident]
            t = time.perf_counter()
            idn = inst.get_idn()
            if not (idn.get("vendor") or idn.get("model")):
                err = StationInstrumentError(ident, address, NoIdentityError(
                    f"no identity answered ({idn})"))
                if strict:
                    raise err
                reports.append(InstrumentReport(ident, address, None, (), 0.0, err))
                continue
            reports.append(InstrumentReport(ident, address, idn, key_settings(inst),
                                            time.perf_counter() - t))
    finally:
        if close:
            handle.close()
    return reports


def format_report(reports: list[InstrumentReport], config_file: str | Path) -> str:
    lines = [f"station: {config_file}"]
    for r in reports:
        if r.error is not None:
            lines.append(f"  {r.name:<12} {r.address:<40} FAILED  {r.error}")
            continue
        idn = r.idn or {}
        ident = " ".join(str(idn.get(k) or "") for k in ("vendor", "model", "serial",
                                                           "firmware")).strip()
        lines.append(f"  {r.name:<12} {r.address:<40} OK      {ident}")
        for path, value, unit in r.settings:
            lines.append(f"      {path:<22} {value!s:<24} {unit}")
    ok = sum(r.error is None for r in reports)
    lines.append(f"{ok}/{len(reports)} instruments connected")
    return "\n".join(lines)


def run_cli(args: Any) -> int:
    """Entry point of ``qnodeos-hw station check``; exit code 1 if any instrument failed."""
    config = getattr(args, "config", None) or station_file("sim")
    try:
        reports = check_station(config)
    finally:
        Instrument.close_all()
    print(format_report(reports, config))
    return 0 if all(r.error is None for r in reports) else 1
