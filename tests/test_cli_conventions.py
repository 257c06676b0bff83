"""Conventions of the qnodeos-hw command: --version, python -m, help with defaults,
sub-command errors, one-line typed failures, logging levels, progress bars."""

from __future__ import annotations

import argparse
import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from qcodes.instrument import Instrument

from qnodeos_hw import logs
from qnodeos_hw.cli import AppDirNotFoundError, build_parser, main, version
from qnodeos_hw.instruments.stations import station_file


@pytest.fixture(autouse=True)
def _reset():
    yield
    Instrument.close_all()
    logs.configure(0)


def test_version_option(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["--version"])
    assert ei.value.code == 0
    assert capsys.readouterr().out.strip() == f"qnodeos-hw {version()}"
    assert version()[0].isdigit()


def test_python_dash_m_is_the_command():
    r = subprocess.run([sys.executable, "-m", "qnodeos_hw", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"qnodeos-hw {version()}"


def _parsers(p: argparse.ArgumentParser, path=()):
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, child in a.choices.items():
                yield from _parsers(child, path + (name,))


def test_every_argument_has_help_and_defaults_are_shown():
    for path, p in _parsers(build_parser()):
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction,
                              argparse._SubParsersAction)):
                continue
            assert a.help, f"{' '.join(path)}: {a.dest} has no help"
    dqc = build_parser().parse_args(["demo", "dqc"])
    assert dqc.k == 1200
    text = _help(["demo", "dqc"])
    assert "(default: 1200)" in text and "(default: out/dqc)" in text
    assert "(default: 1)" in _help(["calibrate", "rabi"])


def _help(argv) -> str:
    buf = io.StringIO()
    p = build_parser()
    for path, sub in _parsers(p):
        if list(path) == argv:
            sub.print_help(buf)
    return buf.getvalue()


@pytest.mark.parametrize("argv, names", [([], "{demo,waveforms,sequences,station,run,node,link,calibrate,trace}"),
                                         (["demo"], "{main,ticks,dqc,lgt,multitask}"),
                                         (["calibrate"], "{rabi,ramsey,dd,ssro}")])
def test_missing_sub_command_names_the_choices(capsys, argv, names):
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert f"the following arguments are required: {names}" in err
    assert "group" not in err and "action" not in err


def test_global_options_before_or_after_the_sub_command():
    a = build_parser().parse_args(["-v", "station", "check"])
    b = build_parser().parse_args(["station", "check", "-vv", "--debug"])
    c = build_parser().parse_args(["station", "check"])
    assert (a.verbose, a.quiet, a.debug) == (1, False, False)
    assert (b.verbose, b.debug) == (2, True)
    assert (c.verbose, c.quiet, c.debug) == (0, False, False)


def test_failure_is_one_typed_line_and_debug_gives_the_traceback(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["run", str(missing)]) == 2
    cap = capsys.readouterr()
    assert cap.err.strip().splitlines() == [
        f"qnodeos-hw run: AppDirNotFoundError: application directory '{missing}' does not exist"]
    assert "Traceback" not in cap.err and cap.out == ""
    with pytest.raises(AppDirNotFoundError):
        main(["run", str(missing), "--debug"])


def test_calibration_failure_is_one_line(tmp_path, capsys):
    assert main(["calibrate", "rabi", "--station", str(tmp_path / "none.yaml"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qnodeos-hw calibrate rabi: StationFileError:")


def test_connection_lines_only_when_verbose(capsys):
    assert main(["station", "check"]) == 0
    cap = capsys.readouterr()
    assert "Connected to" not in cap.out + cap.err
    assert "4/4 instruments connected" in cap.out
    assert main(["-v", "station", "check"]) == 0
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if "Connected to: " in ln]
    assert len(lines) == 4 and any("SGS100A" in ln for ln in lines)
    assert "Connected to" not in cap.out  # results stay clean on stdout


def test_station_check_of_unreachable_lab_prints_no_traceback(tmp_path, capsys, unused_port):
    doc = yaml.safe_load(station_file("lab").read_text())
    inst = doc["instruments"]
    inst["hdawg"]["address"] = f"127.0.0.1:{unused_port}"
    inst["hdawg"]["init"]["timeout_s"] = 2.0
    inst["mw"]["address"] = f"TCPIP0::127.0.0.1::{unused_port}::SOCKET"  # pyvisa-py, refused
    inst["mw"]["init"]["timeout"] = 1
    inst["ion_bridge"]["address"] = str(tmp_path / "ttyUSB0")
    cfg = tmp_path / "lab.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["station", "check", "--config", str(cfg)]) == 1
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "Traceback" not in cap.out
    assert "0/4 instruments connected" in cap.out
    mw = [ln for ln in cap.out.splitlines() if ln.split()[:1] == ["mw"]]
    assert mw and "FAILED" in mw[0] and "VISA implementation" not in mw[0]


def test_log_levels_and_tracebacks():
    buf = io.StringIO()
    logs.configure(0, stream=buf)
    lg = logging.getLogger("qnodeos_hw.test")
    lg.info("hidden info")
    lg.warning("shown warning")
    logging.getLogger("qcodes.instrument.test").error("qcodes error hidden")
    try:
        raise ValueError("boom")
    except ValueError:
        lg.error("failed", exc_info=True)
    out = buf.getvalue()
    assert "hidden info" not in out and "shown warning" in out
    assert "qcodes error hidden" not in out
    assert "failed" in out and "Traceback" not in out
    buf = io.StringIO()
    logs.configure(1, stream=buf)
    lg.info("info now")
    logging.getLogger("qcodes.instrument.test").warning("qcodes warning")
    assert "info now" in buf.getvalue() and "qcodes warning" in buf.getvalue()
    buf = io.StringIO()
    logs.configure(0, debug=True, stream=buf)
    try:
        raise ValueError("boom")
    except ValueError:
        lg.error("failed", exc_info=True)
    assert "Traceback" in buf.getvalue() and "ValueError: boom" in buf.getvalue()
    buf = io.StringIO()
    logs.configure(-1, stream=buf)
    lg.warning("quiet")
    assert buf.getvalue() == ""


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal():
    logs.configure(0)
    assert logs.progress_enabled(_TTY()) is True
    assert logs.progress_enabled(io.StringIO()) is False
    logs.configure(-1)
    assert logs.progress_enabled(_TTY()) is False
