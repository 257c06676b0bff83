"""Calibration inputs, outputs and errors: versioned YAML, typed errors, the CLI."""

import dataclasses
import json

import numpy as np
import pytest
import yaml

from qnodeos_hw.cli import build_parser, main
from qnodeos_hw.experiments.calibration_station import StationFileError
from qnodeos_hw.experiments.calibrations import (CalibrationRunError, ScanSettings,
                                                 run_calibration, write_calibration_version)
from qnodeos_hw.experiments.fits import FitError, fit_rabi, fit_ramsey, ramsey_model
from qnodeos_hw.experiments.scans import (MAX_CAL_ENTRIES, ScanError, build_calibration_program,
                                          ramsey_program)
from qnodeos_hw.experiments.versioned_yaml import VersionedYamlStore
from qnodeos_hw.instruments.hdawg import InstrumentUnreachableError
from qnodeos_hw.simulators.physics import load_noise_models, nv_node
from qnodeos_hw.waveforms.calibration import CalibrationError, load_calibration
from qnodeos_hw.waveforms.table import build_table

DEFAULT = load_calibration()
SMALL = ScanSettings(rabi_shots=60, ramsey_shots=40, ramsey_points=12, dd_shots=40,
                     dd_points=4, ssro_shots=200)


# ------------------------------------------------------------------ versioned files
def test_store_never_overwrites_a_version_and_keeps_a_current_copy(tmp_path):
    store = VersionedYamlStore(tmp_path, "calibration")
    assert store.latest() is None
    a = store.write("a: 1\n")
    b = store.write("a: 2\n")
    assert (a.version, b.version) == (1, 2)
    assert (tmp_path / "calibration.v1.yaml").read_text() == "a: 1\n"
    assert store.current.read_text() == "a: 2\n"
    (tmp_path / "calibration.v7.yaml").write_text("foreign: true\n")  # someone else's v7
    c = store.write("a: 3\n")
    assert c.version == 8
    assert (tmp_path / "calibration.v7.yaml").read_text() == "foreign: true\n"
    assert store.versions() == [1, 2, 7, 8]
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_input_is_stored_once_before_the_new_version(tmp_path):
    new = dataclasses.replace(DEFAULT, detuning_hz=1234.5)
    v = write_calibration_version(tmp_path, DEFAULT, new, ["test"])
    assert v.version == 2  # v1 = the input
    assert load_calibration(tmp_path / "calibration.v1.yaml").content_hash() == DEFAULT.content_hash()
    newer = dataclasses.replace(new, detuning_hz=99.0)
    v = write_calibration_version(tmp_path, new, newer, ["test"])
    assert v.version == 3  # the input equals v2: not stored again
    assert load_calibration(tmp_path / "calibration.yaml").detuning_hz == 99.0
    assert load_calibration(tmp_path / "calibration.v2.yaml").detuning_hz == 1234.5


# --------------------------------------------------------------------------- errors
def test_unknown_station_file_is_a_typed_error_and_writes_nothing(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(StationFileError) as err:
        run_calibration("rabi", tmp_path / "out", station=missing, settings=SMALL)
    assert err.value.path == missing and "nope.yaml" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_station_without_an_nv_node_is_refused(tmp_path):
    st = tmp_path / "ion_only.yaml"
    st.write_text(yaml.safe_dump({"instruments": {"ion_bridge": {
        "type": "qnodeos_hw.instruments.ion_bridge.IonFPGABridge", "address": "sim://ion"}}}))
    with pytest.raises(StationFileError, match=r"adwin.*hdawg.*mw"):
        run_calibration("ssro", tmp_path / "out", station=st, settings=SMALL)


def test_real_station_goes_through_the_real_drivers(tmp_path):
    """A station without simlab:// addresses is loaded as real instruments: an HDAWG data
    server that is not there is the driver's own typed error, naming the instrument."""
    st = tmp_path / "lab.yaml"
    st.write_text(yaml.safe_dump({"instruments": {
        "hdawg": {"type": "qnodeos_hw.instruments.hdawg.ZIHDAWG", "address": "127.0.0.1:1",
                  "init": {"serial": "dev8123", "timeout_s": 0.5}},
        "adwin": {"type": "qnodeos_hw.instruments.adwin.ADwinController", "address": "1"},
        "mw": {"type": "qcodes.instrument_drivers.rohde_schwarz.RohdeSchwarzSGS100A",
               "address": "TCPIP0::127.0.0.1::inst0::INSTR"}}}, sort_keys=False))
    with pytest.raises(InstrumentUnreachableError) as err:
        run_calibration("rabi", tmp_path / "out", station=st, settings=SMALL)
    assert err.value.instrument == "cal_hdawg"


@pytest.mark.parametrize("drop", ["dd_tau_s", "pulses.hermite.pi_amplitude"])
def test_missing_key_in_the_input_calibration_names_the_key(tmp_path, drop):
    doc = DEFAULT.to_dict()
    node = doc
    *parents, leaf = drop.split(".")
    for p in parents:
        node = node[p]
    del node[leaf]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(CalibrationError) as err:
        run_calibration("rabi", tmp_path / "out", calibration=bad, settings=SMALL)
    assert err.value.key == drop
    assert not (tmp_path / "out").exists()


def test_a_broken_current_calibration_in_the_folder_is_reported(tmp_path):
    doc = DEFAULT.to_dict()
    doc["detuning_hz"] = "fast"
    (tmp_path / "calibration.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(CalibrationError) as err:
        run_calibration("ramsey", tmp_path, settings=SMALL)
    assert err.value.key == "detuning_hz"


def test_unknown_calibration_name(tmp_path):
    with pytest.raises(CalibrationRunError) as err:
        run_calibration("t1", tmp_path)
    assert err.value.item == "name"


def test_a_fitted_pi_amplitude_above_the_safe_maximum_is_refused_not_clamped(tmp_path):
    """A node driven 40 % weaker than calibrated needs a pi amplitude of 1.0 > 0.9 (the
    safe maximum): the calibration refuses it, naming the key; no version is written."""
    models = load_noise_models()
    weak = dataclasses.replace(models, nv=models.nv.with_overrides(
        {"rabi_hz_per_amplitude": 21.6e6}))
    with pytest.raises(CalibrationError) as err:
        run_calibration("rabi", tmp_path, physics=nv_node("nv", 3, weak),
                        settings=dataclasses.replace(SMALL, rabi_shots=100))
    assert err.value.key == "pulses.hermite.pi_amplitude"
    assert not list(tmp_path.glob("calibration*.yaml"))


# -------------------------------------------------------------- programs and fits
def test_calibration_program_refuses_what_the_awg_cannot_do():
    wave = (np.ones(32), np.zeros(32))
    with pytest.raises(ScanError) as err:
        build_calibration_program([wave], [(0, 1.0)] * (MAX_CAL_ENTRIES + 1), 2.4e9)
    assert err.value.item == "entries"
    with pytest.raises(ScanError) as err:
        build_calibration_program([wave], [(0, 1.5)], 2.4e9)
    assert err.value.item == "entries[0]"
    with pytest.raises(ScanError) as err:
        ramsey_program(build_table(DEFAULT), [0, 16, 20])
    assert err.value.item == "delays_samples[2]"


def test_ramsey_program_pads_to_the_granularity_and_compiles_for_the_hdawg():
    from qnodeos_hw.sequences.hdawg_program import compile_program
    prog = ramsey_program(build_table(DEFAULT), [0, 48, 96], virtual_detuning_hz=4e6)
    assert len(prog.entries) == 6 and all(n % 16 == 0 for n in prog.lengths)
    assert prog.lengths[2] - prog.lengths[0] == 48
    elf, info = compile_program(prog, "HDAWG8")  # any compiler message is an error
    assert elf and not info["messages"]


@pytest.mark.parametrize("detuning", [-2.3e6, 0.0, 0.7e6])
def test_ramsey_fit_measures_the_sign_of_the_detuning(detuning):
    rng = np.random.default_rng(4)
    t = np.arange(41) * 40e-9
    shots = 200
    p = [ramsey_model(t, 0.5, 0.45, detuning, 0.3, 0.0, q, 4e6) for q in (0, 1)]
    fit = fit_ramsey(t, rng.binomial(shots, p[0]), rng.binomial(shots, p[1]), shots, 4e6)
    assert abs(fit.params["detuning_hz"] - detuning) < 5 * fit.stderr["detuning_hz"] < 30e3


def test_rabi_fit_without_oscillation_is_an_error():
    a = np.linspace(0.04, 1, 25)
    with pytest.raises(FitError):
        fit_rabi(a, np.full(a.size, 0), 100)


# ------------------------------------------------------------------------------ CLI
def test_cli_has_the_calibration_options():
    args = build_parser().parse_args(["calibrate", "dd", "--shots", "7", "--calibration", "c.yaml",
                                      "--noise-model", "n.yaml", "--station", "s.yaml"])
    assert (args.action, args.shots, args.calibration, args.noise_model, args.station) == \
        ("dd", 7, "c.yaml", "n.yaml", "s.yaml")


def test_cli_reports_a_typed_error_with_exit_code_2(tmp_path, capsys):
    rc = main(["calibrate", "rabi", "--out", str(tmp_path), "--station", str(tmp_path / "x.yaml")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "StationFileError" in err and "x.yaml" in err


def test_cli_runs_ssro_and_prints_measured_and_true_values(tmp_path, capsys):
    nm = tmp_path / "nm.yaml"
    nm.write_text("nv: {readout_f0: 0.95}\n")
    rc = main(["calibrate", "ssro", "--out", str(tmp_path / "o"), "--shots", "1500",
               "--noise-model", str(nm), "--seed", "5"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "readout_f0" in out and "true 0.95" in out
    doc = json.loads((tmp_path / "o" / "ssro.json").read_text())
    assert doc["seed"] == 5 and doc["data"]["shots"] == 1500
    assert abs(doc["measured"]["readout_f0"]["value"] - 0.95) < 0.02
    assert load_noise_models(tmp_path / "o" / "noise_model.v1.yaml").nv.readout_f0 == \
        pytest.approx(doc["measured"]["readout_f0"]["value"], rel=1e-5)
