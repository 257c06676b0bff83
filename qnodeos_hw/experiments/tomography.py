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


# ------------------------------------------------------------ physical (ML) estimates
#: a tomography basis name -> (axis index, sign): 'X' = '+X' -> (0, +1), '-Y' -> (1, -1)
def basis_axis(name: str) -> tuple[int, int]:
    sign = -1 if name.startswith("-") else 1
    axis = name.lstrip("+-")
    if axis not in BASES:
        raise ValueError(f"tomography basis must be [+-]X, [+-]Y or [+-]Z, got {name!r}")
    return BASES.index(axis), sign


@dataclass(frozen=True)
class PhysicalEstimate:
    """Fidelity to a pure target from the maximum-likelihood Bloch vector inside the
    Bloch ball (``|bloch| <= 1``, so ``0 <= fidelity <= 1``), with profile-likelihood
    intervals (``interval_1sigma``: -2 delta log L <= 1, ``interval_3sigma``: <= 9); at
    the ball's surface an interval ends at the physical limit."""

    fidelity: float
    bloch: tuple[float, float, float]
    interval_1sigma: tuple[float, float]
    interval_3sigma: tuple[float, float]
    shots: int
    readout_corrected: bool

    @property
    def sigma(self) -> float:
        lo, hi = self.interval_1sigma
        return (hi - lo) / 2

    def as_dict(self) -> dict:
        lo3, hi3 = self.interval_3sigma
        return {"fidelity": self.fidelity, "sigma": self.sigma,
                "three_sigma": (hi3 - lo3) / 2,
                "interval_1sigma": list(self.interval_1sigma),
                "interval_3sigma": list(self.interval_3sigma),
                "bloch": list(self.bloch), "bloch_norm": float(np.linalg.norm(self.bloch)),
                "shots": self.shots,
                "method": "maximum likelihood in the Bloch ball"
                          + (" (readout model F0, F1)" if self.readout_corrected else "")
                          + "; profile-likelihood intervals"}


class _BlochLikelihood:
    """-log L of a Bloch vector r from counts: group g (axis a_g, sign s_g) has n_g shots,
    k_g of them reported 0; P(report 0) = A + B s_g r[a_g] (readout model: A = (F0 + 1 -
    F1)/2, B = (F0 + F1 - 1)/2; without readout correction A = B = 1/2)."""

    def __init__(self, groups: list[tuple[int, int, int, int]], readout: ReadoutFidelity | None):
        self.ax = np.array([g[0] for g in groups], int)
        self.sg = np.array([g[1] for g in groups], float)
        self.n = np.array([g[2] for g in groups], float)
        self.k0 = np.array([g[3] for g in groups], float)
        self.k1 = self.n - self.k0
        if readout is None:
            self.A = self.B = 0.5
        else:
            self.A = (readout.f0 + 1 - readout.f1) / 2
            self.B = readout.gain / 2

    def nll(self, r: np.ndarray) -> float:
        p = np.clip(self.A + self.B * self.sg * r[self.ax], 1e-15, 1 - 1e-15)
        return float(-(self.k0 @ np.log(p) + self.k1 @ np.log(1 - p)))

    def grad(self, r: np.ndarray) -> np.ndarray:
        p = np.clip(self.A + self.B * self.sg * r[self.ax], 1e-15, 1 - 1e-15)
        d = -(self.k0 / p - self.k1 / (1 - p)) * self.B * self.sg
        g = np.zeros(3)
        np.add.at(g, self.ax, d)
        return g

    def unconstrained(self) -> np.ndarray:
        """Per-axis optimum (the likelihood factorises over axes): the linear inversion
        when one sign was measured; 1-D Newton steps when both were."""
        r = np.zeros(3)
        for a in range(3):
            sel = self.ax == a
            if not sel.any():
                continue
            x = 0.0
            for _ in range(50):
                p = np.clip(self.A + self.B * self.sg[sel] * x, 1e-12, 1 - 1e-12)
                g = -np.sum((self.k0[sel] / p - self.k1[sel] / (1 - p)) * self.B * self.sg[sel])
                h = np.sum((self.k0[sel] / p ** 2 + self.k1[sel] / (1 - p) ** 2) * self.B ** 2)
                step = g / h if h > 0 else 0.0
                x = float(np.clip(x - step, -1.0 / self.B, 1.0 / self.B))
                if abs(step) < 1e-13:
                    break
            r[a] = x
        return r

    def minimise(self, t: np.ndarray | None = None, c: float | None = None,
                 start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """min -log L over |r| <= 1 (and r.t = c when given); axes without data stay 0."""
        from scipy.optimize import minimize

        free = np.array([bool((self.ax == a).any()) for a in range(3)])
        if t is None:
            r0 = self.unconstrained()
            if r0 @ r0 <= 1.0:
                return r0, self.nll(r0)
            x0 = r0 / np.linalg.norm(r0) * 0.999
            cons = [{"type": "ineq", "fun": lambda r: 1.0 - r @ r, "jac": lambda r: -2 * r}]
        else:
            x0 = start if start is not None else c * t
            cons = [{"type": "ineq", "fun": lambda r: 1.0 - r @ r, "jac": lambda r: -2 * r},
                    {"type": "eq", "fun": lambda r: r @ t - c, "jac": lambda r: t}]
        cons.append({"type": "eq", "fun": lambda r: r[~free] if (~free).any() else np.zeros(0),
                     "jac": lambda r: np.eye(3)[~free]})
        if not (~free).any():
            cons.pop()
        res = minimize(self.nll, x0, jac=self.grad, constraints=cons, method="SLSQP",
                       options={"ftol": 1e-12, "maxiter": 200})
        r = np.asarray(res.x, float)
        n = np.linalg.norm(r)
        if n > 1.0:
            r = r / n
        return r, self.nll(r)


def physical_fidelity(bases: Iterable[str], outcomes: Iterable[int],
                      target: tuple[float, float, float],
                      readout: ReadoutFidelity | None = None) -> PhysicalEstimate:
    """Maximum-likelihood fidelity (:class:`PhysicalEstimate`) from outcomes in the bases
    ``bases`` ('X', '+X', '-X', ...; outcome 0 = eigenvalue +1 of that basis), the
    readout error modelled with ``readout`` (F0, F1). Inside the ball it equals the
    linear (readout-inverted) estimate of :func:`fidelity`. Raises ValueError when a
    basis the target needs has no shots."""
    b = [str(x) for x in bases]
    m = np.asarray(list(outcomes), dtype=int)
    if len(b) != m.size:
        raise ValueError(f"{len(b)} bases but {m.size} outcomes")
    t = np.asarray(target, float)
    t = t / np.linalg.norm(t)
    counts: dict[tuple[int, int], list[int]] = {}
    for name, out in zip(b, m):
        c = counts.setdefault(basis_axis(name), [0, 0])
        c[0] += 1
        c[1] += int(out == 0)
    have = {a for a, _ in counts}
    for a in range(3):
        if abs(t[a]) > 1e-12 and a not in have:
            raise ValueError(f"no shots in basis {BASES[a]}, whose target component is {t[a]:.3f}")
    like = _BlochLikelihood([(a, s, n, k) for (a, s), (n, k) in sorted(counts.items())], readout)
    r_hat, best = like.minimise()
    c_hat = float(np.clip(r_hat @ t, -1.0, 1.0))

    def excess(c: float) -> float:
        return like.minimise(t, c, start=r_hat + (c - c_hat) * t)[1] - best

    def end(level: float, toward: float) -> float:
        from scipy.optimize import brentq
        if abs(toward - c_hat) < 1e-12 or excess(toward) <= level:
            return toward
        # excess(c_hat) = 0 <= level < excess(toward); the profile is convex in c
        return float(brentq(lambda c: excess(c) - level, c_hat, toward, xtol=1e-5))

    def f(c: float) -> float:
        return float(np.clip((1 + c) / 2, 0.0, 1.0))
    i1 = (f(end(0.5, -1.0)), f(end(0.5, 1.0)))
    i3 = (f(end(4.5, -1.0)), f(end(4.5, 1.0)))
    return PhysicalEstimate(f(c_hat), tuple(float(x) for x in r_hat), i1, i3, int(m.size),
                            readout is not None)
