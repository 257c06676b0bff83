"""NV QDriver: mapping derived from the waveform table (checked by multiplying the
entries' unitaries), named errors, and end to end on the simulated NV station
(ADwin sim -> HDAWG sim -> physics), also against the ion node on the same circuits."""

import math

import numpy as np
import pytest
from netqasm.lang.instr import core, nv, vanilla
from netqasm.lang.instr.flavour import NVFlavour, TrappedIonFlavour
from netqasm.lang.operand import Immediate, Register, RegisterName
from netqasm.lang.parsing import deserialize
from netqasm.lang.parsing.text import parse_text_subroutine
from qcodes.instrument import Instrument

from qnodeos_hw.instruments.ion_bridge import IonFPGABridge
from qnodeos_hw.qdevice import Opcode, VirtualClock, decode, nv_spec
from qnodeos_hw.qdrivers.base import UnsupportedNetQASMError
from qnodeos_hw.qdrivers.ion import IonQDriver
from qnodeos_hw.qdrivers.nv import NVMapping, NVQDriver, entry_unitary
from qnodeos_hw.qdrivers.unitaries import equal_up_to_phase
from qnodeos_hw.simulators.nv_lab import open_nv_node

Q0 = Register(RegisterName.Q, 0)
Q1 = Register(RegisterName.Q, 1)
SHOTS = 2000


@pytest.fixture(scope="module")
def table_and_program(table, program):
    return table, program


@pytest.fixture
def node(table_and_program):
    table, prog = table_and_program
    st = open_nv_node(clock=VirtualClock(), seed=4, name="nvq", program=prog)
    yield st, NVQDriver(st.adwin, table)
    Instrument.close_all()


class _NoDevice:
    def transact(self, word):
        raise AssertionError("translation must not touch the device")

    def now_ns(self):
        return 0


@pytest.fixture(scope="module")
def offline(table_and_program):
    return NVQDriver(_NoDevice(), table_and_program[0])


def played_unitary(driver, words):
    u = np.eye(2, dtype=complex)
    for w in words:
        msg = decode(w.to_bytes(4, "big"))
        assert msg.opcode is Opcode.PLAY
        e = driver.mapping.table[msg.argument]
        if e.angle_rad is not None:
            u = entry_unitary(e) @ u
        else:
            assert e.name == "none"
    return u


@pytest.mark.parametrize("cls", [nv.RotXInstruction, nv.RotYInstruction, nv.RotZInstruction])
@pytest.mark.parametrize("d", [0, 1, 2, 3, 4, 5])
def test_every_grid_angle_multiplies_out(offline, cls, d):
    for n in range(-(2 << d), 2 << d):
        instr = cls(reg=Q0, imm0=Immediate(n), imm1=Immediate(d))
        words = offline.translate(instr, (0,))
        assert equal_up_to_phase(played_unitary(offline, words),
                                 np.asarray(instr.to_matrix(), complex)), (cls.mnemonic, n, d)
        assert len(words) <= 3


def test_entries_on_the_grid_are_single_and_z_beyond_uses_three(offline):
    one = offline.translate(nv.RotXInstruction(reg=Q0, imm0=Immediate(5), imm1=Immediate(5)), (0,))
    assert len(one) == 1
    z = offline.translate(nv.RotZInstruction(reg=Q0, imm0=Immediate(1), imm1=Immediate(5)), (0,))
    assert len(z) == 3   # x(-pi/2) y(pi/32) x(pi/2)


@pytest.mark.parametrize("cls", [vanilla.GateHInstruction, vanilla.GateKInstruction,
                                 vanilla.GateXInstruction, vanilla.GateSInstruction,
                                 vanilla.GateTInstruction, vanilla.GateZInstruction])
def test_fixed_gates_use_single_entries_when_the_table_has_them(offline, cls):
    words = offline.translate(cls(reg=Q0), (0,))
    assert equal_up_to_phase(played_unitary(offline, words), np.asarray(cls().to_matrix(), complex))
    assert len(words) == 1


def test_sdk_hadamard_pair_is_correct(offline):
    # netqasm's NV transpiler writes H as rot_y 8 4 ; rot_x 16 4
    u = np.eye(2, dtype=complex)
    for ins in (nv.RotYInstruction(reg=Q0, imm0=Immediate(8), imm1=Immediate(4)),
                nv.RotXInstruction(reg=Q0, imm0=Immediate(16), imm1=Immediate(4))):
        u = played_unitary(offline, offline.translate(ins, (0,))) @ u
    assert equal_up_to_phase(u, np.array([[1, 1], [1, -1]]) / math.sqrt(2))


def test_mapping_is_derived_from_the_table(table_and_program):
    m = NVMapping(table_and_program[0])
    assert m.axis["x"].reachable == 64 and m.axis["y"].reachable == 64 and m.axis["z"].reachable == 32
    assert len(m.single) >= 64 + 63 + 31 - 2  # grid + cliffords (some coincide up to phase)


@pytest.mark.parametrize("instr,qubits,needle", [
    (nv.RotXInstruction(reg=Q0, imm0=Immediate(1), imm1=Immediate(6)), (0,), r"rot_x: .*0\.0490873"),
    (nv.RotYInstruction(reg=Q0, imm0=Immediate(3), imm1=Immediate(9)), (0,), "rot_y: no composition"),
    (nv.ControlledRotXInstruction(reg0=Q0, reg1=Q1, imm0=Immediate(1), imm1=Immediate(1)), (0, 1),
     "crot_x: qubit 1 does not exist on the 1-qubit NV node"),
    (core.InitInstruction(reg=Q0), (2,), "init: qubit 2 does not exist"),
    (core.CreateEPRInstruction(reg0=Q0, reg1=Q0, reg2=Q0, reg3=Q0, reg4=Q0), (0,), "create_epr"),
])
def test_unplayable_instructions_raise_named_errors(offline, instr, qubits, needle):
    with pytest.raises(UnsupportedNetQASMError, match=needle):
        offline.translate(instr, qubits)


def test_two_qubit_gates_on_a_two_qubit_node(table_and_program):
    # a table without carbon gates cannot play a conditional rotation (named error);
    # with carbons see tests/test_carbons_stack.py
    d = NVQDriver(_NoDevice(), table_and_program[0], spec=nv_spec(2))
    with pytest.raises(UnsupportedNetQASMError, match="no carbon gates"):
        d.translate(nv.ControlledRotXInstruction(reg0=Q0, reg1=Q1, imm0=Immediate(1),
                                                 imm1=Immediate(1)), (0, 1))


CIRCUITS = {
    # NV-flavour body, trapped-ion-flavour body (None: not expressible), ideal P(1)
    "x90": ("rot_x Q0 1 1", "rot_x_all 1 1", 0.5),
    "x180": ("rot_x Q0 1 0", "rot_x_all 1 0", 1.0),
    "x90_z45_y90": ("rot_x Q0 1 1\nrot_z Q0 1 2\nrot_y Q0 1 1", None, (1 + math.sqrt(0.5)) / 2),
    "y90_z90_x90": ("rot_y Q0 1 1\nrot_z Q0 1 1\nrot_x Q0 1 1", "rot_y_all 1 1\nrot_z Q0 1 1\nrot_x_all 1 1", 0.0),
    "x45": ("rot_x Q0 1 2", None, (1 - math.sqrt(0.5)) / 2),
}


def _subroutine(body, flavour):
    init = "init Q0" if isinstance(flavour, NVFlavour) else "init_all"
    return parse_text_subroutine(f"# NETQASM 1.0\n# APPID 1\nset Q0 0\nqalloc Q0\n{init}\n{body}\n"
                                 "meas Q0 M0\nqfree Q0\nret_reg M0\n", flavour=flavour)


def _ones(driver, sub, run):
    return sum(run(driver, sub)["M0"] for _ in range(SHOTS))


def _within(ones, p1, f0=1.0, f1=1.0, decay=1.0):
    """Binomial 3 sigma around the ideal circuit's P(1) seen through the node's
    calibrated readout fidelities (f0 = P(0|0), f1 = P(1|1)). ``decay`` = the memory's
    depolarising factor exp(-t/T_coh) over the circuit: the true P(1) may sit anywhere
    between the ideal and its depolarised value (towards 1/2), not beyond. Deterministic
    circuits get a 2 % allowance for initialisation error."""
    lo_p, hi_p = sorted((p1, 0.5 + (p1 - 0.5) * decay))
    ok = False
    for p_true in (lo_p, hi_p):
        p = p_true * f1 + (1 - p_true) * (1 - f0)
        sigma = math.sqrt(SHOTS * p * (1 - p))
        ok |= abs(ones - SHOTS * p) <= 3 * sigma + 0.02 * SHOTS * (p1 in (0.0, 1.0))
    obs = ones / SHOTS
    lo = lo_p * f1 + (1 - lo_p) * (1 - f0)
    hi = hi_p * f1 + (1 - hi_p) * (1 - f0)
    return ok or lo <= obs <= hi


def _nv_model():
    from qnodeos_hw.simulators.physics import load_noise_models
    return load_noise_models().nv_for("nvq")


@pytest.mark.parametrize("name", list(CIRCUITS))
def test_nv_end_to_end_statistics(node, run_straightline, name):
    body, _, p1 = CIRCUITS[name]
    sub = _subroutine(body, NVFlavour())
    sub = deserialize(bytes(sub), flavour=NVFlavour())     # through the binary encoding
    driver = node[1]
    t0 = driver.now_ns()
    ones = _ones(driver, sub, run_straightline)
    shot_s = (driver.now_ns() - t0) / SHOTS * 1e-9          # upper bound of the memory time
    m = _nv_model()
    decay = math.exp(-shot_s / m.t_coh_s)
    assert decay > 0.9                                        # the circuit is short against T_coh
    assert _within(ones, p1, m.readout_f0, m.readout_f1, decay), (name, ones, p1, decay)


@pytest.mark.parametrize("name", [k for k, v in CIRCUITS.items() if v[1] is not None])
def test_same_circuit_on_ion_matches(run_straightline, name):
    _, body, p1 = CIRCUITS[name]
    br = IonFPGABridge("ion_same", "sim://ion?backend=physics&seed=6",
                       protocol_handler_packages=["qnodeos_hw.simulators.serial_sim"])
    try:
        ones = _ones(IonQDriver(br, VirtualClock()), _subroutine(body, TrappedIonFlavour()),
                     run_straightline)
    finally:
        Instrument.close_all()
    assert _within(ones, p1), (name, ones, p1)


def test_ion_rejects_what_only_nv_can_play(run_straightline):
    br = IonFPGABridge("ion_rej", "sim://ion?backend=physics&seed=6",
                       protocol_handler_packages=["qnodeos_hw.simulators.serial_sim"])
    try:
        d = IonQDriver(br, VirtualClock())
        with pytest.raises(UnsupportedNetQASMError, match="rot_z"):
            run_straightline(d, _subroutine("rot_z Q0 1 2", TrappedIonFlavour()))
    finally:
        Instrument.close_all()


def test_outcomes_come_back_through_the_controller(node):
    st, d = node
    t0 = d.now_ns()
    d.execute(core.InitInstruction(reg=Q0), (0,))
    d.execute(nv.RotXInstruction(reg=Q0, imm0=Immediate(1), imm1=Immediate(0)), (0,))
    out = d.execute(core.MeasInstruction(reg0=Q0, reg1=Register(RegisterName.M, 0)), (0,))
    assert out in (0, 1)
    assert d.now_ns() > t0 and d.instructions_sent == 3
