"""The physics model driven by the real NV waveform table (qnodeos_hw.waveforms):
calibrated entries give the ideal rotations; a 5 % amplitude miscalibration gives the
5 % over-rotation."""

import dataclasses
import math

import numpy as np
import pytest
from scipy.linalg import expm

from qnodeos_hw.simulators.physics import NVNode, QuantumRegistry, load_noise_models

table_mod = pytest.importorskip("qnodeos_hw.waveforms.table")
cal_mod = pytest.importorskip("qnodeos_hw.waveforms.calibration")

PAULI = {"x": np.array([[0, 1], [1, 0]], dtype=complex), "y": np.array([[0, -1j], [1j, 0]]),
         "z": np.diag([1.0 + 0j, -1.0])}
MODELS = load_noise_models()


def _axis(name):
    """'x', 'y', 'z' or a Clifford axis like 'x+y', 'y-z' -> normalised Pauli combination."""
    for sign, op in (("+", 1), ("-", -1)):
        if sign in name:
            a, b = name.split(sign)
            return (PAULI[a] + op * PAULI[b]) / math.sqrt(2)
    return PAULI[name]


def _table(scale=1.0):
    cal = cal_mod.load_calibration()
    if scale != 1.0:
        pulses = {k: dataclasses.replace(v, pi_amplitude=v.pi_amplitude * scale)
                  for k, v in cal.pulses.items()}
        cal = dataclasses.replace(cal, pulses=pulses)
    return table_mod.build_table(cal)


def _node(**over):
    return NVNode("alice", MODELS.nv.with_overrides(over), np.random.default_rng(9),
                  QuantumRegistry())


def test_every_calibrated_rotation_entry_is_its_ideal_rotation():
    table = _table()
    node = _node()
    checked = 0
    for e in table.rotations():
        u = node.mw_unitary(e.index, e.samples_i, e.samples_q, e.sample_rate_hz)
        ideal = expm(-0.5j * e.angle_rad * _axis(e.axis))
        fid = abs(np.trace(ideal.conj().T @ u)) / 2
        assert fid > 0.9999, (e.name, fid)
        checked += 1
    assert checked == len(table.rotations()) > 100


def test_five_percent_amplitude_miscalibration_over_rotates_by_five_percent():
    node = _node(t2star_s=1.0, readout_f0=1.0, readout_f1=1.0, init_fidelity=1.0)
    bad = _table(1.05).by_rotation("x", 1, 0)
    u = node.mw_unitary(("bad", bad.index), bad.samples_i, bad.samples_q, bad.sample_rate_hz)
    assert np.allclose(u, expm(-0.5j * 1.05 * math.pi * PAULI["x"]), atol=2e-4)
    good = _table().by_rotation("x", 1, 0)
    shots, ones = {"good": 0, "bad": 0}, {"good": 0, "bad": 0}
    t = 0
    for label, e in (("good", good), ("bad", bad)):
        for _ in range(2000):
            t += 100_000
            node.initialize(0, t)
            for k in range(10):
                node.play_mw(0, (label, e.index), e.samples_i, e.samples_q, e.sample_rate_hz,
                             t + 1_000 * (k + 1))
            ones[label] += node.readout(0, t + 20_000)
            shots[label] += 1
    assert ones["good"] / shots["good"] < 0.01
    p = math.sin(10 * 1.05 * math.pi / 2) ** 2  # 0.5
    assert abs(ones["bad"] / shots["bad"] - p) < 3 * math.sqrt(p * (1 - p) / shots["bad"])
