"""A chain of NV nodes (benchmarks/chain_pairs.py's app): the middle nodes take a pair
with each neighbour in turn. Before the fix a middle node complied with its left
neighbour's second request without a recv of its own, held its one communication qubit
for that pair while its program waited for the right one, and both waited for ever."""

import dataclasses

from qnodeos_hw.experiments.dqc import nv_network_settings
from qnodeos_hw.runner.network import NVNetworkFactory, run_mains

APP = "qnodeos_hw.experiments.apps.chain:main"


def test_three_node_chain_takes_every_pair_and_the_halves_agree():
    names = ["n0", "n1", "n2"]
    links = (frozenset(("n0", "n1")), frozenset(("n1", "n2")))
    st = dataclasses.replace(nv_network_settings(10_000_000, 3, 0.0, False), links=links)
    inputs = {nm: {"left": names[i - 1] if i else None,
                   "right": names[i + 1] if i + 1 < 3 else None, "pairs": 3}
              for i, nm in enumerate(names)}
    res = run_mains({nm: APP for nm in names}, NVNetworkFactory(seed=3, num_qubits=1), st,
                    inputs=inputs, timeout_s=60)
    assert res.ok, {r: o.error for r, o in res.outcomes.items()}
    r = res.results
    assert len(r["n0"]["right"]) == len(r["n1"]["left"]) == 3
    assert len(r["n1"]["right"]) == len(r["n2"]["left"]) == 3
    # F = 0.72 pairs: the two halves' Z outcomes agree more often than not over 6 pairs
    agree = sum(a == b for a, b in zip(r["n0"]["right"] + r["n1"]["right"],
                                       r["n1"]["left"] + r["n2"]["left"]))
    assert agree >= 4
