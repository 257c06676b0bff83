"""Entanglement attempt windows of a link, paired by TDMA time bin.

The two QDevices of a link share a clock: bin ``k`` starts at ``k * bin_ns`` on both.
An attempt window belongs to the bin its start falls in; the heralding station pairs
the two ends' windows of the same bin. An end whose partner attempts nothing in that
bin -- the partner's next window is already of a later bin -- gets a failed window
(``LONE``). :class:`WindowRendezvous` does that pairing for callers on different
threads (one per node); ``resolve`` computes the joint result once both are in.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

#: the result of a window whose partner attempted nothing in its bin
LONE = "lone"


class PartnerMissingError(RuntimeError):
    """The partner's window of the same bin did not come within the wall-clock timeout."""

    def __init__(self, node: str, peer: str, bin_index: int, timeout_s: float) -> None:
        self.node, self.peer, self.bin_index = node, peer, bin_index
        super().__init__(f"node '{node}': no attempt window of '{peer}' for time bin {bin_index} "
                         f"within {timeout_s} s (wall clock)")


class WindowRendezvous:
    """Pairs windows of the two ends of one link by bin (``bin_ns``)."""

    def __init__(self, bin_ns: int, timeout_s: float = 30.0) -> None:
        if bin_ns <= 0:
            raise ValueError(f"bin_ns must be > 0, got {bin_ns}")
        self.bin_ns, self.timeout_s = int(bin_ns), float(timeout_s)
        self._cv = threading.Condition()
        self._slots: dict[int, dict[str, Any]] = {}
        self._latest: dict[str, int] = {}
        self._passed: dict[str, int] = {}
        self.lone = 0

    def passed(self, node: str, t_ns: int) -> None:
        """``node`` will start no window before ``t_ns`` (its clock is there): it
        attempts nothing in the bins that ended by then, so the partner's windows
        waiting in those bins fail (no wall-clock wait for a partner that is late)."""
        k = t_ns // self.bin_ns - 1
        if k <= self._passed.get(node, -1):
            return  # (only this node raises its own entry: a read without the lock is safe)
        with self._cv:
            if k <= self._passed.get(node, -1):
                return
            self._passed[node] = k
            for kk, s in self._slots.items():
                if kk <= k and s["result"] is None and node not in s["arr"]:
                    s["result"] = LONE
                    self._cv.notify_all()

    def meet(self, node: str, peer: str, t_ns: int, payload: Any,
             resolve: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
        """``node``'s window starting at ``t_ns``; blocks until ``peer``'s window of the
        same bin, then returns ``resolve({node: payload, peer: payload'})[node]`` (both
        ends get their entry of one resolution), or :data:`LONE`."""
        k = t_ns // self.bin_ns
        with self._cv:
            prev = self._latest.get(node, -1)
            self._latest[node] = max(prev, k)
            # older windows of the peer still waiting for me: I skipped their bins
            for kk, s in self._slots.items():
                if kk < k and s["result"] is None and node not in s["arr"]:
                    s["result"] = LONE
                    self._cv.notify_all()
            slot = self._slots.get(k)
            if slot is None:
                if self._latest.get(peer, -1) > k or self._passed.get(peer, -1) >= k:
                    # the peer is past this bin already
                    self.lone += 1
                    return LONE
                slot = self._slots[k] = {"arr": {}, "result": None, "error": None, "taken": 0}
            slot["arr"][node] = payload
            if len(slot["arr"]) == 2:
                try:
                    slot["result"] = resolve(dict(slot["arr"]))
                except Exception as exc:  # reported to both ends
                    slot["error"] = exc
                self._cv.notify_all()
            elif not self._cv.wait_for(lambda: slot["result"] is not None or slot["error"] is not None,
                                       self.timeout_s):
                self._slots.pop(k, None)
                raise PartnerMissingError(node, peer, k, self.timeout_s)
            result, error = slot["result"], slot["error"]
            slot["taken"] += 1
            if result is LONE or slot["taken"] >= len(slot["arr"]):
                self._slots.pop(k, None)
            if result is LONE:
                self.lone += 1
                return LONE
            if error is not None:
                raise error
            return result[node]
