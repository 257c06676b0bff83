"""Subsystem registry and pulse unitaries against textbook references."""

import math

import numpy as np
import pytest
from scipy.linalg import expm

from qnodeos_hw.simulators.physics import QuantumRegistry, QubitAddressError, WaveformError
from qnodeos_hw.simulators.physics.pulses import bloch_rotation, rotation_unitary, waveform_unitary

X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0 + 0j, -1.0])
H = (X + Z) / math.sqrt(2)
CNOT = np.eye(4)[[0, 1, 3, 2]].astype(complex)


def _three_qubits():
    reg = QuantumRegistry()
    keys = [("a", 0), ("b", 0), ("c", 0)]
    for k in keys:
        reg.add_qubit(k)
        reg.reset(k, (0.0, 0.0, 1.0))
    return reg, keys


def test_waveform_unitary_matches_time_ordered_exponentials():
    rng = np.random.default_rng(7)
    wi, wq = rng.normal(scale=0.2, size=300), rng.normal(scale=0.2, size=300)
    wi[100:180] = 0.3  # a run of equal samples (run-length path)
    wq[100:180] = -0.1
    sr, f, det = 2.4e9, 25e6, 4e6
    ref = np.eye(2)
    for i, q in zip(wi, wq):
        h = math.pi * f * (i * X + q * Y) + math.pi * det * Z
        ref = expm(-1j * h / sr) @ ref
    assert np.allclose(waveform_unitary(wi, wq, sr, f, det), ref, atol=1e-12)


def test_square_pulse_area_gives_the_rotation_angle():
    sr, f = 2.4e9, 25e6
    n = 240  # 100 ns
    amp = 1 / (2 * f * 100e-9)  # pi pulse
    u = waveform_unitary(np.full(n, amp / 2), np.zeros(n), sr, f)
    assert np.allclose(u, expm(-1j * math.pi / 4 * X))
    u = waveform_unitary(np.zeros(n), np.full(n, amp), sr, f)
    assert np.allclose(u, expm(-1j * math.pi / 2 * Y))


def test_waveform_errors_are_typed():
    with pytest.raises(WaveformError, match="length"):
        waveform_unitary(np.zeros(32), np.zeros(16), 2.4e9, 25e6)
    with pytest.raises(WaveformError, match="sample rate"):
        waveform_unitary(np.zeros(32), np.zeros(32), 0.0, 25e6)


def test_bell_pair_split_by_measurement():
    reg, (a, b, _) = _three_qubits()
    reg.apply_unitary([a], H)
    reg.apply_unitary([a, b], CNOT)
    phi = np.array([1, 0, 0, 1]) / math.sqrt(2)
    assert np.allclose(reg.reduced_density_matrix([a, b]), np.outer(phi, phi))
    assert reg.partners(a) == [a, b]
    assert reg.measure(a, 0.9) == 1  # P(0) = 1/2 and u = 0.9 -> 1
    assert reg.partners(a) == [a] and reg.partners(b) == [b]
    assert np.allclose(reg.reduced_density_matrix([b]), np.diag([0, 1]))


def test_single_qubit_maps_inside_joint_state_equal_textbook_ops():
    reg, (a, b, c) = _three_qubits()
    reg.apply_unitary([b], H)
    reg.apply_unitary([b, c], CNOT)
    reg.apply_unitary([a], expm(-0.4j * X))
    reg.apply_unitary([a, c], CNOT)  # three-qubit joint state
    rho = reg.reduced_density_matrix([a, b, c])
    u = rotation_unitary(0.7, 0.3)
    reg.apply_affine(b, bloch_rotation(u))
    big = np.kron(np.eye(2), np.kron(u, np.eye(2)))
    assert np.allclose(reg.reduced_density_matrix([a, b, c]), big @ rho @ big.conj().T)
    rho = reg.reduced_density_matrix([a, b, c])
    reg.apply_unitary_1q(a, u, bloch_rotation(u))
    big = np.kron(u, np.eye(4))
    assert np.allclose(reg.reduced_density_matrix([a, b, c]), big @ rho @ big.conj().T)
    # depolarising on c: rho -> p rho + (1-p) Tr_c(rho) x I/2
    rho = reg.reduced_density_matrix([a, b, c])
    reg.decohere(c, 0.3, 0.3, 0.0)
    tr_c = np.einsum("ijkj->ik", rho.reshape(4, 2, 4, 2))
    assert np.allclose(reg.reduced_density_matrix([a, b, c]),
                       0.3 * rho + 0.7 * np.kron(tr_c, np.eye(2) / 2))


def test_reduced_density_matrix_orders_and_traces():
    reg, (a, b, c) = _three_qubits()
    reg.apply_unitary([a], X)  # |1 0 0>
    reg.apply_unitary([b], H)
    reg.apply_unitary([b, c], CNOT)
    rho_ca = reg.reduced_density_matrix([c, a])
    assert np.allclose(rho_ca, np.kron(np.eye(2) / 2, np.diag([0, 1])))
    with pytest.raises(QubitAddressError):
        reg.reduced_density_matrix([a, a])
    with pytest.raises(QubitAddressError):
        reg.reduced_density_matrix([("nobody", 0)])


def test_measurement_statistics_follow_born_rule_in_joint_state():
    reg, (a, b, _) = _three_qubits()
    rng = np.random.default_rng(3)
    n, agree, ones = 4000, 0, 0
    for _ in range(n):
        reg.reset(a, (0.0, 0.0, 1.0))
        reg.reset(b, (0.0, 0.0, 1.0))
        reg.apply_unitary([a], expm(-1j * 0.6 * Y))  # P(a=1) = sin^2(0.6)
        reg.apply_unitary([a, b], CNOT)
        mb = reg.measure(b, rng.random())
        ma = reg.measure(a, rng.random())
        agree += ma == mb
        ones += mb
    assert agree == n  # perfectly correlated
    p = math.sin(0.6) ** 2
    assert abs(ones / n - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_memory_channel_with_precession_in_joint_state_equals_its_transfer_matrix():
    reg, (a, b, c) = _three_qubits()
    reg.apply_unitary([a], H)
    reg.apply_unitary([a, b], CNOT)
    reg.apply_unitary([b], expm(-0.3j * Y))
    reg2, (a2, b2, _) = _three_qubits()
    reg2.set_joint_state([a2, b2], reg.reduced_density_matrix([a, b]))
    amp, bz, cz, phi = 0.8, 0.9, 0.05, 0.3
    reg.decohere(a, amp, bz, cz, phi)
    cp, sp = math.cos(phi), math.sin(phi)
    m = (amp * cp, -amp * sp, 0, amp * sp, amp * cp, 0, 0, 0, bz)
    reg2.apply_affine(a2, m, (0, 0, cz))  # independent path: Pauli transfer matrix
    assert np.allclose(reg.reduced_density_matrix([a, b]), reg2.reduced_density_matrix([a2, b2]))
    # the same channel on a lone qubit (Bloch fast path)
    reg.reset(c, (0.6, 0.0, 0.0))
    reg.decohere(c, amp, bz, cz, phi)
    assert np.allclose(reg.reduced_density_matrix([c]),
                       0.5 * (np.eye(2) + amp * 0.6 * (cp * X + sp * Y) + cz * Z))
