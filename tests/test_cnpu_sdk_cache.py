"""The CNPU's per-shape SDK compilation sends exactly netqasm's bytes."""

from __future__ import annotations

import pytest

from qnodeos_hw.cnpu import sdk_cache
from qnodeos_hw.runner.network import IdealNetworkFactory, NetworkSettings, run_mains

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
    from qnodeos_hw.experiments.apps.lgt_bases import BASES6, INPUTS
    from qnodeos_hw.experiments.lgt import STATE_OF_INPUT
    blocks = list(INPUTS) * 3  # L1 subroutines: six bases each
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
    # ideal nodes: every cardinal state measured in its own basis gives outcome 0, in the
    # opposite basis 1
    m = res.results["lgt"]["m"]
    for blk, ms in zip(blocks, m):
        s = STATE_OF_INPUT[blk]
        opposite = ("-" if s[0] == "+" else "+") + s[1]
        assert ms[BASES6.index(s)] == 0 and ms[BASES6.index(opposite)] == 1, (blk, ms)
    hits = sum(c.hits for c in checked_cache)
    assert hits >= len(blocks) - 6  # each LGT (D, phi) shape compiled once
    # the DQC client's subroutine (entanglement request + measurement) is one shape
    # whatever arrays the builder hands out: compiled, checked once, then reused
    assert any(c.misses == 2 and c.hits == k - 2 for c in checked_cache), \
        [(c.hits, c.misses) for c in checked_cache]


def test_a_shape_whose_relocation_is_wrong_is_never_cached(monkeypatch):
    """The first reuse of a shape with other addresses is compared with netqasm's own
    compilation; a template that does not reproduce it is dropped for good."""
    seen = []
    orig = sdk_cache.SdkShapeCache._template

    def broken(subroutine, addrs, epr_slots):
        shape = orig(subroutine, addrs, epr_slots)
        if shape is None:
            return None
        seen.append(shape)  # patch nothing: every reuse would keep the first addresses
        return sdk_cache._Shape(shape.head, shape.chunks, (), shape.addrs)

    monkeypatch.setattr(sdk_cache.SdkShapeCache, "_template", staticmethod(broken))
    caches = []
    orig_init = sdk_cache.SdkShapeCache.__init__

    def init(self, *a, **kw):
        orig_init(self, *a, **kw)
        caches.append(self)
    monkeypatch.setattr(sdk_cache.SdkShapeCache, "__init__", init)
    k = 4
    res = run_mains({"client": f"{APPS}.dqc_client:main", "server": f"{APPS}.dqc_server:main"},
                    IdealNetworkFactory(num_qubits=2, seed=4, flavour_name="nv"),
                    NetworkSettings(seed=4, bin_ns=100_000, trace_instructions=False),
                    inputs={"client": {"alpha": 0, "theta": 0, "reps": k},
                            "server": {"bases": ["Z"] * k}})
    assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
    assert seen and sum(c.hits for c in caches) == 0  # every broken shape was caught

