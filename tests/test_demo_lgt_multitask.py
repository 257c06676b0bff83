"""LGT (the paper's L1) and multitasking demos on the simulated NV stations (short runs)."""

import json
import math

import numpy as np
import pytest

from qnodeos_hw.experiments import lgt, multitask
from qnodeos_hw.experiments.apps.lgt_bases import BASES6, INPUTS, TO_Z
from qnodeos_hw.experiments.datasets import load_columns


def _rot(axis, a):
    c, s = math.cos(a / 2), math.sin(a / 2)
    if axis == "X":
        return np.array([[c, -1j * s], [-1j * s, c]])
    return np.array([[c, -s], [s, c]])


def test_l1_inputs_prepare_the_six_cardinal_states_and_bases_map_onto_z():
    """The paper's six (D, phi) inputs prepare +Z, -Z, +X, -X, +Y, -Y from |0>, and each
    basis rotation takes that basis' +1 eigenstate onto |0>: outcome 0 = +1."""
    paulis = {"X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
              "Z": np.diag([1, -1])}
    for d, phi in INPUTS:
        psi = _rot(d, phi * math.pi / 2) @ np.array([1, 0])
        bloch = [float(np.real(psi.conj() @ paulis[a] @ psi)) for a in "XYZ"]
        assert np.allclose(bloch, lgt.target_bloch(d, phi), atol=1e-12), (d, phi)
        assert lgt.STATE_OF_INPUT[(d, phi)] in BASES6
    for b in BASES6:
        sign = -1 if b[0] == "-" else 1
        evals, evecs = np.linalg.eigh(sign * paulis[b[1]])
        plus = evecs[:, np.argmax(evals)]
        u = np.eye(2) if TO_Z[b] is None else _rot(TO_Z[b][0], TO_Z[b][1] * math.pi / 2)
        assert abs(abs((u @ plus)[0]) - 1) < 1e-12, b


def test_lgt_blocks_cover_every_input():
    b = lgt.lgt_blocks(3, np.random.default_rng(0))
    assert len(b) == 3 * 6
    assert sorted(b) == sorted(list(INPUTS) * 3)


@pytest.fixture(scope="module")
def lgt_run(tmp_path_factory):
    res = lgt.run_lgt(lgt.LGTConfig(k=15, seed=2), progress=False)
    return res, lgt.save(tmp_path_factory.mktemp("lgt"), res)


def test_l1_is_one_subroutine_of_six_bases(lgt_run):
    res, _ = lgt_run
    assert res["subroutines"] == 15 * 6 and res["results"] == 15 * 36
    assert len(res["m"]) == 90 and all(len(ms) == 6 and set(ms) <= {0, 1} for ms in res["m"])
    # six inits, six measurements and the rotations of one subroutine: ms, not 0.3 ms
    d = res["l1_duration_ms"]
    assert 1.0 < d["mean"] < 6.0 and d["min"] > 0.5, d
    assert res["l1_on_qnpu_ms"]["mean"] > d["mean"]  # plus the QNPU's own processing
    assert res["paper"]["l1_duration_ms"] == 2.4


def test_lgt_fidelities_are_physical_with_intervals(lgt_run):
    res, _ = lgt_run
    assert set(res["inputs"]) == {lgt.input_label(d, p) for d, p in INPUTS}
    for label, x in res["inputs"].items():
        c = x["corrected"]
        lo, hi = c["interval_3sigma"]
        assert 0 <= lo <= c["fidelity"] <= hi <= 1.0, (label, c)
        assert c["bloch_norm"] <= 1.0 + 1e-9
        assert c["fidelity"] > 0.85 and lo > 0.6, (label, c)  # the gates work
        assert x["results"] == 15 * 6
        assert x["raw"]["fidelity"] <= 1.0


def test_lgt_files_and_dataset(lgt_run):
    res, files = lgt_run
    summ = json.loads(open(files["json"]).read())
    assert set(summ["inputs"]) == set(res["inputs"]) and summ["paper"]["results"] == 36000
    assert "m" not in summ
    assert open(files["png"], "rb").read(4) == b"\x89PNG"
    cols = load_columns(files["db"], int(files["run_id"]))
    assert np.array_equal(cols["outcome"], np.array(res["m"], dtype=float).ravel())
    assert cols["outcome"].size == 15 * 36


def test_parse_n_names_bad_input():
    assert multitask.parse_n("1..3") == [1, 2, 3]
    assert multitask.parse_n("2") == [2]
    with pytest.raises(ValueError, match="1..5"):
        multitask.parse_n("0..6")


class _E:
    def __init__(self, t, kind, pid, **data):
        self.t_ns, self.kind, self.pid, self.data, self.node = t, kind, pid, data, "client"


def _st(t, pid, state):
    return _E(t, "process_state", pid, state=state)


def test_waiting_handover_counts_from_process_states():
    names = [_E(0, "process_named", 1, app="dqc_client_0"), _E(0, "process_named", 2, app="lgt_0")]
    ev = names + [
        _st(10, 1, "waiting"), _st(10, 2, "running"), _st(12, 2, "idle"),   # at once
        _st(20, 1, "ready"), _st(20, 1, "running"),
        _st(30, 1, "waiting"), _st(35, 0, "running"), _st(36, 0, "idle"),   # network only
        _st(40, 1, "ready"), _st(40, 1, "running"),
        _st(50, 1, "waiting"), _st(55, 2, "running"), _st(56, 2, "idle"),   # later in the wait
        _st(60, 1, "ready")]
    h = multitask.waiting_handover(ev)
    assert h["waits"] == 3 and h["other_ran"] == 1 and h["other_ran_during"] == 2
    assert h["fraction"] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def mt_run(tmp_path_factory):
    # LGT programs (30 L1 subroutines) outlast the DQC programs' 9 circuits
    cfg = multitask.MultitaskConfig(dqc_reps=9, lgt_k=5, seed=3, repeats=2)
    summ = multitask.run_multitask([2], cfg, progress=False)
    return summ, multitask.save(tmp_path_factory.mktemp("mt"), summ)


def test_multitasking_interleaves_lgt_between_dqc_blocks(mt_run):
    summ, _ = mt_run
    on = [r for r in summ["runs"] if r["multitasking"]]
    off = [r for r in summ["runs"] if not r["multitasking"]]
    assert len(on) == len(off) == 2 and on[0]["seed"] != on[1]["seed"]
    for r in on:
        assert r["lgt_blocks_between_dqc"]["max"] >= 1     # LGT ran while DQC waited
        w = r["waiting_other_process"]
        assert w["waits"] >= 18 and w["other_ran"] >= 1     # another process took the wait
        assert w["other_ran"] <= w["other_ran_during"] <= w["waits"]
    for r in off:
        assert r["lgt_blocks_between_dqc"]["max"] == 0     # one program at a time
        assert r["waiting_other_process"]["other_ran_during"] == 0
    for r in on + off:
        assert 0 < r["t_util"] < 1
        assert r["busy_ns"] > 0 and r["ent_ns"] > 0 and r["t_total_ns"] > r["busy_ns"]
        assert len(r["dqc_fidelity_corrected"]) == 2
        assert r["lgt_fidelity_corrected_mean"] > 0.8
    agg = {a["multitasking"]: a for a in summ["summary"]}
    assert agg[True]["t_util"]["values"] == [r["t_util"] for r in on]
    assert agg[True]["t_util"]["sd"] > 0
    assert agg[True]["paper_waiting_other_process"] == 0.81
    # multitasking raises utilisation (the paper's Fig. 5d trend), beyond the seed spread
    assert agg[True]["t_util"]["mean"] - agg[False]["t_util"]["mean"] > \
        2 * max(agg[True]["t_util"]["sd"], agg[False]["t_util"]["sd"])


def test_multitask_files_and_dataset(mt_run):
    summ, files = mt_run
    assert open(files["png"], "rb").read(4) == b"\x89PNG"
    js = json.loads(open(files["json"]).read())
    assert js["paper"]["waiting_other_process_fraction"]["1"] == 0.56
    cols = load_columns(files["db"], int(files["run_id"]))
    assert sorted(cols["multitasking"].tolist()) == [0.0, 0.0, 1.0, 1.0]
    assert np.allclose(sorted(cols["t_util"]), sorted(r["t_util"] for r in summ["runs"]))
