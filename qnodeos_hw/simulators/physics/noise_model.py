"""Noise-model records of the simulated nodes, loaded from YAML.

The packaged ``noise_model.yaml`` holds the defaults (paper values where the paper
gives them). :func:`load_noise_models` layers a user file on top of it; its
``nodes:`` section overrides values per node. Unknown keys and missing keys raise
:class:`~.errors.NoiseModelKeyError` naming the key; out-of-range values raise
:class:`~.errors.NoiseModelValueError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import NoiseModelKeyError, NoiseModelValueError

_POS, _PROB, _NONNEG, _ANY, _BOOL, _Z = "positive", "probability", "non-negative", "any", "bool", "z"


def _f(kind: str, doc: str) -> Any:
    return field(metadata={"kind": kind, "doc": doc})


def _check(section: str, key: str, kind: str, value: Any) -> Any:
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise NoiseModelValueError(section, key, f"must be true/false, got {value!r}")
        return value
    if kind == _ANY:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NoiseModelValueError(section, key, f"must be a number, got {value!r}")
    v = float(value)
    bad = {_POS: not v > 0, _PROB: not 0.0 <= v <= 1.0, _NONNEG: not v >= 0,
           _Z: not -1.0 <= v <= 1.0}.get(kind, False)
    if bad:
        raise NoiseModelValueError(section, key, f"must be {kind}, got {value!r}")
    return value


class _Record:
    """Mixin: build from a mapping with key checking, and override with checking."""

    SECTION = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], section: str | None = None):
        """Build from a complete mapping; unknown or missing keys raise NoiseModelKeyError."""
        section = section or cls.SECTION
        names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                raise NoiseModelKeyError(section, str(key), "unknown")
        for name in names:
            if name not in data:
                raise NoiseModelKeyError(section, name, "missing")
        return cls(**{n: _check(section, n, f.metadata["kind"], data[n]) for n, f in names.items()})

    def with_overrides(self, overrides: Mapping[str, Any], section: str | None = None):
        """A copy with some values replaced; unknown keys raise NoiseModelKeyError."""
        merged = {f.name: getattr(self, f.name)  # type: ignore[arg-type]
                  for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        section = section or self.SECTION
        for key, value in overrides.items():
            if key not in merged:
                raise NoiseModelKeyError(section, str(key), "unknown")
            merged[key] = value
        return type(self).from_mapping(merged, section)


@dataclass(frozen=True, slots=True)
class CarbonModel(_Record):
    """One 13C nuclear-spin memory of an NV node: its hyperfine coupling to the electron
    (``H = omega_L I_z + m_s (A_par I_z + A_perp I_x)``, m_s = 0 for |0>, -1 for |1>) and
    its noise."""

    SECTION = "nv.carbons[]"
    name: str = _f(_ANY, "label (e.g. C1)")
    a_par_hz: float = _f(_ANY, "parallel hyperfine coupling A_par (Hz)")
    a_perp_hz: float = _f(_POS, "perpendicular hyperfine coupling A_perp (Hz)")
    t2_s: float = _f(_POS, "coherence time under dynamical decoupling (s), exp(-t/T2)")
    t1_s: float = _f(_POS, "nuclear spin relaxation (s)")
    attempts_1e: float = _f(_POS, "entanglement attempts after which its coherence is 1/e")
    init_fidelity: float = _f(_PROB, "P(|0>) after initialisation")


@dataclass(frozen=True, slots=True)
class NVNoiseModel(_Record):
    """Physics of one NV node: the electron spin (address 0), the durations of the
    controller's laser operations, and the 13C memories (addresses 1..len(carbons))."""

    SECTION = "nv"
    t1_s: float = _f(_POS, "spin relaxation time (s)")
    t1_equilibrium_z: float = _f(_Z, "Bloch z reached by T1 relaxation")
    t2star_s: float = _f(_POS, "dephasing time without DD (s)")
    t2star_exponent: float = _f(_POS, "stretch exponent of the T2* decay")
    t_coh_s: float = _f(_POS, "DD-protected depolarising coherence time (s)")
    t_coh_exponent: float = _f(_POS, "stretch exponent of the T_coh decay")
    init_fidelity: float = _f(_PROB, "P(|0>) after initialize")
    readout_f0: float = _f(_PROB, "P(report 0 | |0>)")
    readout_f1: float = _f(_PROB, "P(report 1 | |1>)")
    cr_pass_probability: float = _f(_PROB, "P(ready) at a CR check")
    cr_counts_mean_pass: float = _f(_NONNEG, "mean CR counts when ready")
    cr_counts_mean_fail: float = _f(_NONNEG, "mean CR counts when not ready")
    cr_scrambles_electron: bool = _f(_BOOL, "CR check leaves address 0 fully mixed")
    rabi_hz_per_amplitude: float = _f(_POS, "Rabi frequency (Hz) at full-scale amplitude")
    detuning_hz: float = _f(_ANY, "qubit minus MW frequency (Hz)")
    cr_check_ns: int = _f(_POS, "one charge-resonance check window (ns)")
    charge_repump_ns: int = _f(_POS, "charge repump after a failed CR check (ns)")
    cr_max_attempts: int = _f(_POS, "CR checks per INIT before it answers FAILURE")
    spin_pump_ns: int = _f(_POS, "spin pumping to |0> after a passed CR check (ns)")
    readout_ns: int = _f(_POS, "single-shot readout window (ns)")
    carbon_init_ns: int = _f(_POS, "carbon initialisation through the electron (ns)")
    mw_pi_pulse_ns: float = _f(_POS, "electron MW pi pulse (ns); the table's gate duration")
    carbon_larmor_hz: float = _f(_POS, "13C Larmor frequency omega_L / 2 pi at the field (Hz)")
    carbons: tuple = _f(_ANY, "13C memories (list of records), addresses 1..N")

    def __post_init__(self) -> None:
        raw = self.carbons
        if not isinstance(raw, (list, tuple)):
            raise NoiseModelValueError(self.SECTION, "carbons", f"must be a list, got {raw!r}")
        if len(raw) > 5:
            raise NoiseModelValueError(self.SECTION, "carbons",
                                       f"at most 5 carbons are modelled, got {len(raw)}")
        recs = []
        for k, c in enumerate(raw):
            if isinstance(c, CarbonModel):
                recs.append(c)
            elif isinstance(c, Mapping):
                recs.append(CarbonModel.from_mapping(c, f"nv.carbons[{k}]"))
            else:
                raise NoiseModelValueError(self.SECTION, f"carbons[{k}]",
                                           f"must be a mapping, got {c!r}")
        object.__setattr__(self, "carbons", tuple(recs))
        for key in ("cr_check_ns", "charge_repump_ns", "cr_max_attempts", "spin_pump_ns",
                    "readout_ns", "carbon_init_ns"):
            v = getattr(self, key)
            if int(v) != v:
                raise NoiseModelValueError(self.SECTION, key, f"must be a whole number, got {v!r}")
            object.__setattr__(self, key, int(v))

    @property
    def readout_counts_bright(self) -> float:
        """Mean SSRO photon counts of |0> (bright): ``P(n >= 1) = readout_f0``."""
        import math
        return -math.log(max(1.0 - self.readout_f0, 1e-13))  # F0 = 1: 30 photons

    @property
    def readout_counts_dark(self) -> float:
        """Mean SSRO photon counts of |1> (dark): ``P(n = 0) = readout_f1``."""
        import math
        return -math.log(max(self.readout_f1, 1e-13))


@dataclass(frozen=True, slots=True)
class HeraldingModel(_Record):
    """The heralding station between two NV nodes (single-photon protocol)."""

    SECTION = "heralding"
    p_success: float = _f(_PROB, "per-attempt herald probability")
    attempt_duration_ns: int = _f(_POS, "attempt duration (ns)")
    fidelity: float = _f(_PROB, "heralded-state fidelity to its Bell state")
    state_model: str = _f(_ANY, "single_photon | werner")
    bright_population: float = _f(_PROB, "single_photon: weight of |11>")
    herald_bell_indices: tuple[int, ...] = _f(_ANY, "Bell index per detector")
    partner_timeout_s: float = _f(_POS, "wall-clock wait for the partner (s)")
    max_skew_ns: int | None = _f(_ANY, "allowed virtual-time skew of paired attempts (ns)")

    def __post_init__(self) -> None:
        if self.state_model not in ("single_photon", "werner"):
            raise NoiseModelValueError(self.SECTION, "state_model",
                                       f"must be single_photon or werner, got {self.state_model!r}")
        idx = tuple(self.herald_bell_indices) if isinstance(
            self.herald_bell_indices, (list, tuple)) else None
        if not idx or any(i not in (0, 1, 2, 3) or isinstance(i, bool) for i in idx):
            raise NoiseModelValueError(self.SECTION, "herald_bell_indices",
                                       f"must be a non-empty list of 0..3, got {self.herald_bell_indices!r}")
        object.__setattr__(self, "herald_bell_indices", idx)
        if int(self.attempt_duration_ns) != self.attempt_duration_ns:
            raise NoiseModelValueError(self.SECTION, "attempt_duration_ns", "must be whole ns")
        object.__setattr__(self, "attempt_duration_ns", int(self.attempt_duration_ns))
        if self.max_skew_ns is not None and not (isinstance(self.max_skew_ns, int)
                                                 and self.max_skew_ns >= 0):
            raise NoiseModelValueError(self.SECTION, "max_skew_ns",
                                       f"must be null or a non-negative int, got {self.max_skew_ns!r}")
        if self.state_model == "single_photon":
            alpha = self.bright_population
            if not (1 - alpha) / 2 <= self.fidelity <= 1 - alpha:
                raise NoiseModelValueError(
                    self.SECTION, "fidelity", f"{self.fidelity} is unreachable with "
                    f"bright_population {alpha} (need (1-alpha)/2 <= F <= 1-alpha)")


@dataclass(frozen=True, slots=True)
class IonNoiseModel(_Record):
    """Physics of one trapped-ion (40Ca+, S1/2-D5/2) node."""

    SECTION = "ion"
    pi_time_ns: float = _f(_POS, "qubit-laser pi time (ns)")
    laser_detuning_hz: float = _f(_ANY, "qubit minus laser frequency (Hz)")
    t1_s: float = _f(_POS, "D5/2 lifetime (s)")
    t1_equilibrium_z: float = _f(_Z, "Bloch z reached by T1 decay")
    t2star_s: float = _f(_POS, "dephasing time (s)")
    t2star_exponent: float = _f(_POS, "stretch exponent of the T2* decay")
    pump_time_constant_ns: float = _f(_POS, "optical pumping time constant (ns)")
    pump_error: float = _f(_PROB, "P(|1>) after complete pumping")
    pmt_bright_rate_hz: float = _f(_NONNEG, "PMT count rate, bright ion (1/s)")
    pmt_dark_rate_hz: float = _f(_NONNEG, "PMT count rate, dark ion (1/s)")
    pmt_threshold_counts: int = _f(_NONNEG, "counts >= threshold -> bright")
    bright_state: int = _f(_ANY, "qubit state that fluoresces (0 or 1)")

    def __post_init__(self) -> None:
        if self.bright_state not in (0, 1) or isinstance(self.bright_state, bool):
            raise NoiseModelValueError(self.SECTION, "bright_state", f"must be 0 or 1, got {self.bright_state!r}")


_SECTIONS: dict[str, type[_Record]] = {"nv": NVNoiseModel, "ion": IonNoiseModel,
                                       "heralding": HeraldingModel}


@dataclass(frozen=True)
class NoiseModels:
    """The three default records plus per-node overrides (``nodes[name][section]``)."""

    nv: NVNoiseModel
    ion: IonNoiseModel
    heralding: HeraldingModel
    nodes: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def nv_for(self, node: str) -> NVNoiseModel:
        """The NV record of ``node`` (defaults + that node's overrides)."""
        return self._for(node, "nv", self.nv)

    def ion_for(self, node: str) -> IonNoiseModel:
        """The ion record of ``node``."""
        return self._for(node, "ion", self.ion)

    def _for(self, node: str, section: str, base):
        over = self.nodes.get(node, {}).get(section)
        return base.with_overrides(over, f"nodes.{node}.{section}") if over else base


def _read_yaml(path: Path | None) -> dict:
    if path is None:
        text = resources.files(__package__).joinpath("noise_model.yaml").read_text()
    else:
        text = Path(path).read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise NoiseModelValueError("<file>", str(path), "top level must be a mapping")
    return data


def load_noise_models(path: str | Path | None = None) -> NoiseModels:
    """Packaged defaults, with the YAML at ``path`` (if any) layered on top."""
    base = _read_yaml(None)
    user = _read_yaml(Path(path)) if path is not None else {}
    for key in user:
        if key not in (*_SECTIONS, "nodes"):
            raise NoiseModelKeyError("<top>", str(key), "unknown")
    records = {}
    for name, cls in _SECTIONS.items():
        rec = cls.from_mapping(base.get(name, {}), name)
        if user.get(name):
            rec = rec.with_overrides(user[name], name)
        records[name] = rec
    nodes = user.get("nodes") or {}
    for node, sections in nodes.items():
        for sec, over in (sections or {}).items():
            if sec not in _SECTIONS:
                raise NoiseModelKeyError(f"nodes.{node}", str(sec), "unknown")
            records[sec].with_overrides(over or {}, f"nodes.{node}.{sec}")  # validate now
    return NoiseModels(records["nv"], records["ion"], records["heralding"], nodes)
