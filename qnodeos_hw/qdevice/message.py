"""The 4-byte controller message exchanged on the tick link.

Both directions use one 32-bit word, sent big-endian (byte 0 first on the SPI bus)::

     31    28 27    24 23                  8  7     6     5      1    0
    +--------+--------+---------------------+-----+-----+----------+------+
    | opcode | qubit  |      argument       | dir | seq | reserved |parity|
    +--------+--------+---------------------+-----+-----+----------+------+
      4 bits   4 bits        16 bits          1     1      5 bits    1

* ``dir``: 0 = instruction (QNodeOS -> QDevice), 1 = response (QDevice -> QNodeOS).
* ``opcode``: :class:`Opcode` for instructions, :class:`ResponseKind` for responses.
* ``qubit``: physical qubit address 0..15.
* ``argument`` depends on the opcode:

  ============  ==============================================================
  ROT_X/Y/Z     angle code: ``n`` in bits 15..4, ``d`` in bits 3..0, angle
                ``n*pi/2**d`` rad; canonical (``n`` odd, or ``n == d == 0``)
                and ``n < 2**(d+1)`` (angle in [0, 2pi))
  TWO_QUBIT     target qubit in bits 15..12, gate kind in bits 3..0, rest 0
  PLAY          platform code: NV waveform-table index / ion TTL-sequence index
  ENT_KEEP/     attempt budget: the controller makes up to this many heralded
  ENT_MEASURE   attempts back to back and answers on the first herald or when
                the budget is spent (0 and 1 both mean one attempt)
  OUTCOME       the measurement bit (0 or 1)
  ENT_SUCCESS   Bell index in bits 1..0, bit 2 = outcome present, bit 3 = outcome
  others        0
  ============  ==============================================================

* ``seq``: alternating sequence bit; a response echoes the seq bit of the
  instruction it answers, so a lost or duplicated message is visible.
* ``reserved``: must be 0.
* ``parity``: even parity over all 32 bits (the word has an even number of ones).

:func:`decode` of any 4 bytes returns a valid message or raises
:class:`~qnodeos_hw.qdevice.errors.MessageError` naming the field at fault;
``encode(decode(b)) == b`` for every valid ``b``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final, Union

from .errors import MessageError
from .instructions import (Axis, Entangle, EntangleMode, Init, Measure, NoOp, PhysicalInstruction,
                           Response, ResponseKind, Rotation, TwoQubitGate, TwoQubitGateKind)

MESSAGE_BYTES: Final = 4


class Opcode(enum.IntEnum):
    """Instruction opcodes (``dir = 0``)."""

    NOP = 0
    INIT = 1
    ROT_X = 2
    ROT_Y = 3
    ROT_Z = 4
    TWO_QUBIT = 5
    MEASURE = 6
    ENT_KEEP = 7
    ENT_MEASURE = 8
    PLAY = 9


@dataclass(frozen=True, slots=True)
class InstructionMessage:
    """QNodeOS -> QDevice word."""

    opcode: Opcode
    qubit: int = 0
    argument: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True)
class ResponseMessage:
    """QDevice -> QNodeOS word."""

    kind: ResponseKind
    qubit: int = 0
    argument: int = 0
    seq: int = 0


ControllerMessage = Union[InstructionMessage, ResponseMessage]

_OPCODES = tuple(Opcode)
_RESPONSES = tuple(ResponseKind)
_ROT = frozenset({Opcode.ROT_X, Opcode.ROT_Y, Opcode.ROT_Z})
_ZERO_ARG_OPS = frozenset({Opcode.NOP, Opcode.INIT, Opcode.MEASURE})
_ZERO_ARG_RESP = frozenset({ResponseKind.SUCCESS, ResponseKind.FAILURE, ResponseKind.ENT_FAILURE})
_N_GATE_KINDS = len(TwoQubitGateKind)


def _check_fields(op: int, qubit: int, arg: int, is_resp: bool) -> None:
    """Raise MessageError unless (op, qubit, arg) is a valid combination."""
    if not 0 <= qubit <= 15:
        raise MessageError("qubit", f"qubit address {qubit} outside 0..15")
    if not 0 <= arg <= 0xFFFF:
        raise MessageError("argument", f"argument {arg} outside 0..65535")
    if is_resp:
        if op >= len(_RESPONSES):
            raise MessageError("opcode", f"unknown response code {op}")
        kind = _RESPONSES[op]
        if kind in _ZERO_ARG_RESP and arg:
            raise MessageError("argument", f"{kind.name} carries no argument, got {arg}")
        if kind is ResponseKind.OUTCOME and arg > 1:
            raise MessageError("argument", f"OUTCOME argument must be a bit, got {arg}")
        if kind is ResponseKind.ENT_SUCCESS and (arg > 0xF or (arg & 0x8 and not arg & 0x4)):
            raise MessageError("argument", f"ENT_SUCCESS argument 0x{arg:04x} is not a valid "
                                           "bell/outcome code")
        return
    if op >= len(_OPCODES):
        raise MessageError("opcode", f"unknown instruction opcode {op}")
    opc = _OPCODES[op]
    if opc in _ZERO_ARG_OPS:
        if arg:
            raise MessageError("argument", f"{opc.name} carries no argument, got {arg}")
        if opc is Opcode.NOP and qubit:
            raise MessageError("qubit", f"NOP addresses no qubit, got {qubit}")
    elif opc in _ROT:
        n, d = arg >> 4, arg & 0xF
        if n >= 2 << d:
            raise MessageError("argument", f"angle code n={n}, d={d} is not below 2*pi")
        if (n == 0 and d) or (n and not n & 1 and d):
            raise MessageError("argument", f"angle code n={n}, d={d} is not canonical")
    elif opc is Opcode.TWO_QUBIT:
        target, gate = arg >> 12, arg & 0xF
        if arg & 0x0FF0:
            raise MessageError("argument", f"TWO_QUBIT argument 0x{arg:04x} has stray bits")
        if gate >= _N_GATE_KINDS:
            raise MessageError("argument", f"unknown two-qubit gate kind {gate}")
        if target == qubit:
            raise MessageError("argument", f"TWO_QUBIT target equals control qubit {qubit}")


def encode(msg: ControllerMessage) -> bytes:
    """Pack a message into its 4-byte wire form (validating every field)."""
    if type(msg) is InstructionMessage:
        op, is_resp = int(msg.opcode), 0
    elif type(msg) is ResponseMessage:
        op, is_resp = int(msg.kind), 1
    else:
        raise TypeError(f"not a controller message: {msg!r}")
    qubit, arg, seq = msg.qubit, msg.argument, msg.seq
    if seq not in (0, 1):
        raise MessageError("seq", f"sequence bit must be 0 or 1, got {seq!r}")
    _check_fields(op, qubit, arg, bool(is_resp))
    word = (op << 28) | (qubit << 24) | (arg << 8) | (is_resp << 7) | (seq << 6)
    word |= word.bit_count() & 1
    return word.to_bytes(4, "big")


_DECODE_CACHE: dict[bytes, ControllerMessage] = {}
_DECODE_CACHE_MAX: Final = 1 << 16


def decode(raw: bytes) -> ControllerMessage:
    """Unpack 4 bytes; raise :class:`MessageError` naming the field at fault.

    Messages are immutable, so valid words are memoised (bounded cache; the
    same few hundred words recur on a real link).
    """
    msg = _DECODE_CACHE.get(raw)  # type: ignore[arg-type]
    if msg is not None:
        return msg
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"controller message must be bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) != MESSAGE_BYTES:
        raise MessageError("length", f"a controller message is {MESSAGE_BYTES} bytes, got {len(raw)}")
    word = int.from_bytes(raw, "big")
    if word.bit_count() & 1:
        raise MessageError("parity", f"odd parity in 0x{word:08x}")
    if word & 0x3E:
        raise MessageError("reserved", f"reserved bits set in 0x{word:08x}")
    op, qubit, arg = word >> 28, (word >> 24) & 0xF, (word >> 8) & 0xFFFF
    is_resp, seq = (word >> 7) & 1, (word >> 6) & 1
    _check_fields(op, qubit, arg, bool(is_resp))
    if is_resp:
        msg = ResponseMessage(_RESPONSES[op], qubit, arg, seq)
    else:
        msg = InstructionMessage(_OPCODES[op], qubit, arg, seq)
    if len(_DECODE_CACHE) < _DECODE_CACHE_MAX:
        _DECODE_CACHE[raw] = msg
    return msg


# -- physical instruction <-> message ---------------------------------------------------

_AXIS_OP = {Axis.X: Opcode.ROT_X, Axis.Y: Opcode.ROT_Y, Axis.Z: Opcode.ROT_Z}
_OP_AXIS = {v: k for k, v in _AXIS_OP.items()}
_TWO_PI = 2 * math.pi


def angle_code(angle: float, tol: float = 1e-9) -> tuple[int, int]:
    """Canonical ``(n, d)`` with ``n*pi/2**d == angle mod 2pi`` (``d <= 15``, ``n < 2**12``).

    Raises :class:`MessageError` (field ``argument``) when no such code exists.
    """
    a = angle % _TWO_PI
    for d in range(16):
        n = round(a * (1 << d) / math.pi)
        if abs(n * math.pi / (1 << d) - a) <= tol:
            n %= 2 << d
            if n == 0:
                return 0, 0
            if n < 4096:
                return n, d
            break
    raise MessageError("argument", f"angle {angle!r} rad is not n*pi/2^d with d <= 15, n < 4096")


def instruction_message(instr: PhysicalInstruction, seq: int = 0) -> InstructionMessage:
    """The generic wire form of a physical instruction."""
    if isinstance(instr, Rotation):
        n, d = angle_code(instr.angle)
        return InstructionMessage(_AXIS_OP[instr.axis], instr.qubit, (n << 4) | d, seq)
    if isinstance(instr, Init):
        return InstructionMessage(Opcode.INIT, instr.qubit, 0, seq)
    if isinstance(instr, Measure):
        return InstructionMessage(Opcode.MEASURE, instr.qubit, 0, seq)
    if isinstance(instr, Entangle):
        op = Opcode.ENT_KEEP if instr.mode is EntangleMode.KEEP else Opcode.ENT_MEASURE
        return InstructionMessage(op, instr.qubit, instr.attempts if instr.attempts > 1 else 0, seq)
    if isinstance(instr, TwoQubitGate):
        return InstructionMessage(Opcode.TWO_QUBIT, instr.control,
                                  (instr.target << 12) | int(instr.gate), seq)
    if isinstance(instr, NoOp):
        return InstructionMessage(Opcode.NOP, 0, 0, seq)
    raise TypeError(f"not a physical instruction: {instr!r}")


def physical_instruction(msg: InstructionMessage) -> PhysicalInstruction:
    """Inverse of :func:`instruction_message` (PLAY has no generic meaning: TypeError)."""
    op = msg.opcode
    if op in _OP_AXIS:
        return Rotation.from_code(msg.qubit, _OP_AXIS[op], msg.argument >> 4, msg.argument & 0xF)
    if op is Opcode.INIT:
        return Init(msg.qubit)
    if op is Opcode.MEASURE:
        return Measure(msg.qubit)
    if op is Opcode.ENT_KEEP:
        return Entangle(msg.qubit, EntangleMode.KEEP, max(1, msg.argument))
    if op is Opcode.ENT_MEASURE:
        return Entangle(msg.qubit, EntangleMode.MEASURE, max(1, msg.argument))
    if op is Opcode.TWO_QUBIT:
        return TwoQubitGate(msg.qubit, msg.argument >> 12, TwoQubitGateKind(msg.argument & 0xF))
    if op is Opcode.NOP:
        return NoOp()
    raise TypeError(f"{op.name} is a platform code, not a generic physical instruction")


def response_message(resp: Response, qubit: int = 0, seq: int = 0) -> ResponseMessage:
    """The wire form of a response."""
    kind = resp.kind
    if kind is ResponseKind.OUTCOME:
        arg = resp.outcome if resp.outcome is not None else 0
    elif kind is ResponseKind.ENT_SUCCESS:
        arg = resp.bell_index | ((4 | (resp.outcome << 3)) if resp.outcome is not None else 0)
    else:
        arg = 0
    return ResponseMessage(kind, qubit, arg, seq)


def response_of(msg: ResponseMessage) -> Response:
    """Inverse of :func:`response_message`."""
    kind, arg = msg.kind, msg.argument
    if kind is ResponseKind.OUTCOME:
        return Response(kind, arg)
    if kind is ResponseKind.ENT_SUCCESS:
        return Response(kind, (arg >> 3) & 1 if arg & 4 else None, arg & 3)
    return Response(kind)
