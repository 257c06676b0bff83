"""A CNPU killed at every point of an entanglement request frees everything on both
nodes; the other end's request ends with a named error; afterwards fresh programs run.

The victim program runs in a real CNPU process (``python -m qnodeos_hw.cnpu.program``'s
``main``, the unmodified netqasm SDK over TCP), forked from a zygote process that has
imported everything once (a fresh interpreter per cycle would cost a second of imports),
and is SIGKILLed -- no goodbye, no StopApp: its sockets are closed by the kernel. The
peer program runs as a CNPU thread of this process. Points (cycle i):

* ``waiting``: both requests posted, attempt windows failing (p_success ~ 0): the peer's
  request ends with ``EntanglementAbortedError``;
* ``holding``: the victim holds its delivered pair (blocked on a classical message):
  the peer finishes normally;
* ``queued``: the victim's request is posted, the peer's program not there yet; the
  peer comes after the kill and its request ends with ``EntanglementTimeoutError``
  (nothing is left for it to pair with).

The victim is the receiver or the creator in turn. After every cycle both nodes hold
no process, qubit, socket, request or network-process state.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CREATOR_NODE, RECEIVER_NODE = "n", "m"
POINTS = ("waiting", "holding", "queued")


# -- programs (imported by name in the CNPU process, called directly here) ---------------
def _epr(peer):
    from netqasm.sdk import EPRSocket
    return EPRSocket(peer)


def victim(app_config=None, peer="", role="creator"):
    from netqasm.sdk.external import NetQASMConnection, Socket
    epr = _epr(peer)
    with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
        q = (epr.create_keep() if role == "creator" else epr.recv_keep())[0]
        conn.flush()  # 'waiting' / 'queued': killed in here
        sock = Socket(app_config.app_name, peer)
        sock.recv()  # 'holding': the pair is ours; killed while waiting for a message
        q.measure()
    return {}


def peer_program(app_config=None, peer="", role="creator"):
    from netqasm.sdk.external import NetQASMConnection
    from qnodeos_hw.cnpu.connection import SubroutineFailedError
    epr = _epr(peer)
    with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
        try:
            q = (epr.create_keep() if role == "creator" else epr.recv_keep())[0]
            m = q.measure()
            conn.flush()
        except SubroutineFailedError as exc:
            return {"error": exc.error, "message": str(exc)}
        return {"m": int(m)}


# -- the zygote: forks CNPU processes that have everything imported ---------------------
def _zygote() -> None:
    import netqasm.sdk  # noqa: F401
    import netqasm.sdk.classical_communication.socket  # noqa: F401
    import qnodeos_hw.cnpu.program as program
    import test_faults_kill  # noqa: F401  (the programs, imported once)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(log, 1)
                os.dup2(log, 2)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = program.main(["--directory", req["directory"], "--programs",
                                     json.dumps(req["programs"]), "--timeout", "60"])
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 3
            os._exit(code)
        print(pid, flush=True)


class Zygote:
    def __init__(self) -> None:
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--zygote"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  cwd=HERE)

    def spawn(self, directory: str, programs: dict, log: str) -> int:
        self.p.stdin.write(json.dumps({"directory": directory, "programs": programs,
                                       "log": log}) + "\n")
        self.p.stdin.flush()
        return int(self.p.stdout.readline())

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(10)


# -- the test ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(pred, timeout_s: float, what: str, diag=lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except RuntimeError:  # a dict changed size while the QNPU thread worked on it
            pass
        time.sleep(0.002)
    raise AssertionError(f"{what} not reached within {timeout_s} s {diag()}")


def _leftovers(q) -> dict:
    """Everything a QNPU still holds for programs (empty when all is freed)."""
    ns = q.net
    out = {"procs": list(q.procs), "conns": list(q._conns), "qubits": q.qmmu.used(),
           "sockets": q.board.open_sockets(), "requests": [r.rid for r in q.board.pending()],
           "create": list(ns._create), "reserved": dict(ns._reserved),
           "held": {k: len(v) for k, v in ns._held.items() if v}, "recv": dict(ns._recv),
           "blocked": len(ns._blocked), "wait_since": dict(ns._wait_since),
           "attempt_at": dict(ns._attempt_at), "windows": dict(ns._windows),
           "done": dict(ns._done), "engaged": set(ns._engaged), "failures": dict(ns.failures)}
    return {k: (v if not isinstance(v, dict) else {str(a): str(b) for a, b in v.items()})
            for k, v in out.items() if v}


@pytest.mark.parametrize("time_mode", ["modelled", "host"])
def test_cnpu_killed_at_every_point_frees_both_nodes_100_cycles(tmp_path, time_mode):
    from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, SimulatedNetwork
    from qnodeos_hw.cnpu.runtime import AppDir, external_names, run_programs

    cycles = 100
    timeout_ns = 20_000_000 if time_mode == "modelled" else 300_000_000
    factory = IdealNetworkFactory(num_qubits=2, seed=5)
    settings = NetworkSettings(time_mode=time_mode, bin_ns=100_000, attempts_per_bin=5, seed=5,
                               trace_instructions=False, request_timeout_ns=timeout_ns)
    zyg = Zygote()
    t0 = time.monotonic()
    outcomes = []
    try:
        with SimulatedNetwork([RECEIVER_NODE, CREATOR_NODE], factory, settings) as net, \
                external_names(net.external_module(30)):
            qn = {n: net.nodes[n].qnpu for n in (CREATOR_NODE, RECEIVER_NODE)}

            def both_free():
                return not _leftovers(qn["n"]) and not _leftovers(qn["m"])

            def diag():
                return json.dumps({n: _leftovers(q) for n, q in qn.items()}, default=str)

            for i in range(cycles):
                point = POINTS[i % 3]
                vrole = ("receiver", "creator")[(i // 3) % 2]
                prole = "creator" if vrole == "receiver" else "receiver"
                vnode = RECEIVER_NODE if vrole == "receiver" else CREATOR_NODE
                pnode = CREATOR_NODE if vnode == RECEIVER_NODE else RECEIVER_NODE
                v, p = f"victim{i}", f"peer{i}"
                net.directory.roles.update({v: vnode, p: pnode})
                factory.link.p_success = 1e-9 if point == "waiting" else 1.0
                if net.coordinator is not None:  # programs join the running network
                    net.directory.time["start_ns"] = (net.coordinator.until_ns
                                                      + net.coordinator.lookahead_ns)
                # the victim's CNPU process opens its own classical hub for its node
                d = json.loads(net.directory.to_json())
                for entry in d["nodes"]:
                    if entry["name"] == vnode:
                        entry["classical"] = ["127.0.0.1", _free_port()]
                dfile = tmp_path / f"directory{i}.json"
                dfile.write_text(json.dumps(d))
                for q in qn.values():  # a queued victim waits until it is killed
                    q.net.timeout_ns = None if point == "queued" else timeout_ns
                net.expect_programs([v] if point == "queued" else [v, p])
                pid = zyg.spawn(str(dfile), {v: {"main": "test_faults_kill:victim",
                                                 "inputs": {"peer": p, "role": vrole}}},
                                str(tmp_path / f"victim{i}.log"))
                peer_out: dict = {}
                app = AppDir(HERE, {p: peer_program}, {p: {"peer": v, "role": prole}})

                def run_peer(app=app, out=peer_out):
                    out.update(run_programs(app, timeout_s=30, clocks=net.clocks))

                peer_thread = threading.Thread(target=run_peer, daemon=True)
                if point != "queued":
                    peer_thread.start()
                vq = qn[vnode]

                def vproc():
                    procs = list(vq.procs.values())
                    return procs[0] if len(procs) == 1 else None

                def log():
                    tail = [f"{e.t_ns} {e.node} {e.kind} {e.pid} {e.data}"
                            for e in net.trace.events if e.kind not in
                            ("entanglement_failed", "process_state")][-40:]
                    return ((tmp_path / f"victim{i}.log").read_text()[-300:] + diag()
                            + str(peer_out)[:1500] + "\n" + "\n".join(tail))

                if point == "waiting":
                    # windows failing, and the peer's own request posted (a receiver
                    # with an open socket takes part before it asks)
                    _until(lambda: vproc() is not None and qn[CREATOR_NODE].net._windows
                           and (prole == "creator" or qn[RECEIVER_NODE].net._recv), 30,
                           f"cycle {i}: windows", log)
                elif point == "holding":
                    _until(lambda: vproc() is not None and any(
                        vq.qmmu.owner(k) == vproc().pid for k in range(vq.qmmu.num_qubits)),
                        30, f"cycle {i}: pair delivered", log)
                else:
                    _until(lambda: vproc() is not None and vproc().state.value == "waiting"
                           and (qn[RECEIVER_NODE].board.pending() if vrole == "creator"
                                else vq.net._recv), 30, f"cycle {i}: request queued", log)
                os.kill(pid, signal.SIGKILL)
                if point == "queued":
                    _until(lambda: not vq.procs, 30, f"cycle {i}: victim removed", log)
                    for q in qn.values():
                        q.net.timeout_ns = timeout_ns
                    net.expect_programs([p])
                    if net.coordinator is not None:
                        net.directory.time["start_ns"] = (net.coordinator.until_ns
                                                          + net.coordinator.lookahead_ns)
                    peer_thread.start()
                peer_thread.join(30)
                assert not peer_thread.is_alive(), f"cycle {i} ({point}): peer still waiting"
                res = peer_out[p]
                assert res.error is None, (i, res.error, log())
                outcomes.append((point, vrole, res.result.get("error")))
                if point == "waiting":
                    assert "EntanglementAbortedError" in res.result["error"], (i, vrole, res.result)
                elif point == "holding":
                    assert "m" in res.result, (i, vrole, res.result)
                else:
                    assert "EntanglementTimeoutError" in res.result["error"], (i, vrole, res.result)
                _until(both_free, 10, f"cycle {i} ({point}, victim {vrole}): nodes freed",
                       diag)
            # fresh programs on both nodes, with a working link
            factory.link.p_success = 1.0
            c, r = "fresh_c", "fresh_r"
            net.directory.roles.update({c: CREATOR_NODE, r: RECEIVER_NODE})
            net.expect_programs([c, r])
            if net.coordinator is not None:
                net.directory.time["start_ns"] = (net.coordinator.until_ns
                                                  + net.coordinator.lookahead_ns)
            fresh = run_programs(AppDir(HERE, {c: peer_program, r: peer_program},
                                        {c: {"peer": r, "role": "creator"},
                                         r: {"peer": c, "role": "receiver"}}),
                                 timeout_s=30, clocks=net.clocks)
            assert fresh[c].error is None and fresh[r].error is None, fresh
            assert fresh[c].result["m"] == fresh[r].result["m"]  # a fidelity-1 pair
            _until(both_free, 10, "after the fresh programs: nodes freed", diag)
            assert not net.errors()
    finally:
        zyg.close()
    wall = time.monotonic() - t0
    assert len(outcomes) == cycles
    print(f"\n{time_mode}: {cycles} kill cycles in {wall:.1f} s")


if __name__ == "__main__" and "--zygote" in sys.argv:
    _zygote()
