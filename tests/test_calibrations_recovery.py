"""Calibrations through the simulated NV station recover the physics model's true values.

Each run goes through the drivers (ADwin controller mailbox, HDAWG uploads) onto the
simulated backends and the NV physics. The physics is set to values that differ from
the shipped calibration and the packaged noise model, so nothing can pass by echoing
a default. Tolerances are the brief's (pi amplitude 2 %, T_coh 10 %, F0/F1 2 %) and
are several standard errors wide at the default shot counts (sigma: pi amplitude
0.4 %, T_coh ~3 %, F0 0.5 %, F1 0.15 %); each test also checks the reported standard
error is consistent with the deviation, so the error bars are honest too.
"""

import dataclasses
import json
import math

import pytest
import yaml

from qnodeos_hw.experiments.calibrations import run_calibration
from qnodeos_hw.simulators.physics import load_noise_models, nv_node
from qnodeos_hw.waveforms.calibration import load_calibration

MODELS = load_noise_models()
DEFAULT = load_calibration()


def physics(seed, **nv):
    return nv_node("nv", seed, dataclasses.replace(MODELS, nv=MODELS.nv.with_overrides(nv)))


def is_png(path):
    with open(path, "rb") as fh:
        head = fh.read(8)
    return head == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """rabi, then ramsey, in one output folder, on a node whose Rabi frequency per unit
    amplitude is 5 % lower than calibrated and whose MW is detuned by +0.5 MHz (small
    against the 3.3 MHz mean Rabi frequency of the 150 ns pi pulse: it biases the Rabi
    fit by only -0.1 %; at 2 MHz the bias would be -1.8 %)."""
    out = tmp_path_factory.mktemp("chain")
    rabi = run_calibration("rabi", out, physics=physics(11, rabi_hz_per_amplitude=28.5e6,
                                                        detuning_hz=0.5e6), seed=11)
    ramsey = run_calibration("ramsey", out, physics=physics(12, rabi_hz_per_amplitude=28.5e6,
                                                            detuning_hz=0.5e6), seed=12)
    return out, rabi, ramsey


def test_rabi_recovers_the_true_pi_amplitude_within_2_percent(chain):
    _, rabi, _ = chain
    m = rabi.measured["pi_amplitude"]
    true = DEFAULT.pi_amplitude() * 30e6 / 28.5e6  # the shipped calibration is exactly 30 MHz
    assert m.true == pytest.approx(true, rel=1e-6)
    assert abs(m.value / true - 1) < 0.02
    assert abs(m.value - true) < 4 * m.stderr
    assert m.stderr < 0.006 * true


def test_ramsey_recovers_the_detuning_with_its_sign(chain):
    """Free evolution is an exact z rotation inside the played waveform, so the fringe is
    an exact sinusoid whatever the pulse errors (they change offset and contrast only),
    so shot noise alone limits the fit: sigma ~3.3 kHz for 2 x 41 x 200 shots over
    1.6 us. Tolerance 20 kHz: 6 sigma, and 1/30 of the 1/T_scan = 625 kHz resolution."""
    _, _, ramsey = chain
    m = ramsey.measured["detuning_hz"]
    assert m.true == 0.5e6
    assert abs(m.value - 0.5e6) < 20e3
    assert abs(m.value - 0.5e6) < 5 * m.stderr
    assert m.stderr < 6e3


@pytest.mark.parametrize("detuning_hz", [-1.3e6])
def test_ramsey_negative_detuning(tmp_path, detuning_hz):
    res = run_calibration("ramsey", tmp_path, physics=physics(21, detuning_hz=detuning_hz),
                          seed=21)
    m = res.measured["detuning_hz"]
    assert abs(m.value - detuning_hz) < 20e3
    assert abs(m.value - detuning_hz) < 5 * m.stderr


def test_chain_keeps_every_version_and_the_current_copy_loads(chain):
    out, rabi, ramsey = chain
    assert (rabi.version, ramsey.version) == (2, 3)
    v1, v2, v3 = (load_calibration(out / f"calibration.v{k}.yaml") for k in (1, 2, 3))
    current = load_calibration(out / "calibration.yaml")
    # v1: the input (shipped default) kept as it was
    assert v1.content_hash() == DEFAULT.content_hash()
    # v2: rabi changed only the gate shape's pi amplitude
    shape = DEFAULT.gate_shape
    assert v2.pi_amplitude(shape) == pytest.approx(rabi.measured["pi_amplitude"].value, abs=1e-6)
    assert v2.pi_amplitude(shape) != v1.pi_amplitude(shape)
    assert dataclasses.replace(v2, pulses=v1.pulses).content_hash() == v1.content_hash()
    # v3: ramsey started from v2 (the current copy) and changed only the detuning
    assert v3.pi_amplitude(shape) == v2.pi_amplitude(shape)
    assert v3.detuning_hz == pytest.approx(ramsey.measured["detuning_hz"].value, abs=0.1)
    assert dataclasses.replace(v3, detuning_hz=v2.detuning_hz).content_hash() == v2.content_hash()
    assert current.content_hash() == v3.content_hash()
    assert "calibrate ramsey" in (out / "calibration.v3.yaml").read_text().splitlines()[1]


def test_rabi_and_ramsey_write_png_and_json(chain):
    out, rabi, ramsey = chain
    for res, name in ((rabi, "rabi"), (ramsey, "ramsey")):
        png = out / f"{name}.png"
        assert res.files["png"] == str(png)
        assert is_png(png) and png.stat().st_size > 10_000
        doc = json.loads((out / f"{name}.json").read_text())
        assert doc["simulated"] is True and doc["version"] == res.version
        key = next(iter(res.measured))
        assert doc["measured"][key]["value"] == pytest.approx(res.measured[key].value)
        assert doc["measured"][key]["true"] == pytest.approx(res.measured[key].true)
    doc = json.loads((out / "rabi.json").read_text())
    assert len(doc["data"]["ones"]) == len(doc["data"]["table_amplitude"])


@pytest.fixture(scope="module")
def node_params(tmp_path_factory):
    """dd then ssro in one folder, on a node with T_coh = 10 ms (prior: the paper's 13 ms)
    and readout fidelities F0 = 0.90, F1 = 0.98."""
    out = tmp_path_factory.mktemp("node")
    kw = dict(t_coh_s=0.010, readout_f0=0.90, readout_f1=0.98)
    dd = run_calibration("dd", out, physics=physics(31, **kw), seed=31)
    ssro = run_calibration("ssro", out, physics=physics(32, **kw), seed=32)
    return out, dd, ssro


def test_dd_recovers_t_coh_within_10_percent(node_params):
    _, dd, _ = node_params
    m = dd.measured["t_coh_s"]
    assert m.true == 0.010
    assert abs(m.value / 0.010 - 1) < 0.10
    assert abs(m.value - 0.010) < 4 * m.stderr


def test_ssro_recovers_readout_fidelities_within_2_percent(node_params):
    _, _, ssro = node_params
    for key, true in (("readout_f0", 0.90), ("readout_f1", 0.98)):
        m = ssro.measured[key]
        assert m.true == true
        assert abs(m.value / true - 1) < 0.02
        assert abs(m.value - true) < 4 * m.stderr
    init = ssro.measured["init_fidelity"]  # by-product: P(0 | INIT) unfolded with F0, F1
    assert abs(init.value - MODELS.nv.init_fidelity) < 4 * init.stderr


def test_dd_and_ssro_write_a_versioned_noise_model_overlay(node_params):
    out, dd, ssro = node_params
    assert (dd.version, ssro.version) == (1, 2)
    v1 = yaml.safe_load((out / "noise_model.v1.yaml").read_text())
    assert set(v1["nv"]) == {"t_coh_s"}
    models = load_noise_models(out / "noise_model.yaml")  # loads as a noise-model overlay
    assert models.nv.t_coh_s == pytest.approx(dd.measured["t_coh_s"].value, rel=1e-5)
    assert models.nv.readout_f0 == pytest.approx(ssro.measured["readout_f0"].value, rel=1e-5)
    assert models.nv.readout_f1 == pytest.approx(ssro.measured["readout_f1"].value, rel=1e-5)
    assert models.nv.rabi_hz_per_amplitude == MODELS.nv.rabi_hz_per_amplitude  # untouched
    assert not list(out.glob("calibration*.yaml"))  # nothing in the NV calibration changed
    for name in ("dd", "ssro"):
        assert is_png(out / f"{name}.png") and (out / f"{name}.png").stat().st_size > 10_000
        assert json.loads((out / f"{name}.json").read_text())["calibration"] == name


def test_dd_scan_range_follows_the_stored_t_coh(node_params):
    """A second DD run in the same folder scans around the T_coh measured before."""
    out, dd, _ = node_params
    doc = json.loads((out / "dd.json").read_text())
    assert doc["data"]["prior_t_coh_s"] == 0.013  # first run: the paper's value
    from qnodeos_hw.experiments.calibrations import ScanSettings, _dd_prior
    assert _dd_prior(out, ScanSettings()) == pytest.approx(dd.measured["t_coh_s"].value, rel=1e-5)
    assert math.isfinite(doc["virtual_s"]) and doc["virtual_s"] > 10  # waits ran on the node clock
