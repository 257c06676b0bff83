"""Noise-model records: packaged defaults, layering, per-node overrides, typed errors."""

import dataclasses

import pytest

from qnodeos_hw.simulators.physics import (NoiseModelKeyError, NoiseModelValueError, NVNoiseModel,
                                           load_noise_models)


def test_packaged_defaults_carry_the_paper_values():
    m = load_noise_models()
    assert m.nv.t_coh_s == pytest.approx(0.013)
    assert m.heralding.fidelity == pytest.approx(0.72)
    assert m.heralding.herald_bell_indices == (1, 2)
    assert m.ion.bright_state == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.nv.t_coh_s = 1.0


def test_override_unknown_key_is_named():
    m = load_noise_models()
    with pytest.raises(NoiseModelKeyError) as err:
        m.nv.with_overrides({"t_coherence": 0.01})
    assert err.value.key == "t_coherence" and "unknown" in str(err.value)


def test_missing_key_is_named():
    data = dataclasses.asdict(load_noise_models().nv)
    del data["readout_f1"]
    with pytest.raises(NoiseModelKeyError) as err:
        NVNoiseModel.from_mapping(data)
    assert err.value.key == "readout_f1" and "missing" in str(err.value)


@pytest.mark.parametrize("key,value", [("readout_f0", 1.2), ("t_coh_s", -1.0), ("t1_s", "long"),
                                       ("cr_scrambles_electron", 1)])
def test_out_of_range_value_is_named(key, value):
    with pytest.raises(NoiseModelValueError) as err:
        load_noise_models().nv.with_overrides({key: value})
    assert err.value.key == key


def test_unreachable_single_photon_fidelity_is_refused():
    with pytest.raises(NoiseModelValueError) as err:
        load_noise_models().heralding.with_overrides({"fidelity": 0.95, "bright_population": 0.1})
    assert err.value.key == "fidelity"


def test_user_file_layers_and_overrides_per_node(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text("nv: {t2star_s: 4.0e-6}\nnodes:\n  bob: {nv: {t_coh_s: 0.011}}\n")
    m = load_noise_models(f)
    assert m.nv.t2star_s == pytest.approx(4e-6)
    assert m.nv_for("alice").t_coh_s == pytest.approx(0.013)
    bob = m.nv_for("bob")
    assert bob.t_coh_s == pytest.approx(0.011) and bob.t2star_s == pytest.approx(4e-6)


@pytest.mark.parametrize("text,key", [("nvv: {}\n", "nvv"),
                                      ("nodes: {bob: {nv: {bogus: 1}}}\n", "bogus"),
                                      ("nodes: {bob: {laser: {}}}\n", "laser")])
def test_user_file_unknown_keys_are_named(tmp_path, text, key):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(NoiseModelKeyError) as err:
        load_noise_models(f)
    assert err.value.key == key
