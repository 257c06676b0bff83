"""The NV pulse library's HDAWG program on the simulated node: DIO toggle requests,
XY8 block boundaries, the entry's own samples to the physics, DD around it."""

from __future__ import annotations

import numpy as np
import pytest
from qcodes.instrument import Instrument

from qnodeos_hw.qdevice import InstructionMessage, Opcode, ResponseKind, VirtualClock, decode, encode
from qnodeos_hw.simulators.adwin_sim import AWGNoResponseError
from qnodeos_hw.simulators.hdawg_sim import ProgramModel
from qnodeos_hw.simulators.nv_lab import open_nv_node

TICK = 10_000


@pytest.fixture(scope="module")
def library(table, program):
    return table, program


@pytest.fixture(autouse=True)
def _close_all():
    yield
    Instrument.close_all()


def play(node, index):
    node.adwin.send_instruction(encode(InstructionMessage(Opcode.PLAY, 0, index)))
    return decode(node.adwin.read_response())


def test_program_source_is_understood(library):
    _, program = library
    model = ProgramModel.from_source(program.seqc)
    assert model.dio_table and model.dd_idle and model.polled is not None
    assert model.polled.toggle_bit == 8 and model.polled.mask == 0xFF
    assert sorted(model.polled.idle) == list(range(16))


def test_entry_plays_its_samples_on_the_dd_grid(library, recording_nv):
    table, program = library
    be = recording_nv()
    node = open_nv_node(be, VirtualClock(), name="n1", program=program)
    conn = node.lab.hdawg_connection
    block_ns = program.idle_playlists[0].length * 1e9 / program.sample_rate_hz
    entry = table.by_rotation("x", 1, 1)  # x(pi/2)
    t_send = node.clock.now_ns()
    assert play(node, entry.index).kind is ResponseKind.SUCCESS
    _, key, wi, wq, rate, t0 = be.mw[-1]
    np.testing.assert_allclose(wi[:entry.op_samples], entry.samples_i, atol=2e-4)
    np.testing.assert_allclose(wq[:entry.op_samples], entry.samples_q, atol=2e-4)
    assert rate == program.sample_rate_hz
    # seen at the first XY8 block boundary after the request
    assert (t0 - conn._cores[0].enabled_at_ns) % round(block_ns) == 0
    assert t_send < t0 <= t_send + block_ns + conn.dio_latency_ns + TICK
    rec = conn.played[-1]
    assert rec.table_index == entry.index and rec.t_start_ns == t0
    # DD stops for the operation and resumes right after it
    assert be.dd[-2:] == [(0, False, t0), (0, True, rec.t_end_ns)]
    # the response comes on the first tick after the entry (op + first XY8 block) ends
    end = conn.core_busy_until_ns(0)
    assert end - t0 == pytest.approx(program.entry_duration_ns(entry.index), abs=1)
    assert node.adwin.now_ns() == -(-(end + node.lab.adwin.awg_done_latency_ns) // TICK) * TICK
    # the same entry again: the toggle flips, the AWG sees a new request
    play(node, entry.index)
    assert len(be.mw) == 2 and be.mw[1][1] == key and be.mw[1][5] > t0
    node.close()


def test_long_idle_keeps_the_grid(library, recording_nv):
    table, program = library
    be = recording_nv()
    clock = VirtualClock()
    node = open_nv_node(be, clock, name="n2", program=program)
    conn = node.lab.hdawg_connection
    e = table.by_rotation("y", 1, 0)
    play(node, e.index)
    end1 = conn.core_busy_until_ns(0)
    clock.advance_to(clock.now_ns() + 1_234_567_891)  # the host idles ~1.2 s
    t_req = clock.now_ns()
    play(node, e.index)
    t0 = be.mw[-1][5]
    block = program.idle_playlists[conn._cores[0].shift].length
    assert ((t0 - end1) * program.sample_rate_hz / 1e9) % block == pytest.approx(0, abs=1e-6)
    block_ns = block * 1e9 / program.sample_rate_hz
    assert t_req < t0 <= t_req + TICK + conn.dio_latency_ns + block_ns
    node.close()


def test_laser_entry_takes_time_without_microwaves(library, recording_nv):
    table, program = library
    be = recording_nv()
    node = open_nv_node(be, VirtualClock(), name="n3", program=program)
    init = table.by_name("init")
    assert play(node, init.index).kind is ResponseKind.SUCCESS
    assert be.mw == []
    rec = node.lab.hdawg_connection.played[-1]
    assert rec.wave_index == -1 and rec.n_samples == init.op_samples
    node.close()


def test_controller_on_the_wrong_dio_protocol_is_caught(library, recording_nv):
    _, program = library
    node = open_nv_node(recording_nv(), VirtualClock(), name="n4", program=program)
    node.adwin.configure_dio("valid", 8)  # the flag bit is held high, never toggles again
    play(node, 7)
    with pytest.raises(AWGNoResponseError, match="codeword 7"):
        play(node, 7)
    node.close()


def test_rotation_through_the_whole_chain_with_packaged_physics(library):
    table, program = library
    node = open_nv_node(None, VirtualClock(), seed=11, name="n5", program=program)
    x_pi = table.by_rotation("x", 1, 0).index
    ones = {True: 0, False: 0}
    for flip in (True, False):
        for _ in range(60):
            for w in ([Opcode.INIT] + ([Opcode.PLAY] if flip else []) + [Opcode.MEASURE]):
                arg = x_pi if w is Opcode.PLAY else 0
                node.adwin.send_instruction(encode(InstructionMessage(w, 0, arg)))
                r = decode(node.adwin.read_response())
            ones[flip] += r.argument
    assert ones[True] >= 54 and ones[False] <= 6
    node.close()
