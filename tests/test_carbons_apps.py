"""netqasm's example apps on NV nodes with carbons: chsh (with its repeater node) and
anonymous_transmission (four nodes, one heralding station per pair) run; an app asking
for what the controller cannot play fails at once with a named error."""

from __future__ import annotations

import os
import time

import netqasm
import pytest

from qnodeos_hw.runner.network import NVNetworkFactory, NetworkSettings, run_app_dir

APPS = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps")


def _run(app, num_qubits, timeout_s=30):
    t = time.perf_counter()
    res = run_app_dir(os.path.join(APPS, app), NVNetworkFactory(seed=1, num_qubits=num_qubits),
                      NetworkSettings(seed=1, trace_instructions=False), timeout_s=timeout_s)
    return res, time.perf_counter() - t


@pytest.mark.parametrize("app,num_qubits", [("chsh", 3), ("anonymous_transmission", 3)])
def test_multi_node_apps_run_on_nv_nodes_with_carbons(app, num_qubits):
    res, _ = _run(app, num_qubits)
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
    assert len(res.outcomes) >= 3


def test_an_angle_finer_than_the_controller_fails_at_once_with_its_name():
    """blind_rotation's server rotates a carbon by 225 pi / 2^16 (netqasm's float-angle
    approximation): finer than the ROT_Z word, refused by name; the client does not wait
    out a timeout (its request is given up, or the runtime stops it naming the partner)."""
    res, wall = _run("blind_rotation", 6, timeout_s=60)
    assert not res.ok
    assert "UnsupportedNetQASMError" in res.outcomes["server"].error
    assert "frame rotation" in res.outcomes["server"].error
    client = res.outcomes["client"].error
    assert "EntanglementAbortedError" in client or "PartnerFailedError" in client, client
    assert wall < 20


def test_teleport_runs_on_one_carbon():
    """The issue's hang, then a QubitAllocationError: teleport's sender takes three virtual
    qubits on NV (the SDK moves the pair half out of the electron before it reads the
    carbon). On electron + 1 carbon the move is a rename and the carbon is swapped with the
    electron for its readout (qnpu/electron_moves.py): it runs (fidelity:
    test_carbons_teleport)."""
    res, wall = _run("teleport", 2, timeout_s=60)
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
    assert wall < 20


def test_a_program_out_of_qubits_fails_at_once_naming_the_budget():
    """magic_square's players hold four qubits at once (two pairs and two more): on
    electron + 1 carbon the fourth has nowhere to live; it fails by name, fast."""
    res, wall = _run("magic_square", 2, timeout_s=60)
    assert not res.ok
    errors = " ".join(o.error or "" for o in res.outcomes.values())
    assert "QubitAllocationError" in errors
    assert wall < 10
