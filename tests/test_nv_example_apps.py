"""Every netqasm example app on NV nodes with carbons, through the shipped network files
(nv_2node / nv_3node, a four-node variant for anonymous_transmission) with ``qubits``
raised: each runs, or fails at once with a named error saying why -- no timeouts
(issue 16). The README's "netqasm example apps" table lists the same rows."""

from __future__ import annotations

import os
import time

import netqasm
import pytest
import yaml

from qnodeos_hw.networks import load_network
from qnodeos_hw.networks.build import app_node_names, plan_network
from qnodeos_hw.nodes import _nv_program
from qnodeos_hw.runner.network import run_app_dir

APPS = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps")
SHIPPED = os.path.join(os.path.dirname(__file__), "..", "qnodeos_hw", "networks")

#: app, qubits per node (electron + carbons), None (runs) or the error it fails with
CASES = [
    ("anonymous_transmission", 3, None),
    ("bb84", 2, None),
    ("blind_grover", 6, None),
    ("blind_rotation", 3, "QubitAllocationError"),      # the server's 4 qubits + a pair
    ("blind_rotation", 6, "UnsupportedNetQASMError"),   # carbon frame 225 pi / 2^16
    ("chsh", 3, None),
    ("dist_cnot", 2, None),
    ("link_layer_ck", 2, None),
    ("link_layer_md", 2, None),
    ("magic_square", 2, "QubitAllocationError"),        # 4 live qubits per player
    ("magic_square", 3, None),
    ("multiple_files", 2, None),
    ("single_node", 2, None),
    ("teleport", 2, None),
    ("three_nodes", 3, None),
]


def network_for(tmp_path, n_nodes: int, qubits: int) -> str:
    base = "nv_2node.yaml" if n_nodes <= 2 else "nv_3node.yaml"
    with open(os.path.join(SHIPPED, base)) as f:
        d = yaml.safe_load(f)
    if n_nodes == 4:
        names = ["alice", "bob", "charlie", "david"]
        links = [f"{a}-{b}" for i, a in enumerate(names) for b in names[i + 1:]]
        d.update(name="nv_4node", nodes={n: {"platform": "nv", "address": "127.0.0.1:0"}
                                         for n in names},
                 quantum_links={k: {"heralding": "nv", "noise_file": None} for k in links},
                 classical_links={k: {} for k in links})
        d["schedule"]["bins"] = links
    for node in d["nodes"].values():
        node["qubits"] = qubits
    path = tmp_path / f"net_{n_nodes}_{qubits}.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def run_on_nv(tmp_path, app: str, qubits: int, timeout_s: float = 60.0):
    app_dir = os.path.join(APPS, app)
    nodes = app_node_names(app_dir)
    plan = plan_network(load_network(network_for(tmp_path, len(nodes), qubits)), nodes,
                        seed=1, trace_instructions=False)
    _nv_program(None, qubits - 1)  # the waveform table (carbon gates designed once per process)
    t = time.perf_counter()
    res = run_app_dir(app_dir, plan.factory, plan.settings, timeout_s=timeout_s)
    return res, time.perf_counter() - t


def test_every_example_app_has_a_case():
    apps = sorted(d for d in os.listdir(APPS) if os.path.isfile(os.path.join(APPS, d, "__init__.py"))
                  and any(f.startswith("app_") for f in os.listdir(os.path.join(APPS, d))))
    assert sorted({c[0] for c in CASES}) == apps and len(apps) == 13


@pytest.mark.parametrize("app,qubits,error", CASES,
                         ids=[f"{a}-{q}q" for a, q, _ in CASES])
def test_example_app_on_nv_runs_or_fails_fast_by_name(tmp_path, app, qubits, error):
    res, wall = run_on_nv(tmp_path, app, qubits)
    errors = {r: o.error.splitlines()[0] for r, o in res.outcomes.items() if o.error}
    assert not any("Timeout" in e for e in errors.values()), errors
    if error is None:
        assert res.ok, errors
    else:
        assert not res.ok and any(error in e for e in errors.values()), errors
        assert wall < 3.0, (wall, errors)  # the failing program at once, its partners 0.5 s later


def test_three_nodes_with_every_bin_for_every_link_runs(tmp_path):
    """No schedule bins: every bin serves every link (the QNPUs take turns by request);
    three_nodes ran into a deadlock there once."""
    path = network_for(tmp_path, 3, 3)
    d = yaml.safe_load(open(path))
    d["schedule"]["bins"] = []
    with open(path, "w") as f:
        yaml.safe_dump(d, f)
    plan = plan_network(load_network(path), ["alice", "bob", "charlie"], seed=1,
                        trace_instructions=False)
    assert plan.settings.links == ()
    res = run_app_dir(os.path.join(APPS, "three_nodes"), plan.factory, plan.settings,
                      timeout_s=30)
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}


def test_all_links_in_one_bin_are_refused_at_load(tmp_path):
    from qnodeos_hw.networks import NetworkConfigError
    path = network_for(tmp_path, 3, 3)
    d = yaml.safe_load(open(path))
    d["schedule"]["bins"] = [["alice-bob", "bob-charlie", "alice-charlie"]]
    with open(path, "w") as f:
        yaml.safe_dump(d, f)
    with pytest.raises(NetworkConfigError, match="share a node"):
        load_network(path)
