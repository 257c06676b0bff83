"""HDAWG QCoDeS driver against the simulated HDAWG under the real zhinst-toolkit."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qcodes.instrument import Instrument
from zhinst.toolkit import CommandTable, Waveforms

from qnodeos_hw.instruments.hdawg import (InstrumentUnreachableError, SeqCCompileError,
                                          UploadError, ZIHDAWG)
from qnodeos_hw.qdevice import VirtualClock
from qnodeos_hw.simulators.hdawg_sim import (CommandTableError, ElfError, HDAWGSimError,
                                             ProgramIgnoresDIOError,
                                             ProgramModel, ProgramNotLoadedError,
                                             SequencerNotEnabledError,
                                             SimulatedHDAWGConnection, UnknownCodewordError,
                                             WaveformUploadError)

VALID = 1 << 31

DD_PROGRAM = """
wave w0 = placeholder(64);
assignWaveIndex(1, w0, 2, w0, 0);
wave dd = placeholder(256);
assignWaveIndex(1, dd, 2, dd, 1);
while (true) {
  if (getDIOTriggered()) { executeTableEntry(getDIOTriggered()); } else { executeTableEntry(100); }
}
"""
PLAIN_PROGRAM = """
wave w0 = placeholder(64);
assignWaveIndex(1, w0, 2, w0, 0);
while (true) { executeTableEntry(getDIOTriggered()); }
"""


@pytest.fixture
def rig(recording_nv):
    clock, backend = VirtualClock(), recording_nv()
    conn = SimulatedHDAWGConnection(clock, backend)
    hd = ZIHDAWG("hdawg_test", "dev8001", connection=conn)
    yield hd, conn, backend, clock
    Instrument.close_all()


def _waves(amp0=0.5, dd_amp=0.1, dd=True):
    wf = Waveforms()
    wf[0] = (np.full(64, amp0), np.linspace(-0.25, 0.25, 64))
    if dd:
        wf[1] = (np.full(256, dd_amp), np.zeros(256))
    return wf


def _table(hd, entries=((5, 0, 0.8),), dd_entry=True):
    ct = CommandTable(hd.awg1._awg.commandtable.load_validation_schema())
    for index, wave, amp in entries:
        ct.table[index].waveform.index = wave
        ct.table[index].amplitude0.value = amp
        ct.table[index].amplitude1.value = amp
    if dd_entry:
        ct.table[100].waveform.index = 1
    return ct


def _ready(hd, program=DD_PROGRAM, **kw):
    hd.configure_codewords()
    hd.ch1.output("on")
    hd.ch2.output("on")
    hd.upload(program, _waves(dd=kw.get("dd_entry", True)), _table(hd, **kw))


def test_parameters_reach_the_device_nodes(rig):
    hd, conn, _, _ = rig
    hd.ch3.range(0.4)
    hd.ch3.offset(0.1)
    hd.ch3.amplitude(-0.5)
    hd.sample_rate(2.0e9)
    hd.dio_mode("dio_codeword")
    hd.awg2.dio_mask(0xFF)
    assert conn.getDouble("/dev8001/sigouts/2/range") == 0.4
    assert conn.getDouble("/dev8001/sigouts/2/offset") == pytest.approx(0.1)
    assert conn.getDouble("/dev8001/awgs/1/outputs/0/amplitude") == -0.5
    assert conn.getDouble("/dev8001/system/clocks/sampleclock/freq") == 2.0e9
    assert conn.getInt("/dev8001/dios/0/mode") == 2
    assert conn.getInt("/dev8001/awgs/1/dio/mask/value") == 0xFF
    assert (hd.ch3.range(), hd.dio_mode(), hd.sample_rate()) == (0.4, "dio_codeword", 2.0e9)
    assert len(hd.submodules) == 8 + 4


@pytest.mark.parametrize("param, value", [("sample_rate", 3.0e9), ("ch1.range", 0.5),
                                          ("ch1.amplitude", 1.5), ("dio_mode", "codeword"),
                                          ("awg1.dio_mask", 0x400), ("ch2.offset", 2.0)])
def test_out_of_range_settings_are_refused_before_anything_is_sent(rig, param, value):
    hd, conn, _, _ = rig
    obj = hd
    for part in param.split("."):
        obj = getattr(obj, part)
    before = conn.set_count
    with pytest.raises(ValueError):
        obj(value)
    assert conn.set_count == before


def test_codeword_plays_the_uploaded_entry_samples(rig):
    hd, conn, backend, clock = rig
    _ready(hd)
    hd.ch2.amplitude(0.5)
    assert hd.awg1.status()["enabled"] and hd.awg1.status()["commandtable_status"] == 1
    end = conn.dio_input(5 | VALID, 10_000)
    q, key, wi, wq, rate, t = backend.mw[-1]
    assert (q, rate, t) == (0, 2.4e9, 10_000 + conn.dio_latency_ns)
    np.testing.assert_allclose(wi, 0.5 * 0.8, atol=1e-4)  # wave x entry amplitude
    np.testing.assert_allclose(wq, np.linspace(-0.25, 0.25, 64) * 0.8 * 0.5, atol=1e-4)
    assert end == t + round(64 / 2.4e9 * 1e9)
    rec = conn.played[-1]
    assert (rec.table_index, rec.wave_index, rec.n_samples, rec.t_start_ns, rec.t_end_ns) == \
        (5, 0, 64, t, end)
    # DD idle loop: on at enable, off for the entry, back on after it
    assert backend.dd[-2:] == [(0, False, t), (0, True, end)]


def test_key_changes_when_what_is_played_changes(rig):
    hd, conn, backend, _ = rig
    _ready(hd)
    conn.dio_input(5 | VALID, 0)
    conn.dio_input(5 | VALID, 1_000)
    assert backend.mw[0][1] == backend.mw[1][1]
    hd.ch1.amplitude(0.25)
    conn.dio_input(5 | VALID, 2_000)
    assert backend.mw[2][1] != backend.mw[1][1]
    np.testing.assert_allclose(backend.mw[2][2], 0.5 * 0.8 * 0.25, atol=1e-4)
    hd.ch1.output("off")
    conn.dio_input(5 | VALID, 3_000)
    assert not backend.mw[3][2].any()


def test_invalid_codeword_word_is_ignored_and_plain_program_has_no_dd(rig):
    hd, conn, backend, _ = rig
    _ready(hd, PLAIN_PROGRAM, dd_entry=False)
    assert conn.dio_input(5, 500) is None  # valid bit low: the AWG does not react
    assert backend.mw == [] and backend.dd == []
    conn.dio_input(5 | VALID, 600)
    assert len(backend.mw) == 1 and backend.dd == []


def test_play_zero_entry_takes_time_without_microwaves(rig):
    hd, conn, backend, _ = rig
    hd.configure_codewords()
    ct = _table(hd)
    ct.table[9].waveform.playZero = True
    ct.table[9].waveform.length = 480
    hd.upload(DD_PROGRAM, _waves(), ct)
    n_mw = len(backend.mw)
    end = conn.dio_input(9 | VALID, 1_000)
    assert end == 1_000 + conn.dio_latency_ns + 200  # 480 samples at 2.4 GSa/s
    assert len(backend.mw) == n_mw and conn.played[-1].wave_index == -1


def test_program_model_reads_the_source():
    assert ProgramModel.from_source(DD_PROGRAM) == ProgramModel(True, True)
    assert ProgramModel.from_source(PLAIN_PROGRAM) == ProgramModel(True, False)
    assert ProgramModel.from_source("while(true){playWave(1, w);}") == ProgramModel(False, True)


def test_codeword_errors_as_hardware_refuses(rig):
    hd, conn, _, _ = rig
    with pytest.raises(ProgramNotLoadedError):
        conn.dio_input(5 | VALID, 0)
    hd.configure_codewords()
    hd.awg1.upload_program(DD_PROGRAM)
    with pytest.raises(SequencerNotEnabledError):
        conn.dio_input(5 | VALID, 0)
    hd.awg1.start()
    with pytest.raises(UnknownCodewordError, match="no command table"):
        conn.dio_input(5 | VALID, 0)
    hd.awg1.stop()
    hd.awg1.upload_waveforms(_waves())
    hd.awg1.upload_command_table(_table(hd, entries=((5, 0, 1.0), (6, 7, 1.0))))
    hd.awg1.start()
    with pytest.raises(UnknownCodewordError, match="codeword 9"):
        conn.dio_input(9 | VALID, 0)
    with pytest.raises(CommandTableError, match="waveform 7"):
        conn.dio_input(6 | VALID, 0)


def test_program_that_ignores_dio_is_reported(rig):
    hd, conn, _, _ = rig
    hd.configure_codewords()
    hd.upload("wave w = placeholder(64);\nassignWaveIndex(1, w, 2, w, 0);\n"
              "while(true){ playWave(1, w, 2, w); }")
    with pytest.raises(ProgramIgnoresDIOError):
        conn.dio_input(1 | VALID, 0)


def test_enable_without_program_does_not_start(rig):
    hd, conn, _, _ = rig
    with pytest.raises(UploadError, match="did not start"):
        hd.awg1.start()
    assert conn.getInt("/dev8001/awgs/0/enable") == 0


def test_compiler_errors_and_warnings_are_failures(rig):
    hd, _, _, _ = rig
    with pytest.raises(SeqCCompileError, match="compilation failed"):
        hd.awg1.upload_program("this is not seqc;")
    with pytest.raises(SeqCCompileError, match="compiler messages"):
        hd.awg1.upload_program("wave w = gauss(40, 1.0, 20, 5);\nplayWave(1, w);")


def test_waveform_upload_checked_against_program(rig):
    hd, conn, _, _ = rig
    with pytest.raises(UploadError, match="program before"):
        hd.awg1.upload_waveforms(_waves())
    hd.awg1.upload_program(DD_PROGRAM)
    bad = Waveforms()
    bad[0] = (np.zeros(48), np.zeros(48))
    with pytest.raises(UploadError, match="do not fit"):
        hd.awg1.upload_waveforms(bad)
    with pytest.raises(WaveformUploadError, match="not assigned"):
        conn.setVector("/dev8001/awgs/0/waveform/waves/5", np.zeros(128, dtype=np.uint16))
    with pytest.raises(WaveformUploadError, match="64 samples"):
        conn.setVector("/dev8001/awgs/0/waveform/waves/0", np.zeros(100, dtype=np.uint16))
    with pytest.raises(WaveformUploadError, match="native 16-bit"):
        conn.setVector("/dev8001/awgs/0/waveform/waves/0", np.zeros(128))


def test_command_table_rejected_by_schema(rig):
    hd, conn, _, _ = rig
    hd.awg1.upload_program(DD_PROGRAM)
    with pytest.raises(UploadError, match="maximum") as err:
        hd.awg1.upload_command_table('{"header": {"version": "0.2"}, "table": '
                                     '[{"index": 5, "amplitude0": {"value": 3.0}}]}')
    assert isinstance(err.value.__cause__, CommandTableError)
    assert conn.getInt("/dev8001/awgs/0/commandtable/status") == 8


def test_waveforms_read_back_through_toolkit(rig):
    hd, _, _, _ = rig
    _ready(hd)
    back = hd.awg1._awg.read_from_waveform_memory()
    np.testing.assert_allclose(back[0][0], 0.5, atol=1e-4)
    np.testing.assert_allclose(back[1][0], 0.1, atol=1e-4)


def test_snapshot_is_meaningful(rig):
    hd, _, _, _ = rig
    _ready(hd)
    hd.ch1.range(0.4)
    snap = hd.snapshot(update=True)
    assert snap["parameters"]["IDN"]["value"]["model"] == "HDAWG8"
    assert snap["parameters"]["IDN"]["value"]["serial"] == "DEV8001"
    assert snap["parameters"]["sample_rate"]["value"] == 2.4e9
    assert snap["parameters"]["dio_mode"]["value"] == "dio_codeword"
    assert snap["submodules"]["ch1"]["parameters"]["range"]["value"] == 0.4
    assert snap["submodules"]["ch1"]["parameters"]["range"]["unit"] == "V"
    up = snap["submodules"]["awg1"]["upload"]
    assert up["waveforms_uploaded"] == 2 and up["table_entries"] == 2
    assert len(up["program_sha256_16"]) == 16
    assert snap["submodules"]["awg1"]["parameters"]["enabled"]["value"] is True


def test_unreachable_data_server_is_a_typed_error_within_timeout(unused_port):
    port = unused_port
    t = time.perf_counter()
    with pytest.raises(InstrumentUnreachableError) as err:
        ZIHDAWG("hdawg_down", "dev8001", f"127.0.0.1:{port}", timeout_s=2.0)
    assert time.perf_counter() - t < 2.5
    assert err.value.instrument == "hdawg_down" and str(port) in err.value.address
    assert not Instrument.exist("hdawg_down")


def test_wrong_serial_is_a_typed_error():
    conn = SimulatedHDAWGConnection(VirtualClock())
    with pytest.raises(InstrumentUnreachableError, match="dev9999"):
        ZIHDAWG("hdawg_wrong", "dev9999", connection=conn)


def test_hdawg4_has_four_outputs_and_two_cores():
    conn = SimulatedHDAWGConnection(VirtualClock(), devtype="HDAWG4", serial="dev8002")
    hd = ZIHDAWG("hdawg4_test", "dev8002", connection=conn)
    assert hd.device_type == "HDAWG4"
    assert sorted(hd.submodules) == ["awg1", "awg2", "ch1", "ch2", "ch3", "ch4"]
    hd.ch4.range(2.0)
    assert conn.getDouble("/dev8002/sigouts/3/range") == 2.0
    hd.close()


def test_program_upload_refusals(rig):
    hd, conn, _, _ = rig
    with pytest.raises(ElfError):
        conn.setVector("/dev8001/awgs/0/elf/data", np.frombuffer(b"not an elf file", np.uint8))
    _ready(hd)
    with pytest.raises(HDAWGSimError, match="while the sequencer is running"):
        hd.awg1._awg.load_sequencer_program(PLAIN_PROGRAM)
