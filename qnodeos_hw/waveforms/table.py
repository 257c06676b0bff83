"""The NV waveform table: one entry per operation the HDAWG can play on request.

Each entry is one operation followed by the first XY8 block of dynamical
decoupling (DD), as in the QNodeOS NV node. The operation's I/Q samples are
stored (padded with zeros to a multiple of 16 samples, at least 32); the XY8
block is described by where it starts (``dd_start_sample``: its reference, the
anchor of the operation) and is played from the shared one-sample-shifted DD
pulse copies (:mod:`qnodeos_hw.sequences.dd`), so DD gaps cost no waveform
memory. ``length_samples`` is the whole entry (operation + first XY8 block up to
the point where idle DD resumes), a multiple of 16.

Default composition (``nv_table_spec.yaml``, 170 entries, in index order):

=========  =======  ===========================================================
indices    count    operation
=========  =======  ===========================================================
0..6       7        specials: ``none`` (no operation, DD only), ``init`` (spin
                    pumping), ``measure`` (readout), ``ent_keep`` and
                    ``ent_measure`` (MW rotation ``2 asin(sqrt(alpha))`` about x,
                    then the optical attempt window; ``ent_measure`` adds the
                    readout window), ``cr_check`` (charge-resonance check),
                    ``charge_repump``. Laser operations play no MW (``mw`` False).
7..69      63       ``rot_x`` by ``n*pi/2^d``, d = 0..5, canonical n (odd,
                    ``0 < n < 2^(d+1)``): pi, pi/2, 3pi/2 (= -pi/2), pi/4 ... pi/32
70..132    63       ``rot_y``, same grid
133..163   31       ``rot_z`` by ``n*pi/2^d``, d = 0..4, as the composite
                    ``x(-pi/2) y(theta) x(pi/2)`` (time order)
164..169   6        pi rotations about face diagonals: ``pi_xpy`` (x+y),
                    ``pi_xmy`` (x-y), ``hadamard`` (x+z: y(pi/2) then x(pi)),
                    ``pi_xmz`` (x-z), ``pi_ypz`` (y+z, NetQASM's K), ``pi_ymz``
=========  =======  ===========================================================

Every x/y/z angle ``n*pi/2^d`` with ``d <= 5`` (x, y) or ``d <= 4`` (z) is one
entry; a sum of such angles about one axis is a sequence of entries (at most one
per bit of ``n``), so NetQASM's common angles (pi, +-pi/2, +-pi/4, pi/8 ...) cost
one entry each. Angles above pi are played as the equivalent negative rotation
(``3pi/2`` as ``-pi/2``, same SU(2) up to a global sign), so no amplitude exceeds
the pi-pulse amplitude.

Angle encoding: all gate pulses have the pi-pulse duration of the gate shape; the
angle is the pulse area, amplitude ``A_pi * theta / pi`` (see
:mod:`.calibration`); the axis is the IQ phase (x: 0, y: pi/2, plus
``iq_phase_offset_rad``); DRAG (if calibrated) adds the derivative in the
perpendicular quadrature.

The table is data: :meth:`WaveformTable.save` writes ``table_index.json`` (one
record per entry, the calibration hash) and ``table_samples.npz`` (all I/Q
samples concatenated, with offsets); :meth:`WaveformTable.load` reads them back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import yaml

from .calibration import NVCalibration
from .shapes import envelope, envelope_derivative
from .xy8 import AXIS_PHASE_RAD, GRANULARITY, echo_point, padded_length, resume_point

DEFAULT_SPEC_FILE = "nv_table_spec.yaml"
INDEX_FILE = "table_index.json"
SAMPLES_FILE = "table_samples.npz"
FORMAT_VERSION = 1

#: special operations the spec may name
SPECIALS = ("none", "init", "measure", "ent_keep", "ent_measure", "cr_check", "charge_repump")
#: laser-only operations (MW off)
LASER_OPS = ("init", "measure", "cr_check", "charge_repump")

_H = math.pi / 2
#: face-diagonal pi rotations: axis label and the pulses (phase rad, signed angle rad) in time order
CLIFFORDS: dict[str, tuple[str, tuple[tuple[float, float], ...]]] = {
    "pi_xpy": ("x+y", ((math.pi / 4, math.pi),)),
    "pi_xmy": ("x-y", ((-math.pi / 4, math.pi),)),
    "hadamard": ("x+z", ((_H, _H), (0.0, math.pi))),
    "pi_xmz": ("x-z", ((_H, -_H), (0.0, math.pi))),
    "pi_ypz": ("y+z", ((0.0, -_H), (_H, math.pi))),
    "pi_ymz": ("y-z", ((0.0, _H), (_H, math.pi))),
}
ROTATION_AXES = ("x", "y", "z")


class TableSpecError(ValueError):
    """The table spec is malformed; ``key`` names the field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"table spec '{key}': {message}")
        self.key = key


class TableLookupError(KeyError):
    """No table entry for the requested name or rotation."""


class TableError(ValueError):
    """A table cannot be built or loaded (e.g. a sample above the safe amplitude)."""


# ---------------------------------------------------------------------------- spec
@dataclass(frozen=True)
class SpecGroup:
    """One group of the spec: ``kind`` 'special' | 'rotation' | 'clifford'."""

    kind: str
    names: tuple[str, ...] = ()
    axes: tuple[str, ...] = ()
    max_depth: int = 0


@dataclass(frozen=True)
class TableSpec:
    """Which entries a table has, in index order."""

    name: str
    groups: tuple[SpecGroup, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, g in enumerate(self.groups):
            key = f"groups[{i}]"
            if g.kind == "special":
                bad = [n for n in g.names if n not in SPECIALS]
                if bad or not g.names:
                    raise TableSpecError(f"{key}.names", f"unknown or no special operations {bad}; "
                                                         f"known: {', '.join(SPECIALS)}")
            elif g.kind == "clifford":
                bad = [n for n in g.names if n not in CLIFFORDS]
                if bad or not g.names:
                    raise TableSpecError(f"{key}.names", f"unknown or no Clifford names {bad}; "
                                                         f"known: {', '.join(CLIFFORDS)}")
            elif g.kind == "rotation":
                bad = [a for a in g.axes if a not in ROTATION_AXES]
                if bad or not g.axes:
                    raise TableSpecError(f"{key}.axes", f"unknown or no axes {bad}; known: x, y, z")
                if not 0 <= g.max_depth <= 10:
                    raise TableSpecError(f"{key}.max_depth", f"must be 0..10, got {g.max_depth}")
            else:
                raise TableSpecError(f"{key}.kind", f"unknown kind {g.kind!r} (special, rotation, clifford)")
            for name in _group_names(g):
                if name in seen:
                    raise TableSpecError(key, f"entry {name!r} appears twice")
                seen.add(name)

    def count(self) -> int:
        """Number of entries this spec yields."""
        return sum(len(_group_names(g)) for g in self.groups)


def _canonical_ns(d: int) -> range:
    """Canonical numerators at depth d: odd n in (0, 2^(d+1)); d = 0 gives n = 1 (pi)."""
    return range(1, 1 << (d + 1), 2)


def _group_names(g: SpecGroup) -> list[str]:
    if g.kind == "rotation":
        return [rotation_name(a, n, d) for a in g.axes for d in range(g.max_depth + 1)
                for n in _canonical_ns(d)]
    return list(g.names)


def rotation_name(axis: str, n: int, d: int) -> str:
    """Entry name of the rotation by ``n*pi/2^d`` about ``axis``, e.g. ``rot_x_n3_d2``."""
    return f"rot_{axis}_n{n}_d{d}"


def spec_from_dict(data: Mapping[str, Any]) -> TableSpec:
    """Build a :class:`TableSpec` from the YAML layout."""
    if not isinstance(data, Mapping):
        raise TableSpecError("<root>", "expected a mapping")
    unknown = set(data) - {"name", "groups"}
    if unknown:
        raise TableSpecError(sorted(unknown)[0], "unknown key")
    groups = []
    for i, g in enumerate(data.get("groups") or []):
        if not isinstance(g, Mapping):
            raise TableSpecError(f"groups[{i}]", "must be a mapping")
        extra = set(g) - {"kind", "names", "axes", "max_depth"}
        if extra:
            raise TableSpecError(f"groups[{i}].{sorted(extra)[0]}", "unknown key")
        groups.append(SpecGroup(kind=str(g.get("kind")), names=tuple(g.get("names", ())),
                                axes=tuple(g.get("axes", ())), max_depth=int(g.get("max_depth", 0))))
    if not groups:
        raise TableSpecError("groups", "missing or empty")
    return TableSpec(name=str(data.get("name", "custom")), groups=tuple(groups))


def load_spec(path: str | Path | None = None) -> TableSpec:
    """Load a table spec YAML; ``None`` loads the shipped default (170 entries)."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_SPEC_FILE).read_text()
    else:
        text = Path(path).read_text()
    return spec_from_dict(yaml.safe_load(text))


# ---------------------------------------------------------------------------- entries
@dataclass(frozen=True, eq=False)
class TableEntry:
    """One waveform-table entry (samples at ``sample_rate_hz``; ``mw`` False = laser-only op).

    ``samples_i``/``samples_q``: the operation's I/Q samples, zero-padded to
    ``op_samples`` (multiple of 16, >= 32); read-only arrays. ``dd_start_sample``:
    reference of the first XY8 block (its pulses are centred at
    ``dd_start_sample + (k + 1/2) tau``). ``length_samples``: the whole entry, up to
    where idle DD resumes, which it does with DD shift ``resume_shift``.
    ``angle_rad = n*pi/2^d`` for rotations (``n``, ``d`` canonical), ``None`` otherwise.
    """

    index: int
    name: str
    kind: str
    axis: str | None
    angle_rad: float | None
    n: int | None
    d: int | None
    samples_i: np.ndarray = field(repr=False)
    samples_q: np.ndarray = field(repr=False)
    pulse_duration_s: float
    dd_start_sample: int
    length_samples: int
    resume_shift: int
    mw: bool
    sample_rate_hz: float
    #: carbon gates (DD trains timed to a carbon's coupling): the carbon's qubit address
    #: (1..N), the train's half-spacing tau and pulse count; None for electron entries
    carbon: int | None = None
    train_tau_samples: int | None = None
    train_pulses: int | None = None

    @property
    def target_qubit(self) -> int:
        """The qubit this entry acts on: the carbon of a carbon gate, else the electron (0)."""
        return 0 if self.carbon is None else self.carbon

    @property
    def op_samples(self) -> int:
        """Length of the stored (padded) operation waveform, samples."""
        return int(self.samples_i.shape[0])

    @property
    def duration_ns(self) -> float:
        """Whole entry (operation + first XY8 block) in ns."""
        return self.length_samples * 1e9 / self.sample_rate_hz

    @property
    def op_duration_ns(self) -> float:
        """Padded operation waveform in ns."""
        return self.op_samples * 1e9 / self.sample_rate_hz

    def meta(self) -> dict[str, Any]:
        """JSON-able record of everything but the samples."""
        return {"index": self.index, "name": self.name, "kind": self.kind, "axis": self.axis,
                "angle_rad": self.angle_rad, "n": self.n, "d": self.d,
                "op_samples": self.op_samples, "pulse_duration_s": self.pulse_duration_s,
                "dd_start_sample": self.dd_start_sample, "length_samples": self.length_samples,
                "resume_shift": self.resume_shift, "mw": self.mw, "carbon": self.carbon,
                "train_tau_samples": self.train_tau_samples, "train_pulses": self.train_pulses}


def canonical_angle(n: int, d: int) -> tuple[int, int]:
    """Reduce ``n*pi/2^d`` to canonical form: angle in [0, 2pi), n odd (or (0, 0))."""
    if d < 0:
        raise ValueError(f"angle depth d must be >= 0, got {d}")
    n %= 1 << (d + 1)
    if n == 0:
        return 0, 0
    while d > 0 and n % 2 == 0:
        n //= 2
        d -= 1
    return n, d


@dataclass(frozen=True, eq=False)
class WaveformTable:
    """The built table: entries in index order, stamped with the calibration hash.

    ``lead_samples``: anchor of a single-pulse gate (the DD resume rule, see
    :mod:`.xy8`); ``dd_tau_samples``/``dd_pulse_samples``: the DD grid the entries'
    first XY8 blocks use.
    """

    entries: tuple[TableEntry, ...]
    calibration_hash: str
    sample_rate_hz: float
    lead_samples: int
    dd_tau_samples: int
    dd_pulse_samples: int
    spec_name: str = "custom"
    _by_name: dict = field(default_factory=dict, init=False, repr=False)
    _by_rot: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for pos, e in enumerate(self.entries):
            if e.index != pos:
                raise TableError(f"entry {e.name!r} has index {e.index}, expected {pos}")
            if e.name in self._by_name:
                raise TableError(f"duplicate entry name {e.name!r}")
            self._by_name[e.name] = e
            if e.n is not None and e.axis is not None and e.carbon is None:
                self._by_rot[(e.axis, e.n, e.d)] = e

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[TableEntry]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> TableEntry:
        return self.entries[index]

    def by_name(self, name: str) -> TableEntry:
        """The entry called ``name`` (``TableLookupError`` if none)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise TableLookupError(f"no table entry named {name!r}") from None

    def by_rotation(self, axis: str, n: int, d: int) -> TableEntry:
        """The entry rotating by ``n*pi/2^d`` about ``axis`` ('x', 'y', 'z', or a Clifford
        axis such as 'x+z' with n=1, d=0). Non-canonical (n, d) are reduced first; a zero
        angle gives the ``none`` entry."""
        cn, cd = canonical_angle(n, d)
        if cn == 0:
            return self.by_name("none")
        try:
            return self._by_rot[(axis, cn, cd)]
        except KeyError:
            raise TableLookupError(f"no table entry rotates about {axis!r} by {n}*pi/2^{d} "
                                   f"(canonical {cn}*pi/2^{cd})") from None

    def compose_rotation(self, axis: str, n: int, d: int) -> tuple[TableEntry, ...]:
        """Entries, in time order, that rotate by ``n*pi/2^d`` about ``axis`` ('x', 'y', 'z').

        One entry when the table has the angle (zero angle: the ``none`` entry); a z angle
        deeper than the z grid is ``x(-pi/2) y(theta) x(pi/2)`` from three entries.
        ``TableLookupError`` when the angle is finer than the table's grid.
        """
        try:
            return (self.by_rotation(axis, n, d),)
        except TableLookupError:
            if axis != "z":
                raise
        try:
            return (self.by_rotation("x", -1, 1), self.by_rotation("y", n, d), self.by_rotation("x", 1, 1))
        except TableLookupError:
            raise TableLookupError(f"no table entries compose a rotation about 'z' by {n}*pi/2^{d}") from None

    def rotations(self) -> tuple[TableEntry, ...]:
        """All electron entries with a rotation angle (x, y, z grid and Cliffords), in index order."""
        return tuple(e for e in self.entries if e.angle_rad is not None and e.carbon is None)

    def carbon_gates(self) -> tuple[TableEntry, ...]:
        """The carbon-gate entries (DD trains), in index order."""
        return tuple(e for e in self.entries if e.carbon is not None)

    def carbon_gate(self, carbon: int, kind: str, quarter_turns: int) -> TableEntry:
        """The entry of ``kind`` ('crot_x' or 'rot_x') on ``carbon`` by ``quarter_turns`` x pi/2."""
        return self.by_name(carbon_gate_name(carbon, kind, quarter_turns))

    @property
    def num_carbons(self) -> int:
        return max((e.carbon for e in self.entries if e.carbon is not None), default=0)

    def total_op_samples(self) -> int:
        """Sum of the stored operation waveform lengths (samples per channel)."""
        return sum(e.op_samples for e in self.entries)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``table_index.json`` and ``table_samples.npz`` into ``directory``; returns it."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        lengths = np.array([e.op_samples for e in self.entries], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        np.savez(out / SAMPLES_FILE,
                 i=np.concatenate([e.samples_i for e in self.entries]),
                 q=np.concatenate([e.samples_q for e in self.entries]),
                 offsets=offsets)
        index = {"format": FORMAT_VERSION, "spec": self.spec_name,
                 "calibration_hash": self.calibration_hash, "sample_rate_hz": self.sample_rate_hz,
                 "lead_samples": self.lead_samples, "dd_tau_samples": self.dd_tau_samples,
                 "dd_pulse_samples": self.dd_pulse_samples, "samples_file": SAMPLES_FILE,
                 "entries": [dict(e.meta(), offset=int(offsets[k])) for k, e in enumerate(self.entries)]}
        (out / INDEX_FILE).write_text(json.dumps(index, indent=1))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> "WaveformTable":
        """Read a table written by :meth:`save`."""
        d = Path(directory)
        index = json.loads((d / INDEX_FILE).read_text())
        if index.get("format") != FORMAT_VERSION:
            raise TableError(f"{d / INDEX_FILE}: unsupported format {index.get('format')!r}")
        with np.load(d / index["samples_file"]) as z:
            si, sq, offsets = z["i"], z["q"], z["offsets"]
        fs = float(index["sample_rate_hz"])
        entries = []
        for k, m in enumerate(index["entries"]):
            a, b = int(offsets[k]), int(offsets[k + 1])
            if b - a != m["op_samples"]:
                raise TableError(f"entry {m['name']!r}: {b - a} samples stored, index says {m['op_samples']}")
            entries.append(TableEntry(
                index=m["index"], name=m["name"], kind=m["kind"], axis=m["axis"], angle_rad=m["angle_rad"],
                n=m["n"], d=m["d"], samples_i=_readonly(si[a:b]), samples_q=_readonly(sq[a:b]),
                pulse_duration_s=m["pulse_duration_s"], dd_start_sample=m["dd_start_sample"],
                length_samples=m["length_samples"], resume_shift=m["resume_shift"], mw=m["mw"],
                sample_rate_hz=fs, carbon=m.get("carbon"), train_tau_samples=m.get("train_tau_samples"),
                train_pulses=m.get("train_pulses")))
        return cls(entries=tuple(entries), calibration_hash=index["calibration_hash"], sample_rate_hz=fs,
                   lead_samples=index["lead_samples"], dd_tau_samples=index["dd_tau_samples"],
                   dd_pulse_samples=index["dd_pulse_samples"], spec_name=index.get("spec", "custom"))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------- build
@dataclass(frozen=True)
class _Op:
    """Operation plan: segments ('mw', phase, angle) or ('wait', samples); anchor sample."""

    segments: tuple[tuple, ...]
    anchor: int


class _Builder:
    """Renders operations with one calibration (base gate pulse computed once)."""

    def __init__(self, cal: NVCalibration) -> None:
        self.cal = cal
        shape = cal.gate_shape
        self.n = cal.pulse_samples(shape)
        env = envelope(shape, self.n, hermite_a=cal.hermite_a)
        c0 = env.astype(complex)
        if cal.drag_coefficient_s:
            c0 = c0 + 1j * cal.drag_coefficient_s * envelope_derivative(
                shape, self.n, cal.sample_rate_hz, hermite_a=cal.hermite_a)
        self.c0 = c0
        self.lead = self.n // 2
        self.tau = cal.dd_tau_samples
        self.fs = cal.sample_rate_hz

    def samples(self, key: str) -> int:
        return int(round(getattr(self.cal, key) * self.fs))

    def plan(self, kind: str, name: str, pulses: Sequence[tuple[float, float]] = ()) -> _Op:
        mw = tuple(("mw", ph, ang) for ph, ang in pulses)
        if kind in ("rotation", "clifford"):
            return _Op(mw, (len(mw) * self.n) // 2)
        if name == "none":
            return _Op((), self.lead)
        if name in LASER_OPS:
            key = {"init": "init_duration_s", "measure": "readout_duration_s",
                   "cr_check": "cr_check_duration_s", "charge_repump": "charge_repump_duration_s"}[name]
            w = self.samples(key)
            return _Op((("wait", w),), w)
        alpha = (("mw", 0.0, self.cal.ent_alpha_angle_rad),)
        att = self.samples("ent_attempt_duration_s")
        if name == "ent_keep":
            return _Op(alpha + (("wait", att),), self.n + att // 2)
        ro = self.samples("readout_duration_s")
        return _Op(alpha + (("wait", att), ("wait", ro)), self.n + att + ro)

    def render(self, op: _Op) -> tuple[np.ndarray, np.ndarray, int]:
        """(I, Q, unpadded length) of an operation, padded to the granularity."""
        parts = []
        for seg in op.segments:
            if seg[0] == "mw":
                _, ph, ang = seg
                amp = self.cal.amplitude_for(ang)
                parts.append(amp * np.exp(1j * (ph + self.cal.iq_phase_offset_rad)) * self.c0)
            else:
                parts.append(np.zeros(seg[1], dtype=complex))
        raw = np.concatenate(parts) if parts else np.zeros(0, dtype=complex)
        c = np.zeros(padded_length(raw.shape[0]), dtype=complex)
        c[: raw.shape[0]] = raw
        return _readonly(c.real), _readonly(c.imag), int(raw.shape[0])


def _signed(angle: float) -> float:
    """Equivalent rotation angle in (-pi, pi]."""
    return angle - 2 * math.pi if angle > math.pi else angle


def carbon_gate_name(carbon: int, kind: str, quarter_turns: int) -> str:
    """Entry name of a carbon gate, e.g. ``c1_crot_x_p1`` (+pi/2), ``c2_rot_x_m1`` (-pi/2)."""
    return f"c{carbon}_{kind}_{'p' if quarter_turns > 0 else 'm'}{abs(quarter_turns)}"


def build_table(calibration: NVCalibration, spec: TableSpec | str | Path | None = None,
                carbons: Any = None) -> WaveformTable:
    """Build the waveform table of ``spec`` (default: the shipped 170-entry spec) under ``calibration``.

    ``carbons`` (a :class:`~.carbon_gates.CarbonRegister`): after the spec's entries, 5
    entries per carbon (``crot_x`` by +-pi/2, ``rot_x`` by +-pi/2 and pi), each a DD train
    designed for that carbon (:func:`~.carbon_gates.design_gate`): the table grows from
    170 to 170 + 5 N entries (N <= 5: 195 at most, within the 8-bit DIO codeword); the
    trains play the shared DD pulse copies, so they need no waveform memory.
    """
    if not isinstance(spec, TableSpec):
        spec = load_spec(spec)
    b = _Builder(calibration)
    entries: list[TableEntry] = []
    for g in spec.groups:
        items: list[tuple[str, str, str | None, float | None, int | None, int | None, tuple]] = []
        if g.kind == "special":
            for nm in g.names:
                items.append((nm, nm, None, None, None, None, ()))
        elif g.kind == "clifford":
            for nm in g.names:
                axis, pulses = CLIFFORDS[nm]
                items.append(("clifford", nm, axis, math.pi, 1, 0, pulses))
        else:
            for axis in g.axes:
                for d in range(g.max_depth + 1):
                    for n in _canonical_ns(d):
                        theta = n * math.pi / (1 << d)
                        s = _signed(theta)
                        if axis == "z":
                            pulses = ((0.0, -_H), (_H, s), (0.0, _H))
                        else:
                            pulses = ((AXIS_PHASE_RAD[axis], s),)
                        items.append((f"rot_{axis}", rotation_name(axis, n, d), axis, theta, n, d, pulses))
        for kind, name, axis, angle, n, d, pulses in items:
            op = b.plan("special" if kind in SPECIALS else ("clifford" if kind == "clifford" else "rotation"),
                        name, pulses)
            si, sq, raw_len = b.render(op)
            peak = float(np.max(np.hypot(si, sq))) if si.size else 0.0
            if peak > calibration.safe_max_amplitude + 1e-12:
                raise TableError(f"entry {name!r} peaks at |I+iQ| = {peak:.4f} > safe_max_amplitude "
                                 f"{calibration.safe_max_amplitude}")
            end, shift = resume_point(echo_point(op.anchor, b.tau), b.lead)
            entries.append(TableEntry(
                index=len(entries), name=name, kind=kind, axis=axis, angle_rad=angle, n=n, d=d,
                samples_i=si, samples_q=sq, pulse_duration_s=raw_len / b.fs, dd_start_sample=op.anchor,
                length_samples=end, resume_shift=shift,
                mw=any(seg[0] == "mw" for seg in op.segments), sample_rate_hz=b.fs))
    if carbons is not None and carbons.carbons:
        from .carbon_gates import register_designs
        empty = _readonly(np.zeros(GRANULARITY * 2))
        from .shapes import iq_pulse

        cal = calibration
        npl = cal.pulse_samples(cal.dd_shape)
        pi, pq = iq_pulse(cal.dd_shape, npl, cal.pi_amplitude(cal.dd_shape),
                          AXIS_PHASE_RAD["x"] + cal.iq_phase_offset_rad, cal.sample_rate_hz,
                          drag_coefficient_s=cal.drag_coefficient_s, hermite_a=cal.hermite_a)
        rabi_hz = cal.rabi_rate_per_amplitude(cal.dd_shape) / (2 * math.pi)
        pulse = (tuple(float(v) for v in pi), tuple(float(v) for v in pq), float(rabi_hz))
        # tau a multiple of 8 samples: the train (2 n tau) ends on the 16-sample grid, so the
        # AWG window is [ref - lead, echo - lead] (the design accounts for that offset)
        for d in register_designs(carbons, b.fs, npl / b.fs, pulse, b.lead, 8):
            quarter = int(round(d.angle_rad / _H))
            n, dd = canonical_angle(quarter, 1)
            echo = b.lead + 2 * d.n_pulses * d.tau_samples
            end, shift = resume_point(echo, b.lead)
            entries.append(TableEntry(
                index=len(entries), name=carbon_gate_name(d.carbon, d.kind, quarter), kind=d.kind,
                axis="x", angle_rad=d.angle_rad, n=n, d=dd, samples_i=empty, samples_q=empty,
                pulse_duration_s=d.duration_s, dd_start_sample=b.lead, length_samples=end,
                resume_shift=shift, mw=False, sample_rate_hz=b.fs, carbon=d.carbon,
                train_tau_samples=d.tau_samples, train_pulses=d.n_pulses))
    return WaveformTable(entries=tuple(entries), calibration_hash=calibration.content_hash(),
                         sample_rate_hz=b.fs, lead_samples=b.lead, dd_tau_samples=b.tau,
                         dd_pulse_samples=calibration.pulse_samples(calibration.dd_shape),
                         spec_name=spec.name)


__all__ = ["TableEntry", "WaveformTable", "TableSpec", "SpecGroup", "build_table", "load_spec",
           "spec_from_dict", "canonical_angle", "rotation_name", "TableSpecError", "TableLookupError",
           "TableError", "SPECIALS", "CLIFFORDS", "GRANULARITY"]
