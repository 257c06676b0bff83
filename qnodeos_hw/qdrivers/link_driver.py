"""Common machinery of the platform QDrivers: a translation cache from NetQASM
instructions to 4-byte controller words, and their execution over the link to
the QDevice.

A platform QDriver implements :meth:`LinkQDriver._compile` (one NetQASM quantum
instruction on physical qubits -> controller messages, computed once per distinct
instruction and cached); this class sends the words one at a time through a
:class:`Transport` (a :class:`~qnodeos_hw.qdevice.TickLink`, or a controller's
mailbox such as ``ADwinController``), checks every response (sequence bit, kind)
and returns the measurement outcome.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np
from netqasm.lang.instr import trapped_ion
from netqasm.lang.operand import Immediate

from ..qdevice.instructions import (Entangle, EntangleMode, PhysicalInstruction, Response,
                                    ResponseKind, Rotation, qubits_of)
from ..qdevice.message import (InstructionMessage, ResponseMessage, decode, encode,
                               instruction_message, response_of)
from ..qdevice.spec import QDeviceSpec
from .base import NotSimulatedError, QDriver, QDriverError, UnsupportedNetQASMError
from .netqasm_map import physical_instructions

#: flips the sequence bit and, with it, the parity bit of a controller word
_SEQ_TOGGLE = 0x41
_OUTCOME, _SUCCESS = ResponseKind.OUTCOME, ResponseKind.SUCCESS  # hot-path constants


#: instructions that act on every qubit of the device (no qubit operand)
_ALL_QUBITS = frozenset({trapped_ion.AllQubitsInitInstruction, trapped_ion.AllQubitsMeasInstruction,
                         trapped_ion.AllQubitsRotXInstruction, trapped_ion.AllQubitsRotYInstruction,
                         trapped_ion.AllQubitsRotZInstruction})


class DeviceFailureError(QDriverError, RuntimeError):
    """The QDevice answered FAILURE (or an unexpected response) to an instruction."""


def _operand_values(instr) -> tuple:
    """Hashable values of the immediates of an instruction (registers by name)."""
    out = []
    for name in ("imm0", "imm1", "imm2", "imm3"):
        op = getattr(instr, name, None)
        if op is None:
            break
        out.append(op.value if isinstance(op, Immediate) else repr(op))
    return tuple(out)


class Transport(Protocol):
    """Where controller words go: one instruction in, its response out."""

    def transact(self, word: bytes) -> bytes:
        """Send one 4-byte instruction and return its 4-byte response."""
        ...


class LinkQDriver(QDriver):
    """A QDriver that talks to its QDevice through a :class:`Transport`.

    ``now_ns``: the device's clock (ns).

    ``state_probe`` (optional): a callable ``qubits -> density matrix`` supplied by
    whoever built a *simulated* station; a real station passes None and
    :meth:`qubit_state` raises :class:`NotSimulatedError`.
    """

    def __init__(self, transport: Transport, spec: QDeviceSpec, now_ns: Callable[[], int],
                 state_probe: Callable[[tuple[int, ...]], np.ndarray] | None = None) -> None:
        self.transport = transport
        self.spec = spec
        self._now = now_ns
        self._probe = state_probe
        self._cache: dict[tuple, tuple[int, ...]] = {}
        self._seq = 0
        self._all_qubits = tuple(range(self.spec.num_qubits))
        self.instructions_sent = 0

    # -- translation ---------------------------------------------------------------------
    def _play_rotations(self, instr: Any, rotations: tuple[Rotation, ...]
                        ) -> tuple[InstructionMessage, ...]:
        """Platform-specific: messages for consecutive rotations of one qubit (time order).
        Raise UnsupportedNetQASMError naming ``instr`` and the angles when unplayable."""
        raise NotImplementedError

    def _play_other(self, instr: Any, p: PhysicalInstruction) -> tuple[InstructionMessage, ...]:
        """Platform-specific: messages for an init, measure or two-qubit gate."""
        raise NotImplementedError

    def _compile(self, instr: Any, qubits: tuple[int, ...]) -> tuple[InstructionMessage, ...]:
        """The messages of one NetQASM instruction: its physical instructions, runs of
        rotations on one qubit composed together, every qubit checked against the spec."""
        phys = physical_instructions(instr, qubits)
        out: list[InstructionMessage] = []
        i = 0
        while i < len(phys):
            p = phys[i]
            for q in qubits_of(p):
                if not 0 <= q < self.spec.num_qubits:
                    raise UnsupportedNetQASMError(
                        f"{instr.mnemonic}: qubit {q} does not exist on the "
                        f"{self.spec.num_qubits}-qubit {self.spec.name} node")
            if isinstance(p, Rotation):
                j = i + 1
                while j < len(phys) and isinstance(phys[j], Rotation) and phys[j].qubit == p.qubit:
                    j += 1
                out.extend(self._play_rotations(instr, phys[i:j]))
                i = j
            else:
                out.extend(self._play_other(instr, p))
                i += 1
        return tuple(out)

    def translate(self, instr: Any, qubits: tuple[int, ...]) -> tuple[int, ...]:
        """Controller words (32-bit ints, seq bit 0) for one NetQASM instruction; cached."""
        cls = type(instr)
        if not qubits and cls in _ALL_QUBITS:
            qubits = self._all_qubits
        key = (cls, qubits, *_operand_values(instr))
        words = self._cache.get(key)
        if words is None:
            msgs = self._compile(instr, qubits)
            words = tuple(int.from_bytes(encode(m if isinstance(m, InstructionMessage)
                                                else instruction_message(m)), "big")
                          for m in msgs)
            self._cache[key] = words
        return words

    # -- execution -----------------------------------------------------------------------
    def _send(self, word: int, what: Any) -> ResponseMessage:
        """One word out (with the current sequence bit), its checked response back."""
        if self._seq:
            word ^= _SEQ_TOGGLE
        raw = self.transport.transact(word.to_bytes(4, "big"))
        msg = decode(raw)
        if not isinstance(msg, ResponseMessage) or msg.seq != self._seq:
            raise DeviceFailureError(f"{getattr(what, 'mnemonic', what)}: out-of-sequence reply "
                                     f"{raw.hex()} to {word.to_bytes(4, 'big').hex()}")
        self._seq ^= 1
        self.instructions_sent += 1
        return msg

    def execute(self, instr: Any, qubits: tuple[int, ...]) -> int | None:
        outcome = None
        for word in self.translate(instr, qubits):
            msg = self._send(word, instr)
            kind = msg.kind
            if kind is _OUTCOME:
                outcome = msg.argument
            elif kind is not _SUCCESS:
                raise DeviceFailureError(
                    f"{getattr(instr, 'mnemonic', instr)} on qubits {qubits}: device answered "
                    f"{response_of(msg).kind.name} to {word.to_bytes(4, 'big').hex()}")
        return outcome

    def entangle(self, qubit: int, mode: EntangleMode, peer: str, attempts: int = 1) -> Response:
        """One attempt window: ENT_KEEP / ENT_MEASURE word with the attempt budget,
        ENT_SUCCESS / ENT_FAILURE back."""
        instr = Entangle(qubit, mode, attempts)
        self.spec.check(instr)
        word = int.from_bytes(encode(instruction_message(instr)), "big")
        resp = response_of(self._send(word, f"entangle with {peer}"))
        if resp.kind not in (ResponseKind.ENT_SUCCESS, ResponseKind.ENT_FAILURE):
            raise DeviceFailureError(f"entangle with {peer} on qubit {qubit}: device answered "
                                     f"{resp.kind.name}")
        return resp

    def now_ns(self) -> int:
        return self._now()

    def qubit_state(self, qubits: tuple[int, ...]) -> np.ndarray:
        if self._probe is None:
            raise NotSimulatedError(f"{type(self).__name__} drives a real station: "
                                    "no density matrix is available")
        return self._probe(qubits)
