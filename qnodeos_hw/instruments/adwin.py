"""QCoDeS driver for the ADwin-Pro II that runs the NV QDevice controller process.

The instrument wraps an object with the ``ADwin`` package API (``ADwin.ADwin
(DeviceNo=1)`` on real hardware; any object with the same methods, e.g.
:class:`qnodeos_hw.simulators.adwin_sim.SimulatedADwin`, through ``adwin=``).

Conventions of the controller process (ADbasic, process 1)::

    Par_1  CR-check threshold (counts)         Par_7  CR-check window (ns)
    Par_2  SSRO threshold (counts)             Par_8  entanglement attempt (ns)
    Par_4  CR-check attempts per INIT          Par_9  DIO flag bit (valid / toggle)
    Par_5  spin-pumping duration (ns)          Par_10 tick counter (read-only)
    Par_6  readout duration (ns)               Par_11 DIO protocol: 0 valid, 1 toggle
                                               Par_12 instructions executed (read-only)
    Data_1 FIFO: instruction words (int32, = the 4-byte message, big-endian)
    Data_2 FIFO: response words
    Processdelay of process 1: CPU cycles per tick (T12: 1 GHz / 10,000 = 100 kHz)

The QDevice mailbox: :meth:`ADwinController.send_instruction` puts one 4-byte
word into the instruction FIFO, :meth:`ADwinController.read_response` takes one
from the response FIFO, :meth:`ADwinController.now_ns` reads the tick counter.
"""

from __future__ import annotations

import time
from typing import Any

from qcodes import validators as vals
from qcodes.instrument import Instrument

from .connect_log import LoggedConnectMessage

PAR_CR_THRESHOLD, PAR_SSRO_THRESHOLD, PAR_CR_MAX_ATTEMPTS = 1, 2, 4
PAR_INIT_NS, PAR_READOUT_NS, PAR_CR_CHECK_NS, PAR_ENT_ATTEMPT_NS = 5, 6, 7, 8
PAR_DIO_FLAG_BIT, PAR_TICKS, PAR_DIO_PROTOCOL, PAR_INSTRUCTIONS = 9, 10, 11, 12
PAR_CHARGE_REPUMP_NS, PAR_CARBON_INIT_NS = 13, 14
DATA_ENTRY_TARGETS, DATA_SSRO_HISTOGRAM, SSRO_HISTOGRAM_BINS = 3, 4, 64
FIFO_INSTRUCTIONS, FIFO_RESPONSES = 1, 2
PROCESS_NO = 1
_ADWIN_LIBRARY_MISSING = 200


class ADwinControllerError(RuntimeError):
    """Base class of controller driver errors."""


class ADwinLibraryMissingError(ADwinControllerError, ImportError):
    """The ADwin vendor library (libadwin) is not installed on this computer."""


class ADwinUnreachableError(ADwinControllerError, ConnectionError):
    """The ADwin system does not answer (``instrument`` and ``address`` name it)."""

    def __init__(self, instrument: str, address: str, detail: str) -> None:
        self.instrument, self.address = instrument, address
        super().__init__(f"instrument '{instrument}' unreachable at ADwin device {address}: "
                         f"{detail}")


class MailboxFullError(ADwinControllerError):
    """The instruction FIFO has no free slot; the word was not sent."""


class ResponseTimeoutError(ADwinControllerError, TimeoutError):
    """No response arrived in the response FIFO within the timeout."""


class ProcessNotRunningError(ADwinControllerError):
    """The controller process is not running."""


def _open_adwin(name: str, device_no: int) -> Any:
    import ADwin  # the vendor package; its import works without libadwin
    try:
        return ADwin.ADwin(DeviceNo=device_no, raiseExceptions=1)
    except ADwin.ADwinError as exc:
        if exc.errorNumber == _ADWIN_LIBRARY_MISSING:
            raise ADwinLibraryMissingError(
                f"instrument '{name}': the ADwin vendor library is not installed "
                f"({exc.errorText.strip()}); install the ADwin software (libadwin) or pass "
                "a simulated backend via adwin=") from exc
        raise ADwinUnreachableError(name, str(device_no), str(exc)) from exc


class ADwinController(LoggedConnectMessage, Instrument):
    """ADwin-Pro II running the QDevice controller (see module docstring).

    ``address``: ADwin device number (as configured with ADconfig), e.g. ``"1"``;
    ``boot_file`` / ``process_file``: paths of the ADwin boot loader and the
    compiled controller process; with ``boot=False`` the running process is
    used as is. ``adwin``: an object with the ADwin package API to use instead
    of opening the device. ``cpu_clock_hz``: processor clock (T12: 1 GHz).
    """

    def __init__(self, name: str, address: str = "1", *, boot_file: str = "ADwin12.btl",
                 process_file: str = "qnodeos_nv_controller.TC1", boot: bool = True,
                 adwin: Any = None, cpu_clock_hz: int = 1_000_000_000,
                 poll_interval_s: float = 20e-6, **kwargs: Any) -> None:
        self.address = str(address)
        if adwin is None:
            if not self.address.isdigit():
                raise ValueError(f"ADwin address must be a device number, got {address!r}")
            adwin = _open_adwin(name, int(self.address))
        self.adwin = adwin
        #: instruction-FIFO slots known to be free: a lower bound, since only the controller
        #: takes words out (this driver is the FIFO's only writer); re-read when too low
        self._fifo_credit = 0
        self.cpu_clock_hz = int(cpu_clock_hz)
        self.poll_interval_s = poll_interval_s
        try:
            adwin.Test_Version()
            if boot:
                adwin.Boot(boot_file)
                adwin.Load_Process(process_file)
                adwin.Start_Process(PROCESS_NO)
        except Exception as exc:
            if type(exc).__name__ == "ADwinError" or hasattr(exc, "errorNumber"):
                raise ADwinUnreachableError(name, self.address, str(exc)) from exc
            raise
        self.boot_file, self.process_file = boot_file, process_file
        super().__init__(name, **kwargs)
        self._tick_ns = 1e9 * adwin.Get_Processdelay(PROCESS_NO) / self.cpu_clock_hz

        def par(pname: str, index: int, label: str, unit: str, validator: Any,
                doc: str) -> Any:
            return self.add_parameter(
                pname, label=label, unit=unit, vals=validator, docstring=doc,
                get_cmd=lambda: int(self.adwin.Get_Par(index)),
                set_cmd=lambda v: self.adwin.Set_Par(index, int(v)))

        self.cr_threshold = par("cr_threshold", PAR_CR_THRESHOLD, "CR-check threshold",
                                "counts", vals.Ints(0, 10_000),
                                "Minimum photon counts in the charge-resonance check window "
                                "for INIT to proceed.")
        self.ssro_threshold = par("ssro_threshold", PAR_SSRO_THRESHOLD, "SSRO threshold",
                                  "counts", vals.Ints(1, 1_000),
                                  "Readout photon counts at or above which a shot counts as "
                                  "bright (ms = 0).")
        self.cr_max_attempts = par("cr_max_attempts", PAR_CR_MAX_ATTEMPTS, "CR attempts",
                                   "", vals.Ints(1, 100_000),
                                   "CR checks per INIT before it reports FAILURE.")
        self.init_duration = par("init_duration", PAR_INIT_NS, "Spin pumping", "ns",
                                 vals.Ints(100, 10_000_000), "Spin-pumping (initialise) time.")
        self.readout_duration = par("readout_duration", PAR_READOUT_NS, "Readout window", "ns",
                                    vals.Ints(100, 10_000_000), "Single-shot readout window.")
        self.cr_check_duration = par("cr_check_duration", PAR_CR_CHECK_NS, "CR-check window",
                                     "ns", vals.Ints(100, 10_000_000),
                                     "Charge-resonance check window.")
        self.charge_repump_duration = par("charge_repump_duration", PAR_CHARGE_REPUMP_NS,
                                          "Charge repump", "ns", vals.Ints(0, 10**9),
                                          "charge repump after each failed CR check")
        self.carbon_init_duration = par("carbon_init_duration", PAR_CARBON_INIT_NS,
                                        "Carbon initialisation", "ns", vals.Ints(0, 10**9),
                                        "13C initialisation through the electron")
        self.ent_attempt_duration = par("ent_attempt_duration", PAR_ENT_ATTEMPT_NS,
                                        "Entanglement attempt", "ns",
                                        vals.Ints(100, 10_000_000),
                                        "Duration of one heralded entanglement attempt.")
        self.dio_flag_bit = par("dio_flag_bit", PAR_DIO_FLAG_BIT, "DIO flag bit", "",
                                vals.Ints(1, 31),
                                "DIO bit that marks a request (valid protocol: raised with "
                                "each codeword; toggle protocol: flipped per request); the "
                                "codeword is the bits below it.")
        self.dio_protocol = self.add_parameter(
            "dio_protocol", label="DIO request protocol", val_mapping={"valid": 0, "toggle": 1},
            get_cmd=lambda: int(self.adwin.Get_Par(PAR_DIO_PROTOCOL)),
            set_cmd=lambda v: self.adwin.Set_Par(PAR_DIO_PROTOCOL, int(v)),
            docstring="How the AWG recognises a new codeword: 'valid' (flag bit high, for "
                      "getDIOTriggered programs) or 'toggle' (flag bit flips, for programs "
                      "polling getDIO, e.g. the NV program of qnodeos_hw.sequences).")
        self.tick_rate = self.add_parameter(
            "tick_rate", label="Tick rate", unit="Hz", vals=vals.Numbers(1e3, 1e6),
            get_cmd=lambda: self.cpu_clock_hz / self.adwin.Get_Processdelay(PROCESS_NO),
            set_cmd=self._set_tick_rate,
            docstring="Rate of the controller's tick loop (Hz); the NV QDevice runs at 100 kHz.")
        self.process_running = self.add_parameter(
            "process_running", label="Controller process running", set_cmd=False,
            get_cmd=lambda: bool(self.adwin.Process_Status(PROCESS_NO)),
            docstring="Process 1 (the controller) is running.")
        self.ticks = self.add_parameter(
            "ticks", label="Tick counter", unit="ticks", set_cmd=False,
            get_cmd=lambda: int(self.adwin.Get_Par(PAR_TICKS)),
            docstring="Ticks since the controller process started.")
        self.instructions_executed = self.add_parameter(
            "instructions_executed", label="Instructions executed", set_cmd=False,
            get_cmd=lambda: int(self.adwin.Get_Par(PAR_INSTRUCTIONS)),
            docstring="Instructions the controller has started.")
        self.connect_message()

    def _set_tick_rate(self, rate_hz: float) -> None:
        delay = self.cpu_clock_hz / rate_hz
        if delay != int(delay):
            raise ValueError(f"{self.full_name}: tick rate {rate_hz} Hz is not a whole number "
                             f"of {self.cpu_clock_hz} Hz CPU cycles")
        self.adwin.Set_Processdelay(PROCESS_NO, int(delay))
        self._tick_ns = 1e9 * int(delay) / self.cpu_clock_hz

    def get_idn(self) -> dict[str, str | None]:
        return {"vendor": "Jaeger Computergesteuerte Messtechnik", "model":
                f"ADwin ({self.adwin.Processor_Type()})", "serial": f"DeviceNo {self.address}",
                "firmware": str(self.adwin.Test_Version())}

    # -- process ---------------------------------------------------------------------------
    def start_process(self) -> None:
        """(Re)start the controller process; empties the response FIFO."""
        self.adwin.Start_Process(PROCESS_NO)
        self.adwin.Fifo_Clear(FIFO_RESPONSES)

    def stop_process(self) -> None:
        self.adwin.Stop_Process(PROCESS_NO)

    def configure_dio(self, protocol: str, flag_bit: int) -> None:
        """How PLAY codewords reach the AWG (see :attr:`dio_protocol`)."""
        self.dio_protocol.validate(protocol)
        self.dio_flag_bit.validate(flag_bit)
        self.dio_protocol(protocol)
        self.dio_flag_bit(flag_bit)

    def load_entry_targets(self, targets: list[int] | tuple[int, ...]) -> None:
        """Give the controller the waveform table's entry -> qubit map (``Data_3``): it
        refuses a PLAY whose qubit field names another qubit than the entry acts on."""
        values = [int(t) for t in targets]
        if values:
            self.adwin.SetData_Long(values, DATA_ENTRY_TARGETS, 1, len(values))

    def ssro_histogram(self, clear: bool = False) -> list[int]:
        """Photon counts of every readout since the last clear (``Data_4``): element ``n``
        = readouts with ``n`` counts (the last bin: that many or more)."""
        try:
            hist = [int(v) for v in self.adwin.GetData_Long(DATA_SSRO_HISTOGRAM, 1,
                                                            SSRO_HISTOGRAM_BINS)]
        except Exception:  # nothing read out yet: the array does not exist
            hist = [0] * SSRO_HISTOGRAM_BINS
        if clear:
            self.adwin.SetData_Long([0] * SSRO_HISTOGRAM_BINS, DATA_SSRO_HISTOGRAM, 1,
                                    SSRO_HISTOGRAM_BINS)
        return hist

    # -- the QDevice mailbox -----------------------------------------------------------------
    def _reserve(self, n: int, what: str) -> None:
        """Make sure ``n`` instruction-FIFO slots are free (asks the controller only when
        the known-free count is too low); :class:`MailboxFullError` naming ``what``."""
        if self._fifo_credit < n:
            self._fifo_credit = int(self.adwin.Fifo_Empty(FIFO_INSTRUCTIONS))
            if self._fifo_credit < n:
                raise MailboxFullError(f"{self.name}: instruction FIFO full ({self._fifo_credit} "
                                       f"free slots for {what}); nothing sent")

    def _put(self, values: list[int]) -> None:
        self._fifo_credit -= len(values)
        try:
            self.adwin.SetFifo_Long(FIFO_INSTRUCTIONS, values, len(values))
        except BaseException:
            self._fifo_credit = 0  # unknown how many went in: ask next time
            raise

    def send_instruction(self, word: bytes) -> None:
        """Put one 4-byte instruction message into the instruction FIFO.

        Raises :class:`MailboxFullError` (nothing sent) when the FIFO has no free slot;
        the backend's own refusals (malformed word, unsupported opcode, busy) propagate.
        Free slots are asked for (``Fifo_Empty``) only when the count known from the last
        answer is used up: the controller only ever frees slots.
        """
        if len(word) != 4:
            raise ValueError(f"an instruction is 4 bytes, got {len(word)}")
        if self._fifo_credit < 1:
            self._reserve(1, bytes(word).hex())
        self._put([int.from_bytes(word, "big", signed=True)])

    def send_instructions(self, words: list[bytes]) -> None:
        """Put several 4-byte words into the instruction FIFO in one block transfer
        (they go out on consecutive ticks). :class:`MailboxFullError` (nothing sent)
        if they do not all fit."""
        if any(len(w) != 4 for w in words):
            raise ValueError("every instruction is 4 bytes")
        self._reserve(len(words), f"{len(words)} instructions")
        self._put([int.from_bytes(w, "big", signed=True) for w in words])

    def read_responses(self, count: int, timeout_s: float = 1.0) -> list[bytes]:
        """``count`` responses in order (each waited for up to ``timeout_s``)."""
        return [self.read_response(timeout_s) for _ in range(count)]

    def responses_waiting(self) -> int:
        """Words in the response FIFO (on a simulated controller, asking lets virtual
        time run to the next response)."""
        return int(self.adwin.Fifo_Full(FIFO_RESPONSES))

    def read_response(self, timeout_s: float = 1.0) -> bytes:
        """Take the oldest 4-byte response from the response FIFO, waiting up to
        ``timeout_s`` (wall-clock s); :class:`ResponseTimeoutError` if none arrives."""
        a = self.adwin
        if a.Fifo_Full(FIFO_RESPONSES) < 1:
            deadline = time.monotonic() + timeout_s
            while a.Fifo_Full(FIFO_RESPONSES) < 1:
                if time.monotonic() >= deadline:
                    raise ResponseTimeoutError(f"{self.name}: no response within {timeout_s} s")
                time.sleep(self.poll_interval_s)
        value = a.GetFifo_Long(FIFO_RESPONSES, 1)[0]
        return (int(value) & 0xFFFFFFFF).to_bytes(4, "big")

    def transact(self, word: bytes, timeout_s: float = 1.0) -> bytes:
        """Send one instruction and wait for a response (the link must be idle)."""
        a = self.adwin
        if len(word) != 4 or self._fifo_credit < 1:
            self.send_instruction(word)  # the checks (and errors) of the general path
        else:  # self._put([...]), inlined: the QDriver's hot path
            self._fifo_credit -= 1
            try:
                a.SetFifo_Long(FIFO_INSTRUCTIONS, [int.from_bytes(word, "big", signed=True)], 1)
            except BaseException:
                self._fifo_credit = 0  # unknown whether it went in: ask next time
                raise
        if a.Fifo_Full(FIFO_RESPONSES) < 1:  # not there yet: poll for it
            return self.read_response(timeout_s)
        value = a.GetFifo_Long(FIFO_RESPONSES, 1)[0]  # self.read_response(), inlined (hot path)
        return (int(value) & 0xFFFFFFFF).to_bytes(4, "big")

    def now_ns(self) -> int:
        """Controller time (ns) = tick counter x tick period (tick resolution)."""
        return int(self.adwin.Get_Par(PAR_TICKS) * self._tick_ns)

    def snapshot_base(self, update: bool | None = True,
                      params_to_skip_update: Any = None) -> dict[str, Any]:
        snap = super().snapshot_base(update=update, params_to_skip_update=params_to_skip_update)
        snap["process"] = {"boot_file": self.boot_file, "process_file": self.process_file,
                           "process_no": PROCESS_NO}
        return snap
