"""``--processes per-node`` (issue 14, point 2): every node, link and CNPU its own OS
process, nothing shared but messages; in modelled time the results and the trace are
the same bytes as with every node in one process."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from qnodeos_hw.experiments import dqc
from qnodeos_hw.protocol.trace import modelled_bytes
from qnodeos_hw.runner.network import NVNetworkFactory, run_mains_in_processes
from qnodeos_hw.runner.per_node import LayoutNotSupportedError, run_per_node

APPS = dqc.APPS
K = 12


def _dqc(layout):
    settings = dqc.nv_network_settings(10_000_000, 5, 0.0, True)
    mains = {"client": f"{APPS}.dqc_client:main", "server": f"{APPS}.dqc_server:main"}
    inputs = {"client": {"alpha": 2, "theta": 1, "reps": K},
              "server": {"bases": dqc.bases_for(K)}}
    factory = NVNetworkFactory(seed=5, num_qubits=1)
    if layout == "single":
        return run_mains_in_processes(mains, factory, settings, inputs=inputs, timeout_s=120)
    return run_per_node({r: {"main": m} for r, m in mains.items()}, factory, settings,
                        inputs=inputs, timeout_s=120)


def test_dqc_per_node_gives_the_bytes_of_one_process():
    single, per_node = _dqc("single"), _dqc("per-node")
    assert single.ok and per_node.ok, (single.outcomes, per_node.outcomes)
    assert per_node.results == single.results
    assert len(per_node.results["server"]["m"]) == K
    a, b = single.trace.events, per_node.trace.events
    assert {e.kind for e in b} >= {"entanglement_heralded", "subroutine_done",
                                   "cnpu_message_sent"}
    assert modelled_bytes(b) == modelled_bytes(a)
    assert per_node.network.errors() == []
    # the nodes really were other processes
    assert set(per_node.network.pids) == {"client", "server"}
    assert os.getpid() not in per_node.network.pids.values()


def test_run_cli_per_node_equals_single(tmp_path, capsys):
    import netqasm
    from qnodeos_hw.cli import main
    app = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps", "bb84")
    outs = {}
    for layout in ("single", "per-node"):
        trace = tmp_path / f"{layout}.jsonl"
        assert main(["run", app, "--network", "nv_2node", "--seed", "2", "--processes", layout,
                     "--trace", str(trace)]) == 0
        outs[layout] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert outs["per-node"] == outs["single"]
    # bb84's table per node: (index, basis, bases equal, outcome, ...) -- a real run
    rows = outs["single"]["alice"]["table"]
    assert len(rows) > 10 and {r[1] for r in rows} <= {"X", "Z"}
    assert outs["single"]["alice"] != outs["single"]["bob"]


def test_a_killed_node_fails_the_app_with_a_named_error_and_nothing_hangs():
    settings = dqc.nv_network_settings(10_000_000, 5, 0.0, False)
    mains = {"client": f"{APPS}.dqc_client:main", "server": f"{APPS}.dqc_server:main"}
    inputs = {"client": {"alpha": 0, "theta": 0, "reps": 400},
              "server": {"bases": dqc.bases_for(400)}}
    killed = {}

    def kill_later(net):
        def go():
            time.sleep(2.0)
            killed["pid"] = net.pids["server"]
            os.kill(net.pids["server"], signal.SIGKILL)
        threading.Thread(target=go, daemon=True).start()
    t = time.perf_counter()
    res = run_per_node({r: {"main": m} for r, m in mains.items()},
                       NVNetworkFactory(seed=5, num_qubits=1), settings, inputs=inputs,
                       timeout_s=60, on_started=kill_later)
    dt = time.perf_counter() - t
    assert killed, "the run ended before the node was killed"
    assert not res.ok and dt < 50
    err = res.outcomes["client"].error
    assert err and ("Entanglement" in err or "QNPU" in err or "closed" in err), err
    assert any("server" in e and "without reporting" in e for e in res.network.errors())
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)


def test_ideal_networks_say_they_need_one_process():
    from qnodeos_hw.runner.network import IdealNetworkFactory
    with pytest.raises(LayoutNotSupportedError, match="single"):
        run_per_node({"a": {"main": "x:y"}}, IdealNetworkFactory(), None)


@pytest.mark.parametrize("app", ["ghz", "chsh"])
def test_three_nv_nodes_per_node_equal_single(tmp_path, capsys, app):
    """nv_3node: three node processes, three link processes; GHZ pulls both pairs into
    bob's process (fusion) and alice's and charlie's measurements are forwarded there."""
    import netqasm
    from qnodeos_hw.cli import main
    from qnodeos_hw.protocol.trace import load_jsonl
    path = (os.path.join(os.path.dirname(dqc.__file__), "apps", "ghz") if app == "ghz" else
            os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps", app))
    outs, traces = {}, {}
    for layout in ("single", "per-node"):
        trace = tmp_path / f"{layout}.jsonl"
        assert main(["run", path, "--network", "nv_3node", "--seed", "4", "--processes", layout,
                     "--trace", str(trace)]) == 0
        outs[layout] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        traces[layout] = modelled_bytes(load_jsonl(str(trace)))
    assert outs["per-node"] == outs["single"] and len(outs["single"]) == 3
    assert traces["per-node"] == traces["single"]
