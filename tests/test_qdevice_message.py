"""4-byte controller message: round trips, every opcode, every error path."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from qnodeos_hw.qdevice import (Axis, Entangle, EntangleMode, Init, InstructionMessage, Measure,
                                MessageError, NoOp, Opcode, Response, ResponseKind,
                                ResponseMessage, Rotation, TwoQubitGate, TwoQubitGateKind,
                                angle_code, decode, encode, instruction_message,
                                physical_instruction, response_message, response_of)


def _word(op, qubit=0, arg=0, resp=0, seq=0, reserved=0, fix_parity=True):
    w = (op << 28) | (qubit << 24) | (arg << 8) | (resp << 7) | (seq << 6) | (reserved << 1)
    if fix_parity:
        w |= w.bit_count() & 1
    return w.to_bytes(4, "big")


VALID_INSTRUCTIONS = [
    InstructionMessage(Opcode.NOP),
    InstructionMessage(Opcode.INIT, 3, 0, 1),
    InstructionMessage(Opcode.ROT_X, 0, (1 << 4) | 1),      # pi/2
    InstructionMessage(Opcode.ROT_Y, 15, (3 << 4) | 2, 1),  # 3pi/4
    InstructionMessage(Opcode.ROT_Z, 2, 0),                 # angle 0
    InstructionMessage(Opcode.TWO_QUBIT, 0, (1 << 12) | int(TwoQubitGateKind.CROT_Y)),
    InstructionMessage(Opcode.MEASURE, 1),
    InstructionMessage(Opcode.ENT_KEEP, 0),
    InstructionMessage(Opcode.ENT_MEASURE, 0, 0, 1),
    InstructionMessage(Opcode.ENT_KEEP, 1, 2000),           # attempt window of 2000
    InstructionMessage(Opcode.PLAY, 0, 169),
    InstructionMessage(Opcode.PLAY, 1, 0xFFFF),
]
VALID_RESPONSES = [
    ResponseMessage(ResponseKind.SUCCESS, 0),
    ResponseMessage(ResponseKind.FAILURE, 4, 0, 1),
    ResponseMessage(ResponseKind.OUTCOME, 0, 1),
    ResponseMessage(ResponseKind.OUTCOME, 0, 0, 1),
    ResponseMessage(ResponseKind.ENT_SUCCESS, 0, 0b0011),
    ResponseMessage(ResponseKind.ENT_SUCCESS, 0, 0b1101),
    ResponseMessage(ResponseKind.ENT_FAILURE, 0),
]


def test_every_opcode_and_response_kind_is_covered():
    assert {m.opcode for m in VALID_INSTRUCTIONS} == set(Opcode)
    assert {m.kind for m in VALID_RESPONSES} == set(ResponseKind)


@pytest.mark.parametrize("msg", VALID_INSTRUCTIONS + VALID_RESPONSES, ids=repr)
def test_roundtrip_exact(msg):
    raw = encode(msg)
    assert len(raw) == 4
    assert decode(raw) == msg
    assert encode(decode(raw)) == raw
    assert int.from_bytes(raw, "big").bit_count() % 2 == 0  # even parity


def test_layout_is_as_documented():
    raw = encode(InstructionMessage(Opcode.PLAY, 5, 0x1234, 1))
    w = int.from_bytes(raw, "big")
    assert w >> 28 == 9 and (w >> 24) & 0xF == 5 and (w >> 8) & 0xFFFF == 0x1234
    assert (w >> 7) & 1 == 0 and (w >> 6) & 1 == 1 and w & 0x3E == 0
    assert ((w >> 7) & 1) == 0
    assert (encode(ResponseMessage(ResponseKind.SUCCESS))[3] >> 7) & 1 == 1


@pytest.mark.parametrize("raw,field", [
    (b"", "length"), (b"\x00\x00\x00", "length"), (b"\x00" * 5, "length"),
    (_word(1, fix_parity=False) if _word(1, fix_parity=False) != _word(1) else
     (int.from_bytes(_word(1), "big") ^ 1).to_bytes(4, "big"), "parity"),
    (_word(0, reserved=1), "reserved"),
    (_word(10), "opcode"), (_word(15), "opcode"), (_word(5, resp=1), "opcode"),
    (_word(0, qubit=1), "qubit"),
    (_word(1, arg=7), "argument"),
    (_word(6, arg=1), "argument"),
    (_word(2, arg=(4 << 4) | 1), "argument"),    # n=4, d=1 -> 2pi, not below 2pi
    (_word(2, arg=(2 << 4) | 2), "argument"),    # n even with d>0: not canonical
    (_word(2, arg=(0 << 4) | 3), "argument"),    # zero angle with d>0: not canonical
    (_word(5, qubit=1, arg=(1 << 12)), "argument"),  # target == control
    (_word(5, arg=(1 << 12) | 9), "argument"),      # unknown gate kind
    (_word(5, arg=(1 << 12) | 0x10), "argument"),   # stray bits
    (_word(0, resp=1, arg=1), "argument"),
    (_word(2, resp=1, arg=2), "argument"),
    (_word(3, resp=1, arg=0x8), "argument"),        # outcome bit without presence bit
    (_word(3, resp=1, arg=0x10), "argument"),
])
def test_decode_errors_name_the_field(raw, field):
    with pytest.raises(MessageError) as exc:
        decode(raw)
    assert exc.value.field == field
    assert field in str(exc.value)


def test_encode_refuses_invalid_fields():
    with pytest.raises(MessageError) as e:
        encode(InstructionMessage(Opcode.PLAY, 16, 0))
    assert e.value.field == "qubit"
    with pytest.raises(MessageError) as e:
        encode(InstructionMessage(Opcode.PLAY, 0, 1 << 16))
    assert e.value.field == "argument"
    with pytest.raises(MessageError) as e:
        encode(InstructionMessage(Opcode.PLAY, 0, 0, 2))
    assert e.value.field == "seq"
    with pytest.raises(TypeError):
        encode(b"\x00\x00\x00\x00")
    with pytest.raises(TypeError):
        decode("abcd")


@settings(max_examples=3000, deadline=None)
@given(st.binary(min_size=4, max_size=4))
def test_any_four_bytes_decode_or_named_error(raw):
    try:
        msg = decode(raw)
    except MessageError as exc:
        assert exc.field in {"parity", "reserved", "opcode", "qubit", "argument"}
    else:
        assert encode(msg) == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12).filter(lambda b: len(b) != 4))
def test_wrong_length_is_typed(raw):
    with pytest.raises(MessageError) as exc:
        decode(raw)
    assert exc.value.field == "length"


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 15), st.integers(0, 4095), st.integers(0, 1),
       st.sampled_from([Axis.X, Axis.Y, Axis.Z]))
def test_rotation_roundtrip_through_physical_instruction(d, n, seq, axis):
    rot = Rotation.from_code(1, axis, n, d)
    msg = instruction_message(rot, seq)
    back = physical_instruction(decode(encode(msg)))
    assert back.axis is axis and back.qubit == 1
    diff = (back.angle - rot.angle) % (2 * math.pi)
    assert min(diff, 2 * math.pi - diff) < 1e-9
    assert 0 <= back.angle < 2 * math.pi


@pytest.mark.parametrize("instr", [
    NoOp(), Init(2), Measure(0), Entangle(0, EntangleMode.KEEP), Entangle(1, EntangleMode.MEASURE),
    Entangle(0, EntangleMode.KEEP, 2000), Entangle(0, EntangleMode.MEASURE, 65535),
    TwoQubitGate(0, 1, TwoQubitGateKind.CNOT), TwoQubitGate(2, 0, TwoQubitGateKind.CROT_X),
    Rotation(0, Axis.X, math.pi), Rotation(0, Axis.Y, -math.pi / 2),
], ids=repr)
def test_physical_instruction_roundtrip(instr):
    back = physical_instruction(decode(encode(instruction_message(instr))))
    if isinstance(instr, Rotation):
        assert back.axis is instr.axis
        assert math.isclose(back.angle, instr.angle % (2 * math.pi))
    else:
        assert back == instr


def test_angle_code_rejects_unplayable_angle():
    assert angle_code(math.pi / 2) == (1, 1)
    assert angle_code(-math.pi / 2) == (3, 1)
    assert angle_code(2 * math.pi) == (0, 0)
    with pytest.raises(MessageError) as exc:
        angle_code(0.123)
    assert exc.value.field == "argument"
    with pytest.raises(TypeError):
        physical_instruction(InstructionMessage(Opcode.PLAY, 0, 3))


@pytest.mark.parametrize("resp", [
    Response(ResponseKind.SUCCESS), Response(ResponseKind.FAILURE),
    Response(ResponseKind.OUTCOME, 0), Response(ResponseKind.OUTCOME, 1),
    Response(ResponseKind.ENT_SUCCESS, None, 2), Response(ResponseKind.ENT_SUCCESS, 1, 3),
    Response(ResponseKind.ENT_SUCCESS, 0, 0), Response(ResponseKind.ENT_FAILURE),
], ids=repr)
def test_response_roundtrip(resp):
    assert response_of(decode(encode(response_message(resp, 3, 1)))) == resp


def test_entangle_attempt_budget_is_bounded():
    with pytest.raises(ValueError):
        Entangle(0, EntangleMode.KEEP, 0)
    with pytest.raises(ValueError):
        Entangle(0, EntangleMode.KEEP, 1 << 16)
    one = decode(encode(InstructionMessage(Opcode.ENT_KEEP, 0, 1)))
    assert physical_instruction(one) == Entangle(0, EntangleMode.KEEP, 1)


def test_response_record_validates():
    with pytest.raises(ValueError):
        Response(ResponseKind.OUTCOME)
    with pytest.raises(ValueError):
        Response(ResponseKind.ENT_SUCCESS, 2)
    with pytest.raises(ValueError):
        Response(ResponseKind.ENT_SUCCESS, None, 4)
    assert Response(ResponseKind.OUTCOME, 1).ok and not Response(ResponseKind.ENT_FAILURE).ok
