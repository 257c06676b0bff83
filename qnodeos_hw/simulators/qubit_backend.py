"""What the simulated instruments drive: the qubit physics, seen from the instruments.

The simulated HDAWG, ADwin and ion bridge (vendor-API simulators) call these
methods with what was *actually* uploaded and played; the physics model
(:mod:`qnodeos_hw.simulators.physics`) implements them. Times are virtual ns on
the node's clock; waveforms are full-scale I/Q samples at ``sample_rate_hz``.
"""

from __future__ import annotations

from typing import Hashable, Protocol

import numpy as np


class NVQubitBackend(Protocol):
    """Physics of one NV node as driven by its controller (lasers) and AWG (microwaves)."""

    def play_mw(self, qubit: int, key: Hashable, wave_i: np.ndarray, wave_q: np.ndarray,
                sample_rate_hz: float, t_ns: int) -> None:
        """A microwave waveform starts at ``t_ns``; its unitary is computed from the samples
        once per ``key`` (e.g. the table entry and the frame phase) and cached."""
        ...

    def play_train(self, qubit: int, key: Hashable, offsets: list[int], waves_i: list[np.ndarray],
                   waves_q: list[np.ndarray], n_samples: int, sample_rate_hz: float,
                   t_ns: int) -> None:
        """A fixed train of pulses (a carbon gate: DD pulses timed to a carbon's coupling)
        starts at ``t_ns`` on ``qubit``'s MW line: pulse ``k`` (samples ``waves_i[k]``,
        ``waves_q[k]``) at sample ``offsets[k]``, zeros between; ``n_samples`` in all."""
        ...

    def set_dd(self, qubit: int, on: bool, t_ns: int) -> None:
        """Dynamical decoupling starts (``on``) or stops playing at ``t_ns``."""
        ...

    def frame_rotate(self, qubit: int, angle_rad: float, t_ns: int) -> None:
        """The controller rotates ``qubit``'s frame (a carbon's virtual Z) at ``t_ns``."""
        ...

    def readout_counts(self, qubit: int, t_ns: int) -> int:
        """Single-shot readout at ``t_ns``: the photon counts of the readout window."""
        ...

    def cr_check(self, t_ns: int) -> int:
        """Charge-resonance check at ``t_ns``: photon counts in the check window."""
        ...

    def initialize(self, qubit: int, t_ns: int) -> None:
        """Optical spin pumping of ``qubit`` to |0> at ``t_ns``."""
        ...

    def readout(self, qubit: int, t_ns: int) -> int:
        """Single-shot readout at ``t_ns``: the reported bit (with readout infidelity)."""
        ...

    def entangle(self, qubit: int, t_ns: int, measure: bool) -> tuple[bool, int, int | None]:
        """One heralded attempt with the partner node: (heralded, bell_index 0..3,
        outcome bit if ``measure`` else None)."""
        ...

    def entangle_window(self, qubit: int, t_ns: int, measure: bool, max_attempts: int,
                        link: int = 0) -> tuple[bool, int, int | None, int]:
        """Up to ``max_attempts`` attempts back to back on optical ``link``, stopping at the
        first herald: (heralded, bell_index, outcome or None, attempts used)."""
        ...


class IonQubitBackend(Protocol):
    """Physics of one trapped-ion node as driven by the TTL lines of the FPGA sequencer."""

    def cool(self, qubit: int, duration_ns: int, t_ns: int) -> None:
        """Doppler cooling (+ repump) for ``duration_ns``."""
        ...

    def pump(self, qubit: int, duration_ns: int, t_ns: int) -> None:
        """Optical pumping to |0>."""
        ...

    def pulse(self, qubit: int, phase_rad: float, duration_ns: int, t_ns: int) -> None:
        """Qubit-laser (DDS) pulse of ``duration_ns`` with phase ``phase_rad``
        (0 = x axis, pi/2 = y axis, pi = -x)."""
        ...

    def detect(self, qubit: int, window_ns: int, t_ns: int) -> int:
        """Fluorescence detection: PMT counts in the window."""
        ...
