"""The hot-path caches of the simulated NV station give the same behaviour as recomputing:
they follow re-uploads and setting changes, never remember a refusal, and the driver's
free-slot bookkeeping still refuses a full FIFO."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from qcodes.instrument import Instrument

from qnodeos_hw.instruments.adwin import ADwinController, MailboxFullError
from qnodeos_hw.qdevice import (InstructionMessage, Opcode, ResponseKind, TickLink, VirtualClock,
                                decode, encode, nv_spec)
from qnodeos_hw.sequences.hdawg_program import build_hdawg_program
from qnodeos_hw.simulators.adwin_sim import InstructionRejectedError, SimulatedADwin
from qnodeos_hw.simulators.hdawg_sim import DDRecord, PlayRecord, RecordLog
from qnodeos_hw.simulators.nv_lab import open_nv_node
from qnodeos_hw.simulators.physics import NVNode, QuantumRegistry, load_noise_models
from qnodeos_hw.waveforms.calibration import ShapeCalibration
from qnodeos_hw.waveforms.table import build_table


class RecordingNV:
    """NVQubitBackend double: records the microwaves; scripted readout bits."""

    def __init__(self, bits=(0,)) -> None:
        self.mw: list[tuple] = []
        self.bits = list(bits)

    def play_mw(self, qubit, key, wave_i, wave_q, sample_rate_hz, t_ns):
        self.mw.append((key, np.array(wave_i), np.array(wave_q), t_ns))

    def set_dd(self, qubit, on, t_ns):
        pass

    def cr_check(self, t_ns):
        return 100

    def initialize(self, qubit, t_ns):
        pass

    def readout(self, qubit, t_ns):
        return self.bits.pop(0) if len(self.bits) > 1 else self.bits[0]

    def readout_counts(self, qubit, t_ns):
        return 0 if self.readout(qubit, t_ns) else 5

    def entangle(self, qubit, t_ns, measure):
        return (False, 0, None)


def word(op, qubit=0, arg=0, seq=0):
    return encode(InstructionMessage(op, qubit, arg, seq))


@pytest.fixture(scope="module")
def library(cal, table, program):
    return cal, table, program


@pytest.fixture(autouse=True)
def _close_all():
    yield
    Instrument.close_all()


def test_polled_request_cache_follows_output_amplitude_and_reupload(library):
    cal, table, program = library
    be = RecordingNV()
    node = open_nv_node(be, VirtualClock(), name="pc1", program=program)
    x180 = table.by_rotation("x", 1, 0).index
    for _ in range(2):  # the second play comes from the caches
        node.adwin.transact(word(Opcode.PLAY, arg=x180))
    first, again = be.mw[-2], be.mw[-1]
    assert first[0] == again[0] and np.array_equal(first[1], again[1])
    peak = np.abs(first[1]).max()
    assert peak > 0.1

    node.hdawg.ch1.amplitude(0.5)  # output amplitude: what is played halves
    node.adwin.transact(word(Opcode.PLAY, arg=x180))
    assert be.mw[-1][0] != first[0]
    np.testing.assert_allclose(be.mw[-1][1], 0.5 * first[1], atol=1e-4)
    node.hdawg.ch1.amplitude(1.0)

    # re-upload a table calibrated with a 10 % smaller pi amplitude: the new samples play
    shape = cal.gate_shape
    sc = cal.pulses[shape]
    weaker = dataclasses.replace(cal, pulses={**cal.pulses, shape: ShapeCalibration(
        0.9 * sc.pi_amplitude, sc.pi_duration_s)})
    node.hdawg.load_nv_program(build_hdawg_program(build_table(weaker), weaker))
    node.adwin.stop_process()  # the AWG restarted: the controller's DIO toggle starts over
    node.adwin.start_process()
    node.adwin.transact(word(Opcode.PLAY, arg=x180))
    assert np.abs(be.mw[-1][1]).max() == pytest.approx(0.9 * peak, rel=2e-3)
    node.close()


def test_play_log_builds_its_records_on_read_and_stays_bounded():
    log = RecordLog(PlayRecord, maxlen=3)
    for k in range(5):
        log.add(10 * k, 10 * k + 5, 0, k, k, 2, 240)
    assert len(log) == 3 and log.maxlen == 3
    assert log[-1] == PlayRecord(40, 45, 0, 4, 4, 2, 240)
    assert [r.codeword for r in log] == [2, 3, 4]  # the oldest two dropped
    assert log[:2] == [PlayRecord(20, 25, 0, 2, 2, 2, 240), PlayRecord(30, 35, 0, 3, 3, 2, 240)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        log[0].t_start_ns = 0  # records stay immutable
    log.clear()
    assert len(log) == 0 and list(log) == []


def test_station_play_and_dd_logs_match_what_the_backend_saw(library):
    _, table, program = library
    be = RecordingNV()
    node = open_nv_node(be, VirtualClock(), name="pc2", program=program)
    conn = node.lab.hdawg_connection
    entry = table.by_rotation("y", 1, 1)
    node.adwin.transact(word(Opcode.PLAY, arg=entry.index))
    rec = conn.played[-1]
    assert isinstance(rec, PlayRecord) and rec.table_index == entry.index
    assert rec.t_start_ns == be.mw[-1][3] and rec.n_samples == be.mw[-1][1].size
    off, on = conn.dd_events[-2], conn.dd_events[-1]
    assert (off, on) == (DDRecord(rec.t_start_ns, 0, False), DDRecord(rec.t_end_ns, 0, True))
    node.close()


def _controller(backend, **kw):
    clock = VirtualClock()
    sim = SimulatedADwin(clock, awg=None, backend=backend, **kw)
    return clock, sim, ADwinController("perf_adwin", adwin=sim)


def test_refused_words_are_never_remembered_as_accepted():
    _, sim, ad = _controller(RecordingNV())
    bad = word(Opcode.MEASURE, qubit=3)
    for _ in range(2):
        with pytest.raises(InstructionRejectedError, match="qubit 3"):
            ad.send_instruction(bad)
    assert decode(ad.transact(word(Opcode.MEASURE))).kind is ResponseKind.OUTCOME
    with pytest.raises(InstructionRejectedError, match="ROT_X"):
        ad.send_instruction(word(Opcode.ROT_X, arg=(1 << 4) | 1))
    assert sim.link.sent == 1


def test_cached_response_words_echo_qubit_sequence_bit_and_outcome():
    _, _, ad = _controller(RecordingNV(bits=(0, 1, 1, 0, 1, 0)))
    got = [decode(ad.transact(word(Opcode.MEASURE, seq=k & 1))) for k in range(6)]
    assert [(m.kind, m.argument, m.seq) for m in got] == [
        (ResponseKind.OUTCOME, b, k & 1) for k, b in enumerate((0, 1, 1, 0, 1, 0))]


class CountingADwin:
    """An ADwin-API object that counts Fifo_Empty calls and forwards everything (the
    simulator may be a compiled class, which cannot be subclassed from Python)."""

    def __init__(self, sim: SimulatedADwin) -> None:
        self._sim = sim
        self.fifo_empty_calls = 0

    def __getattr__(self, name):
        return getattr(self._sim, name)

    def Fifo_Empty(self, FifoNo):  # noqa: N802,N803
        self.fifo_empty_calls += 1
        return self._sim.Fifo_Empty(FifoNo)


def test_driver_asks_for_free_slots_only_when_its_count_runs_out():
    clock = VirtualClock()
    sim = CountingADwin(SimulatedADwin(clock, awg=None, backend=RecordingNV(), fifo_depth=16))
    ad = ADwinController("perf_adwin2", adwin=sim)
    for k in range(40):
        ad.transact(word(Opcode.NOP, seq=k & 1))
    assert sim.fifo_empty_calls == math.ceil(40 / 16)
    before = sim.fifo_empty_calls
    with pytest.raises(InstructionRejectedError):  # a refusal: the count is unknown again
        ad.send_instruction(word(Opcode.MEASURE, qubit=5))
    ad.transact(word(Opcode.NOP))
    assert sim.fifo_empty_calls == before + 1


def test_full_fifo_is_still_refused_by_the_driver():
    _, sim, ad = _controller(RecordingNV(), fifo_depth=2)
    for s in (0, 1, 0):  # INIT takes 7 ticks: one executing, two queued
        ad.send_instruction(word(Opcode.INIT, seq=s))
    with pytest.raises(MailboxFullError, match="nothing sent"):
        ad.send_instruction(word(Opcode.INIT, seq=1))
    assert sim.link.sent == 3
    assert [decode(ad.read_response()).seq for _ in range(3)] == [0, 1, 0]


def test_responses_delivered_while_sending_are_in_the_fifo_at_once():
    clock, sim, _ = _controller(RecordingNV())
    init = int.from_bytes(word(Opcode.INIT), "big", signed=True)
    nop = int.from_bytes(word(Opcode.NOP, seq=1), "big", signed=True)
    sim.SetFifo_Long(1, [init], 1)
    clock.advance_to(clock.now_ns() + 1_000_000)  # the host is away 1 ms: INIT finished
    sim.SetFifo_Long(1, [nop], 1)  # this send delivers INIT's response
    t = clock.now_ns()
    assert sim.Fifo_Full(2) == 1 and clock.now_ns() == t  # no waiting for it
    assert sim.Fifo_Full(2) == 1
    sim.GetFifo_Long(2, 1)
    assert sim.Fifo_Full(2) == 1 and clock.now_ns() > t  # NOP's response: waited for


def test_link_next_response_time_tracks_the_executing_instruction():
    class Fixed:
        def start(self, message, t_ns):
            return 25_000

        def finish(self, t_ns):
            return encode(InstructionMessage(Opcode.NOP, 0, 0, 0))

    link = TickLink(nv_spec(), Fixed(), VirtualClock(), record=False)
    assert link.next_response_ns == math.inf
    link.send(word(Opcode.NOP))
    assert link.next_response_ns == 30_000  # 25 us -> answered on tick 3
    link.wait_response()
    assert link.next_response_ns == math.inf


def test_unitary_cache_hits_same_samples_and_recomputes_changed_ones():
    node = NVNode("cache", load_noise_models().nv, np.random.default_rng(0), QuantumRegistry())
    wi, wq = np.full(240, 0.2), np.zeros(240)
    node.play_mw(0, "k", wi, wq, 2.4e9, 1_000)
    node.play_mw(0, "k", wi, wq, 2.4e9, 2_000)            # same arrays
    node.play_mw(0, "k", wi.copy(), wq.copy(), 2.4e9, 3_000)  # equal content
    assert node.cache_misses == 1
    u_before = node.mw_unitary("k", wi, wq, 2.4e9)
    node.play_mw(0, "k", 0.5 * wi, wq, 2.4e9, 4_000)      # same key, new samples
    assert node.cache_misses == 2
    assert not np.allclose(node.mw_unitary("k", 0.5 * wi, wq, 2.4e9), u_before)
