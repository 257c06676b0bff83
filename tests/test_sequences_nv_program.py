"""HDAWG program: compiles for HDAWG8/HDAWG4 with no messages, command table, DIO dispatch, memory."""

import dataclasses
import json
import re

import pytest

from qnodeos_hw.sequences.hdawg_program import (DIO_INDEX_MASK, DIO_TOGGLE_BIT, CompileError,
                                                HdawgProgramError, WaveformMemoryError, account_memory,
                                                build_hdawg_program, compile_program)


@pytest.mark.parametrize("devtype", ["HDAWG8", "HDAWG4"])
def test_program_compiles_without_any_message(program, devtype):
    elf, info = compile_program(program, devtype)
    assert info["messages"] == ""
    assert isinstance(elf, bytes) and len(elf) > 1000
    assert not info["wavemem"]["exceedsFpgaMemory"]
    program.waveforms.validate(elf)  # zhinst-toolkit: our waveforms match the compiled slots


def test_hdawg4_build_compiles(table, cal):
    p = build_hdawg_program(table, cal, devtype="HDAWG4")
    assert compile_program(p)[1]["messages"] == ""


def test_compiler_warning_is_a_compile_error(program):
    # a 20-sample waveform only draws a warning from the vendor compiler: we refuse it
    bad = dataclasses.replace(program, seqc="wave w = ones(20);\nplayWave(1, w);\n")
    with pytest.raises(CompileError) as err:
        compile_program(bad, "HDAWG8")
    assert err.value.messages and err.value.devtype == "HDAWG8"
    broken = dataclasses.replace(program, seqc=program.seqc + "\nthisIsNotSeqC(;\n")
    with pytest.raises(CompileError):
        compile_program(broken, "HDAWG4")


def test_command_table_matches_table_and_dd_copies(program, table):
    ct = json.loads(program.command_table_json())
    assert ct["header"]["version"]
    rows = {r["index"]: r for r in ct["table"]}
    assert len(rows) == len(table) + 32
    for e in table:
        wf = rows[e.index]["waveform"]
        if e.mw:
            assert wf == {"index": e.index}
            assert program.waveforms[e.index][0].shape[0] == e.op_samples
        else:
            assert wf == {"playZero": True, "length": e.op_samples}
            assert e.index not in program.waveforms
    for axis in ("x", "y"):
        for s in range(16):
            k = program.dd_ct_index(axis, s)
            assert rows[k]["waveform"] == {"index": k}
            i, q = program.dd.copies.copy(axis, s)
            assert (program.waveforms[k][0] == i).all() and (program.waveforms[k][1] == q).all()


def _dispatch(seqc):
    """(upper bound, body lines) of each `cw < K` branch of the entry dispatch, in order."""
    branches, current = [], None
    for line in seqc.splitlines():
        m = re.match(r"\s*(?:\} else )?if \(cw < (\d+)\)", line)
        if m:
            current = (int(m.group(1)), [])
            branches.append(current)
            continue
        if current is not None:
            if line.strip().startswith("}"):
                current = None
                continue
            current[1].append(line.strip())
    return branches


def _expected(program, pl):
    code = []
    for seg in pl.segments:
        if seg.kind == "entry":
            code.append("executeTableEntry(cw);")
        elif seg.kind == "dd":
            code.append(f"executeTableEntry({program.dd_ct_index(seg.axis, seg.shift)});")
        else:
            code.append(f"playZero({seg.length});")
    return code + [f"shift = {pl.next_shift};"]


def test_seqc_dispatches_every_codeword_to_its_entry_playlist(program, table):
    branches = _dispatch(program.seqc)
    assert branches and branches[-1][0] == len(table)
    for e in table:
        body = next(b for k, b in branches if e.index < k)
        assert body == _expected(program, program.entry_playlists[e.index]), e.name
    # the idle loop: one case per shift, each the idle playlist of that shift
    for s, pl in enumerate(program.idle_playlists):
        m = re.search(rf"case {s}:\n((?:\s+[^\n]+\n)+?)\s+(?:case|\}})", program.seqc)
        assert m, s
        assert [x.strip() for x in m.group(1).splitlines()] == _expected(program, pl)
    assert "getDIO()" in program.seqc


def test_codewords_and_dio_words(program, table):
    assert dict(program.codewords) == {e.index: e.index for e in table}
    e = table.by_rotation("x", 1, 1)
    assert program.dio_word(e.index, 1) == e.index | (1 << DIO_TOGGLE_BIT)
    assert program.dio_word(e.index, 0) & DIO_INDEX_MASK == e.index
    with pytest.raises(HdawgProgramError) as err:
        program.dio_word(len(table), 0)
    assert err.value.field == "entry_index"
    assert program.entry_duration_ns(e.index) == pytest.approx(e.duration_ns)


def test_memory_accounting_in_32_sample_blocks():
    r = account_memory([1, 32, 33, 64], capacity_per_channel=1000)
    assert r.samples_per_channel == 32 + 32 + 64 + 64
    assert r.memory_fraction == pytest.approx(192 / 1000)


def test_memory_overflow_is_refused_at_the_exact_boundary(table, cal, program):
    need = program.memory.samples_per_channel
    assert 0 < program.memory.memory_fraction < 0.01
    fits = build_hdawg_program(table, cal, memory_samples_per_channel=need)
    assert fits.memory.memory_fraction == pytest.approx(1.0)
    with pytest.raises(WaveformMemoryError) as err:
        build_hdawg_program(table, cal, memory_samples_per_channel=need - 32)
    assert err.value.needed == need and err.value.available == need - 32


def test_bad_arguments_name_the_field(table, cal):
    for kwargs, field in (({"devtype": "HDAWG"}, "devtype"), ({"n_channels": 3}, "n_channels"),
                          ({"n_channels": 1}, "n_channels")):  # y rotations need the Q channel
        with pytest.raises(HdawgProgramError) as err:
            build_hdawg_program(table, cal, **kwargs)
        assert err.value.field == field
    other = dataclasses.replace(cal, detuning_hz=5.0)
    with pytest.raises(HdawgProgramError) as err:
        build_hdawg_program(table, other)
    assert err.value.field == "calibration"


def test_node_settings_and_start_delay(program, cal):
    s = program.node_settings()
    assert s["awgs/0/dio/mask/value"] == DIO_INDEX_MASK and s["awgs/0/dio/mask/shift"] == 0
    assert s["awgs/0/outputs/1/modulation/mode"] == 0 and s["sigouts/1/on"] == 1
    assert s["system/clocks/sampleclock/freq"] == cal.sample_rate_hz
    # the AWG reads the DIO at XY8 block boundaries: at most one block (8 tau) of waiting
    assert program.max_start_delay_ns == pytest.approx(8 * cal.dd_tau_s * 1e9, abs=7)
