"""What a QDevice offers: qubits, supported physical instructions, tick rate, and which
qubits can be entangled (communication qubits) and measured."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnsupportedInstructionError
from .instructions import InstrKind, PhysicalInstruction, qubits_of

_ENTANGLE = frozenset({InstrKind.ENT_KEEP, InstrKind.ENT_MEASURE})


@dataclass(frozen=True, slots=True)
class QDeviceSpec:
    """Static description of a QDevice (paper: the QDevice interface).

    ``tick_rate_hz``: rate of the tick link (Hz); ``tick_ns`` its period (ns).
    ``comm_qubits``: physical qubits that can take part in entanglement attempts;
    ``measurable_qubits``: physical qubits that can be read out (None: every qubit).
    ``pinned``: ``(virtual, physical)`` pairs the QMMU must keep (NV: virtual 0 is the
    electron, as netqasm's NV compiler assumes); empty: any placement.
    """

    name: str
    num_qubits: int
    supported: frozenset[InstrKind]
    tick_rate_hz: int
    comm_qubits: tuple[int, ...] | None = None
    measurable_qubits: tuple[int, ...] | None = None
    pinned: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.num_qubits < 1:
            raise ValueError("a QDevice has at least one qubit")
        if self.tick_rate_hz <= 0 or 1_000_000_000 % self.tick_rate_hz:
            raise ValueError(f"tick rate must divide 1 GHz exactly, got {self.tick_rate_hz} Hz")
        every = tuple(range(self.num_qubits))
        for attr in ("comm_qubits", "measurable_qubits"):
            v = getattr(self, attr)
            v = every if v is None else tuple(int(q) for q in v)
            if any(not 0 <= q < self.num_qubits for q in v):
                raise ValueError(f"{attr} {v} outside qubits 0..{self.num_qubits - 1}")
            object.__setattr__(self, attr, v)
        for vq, pq in self.pinned:
            if not 0 <= pq < self.num_qubits:
                raise ValueError(f"pinned physical qubit {pq} outside 0..{self.num_qubits - 1}")

    @property
    def tick_ns(self) -> int:
        """Tick period in ns."""
        return 1_000_000_000 // self.tick_rate_hz

    def check(self, instr: PhysicalInstruction) -> None:
        """Raise :class:`UnsupportedInstructionError` unless this device can run ``instr``."""
        if instr.kind not in self.supported:
            raise UnsupportedInstructionError(
                f"{self.name} QDevice does not support {instr.kind.value} ({instr!r})")
        for q in qubits_of(instr):
            if not 0 <= q < self.num_qubits:
                raise UnsupportedInstructionError(
                    f"{self.name} QDevice has {self.num_qubits} qubit(s); {instr!r} addresses qubit {q}")
        comm = self.comm_qubits or ()
        meas = self.measurable_qubits or ()
        if instr.kind in _ENTANGLE and qubits_of(instr)[0] not in comm:
            raise UnsupportedInstructionError(
                f"{self.name} QDevice: qubit {qubits_of(instr)[0]} is not a communication qubit "
                f"(communication qubits: {list(comm)}); {instr!r}")
        if instr.kind in (InstrKind.MEASURE, InstrKind.ENT_MEASURE) and qubits_of(instr)[0] not in meas:
            raise UnsupportedInstructionError(
                f"{self.name} QDevice: qubit {qubits_of(instr)[0]} cannot be measured "
                f"(measurable qubits: {list(meas)}); {instr!r}")


_ALL = frozenset(InstrKind)


def nv_spec(num_qubits: int = 1) -> QDeviceSpec:
    """NV centre node: the electron spin (physical 0: the only communication and the only
    measurable qubit) and ``num_qubits - 1`` 13C nuclear-spin memories; 100 kHz tick.
    Virtual qubit 0 is pinned to the electron (netqasm's NV compiler assumes it).

    With one qubit there is no two-qubit gate.
    """
    kinds = _ALL if num_qubits > 1 else _ALL - {InstrKind.TWO_QUBIT}
    return QDeviceSpec("NV", num_qubits, kinds, 100_000, comm_qubits=(0,),
                       measurable_qubits=(0,), pinned=((0, 0),))


def ion_spec(num_qubits: int = 1) -> QDeviceSpec:
    """Trapped-ion node (one 40Ca+ qubit), 50 kHz tick; no entanglement, no rot_z
    (the QDriver decomposes z rotations into x/y)."""
    kinds = frozenset({InstrKind.NONE, InstrKind.INIT, InstrKind.ROT_X, InstrKind.ROT_Y,
                       InstrKind.MEASURE})
    return QDeviceSpec("ion", num_qubits, kinds, 50_000)


NV_SPEC = nv_spec()
ION_SPEC = ion_spec()
