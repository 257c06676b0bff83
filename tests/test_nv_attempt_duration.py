"""One entanglement-attempt duration on a simulated NV node: the noise model's
``heralding.attempt_duration_ns`` times the physics and the controller (Par_8); the
calibration's ``ent_attempt_duration_s`` (the AWG's attempt entry) must agree."""

from __future__ import annotations

import pytest

from qnodeos_hw.nodes import simulated_nv_network
from qnodeos_hw.simulators.nv_lab import AttemptDurationMismatchError, check_attempt_duration
from qnodeos_hw.simulators.physics import load_noise_models
from qnodeos_hw.waveforms.calibration import load_calibration


def test_shipped_calibration_and_noise_model_agree():
    h = load_noise_models().heralding
    assert check_attempt_duration(None, h) == h.attempt_duration_ns == 5000
    assert load_calibration().ent_attempt_duration_s == pytest.approx(5e-6)


def test_a_node_times_attempts_by_the_noise_model(tmp_path):
    """A noise model with another attempt duration than the calibration is refused by
    name; the shipped pair builds and its controllers' Par_8 is the noise model's."""
    noise = tmp_path / "noise.yaml"
    noise.write_text("heralding: {attempt_duration_ns: 3800}\n")
    with pytest.raises(AttemptDurationMismatchError, match="ent_attempt_duration_s"):
        simulated_nv_network(("a", "b"), noise_file=str(noise))
    nodes = simulated_nv_network(("a", "b"))
    try:
        for n in nodes.values():
            assert n.qdriver.controller.ent_attempt_duration() == 5000
    finally:
        for n in nodes.values():
            n.close()
