"""A network started by hand (issue 14, point 2): ``link serve --network`` and one
``node serve --network`` per node as separate OS processes at the network file's fixed
addresses, then ``run`` attaching to them -- it starts only the CNPUs, stops only them,
and a second run works on the same nodes. Keys derive from ``$QNODEOS_HW_NETWORK_KEY``."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading

import pytest
import yaml

from qnodeos_hw.cli import main
from qnodeos_hw.networks import NetworkConfigError, load_network
from qnodeos_hw.protocol import api_auth
from qnodeos_hw.runner import link_serve, node_serve

KEY = "the-network-secret-of-this-test"
#: near-perfect heralding and readout: the two halves of a pair give equal outcomes
NOISE = {"nv": {"init_fidelity": 1.0, "readout_f0": 1.0, "readout_f1": 1.0,
                "t_coh_s": 1000.0},
         "heralding": {"fidelity": 1.0, "state_model": "werner", "p_success": 0.01}}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _network(tmp_path, ports, name="net.yaml", mode="host", link_port=None):
    (tmp_path / "noise.yaml").write_text(yaml.safe_dump(NOISE))
    qa, pa, qb, pb, lk = ports
    doc = {"network": 1, "time": {"mode": mode},
           "schedule": {"bin_ns": 10_000_000, "attempts_per_bin": "auto", "bins": ["alice-bob"]},
           "nodes": {"alice": {"platform": "nv", "address": f"127.0.0.1:{qa}",
                               "peer_address": f"127.0.0.1:{pa}"},
                     "bob": {"platform": "nv", "address": f"127.0.0.1:{qb}",
                             "peer_address": f"127.0.0.1:{pb}"}},
           "quantum_links": {"alice-bob": {"heralding": "nv", "noise_file": "noise.yaml",
                                           "address": f"127.0.0.1:{lk if link_port is None else link_port}"}}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


class _Proc:
    """A process started by hand, its stdout's JSON lines in a queue."""

    def __init__(self, args, env):
        self.p = subprocess.Popen([sys.executable, "-m", "qnodeos_hw", *args], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                pass
        self.lines.put(None)

    def expect(self, key, timeout_s=60.0):
        while True:
            msg = self.lines.get(timeout=timeout_s)
            assert msg is not None, f"{self.p.args} ended: {self.p.stderr.read()}"
            if key in msg:
                return msg[key]

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()  # SIGTERM: a process started by hand stops cleanly
        try:
            return self.expect("done", 30.0)
        finally:
            self.p.wait(30)


@pytest.fixture
def hand_network(tmp_path, monkeypatch):
    """link serve + node serve alice + node serve bob, started by hand; the file's path."""
    import os
    monkeypatch.setenv("QNODEOS_HW_NETWORK_KEY", KEY)
    ports = _free_ports(5)
    net = _network(tmp_path, ports)
    env = dict(os.environ, QNODEOS_HW_NETWORK_KEY=KEY)
    procs = {"link": _Proc(["link", "serve", "--network", net, "--link", "alice-bob"], env),
             "alice": _Proc(["node", "serve", "--network", net, "--node", "alice"], env),
             "bob": _Proc(["node", "serve", "--network", net, "--node", "bob"], env)}
    try:
        ready = {k: p.expect("ready") for k, p in procs.items()}
        assert ready["link"]["address"] == ["127.0.0.1", ports[4]]
        assert ready["alice"]["qnpu"] == ["127.0.0.1", ports[0]]
        assert ready["bob"]["peer"] == ["127.0.0.1", ports[3]]
        yield net, ports, procs
    finally:
        for p in procs.values():
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()


def _run(capsys, *args):
    rc = main(["run", *args])
    cap = capsys.readouterr()
    return rc, cap.out.strip().splitlines(), cap.err.strip().splitlines()


def test_run_attaches_to_nodes_started_by_hand(hand_network, epr_app, capsys, monkeypatch,
                                               tmp_path):
    net, ports, procs = hand_network
    app = epr_app(pairs=3)
    # two runs on the same nodes: each starts and stops only its CNPUs
    for _ in range(2):
        rc, out, err = _run(capsys, app, "--network", net)
        assert rc == 0, err
        res = json.loads(out[-1])
        assert set(res) == {"alice", "bob"}
        assert len(res["alice"]["m"]) == 3 and res["alice"]["m"] == res["bob"]["m"]
        assert all(p.p.poll() is None for p in procs.values()), "run stopped a node it did not start"

    # a wrong secret: refused, named
    monkeypatch.setenv("QNODEOS_HW_NETWORK_KEY", "not-" + KEY)
    rc, out, err = _run(capsys, app, "--network", net)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("qnodeos-hw run: NetworkSecretError: node 'alice' at 127.0.0.1:")
    assert "QNODEOS_HW_NETWORK_KEY" in err[0]
    # ... and so is a program's connection without the node's key (before any netqasm)
    with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as s:
        with pytest.raises(api_auth.CredentialRefusedError, match="refused the credential"):
            api_auth.answer(s, api_auth.api_key("not-" + KEY, "alice").encode(), "alice")
    monkeypatch.setenv("QNODEOS_HW_NETWORK_KEY", KEY)

    # modelled time needs the runner's shared clock: a typed error
    rc, out, err = _run(capsys, app, "--network", net, "--time", "modelled")
    assert rc == 2 and err[-1].startswith("qnodeos-hw run: AttachTimeModeError:"), err

    # a network where bob does not serve (his address moved): both named
    (other,) = _free_ports(1)
    part = _network(tmp_path, [ports[0], ports[1], other, ports[3], ports[4]], "part.yaml")
    rc, out, err = _run(capsys, app, "--network", part)
    assert rc == 2 and err[-1].startswith("qnodeos-hw run: PartlyServingNetworkError:"), err
    assert f"alice (127.0.0.1:{ports[0]}) serve" in err[-1]
    assert f"bob (127.0.0.1:{other}) do(es) not" in err[-1]

    # the nodes served every run and stop cleanly
    for name in ("alice", "bob"):
        assert procs[name].stop()["errors"] == []
    assert procs["link"].stop()["heralds"] >= 6


def test_processes_started_by_hand_need_fixed_ports(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QNODEOS_HW_NETWORK_KEY", KEY)
    qa, pa, qb, pb, lk = _free_ports(5)
    net = _network(tmp_path, [qa, pa, qb, pb, lk], link_port=0)
    assert link_serve.main(["--network", net, "--link", "bob-alice"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("link serve: NetworkConfigError:"), err
    assert "network key 'quantum_links.alice-bob.address'" in err[0]
    assert node_serve.main(["--network", net, "--node", "alice"]) == 2
    assert "'quantum_links.alice-bob.address'" in capsys.readouterr().err
    doc = yaml.safe_load(open(net))
    del doc["nodes"]["bob"]["peer_address"]
    (tmp_path / "nopeer.yaml").write_text(yaml.safe_dump(doc))
    assert node_serve.main(["--network", str(tmp_path / "nopeer.yaml"), "--node", "alice"]) == 2
    assert "network key 'nodes.bob.peer_address'" in capsys.readouterr().err
    assert link_serve.main(["--network", net, "--link", "alice-carol"]) == 2
    assert "no quantum link 'alice-carol'" in capsys.readouterr().err
    monkeypatch.delenv("QNODEOS_HW_NETWORK_KEY")
    assert link_serve.main(["--network", net, "--link", "alice-bob"]) == 2
    assert "set $QNODEOS_HW_NETWORK_KEY" in capsys.readouterr().err


def test_a_fixed_address_may_be_given_once(tmp_path):
    qa, pa, qb, pb, lk = _free_ports(5)
    doc = yaml.safe_load(open(_network(tmp_path, [qa, pa, qb, pb, lk])))
    doc["quantum_links"]["alice-bob"]["address"] = f"127.0.0.1:{pa}"
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(NetworkConfigError, match=r"network key 'quantum_links.alice-bob.address': "
                                                 r"address 127.0.0.1:\d+ is already "
                                                 r"nodes.alice.peer_address"):
        load_network(tmp_path / "dup.yaml")
    doc["quantum_links"]["alice-bob"]["address"] = "127.0.0.1:0"
    doc["nodes"]["bob"]["peer_address"] = f"10.0.0.2:{pb}"
    (tmp_path / "host.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(NetworkConfigError, match="'nodes.bob.peer_address': host '10.0.0.2' "
                                                 "differs"):
        load_network(tmp_path / "host.yaml")
