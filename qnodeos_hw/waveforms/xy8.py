"""XY8 dynamical-decoupling timing on the AWG's 16-sample grid (integer samples).

An XY8 block with reference sample ``ref`` and interpulse delay ``tau`` (samples,
pulse centre to centre) has 8 pi pulses about ``X Y X Y Y X Y X`` centred at
``ref + (j + 1/2) tau``, j = 0..7; its echo point (where the next block's reference
lies, and where gates belong) is ``ref + 8 tau``. A pulse of ``n`` samples starting
at sample ``p`` is centred at ``p + n/2`` (see :mod:`.shapes`); starts are rounded
so that each centre is within half a sample of the ideal grid.

AWG playback advances in waveforms whose lengths are multiples of
:data:`GRANULARITY` samples (at least :data:`MIN_WAVEFORM_SAMPLES`). Whatever is
played (DD block or table entry) ends on the grid point
``16 * floor((echo - lead) / 16)``, where ``lead`` is the anchor of a single-pulse
gate (half its length): the next thing played then has its reference at
``lead + shift`` samples after its own start, ``shift = 0..15`` — the DD state that
selects one of the 16 one-sample-shifted DD copies, and which puts the centre of
a single-pulse gate 0..15 samples before the echo point.
"""

from __future__ import annotations

import math

import numpy as np

#: AWG waveform granularity (samples): 16 samples = 6.67 ns at 2.4 GSa/s
GRANULARITY = 16
#: shortest waveform the HDAWG plays without zero-extending it (samples)
MIN_WAVEFORM_SAMPLES = 32
#: pulse axes of one XY8 block, in time order
XY8_AXES: tuple[str, ...] = ("x", "y", "x", "y", "y", "x", "y", "x")
#: IQ phase (rad) of each axis
AXIS_PHASE_RAD = {"x": 0.0, "y": math.pi / 2}
PULSES_PER_BLOCK = len(XY8_AXES)


def padded_length(n_samples: int) -> int:
    """``n_samples`` rounded up to the granularity, at least the minimum waveform length."""
    return max(MIN_WAVEFORM_SAMPLES, -(-n_samples // GRANULARITY) * GRANULARITY)


def block_pulse_starts(ref: int, tau_samples: int, pulse_samples: int, n_blocks: int = 1) -> np.ndarray:
    """First sample of each DD pulse of ``n_blocks`` consecutive XY8 blocks from ``ref``.

    Pulse ``k`` is centred at ``ref + (k + 1/2) tau`` to within half a sample.
    """
    k = np.arange(PULSES_PER_BLOCK * n_blocks, dtype=np.int64)
    # centre = ref + (2k+1) tau / 2 ; start = round(centre - n/2) = floor((2 ref + (2k+1) tau - n + 1) / 2)
    return (2 * ref + (2 * k + 1) * tau_samples - pulse_samples + 1) // 2


def ideal_pulse_centres(ref: float, tau_samples: float, n_blocks: int = 1) -> np.ndarray:
    """The tau grid: ``ref + (k + 1/2) tau`` for every pulse of ``n_blocks`` blocks (samples)."""
    return ref + (np.arange(PULSES_PER_BLOCK * n_blocks) + 0.5) * tau_samples


def echo_point(ref: int, tau_samples: int) -> int:
    """End of the XY8 block that starts at ``ref``: ``ref + 8 tau`` (samples)."""
    return ref + PULSES_PER_BLOCK * tau_samples


def resume_point(echo: int, lead: int) -> tuple[int, int]:
    """Grid point where playback of a block ending at ``echo`` stops, and the next DD shift.

    Returns ``(end, shift)`` with ``end`` a multiple of 16 and ``echo = end + lead + shift``,
    ``0 <= shift < 16``.
    """
    end = ((echo - lead) // GRANULARITY) * GRANULARITY
    return int(end), int(echo - lead - end)


def pulses_in(duration_s: float, tau_s: float) -> int:
    """How many DD pulses an interpulse delay ``tau_s`` fits into ``duration_s``."""
    return int(math.floor(duration_s / tau_s + 1e-9))
