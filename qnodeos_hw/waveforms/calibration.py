"""The NV electron-spin calibration record and its YAML loader.

:class:`NVCalibration` is a frozen dataclass that validates itself on
construction (so ``dataclasses.replace`` validates too). Every problem raises
:class:`CalibrationError` whose ``key`` names the offending YAML key, with nested
keys dotted (``pulses.hermite.pi_amplitude``): missing or unknown keys, non-numbers,
NaN/inf, out-of-range values, and any pulse whose peak ``|I + iQ|`` would exceed
``safe_max_amplitude``.

Rotation angles are encoded by pulse area: for the pi pulse of a shape, amplitude
``A_pi`` and ``n = round(pi_duration_s * sample_rate_hz)`` samples,
``rabi_rate_per_amplitude(shape) = pi / (A_pi * sum(envelope) / sample_rate_hz)``
(rad/s per unit amplitude); a rotation by ``theta`` uses the same duration and
amplitude ``A_pi * theta / pi``.

``mw_frequency_hz``/``mw_power_dbm`` are for the MW source; ``detuning_hz`` (qubit
minus MW frequency) does not enter the baseband waveforms: the frame is the MW
source's LO and XY8 refocuses the detuning (see
:mod:`qnodeos_hw.sequences.hdawg_program`); simulators and analyses use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import yaml

from .shapes import SHAPES, envelope, envelope_area_s, envelope_derivative

#: HDAWG maximum sample rate (Sa/s)
HDAWG_MAX_SAMPLE_RATE_HZ = 2.4e9
#: file name of the shipped default calibration inside this package
DEFAULT_CALIBRATION_FILE = "nv_default_calibration.yaml"


class CalibrationError(ValueError):
    """A calibration value is missing, unknown or invalid; ``key`` names it (dotted path)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"calibration key '{key}': {message}")
        self.key = key


@dataclass(frozen=True)
class ShapeCalibration:
    """Calibrated pi pulse of one envelope shape: amplitude (full scale) and duration (s)."""

    pi_amplitude: float
    pi_duration_s: float


_SHAPE_KEYS = ("pi_amplitude", "pi_duration_s")


@dataclass(frozen=True)
class NVCalibration:
    """Everything the NV waveform table and the DD sequence need (units in the names)."""

    sample_rate_hz: float
    mw_frequency_hz: float
    mw_power_dbm: float
    detuning_hz: float
    iq_phase_offset_rad: float
    safe_max_amplitude: float
    gate_shape: str
    dd_shape: str
    hermite_a: float
    drag_coefficient_s: float
    pulses: Mapping[str, ShapeCalibration]
    dd_tau_s: float
    cr_check_duration_s: float
    charge_repump_duration_s: float
    init_duration_s: float
    readout_duration_s: float
    ent_attempt_duration_s: float
    ent_alpha: float
    #: where it was loaded from (not part of the content hash)
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pulses", MappingProxyType(dict(self.pulses)))
        self._validate()

    # ----------------------------------------------------------------- validation
    def _validate(self) -> None:
        for f in dataclasses.fields(self):
            if f.name in ("pulses", "source", "gate_shape", "dd_shape"):
                continue
            _finite(f.name, getattr(self, f.name))
        for shape, sc in self.pulses.items():
            if shape not in SHAPES:
                raise CalibrationError(f"pulses.{shape}", f"unknown shape; known: {', '.join(SHAPES)}")
            for k in _SHAPE_KEYS:
                _finite(f"pulses.{shape}.{k}", getattr(sc, k))
        if not 0 < self.sample_rate_hz <= HDAWG_MAX_SAMPLE_RATE_HZ:
            raise CalibrationError("sample_rate_hz", f"must be in (0, 2.4e9] Sa/s, got {self.sample_rate_hz}")
        _positive("mw_frequency_hz", self.mw_frequency_hz)
        if not 0 < self.safe_max_amplitude <= 1:
            raise CalibrationError("safe_max_amplitude", f"must be in (0, 1], got {self.safe_max_amplitude}")
        for key in ("gate_shape", "dd_shape"):
            shape = getattr(self, key)
            if shape not in SHAPES:
                raise CalibrationError(key, f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
            if shape not in self.pulses:
                raise CalibrationError(f"pulses.{shape}", f"{key} is {shape!r} but it has no pi-pulse calibration")
        if self.hermite_a < 0:
            raise CalibrationError("hermite_a", f"must be >= 0, got {self.hermite_a}")
        for shape, sc in self.pulses.items():
            _positive(f"pulses.{shape}.pi_duration_s", sc.pi_duration_s)
            if round(sc.pi_duration_s * self.sample_rate_hz) < 2:
                raise CalibrationError(f"pulses.{shape}.pi_duration_s",
                                       f"{sc.pi_duration_s} s is shorter than 2 samples")
            if not 0 < sc.pi_amplitude <= self.safe_max_amplitude:
                raise CalibrationError(f"pulses.{shape}.pi_amplitude",
                                       f"{sc.pi_amplitude} outside (0, safe_max_amplitude="
                                       f"{self.safe_max_amplitude}]")
            peak = self.peak_iq_amplitude(shape, sc.pi_amplitude)
            if peak > self.safe_max_amplitude:
                raise CalibrationError("drag_coefficient_s",
                                       f"pi pulse of {shape!r} with DRAG peaks at |I+iQ| = {peak:.4f} "
                                       f"> safe_max_amplitude {self.safe_max_amplitude}")
        for key in ("dd_tau_s", "cr_check_duration_s", "charge_repump_duration_s", "init_duration_s",
                    "readout_duration_s", "ent_attempt_duration_s"):
            _positive(key, getattr(self, key))
        if not 0 < self.ent_alpha <= 0.5:
            raise CalibrationError("ent_alpha", f"must be in (0, 0.5], got {self.ent_alpha}")
        # a DD period must leave room for a pulse window and a minimum zero gap on each side
        min_tau = self.pulse_samples(self.dd_shape) + 16 + 2 * 32 + 2 * self.pulse_samples(self.gate_shape)
        if self.dd_tau_samples < min_tau:
            raise CalibrationError("dd_tau_s", f"{self.dd_tau_s} s = {self.dd_tau_samples} samples is shorter "
                                               f"than the {min_tau} samples a DD period needs")

    # ----------------------------------------------------------------- derived values
    def pulse_samples(self, shape: str | None = None) -> int:
        """Pi-pulse length of ``shape`` (default: the gate shape) in samples."""
        shape = shape or self.gate_shape
        return int(round(self.pulses[shape].pi_duration_s * self.sample_rate_hz))

    def pi_amplitude(self, shape: str | None = None) -> float:
        """Calibrated pi-pulse amplitude of ``shape`` (default: the gate shape)."""
        return self.pulses[shape or self.gate_shape].pi_amplitude

    def pi_duration_s(self, shape: str | None = None) -> float:
        """Calibrated pi-pulse duration of ``shape`` (default: the gate shape), s."""
        return self.pulses[shape or self.gate_shape].pi_duration_s

    def rabi_rate_per_amplitude(self, shape: str | None = None) -> float:
        """Rabi angular rate per unit amplitude (rad/s), from the pi pulse of ``shape``."""
        shape = shape or self.gate_shape
        area = envelope_area_s(shape, self.pulse_samples(shape), self.sample_rate_hz,
                               hermite_a=self.hermite_a)
        return math.pi / (self.pi_amplitude(shape) * area)

    def amplitude_for(self, angle_rad: float, shape: str | None = None) -> float:
        """Signed amplitude that rotates by ``angle_rad`` with the pi-pulse duration of ``shape``."""
        return self.pi_amplitude(shape) * angle_rad / math.pi

    def peak_iq_amplitude(self, shape: str, amplitude: float) -> float:
        """Largest ``|I + iQ|`` of a pulse of ``shape`` with ``amplitude`` (DRAG included)."""
        n = int(round(self.pulses[shape].pi_duration_s * self.sample_rate_hz))
        env = envelope(shape, n, hermite_a=self.hermite_a)
        der = envelope_derivative(shape, n, self.sample_rate_hz, hermite_a=self.hermite_a)
        return float(abs(amplitude) * np.max(np.hypot(env, self.drag_coefficient_s * der)))

    @property
    def dd_tau_samples(self) -> int:
        """DD interpulse delay (centre to centre) in samples, the nearest integer."""
        return int(round(self.dd_tau_s * self.sample_rate_hz))

    @property
    def ent_alpha_angle_rad(self) -> float:
        """MW rotation before an entanglement attempt: ``2 asin(sqrt(alpha))`` (rad)."""
        return 2.0 * math.asin(math.sqrt(self.ent_alpha))

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict with the YAML layout (``source`` excluded)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            v = getattr(self, f.name)
            if f.name == "pulses":
                v = {s: {k: getattr(sc, k) for k in _SHAPE_KEYS} for s, sc in sorted(v.items())}
            out[f.name] = v
        return out

    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict`: stamps tables built from it."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()


def _finite(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalibrationError(key, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise CalibrationError(key, f"must be finite, got {value!r}")


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise CalibrationError(key, f"must be > 0, got {value!r}")


def _number(key: str, value: Any) -> float:
    """YAML numbers; also YAML-1.1 strings such as '1e-6' that are plainly numeric."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise CalibrationError(key, f"must be a number, got {value!r}") from None
    _finite(key, value)
    return float(value)


_STR_KEYS = ("gate_shape", "dd_shape")


def calibration_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> NVCalibration:
    """Build a validated :class:`NVCalibration` from the YAML layout."""
    if not isinstance(data, Mapping):
        raise CalibrationError("<root>", f"expected a mapping, got {type(data).__name__}")
    fields = [f.name for f in dataclasses.fields(NVCalibration) if f.name != "source"]
    for key in data:
        if key not in fields:
            raise CalibrationError(str(key), "unknown key")
    for key in fields:
        if key not in data:
            raise CalibrationError(key, "missing")
    kwargs: dict[str, Any] = {}
    for key in fields:
        v = data[key]
        if key == "pulses":
            if not isinstance(v, Mapping) or not v:
                raise CalibrationError("pulses", "must map shape names to {pi_amplitude, pi_duration_s}")
            pulses = {}
            for shape, sc in v.items():
                if not isinstance(sc, Mapping):
                    raise CalibrationError(f"pulses.{shape}", "must be a mapping")
                for k in sc:
                    if k not in _SHAPE_KEYS:
                        raise CalibrationError(f"pulses.{shape}.{k}", "unknown key")
                for k in _SHAPE_KEYS:
                    if k not in sc:
                        raise CalibrationError(f"pulses.{shape}.{k}", "missing")
                pulses[str(shape)] = ShapeCalibration(
                    *(_number(f"pulses.{shape}.{k}", sc[k]) for k in _SHAPE_KEYS))
            kwargs[key] = pulses
        elif key in _STR_KEYS:
            if not isinstance(v, str):
                raise CalibrationError(key, f"must be a shape name, got {v!r}")
            kwargs[key] = v
        else:
            kwargs[key] = _number(key, v)
    return NVCalibration(**kwargs, source=source)


def load_calibration(path: str | Path | None = None) -> NVCalibration:
    """Load and validate a calibration YAML; ``None`` loads the one shipped with the package."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_CALIBRATION_FILE).read_text()
        source = f"{__package__}:{DEFAULT_CALIBRATION_FILE}"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise CalibrationError("<file>", f"cannot read {path}: {exc.strerror or exc}") from None
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalibrationError("<file>", f"{source} is not valid YAML: {exc}") from None
    return calibration_from_dict(data, source=source)
