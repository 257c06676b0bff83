"""Trust boundaries: app ids belong to their connection, frames have a maximum size
(refused before allocation), classical senders prove their node, peer messages speak
only for their own node, unpaired requests end with a named error in bounded time."""

from __future__ import annotations

import json
import socket
import struct
import textwrap
import time

import pytest
from netqasm.backend.messages import (ErrorMessage, InitNewAppMessage, MsgDoneMessage,
                                      OpenEPRSocketMessage, StopAppMessage, SubroutineMessage,
                                      deserialize_return_msg)
from netqasm.lang.parsing import parse_text_subroutine

from qnodeos_hw.qdevice.clock import VirtualClock
from qnodeos_hw.qdrivers.ideal import IdealQDriver
from qnodeos_hw.qnpu import QNPU, QNPUServer
from qnodeos_hw.qnpu.errors import PeerProtocolError
from qnodeos_hw.protocol.framing import FrameTooLargeError, recv_frame, send_frame
from qnodeos_hw.qnpu.netstack import check_peer_message
from qnodeos_hw.qnpu.qnpu import EXT_ERROR, EXT_STATE_REP, EXT_STATE_REQ


@pytest.fixture
def node():
    q = QNPU("n", IdealQDriver("n", 2, VirtualClock()), {"n": 0, "m": 1}).start()
    srv = QNPUServer(q).start()
    yield q, srv
    srv.close()
    q.stop()


def _recv(s):
    f = recv_frame(s)
    if f[0] == EXT_ERROR:
        return ("detail", json.loads(f[1:]))
    if f[0] == EXT_STATE_REP:
        return ("state", json.loads(f[1:]))
    return deserialize_return_msg(f)


def _sub(text, app_id):
    return bytes(SubroutineMessage(parse_text_subroutine(f"# NETQASM 1.0\n# APPID {app_id}\n"
                                                         + text)))


def test_a_connection_touches_only_the_app_ids_it_registered(node):
    q, srv = node
    owner = socket.create_connection(srv.address, timeout=10)
    other = socket.create_connection(srv.address, timeout=10)
    send_frame(owner, bytes(InitNewAppMessage(app_id=3, max_qubits=1)))
    assert isinstance(_recv(owner), MsgDoneMessage)
    send_frame(owner, _sub("set Q0 0\nqalloc Q0\ninit Q0\n", 3))  # keeps a qubit
    assert isinstance(_recv(owner), MsgDoneMessage)
    attempts = [_sub("set Q0 0\nmeas Q0 M0\nret_reg M0\n", 3),
                bytes(OpenEPRSocketMessage(app_id=3, epr_socket_id=0, remote_node_id=1,
                                           remote_epr_socket_id=0)),
                bytes(StopAppMessage(app_id=3))]
    for raw in attempts:
        send_frame(other, raw)
        detail, err = _recv(other), _recv(other)
        assert detail[0] == "detail" and detail[1]["error"] == "AppIdNotOwnedError", detail
        assert "not registered on this connection" in detail[1]["message"]
        assert isinstance(err, ErrorMessage)
    send_frame(other, bytes([EXT_STATE_REQ]) + json.dumps({"app_id": 3, "qubits": [0]}).encode())
    rep = _recv(other)
    assert rep[0] == "state" and not rep[1]["ok"] and rep[1]["error"] == "AppIdNotOwnedError"
    # the owner's process and qubit were not disturbed
    assert len(q.procs) == 1 and q.qmmu.used() == 1
    send_frame(owner, bytes([EXT_STATE_REQ]) + json.dumps({"app_id": 3, "qubits": [0]}).encode())
    assert _recv(owner)[1]["ok"]
    owner.close()
    other.close()


def test_an_oversized_length_prefix_is_refused_before_allocation(node):
    q, srv = node

    class FakeSock:
        """Announces 4 GiB; a receiver that allocated first would ask for the bytes."""

        def __init__(self):
            self.asked = []

        def recv_into(self, view, n=0):
            self.asked.append(n or len(view))
            view[:4] = struct.pack(">I", 0xFFFFFFFF)
            return 4

    fake = FakeSock()
    with pytest.raises(FrameTooLargeError, match="exceeds the 1048576-byte limit"):
        recv_frame(fake, 1 << 20)
    assert fake.asked == [4]  # only the header was read
    c = socket.create_connection(srv.address, timeout=10)
    send_frame(c, bytes(InitNewAppMessage(app_id=0, max_qubits=1)))
    assert isinstance(_recv(c), MsgDoneMessage)
    c.sendall(struct.pack(">I", 2**31))  # then nothing: the server must not wait for it
    c.settimeout(10)
    assert c.recv(1) == b""  # dropped at once
    deadline = time.monotonic() + 5
    while q.procs and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not q.procs and srv.refused and "2147483648 bytes" in srv.refused[0]


def test_classical_hub_senders_prove_their_node():
    from qnodeos_hw.cnpu.directory import NetworkDirectory, NodeEntry
    from qnodeos_hw.cnpu.socket import (ClassicalHub, ClassicalMessageError, ClassicalSocket,
                                        encode_message, hello_mac)

    hubs = {n: ClassicalHub() for n in "abc"}
    d = NetworkDirectory({n: NodeEntry(n, i, ("127.0.0.1", 1), hubs[n].address)
                          for i, n in enumerate("abc")},
                         {"alice": "a", "bob": "b", "carol": "c"})
    for n, h in hubs.items():
        h.bind(d, n)
    try:
        da = NetworkDirectory.from_json(d.for_node("a").to_json())  # what a's CNPU gets
        assert sorted(da.pair_keys) == ["a|a", "a|b", "a|c"]
        with pytest.raises(KeyError, match="no key for nodes 'b' and 'c'"):
            da.pair_key("c", "b")
        s = ClassicalSocket("alice", "bob", 0, directory=da, hub=hubs["a"], default_timeout=10)
        s.send("from alice")
        assert hubs["b"].inbox("bob", "alice", 0).get(timeout=10)[0] == "from alice"

        def forged(frm, to, key):
            c = socket.create_connection(hubs["b"].address, timeout=10)
            nonce = json.loads(recv_frame(c))["nonce"]
            send_frame(c, json.dumps({"from": frm, "to": to, "sid": 0,
                                      "mac": hello_mac(key, nonce, frm, to, 0)}).encode())
            send_frame(c, encode_message("forged"))
            c.settimeout(10)
            try:
                closed = c.recv(1) == b""
            except ConnectionResetError:  # closed while our message was unread
                closed = True
            c.close()
            return closed

        before = hubs["b"].rejected
        # node a's CNPU claiming to be carol (node c): it does not hold c's key with b
        assert forged("carol", "bob", da.pair_key("a", "b"))
        # a's real key, but to a program that is not on node b
        assert forged("alice", "carol", da.pair_key("a", "b"))
        deadline = time.monotonic() + 5
        while hubs["b"].rejected < before + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert hubs["b"].rejected == before + 2
        assert hubs["b"].inbox("bob", "carol", 0).empty()
        with pytest.raises(ClassicalMessageError, match="exceeds the 1048576-byte limit"):
            s.send("x" * (1 << 20))
        with pytest.raises(ClassicalMessageError, match="not JSON data"):
            encode_message(__import__("netqasm.sdk.classical_communication.message",
                                      fromlist=["StructuredMessage"]).StructuredMessage(
                "h", object()))
        s.close()
    finally:
        for h in hubs.values():
            h.close()


def test_peer_messages_speak_only_for_their_own_node():
    req = {"t": "req", "rid": 5, "creator": "m", "receiver": "n", "csock": 0, "rsock": 0,
           "type": 0, "number": 1, "rot": [0, 0, 0], "axes": 0, "rb": 0, "t_post": 0, "ts": 1}
    assert check_peer_message("m", req, "n")["creator"] == "m"
    with pytest.raises(PeerProtocolError, match="requests only for itself"):
        check_peer_message("x", req, "n")  # came over x's link, claims m
    with pytest.raises(PeerProtocolError, match="requests only for itself"):
        check_peer_message("m", dict(req, receiver="o"), "n")
    with pytest.raises(PeerProtocolError, match="'number' must be an integer"):
        check_peer_message("m", dict(req, number=True), "n")
    with pytest.raises(PeerProtocolError, match="unknown peer message"):
        check_peer_message("m", {"t": "__import__('os')", "rid": 1, "ts": 0}, "n")


APP = {
    "app_creator.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None):
            epr = EPRSocket("receiver", 1)  # the receiver never opens socket 1
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                epr.create_keep()
                conn.flush()
        """,
    "app_receiver.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None):
            epr = EPRSocket("creator", 0)  # nobody creates on socket 0
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                epr.recv_keep()
                conn.flush()
        """,
}


@pytest.mark.parametrize("time_mode", ["modelled", "host"])
def test_unpaired_requests_end_with_a_named_timeout(tmp_path, time_mode):
    from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, run_app_dir
    for name, text in APP.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    timeout_ns = 50_000_000 if time_mode == "modelled" else 500_000_000
    t0 = time.monotonic()
    res = run_app_dir(str(tmp_path), IdealNetworkFactory(seed=1),
                      NetworkSettings(time_mode=time_mode, bin_ns=100_000, seed=1,
                                      request_timeout_ns=timeout_ns), timeout_s=30)
    wall = time.monotonic() - t0
    for role in ("creator", "receiver"):
        err = res.outcomes[role].error
        assert err and "EntanglementTimeoutError" in err, (role, err)
    assert wall < 20
    removed = {e.node for e in res.trace.of_kind("process_removed")}
    assert removed == {"creator", "receiver"}
    for n in res.network.nodes.values():
        assert not n.qnpu.board.pending() and n.qnpu.qmmu.used() == 0
    if time_mode == "modelled":  # at the virtual deadline, on the creator's node
        t = [e.t_ns for e in res.trace.of_kind("entanglement_timeout") if e.node == "creator"]
        posted = [e.t_ns for e in res.trace.of_kind("epr_request") if e.node == "creator"]
        assert t and t[0] - posted[0] == timeout_ns


def test_a_program_cannot_take_the_nodes_memory_with_arrays(node):
    q, srv = node
    c = socket.create_connection(srv.address, timeout=10)
    send_frame(c, bytes(InitNewAppMessage(app_id=0, max_qubits=1)))
    assert isinstance(_recv(c), MsgDoneMessage)
    t0 = time.monotonic()
    for text in ("set R0 2147483647\narray R0 @0\n",  # 16 GB of list before the bound
                 "".join(f"set R0 600000\narray R0 @{i}\n" for i in range(4))):
        send_frame(c, _sub(text, 0))
        detail, err = _recv(c), _recv(c)
        assert detail[1]["error"] == "ExecutionError(ValueError)", detail
        assert "array length" in detail[1]["message"] or "entries" in detail[1]["message"]
        assert isinstance(err, ErrorMessage)
    assert time.monotonic() - t0 < 5
    send_frame(c, _sub("set R0 10\narray R0 @0\nset R1 7\nret_reg R1\n", 0))  # still served
    assert _recv(c).value == 7 and isinstance(_recv(c), MsgDoneMessage)
    c.close()
