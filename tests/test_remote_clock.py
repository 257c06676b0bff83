"""The shared clock over TCP for QNPUs in other processes (RemoteCoordinator)."""

import threading
import time

from qnodeos_hw.timebase import ClockServer, RemoteCoordinator, TimeCoordinator


def _wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def test_grants_reach_remote_qnpus_and_a_dead_one_stops_counting():
    coord = TimeCoordinator(lookahead_ns=100)
    server = ClockServer(coord, token="tok")
    coord.expect("qnpu:a", kind="qnpu")
    coord.expect("qnpu:b", kind="qnpu")
    got = {"a": [], "b": []}
    lock = threading.Lock()
    ra = RemoteCoordinator(server.address, "tok")
    rb = RemoteCoordinator(server.address, "tok")
    try:
        def cb(name):
            def on(r, until, turn=None):
                with lock:
                    got[name].append((r, until, turn))
            return on
        ra.attach("qnpu:a", cb("a"))
        rb.attach("qnpu:b", cb("b"))
        assert _wait(lambda: got["a"] and got["b"])  # the current round on attaching
        r0 = got["a"][-1][0]
        ra.report({"type": "report", "lp": "qnpu:a", "seq": 1, "next_ns": 1000, "round": r0})
        time.sleep(0.1)
        assert len(got["a"]) == 1  # b has not reported: no grant yet
        rb.report({"type": "report", "lp": "qnpu:b", "seq": 1, "next_ns": 700, "round": r0})
        assert _wait(lambda: len(got["a"]) == 2 and len(got["b"]) == 2)
        assert got["a"][-1][1] == 800 == got["b"][-1][1]  # GVT 700 + lookahead 100
        assert ra.until_ns == 800
        # b's process dies: the clock no longer waits for it
        rb.close()
        assert _wait(lambda: coord.status()["lps"]["qnpu:b"]["gone"])
        ra.report({"type": "report", "lp": "qnpu:a", "seq": 2, "next_ns": 5000,
                   "round": got["a"][-1][0]})
        assert _wait(lambda: got["a"][-1][1] == 5100)
    finally:
        ra.close()
        server.close()


def test_only_qnpus_attach_and_strangers_are_refused():
    coord = TimeCoordinator(lookahead_ns=100)
    server = ClockServer(coord, token="tok")
    try:
        bad = RemoteCoordinator(server.address, "wrong")
        bad.attach("qnpu:x", lambda *a: None)
        assert _wait(lambda: bad.lost is not None)
        assert "qnpu:x" not in coord.status()["lps"]
        prog = RemoteCoordinator(server.address, "tok")
        prog.attach("prog:alice", lambda *a: None)  # a program may not take grants
        assert _wait(lambda: prog.lost is not None)
        assert "prog:alice" not in coord.status()["lps"]
    finally:
        server.close()
