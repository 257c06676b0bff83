"""Calibration scans through the NV station's drivers.

Everything here talks to the instruments only through their QCoDeS drivers: the
controller (``ADwinController``) gets 4-byte QDevice instruction messages (INIT,
PLAY <table entry>, MEASURE) via ``adwin.transact``; the AWG (``ZIHDAWG``) gets
programs, waveforms and command tables via its upload methods. Real or simulated
backends sit below the drivers; nothing here asks which.

Two kinds of AWG program are used:

* the NV node program (:mod:`qnodeos_hw.sequences.hdawg_program`): DD plays between
  table entries; entries start at XY8 block boundaries (80 us with the default tau).
  Used for the DD coherence scan and single-shot readout (SSRO).
* a *calibration program* (:func:`build_calibration_program`): no DD; every
  command-table entry is one whole pulse sequence (e.g. two pi pulses, or
  pi/2 - free evolution - pi/2) played at sample precision the moment the controller
  raises its codeword (``executeTableEntry(getDIOTriggered())``, DIO "valid"
  protocol). Command-table ``amplitude0/1`` scale one uploaded waveform, as an AWG
  amplitude sweep does on the device. Used for Rabi and Ramsey: the controller's
  10 us tick is far too coarse for free evolution within T2* (~5 us), and an
  amplitude sweep must not scale the DD pulses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from zhinst.toolkit import CommandTable, Waveforms

from ..qdevice import InstructionMessage, Opcode, ResponseKind, ResponseMessage, decode, encode
from ..sequences.hdawg_program import hdawg_ct_schema
from ..waveforms.table import WaveformTable
from ..waveforms.xy8 import GRANULARITY

#: controller DIO flag bit used by calibration programs (codeword = bits below it)
CAL_DIO_FLAG_BIT = 8
#: most command-table entries a calibration program can select (8-bit codeword)
MAX_CAL_ENTRIES = 1 << CAL_DIO_FLAG_BIT

Progress = Callable[[int], Any]


class ScanError(RuntimeError):
    """A scan could not run as asked; ``item`` names the argument or instruction at fault."""

    def __init__(self, item: str, message: str) -> None:
        super().__init__(f"{item}: {message}")
        self.item = item


class InitFailedError(ScanError):
    """INIT kept failing (charge-resonance check never passed)."""


class UnexpectedResponseError(ScanError):
    """The controller answered an instruction with an unexpected response kind."""


# ------------------------------------------------------------------------ the mailbox
class Mailbox:
    """QDevice instructions as 4-byte messages through the controller driver.

    ``adwin``: the ``ADwinController`` (anything with ``transact(bytes) -> bytes``);
    ``qubit``: the qubit address; ``max_init_attempts``: INITs tried before
    :class:`InitFailedError` (the controller itself repeats the CR check).
    """

    def __init__(self, adwin: Any, qubit: int = 0, max_init_attempts: int = 10) -> None:
        self.adwin, self.qubit, self.max_init_attempts = adwin, qubit, max_init_attempts
        self._seq = 0

    def __call__(self, op: Opcode, arg: int = 0) -> ResponseMessage:
        """Send one instruction, wait for and decode its response."""
        self._seq ^= 1
        raw = self.adwin.transact(encode(InstructionMessage(op, self.qubit, arg, self._seq)))
        return decode(raw)  # type: ignore[return-value]

    def init(self) -> None:
        """INIT (CR check + spin pumping), repeated on FAILURE."""
        for _ in range(self.max_init_attempts):
            r = self(Opcode.INIT)
            if r.kind is ResponseKind.SUCCESS:
                return
            if r.kind is not ResponseKind.FAILURE:
                raise UnexpectedResponseError("INIT", f"answered {r.kind.name}")
        raise InitFailedError("INIT", f"failed {self.max_init_attempts} times in a row")

    def play(self, entry: int) -> None:
        """PLAY one AWG table entry (the controller waits until it has played)."""
        r = self(Opcode.PLAY, entry)
        if r.kind is not ResponseKind.SUCCESS:
            raise UnexpectedResponseError(f"PLAY {entry}", f"answered {r.kind.name}")

    def measure(self) -> int:
        """Single-shot readout: the reported bit."""
        r = self(Opcode.MEASURE)
        if r.kind is not ResponseKind.OUTCOME:
            raise UnexpectedResponseError("MEASURE", f"answered {r.kind.name}")
        return int(r.argument)


# ------------------------------------------------------------ calibration programs
@dataclass(frozen=True, eq=False)
class CalibrationProgram:
    """A DD-free HDAWG program whose command-table entries are whole pulse sequences.

    ``entries[k] = (waveform index, amplitude)`` is command-table entry / codeword
    ``k``; ``lengths[w]`` the samples of waveform ``w``.
    """

    seqc: str
    waveforms: Waveforms
    command_table: CommandTable
    sample_rate_hz: float
    entries: tuple[tuple[int, float], ...]
    lengths: tuple[int, ...]


def _pad(x: np.ndarray) -> np.ndarray:
    n = max(32, -(-x.size // GRANULARITY) * GRANULARITY)
    return np.concatenate((x, np.zeros(n - x.size))) if n != x.size else x


def build_calibration_program(waves: Sequence[tuple[np.ndarray, np.ndarray]],
                              entries: Sequence[tuple[int, float]],
                              sample_rate_hz: float) -> CalibrationProgram:
    """SeqC + waveforms + command table: entry ``k`` plays ``waves[w]`` (I, Q full-scale
    samples, zero-padded to the 16-sample granularity) scaled by ``amplitude``.

    Raises :class:`ScanError` for too many entries, an unknown waveform index, or an
    amplitude outside -1..1 (the command-table range)."""
    if not entries:
        raise ScanError("entries", "a calibration program needs at least one entry")
    if len(entries) > MAX_CAL_ENTRIES:
        raise ScanError("entries", f"{len(entries)} entries; the {CAL_DIO_FLAG_BIT}-bit "
                                   f"codeword selects at most {MAX_CAL_ENTRIES}")
    wf = Waveforms()
    lengths = []
    for w, (wi, wq) in enumerate(waves):
        wi, wq = np.asarray(wi, float), np.asarray(wq, float)
        if wi.shape != wq.shape or wi.ndim != 1:
            raise ScanError(f"waves[{w}]", f"I and Q must be equal 1-d arrays, got {wi.shape}, "
                                           f"{wq.shape}")
        wf[w] = (_pad(wi), _pad(wq))
        lengths.append(_pad(wi).size)
    ct = CommandTable(hdawg_ct_schema(), active_validation=False)
    ct.header.userString = "qnodeos calibration"
    for k, (w, amp) in enumerate(entries):
        if not 0 <= w < len(lengths):
            raise ScanError(f"entries[{k}]", f"waveform {w} does not exist")
        if not -1.0 <= amp <= 1.0:
            raise ScanError(f"entries[{k}]", f"amplitude {amp} outside the command-table "
                                             "range -1..1")
        ct.table[k].waveform.index = int(w)
        ct.table[k].amplitude0.value = float(amp)
        ct.table[k].amplitude1.value = float(amp)
    ct.as_dict()  # schema validation (raises ValidationError)
    seqc = "\n".join([
        "// qnodeos-hw calibration program: no DD; DIO codeword -> command-table entry",
        f"// {len(entries)} entries, {len(lengths)} waveforms",
        wf.get_sequence_snippet(),
        "while (true) {",
        "    executeTableEntry(getDIOTriggered());",
        "}",
    ]) + "\n"
    return CalibrationProgram(seqc, wf, ct, float(sample_rate_hz),
                              tuple((int(w), float(a)) for w, a in entries), tuple(lengths))


def load_calibration_program(hdawg: Any, adwin: Any, mw: Any, program: CalibrationProgram,
                             outputs: tuple[int, ...] = (1, 2)) -> None:
    """Upload ``program`` to AWG core 1 through the HDAWG driver and set the codeword
    path for it: the AWG takes the codeword from DIO bits 0..7 when bit 8 is high,
    the controller raises bit 8 with every PLAY ('valid' protocol); outputs on at
    amplitude 1, MW source on."""
    hdawg.sample_rate(program.sample_rate_hz)
    hdawg.configure_codewords(1, mask=MAX_CAL_ENTRIES - 1, shift=0,
                              valid_index=CAL_DIO_FLAG_BIT, valid_polarity="high")
    for ch in outputs:
        hdawg.output(ch).amplitude(1.0)
        hdawg.output(ch).output("on")
    hdawg.upload(program.seqc, program.waveforms, program.command_table, core=1, start=True)
    adwin.configure_dio("valid", CAL_DIO_FLAG_BIT)
    mw.status("on")


def rabi_headroom(table: WaveformTable, wanted: float = 1.5) -> float:
    """How far above the calibrated pi amplitude a Rabi scan can reach: ``wanted``, or
    less when the x(pi) waveform's peak sample times it would exceed full scale."""
    x180 = table.by_rotation("x", 1, 0)
    peak = float(np.max(np.abs(x180.samples_i + 1j * x180.samples_q)))
    return float(min(wanted, 1.0 / peak)) if peak > 0 else wanted


def rabi_program(table: WaveformTable, amplitudes: Sequence[float], pulses: int = 2,
                 sample_rate_hz: float | None = None, headroom: float = 1.0) -> CalibrationProgram:
    """Entry ``k``: ``pulses`` calibrated x(pi) waveforms back to back, scaled by
    ``headroom * amplitudes[k]`` (``headroom``: the uploaded waveform is the calibrated
    pi pulse times this, so that a command-table amplitude of 1 reaches past the
    calibrated pi amplitude): P(1) = sin^2(pulses * pi * a / (2 a_pi)), ``a_pi`` in
    command-table units."""
    if pulses < 1:
        raise ScanError("pulses", f"must be >= 1, got {pulses}")
    x180 = table.by_rotation("x", 1, 0)
    wave = (np.tile(x180.samples_i, pulses) * headroom, np.tile(x180.samples_q, pulses) * headroom)
    if float(np.max(np.abs(wave[0] + 1j * wave[1]))) > 1.0 + 1e-12:
        raise ScanError("headroom", f"{headroom}: the scaled pi pulse exceeds full scale")
    return build_calibration_program([wave], [(0, float(a)) for a in amplitudes],
                                     sample_rate_hz or x180.sample_rate_hz)


def ramsey_program(table: WaveformTable, delays_samples: Sequence[int],
                   virtual_detuning_hz: float = 0.0,
                   sample_rate_hz: float | None = None) -> CalibrationProgram:
    """Entries ``2k`` / ``2k+1``: x(pi/2), ``delays_samples[k]`` zero samples (free
    evolution), then a pi/2 pulse about the axis at phase ``2 pi f_v t_k`` (entry 2k)
    or ``2 pi f_v t_k + pi/2`` (2k+1), where ``t_k`` is the delay and ``f_v`` =
    ``virtual_detuning_hz``: the phase ramp of the last pulse makes the fringe
    oscillate at ``detuning - f_v`` even at zero detuning. Delays must be multiples of
    16 samples."""
    x90 = table.by_rotation("x", 1, 1)
    rate = sample_rate_hz or x90.sample_rate_hz
    iq = x90.samples_i + 1j * x90.samples_q
    waves = []
    for k, n in enumerate(delays_samples):
        if n < 0 or n % GRANULARITY:
            raise ScanError(f"delays_samples[{k}]", f"{n} is not a non-negative multiple of "
                                                    f"{GRANULARITY} samples")
        gap = np.zeros(int(n))
        for quadrature in (0, 1):
            last = iq * np.exp(1j * (2 * np.pi * virtual_detuning_hz * n / rate
                                     + quadrature * np.pi / 2))
            waves.append((np.concatenate((x90.samples_i, gap, last.real)),
                          np.concatenate((x90.samples_q, gap, last.imag))))
    return build_calibration_program(waves, [(w, 1.0) for w in range(len(waves))], rate)


# ------------------------------------------------------------------------------ scans
def entry_scan(box: Mailbox, entries: Sequence[int], shots: int,
               progress: Progress | None = None,
               on_point: Callable[[int, int], Any] | None = None) -> np.ndarray:
    """For each entry: ``shots`` x (INIT, PLAY entry, MEASURE). Returns the counts of
    outcome 1 per entry; ``on_point(k, ones_k)`` is called as each entry is done."""
    ones = np.zeros(len(entries), dtype=np.int64)
    for k, e in enumerate(entries):
        for _ in range(shots):
            box.init()
            box.play(e)
            ones[k] += box.measure()
        if progress:
            progress(shots)
        if on_point:
            on_point(k, int(ones[k]))
    return ones


def dd_decay_scan(box: Mailbox, wait_ns: Callable[[int], None], x90: int, xm90: int,
                  waits_ns: Sequence[int], shots: int, progress: Progress | None = None,
                  on_point: Callable[[int, int, int], Any] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """DD coherence on the NV node program: INIT, x(pi/2), DD for ``wait`` (the AWG
    idles with XY8 while the controller waits), then x(-pi/2) (back to |0>) or
    x(pi/2) (to |1>), MEASURE. Returns the counts of outcome 0 for the two final
    pulses, per wait: ``(zeros_after_xm90, zeros_after_x90)``. Their difference over
    ``shots`` is ``contrast * coherence(wait)`` with the readout offset cancelled.
    ``on_point(k, zeros_after_xm90_k, zeros_after_x90_k)`` as each wait is done."""
    back = np.zeros(len(waits_ns), dtype=np.int64)
    fwd = np.zeros(len(waits_ns), dtype=np.int64)
    for k, w in enumerate(waits_ns):
        for last, out in ((xm90, back), (x90, fwd)):
            for _ in range(shots):
                box.init()
                box.play(x90)
                wait_ns(int(w))
                box.play(last)
                out[k] += 1 - box.measure()
        if progress:
            progress(2 * shots)
        if on_point:
            on_point(k, int(back[k]), int(fwd[k]))
    return back, fwd


@dataclass(frozen=True)
class SSROCounts:
    """Single-shot readout counts. ``herald0``: shots whose first readout after INIT
    reported 0 (out of ``shots`` per prepared state); ``zero_given_0`` /
    ``one_given_1``: second-readout reports among heralded shots, after no pulse /
    after x(pi)."""

    shots: int
    herald0_prep0: int
    herald0_prep1: int
    zero_given_0: int
    one_given_1: int
    #: photon-count histograms of the second readout (element n: shots with n photons),
    #: heralded |0> (bright) and heralded |0> + x(pi) (dark); empty without a histogram
    bright_hist: tuple[int, ...] = ()
    dark_hist: tuple[int, ...] = ()


def _counted(histogram: Callable[[], Sequence[int]], measure: Callable[[], int],
             into: list[int]) -> int:
    """Run one readout and add its photon count (the one bin the controller's histogram
    gained) to ``into``."""
    before = list(histogram())
    bit = measure()
    after = list(histogram())
    for n, (a, b) in enumerate(zip(before, after)):
        if b != a:
            if len(into) < len(after):
                into.extend([0] * (len(after) - len(into)))
            into[n] += b - a
    return bit


def ssro_scan(box: Mailbox, x180: int, shots: int, progress: Progress | None = None,
              chunk: int = 500, on_chunk: Callable[[SSROCounts], Any] | None = None,
              histogram: Callable[[], Sequence[int]] | None = None) -> SSROCounts:
    """``shots`` x (INIT, MEASURE herald, MEASURE) and ``shots`` x (INIT, MEASURE herald,
    PLAY x(pi), MEASURE). The herald readout is the raw assignment measurement after
    INIT (it includes the initialisation error); keeping only shots heralded 0
    prepares |0> (|1> after the pi pulse) with the readout's projection, so the
    second readout measures F0 / F1 free of the INIT error. ``on_chunk(counts)``: the
    counts of each chunk of ``chunk`` shots per state, as it is done. ``histogram``: the
    controller's photon-count histogram (``ADwinController.ssro_histogram``): with it the
    second readouts' photon counts are collected per prepared state."""
    h0 = h1 = z0 = o1 = 0
    bright: list[int] = []
    dark: list[int] = []
    done = 0

    def second(into: list[int]) -> int:
        return box.measure() if histogram is None else _counted(histogram, box.measure, into)

    while done < shots:
        n = min(chunk, shots - done)
        before = (h0, h1, z0, o1)
        for _ in range(n):
            box.init()
            if box.measure() == 0:
                h0 += 1
                z0 += 1 - second(bright)
        for _ in range(n):
            box.init()
            if box.measure() == 0:
                h1 += 1
                box.play(x180)
                o1 += second(dark)
        done += n
        if progress:
            progress(2 * n)
        if on_chunk:
            on_chunk(SSROCounts(n, h0 - before[0], h1 - before[1], z0 - before[2],
                                o1 - before[3]))
    width = max(len(bright), len(dark))
    pad = (lambda h: tuple(h + [0] * (width - len(h))))
    return SSROCounts(shots, h0, h1, z0, o1, pad(bright), pad(dark))
