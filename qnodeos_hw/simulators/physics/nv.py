"""Physics of an NV node, as driven by its controller (lasers) and AWG (microwaves).

Implements :class:`qnodeos_hw.simulators.qubit_backend.NVQubitBackend`.
Address 0 is the electron spin (the communication qubit and the only measurable one);
addresses 1..N are 13C nuclear spins (``model.carbons[k-1]``): each with its hyperfine
coupling, its T2 under decoupling and a dephasing per entanglement attempt. Carbons are
driven through the electron: a DD train the AWG plays (:meth:`NVNode.play_train`) is
evaluated from its samples with :mod:`.carbon`, and the unitary of the carbon the train
addresses (the one it acts on most) is applied to (electron, that carbon); the others'
crosstalk is neglected (measured in ``train_crosstalk``). Carbon z rotations are frame
updates of the controller (:meth:`NVNode.frame_rotate`).
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
#: a carbon whose action under a train exceeds this takes part in the train's unitary
_TRAIN_ACTION_MIN: Final = 0.002
_TRAIN_MAX_CARBONS: Final = 2


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
        if num_qubits - 1 > len(model.carbons):
            from .errors import QubitAddressError
            raise QubitAddressError(f"node '{name}': {num_qubits} qubits need "
                                    f"{num_qubits - 1} carbon(s); the noise model has "
                                    f"{len(model.carbons)} (nv.carbons)")
        super().__init__(name, registry, rng, num_qubits, t0_ns)
        self.model = model
        self._carbons = list(model.carbons[:num_qubits - 1])
        self._train_cache: dict[Hashable, tuple] = {}
        #: train key -> the largest action the effective model neglected on other carbons
        self.train_crosstalk: dict[Hashable, float] = {}
        self._age_matters = model.t2star_exponent != 1.0
        self._detuning_hz = float(model.detuning_hz)
        self._cache: dict[Hashable, tuple] = {}
        self.cache_misses = 0
        self.station = station
        #: heralding stations in link order (link k = the k-th attached); ENT instructions
        #: name the link
        self.links: list = []
        if station is not None:
            station.attach(self)

    def add_link(self, station: "HeraldingStation") -> None:
        """A heralding station this node's electron is optically linked to (the next link
        index); the first is also ``station``."""
        if self.station is None:
            self.station = station
        if all(s is not station for s in self.links):
            self.links.append(station)

    # ------------------------------------------------------------------ decay
    def _decay_params(self, qubit: int, dt_s: float, age_s: float
                      ) -> tuple[float, float, float, float]:
        m = self.model
        if qubit > 0:  # a carbon: T2 under decoupling, T1, no detuning (its own frame)
            cm = self._carbons[qubit - 1]
            e1 = math.exp(-dt_s / cm.t1_s)
            return math.sqrt(e1) * math.exp(-dt_s / cm.t2_s), e1, 0.0, 0.0
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

    def play_train(self, qubit: int, key: Hashable, offsets: list, waves_i: list, waves_q: list,
                   n_samples: int, sample_rate_hz: float, t_ns: int) -> None:
        """A pulse train on the electron's MW line (``qubit`` 0) from ``t_ns``: its unitary
        on (electron, the carbon it addresses) from the samples (:mod:`.carbon`), cached
        per ``key``; the qubits' memory decay resumes at the train's end."""
        if qubit != 0:
            raise WaveformError(f"node '{self.name}': trains play on the electron's MW line "
                                f"(qubit 0), not qubit {qubit}")
        hit = self._train_cache.get(key)
        if hit is None:
            hit = self._evaluate_train(key, offsets, waves_i, waves_q, n_samples, sample_rate_hz)
        involved, u = hit
        end = t_ns + int(n_samples * 1e9 / sample_rate_hz)
        keys = [self.advance(0, t_ns, True)]
        for c in involved:
            keys.append(self.advance(c, t_ns, True))
        self.registry.apply_unitary(keys, u)
        ke = keys[0]
        # the train is DD: the electron keeps its DD coherence law over it (T_coh), the
        # carbon its T2 (applied by its clock from t_ns on)
        m = self.model
        p = math.exp(-(((end - t_ns) * 1e-9 / m.t_coh_s) ** m.t_coh_exponent))
        self.registry.decohere(ke, p, p, 0.0)
        self._t_last[0] = end
        self._busy_until[0] = end
        self._free_since[0] = end

    def _evaluate_train(self, key, offsets, waves_i, waves_q, n_samples, rate) -> tuple:
        """(carbons acted on, unitary on electron + those carbons): every carbon whose own
        train unitary acts on it beyond ``_TRAIN_ACTION_MIN`` takes part (a train resonant
        with two carbons entangles both: real crosstalk); the others' (smaller) action is
        neglected and recorded in ``train_crosstalk``."""
        from .carbon import action, train_unitary
        m = self.model
        rabi, det = m.rabi_hz_per_amplitude, self._detuning_hz
        params = [(m.carbon_larmor_hz, cm.a_par_hz, cm.a_perp_hz) for cm in self._carbons]
        acts = [action(train_unitary([p], offsets, waves_i, waves_q, n_samples, rate, rabi, det))
                for p in params]
        # the carbons the train acts on most (at most _TRAIN_MAX_CARBONS: a joint unitary
        # of 2^(1+k) dimensions per sample), in address order
        ranked = sorted((c for c, a in enumerate(acts, start=1) if a > _TRAIN_ACTION_MIN),
                        key=lambda c: -acts[c - 1])
        involved = sorted(ranked[:_TRAIN_MAX_CARBONS])
        u = train_unitary([params[c - 1] for c in involved], offsets, waves_i, waves_q,
                          n_samples, rate, rabi, det)
        hit: tuple = (tuple(involved), u)
        self.train_crosstalk[key] = max([a for c, a in enumerate(acts, start=1)
                                         if c not in involved], default=0.0)
        if len(self._train_cache) >= _MAX_CACHE:
            self._train_cache.clear()
        self._train_cache[key] = hit
        return hit

    def frame_rotate(self, qubit: int, angle_rad: float, t_ns: int) -> None:
        """Virtual Z on a carbon: the controller shifts the carbon's frame by ``angle_rad``,
        which acts on the state as ``Rz(angle_rad)``."""
        if qubit == 0:
            raise WaveformError(f"node '{self.name}': electron z rotations are table "
                                "entries, not frame updates")
        k = self.advance(qubit, t_ns)
        c, s = math.cos(angle_rad / 2), math.sin(angle_rad / 2)
        u = np.array([[complex(c, -s), 0], [0, complex(c, s)]], dtype=complex)
        self.registry.apply_unitary_1q(k, u, bloch_rotation(u))

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
        """Spin pumping (electron) or carbon initialisation: ``qubit`` -> F|0><0| +
        (1-F)|1><1| at ``t_ns`` (F: the electron's or that carbon's init fidelity); DD off."""
        k = self._touch(qubit, t_ns)  # the old state is discarded
        self._dd[qubit] = False
        f = self.model.init_fidelity if qubit == 0 else self._carbons[qubit - 1].init_fidelity
        self.registry.reset(k, (0.0, 0.0, 2.0 * f - 1.0))

    def readout_counts(self, qubit: int, t_ns: int) -> int:
        """Single-shot readout of the electron: projective, then the photon counts of the
        window, Poisson with mean ``readout_counts_bright`` (|0>) or ``_dark`` (|1>)
        (so >= 1 photon reads 0 with probabilities F0, F1). DD off afterwards."""
        if qubit != 0:
            from .errors import QubitAddressError
            raise QubitAddressError(f"node '{self.name}': only the electron (qubit 0) has an "
                                    f"optical readout, not qubit {qubit}")
        k = self.advance(qubit, t_ns, True)
        self._dd[qubit] = False
        true = self.registry.measure(k, self.random.uniform())
        m = self.model
        return self.random.poisson(m.readout_counts_bright if true == 0 else m.readout_counts_dark)

    def readout(self, qubit: int, t_ns: int) -> int:
        """Single-shot readout: 0 if the window has >= 1 photon (bright), else 1."""
        return 0 if self.readout_counts(qubit, t_ns) >= 1 else 1

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

    def entangle_window(self, qubit: int, t_ns: int, measure: bool, max_attempts: int,
                        link: int = 0) -> tuple[bool, int, int | None, int]:
        """Up to ``max_attempts`` attempts back to back with the partner on optical
        ``link`` (one random draw for the whole window); the qubit is ready
        ``used * attempt_duration_ns`` later. Returns (heralded, bell_index, outcome or
        None, attempts used)."""
        station = self.station
        if link or len(self.links) > 1:
            if not 0 <= link < len(self.links):
                from .errors import HeraldingError
                raise HeraldingError(f"node '{self.name}' has {len(self.links)} optical "
                                     f"link(s); no link {link}")
            station = self.links[link]
        if station is None:
            from .errors import HeraldingError
            raise HeraldingError(f"node '{self.name}' has no heralding station attached")
        self._prepare_attempt(qubit, t_ns)
        heralded, bell, used = station.attempt_window(self.name, qubit, t_ns, max_attempts)
        t_end = self._finish_attempt(qubit, t_ns, used, station)
        outcome = self.readout(qubit, t_end) if (measure and heralded) else None
        return heralded, bell, outcome, used

    def _prepare_attempt(self, qubit: int, t_ns: int) -> None:
        self._key(qubit)
        last = self._t_last[qubit]
        if t_ns < last:
            self.advance(qubit, t_ns)  # raises PhysicsTimeError
        self._dd[qubit] = False

    def _finish_attempt(self, qubit: int, t_ns: int, used: int = 1,
                        station: "HeraldingStation | None" = None) -> int:
        st = station if station is not None else self.station
        assert st is not None  # checked by entangle_window
        t_end = t_ns + used * st.model.attempt_duration_ns
        # every attempt resets the electron at a random time: the carbons dephase
        for c in range(1, self.num_qubits):
            k = self.advance(c, t_ns)
            a = math.exp(-used / self._carbons[c - 1].attempts_1e)
            self.registry.decohere(k, a, 1.0, 0.0)
        self._t_last[qubit] = t_end
        self._free_since[qubit] = t_end
        return t_end
