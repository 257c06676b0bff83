"""LGT and multitasking demos on the simulated NV stations (short runs)."""

import json

import numpy as np
import pytest

from qnodeos_hw.experiments import lgt, multitask
from qnodeos_hw.experiments.datasets import load_columns
from qnodeos_hw.experiments.tomography import CARDINAL


def test_lgt_blocks_cover_every_state_and_basis():
    b = lgt.lgt_blocks(3, np.random.default_rng(0))
    assert len(b) == 3 * 18
    assert {(s, x) for s, x in b} == {(s, x) for s in CARDINAL for x in "XYZ"}


@pytest.fixture(scope="module")
def lgt_run(tmp_path_factory):
    res = lgt.run_lgt(lgt.LGTConfig(k=40, seed=2), progress=False)
    return res, lgt.save(tmp_path_factory.mktemp("lgt"), res)


def test_lgt_prepares_the_six_cardinal_states(lgt_run):
    res, _ = lgt_run
    assert res["subroutines"] == 40 * 18 and len(res["m"]) == 40 * 18
    for s, d in res["states"].items():
        # readout error alone (F0 = 0.93) keeps raw F >= ~0.93; 3-sigma tolerance
        assert d["corrected"]["fidelity"] + d["corrected"]["three_sigma"] > 0.95, s
        assert d["corrected"]["fidelity"] - d["corrected"]["three_sigma"] > 0.75, s
    assert res["subroutine_ms"]["mean"] > 0


def test_lgt_files_and_dataset(lgt_run):
    res, files = lgt_run
    summ = json.loads(open(files["json"]).read())
    assert set(summ["states"]) == set(CARDINAL)
    assert open(files["png"], "rb").read(4) == b"\x89PNG"
    cols = load_columns(files["db"], int(files["run_id"]))
    assert np.array_equal(cols["outcome"], np.array(res["m"], dtype=float))


def test_parse_n_names_bad_input():
    assert multitask.parse_n("1..3") == [1, 2, 3]
    assert multitask.parse_n("2") == [2]
    with pytest.raises(ValueError, match="1..5"):
        multitask.parse_n("0..6")


@pytest.fixture(scope="module")
def mt_run(tmp_path_factory):
    # LGT programs long enough to outlast the DQC programs' start-up (72 blocks each)
    cfg = multitask.MultitaskConfig(dqc_reps=12, lgt_k=4, seed=3)
    summ = multitask.run_multitask([2], cfg, progress=False)
    return summ, multitask.save(tmp_path_factory.mktemp("mt"), summ)


def test_multitasking_interleaves_lgt_between_dqc_blocks(mt_run):
    summ, _ = mt_run
    on = next(r for r in summ["runs"] if r["multitasking"])
    off = next(r for r in summ["runs"] if not r["multitasking"])
    assert on["lgt_blocks_between_dqc"]["max"] >= 1      # LGT ran while DQC waited
    assert off["lgt_blocks_between_dqc"]["max"] == 0     # one program at a time
    for r in (on, off):
        assert 0 < r["t_util"] < 1
        assert r["busy_ns"] > 0 and r["ent_ns"] > 0 and r["t_total_ns"] > r["busy_ns"]
        assert len(r["dqc_fidelity_corrected"]) == 2
        assert r["lgt_fidelity_corrected_mean"] > 0.8


def test_multitask_files_and_dataset(mt_run):
    summ, files = mt_run
    assert open(files["png"], "rb").read(4) == b"\x89PNG"
    cols = load_columns(files["db"], int(files["run_id"]))
    assert sorted(cols["multitasking"].tolist()) == [0.0, 1.0]
    assert np.allclose(sorted(cols["t_util"]), sorted(r["t_util"] for r in summ["runs"]))
