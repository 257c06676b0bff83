"""Carbon initialisation: the effective model (the controller's INIT on a carbon resets it
to F|0><0| + (1-F)|1><1| in ``carbon_init_ns``, the electron untouched) against the
sequence the AWG would play (electron INIT, ``mov`` carbon -> electron = two CNOTs of
netqasm's NV circuits, DD trains and MW gates from their samples, electron INIT again).

Measured (seed 3, carbon C1): the sequence leaves the carbon in |0> with 0.83-0.90 (model:
init_fidelity 0.98), takes ~3.0 ms (model: carbon_init_ns 0.5 ms) and resets the electron
(model: untouched). The model is what runs; this test bounds how far it is from the
played sequence (README, NV nodes: carbon initialisation)."""

from __future__ import annotations

import numpy as np
from netqasm.lang.encoding import RegisterName
from netqasm.lang.instr import core, nv
from netqasm.lang.operand import Register

from qnodeos_hw.nodes import simulated_nv_network
from qnodeos_hw.simulators.physics import load_noise_models

Q0, Q1 = Register(RegisterName.Q, 0), Register(RegisterName.Q, 1)
INIT = core.InitInstruction(reg=Q0)
ROT_X = nv.RotXInstruction(reg=Q0, imm0=1, imm1=0)   # pi
ROT_Y = nv.RotYInstruction(reg=Q0, imm0=1, imm1=1)   # pi/2
MOV = nv.MovInstruction(reg0=Q0, reg1=Q1)


def _carbon_after(sequence: str, prepare) -> tuple[float, int, np.ndarray]:
    nodes = simulated_nv_network(("a", "b"), num_qubits=2, seed=3)
    try:
        d = nodes["a"].qdriver
        d.execute(INIT, (1,))
        for instr in prepare:
            d.execute(instr, (1,))
        d.execute(INIT, (0,))
        d.execute(ROT_Y, (0,))  # the electron holds |+> (the effective model keeps it)
        t0 = d.now_ns()
        if sequence == "effective":
            d.execute(INIT, (1,))
        else:
            d.execute(INIT, (0,))
            d.execute(MOV, (1, 0))  # carbon -> electron, carbon left in |0>
            d.execute(INIT, (0,))
        dt = d.now_ns() - t0
        rho_c = d.qubit_state((1,))
        rho_e = d.qubit_state((0,))
        return float(np.real(rho_c[0, 0])), dt, rho_e
    finally:
        for n in nodes.values():
            n.close()


def test_the_effective_carbon_init_matches_the_played_sequence():
    f_model = load_noise_models().nv.carbons[0].init_fidelity
    for prepare in ([], [ROT_X], [ROT_Y]):  # |0>, |1>, |+> before the reset
        f_eff, t_eff, rho_e_eff = _carbon_after("effective", prepare)
        f_seq, t_seq, rho_e_seq = _carbon_after("sequence", prepare)
        assert abs(f_eff - f_model) < 0.02, (prepare, f_eff)
        # the played sequence resets the carbon less well (its DD-train and MW gate errors:
        # measured 0.83-0.90 against the model's 0.98): the model is optimistic by < 0.17
        assert 0.8 < f_seq < f_eff and f_eff - f_seq < 0.17, (prepare, f_seq, f_eff)
        # the model keeps the electron (netqasm's NV SDK inits a carbon while the electron
        # holds a pair half); the played sequence resets it: the documented difference
        assert abs(np.real(rho_e_eff[0, 1])) > 0.3 and abs(rho_e_seq[0, 1]) < 0.05
        # duration: the sequence (two INITs with CR checks, two CNOTs of DD trains) takes
        # ~3.0 ms, the model's carbon_init_ns 0.5 ms: optimistic by a factor < 8
        assert t_eff == load_noise_models().nv.carbon_init_ns
        assert t_eff < t_seq < 8 * t_eff, (t_seq, t_eff)
