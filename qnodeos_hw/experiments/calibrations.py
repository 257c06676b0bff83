"""``qnodeos-hw calibrate rabi|ramsey|dd|ssro``: calibrations on the NV station.

Each calibration runs its pulse sequence through the station's drivers
(:mod:`.scans`), fits the data (:mod:`.fits`), writes a new version of what it
calibrated (the previous version kept), a PNG of data and fit, and a JSON result:

=========  ==============================================  ==================================
name       sequence                                        writes
=========  ==============================================  ==================================
rabi       calibration program: 2 x x(pi) scaled by the    ``calibration`` YAML:
           command-table amplitude (no DD)                 ``pulses.<gate_shape>.pi_amplitude``
ramsey     calibration program: x(pi/2) - free evolution   ``calibration`` YAML: ``detuning_hz``
           (sample precise) - x(pi/2) or y(pi/2)           (qubit minus MW frequency)
dd         NV node program: x(pi/2) - DD idle - x(-pi/2)   ``noise_model`` YAML: ``nv.t_coh_s``
           or x(pi/2), differential readout
ssro       calibration program: INIT, herald readout,      ``noise_model`` YAML:
           [x(pi)], readout                                ``nv.readout_f0/f1``,
                                                           ``nv.init_fidelity``
=========  ==============================================  ==================================

Output folder ``out``: ``calibration.vN.yaml`` (+ ``calibration.yaml``, the current
copy; loads with :func:`qnodeos_hw.waveforms.calibration.load_calibration`) and
``noise_model.vN.yaml`` (+ ``noise_model.yaml``; the measured node parameters as a
noise-model overlay, loads with :func:`qnodeos_hw.simulators.physics.load_noise_models`,
so a simulated node can be set up like the measured one). The calibration record
has no T_coh or readout-fidelity keys, hence the second file. The input
calibration is ``--calibration FILE``, else ``out/calibration.yaml``, else the
shipped default; when it differs from the newest stored version it is stored
first, so the history always holds what the new version replaced.

On a simulated station the JSON also holds the physics model's true values.

Every run is also a QCoDeS dataset (``--db``, default ``out/calibrations.db``; its own
connection, qcodes' configuration untouched: :mod:`.datasets`): each scan point is
added as it is measured, with labels and SI units, the scan settings and seed as
metadata ``inputs``, the fit and measured values as metadata ``fit`` / ``measured``,
and the station's snapshot.

Weak fits are refused (:class:`WeakFitError`; ``--force`` writes the version anyway;
the PNG, JSON and dataset are written either way, the JSON says why it was refused):

* a fitted parameter at the edge of the scan -- within :data:`EDGE_MARGIN` (5 %) of the
  scanned range's ends, or outside it: the Rabi pi amplitude against the scanned
  amplitudes, T_coh against the DD waits, the Ramsey fringe frequency (detuning minus
  the virtual detuning) against the delay step's Nyquist frequency;
* a relative standard error above :data:`MAX_RELATIVE_STDERR`: pi amplitude 1 %,
  T_coh 10 %, F0 and F1 1 %; the detuning, which may be zero, needs a standard
  error below 10 % of its value or :data:`RAMSEY_STDERR_FLOOR_HZ` (1 kHz), whichever
  is larger.

Scan ranges follow the current calibration: the Rabi scan reaches
:attr:`ScanSettings.rabi_headroom` (1.5, less when the pulse would exceed full scale)
times the current pi amplitude, so a correct calibration sits inside the scan, not at
its end; the Ramsey delays span :attr:`ScanSettings.ramsey_span_t2star` (1.5) times the
node's T2* (``nv.t2star_s`` of ``out/noise_model.yaml``, else 5 us, the NV's 13C-bath
value); the DD waits span 2.5 times the current T_coh.

Order and caveats: run ``ramsey`` and correct the MW frequency first when the
detuning is large: the 150 ns pi pulse has a mean Rabi frequency of only 3.3 MHz,
so a detuning biases the Rabi fit (-0.06 % at 0.4 MHz, -0.4 % at 1 MHz, -1.8 % at
2 MHz). ``rabi`` updates the gate shape only (the DD pulses too when ``dd_shape``
is the same shape). ``ssro`` prepares |1> with the current calibration's pi pulse,
so run ``rabi`` before it. The Ramsey fringe's decay (T2*) is fitted and reported
when resolved, but the simulated physics applies no dephasing inside a played
waveform, so on the simulated station it never is.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np
import yaml
from tqdm import tqdm

from ..logs import progress_enabled
from ..simulators.physics import NoiseModelKeyError, NoiseModelValueError, load_noise_models, nv_node
from ..simulators.nv_lab import SimLabAddressError
from ..waveforms.calibration import (CalibrationError, NVCalibration, calibration_from_dict,
                                     load_calibration)
from ..waveforms.table import build_table
from . import calibration_plots as plots
from .calibration_station import (CalibrationStation, StationFileError,
                                  open_calibration_station)
from .fits import (FitError, estimate_ssro, fit_dd_decay, fit_rabi, fit_ramsey)
from .scans import (GRANULARITY, Mailbox, ScanError, build_calibration_program, dd_decay_scan,
                    entry_scan, load_calibration_program, rabi_headroom, rabi_program,
                    ramsey_program, ssro_scan)
from .versioned_yaml import StoredVersion, VersionedYamlStore, VersionStoreError
from .datasets import Param, open_run

CALIBRATIONS = ("rabi", "ramsey", "dd", "ssro")
#: the paper's DD coherence time: the prior that sets the DD scan range (s)
PAPER_T_COH_S = 13e-3
#: the NV's free-evolution dephasing time (13C bath): the prior of the Ramsey span (s)
DEFAULT_T2STAR_S = 5e-6
#: a fitted parameter this close (fraction of the scanned range) to an end is "at the edge"
EDGE_MARGIN = 0.05
#: largest relative standard error a new version may be written from
MAX_RELATIVE_STDERR = MappingProxyType({"pi_amplitude": 0.01, "t_coh_s": 0.10,
                                        "readout_f0": 0.01, "readout_f1": 0.01})
#: the detuning's standard error may always be this large (Hz); else 10 % of the value
RAMSEY_STDERR_FLOOR_HZ = 1e3
RAMSEY_MAX_RELATIVE_STDERR = 0.10
CALIBRATION_STEM = "calibration"
NODE_PARAMS_STEM = "noise_model"


class CalibrationRunError(RuntimeError):
    """A calibration cannot run as asked; ``item`` names the argument at fault."""

    def __init__(self, item: str, message: str) -> None:
        super().__init__(f"{item}: {message}")
        self.item = item


class WeakFitError(CalibrationRunError):
    """The fit is too weak to write a new version from (see module docstring);
    ``problems`` says why, ``files`` what was written (PNG, JSON, dataset)."""

    def __init__(self, name: str, problems: list[str], files: Mapping[str, str]) -> None:
        super().__init__(name, "no new version written: " + "; ".join(problems)
                         + " (--force writes it anyway)")
        self.problems, self.files = list(problems), dict(files)


def edge_problem(param: str, value: float, lo: float, hi: float,
                 margin: float = EDGE_MARGIN) -> str | None:
    """Why ``value`` is at the edge of the scanned range [lo, hi] (None when inside)."""
    span = hi - lo
    if not (lo + margin * span <= value <= hi - margin * span):
        return (f"{param} = {value:.6g} is at the edge of the scan [{lo:.6g}, {hi:.6g}] "
                f"(within {margin:.0%} of an end, or outside)")
    return None


def stderr_problem(param: str, value: float, stderr: float, bound: float,
                   floor: float = 0.0) -> str | None:
    """Why ``stderr`` is too large: above ``bound * |value|`` and above ``floor``."""
    allowed = max(bound * abs(value), floor)
    if not (math.isfinite(stderr) and stderr <= allowed):
        what = f"{bound:.0%} of the value" + (f" or {floor:g}" if floor else "")
        return f"{param} = {value:.6g} +- {stderr:.2g}: standard error above {what}"
    return None


@dataclass(frozen=True)
class ScanSettings:
    """Scan sizes (defaults: a few seconds per calibration on the simulated station)."""

    rabi_amplitudes: tuple[float, ...] = tuple(np.round(np.linspace(0.04, 1.0, 25), 4))
    rabi_headroom: float = 1.5             # amplitude 1 = 1.5 x the current pi amplitude
    rabi_pulses: int = 2
    rabi_shots: int = 400
    ramsey_step_samples: int | None = None  # None: span / (points - 1), on the 16-sample grid
    ramsey_points: int = 61
    ramsey_span_t2star: float = 1.5        # delays 0 .. 1.5 x T2*
    ramsey_prior_t2star_s: float | None = None  # None: out/noise_model.yaml, else 5 us
    ramsey_shots: int = 200
    ramsey_virtual_hz: float = 1e6         # phase ramp of the last pulse (fringe at detuning - 1 MHz)
    dd_points: int = 8
    dd_span_t_coh: float = 2.5             # waits 0 .. span x prior T_coh
    dd_prior_t_coh_s: float | None = None  # None: out/noise_model.yaml, else the paper's 13 ms
    dd_shots: int = 1200
    ssro_shots: int = 4000

    def with_shots(self, shots: int) -> "ScanSettings":
        """The same scans with ``shots`` per point (SSRO: per prepared state)."""
        if shots < 1:
            raise CalibrationRunError("shots", f"must be >= 1, got {shots}")
        return dataclasses.replace(self, rabi_shots=shots, ramsey_shots=shots, dd_shots=shots,
                                   ssro_shots=shots)


@dataclass(frozen=True)
class Measured:
    """One calibrated quantity: value, standard error, unit, and (simulated station
    only) the physics model's true value."""

    value: float
    stderr: float
    unit: str
    true: float | None = None

    @property
    def relative_error(self) -> float | None:
        return None if not self.true else self.value / self.true - 1

    def as_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "unit": self.unit,
                "true": self.true, "relative_error": self.relative_error}


@dataclass(frozen=True)
class CalibrationResult:
    """What one calibration run measured and wrote (``files``: role -> path)."""

    name: str
    measured: Mapping[str, Measured]
    files: Mapping[str, str]
    version: int
    simulated: bool
    wall_s: float
    virtual_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "measured", MappingProxyType(dict(self.measured)))
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))


@dataclass
class _Outcome:
    """What a runner hands back (internal)."""

    measured: dict[str, Measured]
    fit: dict
    data: dict
    png: Path
    new_calibration: NVCalibration | None = None
    changes: list[str] = field(default_factory=list)
    node_params: dict[str, float] | None = None
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------- inputs
def resolve_input_calibration(out_dir: Path, calibration: str | Path | None
                              ) -> tuple[NVCalibration, str]:
    """The calibration to start from and where it came from (see module docstring).
    A bad file raises :class:`CalibrationError` naming the key."""
    if calibration is not None:
        return load_calibration(calibration), str(calibration)
    current = VersionedYamlStore(out_dir, CALIBRATION_STEM).current
    if current.is_file():
        return load_calibration(current), str(current)
    cal = load_calibration()
    return cal, cal.source


def _stored_node_param(out_dir: Path, key: str) -> float | None:
    current = VersionedYamlStore(out_dir, NODE_PARAMS_STEM).current
    if current.is_file():
        doc = yaml.safe_load(current.read_text()) or {}
        t = (doc.get("nv") or {}).get(key)
        if isinstance(t, (int, float)) and t > 0:
            return float(t)
    return None


def _dd_prior(out_dir: Path, settings: ScanSettings) -> float:
    if settings.dd_prior_t_coh_s is not None:
        return float(settings.dd_prior_t_coh_s)
    return _stored_node_param(out_dir, "t_coh_s") or PAPER_T_COH_S


def _t2star_prior(out_dir: Path, settings: ScanSettings) -> float:
    if settings.ramsey_prior_t2star_s is not None:
        return float(settings.ramsey_prior_t2star_s)
    return _stored_node_param(out_dir, "t2star_s") or DEFAULT_T2STAR_S


def ramsey_delays(out_dir: Path, settings: ScanSettings) -> list[int]:
    """Ramsey delays (samples at 2.4 GSa/s, multiples of 16): ``ramsey_points`` from 0,
    spanning ``ramsey_span_t2star`` x T2* (or with ``ramsey_step_samples`` as given)."""
    step = settings.ramsey_step_samples
    if step is None:
        span = settings.ramsey_span_t2star * _t2star_prior(out_dir, settings) * 2.4e9
        step = max(GRANULARITY, int(round(span / max(1, settings.ramsey_points - 1)
                                          / GRANULARITY)) * GRANULARITY)
    return [k * step for k in range(settings.ramsey_points)]


def _physics_truth(physics: Any, attr: str) -> float | None:
    if physics is None:
        return None
    if attr == "detuning_hz":
        return float(physics.detuning_hz)
    model = getattr(physics, "model", None)
    return None if model is None else float(getattr(model, attr))


# ------------------------------------------------------------------------ runners
def _run_rabi(st: CalibrationStation, cal: NVCalibration, s: ScanSettings, out: Path,
              bar: Callable[[int], Any], rec: Callable[..., Any]) -> _Outcome:
    table = build_table(cal)
    head = rabi_headroom(table, s.rabi_headroom)
    amps = np.asarray(s.rabi_amplitudes, float) * head  # in units of the current pi amplitude
    load_calibration_program(st.hdawg, st.adwin, st.mw,
                             rabi_program(table, s.rabi_amplitudes, s.rabi_pulses, headroom=head))
    shape = cal.gate_shape
    old = cal.pi_amplitude(shape)
    ones = entry_scan(Mailbox(st.adwin), range(amps.size), s.rabi_shots, bar,
                      on_point=lambda k, n: rec(amplitude=float(amps[k] * old), ones=n,
                                                p1=n / s.rabi_shots))
    fit = fit_rabi(amps, ones, s.rabi_shots, s.rabi_pulses)
    new = old * fit.params["a_pi"]
    problems = [p for p in (edge_problem("pi_amplitude", new, float(amps.min() * old),
                                         float(amps.max() * old)),
                            stderr_problem("pi_amplitude", new, old * fit.stderr["a_pi"],
                                           MAX_RELATIVE_STDERR["pi_amplitude"])) if p]
    rate = getattr(getattr(st.physics, "model", None), "rabi_hz_per_amplitude", None)
    true = None if rate is None else old * cal.rabi_rate_per_amplitude(shape) / (2 * math.pi) / rate
    measured = {"pi_amplitude": Measured(new, old * fit.stderr["a_pi"], "full scale", true)}
    doc = cal.to_dict()
    key = f"pulses.{shape}.pi_amplitude"
    doc["pulses"][shape]["pi_amplitude"] = round(new, 6)
    new_cal = calibration_from_dict(doc, source="<rabi fit>")  # CalibrationError if unsafe
    png = plots.plot_rabi(out / "rabi.png", amps, ones, s.rabi_shots, fit, old, s.rabi_pulses, true)
    return _Outcome(measured, fit.as_dict(),
                    {"table_amplitude": list(s.rabi_amplitudes), "headroom": head,
                     "pulse_amplitude": (amps * old).tolist(),
                     "ones": ones.tolist(), "shots": s.rabi_shots, "pulses": s.rabi_pulses},
                    png, new_cal, [f"{key}: {old} -> {round(new, 6)}"], problems=problems)


def _run_ramsey(st: CalibrationStation, cal: NVCalibration, s: ScanSettings, out: Path,
                bar: Callable[[int], Any], rec: Callable[..., Any]) -> _Outcome:
    table = build_table(cal)
    delays = ramsey_delays(out, s)
    load_calibration_program(st.hdawg, st.adwin, st.mw,
                             ramsey_program(table, delays, s.ramsey_virtual_hz))
    t = np.asarray(delays) / cal.sample_rate_hz
    ones = entry_scan(Mailbox(st.adwin), range(2 * len(delays)), s.ramsey_shots, bar,
                      on_point=lambda k, n: rec(delay=float(t[k // 2]), quadrature=k % 2, ones=n,
                                                p1=n / s.ramsey_shots))
    fit = fit_ramsey(t, ones[0::2], ones[1::2], s.ramsey_shots, s.ramsey_virtual_hz)
    det = fit.params["detuning_hz"]
    nyquist = 0.5 / float(t[1] - t[0]) if t.size > 1 else math.inf
    problems = [p for p in (edge_problem("fringe frequency (detuning - virtual detuning)",
                                         det - s.ramsey_virtual_hz, -nyquist, nyquist),
                            stderr_problem("detuning_hz", det, fit.stderr["detuning_hz"],
                                           RAMSEY_MAX_RELATIVE_STDERR, RAMSEY_STDERR_FLOOR_HZ))
                if p]
    true = _physics_truth(st.physics, "detuning_hz")
    measured = {"detuning_hz": Measured(det, fit.stderr["detuning_hz"], "Hz", true)}
    if "t2star_s" in fit.extra:  # T2* = gamma^-1/2 (Gaussian decay), when resolved
        g, sg = fit.params["gamma_per_s2"], fit.stderr["gamma_per_s2"]
        measured["t2star_s"] = Measured(fit.extra["t2star_s"], 0.5 * g ** -1.5 * sg, "s")
    doc = cal.to_dict()
    doc["detuning_hz"] = round(det, 1)
    new_cal = calibration_from_dict(doc, source="<ramsey fit>")
    png = plots.plot_ramsey(out / "ramsey.png", t, ones[0::2], ones[1::2], s.ramsey_shots, fit,
                            true, s.ramsey_virtual_hz)
    return _Outcome(measured, fit.as_dict(),
                    {"delay_s": t.tolist(), "ones_x": ones[0::2].tolist(),
                     "ones_y": ones[1::2].tolist(), "shots": s.ramsey_shots,
                     "virtual_detuning_hz": s.ramsey_virtual_hz,
                     "suggested_mw_frequency_hz": cal.mw_frequency_hz + det},
                    png, new_cal, [f"detuning_hz: {cal.detuning_hz} -> {round(det, 1)}"],
                    problems=problems)


def _run_dd(st: CalibrationStation, cal: NVCalibration, s: ScanSettings, out: Path,
            bar: Callable[[int], Any], rec: Callable[..., Any]) -> _Outcome:
    from ..sequences.hdawg_program import build_hdawg_program
    table = build_table(cal)
    st.load_node_program(build_hdawg_program(table, cal))
    prior = _dd_prior(out, s)
    waits = np.round(np.linspace(0, s.dd_span_t_coh * prior, s.dd_points) * 1e9).astype(np.int64)
    back, fwd = dd_decay_scan(
        Mailbox(st.adwin), st.wait_ns, table.by_rotation("x", 1, 1).index,
        table.by_rotation("x", 3, 1).index, waits, s.dd_shots, bar,
        on_point=lambda k, b, f: rec(wait=float(waits[k] * 1e-9), zeros_after_xm90=b,
                                     zeros_after_x90=f, signal=(b - f) / s.dd_shots))
    fit = fit_dd_decay(waits * 1e-9, back, fwd, s.dd_shots)
    true = _physics_truth(st.physics, "t_coh_s")
    t_coh = fit.params["t_coh_s"]
    nonzero = waits[waits > 0] * 1e-9
    problems = [p for p in (edge_problem("t_coh_s", t_coh, float(nonzero.min(initial=0.0)),
                                         float(waits.max() * 1e-9)),
                            stderr_problem("t_coh_s", t_coh, fit.stderr["t_coh_s"],
                                           MAX_RELATIVE_STDERR["t_coh_s"])) if p]
    measured = {"t_coh_s": Measured(t_coh, fit.stderr["t_coh_s"], "s", true)}
    png = plots.plot_dd(out / "dd.png", waits * 1e-9, back, fwd, s.dd_shots, fit, true)
    return _Outcome(measured, fit.as_dict(),
                    {"wait_s": (waits * 1e-9).tolist(), "zeros_after_xm90": back.tolist(),
                     "zeros_after_x90": fwd.tolist(), "shots": s.dd_shots, "prior_t_coh_s": prior},
                    png, node_params={"t_coh_s": float(f"{t_coh:.6g}")}, problems=problems)


def _run_ssro(st: CalibrationStation, cal: NVCalibration, s: ScanSettings, out: Path,
              bar: Callable[[int], Any], rec: Callable[..., Any]) -> _Outcome:
    x180 = build_table(cal).by_rotation("x", 1, 0)
    prog = build_calibration_program([(x180.samples_i, x180.samples_q)], [(0, 1.0)],
                                     cal.sample_rate_hz)
    load_calibration_program(st.hdawg, st.adwin, st.mw, prog)
    chunks = iter(range(1 << 30))
    hist = getattr(st.adwin, "ssro_histogram", None)  # the controller's photon counts
    counts = ssro_scan(Mailbox(st.adwin), 0, s.ssro_shots, bar,
                       on_chunk=lambda c: rec(chunk=next(chunks), shots=c.shots,
                                              herald0_prep0=c.herald0_prep0,
                                              herald0_prep1=c.herald0_prep1,
                                              zero_given_0=c.zero_given_0,
                                              one_given_1=c.one_given_1),
                       histogram=hist)
    threshold = int(st.adwin.ssro_threshold())
    est = estimate_ssro(counts.shots, counts.herald0_prep0, counts.herald0_prep1,
                        counts.zero_given_0, counts.one_given_1)
    truth = {k: _physics_truth(st.physics, k) for k in ("readout_f0", "readout_f1", "init_fidelity")}
    measured = {"readout_f0": Measured(est.f0, est.f0_stderr, "", truth["readout_f0"]),
                "readout_f1": Measured(est.f1, est.f1_stderr, "", truth["readout_f1"]),
                "init_fidelity": Measured(est.init_fidelity, est.init_fidelity_stderr, "",
                                          truth["init_fidelity"])}
    problems = [p for k in ("readout_f0", "readout_f1")
                if (p := stderr_problem(k, measured[k].value, measured[k].stderr,
                                        MAX_RELATIVE_STDERR[k]))]
    png = plots.plot_ssro(out / "ssro.png", est, truth["readout_f0"], truth["readout_f1"],
                          bright=counts.bright_hist, dark=counts.dark_hist, threshold=threshold)
    # init fidelity is a by-product (JSON only): F0, F1 are what SSRO calibrates; the
    # photon-count histograms and the threshold go into the dataset's "fit" metadata
    photons = {"photon_counts": list(range(len(counts.bright_hist))),
               "bright_shots": list(counts.bright_hist), "dark_shots": list(counts.dark_hist),
               "threshold_counts": threshold,
               "rule": "a readout with counts >= threshold_counts reports 0 (bright, ms = 0)"}
    return _Outcome(measured, {"model": "binomial", **est.as_dict(), "photon_histograms": photons},
                    dataclasses.asdict(counts),
                    png, node_params={k: float(f"{measured[k].value:.6g}")
                                      for k in ("readout_f0", "readout_f1")}, problems=problems)


_RUNNERS = {"rabi": _run_rabi, "ramsey": _run_ramsey, "dd": _run_dd, "ssro": _run_ssro}
_SHOTS = {"rabi": lambda s: s.rabi_shots * len(s.rabi_amplitudes),
          "ramsey": lambda s: s.ramsey_shots * 2 * s.ramsey_points,
          "dd": lambda s: s.dd_shots * 2 * s.dd_points,
          "ssro": lambda s: s.ssro_shots * 2}
#: the dataset parameters of each calibration (setpoints first)
DATASET_PARAMS: Mapping[str, tuple[Param, ...]] = MappingProxyType({
    "rabi": (Param("amplitude", "pi-pulse amplitude (full scale), each of the pulses",
                   setpoint=True),
             Param("ones", "shots with outcome 1"), Param("p1", "P(outcome 1)")),
    "ramsey": (Param("delay", "free evolution", "s", setpoint=True),
               Param("quadrature", "phase of the last pi/2 pulse", setpoint=True,
                     categories=("2 pi f_v t", "2 pi f_v t + pi/2")),
               Param("ones", "shots with outcome 1"), Param("p1", "P(outcome 1)")),
    "dd": (Param("wait", "time under DD", "s", setpoint=True),
           Param("zeros_after_xm90", "shots with outcome 0 after x(-pi/2)"),
           Param("zeros_after_x90", "shots with outcome 0 after x(pi/2)"),
           Param("signal", "P(0 | x(-pi/2)) - P(0 | x(pi/2))")),
    "ssro": (Param("chunk", "chunk of shots", setpoint=True),
             Param("shots", "shots per prepared state"),
             Param("herald0_prep0", "heralded 0 (no pulse)"),
             Param("herald0_prep1", "heralded 0 (before x(pi))"),
             Param("zero_given_0", "second readout 0 | heralded, no pulse"),
             Param("one_given_1", "second readout 1 | heralded, x(pi)")),
})


# ----------------------------------------------------------------------- writing
def _header(lines: list[str]) -> str:
    return "".join(f"# {ln}\n" for ln in lines)


def write_calibration_version(out_dir: Path, previous: NVCalibration, new: NVCalibration,
                              header: list[str]) -> StoredVersion:
    """Store ``new`` as the next ``calibration`` version; first store ``previous`` when
    the newest stored version is not the same calibration."""
    store = VersionedYamlStore(out_dir, CALIBRATION_STEM)
    latest = store.latest()
    same = False
    if latest is not None:
        try:
            same = load_calibration(latest.path).content_hash() == previous.content_hash()
        except CalibrationError:
            same = False
    if not same:
        store.write(_header([f"NV calibration: the input ({previous.source}), kept as the "
                             "version the next one replaces"]) + _dump(previous))
    text = _header(header) + _dump(new)
    if calibration_from_dict(yaml.safe_load(text)).content_hash() != new.content_hash():
        raise VersionStoreError(store.current, "the YAML does not reproduce the calibration")
    return store.write(text)


def _dump(cal: NVCalibration) -> str:
    return yaml.safe_dump(cal.to_dict(), sort_keys=False, default_flow_style=False)


def write_node_params_version(out_dir: Path, params: Mapping[str, float],
                              header: list[str]) -> StoredVersion:
    """Merge ``params`` into the ``nv`` section of the current noise-model overlay and
    store it as the next ``noise_model`` version (validated by load_noise_models)."""
    store = VersionedYamlStore(out_dir, NODE_PARAMS_STEM)
    doc: dict = {}
    if store.current.is_file():
        doc = yaml.safe_load(store.current.read_text()) or {}
    doc.setdefault("nv", {}).update({k: float(v) for k, v in params.items()})
    text = _header(header) + yaml.safe_dump(doc, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.yaml"
        probe.write_text(text)
        load_noise_models(probe)  # NoiseModelKeyError / NoiseModelValueError
    return store.write(text)


# --------------------------------------------------------------------------- entry
def run_calibration(name: str, out_dir: str | Path, *, station: str | Path | None = None,
                    calibration: str | Path | None = None, noise_model: str | Path | None = None,
                    physics: Any = None, seed: int = 1, settings: ScanSettings | None = None,
                    progress: bool = False, db: str | Path | None = None,
                    force: bool = False) -> CalibrationResult:
    """Run calibration ``name`` on ``station`` (default: the built-in simulated one) and
    write its files into ``out_dir`` (see module docstring).

    ``physics``: the simulated NV backend to use (else built from ``noise_model``, a
    noise-model YAML layered on the packaged one, seeded with ``seed``). ``db``: the
    QCoDeS database (default ``out_dir/calibrations.db``). ``force``: write the new
    version even from a weak fit (otherwise :class:`WeakFitError`, after the PNG, JSON
    and dataset are written).
    Raises :class:`CalibrationError` (bad input calibration, or a fitted value the
    calibration refuses), :class:`StationFileError`, :class:`CalibrationRunError`,
    :class:`FitError` or :class:`ScanError`; nothing is written when the run fails."""
    if name not in CALIBRATIONS:
        raise CalibrationRunError("name", f"unknown calibration {name!r}; "
                                          f"known: {', '.join(CALIBRATIONS)}")
    settings = settings or ScanSettings()
    out = Path(out_dir)
    cal, cal_source = resolve_input_calibration(out, calibration)
    if physics is None:
        physics = nv_node("nv", seed, load_noise_models(noise_model))
    t_wall = time.perf_counter()
    st = open_calibration_station(station, physics=physics, seed=seed)
    try:
        if not st.simulated and noise_model is not None:
            raise CalibrationRunError("noise_model", "applies to simulated stations only")
        out.mkdir(parents=True, exist_ok=True)
        db_path = Path(db) if db is not None else out / "calibrations.db"
        t_virtual = st.now_ns()
        from qcodes.station import Station
        inputs = {"calibration": name, "seed": seed, "input_calibration": cal_source,
                  "station": st.source, "simulated": st.simulated,
                  "settings": dataclasses.asdict(settings)}
        with open_run(db_path, "calibration", name, DATASET_PARAMS[name],
                      sample=f"NV node ({'simulated' if st.simulated else 'lab'})",
                      station=Station(st.hdawg, st.adwin, st.mw, default=False),
                      inputs=inputs) as run, \
                tqdm(total=_SHOTS[name](settings), desc=f"calibrate {name}", unit="shot",
                     disable=not progress, file=sys.stderr, leave=False) as bar:
            outcome = _RUNNERS[name](st, cal, settings, out, bar.update, run.add)
            run.dataset.add_metadata("fit", json.dumps(outcome.fit, default=float))
            run.dataset.add_metadata("measured", json.dumps(
                {k: m.as_dict() for k, m in outcome.measured.items()}, default=float))
            run.dataset.add_metadata("refused", json.dumps(
                outcome.problems if outcome.problems and not force else []))
            run_id = run.run_id
        virtual_s = (st.now_ns() - t_virtual) * 1e-9
        simulated = st.simulated
        source = st.source
    finally:
        st.close()
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    what = ", ".join(f"{k} = {m.value:.6g} +- {m.stderr:.2g}" for k, m in outcome.measured.items())
    header = [f"written by `qnodeos-hw calibrate {name}` at {stamp}",
              f"station {source}{' (simulated)' if simulated else ''}, seed {seed}; "
              f"input calibration {cal_source}", f"measured: {what}"]
    files = {"png": str(outcome.png), "db": str(db_path), "run_id": str(run_id)}
    version = 0
    refused = bool(outcome.problems) and not force
    if refused:
        pass
    elif outcome.new_calibration is not None:
        v = write_calibration_version(out, cal, outcome.new_calibration,
                                      ["NV calibration", *header, *[f"changed {c}" for c in outcome.changes]])
        files.update(calibration=str(v.path), calibration_current=str(v.current))
        version = v.version
    if outcome.node_params is not None and not refused:
        v = write_node_params_version(out, outcome.node_params,
                                      ["measured NV node parameters (noise-model overlay: "
                                       "load_noise_models(path))", *header])
        files.update(noise_model=str(v.path), noise_model_current=str(v.current))
        version = v.version
    wall_s = time.perf_counter() - t_wall
    json_path = out / f"{name}.json"
    files["json"] = str(json_path)
    doc = {"calibration": name, "station": source, "simulated": simulated, "seed": seed,
           "input_calibration": cal_source, "written_at": stamp,
           "measured": {k: m.as_dict() for k, m in outcome.measured.items()},
           "fit": outcome.fit, "data": outcome.data, "changes": outcome.changes,
           "version": version, "files": files, "wall_s": wall_s, "virtual_s": virtual_s,
           "weak_fit": outcome.problems, "forced": bool(outcome.problems) and force,
           "refused": refused}
    json_path.write_text(json.dumps(doc, indent=1, default=float))
    if refused:
        raise WeakFitError(name, outcome.problems, files)
    return CalibrationResult(name, outcome.measured, files, version, simulated, wall_s, virtual_s)


#: typed errors the CLI reports as a one-line message (exit code 2)
REPORTED_ERRORS = (CalibrationError, CalibrationRunError, StationFileError, FitError, ScanError,
                   VersionStoreError, NoiseModelKeyError, NoiseModelValueError, SimLabAddressError,
                   ConnectionError, ImportError)


def run_cli(args: Any) -> int:
    """``qnodeos-hw calibrate <name>`` (``args.action`` is the name)."""
    settings = ScanSettings()
    try:
        if getattr(args, "shots", None) is not None:
            settings = settings.with_shots(args.shots)
        res = run_calibration(args.action, args.out, station=args.station,
                              calibration=getattr(args, "calibration", None),
                              noise_model=getattr(args, "noise_model", None), seed=args.seed,
                              settings=settings, progress=progress_enabled(),
                              db=getattr(args, "db", None), force=getattr(args, "force", False))
    except REPORTED_ERRORS as exc:
        print(f"qnodeos-hw calibrate {args.action}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(f"calibrate {res.name}: {'simulated' if res.simulated else 'real'} station, "
          f"{res.wall_s:.2f} s wall, {res.virtual_s:.3f} s on the node clock")
    for key, m in res.measured.items():
        line = f"  {key:<14} {m.value:.6g} +- {m.stderr:.2g} {m.unit}".rstrip()
        if m.relative_error is not None:
            line += f"   (true {m.true:.6g}, {100 * m.relative_error:+.2f} %)"
        elif m.true is not None:
            line += f"   (true {m.true:.6g}, off by {m.value - m.true:+.3g})"
        print(line)
    for role, path in res.files.items():
        print(f"  {role:<20} {path}")
    return 0
