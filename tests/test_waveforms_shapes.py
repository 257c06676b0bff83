"""Pulse envelopes: normalisation, symmetry, analytic derivative (DRAG), IQ phase, errors."""

import math

import numpy as np
import pytest

from qnodeos_hw.waveforms.shapes import (SHAPES, ShapeError, envelope, envelope_area_s,
                                         envelope_derivative, iq_pulse)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [120, 241])
def test_envelope_peak_one_and_symmetric(shape, n):
    env = envelope(shape, n)
    assert env.shape == (n,)
    # odd n samples the centre exactly; even n sits half a sample off it
    assert env.max() == pytest.approx(1.0, abs=1e-12 if n % 2 else 2e-3)
    assert np.allclose(env, env[::-1])


@pytest.mark.parametrize("shape", ["hermite", "gaussian"])
def test_derivative_matches_finite_difference(shape):
    n, fs = 2400, 2.4e9
    d = envelope_derivative(shape, n, fs)
    num = np.gradient(envelope(shape, n)) * fs
    assert np.max(np.abs(num - d)) < 1e-3 * np.max(np.abs(d))
    assert abs(d.sum()) < 1e-9 * np.abs(d).sum()  # antisymmetric: DRAG adds no net area


def test_hermite_has_negative_lobes_and_smaller_area_than_gaussian():
    h, g = envelope("hermite", 360), envelope("gaussian", 360)
    assert h.min() < -0.05 and g.min() > 0
    assert envelope_area_s("hermite", 360, 2.4e9) < envelope_area_s("gaussian", 360, 2.4e9)
    assert envelope_area_s("square", 120, 2.4e9) == pytest.approx(50e-9)


def test_iq_pulse_phase_amplitude_and_drag():
    i, q = iq_pulse("gaussian", 240, 0.5, math.pi / 2, 2.4e9)
    assert np.allclose(i, 0, atol=1e-15) and q.max() == pytest.approx(0.5, abs=1e-3)
    i, q = iq_pulse("gaussian", 240, -0.5, 0.0, 2.4e9)
    assert i.min() == pytest.approx(-0.5, abs=1e-3)
    i, q = iq_pulse("hermite", 240, 0.5, 0.0, 2.4e9, drag_coefficient_s=1e-9)
    assert np.allclose(q, 0.5 * 1e-9 * envelope_derivative("hermite", 240, 2.4e9))


def test_bad_shapes_raise():
    with pytest.raises(ShapeError):
        envelope("sinc", 10)
    with pytest.raises(ShapeError):
        envelope("gaussian", 0)
    with pytest.raises(ShapeError):
        envelope_derivative("sinc", 10, 2.4e9)
