"""Every instruction reaches the qubit it addresses, on every platform (ideal, NV with
carbons, trapped ion): the addressed qubit changes as the instruction says, the others
do not. Before the fix, the simulated ADwin dropped PLAY's qubit field and the HDAWG drove
qubit 0 only: rot_x(pi) on physical qubit 1 flipped the electron."""

from __future__ import annotations

import math

import numpy as np
import pytest
from netqasm.lang.instr import core, nv, vanilla
from netqasm.lang.operand import Immediate, Register, RegisterName

from qnodeos_hw.nodes import simulated_ion_node, simulated_nv_network
from qnodeos_hw.qdevice.message import InstructionMessage, Opcode, encode
from qnodeos_hw.qdrivers.base import UnsupportedNetQASMError
from qnodeos_hw.qdrivers.ideal import IdealQDriver
from qnodeos_hw.simulators.adwin_errors import InstructionRejectedError

Q = [Register(RegisterName.Q, i) for i in range(3)]
M0 = Register(RegisterName.M, 0)


def rot(cls, q, n, d):
    return cls(reg=Q[0], imm0=Immediate(n), imm1=Immediate(d))


def z_of(driver, q):
    rho = driver.qubit_state((q,))
    return float((rho[0, 0] - rho[1, 1]).real)


def x_of(driver, q):
    rho = driver.qubit_state((q,))
    return float(2 * rho[1, 0].real)


@pytest.fixture(scope="module")
def nv_node():
    nodes = simulated_nv_network(("a", "b"), seed=3, num_qubits=3)
    yield nodes["a"]
    for n in nodes.values():
        n.close()


def _init_all(driver, n):
    for q in range(n):
        driver.execute(core.InitInstruction(reg=Q[0]), (q,))


T_COH_S = 0.013  # the electron's DD coherence time (noise model): carbon gates take ~1 ms


def _check_only(driver, n, target, before, after_expect, tol, t0_ns=None):
    """The target reached ``after_expect``; every other qubit kept its z, up to the
    electron's depolarising DD decay over the elapsed time (carbons: T2 ~ 0.5 s)."""
    dt = 0.0 if t0_ns is None else (driver.now_ns() - t0_ns) * 1e-9
    decay = math.exp(-dt / T_COH_S)
    for q in range(n):
        z = z_of(driver, q)
        if q == target:
            assert z == pytest.approx(after_expect, abs=tol), (q, z)
        else:
            lo = before[q] * (decay if q == 0 else 1.0) - tol
            assert lo <= z <= before[q] + tol, (q, z, before[q], "untouched qubit changed")


@pytest.mark.parametrize("target", [0, 1, 2])
def test_nv_rotations_reach_their_qubit(nv_node, target):
    d = nv_node.qdriver
    _init_all(d, 3)
    before = [z_of(d, q) for q in range(3)]
    assert all(z > 0.9 for z in before)
    t0 = d.now_ns()
    d.execute(rot(nv.RotXInstruction, target, 1, 0), (target,))  # rot_x(pi): flip
    _check_only(d, 3, target, before, -before[target], 0.08, t0)
    d.execute(rot(nv.RotYInstruction, target, 1, 0), (target,))  # rot_y(pi): back
    _check_only(d, 3, target, before, before[target], 0.12, t0)
    # rot_z(pi/2) after rot_y(pi/2): |+> -> |+i>: x goes from ~1 to ~0 on the target only
    _init_all(d, 3)
    t0 = d.now_ns()
    d.execute(rot(nv.RotYInstruction, target, 1, 1), (target,))
    assert x_of(d, target) > 0.9
    d.execute(rot(nv.RotZInstruction, target, 1, 1), (target,))
    assert abs(x_of(d, target)) < 0.1
    rho = d.qubit_state((target,))
    assert float(2 * rho[1, 0].imag) > 0.9  # +y
    decay = math.exp(-(d.now_ns() - t0) * 1e-9 / T_COH_S)
    for q in range(3):
        if q != target:
            assert z_of(d, q) >= before[q] * (decay if q == 0 else 1.0) - 0.03


@pytest.mark.parametrize("target", [0, 1, 2])
def test_nv_measure_and_init_reach_their_qubit(nv_node, target):
    d = nv_node.qdriver
    _init_all(d, 3)
    d.execute(rot(nv.RotXInstruction, target, 1, 0), (target,))  # target in |1>
    ones = d.execute(core.MeasInstruction(reg0=Q[0], reg1=M0), (target,))
    assert ones == 1  # the flipped qubit is read, not another one
    d.execute(core.InitInstruction(reg=Q[0]), (target,))
    assert z_of(d, target) > 0.9


def test_nv_conditional_rotation_acts_on_its_carbon(nv_node):
    d = nv_node.qdriver
    _init_all(d, 3)
    d.execute(rot(nv.RotXInstruction, 0, 1, 0), (0,))  # electron |1>: crot rotates by -pi/2
    before2 = z_of(d, 2)
    d.execute(nv.ControlledRotXInstruction(reg0=Q[0], reg1=Q[1], imm0=Immediate(1),
                                           imm1=Immediate(1)), (0, 1))
    rho = d.qubit_state((1,))
    # carbon 1 on the equator at +y (Rx(-pi/2)|0>; Rx(+pi/2) would give -y), up to the
    # train's gate error (finite pulses: fidelity ~0.99, tests/test_carbons_physics.py)
    assert abs(float((rho[0, 0] - rho[1, 1]).real)) < 0.2
    assert float(2 * rho[1, 0].imag) > 0.85
    assert z_of(d, 2) == pytest.approx(before2, abs=0.03)
    assert z_of(d, 0) == pytest.approx(-1.0, abs=0.05)


def test_nv_controller_refuses_a_play_for_another_qubit(nv_node):
    """The raw wire: an electron entry with the qubit field of carbon 1 is refused, not
    silently played on the electron (the bug)."""
    d = nv_node.qdriver
    e = d.mapping.table.by_name("rot_x_n1_d0").index
    word = encode(InstructionMessage(Opcode.PLAY, 1, e))
    with pytest.raises(InstructionRejectedError, match="acts on qubit 0"):
        d.transport.transact(word)
    d.transport.start_process()  # the refusal stopped the controller process


def test_nv_electron_only_measurement_and_entanglement_are_named(nv_node):
    d = nv_node.qdriver
    assert d.spec.comm_qubits == (0,) and d.spec.measurable_qubits == (0,)
    with pytest.raises(UnsupportedNetQASMError, match="carbon-carbon"):
        d.translate(vanilla.CnotInstruction(reg0=Q[1], reg1=Q[2]), (1, 2))


@pytest.mark.parametrize("target", [0, 1, 2])
def test_ideal_rotations_reach_their_qubit(target):
    d = IdealQDriver("ideal", 3)
    _init_all(d, 3)
    before = [z_of(d, q) for q in range(3)]
    d.execute(rot(vanilla.RotXInstruction, target, 1, 0), (target,))
    _check_only(d, 3, target, before, -1.0, 1e-9)
    d.execute(vanilla.GateHInstruction(reg=Q[0]), (target,))
    assert x_of(d, target) == pytest.approx(-1.0, abs=1e-9)
    assert d.execute(core.MeasInstruction(reg0=Q[0], reg1=M0), (target,)) in (0, 1)
    for q in range(3):
        if q != target:
            assert z_of(d, q) == pytest.approx(1.0, abs=1e-9)


def test_ion_instruction_reaches_its_qubit_and_refuses_others():
    node = simulated_ion_node(seed=2)
    try:
        d = node.qdriver
        d.execute(core.InitInstruction(reg=Q[0]), (0,))
        d.execute(rot(nv.RotXInstruction, 0, 1, 0), (0,))
        assert z_of(d, 0) < -0.9
        with pytest.raises(UnsupportedNetQASMError, match="qubit 1"):
            d.execute(rot(nv.RotXInstruction, 1, 1, 0), (1,))
    finally:
        node.close()
