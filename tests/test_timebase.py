"""The time base: the latency model's indexed draws, the shared clock's grants, and the
pairing of attempt windows by time bin."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from qnodeos_hw.qdevice.windows import LONE, PartnerMissingError, WindowRendezvous
from qnodeos_hw.timebase import (LatencyModelError, ProgramClock, TimeCoordinator, TimeSyncError,
                                 load_latency_model)
from qnodeos_hw.timebase.latency import Segment


# -- latency model --------------------------------------------------------------------------
def test_draws_are_indexed_not_sequential():
    m = load_latency_model(seed=5)
    forward = [m.draw("cnpu_subroutine", "prog:a", i) for i in range(50)]
    backward = [m.draw("cnpu_subroutine", "prog:a", i) for i in reversed(range(50))][::-1]
    assert forward == backward                      # any order, same nanoseconds
    assert forward != [m.draw("cnpu_subroutine", "prog:b", i) for i in range(50)]
    assert forward != [load_latency_model(seed=6).draw("cnpu_subroutine", "prog:a", i)
                       for i in range(50)]


def test_segment_statistics_follow_the_file():
    m = load_latency_model(seed=1)
    seg = m.cnpu_subroutine
    x = np.array([m.draw("cnpu_subroutine", "s", i) for i in range(20_000)], dtype=float)
    assert x.mean() == pytest.approx(seg.mean_ns, rel=0.01)
    assert x.std() == pytest.approx(seg.sd_ns, rel=0.05)
    assert x.min() >= seg.min_ns
    assert Segment(100, 0, 10).draw(b"any") == 100


def test_lookahead_is_the_smallest_one_way_delay():
    m = load_latency_model()
    assert m.lookahead_ns() == min(m.cnpu_to_qnpu.min_ns, m.qnpu_to_cnpu.min_ns,
                                   m.cnpu_to_cnpu.min_ns, m.qnpu_to_qnpu.min_ns) > 0
    assert type(m).from_dict(m.to_dict()) == m


def test_bad_latency_files_name_the_key(tmp_path):
    f = tmp_path / "lat.yaml"
    f.write_text("cnpu_to_qnpu: {mean_ms: 0.05, sd_ms: 0.0, min_ms: 0.0}\n")
    with pytest.raises(LatencyModelError, match=r"cnpu_to_qnpu\.min_ms.*> 0"):
        load_latency_model(f)
    f.write_text("cnpu_to_qnpu_typo: {mean_ms: 1}\n")
    with pytest.raises(LatencyModelError, match="unknown segment.*cnpu_to_qnpu_typo"):
        load_latency_model(f)
    f.write_text("cnpu_classical: {mean_ms: 1, sd_ms: -1}\n")
    with pytest.raises(LatencyModelError, match="cnpu_classical.sd_ms"):
        load_latency_model(f)
    f.write_text("cnpu_classical: {mean_us: 300, sd_us: 10, min_us: 100}\n")
    assert load_latency_model(f).cnpu_classical == Segment(300_000, 10_000, 100_000)


# -- the shared clock -----------------------------------------------------------------------
class _Grants(list):
    def __call__(self, r, until, turn=None):
        self.append((r, until) if turn is None else (r, until, turn))


def _report(c, lp, seq, next_ns=None, sent=None, recv=None, rnd=-1, done=False):
    c.report({"lp": lp, "seq": seq, "next_ns": next_ns, "sent": sent or {}, "recv": recv or {},
              "round": rnd, "done": done})


def test_the_clock_grants_gvt_plus_lookahead_only_when_everyone_reported_and_nothing_is_in_flight():
    c = TimeCoordinator(lookahead_ns=100)
    g = _Grants()
    c.attach("qnpu:a", g)
    c.expect("prog:p")
    assert g == [(0, 0)]
    _report(c, "qnpu:a", 1, next_ns=1000, rnd=0)
    assert len(g) == 1                               # prog:p has not reported yet
    _report(c, "prog:p", 1, sent={"qnpu:a": 1})
    assert len(g) == 1                               # its message is still in flight
    _report(c, "qnpu:a", 2, next_ns=500, recv={"prog:p": 1}, rnd=0)
    assert g[-1] == (1, 600)                         # GVT 500 + lookahead
    _report(c, "prog:p", 2, sent={"qnpu:a": 1})      # nothing new from the program ...
    assert len(g) == 2                               # ... but the QNPU owes its round-1 report
    _report(c, "qnpu:a", 3, next_ns=2000, recv={"prog:p": 1}, rnd=1)
    assert g[-1] == (2, 2100)
    _report(c, "qnpu:a", 2, next_ns=0, rnd=9)       # a stale report is ignored
    assert c.status()["lps"]["qnpu:a"]["next_ns"] == 2000


def test_held_runs_go_one_at_a_time_in_virtual_time_then_node_order():
    """QNPUs holding a run that measures a pair half get the turn once everyone is
    blocked, earliest (time, name) first, before any further time is granted; a run
    later than a QNPU's pending attempt window waits for that window to end."""
    c = TimeCoordinator(lookahead_ns=100)
    ga, gb = _Grants(), _Grants()
    c.attach("qnpu:a", ga)
    c.attach("qnpu:b", gb)
    def rep(lp, seq, rnd, ordered=None, window=None, nxt=None):
        c.report({"lp": lp, "seq": seq, "next_ns": nxt if nxt is not None else ordered,
                  "round": rnd, "ordered_ns": ordered, "window_ns": window})

    rep("qnpu:a", 1, 0, nxt=1000)
    rep("qnpu:b", 1, 0, nxt=1000)
    assert ga[-1] == (1, 1100)
    rep("qnpu:b", 2, 1, ordered=1050)
    rep("qnpu:a", 2, 1, ordered=1050)               # same time: the name decides
    assert ga[-1] == gb[-1] == (2, 1100, "qnpu:a")  # a's turn; no new time granted
    rep("qnpu:b", 3, 2, ordered=1050)
    assert len(ga) == 3                              # a has not reported after its turn
    rep("qnpu:a", 3, 2, window=1060)                 # a waits in a window at 1060 ...
    assert gb[-1] == (3, 1100, "qnpu:b")             # ... b's earlier run goes
    rep("qnpu:b", 4, 3, ordered=1080)                # b holds a run after a's window:
    assert len(gb) == 4                              # it waits for the window to end
    rep("qnpu:b", 5, 3, nxt=1500)                    # nor is new time granted meanwhile
    assert len(gb) == 4
    rep("qnpu:b", 6, 3, ordered=1080)
    rep("qnpu:a", 4, 3, nxt=3000)                    # a is past its window
    assert gb[-1] == (4, 1100, "qnpu:b")
    rep("qnpu:b", 7, 4, nxt=2000)
    rep("qnpu:a", 5, 4, nxt=3000)
    assert ga[-1] == (5, 2100)                       # ordinary grant: GVT + lookahead
    assert c.status()["passes"] == 3


def test_a_gone_program_no_longer_holds_the_clock():
    c = TimeCoordinator(lookahead_ns=10)
    g = _Grants()
    c.attach("qnpu:a", g)
    c.expect("prog:p")
    _report(c, "qnpu:a", 1, next_ns=50, rnd=0)
    assert len(g) == 1
    c.gone("prog:p")
    assert g[-1] == (1, 60)
    with pytest.raises(TimeSyncError, match="undeclared"):
        _report(c, "prog:x", 1)


def test_a_program_clock_reports_blocked_exactly_when_it_cannot_proceed():
    m = load_latency_model(seed=2)
    reports = []
    pc = ProgramClock("prog:p", m, reports.append)
    ts = pc.stamp("qnpu:a", "subroutine")
    assert ts == m.draw("cnpu_subroutine", "prog:p", 0) + m.draw("cnpu_to_qnpu", "prog:p", 0)
    box: list = []
    pc.deliver("qnpu:a", lambda: box.append(1))      # not blocked: no report
    assert reports == []
    assert pc.wait(lambda: bool(box), 1.0)            # already there: no report either
    assert reports == []
    done = threading.Event()

    def waiter():
        pc.wait(lambda: len(box) >= 2, 5.0)
        done.set()
    t = threading.Thread(target=waiter)
    t.start()
    while not reports:
        pass
    assert reports[-1]["sent"] == {"qnpu:a": 1} and reports[-1]["recv"] == {"qnpu:a": 1}
    pc.deliver("qnpu:a", lambda: box.append(2))      # wakes the waiter: no 'blocked' report
    t.join(5)
    assert done.is_set() and len(reports) == 1
    pc.consume(10**9)
    assert pc.t_ns == 10**9
    # a channel is FIFO: a later message never arrives before an earlier one
    later = [pc.stamp("qnpu:a", "control") for _ in range(20)]
    assert later == sorted(later)


# -- windows paired by bin -------------------------------------------------------------------
def _meet(rv, node, peer, t, out):
    try:
        out[node] = rv.meet(node, peer, t, t, lambda arr: {n: ("paired", dict(arr)) for n in arr})
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out[node] = exc


def test_windows_of_one_bin_pair_and_a_partner_past_the_bin_leaves_a_lone_window():
    rv = WindowRendezvous(bin_ns=1000, timeout_s=5)
    out: dict = {}
    ta = threading.Thread(target=_meet, args=(rv, "a", "b", 2000, out))
    ta.start()
    _meet(rv, "b", "a", 2300, out)                   # same bin 2, later start
    ta.join(5)
    assert out["a"][0] == out["b"][0] == "paired" and out["a"][1] == {"a": 2000, "b": 2300}
    # a waits in bin 3; b's clock passes bin 3 (busy elsewhere): a's window is lone
    ta = threading.Thread(target=_meet, args=(rv, "a", "b", 3000, out))
    ta.start()
    rv.passed("b", 4500)
    ta.join(5)
    assert out["a"] is LONE
    assert rv.meet("a", "b", 3100, 0, lambda arr: {}) is LONE   # b is past bin 3 already
    with pytest.raises(PartnerMissingError, match="bin 7"):
        WindowRendezvous(bin_ns=1000, timeout_s=0.05).meet("a", "b", 7000, 0, lambda a: {})
