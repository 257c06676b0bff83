"""NetQASM -> physical instructions: every instruction of the NV, trapped-ion and
vanilla flavours is mapped or rejected by name; unitaries multiply out right."""

import math

import numpy as np
import pytest
from netqasm.lang.instr import core, nv, trapped_ion, vanilla
from netqasm.lang.instr.flavour import NVFlavour, TrappedIonFlavour, VanillaFlavour
from netqasm.lang.operand import Address, Immediate, Register, RegisterName

from qnodeos_hw.qdevice import Axis, Init, Measure, Rotation, TwoQubitGate, TwoQubitGateKind
from qnodeos_hw.qdrivers.base import UnsupportedNetQASMError
from qnodeos_hw.qdrivers.compose import AngleComposer, UnitaryComposer
from qnodeos_hw.qdrivers.netqasm_map import NOT_FOR_QDRIVER, physical_instructions
from qnodeos_hw.qdrivers.unitaries import (equal_up_to_phase, euler_zyz, rotation_matrix,
                                           sequence_matrix)

Q0 = Register(RegisterName.Q, 0)
Q1 = Register(RegisterName.Q, 1)
M0 = Register(RegisterName.M, 0)


def imm(v):
    return Immediate(v)


def make(cls):
    """An instance of a quantum instruction class with sensible operands."""
    if issubclass(cls, core.RotationInstruction):
        return cls(reg=Q0, imm0=imm(3), imm1=imm(2))
    if issubclass(cls, core.ControlledRotationInstruction):
        return cls(reg0=Q0, reg1=Q1, imm0=imm(1), imm1=imm(1))
    if issubclass(cls, trapped_ion.AllQubitsRotationInstruction):
        return cls(imm0=imm(1), imm1=imm(1))
    if cls is trapped_ion.BichromaticInstruction:
        return cls(imm0=imm(1), imm1=imm(1))
    if cls is trapped_ion.AllQubitsInitInstruction:
        return cls()
    if cls is trapped_ion.AllQubitsMeasInstruction:
        return cls(reg=M0, address=Address(0))
    if issubclass(cls, core.TwoQubitInstruction):
        return cls(reg0=Q0, reg1=Q1)
    if issubclass(cls, core.SingleQubitInstruction):
        return cls(reg=Q0)
    raise AssertionError(cls)


ALL_FLAVOUR_INSTRS = sorted({c for f in (NVFlavour(), TrappedIonFlavour(), VanillaFlavour())
                             for c in f.instrs}, key=lambda c: (c.__module__, c.__name__))


@pytest.mark.parametrize("cls", ALL_FLAVOUR_INSTRS, ids=lambda c: f"{c.__module__}.{c.mnemonic}")
def test_every_flavour_instruction_is_mapped_or_rejected_by_name(cls):
    instr = make(cls)
    try:
        phys = physical_instructions(instr, (0, 1))
    except UnsupportedNetQASMError as exc:
        assert cls.mnemonic in str(exc)
        assert cls is trapped_ion.BichromaticInstruction
        return
    assert phys and all(isinstance(p, (Init, Measure, Rotation, TwoQubitGate)) for p in phys)
    if hasattr(instr, "to_matrix") and all(isinstance(p, Rotation) for p in phys) \
            and not issubclass(cls, trapped_ion.AllQubitsRotationInstruction):
        assert equal_up_to_phase(sequence_matrix(phys), np.asarray(instr.to_matrix(), complex))


@pytest.mark.parametrize("cls", [core.QAllocInstruction, core.QFreeInstruction])
def test_qnpu_instructions_are_refused_by_name(cls):
    with pytest.raises(UnsupportedNetQASMError, match=cls.mnemonic):
        physical_instructions(cls(reg=Q0), (0,))
    assert issubclass(cls, NOT_FOR_QDRIVER)


def test_rotation_angles_and_register_operands():
    (r,) = physical_instructions(nv.RotYInstruction(reg=Q0, imm0=imm(8), imm1=imm(4)), (2,))
    assert r == Rotation(2, Axis.Y, math.pi / 2)
    with pytest.raises(UnsupportedNetQASMError, match="rot_x.*immediate"):
        physical_instructions(nv.RotXInstruction(reg=Q0, imm0=Register(RegisterName.R, 0),
                                                 imm1=imm(1)), (0,))


def test_vanilla_gates_match_their_matrices():
    for cls in (vanilla.GateXInstruction, vanilla.GateYInstruction, vanilla.GateZInstruction,
                vanilla.GateHInstruction, vanilla.GateSInstruction, vanilla.GateKInstruction,
                vanilla.GateTInstruction):
        phys = physical_instructions(cls(reg=Q0), (0,))
        assert equal_up_to_phase(sequence_matrix(phys), np.asarray(cls().to_matrix(), complex)), cls
        assert len(phys) <= 3


@pytest.mark.parametrize("cls,axes", [(core.MeasBasisInstruction, "XYX"),
                                      (core.MeasBasisYZYInstruction, "YZY"),
                                      (core.MeasBasisZXZInstruction, "ZXZ")])
def test_meas_basis_follows_netqasm_basis_tables(cls, axes):
    from netqasm.sdk.build_epr import _BASIS_TO_ROTATION_MAPPING as table
    from netqasm.sdk.qubit import QubitMeasureAxes
    plus = {"X": [1, 1], "Y": [1, 1j], "Z": [1, 0], "MX": [1, -1], "MY": [1, -1j], "MZ": [0, 1]}
    for basis, (a, b, c) in table[QubitMeasureAxes[axes]].items():
        instr = cls(reg0=Q0, reg1=M0, imm0=imm(a), imm1=imm(b), imm2=imm(c), imm3=imm(4))
        phys = physical_instructions(instr, (0,))
        assert phys[-1] == Measure(0)
        state = np.asarray(plus[basis.name], complex)
        state /= np.linalg.norm(state)
        out = sequence_matrix(phys[:-1]) @ state
        assert abs(out[0]) ** 2 == pytest.approx(1.0), basis   # eigenstate -> outcome 0


def test_two_qubit_mappings():
    (g,) = physical_instructions(nv.ControlledRotXInstruction(reg0=Q0, reg1=Q1, imm0=imm(3),
                                                              imm1=imm(1)), (0, 2))
    assert g == TwoQubitGate(0, 2, TwoQubitGateKind.CROT_X)
    with pytest.raises(UnsupportedNetQASMError, match="crot_y"):
        physical_instructions(nv.ControlledRotYInstruction(reg0=Q0, reg1=Q1, imm0=imm(1),
                                                           imm1=imm(2)), (0, 1))
    swp = physical_instructions(nv.SwpInstruction(reg0=Q0, reg1=Q1), (0, 1))
    assert [(g.control, g.target) for g in swp] == [(0, 1), (1, 0), (0, 1)]


def test_ion_all_qubit_instructions_touch_every_qubit():
    rots = physical_instructions(trapped_ion.AllQubitsRotYInstruction(imm0=imm(1), imm1=imm(1)), (0,))
    assert rots == (Rotation(0, Axis.Y, math.pi / 2),)
    assert physical_instructions(trapped_ion.AllQubitsInitInstruction(), (0, 1)) == (Init(0), Init(1))
    meas = trapped_ion.AllQubitsMeasInstruction(reg=M0, address=Address(0))
    assert physical_instructions(meas, (0, 1)) == (Measure(0), Measure(1))


def test_euler_zyz_reconstructs_random_unitaries():
    rng = np.random.default_rng(5)
    for _ in range(100):
        q, _r = np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))
        a, b, c = euler_zyz(q)
        v = rotation_matrix(Axis.Z, a) @ rotation_matrix(Axis.Y, b) @ rotation_matrix(Axis.Z, c)
        assert equal_up_to_phase(q, v)
        assert not equal_up_to_phase(q, v @ rotation_matrix(Axis.X, 0.1))


def test_angle_composer_finds_shortest_sums():
    comp = AngleComposer({"x90": math.pi / 2, "x180": math.pi, "x45": math.pi / 4}, 4)
    assert comp.compose(3 * math.pi / 4) in (("x90", "x45"), ("x45", "x90"))
    assert comp.compose(-math.pi / 2) == ("x90", "x180") or comp.compose(-math.pi / 2) == ("x180", "x90")
    assert comp.compose(0.0) == ()
    assert comp.compose(math.pi / 16) is None          # on the grid, not reachable
    assert comp.compose(0.1) is None                   # off the grid
    assert comp.reachable == 8
    with pytest.raises(ValueError):
        AngleComposer({"bad": 0.3}, 4)


def test_unitary_composer_builds_the_clifford_group_from_ion_rotations():
    ops = {"rx180": rotation_matrix(Axis.X, math.pi), "ry180": rotation_matrix(Axis.Y, math.pi),
           "rx90": rotation_matrix(Axis.X, math.pi / 2), "ry90": rotation_matrix(Axis.Y, math.pi / 2),
           "rxm90": rotation_matrix(Axis.X, -math.pi / 2)}
    comp = UnitaryComposer(ops)
    assert comp.size == 24
    for target in (rotation_matrix(Axis.Z, math.pi / 2), rotation_matrix(Axis.Y, -math.pi / 2),
                   np.array([[1, 1], [1, -1]]) / math.sqrt(2)):
        word = comp.compose(target)
        u = np.eye(2, dtype=complex)
        for k in word:
            u = ops[k] @ u
        assert equal_up_to_phase(u, target)
    assert comp.compose(rotation_matrix(Axis.Z, math.pi / 4)) is None   # T is not Clifford
