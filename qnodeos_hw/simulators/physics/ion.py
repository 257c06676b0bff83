"""Physics of a trapped-ion node (40Ca+ optical qubit), driven by TTL lines.

Implements :class:`qnodeos_hw.simulators.qubit_backend.IonQubitBackend`.
|0> = S1/2 (bright under 397 nm detection), |1> = D5/2 (dark) by default
(``bright_state`` in the noise model).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import PhysicsError
from .node_base import NodeBase, memory_decay
from .noise_model import IonNoiseModel
from .pulses import bloch_rotation, su2_from_field
from .state import QuantumRegistry


class IonNode(NodeBase):
    """One trapped-ion node.

    * ``pulse``: rotation by ``pi * duration / pi_time`` about ``(cos phase, sin phase, 0)``
      (plus the laser detuning, if any), cached per (phase, duration).
    * ``cool``: Doppler cooling scatters photons off S1/2 and so dephases the qubit
      (x, y -> 0); populations unchanged.
    * ``pump``: ``rho -> (1 - r) [(1-e)|0><0| + e|1><1|] + r * dephased(rho)`` with
      ``r = exp(-duration / pump_time_constant)``, ``e = pump_error``.
    * ``detect``: projective; Poisson counts with mean rate * window (bright / dark).
    * memory: T1 decay of D5/2 towards |0>, T2* dephasing and precession at the laser
      detuning (no DD on this node).
    """

    def __init__(self, name: str, model: IonNoiseModel, rng: np.random.Generator,
                 registry: QuantumRegistry, num_qubits: int = 1, t0_ns: int = 0) -> None:
        super().__init__(name, registry, rng, num_qubits, t0_ns)
        self.model = model
        self._age_matters = model.t2star_exponent != 1.0
        self._cache: dict[tuple[float, int], tuple] = {}

    def _decay_params(self, qubit: int, dt_s: float, age_s: float
                      ) -> tuple[float, float, float, float]:
        m = self.model
        return memory_decay(dt_s, m.t1_s, m.t1_equilibrium_z, m.t2star_s, m.t2star_exponent,
                            m.laser_detuning_hz, age_s)

    @staticmethod
    def _duration(name: str, duration_ns: int) -> int:
        if duration_ns < 0:
            raise PhysicsError(f"{name} duration must be >= 0 ns, got {duration_ns}")
        return duration_ns

    def pulse_unitary(self, phase_rad: float, duration_ns: int) -> np.ndarray:
        """The (cached) 2x2 unitary of a qubit-laser pulse."""
        return self._pulse(phase_rad, duration_ns)[0]

    def _pulse(self, phase_rad: float, duration_ns: int) -> tuple:
        key = (phase_rad, duration_ns)
        hit = self._cache.get(key)
        if hit is None:
            m = self.model
            half = math.pi / (2 * m.pi_time_ns * 1e-9)  # Omega/2 (rad/s)
            u = su2_from_field(half * math.cos(phase_rad), half * math.sin(phase_rad),
                               math.pi * m.laser_detuning_hz, duration_ns * 1e-9)[()]
            hit = self._cache[key] = (u, bloch_rotation(u))
        return hit

    def pulse(self, qubit: int, phase_rad: float, duration_ns: int, t_ns: int) -> None:
        """Qubit-laser pulse starting at ``t_ns`` (applied at its start)."""
        u, rot = self._pulse(phase_rad, self._duration("pulse", duration_ns))
        k = self.advance(qubit, t_ns, restart=True)
        self.registry.apply_unitary_1q(k, u, rot)

    def cool(self, qubit: int, duration_ns: int, t_ns: int) -> None:
        """Doppler cooling (+ repump) from ``t_ns``: dephases the qubit."""
        self._duration("cool", duration_ns)
        k = self.advance(qubit, t_ns, restart=True)
        if duration_ns > 0:
            self.registry.decohere(k, 0.0, 1.0, 0.0)

    def pump(self, qubit: int, duration_ns: int, t_ns: int) -> None:
        """Optical pumping towards |0> for ``duration_ns`` from ``t_ns``."""
        self._duration("pump", duration_ns)
        k = self.advance(qubit, t_ns, restart=True)
        m = self.model
        r = math.exp(-duration_ns / m.pump_time_constant_ns)
        self.registry.decohere(k, 0.0, r, (1.0 - r) * (1.0 - 2.0 * m.pump_error))

    def detect(self, qubit: int, window_ns: int, t_ns: int) -> int:
        """Fluorescence detection from ``t_ns``: projective measurement, then PMT counts
        ~ Poisson(rate * window) for the bright or dark rate."""
        self._duration("detect", window_ns)
        k = self.advance(qubit, t_ns, restart=True)
        m = self.model
        state = self.registry.measure(k, self.random.uniform())
        rate = m.pmt_bright_rate_hz if state == m.bright_state else m.pmt_dark_rate_hz
        return self.random.poisson(rate * window_ns * 1e-9)

    def counts_to_outcome(self, counts: int) -> int:
        """Convenience for callers: threshold counts with the model's threshold."""
        bright = counts >= self.model.pmt_threshold_counts
        return self.model.bright_state if bright else 1 - self.model.bright_state
