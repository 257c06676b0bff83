"""What a QDevice offers: qubits, supported physical instructions, tick rate."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnsupportedInstructionError
from .instructions import InstrKind, PhysicalInstruction, qubits_of


@dataclass(frozen=True, slots=True)
class QDeviceSpec:
    """Static description of a QDevice (paper: the QDevice interface).

    ``tick_rate_hz``: rate of the tick link (Hz); ``tick_ns`` its period (ns).
    """

    name: str
    num_qubits: int
    supported: frozenset[InstrKind]
    tick_rate_hz: int

    def __post_init__(self) -> None:
        if self.num_qubits < 1:
            raise ValueError("a QDevice has at least one qubit")
        if self.tick_rate_hz <= 0 or 1_000_000_000 % self.tick_rate_hz:
            raise ValueError(f"tick rate must divide 1 GHz exactly, got {self.tick_rate_hz} Hz")

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


_ALL = frozenset(InstrKind)


def nv_spec(num_qubits: int = 1) -> QDeviceSpec:
    """NV centre node: electron (+ optional nuclear spins), 100 kHz tick.

    With one qubit there is no two-qubit gate.
    """
    kinds = _ALL if num_qubits > 1 else _ALL - {InstrKind.TWO_QUBIT}
    return QDeviceSpec("NV", num_qubits, kinds, 100_000)


def ion_spec(num_qubits: int = 1) -> QDeviceSpec:
    """Trapped-ion node (one 40Ca+ qubit), 50 kHz tick; no entanglement, no rot_z
    (the QDriver decomposes z rotations into x/y)."""
    kinds = frozenset({InstrKind.NONE, InstrKind.INIT, InstrKind.ROT_X, InstrKind.ROT_Y,
                       InstrKind.MEASURE})
    return QDeviceSpec("ion", num_qubits, kinds, 50_000)


NV_SPEC = nv_spec()
ION_SPEC = ion_spec()
