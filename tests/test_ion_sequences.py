"""Ion TTL sequences: calibration loading, the 7 sequences, every validation rule, the
instruction map and the upload format."""

from __future__ import annotations

import math

import pytest

from qnodeos_hw.qdevice import (Axis, Entangle, Init, Measure, NoOp, Opcode, Rotation,
                                UnsupportedInstructionError, decode, encode)
from qnodeos_hw.sequences import ion_ttl as T
from qnodeos_hw.sequences.ion_ttl import Channel as C
from qnodeos_hw.sequences.ion_ttl import IonInstruction as I

CAL = dict(pi_time_ns=10_000, cooling_ns=500_000, pumping_ns=20_000, detection_ns=500_000,
           guard_ns=1_000, pmt_threshold=3)


def cal(**over):
    return T.IonCalibration.from_mapping({**CAL, **over})


# -- calibration ---------------------------------------------------------------------------

def test_shipped_calibration_loads_and_is_frozen():
    c = T.load_calibration()
    assert c.pi_time_ns > 0 and c.detection_ns > 0
    with pytest.raises(AttributeError):
        c.pi_time_ns = 1  # type: ignore[misc]


@pytest.mark.parametrize("key", list(CAL))
def test_missing_key_is_named(key):
    data = dict(CAL)
    del data[key]
    with pytest.raises(T.IonCalibrationError) as e:
        T.IonCalibration.from_mapping(data)
    assert e.value.key == key and "missing" in str(e.value)


def test_unknown_key_is_named():
    with pytest.raises(T.IonCalibrationError) as e:
        T.IonCalibration.from_mapping({**CAL, "pi_tme_ns": 5})
    assert e.value.key == "pi_tme_ns" and "unknown" in str(e.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -10, 0, "10us", True, 10.5])
def test_bad_values_are_named(value):
    with pytest.raises(T.IonCalibrationError) as e:
        T.IonCalibration.from_mapping({**CAL, "pi_time_ns": value})
    assert e.value.key == "pi_time_ns"


def test_nan_in_yaml_file_is_named(tmp_path):
    p = tmp_path / "cal.yaml"
    p.write_text("\n".join(f"{k}: {v}" for k, v in {**CAL, "detection_ns": ".nan"}.items()))
    with pytest.raises(T.IonCalibrationError) as e:
        T.load_calibration(p)
    assert e.value.key == "detection_ns" and "finite" in str(e.value)


# -- the 7 sequences ---------------------------------------------------------------------------

def test_every_sequence_validates_and_follows_calibration():
    c = cal(pi_time_ns=12_000, detection_ns=300_000, cooling_ns=200_000, pumping_ns=15_000)
    seqs = T.build_all(c)
    assert list(seqs) == list(I) and [int(k) for k in seqs] == list(range(7))
    for s in seqs.values():
        T.validate(s)
        assert s.levels_at(s.duration_ns) == 0
    assert seqs[I.RX_PI].high_time_ns(C.QUBIT) == 12_000
    assert seqs[I.RY_PI2].high_time_ns(C.QUBIT) == 6_000
    assert seqs[I.MEASURE].high_time_ns(C.PMT_GATE) == 300_000
    assert seqs[I.INIT].high_time_ns(C.COOLING) == 200_000
    assert seqs[I.INIT].high_time_ns(C.PUMP) == 15_000
    # DDS profile (phase select) of each rotation: x=0, y=1, -x=2
    profiles = {k: (s.levels_at(0) & T.PHASE_MASK) >> C.PHASE0.value for k, s in seqs.items()
                if k in T.ROTATIONS}
    assert profiles == {I.RX_PI: 0, I.RY_PI: 1, I.RX_PI2: 0, I.RY_PI2: 1, I.RX_MPI2: 2}
    # pumping comes after cooling, with the guard in between
    (c0, c1), = seqs[I.INIT].high_intervals(C.COOLING)
    (p0, _), = seqs[I.INIT].high_intervals(C.PUMP)
    assert p0 - c1 == c.guard_ns


def test_upload_format_round_trips():
    for s in T.build_all(cal()).values():
        data = T.encode_sequence(s)
        assert len(data) == 6 + 5 * len(s.edges)
        back = T.decode_sequence(data, s.name)
        assert back.edges == s.edges and back.duration_ns == s.duration_ns


def test_upload_format_layout_is_cycles_big_endian():
    data = T.encode_sequence(T.build_all(cal())[I.RX_PI])
    # duration 11000 ns = 1100 cycles, 2 edges: (0, qubit) and (1000 cycles, 0)
    assert data == bytes.fromhex("0000044c" "0002" "00000000" "08" "000003e8" "00")


def test_decode_refuses_truncated_payload():
    data = T.encode_sequence(T.build_all(cal())[I.MEASURE])
    with pytest.raises(T.EdgeOrderError):
        T.decode_sequence(data[:-1])


# -- validation errors --------------------------------------------------------------------------

def test_off_grid_edge_names_channel_and_time():
    with pytest.raises(T.OffGridError) as e:
        T.build_all(cal(pi_time_ns=10_010))     # pi/2 = 5005 ns: not on the 10 ns grid
    assert e.value.sequence == "rx_pi2" and e.value.channel == "qubit" and e.value.time_ns == 5005


def test_off_grid_duration_is_refused():
    with pytest.raises(T.OffGridError) as e:
        T.validate(T.TTLSequence("x", (T.Edge(0, C.QUBIT.bit), T.Edge(100, 0)), 205))
    assert e.value.channel == "end" and e.value.time_ns == 205


def test_short_pulse_names_channel_and_time():
    with pytest.raises(T.PulseTooShortError) as e:
        T.build_all(cal(pi_time_ns=60))          # pi/2 = 30 ns < 50 ns
    assert e.value.channel == "qubit" and e.value.time_ns == 0 and e.value.sequence == "rx_pi2"
    seq = T.build_sequence("s", [T.Pulse(C.PMT_GATE, 1000, 40)], 2000)
    with pytest.raises(T.PulseTooShortError) as e:
        T.validate(seq)
    assert e.value.channel == "pmt_gate" and e.value.time_ns == 1000


@pytest.mark.parametrize("a,b", T.CONFLICTS)
def test_each_conflict_names_both_channels_and_time(a, b):
    seq = T.build_sequence("c", [T.Pulse(a, 0, 1000), T.Pulse(b, 500, 1000)], 2000)
    with pytest.raises(T.ChannelConflictError) as e:
        T.validate(seq)
    assert {e.value.channel, e.value.other} == {a.label, b.label} and e.value.time_ns == 500


def test_allowed_overlaps_pass():
    ok = T.build_sequence("ok", [T.Pulse(C.COOLING, 0, 1000), T.Pulse(C.PMT_GATE, 0, 1000),
                                 T.Pulse(C.REPUMP, 0, 1000), T.Pulse(C.QUBIT, 2000, 100)], 3000)
    assert T.validate(ok) is ok


def test_overlapping_pulses_on_one_line_conflict():
    with pytest.raises(T.ChannelConflictError) as e:
        T.build_sequence("dup", [T.Pulse(C.PUMP, 0, 1000), T.Pulse(C.PUMP, 900, 1000)], 3000)
    assert e.value.channel == "pump" and e.value.time_ns == 900


def test_phase_select_change_during_pulse_is_named():
    seq = T.build_sequence("ph", [T.Pulse(C.QUBIT, 0, 1000), T.Pulse(C.PHASE0, 500, 500)], 2000)
    with pytest.raises(T.PhaseSelectError) as e:
        T.validate(seq)
    assert e.value.channel == "phase0" and e.value.time_ns == 500


def test_line_left_high_is_named():
    seq = T.TTLSequence("hi", (T.Edge(0, C.REPUMP.bit | C.COOLING.bit), T.Edge(100, C.REPUMP.bit)), 200)
    with pytest.raises(T.ChannelLeftHighError) as e:
        T.validate(seq)
    assert e.value.channel == "repump" and e.value.time_ns == 200


def test_unknown_channel_bit_is_named():
    seq = T.TTLSequence("u", (T.Edge(0, 0x80), T.Edge(100, 0)), 200)
    with pytest.raises(T.UnknownChannelError) as e:
        T.validate(seq)
    assert e.value.channel == "bit7" and e.value.time_ns == 0


def test_edge_order_and_count():
    with pytest.raises(T.EdgeOrderError):
        T.validate(T.TTLSequence("o", (T.Edge(100, 1), T.Edge(100, 0)), 200))
    with pytest.raises(T.EdgeOrderError):
        T.validate(T.TTLSequence("o", (T.Edge(0, 1), T.Edge(300, 0)), 200))
    many = tuple(T.Edge(100 * i, (i + 1) % 2 * C.REPUMP.bit) for i in range(T.MAX_EDGES + 2))
    with pytest.raises(T.EdgeOrderError) as e:
        T.validate(T.TTLSequence("many", many, 100 * len(many)))
    assert str(T.MAX_EDGES) in str(e.value)


# -- instruction map -------------------------------------------------------------------------

def test_sequence_index_maps_the_seven_instructions():
    assert T.sequence_index(Init(0)) is I.INIT
    assert T.sequence_index(Measure(0)) is I.MEASURE
    for k, (axis, angle) in T.ROTATIONS.items():
        assert T.sequence_index(Rotation(0, axis, angle)) is k
        assert T.physical_instruction_of(k) == Rotation(0, axis, angle)
    assert T.sequence_index(Rotation(0, Axis.X, 3 * math.pi / 2)) is I.RX_MPI2  # same angle mod 2pi
    assert T.sequence_index(Rotation(0, Axis.Y, -math.pi)) is I.RY_PI


@pytest.mark.parametrize("instr", [Rotation(0, Axis.X, math.pi / 4), Rotation(0, Axis.Z, math.pi),
                                   Rotation(0, Axis.Y, -math.pi / 2), Entangle(0), NoOp()])
def test_sequence_index_refuses_the_rest(instr):
    with pytest.raises(UnsupportedInstructionError):
        T.sequence_index(instr)


def test_play_message_carries_the_slot():
    for k in I:
        msg = decode(encode(T.play_message(k, seq=1)))
        assert msg.opcode is Opcode.PLAY and msg.argument == int(k) and msg.seq == 1
