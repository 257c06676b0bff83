"""``qnodeos-hw sequences build --platform ion``: files, JSON summary, timing diagram."""

from __future__ import annotations

import json

import pytest

from qnodeos_hw.cli import main
from qnodeos_hw.sequences import ion_ttl as T


def test_build_writes_payloads_summary_and_plot(tmp_path, capsys):
    out = tmp_path / "ion"
    assert main(["sequences", "build", "--platform", "ion", "--out", str(out)]) == 0
    info = json.loads((out / "ion_sequences.json").read_text())
    shipped = T.build_all(T.load_calibration())
    assert [s["slot"] for s in info["sequences"]] == list(range(7))
    assert info["clock_hz"] == 100_000_000 and info["calibration"] == T.load_calibration().as_dict()
    for s in info["sequences"]:
        data = (out / s["file"]).read_bytes()
        seq = T.decode_sequence(data, s["instruction"])
        ref = shipped[T.IonInstruction(s["slot"])]
        assert seq.edges == ref.edges and seq.duration_ns == ref.duration_ns
        assert s["crc32"] == f"0x{T.crc32(data):08x}" and s["duration_ns"] == ref.duration_ns
    png = (out / "ion_sequences.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "measure" in capsys.readouterr().out


def test_build_with_a_calibration_file(tmp_path):
    cal = tmp_path / "cal.yaml"
    cal.write_text("pi_time_ns: 8000\ncooling_ns: 100000\npumping_ns: 10000\n"
                   "detection_ns: 200000\nguard_ns: 500\npmt_threshold: 2\n")
    assert main(["sequences", "build", "--calibration", str(cal), "--out", str(tmp_path / "o")]) == 0
    info = json.loads((tmp_path / "o" / "ion_sequences.json").read_text())
    rx = info["sequences"][1]
    assert rx["instruction"] == "rx_pi" and rx["high_ns"]["qubit"] == 8000 and rx["duration_ns"] == 8500


def test_build_refuses_off_grid_calibration(tmp_path, capsys):
    cal = tmp_path / "cal.yaml"
    cal.write_text("pi_time_ns: 8010\ncooling_ns: 100000\npumping_ns: 10000\n"
                   "detection_ns: 200000\nguard_ns: 500\npmt_threshold: 2\n")
    argv = ["sequences", "build", "--calibration", str(cal), "--out", str(tmp_path / "o")]
    assert main(argv) == 2  # one line naming the typed error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qnodeos-hw sequences build: OffGridError:")
    assert "'qubit' at 4005 ns" in err[0]
    with pytest.raises(T.OffGridError) as e:  # --debug: the exception itself
        main(argv + ["--debug"])
    assert e.value.channel == "qubit" and e.value.time_ns == 4005
    assert not (tmp_path / "o" / "ion_sequences.json").exists()
