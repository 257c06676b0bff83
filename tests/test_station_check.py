"""Station YAMLs, the simulated NV lab wiring and `qnodeos-hw station check`."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest
import yaml
from qcodes.instrument import Instrument

from qnodeos_hw.cli import main
from qnodeos_hw.instruments.adwin import ADwinLibraryMissingError
from qnodeos_hw.instruments.hdawg import InstrumentUnreachableError
from qnodeos_hw.instruments.station_check import StationInstrumentError, check_station
from qnodeos_hw.instruments.stations import station_file
from qnodeos_hw.qdevice import (InstructionMessage, Opcode, ResponseKind, VirtualClock, decode,
                                encode)
from qnodeos_hw.simulators.nv_lab import (SimLabAddressError, SimulatedNVLab, load_station,
                                          open_nv_node, parse_simlab_address)


@pytest.fixture(autouse=True)
def _close_all():
    yield
    Instrument.close_all()


def _config(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load(station_file("sim").read_text())
    edit(doc["instruments"])
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_cli_checks_the_default_sim_station(capsys):
    assert main(["station", "check"]) == 0
    out = capsys.readouterr().out
    assert "4/4 instruments connected" in out
    for line in ("hdawg", "adwin", "mw", "ion_bridge"):
        assert any(l.split()[:1] == [line] and " OK " in l for l in out.splitlines())
    assert "HDAWG8 DEV8001" in out and "SGS100A" in out
    assert "dio_codeword" in out and "tick_rate" in out
    assert not Instrument.instances() if hasattr(Instrument, "instances") else True
    assert not Instrument.exist("hdawg")


def test_unreachable_instruments_are_typed_errors_naming_them(tmp_path, capsys, unused_port):
    port = unused_port

    def edit(inst):
        inst["hdawg"]["address"] = f"127.0.0.1:{port}"
        inst["hdawg"]["init"]["timeout_s"] = 2.0
        inst["adwin"]["address"] = "1"  # a real ADwin: vendor library absent here
        inst["mw"]["address"] = f"TCPIP0::127.0.0.1::{port}::SOCKET"  # real VISA, nobody there
        del inst["mw"]["init"]["pyvisa_sim_file"]
    cfg = _config(tmp_path, edit)
    t = time.perf_counter()
    reports = {r.name: r for r in check_station(cfg)}
    assert time.perf_counter() - t < 5.0
    hd, ad, mw = reports["hdawg"].error, reports["adwin"].error, reports["mw"].error
    assert isinstance(hd, StationInstrumentError) and isinstance(hd.cause,
                                                                  InstrumentUnreachableError)
    assert hd.instrument == "hdawg" and hd.address == f"127.0.0.1:{port}"
    assert isinstance(ad.cause, ADwinLibraryMissingError) and "vendor library" in str(ad)
    assert mw.instrument == "mw" and f"TCPIP0::127.0.0.1::{port}::SOCKET" in str(mw)
    assert reports["ion_bridge"].error is None
    assert main(["station", "check", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "1/4 instruments connected" in out and f"127.0.0.1:{port}" in out


def test_silent_visa_address_is_reported(tmp_path):
    def edit(inst):
        inst["mw"]["address"] = "GPIB::99::INSTR"  # pyvisa-sim opens it, nothing answers
        inst["mw"]["init"]["timeout"] = 0.2
        inst["mw"].pop("parameters")
    reports = {r.name: r for r in check_station(_config(tmp_path, edit))}
    err = reports["mw"].error
    assert err.instrument == "mw" and err.address == "GPIB::99::INSTR"
    assert "no identity" in str(err)


def test_strict_check_raises_the_first_failure(tmp_path, unused_port):
    port = unused_port

    def edit(inst):
        inst["hdawg"]["address"] = f"127.0.0.1:{port}"
    with pytest.raises(StationInstrumentError, match=f"'hdawg' at '127.0.0.1:{port}'"):
        check_station(_config(tmp_path, edit), strict=True)


def test_out_of_range_initial_value_refused_before_it_is_sent(tmp_path):
    def edit(inst):
        inst["hdawg"]["parameters"]["sample_rate"]["initial_value"] = 3.0e9
    cfg = _config(tmp_path, edit)
    lab = SimulatedNVLab(physics=None, clock=VirtualClock(), seed=1)
    errors = []
    load_station(cfg, labs={"nv": lab}, only=["hdawg"],
                 on_error=lambda *a: errors.append(a))
    (name, address, exc), = errors
    assert (name, address) == ("hdawg", "simlab://nv/hdawg") and isinstance(exc, ValueError)
    assert "3000000000" in str(exc) or "3e+09" in str(exc) or "3.0e9" in str(exc)
    assert lab.hdawg_connection.getDouble("/dev8001/system/clocks/sampleclock/freq") == 2.4e9


def test_mw_source_limits_from_the_station_yaml():
    node = open_nv_node(seed=3)
    mw = node.mw
    assert mw.frequency() == 1.746e9 and mw.IQ_state() is True
    with pytest.raises(ValueError):
        mw.power(20)  # station limit 18 dBm (the driver itself allows 25)
    assert mw.power() == 10
    mw.power(-5)
    assert mw.power() == -5
    node.close()


def test_lab_template_is_a_real_lab_description():
    doc = yaml.safe_load(station_file("lab").read_text())["instruments"]
    assert set(doc) == {"hdawg", "adwin", "mw", "ion_bridge"}
    for cfg in doc.values():
        module, _, cls = cfg["type"].rpartition(".")
        assert hasattr(importlib.import_module(module), cls)
        assert not str(cfg["address"]).startswith(("simlab://", "sim://"))
        assert "pyvisa_sim_file" not in (cfg.get("init") or {})
    host, port = doc["hdawg"]["address"].split(":")
    assert int(port) == 8004 and doc["adwin"]["address"].isdigit()
    assert doc["mw"]["address"].startswith("TCPIP0::")


def test_simlab_addresses():
    assert parse_simlab_address("simlab://alice/adwin") == ("alice", "adwin")
    for bad in ("simlab://alice", "simlab:///hdawg", "simlab://alice/scope", "sim://x/hdawg"):
        with pytest.raises(SimLabAddressError):
            parse_simlab_address(bad)
    with pytest.raises(SimLabAddressError, match="scope"):
        SimulatedNVLab(physics=None, seed=0).instrument_kwargs("scope")


def test_nv_node_end_to_end_with_packaged_physics():
    """INIT + MEASURE through driver, simulated ADwin and the packaged NV physics;
    same seed -> same outcomes, two nodes side by side in one process."""
    clock = VirtualClock()
    a = open_nv_node(clock=clock, seed=7, name="alice")
    b = open_nv_node(clock=VirtualClock(), seed=7, name="bob")
    outs = {}
    for node in (a, b):
        bits = []
        for _ in range(20):
            node.adwin.send_instruction(encode(InstructionMessage(Opcode.INIT)))
            assert decode(node.adwin.read_response()).kind is ResponseKind.SUCCESS
            node.adwin.send_instruction(encode(InstructionMessage(Opcode.MEASURE)))
            r = decode(node.adwin.read_response())
            assert r.kind is ResponseKind.OUTCOME
            bits.append(r.argument)
        outs[node.lab.name] = bits
    assert outs["alice"] == outs["bob"]
    assert sum(outs["alice"]) <= 4  # |0> read out with high fidelity
    assert a.adwin.now_ns() == clock.now_ns() > 0
    assert a.hdawg.name == "alice_hdawg" and b.adwin.name == "bob_adwin"
    snap = a.handle.station.snapshot()
    assert {"alice_hdawg", "alice_adwin", "alice_mw"} <= set(snap["instruments"])
    a.close()
    b.close()
    assert not Instrument.exist("alice_hdawg")


def test_two_nodes_entangle_through_their_controllers():
    """Each node's QDriver thread drives its own simulated ADwin; the controllers'
    ENT attempts meet at the shared heralding station of the physics."""
    import dataclasses
    import threading

    import numpy as np

    from qnodeos_hw.simulators.physics import (HeraldingStation, NVNode, QuantumRegistry,
                                               load_noise_models)
    models = load_noise_models()
    reg = QuantumRegistry()
    station = HeraldingStation(dataclasses.replace(models.heralding, p_success=0.5),
                               np.random.default_rng(5), reg)
    phys = {n: NVNode(n, models.nv_for(n), np.random.default_rng(i), reg, station=station)
            for i, n in enumerate(("alice", "bob"))}
    nodes = {n: open_nv_node(phys[n], VirtualClock(), name=n) for n in phys}
    results: dict[str, list] = {}

    def run(name):
        ad = nodes[name].adwin
        out = []
        for _ in range(30):
            ad.send_instruction(encode(InstructionMessage(Opcode.ENT_KEEP)))
            out.append(decode(ad.read_response(timeout_s=5.0)))
        results[name] = out

    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    a, b = results["alice"], results["bob"]
    assert [r.kind for r in a] == [r.kind for r in b]
    assert [r.argument for r in a] == [r.argument for r in b]  # same Bell index
    heralds = sum(r.kind is ResponseKind.ENT_SUCCESS for r in a)
    assert 5 <= heralds <= 25 and station.attempts == 30
    for n in nodes.values():
        n.close()
