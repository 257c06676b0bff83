"""IdealQDriver / IdealLink: exact states, durations on the passed clock, heralding."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from netqasm.lang.instr import core, nv, trapped_ion, vanilla
from netqasm.lang.encoding import RegisterName
from netqasm.lang.operand import Immediate, Register

from qnodeos_hw.qdevice.clock import VirtualClock
from qnodeos_hw.qdevice.instructions import EntangleMode, ResponseKind
from qnodeos_hw.qdrivers.base import UnsupportedNetQASMError
from qnodeos_hw.qdrivers.ideal import (IdealDurations, IdealLink, IdealQDriver, LinkError,
                                       NetworkQuantumState, rotation, werner_state)

Q = [Register(RegisterName.Q, i) for i in range(3)]
M0 = Register(RegisterName.M, 0)


def rot(cls, n, d, q=0):
    return cls(reg=Q[q], imm0=Immediate(n), imm1=Immediate(d))


def test_rotations_match_netqasm_matrices():
    for cls in (vanilla.RotXInstruction, vanilla.RotYInstruction, vanilla.RotZInstruction,
                nv.RotXInstruction, nv.RotYInstruction, nv.RotZInstruction):
        for n, d in ((1, 1), (3, 3), (7, 4), (-5, 2)):
            ins = rot(cls, n, d)
            drv = IdealQDriver("a", 1)
            drv.execute(ins, (0,))
            u = ins.to_matrix()
            expect = u @ np.diag([1, 0]) @ u.conj().T
            assert np.allclose(drv.qubit_state((0,)), expect)


def test_h_then_measure_statistics_and_collapse():
    drv = IdealQDriver("a", 1, rng=np.random.default_rng(5))
    ones = 0
    for _ in range(2000):
        drv.execute(core.InitInstruction(reg=Q[0]), (0,))
        drv.execute(vanilla.GateHInstruction(reg=Q[0]), (0,))
        m = drv.execute(core.MeasInstruction(reg0=Q[0], reg1=M0), (0,))
        ones += m
        assert np.allclose(drv.qubit_state((0,)), np.diag([1 - m, m]))
    assert abs(ones / 2000 - 0.5) < 3 * math.sqrt(0.25 / 2000)


def test_cnot_makes_bell_state_and_order_of_qubits_matters():
    drv = IdealQDriver("a", 2)
    drv.execute(vanilla.GateXInstruction(reg=Q[0]), (0,))
    drv.execute(vanilla.CnotInstruction(reg0=Q[0], reg1=Q[1]), (0, 1))
    assert np.allclose(drv.qubit_state((0, 1)), np.diag([0, 0, 0, 1]))
    drv2 = IdealQDriver("b", 2)
    drv2.execute(vanilla.GateHInstruction(reg=Q[0]), (0,))
    drv2.execute(vanilla.CnotInstruction(reg0=Q[0], reg1=Q[1]), (0, 1))
    phi = np.array([1, 0, 0, 1]) / math.sqrt(2)
    assert np.allclose(drv2.qubit_state((0, 1)), np.outer(phi, phi))
    assert np.allclose(drv2.qubit_state((1,)), np.eye(2) / 2)


def test_nv_crot_uses_its_own_axis():
    drv = IdealQDriver("a", 2)
    drv.execute(vanilla.GateXInstruction(reg=Q[0]), (0,))  # control |1>: rotation by -angle
    drv.execute(nv.ControlledRotYInstruction(reg0=Q[0], reg1=Q[1], imm0=Immediate(1), imm1=Immediate(1)), (0, 1))
    u = rotation("y", -math.pi / 2)
    expect = u @ np.diag([1, 0]) @ u.conj().T
    assert np.allclose(drv.qubit_state((1,)), expect)


def test_meas_basis_measures_x_eigenstate_deterministically():
    drv = IdealQDriver("a", 1)
    drv.execute(vanilla.GateHInstruction(reg=Q[0]), (0,))  # |+>
    ins = core.MeasBasisInstruction(reg0=Q[0], reg1=M0, imm0=Immediate(0), imm1=Immediate(24),
                                    imm2=Immediate(0), imm3=Immediate(4))
    assert drv.execute(ins, (0,)) == 0


def test_ion_all_qubit_instructions():
    drv = IdealQDriver("ion", 2)
    drv.execute(trapped_ion.AllQubitsRotXInstruction(imm0=Immediate(1), imm1=Immediate(0)), (0, 1))
    assert np.allclose(drv.qubit_state((0, 1)), np.diag([0, 0, 0, 1]))
    drv.execute(trapped_ion.AllQubitsInitInstruction(), (0, 1))
    drv.execute(trapped_ion.BichromaticInstruction(imm0=Immediate(1), imm1=Immediate(1)), (0, 1))
    rho = drv.qubit_state((0, 1))  # MS(pi/2)|00> = (|00> - i|11>)/sqrt2
    assert np.isclose(rho[0, 0], 0.5) and np.isclose(rho[3, 3], 0.5) and np.isclose(abs(rho[0, 3]), 0.5)


def test_durations_advance_the_passed_clock():
    clock = VirtualClock(1000)
    d = IdealDurations(init_ns=7, single_ns=3, two_qubit_ns=11, measure_ns=13)
    drv = IdealQDriver("a", 2, clock, durations=d)
    drv.execute(core.InitInstruction(reg=Q[0]), (0,))
    drv.execute(vanilla.GateHInstruction(reg=Q[0]), (0,))
    drv.execute(vanilla.CnotInstruction(reg0=Q[0], reg1=Q[1]), (0, 1))
    drv.execute(core.MeasInstruction(reg0=Q[0], reg1=M0), (0,))
    assert clock.now_ns() == 1000 + 7 + 3 + 11 + 13


def test_unknown_instruction_and_qubit_are_named():
    drv = IdealQDriver("a", 1)
    with pytest.raises(UnsupportedNetQASMError, match="'set'"):
        drv.execute(core.SetInstruction(reg=Q[0], imm=Immediate(1)), (0,))
    with pytest.raises(UnsupportedNetQASMError, match="physical qubit 3"):
        drv.execute(vanilla.GateXInstruction(reg=Q[0]), (3,))


def _pair(fidelity=1.0, seed=1, mode_b=EntangleMode.KEEP):
    link = IdealLink(NetworkQuantumState(np.random.default_rng(seed)), fidelity=fidelity)
    ca, cb = VirtualClock(0), VirtualClock(5_000)
    a, b = IdealQDriver("a", 1, ca, link), IdealQDriver("b", 1, cb, link)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("b", b.entangle(0, mode_b, "a")))
    t.start()
    out["a"] = a.entangle(0, EntangleMode.KEEP, "b")
    t.join(5)
    return a, b, out, ca, cb


def test_link_gives_bell_pair_and_aligns_clocks():
    a, b, out, ca, cb = _pair()
    assert out["a"].kind is ResponseKind.ENT_SUCCESS and out["b"].kind is ResponseKind.ENT_SUCCESS
    assert ca.now_ns() == cb.now_ns() == 5_000 + IdealDurations().entangle_attempt_ns
    rho = a.state.state((("a", 0), ("b", 0)))
    assert np.allclose(rho, werner_state(1.0))


def test_werner_fidelity():
    a, _, _, _, _ = _pair(fidelity=0.8)
    rho = a.state.state((("a", 0), ("b", 0)))
    phi = np.array([1, 0, 0, 1]) / math.sqrt(2)
    assert np.isclose(np.real(phi @ rho @ phi), 0.8)
    assert np.allclose(a.qubit_state((0,)), np.eye(2) / 2)


def test_measure_mode_outcomes_are_correlated_and_local_state_collapses():
    agree = 0
    for seed in range(30):
        a, b, out, _, _ = _pair(seed=seed, mode_b=EntangleMode.MEASURE)
        m = a.execute(core.MeasInstruction(reg0=Q[0], reg1=M0), (0,))
        agree += m == out["b"].outcome
    assert agree == 30


def test_link_rejects_unknown_peer():
    link = IdealLink()
    a = IdealQDriver("a", 1, link=link)
    with pytest.raises(LinkError, match="unknown peer 'zz'"):
        a.entangle(0, EntangleMode.KEEP, "zz")
