"""The hardware-independent physical instruction set and its responses.

A physical instruction is what QNodeOS asks of a QDevice (paper, Methods): init,
single-qubit rotation (axis x/y/z, angle in rad), two-qubit gate, measure,
entangle (create-and-keep or create-and-measure) and none. Every instruction gets
exactly one :class:`Response`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Union


class InstrKind(enum.Enum):
    """Kinds of physical instruction, used by :class:`~qnodeos_hw.qdevice.spec.QDeviceSpec`."""

    NONE = "none"
    INIT = "init"
    ROT_X = "rot_x"
    ROT_Y = "rot_y"
    ROT_Z = "rot_z"
    TWO_QUBIT = "two_qubit"
    MEASURE = "measure"
    ENT_KEEP = "ent_keep"
    ENT_MEASURE = "ent_measure"


class Axis(enum.Enum):
    """Rotation axis on the Bloch sphere."""

    X = "x"
    Y = "y"
    Z = "z"


class TwoQubitGateKind(enum.IntEnum):
    """Native two-qubit gates (argument of :class:`TwoQubitGate`)."""

    CNOT = 0
    CZ = 1
    CROT_X = 2  # NV electron-controlled nuclear rotation about x (angle pi/2)
    CROT_Y = 3


class EntangleMode(enum.Enum):
    """Entanglement attempt: keep the qubit (create-and-keep) or measure it at once."""

    KEEP = "keep"
    MEASURE = "measure"


@dataclass(frozen=True, slots=True)
class NoOp:
    """Do nothing for one tick (keeps the link alive)."""

    @property
    def kind(self) -> InstrKind:
        return InstrKind.NONE


@dataclass(frozen=True, slots=True)
class Init:
    """Initialise ``qubit`` to |0>."""

    qubit: int

    @property
    def kind(self) -> InstrKind:
        return InstrKind.INIT


@dataclass(frozen=True, slots=True)
class Rotation:
    """Rotate ``qubit`` by ``angle`` (rad) about ``axis``."""

    qubit: int
    axis: Axis
    angle: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.angle):
            raise ValueError(f"rotation angle must be finite, got {self.angle!r}")

    @classmethod
    def from_code(cls, qubit: int, axis: Axis, n: int, d: int) -> "Rotation":
        """The NetQASM angle convention: ``n * pi / 2**d`` rad."""
        return cls(qubit, axis, n * math.pi / (1 << d))

    @property
    def kind(self) -> InstrKind:
        return {Axis.X: InstrKind.ROT_X, Axis.Y: InstrKind.ROT_Y, Axis.Z: InstrKind.ROT_Z}[self.axis]


@dataclass(frozen=True, slots=True)
class TwoQubitGate:
    """A native two-qubit gate between ``control`` and ``target``."""

    control: int
    target: int
    gate: TwoQubitGateKind = TwoQubitGateKind.CNOT

    def __post_init__(self) -> None:
        if self.control == self.target:
            raise ValueError("two-qubit gate needs two different qubits")

    @property
    def kind(self) -> InstrKind:
        return InstrKind.TWO_QUBIT


@dataclass(frozen=True, slots=True)
class Measure:
    """Measure ``qubit`` in the Z basis; the response carries the outcome bit."""

    qubit: int

    @property
    def kind(self) -> InstrKind:
        return InstrKind.MEASURE


@dataclass(frozen=True, slots=True)
class Entangle:
    """Heralded entanglement with the neighbour node on ``qubit``: up to ``attempts``
    attempts back to back (one attempt window), stopping at the first herald."""

    qubit: int
    mode: EntangleMode = EntangleMode.KEEP
    attempts: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 0xFFFF:
            raise ValueError(f"attempt budget must be 1..65535, got {self.attempts!r}")

    @property
    def kind(self) -> InstrKind:
        return InstrKind.ENT_KEEP if self.mode is EntangleMode.KEEP else InstrKind.ENT_MEASURE


PhysicalInstruction = Union[NoOp, Init, Rotation, TwoQubitGate, Measure, Entangle]


def qubits_of(instr: PhysicalInstruction) -> tuple[int, ...]:
    """Physical qubit addresses an instruction touches."""
    if isinstance(instr, NoOp):
        return ()
    if isinstance(instr, TwoQubitGate):
        return (instr.control, instr.target)
    return (instr.qubit,)


class ResponseKind(enum.IntEnum):
    """What the QDevice answers (the response opcode on the wire)."""

    SUCCESS = 0
    FAILURE = 1
    OUTCOME = 2
    ENT_SUCCESS = 3
    ENT_FAILURE = 4


@dataclass(frozen=True, slots=True)
class Response:
    """The QDevice's answer to one instruction.

    ``outcome`` is the measurement bit for OUTCOME (and for ENT_SUCCESS in
    create-and-measure mode); ``bell_index`` the heralded Bell state (0..3) for
    ENT_SUCCESS.
    """

    kind: ResponseKind
    outcome: int | None = None
    bell_index: int = 0

    def __post_init__(self) -> None:
        if self.kind is ResponseKind.OUTCOME and self.outcome not in (0, 1):
            raise ValueError(f"OUTCOME response needs an outcome bit, got {self.outcome!r}")
        if self.outcome is not None and self.outcome not in (0, 1):
            raise ValueError(f"outcome must be 0 or 1, got {self.outcome!r}")
        if not 0 <= self.bell_index <= 3:
            raise ValueError(f"bell_index must be 0..3, got {self.bell_index!r}")

    @property
    def ok(self) -> bool:
        return self.kind in (ResponseKind.SUCCESS, ResponseKind.OUTCOME, ResponseKind.ENT_SUCCESS)


SUCCESS = Response(ResponseKind.SUCCESS)
FAILURE = Response(ResponseKind.FAILURE)
ENT_FAILURE = Response(ResponseKind.ENT_FAILURE)
