"""NV calibration record: shipped default, content hash, and every bad-input case naming its key."""

import dataclasses
import math
from importlib import resources

import pytest
import yaml

from qnodeos_hw.waveforms.calibration import (CalibrationError, NVCalibration, calibration_from_dict,
                                              load_calibration)
from qnodeos_hw.waveforms.shapes import SHAPES


@pytest.fixture(scope="module")
def default_dict():
    return load_calibration().to_dict()


def test_default_calibration_values():
    cal = load_calibration()
    assert isinstance(cal, NVCalibration)
    assert cal.sample_rate_hz == 2.4e9
    assert set(cal.pulses) == set(SHAPES)
    # ~1,300 DD pulses in 13 ms
    assert round(13e-3 / cal.dd_tau_s) == 1300
    # the shipped pi pulses correspond to one hardware Rabi rate (~2 pi x 30 MHz at full scale)
    rates = [cal.rabi_rate_per_amplitude(s) / (2 * math.pi) for s in SHAPES]
    # the simulated NV physics assumes 30 MHz at full scale (noise_model.yaml): keep them equal
    for r in rates:
        assert r == pytest.approx(30e6, rel=2e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cal.dd_tau_s = 1.0  # type: ignore[misc]


def test_round_trip_through_dict_and_yaml(tmp_path, default_dict):
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(default_dict))
    again = load_calibration(path)
    assert again == load_calibration()
    assert again.content_hash() == load_calibration().content_hash()


def test_content_hash_tracks_content(default_dict):
    base = load_calibration()
    changed = dataclasses.replace(base, detuning_hz=1.0)
    assert changed.content_hash() != base.content_hash()
    d = dict(default_dict)
    d["pulses"] = {k: dict(v) for k, v in d["pulses"].items()}
    d["pulses"]["square"]["pi_duration_s"] = 51e-9
    assert calibration_from_dict(d).content_hash() != base.content_hash()
    assert len(base.content_hash()) == 64


def _bad(default_dict, path, value, delete=False):
    d = yaml.safe_load(yaml.safe_dump(default_dict))
    node = d
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    if delete:
        del node[last]
    else:
        node[last] = value
    return d


@pytest.mark.parametrize("path,value,delete,key", [
    ("dd_tau_s", None, True, "dd_tau_s"),                                  # missing
    ("pulses.gaussian.pi_duration_s", None, True, "pulses.gaussian.pi_duration_s"),  # nested missing
    ("frobnicate_hz", 1.0, False, "frobnicate_hz"),                         # unknown
    ("pulses.hermite.width", 1.0, False, "pulses.hermite.width"),           # nested unknown
    ("pulses.triangle", {"pi_amplitude": 0.5, "pi_duration_s": 1e-7}, False, "pulses.triangle"),
    ("detuning_hz", float("nan"), False, "detuning_hz"),                    # NaN
    ("mw_frequency_hz", float("inf"), False, "mw_frequency_hz"),
    ("pulses.square.pi_amplitude", float("nan"), False, "pulses.square.pi_amplitude"),
    ("pulses.hermite.pi_amplitude", 0.95, False, "pulses.hermite.pi_amplitude"),  # above safe max
    ("safe_max_amplitude", 0.5, False, "pulses.hermite.pi_amplitude"),     # safe max below a pi amp
    ("safe_max_amplitude", 1.5, False, "safe_max_amplitude"),
    ("drag_coefficient_s", 3e-8, False, "drag_coefficient_s"),              # DRAG pushes |I+iQ| over
    ("gate_shape", "sinc", False, "gate_shape"),
    ("sample_rate_hz", 3.0e9, False, "sample_rate_hz"),
    ("ent_alpha", 0.7, False, "ent_alpha"),
    ("readout_duration_s", -1e-6, False, "readout_duration_s"),
    ("dd_tau_s", 100e-9, False, "dd_tau_s"),                                # shorter than a DD period
    ("iq_phase_offset_rad", "ninety", False, "iq_phase_offset_rad"),        # not a number
    ("init_duration_s", True, False, "init_duration_s"),
])
def test_bad_calibration_names_key(tmp_path, default_dict, path, value, delete, key):
    d = _bad(default_dict, path, value, delete)
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(d))
    with pytest.raises(CalibrationError) as err:
        load_calibration(file)
    assert err.value.key == key
    assert key in str(err.value)


def test_nan_written_as_yaml_nan(tmp_path):
    text = resources.files("qnodeos_hw.waveforms").joinpath("nv_default_calibration.yaml").read_text()
    file = tmp_path / "nan.yaml"
    file.write_text(text.replace("detuning_hz: 0.0", "detuning_hz: .nan"))
    with pytest.raises(CalibrationError) as err:
        load_calibration(file)
    assert err.value.key == "detuning_hz"


def test_replace_validates_too():
    with pytest.raises(CalibrationError) as err:
        dataclasses.replace(load_calibration(), dd_tau_s=float("nan"))
    assert err.value.key == "dd_tau_s"


def test_yaml11_numeric_strings_accepted(tmp_path, default_dict):
    d = yaml.safe_load(yaml.safe_dump(default_dict))
    d["dd_tau_s"] = "1e-5"  # YAML 1.1 reads 1e-5 (no dot) as a string
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(d))
    assert load_calibration(file).dd_tau_s == 1e-5


def test_unreadable_file_is_a_calibration_error(tmp_path):
    with pytest.raises(CalibrationError) as err:
        load_calibration(tmp_path / "nope.yaml")
    assert err.value.key == "<file>"
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(CalibrationError) as err:
        load_calibration(bad)
    assert err.value.key == "<root>"
