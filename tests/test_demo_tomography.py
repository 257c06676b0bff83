"""Tomography estimates of the demos: fidelity, binomial error, readout correction."""

import math

import numpy as np
import pytest

from qnodeos_hw.experiments.tomography import (CARDINAL, ReadoutFidelity, fidelity,
                                               target_bloch_dqc)


def test_dqc_target_is_h_rz_alpha_plus():
    h = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
    for k in range(8):
        a = k * math.pi / 4
        psi = h @ np.array([1, np.exp(1j * a)]) / math.sqrt(2)
        rho = np.outer(psi, psi.conj())
        bloch = (2 * rho[0, 1].real, -2 * rho[0, 1].imag, (rho[0, 0] - rho[1, 1]).real)
        assert np.allclose(bloch, target_bloch_dqc(a), atol=1e-12)


def test_fidelity_of_perfect_and_opposite_states():
    bases = ["Z"] * 50 + ["X"] * 50
    assert fidelity(bases, [0] * 100, CARDINAL["+Z"]).fidelity == pytest.approx(1.0)
    assert fidelity(bases, [1] * 50 + [0] * 50, CARDINAL["+Z"]).fidelity == pytest.approx(0.0)
    assert fidelity(bases, [1] * 50 + [0] * 50, CARDINAL["-X"]).fidelity == pytest.approx(0.0)
    assert fidelity(bases, [1] * 50 + [1] * 50, CARDINAL["-X"]).fidelity == pytest.approx(1.0)


def test_binomial_error_shrinks_with_shots():
    rng = np.random.default_rng(1)
    small = fidelity(["Z"] * 100, rng.integers(0, 2, 100), (0, 0, 1))
    big = fidelity(["Z"] * 10_000, rng.integers(0, 2, 10_000), (0, 0, 1))
    assert big.sigma == pytest.approx(small.sigma / 10, rel=0.1)
    assert abs(big.fidelity - 0.5) < 3 * big.sigma


def test_readout_correction_recovers_the_true_expectation():
    ro = ReadoutFidelity(0.93, 0.995)
    rng = np.random.default_rng(2)
    n = 200_000
    true_p0 = 0.8  # <Z> = 0.6
    truth = rng.random(n) >= true_p0  # True = state 1
    u = rng.random(n)
    reported = np.where(truth, u < ro.f1, u >= ro.f0).astype(int)
    raw = fidelity(["Z"] * n, reported, (0, 0, 1))
    cor = fidelity(["Z"] * n, reported, (0, 0, 1), ro)
    assert abs(raw.fidelity - 0.8) > 0.02                # readout error biases the raw value
    assert abs(cor.fidelity - 0.8) < 3 * cor.sigma + 1e-3


def test_missing_basis_and_bad_readout_are_named():
    with pytest.raises(ValueError, match="basis Y"):
        fidelity(["Z"] * 4, [0] * 4, (0, 1, 0))
    with pytest.raises(ValueError, match="readout"):
        ReadoutFidelity(0.4, 0.99)
