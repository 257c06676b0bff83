"""ADwin controller QCoDeS driver against the simulated ADwin (+ simulated HDAWG)."""

from __future__ import annotations

import numpy as np
import pytest
from qcodes.instrument import Instrument
from zhinst.toolkit import CommandTable, Waveforms

from qnodeos_hw.instruments.adwin import (ADwinController, ADwinLibraryMissingError,
                                          MailboxFullError, ResponseTimeoutError)
from qnodeos_hw.instruments.hdawg import ZIHDAWG
from qnodeos_hw.qdevice import (BusyPolicy, InstructionMessage, Opcode, ResponseKind,
                                ResponseMessage, VirtualClock, decode, encode)
from qnodeos_hw.simulators.adwin_sim import (ControllerBusyError, InstructionFifoOverflowError,
                                             InstructionRejectedError, ParameterRefusedError,
                                             ProcessNotRunningError, SimulatedADwin)
from qnodeos_hw.simulators.hdawg_sim import SimulatedHDAWGConnection, UnknownCodewordError

TICK = 10_000
PROGRAM = """
wave w0 = placeholder(240);
assignWaveIndex(1, w0, 2, w0, 0);
while (true) { executeTableEntry(getDIOTriggered()); }
"""


class ScriptedNV:
    """NVQubitBackend double: scripted CR counts, readout bits, herald results."""

    def __init__(self, cr_counts=(100,), bits=(1,), herald=((True, 2, None),)):
        self.cr_counts, self.bits, self.herald = list(cr_counts), list(bits), list(herald)
        self.calls: list[tuple] = []

    def play_mw(self, qubit, key, wave_i, wave_q, sample_rate_hz, t_ns):
        self.calls.append(("mw", qubit, wave_i.size, t_ns))

    def set_dd(self, qubit, on, t_ns):
        self.calls.append(("dd", qubit, on, t_ns))

    def cr_check(self, t_ns):
        self.calls.append(("cr", t_ns))
        return self.cr_counts.pop(0) if len(self.cr_counts) > 1 else self.cr_counts[0]

    def initialize(self, qubit, t_ns):
        self.calls.append(("init", qubit, t_ns))

    def readout_counts(self, qubit, t_ns):
        """A scripted bit as photon counts: 0 -> 5 photons (bright), 1 -> none."""
        return 0 if self.readout(qubit, t_ns) else 5

    def readout(self, qubit, t_ns):
        self.calls.append(("ro", qubit, t_ns))
        return self.bits.pop(0) if len(self.bits) > 1 else self.bits[0]

    def entangle(self, qubit, t_ns, measure):
        self.calls.append(("ent", qubit, t_ns, measure))
        h, b, o = self.herald.pop(0) if len(self.herald) > 1 else self.herald[0]
        return h, b, (o if measure else None)


def word(op, qubit=0, arg=0, seq=0):
    return encode(InstructionMessage(op, qubit, arg, seq))


def build(backend=None, policy=BusyPolicy.QUEUE, fifo_depth=16, with_awg=True):
    clock = VirtualClock()
    backend = backend or ScriptedNV()
    conn = SimulatedHDAWGConnection(clock, backend)
    sim = SimulatedADwin(clock, conn, backend, policy=policy, fifo_depth=fifo_depth,
                         record=True)
    ad = ADwinController("adwin_test", adwin=sim)
    ad.configure_dio("valid", 31)  # PROGRAM uses executeTableEntry(getDIOTriggered())
    hd = None
    if with_awg:
        hd = ZIHDAWG("hdawg_for_adwin", "dev8001", connection=conn)
        hd.configure_codewords()
        hd.ch1.output("on")
        wf = Waveforms()
        wf[0] = (np.full(240, 0.5), np.zeros(240))
        ct = CommandTable(hd.awg1._awg.commandtable.load_validation_schema())
        ct.table[7].waveform.index = 0
        hd.upload(PROGRAM, wf, ct)
    return ad, sim, conn, backend, clock, hd


@pytest.fixture(autouse=True)
def _close_all():
    yield
    Instrument.close_all()


def test_init_measure_nop_through_the_mailbox():
    ad, sim, _, be, clock, _ = build(ScriptedNV(cr_counts=(3, 50), bits=(1,)), with_awg=False)
    ad.send_instruction(word(Opcode.INIT, seq=1))
    r = decode(ad.read_response())
    assert r == ResponseMessage(ResponseKind.SUCCESS, 0, 0, 1)
    # two CR checks (3 < 30: a 10 us charge repump, then 50) then spin pumping
    cr = [c for c in be.calls if c[0] == "cr"]
    assert [c[1] for c in cr] == [0, 60_000]
    assert ("init", 0, 110_000) in be.calls
    # response on the first tick after completion (110 us + 20 us)
    assert ad.now_ns() == 130_000 and clock.now_ns() == 130_000
    ad.send_instruction(word(Opcode.MEASURE))
    assert decode(ad.read_response()) == ResponseMessage(ResponseKind.OUTCOME, 0, 1, 0)
    ad.send_instruction(word(Opcode.NOP))
    assert decode(ad.read_response()).kind is ResponseKind.SUCCESS
    assert ad.instructions_executed() == 3
    ticks = [(e.tick, e.direction.value) for e in sim.timeline]
    assert ticks == [(0, "instruction"), (13, "response"), (13, "instruction"),
                     (14, "response"), (14, "instruction"), (15, "response")]


def test_init_fails_when_cr_check_never_passes():
    ad, _, _, be, _, _ = build(ScriptedNV(cr_counts=(2,)), with_awg=False)
    ad.cr_max_attempts(4)
    ad.send_instruction(word(Opcode.INIT))
    assert decode(ad.read_response()).kind is ResponseKind.FAILURE
    assert sum(c[0] == "cr" for c in be.calls) == 4
    assert not any(c[0] == "init" for c in be.calls)
    assert ad.now_ns() == 4 * 50_000 + 4 * 10_000  # each failed check: a charge repump


def test_entanglement_responses():
    be = ScriptedNV(herald=((True, 2, 1), (False, 0, None), (True, 3, 0)))
    ad, _, _, be, _, _ = build(be, with_awg=False)
    ad.send_instruction(word(Opcode.ENT_MEASURE))
    assert decode(ad.read_response()) == ResponseMessage(ResponseKind.ENT_SUCCESS, 0,
                                                         2 | 4 | 8, 0)
    assert ad.now_ns() == 20_000  # 5 us attempt + 10 us readout -> tick 2
    ad.send_instruction(word(Opcode.ENT_KEEP))
    assert decode(ad.read_response()).kind is ResponseKind.ENT_FAILURE
    ad.send_instruction(word(Opcode.ENT_KEEP))
    assert decode(ad.read_response()) == ResponseMessage(ResponseKind.ENT_SUCCESS, 0, 3, 0)


def test_play_raises_the_codeword_and_waits_for_the_awg():
    ad, sim, conn, be, clock, _ = build()
    t0 = clock.now_ns()
    tick0 = -(-t0 // TICK)
    ad.send_instruction(word(Opcode.PLAY, arg=7))
    assert decode(ad.read_response()).kind is ResponseKind.SUCCESS
    rec = conn.played[-1]
    assert rec.table_index == 7 and rec.n_samples == 240
    assert rec.t_start_ns == tick0 * TICK + sim.dio_out_latency_ns + conn.dio_latency_ns
    assert rec.t_end_ns - rec.t_start_ns == 100  # 240 samples at 2.4 GSa/s
    # 100 + 200 + 100 + 100 ns < one tick: answered on the next tick
    assert ad.now_ns() == (tick0 + 1) * TICK
    assert ("mw", 0, 240, rec.t_start_ns) in be.calls


def test_queue_policy_answers_in_order_and_fifo_overflow_is_typed():
    ad, sim, _, _, _, _ = build(fifo_depth=2, with_awg=False)
    for s in (0, 1, 0):  # INIT takes 7 ticks: one executing, two queued
        ad.send_instruction(word(Opcode.INIT, seq=s))
    with pytest.raises(MailboxFullError):
        ad.send_instruction(word(Opcode.INIT, seq=1))
    with pytest.raises(InstructionFifoOverflowError):  # the device itself refuses too
        sim.SetFifo_Long(1, [int.from_bytes(word(Opcode.INIT), "big", signed=True)], 1)
    assert sim.link.sent == 3
    assert [decode(ad.read_response()).seq for _ in range(3)] == [0, 1, 0]
    with pytest.raises(ResponseTimeoutError):
        ad.read_response(timeout_s=0.02)


def test_refuse_policy_rejects_a_message_during_a_busy_instruction():
    ad, _, _, _, _, _ = build(policy=BusyPolicy.REFUSE, with_awg=False)
    ad.send_instruction(word(Opcode.INIT))
    with pytest.raises(ControllerBusyError):
        ad.send_instruction(word(Opcode.MEASURE))
    assert decode(ad.read_response()).kind is ResponseKind.SUCCESS


@pytest.mark.parametrize("raw, match", [
    (word(Opcode.ROT_X, arg=(1 << 4) | 1), "ROT_X"),
    (bytes([0x60, 0x00, 0x00, 0x01]), "parity"),
    (encode(ResponseMessage(ResponseKind.SUCCESS)), "response"),
    (word(Opcode.MEASURE, qubit=3), "qubit 3"),
])
def test_words_the_controller_refuses(raw, match):
    ad, sim, _, _, _, _ = build(with_awg=False)
    with pytest.raises(InstructionRejectedError, match=match):
        ad.send_instruction(raw)
    assert sim.link.sent == 0


def test_awg_refusal_stops_the_process_with_its_cause():
    ad, _, _, _, _, _ = build()
    with pytest.raises(UnknownCodewordError):
        ad.send_instruction(word(Opcode.PLAY, arg=8))
    assert ad.process_running() is False
    with pytest.raises(ProcessNotRunningError, match="UnknownCodewordError"):
        ad.send_instruction(word(Opcode.NOP))
    ad.start_process()
    ad.send_instruction(word(Opcode.PLAY, arg=7))
    assert decode(ad.read_response()).kind is ResponseKind.SUCCESS


def test_parameters_reach_the_pars_and_validators_refuse_first():
    ad, sim, _, _, _, _ = build(with_awg=False)
    ad.cr_threshold(12)
    ad.ssro_threshold(3)
    ad.readout_duration(15_000)
    assert (sim.Get_Par(1), sim.Get_Par(2), sim.Get_Par(6)) == (12, 3, 15_000)
    for param, bad in ((ad.cr_threshold, -1), (ad.ssro_threshold, 0), (ad.tick_rate, 5e6),
                       (ad.readout_duration, 1.5)):
        before = dict(sim._par), sim.Get_Processdelay(1)
        with pytest.raises((ValueError, TypeError)):
            param(bad)
        assert (dict(sim._par), sim.Get_Processdelay(1)) == before


def test_tick_rate_changes_the_tick_period():
    ad, sim, _, _, _, _ = build(with_awg=False)
    assert ad.tick_rate() == 100_000
    ad.tick_rate(50_000)
    assert sim.Get_Processdelay(1) == 20_000 and sim.spec.tick_ns == 20_000
    ad.send_instruction(word(Opcode.NOP))
    ad.read_response()
    assert ad.now_ns() == 20_000
    with pytest.raises(ValueError, match="whole number"):
        ad.tick_rate(300_000)
    with pytest.raises(ParameterRefusedError):
        sim.Set_Par(10, 5)  # the tick counter is read-only


def test_process_lifecycle_on_the_simulated_adwin():
    clock = VirtualClock()
    sim = SimulatedADwin(clock, SimulatedHDAWGConnection(clock))
    with pytest.raises(ProcessNotRunningError):
        sim.Fifo_Full(2)
    with pytest.raises(Exception, match="boot"):
        sim.Load_Process("qnodeos_nv_controller.TC1")
    sim.Boot("ADwin12.btl")
    with pytest.raises(Exception, match="implements only"):
        sim.Load_Process("other.TC1")
    ad = ADwinController("adwin_boot", adwin=sim, boot=True)
    assert ad.process_running() is True
    ad.stop_process()
    assert ad.process_running() is False


def test_real_backend_without_vendor_library_says_so():
    with pytest.raises(ADwinLibraryMissingError, match="vendor library"):
        ADwinController("adwin_real", address="1")
    assert not Instrument.exist("adwin_real")


def test_snapshot_names_process_and_settings():
    ad, _, _, _, _, _ = build(with_awg=False)
    ad.cr_threshold(25)
    snap = ad.snapshot(update=True)
    assert snap["parameters"]["cr_threshold"]["value"] == 25
    assert snap["parameters"]["cr_threshold"]["unit"] == "counts"
    assert snap["parameters"]["tick_rate"]["value"] == 100_000
    assert snap["process"]["process_file"] == "qnodeos_nv_controller.TC1"
    assert snap["parameters"]["process_running"]["value"] is True


def test_block_transfer_of_instructions():
    ad, sim, _, _, _, _ = build(fifo_depth=4, with_awg=False)
    ad.send_instructions([word(Opcode.INIT, seq=0), word(Opcode.MEASURE, seq=1),
                          word(Opcode.NOP, seq=0)])
    assert [e.tick for e in sim.timeline] == [0, 1, 2]  # consecutive ticks
    kinds = [decode(r) for r in ad.read_responses(3)]
    assert [(r.kind, r.seq) for r in kinds] == [(ResponseKind.SUCCESS, 0),
                                                (ResponseKind.OUTCOME, 1),
                                                (ResponseKind.SUCCESS, 0)]
    with pytest.raises(MailboxFullError, match="nothing sent"):
        ad.send_instructions([word(Opcode.INIT)] * 6)
    assert sim.link.sent == 3


def test_host_moving_the_shared_clock_on_does_not_move_responses():
    ad, sim, _, _, clock, _ = build(with_awg=False)
    ad.send_instruction(word(Opcode.INIT))
    clock.advance_to(1_000_000)  # the host waits 1 ms elsewhere (e.g. a TDMA bin)
    assert decode(ad.read_response()).kind is ResponseKind.SUCCESS
    assert [e.tick for e in sim.timeline] == [0, 7]  # answered on its own tick
    assert clock.now_ns() == 1_000_000 and ad.now_ns() == 1_000_000
    ad.send_instruction(word(Opcode.NOP))
    ad.read_response()
    assert sim.timeline[-2].tick == 100
