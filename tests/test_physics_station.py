"""Validations through the whole simulated NV station: ADwin QCoDeS driver -> simulated
ADwin -> DIO -> simulated HDAWG (real table entries, DD idle) -> NV physics."""

import dataclasses
import math
import threading

import numpy as np
import pytest

from qnodeos_hw.experiments.fits import fit_dd_decay, fit_rabi
from qnodeos_hw.experiments.scans import Mailbox, dd_decay_scan
from qnodeos_hw.qdevice import Opcode, ResponseKind
from qnodeos_hw.qdevice.message import response_of
from qnodeos_hw.simulators.physics import load_noise_models, nv_node, nv_pair

nv_lab = pytest.importorskip("qnodeos_hw.simulators.nv_lab")
hdawg_program = pytest.importorskip("qnodeos_hw.sequences.hdawg_program")
table_mod = pytest.importorskip("qnodeos_hw.waveforms.table")
cal_mod = pytest.importorskip("qnodeos_hw.waveforms.calibration")

MODELS = load_noise_models()


@pytest.fixture(scope="module")
def program():
    cal = cal_mod.load_calibration()
    table = table_mod.build_table(cal)
    return cal, table, hdawg_program.build_hdawg_program(table, cal)


def test_rabi_amplitude_sweep_through_the_station_recovers_the_pi_amplitude(program):
    """Sweep the HDAWG output amplitude (QCoDeS parameter) under two x180 table entries:
    P(1) = sin^2(pi a / a_pi); the calibrated pi amplitude is output amplitude 1.0."""
    cal, table, prog = program
    node = nv_lab.open_nv_node(physics=nv_node("rabi", seed=5), name="rabi", program=prog)
    try:
        tx = Mailbox(node.adwin)
        x180 = table.by_rotation("x", 1, 0).index
        amps = np.linspace(0.05, 1.0, 20)
        ones = []
        for a in amps:
            node.hdawg.ch1.amplitude(float(a))
            node.hdawg.ch2.amplitude(float(a))
            k = 0
            for _ in range(200):
                assert tx(Opcode.INIT).kind is ResponseKind.SUCCESS
                tx(Opcode.PLAY, x180)
                tx(Opcode.PLAY, x180)
                k += tx(Opcode.MEASURE).argument
            ones.append(k)
    finally:
        node.close()
    a_pi = fit_rabi(amps, ones, 200, pulses=2).params["a_pi"]  # P(1) = o + c sin^2(pi a / a_pi)
    assert abs(a_pi - 1.0) < 0.02
    pi_amp = cal.pulses[cal.gate_shape].pi_amplitude * a_pi
    assert pi_amp == pytest.approx(cal.pulses[cal.gate_shape].pi_amplitude, rel=0.02)


def test_dd_coherence_scan_through_the_station_recovers_t_coh(program):
    """x90, DD idle for tau (the AWG's idle loop while the controller waits), then x-90 or
    x+90, measure. The difference of the two P(0) is contrast * exp(-tau/T_coh): the
    readout offset cancels (differential readout), so only (contrast, T) are fitted."""
    cal, table, prog = program
    node = nv_lab.open_nv_node(physics=nv_node("dd", seed=6), name="dd", program=prog)
    shots = 1000
    taus = np.linspace(0, 39e6, 7)  # ns, 0 .. 3 T_coh
    try:
        back, fwd = dd_decay_scan(Mailbox(node.adwin), node.lab.clock.advance,
                                  table.by_rotation("x", 1, 1).index,
                                  table.by_rotation("x", 3, 1).index,  # 3 pi/2 = -pi/2
                                  taus.astype(int), shots)
    finally:
        node.close()
    fit = fit_dd_decay(taus * 1e-9, back, fwd, shots)
    assert abs(fit.params["t_coh_s"] / MODELS.nv.t_coh_s - 1) < 0.10


def test_two_stations_in_two_threads_share_each_herald(program):
    _, _, prog = program
    models = dataclasses.replace(MODELS, heralding=MODELS.heralding.with_overrides(
        {"p_success": 0.3, "partner_timeout_s": 20.0}))
    pair = nv_pair(("alice", "bob"), seed=8, models=models)
    nodes = {n.name: nv_lab.open_nv_node(physics=n, name=n.name, program=prog)
             for n in (pair.a, pair.b)}
    out = {}

    def run(name, attempts=1000):
        tx = Mailbox(nodes[name].adwin)
        out[name] = [response_of(tx(Opcode.ENT_MEASURE)) for _ in range(attempts)]

    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for n in nodes.values():
            n.close()
    a, b = out["alice"], out["bob"]
    assert [(r.kind, r.bell_index) for r in a] == [(r.kind, r.bell_index) for r in b]
    ok = [(x, y) for x, y in zip(a, b) if x.kind is ResponseKind.ENT_SUCCESS]
    assert abs(len(ok) / len(a) - 0.3) < 3 * math.sqrt(0.21 / len(a))
    assert {x.bell_index for x, _ in ok} == {1, 2}
    # Psi+/- : Z outcomes anti-correlated but for the |00> (alpha) part and readout errors
    f0, f1, alpha = MODELS.nv.readout_f0, MODELS.nv.readout_f1, MODELS.heralding.bright_population
    p = (1 - alpha) * (f0 * f1 + (1 - f0) * (1 - f1)) + alpha * 2 * f0 * (1 - f0)
    differ = sum(x.outcome != y.outcome for x, y in ok) / len(ok)
    assert abs(differ - p) < 3 * math.sqrt(p * (1 - p) / len(ok))
