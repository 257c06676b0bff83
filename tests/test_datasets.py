"""QCoDeS datasets: the user's database untouched, labels, SI units, categories, inputs,
station snapshot, rows written through Measurement; each opened with load_by_id(conn=)."""

from __future__ import annotations

import json
import math

import pytest
import qcodes as qc
from qcodes.dataset import load_by_id
from qcodes.instrument import Instrument

from qnodeos_hw.experiments import datasets as D
from qnodeos_hw.experiments.dqc import DQCConfig


@pytest.fixture(autouse=True)
def _user_db(tmp_path):
    """A user's session with its own database configured."""
    old = qc.config.core.db_location
    qc.config.core.db_location = str(tmp_path / "my_lab.db")
    yield tmp_path / "my_lab.db"
    qc.config.core.db_location = old
    Instrument.close_all()


def _params(ds):
    return {p.name: p for p in ds.get_parameters()}


def _recs():
    it = {"server_wait_ns": 2_500_000}
    return [{"alpha": 2, "theta": 1, "bases": ["X", "Y", "Z"], "m": [0, 1, 1],
             "iterations": [it, None, it]},
            {"alpha": 4, "theta": 2, "bases": ["X", "Y", "Z"], "m": [1, 0, 0],
             "iterations": [it, it, it]}]


def test_dqc_dataset(tmp_path, _user_db, capsys):
    cfg = DQCConfig(k=3, seed=5)
    db = tmp_path / "out" / "dqc.db"
    run_id = D.save_dqc(db, cfg, _recs(), {"k": 3, "settings": [{"alpha_pi4": 2}]})
    assert "Starting experimental run" not in capsys.readouterr().out
    # the user's database was neither created nor changed
    assert qc.config.core.db_location == str(_user_db) and not _user_db.exists()
    conn = D.connect_db(db)
    try:
        ds = load_by_id(run_id, conn=conn)
        p = _params(ds)
        assert all(x.label for x in p.values())
        assert p["server_wait"].unit == "s" and p["alpha"].unit == "rad"
        assert p["basis"].label.endswith("(0=X, 1=Y, 2=Z)")
        assert json.loads(ds.metadata["categories"])["basis"] == {"0": "X", "1": "Y", "2": "Z"}
        inputs = json.loads(ds.metadata["inputs"])
        assert inputs["k"] == 3 and inputs["seed"] == 5 and inputs["setting_seeds"] == [5000, 5001]
        assert inputs["settings"][1]["alpha_rad"] == pytest.approx(math.pi)
        assert inputs["settings"][1]["theta_rad"] == pytest.approx(math.pi / 2)
        assert inputs["max_wait_s"] == pytest.approx(cfg.filter_ms * 1e-3)  # the derived filter
        assert 7e-3 < inputs["max_wait_s"] < 10e-3
        insts = ds.snapshot["station"]["instruments"]
        assert {"client_hdawg", "client_adwin", "client_mw", "server_hdawg"} <= set(insts)
        assert insts["server_mw"]["parameters"]["frequency"]["unit"] == "Hz"
        assert ds.run_timestamp() and ds.completed_timestamp()
        data = ds.get_parameter_data()
        assert list(data["outcome"]["outcome"]) == [0, 1, 1, 1, 0, 0]
        assert list(data["basis"]["basis"]) == [0, 1, 2, 0, 1, 2]
        waits = data["server_wait"]["server_wait"]
        assert waits[0] == pytest.approx(2.5e-3) and math.isnan(waits[1])
        assert list(data["alpha"]["alpha"][:3]) == pytest.approx([math.pi / 2] * 3)
    finally:
        conn.close()
    # a second run lands in the same file, not in the user's
    assert D.save_dqc(db, cfg, _recs(), {}) == run_id + 1
    assert not _user_db.exists()


def test_lgt_and_multitask_datasets(tmp_path):
    res = {"k": 1, "seed": 2, "subroutines": 2, "blocks": [["Y", 1], ["X", 2]],
           "m": [[0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 0]], "inputs": {}}
    db = tmp_path / "lgt.db"
    ds, conn = D.load_dataset(db, D.save_lgt(db, res))
    try:
        p = _params(ds)
        assert p["input"].label.startswith("(D, phi) input (0=(X, 0), 1=(X, pi), 2=(Y, pi/2)")
        assert p["basis"].label.startswith("tomography basis (0=+X, 1=-X")
        assert p["phi"].unit == "rad"
        cols = ds.get_parameter_data()
        assert list(cols["input"]["input"]) == [2] * 6 + [1] * 6  # (Y, pi/2), (X, pi)
        assert list(cols["basis"]["basis"]) == list(range(6)) * 2
        assert list(cols["outcome"]["outcome"]) == [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0]
        assert list(cols["outcome"]["subroutine"]) == [0] * 6 + [1] * 6
        assert json.loads(ds.metadata["inputs"])["k"] == 1
        assert "node_hdawg" in ds.snapshot["station"]["instruments"]
    finally:
        conn.close()
    summ = {"experiment": "multitask", "dqc_reps": 30, "lgt_subroutines": 72, "runs": [
        {"n": 1, "multitasking": True, "seed": 101, "t_util": 0.08,
         "lgt_fidelity_corrected_mean": 0.97, "lgt_blocks_between_dqc": {"mean": 2.0},
         "waiting_other_process": {"fraction": 0.5}, "t_total_ns": 1_000_000},
        {"n": 1, "multitasking": False, "seed": 101, "t_util": 0.06,
         "lgt_fidelity_corrected_mean": 0.96, "lgt_blocks_between_dqc": {"mean": 0.0},
         "waiting_other_process": {"fraction": 0.0}, "t_total_ns": 2_000_000}]}
    db = tmp_path / "mt.db"
    ds, conn = D.load_dataset(db, D.save_multitask(db, summ))
    try:
        p = _params(ds)
        assert p["multitasking"].label == "multitasking (0=off, 1=on)"
        assert p["t_total"].unit == "s"
        cols = ds.get_parameter_data()["t_total"]
        assert list(cols["t_total"]) == pytest.approx([1e-3, 2e-3])
        assert list(cols["multitasking"]) == [1, 0]
        assert list(ds.get_parameter_data()["waiting_other"]["waiting_other"]) == [0.5, 0.0]
        assert json.loads(ds.metadata["inputs"])["dqc_reps"] == 30
    finally:
        conn.close()


def test_open_run_refuses_unlabelled_and_non_si(tmp_path):
    with pytest.raises(D.DatasetError, match="label"):
        with D.open_run(tmp_path / "x.db", "e", "n", [D.Param("t", "")]):
            pass
    with pytest.raises(D.DatasetError, match="SI"):
        with D.open_run(tmp_path / "x.db", "e", "n", [D.Param("t", "time", "ms")]):
            pass
    with pytest.raises(D.DatasetError, match="does not exist"):
        D.load_dataset(tmp_path / "nothing.db", 1)
