"""Network files (issue 14, point 1): validation naming file and key, the shipped
networks, ``run --network`` equal to the same network built in code, the deprecated
``run --station`` network-model file, and what today's network cannot build yet."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time

import netqasm
import pytest
import yaml

from qnodeos_hw.cli import main
from qnodeos_hw.runner.network import (IdealNetworkFactory, NetworkSettings, NVNetworkFactory,
                                     run_app_dir)
from qnodeos_hw.protocol.trace import load_jsonl, modelled_bytes
from qnodeos_hw.networks import (NETWORK_DIR, NetworkConfigError, NetworkNotFoundError,
                                 UnsupportedNetworkError, load_network, network_from_dict,
                                 shipped_networks)
from qnodeos_hw.networks.build import NetworkBindingError, check_supported, plan_network

APPS = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps")


def _last_json(out: str):
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------- shipped networks
def test_shipped_networks_validate():
    assert shipped_networks() == ["ideal_2node", "nv_2node", "nv_3node"]
    ideal, nv2, nv3 = (load_network(n) for n in shipped_networks())
    assert list(ideal.nodes) == ["alice", "bob"] and ideal.quantum_links["alice-bob"].fidelity == 1
    assert {n.platform for n in nv2.nodes.values()} == {"nv"}
    assert nv2.schedule.attempts_per_bin is None  # auto
    assert list(nv3.nodes) == ["alice", "bob", "charlie"]
    assert nv3.schedule.bins == (("alice-bob",), ("bob-charlie",), ("alice-charlie",))
    assert {n.qubits for n in nv3.nodes.values()} == {3}  # electron + two carbons
    assert all(n.address.loopback for c in (ideal, nv2, nv3) for n in c.nodes.values())
    # by name or by path
    assert load_network(NETWORK_DIR / "nv_3node.yaml").nodes.keys() == nv3.nodes.keys()


def test_unknown_network_name_lists_the_shipped_ones(tmp_path, capsys, epr_app):
    with pytest.raises(NetworkNotFoundError, match="ideal_2node, nv_2node, nv_3node"):
        load_network("ideal_3node")
    assert main(["run", epr_app(), "--network", "ideal_3node"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qnodeos-hw run: NetworkNotFoundError:")


# ---------------------------------------------------------------------- validation
BASE = yaml.safe_load((NETWORK_DIR / "ideal_2node.yaml").read_text())
NV = yaml.safe_load((NETWORK_DIR / "nv_2node.yaml").read_text())


def _set(doc, dotted, value):
    d = doc
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d[int(p)] if isinstance(d, list) else d.setdefault(p, {})
    if value is _DEL:
        del d[parts[-1]]
    else:
        d[parts[-1]] = value


_DEL = object()

BAD = [
    (BASE, "network", 2, "network"),
    (BASE, "network", _DEL, "network"),
    (BASE, "nodse", {}, "nodse"),
    (BASE, "nodes.alice.qubits", 0, "nodes.alice.qubits"),
    (BASE, "nodes.alice.qubits", "five", "nodes.alice.qubits"),
    (BASE, "nodes.alice.platform", "superconducting", "nodes.alice.platform"),
    (BASE, "nodes.alice.qbits", 5, "nodes.alice.qbits"),
    (BASE, "nodes.alice.address", "localhost", "nodes.alice.address"),
    (BASE, "nodes.alice.address", "127.0.0.1:70000", "nodes.alice.address"),
    (BASE, "nodes.alice.station", "no_such_station.yaml", "nodes.alice.station"),
    (BASE, "nodes.alice.flavour", "ion", "nodes.alice.flavour"),
    (BASE, "quantum_links.alice-bob.fidelity", 1.5, "quantum_links.alice-bob.fidelity"),
    (BASE, "quantum_links.alice-bob.p_success", 0, "quantum_links.alice-bob.p_success"),
    (BASE, "quantum_links.alice-bob.noise_file", "x.yaml", "quantum_links.alice-bob.noise_file"),
    (BASE, "quantum_links.alice-carol", {"heralding": "ideal"}, "quantum_links.alice-carol"),
    (BASE, "quantum_links.alice-bob.heralding", "nv", "quantum_links.alice-bob.heralding"),
    (BASE, "classical_links.alice-bob.latency",
     {"cnpu_to_cnpu": {"mean_ms": 1, "min_ms": 0}}, "classical_links.alice-bob.latency.cnpu_to_cnpu"),
    (BASE, "classical_links.alice-bob.latency", {"cnpu_to_qnpu": {"mean_ms": 1, "min_ms": 0.1}},
     "classical_links.alice-bob.latency.cnpu_to_qnpu"),
    (BASE, "schedule.bin_ns", -5, "schedule.bin_ns"),
    (BASE, "schedule.attempts_per_bin", 70000, "schedule.attempts_per_bin"),
    (BASE, "schedule.bins", ["alice-carol"], "schedule.bins.0"),
    (BASE, "time.mode", "wall", "time.mode"),
    (BASE, "time.latency_file", "missing_latency.yaml", "time.latency_file"),
    (NV, "nodes.alice.qubits", 7, "nodes.alice.qubits"),
    (NV, "quantum_links.alice-bob.fidelity", 0.9, "quantum_links.alice-bob.fidelity"),
    (NV, "nodes.alice.clock", "paced", "nodes.alice.clock"),  # no station: no clock to choose
]


@pytest.mark.parametrize("doc, key, value, named", BAD, ids=[(b[1] + "=" + ("<deleted>" if b[2] is _DEL else repr(b[2])))[:60]
                                                   for b in BAD])
def test_invalid_network_names_file_and_key(tmp_path, doc, key, value, named):
    doc = copy.deepcopy(doc)
    _set(doc, key, value)
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(NetworkConfigError) as ei:
        load_network(path)
    assert ei.value.key == named and ei.value.path == str(path)
    assert f"'{named}'" in str(ei.value) and str(path) in str(ei.value)


def test_bad_latency_file_and_station_name_their_own_cause(tmp_path):
    (tmp_path / "lat.yaml").write_text("cnpu_to_cnpu: {mean_ms: -1}\n")
    (tmp_path / "not_a_station.yaml").write_text("platform: nv\n")
    doc = copy.deepcopy(NV)
    doc["time"]["latency_file"] = "lat.yaml"  # relative to the network file
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(NetworkConfigError, match=r"time.latency_file.*cnpu_to_cnpu.mean_ms"):
        load_network(tmp_path / "a.yaml")
    doc = copy.deepcopy(NV)
    doc["nodes"]["alice"]["station"] = "not_a_station.yaml"
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(NetworkConfigError, match="not a QCoDeS station YAML") as ei:
        load_network(tmp_path / "b.yaml")
    assert ei.value.key == "nodes.alice.station"


def test_invalid_yaml_and_cli_line(tmp_path, capsys, epr_app):
    path = tmp_path / "broken.yaml"
    path.write_text("network: 1\nnodes: [\n")
    with pytest.raises(NetworkConfigError, match="not valid YAML"):
        load_network(path)
    assert main(["run", epr_app(), "--network", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qnodeos-hw run: NetworkConfigError: ")
    assert str(path) in err[0] and "Traceback" not in err[0]


# ---------------------------------------------------------------------- run --network
def test_run_ideal_2node_equals_the_network_built_in_code(tmp_path, capsys):
    app = os.path.join(APPS, "bb84")
    trace = tmp_path / "cli.jsonl"
    assert main(["run", app, "--network", "ideal_2node", "--seed", "5", "--trace", str(trace)]) == 0
    cli = _last_json(capsys.readouterr().out)
    res = run_app_dir(app, IdealNetworkFactory(num_qubits=5, fidelity=1.0, p_success=1.0, seed=5),
                      NetworkSettings(bin_ns=10_000_000, seed=5, attempts_per_bin=1000))
    assert res.ok
    code = json.loads(json.dumps(res.results, default=str))
    assert cli == code and cli["alice"]["qber"] == 0
    res.trace.save(str(tmp_path / "code.jsonl"))
    assert (modelled_bytes(load_jsonl(str(trace)))
            == modelled_bytes(load_jsonl(str(tmp_path / "code.jsonl"))))
    # another seed gives other outcomes (the comparison can fail)
    assert main(["run", app, "--network", "ideal_2node", "--seed", "6"]) == 0
    assert _last_json(capsys.readouterr().out) != cli


def test_run_nv_2node_equals_the_network_built_in_code(tmp_path, capsys, epr_app):
    app = epr_app()
    assert main(["run", app, "--network", "nv_2node", "--seed", "3"]) == 0
    cli = _last_json(capsys.readouterr().out)
    res = run_app_dir(app, NVNetworkFactory(seed=3, num_qubits=1),
                      NetworkSettings(bin_ns=10_000_000, seed=3, attempts_per_bin=2000))
    assert res.ok and res.results == cli and len(cli["alice"]["m"]) == 2


def test_plan_of_a_file_with_schedule_latency_and_ports(tmp_path):
    doc = copy.deepcopy(BASE)
    doc["schedule"].update(bin_ns=100_000, attempts_per_bin=7)
    doc["nodes"]["alice"]["address"] = "127.0.0.1:45678"
    doc["nodes"]["bob"]["classical_address"] = "127.0.0.1:0"
    doc["quantum_links"]["alice-bob"].update(fidelity=0.9, p_success=0.5)
    doc["classical_links"]["alice-bob"] = {"latency": {"cnpu_to_cnpu": {
        "mean_ms": 2.0, "sd_ms": 0.0, "min_ms": 1.0}}}
    doc["time"]["mode"] = "host"
    cfg = network_from_dict(doc, source="t")
    plan = plan_network(cfg, ["alice", "bob"], seed=4)
    s = plan.settings
    assert (s.bin_ns, s.attempts_per_bin, s.time_mode, s.seed) == (100_000, 7, "host", 4)
    assert s.links == (frozenset({"alice", "bob"}),)
    assert s.ports == {"alice": (45678, 0), "bob": (0, 0)} and s.host == "127.0.0.1"
    assert s.latency.cnpu_to_cnpu.mean_ns == 2_000_000 and s.latency.seed == 4
    assert plan.factory.link.fidelity == 0.9 and plan.factory.link.p_success == 0.5
    # --time overrides the file's mode
    assert plan_network(cfg, ["alice", "bob"], time_mode="modelled").settings.time_mode == "modelled"


def test_app_nodes_bind_onto_the_network_nodes(tmp_path, capsys):
    cfg = load_network("ideal_2node")
    plan = plan_network(cfg, ["sender", "receiver"], seed=1)
    assert plan.binding == {"alice": "receiver", "bob": "sender"}
    assert plan.settings.links == (frozenset({"receiver", "sender"}),)
    assert main(["run", os.path.join(APPS, "teleport"), "--network", "ideal_2node",
                 "--seed", "3"]) == 0
    assert set(_last_json(capsys.readouterr().out)) == {"sender", "receiver"}
    with pytest.raises(NetworkBindingError, match="3 node"):  # three_nodes on two nodes
        plan_network(cfg, ["alice", "bob", "charlie"])
    one = plan_network(cfg, ["alice"])  # fewer nodes, same names: the others stay unused
    assert list(one.config.nodes) == ["alice"]


def test_nv_3node_runs_three_node_apps(capsys):
    """netqasm's chsh (its repeater on charlie) and our GHZ app run on three NV nodes,
    one heralding station per pair, the links taking turns in the bins."""
    assert main(["run", os.path.join(APPS, "chsh"), "--network", "nv_3node", "--seed", "1"]) == 0
    out = _last_json(capsys.readouterr().out)
    assert set(out) == {"alice", "bob", "repeater"} and out["repeater"]["m1"] in (0, 1)
    ghz = os.path.join(os.path.dirname(__file__), "..", "qnodeos_hw", "experiments", "apps", "ghz")
    assert main(["run", ghz, "--network", "nv_3node", "--seed", "1"]) == 0
    out = _last_json(capsys.readouterr().out)
    assert set(out) == {"alice", "bob", "charlie"} and len(out["bob"]["fusion"]) == 1


def test_more_than_two_nv_nodes_on_station_yamls_are_refused_at_once(tmp_path):
    doc = load_network("nv_3node")
    with pytest.raises(UnsupportedNetworkError) as ei:
        check_supported(dataclasses.replace(doc, nodes={
            k: dataclasses.replace(n, station=tmp_path / "lab.yaml") for k, n in doc.nodes.items()}))
    assert ei.value.key == "nodes" and "lab stations" in str(ei.value)


def test_what_the_single_process_network_cannot_build_is_named(tmp_path):
    doc = copy.deepcopy(BASE)
    doc["nodes"]["carol"] = {"platform": "nv"}
    with pytest.raises(UnsupportedNetworkError, match="different platforms"):
        plan_network(network_from_dict(doc), ["alice", "bob", "carol"])
    doc = copy.deepcopy(BASE)
    doc["nodes"]["bob"]["address"] = "127.0.0.2:0"
    with pytest.raises(UnsupportedNetworkError, match="different hosts"):
        plan_network(network_from_dict(doc), ["alice", "bob"])
    doc = {"network": 1, "nodes": {"ion": {"platform": "ion"}}}
    with pytest.raises(UnsupportedNetworkError, match="trapped-ion"):
        plan_network(network_from_dict(doc), ["ion"])


# ---------------------------------------------------------------------- --station
def test_old_network_model_on_station_runs_with_a_deprecation_warning(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text("bin_ns: 10000000\nnum_qubits: 5\n")
    app = os.path.join(APPS, "bb84")
    assert main(["run", app, "--station", str(old), "--seed", "5"]) == 0
    cap = capsys.readouterr()
    assert "deprecated" in cap.err and "--network" in cap.err
    assert main(["run", app, "--network", "ideal_2node", "--seed", "5"]) == 0
    assert _last_json(capsys.readouterr().out) == _last_json(cap.out)


def test_a_qcodes_station_on_run_station_points_to_the_network_file(tmp_path, capsys, epr_app):
    from qnodeos_hw.instruments.stations import station_file
    assert main(["run", epr_app(), "--station", str(station_file("sim"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "StationIsNotANetworkError" in err[0]
    assert "nodes.<name>.station" in err[0] and "--network" in err[0]


def test_custom_factory_and_the_old_keys_in_their_new_places(tmp_path):
    doc = {"network": 1, "qdriver_factory": "qnodeos_hw.runner.network:IdealNetworkFactory",
           "factory_args": {"num_qubits": 3, "fidelity": 0.8},
           "nodes": {"a": {"platform": "custom"}, "b": {"platform": "custom"}}}
    plan = plan_network(network_from_dict(doc), ["a", "b"], seed=2)
    assert plan.factory.num_qubits == 3 and plan.factory.link.fidelity == 0.8
    doc["nodes"]["b"]["platform"] = "ideal"
    with pytest.raises(NetworkConfigError) as ei:
        network_from_dict(doc)
    assert ei.value.key == "qdriver_factory"
    # an old NV network-model file: the same factory and settings as before
    from qnodeos_hw.networks.build import legacy_network
    old = tmp_path / "old.yaml"
    old.write_text("platform: nv\nnum_qubits: 1\nbin_ns: 20000000\ntime_mode: host\n")
    plan = plan_network(legacy_network(str(old), ["client", "server"]), ["client", "server"], seed=9)
    assert isinstance(plan.factory, NVNetworkFactory)
    assert plan.factory.kwargs == NVNetworkFactory(seed=9, num_qubits=1).kwargs
    s = plan.settings
    assert (s.bin_ns, s.attempts_per_bin, s.time_mode, s.links, s.latency) == \
        (20_000_000, 1000, "host", (), None)
    old.write_text("platform: nv\nfidelity: 0.9\n")
    with pytest.raises(KeyError, match="fidelity"):
        legacy_network(str(old), ["a", "b"])


def test_a_quantum_link_without_a_time_bin_is_named():
    doc = copy.deepcopy(BASE)
    doc["nodes"]["carol"] = {"platform": "ideal"}
    doc["quantum_links"]["bob-carol"] = {"heralding": "ideal"}
    with pytest.raises(NetworkConfigError, match="'bob-carol' has no time bin") as ei:
        network_from_dict(doc, source="n.yaml")
    assert ei.value.key == "schedule.bins"
    doc["schedule"]["bins"] = ["alice-bob", "bob-carol"]
    assert network_from_dict(doc).schedule.bins == (("alice-bob",), ("bob-carol",))
