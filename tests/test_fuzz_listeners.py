"""Fuzzing every listener with 10^4 random and mutated frames: the QNPU end-node API
(TCP), the CNPU classical hub (TCP) and the QNPU peer protocol (JSON messages, through
the peer bus into the QNPU, as a transport will hand them over).

For each: no untyped exception (no thread dies with an exception, the QNPU never
crashes, every error it records is one of its named errors), the listener keeps
serving a well-behaved client in between, and memory grows by less than a bound.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
import tracemalloc

import pytest
from netqasm.backend.messages import (InitNewAppMessage, MsgDoneMessage, OpenEPRSocketMessage,
                                      ReturnRegMessage, SignalMessage, StopAppMessage,
                                      SubroutineMessage, deserialize_return_msg)
from netqasm.lang.parsing import parse_text_subroutine

from qnodeos_hw.qdevice.clock import VirtualClock
from qnodeos_hw.qdrivers.ideal import IdealQDriver
from qnodeos_hw.qnpu import QNPU, QNPUServer, Trace
from qnodeos_hw.qnpu import errors as qerr
from qnodeos_hw.protocol.framing import recv_frame, send_frame
from qnodeos_hw.qnpu.peers import LocalPeerBus
from qnodeos_hw.qnpu.qnpu import EXT_ERROR

N_FRAMES = 10_000
MEMORY_BOUND = 24 * 1024 * 1024  # bytes of growth allowed over a whole fuzz run
BRANCHES = {"jmp", "beq", "bne", "blt", "bge", "bez", "bnz"}


@pytest.fixture
def thread_errors():
    """Exceptions that escaped any thread during the test."""
    seen = []
    old = threading.excepthook
    threading.excepthook = lambda args: seen.append(f"{args.exc_type.__name__}: {args.exc_value} "
                                                    f"in {args.thread.name}")
    yield seen
    threading.excepthook = old


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:  # flip a bit
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # replace a byte
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2 and b:  # truncate
            del b[rng.randrange(len(b)):]
        elif op == 3:  # insert random bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        else:  # duplicate a slice
            if b:
                i = rng.randrange(len(b))
                b[i:i] = b[i:i + rng.randint(1, 16)]
    return bytes(b)


def _sub(text: str, app_id: int) -> bytes:
    return bytes(SubroutineMessage(parse_text_subroutine(
        f"# NETQASM 1.0\n# APPID {app_id}\n" + text)))


def _loops(frame: bytes) -> bool:
    """Whether a frame decodes to a subroutine with a branch: the QNPU is non-preemptive
    (as QNodeOS), so a subroutine may loop forever and hold its node; such frames are not
    listener robustness but a scheduling limit, and are left out."""
    if not frame or frame[0] != 0x02:
        return False
    from netqasm.lang.instr.flavour import VanillaFlavour
    from netqasm.lang.parsing import deserialize
    try:
        sub = deserialize(frame[1:], flavour=VanillaFlavour())
    except Exception:
        return False
    return any(ins.mnemonic in BRANCHES for ins in sub.instructions)


_QNPU_ERRORS = {c.__name__ for c in vars(qerr).values()
                if isinstance(c, type) and issubclass(c, qerr.QNPUError)}


def _typed(name: str) -> bool:
    """A named QNPU error, e.g. 'ProtocolError' or 'ExecutionError(IndexError)' (an
    instruction failing at run time, named with its instruction)."""
    return name in _QNPU_ERRORS or (name.startswith("ExecutionError(") and name.endswith(")"))


def _measure_growth(fn) -> int:
    tracemalloc.start()
    try:
        fn(warmup=True)
        base = tracemalloc.get_traced_memory()[0]
        fn(warmup=False)
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


# -- QNPU end-node API -------------------------------------------------------------------
def test_fuzz_qnpu_api(thread_errors):
    drv = IdealQDriver("n", 3, VirtualClock())
    q = QNPU("n", drv, {"n": 0, "m": 1}, trace=Trace(kinds={"error", "qnpu_crashed"})).start()
    srv = QNPUServer(q, max_frame=1 << 16).start()
    rng = random.Random(18)
    seeds = [bytes(InitNewAppMessage(app_id=0, max_qubits=2)),
             bytes(OpenEPRSocketMessage(app_id=0, epr_socket_id=0, remote_node_id=1,
                                        remote_epr_socket_id=0)),
             _sub("set Q0 0\nqalloc Q0\ninit Q0\nh Q0\nmeas Q0 M0\nqfree Q0\nret_reg M0\n", 0),
             _sub("set R0 3\nset R1 4\nadd R2 R0 R1\narray 2 @0\nstore R2 @0[R0]\n"
                  "ret_arr @0\n", 0),
             bytes(StopAppMessage(app_id=0)), bytes(SignalMessage()),
             b"\xe0" + json.dumps({"app_id": 0, "qubits": [0], "full": False}).encode(),
             b"\xe3" + json.dumps({"app_id": 0, "name": "x"}).encode(),
             b"\xe4" + json.dumps({"lp": "prog:x"}).encode()]
    good = socket.create_connection(srv.address, timeout=10)
    send_frame(good, bytes(InitNewAppMessage(app_id=7, max_qubits=1)))
    assert isinstance(deserialize_return_msg(recv_frame(good)), MsgDoneMessage)
    served = [0]

    def check_good():
        """The well-behaved program is still served, correctly."""
        send_frame(good, _sub(f"set R0 {served[0]}\nret_reg R0\n", 7))
        ret, done = (deserialize_return_msg(recv_frame(good)) for _ in range(2))
        assert isinstance(ret, ReturnRegMessage) and ret.value == served[0]
        assert isinstance(done, MsgDoneMessage)
        served[0] += 1

    def frames(n):
        out = []
        while len(out) < n:
            r = rng.random()
            if r < 0.15:
                f = rng.randbytes(rng.randint(0, 64))
            elif r < 0.2:
                f = bytes([rng.choice([0, 1, 2, 3, 4, 0xE0, 0xE3, 0xE4, 0xE5])]) + \
                    rng.randbytes(rng.randint(0, 40))
            else:
                f = _mutate(rng, rng.choice(seeds))
            if not _loops(f):
                out.append(f)
        return out

    def run(warmup):
        n_conn = 5 if warmup else 40
        per = 20 if warmup else N_FRAMES // 40
        for k in range(n_conn):
            c = socket.create_connection(srv.address, timeout=10)
            if k % 3 == 0:  # a valid registration first, so later frames reach deeper
                send_frame(c, seeds[0])
            stream = bytearray()
            for f in frames(per):
                stream += struct.pack(">I", len(f)) + f
            if k % 10 == 9:  # an oversized length prefix: refused before allocation
                stream += struct.pack(">I", 0xFFFFFFF0)
            elif k % 10 == 4:  # a stream ending inside a frame
                stream += struct.pack(">I", 100) + b"short"
            try:
                c.sendall(bytes(stream))
                c.shutdown(socket.SHUT_WR)
                c.settimeout(10)
                while c.recv(65536):  # the QNPU's answers, until it closes
                    pass
            except OSError:
                pass  # refused: the server closed the connection
            finally:
                c.close()
            check_good()

    try:
        growth = _measure_growth(run)
        deadline = time.monotonic() + 10
        while len(q.procs) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        check_good()
        assert not q.errors, q.errors
        assert not thread_errors, thread_errors[:5]
        names = {e.data.get("error") for e in q.trace.events if e.kind == "error"}
        untyped = sorted(n for n in names if not _typed(str(n)))
        assert not untyped, untyped
        assert len(q.procs) == 1  # every fuzz connection's process was freed
        assert q.qmmu.used() == 0
        assert len(srv.refused) >= 4 and "exceeds the" in srv.refused[0]
        assert growth < MEMORY_BOUND, growth
        print(f"\nQNPU API: {N_FRAMES} fuzz frames, {served[0]} good requests served, "
              f"{len(names)} error kinds {sorted(names)[:8]}, memory growth {growth / 1e6:.2f} MB")
    finally:
        good.close()
        srv.close()
        q.stop()


# -- CNPU classical hub --------------------------------------------------------------------
def test_fuzz_classical_hub(thread_errors):
    from qnodeos_hw.cnpu.directory import NetworkDirectory, NodeEntry
    from qnodeos_hw.cnpu.socket import (MAX_MESSAGE, ClassicalHub, ClassicalSocket,
                                        encode_message, hello_mac)
    from netqasm.sdk.classical_communication.message import StructuredMessage

    hub_b = ClassicalHub()
    hub_a = ClassicalHub()
    d = NetworkDirectory({"a": NodeEntry("a", 0, ("127.0.0.1", 1), hub_a.address),
                          "b": NodeEntry("b", 1, ("127.0.0.1", 1), hub_b.address)},
                         {"alice": "a", "bob": "b"})
    hub_a.bind(d, "a")
    hub_b.bind(d, "b")
    rng = random.Random(18)
    key = d.pair_key("a", "b")
    good = ClassicalSocket("alice", "bob", 0, directory=d, hub=hub_a, default_timeout=10)
    bob_in = hub_b.inbox("bob", "alice", 0)
    served = [0]

    def check_good():
        good.send_structured(StructuredMessage("n", served[0]))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # fuzz messages may sit in the inbox too
            msg, _ = bob_in.get(timeout=10)
            if isinstance(msg, StructuredMessage) and msg.header == "n" \
                    and msg.payload == served[0]:
                break
        else:
            raise AssertionError("the good sender's message did not arrive")
        served[0] += 1

    seeds = [encode_message("hello"), encode_message(StructuredMessage("h", [1, 2, {"x": 3}])),
             encode_message("x", ts=5), b'{"s": 1}', b'{"h": "a"}', b'[]', b'{"ts": -1, "s": ""}']

    def connect():
        c = socket.create_connection(hub_b.address, timeout=10)
        nonce = json.loads(recv_frame(c))["nonce"]
        return c, nonce

    def run(warmup):
        n_conn = 5 if warmup else 100
        per = 10 if warmup else N_FRAMES // 100
        for k in range(n_conn):
            try:
                c, nonce = connect()
            except OSError:
                continue
            hello = {"from": "alice", "to": "bob", "sid": 0,
                     "mac": hello_mac(key, nonce, "alice", "bob", 0)}
            kind = k % 5
            if kind == 0:  # a wrong mac: refused
                hello["mac"] = "0" * 64
            elif kind == 1:  # claims another identity / mutated hello
                hello = json.loads(json.dumps(hello).replace("alice", rng.choice(
                    ["bob", "mallory", "", "alice "])))
            h = json.dumps(hello).encode()
            if kind == 2:
                h = _mutate(rng, h)
            stream = bytearray(struct.pack(">I", len(h)) + h)
            for _ in range(per):
                r = rng.random()
                f = rng.randbytes(rng.randint(0, 40)) if r < 0.2 else _mutate(rng, rng.choice(seeds))
                stream += struct.pack(">I", len(f)) + f
            if k % 10 == 9:
                stream += struct.pack(">I", MAX_MESSAGE + 1)
            try:
                c.sendall(bytes(stream))
            except OSError:
                pass
            finally:
                c.close()
            check_good()

    try:
        growth = _measure_growth(run)
        check_good()
        assert not thread_errors, thread_errors[:5]
        assert hub_b.rejected >= 40
        assert growth < MEMORY_BOUND, growth
        print(f"\nclassical hub: {N_FRAMES} fuzz frames, {hub_b.rejected} connections refused, "
              f"{served[0]} good messages, memory growth {growth / 1e6:.2f} MB")
    finally:
        good.close()
        hub_a.close()
        hub_b.close()


# -- QNPU peer protocol ----------------------------------------------------------------------
def test_fuzz_peer_protocol(thread_errors):
    drv = IdealQDriver("n", 2, VirtualClock())
    bus = LocalPeerBus()
    q = QNPU("n", drv, {"n": 0, "m": 1}, peers=bus,
             trace=Trace(kinds={"error", "qnpu_crashed"})).start()
    srv = QNPUServer(q).start()
    sent_back: list = []
    bus.register("m", lambda src, msg: sent_back.append(msg["t"]) if len(sent_back) < 100 else None)
    rng = random.Random(18)
    base = {"t": "req", "rid": 1_000_001, "creator": "m", "receiver": "n", "csock": 0, "rsock": 0,
            "type": 0, "number": 1, "rot": [0, 0, 0], "axes": 0, "rb": 0, "t_post": 5, "ts": 7}
    seeds = [base, {"t": "ready", "rid": 1_000_001, "pair": 0, "ts": 9},
             {"t": "unready", "rid": 1_000_001, "pair": 0, "ts": 9},
             {"t": "fin", "rid": 1_000_001, "ts": 9},
             {"t": "cancel", "rid": 1_000_001, "why": "gone", "bound": 3, "ts": 9}]
    values = [None, True, -1, 0, 1, 2**70, 1.5, "x", "", [], [1, 2, 3], {}, {"a": 1}, "req",
              "n", "m", 10**9, 65535, 65536]
    good = socket.create_connection(srv.address, timeout=10)
    send_frame(good, bytes(InitNewAppMessage(app_id=1, max_qubits=1)))
    assert isinstance(deserialize_return_msg(recv_frame(good)), MsgDoneMessage)
    served = [0]

    def check_good():
        send_frame(good, _sub("set Q0 0\nqalloc Q0\ninit Q0\nmeas Q0 M0\nqfree Q0\nret_reg M0\n", 1))
        ret, done = (deserialize_return_msg(recv_frame(good)) for _ in range(2))
        assert isinstance(ret, ReturnRegMessage) and ret.value == 0
        assert isinstance(done, MsgDoneMessage)
        served[0] += 1

    def message():
        r = rng.random()
        if r < 0.1:
            return rng.choice(values)
        m = dict(rng.choice(seeds))
        m["rid"] = rng.choice([m["rid"], rng.randrange(1, 10**7)])
        for _ in range(rng.randint(0, 3)):
            op = rng.randrange(3)
            k = rng.choice(list(m) + ["extra"])
            if op == 0:
                m[k] = rng.choice(values)
            elif op == 1:
                m.pop(k, None)
            else:
                m[k] = rng.choice(values) if rng.random() < 0.5 else [m.get(k), m.get(k)]
        return m

    def run(warmup):
        n = 200 if warmup else N_FRAMES
        for i in range(n):
            src = rng.choice(["m", "m", "m", "x", "n"])
            bus.send(src, "n", message())
            if i % 500 == 499:
                check_good()

    try:
        growth = _measure_growth(run)
        check_good()
        assert not q.errors, q.errors
        assert not thread_errors, thread_errors[:5]
        names = {e.data.get("error") for e in q.trace.events if e.kind == "error"}
        assert names <= {"PeerProtocolError"}, names
        assert len(q.board.pending()) <= q.net.max_pending_per_peer * 3
        assert growth < MEMORY_BOUND, growth
        print(f"\npeer protocol: {N_FRAMES} fuzz messages, "
              f"{len([e for e in q.trace.events if e.kind == 'error'])} refused as "
              f"PeerProtocolError, {len(q.board.pending())} requests on the board, "
              f"{served[0]} good subroutines, memory growth {growth / 1e6:.2f} MB")
    finally:
        good.close()
        srv.close()
        q.stop()


def test_fuzz_peer_protocol_over_tcp(thread_errors):
    """The QNPU's TCP peer listener: 10^4 random and mutated frames from an authenticated
    peer, plus strangers with garbage hellos; only typed refusals, no thread dies, the
    listener keeps accepting the network's nodes, bounded memory."""
    from qnodeos_hw.qnpu.peer_tcp import TcpPeerBus, peer_mac

    keys = {"m|n": b"secret-mn"}
    key = (lambda a, b: keys["|".join(sorted((a, b)))])
    bus = TcpPeerBus({"n": ("127.0.0.1", 0), "m": ("127.0.0.1", 0)}, key)
    drv = IdealQDriver("n", 2, VirtualClock())
    q = QNPU("n", drv, {"n": 0, "m": 1}, peers=bus,
             trace=Trace(kinds={"error", "qnpu_crashed"})).start()
    addr = bus.addresses["n"]
    rng = random.Random(1814)
    seeds = [json.dumps(m).encode() for m in (
        {"t": "req", "rid": 1_000_001, "creator": "m", "receiver": "n", "csock": 0, "rsock": 0,
         "type": 0, "number": 1, "rot": [0, 0, 0], "axes": 0, "rb": 0, "t_post": 5, "ts": 7},
        {"t": "ready", "rid": 1_000_001, "pair": 0, "ts": 9},
        {"t": "cancel", "rid": 1_000_001, "why": "gone", "bound": 3, "ts": 9})]

    def connect(as_node: str, k: bytes):
        s = socket.create_connection(addr, timeout=10)
        nonce = json.loads(recv_frame(s))["nonce"]
        send_frame(s, json.dumps({"node": as_node, "mac": peer_mac(k, nonce, as_node, "n")}).encode())
        return s

    def run(warmup):
        n = 200 if warmup else N_FRAMES
        s = connect("m", keys["m|n"])
        for i in range(n):
            r = rng.random()
            frame = (rng.randbytes(rng.randint(0, 64)) if r < 0.2
                     else _mutate(rng, rng.choice(seeds)) if r < 0.9 else rng.choice(seeds))
            send_frame(s, frame)
            if i % 2000 == 1999:  # a stranger meanwhile: refused, nothing else disturbed
                x = socket.create_connection(addr, timeout=10)
                recv_frame(x)
                x.sendall(struct.pack(">I", 8) + rng.randbytes(8))
                x.close()
        s.close()

    try:
        growth = _measure_growth(run)
        deadline = time.monotonic() + 10
        while bus.bad_frames + len(q.trace.events) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = len([e for e in q.trace.events if e.kind == "error"])
        s = connect("m", keys["m|n"])  # still served: a checked-and-refused message lands
        send_frame(s, json.dumps({"t": "ready", "rid": "not a number", "ts": 1}).encode())
        while len([e for e in q.trace.events if e.kind == "error"]) == before \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        s.close()
        assert len([e for e in q.trace.events if e.kind == "error"]) > before
        assert not q.errors, q.errors  # its answers to 'm' (who has no listener) are lost,
        assert not thread_errors, thread_errors[:5]  # not the node
        names = {e.data.get("error") for e in q.trace.events if e.kind == "error"}
        assert names <= {"PeerProtocolError", "PeerUnreachableError"}, names
        assert bus.refused >= 5
        assert growth < MEMORY_BOUND, growth
        print(f"\npeer protocol over TCP: {N_FRAMES} fuzz frames, {bus.bad_frames} not JSON "
              f"objects, {len(names and [e for e in q.trace.events if e.kind == 'error'])} "
              f"refused as PeerProtocolError, {bus.refused} connections refused, "
              f"memory growth {growth / 1e6:.2f} MB")
    finally:
        q.stop()
        bus.close()
