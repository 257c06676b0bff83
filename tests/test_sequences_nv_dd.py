"""XY8 DD at sample precision: shifted copies, idle blocks and entries land on the tau grid."""

import dataclasses

import numpy as np
import pytest

from qnodeos_hw.sequences.dd import (N_SHIFTS, build_dd, build_dd_copies, default_pulse_count,
                                     render_samples, xy8n_pulse_centres)
from qnodeos_hw.waveforms.calibration import CalibrationError
from qnodeos_hw.waveforms.table import build_table
from qnodeos_hw.waveforms.xy8 import GRANULARITY, MIN_WAVEFORM_SAMPLES, XY8_AXES


@pytest.fixture(scope="module")
def odd_cal(cal):
    """tau = 23,997 samples: 8 tau is not a multiple of 16, so idle DD cycles through the shifts."""
    return dataclasses.replace(cal, dd_tau_s=23997 / cal.sample_rate_hz)


def measured_pulses(i, q, min_gap=64):
    """Centres (samples, centroid of |I + iQ|) and axes of the pulses in a rendered waveform."""
    mag = np.hypot(i, q)
    nz = np.flatnonzero(mag > 1e-9)
    if nz.size == 0:
        return np.array([]), []
    breaks = np.flatnonzero(np.diff(nz) > min_gap)
    starts = np.concatenate([[nz[0]], nz[breaks + 1]])
    ends = np.concatenate([nz[breaks], [nz[-1]]]) + 1
    centres, axes = [], []
    for a, b in zip(starts, ends):
        k = np.arange(a, b) + 0.5  # sample k spans [k, k+1)
        centres.append(float(np.sum(k * mag[a:b]) / np.sum(mag[a:b])))
        axes.append("x" if np.sum(np.abs(i[a:b])) > np.sum(np.abs(q[a:b])) else "y")
    return np.array(centres), axes


def test_default_tau_gives_1300_pulses_in_13ms(cal):
    assert default_pulse_count(cal) == 1300
    assert cal.dd_tau_samples == 24000


def test_sixteen_shifted_copies_are_one_sample_apart(cal):
    copies = build_dd_copies(cal)
    assert copies.i.shape == (2, N_SHIFTS, copies.window_samples)
    assert copies.window_samples % GRANULARITY == 0
    assert copies.window_samples >= copies.pulse_samples + N_SHIFTS - 1
    for axis in ("x", "y"):
        base_i, base_q = copies.copy(axis, 0)
        for s in range(N_SHIFTS):
            ci, cq = copies.copy(axis, s)
            c, ax = measured_pulses(ci, cq)
            assert len(c) == 1 and ax == [axis]
            assert c[0] == pytest.approx(copies.centre(s), abs=1e-6)
            assert np.array_equal(np.roll(base_i, s), ci) and np.array_equal(np.roll(base_q, s), cq)


@pytest.mark.parametrize("which", ["default", "odd"])
def test_idle_dd_pulse_centres_on_tau_grid_for_every_start_shift(cal, odd_cal, which):
    c = cal if which == "default" else odd_cal
    dd = build_dd(c)
    tau = c.dd_tau_samples
    used_shifts = set()
    for s0 in range(N_SHIFTS):
        lists, planned = dd.schedule(s0, 3)
        i, q = render_samples(lists, None, dd.copies)
        centres, axes = measured_pulses(i, q)
        ideal = xy8n_pulse_centres(tau, 3, ref=dd.lead_samples + s0)
        assert len(centres) == 24
        assert np.max(np.abs(centres - ideal)) <= 1.0  # to one sample (here: half a sample)
        assert np.max(np.abs(planned - ideal)) <= 0.5
        assert axes == list(XY8_AXES) * 3
        for pl in lists:
            assert sum(seg.length for seg in pl.segments) == pl.length
            for seg in pl.segments:
                assert seg.length % GRANULARITY == 0 and seg.length >= MIN_WAVEFORM_SAMPLES
                if seg.kind == "dd":
                    used_shifts.add(seg.shift)
    if which == "odd":
        assert used_shifts == set(range(N_SHIFTS))  # all 16 copies are needed and used


@pytest.mark.parametrize("which", ["default", "odd"])
def test_dd_resumes_on_the_grid_anchored_at_each_entry(cal, odd_cal, which):
    c = cal if which == "default" else odd_cal
    table = build_table(c)
    dd = build_dd(c)
    tau = c.dd_tau_samples
    shifts_after = set()
    for name in ("none", "init", "measure", "ent_keep", "ent_measure", "cr_check", "rot_x_n1_d1",
                 "rot_y_n3_d5", "rot_z_n1_d1", "hadamard", "pi_xpy"):
        e = table.by_name(name)
        pl = dd.entry_playlist(e)
        assert pl.length == e.length_samples and pl.next_shift == e.resume_shift
        shifts_after.add(pl.next_shift)
        lists, _ = dd.schedule(pl.next_shift, 2)
        i, q = render_samples([pl] + lists, table, dd.copies)
        # drop the operation itself, keep the DD pulses
        i[:e.op_samples] = 0
        q[:e.op_samples] = 0
        centres, axes = measured_pulses(i, q)
        ideal = xy8n_pulse_centres(tau, 3, ref=e.dd_start_sample)
        assert len(centres) == 24, name
        assert np.max(np.abs(centres - ideal)) <= 1.0, name
        assert axes == list(XY8_AXES) * 3
    assert len(shifts_after) > 1  # entries leave DD in different shifts


def test_gate_lands_at_most_15_samples_before_the_echo_point(cal):
    table = build_table(cal)
    dd = build_dd(cal)
    e = table.by_name("rot_x_n1_d1")
    for s in range(N_SHIFTS):
        idle = dd.idle[s]
        echo = dd.lead_samples + s + 8 * cal.dd_tau_samples  # block reference + 8 tau
        # the entry starts where the idle block ends; its gate centre is at the anchor
        gate_centre = idle.length + e.dd_start_sample
        # (lengths of idle blocks are measured from their start, the reference is lead + s after it)
        assert 0 <= echo - gate_centre <= 15


def test_too_short_tau_is_refused(cal):
    with pytest.raises(CalibrationError) as err:
        dataclasses.replace(cal, dd_tau_s=300 / cal.sample_rate_hz)
    assert err.value.key == "dd_tau_s"
