"""Our GHZ app (qnodeos_hw/experiments/apps/ghz): bob fuses an alice-bob and a
bob-charlie pair; with perfect pairs the three Z outcomes always agree and the X
outcomes have even parity (on nv_3node it runs too: tests/test_network_config.py)."""

from __future__ import annotations

import os

import pytest

from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, run_app_dir

GHZ = os.path.join(os.path.dirname(__file__), "..", "qnodeos_hw", "experiments", "apps", "ghz")
NODES = ("alice", "bob", "charlie")


def _outcomes(factory, basis: str, reps: int):
    res = run_app_dir(GHZ, factory, NetworkSettings(seed=4),
                      inputs={n: {"basis": basis, "reps": reps} for n in NODES}, timeout_s=120)
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    return list(zip(*(res.results[n]["m"] for n in NODES))), res.results["bob"]["fusion"]


@pytest.mark.parametrize("basis", ["Z", "X"])
def test_ghz_correlations_with_perfect_pairs(basis):
    ms, fusion = _outcomes(IdealNetworkFactory(num_qubits=3, seed=4, flavour_name="nv"), basis, 24)
    assert len(ms) == 24 and 0 < sum(fusion) < 24  # both fusion outcomes occur (corrected)
    if basis == "Z":
        assert all(len(set(m)) == 1 for m in ms)
        assert 0 < sum(m[0] for m in ms) < 24  # |000> and |111> both occur
    else:
        assert all(sum(m) % 2 == 0 for m in ms)
        assert len(set(ms)) > 1
