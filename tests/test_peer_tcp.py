"""The QNPU peer protocol over TCP: the same run gives the same bytes as over the
in-process bus (modelled time), and a listener refuses strangers, wrong keys, garbage
and oversized frames while it keeps serving the nodes of its network."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, run_mains
from qnodeos_hw.protocol.framing import recv_frame, send_frame
from qnodeos_hw.qnpu.peer_tcp import MAX_PEER_FRAME, TcpPeerBus, peer_mac
from qnodeos_hw.qnpu.peers import PeerUnreachableError
from qnodeos_hw.protocol.trace import modelled_bytes, without_wall


APPS = "qnodeos_hw.experiments.apps"
KEYS = {"a|b": b"k-ab", "a|c": b"k-ac", "b|c": b"k-bc"}


def _key(x, y):
    return KEYS["|".join(sorted((x, y)))]


def _dqc(transport: str):
    k = 8
    res = run_mains({"client": f"{APPS}.dqc_client:main", "server": f"{APPS}.dqc_server:main"},
                    IdealNetworkFactory(num_qubits=1, seed=3, fidelity=0.9, p_success=0.3),
                    NetworkSettings(seed=3, peer_transport=transport),
                    inputs={"client": {"alpha": 2, "theta": 1, "reps": k},
                            "server": {"bases": ["X", "Z"] * (k // 2)}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    return (json.dumps(without_wall(res.results), sort_keys=True, default=str),
            modelled_bytes(res.trace.events), res.network.peers)


def test_dqc_over_tcp_peers_is_byte_identical_to_the_local_bus():
    local, tr_local, _ = _dqc("local")
    tcp, tr_tcp, bus = _dqc("tcp")
    assert isinstance(bus, TcpPeerBus) and bus.refused == 0
    assert tcp == local
    assert tr_tcp == tr_local


@pytest.fixture
def bus():
    b = TcpPeerBus({"a": ("127.0.0.1", 0), "b": ("127.0.0.1", 0), "c": ("127.0.0.1", 0)}, _key)
    got: list = []
    ev = threading.Event()

    def deliver(src, msg):
        got.append((src, msg))
        ev.set()
    b.register("b", deliver)
    yield b, got, ev
    b.close()


def _hello(addr, node, key):
    s = socket.create_connection(addr, timeout=5)
    nonce = json.loads(recv_frame(s))["nonce"]
    send_frame(s, json.dumps({"node": node, "mac": peer_mac(key, nonce, node, "b")}).encode())
    return s


def _closed(s) -> bool:
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_messages_arrive_in_order_under_the_connections_identity(bus):
    b, got, ev = bus
    sender = TcpPeerBus(dict(b.addresses), _key)
    try:
        for i in range(50):
            sender.send("a", "b", {"t": "req", "i": i, "from": "c"})  # a field cannot lie
        deadline = time.monotonic() + 5
        while len(got) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [m["i"] for _, m in got] == list(range(50))
        assert {src for src, _ in got} == {"a"}
        with pytest.raises(PeerUnreachableError, match="no peer address"):
            sender.send("a", "z", {})
        with pytest.raises(ValueError, match="exceeds"):
            sender.send("a", "b", {"x": "y" * MAX_PEER_FRAME})
    finally:
        sender.close()


def test_strangers_wrong_keys_and_garbage_are_refused_and_the_listener_keeps_serving(bus):
    b, got, ev = bus
    addr = b.addresses["b"]
    assert _closed(_hello(addr, "mallory", b"x"))          # not a node of the network
    assert _closed(_hello(addr, "a", b"wrong key"))        # claims a, cannot prove it
    assert b.refused == 2
    s = _hello(addr, "c", _key("c", "b"))
    send_frame(s, b"not json")                               # dropped, connection stays
    send_frame(s, b"[1, 2]")
    send_frame(s, json.dumps({"t": "ready"}).encode())
    assert ev.wait(5) and got == [("c", {"t": "ready"})]
    assert b.bad_frames == 2
    s.sendall(struct.pack(">I", 2**31))                      # refused before allocation
    assert _closed(s)
    assert b.bad_frames == 3
    ev.clear()
    s2 = _hello(addr, "a", _key("a", "b"))                  # others are still served
    send_frame(s2, json.dumps({"t": "fin"}).encode())
    assert ev.wait(5) and got[-1] == ("a", {"t": "fin"})
    s2.close()
