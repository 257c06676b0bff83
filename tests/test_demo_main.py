"""`demo main --db PATH`: every dataset of the main job goes into the user's database;
qcodes' own configuration is neither read nor changed."""

import json

import pytest

from qnodeos_hw import cli
from qnodeos_hw.experiments import main_job
from qnodeos_hw.experiments.datasets import load_dataset


def test_demo_main_writes_its_three_runs_into_the_chosen_db(tmp_path, monkeypatch, capsys):
    import qcodes as qc
    monkeypatch.setattr(main_job, "DQC_K", 3)
    monkeypatch.setattr(main_job, "LGT_K", 1)
    monkeypatch.setattr(main_job, "MULTITASK_N", [1])
    monkeypatch.setattr(main_job, "MULTITASK_REPEATS", 1)
    monkeypatch.setattr(main_job, "MULTITASK_SIZES", {"dqc_reps": 3, "lgt_k": 1})
    before = qc.config.core.db_location
    db = tmp_path / "my_lab.db"
    out = tmp_path / "out"
    assert cli.main(["demo", "main", "--out", str(out), "--db", str(db)]) == 0
    assert qc.config.core.db_location == before
    assert not list(out.rglob("*.db"))                   # nothing beside the user's file
    text = capsys.readouterr().out
    assert f"datasets: {db}" in text
    names = []
    for run_id in (1, 2, 3):
        ds, conn = load_dataset(db, run_id)
        try:
            names.append(ds.exp_name)
            assert ds.number_of_results > 0
        finally:
            conn.close()
    assert names == ["dqc", "lgt", "multitask"]
    # and the JSON files carry the paper's figures beside ours
    for name, key in (("dqc", "latency_filter_ms"), ("lgt", "l1_duration_ms"),
                      ("multitask", "waiting_other_process_fraction")):
        js = json.loads((out / name / f"{name}.json").read_text())
        assert key in js["paper"], name


@pytest.mark.parametrize("argv", [["demo", "dqc", "--help"], ["demo", "main", "--help"]])
def test_help_names_the_new_options(argv, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    out = " ".join(capsys.readouterr().out.split())
    assert "--db" in out
    if "dqc" in argv:
        assert "--extra-wait-ms" in out and "derived from the noise model" in out
