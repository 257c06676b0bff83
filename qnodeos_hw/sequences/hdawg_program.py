"""The HDAWG program of the NV node: SeqC, command table, waveforms, memory accounting, compile.

Layout (one AWG core, core 0; ``n_channels`` = 2: I on wave output 1, Q on 2):

* Waveform / command-table index ``e`` (0..N-1) is table entry ``e``: its operation
  waveform, or, for laser-only entries (``mw`` False), a command-table
  ``playZero`` of the same length (no waveform memory). Index ``N + 16*a + s``
  is DD copy ``s`` (pulse starting at sample ``s``) of axis ``a`` (0 = x, 1 = y).
* DIO codeword (bits 0..7 of the DIO input, :data:`DIO_INDEX_MASK`) = table entry
  index; bit 8 (:data:`DIO_TOGGLE_BIT`) is a toggle: the controller requests entry
  ``e`` by writing ``e | (t << 8)`` with ``t`` flipped from its previous request
  (:meth:`HdawgProgram.dio_word`). No handshake; a request is seen once.
* SeqC: an endless idle loop that, at every XY8 block boundary, reads ``getDIO()``;
  if the toggle changed it plays ``executeTableEntry(codeword)`` followed by that
  entry's first XY8 block, otherwise the idle XY8 block of the current DD shift;
  then it sets the shift the next block needs (``var shift``). DD pulses are
  ``executeTableEntry`` of the shifted copies, gaps are ``playZero``. The program
  is generated from the same :class:`~qnodeos_hw.sequences.dd.Playlist` s that
  :attr:`HdawgProgram.entry_playlists` and :attr:`HdawgProgram.idle_playlists`
  expose, so a simulator can follow the timing without parsing SeqC. Codewords
  outside the table are ignored (the controller never sends them).

Rotating frame: the HDAWG's sine generators/modulation are not used; I/Q go to
the IQ mixer of the MW source, so the frame is the source's free-running LO,
which nothing the sequencer plays can reset or shift: each pulse has its
nominal axis phase whenever it plays (command-table phase fields are left
unset: they act on the sine generators). A qubit detuning from the LO is a
static z field that XY8 refocuses at every echo point; the DD after an entry is
anchored on the entry's operation at sample precision (shifted copies), and the
operation starts 0..15 samples before the previous block's echo point, so the
qubit frame at each gate equals the LO frame to within ``2 pi detuning x 16
samples``. (Tested by a spin simulation in tests/test_sequences_nv_frame.py.)

Memory: the HDAWG has 64 MSa of waveform memory per channel (500 MSa with the
HDAWG-ME option; HDAWG user manual, "AWG Sequencer Tab" features; we count
64e6, the conservative reading of "M"), allocated in
blocks of 32 samples (INSTRUMENT-FACTS). We count every uploaded waveform
rounded up to 32 samples per channel and refuse (:class:`WaveformMemoryError`) a
program that does not fit. ``compile_seqc`` reports separately, as
``info['wavemem']['fpgaMemoryUsed']``, the fraction of the per-core waveform
cache (512 kSa = 2^19 samples, measured) that it plans to use; waveforms that do
not fit the cache still play, streamed from main memory.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import zhinst.core
import zhinst.toolkit
from zhinst.toolkit import CommandTable, Waveforms

from ..waveforms.calibration import NVCalibration
from ..waveforms.table import WaveformTable
from .dd import DD_AXES, N_SHIFTS, DDSequence, Playlist, Segment, build_dd

#: waveform memory per channel (samples), standard HDAWG
HDAWG_WAVEFORM_MEMORY_SAMPLES = 64_000_000
#: waveform memory per channel (samples) with the HDAWG-ME option
HDAWG_ME_WAVEFORM_MEMORY_SAMPLES = 500_000_000
#: allocation unit of waveform memory (samples)
MEMORY_BLOCK_SAMPLES = 32
#: device types compile_seqc accepts for the HDAWG
DEVTYPES = ("HDAWG8", "HDAWG4")
#: DIO bits carrying the table-entry index
DIO_INDEX_MASK = 0xFF
#: DIO bit whose change announces a new request
DIO_TOGGLE_BIT = 8
#: command-table limit (entries 0..1023)
MAX_CT_ENTRIES = 1024


class HdawgProgramError(ValueError):
    """The program cannot be generated; ``field`` names the argument or item at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class WaveformMemoryError(HdawgProgramError):
    """The waveforms do not fit the HDAWG waveform memory (our own accounting)."""

    def __init__(self, needed: int, available: int) -> None:
        super().__init__("waveform_memory", f"needs {needed} samples per channel, "
                                            f"the HDAWG has {available}")
        self.needed = needed
        self.available = available


class CompileError(RuntimeError):
    """``zhinst.core.compile_seqc`` failed or reported any message (warnings included)."""

    def __init__(self, devtype: str, messages: str) -> None:
        super().__init__(f"SeqC compile for {devtype} reported: {messages}")
        self.devtype = devtype
        self.messages = messages


@dataclass(frozen=True)
class MemoryReport:
    """Waveform-memory accounting (samples are per channel unless stated)."""

    n_waveforms: int
    samples_per_channel: int
    capacity_per_channel: int
    memory_fraction: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class HdawgProgram:
    """Everything that goes into one HDAWG core (treat as immutable).

    ``codewords`` maps a DIO codeword (bits 0..7) to the table-entry index it plays;
    ``entry_playlists[e]`` is what entry ``e`` plays (operation + first XY8 block),
    ``idle_playlists[s]`` the idle XY8 block for DD shift ``s``; ``dd_ct_base`` the
    command-table index of DD copy (x, shift 0).
    """

    seqc: str
    waveforms: Waveforms
    command_table: CommandTable
    codewords: Mapping[int, int]
    entry_playlists: tuple[Playlist, ...]
    idle_playlists: tuple[Playlist, ...]
    memory: MemoryReport
    devtype: str
    n_channels: int
    sample_rate_hz: float
    calibration_hash: str
    dd_ct_base: int
    dd: DDSequence = field(repr=False)
    #: entry index -> the qubit it acts on (0 electron, k carbon k): the controller's
    #: entry-target table (it refuses a PLAY that addresses another qubit)
    entry_targets: tuple[int, ...] = ()

    def dio_word(self, entry_index: int, toggle: int) -> int:
        """The DIO value that requests ``entry_index`` with toggle bit ``toggle`` (0/1)."""
        if entry_index not in self.codewords.values():
            raise HdawgProgramError("entry_index", f"{entry_index} is not in the table")
        if toggle not in (0, 1):
            raise HdawgProgramError("toggle", f"must be 0 or 1, got {toggle}")
        return (entry_index & DIO_INDEX_MASK) | (toggle << DIO_TOGGLE_BIT)

    def dd_ct_index(self, axis: str, shift: int) -> int:
        """Command-table (and waveform) index of DD copy ``axis``/``shift``."""
        return self.dd_ct_base + DD_AXES.index(axis) * N_SHIFTS + shift

    def entry_duration_ns(self, entry_index: int) -> float:
        """Time entry ``entry_index`` occupies (operation + first XY8 block), ns."""
        return self.entry_playlists[entry_index].length * 1e9 / self.sample_rate_hz

    @property
    def max_start_delay_ns(self) -> float:
        """Longest wait from a request until its entry starts: the longest idle XY8 block
        (the AWG reads the DIO at block boundaries), ns. Add sequencer/DIO latency on hardware."""
        return max(p.length for p in self.idle_playlists) * 1e9 / self.sample_rate_hz

    def node_settings(self, core: int = 0) -> dict[str, Any]:
        """Device node values (relative to ``/devN/``) this program expects on ``core``.

        The program reads the DIO itself (``getDIO()``): every word is accepted
        (valid polarity 0 = none), the codeword is bits 0..7 (mask 0xFF, shift 0);
        outputs plain (no modulation: the frame is the MW source's LO), both
        channels on, sample clock at the calibrated rate.
        """
        ch0 = 2 * core
        settings: dict[str, Any] = {
            "system/clocks/sampleclock/freq": self.sample_rate_hz,
            f"awgs/{core}/dio/valid/polarity": 0,
            f"awgs/{core}/dio/mask/value": DIO_INDEX_MASK,
            f"awgs/{core}/dio/mask/shift": 0,
        }
        for k in range(self.n_channels):
            settings[f"awgs/{core}/outputs/{k}/modulation/mode"] = 0
            settings[f"sigouts/{ch0 + k}/on"] = 1
        return settings

    def command_table_json(self) -> str:
        """The command table as JSON (validated against zhinst-toolkit's HDAWG schema)."""
        return json.dumps(self.command_table.as_dict())


def hdawg_ct_schema() -> dict:
    """The HDAWG command-table JSON schema shipped with zhinst-toolkit."""
    path = os.path.join(os.path.dirname(zhinst.toolkit.__file__), "resources", "ct_schema_hdawg.json")
    with open(path) as fh:
        return json.load(fh)


def _blocks(n: int) -> int:
    return -(-n // MEMORY_BLOCK_SAMPLES) * MEMORY_BLOCK_SAMPLES


def account_memory(lengths: list[int],
                   capacity_per_channel: int = HDAWG_WAVEFORM_MEMORY_SAMPLES) -> MemoryReport:
    """Memory report for waveforms of ``lengths`` samples (each channel holds one copy)."""
    per_channel = sum(_blocks(n) for n in lengths)
    return MemoryReport(n_waveforms=len(lengths), samples_per_channel=per_channel,
                        capacity_per_channel=capacity_per_channel,
                        memory_fraction=per_channel / capacity_per_channel)


def build_hdawg_program(table: WaveformTable, calibration: NVCalibration, devtype: str = "HDAWG8",
                        n_channels: int = 2,
                        memory_samples_per_channel: int = HDAWG_WAVEFORM_MEMORY_SAMPLES) -> HdawgProgram:
    """Generate SeqC, waveforms and command table for ``table`` under ``calibration``.

    Raises :class:`HdawgProgramError` (naming the field) for a table that does not
    match the calibration, a bad ``devtype``/``n_channels``, or too many entries, and
    :class:`WaveformMemoryError` when the waveforms do not fit.
    """
    if devtype not in DEVTYPES:
        raise HdawgProgramError("devtype", f"{devtype!r} is not one of {', '.join(DEVTYPES)}")
    if n_channels not in (1, 2):
        raise HdawgProgramError("n_channels", f"must be 1 or 2, got {n_channels}")
    if table.calibration_hash != calibration.content_hash():
        raise HdawgProgramError("calibration", "the table was built with another calibration "
                                               f"({table.calibration_hash[:12]} != "
                                               f"{calibration.content_hash()[:12]})")
    n_entries = len(table)
    dd_base = n_entries
    if n_entries > DIO_INDEX_MASK + 1:
        raise HdawgProgramError("table", f"{n_entries} entries do not fit the 8-bit DIO codeword")
    if dd_base + len(DD_AXES) * N_SHIFTS > MAX_CT_ENTRIES:
        raise HdawgProgramError("table", f"{n_entries} entries + DD copies exceed {MAX_CT_ENTRIES} "
                                         "command-table entries")
    if n_channels == 1 and any(np.any(e.samples_q) for e in table):
        raise HdawgProgramError("n_channels", "the table has Q samples (y axes): it needs 2 channels")
    dd = build_dd(calibration)
    entry_lists = tuple(dd.entry_playlist(e) for e in table)

    lengths = [e.op_samples for e in table if e.mw] + [dd.copies.window_samples] * (len(DD_AXES) * N_SHIFTS)
    memory = account_memory(lengths, memory_samples_per_channel)
    if memory.samples_per_channel > memory_samples_per_channel:
        raise WaveformMemoryError(memory.samples_per_channel, memory_samples_per_channel)

    wf = Waveforms()
    ct = CommandTable(hdawg_ct_schema(), active_validation=False)
    ct.header.userString = f"qnodeos nv {table.calibration_hash[:8]}"
    for e in table:
        if e.carbon is not None:
            continue  # a DD train: played from the DD copies by its own SeqC branch
        if e.mw:
            wf[e.index] = (e.samples_i,) if n_channels == 1 else (e.samples_i, e.samples_q)
            ct.table[e.index].waveform.index = e.index
        else:
            ct.table[e.index].waveform.playZero = True
            ct.table[e.index].waveform.length = e.op_samples
    for a, axis in enumerate(DD_AXES):
        for s in range(N_SHIFTS):
            k = dd_base + a * N_SHIFTS + s
            ci, cq = dd.copies.copy(axis, s)
            wf[k] = (ci,) if n_channels == 1 else (ci, cq)
            ct.table[k].waveform.index = k
    ct.as_dict()  # validates the whole table against the schema (raises ValidationError)

    seqc = _seqc(table, dd, entry_lists, wf, dd_base)
    return HdawgProgram(seqc=seqc, waveforms=wf, command_table=ct,
                        codewords=MappingProxyType({e.index: e.index for e in table}),
                        entry_playlists=entry_lists, idle_playlists=dd.idle, memory=memory,
                        devtype=devtype, n_channels=n_channels, sample_rate_hz=calibration.sample_rate_hz,
                        calibration_hash=table.calibration_hash, dd_ct_base=dd_base, dd=dd,
                        entry_targets=tuple(e.target_qubit for e in table))


def _seg_code(seg: Segment, dd_base: int) -> str:
    if seg.kind == "zero":
        return f"playZero({seg.length});"
    if seg.kind == "dd":
        return f"executeTableEntry({dd_base + DD_AXES.index(seg.axis) * N_SHIFTS + seg.shift});"
    return "executeTableEntry(cw);"


def _tail(pl: Playlist, dd_base: int) -> tuple[str, ...]:
    return tuple(_seg_code(s, dd_base) for s in pl.segments) + (f"shift = {pl.next_shift};",)


def _seqc(table: WaveformTable, dd: DDSequence, entry_lists: tuple[Playlist, ...], wf: Waveforms,
          dd_base: int) -> str:
    ind = "    "
    lines = [
        "// qnodeos-hw NV node: idle XY8 DD, DIO-triggered waveform-table entries",
        f"// table: {len(table)} entries, spec {table.spec_name}, calibration {table.calibration_hash[:16]}",
        f"// DD: tau = {dd.tau_samples} samples, XY8 block = {dd.block_samples} samples, "
        f"copies at command-table {dd_base}..{dd_base + len(DD_AXES) * N_SHIFTS - 1}",
        f"// DIO: bits 0..7 = entry index, bit {DIO_TOGGLE_BIT} = request toggle",
        wf.get_sequence_snippet(),
        "var shift = 0;   // DD shift (0..15) of the next XY8 block",
        "var toggle = 0;  // last request toggle seen",
        "var dio = 0;",
        "var cw = 0;",
        "while (true) {",
        ind + "dio = getDIO();",
        ind + f"if (((dio >> {DIO_TOGGLE_BIT}) & 1) != toggle) {{",
        ind * 2 + f"toggle = (dio >> {DIO_TOGGLE_BIT}) & 1;",
        ind * 2 + f"cw = dio & {DIO_INDEX_MASK};",
    ]
    # group consecutive entries with identical tails into ranges
    groups: list[tuple[int, int, tuple[str, ...]]] = []
    for e, pl in zip(table, entry_lists):
        tail = _tail(pl, dd_base)
        if groups and groups[-1][2] == tail and groups[-1][1] == e.index - 1:
            groups[-1] = (groups[-1][0], e.index, tail)
        else:
            groups.append((e.index, e.index, tail))
    for k, (lo, hi, tail) in enumerate(groups):
        kw = "if" if k == 0 else "} else if"
        lines.append(ind * 2 + f"{kw} (cw < {hi + 1}) {{  // entries {lo}..{hi}")
        lines.extend(ind * 3 + c for c in tail)
    lines.append(ind * 2 + "}")
    lines.append(ind + "} else {")
    lines.append(ind * 2 + "switch (shift) {")
    for s, pl in enumerate(dd.idle):
        lines.append(ind * 3 + f"case {s}:")
        lines.extend(ind * 4 + c for c in _tail(pl, dd_base))
    lines.append(ind * 2 + "}")
    lines.append(ind + "}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def compile_program(program: HdawgProgram, devtype: str | None = None) -> tuple[bytes, dict]:
    """Compile ``program.seqc`` with ``zhinst.core.compile_seqc`` for ``devtype``
    (default ``program.devtype``), core 0. Raises :class:`CompileError` if the compiler
    fails or reports any message."""
    devtype = devtype or program.devtype
    if devtype not in DEVTYPES:
        raise HdawgProgramError("devtype", f"{devtype!r} is not one of {', '.join(DEVTYPES)}")
    try:
        elf, info = zhinst.core.compile_seqc(program.seqc, devtype=devtype, index=0,
                                             samplerate=program.sample_rate_hz)
    except RuntimeError as exc:
        raise CompileError(devtype, str(exc)) from None
    if info.get("messages"):
        raise CompileError(devtype, info["messages"])
    return elf, info


def build_and_compile(table: WaveformTable, calibration: NVCalibration, devtype: str = "HDAWG8",
                      n_channels: int = 2) -> tuple[HdawgProgram, bytes, dict, dict[str, float]]:
    """Build and compile; also returns timings ``{'build_s', 'compile_s'}`` (s)."""
    t0 = time.perf_counter()
    program = build_hdawg_program(table, calibration, devtype, n_channels)
    t1 = time.perf_counter()
    elf, info = compile_program(program)
    t2 = time.perf_counter()
    return program, elf, info, {"build_s": t1 - t0, "compile_s": t2 - t1}


__all__ = ["HdawgProgram", "MemoryReport", "build_hdawg_program", "compile_program", "build_and_compile",
           "account_memory", "CompileError", "WaveformMemoryError", "HdawgProgramError",
           "HDAWG_WAVEFORM_MEMORY_SAMPLES", "HDAWG_ME_WAVEFORM_MEMORY_SAMPLES", "MEMORY_BLOCK_SAMPLES",
           "DIO_INDEX_MASK", "DIO_TOGGLE_BIT", "DEVTYPES"]
