"""What NV and ion nodes share: qubit addresses, per-qubit clocks, lazy memory decay."""

from __future__ import annotations

import math
from typing import Final, Sequence

import numpy as np

from .errors import PhysicsTimeError, QubitAddressError
from .randomness import RandomStream
from .state import QuantumRegistry


_MAX_MEMO: Final = 4096


class NodeBase:
    """Qubits ``(name, 0..num_qubits-1)`` in a shared :class:`QuantumRegistry`.

    Each qubit carries the virtual time (ns, on this node's clock) up to which its
    memory decay has been applied; an operation at ``t_ns`` first applies the decay
    for ``t_ns - last`` and then acts. Decay of different qubits commutes, so each
    qubit (and each node's clock) can run on its own time line.
    """

    def __init__(self, name: str, registry: QuantumRegistry, rng: np.random.Generator,
                 num_qubits: int = 1, t0_ns: int = 0) -> None:
        if num_qubits < 1:
            raise QubitAddressError(f"node '{name}' needs at least one qubit, got {num_qubits}")
        self.name = name
        self.registry = registry
        self.random = RandomStream(rng)
        self.num_qubits = num_qubits
        self.keys = [(name, q) for q in range(num_qubits)]
        self._t_last = [int(t0_ns)] * num_qubits
        self._dd = [False] * num_qubits  # DD protecting the qubit (NV nodes switch it)
        #: start of the current free-evolution segment (DD off, no pulse) per qubit (ns)
        self._free_since = [int(t0_ns)] * num_qubits
        # end of the pulse last played on the qubit: its evolution up to there is in the
        # pulse's unitary, so memory decay restarts at the pulse end
        self._busy_until = [int(t0_ns)] * num_qubits
        #: whether the decay law depends on the age of the free segment (non-exponential T2*)
        self._age_matters = False
        self._decay_memo: dict[object, tuple[float, float, float, float]] = {}
        for key in self.keys:
            registry.add_qubit(key)

    # ------------------------------------------------------------------ helpers
    def _key(self, qubit: int):
        if not 0 <= qubit < self.num_qubits:
            raise QubitAddressError(f"node '{self.name}' has {self.num_qubits} qubit(s); "
                                    f"no qubit address {qubit}")
        return self.keys[qubit]

    def _decay_params(self, qubit: int, dt_s: float, age_s: float
                      ) -> tuple[float, float, float, float]:
        """(a, b, c, phi) of the memory channel over the next ``dt_s`` seconds of a free
        segment that is already ``age_s`` old (subclasses); see
        :meth:`QuantumRegistry.decohere`."""
        raise NotImplementedError

    def advance(self, qubit: int, t_ns: int, restart: bool = False):
        """Apply ``qubit``'s memory decay up to ``t_ns``; returns the qubit's registry key.
        ``restart``: an operation acts on the qubit at ``t_ns``, so a new free-evolution
        segment begins there (the T2* law restarts; quasi-static noise is refocused).

        The channel parameters are memoised per (DD mode, interval, segment age) since
        instruction streams repeat the same intervals."""
        if not 0 <= qubit < self.num_qubits:
            self._key(qubit)  # raises QubitAddressError
        key = self.keys[qubit]
        last = self._t_last[qubit]
        busy = self._busy_until[qubit]
        if busy > last:  # inside / right after a pulse: no free evolution before its end
            last = busy if busy < t_ns else t_ns
            self._t_last[qubit] = last
        if t_ns != last:
            if t_ns < last:
                raise PhysicsTimeError(f"node '{self.name}' qubit {qubit}: operation at {t_ns} "
                                       f"ns is before the qubit's last update at {last} ns")
            dd = self._dd[qubit]
            age = last - self._free_since[qubit] if (self._age_matters and not dd) else 0
            dt = t_ns - last
            # one int as the key in the usual case (no age dependence): no tuple to build
            memo_key: object = (2 * dt + dd) * 8 + qubit if age == 0 else (dd, dt, age, qubit)
            params = self._decay_memo.get(memo_key)
            if params is None:
                if len(self._decay_memo) >= _MAX_MEMO:
                    self._decay_memo.clear()
                params = self._decay_memo[memo_key] = self._decay_params(
                    qubit, dt * 1e-9, age * 1e-9)
            a, b, c, phi = params
            self.registry.decohere(key, a, b, c, phi)
            self._t_last[qubit] = t_ns
        if restart:
            self._free_since[qubit] = t_ns
        return key

    def _touch(self, qubit: int, t_ns: int):
        """Move ``qubit``'s clock to ``t_ns`` without applying decay: for operations that
        discard the qubit's state anyway (a local channel on a qubit that is then traced
        out does not change the rest). Returns the registry key."""
        if not 0 <= qubit < self.num_qubits:
            self._key(qubit)
        last = self._t_last[qubit]
        if t_ns < last:
            raise PhysicsTimeError(f"node '{self.name}' qubit {qubit}: operation at {t_ns} ns is "
                                   f"before the qubit's last update at {last} ns")
        self._t_last[qubit] = t_ns
        self._free_since[qubit] = t_ns
        return self.keys[qubit]

    def last_update_ns(self, qubit: int) -> int:
        """Virtual time (ns) up to which ``qubit``'s decay has been applied."""
        self._key(qubit)
        return self._t_last[qubit]

    def reduced_density_matrix(self, qubits: Sequence[int], at_ns: int | None = None) -> np.ndarray:
        """Density matrix of this node's ``qubits`` (others traced out). With ``at_ns``
        the qubits' decay is first applied up to that time."""
        if at_ns is not None:
            for q in qubits:
                self.advance(q, at_ns)
        return self.registry.reduced_density_matrix([self._key(q) for q in qubits])

    def prob_zero(self, qubit: int) -> float:
        """P(|0>) of ``qubit`` as of its last update (no sampling, no decay applied)."""
        return self.registry.prob_zero(self._key(qubit))


def memory_decay(dt_s: float, t1_s: float, z_eq: float, t2_s: float, t2_exp: float,
                 detuning_hz: float = 0.0, age_s: float = 0.0) -> tuple[float, float, float, float]:
    """Free evolution in the drive's rotating frame over ``dt_s`` of a free segment already
    ``age_s`` old: precession at the detuning, generalised amplitude damping (T1 towards
    ``z_eq``) and pure dephasing with coherence ``exp(-(tau/T2)^n)`` over the segment's
    age ``tau`` (so the factor applied is the ratio between the ages; n = 2 is the Gaussian
    decay of a quasi-static bath, n = 1 Markovian). Returns (a, b, c, phi) for
    ``x,y -> a R_z(phi)(x,y); z -> b z + c``."""
    e1 = math.exp(-dt_s / t1_s)
    a = math.sqrt(e1) * math.exp(((age_s / t2_s) ** t2_exp) - (((age_s + dt_s) / t2_s) ** t2_exp))
    return a, e1, z_eq * (1.0 - e1), 2 * math.pi * detuning_hz * dt_s


def reduced_density_matrix(node: NodeBase, qubits: Sequence[int], at_ns: int | None = None
                           ) -> np.ndarray:
    """Density matrix of ``node``'s ``qubits`` (see :meth:`NodeBase.reduced_density_matrix`).
    For qubits of several nodes use ``registry.reduced_density_matrix([(name, q), ...])``."""
    return node.reduced_density_matrix(qubits, at_ns)
