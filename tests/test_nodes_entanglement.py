"""Simulated node factories: two NV nodes entangling in attempt windows from their own
threads through controller -> physics -> heralding station; the ion node's state probe."""

import math
import threading

import numpy as np
import pytest
from qcodes.instrument import Instrument

from qnodeos_hw.nodes import simulated_ion_node, simulated_nv_network
from qnodeos_hw.qdevice import EntangleMode, ResponseKind
from qnodeos_hw.qdrivers.base import NotSimulatedError
from qnodeos_hw.simulators.physics import BELL_STATES, load_noise_models

WINDOW = 2000
WINDOWS = 300


@pytest.fixture
def pair():
    nodes = simulated_nv_network(("client", "server"), seed=7)
    yield nodes
    for n in nodes.values():
        n.close()
    Instrument.close_all()


def _windows(node, peer, out, n):
    d = node.qdriver
    for _ in range(n):
        t0 = d.now_ns()
        r = d.entangle(0, EntangleMode.KEEP, peer, attempts=WINDOW)
        out.append((r, d.now_ns() - t0))


def test_attempt_windows_pair_across_threads(pair):
    res = {"client": [], "server": []}
    threads = [threading.Thread(target=_windows, args=(pair["client"], "server", res["client"], WINDOWS)),
               threading.Thread(target=_windows, args=(pair["server"], "client", res["server"], WINDOWS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(res["client"]) == len(res["server"]) == WINDOWS
    for (rc, dc), (rs, ds) in zip(res["client"], res["server"]):
        assert rc.kind is rs.kind and rc.bell_index == rs.bell_index   # both told the same
    ok = [r for r, _ in res["client"] if r.kind is ResponseKind.ENT_SUCCESS]
    p = load_noise_models().heralding.p_success
    p_window = 1 - (1 - p) ** WINDOW
    sigma = math.sqrt(WINDOWS * p_window * (1 - p_window))
    assert abs(len(ok) - WINDOWS * p_window) <= 3 * sigma
    tick = 10_000
    for r, dt in res["client"]:
        if r.kind is ResponseKind.ENT_FAILURE:
            # a spent window lasts the whole budget (5 us attempts), to tick resolution
            assert WINDOW * 5_000 <= dt <= WINDOW * 5_000 + 3 * tick
        else:
            assert dt <= WINDOW * 5_000 + 3 * tick


def test_heralded_state_is_the_noise_models_state(pair):
    c, s = pair["client"], pair["server"]
    out = {}

    def run(node, peer):
        for _ in range(200):
            r = node.qdriver.entangle(0, EntangleMode.KEEP, peer, attempts=60000)
            if r.kind is ResponseKind.ENT_SUCCESS:
                out[node.name] = r
                return

    ts = [threading.Thread(target=run, args=(c, "server")), threading.Thread(target=run, args=(s, "client"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    r = out["client"]
    rho = c.physics.registry.reduced_density_matrix([("client", 0), ("server", 0)])
    bell = BELL_STATES[r.bell_index]
    fid = float(np.real(bell.conj() @ rho @ bell))
    assert fid == pytest.approx(load_noise_models().heralding.fidelity, abs=0.03)
    one = c.qdriver.qubit_state((0,))
    assert one.shape == (2, 2) and np.trace(one) == pytest.approx(1.0)


def test_ion_node_state_probe_and_real_station_refusal():
    ion = simulated_ion_node("ionp", seed=2)
    try:
        rho = ion.qdriver.qubit_state((0,))
        assert rho.shape == (2, 2) and np.trace(rho).real == pytest.approx(1.0)
        from qnodeos_hw.qdrivers.link_driver import LinkQDriver
        from qnodeos_hw.qdevice import ion_spec
        real = LinkQDriver(transport=None, spec=ion_spec(), now_ns=lambda: 0)
        with pytest.raises(NotSimulatedError, match="real station"):
            real.qubit_state((0,))
    finally:
        ion.close()
        Instrument.close_all()
