"""XY8-N dynamical decoupling on the HDAWG, at sample precision.

The DD pi pulse (``dd_shape``, calibrated pi amplitude/duration, DRAG if set) is
uploaded 16 times per axis (x, y), shifted by one sample each
(:class:`DDCopies`): copy ``s`` is a window of ``window_samples`` (multiple of 16)
whose pulse starts at sample ``s``. A DD pulse due at any sample ``p`` is then
played as copy ``p mod 16`` in the window starting at ``16 * floor(p / 16)``, the
gaps between pulses are ``playZero`` (no waveform memory). So the pulse centres
land on the tau grid ``ref + (k + 1/2) tau`` to within half a sample for any
``tau`` (samples) and any block reference ``ref``.

Playback is a chain of :class:`Playlist` s, each a list of :class:`Segment` s whose
lengths are multiples of 16 (>= 32): an idle XY8 block (``idle[shift]``, reference
``lead + shift`` after its start) or a table entry (its operation, then its first
XY8 block with reference ``entry.dd_start_sample``). Each ends at the grid point
before its echo point minus ``lead`` and hands the next one its ``next_shift``
(rule in :mod:`qnodeos_hw.waveforms.xy8`): DD resumes after any entry exactly on
the grid anchored at that entry's operation.

With the default ``dd_tau_s`` = 10 us, 1,300 DD pulses fill 13 ms (the paper's
T_coh, :func:`pulses_in`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..waveforms.calibration import NVCalibration
from ..waveforms.shapes import iq_pulse
from ..waveforms.table import TableEntry, WaveformTable
from ..waveforms.xy8 import (AXIS_PHASE_RAD, GRANULARITY, MIN_WAVEFORM_SAMPLES, PULSES_PER_BLOCK, XY8_AXES,
                             block_pulse_starts, echo_point, ideal_pulse_centres, padded_length, pulses_in,
                             resume_point)

#: the paper's NV coherence time under DD (s): 13(2) ms
T_COH_S = 13e-3
#: DD copies per axis (one per sample of the 16-sample granularity)
N_SHIFTS = GRANULARITY
#: axis order of :class:`DDCopies` arrays
DD_AXES = ("x", "y")


class DDTimingError(ValueError):
    """A DD block cannot be laid out (e.g. a gap shorter than the minimum waveform)."""


@dataclass(frozen=True, eq=False)
class DDCopies:
    """The 16 one-sample-shifted DD pi-pulse copies per axis: ``i``/``q`` of shape (2, 16, window)."""

    pulse_samples: int
    window_samples: int
    i: np.ndarray
    q: np.ndarray

    def copy(self, axis: str, shift: int) -> tuple[np.ndarray, np.ndarray]:
        """I and Q samples of the copy for ``axis`` ('x' or 'y') whose pulse starts at sample ``shift``."""
        a = DD_AXES.index(axis)
        return self.i[a, shift], self.q[a, shift]

    def centre(self, shift: int) -> float:
        """Pulse centre of copy ``shift`` within its window (samples)."""
        return shift + self.pulse_samples / 2


def build_dd_copies(cal: NVCalibration) -> DDCopies:
    """Build the 2 x 16 shifted DD pulse copies for ``cal``."""
    n = cal.pulse_samples(cal.dd_shape)
    w = padded_length(n + N_SHIFTS - 1)
    out_i = np.zeros((len(DD_AXES), N_SHIFTS, w))
    out_q = np.zeros_like(out_i)
    for a, axis in enumerate(DD_AXES):
        pi, pq = iq_pulse(cal.dd_shape, n, cal.pi_amplitude(cal.dd_shape),
                          AXIS_PHASE_RAD[axis] + cal.iq_phase_offset_rad, cal.sample_rate_hz,
                          drag_coefficient_s=cal.drag_coefficient_s, hermite_a=cal.hermite_a)
        for s in range(N_SHIFTS):
            out_i[a, s, s:s + n] = pi
            out_q[a, s, s:s + n] = pq
    out_i.setflags(write=False)
    out_q.setflags(write=False)
    return DDCopies(n, w, out_i, out_q)


@dataclass(frozen=True)
class Segment:
    """One AWG play: ``kind`` 'entry' (table entry ``entry``'s operation), 'dd' (the copy
    ``axis``/``shift``) or 'zero' (playZero). ``length`` in samples (multiple of 16, >= 32)."""

    kind: str
    length: int
    entry: int | None = None
    axis: str | None = None
    shift: int | None = None


@dataclass(frozen=True)
class Playlist:
    """Consecutive segments from a 16-aligned start: total ``length`` (samples), the DD
    shift the next playlist starts with, and the DD pulse centres (samples from the start)."""

    segments: tuple[Segment, ...]
    length: int
    next_shift: int
    pulse_centres: tuple[float, ...]
    pulse_axes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class DDSequence:
    """XY8 DD of one calibration: the shifted copies and the 16 idle blocks (one per shift)."""

    tau_samples: int
    lead_samples: int
    copies: DDCopies
    idle: tuple[Playlist, ...]
    sample_rate_hz: float

    @property
    def block_samples(self) -> int:
        """One XY8 block: 8 tau (samples)."""
        return PULSES_PER_BLOCK * self.tau_samples

    def entry_playlist(self, entry: TableEntry) -> Playlist:
        """The entry's operation then its first XY8 block, ending where idle DD resumes
        (a carbon gate: its DD train, :meth:`train_playlist`)."""
        if entry.carbon is not None:
            return self.train_playlist(entry)
        op = Segment("entry", entry.op_samples, entry=entry.index)
        pl = render_block(entry.dd_start_sample, self, start=entry.op_samples, head=(op,))
        if pl.length != entry.length_samples or pl.next_shift != entry.resume_shift:
            raise DDTimingError(f"entry {entry.name!r}: table says {entry.length_samples} samples / shift "
                                f"{entry.resume_shift}, DD layout gives {pl.length} / {pl.next_shift} "
                                "(table built with another calibration?)")
        return pl

    def train_playlist(self, entry: TableEntry) -> Playlist:
        """A carbon gate: ``train_pulses`` x-axis DD pi pulses centred at
        ``lead + (2j+1) tau`` (``tau`` = ``train_tau_samples``; the reference ``lead`` is the
        previous block's echo point), played from the shifted DD copies with playZero gaps,
        ending where idle DD resumes after the train's echo point ``lead + 2 n tau``."""
        tau, n = entry.train_tau_samples, entry.train_pulses
        if tau is None or n is None:
            raise DDTimingError(f"entry {entry.name!r} is not a DD train")
        copies, ref = self.copies, self.lead_samples
        segs: list[Segment] = []
        cur = 0
        centres, axes = [], []
        for j in range(n):
            p = (2 * ref + (2 * j + 1) * 2 * tau - copies.pulse_samples + 1) // 2
            w0 = (p // GRANULARITY) * GRANULARITY
            _gap(segs, w0 - cur, f"before train pulse {j} of {entry.name}")
            segs.append(Segment("dd", copies.window_samples, axis="x", shift=p - w0))
            centres.append(p + copies.pulse_samples / 2)
            axes.append("x")
            cur = w0 + copies.window_samples
        end, shift = resume_point(ref + 2 * n * tau, self.lead_samples)
        _gap(segs, end - cur, f"after the last train pulse of {entry.name}")
        if end != entry.length_samples or shift != entry.resume_shift:
            raise DDTimingError(f"entry {entry.name!r}: table says {entry.length_samples} / "
                                f"{entry.resume_shift}, train layout gives {end} / {shift}")
        return Playlist(tuple(segs), end, shift, tuple(centres), tuple(axes))

    def schedule(self, start_shift: int, n_blocks: int) -> tuple[list[Playlist], np.ndarray]:
        """``n_blocks`` idle blocks from DD state ``start_shift``: the playlists and the absolute
        pulse centres (samples from the first block's start)."""
        lists, centres, t, s = [], [], 0, start_shift
        for _ in range(n_blocks):
            pl = self.idle[s]
            lists.append(pl)
            centres.extend(t + c for c in pl.pulse_centres)
            t += pl.length
            s = pl.next_shift
        return lists, np.array(centres)


def render_block(ref: int, dd: "DDSequence | _Geometry", start: int = 0,
                 head: tuple[Segment, ...] = ()) -> Playlist:
    """Lay out one XY8 block with reference ``ref`` after ``head`` (which ends at ``start``)."""
    tau, lead, copies = dd.tau_samples, dd.lead_samples, dd.copies
    segs = list(head)
    cur = start
    centres, axes = [], []
    for p, axis in zip(block_pulse_starts(ref, tau, copies.pulse_samples), XY8_AXES):
        p = int(p)
        w0 = (p // GRANULARITY) * GRANULARITY
        _gap(segs, w0 - cur, f"before DD pulse at sample {p}")
        segs.append(Segment("dd", copies.window_samples, axis=axis, shift=p - w0))
        centres.append(p + copies.pulse_samples / 2)
        axes.append(axis)
        cur = w0 + copies.window_samples
    end, shift = resume_point(echo_point(ref, tau), lead)
    _gap(segs, end - cur, "after the last DD pulse of the block")
    return Playlist(tuple(segs), end, shift, tuple(centres), tuple(axes))


def _gap(segs: list[Segment], n: int, where: str) -> None:
    if n == 0:
        return
    if n < MIN_WAVEFORM_SAMPLES:
        raise DDTimingError(f"zero gap of {n} samples {where}: gaps must be 0 or >= {MIN_WAVEFORM_SAMPLES}")
    segs.append(Segment("zero", n))


@dataclass(frozen=True)
class _Geometry:
    tau_samples: int
    lead_samples: int
    copies: DDCopies


def build_dd(cal: NVCalibration) -> DDSequence:
    """The XY8 DD sequence for ``cal``: 2 x 16 shifted copies and the 16 idle blocks."""
    copies = build_dd_copies(cal)
    lead = cal.pulse_samples(cal.gate_shape) // 2
    geo = _Geometry(cal.dd_tau_samples, lead, copies)
    idle = tuple(render_block(lead + s, geo) for s in range(N_SHIFTS))
    return DDSequence(cal.dd_tau_samples, lead, copies, idle, cal.sample_rate_hz)


def xy8n_pulse_centres(tau_samples: float, n_blocks: int, ref: float = 0.0) -> np.ndarray:
    """Ideal XY8-N pulse centres ``ref + (k + 1/2) tau`` (samples), k < 8 N."""
    return ideal_pulse_centres(ref, tau_samples, n_blocks)


def default_pulse_count(cal: NVCalibration, duration_s: float = T_COH_S) -> int:
    """How many DD pulses ``cal.dd_tau_s`` fits into ``duration_s`` (default the paper's 13 ms)."""
    return pulses_in(duration_s, cal.dd_tau_s)


def render_samples(playlists: list[Playlist], table: WaveformTable | None,
                   copies: DDCopies) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated I/Q samples of ``playlists`` played back to back (for plots and checks)."""
    total = sum(p.length for p in playlists)
    out_i = np.zeros(total)
    out_q = np.zeros(total)
    t = 0
    for pl in playlists:
        for seg in pl.segments:
            if seg.kind == "dd":
                ci, cq = copies.copy(seg.axis, seg.shift)
                out_i[t:t + seg.length] = ci
                out_q[t:t + seg.length] = cq
            elif seg.kind == "entry":
                if table is None:
                    raise ValueError("rendering an entry needs the table")
                e = table[seg.entry]
                out_i[t:t + seg.length] = e.samples_i
                out_q[t:t + seg.length] = e.samples_q
            t += seg.length
    return out_i, out_q
