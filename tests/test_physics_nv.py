"""NV node physics driven directly through the NVQubitBackend methods, with
waveforms synthesised here (statistical checks with fixed seeds)."""

import inspect
import dataclasses
import math

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import curve_fit
from scipy.stats import poisson

from qnodeos_hw.simulators import qubit_backend
from qnodeos_hw.simulators.physics import (NVNode, PhysicsTimeError, QuantumRegistry,
                                           QubitAddressError, load_noise_models)

SR = 2.4e9  # Sa/s
MODELS = load_noise_models()
F_RABI = MODELS.nv.rabi_hz_per_amplitude


def nv_node(seed=1, **overrides):
    model = MODELS.nv.with_overrides(overrides) if overrides else MODELS.nv
    return NVNode("alice", model, np.random.default_rng(seed), QuantumRegistry())


def gaussian(sigma_ns=20.0, n_sigma=3.0):
    """Unit-peak Gaussian envelope, samples at SR; returns (envelope, pi amplitude)."""
    half = int(round(n_sigma * sigma_ns * 1e-9 * SR))
    t = np.arange(-half, half + 1) / SR
    env = np.exp(-t ** 2 / (2 * (sigma_ns * 1e-9) ** 2))
    area = env.sum() / SR  # s per unit amplitude
    return env, 1.0 / (2 * F_RABI * area)  # Omega * A * area = pi


def square(amp, phase=0.0, n=240):
    return np.full(n, amp * math.cos(phase)), np.full(n, amp * math.sin(phase))


PI_AMP_SQ = 1 / (2 * F_RABI * 240 / SR)  # square 100 ns pi pulse


def test_nv_node_has_the_backend_protocol_signatures():
    for name, fn in inspect.getmembers(qubit_backend.NVQubitBackend, inspect.isfunction):
        if name.startswith("_"):
            continue
        proto = list(inspect.signature(fn).parameters)
        mine = list(inspect.signature(getattr(NVNode, name)).parameters)
        assert mine == proto, name


def test_rabi_amplitude_sweep_recovers_pi_amplitude_within_2_percent():
    env, a_pi = gaussian()
    node = nv_node(seed=11)
    amps = np.linspace(0.0, 2.0 * a_pi, 31)
    shots = 400
    p1 = []
    t = 0
    zeros = np.zeros_like(env)
    for j, a in enumerate(amps):
        wave = env * a
        ones = 0
        for _ in range(shots):
            t += 20_000
            node.initialize(0, t)
            node.play_mw(0, ("rabi", j), wave, zeros, SR, t + 1_000)
            ones += node.readout(0, t + 2_000)
        p1.append(ones / shots)

    def model(a, a_fit, contrast, offset):
        return offset + contrast * np.sin(np.pi * a / (2 * a_fit)) ** 2

    popt, _ = curve_fit(model, amps, p1, p0=[a_pi * 0.9, 0.9, 0.05])
    assert abs(popt[0] / a_pi - 1) < 0.02
    # the contrast is what the readout fidelities allow
    m = MODELS.nv
    assert popt[1] == pytest.approx((m.readout_f0 + m.readout_f1 - 1) * (2 * m.init_fidelity - 1), abs=0.05)


def test_five_percent_amplitude_error_is_the_matching_over_rotation():
    # memory decay switched off (T2* = 1 s) to isolate the coherent error
    node = nv_node(seed=5, readout_f0=1.0, readout_f1=1.0, init_fidelity=1.0, t2star_s=1.0)
    wi, wq = square(1.05 * PI_AMP_SQ)
    u = node.mw_unitary("x180", wi, wq, SR)
    over = 1.05 * math.pi / 2
    assert np.allclose(u, [[math.cos(over), -1j * math.sin(over)], [-1j * math.sin(over), math.cos(over)]])
    # ten "pi" pulses: 10.5 pi -> P(1) = sin^2(5.25 pi) = 0.5 (ideal: 0)
    shots, ones, t = 4000, 0, 0
    for _ in range(shots):
        t += 50_000
        node.initialize(0, t)
        for k in range(10):
            node.play_mw(0, "x180", wi, wq, SR, t + 200 * (k + 1))
        ones += node.readout(0, t + 3_000)
    p_expected = math.sin(10.5 * math.pi / 2) ** 2
    assert abs(ones / shots - p_expected) < 3 * math.sqrt(0.25 / shots)
    # calibrated amplitude: back to |0> after 10 pulses
    wi0, wq0 = square(PI_AMP_SQ)
    node.initialize(0, t + 100_000)
    for k in range(10):
        node.play_mw(0, "x180_ok", wi0, wq0, SR, t + 100_000 + 200 * (k + 1))
    assert node.prob_zero(0) > 0.99


def _ramsey_like(node, taus_ns, shots, dd, t=0):
    """init, x90, wait tau (DD on/off), then x-90 or x+90, readout. Returns per tau
    P(0 | x-90) - P(0 | x+90) = contrast * coherence(tau): the readout offset cancels
    (differential readout), so fits need only (contrast, T)."""
    x90 = square(PI_AMP_SQ / 2)
    xm90 = square(PI_AMP_SQ / 2, phase=math.pi)
    diff = []
    for tau in taus_ns:
        z = 0
        for key, last, sign in (("xm90", xm90, 1), ("x90", x90, -1)):
            for _ in range(shots):
                t += 1_000_000 + int(tau)
                node.initialize(0, t)
                node.play_mw(0, "x90", *x90, SR, t + 1_000)
                if dd:
                    node.set_dd(0, True, t + 1_100)
                    node.set_dd(0, False, t + 1_100 + int(tau))
                node.play_mw(0, key, *last, SR, t + 1_100 + int(tau))
                z += sign * (node.readout(0, t + 1_200 + int(tau)) == 0)
        diff.append(z / shots)
    return np.array(diff)


def _fit_decay(taus_ns, diff, t_guess, exponent=1.0):
    popt, _ = curve_fit(lambda t, a, tc: a * np.exp(-((t / tc) ** exponent)),
                        np.asarray(taus_ns) * 1e-9, diff, p0=[0.8, t_guess])
    return popt


def test_dd_coherence_scan_recovers_t_coh_within_10_percent():
    node = nv_node(seed=21)
    taus = np.linspace(0, 39e6, 7)  # ns, 0 .. 3 T_coh
    a, t_coh = _fit_decay(taus, _ramsey_like(node, taus, 2000, dd=True), 0.01)
    assert abs(t_coh / MODELS.nv.t_coh_s - 1) < 0.10
    m = MODELS.nv  # the contrast is what readout and initialisation allow
    assert a == pytest.approx((m.readout_f0 + m.readout_f1 - 1) * (2 * m.init_fidelity - 1), abs=0.05)


def test_without_dd_the_qubit_dephases_with_t2star():
    """Ramsey without DD: coherence exp(-(tau/T2*)^n) with the configured law (n = 2,
    Gaussian, by default)."""
    node = nv_node(seed=22)
    n = MODELS.nv.t2star_exponent
    taus = np.linspace(0, 12_000, 7)  # ns, 0 .. 2.4 T2*
    _, t2 = _fit_decay(taus, _ramsey_like(node, taus, 2000, dd=False), 4e-6, n)
    assert abs(t2 / MODELS.nv.t2star_s - 1) < 0.10
    # DD on for the same 12 us keeps the qubit (T_coh = 13 ms)
    assert _ramsey_like(node, [12_000], 1000, dd=True, t=10**12)[0] > 0.8


def test_free_evolution_split_by_bookkeeping_equals_one_segment():
    """The T2* law runs over the whole free segment: applying the decay in pieces (e.g. a
    state query in between) gives the same state as applying it at once."""
    x90 = square(PI_AMP_SQ / 2)
    states = []
    for split in (False, True):
        node = nv_node(seed=1, detuning_hz=2e5)
        node.initialize(0, 0)
        node.play_mw(0, "x90", *x90, SR, 100)
        c0 = 2 * abs(node.reduced_density_matrix([0])[0, 1])
        if split:
            node.reduced_density_matrix([0], at_ns=1_100)
            node.reduced_density_matrix([0], at_ns=3_700)
        states.append(node.reduced_density_matrix([0], at_ns=6_100))
    assert np.allclose(states[0], states[1], atol=1e-12)
    coherence = 2 * abs(states[0][0, 1]) / c0
    free_s = (6_000 - int(len(x90[0]) * 1e9 / SR)) * 1e-9   # free evolution starts at the pulse end
    expect = math.exp(-((free_s / MODELS.nv.t2star_s) ** MODELS.nv.t2star_exponent))
    assert coherence == pytest.approx(expect * math.exp(-free_s / (2 * MODELS.nv.t1_s)), rel=1e-6)


def test_detuning_gives_ramsey_fringes_unless_dd_refocuses_it():
    """x90 - free evolution - x90 with the MW detuned by 1 MHz, pulses starting tau apart:
    P(0) follows the textbook rotating-frame evolution, the detuning acting inside the
    pulses (their unitaries) and for the free time between them (tau minus the pulse
    length, never counted twice); with DD on in between the precession is refocused."""
    det = 1e6
    node = nv_node(t2star_s=1.0, init_fidelity=1.0, detuning_hz=det)
    x90 = square(PI_AMP_SQ / 2, n=24)  # short pulse: 10 ns
    x90 = (x90[0] * 10, x90[1] * 10)
    sz = np.diag([1.0, -1.0])
    h_pulse = math.pi * F_RABI * x90[0][0] * np.array([[0, 1], [1, 0]]) + math.pi * det * sz
    u_pulse = expm(-1j * h_pulse * 24 / SR)
    t = 0
    for tau in (0, 125, 250, 400, 700):
        t += 10_000
        node.initialize(0, t)
        node.play_mw(0, "x90", *x90, SR, t)
        node.play_mw(0, "x90", *x90, SR, t + tau)
        free = max(0, tau - 10)   # the 24-sample pulse lasts 10 ns
        u = u_pulse @ expm(-1j * math.pi * det * free * 1e-9 * sz) @ u_pulse
        assert node.prob_zero(0) == pytest.approx(abs(u[0, 0]) ** 2, abs=1e-6), tau  # T2* = 1 s
    node.initialize(0, t + 10_000)
    node.play_mw(0, "x90", *x90, SR, t + 10_000)
    node.set_dd(0, True, t + 10_000)
    node.set_dd(0, False, t + 10_250)
    node.play_mw(0, "x90", *x90, SR, t + 10_250)
    u = u_pulse @ u_pulse
    assert node.prob_zero(0) == pytest.approx(abs(u[0, 0]) ** 2, abs=1e-3)


def test_readout_fidelities():
    node = nv_node(seed=3, init_fidelity=1.0)
    n, t, zeros0, ones1 = 10_000, 0, 0, 0
    pi = square(PI_AMP_SQ)
    for _ in range(n):
        t += 10_000
        node.initialize(0, t)
        zeros0 += node.readout(0, t + 100) == 0
        node.initialize(0, t + 200)
        node.play_mw(0, "x180", *pi, SR, t + 300)
        ones1 += node.readout(0, t + 400) == 1
    for k, f in ((zeros0, MODELS.nv.readout_f0), (ones1, MODELS.nv.readout_f1)):
        assert abs(k / n - f) < 3 * math.sqrt(f * (1 - f) / n) + 1e-3  # + T2* over 100 ns


def test_cr_check_pass_rate_and_scrambling():
    node = nv_node(seed=4)
    m = MODELS.nv
    threshold, n = 8, 10_000
    passed = sum(node.cr_check(t * 10_000) >= threshold for t in range(n))
    p = (m.cr_pass_probability * poisson.sf(threshold - 1, m.cr_counts_mean_pass)
         + (1 - m.cr_pass_probability) * poisson.sf(threshold - 1, m.cr_counts_mean_fail))
    assert abs(passed / n - p) < 3 * math.sqrt(p * (1 - p) / n)
    node.initialize(0, n * 10_000)
    node.cr_check(n * 10_000 + 10)
    assert node.prob_zero(0) == pytest.approx(0.5)


def test_unitary_cache_follows_new_samples_under_the_same_key():
    node = nv_node()
    wi, wq = square(PI_AMP_SQ)
    node.play_mw(0, 7, wi, wq, SR, 0)
    node.play_mw(0, 7, wi.copy(), wq.copy(), SR, 10)  # equal content: cached
    assert node.cache_misses == 1
    wi2, wq2 = square(PI_AMP_SQ / 2)
    u = node.mw_unitary(7, wi2, wq2, SR)  # re-uploaded entry 7: recomputed
    assert node.cache_misses == 2
    assert abs(u[0, 0]) == pytest.approx(math.cos(math.pi / 4))


def test_bad_calls_raise_typed_errors():
    node = nv_node()
    node.initialize(0, 1_000)
    with pytest.raises(PhysicsTimeError, match="before the qubit's last update"):
        node.readout(0, 500)
    with pytest.raises(QubitAddressError, match="no qubit address 1"):
        node.initialize(1, 2_000)
    with pytest.raises(QubitAddressError):
        node.play_mw(-1, "x", *square(0.1), SR, 2_000)


def test_two_qubit_node_gate_entangles_electron_and_nuclear_spin():
    perfect = [dataclasses.replace(c, init_fidelity=1.0) for c in MODELS.nv.carbons]
    node = NVNode("n", MODELS.nv.with_overrides({"init_fidelity": 1.0, "carbons": perfect}),
                  np.random.default_rng(0), QuantumRegistry(), num_qubits=2)
    node.initialize(0, 0)
    node.initialize(1, 0)
    node.play_mw(0, "y90", *square(PI_AMP_SQ / 2, phase=math.pi / 2), SR, 0)  # |+>
    node.apply_gate([0, 1], np.eye(4)[[0, 1, 3, 2]], 0)
    rho = node.reduced_density_matrix([0, 1])
    assert rho[0, 3].real == pytest.approx(0.5) and rho[3, 3].real == pytest.approx(0.5)
