"""Physics of an NV node, as driven by its controller (lasers) and AWG (microwaves).

Implements :class:`qnodeos_hw.simulators.qubit_backend.NVQubitBackend`.
Address 0 is the electron spin (the communication qubit); further addresses
(e.g. 13C nuclear spins) share the memory parameters and are driven by ``play_mw``
with their own waveforms or by :meth:`NVNode.apply_gate`.
"""

from __future__ import annotations

import math
from typing import Final, Hashable, Sequence, TYPE_CHECKING

import numpy as np

from .errors import WaveformError
from .node_base import NodeBase, memory_decay
from .noise_model import NVNoiseModel
from .pulses import bloch_rotation, waveform_unitary
from .state import QuantumRegistry

if TYPE_CHECKING:
    from .heralding import HeraldingStation

_MAX_CACHE: Final = 4096


class NVNode(NodeBase):
    """One NV node.

    * ``play_mw``: the unitary of the played I/Q samples (see :mod:`.pulses`), applied
      at the pulse start ``t_ns``; cached per ``key`` and revalidated against the
      samples (same array objects -> hit; equal content -> hit; otherwise recomputed).
    * memory decay: with DD on, depolarising ``exp(-(t/T_coh)^n)`` (the paper's model);
      with DD off, precession at the detuning, T2* dephasing and T1 relaxation
      (:func:`.node_base.memory_decay`).
    * ``readout``: projective on the true outcome, reported with fidelities F0/F1.
    * ``entangle``: one attempt through the attached :class:`HeraldingStation`.
    """

    def __init__(self, name: str, model: NVNoiseModel, rng: np.random.Generator,
                 registry: QuantumRegistry, num_qubits: int = 1,
                 station: "HeraldingStation | None" = None, t0_ns: int = 0) -> None:
        super().__init__(name, registry, rng, num_qubits, t0_ns)
        self.model = model
        self._age_matters = model.t2star_exponent != 1.0
        self._detuning_hz = float(model.detuning_hz)
        self._cache: dict[Hashable, tuple] = {}
        self.cache_misses = 0
        self.station = station
        if station is not None:
            station.attach(self)

    # ------------------------------------------------------------------ decay
    def _decay_params(self, qubit: int, dt_s: float, age_s: float
                      ) -> tuple[float, float, float, float]:
        m = self.model
        if self._dd[qubit]:  # DD refocuses the detuning; what remains is depolarising
            p = math.exp(-((dt_s / m.t_coh_s) ** m.t_coh_exponent))
            return p, p, 0.0, 0.0
        return memory_decay(dt_s, m.t1_s, m.t1_equilibrium_z, m.t2star_s, m.t2star_exponent,
                            self._detuning_hz, age_s)

    # ------------------------------------------------------------- microwaves
    @property
    def detuning_hz(self) -> float:
        """Current MW detuning (Hz); the noise model's value unless set."""
        return self._detuning_hz

    def set_detuning(self, detuning_hz: float) -> None:
        """Set the detuning (Hz, qubit minus MW frequency), e.g. when the MW source moved;
        clears the unitary cache."""
        self._detuning_hz = float(detuning_hz)
        self._cache.clear()
        self._decay_memo.clear()

    def mw_unitary(self, key: Hashable, wave_i: np.ndarray, wave_q: np.ndarray,
                   sample_rate_hz: float) -> np.ndarray:
        """The (cached) 2x2 unitary of a waveform, without playing it."""
        return self._lookup(key, wave_i, wave_q, sample_rate_hz)[0]

    def _lookup(self, key, wave_i, wave_q, sample_rate_hz) -> tuple:
        hit = self._cache.get(key)
        if hit is not None:
            _, _, wi, wq, sr = hit
            if wi is wave_i and wq is wave_q and sr == sample_rate_hz:
                return hit
            if sr == sample_rate_hz and np.array_equal(wi, wave_i) and np.array_equal(wq, wave_q):
                hit = (hit[0], hit[1], wave_i, wave_q, sr)
                self._cache[key] = hit
                return hit
        self.cache_misses += 1
        u = waveform_unitary(wave_i, wave_q, sample_rate_hz, self.model.rabi_hz_per_amplitude,
                             self._detuning_hz)
        entry = (u, bloch_rotation(u), wave_i, wave_q, sample_rate_hz)
        if len(self._cache) >= _MAX_CACHE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = entry
        return entry

    def play_mw(self, qubit: int, key: Hashable, wave_i: np.ndarray, wave_q: np.ndarray,
                sample_rate_hz: float, t_ns: int) -> None:
        """Apply the waveform's unitary to ``qubit`` at ``t_ns`` (pulse start). The unitary
        holds the whole pulse (detuning included), so the qubit's memory decay resumes at
        the pulse end: the pulse window is not counted again as free evolution."""
        entry = self._cache.get(key)
        if (entry is None or entry[2] is not wave_i or entry[3] is not wave_q
                or entry[4] != sample_rate_hz):  # the same arrays again: a hit (hot path)
            entry = self._lookup(key, wave_i, wave_q, sample_rate_hz)
        k = self.advance(qubit, t_ns, True)
        self.registry.apply_unitary_1q(k, entry[0], entry[1])
        end = t_ns + int(wave_i.shape[0] * 1e9 / sample_rate_hz)
        self._busy_until[qubit] = end
        self._free_since[qubit] = end

    def apply_gate(self, qubits: Sequence[int], unitary: np.ndarray, t_ns: int) -> None:
        """Apply an ideal unitary on this node's ``qubits`` at ``t_ns`` (e.g. an
        electron-nuclear gate); tensor order = order of ``qubits``."""
        u = np.asarray(unitary, dtype=complex)
        if u.shape != (2 ** len(qubits),) * 2:
            raise WaveformError(f"unitary for {len(qubits)} qubit(s) must be "
                                f"{2**len(qubits)}x{2**len(qubits)}, got {u.shape}")
        keys = [self._key(q) for q in qubits]
        for q in qubits:
            self.advance(q, t_ns, restart=True)
        self.registry.apply_unitary(keys, u)

    def set_dd(self, qubit: int, on: bool, t_ns: int) -> None:
        """DD starts/stops at ``t_ns``: the decay so far uses the old mode."""
        on = bool(on)
        self.advance(qubit, t_ns, self._dd[qubit] != on)
        self._dd[qubit] = on

    def dd_on(self, qubit: int) -> bool:
        """Whether DD is currently protecting ``qubit``."""
        self._key(qubit)
        return self._dd[qubit]

    # ------------------------------------------------------------------ lasers
    def cr_check(self, t_ns: int) -> int:
        """Photon counts of one CR check: Poisson(mean_pass) with probability
        ``cr_pass_probability``, else Poisson(mean_fail). With
        ``cr_scrambles_electron`` the electron (address 0) is left fully mixed."""
        m = self.model
        if m.cr_scrambles_electron:
            self._touch(0, t_ns)
            self._dd[0] = False
            self.registry.reset(self.keys[0], (0.0, 0.0, 0.0))
        ready = self.random.uniform() < m.cr_pass_probability
        return self.random.poisson(m.cr_counts_mean_pass if ready else m.cr_counts_mean_fail)

    def initialize(self, qubit: int, t_ns: int) -> None:
        """Spin pumping: ``qubit`` -> F|0><0| + (1-F)|1><1| at ``t_ns``; DD off."""
        k = self._touch(qubit, t_ns)  # the old state is discarded
        self._dd[qubit] = False
        self.registry.reset(k, (0.0, 0.0, 2.0 * self.model.init_fidelity - 1.0))

    def readout(self, qubit: int, t_ns: int) -> int:
        """Single-shot readout: projective on the true outcome, reported bit flipped
        with probability 1-F0 (true 0) or 1-F1 (true 1). DD off afterwards."""
        k = self.advance(qubit, t_ns, True)
        self._dd[qubit] = False
        true = self.registry.measure(k, self.random.uniform())
        u = self.random.uniform()
        if true == 0:
            return 0 if u < self.model.readout_f0 else 1
        return 1 if u < self.model.readout_f1 else 0

    # ------------------------------------------------------------ entanglement
    def entangle(self, qubit: int, t_ns: int, measure: bool) -> tuple[bool, int, int | None]:
        """One heralded attempt with the partner node (blocks until the partner's
        attempt of the same number). On success ``qubit`` holds its half of the
        heralded state at ``t_ns + attempt_duration_ns``; with ``measure`` it is read
        out then. Returns (heralded, bell_index, outcome or None)."""
        if self.station is None:
            from .errors import HeraldingError
            raise HeraldingError(f"node '{self.name}' has no heralding station attached")
        return self.entangle_window(qubit, t_ns, measure, 1)[:3]

    def entangle_window(self, qubit: int, t_ns: int, measure: bool, max_attempts: int
                        ) -> tuple[bool, int, int | None, int]:
        """Up to ``max_attempts`` attempts back to back with the partner (one random draw
        for the whole window); the qubit is ready ``used * attempt_duration_ns`` later.
        Returns (heralded, bell_index, outcome or None, attempts used)."""
        if self.station is None:
            from .errors import HeraldingError
            raise HeraldingError(f"node '{self.name}' has no heralding station attached")
        self._prepare_attempt(qubit, t_ns)
        heralded, bell, used = self.station.attempt_window(self.name, qubit, t_ns, max_attempts)
        t_end = self._finish_attempt(qubit, t_ns, used)
        outcome = self.readout(qubit, t_end) if (measure and heralded) else None
        return heralded, bell, outcome, used

    def _prepare_attempt(self, qubit: int, t_ns: int) -> None:
        self._key(qubit)
        last = self._t_last[qubit]
        if t_ns < last:
            self.advance(qubit, t_ns)  # raises PhysicsTimeError
        self._dd[qubit] = False

    def _finish_attempt(self, qubit: int, t_ns: int, used: int = 1) -> int:
        assert self.station is not None  # checked by entangle_window
        t_end = t_ns + used * self.station.model.attempt_duration_ns
        self._t_last[qubit] = t_end
        self._free_since[qubit] = t_end
        return t_end
