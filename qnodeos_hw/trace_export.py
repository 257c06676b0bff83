"""A run's event trace as Chrome / Perfetto trace-event JSON.

``qnodeos-hw run APP_DIR --trace run.jsonl`` writes the node events as JSON lines
(:mod:`qnodeos_hw.protocol.trace`); ``qnodeos-hw trace export run.jsonl --out run.json``
turns them into the `trace-event format
<https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU>`_
that ``ui.perfetto.dev`` and ``chrome://tracing`` open, so a run's interleaving (the
paper's Fig. 4c and 5b) can be browsed.

Layout: one trace *process* per node (``pid`` 1, 2, ... in order of first appearance),
and in it one *thread* (track) each for

* ``CNPU`` (tid 1): the CNPU's messages to its QNPU and classical-socket messages
  (instants);
* ``QNPU`` (tid 2): each subroutine from its arrival to its completion (a slice,
  paired by ``msg_id``), and the QNPU's other events (instants);
* ``QDevice`` (tid 3): each physical instruction from ``instr_sent`` to its
  ``instr_response`` (a slice named by the instruction), and each entanglement attempt
  window (a slice ending at the herald or failure, ``window_ns`` long);
* one track per program (tid 10 + QNPU process id, named by the program's app name):
  its process states as slices (``running``, ``waiting``, ``ready``, ...; ``idle`` is
  left blank) and its EPR-socket and delivery events (instants).

Timestamps are the nodes' virtual time (``t_ns``) in microseconds, as the format
wants. Events without a virtual time (``t_ns < 0``: CNPU events in host-latency mode)
are left out and counted in ``otherData.skipped_host_time_events``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

TID_CNPU, TID_QNPU, TID_QDEVICE, TID_PROGRAM0 = 1, 2, 3, 10
#: kinds shown on the program's own track (besides its process states)
_PROGRAM_KINDS = frozenset({"process_created", "process_named", "process_removed",
                            "epr_socket_opened", "epr_request", "entanglement_delivered",
                            "entanglement_unready", "qubit_wait"})
_QDEVICE_KINDS = frozenset({"entanglement_heralded", "entanglement_failed", "entanglement_held"})


class TraceFileError(ValueError):
    """The JSON-lines trace cannot be read; ``line`` is the 1-based line at fault (0:
    the file itself)."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}{f' line {line}' if line else ''}: {message}")
        self.path, self.line = path, line


def _as_dict(e: Any) -> dict:
    if isinstance(e, dict):
        return e
    if is_dataclass(e):
        return asdict(e)
    raise TypeError(f"trace event must be a dict or a TraceEvent, got {type(e).__name__}")


def _us(t_ns: int | float) -> float:
    return t_ns / 1000.0


def to_trace_events(events: Iterable[Any]) -> dict:
    """Trace-event JSON (a dict with ``traceEvents``) of ``events``: dicts as in the
    JSON-lines trace (``t_ns``, ``node``, ``kind``, ``pid``, ``data``) or
    :class:`~qnodeos_hw.protocol.trace.TraceEvent` objects. See the module docstring for
    the tracks."""
    evs = [_as_dict(e) for e in events]
    skipped = sum(1 for e in evs if int(e.get("t_ns", -1)) < 0)
    evs = [e for e in evs if int(e.get("t_ns", -1)) >= 0]
    evs.sort(key=lambda e: (int(e["t_ns"]), str(e.get("node")), str(e.get("source", "")),
                            int(e.get("seq", 0) or 0)))
    nodes: dict[str, int] = {}
    for e in evs:
        nodes.setdefault(str(e["node"]), len(nodes) + 1)
    programs: dict[tuple[str, int], str] = {}
    for e in evs:
        if e.get("pid") is not None:
            key = (str(e["node"]), int(e["pid"]))
            if e["kind"] == "process_named" and (e.get("data") or {}).get("app"):
                programs[key] = str(e["data"]["app"])
            else:
                programs.setdefault(key, "network process" if int(e["pid"]) == 0
                                    else f"process {e['pid']}")

    out: list[dict] = []
    for node, p in nodes.items():
        out.append({"ph": "M", "name": "process_name", "pid": p, "tid": 0,
                    "args": {"name": f"node {node}"}})
        out.append({"ph": "M", "name": "process_sort_index", "pid": p, "tid": 0,
                    "args": {"sort_index": p}})
        for tid, name in ((TID_CNPU, "CNPU"), (TID_QNPU, "QNPU"), (TID_QDEVICE, "QDevice")):
            out.append({"ph": "M", "name": "thread_name", "pid": p, "tid": tid,
                        "args": {"name": name}})
            out.append({"ph": "M", "name": "thread_sort_index", "pid": p, "tid": tid,
                        "args": {"sort_index": tid}})
    for (node, qpid), name in sorted(programs.items()):
        tid = TID_PROGRAM0 + qpid
        out.append({"ph": "M", "name": "thread_name", "pid": nodes[node], "tid": tid,
                    "args": {"name": f"program {name} (pid {qpid})"}})
        out.append({"ph": "M", "name": "thread_sort_index", "pid": nodes[node], "tid": tid,
                    "args": {"sort_index": tid}})

    def slice_(node: str, tid: int, name: str, t0: int, t1: int, args: dict) -> None:
        if t1 <= t0:  # a state left at once: nothing to draw
            return
        out.append({"ph": "X", "name": name, "cat": "qnodeos", "pid": nodes[node], "tid": tid,
                    "ts": _us(t0), "dur": _us(t1 - t0), "args": args})

    def instant(node: str, tid: int, e: dict) -> None:
        out.append({"ph": "i", "s": "t", "name": e["kind"], "cat": "qnodeos",
                    "pid": nodes[node], "tid": tid, "ts": _us(int(e["t_ns"])),
                    "args": dict(e.get("data") or {})})

    sent: dict[tuple[str, Any], dict] = {}      # (node, pid) -> instr_sent
    received: dict[tuple[str, Any], dict] = {}  # (node, msg_id) -> subroutine_received
    state: dict[tuple[str, int], tuple[str, int]] = {}  # (node, pid) -> (state, since)
    last_t = evs[-1]["t_ns"] if evs else 0
    for e in evs:
        node, kind, t = str(e["node"]), str(e["kind"]), int(e["t_ns"])
        data = dict(e.get("data") or {})
        pid = e.get("pid")
        if kind == "instr_sent":
            sent[(node, pid)] = e
        elif kind == "instr_response":
            s = sent.pop((node, pid), None)
            if s is None:
                instant(node, TID_QDEVICE, e)
            else:
                args = {**(s.get("data") or {}), **data, "pid": pid}
                slice_(node, TID_QDEVICE, str(data.get("instr") or "instruction"),
                       int(s["t_ns"]), t, args)
        elif kind in _QDEVICE_KINDS:
            w = int(data.get("window_ns", 0) or 0)
            if w > 0:
                slice_(node, TID_QDEVICE, kind.replace("entanglement_", "attempt window: "),
                       t - w, t, data)
            else:
                instant(node, TID_QDEVICE, e)
        elif kind == "subroutine_received":
            received[(node, data.get("msg_id"))] = e
        elif kind == "subroutine_done":
            r = received.pop((node, data.get("msg_id")), None)
            if r is None:
                instant(node, TID_QNPU, e)
            else:
                name = programs.get((node, int(pid)), "") if pid is not None else ""
                slice_(node, TID_QNPU, f"subroutine {data.get('msg_id')}"
                       + (f" ({name})" if name else ""), int(r["t_ns"]), t,
                       {**(r.get("data") or {}), "pid": pid})
        elif kind == "process_state" and pid is not None:
            key = (node, int(pid))
            prev = state.get(key)
            if prev is not None and prev[0] != "idle":
                slice_(node, TID_PROGRAM0 + int(pid), prev[0], prev[1], t, {"state": prev[0]})
            state[key] = (str(data.get("state")), t)
        elif kind.startswith("cnpu_") or str(e.get("source", "")).startswith("cnpu"):
            instant(node, TID_CNPU, e)
        elif kind in _PROGRAM_KINDS and pid is not None:
            instant(node, TID_PROGRAM0 + int(pid), e)
        else:
            instant(node, TID_QNPU, e)
    for (node, pid), (st, since) in state.items():  # states still open at the end
        if st != "idle" and last_t > since:
            slice_(node, TID_PROGRAM0 + pid, st, since, last_t, {"state": st, "open": True})
    for (node, pid), s in sent.items():  # an instruction without a response
        instant(node, TID_QDEVICE, s)
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"producer": "qnodeos-hw", "time": "virtual (t_ns), in us",
                          "nodes": list(nodes), "skipped_host_time_events": skipped}}


def read_jsonl(path: str | Path) -> list[dict]:
    """The events of a JSON-lines trace; :class:`TraceFileError` names a bad line."""
    p = Path(path)
    if not p.is_file():
        raise TraceFileError(str(p), 0, "no such file")
    out = []
    with p.open(encoding="utf-8") as fp:
        for i, line in enumerate(fp, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceFileError(str(p), i, f"not JSON ({exc.msg})") from exc
            missing = [k for k in ("t_ns", "node", "kind") if not isinstance(d, dict) or k not in d]
            if missing:
                raise TraceFileError(str(p), i, f"not a trace event (missing {missing})")
            out.append(d)
    return out


def export(trace_file: str | Path, out: str | Path | None = None) -> Path:
    """Write the trace-event JSON of ``trace_file`` (default: same name, ``.json``)."""
    src = Path(trace_file)
    dst = Path(out) if out is not None else src.with_suffix(".json")
    if dst.resolve() == src.resolve():
        raise TraceFileError(str(src), 0, "the output would overwrite the input; give --out")
    doc = to_trace_events(read_jsonl(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(doc))
    return dst


def run_cli(args: Any) -> int:
    """``qnodeos-hw trace export TRACE.jsonl [--out X.json]``."""
    dst = export(args.trace_file, getattr(args, "out", None))
    n = len(json.loads(dst.read_text())["traceEvents"])
    print(f"{dst} ({n} trace events; open in ui.perfetto.dev or chrome://tracing)")
    return 0
