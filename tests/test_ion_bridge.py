"""The ion FPGA bridge QCoDeS driver against the sim:// serial port and the simulated
bridge: upload, play, readout, tick pacing, every error frame, timeouts, snapshot."""

from __future__ import annotations

import itertools
import math
import struct

import numpy as np
import pytest
import serial

from qnodeos_hw.instruments import ion_bridge as B
from qnodeos_hw.instruments.ion_bridge import Command, IonFPGABridge, Register
from qnodeos_hw.qdevice import (Axis, Init, InstructionMessage, Measure, NoOp, Opcode, ResponseKind, Rotation,
                                TickLink, UnsupportedInstructionError, VirtualClock, decode,
                                encode, instruction_message, ion_spec)
from qnodeos_hw.sequences import ion_ttl as T
from qnodeos_hw.sequences.ion_ttl import IonInstruction as I
from qnodeos_hw.simulators import ion_fpga_sim as S

SIM_PKG = "qnodeos_hw.simulators.serial_sim"
CAL = T.IonCalibration(pi_time_ns=10_000, cooling_ns=500_000, pumping_ns=20_000,
                       detection_ns=500_000, guard_ns=1_000, pmt_threshold=3)
_names = itertools.count()

_X = np.array([[0, 1], [1, 0]], complex)
_Y = np.array([[0, -1j], [1j, 0]], complex)


class IdealIon:
    """Ideal single-qubit IonQubitBackend: rotations exp(-i theta/2 n.sigma) with
    theta = pi * duration / pi_time, projective detection, Poisson counts (bright = |0>)."""

    def __init__(self, seed: int = 0, pi_time_ns: int = 10_000, bright_per_us: float = 0.04,
                 dark_per_us: float = 1e-4) -> None:
        self.rng = np.random.default_rng(seed)
        self.pi_time_ns = pi_time_ns
        self.bright, self.dark = bright_per_us, dark_per_us
        self.psi = np.array([1, 0], complex)
        self.calls: list[tuple] = []

    def cool(self, qubit, duration_ns, t_ns):
        self.calls.append(("cool", qubit, duration_ns, t_ns))

    def pump(self, qubit, duration_ns, t_ns):
        self.calls.append(("pump", qubit, duration_ns, t_ns))
        self.psi = np.array([1, 0], complex)

    def pulse(self, qubit, phase_rad, duration_ns, t_ns):
        self.calls.append(("pulse", qubit, phase_rad, duration_ns, t_ns))
        th = math.pi * duration_ns / self.pi_time_ns
        n = math.cos(phase_rad) * _X + math.sin(phase_rad) * _Y
        self.psi = (math.cos(th / 2) * np.eye(2) - 1j * math.sin(th / 2) * n) @ self.psi

    def detect(self, qubit, window_ns, t_ns):
        self.calls.append(("detect", qubit, window_ns, t_ns))
        bright = self.rng.random() < abs(self.psi[0]) ** 2
        self.psi = np.array([1, 0] if bright else [0, 1], complex)
        rate = self.bright if bright else self.dark
        return int(self.rng.poisson(rate * window_ns / 1e3))


def make_bridge(url: str = "sim://ion", backend=None, upload: bool = True, **kw) -> IonFPGABridge:
    br = IonFPGABridge(f"ion_bridge_{next(_names)}", url, protocol_handler_packages=[SIM_PKG], **kw)
    if backend is not None:
        br.port.attach(backend)
    if upload:
        br.upload_all(T.build_all(CAL))
        br.pmt_threshold(CAL.pmt_threshold)
    return br


@pytest.fixture
def ion():
    backend = IdealIon(seed=3)
    br = make_bridge(backend=backend)
    yield br, backend
    br.close()


def run(link: TickLink, instrs) -> list:
    return [decode(link.transact(encode(instruction_message(i)))) for i in instrs]


# -- protocol constants ----------------------------------------------------------------------

def test_driver_and_simulated_firmware_agree_on_the_wire_protocol():
    for a, b in ((B.Command, S.Command), (B.Register, S.Register), (B.ErrorCode, S.ErrorCode)):
        assert {m.name: m.value for m in a} == {m.name: m.value for m in b}
    assert (B.START, B.MAX_BODY, B.ERROR_REPLY, B.ASAP_TICK, B.NUM_SLOTS) == \
           (S.START, S.MAX_BODY, S.ERROR_REPLY, S.ASAP_TICK, S.NUM_SLOTS)
    wiring = (S.COOLING, S.REPUMP, S.PUMP, S.QUBIT, S.PHASE0, S.PHASE1, S.PMT_GATE)
    assert [c.value for c in T.Channel] == list(wiring)
    assert S.CLOCK_NS == T.CLOCK_PERIOD_NS and S.MAX_EDGES == T.MAX_EDGES
    assert S.TICK_RATE_HZ == ion_spec().tick_rate_hz
    assert set(B.ERROR_CLASSES) == set(B.ErrorCode)


def test_sim_url_gives_a_serialbase_port():
    from qnodeos_hw.simulators.serial_sim import register
    register()
    port = serial.serial_for_url("sim://ion?seed=1")
    assert isinstance(port, serial.SerialBase) and port.is_open
    port.write(S.frame(0x01))
    reply = port.read(200)
    assert reply[0] == S.START and reply[3] == 0x81 and b"ion-bridge-sim" in reply
    port.close()


# -- identity, parameters, upload ---------------------------------------------------------------

def test_identity_and_read_only_parameters(ion):
    br, _ = ion
    idn = br.get_idn()
    assert idn["model"] == "ion-bridge-sim" and idn["serial"] == "SIM0001"
    assert br.tick_rate() == 50_000 and br.clock_frequency() == 100_000_000
    assert br.tick_rate.unit == "Hz" and br.pmt_threshold.unit == "counts"
    assert br.detection_window() == pytest.approx(CAL.detection_ns * 1e-9)
    assert br.sequences_loaded() == list(range(7))
    with pytest.raises(NotImplementedError):
        br.tick_rate(10)


def test_upload_stores_each_sequence_verbatim(ion):
    br, _ = ion
    seqs = T.build_all(CAL)
    dev = br.port.device
    for k, s in seqs.items():
        info = br.sequence_info(k)
        assert info.crc32 == T.crc32(T.encode_sequence(s))
        assert info.duration_ns == s.duration_ns and info.n_edges == len(s.edges)
        assert info.pmt_gate_ns == s.high_time_ns(T.Channel.PMT_GATE)
        assert dev.slots[k].edges == tuple((int(e.t_ns) // 10, e.mask) for e in s.edges)


def test_detection_window_nan_until_measure_uploaded():
    br = make_bridge(upload=False)
    try:
        assert math.isnan(br.detection_window())
        br.upload_sequence(6, T.build_all(CAL)[I.MEASURE])
        assert br.detection_window() == pytest.approx(5e-4)
    finally:
        br.close()


def test_validators_refuse_before_anything_is_sent(ion):
    br, _ = ion
    before = br.port.device.frames_received
    with pytest.raises(ValueError):
        br.pmt_threshold(70_000)
    with pytest.raises(ValueError):
        br.bright_outcome(2)
    assert br.port.device.frames_received == before
    br.pmt_threshold(7)
    assert br.pmt_threshold() == 7 and br.port.device.registers[S.Register.PMT_THRESHOLD] == 7


# -- playing: physics, outcomes, virtual time --------------------------------------------------

def test_sequences_drive_the_backend_with_calibrated_pulses(ion):
    br, be = ion
    for k in I:
        br.trigger(k)
    kinds = [c[0] for c in be.calls]
    assert kinds == ["cool", "pump", "pulse", "pulse", "pulse", "pulse", "pulse", "detect"]
    pulses = [(round(c[2], 9), c[3]) for c in be.calls if c[0] == "pulse"]
    assert pulses == [(0.0, 10_000), (round(math.pi / 2, 9), 10_000), (0.0, 5_000),
                      (round(math.pi / 2, 9), 5_000), (round(math.pi, 9), 5_000)]
    assert be.calls[0][2] == CAL.cooling_ns and be.calls[1][2] == CAL.pumping_ns
    assert be.calls[-1][2] == CAL.detection_ns
    # each sequence starts on its own tick, after the previous one's response tick
    starts = [c[-1] for c in be.calls]
    assert starts[0] == 0 and starts[1] == CAL.cooling_ns + CAL.guard_ns
    assert all(t % 20_000 == 0 for t in starts[2:])


@pytest.mark.parametrize("program,expected", [
    ([], 0),
    ([Rotation(0, Axis.X, math.pi)], 1),
    ([Rotation(0, Axis.Y, math.pi)], 1),
    ([Rotation(0, Axis.X, math.pi / 2), Rotation(0, Axis.X, math.pi / 2)], 1),
    ([Rotation(0, Axis.Y, math.pi / 2), Rotation(0, Axis.Y, math.pi / 2)], 1),
    ([Rotation(0, Axis.X, math.pi / 2), Rotation(0, Axis.X, -math.pi / 2)], 0),
    ([Rotation(0, Axis.Y, math.pi / 2), Rotation(0, Axis.X, math.pi), Rotation(0, Axis.Y, math.pi / 2)], 1),
])
def test_deterministic_circuits_through_the_tick_link(ion, program, expected):
    br, _ = ion
    link = TickLink(ion_spec(), br.tick_device(), VirtualClock())
    for _ in range(20):
        resps = run(link, [Init(0), *program, Measure(0)])
        assert all(r.kind is ResponseKind.SUCCESS for r in resps[:-1])
        assert resps[-1].kind is ResponseKind.OUTCOME and resps[-1].argument == expected


def test_half_pi_statistics_and_counts(ion):
    br, be = ion
    dev = br.tick_device()
    link = TickLink(ion_spec(), dev, VirtualClock())
    n, ones, counts = 600, 0, {0: [], 1: []}
    for _ in range(n):
        out = run(link, [Init(0), Rotation(0, Axis.Y, math.pi / 2), Measure(0)])[-1].argument
        ones += out
        counts[out].append(dev.last_counts)
        assert br.port.device.last_counts == dev.last_counts
    assert abs(ones / n - 0.5) < 3 * math.sqrt(0.25 / n)
    assert min(counts[0]) >= CAL.pmt_threshold > max(counts[1])
    assert np.mean(counts[0]) == pytest.approx(20, rel=0.1)
    last, detections = br.read_pmt()
    assert detections == n and last == dev.last_counts == br.last_counts()


def test_virtual_time_matches_the_tick_rules(ion):
    br, _ = ion
    clock = VirtualClock()
    link = TickLink(ion_spec(), br.tick_device(), clock)
    link.transact(encode(T.play_message(I.INIT)))
    init_ticks = math.ceil(522_000 / 20_000)
    assert clock.now_ns() == init_ticks * 20_000 == br.now_ns()
    link.transact(encode(T.play_message(I.RX_PI)))
    assert br.tick() == init_ticks + 1                 # 11 us -> answered on the next tick
    link.transact(encode(instruction_message(NoOp())))
    assert br.tick() == init_ticks + 2
    assert [e.tick for e in link.timeline] == [0, init_ticks, init_ticks, init_ticks + 1,
                                              init_ticks + 1, init_ticks + 2]


def test_bright_outcome_register_flips_the_reported_bit(ion):
    br, _ = ion
    br.bright_outcome(1)
    link = TickLink(ion_spec(), br.tick_device(), VirtualClock())
    assert run(link, [Init(0), Measure(0)])[-1].argument == 1


def test_unsupported_generic_instructions_are_refused_before_sending(ion):
    br, _ = ion
    link = TickLink(ion_spec(), br.tick_device(), VirtualClock())
    before = br.port.device.frames_received
    for instr in (Rotation(0, Axis.X, math.pi / 4), Rotation(0, Axis.Z, math.pi / 2)):
        with pytest.raises(UnsupportedInstructionError):
            link.send(encode(instruction_message(instr)))
    assert br.port.device.frames_received == before


# -- error frames -> typed errors --------------------------------------------------------------

def test_pacing_and_busy(ion):
    br, _ = ion
    nop = encode(instruction_message(NoOp()))
    br.send_message(nop, tick=5)
    with pytest.raises(B.PacingError) as e:
        br.send_message(nop, tick=5)
    assert e.value.code is B.ErrorCode.PACING and e.value.command == "QMSG" and "tick 5" in str(e.value)
    r = br.trigger(I.INIT, tick=10)
    busy_until = 10 + math.ceil(r.duration_ns / 20_000)
    with pytest.raises(B.BusyError):
        br.trigger(I.RX_PI, tick=busy_until - 1)
    assert br.trigger(I.RX_PI, tick=busy_until).start_tick == busy_until   # allowed on the response tick
    assert br.trigger(I.RX_PI).start_tick == busy_until + 1                # ASAP: next free tick


def test_unknown_sequence_slot(ion):
    br, _ = ion
    for slot in (9, 200):
        with pytest.raises(B.UnknownSequenceError) as e:
            br.trigger(slot)
        assert str(slot) in str(e.value)
    with pytest.raises(B.UnknownSequenceError):
        br.send_message(encode(InstructionMessage(Opcode.PLAY, 0, 12, 0)))


def test_bridge_refuses_generic_opcodes_and_bad_words(ion):
    br, _ = ion
    with pytest.raises(B.BadMessageError) as e:
        br.send_message(encode(instruction_message(Init(0))))
    assert "PLAY" in str(e.value)
    with pytest.raises(B.BadMessageError) as e:
        br.send_message(b"\x90\x00\x06\x01")          # odd parity
    assert "parity" in str(e.value)


def test_bad_checksum_is_reported(ion, monkeypatch):
    br, _ = ion
    real = B.frame

    def corrupt(cmd, payload=b""):
        f = bytearray(real(cmd, payload))
        f[-1] ^= 0x5A
        return bytes(f)

    monkeypatch.setattr(B, "frame", corrupt)
    with pytest.raises(B.ChecksumRejectedError) as e:
        br.tick()
    assert e.value.command == "READ_REG"
    monkeypatch.setattr(B, "frame", real)
    assert br.tick() == 0                              # the bad frame was not executed


def test_overlong_frame_is_refused_locally_and_by_the_bridge(ion, monkeypatch):
    br, _ = ion
    before = br.port.device.frames_received
    with pytest.raises(B.FrameTooLongError):
        br.transact(Command.UPLOAD, bytes(600))
    assert br.port.device.frames_received == before
    monkeypatch.setattr(B, "MAX_BODY", 4096)           # a host that ignores the limit
    with pytest.raises(B.OverlongFrameError):
        br.transact(Command.UPLOAD, bytes(600))
    monkeypatch.undo()
    assert br.get_idn()["model"] == "ion-bridge-sim"   # resynchronised


def test_other_refusals_are_typed(ion):
    br, _ = ion
    with pytest.raises(B.UnknownCommandError):
        br.transact(0x33)
    with pytest.raises(B.BadLengthError):
        br.transact(Command.IDN, b"x")
    with pytest.raises(B.ReadOnlyRegisterError):
        br._write_reg(Register.TICK, 3)
    with pytest.raises(B.BadRegisterError):
        br.transact(Command.READ_REG, b"\x40")
    with pytest.raises(B.BadValueError):
        br._write_reg(Register.BRIGHT_OUTCOME, 2)
    left_high = struct.pack(">BIH", 8, 100, 1) + struct.pack(">IB", 0, 0x01)
    with pytest.raises(B.BadSequenceError) as e:
        br.transact(Command.UPLOAD, left_high)
    assert "left high" in str(e.value)
    bit7 = struct.pack(">BIH", 8, 100, 2) + struct.pack(">IBIB", 0, 0x80, 10, 0)
    with pytest.raises(B.BadSequenceError):
        br.transact(Command.UPLOAD, bit7)


def test_empty_trap_is_refused():
    br = make_bridge()
    try:
        with pytest.raises(B.NoIonError):
            br.trigger(I.INIT)
    finally:
        br.close()


# -- what the sequencer does with raw edges ----------------------------------------------------

def test_phase_change_mid_pulse_splits_it_and_detection_beam_is_not_cooling(ion):
    br, be = ion
    Q, P0, C, R, G = (1 << 3), (1 << 4), 1, 2, (1 << 6)
    edges = [(0, Q), (100, Q | P0), (200, 0), (300, C | R | G), (400, C | R), (500, 0)]
    payload = struct.pack(">BIH", 9, 600, len(edges)) + b"".join(struct.pack(">IB", t, m) for t, m in edges)
    br.transact(Command.UPLOAD, payload)               # raw: the host-side validator would refuse it
    be.calls.clear()
    r = br.trigger(9)
    t0 = r.start_tick * 20_000
    assert [c[0] for c in be.calls] == ["pulse", "pulse", "detect"]
    assert be.calls[0][2:] == (0.0, 1000, t0) and be.calls[1][2:] == (math.pi / 2, 1000, t0 + 1000)
    assert be.calls[2][2:] == (1000, t0 + 3000)
    assert r.duration_ns == 6000


# -- ports that do not answer ------------------------------------------------------------------

def test_device_that_stops_answering_times_out_naming_port_and_command():
    url = "sim://ion?mute_after=1"
    br = make_bridge(url, upload=False, timeout=0.05)   # IDN at connect is answered
    try:
        with pytest.raises(B.BridgeTimeoutError) as e:
            br.tick()
        assert e.value.port == url and e.value.command == "READ_REG"
        assert url in str(e.value) and "READ_REG" in str(e.value)
    finally:
        br.close()


def test_silent_device_fails_at_connect():
    with pytest.raises(B.BridgeTimeoutError) as e:
        make_bridge("sim://ion?mute_after=0", upload=False, timeout=0.05)
    assert e.value.command == "IDN"


def test_loopback_port_is_a_protocol_error():
    with pytest.raises(B.BridgeProtocolError) as e:
        IonFPGABridge(f"ion_loop_{next(_names)}", "loop://", timeout=0.05)
    assert "0x81" in str(e.value) and e.value.port == "loop://"


@pytest.mark.parametrize("url", ["sim://nosuch", "sim://ion?colour=blue", "sim://ion?backend=nomodule"])
def test_bad_address_is_a_connection_error(url):
    with pytest.raises(B.BridgeConnectionError) as e:
        make_bridge(url, upload=False)
    assert e.value.port == url


def test_backend_factory_named_in_the_url():
    url = "sim://ion?backend=qnodeos_hw.simulators.trivial:TrivialQDevice&seed=7"
    br = make_bridge(url, upload=False)
    try:
        assert br.port.device.backend.seed == 7
    finally:
        br.close()


# -- snapshot ------------------------------------------------------------------------------

def test_snapshot(ion):
    br, _ = ion
    br.pmt_threshold(5)
    snap = br.snapshot(update=True)
    p = snap["parameters"]
    assert p["pmt_threshold"]["value"] == 5 and p["pmt_threshold"]["unit"] == "counts"
    assert p["tick_rate"]["value"] == 50_000 and p["clock_frequency"]["value"] == 100_000_000
    assert p["detection_window"]["value"] == pytest.approx(5e-4)
    assert p["sequences_loaded"]["value"] == list(range(7))
    assert snap["address"] == "sim://ion" and snap["baudrate"] == 12_000_000
    up = snap["uploaded_sequences"]
    assert sorted(up) == [str(k) for k in range(7)]
    assert up["6"]["name"] == "measure" and up["6"]["crc32"] == br.sequence_info(6).crc32


# -- framing robustness ----------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _split_frames(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(data):
        assert data[i] == S.START
        n = (data[i + 1] << 8) | data[i + 2]
        body = data[i + 1:i + 3 + n]
        assert S.checksum(body) == data[i + 3 + n]
        out.append((body[2], body[3:]))
        i += 4 + n
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40),
                          st.builds(lambda c, p: S.frame(c, p), st.integers(0, 255), st.binary(max_size=30))),
                max_size=6))
def test_simulated_bridge_answers_any_bytes_with_well_formed_frames(chunks):
    dev = S.IonBridgeSim(IdealIon())
    for chunk in chunks:
        for cmd, payload in _split_frames(dev.receive(chunk)):
            assert cmd == S.ERROR_REPLY or cmd & 0x80
            if cmd == S.ERROR_REPLY:
                assert payload[0] in set(S.ErrorCode)
