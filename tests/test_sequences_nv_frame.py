"""Rotating-frame phase continuity across inserted entries (spin simulation of the AWG playback).

The qubit is simulated in the MW source's (LO) frame with a detuning, sample by
sample through what the HDAWG plays: idle XY8 blocks, a table entry, more idle
blocks, another entry. With the DD the composite unitary equals the two gates
back to back (the frame is continuous at every gate); the same timing with the
DD pulses removed does not (negative control).
"""

import dataclasses
import math

import numpy as np
import pytest

from qnodeos_hw.sequences.dd import Segment, build_dd
from qnodeos_hw.waveforms.calibration import load_calibration
from qnodeos_hw.waveforms.table import build_table

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
#: 5 kHz: 0.4 turns per XY8 block (80 us), so free precession over whole blocks is not trivially 2 pi n
DETUNING_HZ = 5e3


@pytest.fixture(scope="module")
def setup():
    cal = dataclasses.replace(load_calibration(), detuning_hz=DETUNING_HZ)
    return cal, build_table(cal), build_dd(cal)


class Spin:
    """Propagators of played segments, H = omega/2 (I sx + Q sy) + delta/2 sz (LO frame)."""

    def __init__(self, cal, table, dd):
        self.omega = cal.rabi_rate_per_amplitude()
        self.delta = 2 * math.pi * cal.detuning_hz
        self.dt = 1.0 / cal.sample_rate_hz
        self.table, self.dd = table, dd
        self.cache = {}

    def _samples(self, i, q):
        ax = self.omega * i * self.dt / 2
        ay = self.omega * q * self.dt / 2
        az = np.full_like(ax, self.delta * self.dt / 2)
        w = np.sqrt(ax * ax + ay * ay + az * az)
        s = np.sin(w) / w
        steps = (np.cos(w)[:, None, None] * np.eye(2)
                 - 1j * s[:, None, None] * (ax[:, None, None] * SX + ay[:, None, None] * SY
                                            + az[:, None, None] * SZ))
        u = np.eye(2, dtype=complex)
        for st in steps:
            u = st @ u
        return u

    def segment(self, seg: Segment, dd_on=True):
        if seg.kind == "zero" or (seg.kind == "dd" and not dd_on):
            phi = self.delta * self.dt * seg.length / 2
            return np.diag([np.exp(-1j * phi), np.exp(1j * phi)])
        key = (seg.kind, seg.entry, seg.axis, seg.shift)
        if key not in self.cache:
            if seg.kind == "dd":
                i, q = self.dd.copies.copy(seg.axis, seg.shift)
            else:
                e = self.table[seg.entry]
                i, q = e.samples_i, e.samples_q
            self.cache[key] = self._samples(np.asarray(i), np.asarray(q))
        return self.cache[key]

    def run(self, segments, dd_on=True):
        u = np.eye(2, dtype=complex)
        for seg in segments:
            u = self.segment(seg, dd_on) @ u
        return u


def rot(axis, theta):
    s = {"x": SX, "y": SY, "z": SZ}[axis]
    return math.cos(theta / 2) * np.eye(2) - 1j * math.sin(theta / 2) * s


def fidelity(u, v):
    return abs(np.trace(u.conj().T @ v)) / 2


def sequence(dd, table, first, blocks, second, start_shift):
    """One idle block, entry ``first`` with its XY8 block, ``blocks`` idle blocks, then the
    operation of entry ``second`` (up to the end of its waveform)."""
    segs = list(dd.idle[start_shift].segments)
    a = dd.entry_playlist(table.by_name(first))
    segs += a.segments
    s = a.next_shift
    for _ in range(blocks):
        segs += dd.idle[s].segments
        s = dd.idle[s].next_shift
    segs.append(dd.entry_playlist(table.by_name(second)).segments[0])
    return segs


CASES = [("rot_x_n1_d1", "rot_x_n1_d1", rot("x", math.pi / 2), rot("x", math.pi / 2)),
         ("rot_x_n1_d1", "rot_y_n1_d1", rot("x", math.pi / 2), rot("y", math.pi / 2)),
         ("rot_z_n1_d2", "rot_x_n3_d1", rot("z", math.pi / 4), rot("x", 3 * math.pi / 2)),
         ("none", "rot_y_n1_d2", np.eye(2), rot("y", math.pi / 4)),
         ("hadamard", "rot_y_n1_d1", (SX + SZ) / math.sqrt(2), rot("y", math.pi / 2))]


@pytest.mark.parametrize("first,second,ua,ub", CASES)
def test_frame_is_continuous_across_inserted_entries(setup, first, second, ua, ub):
    cal, table, dd = setup
    spin = Spin(cal, table, dd)
    ideal = ub @ ua
    for blocks in (0, 1, 3):
        for start in (0, 7, 13):
            u = spin.run(sequence(dd, table, first, blocks, second, start))
            assert fidelity(ideal, u) > 0.999, (first, second, blocks, start)


def test_without_dd_the_detuning_breaks_the_frame(setup):
    """Negative control: same timing, DD pulses removed -> the detuning phase is not refocused."""
    cal, table, dd = setup
    spin = Spin(cal, table, dd)
    ideal = rot("x", math.pi / 2) @ rot("x", math.pi / 2)
    worst = min(fidelity(ideal, spin.run(sequence(dd, table, "rot_x_n1_d1", b, "rot_x_n1_d1", 0), dd_on=False))
                for b in (0, 1, 3))
    assert worst < 0.9
