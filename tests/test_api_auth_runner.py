"""A network the runner starts asks every program connection to its end-node API for
the node's key (protocol.api_auth): a stranger on loopback cannot drive the qubits."""

from __future__ import annotations

import socket

import pytest

from qnodeos_hw.protocol import api_auth
from qnodeos_hw.protocol.framing import send_frame
from qnodeos_hw.runner.network import (IdealNetworkFactory, NetworkSettings, SimulatedNetwork,
                                       run_mains)

APPS = "qnodeos_hw.experiments.apps"


def test_the_end_node_api_refuses_a_connection_without_the_nodes_key():
    with SimulatedNetwork(["alice", "bob"], IdealNetworkFactory(num_qubits=1, seed=1),
                          NetworkSettings(seed=1, time_mode="host")) as net:
        entry = net.directory.nodes["alice"]
        key = net.directory.qnpu_keys["alice"]
        assert key and key != net.directory.qnpu_keys["bob"]
        with socket.create_connection(entry.qnpu, timeout=5) as s:  # a wrong key
            with pytest.raises(api_auth.CredentialRefusedError, match="refused the credential"):
                api_auth.answer(s, b"0" * 32, "alice")
        with socket.create_connection(entry.qnpu, timeout=5) as s:  # netqasm without a key
            s.settimeout(5)
            try:
                send_frame(s, b"\x00" * 12)
                while s.recv(4096):  # the server's challenge, then it closes
                    pass
            except (ConnectionResetError, BrokenPipeError):
                pass
        server = net.nodes["alice"].server
        assert len(server.refused) == 2 and all("alice" in r for r in server.refused)
        assert net.nodes["alice"].qnpu.errors == []


def test_programs_of_a_runner_started_network_prove_the_key():
    res = run_mains({"client": f"{APPS}.dqc_client:main", "server": f"{APPS}.dqc_server:main"},
                    IdealNetworkFactory(num_qubits=2, seed=4),
                    NetworkSettings(seed=4, bin_ns=100_000, trace_instructions=False),
                    inputs={"client": {"alpha": 0, "theta": 0, "reps": 2},
                            "server": {"bases": ["Z", "Z"]}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
    assert all(not n.server.refused for n in res.network.nodes.values())
