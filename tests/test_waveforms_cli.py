"""`qnodeos-hw waveforms build --platform nv`: files written, report figures, bad calibration exit."""

import json

import numpy as np
import yaml

from qnodeos_hw.cli import main
from qnodeos_hw.waveforms.calibration import load_calibration
from qnodeos_hw.waveforms.table import WaveformTable


def test_cli_builds_everything(tmp_path, capsys):
    out = tmp_path / "nv"
    assert main(["waveforms", "build", "--platform", "nv", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["entries"] == 170
    assert report["calibration_hash"] == load_calibration().content_hash()
    assert 0 < report["memory_fraction"] < 0.01
    assert report["memory"]["samples_per_channel"] == report["samples"]["waveform_samples_per_channel"]
    assert report["build_s"] > 0 and set(report["compile_s"]) == {"HDAWG8", "HDAWG4"}
    assert report["compiler_messages"] == {"HDAWG8": "", "HDAWG4": ""}
    assert report["dd_pulses_in_13ms"] == 1300
    table = WaveformTable.load(out)
    assert len(table) == 170 and table.calibration_hash == report["calibration_hash"]
    ct = json.loads((out / "command_table.json").read_text())
    assert len(ct["table"]) == 170 + 32
    seqc = (out / "program.seqc").read_text()
    assert "getDIO()" in seqc and "executeTableEntry(cw);" in seqc
    assert (out / "program_hdawg8.elf").read_bytes()[:4] == b"\x7fELF"
    with np.load(out / "dd_copies.npz") as z:
        assert z["i"].shape[:2] == (2, 16)
    assert (out / "waveforms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out.splitlines()[-2])["entries"] == 170


def test_cli_custom_and_bad_calibration(tmp_path, capsys):
    d = load_calibration().to_dict()
    d["dd_tau_s"] = 5e-6
    d["ent_attempt_duration_s"] = 3.8e-6  # the attempt entry must fit between DD pulses
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(d))
    assert main(["waveforms", "build", "--calibration", str(good), "--out", str(tmp_path / "g")]) == 0
    report = json.loads((tmp_path / "g" / "report.json").read_text())
    assert report["samples"]["dd_tau_samples"] == 12000 and report["dd_pulses_in_13ms"] == 2600
    d["pulses"]["hermite"]["pi_amplitude"] = 0.99
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(d))
    assert main(["waveforms", "build", "--calibration", str(bad), "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CalibrationError" in err[0] and "pulses.hermite.pi_amplitude" in err[0]
