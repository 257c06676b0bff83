"""netqasm's own example applications, unmodified, on IdealQDriver nodes."""

from __future__ import annotations

import json
import os

import netqasm
import numpy as np
import pytest

from qnodeos_hw.cli import main as cli_main
from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, run_app_dir

APPS = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps")
ALL = sorted(d for d in os.listdir(APPS) if os.path.isfile(os.path.join(APPS, d, "__init__.py"))
             and any(f.startswith("app_") for f in os.listdir(os.path.join(APPS, d))))
FAST = NetworkSettings(bin_ns=100_000, seed=7, trace_instructions=False)


def run(app, inputs=None, seed=7):
    res = run_app_dir(os.path.join(APPS, app), IdealNetworkFactory(seed=seed),
                      NetworkSettings(bin_ns=100_000, seed=seed, trace_instructions=False),
                      inputs=inputs, timeout_s=60)
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
    return res.results


@pytest.mark.parametrize("app", ALL)
def test_example_app_runs_to_completion(app):
    run(app)


def test_all_examples_are_covered():
    assert len(ALL) == 13


def test_bb84_has_no_errors_and_equal_keys():
    r = run("bb84")
    assert r["alice"]["qber"] == 0 and r["bob"]["qber"] == 0
    ta, tb = r["alice"]["table"], r["bob"]["table"]
    same = [(x[3], y[3]) for x, y in zip(ta, tb) if x[2]]
    assert len(same) == r["alice"]["same_basis_count"] and all(p == q for p, q in same)
    diff = [(x[3], y[3]) for x, y in zip(ta, tb) if not x[2]]
    assert 0 < sum(p != q for p, q in diff) < len(diff)  # other bases: uncorrelated
    assert 30 < r["alice"]["same_basis_count"] < 70  # random bases: about half of 100


@pytest.mark.parametrize("row,col", [(0, 0), (1, 2), (2, 1)])
def test_magic_square_is_always_won(row, col):
    r = run("magic_square", {"player1": {"row": row}, "player2": {"col": col}})
    rw, cl = r["player1"]["row"], r["player2"]["col"]
    assert sum(rw) % 2 == 0 and sum(cl) % 2 == 1
    assert rw[col] == cl[row]


def test_blind_rotation_output_is_pure_and_teleport_corrections_are_bits():
    r = run("blind_rotation")
    dm = np.asarray(r["server"]["output_state"])
    assert np.isclose(np.trace(dm).real, 1) and np.isclose(np.trace(dm @ dm).real, 1)
    t = run("teleport")
    assert set(t["receiver"].values()) <= {"None", "X", "Z"}


def test_cli_run_prints_results_and_writes_trace(tmp_path, capsys):
    trace = tmp_path / "t.jsonl"
    station = tmp_path / "station.yaml"
    station.write_text("bin_ns: 100000\nnum_qubits: 5\n")
    rc = cli_main(["run", os.path.join(APPS, "teleport"), "--seed", "3", "--trace", str(trace),
                   "--station", str(station)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) == {"sender", "receiver"} and set(out["sender"]) == {"m1", "m2"}
    assert trace.read_text().count("\n") > 20


def test_cli_rejects_unknown_station_keys(tmp_path, capsys):
    station = tmp_path / "s.yaml"
    station.write_text("num_qbits: 4\n")
    argv = ["run", os.path.join(APPS, "teleport"), "--station", str(station)]
    assert cli_main(argv) == 2  # one line naming the typed error and the key
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qnodeos-hw run: KeyError:") and "num_qbits" in err[0]
    with pytest.raises(KeyError, match="num_qbits"):  # --debug: the exception itself
        cli_main(argv + ["--debug"])


def test_nv_stack_plugs_in_through_the_node_factory(epr_app):
    """The simulated NV station (physics -> instruments -> NVQDriver) under the QNPUs."""
    from qnodeos_hw.runner.network import NVNetworkFactory
    app = epr_app(pairs=2)
    res = run_app_dir(app, NVNetworkFactory(seed=3, num_qubits=1),
                      NetworkSettings(bin_ns=10_000_000, seed=3, trace_instructions=False), timeout_s=60)
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
    assert all(len(res.results[r]["m"]) == 2 for r in ("alice", "bob"))
    heralds = [e for e in res.trace.of_kind("entanglement_heralded") if e.node == "alice"]
    assert len(heralds) == 2 and all(e.t_ns > 0 for e in heralds)
