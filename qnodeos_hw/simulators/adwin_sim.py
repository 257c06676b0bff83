"""A simulated ADwin-Pro II running the NV QDevice controller process, in virtual time.

:class:`SimulatedADwin` has the method names of the ``ADwin`` package's ``ADwin``
class (``Boot``, ``Load_Process``, ``Start_Process``, ``Set_Par``/``Get_Par``,
``SetFifo_Long``/``GetFifo_Long``, ``Fifo_Full``/``Fifo_Empty`` ...), so the
QCoDeS driver :class:`qnodeos_hw.instruments.adwin.ADwinController` runs on it
unchanged. Refusals are :class:`ADwin.ADwinError` subclasses, as the vendor
library raises.

The controller process (the ADbasic program on the real device) follows the
conventions in :mod:`qnodeos_hw.instruments.adwin` (Par/FIFO numbers). Each
tick it takes at most one 4-byte instruction from FIFO 1 and answers in FIFO 2
on the first tick after the instruction completes (:class:`~qnodeos_hw.qdevice.
TickLink` enforces the tick rules):

* ``PLAY n``: drives DIO codeword ``n`` into the HDAWG, with the flag bit ``Par_9``
  either high (``Par_11`` = 0, "valid" protocol) or flipped from the previous
  request (``Par_11`` = 1, "toggle" protocol, the default: our NV SeqC program polls
  ``getDIO()`` at XY8 block boundaries), waits for the AWG to finish -> SUCCESS;
* ``PLAY`` is checked against the entry-target table (``Data_3``: entry index ->
  the qubit it acts on, loaded by the driver from the waveform table; 0 = electron,
  k = carbon k): a PLAY whose qubit field names another qubit is refused
  (:class:`InstructionRejectedError`), so an instruction never silently reaches the
  wrong qubit. Without a loaded table every entry acts on the electron.
* ``INIT``: charge-resonance check (repeated up to ``Par_4`` times, each failure followed
  by a charge repump of ``Par_13`` ns, until the counts reach ``Par_1``), then spin
  pumping -> SUCCESS, or FAILURE; INIT of a carbon is its initialisation (``Par_14`` ns;
  effective: the electron is left as it was) -> SUCCESS;
* ``ROT_Z`` on a carbon: a frame update (virtual Z) by ``n pi / 2^d`` (the generic
  rotation word), no time -> SUCCESS;
* ``MEASURE`` (electron only): single-shot readout; counts >= ``Par_2`` read 0 ->
  OUTCOME; every readout's photon counts go into the histogram ``Data_4``
  (``Data_4[n+1]`` = readouts with n counts, n < 63; the last bin collects the rest);
* ``ENT_KEEP``/``ENT_MEASURE``: an attempt window of ``argument`` heralded attempts; with
  ``Par_15`` (optical links, i.e. heralding stations) above 1, ``argument & 0xFFF``
  attempts on link ``argument >> 12`` (a repeater node has several) (0 or 1: one attempt; each ``Par_8`` ns, which must equal the physics' attempt
  duration), ending at the first herald; ``ENT_MEASURE`` adds the readout window
  after a herald -> ENT_SUCCESS/ENT_FAILURE;
* ``NOP`` -> SUCCESS. Other opcodes are refused (the NV QDriver maps gates to PLAY).

Discrete-event: time moves only when the host acts. A poll of an empty response
FIFO while an instruction is in flight jumps to that instruction's response tick
(the host "waited"); nothing spins per tick.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Protocol, Sequence

from ..qdevice.clock import Clock
from ..qdevice.errors import DeviceBusyError, FifoOverflowError, MessageError
from ..qdevice.instructions import Response, ResponseKind
from ..qdevice.message import InstructionMessage, Opcode, decode, encode, response_message
from ..qdevice.spec import QDeviceSpec, nv_spec
from ..qdevice.ticklink import BusyPolicy, TickLink
from .adwin_errors import (  # noqa: F401  (re-exported: the simulator's errors)
    AWGNoResponseError, ControllerBusyError, FifoUnderflowError, InstructionFifoOverflowError,
    InstructionRejectedError, NotBootedError, ParameterRefusedError, ProcessNotRunningError,
    SimADwinError, UnknownProcessError)
from .qubit_backend import NVQubitBackend

# Par / FIFO conventions of the controller process (mirrored in instruments.adwin)
PAR_CR_THRESHOLD: Final = 1
PAR_SSRO_THRESHOLD: Final = 2
PAR_CR_MAX_ATTEMPTS: Final = 4
PAR_INIT_NS: Final = 5
PAR_READOUT_NS: Final = 6
PAR_CR_CHECK_NS: Final = 7
PAR_ENT_ATTEMPT_NS: Final = 8
PAR_DIO_FLAG_BIT: Final = 9
PAR_TICKS: Final = 10
PAR_DIO_PROTOCOL: Final = 11
PAR_INSTRUCTIONS: Final = 12
PAR_CHARGE_REPUMP_NS: Final = 13
PAR_CARBON_INIT_NS: Final = 14
PAR_OPTICAL_LINKS: Final = 15
DATA_ENTRY_TARGETS: Final = 3
DATA_SSRO_HISTOGRAM: Final = 4
SSRO_HISTOGRAM_BINS: Final = 64
#: ENT_KEEP / ENT_MEASURE argument: attempt budget in bits 0..11, optical link in 12..15
ENT_BUDGET_MASK: Final = 0xFFF
ENT_LINK_SHIFT: Final = 12
DIO_PROTOCOL_VALID: Final = 0
DIO_PROTOCOL_TOGGLE: Final = 1
FIFO_INSTRUCTIONS: Final = 1
FIFO_RESPONSES: Final = 2
CONTROLLER_PROCESS: Final = "qnodeos_nv_controller"
_READ_ONLY_PARS: Final = frozenset({PAR_TICKS, PAR_INSTRUCTIONS})
_SUPPORTED = frozenset({Opcode.NOP, Opcode.INIT, Opcode.MEASURE, Opcode.ENT_KEEP,
                        Opcode.ENT_MEASURE, Opcode.PLAY, Opcode.ROT_Z})
# enum members as module constants: the hot path compares against these (an Enum class
# attribute lookup costs several times a global lookup)
_OP_PLAY: Final = Opcode.PLAY
_OP_NOP: Final = Opcode.NOP
_OP_INIT: Final = Opcode.INIT
_OP_MEASURE: Final = Opcode.MEASURE
_OP_ENT_MEASURE: Final = Opcode.ENT_MEASURE
_OP_ROT_Z: Final = Opcode.ROT_Z
# response kinds as plain ints (cheap to hash in the response-word cache key)
_R_SUCCESS: Final = int(ResponseKind.SUCCESS)
_R_FAILURE: Final = int(ResponseKind.FAILURE)
_R_OUTCOME: Final = int(ResponseKind.OUTCOME)
_R_ENT_SUCCESS: Final = int(ResponseKind.ENT_SUCCESS)
_R_ENT_FAILURE: Final = int(ResponseKind.ENT_FAILURE)
_ACCEPTED_MAX: Final = 1 << 16  # distinct instruction words remembered as validated
_WORD_VALUES: dict[bytes, int] = {}  # response word -> int32 (a few dozen distinct words)


def _word_value(raw: bytes) -> int:
    """A 4-byte message as the int32 FIFO value (memoised: a dict hit is several times
    cheaper than ``int.from_bytes`` with its keyword from compiled code)."""
    v = _WORD_VALUES.get(raw)
    if v is None:
        v = int.from_bytes(raw, "big", signed=True)
        if len(_WORD_VALUES) < 4096:
            _WORD_VALUES[raw] = v
    return v


_DEFAULT_PARS = {PAR_CR_THRESHOLD: 30, PAR_SSRO_THRESHOLD: 1, PAR_CR_MAX_ATTEMPTS: 100,
                 PAR_INIT_NS: 20_000, PAR_READOUT_NS: 10_000, PAR_CR_CHECK_NS: 50_000,
                 PAR_ENT_ATTEMPT_NS: 5_000, PAR_DIO_FLAG_BIT: 8,
                 PAR_DIO_PROTOCOL: DIO_PROTOCOL_TOGGLE, PAR_CHARGE_REPUMP_NS: 10_000,
                 PAR_CARBON_INIT_NS: 500_000, PAR_OPTICAL_LINKS: 1}


class DIOTarget(Protocol):
    """Whatever hangs on the controller's DIO output (the HDAWG's DIO input)."""

    def dio_input(self, word: int, t_ns: int) -> int | None:
        """Apply ``word`` at ``t_ns``; return when the triggered playback ends (ns), or
        None if nothing reacted to the word."""
        ...


class _LinkClock:
    """The node clock as seen by the tick link: a response processed late (the host
    moved the shared clock on meanwhile) is stamped at its tick without moving time back."""

    __slots__ = ("_clock", "now_ns", "_advance")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.now_ns = clock.now_ns  # the node clock's own method (no extra call layer)
        self._advance = clock.advance_to

    def advance_to(self, t_ns: int) -> None:
        if t_ns > self.now_ns():
            self._advance(t_ns)


class _ControllerProcess:
    """The controller's instruction handling (a TickDevice for the TickLink)."""

    def __init__(self, owner: "SimulatedADwin") -> None:
        self.o = owner
        self._pending: list[bytes] = []  # started, response not yet sent (list: see TickLink._inbox)
        self.toggle = 0  # DIO request toggle (toggle protocol)
        self._encoded: dict[int, bytes] = {}  # response words (few distinct ones)
        self.cr_checks = 0  # INITs run (tests)

    def start(self, message: bytes, t_ns: int) -> int:
        o = self.o
        msg = decode(message)  # validated on arrival (an instruction word)
        assert type(msg) is InstructionMessage
        op, q = msg.opcode, msg.qubit
        par = o._par
        par[PAR_INSTRUCTIONS] += 1
        outcome, bell = None, 0
        if op is _OP_PLAY:
            bit = par[PAR_DIO_FLAG_BIT]
            if par[PAR_DIO_PROTOCOL] == DIO_PROTOCOL_TOGGLE:
                self.toggle ^= 1
                flag = self.toggle
            else:
                flag = 1
            word = (msg.argument & ((1 << bit) - 1)) | (flag << bit)
            end = o.awg.dio_input(word, t_ns + o.dio_out_latency_ns)
            if end is None:
                raise AWGNoResponseError("SetFifo_Long", f"AWG played nothing for codeword "
                                         f"{msg.argument} (DIO word 0x{word:08x})")
            kind = _R_SUCCESS
            duration = end - t_ns + o.awg_done_latency_ns
        elif op is _OP_NOP:
            kind, duration = _R_SUCCESS, 0
        else:
            be = o.backend
            if be is None:
                raise InstructionRejectedError("SetFifo_Long", f"{op.name}: no qubit backend "
                                               "wired to the simulated controller")
            if op is _OP_INIT and q != 0:  # a carbon: its initialisation, no CR check
                be.initialize(q, t_ns)
                kind, duration = _R_SUCCESS, par[PAR_CARBON_INIT_NS]
            elif op is _OP_INIT:
                t = t_ns
                passed = False
                threshold, window = par[PAR_CR_THRESHOLD], par[PAR_CR_CHECK_NS]
                repump = par[PAR_CHARGE_REPUMP_NS]
                for _ in range(max(1, par[PAR_CR_MAX_ATTEMPTS])):
                    counts = be.cr_check(t)
                    t += window
                    if counts >= threshold:
                        passed = True
                        break
                    t += repump  # charge repump before the next check
                self.cr_checks += 1
                if passed:
                    be.initialize(q, t)
                    t += par[PAR_INIT_NS]
                kind = _R_SUCCESS if passed else _R_FAILURE
                duration = t - t_ns
            elif op is _OP_MEASURE:
                counts = int(be.readout_counts(q, t_ns))
                hist = o._histogram()
                hist[counts if counts < SSRO_HISTOGRAM_BINS else SSRO_HISTOGRAM_BINS - 1] += 1
                kind, outcome = _R_OUTCOME, 0 if counts >= par[PAR_SSRO_THRESHOLD] else 1
                duration = par[PAR_READOUT_NS]
            elif op is _OP_ROT_Z:  # a carbon's frame update (virtual Z)
                n, d = msg.argument >> 4, msg.argument & 0xF
                be.frame_rotate(q, n * 3.141592653589793 / (1 << d), t_ns)
                kind, duration = _R_SUCCESS, 0
            else:  # ENT_KEEP / ENT_MEASURE: an attempt window of argument attempts
                measure = op is _OP_ENT_MEASURE
                if par[PAR_OPTICAL_LINKS] > 1:  # the optical link (heralding station) in bits 12..15
                    budget = max(1, msg.argument & ENT_BUDGET_MASK)
                    link = msg.argument >> ENT_LINK_SHIFT
                else:
                    budget, link = max(1, msg.argument), 0
                if link:
                    heralded, bell, outcome, used = be.entangle_window(q, t_ns, measure, budget,
                                                                       link)
                elif budget == 1:
                    heralded, bell, outcome = be.entangle(q, t_ns, measure)
                    used = 1
                else:
                    heralded, bell, outcome, used = be.entangle_window(q, t_ns, measure, budget)
                if heralded:
                    kind, bell = _R_ENT_SUCCESS, int(bell)
                    outcome = outcome if measure else None
                    if not measure:  # the kept qubit goes straight back under the AWG's DD
                        be.set_dd(q, True, t_ns + used * par[PAR_ENT_ATTEMPT_NS])
                else:
                    kind, bell, outcome = _R_ENT_FAILURE, 0, None
                duration = (used * par[PAR_ENT_ATTEMPT_NS]
                            + (par[PAR_READOUT_NS] if measure and heralded else 0))
        # kind, outcome (2 = none), bell, qubit and sequence bit packed into one int key
        key = (kind | ((2 if outcome is None else outcome) << 4) | (bell << 6)
               | (q << 10) | (msg.seq << 14))
        raw = self._encoded.get(key)
        if raw is None:  # first time: build (and validate) the response word
            resp = Response(ResponseKind(kind), outcome, bell)
            raw = self._encoded[key] = encode(response_message(resp, q, msg.seq))
        self._pending.append(raw)
        return int(duration)

    def finish(self, t_ns: int) -> bytes:
        return self._pending.pop(0)


class SimulatedADwin:
    """Simulated ADwin with the controller process (see module docstring).

    ``clock``: the node's clock (virtual); ``awg``: the DIO target (the simulated
    HDAWG connection); ``backend``: NV physics; ``spec``: tick rate and qubits;
    ``fifo_depth``: instruction FIFO entries; ``policy``: what an instruction
    during a busy one does (QUEUE in the FIFO, or REFUSE).
    """

    Processor_Types = {9: "T12"}

    def __init__(self, clock: Clock, awg: DIOTarget, backend: NVQubitBackend | None = None, *,
                 spec: QDeviceSpec | None = None, DeviceNo: int = 1, fifo_depth: int = 16,
                 policy: BusyPolicy = BusyPolicy.QUEUE, cpu_clock_hz: int = 1_000_000_000,
                 dio_out_latency_ns: int = 100, awg_done_latency_ns: int = 100,
                 record: bool = False) -> None:
        self.DeviceNo = DeviceNo
        self.clock, self.awg, self.backend = clock, awg, backend
        self.spec = spec or nv_spec()
        self.cpu_clock_hz = cpu_clock_hz
        self.fifo_depth, self.policy, self.record = fifo_depth, policy, record
        self.dio_out_latency_ns, self.awg_done_latency_ns = dio_out_latency_ns, awg_done_latency_ns
        self._par: dict[int, int] = {i: 0 for i in range(1, 81)}
        self._par.update(_DEFAULT_PARS)
        self._fpar: dict[int, float] = {i: 0.0 for i in range(1, 81)}
        self._data: dict[int, list[int]] = {}
        self._booted = False
        #: the error that stopped the controller process, if any
        self.fault: BaseException | None = None
        self._process: str | None = None
        self._running = False
        self._processdelay = cpu_clock_hz // self.spec.tick_rate_hz
        self._responses: list[int] = []  # the response FIFO (list: see TickLink._inbox)
        #: FIFO values already validated as executable instructions -> their 4-byte word
        self._accepted: dict[int, bytes] = {}
        self._program = _ControllerProcess(self)
        self.link = self._new_link()

    def _new_link(self) -> TickLink:
        return TickLink(self.spec, self._program, _LinkClock(self.clock), policy=self.policy,
                        fifo_depth=self.fifo_depth, record=self.record)

    # -- helpers -------------------------------------------------------------------------
    def _require_running(self, fn: str) -> None:
        if not self._running:
            why = (f"stopped by {type(self.fault).__name__}: {self.fault}" if self.fault
                   else "Boot, Load_Process, Start_Process first")
            raise ProcessNotRunningError(fn, f"the controller process is not running ({why})")

    def _fault(self, exc: BaseException) -> None:
        """An error inside the running process (AWG refusal, physics error): the process
        stops, as an ADbasic process does on a run-time error; Start_Process restarts it."""
        self._running = False
        self.fault = exc

    def _sync(self) -> None:
        """Let the controller run up to the present (nothing to do unless a response is
        due by now: the link's inbox is always drained here)."""
        link = self.link
        if link.next_response_ns > self.clock.now_ns():
            return
        try:
            link.advance_to(self.clock.now_ns())
        except Exception as exc:
            self._fault(exc)
            raise
        while (r := link.poll()) is not None:
            self._responses.append(_word_value(r))

    def _drain(self) -> None:
        """Move responses the link has delivered into the response FIFO."""
        link = self.link
        while (r := link.poll()) is not None:
            self._responses.append(_word_value(r))

    # -- system --------------------------------------------------------------------------
    def Boot(self, Filename: str) -> None:  # noqa: N802,N803
        self._booted, self._process, self._running = True, None, False

    def Test_Version(self) -> int:  # noqa: N802
        return 0

    def Processor_Type(self) -> str:  # noqa: N802
        return "T12"

    def Workload(self) -> int:  # noqa: N802
        return 5 if self._running else 0

    def Load_Process(self, Filename: str) -> None:  # noqa: N802,N803
        if not self._booted:
            raise NotBootedError("Load_Process", "boot the system before loading a process")
        base = str(Filename).replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
        if base != CONTROLLER_PROCESS:
            raise UnknownProcessError("Load_Process", f"{Filename}: the simulator implements "
                                      f"only the '{CONTROLLER_PROCESS}' process")
        self._process = base

    def Start_Process(self, ProcessNo: int) -> None:  # noqa: N802,N803
        if self._process is None or ProcessNo != 1:
            raise UnknownProcessError("Start_Process", f"no process {ProcessNo} loaded")
        if not self._running:
            self._running, self.fault = True, None
            self._program.toggle = 0
            self._responses.clear()
            self.link = self._new_link()

    def Stop_Process(self, ProcessNo: int) -> None:  # noqa: N802,N803
        if ProcessNo == 1 and self._running:
            self._sync()
            self._running = False

    def Process_Status(self, ProcessNo: int) -> int:  # noqa: N802,N803
        return int(ProcessNo == 1 and self._running)

    def Set_Processdelay(self, ProcessNo: int, Processdelay: int) -> None:  # noqa: N802,N803
        rate_hz = self.cpu_clock_hz / Processdelay if Processdelay > 0 else 0
        if Processdelay <= 0 or rate_hz != int(rate_hz) or 1_000_000_000 % int(rate_hz):
            raise ParameterRefusedError("Set_Processdelay", f"process delay {Processdelay} "
                                        "cycles gives no tick period in whole ns")
        if self.link.outstanding:
            raise ParameterRefusedError("Set_Processdelay", "instructions in flight")
        self._processdelay = int(Processdelay)
        self.spec = dataclasses.replace(self.spec, tick_rate_hz=int(rate_hz))
        self._accepted.clear()
        self.link = self._new_link()

    def Get_Processdelay(self, ProcessNo: int) -> int:  # noqa: N802,N803
        return self._processdelay

    # -- parameters ----------------------------------------------------------------------
    def Set_Par(self, Index: int, Value: int) -> None:  # noqa: N802,N803
        if Index not in self._par or Index in _READ_ONLY_PARS:
            raise ParameterRefusedError("Set_Par", f"Par_{Index} is not writable")
        if Index == PAR_DIO_PROTOCOL and Value not in (DIO_PROTOCOL_VALID, DIO_PROTOCOL_TOGGLE):
            raise ParameterRefusedError("Set_Par", f"Par_{Index}: DIO protocol {Value} unknown")
        if Index == PAR_DIO_FLAG_BIT and not 1 <= Value <= 31:
            raise ParameterRefusedError("Set_Par", f"Par_{Index}: DIO bit {Value} outside 1..31")
        if not -2**31 <= int(Value) < 2**31:
            raise ParameterRefusedError("Set_Par", f"Par_{Index}: {Value} is not an int32")
        self._par[Index] = int(Value)

    def Get_Par(self, no: int) -> int:  # noqa: N802
        if no not in self._par:
            raise ParameterRefusedError("Get_Par", f"no Par_{no}")
        if no == PAR_TICKS:
            self._sync()
            return (self.clock.now_ns() // self.spec.tick_ns) & 0x7FFFFFFF  # ticks elapsed
        return self._par[no]

    def Get_Par_Block(self, StartIndex: int, Count: int) -> list[int]:  # noqa: N802,N803
        return [self.Get_Par(i) for i in range(StartIndex, StartIndex + Count)]

    def Set_FPar(self, Index: int, Value: float) -> None:  # noqa: N802,N803
        if Index not in self._fpar:
            raise ParameterRefusedError("Set_FPar", f"no FPar_{Index}")
        self._fpar[Index] = float(Value)

    def Get_FPar(self, Index: int) -> float:  # noqa: N802,N803
        if Index not in self._fpar:
            raise ParameterRefusedError("Get_FPar", f"no FPar_{Index}")
        return self._fpar[Index]

    def Get_FPar_Double(self, Index: int) -> float:  # noqa: N802,N803
        return self.Get_FPar(Index)

    def SetData_Long(self, Data: Sequence[int], DataNo: int, Startindex: int,  # noqa: N802,N803
                     Count: int) -> None:
        if DataNo in (FIFO_INSTRUCTIONS, FIFO_RESPONSES):
            raise ParameterRefusedError("SetData_Long", f"Data_{DataNo} is a FIFO")
        arr = self._data.setdefault(DataNo, [])
        end = Startindex - 1 + Count
        if len(arr) < end:
            arr.extend([0] * (end - len(arr)))
        arr[Startindex - 1:end] = [int(x) for x in list(Data)[:Count]]
        if DataNo == DATA_ENTRY_TARGETS:
            self._accepted.clear()  # PLAY words are validated against the targets

    def _histogram(self) -> list[int]:
        """The SSRO photon-count histogram (Data_4), created on first use."""
        h = self._data.get(DATA_SSRO_HISTOGRAM)
        if h is None or len(h) != SSRO_HISTOGRAM_BINS:
            h = [0] * SSRO_HISTOGRAM_BINS
            self._data[DATA_SSRO_HISTOGRAM] = h
        return h

    def GetData_Long(self, DataNo: int, StartIndex: int, Count: int) -> list[int]:  # noqa: N802,N803
        arr = self._data.get(DataNo, [])
        if StartIndex < 1 or StartIndex - 1 + Count > len(arr):
            raise ParameterRefusedError("GetData_Long", f"Data_{DataNo}[{StartIndex}.."
                                        f"{StartIndex + Count - 1}] outside its {len(arr)} values")
        return arr[StartIndex - 1:StartIndex - 1 + Count]

    # -- FIFOs: the QDevice mailbox ------------------------------------------------------
    def Fifo_Empty(self, FifoNo: int) -> int:  # noqa: N802,N803
        """Free slots in a FIFO."""
        if not self._running:
            self._require_running("Fifo_Empty")
        self._sync()
        if FifoNo == FIFO_INSTRUCTIONS:
            link = self.link
            queued = max(0, link.sent - link.answered - 1)  # link.outstanding, inlined
            return self.fifo_depth - queued
        if FifoNo == FIFO_RESPONSES:
            return self.fifo_depth - len(self._responses)
        raise ParameterRefusedError("Fifo_Empty", f"Data_{FifoNo} is not a FIFO")

    def Fifo_Full(self, FifoNo: int) -> int:  # noqa: N802,N803
        """Values waiting in a FIFO. Polling an empty response FIFO while an
        instruction is in flight advances virtual time to its response."""
        if not self._running:
            self._require_running("Fifo_Full")
        if FifoNo == FIFO_RESPONSES:
            link, responses = self.link, self._responses
            if link.next_response_ns <= self.clock.now_ns():
                self._sync()
            if not responses and link.sent != link.answered:  # link.outstanding
                try:
                    r = link.wait_response()
                except Exception as exc:
                    self._fault(exc)
                    raise
                responses.append(_word_value(r))
                # time is at that response's tick: nothing else is due; drain the link
                while (more := link.poll()) is not None:
                    responses.append(_word_value(more))
            return len(responses)
        if FifoNo == FIFO_INSTRUCTIONS:
            self._sync()
            return max(0, self.link.outstanding - 1)
        raise ParameterRefusedError("Fifo_Full", f"Data_{FifoNo} is not a FIFO")

    def Fifo_Clear(self, FifoNo: int) -> None:  # noqa: N802,N803
        if FifoNo == FIFO_RESPONSES:
            self._responses.clear()
        elif FifoNo == FIFO_INSTRUCTIONS:
            if self.link.outstanding:
                raise ParameterRefusedError("Fifo_Clear", "instructions in flight")
        else:
            raise ParameterRefusedError("Fifo_Clear", f"Data_{FifoNo} is not a FIFO")

    def SetFifo_Long(self, FifoNo: int, Data: Sequence[int], Count: int) -> None:  # noqa: N802,N803
        """Host -> controller: each value is one 4-byte instruction word (int32)."""
        if not self._running:
            self._require_running("SetFifo_Long")
        if FifoNo != FIFO_INSTRUCTIONS:
            raise ParameterRefusedError("SetFifo_Long", f"Data_{FifoNo} is not the "
                                        "instruction FIFO")
        accepted = self._accepted
        link = self.link
        try:
            for value in (Data[:Count] if type(Data) is list else list(Data)[:Count]):
                word = accepted.get(value)
                if word is None:
                    word = self._accept(value)
                try:
                    link.send(word)
                except FifoOverflowError as exc:
                    raise InstructionFifoOverflowError("SetFifo_Long", str(exc)) from exc
                except DeviceBusyError as exc:
                    raise ControllerBusyError("SetFifo_Long", str(exc)) from exc
                except Exception as exc:
                    self._fault(exc)
                    raise
        finally:  # responses the sends delivered (_sync only looks at due ones): self._drain()
            responses, poll = self._responses, link.poll
            while (r := poll()) is not None:
                responses.append(_word_value(r))

    def _accept(self, value: int) -> bytes:
        """The 4-byte word of FIFO value ``value`` if the controller executes it (else
        :class:`InstructionRejectedError`); accepted words are remembered (few distinct)."""
        word = (int(value) & 0xFFFFFFFF).to_bytes(4, "big")
        try:
            msg = decode(word)
        except MessageError as exc:
            raise InstructionRejectedError("SetFifo_Long", f"word {word.hex()}: {exc}") \
                from exc
        if not isinstance(msg, InstructionMessage):
            raise InstructionRejectedError("SetFifo_Long", f"word {word.hex()} is a "
                                           "response, not an instruction")
        if msg.opcode not in _SUPPORTED:
            raise InstructionRejectedError(
                "SetFifo_Long", f"opcode {msg.opcode.name} is not executed by the NV "
                "controller (gates go as PLAY <table entry>)")
        if msg.qubit >= self.spec.num_qubits:
            raise InstructionRejectedError("SetFifo_Long", f"qubit {msg.qubit} not on this "
                                           f"{self.spec.num_qubits}-qubit device")
        op = msg.opcode
        if op is _OP_PLAY:
            targets = self._data.get(DATA_ENTRY_TARGETS, [])
            arg = msg.argument
            target = targets[arg] if 0 <= arg < len(targets) else 0
            if target != msg.qubit:
                raise InstructionRejectedError(
                    "SetFifo_Long", f"PLAY {arg} acts on qubit {target} "
                    f"({'the electron' if target == 0 else 'carbon ' + str(target)}), the message "
                    f"addresses qubit {msg.qubit}"
                    + ("" if targets else " (no entry-target table loaded in Data_3)"))
        elif op is _OP_ROT_Z and msg.qubit == 0:
            raise InstructionRejectedError("SetFifo_Long", "ROT_Z on the electron: electron "
                                           "gates go as PLAY <table entry>")
        comm = self.spec.comm_qubits or ()
        meas = self.spec.measurable_qubits or ()
        if op is _OP_MEASURE and msg.qubit not in meas:
            raise InstructionRejectedError("SetFifo_Long", f"MEASURE qubit {msg.qubit}: only "
                                           f"qubits {list(meas)} have a readout")
        if op in (Opcode.ENT_KEEP, _OP_ENT_MEASURE) and msg.qubit not in comm:
            raise InstructionRejectedError("SetFifo_Long", f"{op.name} qubit {msg.qubit}: only "
                                           f"qubits {list(comm)} are communication qubits")
        if type(value) is int and len(self._accepted) < _ACCEPTED_MAX:
            self._accepted[value] = word
        return word

    def GetFifo_Long(self, FifoNo: int, Count: int) -> list[int]:  # noqa: N802,N803
        """Controller -> host: ``Count`` response words (int32)."""
        if not self._running:
            self._require_running("GetFifo_Long")
        if FifoNo != FIFO_RESPONSES:
            raise ParameterRefusedError("GetFifo_Long", f"Data_{FifoNo} is not the "
                                        "response FIFO")
        if self.link.next_response_ns <= self.clock.now_ns():
            self._sync()
        if Count > len(self._responses):
            raise FifoUnderflowError("GetFifo_Long", f"{Count} values requested, "
                                     f"{len(self._responses)} in the response FIFO")
        responses = self._responses
        if Count == 1:
            return [responses.pop(0)]
        out = responses[:Count]
        del responses[:Count]
        return out

    # not part of the vendor API: for tests and tracing
    @property
    def timeline(self) -> list[Any]:
        """Tick-link events (if constructed with ``record=True``)."""
        return self.link.timeline

