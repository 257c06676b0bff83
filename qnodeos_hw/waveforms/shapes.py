"""Pulse envelopes sampled at the AWG rate, and IQ pulses built from them.

Sample ``k`` (0-based) of an ``n``-sample pulse represents the time interval
``[k, k+1) / sample_rate_hz`` and is evaluated at its middle, so the pulse centre
is at ``n / 2`` samples from its start. Envelopes peak at 1 (amplitude scaling is
separate); amplitudes are AWG full-scale units (-1..1).

* ``hermite``: ``(1 - a x^2) exp(-x^2)``, ``x = (t - t_c) / (duration / 6)``, cut at
  ``|x| = 3`` (the NV standard; ``a`` = 0.956 for the usual Hermite pi pulse).
* ``gaussian``: ``exp(-x^2 / 2)``, ``sigma = duration / 6`` (cut at +-3 sigma).
* ``square``: 1 over the whole duration.

DRAG adds the time derivative of the envelope, times ``drag_coefficient_s``, in the
quadrature perpendicular to the pulse axis; it does not change the pulse area
along the axis.
"""

from __future__ import annotations

import numpy as np

SHAPES: tuple[str, ...] = ("hermite", "gaussian", "square")
#: |x| cut-off of the Hermite and Gaussian envelopes (duration = 2 * CUTOFF widths)
CUTOFF = 3.0


class ShapeError(ValueError):
    """Unknown shape name or an impossible sample count."""


def _x(n_samples: int) -> np.ndarray:
    """Normalised time of each sample's middle: -CUTOFF .. +CUTOFF over the pulse."""
    k = np.arange(n_samples, dtype=float) + 0.5
    return (k - n_samples / 2.0) * (2.0 * CUTOFF / n_samples)


def envelope(shape: str, n_samples: int, *, hermite_a: float = 0.956) -> np.ndarray:
    """Envelope of ``shape`` over ``n_samples`` samples (dimensionless; the continuous
    envelope peaks at 1 at the pulse centre, samples sit half a sample off it for even n)."""
    if n_samples < 1:
        raise ShapeError(f"a pulse needs at least one sample, got {n_samples}")
    if shape == "square":
        return np.ones(n_samples)
    x = _x(n_samples)
    if shape == "hermite":
        return (1.0 - hermite_a * x * x) * np.exp(-x * x)
    if shape == "gaussian":
        return np.exp(-0.5 * x * x)
    raise ShapeError(f"unknown pulse shape {shape!r}; known: {', '.join(SHAPES)}")


def envelope_derivative(shape: str, n_samples: int, sample_rate_hz: float, *,
                        hermite_a: float = 0.956) -> np.ndarray:
    """d(envelope)/dt at each sample (1/s), analytic, same normalisation as :func:`envelope`."""
    if shape == "square":
        return np.zeros(n_samples)
    x = _x(n_samples)
    dx_dt = (2.0 * CUTOFF / n_samples) * sample_rate_hz
    if shape == "hermite":
        return -2.0 * x * np.exp(-x * x) * (1.0 + hermite_a - hermite_a * x * x) * dx_dt
    if shape == "gaussian":
        return -x * np.exp(-0.5 * x * x) * dx_dt
    raise ShapeError(f"unknown pulse shape {shape!r}; known: {', '.join(SHAPES)}")


def iq_pulse(shape: str, n_samples: int, amplitude: float, phase_rad: float,
             sample_rate_hz: float, *, drag_coefficient_s: float = 0.0,
             hermite_a: float = 0.956) -> tuple[np.ndarray, np.ndarray]:
    """I and Q samples of one pulse: ``amplitude * (env + i*drag*env') * exp(i*phase)``.

    A negative ``amplitude`` is a rotation about the opposite axis.
    """
    env = envelope(shape, n_samples, hermite_a=hermite_a)
    c = env.astype(complex)
    if drag_coefficient_s:
        c = c + 1j * drag_coefficient_s * envelope_derivative(
            shape, n_samples, sample_rate_hz, hermite_a=hermite_a)
    c *= amplitude * np.exp(1j * phase_rad)
    return c.real.copy(), c.imag.copy()


def envelope_area_s(shape: str, n_samples: int, sample_rate_hz: float, *,
                    hermite_a: float = 0.956) -> float:
    """Sum of the sampled envelope times the sample period (s): the area of a unit-amplitude pulse."""
    return float(envelope(shape, n_samples, hermite_a=hermite_a).sum()) / sample_rate_hz
