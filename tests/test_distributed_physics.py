"""Physics spread over processes (issue 14): nodes and links that share nothing but
messages give the outcomes and states of the one shared registry.

The "processes" here are node builds and link servers in threads of the test process,
talking over loopback TCP (QCoDeS instrument names are per process, so the shared
network is built, run and closed before the distributed one)."""

import json
import socket
import threading
import time

import numpy as np
import pytest

from qnodeos_hw.nodes import simulated_nv_network, simulated_nv_node_distributed
from qnodeos_hw.protocol.framing import recv_frame, send_frame
from qnodeos_hw.simulators.physics.distributed import DistributedRegistry
from qnodeos_hw.simulators.physics.link_service import serve_link
from qnodeos_hw.simulators.physics.physics_wire import PhysicsAuthError, PhysicsClient, wire_mac

SECRET = "5e" * 16
CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex)
RATE = 2.4e9
WAVE_I = 0.4 * np.hanning(96)  # a short MW pulse (arbitrary but fixed)
WAVE_Q = 0.1 * np.hanning(96)


def _distributed(names, seed, num_qubits, pairs, bin_ns=None):
    """Link servers for ``pairs`` and every node of ``names`` as its own build."""
    links = {p: serve_link(p, names, seed=seed, secret=SECRET, bin_ns=bin_ns) for p in pairs}
    nodes = {}
    for n in names:
        mine = {(p[1] if p[0] == n else p[0]): s.address for p, s in links.items() if n in p}
        nodes[n] = simulated_nv_node_distributed(n, names, seed=seed, num_qubits=num_qubits,
                                                 links=mine, secret=SECRET, bin_ns=bin_ns)
    return nodes, links


def _close(nodes, links=()):
    for n in nodes.values():
        n.close()
    for s in dict(links).values():
        s.close()


def _entangle(physics_by_node, link_of, t0, bin_ns=None):
    """Each node (own thread) attempts windows on (qubit, link) until a herald (with
    ``bin_ns``: one window per bin); returns node -> (bell, windows, t_end)."""
    out, errors = {}, []

    def run(n):
        try:
            ph = physics_by_node[n]
            qubit, link = link_of[n]
            t, k = t0, 0
            while True:
                heralded, bell, _, used = ph.entangle_window(qubit, t, False, 25, link)
                k += 1
                t += used * ph.links[link].model.attempt_duration_ns + 1_000
                if heralded:
                    out[n] = (bell, k, t)
                    return
                if bin_ns:
                    t = (t // bin_ns + 1) * bin_ns
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in link_of]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    return out


def _two_node_sequence(nodes):
    a, b = nodes["alice"].physics, nodes["bob"].physics
    a.initialize(0, 1_000)
    b.initialize(0, 1_000)
    b.initialize(1, 2_000)
    heralds = _entangle({"alice": a, "bob": b}, {"alice": (0, 0), "bob": (0, 0)}, 5_000)
    t = max(v[2] for v in heralds.values())
    rec = {"heralds": heralds}
    rec["pair"] = a.reduced_density_matrix([0], t)  # a read: nothing moves
    a.play_mw(0, "x90", WAVE_I, WAVE_Q, RATE, t + 100)  # forwarded to the link
    b.play_mw(0, "x90", WAVE_I, WAVE_Q, RATE, t + 100)
    nodes["alice"].progress(t + 150)  # one-way, in order with the calls
    b.set_dd(0, True, t + 200)
    b.apply_gate([0, 1], CNOT, t + 5_000)  # pulls the pair into bob
    rec["p0_alice"] = a.prob_zero(0)  # forwarded: link -> bob
    rec["alice_after_cnot"] = a.reduced_density_matrix([0], t + 20_000)  # memory decay
    rec["bob_rdm"] = b.reduced_density_matrix([0, 1], t + 30_000)
    rec["outcomes"] = [a.readout(0, t + 40_000), b.readout(0, t + 50_000)]
    rec["carbon"] = b.reduced_density_matrix([1], t + 60_000)
    rec["alice_end"] = a.reduced_density_matrix([0], t + 70_000)
    return rec


def _assert_same(x, y):
    assert x.keys() == y.keys()
    for k in x:
        if isinstance(x[k], np.ndarray):
            assert np.abs(x[k] - y[k]).max() < 1e-12, k
        elif isinstance(x[k], float):
            assert abs(x[k] - y[k]) < 1e-12, k
        else:
            assert x[k] == y[k], k


def test_two_nodes_distributed_give_the_shared_registry_outcomes_and_states():
    names = ("alice", "bob")
    shared = simulated_nv_network(names, seed=5, num_qubits=2)
    try:
        want = _two_node_sequence(shared)
    finally:
        _close(shared)
    nodes, links = _distributed(names, 5, 2, [names])
    try:
        got = _two_node_sequence(nodes)
        ra, rb = nodes["alice"].physics.registry, nodes["bob"].physics.registry
        assert isinstance(ra, DistributedRegistry)
        # alice's ops reached bob through the link's pointer; her readout brought her home
        assert ra.hops >= 1 and ra.is_local(("alice", 0)) and rb.is_local(("bob", 0))
        assert links[names].registry.away[("alice", 0)] == "bob"
        assert links[names].stats()["heralds"] == 1
        # the one-way maps on a remote half were queued and went with the next request
        assert ra.deferred + rb.deferred >= 1
        assert set(links[names].stats()["by_op"]) <= {"window", "progress", "measure", "p0",
                                                       "pull", "batch", "rdm", "reset"}
    finally:
        _close(nodes, links)
    _assert_same(want, got)
    assert np.trace(want["bob_rdm"]).real == pytest.approx(1.0)


BIN = 1_000_000


def _binned_sequence(nodes):
    a, b = nodes["alice"].physics, nodes["bob"].physics
    a.initialize(0, 1_000)
    b.initialize(0, 1_000)
    nodes["bob"].progress(2 * BIN, "alice")  # bob attempts nothing in bins 0 and 1
    lone = a.entangle_window(0, 10_000, False, 50)  # alone in bin 0: a failed window
    heralds = _entangle({"alice": a, "bob": b}, {"alice": (0, 0), "bob": (0, 0)}, 2 * BIN, BIN)
    t = max(v[2] for v in heralds.values())
    return {"lone": lone, "heralds": heralds, "rho": a.reduced_density_matrix([0], t),
            "outcomes": [b.readout(0, t + 1_000), a.readout(0, t + 2_000)]}


def test_windows_paired_by_bin_and_progress_over_the_wire():
    names = ("alice", "bob")
    shared = simulated_nv_network(names, seed=2, num_qubits=1, bin_ns=BIN)
    try:
        want = _binned_sequence(shared)
    finally:
        _close(shared)
    nodes, links = _distributed(names, 2, 1, [names], bin_ns=BIN)
    try:
        got = _binned_sequence(nodes)
    finally:
        _close(nodes, links)
    assert want["lone"][0] is False and want["lone"][3] == 50
    _assert_same(want, got)


def _chain_sequence(nodes):
    a, b, c = (nodes[n].physics for n in ("alice", "bob", "charlie"))
    for ph in (a, b, c):
        ph.initialize(0, 1_000)
    # bob's links: 0 -> alice, 1 -> charlie; charlie's: 0 -> alice, 1 -> bob
    h1 = _entangle({"alice": a, "bob": b}, {"alice": (0, 0), "bob": (0, 0)}, 5_000)
    t = max(v[2] for v in h1.values())
    h2 = _entangle({"bob": b, "charlie": c}, {"bob": (1, 1), "charlie": (0, 1)}, t)
    t = max(v[2] for v in h2.values())
    b.apply_gate([0, 1], CNOT, t + 1_000)  # both pairs into bob's process
    rec = {"h1": h1, "h2": h2}
    rec["outcomes"] = [a.readout(0, t + 5_000), c.readout(0, t + 6_000),
                       b.readout(0, t + 7_000)]
    rec["bob_carbon"] = b.reduced_density_matrix([1], t + 8_000)
    rec["alice"] = a.reduced_density_matrix([0], t + 9_000)
    return rec


def test_chain_merge_at_bob_and_forwarded_measurements():
    names = ("alice", "bob", "charlie")
    shared = simulated_nv_network(names, seed=11, num_qubits=2)
    try:
        want = _chain_sequence(shared)
    finally:
        _close(shared)
    pairs = [("alice", "bob"), ("bob", "charlie")]  # no alice-charlie link process
    nodes, links = _distributed(names, 11, 2, pairs)
    try:
        ra, rb, rc = (nodes[n].physics.registry for n in names)
        a, b, c = (nodes[n].physics for n in names)
        for ph in (a, b, c):
            ph.initialize(0, 1_000)
        h1 = _entangle({"alice": a, "bob": b}, {"alice": (0, 0), "bob": (0, 0)}, 5_000)
        assert ra.away[("alice", 0)] == "link:alice-bob"
        t = max(v[2] for v in h1.values())
        h2 = _entangle({"bob": b, "charlie": c}, {"bob": (1, 1), "charlie": (0, 1)}, t)
        t = max(v[2] for v in h2.values())
        b.apply_gate([0, 1], CNOT, t + 1_000)
        held = rb.partners(("bob", 0))
        assert set(held) == {("alice", 0), ("bob", 0), ("bob", 1), ("charlie", 0)}
        assert links[pairs[0]].registry.away[("alice", 0)] == "bob"
        assert links[pairs[1]].registry.away[("charlie", 0)] == "bob"
        got = {"h1": h1, "h2": h2}
        got["outcomes"] = [a.readout(0, t + 5_000), c.readout(0, t + 6_000),
                           b.readout(0, t + 7_000)]
        got["bob_carbon"] = b.reduced_density_matrix([1], t + 8_000)
        got["alice"] = a.reduced_density_matrix([0], t + 9_000)
        assert ra.hops >= 1 and rc.hops >= 1  # followed the links' pointers to bob
        assert ra.is_local(("alice", 0)) and rc.is_local(("charlie", 0))
        with pytest.raises(Exception, match="no link process"):
            a.entangle_window(0, t + 20_000, False, 1, 1)  # alice-charlie: unserved
    finally:
        _close(nodes, links)
    _assert_same(want, got)


# ------------------------------------------------------------------------ trust
def _hello(sock, name, secret_hex):
    ch = json.loads(recv_frame(sock))
    send_frame(sock, json.dumps({"name": name, "nonce": "ab" * 16, "listen": None, "mac": wire_mac(
        bytes.fromhex(secret_hex), ch["nonce"], name, ch["server"])}).encode())
    return recv_frame(sock)


def test_strangers_and_garbage_are_refused_and_the_server_keeps_serving():
    names = ("alice", "bob")
    link = serve_link(names, names, secret=SECRET)
    holder = DistributedRegistry("bob", {"alice", "bob", "link:alice-bob"}, SECRET,
                                 inflight_timeout_s=0.05)
    try:
        with pytest.raises(PhysicsAuthError):  # a name that is no process of the network
            PhysicsClient("mallory", "link:alice-bob", link.address, SECRET).call({"op": "x"})
        with pytest.raises(PhysicsAuthError):  # a node of the network, the wrong secret
            PhysicsClient("alice", "link:alice-bob", link.address, "00" * 16).call({"op": "x"})
        with pytest.raises(PhysicsAuthError):  # the wrong server at that address
            PhysicsClient("alice", "link:bob-carol", link.address, SECRET).call({"op": "x"})
        deadline = time.monotonic() + 5
        while link.stats()["refused"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # the third client hung up after the challenge
        assert link.stats()["refused"] == 3 and link.stats()["connections"] == 0

        raw = socket.create_connection(link.address)
        assert _hello(raw, "alice", SECRET) is not None
        send_frame(raw, b"\x80 not json")
        assert json.loads(recv_frame(raw))["error"] == "MalformedRequestError"
        send_frame(raw, json.dumps({"op": "window", "qubit": -1, "t_ns": 0,
                                    "max_attempts": 1}).encode())
        assert "qubit" in json.loads(recv_frame(raw))["message"]
        good = PhysicsClient("alice", "link:alice-bob", link.address, SECRET)
        r = good.call({"op": "p0", "key": ["bob", 0]})  # bob's qubit, not hers
        assert r["error"] == "PermissionError" and "own qubits" in r["message"]
        raw.sendall((2 ** 31).to_bytes(4, "big"))  # announces a huge frame: refused, closed
        assert recv_frame(raw) is None
        raw.close()
        # the server goes on serving a good client
        assert good.call({"op": "teleport"})["error"] == "MalformedRequestError"
        other = PhysicsClient("alice", "bob", holder.address, SECRET)
        assert other.call({"op": "p0", "key": ["alice", 0]})["error"] == "KeyNotHeldError"
        holder.add_qubit(("alice", 3))
        assert other.call({"op": "measure", "key": ["alice", 3], "u01": 0.25}) == {
            "out": 0, "r": [0.0, 0.0, 1.0]}
        assert not holder.is_local(("alice", 3))  # alone after the measurement: sent home
        # queued one-way ops: applied in order before the op; a bad one refuses them all
        holder.add_qubit(("alice", 4))  # fully mixed
        x = [1.0, 0, 0, 0, -1.0, 0, 0, 0, -1.0]  # Bloch map of an X flip
        flip = {"op": "affine", "m": x, "c": [0.0, 0.0, 0.0]}
        to_zero = {"op": "decohere", "a": 1.0, "b": 0.0, "c": 1.0, "phi": 0.0}  # z -> 1
        bad = other.call({"op": "p0", "key": ["alice", 4], "before": [to_zero, {"op": "measure"}]})
        assert bad["error"] == "MalformedRequestError"
        r = other.call({"op": "p0", "key": ["alice", 4], "before": [flip]})
        assert r["p0"] == pytest.approx(0.5)  # the refused batch changed nothing
        holder.add_qubit(("alice", 5))
        r = other.call({"op": "p0", "key": ["alice", 5], "before": [to_zero, flip]})
        assert r["p0"] == pytest.approx(0.0)  # |0>, then flipped: in that order
        assert link.stats()["bad_frames"] >= 2
    finally:
        link.close()
        holder.close()
