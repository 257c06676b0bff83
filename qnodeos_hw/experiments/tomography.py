"""Single-qubit tomography from X/Y/Z-basis outcomes: Bloch vector, fidelity to a pure
target with a binomial error, and readout-error correction with the single-shot
readout fidelities (F0 = P(report 0 | |0>), F1 = P(report 1 | |1>)), as a lab corrects
tomography with its calibrated SSRO fidelities."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

CLASSICAL_BOUND = 2.0 / 3.0  # best fidelity of a classical (measure-and-prepare) strategy
BASES = ("X", "Y", "Z")
#: Bloch vectors of the six cardinal states
CARDINAL = {"+X": (1, 0, 0), "-X": (-1, 0, 0), "+Y": (0, 1, 0), "-Y": (0, -1, 0),
            "+Z": (0, 0, 1), "-Z": (0, 0, -1)}


@dataclass(frozen=True)
class ReadoutFidelity:
    """Single-shot readout fidelities (probabilities)."""

    f0: float
    f1: float

    def __post_init__(self) -> None:
        if not (0.5 < self.f0 <= 1 and 0.5 < self.f1 <= 1):
            raise ValueError(f"readout fidelities must be in (0.5, 1], got f0={self.f0}, f1={self.f1}")

    def correct(self, expectation: float) -> float:
        """<sigma> without readout error from the measured <sigma> (outcome 0 = +1):
        E_meas = (F0 + F1 - 1) E + (F0 - F1)."""
        return (expectation - (self.f0 - self.f1)) / (self.f0 + self.f1 - 1)

    @property
    def gain(self) -> float:
        return self.f0 + self.f1 - 1


@dataclass(frozen=True)
class FidelityEstimate:
    """Fidelity to the target and its standard error (binomial, propagated)."""

    fidelity: float
    sigma: float
    shots: int

    @property
    def lower_3sigma(self) -> float:
        return self.fidelity - 3 * self.sigma

    def as_dict(self) -> dict:
        return {"fidelity": self.fidelity, "sigma": self.sigma, "three_sigma": 3 * self.sigma,
                "shots": self.shots}


def target_bloch_dqc(alpha_rad: float) -> tuple[float, float, float]:
    """Bloch vector of |psi> = H Rz(alpha)|+>: H maps (x, y, z) -> (z, -y, x)."""
    return (0.0, -math.sin(alpha_rad), math.cos(alpha_rad))


def fidelity(bases: Iterable[str], outcomes: Iterable[int], target: tuple[float, float, float],
             readout: ReadoutFidelity | None = None) -> FidelityEstimate:
    """F = (1 + r . t)/2 for a pure target ``t`` from per-basis <sigma> = P(0) - P(1);
    ``readout`` corrects each expectation for readout error. Bases with a zero target
    component do not enter F. Raises ValueError when a needed basis has no shots."""
    b = np.asarray(list(bases))
    m = np.asarray(list(outcomes), dtype=int)
    if b.shape != m.shape:
        raise ValueError(f"{b.size} bases but {m.size} outcomes")
    f, var = 0.5, 0.0
    for name, t in zip(BASES, target):
        if abs(t) < 1e-12:
            continue
        sel = m[b == name]
        if sel.size == 0:
            raise ValueError(f"no shots in basis {name}, whose target component is {t:.3f}")
        e = 1.0 - 2.0 * sel.mean()
        v = max(1.0 - e * e, 1.0 / sel.size) / sel.size  # never a zero error from few shots
        if readout is not None:
            e = readout.correct(e)
            v /= readout.gain ** 2
        f += 0.5 * t * e
        var += 0.25 * t * t * v
    return FidelityEstimate(float(f), float(math.sqrt(var)), int(m.size))
