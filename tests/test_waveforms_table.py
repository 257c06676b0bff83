"""The NV waveform table: composition, padding, pulse areas and unitaries, lookups, persistence."""

import dataclasses
import math

import numpy as np
import pytest

from qnodeos_hw.waveforms.table import (CLIFFORDS, TableLookupError, TableSpecError, WaveformTable,
                                        build_table, canonical_angle, load_spec, spec_from_dict)
from qnodeos_hw.waveforms.xy8 import GRANULARITY, MIN_WAVEFORM_SAMPLES

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)


def rot(axis_vec, theta):
    n = np.asarray(axis_vec, dtype=float)
    n = n / np.linalg.norm(n)
    s = n[0] * SX + n[1] * SY + n[2] * SZ
    return math.cos(theta / 2) * np.eye(2) - 1j * math.sin(theta / 2) * s


AXIS_VEC = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1), "x+y": (1, 1, 0), "x-y": (1, -1, 0),
            "x+z": (1, 0, 1), "x-z": (1, 0, -1), "y+z": (0, 1, 1), "y-z": (0, 1, -1)}


def propagators(entries, omega, fs):
    """Unitary of each entry's samples (batched over entries, sample by sample), H = omega/2 (I sx + Q sy)."""
    n = max(e.op_samples for e in entries)
    i = np.zeros((len(entries), n))
    q = np.zeros_like(i)
    for k, e in enumerate(entries):
        i[k, :e.op_samples] = e.samples_i
        q[k, :e.op_samples] = e.samples_q
    u = np.broadcast_to(np.eye(2, dtype=complex), (len(entries), 2, 2)).copy()
    dt = 1.0 / fs
    for t in range(n):
        ax, ay = omega * i[:, t] * dt / 2, omega * q[:, t] * dt / 2
        w = np.hypot(ax, ay)
        c, s = np.cos(w), np.sinc(w / np.pi)  # sin(w)/w
        step = (c[:, None, None] * np.eye(2) - 1j * s[:, None, None]
                * (ax[:, None, None] * SX + ay[:, None, None] * SY))
        u = step @ u
    return u


def test_default_table_has_170_entries_in_documented_groups(table):
    assert len(table) == 170 == load_spec().count()
    kinds = [e.kind for e in table]
    assert kinds[:7] == ["none", "init", "measure", "ent_keep", "ent_measure", "cr_check", "charge_repump"]
    assert kinds.count("rot_x") == kinds.count("rot_y") == 63
    assert kinds.count("rot_z") == 31
    assert kinds.count("clifford") == 6
    assert [e.index for e in table] == list(range(170))
    assert len({e.name for e in table}) == 170


def test_lengths_multiple_of_16_and_at_least_32(table):
    for e in table:
        assert e.op_samples % GRANULARITY == 0 and e.op_samples >= MIN_WAVEFORM_SAMPLES, e.name
        assert e.length_samples % GRANULARITY == 0 and e.length_samples >= MIN_WAVEFORM_SAMPLES, e.name
        assert e.samples_q.shape == e.samples_i.shape
        # the entry holds the operation and its whole first XY8 block (8 tau) up to < 16 + lead samples
        assert e.length_samples > e.dd_start_sample + 8 * table.dd_tau_samples - table.lead_samples - 16
        assert e.length_samples >= e.op_samples
        assert 0 <= e.resume_shift < 16
        assert e.duration_ns == pytest.approx(e.length_samples / 2.4)


def test_rotation_grid_covers_netqasm_angles(table):
    for axis in ("x", "y"):
        for d in range(6):
            for n in range(1, 1 << (d + 1)):
                e = table.by_rotation(axis, n, d)
                assert e.angle_rad == pytest.approx((n * math.pi / (1 << d)) % (2 * math.pi))
    for n in range(1, 32):
        assert table.by_rotation("z", n, 4).axis == "z"
    assert table.by_rotation("x", -1, 1).name == "rot_x_n3_d1"  # -pi/2 == 3pi/2
    assert table.by_rotation("y", 4, 3).name == "rot_y_n1_d1"   # 4 pi/8 == pi/2
    assert table.by_rotation("x", 0, 0).name == "none"
    assert table.by_rotation("x+z", 1, 0).name == "hadamard"
    with pytest.raises(TableLookupError):
        table.by_rotation("x", 1, 6)
    with pytest.raises(TableLookupError):
        table.by_rotation("z", 1, 5)
    with pytest.raises(TableLookupError):
        table.by_name("rot_w")
    assert canonical_angle(12, 4) == (3, 2)
    assert canonical_angle(-2, 1) == (1, 0)


def test_rotation_pulse_area_equals_target_angle(table, cal):
    """Integrated area along the pulse axis (IQ phase) = target angle (mod 2pi) within 1e-3 rad."""
    omega = cal.rabi_rate_per_amplitude()
    dt = 1.0 / cal.sample_rate_hz
    checked = 0
    for e in table.rotations():
        c = (e.samples_i + 1j * e.samples_q) * np.exp(-1j * cal.iq_phase_offset_rad)
        if e.axis in ("x", "y"):
            phase = 0.0 if e.axis == "x" else math.pi / 2
            area = omega * dt * np.sum((c * np.exp(-1j * phase)).real)
            err = (area - e.angle_rad + math.pi) % (2 * math.pi) - math.pi
            assert abs(err) < 1e-3, (e.name, area, e.angle_rad)
            perp = omega * dt * np.sum((c * np.exp(-1j * phase)).imag)
            assert abs(perp) < 1e-3
            checked += 1
        elif e.axis == "z":
            area_y = omega * dt * np.sum(c.imag)
            area_x = omega * dt * np.sum(c.real)
            err = (area_y - e.angle_rad + math.pi) % (2 * math.pi) - math.pi
            assert abs(err) < 1e-3 and abs(area_x) < 1e-3, e.name
            checked += 1
    assert checked == 157


def test_every_rotation_entry_implements_its_unitary(table, cal):
    entries = table.rotations()
    us = propagators(entries, cal.rabi_rate_per_amplitude(), cal.sample_rate_hz)
    for e, u in zip(entries, us):
        ideal = rot(AXIS_VEC[e.axis], e.angle_rad)
        fid = abs(np.trace(ideal.conj().T @ u)) / 2
        assert fid > 1 - 1e-6, (e.name, fid)


def test_entanglement_entry_starts_with_alpha_rotation(table, cal):
    e = table.by_name("ent_keep")
    n = cal.pulse_samples()
    u = propagators([dataclasses.replace(e, samples_i=e.samples_i[:n + 8], samples_q=e.samples_q[:n + 8])],
                    cal.rabi_rate_per_amplitude(), cal.sample_rate_hz)[0]
    p1 = abs(u[1, 0]) ** 2
    assert p1 == pytest.approx(cal.ent_alpha, abs=1e-6)
    assert not np.any(e.samples_i[n:])  # MW off during the optical window
    assert e.mw and e.dd_start_sample > n


def test_laser_entries_play_no_microwaves(table, cal):
    for name, key in (("init", "init_duration_s"), ("measure", "readout_duration_s"),
                      ("cr_check", "cr_check_duration_s"), ("charge_repump", "charge_repump_duration_s")):
        e = table.by_name(name)
        assert not e.mw and not np.any(e.samples_i) and not np.any(e.samples_q)
        assert e.pulse_duration_s == pytest.approx(getattr(cal, key))
    assert not table.by_name("none").mw


def test_amplitudes_within_safe_max_and_iq_offset_rotates(cal):
    shifted = dataclasses.replace(cal, iq_phase_offset_rad=0.3)
    t0, t1 = build_table(cal), build_table(shifted)
    e0, e1 = t0.by_name("rot_x_n1_d1"), t1.by_name("rot_x_n1_d1")
    c0 = e0.samples_i + 1j * e0.samples_q
    c1 = e1.samples_i + 1j * e1.samples_q
    assert np.allclose(c1, c0 * np.exp(0.3j))
    for e in t0:
        assert np.max(np.hypot(e.samples_i, e.samples_q)) <= cal.safe_max_amplitude
    assert t0.calibration_hash != t1.calibration_hash


def test_drag_adds_perpendicular_quadrature_keeps_area(cal):
    drag = dataclasses.replace(cal, drag_coefficient_s=2e-9)
    t = build_table(drag)
    e = t.by_name("rot_x_n1_d0")
    omega = drag.rabi_rate_per_amplitude()
    assert np.max(np.abs(e.samples_q)) > 1e-3  # the derivative term
    assert omega * np.sum(e.samples_i) / drag.sample_rate_hz == pytest.approx(math.pi, abs=1e-3)
    assert abs(omega * np.sum(e.samples_q) / drag.sample_rate_hz) < 1e-3


@pytest.mark.parametrize("shape", ["gaussian", "square"])
def test_other_gate_shapes_keep_areas(cal, shape):
    c = dataclasses.replace(cal, gate_shape=shape)
    t = build_table(c)
    omega = c.rabi_rate_per_amplitude()
    for name, angle in (("rot_x_n1_d2", math.pi / 4), ("rot_x_n1_d0", math.pi), ("rot_x_n3_d1", -math.pi / 2)):
        e = t.by_name(name)
        assert omega * np.sum(e.samples_i) / c.sample_rate_hz == pytest.approx(angle, abs=1e-3)
        assert e.pulse_duration_s == pytest.approx(c.pi_duration_s(shape))


def test_save_load_round_trip(tmp_path, table):
    table.save(tmp_path)
    again = WaveformTable.load(tmp_path)
    assert len(again) == len(table) and again.calibration_hash == table.calibration_hash
    for a, b in zip(table, again):
        assert a.meta() == b.meta()
        assert np.array_equal(a.samples_i, b.samples_i) and np.array_equal(a.samples_q, b.samples_q)
    assert again.by_rotation("x", 1, 1).index == table.by_rotation("x", 1, 1).index
    assert (tmp_path / "table_index.json").exists() and (tmp_path / "table_samples.npz").exists()


def test_custom_spec_and_spec_errors(cal):
    spec = spec_from_dict({"name": "tiny", "groups": [
        {"kind": "special", "names": ["none", "init"]},
        {"kind": "rotation", "axes": ["x"], "max_depth": 1},
        {"kind": "clifford", "names": ["hadamard"]}]})
    t = build_table(cal, spec)
    assert [e.name for e in t] == ["none", "init", "rot_x_n1_d0", "rot_x_n1_d1", "rot_x_n3_d1", "hadamard"]
    for bad, key in (({"groups": [{"kind": "blob"}]}, "groups[0].kind"),
                     ({"groups": [{"kind": "rotation", "axes": ["w"]}]}, "groups[0].axes"),
                     ({"groups": [{"kind": "special", "names": ["teleport"]}]}, "groups[0].names"),
                     ({"groups": [{"kind": "special", "names": ["none"], "colour": 1}]}, "groups[0].colour"),
                     ({"groups": [{"kind": "special", "names": ["none"]},
                                  {"kind": "special", "names": ["none"]}]}, "groups[1]"),
                     ({"groups": []}, "groups")):
        with pytest.raises(TableSpecError) as err:
            spec_from_dict(bad)
        assert err.value.key == key
    assert set(CLIFFORDS) == {"pi_xpy", "pi_xmy", "hadamard", "pi_xmz", "pi_ypz", "pi_ymz"}


def test_compose_rotation_gives_the_unitary(table, cal):
    omega, fs = cal.rabi_rate_per_amplitude(), cal.sample_rate_hz
    for axis, n, d, count in (("x", 3, 2, 1), ("z", 1, 2, 1), ("z", 5, 5, 3), ("y", 0, 3, 1)):
        entries = table.compose_rotation(axis, n, d)
        assert len(entries) == count
        us = propagators(list(entries), omega, fs)
        u = np.eye(2)
        for step in us:  # time order: first entry acts first
            u = step @ u
        assert abs(np.trace(rot(AXIS_VEC[axis], n * math.pi / (1 << d)).conj().T @ u)) / 2 > 1 - 1e-6
    with pytest.raises(TableLookupError):
        table.compose_rotation("z", 1, 6)
    with pytest.raises(TableLookupError):
        table.compose_rotation("x", 1, 6)
