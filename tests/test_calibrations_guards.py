"""Calibrations refuse weak fits (scan edge, large standard error) unless forced, scan
ranges follow the current calibration, and every run is a QCoDeS dataset."""

from __future__ import annotations

import dataclasses
import json

import pytest
import qcodes as qc
import yaml
from qcodes.dataset import load_by_id
from qcodes.instrument import Instrument

from qnodeos_hw.cli import main
from qnodeos_hw.experiments.calibrations import (DATASET_PARAMS, ScanSettings, WeakFitError,
                                                 edge_problem, ramsey_delays, run_calibration,
                                                 stderr_problem)
from qnodeos_hw.experiments.datasets import connect_db

#: the scan the issue found: 41 delays x 40 ns (1.6 us), 4 MHz virtual detuning
SHORT_RAMSEY = ScanSettings(ramsey_step_samples=96, ramsey_points=41, ramsey_shots=200,
                            ramsey_virtual_hz=4e6)


@pytest.fixture(autouse=True)
def _close():
    yield
    Instrument.close_all()


def test_problem_helpers():
    assert edge_problem("a", 0.5, 0.0, 1.0) is None
    assert "edge" in edge_problem("a", 0.98, 0.0, 1.0)
    assert "edge" in edge_problem("a", 1.2, 0.0, 1.0)
    assert "edge" in edge_problem("a", 0.02, 0.0, 1.0)
    assert stderr_problem("t", 10.0, 0.5, 0.1) is None
    assert "standard error" in stderr_problem("t", 10.0, 2.0, 0.1)
    assert stderr_problem("d", 0.0, 500.0, 0.1, floor=1e3) is None  # zero detuning is fine
    assert stderr_problem("d", 1673.5, 3.4e3, 0.1, floor=1e3) is not None  # the fit
    assert stderr_problem("d", 1.0, float("nan"), 0.1) is not None


def test_short_ramsey_scan_is_refused_and_force_writes_it(tmp_path):
    with pytest.raises(WeakFitError) as ei:
        run_calibration("ramsey", tmp_path, seed=1, settings=SHORT_RAMSEY)
    assert any("detuning_hz" in p for p in ei.value.problems)
    assert "--force" in str(ei.value)
    assert not list(tmp_path.glob("calibration*.yaml"))  # no version, not even the input
    doc = json.loads((tmp_path / "ramsey.json").read_text())
    assert doc["refused"] is True and doc["version"] == 0 and doc["weak_fit"]
    assert (tmp_path / "ramsey.png").is_file() and (tmp_path / "calibrations.db").is_file()
    res = run_calibration("ramsey", tmp_path, seed=1, settings=SHORT_RAMSEY, force=True)
    assert res.version == 2 and (tmp_path / "calibration.v2.yaml").is_file()
    assert json.loads((tmp_path / "ramsey.json").read_text())["forced"] is True


def test_default_ramsey_spans_the_coherence_time_and_passes(tmp_path):
    delays = ramsey_delays(tmp_path, ScanSettings())
    assert delays[0] == 0 and all(d % 16 == 0 for d in delays)
    assert delays[-1] / 2.4e9 == pytest.approx(1.5 * 5e-6, rel=0.02)
    # a stored T2* sets the span
    (tmp_path / "noise_model.yaml").write_text(yaml.safe_dump({"nv": {"t2star_s": 1e-5}}))
    assert ramsey_delays(tmp_path, ScanSettings())[-1] / 2.4e9 == pytest.approx(1.5e-5, rel=0.02)
    out = tmp_path / "run"
    res = run_calibration("ramsey", out, seed=1)
    m = res.measured["detuning_hz"]
    assert m.stderr < 1e3 and res.version == 2


def test_rabi_scan_reaches_past_the_current_pi_amplitude(tmp_path):
    s = ScanSettings(rabi_shots=150)
    res = run_calibration("rabi", tmp_path, seed=2, settings=s)
    doc = json.loads((tmp_path / "rabi.json").read_text())
    old = doc["data"]["pulse_amplitude"][-1] / doc["data"]["headroom"]
    assert doc["data"]["headroom"] > 1.3
    assert max(doc["data"]["pulse_amplitude"]) > 1.3 * old
    assert res.version == 2 and not doc["weak_fit"]
    # the old scan (amplitude 1 = the current pi amplitude) puts the fit at its end
    with pytest.raises(WeakFitError) as ei:
        run_calibration("rabi", tmp_path / "edge", seed=2,
                        settings=dataclasses.replace(s, rabi_headroom=1.0))
    assert any("edge of the scan" in p and "pi_amplitude" in p for p in ei.value.problems)


def test_calibration_datasets_open_with_load_by_id(tmp_path):
    before = qc.config.core.db_location
    s = ScanSettings(rabi_shots=100, rabi_amplitudes=(0.1, 0.3, 0.5, 0.7, 0.9), dd_shots=200,
                     dd_points=4, ssro_shots=1000)
    db = tmp_path / "lab.db"
    rids = {}
    for name in ("rabi", "dd", "ssro"):
        try:
            res = run_calibration(name, tmp_path / "out", seed=3, settings=s, db=db)
            rids[name] = int(res.files["run_id"])
        except WeakFitError as exc:  # small scans may be weak; the dataset is written anyway
            rids[name] = int(exc.files["run_id"])
    assert qc.config.core.db_location == before
    conn = connect_db(db)
    try:
        for name, rid in rids.items():
            ds = load_by_id(rid, conn=conn)
            params = {p.name: p for p in ds.get_parameters()}
            assert set(params) == {p.name for p in DATASET_PARAMS[name]}
            assert all(p.label for p in params.values())
            inputs = json.loads(ds.metadata["inputs"])
            assert inputs["calibration"] == name and inputs["seed"] == 3
            assert "settings" in inputs and json.loads(ds.metadata["fit"])
            insts = ds.snapshot["station"]["instruments"]
            assert {"cal_hdawg", "cal_adwin", "cal_mw"} <= set(insts)
        rabi = load_by_id(rids["rabi"], conn=conn)
        assert len(rabi.get_parameter_data()["p1"]["amplitude"]) == 5
        dd = load_by_id(rids["dd"], conn=conn)
        assert {p.name: p.unit for p in dd.get_parameters()}["wait"] == "s"
        measured = json.loads(dd.metadata["measured"])
        assert measured["t_coh_s"]["unit"] == "s"
    finally:
        conn.close()


def test_cli_force_and_one_line_refusal(tmp_path, capsys):
    argv = ["calibrate", "ramsey", "--out", str(tmp_path), "--shots", "10"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qnodeos-hw calibrate ramsey: WeakFitError:")
    assert main(argv + ["--force"]) == 0
    assert (tmp_path / "calibration.yaml").is_file()
