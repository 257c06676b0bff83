"""SSRO as a physicist reads it: photon-count histograms of the bright (|0>) and dark
(|1>) states with the threshold, from the controller's own counts, in the dataset."""

import json
import math

import numpy as np
from qcodes.dataset import load_by_id
from qcodes.dataset.sqlite.database import connect

from qnodeos_hw.experiments.calibrations import ScanSettings, run_calibration
from qnodeos_hw.simulators.physics import load_noise_models

SETTINGS = ScanSettings(rabi_shots=60, ramsey_shots=40, ramsey_points=12, dd_shots=40,
                        dd_points=4, ssro_shots=1500)


def test_ssro_histograms_are_poisson_at_the_model_means_and_stored(tmp_path):
    res = run_calibration("ssro", tmp_path / "out", settings=SETTINGS, seed=3)
    doc = json.loads((tmp_path / "out" / "ssro.json").read_text())
    ph = doc["fit"]["photon_histograms"] if "fit" in doc else None
    if ph is None:  # the JSON layout keeps the fit under its own key
        ph = next(v["photon_histograms"] for v in doc.values()
                  if isinstance(v, dict) and "photon_histograms" in v)
    bright, dark = np.array(ph["bright_shots"]), np.array(ph["dark_shots"])
    assert ph["threshold_counts"] == 1
    nv = load_noise_models().nv
    # every heralded second readout is in exactly one bin
    assert 1000 < bright.sum() <= 1500 and 1000 < dark.sum() <= 1500
    n = np.arange(len(bright))
    mean_b = float((n * bright).sum() / bright.sum())
    sig = math.sqrt(nv.readout_counts_bright / bright.sum())
    # the bright mean sits near the model's Poisson mean (heralded |0> is |0> up to the
    # readout's own projection errors: a few per cent dark)
    assert abs(mean_b - nv.readout_counts_bright * nv.init_fidelity) < 0.15 + 4 * sig
    assert dark[0] / dark.sum() > 0.97 and bright[0] / bright.sum() < 0.15
    # the fraction of bright shots at or above the threshold is F0, as the fit says
    f0 = bright[1:].sum() / bright.sum()
    assert abs(f0 - doc["measured"]["readout_f0"]["value"]) < 0.02
    # the dataset carries the same counts
    conn = connect(str(tmp_path / "out" / "calibrations.db"))
    ds = load_by_id(int(res.files["run_id"]), conn=conn)
    stored = json.loads(ds.get_metadata("fit"))["photon_histograms"]
    assert stored["bright_shots"] == ph["bright_shots"] and stored["dark_shots"] == ph["dark_shots"]
    assert (tmp_path / "out" / "ssro.png").stat().st_size > 10_000
