"""Carbon memories of an NV node: gates from the played samples, the table's growth,
dephasing per entanglement attempt, placement, and the controller's stochastic INIT."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from qnodeos_hw.nodes import _nv_program
from qnodeos_hw.qdevice.spec import nv_spec
from qnodeos_hw.qnpu.errors import QubitAllocationError
from qnodeos_hw.qnpu.qmmu import QMMU
from qnodeos_hw.sequences.hdawg_program import build_hdawg_program
from qnodeos_hw.simulators.physics import HeraldingStation, NVNode, QuantumRegistry, load_noise_models
from qnodeos_hw.simulators.physics.carbon import action, crosstalk, train_unitary
from qnodeos_hw.waveforms.calibration import load_calibration
from qnodeos_hw.waveforms.carbon_gates import (carbon_hamiltonians, frame_rate, gate_fidelity,
                                               ideal_train_unitary, target_unitary)

MODELS = load_noise_models()
RATE = 2.4e9


def _train(program, entry):
    """What the AWG plays for a carbon entry: the DD copies at their offsets."""
    offs, wi, wq, pos = [], [], [], 0
    for seg in program.entry_playlists[entry.index].segments:
        if seg.kind == "dd":
            ci, cq = program.dd.copies.copy(seg.axis, seg.shift)
            offs.append(pos)
            wi.append(ci)
            wq.append(cq)
        pos += seg.length
    return offs, wi, wq, pos


@pytest.fixture(scope="module")
def two_carbons():
    return _nv_program(None, 2)


def test_the_table_grows_by_five_trains_per_carbon_without_waveform_memory(two_carbons):
    table, program = two_carbons
    plain_table, plain = _nv_program(None, 0)
    assert len(plain_table) == 170 and len(table) == 180
    assert [e.name for e in table.carbon_gates()][:5] == [
        "c1_crot_x_p1", "c1_crot_x_m1", "c1_rot_x_p1", "c1_rot_x_m1", "c1_rot_x_p2"]
    assert program.memory.samples_per_channel == plain.memory.samples_per_channel
    assert program.entry_targets[:170] == (0,) * 170
    assert program.entry_targets[170:] == (1,) * 5 + (2,) * 5
    assert "cw < 171" in program.seqc  # each train has its own SeqC branch


def test_every_train_from_its_samples_is_the_gate_it_is_named_for(two_carbons):
    table, program = two_carbons
    nv = MODELS.nv
    for e in table.carbon_gates():
        c = nv.carbons[e.carbon - 1]
        u = train_unitary([(nv.carbon_larmor_hz, c.a_par_hz, c.a_perp_hz)], *_train(program, e),
                          RATE, nv.rabi_hz_per_amplitude)
        f = gate_fidelity(u, target_unitary(e.kind, e.angle_rad))
        assert f > 0.97, (e.name, f)
        if abs(e.angle_rad) < 3:  # a wrong-sign gate is far off: the test can fail
            assert gate_fidelity(u, target_unitary(e.kind, -e.angle_rad)) < 0.9


def test_sample_level_model_reduces_to_the_design_model_for_short_pulses():
    larmor, ap, ax = 431e3, -36e3, 26e3
    h0, h1 = carbon_hamiltonians(larmor, ap, ax)
    tau, n = 1336, 28
    ideal = ideal_train_unitary(h0, h1, frame_rate(larmor, ap, ax), tau / RATE, n)
    rabi = 30e6
    w = 4
    amp = 1 / (2 * rabi * w / RATE)  # a pi pulse of 4 samples
    offs = [int(round((2 * j + 1) * tau - w / 2)) for j in range(n)]
    u = train_unitary([(larmor, ap, ax)], offs, [np.full(w, amp)] * n, [np.zeros(w)] * n,
                      2 * n * tau, RATE, rabi)
    assert gate_fidelity(u, ideal) > 0.9999


def test_effective_model_against_the_joint_sample_level_unitary(two_carbons):
    """The physics applies each train to the electron and the carbons it acts on; the
    joint unitary of electron + both carbons compared with target (x) best rotation on
    the other carbon measures the crosstalk the effective model would neglect."""
    table, program = two_carbons
    nv = MODELS.nv
    carbons = [(nv.carbon_larmor_hz, c.a_par_hz, c.a_perp_hz) for c in nv.carbons[:2]]
    e = table.carbon_gate(1, "crot_x", 1)
    x = crosstalk(carbons, 1, *_train(program, e), RATE, nv.rabi_hz_per_amplitude)
    assert x["fidelity"] > 0.95 and x["others_action"] < 0.1


def test_a_carbon_dephases_per_entanglement_attempt():
    her = MODELS.heralding.with_overrides({"p_success": 0.0})
    reg = QuantumRegistry()
    st = HeraldingStation(her, np.random.default_rng(1), reg)
    a = NVNode("a", MODELS.nv, np.random.default_rng(2), reg, num_qubits=2, station=st)
    b = NVNode("b", MODELS.nv, np.random.default_rng(3), reg, num_qubits=2, station=st)
    a.initialize(1, 0)
    a.apply_gate([1], np.array([[1, 1], [1, -1]]) / math.sqrt(2), 0)
    x0 = 2 * a.reduced_density_matrix([1], 0)[1, 0].real
    n = 500
    th = threading.Thread(target=b.entangle_window, args=(0, 0, False, n))
    th.start()
    a.entangle_window(0, 0, False, n)
    th.join()
    t_end = n * her.attempt_duration_ns
    x = 2 * a.reduced_density_matrix([1], t_end)[1, 0].real
    c = MODELS.nv.carbons[0]
    expect = (x0 * math.exp(-n / c.attempts_1e) * math.exp(-t_end * 1e-9 / c.t2_s)
              * math.exp(-t_end * 1e-9 / (2 * c.t1_s)))
    assert x == pytest.approx(expect, rel=1e-6)
    assert x < 0.7 * x0  # attempts, not T2, dominate


def test_virtual_qubit_zero_is_the_electron():
    q = QMMU.for_spec(nv_spec(3))
    q.add_process(1, 5)
    q.add_process(2, 5)
    assert q.allocate(1, 1) != 0 and q.allocate(1, 0) == 0
    with pytest.raises(QubitAllocationError, match="pinned"):
        q.allocate(2, 0)
    assert q.comm_qubits == (0,)


def test_init_repeats_the_stochastic_cr_check_with_charge_repumps():
    """INIT durations: CR checks until one passes (geometric in cr_pass_probability), a
    charge repump after each failure, then spin pumping (all from the noise model)."""
    from qnodeos_hw.nodes import simulated_nv_network
    from netqasm.lang.instr import core
    from netqasm.lang.operand import Register, RegisterName
    nodes = simulated_nv_network(("a", "b"), seed=4, num_qubits=1)
    try:
        d = nodes["a"].qdriver
        nv = MODELS.nv
        durations = []
        for _ in range(300):
            t = d.now_ns()
            d.execute(core.InitInstruction(reg=Register(RegisterName.Q, 0)), (0,))
            durations.append(d.now_ns() - t)
        tick = 10_000
        base = nv.cr_check_ns + nv.spin_pump_ns
        checks = [round((x - base) / (nv.cr_check_ns + nv.charge_repump_ns)) for x in durations]
        assert min(checks) == 0 and max(checks) >= 1  # stochastic, not a constant
        assert all(abs(x - base - k * (nv.cr_check_ns + nv.charge_repump_ns)) <= 2 * tick
                   for x, k in zip(durations, checks))
        p_fail = 1 - nv.cr_pass_probability
        mean = float(np.mean(checks))
        sigma = math.sqrt(p_fail / (1 - p_fail) ** 2 / len(checks))
        assert abs(mean - p_fail / (1 - p_fail)) < 4 * sigma
    finally:
        for n in nodes.values():
            n.close()


def test_mw_gate_duration_in_the_noise_model_is_the_tables():
    """The noise model states the electron MW gate duration (with its source); the
    shipped calibration and every electron rotation entry of the table play that long."""
    cal = load_calibration()
    table, _ = _nv_program(None, 0)
    ns = MODELS.nv.mw_pi_pulse_ns
    assert cal.pi_duration_s() * 1e9 == pytest.approx(ns)
    rot = table.by_name("rot_x_n1_d1")
    assert rot.pulse_duration_s * 1e9 == pytest.approx(ns, abs=0.5)
