"""Same seeds -> same outcomes; different seeds -> different outcomes."""

import math

import numpy as np

from qnodeos_hw.simulators.physics import (HeraldingStation, IonNode, NVNode, QuantumRegistry,
                                           load_noise_models)

SR = 2.4e9
M = load_noise_models()


def _outcomes(seeds):
    reg = QuantumRegistry()
    st = HeraldingStation(M.heralding.with_overrides({"p_success": 0.3}),
                          np.random.default_rng(seeds[0]), reg)
    a = NVNode("alice", M.nv, np.random.default_rng(seeds[1]), reg, station=st)
    b = NVNode("bob", M.nv, np.random.default_rng(seeds[2]), reg, station=st)
    ion = IonNode("ion", M.ion, np.random.default_rng(seeds[3]), reg)
    amp = 1 / (4 * M.nv.rabi_hz_per_amplitude * 240 / SR)  # pi/2
    wi, wq = np.full(240, amp), np.zeros(240)
    out = []
    t = 0
    for _ in range(300):
        t += 100_000
        out.append(a.cr_check(t))
        a.initialize(0, t + 1_000)
        a.play_mw(0, "x90", wi, wq, SR, t + 2_000)
        out.append(a.readout(0, t + 3_000))
        h, bell = st.attempt_pair(a, 0, b, 0, t + 4_000)
        out += [h, bell]
        if h:
            out += [a.readout(0, t + 20_000), b.readout(0, t + 20_000)]
        ion.pump(0, 20_000, t)
        ion.pulse(0, math.pi / 2, 5_000, t + 21_000)
        out.append(ion.detect(0, 500_000, t + 27_000))
        t += 600_000
    return out


def test_same_seeds_give_the_same_outcomes():
    assert _outcomes((1, 2, 3, 4)) == _outcomes((1, 2, 3, 4))


def test_other_seeds_give_other_outcomes():
    ref = _outcomes((1, 2, 3, 4))
    for k in range(4):
        seeds = [1, 2, 3, 4]
        seeds[k] = 99
        assert _outcomes(tuple(seeds)) != ref, f"seed {k} has no effect"
