"""Whole stack: SDK programs (CNPU threads) -> TCP -> QNPUs -> IdealQDrivers + link.
Statistics of entanglement, teleportation fidelity, measure-directly requests,
get_qubit_state on real stations, trace export."""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pytest

from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, run_app_dir
from qnodeos_hw.qdrivers.base import NotSimulatedError
from qnodeos_hw.qdrivers.ideal import IdealDurations, IdealQDriver

FAST = dict(bin_ns=100_000)


def write_app(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return str(tmp_path)


BELL_STATS = {
    "app_alice.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None, bases=()):
            epr = EPRSocket("bob")
            out = []
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                for b in bases:
                    q = epr.create_keep()[0]
                    if b:
                        q.H()
                    m = q.measure()
                    conn.flush()
                    out.append(int(m))
            return {"m": out}
        """,
    "app_bob.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None, bases=()):
            epr = EPRSocket("alice")
            out = []
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                for b in bases:
                    q = epr.recv_keep()[0]
                    if b:
                        q.H()
                    m = q.measure()
                    conn.flush()
                    out.append(int(m))
            return {"m": out}
        """,
}


@pytest.mark.parametrize("fidelity", [1.0, 0.8])
def test_bell_pair_statistics(tmp_path, fidelity):
    n = 120
    rng = np.random.default_rng(3)
    bases = [int(b) for b in rng.integers(0, 2, n)]
    app = write_app(tmp_path, BELL_STATS)
    res = run_app_dir(app, IdealNetworkFactory(fidelity=fidelity, seed=11),
                      NetworkSettings(seed=11, trace_instructions=False, **FAST),
                      inputs={"alice": {"bases": bases}, "bob": {"bases": bases}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    a, b = res.results["alice"]["m"], res.results["bob"]["m"]
    agree = sum(x == y for x, y in zip(a, b)) / n
    expect = (2 * fidelity + 1) / 3  # Werner: Phi+ and Phi- (Z) / Phi+ and Psi+ (X) agree
    assert abs(agree - expect) <= 3 * math.sqrt(max(expect * (1 - expect), 1 / n) / n) + 1e-9
    assert abs(sum(a) / n - 0.5) <= 3 * math.sqrt(0.25 / n)
    delivered = res.trace.of_kind("entanglement_delivered")
    assert len(delivered) == 2 * n
    # the receiver complied through its open socket, holding pairs before its request came
    assert {e.node for e in delivered} == {"alice", "bob"}


TELEPORT = {
    "app_sender.py": """
        from netqasm.sdk import EPRSocket, Qubit
        from netqasm.sdk.classical_communication.message import StructuredMessage
        from netqasm.sdk.external import NetQASMConnection, Socket
        from netqasm.sdk.toolbox import set_qubit_state

        def main(app_config=None, phi=0.0, theta=0.0):
            sock = Socket("sender", "receiver")
            epr = EPRSocket("receiver")
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                q = Qubit(conn)
                set_qubit_state(q, phi, theta)
                e = epr.create_keep()[0]
                q.cnot(e)
                q.H()
                m1 = q.measure()
                m2 = e.measure()
            sock.send_structured(StructuredMessage("c", (int(m1), int(m2))))
            return {}
        """,
    "app_receiver.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection, Socket, get_qubit_state

        def main(app_config=None):
            sock = Socket("receiver", "sender")
            epr = EPRSocket("sender")
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                q = epr.recv_keep()[0]
                conn.flush()
                m1, m2 = sock.recv_structured().payload
                if m2:
                    q.X()
                if m1:
                    q.Z()
                conn.flush()
                dm = get_qubit_state(q)
            return {"dm": dm}
        """,
}


def test_teleportation_is_exact(tmp_path):
    app = write_app(tmp_path, TELEPORT)
    for phi, theta in ((0.3, 1.1), (2.0, 2.5)):
        res = run_app_dir(app, IdealNetworkFactory(seed=2), NetworkSettings(seed=2, **FAST),
                          inputs={"sender": {"phi": phi, "theta": theta}})
        assert res.ok, {r: o.error for r, o in res.outcomes.items()}
        psi = np.array([math.cos(theta / 2), np.exp(1j * phi) * math.sin(theta / 2)])
        dm = np.asarray(res.results["receiver"]["dm"])
        assert np.real(psi.conj() @ dm @ psi) == pytest.approx(1.0, abs=1e-9)


MEASURE_DIRECTLY = {
    "app_alice.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.epr_socket import EprMeasBasis as B
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None, n=1):
            epr = EPRSocket("bob")
            out = {}
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                for name, (bl, br) in {"xx": (B.X, B.X), "zz": (B.Z, B.Z), "xz": (B.X, B.Z)}.items():
                    out[name] = epr.create_measure(number=n, basis_local=bl, basis_remote=br)
            return {k: [int(e.measurement_outcome) for e in v] for k, v in out.items()}
        """,
    "app_bob.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None, n=1):
            epr = EPRSocket("alice")
            out = {}
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                for name in ("xx", "zz", "xz"):
                    out[name] = epr.recv_measure(number=n)
            return {k: [int(e.measurement_outcome) for e in v] for k, v in out.items()}
        """,
}


def test_measure_directly_requests(tmp_path):
    n = 60
    app = write_app(tmp_path, MEASURE_DIRECTLY)
    res = run_app_dir(app, IdealNetworkFactory(seed=4), NetworkSettings(seed=4, **FAST),
                      inputs={"alice": {"n": n}, "bob": {"n": n}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    a, b = res.results["alice"], res.results["bob"]
    for same_basis in ("xx", "zz"):
        assert a[same_basis] == b[same_basis]
        assert abs(sum(a[same_basis]) / n - 0.5) <= 3 * math.sqrt(0.25 / n)
    agree = sum(x == y for x, y in zip(a["xz"], b["xz"])) / n
    assert abs(agree - 0.5) <= 3 * math.sqrt(0.25 / n)


class RealStationFactory(IdealNetworkFactory):
    """Ideal physics, but the driver answers like real hardware: no density matrix."""

    def __call__(self, node, clock):
        drv = super().__call__(node, clock)

        class Real(type(drv)):
            def qubit_state(self, qubits):
                raise NotSimulatedError(f"node {self.node} drives real hardware: no density matrix")

            def group_state(self, qubit):
                raise NotSimulatedError(f"node {self.node} drives real hardware: no density matrix")

        drv.__class__ = Real
        return drv


def test_get_qubit_state_raises_clearly_on_real_stations(tmp_path):
    app = write_app(tmp_path, {"app_alice.py": """
        from netqasm.sdk import Qubit
        from netqasm.sdk.external import NetQASMConnection, get_qubit_state

        def main(app_config=None):
            with NetQASMConnection(app_config.app_name) as conn:
                q = Qubit(conn)
                conn.flush()
                try:
                    get_qubit_state(q)
                except Exception as exc:
                    return {"error": type(exc).__name__, "msg": str(exc)}
                return {"error": None}
        """})
    sim = run_app_dir(app, IdealNetworkFactory(), NetworkSettings(**FAST))
    assert sim.results["alice"] == {"error": None}
    real = run_app_dir(app, RealStationFactory(), NetworkSettings(**FAST))
    assert real.results["alice"]["error"] == "NotSimulatedError"
    assert "real hardware" in real.results["alice"]["msg"]


def test_trace_exports_json_lines_with_virtual_time(tmp_path):
    app = write_app(tmp_path, TELEPORT)
    res = run_app_dir(app, IdealNetworkFactory(seed=1), NetworkSettings(seed=1, **FAST))
    path = tmp_path / "trace.jsonl"
    n = res.trace.save(str(path))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == n > 20
    kinds = {x["kind"] for x in lines}
    assert {"subroutine_received", "process_state", "instr_sent", "instr_response",
            "entanglement_delivered"} <= kinds
    for node in ("sender", "receiver"):
        ts = [x["t_ns"] for x in lines if x["node"] == node and not x["kind"].startswith("cnpu_")]
        assert ts == sorted(ts) and ts[-1] > 0


def test_ideal_factory_is_plain_callable_for_other_platforms():
    f = IdealNetworkFactory(num_qubits=3)
    from qnodeos_hw.qdevice.clock import VirtualClock
    d = f("x", VirtualClock())
    assert isinstance(d, IdealQDriver) and d.spec.num_qubits == 3 and d.link is f.link


MULTI = {
    "roles.yaml": "lgt1: client\nlgt2: client\ndqc_client: client\ndqc_server: server\n",
    "app_lgt1.py": """
        from netqasm.sdk import Qubit
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None, k=20):
            ones = 0
            with NetQASMConnection(app_config.app_name) as conn:
                for _ in range(k):
                    q = Qubit(conn)
                    q.X()
                    m = q.measure()
                    conn.flush()
                    ones += int(m)
            return {"ones": ones}
        """,
    "app_dqc_client.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None, k=10):
            epr = EPRSocket("dqc_server")
            out = []
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                for _ in range(k):
                    m = epr.create_keep()[0].measure()
                    conn.flush()
                    out.append(int(m))
            return {"m": out}
        """,
    "app_dqc_server.py": """
        from netqasm.sdk import EPRSocket
        from netqasm.sdk.external import NetQASMConnection

        def main(app_config=None, k=10):
            epr = EPRSocket("dqc_client")
            out = []
            with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
                for _ in range(k):
                    m = epr.recv_keep()[0].measure()
                    conn.flush()
                    out.append(int(m))
            return {"m": out}
        """,
}


def test_several_programs_share_one_node(tmp_path):
    files = dict(MULTI)
    files["app_lgt2.py"] = files["app_lgt1.py"]
    app = write_app(tmp_path, files)
    res = run_app_dir(app, IdealNetworkFactory(seed=5), NetworkSettings(seed=5, **FAST))
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    r = res.results
    assert r["lgt1"] == r["lgt2"] == {"ones": 20}
    assert r["dqc_client"]["m"] == r["dqc_server"]["m"]
    assert set(res.network.nodes) == {"client", "server"}
    pids = {e.pid for e in res.trace.of_kind("subroutine_done") if e.node == "client"}
    assert pids == {1, 2, 3}
    # the network process (pid 0) ran on the client between user subroutines
    net_runs = [e for e in res.trace.of_kind("process_state")
                if e.node == "client" and e.pid == 0 and e.data["state"] == "running"]
    assert len(net_runs) >= 10


@pytest.mark.parametrize("app", ["teleport", "bb84"])
def test_nv_flavour_compilation_runs(app, tmp_path):
    import os

    import netqasm
    path = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps", app)
    res = run_app_dir(path, IdealNetworkFactory(seed=1, flavour_name="nv"),
                      NetworkSettings(seed=1, **FAST))
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    sent = {e.data["instr"] for e in res.trace.of_kind("instr_sent")}
    assert {"rot_x", "rot_y"} <= sent and "h" not in sent  # NV native gates only


def test_disconnect_mid_entanglement_frees_qubits_sockets_and_requests():
    import time

    from netqasm.sdk import EPRSocket

    from qnodeos_hw.cnpu.connection import QNPUConnection
    from qnodeos_hw.runner.network import SimulatedNetwork

    def settle(pred):
        deadline = time.monotonic() + 5
        while not pred() and time.monotonic() < deadline:
            time.sleep(0.005)
        return pred()

    # host time: connections made by hand here carry no virtual timestamps
    with SimulatedNetwork(["a", "b"], IdealNetworkFactory(seed=3),
                          NetworkSettings(time_mode="host", **FAST)) as net:
        qa, qb = net.nodes["a"].qnpu, net.nodes["b"].qnpu
        for cycle in range(30):
            ea, eb = EPRSocket("b"), EPRSocket("a")
            ca = QNPUConnection("a", directory=net.directory, epr_sockets=[ea])
            if cycle % 2 == 0:  # receiver present: it complies and holds a pair for its socket
                cb = QNPUConnection("b", directory=net.directory, epr_sockets=[eb])
            ea.create_keep()
            ca.flush(block=False)
            if cycle % 2 == 0:
                n_held = cycle // 2 + 1
                assert settle(lambda: len([e for e in net.trace.of_kind("entanglement_held")
                                           if e.node == "b"]) == n_held)
                cb.disconnect()
            ca.disconnect()  # mid-run: never stops its app
            assert settle(lambda: not qa.procs and not qb.procs and qa.qmmu.used() == 0
                          and qb.qmmu.used() == 0 and not qa.board.open_sockets()
                          and not qb.board.open_sockets() and not qa.board.pending()
                          and not qb.board.pending()), f"leak after cycle {cycle}"
        assert not net.errors()
    held = [e for e in net.trace.of_kind("entanglement_held") if e.node == "b"]
    assert len(held) == 15


def test_cnpu_in_its_own_os_process(tmp_path):
    """The sender's CNPU is a separate OS process; it reaches its QNPU and the
    receiver's classical hub over TCP only."""
    import subprocess
    import sys

    from qnodeos_hw.runner.network import SimulatedNetwork
    from qnodeos_hw.cnpu.runtime import external_names, load_app_dir, run_programs

    app = write_app(tmp_path / "app" if (tmp_path / "app").mkdir() is None else tmp_path, TELEPORT)
    settings = NetworkSettings(seed=8, external_cnpus=frozenset({"sender"}), **FAST)
    with SimulatedNetwork(["receiver", "sender"], IdealNetworkFactory(seed=8), settings) as net:
        net.expect_programs(["receiver", "sender"])  # modelled time: the clock waits for both
        dfile = tmp_path / "directory.json"
        dfile.write_text(net.directory.to_json())
        proc = subprocess.Popen([sys.executable, "-m", "qnodeos_hw.cnpu.program", "--directory",
                                 str(dfile), "--app-dir", app, "--role", "sender", "--inputs",
                                 json.dumps({"phi": 0.7, "theta": 1.3})],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with external_names(net.external_module(30)):
            full = load_app_dir(app)
            full.programs = {"receiver": full.programs["receiver"]}
            out = run_programs(full, timeout_s=60, clocks=net.clocks)["receiver"]
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert out.error is None, out.error
    psi = np.array([math.cos(1.3 / 2), np.exp(0.7j) * math.sin(1.3 / 2)])
    assert np.real(psi.conj() @ np.asarray(out.result["dm"]) @ psi) == pytest.approx(1.0, abs=1e-9)
    assert json.loads(stdout.strip().splitlines()[-1]) == {}


def test_tdma_links_serialise_entanglement_on_a_shared_node():
    """chsh: the repeater entangles with alice, then bob; with a two-link TDMA schedule
    each herald falls in a bin that belongs to its link."""
    import os

    import netqasm
    bin_ns = 100_000
    links = (frozenset({"alice", "repeater"}), frozenset({"bob", "repeater"}))
    path = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps", "chsh")
    res = run_app_dir(path, IdealNetworkFactory(seed=2),
                      NetworkSettings(seed=2, bin_ns=bin_ns, links=links))
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    heralds = [e for e in res.trace.of_kind("entanglement_heralded") if e.node == "repeater"]
    assert {e.data["peer"] for e in heralds} == {"alice", "bob"}
    attempt = 10_000
    for e in heralds:
        b = (e.t_ns - attempt) // bin_ns
        assert links[b % 2] == frozenset({"repeater", e.data["peer"]})


def test_cnpu_round_trips_are_traced_in_wall_time(tmp_path):
    app = write_app(tmp_path, TELEPORT)
    res = run_app_dir(app, IdealNetworkFactory(seed=1), NetworkSettings(seed=1, **FAST))
    sent = {(e.node, e.data["msg_id"]): e.wall_ns for e in res.trace.of_kind("cnpu_message_sent")
            if e.data["type"] == 2}  # subroutine messages
    done = {(e.node, e.data["msg_id"]): e.wall_ns for e in res.trace.of_kind("cnpu_done_received")}
    received = {(e.node, e.data["msg_id"]): e.wall_ns for e in res.trace.of_kind("subroutine_received")}
    assert sent and set(sent) <= set(done) and set(sent) <= set(received)
    for k in sent:
        assert sent[k] <= received[k] <= done[k]


def test_lossy_link_needs_several_bins_and_stays_paired(tmp_path):
    n = 30
    bases = [0, 1] * (n // 2)
    app = write_app(tmp_path, BELL_STATS)
    res = run_app_dir(app, IdealNetworkFactory(p_success=0.25, seed=9),
                      NetworkSettings(seed=9, attempts_per_bin=2, trace_instructions=False, **FAST),
                      inputs={"alice": {"bases": bases}, "bob": {"bases": bases}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    assert res.results["alice"]["m"] == res.results["bob"]["m"]
    fails = [e for e in res.trace.of_kind("entanglement_failed") if e.node == "alice"]
    heralds = [e for e in res.trace.of_kind("entanglement_heralded") if e.node == "alice"]
    assert len(heralds) == n and len(fails) > n // 2  # p = 0.25, one 2-attempt window per bin
    attempt_ns = IdealDurations().entangle_attempt_ns
    assert all(e.data["budget"] == 2 for e in heralds + fails)

    def windows(kind):
        """(pair id, bin) -> {node: event}: the two ends of each window."""
        out: dict = {}
        for e in res.trace.of_kind(kind):
            out.setdefault((e.data["pair_id"], e.data["bin"]), {})[e.node] = e
        return out

    # a herald has both ends; a failed window may have one (its peer, busy with a
    # subroutine past the bin start, attempted nothing in that bin: a lone, failed window).
    # Both ends see a window end (herald or failure) at one virtual time; the end that
    # started last spent exactly the attempts (2 for a failure, fewer only when it started
    # too close to its bin's end: a window never runs into the next bin)
    for kind, allowed in (("entanglement_failed", {0, attempt_ns, 2 * attempt_ns}),
                          ("entanglement_heralded", {attempt_ns, 2 * attempt_ns})):
        ws = windows(kind)
        if kind == "entanglement_heralded":
            assert ws and all(set(w) == {"alice", "bob"} for w in ws.values())
        assert all(len({e.t_ns for e in w.values()}) == 1 for w in ws.values())
        last = [min(e.data["window_ns"] for e in w.values()) for w in ws.values()]
        assert set(last) <= allowed, set(last)
        if kind == "entanglement_failed":
            assert last.count(2 * attempt_ns) > len(last) // 2
    heralded_last = [min(e.data["window_ns"] for e in w.values())
                     for w in windows("entanglement_heralded").values()]
    assert attempt_ns in heralded_last and 2 * attempt_ns in heralded_last  # attempt 1 and 2
    # windows pair by time bin: each pair heralds in the same bin at both ends (the window
    # counts may differ: an end attempts alone in a bin its busy peer let pass)
    bob = {(e.data["rid"], e.data["pair"]): e.data["bin"]
           for e in res.trace.of_kind("entanglement_heralded") if e.node == "bob"}
    assert {(e.data["rid"], e.data["pair"]): e.data["bin"] for e in heralds} == bob


def test_networks_leave_no_threads_behind(tmp_path):
    import threading
    import time
    app = write_app(tmp_path, TELEPORT)
    before = threading.active_count()
    for seed in range(3):
        assert run_app_dir(app, IdealNetworkFactory(seed=seed), NetworkSettings(seed=seed, **FAST)).ok
    deadline = time.monotonic() + 3
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def _local_x_program(app_config=None, k=3):
    from netqasm.sdk import Qubit
    from netqasm.sdk.external import NetQASMConnection  # late: ours while running
    out = []
    with NetQASMConnection(app_config.app_name) as conn:
        for _ in range(k):
            q = Qubit(conn)
            q.X()
            m = q.measure()
            conn.flush()
            out.append(int(m))
    return {"m": out, "node": app_config.node_name}


def test_run_mains_runs_python_functions_on_chosen_nodes():
    from qnodeos_hw.runner.network import run_mains
    res = run_mains({"p1": _local_x_program, "p2": f"{__name__}:_local_x_program"},
                    IdealNetworkFactory(seed=1), NetworkSettings(**FAST),
                    roles={"p1": "n", "p2": "n"}, inputs={"p2": {"k": 2}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    assert res.results == {"p1": {"m": [1, 1, 1], "node": "n"}, "p2": {"m": [1, 1], "node": "n"}}
    assert set(res.network.nodes) == {"n"}


@pytest.mark.parametrize("time_mode", ["modelled", "host"])
def test_every_cnpu_in_its_own_process_runs_the_dqc_programs_and_merges_their_trace(time_mode):
    """run_mains_in_processes: client and server CNPUs are OS processes; results come back,
    the DQC outcomes are those of |psi> (ideal nodes: deterministic in the Z basis), and
    the CNPU events of both processes are merged into the network trace in wall order."""
    from qnodeos_hw.runner.network import run_mains_in_processes
    from qnodeos_hw.experiments.latency import dqc_iterations, dqc_iterations_modelled

    apps = "qnodeos_hw.experiments.apps"
    k = 6
    res = run_mains_in_processes(
        {"client": f"{apps}.dqc_client:main", "server": f"{apps}.dqc_server:main"},
        IdealNetworkFactory(num_qubits=1, seed=3),
        NetworkSettings(seed=3, time_mode=time_mode, **FAST),
        inputs={"client": {"alpha": 0, "theta": 2, "reps": k}, "server": {"bases": ["Z"] * k}},
        timeout_s=120)
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    # alpha = 0: |psi> = H|+> = |0>, so every Z outcome is 0 on ideal nodes
    assert res.results["server"]["m"] == [0] * k
    assert len(res.results["client"]["m"]) == k
    kinds = {(e.node, e.kind) for e in res.trace.events}
    assert {("client", "cnpu_socket_sent"), ("server", "cnpu_socket_received"),
            ("client", "cnpu_done_received"), ("server", "cnpu_message_sent")} <= kinds
    if time_mode == "host":
        its = dqc_iterations(res.trace.events, "client", "server")
        assert len(its) == k and all(it is not None and it.classical_ms >= 0 for it in its), its
    else:  # the CNPU events carry the programs' virtual times
        its = dqc_iterations_modelled(res.trace.events, "client", "server")
        assert len(its) == k and all(it is not None and it["segments_ms"]["classical_delta"] > 0
                                     for it in its), its


def test_a_failing_program_in_a_cnpu_process_is_reported_by_role():
    from qnodeos_hw.runner.network import run_mains_in_processes

    res = run_mains_in_processes({"a": "qnodeos_hw.experiments.apps.dqc_client:no_such_main"},
                                 IdealNetworkFactory(num_qubits=1, seed=1),
                                 NetworkSettings(seed=1, **FAST), timeout_s=60)
    assert not res.ok
    assert "no_such_main" in res.outcomes["a"].error


def test_with_wall_time_a_local_subroutine_runs_before_the_next_bin(tmp_path):
    """idle_wall_scale = 1, 1 s bins: the creator asks for a pair right away; a second
    program on the same node sends a local subroutine 50 ms (wall) later. The QNPU waits
    for the bin in wall time while that program is between subroutines, so the local
    subroutine runs before the first bin starts (it used to jump to the bin at once)."""
    files = {
        "roles.yaml": "creator: a\nlocal: a\nreceiver: b\n",
        "app_creator.py": MULTI["app_dqc_client.py"].replace('"dqc_server"', '"receiver"'),
        "app_receiver.py": MULTI["app_dqc_server.py"].replace('"dqc_client"', '"creator"'),
        "app_local.py": """
            import time
            from netqasm.sdk import Qubit
            from netqasm.sdk.external import NetQASMConnection

            def main(app_config=None):
                with NetQASMConnection(app_config.app_name) as conn:
                    time.sleep(0.05)
                    q = Qubit(conn)
                    m = q.measure()
                    conn.flush()
                return {"m": int(m)}
            """,
    }
    app = write_app(tmp_path, files)
    bin_ns = 1_000_000_000  # room for thread start-up on a loaded 2-core machine
    res = run_app_dir(app, IdealNetworkFactory(seed=6), NetworkSettings(
        seed=6, bin_ns=bin_ns, idle_wall_scale=1.0, time_mode="host"),
        inputs={"creator": {"k": 1}, "receiver": {"k": 1}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    ev = res.trace.events
    names = {(e.node, e.pid): e.data["app"] for e in ev if e.kind == "process_named"}
    local = [e for e in ev if e.kind == "subroutine_received" and e.node == "a"
             and names.get(("a", e.pid)) == "local"]
    herald = [e for e in ev if e.kind == "entanglement_heralded" and e.node == "a"]
    assert len(local) == 1 and len(herald) == 1
    assert local[0].t_ns < bin_ns <= herald[0].t_ns
    assert res.results["local"] == {"m": 0}
