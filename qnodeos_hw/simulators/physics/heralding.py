"""Heralding station between two NV nodes (single-photon protocol).

Each attempt heralds with probability ``p_success``; a herald means one of the
detectors clicked, which fixes the Bell state (``herald_bell_indices``, one per
detector, equally likely). Bell indices follow netqasm's ``BellState`` numbering:

    0 = Phi+ = (|00> + |11>)/sqrt2      1 = Psi+ = (|01> + |10>)/sqrt2
    2 = Psi- = (|01> - |10>)/sqrt2      3 = Phi- = (|00> - |11>)/sqrt2

(tensor order: first attached node, second attached node). The heralded state
has fidelity ``fidelity`` to that Bell state: ``werner`` mixes it with white noise;
``single_photon`` is ``(1-alpha)[(1+V)/2 |B><B| + (1-V)/2 |B'><B'|] + alpha |bright,bright>``
with ``B'`` the phase-flipped partner, ``alpha = bright_population`` and ``V`` fixed
by the fidelity. A failed attempt leaves both qubits fully mixed.

Two ways to drive it:

* threads: each node's :meth:`NVNode.entangle` calls :meth:`attempt`; the k-th
  attempt of one node is paired with the k-th attempt of the other (a rendezvous
  on a :class:`threading.Condition`); the first to arrive waits at most
  ``partner_timeout_s`` (wall clock) and then raises :class:`PartnerTimeoutError`.
* one thread (tests, scripts): :meth:`attempt_pair`.

With ``bin_ns`` set (the network's TDMA bin; the stations and the QDevices share one
clock), windows are paired by *time bin* instead of by number
(:class:`qnodeos_hw.qdevice.windows.WindowRendezvous`): both ends of a paired window
see the herald at the same virtual time (the later start plus the attempts used), and
an end whose partner attempts nothing in that bin gets a failed window.
"""

from __future__ import annotations

import math

import threading
from typing import TYPE_CHECKING

import numpy as np

from ...qdevice.windows import LONE, WindowRendezvous
from .errors import HeraldingError, PartnerTimeoutError
from .noise_model import HeraldingModel
from .randomness import RandomStream
from .state import QuantumRegistry

if TYPE_CHECKING:
    from .nv import NVNode

_S = 1 / np.sqrt(2)
BELL_STATES = {
    0: np.array([_S, 0, 0, _S], dtype=complex),
    1: np.array([0, _S, _S, 0], dtype=complex),
    2: np.array([0, _S, -_S, 0], dtype=complex),
    3: np.array([_S, 0, 0, -_S], dtype=complex),
}
_PHASE_PARTNER = {0: 3, 3: 0, 1: 2, 2: 1}
BELL_NAMES = {0: "Phi+", 1: "Psi+", 2: "Psi-", 3: "Phi-"}


def heralded_state(model: HeraldingModel, bell_index: int) -> np.ndarray:
    """4x4 density matrix heralded with ``bell_index`` under ``model``."""
    b = BELL_STATES[bell_index]
    pb = np.outer(b, b.conj())
    f = model.fidelity
    if model.state_model == "werner":
        return f * pb + (1 - f) / 3 * (np.eye(4) - pb)
    alpha = model.bright_population
    v = 2 * f / (1 - alpha) - 1
    p = BELL_STATES[_PHASE_PARTNER[bell_index]]
    bright = np.zeros((4, 4), dtype=complex)
    # |bright, bright> = |00> for Psi-type heralds; for Phi-type ones it is mapped by
    # the same local X on node B that maps Psi to Phi, i.e. |01>
    bright[(0, 0) if bell_index in (1, 2) else (1, 1)] = 1.0
    return (1 - alpha) * ((1 + v) / 2 * pb + (1 - v) / 2 * np.outer(p, p.conj())) + alpha * bright


class HeraldingStation:
    """The midpoint station shared by two NV nodes (attached in order A, B): one per
    optical link; a node with several links (a repeater) is attached to several."""

    def __init__(self, model: HeraldingModel, rng: np.random.Generator,
                 registry: QuantumRegistry, name: str = "heralding",
                 bin_ns: int | None = None) -> None:
        self.model = model
        #: pairs windows by time bin when set (see the module docstring)
        self.rendezvous = (WindowRendezvous(bin_ns, model.partner_timeout_s)
                           if bin_ns is not None else None)
        self.name = name
        self.registry = registry
        self.random = RandomStream(rng)
        self._nodes: list["NVNode"] = []
        self._states = {i: heralded_state(model, i) for i in set(model.herald_bell_indices)}
        self._cond = threading.Condition()
        self._next: dict[str, int] = {}
        self._slots: dict[int, dict] = {}
        self.attempts = 0
        self.heralds = 0

    def attach(self, node: "NVNode") -> None:
        """Connect a node (at most two, sharing this station's registry)."""
        if node.registry is not self.registry:
            raise HeraldingError(f"node '{node.name}' uses a different QuantumRegistry than "
                                 f"station '{self.name}'")
        if any(n.name == node.name for n in self._nodes):
            raise HeraldingError(f"node '{node.name}' is already attached to '{self.name}'")
        if len(self._nodes) == 2:
            raise HeraldingError(f"station '{self.name}' already connects "
                                 f"{self._nodes[0].name} and {self._nodes[1].name}")
        self._nodes.append(node)
        self._next[node.name] = 0
        node.add_link(self)

    @property
    def node_names(self) -> tuple[str, ...]:
        """Names of the attached nodes, in tensor order."""
        return tuple(n.name for n in self._nodes)

    def _node(self, name: str) -> "NVNode":
        for n in self._nodes:
            if n.name == name:
                return n
        raise HeraldingError(f"node '{name}' is not attached to station '{self.name}' "
                             f"(attached: {self.node_names})")

    def partner_of(self, name: str) -> str:
        """Name of the other node."""
        self._node(name)
        if len(self._nodes) < 2:
            raise HeraldingError(f"station '{self.name}' has no partner for '{name}' yet")
        return next(n.name for n in self._nodes if n.name != name)

    # --------------------------------------------------------------- resolution
    def _resolve(self, arrivals: dict[str, tuple[int, int]], max_attempts: int = 1
                 ) -> tuple[bool, int, int]:
        """Resolve paired attempt windows: the first herald among ``max_attempts``
        attempts (geometric, one random draw; for one attempt ``u < p_success``).
        Returns (heralded, bell_index, attempts used)."""
        (na, (qa, ta)), (nb, (qb, tb)) = [(n.name, arrivals[n.name]) for n in self._nodes]
        skew = self.model.max_skew_ns
        if skew is not None and abs(ta - tb) > skew:
            raise HeraldingError(f"paired attempts of '{na}' at {ta} ns and '{nb}' at {tb} ns "
                                 f"differ by more than max_skew_ns={skew}")
        ka, kb = (na, qa), (nb, qb)
        p = self.model.p_success
        u = self.random.uniform()
        if p >= 1.0:
            first = 1
        elif p <= 0.0:
            first = max_attempts + 1
        else:  # attempt number of the first herald, geometric; first == 1 iff u < p
            first = 1 + int(math.floor(math.log1p(-u) / math.log1p(-p)))
        if first <= max_attempts:
            self.attempts += first
            idx = self.model.herald_bell_indices
            bell = idx[min(int(self.random.uniform() * len(idx)), len(idx) - 1)]
            self.registry.set_joint_state([ka, kb], self._states[bell])
            self.heralds += 1
            return True, bell, first
        self.attempts += max_attempts
        with self.registry.lock:
            self.registry.reset(ka, (0.0, 0.0, 0.0))
            self.registry.reset(kb, (0.0, 0.0, 0.0))
        return False, 0, max_attempts

    # ------------------------------------------------------------ single thread
    def attempt_pair(self, node_a: "NVNode", qa: int, node_b: "NVNode", qb: int, t_ns: int,
                     t_b_ns: int | None = None) -> tuple[bool, int]:
        """One attempt of both nodes from one thread (``node_b`` at ``t_b_ns``, default
        ``t_ns``). Returns (heralded, bell_index); the nodes' qubits are ready at
        ``t + attempt_duration_ns``. Does not touch the threaded attempt counters."""
        tb = t_ns if t_b_ns is None else t_b_ns
        if {node_a.name, node_b.name} != set(self.node_names) or node_a.name == node_b.name:
            raise HeraldingError(f"attempt_pair needs the two attached nodes {self.node_names}, "
                                 f"got '{node_a.name}' and '{node_b.name}'")
        node_a._prepare_attempt(qa, t_ns)
        node_b._prepare_attempt(qb, tb)
        heralded, bell, _ = self._resolve({node_a.name: (qa, t_ns), node_b.name: (qb, tb)})
        node_a._finish_attempt(qa, t_ns)
        node_b._finish_attempt(qb, tb)
        return heralded, bell

    # ---------------------------------------------------------------- threaded
    def attempt(self, node: str, qubit: int, t_ns: int) -> tuple[bool, int]:
        """One attempt of ``node`` (called from that node's thread); blocks until the
        partner's attempt with the same number. Returns (heralded, bell_index) to both."""
        return self.attempt_window(node, qubit, t_ns, 1)[:2]

    def attempt_window(self, node: str, qubit: int, t_ns: int, max_attempts: int
                       ) -> tuple[bool, int, int]:
        """An attempt window of ``node`` (up to ``max_attempts`` attempts, the partner's
        window of the same number pairs with it; the shorter budget counts). Returns
        (heralded, bell_index, attempts used) to both."""
        partner = self.partner_of(node)
        if self.rendezvous is not None:
            return self._window_by_bin(node, partner, qubit, t_ns, max_attempts)
        timeout = self.model.partner_timeout_s
        with self._cond:
            k = self._next[node]
            self._next[node] = k + 1
            slot = self._slots.setdefault(k, {"arr": {}, "result": None, "error": None, "taken": 0})
            slot["arr"][node] = (qubit, t_ns)
            slot.setdefault("budget", []).append(max_attempts)
            if len(slot["arr"]) == 2:
                try:
                    slot["result"] = self._resolve(slot["arr"], min(slot["budget"]))
                except Exception as exc:  # reported to both sides
                    slot["error"] = exc
                self._cond.notify_all()
            elif not self._cond.wait_for(
                    lambda: slot["result"] is not None or slot["error"] is not None, timeout):
                del self._slots[k]
                self._next[node] = k
                raise PartnerTimeoutError(node, partner, k, timeout)
            slot["taken"] += 1
            if slot["taken"] == 2:
                del self._slots[k]
            if slot["error"] is not None:
                raise slot["error"]
            return slot["result"]

    def progress(self, node: str, t_ns: int, peer: str | None = None) -> None:
        """``node``'s clock reached ``t_ns`` (see :meth:`WindowRendezvous.passed`)."""
        if self.rendezvous is not None:
            self.rendezvous.passed(node, t_ns)

    def _window_by_bin(self, node: str, partner: str, qubit: int, t_ns: int,
                       max_attempts: int) -> tuple[bool, int, int]:
        attempt = self.model.attempt_duration_ns
        rendezvous = self.rendezvous
        assert rendezvous is not None  # only called when windows are paired by bin
        bin_ns = rendezvous.bin_ns
        bin_end = (t_ns // bin_ns + 1) * bin_ns

        def resolve(arr: dict) -> dict:
            start = max(t for _, t, _ in arr.values())
            # a window never runs past its bin: the next bin may belong to another link
            budget = min(min(b for _, _, b in arr.values()), max(0, (bin_end - start) // attempt))
            heralded, bell, used = self._resolve({n: (q, start) for n, (q, _, _) in arr.items()},
                                                 budget) if budget > 0 else (False, 0, 0)
            t_end = start + used * attempt
            # attempts each end spent from its own start (ends start on the same clock tick
            # grid, so this is exact; both report the herald at t_end)
            return {n: (heralded, bell, -(-(t_end - t) // attempt)) for n, (_, t, _) in arr.items()}

        out = rendezvous.meet(node, partner, t_ns, (qubit, t_ns, max_attempts), resolve)
        if out is LONE:  # the partner attempted nothing in this bin: a failed window
            used = min(max_attempts, max(0, (bin_end - t_ns) // attempt))
            self.attempts += used
            with self.registry.lock:
                self.registry.reset((node, qubit), (0.0, 0.0, 0.0))
            return False, 0, used
        return out
