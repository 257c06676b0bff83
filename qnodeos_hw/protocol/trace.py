"""Event trace of a node (or a whole network) with virtual timestamps, as JSON lines."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, TextIO


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One event: ``t_ns`` on the node's virtual clock, ``kind`` (e.g. 'subroutine_received',
    'process_state', 'instr_sent', 'instr_response', 'entanglement_delivered'), the node,
    the process id (or None), free-form ``data`` and ``wall_ns`` (host
    ``time.monotonic_ns``: one clock for every process of the host, so CNPUs running as
    their own processes can be merged in; for latency breakdowns of CNPU <-> QNPU round
    trips).
    CNPU-side events ('cnpu_message_sent', 'cnpu_done_received') have ``t_ns = -1`` in
    host time (the CNPU has no virtual clock there) and the program's virtual time in
    modelled time. ``source`` ('qnpu', 'cnpu:<role>') and ``seq`` (that source's own
    count) order events of equal time reproducibly."""

    t_ns: int
    node: str
    kind: str
    pid: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    wall_ns: int = 0
    source: str = ""
    seq: int = 0


class Trace:
    """Thread-safe event recorder shared by the QNPUs of a network.

    ``kinds``: record only these kinds (None: all). ``instructions``: whether the
    executor records every quantum instruction sent/answered (costly in hot loops).
    """

    def __init__(self, kinds: Iterable[str] | None = None, instructions: bool = True,
                 ordered: bool = False) -> None:
        self._events: list[TraceEvent] = []
        self._lock = threading.Lock()
        self.kinds = None if kinds is None else frozenset(kinds)
        self.instructions = instructions
        #: modelled time: :attr:`events` come in (t_ns, node, source, seq) order, the
        #: same on every run (recording order follows the host's threads)
        self.ordered = ordered

    def record(self, t_ns: int, node: str, kind: str, pid: int | None = None, **data: Any) -> None:
        self.record_event(t_ns, node, kind, pid, data)

    def record_event(self, t_ns: int, node: str, kind: str, pid: int | None, data: dict,
                     source: str = "", seq: int = 0) -> None:
        if self.kinds is not None and kind not in self.kinds:
            return
        ev = TraceEvent(int(t_ns), node, kind, pid, data, time.monotonic_ns(), source, seq)
        with self._lock:
            self._events.append(ev)

    @property
    def events(self) -> list[TraceEvent]:
        with self._lock:
            evs = list(self._events)
        if self.ordered:
            evs.sort(key=lambda e: (e.t_ns, e.node, e.source, e.seq))
        return evs

    def of_kind(self, kind: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == kind]

    def write_jsonl(self, fp: TextIO) -> int:
        """Write every event as one JSON object per line; returns the number written."""
        evs = self.events
        for e in evs:
            fp.write(json.dumps(asdict(e), default=str) + "\n")
        return len(evs)

    def save(self, path: str) -> int:
        with open(path, "w", encoding="utf-8") as fp:
            return self.write_jsonl(fp)

    def extend(self, events: Iterable[TraceEvent]) -> None:
        """Add events recorded elsewhere (e.g. by a CNPU process: :func:`load_jsonl`)."""
        evs = list(events)
        with self._lock:
            self._events.extend(evs)


def load_jsonl(path: str) -> list[TraceEvent]:
    """Events written by :meth:`Trace.save` / :meth:`Trace.write_jsonl`."""
    out = []
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            if line.strip():
                d = json.loads(line)
                out.append(TraceEvent(d["t_ns"], d["node"], d["kind"], d.get("pid"),
                                      d.get("data") or {}, d.get("wall_ns", 0),
                                      d.get("source", ""), d.get("seq", 0)))
    return out


def without_wall(obj: Any) -> Any:
    """``obj`` (JSON-like) without the fields whose names start with ``wall``: what modelled
    time promises to repeat byte for byte."""
    if isinstance(obj, dict):
        return {k: without_wall(v) for k, v in obj.items() if not k.startswith("wall")}
    if isinstance(obj, list):
        return [without_wall(v) for v in obj]
    return obj


def modelled_bytes(events: Iterable[TraceEvent]) -> bytes:
    """A trace as JSON lines without its ``wall*`` fields (equal for equal modelled runs)."""
    return "\n".join(json.dumps(without_wall(asdict(e)), default=str) for e in events).encode()
