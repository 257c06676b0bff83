"""Heralded entanglement between two NV nodes: state tomography, success rate,
threaded rendezvous, typed errors."""

import math
import threading

import numpy as np
import pytest

from qnodeos_hw.qdevice.clock import VirtualClock
from qnodeos_hw.simulators.physics import (BELL_STATES, HeraldingError, HeraldingStation, NVNode,
                                           PartnerTimeoutError, QuantumRegistry, heralded_state,
                                           load_noise_models)

SR = 2.4e9
MODELS = load_noise_models()
PI_AMP = 1 / (2 * MODELS.nv.rabi_hz_per_amplitude * 240 / SR)


def pulse(angle, phase):
    a = PI_AMP * angle / math.pi
    return np.full(240, a * math.cos(phase)), np.full(240, a * math.sin(phase))


YM90, X90 = pulse(math.pi / 2, -math.pi / 2), pulse(math.pi / 2, 0.0)
#: basis -> pre-measurement pulse mapping that basis' +1 eigenstate to |0>
BASIS = {"X": ("ym90", YM90), "Y": ("x90", X90), "Z": None}
#: bell index -> sign of bob's Pauli in the frame mapping the Bell state to Phi+
#: (Psi+ = X_B Phi+, Psi- ~ Y_B Phi+, Phi- = Z_B Phi+)
FRAME_SIGN = {0: {"X": 1, "Y": 1, "Z": 1}, 1: {"X": 1, "Y": -1, "Z": -1},
              2: {"X": -1, "Y": 1, "Z": -1}, 3: {"X": -1, "Y": -1, "Z": 1}}


def network(seed=1, herald=None, nv=None):
    reg = QuantumRegistry()
    hmodel = MODELS.heralding.with_overrides(herald or {})
    nmodel = MODELS.nv.with_overrides(nv or {})
    st = HeraldingStation(hmodel, np.random.default_rng(seed), reg)
    a = NVNode("alice", nmodel, np.random.default_rng(seed + 1), reg, station=st)
    b = NVNode("bob", nmodel, np.random.default_rng(seed + 2), reg, station=st)
    return st, a, b


def test_heralded_state_models_have_the_configured_fidelity():
    for model in ("single_photon", "werner"):
        h = MODELS.heralding.with_overrides({"state_model": model})
        for idx, bell in BELL_STATES.items():
            rho = heralded_state(h, idx)
            assert np.trace(rho).real == pytest.approx(1.0)
            assert np.min(np.linalg.eigvalsh(rho)) > -1e-12
            assert (bell.conj() @ rho @ bell).real == pytest.approx(0.72)


def test_tomography_of_heralded_state_gives_fidelity_072_to_phi_plus():
    """Full two-qubit Pauli tomography: 9 settings x 5000 heralded shots. Readout is made
    ideal and memory decay switched off (T2* = 1 s) so the tomography sees the heralded
    state itself; basis pulses start at the herald. The Bell index is corrected in the
    Pauli frame (sign of bob's Pauli), as the network stack would."""
    st, a, b = network(seed=3, herald={"p_success": 1.0},
                       nv={"readout_f0": 1.0, "readout_f1": 1.0, "t2star_s": 1.0})
    shots, dur = 5_000, MODELS.heralding.attempt_duration_ns
    t = 0
    corr = {}
    for ba in "XYZ":
        for bb in "XYZ":
            s = 0
            for _ in range(shots):
                t += 100_000
                heralded, bell = st.attempt_pair(a, 0, b, 0, t)
                assert heralded
                for node, basis in ((a, ba), (b, bb)):
                    if BASIS[basis]:
                        key, (wi, wq) = BASIS[basis]
                        node.play_mw(0, key, wi, wq, SR, t + dur)
                ma, mb = a.readout(0, t + dur + 100), b.readout(0, t + dur + 100)
                s += (1 - 2 * (ma ^ mb)) * FRAME_SIGN[bell][bb]
            corr[ba + bb] = s / shots
    paulis = {"X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
              "Z": np.diag([1, -1])}
    # two-body part of the linear-inversion estimate (the one-body terms have no overlap
    # with |Phi+><Phi+|, so they do not enter the fidelity)
    rho = np.eye(4, dtype=complex) / 4
    for k, v in corr.items():
        rho += v * np.kron(paulis[k[0]], paulis[k[1]]) / 4
    phi = BELL_STATES[0]
    fid = (phi.conj() @ rho @ phi).real
    assert fid == pytest.approx(0.72, abs=0.02)
    # off-diagonal settings carry no correlation for this state family
    for k in ("XY", "XZ", "YX", "YZ", "ZX", "ZY"):
        assert abs(corr[k]) < 3 / math.sqrt(shots), k
    # single-photon model: <ZZ> = 1 - 2 alpha (|bright,bright> admixture), <XX> = -<YY> = (1-alpha) V
    alpha = MODELS.heralding.bright_population
    v = 2 * 0.72 / (1 - alpha) - 1
    for k, c in (("ZZ", 1 - 2 * alpha), ("XX", (1 - alpha) * v), ("YY", -(1 - alpha) * v)):
        assert abs(corr[k] - c) < 3 * math.sqrt((1 - c * c) / shots), k


def test_herald_rate_matches_success_probability():
    st, a, b = network(seed=5, herald={"p_success": 0.2})
    n = 10_000
    results = [st.attempt_pair(a, 0, b, 0, k * 6_000) for k in range(n)]
    k = sum(h for h, _ in results)
    assert abs(k / n - 0.2) < 3 * math.sqrt(0.2 * 0.8 / n)
    bells = [i for h, i in results if h]
    assert set(bells) == {1, 2}
    assert abs(bells.count(1) / k - 0.5) < 3 * math.sqrt(0.25 / k)
    assert a.last_update_ns(0) == (n - 1) * 6_000 + MODELS.heralding.attempt_duration_ns


def _run_node(node, clock, attempts, out, measure=True):
    res = []
    for _ in range(attempts):
        h, bell, m = node.entangle(0, clock.now_ns(), measure)
        res.append((h, bell, m))
        clock.advance(node.station.model.attempt_duration_ns + 1_000)
    out[node.name] = res


def test_threaded_rendezvous_reports_the_same_herald_to_both_nodes():
    st, a, b = network(seed=7, herald={"p_success": 0.5, "partner_timeout_s": 10.0},
                       nv={"readout_f0": 1.0, "readout_f1": 1.0})
    out: dict = {}
    clocks = {"alice": VirtualClock(0), "bob": VirtualClock(0)}
    n = 2000
    threads = [threading.Thread(target=_run_node, args=(nd, clocks[nd.name], n, out))
               for nd in (a, b)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    ra, rb = out["alice"], out["bob"]
    assert [r[:2] for r in ra] == [r[:2] for r in rb]
    heralded = [(x, y) for x, y in zip(ra, rb) if x[0]]
    assert abs(len(heralded) / n - 0.5) < 3 * math.sqrt(0.25 / n)
    # Psi+/Psi- give anti-correlated Z outcomes except for the |bright,bright> part
    anti = sum(x[2] != y[2] for x, y in heralded) / len(heralded)
    p_anti = 1 - MODELS.heralding.bright_population
    assert abs(anti - p_anti) < 3 * math.sqrt(p_anti * (1 - p_anti) / len(heralded))
    assert all(x[2] is None for x in ra if not x[0])


def test_lonely_attempt_times_out_naming_the_partner():
    st, a, b = network(herald={"partner_timeout_s": 0.2})
    with pytest.raises(PartnerTimeoutError) as err:
        a.entangle(0, 0, False)
    assert err.value.partner == "bob" and "bob" in str(err.value)


def test_skewed_attempt_times_are_refused():
    st, a, b = network(herald={"max_skew_ns": 100})
    with pytest.raises(HeraldingError, match="max_skew_ns"):
        st.attempt_pair(a, 0, b, 0, 1_000, t_b_ns=5_000)


def test_station_refuses_foreign_or_third_nodes():
    st, a, b = network()
    with pytest.raises(HeraldingError, match="already connects"):
        NVNode("carol", MODELS.nv, np.random.default_rng(0), st.registry, station=st)
    with pytest.raises(HeraldingError, match="different QuantumRegistry"):
        NVNode("dave", MODELS.nv, np.random.default_rng(0), QuantumRegistry(), station=st)
    with pytest.raises(HeraldingError, match="attempt_pair needs"):
        st.attempt_pair(a, 0, a, 0, 0)
