"""The CNPU's per-shape SDK compilation sends exactly netqasm's bytes."""

from __future__ import annotations

import pytest

from qnodeos_hw.cnpu import sdk_cache
from qnodeos_hw.cnpu.network import IdealNetworkFactory, NetworkSettings, run_mains

APPS = "qnodeos_hw.experiments.apps"


@pytest.fixture
def checked_cache(monkeypatch):
    """Every cached message is compared with netqasm's own compilation of the same
    protosubroutine; returns the list of (hits, misses) seen per cache."""
    caches = []
    orig_init, orig_message = sdk_cache.SdkShapeCache.__init__, sdk_cache.SdkShapeCache.message

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        caches.append(self)

    def message(self, proto):
        got = orig_message(self, proto)
        want = self._fresh(proto)[0]
        assert got == want, f"cached bytes differ from netqasm's for\n{proto}"
        return got

    monkeypatch.setattr(sdk_cache.SdkShapeCache, "__init__", init)
    monkeypatch.setattr(sdk_cache.SdkShapeCache, "message", message)
    return caches


@pytest.mark.parametrize("flavour", ["vanilla", "nv"])
def test_cached_subroutines_are_netqasms_bytes(checked_cache, flavour):
    """LGT blocks (fresh result arrays each time) and DQC client/server subroutines
    (entanglement requests: set immediates carry array addresses) on ideal nodes."""
    blocks = [(s, b) for s in ("+Z", "-Z", "+X", "-X", "+Y", "-Y") for b in "XYZ"] * 2
    k = 5
    res = run_mains({"lgt": f"{APPS}.lgt:main", "client": f"{APPS}.dqc_client:main",
                     "server": f"{APPS}.dqc_server:main"},
                    IdealNetworkFactory(num_qubits=2, seed=4, flavour_name=flavour),
                    NetworkSettings(seed=4, bin_ns=100_000, trace_instructions=False),
                    roles={"lgt": "client"},
                    inputs={"lgt": {"blocks": blocks},
                            "client": {"alpha": 2, "theta": 1, "reps": k},
                            "server": {"bases": ["Z"] * k}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
    # ideal nodes: every cardinal state measured in its own basis gives outcome 0
    m = res.results["lgt"]["m"]
    own = {"+Z": "Z", "+X": "X", "+Y": "Y"}
    assert all(o == 0 for (s, b), o in zip(blocks, m) if own.get(s) == b)
    assert all(o == 1 for (s, b), o in zip(blocks, m) if own.get("+" + s[1]) == b and s[0] == "-")
    hits = sum(c.hits for c in checked_cache)
    assert hits >= len(blocks) - 18  # each LGT (state, basis) shape compiled once

