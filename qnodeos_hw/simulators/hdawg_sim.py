"""A simulated Zurich Instruments HDAWG that sits *under* zhinst-toolkit.

:class:`SimulatedHDAWGConnection` has the surface of ``zhinst.core.ziDAQServer``
that zhinst-toolkit uses (``get``/``set``/``getInt``/``setVector``/``syncSetInt``/
``listNodesJSON``/``connectDevice`` ...). Pass it as
``zhinst.toolkit.Session(host, port, connection=conn)``: the real toolkit ``HDAWG``
class and our QCoDeS driver then run unchanged.

What the device does with what it receives:

* ``awgs/n/elf/data``: the ELF compiled by the vendor compiler (``zhinst.core.
  compile_seqc``, run by the toolkit). The sim reads its sections: waveform
  descriptors (``.waveforms``), embedded waveform data (``.wf_*``; placeholders
  are zero) and the SeqC source (``.c``) from which :class:`ProgramModel` tells
  whether the program executes command-table entries selected by DIO codewords
  and whether it plays a DD idle loop between them.
* ``awgs/n/waveform/waves/i``: native AWG vectors, checked against the
  descriptor of slot ``i`` (assigned, same channel count and length).
* ``awgs/n/commandtable/data``: JSON checked against the vendor's HDAWG schema (the
  one zhinst-toolkit ships, with the toolkit's validator class).
* :meth:`SimulatedHDAWGConnection.dio_input` (the DIO "cable" from the
  controller) plays the requested command-table entry. Two program styles are
  understood (:class:`ProgramModel`):

  - ``executeTableEntry(getDIOTriggered())``: a word whose valid bit matches
    ``dio/valid/*`` plays entry ``(dio >> shift) & mask`` after ``dio_latency_ns``;
  - a loop polling ``getDIO()`` (the NV program of :mod:`qnodeos_hw.sequences.
    hdawg_program`): the idle XY8 blocks (``switch (shift)``) run from the
    sequencer start; at the first block boundary that sees the word, a changed
    toggle bit is a request and the ``if (cw < N)`` branch plays the entry, then
    its XY8 tail, and sets the next shift. Block lengths come from the
    ``playZero`` lengths and the uploaded command table; long idle stretches are
    skipped in whole cycles (no per-block loop).

  The entry's samples (waveform x entry amplitude x output amplitude, zero when
  the output is off) go to :meth:`NVQubitBackend.play_mw`; DD idling stops for
  the operation and resumes after it (:meth:`NVQubitBackend.set_dd`); DD pulses
  themselves are not sent as waveforms (the physics models DD through
  ``set_dd``). Each play is recorded with virtual time stamps
  (:attr:`SimulatedHDAWGConnection.played`). Command-table phase fields and
  the output range are not modelled (no sine generators; samples are full-scale
  fractions).

What a real HDAWG refuses is a typed :class:`HDAWGSimError`.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import json
import math
import re
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import zhinst.toolkit
import zhinst.toolkit.command_table
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from zhinst.toolkit.exceptions import ValidationError
from zhinst.utils import convert_awg_waveform, parse_awg_waveform

from ..qdevice.clock import Clock
from .hdawg_errors import (  # noqa: F401  (re-exported: the simulator's errors)
    CommandTableError, ElfError, HDAWGSimError, NodeError, ProgramIgnoresDIOError,
    ProgramNotLoadedError, SequencerNotEnabledError, UnknownCodewordError, ValueRefusedError,
    WaveformUploadError)
from .hdawg_nodes import SIGOUT_RANGES_V, hdawg_nodedoc, wave_node_info, zi_nodedoc
from .qubit_backend import NVQubitBackend

_CT_SCHEMA_PATH = Path(zhinst.toolkit.__file__).parent / "resources" / "ct_schema_hdawg.json"


@functools.lru_cache(maxsize=1)
def _ct_validator() -> Any:
    """The device's command-table check: the vendor's HDAWG schema (shipped with
    zhinst-toolkit), with the validator class zhinst-toolkit uses; built once (checking the
    schema itself on every upload cost ~0.1 s)."""
    schema = json.loads(_CT_SCHEMA_PATH.read_text())
    cls = zhinst.toolkit.command_table.JSON_SCHEMA_VALIDATOR
    cls.check_schema(schema)
    return cls(schema)
_N_CHANNELS = {"HDAWG8": 8, "HDAWG4": 4}
_MIN_CLOCK_HZ, _MAX_CLOCK_HZ = 100e6, 2.4e9


def round_half_even(x: float) -> int:
    """``round(x)`` of a float (ties to even), in arithmetic mypyc compiles to C (the
    builtin is a generic call there); sample counts -> ns on the hot path."""
    f = math.floor(x)
    d = x - f  # exact for doubles
    if d > 0.5 or (d == 0.5 and f % 2 == 1):
        f += 1
    return f


# -- records -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PlayRecord:
    """One command-table entry played: virtual times in ns; ``wave_index`` -1 when the
    entry plays no waveform (playZero)."""

    t_start_ns: int
    t_end_ns: int
    core: int
    codeword: int
    table_index: int
    wave_index: int
    n_samples: int


@dataclass(frozen=True, slots=True)
class DDRecord:
    """The DD idle loop started (``on``) or stopped at ``t_ns``."""

    t_ns: int
    core: int
    on: bool


class RecordLog(Sequence):
    """A bounded, read-only log of records (oldest first). Rows are stored as plain
    tuples on the hot path and turned into ``record_type`` instances when read, so
    logging a play costs a tuple, not a frozen-dataclass construction."""

    __slots__ = ("_rows", "_type")

    def __init__(self, record_type: type, maxlen: int) -> None:
        self._rows: deque[tuple] = deque(maxlen=maxlen)
        self._type = record_type

    def add(self, *fields: Any) -> None:
        """Log one record given by its fields (in the record type's field order)."""
        self._rows.append(fields)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._type(*row) for row in list(self._rows)[index]]
        return self._type(*self._rows[index])

    def __iter__(self) -> Iterator[Any]:
        return (self._type(*row) for row in list(self._rows))

    @property
    def maxlen(self) -> int | None:
        return self._rows.maxlen

    def clear(self) -> None:
        self._rows.clear()

    def __repr__(self) -> str:
        return f"RecordLog({self._type.__name__}, {len(self._rows)} records)"


#: one step of a playlist: ("cw",) the requested entry, ("ct", k) entry k, ("zero", n) samples
Segment = tuple


@dataclass(frozen=True)
class PolledDIO:
    """A program that polls ``getDIO()`` at block boundaries (our NV program's style):
    a request is a change of bit ``toggle_bit``; the codeword is ``dio & mask``.
    ``branches``: ``(upper bound, segments, next shift)`` tried in order for the
    codeword (``if (cw < upper)``); ``idle[shift] = (segments, next shift)``."""

    toggle_bit: int
    mask: int
    branches: tuple[tuple[int, tuple[Segment, ...], int], ...]
    idle: dict[int, tuple[tuple[Segment, ...], int]]


@dataclass(frozen=True)
class ProgramModel:
    """What the simulator needs to know about a SeqC program (read from its source).

    ``dio_table``: the program executes the command-table entry selected by a DIO
    codeword: either ``executeTableEntry(getDIOTriggered())`` (the device's DIO
    mask/shift/valid nodes decode it, played at once) or a :class:`PolledDIO`
    loop (``polled``). ``dd_idle``: between codewords it keeps playing (DD).
    """

    dio_table: bool
    dd_idle: bool
    polled: PolledDIO | None = None

    @classmethod
    def from_source(cls, source: str) -> "ProgramModel":
        code = re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.S)
        polled = _parse_polled(code)
        if polled is not None:
            return cls(True, bool(polled.idle), polled)
        dio_table = bool(re.search(r"executeTableEntry\s*\(\s*getDIO(Triggered)?\s*\(", code))
        rest = re.sub(r"executeTableEntry\s*\(\s*getDIO(Triggered)?\s*\([^)]*\)[^)]*\)", "", code)
        dd_idle = bool(re.search(r"\b(playWave|playWaveIndexed|executeTableEntry)\s*\(", rest))
        return cls(dio_table, dd_idle)


_NUM = r"(0x[0-9a-fA-F]+|\d+)"


def _segments(body: str, cw: str) -> tuple[tuple[Segment, ...], int | None]:
    segs: list[Segment] = []
    nxt = None
    for m in re.finditer(r"playZero\s*\(\s*(\d+)\s*\)|executeTableEntry\s*\(\s*(\w+)\s*\)"
                         r"|\bshift\s*=\s*(\d+)", body):
        if m.group(1):
            segs.append(("zero", int(m.group(1))))
        elif m.group(2):
            arg = m.group(2)
            segs.append(("cw",) if arg == cw else ("ct", int(arg, 0)))
        else:
            nxt = int(m.group(3))
    return tuple(segs), nxt


def _parse_polled(code: str) -> PolledDIO | None:
    """Recognise the polled-DIO loop; None if the program is not of that form."""
    if not re.search(r"=\s*getDIO\s*\(\s*\)", code):
        return None
    tog = re.search(r"\(\s*\(\s*\w+\s*>>\s*(\d+)\s*\)\s*&\s*1\s*\)\s*!=\s*\w+", code)
    cwm = re.search(r"(\w+)\s*=\s*\w+\s*&\s*" + _NUM + r"\s*;", code)
    sw = re.search(r"switch\s*\(\s*shift\s*\)\s*\{", code)
    if not (tog and cwm and sw):
        return None
    cw = cwm.group(1)
    head = code[cwm.end():sw.start()]
    branches = []
    for m in re.finditer(r"if\s*\(\s*" + cw + r"\s*<\s*(\d+)\s*\)\s*\{([^{}]*)\}", head):
        segs, nxt = _segments(m.group(2), cw)
        branches.append((int(m.group(1)), segs, nxt if nxt is not None else 0))
    idle: dict[int, tuple[tuple[Segment, ...], int]] = {}
    cases = re.split(r"\bcase\s+(\d+)\s*:", code[sw.end():])
    for k in range(1, len(cases) - 1, 2):
        segs, nxt = _segments(cases[k + 1], cw)
        idle[int(cases[k])] = (segs, nxt if nxt is not None else int(cases[k]))
    if not branches:
        return None
    return PolledDIO(int(tog.group(1)), int(cwm.group(2), 0), tuple(branches), idle)


@dataclass
class _Wave:
    channels: int
    length: int
    i: np.ndarray
    q: np.ndarray


@dataclass
class _Entry:
    """A resolved command-table entry ready to play (cached until anything changes);
    ``i``/``q`` None for entries that play no waveform (playZero, register-only)."""

    wave_index: int
    n_samples: int
    i: np.ndarray | None
    q: np.ndarray | None
    key: tuple
    #: a fixed branch of DD pulses (a carbon gate's train): (pulse start offsets in samples,
    #: their I and Q samples); ``wave_index`` is -2
    train: tuple | None = None


@dataclass
class _Core:
    index: int
    program: ProgramModel | None = None
    source: str = ""
    descriptors: list | None = None
    waves: dict | None = None
    table: dict | None = None
    busy_until_ns: int = 0
    dd_on: bool = False
    generation: int = 0
    # polled-DIO program state: sequencer start, next getDIO boundary (samples since
    # start), DD shift of the next idle block, last toggle seen
    enabled_at_ns: int = 0
    pos: int = 0
    shift: int = 0
    toggle_seen: int = 0
    # the idle loop's blocks (shift -> (samples, next shift)) and cycles (shift -> samples
    # of the cycle through it, 0 if none), valid while idle_generation == generation
    idle_generation: int = -1
    idle_blocks: dict[int, tuple[int, int]] = field(default_factory=dict)
    idle_cycles: dict[int, int] = field(default_factory=dict)


def elf_sections(elf: bytes) -> dict[str, bytes | None]:
    """Sections of a vendor-compiled ELF: name -> bytes (None for NOBITS placeholders)."""
    try:
        f = ELFFile(io.BytesIO(elf))
        return {s.name: (None if s["sh_type"] == "SHT_NOBITS" else s.data())
                for s in f.iter_sections() if s.name}
    except (ELFError, ValueError, OSError) as exc:
        raise ElfError(f"sequencer program is not a valid ELF: {exc}") from exc


class SimulatedHDAWGConnection:
    """A LabOne data server with one simulated HDAWG (see module docstring).

    ``clock`` gives virtual time stamps; ``backend`` receives what is played;
    ``qubit_of_core`` maps AWG cores to the qubit they drive (default core 0 ->
    qubit 0); ``dio_latency_ns`` is the codeword-to-output latency;
    ``record_limit`` bounds :attr:`played` / :attr:`dd_events`.
    """

    host = "sim-hdawg"
    port = 8004

    def __init__(self, clock: Clock, backend: NVQubitBackend | None = None, *,
                 serial: str = "dev8001", devtype: str = "HDAWG8", options: str = "",
                 qubit_of_core: dict[int, int] | None = None, dio_latency_ns: int = 200,
                 record_limit: int = 100_000) -> None:
        if devtype not in _N_CHANNELS:
            raise ValueError(f"devtype must be one of {sorted(_N_CHANNELS)}, got {devtype!r}")
        self.clock, self.backend = clock, backend
        self.serial, self.devtype, self.options = serial.lower(), devtype, options
        self.n_channels = _N_CHANNELS[devtype]
        self.qubit_of_core = dict(qubit_of_core or {0: 0})
        self.dio_latency_ns = int(dio_latency_ns)
        self.played = RecordLog(PlayRecord, record_limit)
        self.dd_events = RecordLog(DDRecord, record_limit)
        self._play_rows = self.played._rows  # hot path: rows appended directly
        self._dd_rows = self.dd_events._rows
        self.connected = False
        self.set_count = 0  # every accepted node write (tests: "nothing was sent")
        self._doc = {**zi_nodedoc(), **hdawg_nodedoc(self.serial, self.n_channels)}
        self._cores = [_Core(i) for i in range(self.n_channels // 2)]
        self._entry_cache: dict[tuple[int, int], _Entry] = {}
        self._layout_cache: dict[tuple[int, int], tuple[int, int]] = {}  # (core, branch)
        #: (core index << 32 | codeword; an int key: no tuple per request) -> (entry, samples
        #: before it, samples after it, next shift) of a polled-DIO request; cleared with the
        #: core's other caches
        self._request_cache: dict[int, tuple[_Entry, int, int, int]] = {}
        # node paths read on every codeword (built once)
        self._rate_path = f"/{self.serial}/system/clocks/sampleclock/freq"
        self._dio_input_path = f"/{self.serial}/dios/0/input"
        self._enable_paths = [f"/{self.serial}/awgs/{c.index}/enable" for c in self._cores]
        self._values: dict[str, Any] = self._defaults()

    # -- node store ------------------------------------------------------------------
    def _defaults(self) -> dict[str, Any]:
        s = f"/{self.serial}"
        v: dict[str, Any] = {
            "/zi/about/dataserver": "Simulated LabOne Data Server",
            "/zi/about/version": "26.07", "/zi/about/fullversion": "26.07.0.0",
            "/zi/about/revision": 0,
            "/zi/devices/connected": "", "/zi/devices/visible": self.serial,
            f"{s}/features/devtype": self.devtype, f"{s}/features/options": self.options,
            f"{s}/features/serial": self.serial, f"{s}/system/fwrevision": 0,
            f"{s}/system/fpgarevision": 0, f"{s}/system/clocks/sampleclock/freq": 2.4e9,
            f"{s}/system/clocks/sampleclock/status": 0,
            f"{s}/system/clocks/referenceclock/source": 0,
            f"{s}/system/clocks/referenceclock/status": 0,
            f"{s}/system/awg/channelgrouping": 0,
            f"{s}/dios/0/mode": 0, f"{s}/dios/0/drive": 0, f"{s}/dios/0/output": 0,
            f"{s}/dios/0/input": 0, f"{s}/dios/0/interface": 0,
        }
        for ch in range(self.n_channels):
            p = f"{s}/sigouts/{ch}"
            v.update({f"{p}/on": 0, f"{p}/range": 1.0, f"{p}/offset": 0.0, f"{p}/direct": 0,
                      f"{p}/busy": 0})
        for c in range(len(self._cores)):
            p = f"{s}/awgs/{c}"
            v.update({f"{p}/enable": 0, f"{p}/single": 0, f"{p}/ready": 0,
                      f"{p}/elf/data": b"", f"{p}/elf/status": 0, f"{p}/elf/progress": 0.0,
                      f"{p}/sequencer/status": 0,
                      f"{p}/waveform/descriptors": '{"waveforms":[]}',
                      f"{p}/commandtable/data": "", f"{p}/commandtable/status": 0,
                      f"{p}/dio/mask/value": 0x3FF, f"{p}/dio/mask/shift": 0,
                      f"{p}/dio/valid/index": 31, f"{p}/dio/valid/polarity": 2,
                      f"{p}/dio/strobe/index": 30, f"{p}/dio/strobe/slope": 0})
            for o in (0, 1):
                v[f"{p}/outputs/{o}/amplitude"] = 1.0
                v[f"{p}/outputs/{o}/modulation/mode"] = 0
        return v

    def _norm(self, path: str) -> str:
        p = path.lower()
        return p if p.startswith("/") else "/" + p

    def _info(self, path: str) -> dict[str, Any] | None:
        info = self._doc.get(path)
        if info is None:
            m = re.fullmatch(rf"/{self.serial}/awgs/(\d+)/waveform/waves/(\d+)", path)
            if m and int(m.group(1)) < len(self._cores):
                return wave_node_info(self.serial, int(m.group(1)), int(m.group(2)))
        return info

    def _read(self, path: str) -> Any:
        p = self._norm(path)
        if p == "/zi/devices":
            return json.dumps({self.serial.upper(): {
                "INTERFACE": "1GbE" if self.connected else "none", "INTERFACES": "1GbE",
                "DEVICETYPE": self.devtype, "STATUSFLAGS": 0, "CONNECTED": self.connected}})
        if p not in self._values:
            if self._info(p) is not None and "/waveform/waves/" in p:
                return self._read_wave(p)
            raise NodeError(f"node {path} does not exist on {self.serial}")
        return self._values[p]

    def _write(self, path: str, value: Any) -> None:
        p = self._norm(path)
        info = self._info(p)
        if info is None:
            raise NodeError(f"node {path} does not exist on {self.serial}")
        if "Write" not in info["Properties"]:
            raise NodeError(f"node {path} is read-only")
        if "Options" in info and isinstance(value, str):
            value = self._enum_value(p, info, value)
        self._apply(p, value)
        self.set_count += 1

    @staticmethod
    def _enum_value(path: str, info: dict, value: str) -> int:
        for k, text in info["Options"].items():
            if re.search(rf'"{re.escape(value)}"', text):
                return int(k)
        raise ValueRefusedError(f"{path}: {value!r} is not one of its options "
                                f"{list(info['Options'].values())}")

    def _resolve(self, path: str) -> list[str]:
        p = self._norm(path)
        if any(c in p for c in "*?["):
            return [k for k in self._values if fnmatch.fnmatchcase(k, p)]
        return [p]

    # -- side effects of writes -------------------------------------------------------
    def _apply(self, p: str, value: Any) -> None:
        s = f"/{self.serial}"
        m = re.fullmatch(rf"{s}/awgs/(\d+)/(.*)", p)
        if m:
            core = self._cores[int(m.group(1))]
            sub = m.group(2)
            if sub == "elf/data":
                return self._load_elf(core, value)
            if sub.startswith("waveform/waves/"):
                return self._load_wave(core, int(sub.rsplit("/", 1)[1]), value)
            if sub == "commandtable/data":
                return self._load_table(core, value)
            if sub == "enable":
                return self._set_enable(core, int(value))
            if sub.startswith("outputs/") and sub.endswith("/amplitude"):
                if not -1.0 <= float(value) <= 1.0:
                    raise ValueRefusedError(f"{p}: amplitude {value} outside -1..1")
                self._invalidate(core)
        if p == f"{s}/system/clocks/sampleclock/freq":
            if not _MIN_CLOCK_HZ <= float(value) <= _MAX_CLOCK_HZ:
                raise ValueRefusedError(f"{p}: {value} Hz outside {_MIN_CLOCK_HZ:g}.."
                                        f"{_MAX_CLOCK_HZ:g} Hz")
            for c in self._cores:
                self._invalidate(c)
        if re.fullmatch(rf"{s}/sigouts/\d+/range", p):
            if not any(abs(float(value) - r) < 1e-9 for r in SIGOUT_RANGES_V):
                raise ValueRefusedError(f"{p}: range {value} V is not one of {SIGOUT_RANGES_V}")
        if re.fullmatch(rf"{s}/sigouts/\d+/on", p):
            for c in self._cores:
                self._invalidate(c)
        info = self._doc[p] if p in self._doc else {}
        self._values[p] = (float(value) if info.get("Type") == "Double" else
                           int(value) if "Integer" in info.get("Type", "") else value)

    def _invalidate(self, core: _Core) -> None:
        core.generation += 1
        core.idle_generation = -1
        for key in [k for k in self._layout_cache if k[0] == core.index]:
            del self._layout_cache[key]
        for key in [k for k in self._entry_cache if k[0] == core.index]:
            del self._entry_cache[key]
        for req_key in [k for k in self._request_cache if k >> 32 == core.index]:
            del self._request_cache[req_key]

    def _core_path(self, core: _Core, sub: str) -> str:
        return f"/{self.serial}/awgs/{core.index}/{sub}"

    def _load_elf(self, core: _Core, value: Any) -> None:
        if self._values[self._core_path(core, "enable")]:
            raise HDAWGSimError(f"AWG core {core.index}: cannot load a program while the "
                                "sequencer is running (disable it first)")
        elf = bytes(np.asarray(value, dtype=np.uint8).tobytes()
                    if not isinstance(value, (bytes, bytearray)) else value)
        sections = elf_sections(elf)
        wave_section, source_section = sections.get(".waveforms"), sections.get(".c")
        if wave_section is None or source_section is None:
            self._values[self._core_path(core, "elf/status")] = 1
            raise ElfError(f"AWG core {core.index}: ELF lacks the vendor compiler's "
                           ".waveforms/.c sections")
        descriptors = json.loads(wave_section.decode())["waveforms"]
        waves: dict[int, _Wave] = {}
        for idx, d in enumerate(descriptors):
            if not int(d.get("play_config", 0)):
                continue  # filler
            ch, n = int(d["channels"]), int(d["length"])
            raw = sections.get(f".wf_{d['name']}")
            if raw is None:
                i = q = np.zeros(n)
            else:
                i, q, _ = parse_awg_waveform(np.frombuffer(raw, dtype=np.uint16), channels=ch,
                                             markers_present=d["marker_bits"] not in ("0", "0;0"))
            waves[idx] = _Wave(ch, n, np.asarray(i, float), np.asarray(q if ch > 1 else
                                                                         np.zeros(n), float))
        core.source = source_section.decode(errors="replace")
        core.program = ProgramModel.from_source(core.source)
        core.descriptors, core.waves = descriptors, waves
        self._values[self._core_path(core, "elf/data")] = elf
        self._values[self._core_path(core, "elf/status")] = 0
        self._values[self._core_path(core, "elf/progress")] = 100.0
        self._values[self._core_path(core, "ready")] = 1
        self._values[self._core_path(core, "waveform/descriptors")] = json.dumps(
            {"waveforms": descriptors})
        self._invalidate(core)

    def _load_wave(self, core: _Core, index: int, value: Any) -> None:
        if core.waves is None:
            raise ProgramNotLoadedError(f"AWG core {core.index}: waveform {index} uploaded "
                                        "before any sequencer program")
        if index not in core.waves:
            raise WaveformUploadError(f"AWG core {core.index}: waveform index {index} is not "
                                      "assigned in the loaded program")
        w = core.waves[index]
        raw = np.asarray(value)
        if raw.dtype not in (np.uint16, np.int16):
            raise WaveformUploadError(f"AWG core {core.index}: waveform {index} must be in the "
                                      f"native 16-bit AWG format, got dtype {raw.dtype}")
        raw = raw.view(np.uint16).ravel()
        assert core.descriptors is not None  # set with core.waves by _load_elf
        d = core.descriptors[index]
        markers = d["marker_bits"] not in ("0", "0;0")
        per_sample = w.channels + (1 if markers else 0)
        if raw.size != w.length * per_sample:
            raise WaveformUploadError(
                f"AWG core {core.index}: waveform {index} is {w.length} samples x "
                f"{w.channels} channel(s) in the program, upload has {raw.size} words")
        i, q, _ = parse_awg_waveform(raw, channels=w.channels, markers_present=markers)
        w.i = np.asarray(i, float)
        w.q = np.asarray(q, float) if w.channels > 1 else np.zeros(w.length)
        self._invalidate(core)

    def _read_wave(self, p: str) -> Any:
        m = re.fullmatch(rf"/{self.serial}/awgs/(\d+)/waveform/waves/(\d+)", p)
        if m is None:
            raise NodeError(f"node {p} is not a waveform node")
        core, index = self._cores[int(m.group(1))], int(m.group(2))
        if not core.waves or index not in core.waves:
            raise NodeError(f"node {p}: waveform {index} not assigned")
        w = core.waves[index]
        return convert_awg_waveform(w.i, w.q if w.channels > 1 else None)

    def _load_table(self, core: _Core, value: Any) -> None:
        text = value if isinstance(value, str) else (
            bytes(value).decode() if isinstance(value, (bytes, bytearray)) else str(value))
        status = self._core_path(core, "commandtable/status")
        try:
            doc = json.loads(text)
            _ct_validator().validate(doc)
        except jsonschema.ValidationError as exc:
            self._values[status] = 8  # JSON/schema error bit, as the device reports it
            raise CommandTableError(f"AWG core {core.index}: command table rejected: "
                                    f"{exc.message} (at {'/'.join(map(str, exc.absolute_path))})") \
                from exc
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            self._values[status] = 8  # JSON/schema error bit, as the device reports it
            raise CommandTableError(f"AWG core {core.index}: command table rejected: {exc}") \
                from exc
        core.table = {int(e["index"]): e for e in doc.get("table", [])}
        self._values[self._core_path(core, "commandtable/data")] = text
        self._values[status] = 1
        self._invalidate(core)

    def _set_enable(self, core: _Core, on: int) -> None:
        path = self._core_path(core, "enable")
        program = core.program
        if on and program is None:
            self._values[path] = 0  # the device does not start without a program
            return
        was = self._values[path]
        self._values[path] = 1 if on else 0
        if on and not was and program is not None:
            core.busy_until_ns = core.enabled_at_ns = self.clock.now_ns()
            core.pos = core.shift = core.toggle_seen = 0
            self._dd(core, program.dd_idle, core.busy_until_ns)
        elif not on and was:
            self._dd(core, False, max(self.clock.now_ns(), core.busy_until_ns))

    def _dd(self, core: _Core, on: bool, t_ns: int) -> None:
        if on == core.dd_on:
            return
        core.dd_on = on
        self._dd_rows.append((t_ns, core.index, on))
        q = self.qubit_of_core.get(core.index)
        if self.backend is not None and q is not None:
            self.backend.set_dd(q, on, t_ns)

    # -- the DIO cable -------------------------------------------------------------------
    def dio_input(self, word: int, t_ns: int) -> int | None:
        """The controller drives the DIO inputs with ``word`` at ``t_ns``.

        Every core that drives a qubit and sees its valid bit plays the entry selected
        by its mask/shift. Returns when the last triggered entry finishes (ns), or
        None when no core reacted to the word.
        """
        word = int(word)
        self._values[self._dio_input_path] = word
        qoc, cores = self.qubit_of_core, self._cores
        if len(qoc) == 1:  # one driving core (the usual wiring): no scan
            for idx in qoc:
                return self._play_codeword(cores[idx], word, t_ns) \
                    if 0 <= idx < len(cores) else None
        end: int | None = None
        for core in cores:
            if core.index not in self.qubit_of_core:
                continue
            t = self._play_codeword(core, word, t_ns)
            if t is not None:
                end = t if end is None else max(end, t)
        return end

    def _play_codeword(self, core: _Core, word: int, t_ns: int) -> int | None:
        v = self._values
        if core.program is None:
            raise ProgramNotLoadedError(f"AWG core {core.index}: DIO word 0x{word:08x} arrived "
                                        "but no sequencer program is loaded")
        if not v[self._enable_paths[core.index]]:
            raise SequencerNotEnabledError(f"AWG core {core.index}: DIO word 0x{word:08x} "
                                           "arrived while the sequencer is not enabled")
        if not core.program.dio_table:
            raise ProgramIgnoresDIOError(f"AWG core {core.index}: the loaded program does not "
                                         "execute table entries from DIO codewords")
        if core.program.polled is not None:  # the program decodes the raw DIO itself
            return self._play_polled(core, core.program.polled, word, t_ns)
        base = f"/{self.serial}/awgs/{core.index}"
        pol = v[f"{base}/dio/valid/polarity"]
        valid = (word >> v[f"{base}/dio/valid/index"]) & 1
        if (pol == 1 and valid) or (pol == 2 and not valid):
            return None  # not a valid codeword for this core: the AWG does not react
        codeword = (word >> v[f"{base}/dio/mask/shift"]) & v[f"{base}/dio/mask/value"]
        entry = self._entry(core, codeword)
        n = entry.n_samples
        rate = v[self._rate_path]
        start = max(t_ns + self.dio_latency_ns, core.busy_until_ns)
        end = start + round_half_even(n * 1e9 / rate)
        self._dd(core, False, start)
        q = self.qubit_of_core[core.index]
        if self.backend is not None and entry.i is not None and entry.q is not None:
            self.backend.play_mw(q, entry.key, entry.i, entry.q, rate, start)
        self._play_rows.append((start, end, core.index, codeword, codeword, entry.wave_index, n))
        core.busy_until_ns = end
        if core.program.dd_idle:
            self._dd(core, True, end)
        return end

    # -- polled-DIO programs (getDIO at XY8 block boundaries) ------------------------------
    def _t_of(self, core: _Core, samples: int, rate: float) -> int:
        return core.enabled_at_ns + round_half_even(samples * 1e9 / rate)

    def _seg_samples(self, core: _Core, seg: Segment, cw: int | None = None) -> int:
        if seg[0] == "zero":
            return seg[1]
        index = cw if seg[0] == "cw" else seg[1]
        if index is None:
            raise HDAWGSimError(f"AWG core {core.index}: an idle block plays the requested "
                                "entry, but there is no request")
        return self._entry(core, index).n_samples

    def _idle_table(self, core: _Core, prog: PolledDIO
                    ) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
        """(shift -> (block samples, next shift), shift -> samples of its idle cycle or 0)."""
        if core.idle_generation == core.generation:
            return core.idle_blocks, core.idle_cycles
        blocks = {sh: (sum(self._seg_samples(core, g) for g in segs), nxt)
                  for sh, (segs, nxt) in prog.idle.items()}
        cycles: dict[int, int] = {}
        for sh in blocks:
            seen, cur, total = [], sh, 0
            while cur in blocks and cur not in seen:
                seen.append(cur)
                total += blocks[cur][0]
                cur = blocks[cur][1]
            cycles[sh] = total if cur == sh else 0
        core.idle_blocks, core.idle_cycles = blocks, cycles
        core.idle_generation = core.generation
        return blocks, cycles

    def _play_polled(self, core: _Core, prog: PolledDIO, word: int, t_ns: int) -> int | None:
        """Run the idle loop up to the first getDIO that sees ``word``; play the request."""
        rate: float = self._values[self._rate_path]
        blocks, cycles = self._idle_table(core, prog)
        need = math.ceil((t_ns + self.dio_latency_ns - core.enabled_at_ns) * rate / 1e9)
        pos, shift = core.pos, core.shift
        while pos < need:
            block = blocks.get(shift)
            if block is None:
                core.pos, core.shift = pos, shift
                raise HDAWGSimError(f"AWG core {core.index}: the program has no idle block "
                                    f"for DD shift {shift}")
            cyc = cycles[shift]
            if cyc and need - pos > cyc:  # skip whole idle cycles at once
                pos += ((need - pos) // cyc) * cyc
                continue
            n, shift = block
            if n <= 0:
                core.pos, core.shift = pos, shift
                raise HDAWGSimError(f"AWG core {core.index}: idle block of shift "
                                    f"{shift} plays nothing")
            pos += n
        core.pos, core.shift = pos, shift
        bit = (word >> prog.toggle_bit) & 1
        if bit == core.toggle_seen:
            return None  # no new request: the loop goes on idling
        core.toggle_seen = bit
        cw = word & prog.mask
        req = self._request_cache.get((core.index << 32) | cw)
        if req is None:
            req = self._request(core, prog, cw)
        entry, before, after, nxt = req
        n = entry.n_samples
        start, pos = core.enabled_at_ns, core.pos + before  # times as in _t_of (inlined)
        t0 = start + round_half_even(pos * 1e9 / rate)
        t1 = start + round_half_even((pos + n) * 1e9 / rate)
        idx = core.index
        program = core.program
        assert program is not None  # checked by _play_codeword
        prog_dd_idle = program.dd_idle
        if entry.train is not None:  # a DD train (carbon gate): the electron line plays it
            be, q = self.backend, self.qubit_of_core[idx]
            if core.dd_on:
                core.dd_on = False
                self._dd_rows.append((t0, idx, False))
                if be is not None:
                    be.set_dd(q, False, t0)
            if be is not None:
                offs, wis, wqs = entry.train
                be.play_train(q, entry.key, offs, wis, wqs, n, rate, t0)
            if prog_dd_idle:
                core.dd_on = True
                self._dd_rows.append((t1, idx, True))
                if be is not None:
                    be.set_dd(q, True, t1)
        elif entry.i is not None and entry.q is not None:
            # DD stops for the entry and resumes after it: self._dd(...), inlined (hot path)
            be, q = self.backend, self.qubit_of_core[idx]
            if core.dd_on:
                core.dd_on = False
                self._dd_rows.append((t0, idx, False))
                if be is not None:
                    be.set_dd(q, False, t0)
            if be is not None:
                be.play_mw(q, entry.key, entry.i, entry.q, rate, t0)
            if prog_dd_idle:
                core.dd_on = True
                self._dd_rows.append((t1, idx, True))
                if be is not None:
                    be.set_dd(q, True, t1)
        self._play_rows.append((t0, t1, idx, cw, cw, entry.wave_index, n))
        core.pos = pos = core.pos + before + n + after
        core.shift = nxt
        core.busy_until_ns = end = start + round_half_even(pos * 1e9 / rate)  # self._t_of(...)
        return end

    def _request(self, core: _Core, prog: PolledDIO, cw: int) -> tuple[_Entry, int, int, int]:
        """What a request for codeword ``cw`` plays: (entry, samples before it, samples
        after it, next DD shift); cached per core and codeword until anything changes."""
        branch = next((b for b in prog.branches if cw < b[0]), None)
        if branch is None:
            raise UnknownCodewordError(f"AWG core {core.index}: codeword {cw} selects no "
                                       "table entry of the program")
        if not any(g[0] == "cw" for g in branch[1]):  # a fixed branch: a carbon gate's train
            entry = self._train(core, cw, branch[1])
            before, after = 0, 0
        else:
            entry = self._entry(core, cw)
            before, after = self._branch_layout(core, branch)
        req = (entry, before, after, branch[2])
        self._request_cache[(core.index << 32) | cw] = req
        return req

    def _train(self, core: _Core, cw: int, segs: tuple) -> _Entry:
        """The samples a fixed branch plays: every command-table pulse at its offset."""
        offs: list[int] = []
        wis: list[np.ndarray] = []
        wqs: list[np.ndarray] = []
        pos = 0
        for g in segs:
            if g[0] == "ct":
                e = self._entry(core, int(g[1]))
                if e.i is not None and e.q is not None:
                    offs.append(pos)
                    wis.append(e.i)
                    wqs.append(e.q)
                pos += e.n_samples
            else:
                pos += int(g[1])
        key = (self.serial, core.index, -1 - cw, core.generation)
        return _Entry(-2, pos, None, None, key, (offs, wis, wqs))

    def _branch_layout(self, core: _Core, branch: tuple) -> tuple[int, int]:
        """Samples a branch plays before and after its requested entry (cached)."""
        key = (core.index, branch[0])
        hit = self._layout_cache.get(key)
        if hit is not None:
            return hit
        segs = branch[1]
        if sum(1 for g in segs if g[0] == "cw") != 1:
            raise HDAWGSimError(f"AWG core {core.index}: branch 'cw < {branch[0]}' must play "
                                "the requested entry exactly once")
        k = next(i for i, g in enumerate(segs) if g[0] == "cw")
        hit = (sum(self._seg_samples(core, g) for g in segs[:k]),
               sum(self._seg_samples(core, g) for g in segs[k + 1:]))
        self._layout_cache[key] = hit
        return hit

    def _entry(self, core: _Core, index: int) -> _Entry:
        cached = self._entry_cache.get((core.index, index))
        if cached is not None:
            return cached
        if not core.table or index not in core.table:
            raise UnknownCodewordError(f"AWG core {core.index}: codeword {index} selects no "
                                       "command-table entry"
                                       + ("" if core.table else " (no command table uploaded)"))
        e = core.table[index]
        wf = e.get("waveform", {})
        key = (self.serial, core.index, index, core.generation)
        if "index" not in wf:  # playZero of `length` samples, or registers only
            n = int(wf.get("length", 0)) if wf.get("playZero") else 0
            ent = _Entry(-1, n, None, None, key)
            self._entry_cache[(core.index, index)] = ent
            return ent
        widx = int(wf["index"])
        if widx not in (core.waves or {}):
            raise CommandTableError(f"AWG core {core.index}: table entry {index} plays "
                                    f"waveform {widx}, which the program does not assign")
        assert core.waves is not None  # checked just above
        w = core.waves[widx]
        v, base = self._values, f"/{self.serial}"
        a0 = float(e.get("amplitude0", {}).get("value", 1.0))
        a1 = float(e.get("amplitude1", {}).get("value", 1.0))
        ch0, ch1 = 2 * core.index, 2 * core.index + 1
        g0 = v[f"{base}/awgs/{core.index}/outputs/0/amplitude"] * v[f"{base}/sigouts/{ch0}/on"]
        g1 = v[f"{base}/awgs/{core.index}/outputs/1/amplitude"] * v[f"{base}/sigouts/{ch1}/on"]
        i = w.i * (a0 * g0)
        q = w.q * (a1 * g1)
        i.setflags(write=False)
        q.setflags(write=False)
        ent = _Entry(widx, i.size, i, q, key)
        self._entry_cache[(core.index, index)] = ent
        return ent

    def core_busy_until_ns(self, core: int = 0) -> int:
        """When the core finishes what it is playing (ns)."""
        return self._cores[core].busy_until_ns

    def program_source(self, core: int = 0) -> str:
        """SeqC source of the loaded program (from the ELF), '' if none."""
        return self._cores[core].source

    # -- ziDAQServer surface ---------------------------------------------------------
    def listNodesJSON(self, path: str, *args: Any, **kwargs: Any) -> str:  # noqa: N802
        p = self._norm(path) if path != "*" else "*"
        if p == "*":
            return json.dumps(self._doc)
        info = self._info(p)
        if info is not None and not p.endswith("*"):
            return json.dumps({p: info})
        pat = p if p.endswith("*") else p + "*"
        return json.dumps({k: i for k, i in self._doc.items() if fnmatch.fnmatchcase(k, pat)})

    def listNodes(self, path: str, *args: Any, **kwargs: Any) -> list[str]:  # noqa: N802
        pat = self._norm(path)
        pat = pat if pat.endswith("*") else pat + "*"
        return [i["Node"] for k, i in self._doc.items() if fnmatch.fnmatchcase(k, pat)]

    def get(self, path: str, *args: Any, flat: bool = False, settingsonly: bool = True,
            **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = OrderedDict()
        for part in str(path).split(","):
            p = self._norm(part.strip())
            paths = self._resolve(p) if any(c in p for c in "*?[") else (
                [p] if p in self._values or self._info(p) else
                [k for k in self._values if k.startswith(p + "/")])
            for k in paths:
                info = self._info(k) or {}
                if settingsonly and "Setting" not in info.get("Properties", ""):
                    continue
                val = self._read(k)
                ts = self.clock.now_ns()
                if info.get("Type") == "ZIVectorData":
                    out[k] = [{"timestamp": ts, "vector": val}]
                else:
                    out[k] = {"timestamp": np.array([ts]), "value": np.array([val])}
        return out

    def getInt(self, path: str) -> int:  # noqa: N802
        return int(self._read(path))

    def getDouble(self, path: str) -> float:  # noqa: N802
        return float(self._read(path))

    def getString(self, path: str) -> str:  # noqa: N802
        return str(self._read(path))

    def set(self, path: Any, value: Any = None, **kwargs: Any) -> None:
        pairs = [(path, value)] if isinstance(path, str) else list(path)
        for node, val in pairs:
            targets = self._resolve(node)
            if not targets:
                raise NodeError(f"node {node} does not exist on {self.serial}")
            for t in targets:
                self._write(t, val)

    def setVector(self, path: str, value: Any = None, **kwargs: Any) -> None:  # noqa: N802
        self.set(path, value)

    def setInt(self, path: str, value: Any = None, **kwargs: Any) -> None:  # noqa: N802
        self.set(path, value)

    def setDouble(self, path: str, value: Any = None, **kwargs: Any) -> None:  # noqa: N802
        self.set(path, value)

    def setString(self, path: str, value: Any = None, **kwargs: Any) -> None:  # noqa: N802
        self.set(path, value)

    def _sync_set(self, path: str, value: Any) -> Any:
        self.set(path, value)
        return self._read(path)

    def syncSetInt(self, path: str, value: int, **kwargs: Any) -> int:  # noqa: N802
        return int(self._sync_set(path, value))

    def syncSetDouble(self, path: str, value: float, **kwargs: Any) -> float:  # noqa: N802
        return float(self._sync_set(path, value))

    def syncSetString(self, path: str, value: str, **kwargs: Any) -> str:  # noqa: N802
        return str(self._sync_set(path, value))

    def connectDevice(self, serial: str, interface: str = "1GbE", *args: Any) -> None:  # noqa: N802
        if serial.lower() != self.serial:
            raise HDAWGSimError(f"device {serial} not found by the data server "
                                f"(visible: {self.serial})")
        self.connected = True
        self._values["/zi/devices/connected"] = self.serial

    def disconnectDevice(self, serial: str) -> None:  # noqa: N802
        self.connected = False
        self._values["/zi/devices/connected"] = ""

    def sync(self) -> None:
        """All sets are applied at once in the simulation."""

    def subscribe(self, path: str) -> None:
        raise HDAWGSimError("the simulated data server does not stream (subscribe)")

    def unsubscribe(self, path: str) -> None:
        """Nothing is subscribed."""

    def poll(self, *args: Any, **kwargs: Any) -> dict:
        return {}
