"""netqasm's teleport example, unmodified, on NV nodes with carbons; its output fidelity
against the model's prediction.

The receiver app reports the fidelity itself when netqasm's simulator setting says
NetSquid (``get_qubit_state`` is ours: the node's density matrix); the helpers netqasm
takes from NetSquid (``qubit_from``, ``to_dm``, ``get_fidelity``) are given numpy
equivalents here. Prediction: the Werner pair (``p = (4F - 1) / 3``), the sender's input
qubit dephased in its carbon by every entanglement attempt made while it waits
(``exp(-n / attempts_1e)``), the electrons' DD depolarisation while they hold the pair
(``exp(-t / T_coh)``: the sender's until its last instruction, the receiver's until the
app reads the state, the QNPU's ``qubit_state_read`` event); the carbon gates' own errors (DD trains, fidelity ~0.99 each) are
not in the prediction, so the measured fidelity may only be below it, by at most the
gate-error allowance.
"""

from __future__ import annotations

import math
import os

import netqasm
import netqasm.runtime.settings as nq_settings
import numpy as np
import pytest
from netqasm.runtime.settings import Simulator

from qnodeos_hw.runner.network import NVNetworkFactory, NetworkSettings, run_app_dir
from qnodeos_hw.simulators.physics import load_noise_models

APP = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps", "teleport")
PHI, THETA = math.pi / 2, math.pi / 4  # on the electron table's angle grid


@pytest.fixture
def netsquid_reporting(monkeypatch):
    monkeypatch.setenv("NETQASM_SIMULATOR", "debug")  # sim_states imports NetSquid otherwise
    import importlib
    sim_states = importlib.import_module("netqasm.sdk.toolbox.sim_states")
    def qubit_from(phi, theta):
        return np.array([math.cos(theta / 2), np.exp(1j * phi) * math.sin(theta / 2)])

    monkeypatch.setattr(sim_states, "qubit_from", qubit_from)
    monkeypatch.setattr(sim_states, "to_dm", lambda v: np.outer(v, v.conj()))
    monkeypatch.setattr(sim_states, "get_fidelity",
                        lambda v, dm: float(np.real(v.conj() @ np.asarray(dm) @ v)))
    monkeypatch.setattr(nq_settings, "get_simulator", lambda: Simulator.NETSQUID)


def _noise(tmp_path, fidelity=0.9, p_success=0.02):
    f = tmp_path / "noise.yaml"
    f.write_text(f"heralding: {{state_model: werner, fidelity: {fidelity}, "
                 f"p_success: {p_success}}}\n")
    return str(f)


def _teleport(noise, seed, num_qubits=3):
    res = run_app_dir(APP, NVNetworkFactory(seed=seed, num_qubits=num_qubits, noise_file=noise),
                      NetworkSettings(seed=seed, trace_instructions=True), timeout_s=60,
                      inputs={"sender": {"phi": PHI, "theta": THETA}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    return res


def _prediction(res, noise):
    models = load_noise_models(noise)
    built = res.network._built
    attempts = built["sender"].physics.station.attempts // 2  # both ends count each attempt
    ev = res.trace.events
    herald = min(e.t_ns for e in ev if e.kind == "entanglement_delivered")
    last = {n: max(e.t_ns for e in ev if e.node == n and e.kind == "instr_sent")
            for n in ("sender", "receiver")}
    # the receiver's electron holds the teleported state until the app reads it
    read = [e.t_ns for e in ev if e.node == "receiver" and e.kind == "qubit_state_read"]
    assert read, "the receiver app read no qubit state"
    last["receiver"] = max(last["receiver"], read[-1])
    held_s = sum(last[n] - herald for n in last) * 1e-9  # electrons holding the pair halves
    nv = models.nv
    carbon = nv.carbons[0]  # the QMMU puts the sender's first qubit on carbon 1
    p_pair = (4 * models.heralding.fidelity - 1) / 3 * math.exp(-held_s / nv.t_coh_s)
    dephase = math.exp(-attempts / carbon.attempts_1e)
    r = np.array([math.sin(THETA) * math.cos(PHI), math.sin(THETA) * math.sin(PHI),
                  math.cos(THETA)])
    out = p_pair * np.array([dephase * r[0], dephase * r[1], r[2]])
    return (1 + r @ out) / 2, attempts


@pytest.mark.parametrize("seed,num_qubits", [(s, q) for q in (3, 2) for s in range(1, 7)],
                         ids=[f"{q - 1}carbon{'s' if q > 2 else ''}-s{s}"
                              for q in (3, 2) for s in range(1, 7)])
def test_teleport_on_nv_nodes_with_carbons_matches_the_model(tmp_path, netsquid_reporting, seed,
                                                             num_qubits):
    """With two carbons the SDK's move of the pair half out of the electron is a mov to
    carbon 2; with one carbon it is a rename (the QMMU's unbacked fresh qubit) and the
    sender's carbon is swapped with the electron before its readout (electron_moves)."""
    noise = _noise(tmp_path)
    res = _teleport(noise, seed, num_qubits)
    measured = res.results["receiver"]["fidelity"]
    predicted, attempts = _prediction(res, noise)
    assert attempts > 0
    # below the prediction by the carbon and electron gate errors only (about 12 carbon
    # trains and a dozen electron gates on the path: allowance 0.08), never above it
    assert predicted - 0.08 <= measured <= predicted + 0.01, (measured, predicted, attempts)
    # the same run with a perfect pair and memories would be far above: the prediction is
    # not trivially met (it is dominated by the electrons' T_coh while the pair is held)
    assert predicted < 0.9


def test_teleport_after_many_attempts_matches_the_model(tmp_path, netsquid_reporting):
    """Few successes per attempt: the memory waits through many attempts and dephases
    (the model's main NV memory noise); prediction and measurement fall together."""
    noise = _noise(tmp_path, p_success=0.0005)
    res = _teleport(noise, 2)
    measured = res.results["receiver"]["fidelity"]
    predicted, attempts = _prediction(res, noise)
    assert attempts > 300
    assert predicted - 0.08 <= measured <= predicted + 0.01, (measured, predicted, attempts)
