"""Trapped-ion node physics through the IonQubitBackend methods: the 7 operations as
DDS pulses, 10^4 repetitions each, against ideal rotations (binomial 3 sigma)."""

import inspect
import math

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.stats import poisson

from qnodeos_hw.simulators import qubit_backend
from qnodeos_hw.simulators.physics import IonNode, PhysicsError, QuantumRegistry, load_noise_models

MODEL = load_noise_models().ion
PI_NS = int(MODEL.pi_time_ns)
COOL_NS, PUMP_NS, DETECT_NS, GUARD_NS = 500_000, 20_000, 500_000, 1_000
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])

#: name -> list of (phase rad, duration ns) DDS pulses; and the textbook unitary
OPS = {
    "init": ([], np.eye(2)),
    "rx_pi": ([(0.0, PI_NS)], expm(-1j * math.pi / 2 * X)),
    "ry_pi": ([(math.pi / 2, PI_NS)], expm(-1j * math.pi / 2 * Y)),
    "rx_pi2": ([(0.0, PI_NS // 2)], expm(-1j * math.pi / 4 * X)),
    "ry_pi2": ([(math.pi / 2, PI_NS // 2)], expm(-1j * math.pi / 4 * Y)),
    "rx_mpi2": ([(math.pi, PI_NS // 2)], expm(1j * math.pi / 4 * X)),
}


def ion(seed=1, **over):
    model = MODEL.with_overrides(over) if over else MODEL
    return IonNode("ion", model, np.random.default_rng(seed), QuantumRegistry())


def bright_probabilities(window_ns=DETECT_NS, thr=MODEL.pmt_threshold_counts):
    """P(counts >= threshold) for a bright and a dark ion."""
    pb = poisson.sf(thr - 1, MODEL.pmt_bright_rate_hz * window_ns * 1e-9)
    pd = poisson.sf(thr - 1, MODEL.pmt_dark_rate_hz * window_ns * 1e-9)
    return pb, pd


def run(node, pulses, reps, t0=0, detections=1):
    """init (cool + pump), pulses, detect; returns counts array (reps, detections)."""
    out = np.empty((reps, detections), dtype=int)
    t = t0
    for r in range(reps):
        node.cool(0, COOL_NS, t)
        t += COOL_NS + GUARD_NS
        node.pump(0, PUMP_NS, t)
        t += PUMP_NS + GUARD_NS
        for phase, dur in pulses:
            node.pulse(0, phase, dur, t)
            t += dur + GUARD_NS
        for d in range(detections):
            out[r, d] = node.detect(0, DETECT_NS, t)
            t += DETECT_NS + GUARD_NS
    return out, t


def test_ion_node_has_the_backend_protocol_signatures():
    for name, fn in inspect.getmembers(qubit_backend.IonQubitBackend, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert list(inspect.signature(getattr(IonNode, name)).parameters) == \
            list(inspect.signature(fn).parameters), name


@pytest.mark.parametrize("op", list(OPS))
def test_each_operation_matches_its_ideal_rotation_over_1e4_repetitions(op):
    pulses, u = OPS[op]
    node = ion(seed=100 + list(OPS).index(op))
    reps = 10_000
    counts, _ = run(node, pulses, reps)
    bright = counts[:, 0] >= MODEL.pmt_threshold_counts
    e = MODEL.pump_error
    rho0 = np.diag([1 - e, e])
    p0 = (u @ rho0 @ u.conj().T)[0, 0].real  # ideal P(|0>) = P(bright)
    pb, pd = bright_probabilities()
    p = p0 * pb + (1 - p0) * pd
    sigma = math.sqrt(p * (1 - p) / reps)
    assert abs(bright.mean() - p) <= 3 * sigma + 1e-12, (op, bright.mean(), p)


def test_measure_is_repeatable_and_projective():
    """measure: after Rx(pi/2) the first detection splits ~50/50 and a second detection
    repeats it (up to the PMT discrimination errors)."""
    node = ion(seed=7)
    reps = 10_000
    counts, _ = run(node, OPS["rx_pi2"][0], reps, detections=2)
    b = counts >= MODEL.pmt_threshold_counts
    pb, pd = bright_probabilities()
    p_agree = 0.5 * (pb ** 2 + (1 - pb) ** 2) + 0.5 * (pd ** 2 + (1 - pd) ** 2)
    agree = (b[:, 0] == b[:, 1]).mean()
    assert abs(agree - p_agree) <= 3 * math.sqrt(p_agree * (1 - p_agree) / reps)
    assert abs(b[:, 0].mean() - 0.5 * (pb + pd)) <= 3 * math.sqrt(0.25 / reps)


@pytest.mark.parametrize("first,second,p0_ideal", [("rx_pi2", "rx_pi2", 0.0),
                                                  ("rx_pi2", "rx_mpi2", 1.0),
                                                  ("ry_pi2", "rx_pi2", 0.5)])
def test_rotation_axes_compose(first, second, p0_ideal):
    # T2* dephasing between the two pulses switched off to isolate the axes
    node = ion(seed=3, pump_error=0.0, t2star_s=1e3)
    counts, _ = run(node, OPS[first][0] + OPS[second][0], 4_000)
    pb, pd = bright_probabilities()
    p = p0_ideal * pb + (1 - p0_ideal) * pd
    assert abs((counts[:, 0] >= MODEL.pmt_threshold_counts).mean() - p) <= \
        3 * math.sqrt(p * (1 - p) / 4_000)


def test_short_pumping_leaves_the_previous_state():
    node = ion(seed=4, pump_error=0.0)
    node.pump(0, 50_000, 0)
    node.pulse(0, 0.0, PI_NS, 60_000)  # |1>
    node.pump(0, int(MODEL.pump_time_constant_ns), 80_000)  # one time constant
    assert node.prob_zero(0) == pytest.approx(1 - math.exp(-1), abs=1e-3)


def test_pi_time_miscalibration_shows_as_over_rotation():
    node = ion(seed=5, pi_time_ns=PI_NS / 1.05)  # the ion rotates 5 % faster
    u = node.pulse_unitary(0.0, PI_NS)
    assert np.allclose(u, expm(-1j * 1.05 * math.pi / 2 * X))


def test_cooling_dephases_and_bad_durations_are_refused():
    node = ion()
    node.pump(0, PUMP_NS, 0)
    node.pulse(0, 0.0, PI_NS // 2, PUMP_NS)
    node.cool(0, COOL_NS, 2 * PUMP_NS)
    rho = node.reduced_density_matrix([0])
    assert abs(rho[0, 1]) < 1e-12 and rho[0, 0].real == pytest.approx(0.5, abs=0.01)
    with pytest.raises(PhysicsError, match="detect duration"):
        node.detect(0, -5, 10 ** 7)
