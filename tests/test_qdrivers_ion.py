"""Ion QDriver: mapping derived from the TTL set, checked by multiplying the slots'
unitaries; end to end on the simulated ion station (serial sim + physics)."""

import math

import numpy as np
import pytest
from netqasm.lang.instr import core, trapped_ion, vanilla
from netqasm.lang.instr.flavour import TrappedIonFlavour, VanillaFlavour
from netqasm.lang.operand import Address, Immediate, Register, RegisterName
from netqasm.lang.parsing import deserialize
from netqasm.lang.parsing.text import parse_text_subroutine
from qcodes.instrument import Instrument

from qnodeos_hw.qdevice import Opcode, UnsupportedInstructionError, VirtualClock, decode
from qnodeos_hw.qdevice.instructions import EntangleMode
from qnodeos_hw.qdrivers.base import UnsupportedNetQASMError
from qnodeos_hw.qdrivers.ion import IonQDriver, ion_composer
from qnodeos_hw.qdrivers.unitaries import equal_up_to_phase, rotation_matrix
from qnodeos_hw.sequences.ion_ttl import ROTATIONS, IonInstruction
from qnodeos_hw.instruments.ion_bridge import IonFPGABridge

Q0 = Register(RegisterName.Q, 0)
SHOTS = 2000


@pytest.fixture
def driver():
    br = IonFPGABridge("ion_qd", "sim://ion?backend=physics&seed=11",
                       protocol_handler_packages=["qnodeos_hw.simulators.serial_sim"])
    yield IonQDriver(br, VirtualClock())
    Instrument.close_all()


def slots_unitary(words):
    u = np.eye(2, dtype=complex)
    for w in words:
        msg = decode(w.to_bytes(4, "big"))
        assert msg.opcode is Opcode.PLAY
        axis, angle = ROTATIONS[IonInstruction(msg.argument)]
        u = rotation_matrix(axis, angle) @ u
    return u


def test_composer_is_the_clifford_group_with_short_words():
    comp = ion_composer()
    assert comp.size == 24
    assert max(len(w) for w in comp._words.values()) <= 3


@pytest.mark.parametrize("cls", [vanilla.RotXInstruction, vanilla.RotYInstruction,
                                 vanilla.RotZInstruction, trapped_ion.RotZInstruction])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, -1])
def test_rotations_by_multiples_of_half_pi_multiply_out(driver, cls, n):
    instr = cls(reg=Q0, imm0=Immediate(n), imm1=Immediate(1))
    words = driver.translate(instr, (0,))
    assert equal_up_to_phase(slots_unitary(words), np.asarray(instr.to_matrix(), complex))
    assert len(words) <= 3


@pytest.mark.parametrize("cls", [vanilla.GateXInstruction, vanilla.GateYInstruction,
                                 vanilla.GateZInstruction, vanilla.GateHInstruction,
                                 vanilla.GateSInstruction, vanilla.GateKInstruction])
def test_clifford_gates_multiply_out(driver, cls):
    words = driver.translate(cls(reg=Q0), (0,))
    assert equal_up_to_phase(slots_unitary(words), np.asarray(cls().to_matrix(), complex))


def test_all_qubit_rotations_and_init_meas(driver):
    words = driver.translate(trapped_ion.AllQubitsRotYInstruction(imm0=Immediate(3), imm1=Immediate(1)), (0,))
    assert equal_up_to_phase(slots_unitary(words), rotation_matrix(__import__("qnodeos_hw.qdevice", fromlist=["Axis"]).Axis.Y, 3 * math.pi / 2))
    init = driver.translate(trapped_ion.AllQubitsInitInstruction(), (0,))
    assert [decode(w.to_bytes(4, "big")).argument for w in init] == [IonInstruction.INIT]
    meas = driver.translate(trapped_ion.AllQubitsMeasInstruction(reg=Register(RegisterName.M, 0),
                                                                  address=Address(0)), (0,))
    assert [decode(w.to_bytes(4, "big")).argument for w in meas] == [IonInstruction.MEASURE]


@pytest.mark.parametrize("instr,needle", [
    (vanilla.GateTInstruction(reg=Q0), "t: rotation"),
    (vanilla.RotXInstruction(reg=Q0, imm0=Immediate(1), imm1=Immediate(2)), "rot_x: rotation"),
    (trapped_ion.RotZInstruction(reg=Q0, imm0=Immediate(3), imm1=Immediate(3)), "rot_z: rotation"),
    (trapped_ion.BichromaticInstruction(imm0=Immediate(1), imm1=Immediate(1)), "bichromatic"),
    (vanilla.CnotInstruction(reg0=Q0, reg1=Register(RegisterName.Q, 1)), "cnot"),
    (core.QAllocInstruction(reg=Q0), "qalloc"),
])
def test_unplayable_instructions_raise_named_errors(driver, instr, needle):
    qubits = (0, 1) if isinstance(instr, vanilla.CnotInstruction) else (0,)
    with pytest.raises(UnsupportedNetQASMError, match=needle):
        driver.translate(instr, qubits)
    assert driver.instructions_sent == 0


def test_rotation_error_names_the_angle(driver):
    with pytest.raises(UnsupportedNetQASMError, match=r"0\.785398"):
        driver.translate(vanilla.RotXInstruction(reg=Q0, imm0=Immediate(1), imm1=Immediate(2)), (0,))
    with pytest.raises(UnsupportedNetQASMError, match="qubit 1 does not exist"):
        driver.translate(core.InitInstruction(reg=Q0), (1,))
    with pytest.raises(UnsupportedInstructionError, match="entanglement"):
        driver.entangle(0, EntangleMode.KEEP, "peer")


CIRCUITS = {
    # text, ideal P(outcome = 1)
    "x90": ("rot_x Q0 1 1", 0.5),
    "x180": ("rot_x Q0 2 1", 1.0),
    "h_s_h": ("h Q0\ns Q0\nh Q0", 0.5),
    "y90_z90_x90": ("rot_y Q0 1 1\nrot_z Q0 1 1\nrot_x Q0 1 1", 0.0),
    "identity": ("rot_z Q0 1 1", 0.0),
}


def _sub(body):
    return parse_text_subroutine(f"# NETQASM 1.0\n# APPID 0\nset Q0 0\nqalloc Q0\ninit Q0\n{body}\n"
                                 "meas Q0 M0\nqfree Q0\nret_reg M0\n", flavour=VanillaFlavour())


@pytest.mark.parametrize("name", list(CIRCUITS))
def test_end_to_end_statistics_from_text(driver, run_straightline, name):
    body, p1 = CIRCUITS[name]
    sub = _sub(body)
    ones = sum(run_straightline(driver, sub)["M0"] for _ in range(SHOTS))
    sigma = math.sqrt(SHOTS * max(p1 * (1 - p1), 0.02 * 0.98))   # floor: readout error
    assert abs(ones - SHOTS * p1) <= 3 * sigma + 0.03 * SHOTS * (p1 in (0.0, 1.0)), (ones, p1)


def test_end_to_end_from_binary_encoding(driver, run_straightline):
    text = ("# NETQASM 1.0\n# APPID 3\nset Q0 0\nqalloc Q0\ninit_all\nrot_x_all 1 1\n"
            "rot_z Q0 1 1\nrot_y_all 1 1\nmeas Q0 M0\nret_reg M0\n")
    sub = parse_text_subroutine(text, flavour=TrappedIonFlavour())
    raw = bytes(sub)
    back = deserialize(raw, flavour=TrappedIonFlavour())
    assert bytes(back) == raw
    from qnodeos_hw.qdevice import Axis
    u = (rotation_matrix(Axis.Y, math.pi / 2) @ rotation_matrix(Axis.Z, math.pi / 2)
         @ rotation_matrix(Axis.X, math.pi / 2))
    p1 = abs(u[1, 0]) ** 2
    assert p1 == pytest.approx(1.0)          # x -> -y -> +x -> -z
    ones = sum(run_straightline(driver, back)["M0"] for _ in range(SHOTS))
    assert ones >= 0.95 * SHOTS              # readout infidelity only
    assert driver.now_ns() > 0
