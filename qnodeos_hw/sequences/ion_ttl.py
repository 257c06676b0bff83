"""Trapped-ion TTL sequences: the 7 physical instructions of the 40Ca+ node as edge lists
for the FPGA pulse sequencer behind the SPI/serial-to-TTL bridge.

Clock and grid
--------------
The sequencer runs at :data:`FPGA_CLOCK_HZ` = 100 MHz, so every edge sits on a
:data:`CLOCK_PERIOD_NS` = 10 ns grid. A high pulse on any line lasts at least
:data:`MIN_PULSE_NS` = 50 ns (AOM / RF-switch rise time). Times in this module are ns
on the sequence's own time axis (0 = the tick the bridge starts it on); the wire
format (below) carries clock cycles.

Channels (FPGA output bit = :class:`Channel` value)
---------------------------------------------------
====  ==========  ==========================================================
bit   channel     drives
====  ==========  ==========================================================
0     cooling     397 nm Doppler-cooling / detection beam AOM
1     repump      866 nm repumper AOM
2     pump        optical pumping to S1/2(m=-1/2), i.e. |0>
3     qubit       729 nm qubit-laser DDS trigger (RF switch)
4     phase0      DDS profile select, bit 0
5     phase1      DDS profile select, bit 1
6     pmt_gate    PMT counter gate
====  ==========  ==========================================================

Bit 7 is unused and must stay low. The DDS holds four profiles whose phases are
``profile * pi/2`` (profile = phase1*2 + phase0): 0 -> x, 1 -> y, 2 -> -x, 3 -> -y.
The profile lines must be stable while ``qubit`` is high.

Conflict table (lines that must never be high at the same time)
---------------------------------------------------------------
============  ===========================================================
qubit         cooling, pump, pmt_gate  (scattered light destroys coherence)
pump          pmt_gate                 (pumping light would be counted)
============  ===========================================================

Violations raise a :class:`SequenceError` subclass whose ``channel`` and ``time_ns``
name the line and the time (``sequence`` names the sequence).

The 7 sequences and their indices (the bridge's sequence slots)
---------------------------------------------------------------
== ============ ===================================================================
0  init         cooling+repump for ``cooling_ns``; guard; pump+repump for ``pumping_ns``
1  rx_pi        qubit, profile 0, ``pi_time_ns``
2  ry_pi        qubit, profile 1, ``pi_time_ns``
3  rx_pi2       qubit, profile 0, ``pi_time_ns/2``
4  ry_pi2       qubit, profile 1, ``pi_time_ns/2``
5  rx_mpi2      qubit, profile 2 (phase pi), ``pi_time_ns/2``  -> Rx(-pi/2)
6  measure      cooling+repump+pmt_gate for ``detection_ns``
== ============ ===================================================================

Every sequence ends with a ``guard_ns`` all-low tail. The ion QDriver sends sequence
``k`` as the 4-byte message ``Opcode.PLAY`` with argument ``k`` (:func:`play_message`);
:func:`sequence_index` maps a generic physical instruction (``Init``, ``Rotation``,
``Measure``) to ``k`` and refuses anything else with
:class:`~qnodeos_hw.qdevice.errors.UnsupportedInstructionError`.

Upload format (payload of the bridge's UPLOAD command, big-endian)
------------------------------------------------------------------
::

    duration_cycles : u32     sequence length (clock cycles)
    n_edges         : u16     1 .. MAX_EDGES
    n_edges x ( t_cycles : u32, mask : u8 )   strictly increasing t; mask = the line
                                               levels from t on (bit = Channel)

Before the first edge all lines are low; after the last edge the mask must be 0 and
its time <= duration. :func:`encode_sequence` / :func:`decode_sequence` convert.
"""

from __future__ import annotations

import enum
import math
import struct
import zlib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..qdevice.errors import UnsupportedInstructionError
from ..qdevice.instructions import Axis, Init, Measure, PhysicalInstruction, Rotation
from ..qdevice.message import InstructionMessage, Opcode

FPGA_CLOCK_HZ = 100_000_000
CLOCK_PERIOD_NS = 1_000_000_000 // FPGA_CLOCK_HZ
MIN_PULSE_NS = 50
MAX_EDGES = 64


class Channel(enum.IntEnum):
    """FPGA TTL output lines (value = bit number)."""

    COOLING = 0
    REPUMP = 1
    PUMP = 2
    QUBIT = 3
    PHASE0 = 4
    PHASE1 = 5
    PMT_GATE = 6

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def bit(self) -> int:
        return 1 << self.value


ALL_CHANNELS_MASK = sum(c.bit for c in Channel)
PHASE_MASK = Channel.PHASE0.bit | Channel.PHASE1.bit

#: pairs of lines that must never be high together (documented in the module docstring)
CONFLICTS: tuple[tuple[Channel, Channel], ...] = (
    (Channel.QUBIT, Channel.COOLING),
    (Channel.QUBIT, Channel.PUMP),
    (Channel.QUBIT, Channel.PMT_GATE),
    (Channel.PUMP, Channel.PMT_GATE),
)

#: DDS profile phase (rad) = profile * pi/2
DDS_PROFILE_PHASES_RAD = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)


class IonInstruction(enum.IntEnum):
    """The 7 physical instructions of the ion node; value = bridge sequence slot."""

    INIT = 0
    RX_PI = 1
    RY_PI = 2
    RX_PI2 = 3
    RY_PI2 = 4
    RX_MPI2 = 5
    MEASURE = 6

    @property
    def label(self) -> str:
        return self.name.lower()


# --------------------------------------------------------------------------- errors

class IonCalibrationError(ValueError):
    """The ion calibration is unusable; ``key`` names the offending entry."""

    def __init__(self, key: str, detail: str) -> None:
        self.key, self.detail = key, detail
        super().__init__(f"ion calibration key '{key}': {detail}")


class SequenceError(ValueError):
    """A TTL sequence breaks a hardware rule at ``time_ns`` on ``channel``."""

    def __init__(self, sequence: str, channel: str, time_ns: float, detail: str) -> None:
        self.sequence, self.channel, self.time_ns, self.detail = sequence, channel, time_ns, detail
        super().__init__(f"TTL sequence '{sequence}', channel '{channel}' at {time_ns} ns: {detail}")


class OffGridError(SequenceError):
    """An edge (or the sequence end) is not on the FPGA clock grid."""


class PulseTooShortError(SequenceError):
    """A high pulse is shorter than :data:`MIN_PULSE_NS`."""


class ChannelConflictError(SequenceError):
    """Two lines of :data:`CONFLICTS` are high together (``other`` names the second),
    or two pulses on the same line overlap."""

    def __init__(self, sequence: str, channel: str, other: str, time_ns: float, detail: str) -> None:
        self.other = other
        super().__init__(sequence, channel, time_ns, detail)


class PhaseSelectError(SequenceError):
    """A DDS profile line changed while the qubit laser was on."""


class ChannelLeftHighError(SequenceError):
    """A line is still high at the end of the sequence."""


class EdgeOrderError(SequenceError):
    """Edges are not strictly increasing in time, start before 0, do not change any line,
    lie after the sequence end, or there are too many of them."""


class UnknownChannelError(SequenceError):
    """A mask sets a bit that is no :class:`Channel`."""


# --------------------------------------------------------------------------- calibration

@dataclass(frozen=True, slots=True)
class IonCalibration:
    """Durations (ns) of the ion node's TTL sequences and the PMT threshold.

    ``pi_time_ns``: 729 nm pi pulse; ``cooling_ns``: Doppler cooling in init;
    ``pumping_ns``: optical pumping in init; ``detection_ns``: PMT gate window;
    ``guard_ns``: all-low settle time after each stage (AOM switching);
    ``pmt_threshold``: counts >= threshold in the detection window read as bright.
    """

    pi_time_ns: int
    cooling_ns: int
    pumping_ns: int
    detection_ns: int
    guard_ns: int
    pmt_threshold: int

    @property
    def half_pi_time_ns(self) -> float:
        """pi/2 pulse length (ns); may fall off the grid, which the build then refuses."""
        return self.pi_time_ns / 2

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "IonCalibration":
        """Build from a mapping; missing, unknown, non-numeric, non-finite, non-integer or
        negative entries raise :class:`IonCalibrationError` naming the key."""
        if not isinstance(data, Mapping):
            raise IonCalibrationError("<root>", f"expected a mapping, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise IonCalibrationError(str(key), f"unknown key (expected {', '.join(names)})")
        values = {}
        for name in names:
            if name not in data:
                raise IonCalibrationError(name, "missing")
            v = data[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise IonCalibrationError(name, f"must be a number, got {v!r}")
            if not math.isfinite(v):
                raise IonCalibrationError(name, f"must be finite, got {v!r}")
            if v != int(v):
                raise IonCalibrationError(name, f"must be a whole number, got {v!r}")
            if v < 0 or (v == 0 and name != "guard_ns" and name != "pmt_threshold"):
                raise IonCalibrationError(name, f"must be positive, got {v!r}")
            values[name] = int(v)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "IonCalibration":
        """Load a calibration YAML file (flat mapping of the fields above)."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_mapping(yaml.safe_load(fh))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def load_calibration(path: str | Path | None = None) -> IonCalibration:
    """The calibration at ``path``, or the shipped ``data/ion_calibration.yaml``."""
    if path is None:
        ref = resources.files("qnodeos_hw.sequences") / "data" / "ion_calibration.yaml"
        with resources.as_file(ref) as p:
            return IonCalibration.from_yaml(p)
    return IonCalibration.from_yaml(path)


# --------------------------------------------------------------------------- sequences

@dataclass(frozen=True, slots=True)
class Edge:
    """From ``t_ns`` on, the lines are at ``mask`` (bit = :class:`Channel`)."""

    t_ns: float
    mask: int


@dataclass(frozen=True, slots=True)
class Pulse:
    """``channel`` high from ``start_ns`` for ``width_ns``."""

    channel: Channel
    start_ns: float
    width_ns: float


@dataclass(frozen=True, slots=True)
class TTLSequence:
    """One sequence: edges (ns) and total duration (ns)."""

    name: str
    edges: tuple[Edge, ...]
    duration_ns: float

    def levels_at(self, t_ns: float) -> int:
        """Line mask in force at ``t_ns``."""
        mask = 0
        for e in self.edges:
            if e.t_ns > t_ns:
                break
            mask = e.mask
        return mask

    def high_intervals(self, channel: Channel) -> list[tuple[float, float]]:
        """[(start_ns, end_ns)] where ``channel`` is high."""
        out, start = [], None
        for e in self.edges:
            high = bool(e.mask & channel.bit)
            if high and start is None:
                start = e.t_ns
            elif not high and start is not None:
                out.append((start, e.t_ns))
                start = None
        if start is not None:
            out.append((start, self.duration_ns))
        return out

    def high_time_ns(self, channel: Channel) -> float:
        return sum(b - a for a, b in self.high_intervals(channel))


def _names(mask: int) -> str:
    known = [c.label for c in Channel if mask & c.bit]
    unknown = [f"bit{b}" for b in range(8) if mask & (1 << b) and not mask & ALL_CHANNELS_MASK & (1 << b)]
    return "+".join(known + unknown) or "none"


def build_sequence(name: str, pulses: Iterable[Pulse], duration_ns: float) -> TTLSequence:
    """Edges from pulses. Overlapping pulses on one line raise :class:`ChannelConflictError`;
    everything else is checked by :func:`validate` (call it, or use :func:`build_all`)."""
    pulses = sorted(pulses, key=lambda p: (p.start_ns, p.channel))
    last_end: dict[Channel, float] = {}
    changes: dict[float, list[tuple[Channel, bool]]] = {}
    for p in pulses:
        if p.width_ns <= 0:
            raise PulseTooShortError(name, p.channel.label, p.start_ns,
                                     f"pulse width {p.width_ns} ns is not positive")
        if p.start_ns < last_end.get(p.channel, -math.inf):
            raise ChannelConflictError(name, p.channel.label, p.channel.label, p.start_ns,
                                       "overlaps the previous pulse on the same line")
        last_end[p.channel] = p.start_ns + p.width_ns
        changes.setdefault(p.start_ns, []).append((p.channel, True))
        changes.setdefault(p.start_ns + p.width_ns, []).append((p.channel, False))
    edges, mask = [], 0
    for t in sorted(changes):
        new = mask
        for ch, high in sorted(changes[t], key=lambda c: c[1]):  # falls before rises
            new = (new | ch.bit) if high else (new & ~ch.bit)
        if new != mask:
            edges.append(Edge(t, new))
            mask = new
    return TTLSequence(name, tuple(edges), duration_ns)


def validate(seq: TTLSequence) -> TTLSequence:
    """Check every hardware rule (module docstring); return ``seq`` or raise the
    :class:`SequenceError` subclass naming channel and time."""
    name = seq.name
    if len(seq.edges) > MAX_EDGES:
        raise EdgeOrderError(name, _names(seq.edges[MAX_EDGES].mask), seq.edges[MAX_EDGES].t_ns,
                             f"{len(seq.edges)} edges, the sequencer holds at most {MAX_EDGES}")
    prev_mask, prev_t = 0, -math.inf
    rise: dict[Channel, float] = {}
    for e in seq.edges:
        t, mask = e.t_ns, e.mask
        changed = mask ^ prev_mask
        if mask & ~ALL_CHANNELS_MASK or not 0 <= mask <= 0xFF:
            raise UnknownChannelError(name, _names(mask & ~ALL_CHANNELS_MASK), t,
                                      f"mask 0x{mask:02x} sets a bit that is no channel")
        if t < 0 or t <= prev_t:
            raise EdgeOrderError(name, _names(changed), t,
                                 f"edge not after the previous one ({prev_t} ns) or before 0")
        if not changed:
            raise EdgeOrderError(name, "none", t, "edge changes no line")
        if t > seq.duration_ns:
            raise EdgeOrderError(name, _names(changed), t,
                                 f"edge after the sequence end ({seq.duration_ns} ns)")
        if t % CLOCK_PERIOD_NS:
            raise OffGridError(name, _names(changed), t,
                               f"edge not on the {CLOCK_PERIOD_NS} ns clock grid "
                               f"({FPGA_CLOCK_HZ / 1e6:g} MHz)")
        if prev_mask & mask & Channel.QUBIT.bit and changed & PHASE_MASK:
            raise PhaseSelectError(name, _names(changed & PHASE_MASK), t,
                                   "DDS profile select changed while the qubit laser is on")
        for ch in Channel:
            if changed & ch.bit:
                if mask & ch.bit:
                    rise[ch] = t
                else:
                    start = rise.pop(ch)
                    width = t - start
                    if width < MIN_PULSE_NS:
                        raise PulseTooShortError(name, ch.label, start,
                                                 f"high for {width} ns < minimum {MIN_PULSE_NS} ns")
        for a, b in CONFLICTS:
            if mask & a.bit and mask & b.bit:
                raise ChannelConflictError(name, a.label, b.label, t,
                                           f"'{a.label}' and '{b.label}' high together")
        prev_mask, prev_t = mask, t
    if seq.duration_ns % CLOCK_PERIOD_NS:
        raise OffGridError(name, "end", seq.duration_ns,
                           f"sequence duration is not a multiple of {CLOCK_PERIOD_NS} ns")
    if prev_mask:
        raise ChannelLeftHighError(name, _names(prev_mask), seq.duration_ns,
                                   "still high at the end of the sequence")
    return seq


def _ns(x: float) -> float:
    return int(x) if float(x).is_integer() else x


def instruction_sequence(instr: IonInstruction, cal: IonCalibration) -> TTLSequence:
    """The (unvalidated) TTL sequence of one ion instruction."""
    g = cal.guard_ns
    C, R, P, Q, P0, P1, G = (Channel.COOLING, Channel.REPUMP, Channel.PUMP, Channel.QUBIT,
                             Channel.PHASE0, Channel.PHASE1, Channel.PMT_GATE)
    if instr is IonInstruction.INIT:
        t_pump = cal.cooling_ns + g
        pulses = [Pulse(C, 0, cal.cooling_ns), Pulse(R, 0, t_pump + cal.pumping_ns),
                  Pulse(P, t_pump, cal.pumping_ns)]
        return build_sequence(instr.label, pulses, t_pump + cal.pumping_ns + g)
    if instr is IonInstruction.MEASURE:
        w = cal.detection_ns
        return build_sequence(instr.label, [Pulse(C, 0, w), Pulse(R, 0, w), Pulse(G, 0, w)], w + g)
    width = {IonInstruction.RX_PI: cal.pi_time_ns, IonInstruction.RY_PI: cal.pi_time_ns}.get(
        instr, cal.half_pi_time_ns)
    width = _ns(width)
    profile = {IonInstruction.RY_PI: 1, IonInstruction.RY_PI2: 1, IonInstruction.RX_MPI2: 2}.get(instr, 0)
    pulses = [Pulse(Q, 0, width)]
    if profile & 1:
        pulses.append(Pulse(P0, 0, width))
    if profile & 2:
        pulses.append(Pulse(P1, 0, width))
    return build_sequence(instr.label, pulses, width + g)


def build_all(cal: IonCalibration | None = None) -> dict[IonInstruction, TTLSequence]:
    """All 7 validated sequences, keyed by instruction (= slot index order)."""
    cal = cal if cal is not None else load_calibration()
    return {i: validate(instruction_sequence(i, cal)) for i in IonInstruction}


# --------------------------------------------------------------------------- instruction map

#: the unitary each rotation sequence realises: (axis, angle rad)
ROTATIONS: dict[IonInstruction, tuple[Axis, float]] = {
    IonInstruction.RX_PI: (Axis.X, math.pi),
    IonInstruction.RY_PI: (Axis.Y, math.pi),
    IonInstruction.RX_PI2: (Axis.X, math.pi / 2),
    IonInstruction.RY_PI2: (Axis.Y, math.pi / 2),
    IonInstruction.RX_MPI2: (Axis.X, -math.pi / 2),
}


def sequence_index(instr: PhysicalInstruction, tol: float = 1e-9) -> IonInstruction:
    """The slot that plays a generic physical instruction (angles compared mod 2pi)."""
    if isinstance(instr, Init):
        return IonInstruction.INIT
    if isinstance(instr, Measure):
        return IonInstruction.MEASURE
    if isinstance(instr, Rotation):
        for k, (axis, angle) in ROTATIONS.items():
            diff = (instr.angle - angle) % (2 * math.pi)
            if axis is instr.axis and min(diff, 2 * math.pi - diff) <= tol:
                return k
        raise UnsupportedInstructionError(
            f"ion node has no TTL sequence for rotation about {instr.axis.value} by "
            f"{instr.angle!r} rad (has Rx(pi), Ry(pi), Rx(pi/2), Ry(pi/2), Rx(-pi/2))")
    raise UnsupportedInstructionError(f"ion node has no TTL sequence for {instr!r}")


def physical_instruction_of(k: IonInstruction | int, qubit: int = 0) -> PhysicalInstruction:
    """Inverse of :func:`sequence_index`."""
    k = IonInstruction(k)
    if k is IonInstruction.INIT:
        return Init(qubit)
    if k is IonInstruction.MEASURE:
        return Measure(qubit)
    axis, angle = ROTATIONS[k]
    return Rotation(qubit, axis, angle)


def play_message(k: IonInstruction | int, qubit: int = 0, seq: int = 0) -> InstructionMessage:
    """The 4-byte-message form the ion QDriver sends: ``PLAY`` with argument = slot."""
    return InstructionMessage(Opcode.PLAY, qubit, int(IonInstruction(k)), seq)


# --------------------------------------------------------------------------- wire format

_HEAD = struct.Struct(">IH")
_EDGE = struct.Struct(">IB")


def encode_sequence(seq: TTLSequence) -> bytes:
    """Upload payload (module docstring) of a validated sequence."""
    validate(seq)
    out = bytearray(_HEAD.pack(int(seq.duration_ns) // CLOCK_PERIOD_NS, len(seq.edges)))
    for e in seq.edges:
        out += _EDGE.pack(int(e.t_ns) // CLOCK_PERIOD_NS, e.mask)
    return bytes(out)


def decode_sequence(data: bytes, name: str = "decoded") -> TTLSequence:
    """Inverse of :func:`encode_sequence`; the result is validated."""
    if len(data) < _HEAD.size:
        raise EdgeOrderError(name, "none", 0, f"payload of {len(data)} bytes has no header")
    dur, n = _HEAD.unpack_from(data)
    if len(data) != _HEAD.size + n * _EDGE.size:
        raise EdgeOrderError(name, "none", 0,
                             f"header says {n} edges but payload holds {len(data) - _HEAD.size} bytes")
    edges = tuple(Edge(t * CLOCK_PERIOD_NS, m)
                  for t, m in (_EDGE.unpack_from(data, _HEAD.size + i * _EDGE.size) for i in range(n)))
    return validate(TTLSequence(name, edges, dur * CLOCK_PERIOD_NS))


def crc32(payload: bytes) -> int:
    """CRC-32 (zlib) of an upload payload; the bridge echoes it after an upload."""
    return zlib.crc32(payload) & 0xFFFFFFFF
