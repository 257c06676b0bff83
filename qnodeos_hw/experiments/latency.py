"""Latency of DQC iterations from a network trace (:class:`qnodeos_hw.protocol.trace.Trace`).

For each client/server iteration the chain that the server's qubit waits through is
cut at trace events (wall clock ``wall_ns`` for host-side steps, virtual ``t_ns`` for
what the QDevice does):

* QDevice: the client's C1 tail (gates + readout after the herald) and the server's S2,
  in virtual time;
* QNPU: QNPU -> CNPU reply of C1 (client) and CNPU -> QNPU delivery of S2 (server):
  message handling and the TCP hop between CNPU and QNPU;
* CNPU: the client computing and sending delta, the server building and flushing S2;
* classical communication: client socket send -> server socket receive.

``server_wait_ns`` is the virtual time the server's qubit is kept (under DD) between
its herald and the arrival of S2 (``held_ms`` of it before the server program's S1 took
delivery: an open EPR socket lets the network process make the pair before the program
asks): with ``QNPUConfig.idle_wall_scale = 1`` the host latencies count in the server's
virtual time (the qubit decoheres).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

SEGMENTS = ("cnpu_ms", "qnpu_ms", "qdevice_ms", "classical_ms")


@dataclass(frozen=True)
class Iteration:
    """One DQC iteration (ms unless ``_ns``)."""

    server_wait_ns: int
    cnpu_ms: float
    qnpu_ms: float
    qdevice_ms: float
    classical_ms: float
    entanglement_ms: float  # server: S1 arrival -> EPR delivery (virtual)
    held_ms: float = 0.0    # server: herald -> delivery to the program (virtual)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class _Index:
    """Events by (kind, key) sorted by wall time, with 'first after' lookups."""

    def __init__(self, events: Iterable[Any]) -> None:
        self.by: dict[tuple, list] = defaultdict(list)
        self.pid_of: dict[tuple[str, str], int] = {}
        for e in events:
            if e.kind == "process_named":
                self.pid_of[(e.node, e.data["app"])] = e.pid
            if e.t_ns == -1:
                key = (e.kind, e.data.get("app"))
            else:
                key = (e.kind, e.node, e.pid)
            self.by[key].append(e)
        for lst in self.by.values():
            lst.sort(key=lambda e: e.wall_ns)
        self.walls = {k: [e.wall_ns for e in v] for k, v in self.by.items()}

    def after(self, key: tuple, wall_ns: int, pred=None):
        lst = self.by.get(key, [])
        i = bisect.bisect_right(self.walls.get(key, []), wall_ns)
        for e in lst[i:]:
            if pred is None or pred(e):
                return e
        return None


def node_pid(index: _Index, app: str) -> tuple[str, int]:
    for (node, name), pid in index.pid_of.items():
        if name == app:
            return node, pid
    raise KeyError(f"program '{app}' does not appear in the trace (no 'process_named' event)")


def dqc_iterations(events: Iterable[Any], client_app: str, server_app: str) -> list[Iteration | None]:
    """One :class:`Iteration` per server EPR delivery, in order (None where the chain is
    incomplete, e.g. a program failed)."""
    idx = _Index(events)
    nc, pc = node_pid(idx, client_app)
    ns, ps = node_pid(idx, server_app)
    deliv_s = idx.by.get(("entanglement_delivered", ns, ps), [])
    herald_at = {e.data.get("rid"): e.t_ns for e in idx.by.get(("entanglement_heralded", ns, None), [])}
    deliv_c = idx.by.get(("entanglement_delivered", nc, pc), [])
    out: list[Iteration | None] = []
    for k, ds in enumerate(deliv_s):
        try:
            dc = deliv_c[k]
            # S1 is the subroutine the pair was delivered in (the first to finish after the
            # delivery); S2 the server's next subroutine. The server flushes S2 without
            # waiting, so a lagging QNPU may have received S2 before S1 even ran: pair by
            # message id, not by wall order
            s1_done = idx.after(("subroutine_done", ns, ps), ds.wall_ns)
            s1_id = s1_done.data.get("msg_id")
            s1 = idx.after(("subroutine_received", ns, ps), -1,
                           lambda e: e.data.get("msg_id") == s1_id)
            s2 = idx.after(("subroutine_received", ns, ps), -1,
                           lambda e: e.data.get("msg_id", -1) > s1_id)
            s2_done = idx.after(("subroutine_done", ns, ps), s2.wall_ns,
                                lambda e: e.data.get("msg_id") == s2.data.get("msg_id"))
            nxt = idx.after(("epr_request", ns, ps),  # S2 fused with the next S1
                            max(s2.wall_ns, s1_done.wall_ns))
            if nxt is not None and nxt.wall_ns < s2_done.wall_ns:
                s2_done = nxt
            c1_done = idx.after(("subroutine_done", nc, pc), dc.wall_ns)
            c_reply = idx.after(("cnpu_done_received", client_app), c1_done.wall_ns)
            sent = idx.after(("cnpu_socket_sent", client_app), c_reply.wall_ns)
            recv = idx.after(("cnpu_socket_received", server_app), sent.wall_ns)
            s2_sent = idx.after(("cnpu_message_sent", server_app), recv.wall_ns,
                                lambda e: e.data.get("type") == 2)
        except (AttributeError, IndexError):
            out.append(None)
            continue
        ms = 1e-6
        t_herald = herald_at.get(ds.data.get("rid"), ds.t_ns)
        out.append(Iteration(
            # S2 starts when it has arrived and S1 has finished
            server_wait_ns=int(max(s2.t_ns, s1_done.t_ns) - t_herald),
            held_ms=(ds.t_ns - t_herald) * ms,
            cnpu_ms=((sent.wall_ns - c_reply.wall_ns) + (s2_sent.wall_ns - recv.wall_ns)) * ms,
            qnpu_ms=((c_reply.wall_ns - c1_done.wall_ns)
                     + (max(s2.wall_ns, s1_done.wall_ns) - s2_sent.wall_ns)) * ms,
            qdevice_ms=((c1_done.t_ns - dc.t_ns)
                        + (s2_done.t_ns - max(s2.t_ns, s1_done.t_ns))) * ms,
            classical_ms=(recv.wall_ns - sent.wall_ns) * ms,
            entanglement_ms=(ds.t_ns - s1.t_ns) * ms if s1 is not None and s1.t_ns <= ds.t_ns
            else 0.0,
        ))
    return out


#: segments of the DQC server's wait in modelled time, in chain order (herald -> S2
#: start), named after the paper's Fig. 4c sequence (CNPU - QNPU - QDevice of both nodes)
MODELLED_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("qdevice_c1", "client QDevice: rest of C1 after the herald (gates, readout)"),
    ("qnpu_to_cnpu_c1", "client QNPU -> CNPU: C1 result"),
    ("cnpu_client_delta", "client CNPU: classical block (compute and send delta)"),
    ("classical_delta", "client CNPU -> server CNPU: delta"),
    ("cnpu_server_s2", "server CNPU: prepare and send S2"),
    ("cnpu_to_qnpu_s2", "server CNPU -> QNPU: S2"),
    ("qnpu_s2", "server QNPU: S2 processing until its first instruction"),
)
#: the latency-model segment each modelled segment is drawn from (None: simulated QDevice)
MODEL_OF_SEGMENT = {"qdevice_c1": None, "qnpu_to_cnpu_c1": "qnpu_to_cnpu",
                    "cnpu_client_delta": "cnpu_classical", "classical_delta": "cnpu_to_cnpu",
                    "cnpu_server_s2": "cnpu_subroutine", "cnpu_to_qnpu_s2": "cnpu_to_qnpu",
                    "qnpu_s2": "qnpu_instruction"}


def dqc_iterations_modelled(events: Iterable[Any], client_app: str, server_app: str
                            ) -> list[dict | None]:
    """Modelled time: one record per server EPR delivery, in order: ``server_wait_ns``
    (herald of the server's qubit -> S2's first instruction, virtual ns), the chain's
    segments (:data:`MODELLED_SEGMENTS`, ms) that add up to it, ``held_ms`` and
    ``s2_instructions``. None where the chain is incomplete."""
    evs = sorted(events, key=lambda e: (e.t_ns, e.node, e.source, e.seq))
    pid_of = {(e.node, e.data["app"]): e.pid for e in evs if e.kind == "process_named"}
    nc = ns = None
    for (node, app), pid in pid_of.items():
        if app == client_app:
            nc, pc = node, pid
        if app == server_app:
            ns, ps = node, pid
    if nc is None or ns is None:
        raise KeyError(f"programs '{client_app}'/'{server_app}' do not appear in the trace")

    def seq(pred):
        return [e for e in evs if pred(e)]
    deliv_s = seq(lambda e: e.kind == "entanglement_delivered" and e.node == ns and e.pid == ps)
    deliv_c = seq(lambda e: e.kind == "entanglement_delivered" and e.node == nc and e.pid == pc)
    herald = {(e.node, e.data["pair_id"]): e.t_ns for e in evs if e.kind == "entanglement_heralded"}
    done_c = {e.data["msg_id"]: e for e in evs if e.kind == "subroutine_done" and e.node == nc
              and e.pid == pc}
    c_done_list = sorted(done_c.values(), key=lambda e: e.t_ns)
    reply_c = {e.data["msg_id"]: e for e in evs if e.kind == "cnpu_done_received"
               and e.data.get("app") == client_app}
    sent_c = seq(lambda e: e.kind == "cnpu_socket_sent" and e.data.get("app") == client_app)
    recv_s = seq(lambda e: e.kind == "cnpu_socket_received" and e.data.get("app") == server_app)
    msg_s = seq(lambda e: e.kind == "cnpu_message_sent" and e.data.get("app") == server_app
                and e.data.get("type") == 2)
    rcvd_s = {e.data["msg_id"]: e for e in evs if e.kind == "subroutine_received"
              and e.node == ns and e.pid == ps}
    start_s = {e.data["msg_id"]: e for e in evs if e.kind == "subroutine_started"
               and e.node == ns and e.pid == ps}

    def first_after(lst, t):
        for e in lst:
            if e.t_ns >= t:
                return e
        return None

    out: list[dict | None] = []
    for k, ds in enumerate(deliv_s):
        try:
            dc = deliv_c[k]
            t_h = herald[(ns, ds.data["pair_id"])]
            c1 = first_after(c_done_list, dc.t_ns)
            reply = reply_c[c1.data["msg_id"]]
            sent = first_after(sent_c, reply.t_ns)
            recv = recv_s[k]
            s2_sent = first_after(msg_s, recv.t_ns)
            s2_in = rcvd_s[s2_sent.data["msg_id"]]
            s2_go = start_s[s2_sent.data["msg_id"]]
        except (AttributeError, IndexError, KeyError, TypeError):
            out.append(None)
            continue
        marks = [t_h, c1.t_ns, reply.t_ns, sent.t_ns, recv.t_ns, s2_sent.t_ns, s2_in.t_ns,
                 s2_go.t_ns]
        segs = {name: (b - a) * 1e-6 for (name, _), a, b in zip(MODELLED_SEGMENTS, marks, marks[1:])}
        out.append({"server_wait_ns": int(s2_go.t_ns - t_h), "segments_ms": segs,
                    "held_ms": (ds.t_ns - t_h) * 1e-6,
                    "s2_instructions": int(s2_go.data.get("instructions", 0))})
    return out


def model_segment_means_ms(latency: Any, s2_instructions: float) -> dict[str, float | None]:
    """What the latency model predicts for each modelled segment's mean (ms)."""
    out: dict[str, float | None] = {}
    for name, _ in MODELLED_SEGMENTS:
        seg = MODEL_OF_SEGMENT[name]
        if seg is None:
            out[name] = None
        elif seg == "qnpu_instruction":
            out[name] = getattr(latency, seg).mean_ns * s2_instructions * 1e-6
        else:
            out[name] = getattr(latency, seg).mean_ns * 1e-6
    return out


# --------------------------------------------------------- the latency filter (derived)
#: the paper's figure: the longest server wait that still gives F >= 2/3 (Methods)
PAPER_FILTER_MS = 8.95


class LatencyFilterError(ValueError):
    """No server wait gives F >= 2/3 in the depolarising model (names F_ent)."""


def depolarising_fidelity(wait_ms, f_ent: float, t_coh_ms: float, exponent: float = 1.0,
                          contrast: float = 1.0):
    """Expected DQC fidelity after the server's qubit waited ``wait_ms`` in the
    depolarising model: a Werner pair of fidelity ``f_ent`` gives the remote state a
    Bloch vector of length r0 = (4 F_ent - 1)/3, the memory depolarises it by
    exp(-(t/T_coh)^n), so F(t) = 1/2 + r0/2 exp(-(t/T_coh)^n). ``contrast`` scales r0
    (e.g. the client's readout contrast F0 + F1 - 1, which the server's correction does
    not undo)."""
    import numpy as np
    r0 = (4 * f_ent - 1) / 3 * contrast
    t = np.asarray(wait_ms, float)
    return 0.5 + 0.5 * r0 * np.exp(-(np.maximum(t, 0.0) / t_coh_ms) ** exponent)


def latency_filter_ms(f_ent: float, t_coh_ms: float, exponent: float = 1.0,
                      bound: float = 2.0 / 3.0) -> float:
    """The longest server wait (ms) with :func:`depolarising_fidelity` >= ``bound`` (the
    paper's derivation of its latency filter): r0 exp(-(t/T)^n) = 2 bound - 1, i.e. for
    bound 2/3 and n = 1, t = T_coh ln(4 F_ent - 1)."""
    r0 = (4 * f_ent - 1) / 3
    need = 2 * bound - 1
    if r0 <= need + 1e-12:
        raise LatencyFilterError(
            f"F_ent = {f_ent} gives a remote state of fidelity {0.5 + r0 / 2:.3f} <= "
            f"{bound:.3f} even without waiting: no latency filter can reach the bound")
    return t_coh_ms * math.log(r0 / need) ** (1.0 / exponent)


def configured_filter(node: str = "server") -> dict:
    """The latency filter from the configured noise model (heralded F_ent, the server's
    T_coh and decay exponent) with its inputs and the paper's figure."""
    from ..simulators.physics import load_noise_models
    models = load_noise_models()
    nv = models.nv_for(node)
    f_ent, t_coh_ms, n = models.heralding.fidelity, nv.t_coh_s * 1e3, nv.t_coh_exponent
    return {"max_wait_ms": latency_filter_ms(f_ent, t_coh_ms, n), "f_ent": f_ent,
            "t_coh_ms": t_coh_ms, "t_coh_exponent": n,
            "model": "F(t) = 1/2 + (4 F_ent - 1)/6 exp(-(t/T_coh)^n) >= 2/3",
            "paper_max_wait_ms": PAPER_FILTER_MS,
            # what the paper's 8.95 ms means in this model: either input alone
            "paper_equivalent": {"f_ent_at_t_coh": (1 + math.exp((PAPER_FILTER_MS / t_coh_ms) ** n)) / 4,
                                 "t_coh_ms_at_f_ent": PAPER_FILTER_MS / math.log(4 * f_ent - 1) ** (1 / n)}}

