"""QCoDeS driver of the trapped-ion node's FPGA bridge (serial/SPI -> TTL sequencer).

The bridge holds up to 16 TTL sequences (slots; the ion node uses slots 0..6, see
:mod:`qnodeos_hw.sequences.ion_ttl`), plays one per tick-stamped command on its
100 MHz sequencer, counts PMT photons in the ``pmt_gate`` windows and answers the
QDevice's 4-byte messages. The port is any pyserial URL, opened with
``serial.serial_for_url`` (``/dev/ttyUSB0``, ``socket://host:port``, ``sim://ion``).

Frame (both directions)
-----------------------
::

    0xA5 | LEN (u16, big-endian) | CMD (u8) | PAYLOAD (LEN-1 bytes) | CHK (u8)

``LEN`` counts CMD + PAYLOAD, 1..512 (longer: ``OVERLONG_FRAME``). ``CHK`` makes the
byte sum of LEN, CMD, PAYLOAD and CHK 0 mod 256. A reply carries ``CMD | 0x80``;
a refusal is CMD ``0xEE`` with payload ``code (u8), refused CMD (u8), ASCII detail``.
Bytes before a start byte are discarded (resynchronisation).

Commands (payloads big-endian)
------------------------------
===========  =============================  ===========================================
CMD          request payload                reply payload
===========  =============================  ===========================================
0x01 IDN     --                             ASCII ``vendor,model,serial,firmware``
0x02 WRITE   reg u8, value u32              same
0x03 READ    reg u8                         reg u8, value u32
0x04 UPLOAD  slot u8, sequence (ion_ttl)    slot u8, CRC-32 of the sequence bytes
0x05 INFO    slot u8                        slot, duration cycles u32, n_edges u16,
                                            pmt-gate cycles u32, CRC-32 u32
0x06 TRIG    tick u32, slot u8              start tick u32, duration cycles u32, counts u32
0x07 QMSG    tick u32, 4-byte QDevice msg   start tick, duration cycles, counts (u32 each),
                                            4-byte QDevice response
0x08 PMT     --                             last counts u32, detections u32
===========  =============================  ===========================================

Registers: 0 ``pmt_threshold`` (rw, counts 0..65535), 1 ``bright_outcome`` (rw, 0/1),
2 tick rate (ro, Hz), 3 sequencer clock (ro, Hz), 4 tick (ro: first free tick),
5 loaded slots (ro, bit mask).

Tick pacing (50 kHz, 20 us)
---------------------------
TRIG and QMSG carry the tick they start on (``0xFFFFFFFF`` = the first free tick).
One message per tick: a tick not after the previous message's is refused
(``PACING``); a tick before the previous sequence's response tick
``start + max(1, ceil(duration / 20 us))`` is refused (``BUSY``). The bridge plays
QMSG ``PLAY <slot>`` and ``NOP``; a sequence with a PMT gate answers ``OUTCOME``
(``bright_outcome`` when counts >= ``pmt_threshold``, else its complement), others
``SUCCESS``. At 12 MBd a 13-byte QMSG frame takes 10.8 us, inside one tick.

Errors: every refusal becomes a :class:`BridgeRefusedError` subclass (one per code,
:data:`ERROR_CLASSES`); no answer within the port timeout is
:class:`BridgeTimeoutError`, naming port and command.

Driving it from the tick link: :meth:`IonFPGABridge.tick_device` returns a
:class:`~qnodeos_hw.qdevice.ticklink.TickDevice` for :class:`~qnodeos_hw.qdevice.TickLink`;
it stamps each message with the link's tick and turns generic Init / Rotation /
Measure words into ``PLAY <slot>``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import serial
from qcodes.instrument import Instrument
from qcodes.validators import Enum as EnumVals
from qcodes.validators import Ints

from ..qdevice.errors import TickLinkError
from ..qdevice.message import InstructionMessage, Opcode, decode, encode, physical_instruction
from ..qdevice.spec import ion_spec
from .connect_log import LoggedConnectMessage
from ..sequences.ion_ttl import (CLOCK_PERIOD_NS, IonInstruction, TTLSequence, crc32,
                                 encode_sequence, play_message, sequence_index)

from ..sequences.ion_wire import (ASAP_TICK, ERROR_REPLY, MAX_BODY, NUM_SLOTS, START, Command,  # noqa: F401
                                  ErrorCode, Register, checksum, frame)


# --------------------------------------------------------------------------- errors

class IonBridgeError(Exception):
    """Base class of ion-bridge errors."""


class BridgeConnectionError(IonBridgeError, ConnectionError):
    """The serial port could not be opened."""

    def __init__(self, port: str, cause: Exception) -> None:
        self.port = port
        super().__init__(f"ion bridge at '{port}': cannot open port: {cause}")


class BridgeTimeoutError(IonBridgeError, TimeoutError):
    """The bridge did not answer ``command`` on ``port`` within the timeout."""

    def __init__(self, port: str, command: str, timeout_s: float | None, got: int) -> None:
        self.port, self.command = port, command
        super().__init__(f"ion bridge at '{port}' did not answer {command} within {timeout_s} s "
                         f"({got} reply bytes received)")


class BridgeProtocolError(IonBridgeError):
    """The reply to ``command`` is malformed (start byte, checksum, command, size)."""

    def __init__(self, port: str, command: str, detail: str) -> None:
        self.port, self.command, self.detail = port, command, detail
        super().__init__(f"ion bridge at '{port}', reply to {command}: {detail}")


class FrameTooLongError(IonBridgeError, ValueError):
    """A request would exceed the bridge's frame limit; nothing was sent."""


class BridgeRefusedError(IonBridgeError):
    """The bridge answered ``command`` with an error frame (``code``, ``detail``)."""

    code: ErrorCode

    def __init__(self, port: str, command: str, code: int, detail: str) -> None:
        self.port, self.command, self.detail = port, command, detail
        try:
            self.code = ErrorCode(code)
            name = self.code.name
        except ValueError:
            self.code, name = code, f"code {code}"  # type: ignore[assignment]
        super().__init__(f"ion bridge at '{port}' refused {command}: {name}: {detail}")


class ChecksumRejectedError(BridgeRefusedError):
    """The bridge saw a bad checksum in our frame."""


class UnknownCommandError(BridgeRefusedError):
    """The bridge does not know the command byte."""


class BadLengthError(BridgeRefusedError):
    """A payload of the wrong size for its command."""


class OverlongFrameError(BridgeRefusedError):
    """A frame longer than the bridge accepts."""


class UnknownSequenceError(BridgeRefusedError):
    """Slot outside 0..15 or never uploaded."""


class PacingError(BridgeRefusedError):
    """More than one message in a 20 us tick (faster than 50 kHz)."""


class BusyError(BridgeRefusedError):
    """A message arrived while the previous sequence was still playing."""


class BadSequenceError(BridgeRefusedError):
    """An uploaded sequence the sequencer cannot hold (edge order, unwired bit, lines high
    at the end, too many edges)."""


class BadMessageError(BridgeRefusedError):
    """A 4-byte QDevice message the bridge cannot decode or does not play."""


class BadRegisterError(BridgeRefusedError):
    """No such register."""


class ReadOnlyRegisterError(BridgeRefusedError):
    """Write to a read-only register."""


class BadValueError(BridgeRefusedError):
    """Register value out of range."""


class NoIonError(BridgeRefusedError):
    """Nothing to drive: no ion in the trap (or no physics attached to a simulated port)."""


ERROR_CLASSES: dict[ErrorCode, type[BridgeRefusedError]] = {
    ErrorCode.BAD_CHECKSUM: ChecksumRejectedError,
    ErrorCode.UNKNOWN_COMMAND: UnknownCommandError,
    ErrorCode.BAD_LENGTH: BadLengthError,
    ErrorCode.OVERLONG_FRAME: OverlongFrameError,
    ErrorCode.UNKNOWN_SEQUENCE: UnknownSequenceError,
    ErrorCode.PACING: PacingError,
    ErrorCode.BUSY: BusyError,
    ErrorCode.BAD_SEQUENCE: BadSequenceError,
    ErrorCode.BAD_MESSAGE: BadMessageError,
    ErrorCode.BAD_REGISTER: BadRegisterError,
    ErrorCode.READ_ONLY: ReadOnlyRegisterError,
    ErrorCode.BAD_VALUE: BadValueError,
    ErrorCode.NO_ION: NoIonError,
}


# --------------------------------------------------------------------------- records

@dataclass(frozen=True, slots=True)
class SequenceInfo:
    """What the bridge holds in a slot (times in ns)."""

    slot: int
    duration_ns: int
    n_edges: int
    pmt_gate_ns: int
    crc32: int


@dataclass(frozen=True, slots=True)
class PlayResult:
    """A played sequence: start tick, duration (ns), PMT counts, and for QMSG the 4-byte
    QDevice response (``b""`` for TRIG)."""

    start_tick: int
    duration_ns: int
    counts: int
    response: bytes = b""


# --------------------------------------------------------------------------- instrument

class IonFPGABridge(LoggedConnectMessage, Instrument):
    """The ion node's FPGA bridge on a pyserial port.

    Args:
        name: QCoDeS instrument name.
        address: pyserial URL or device path.
        baudrate: line rate (Bd); the bridge's FTDI link runs at 12 MBd.
        timeout: seconds to wait for a reply before :class:`BridgeTimeoutError`.
        protocol_handler_packages: extra pyserial URL-handler packages to register
            (e.g. ``["qnodeos_hw.simulators.serial_sim"]`` for ``sim://``).
    """

    def __init__(self, name: str, address: str, *, baudrate: int = 12_000_000,
                 timeout: float = 1.0, protocol_handler_packages: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        for pkg in protocol_handler_packages:
            if pkg not in serial.protocol_handler_packages:
                serial.protocol_handler_packages.append(pkg)
        self.address = address
        self.timeout_s = timeout
        try:
            self.port = serial.serial_for_url(address, baudrate=baudrate, timeout=timeout,
                                              write_timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise BridgeConnectionError(address, exc) from exc
        self._uploaded: dict[int, dict[str, Any]] = {}

        self.add_parameter(
            "pmt_threshold", label="PMT threshold", unit="counts",
            get_cmd=lambda: self._read_reg(Register.PMT_THRESHOLD),
            set_cmd=lambda v: self._write_reg(Register.PMT_THRESHOLD, v),
            vals=Ints(0, 0xFFFF),
            docstring="Counts in the detection window at or above which the ion reads bright.")
        self.add_parameter(
            "bright_outcome", label="Bright outcome",
            get_cmd=lambda: self._read_reg(Register.BRIGHT_OUTCOME),
            set_cmd=lambda v: self._write_reg(Register.BRIGHT_OUTCOME, v),
            vals=EnumVals(0, 1),
            docstring="Outcome bit reported for a bright ion (0: S1/2 = |0> fluoresces).")
        self.add_parameter(
            "tick_rate", label="Tick rate", unit="Hz",
            get_cmd=lambda: self._read_reg(Register.TICK_RATE_HZ), set_cmd=False,
            docstring="QDevice message rate: one 4-byte message per tick (50 kHz).")
        self.add_parameter(
            "clock_frequency", label="Sequencer clock", unit="Hz",
            get_cmd=lambda: self._read_reg(Register.CLOCK_HZ), set_cmd=False,
            docstring="FPGA sequencer clock; TTL edges sit on its period.")
        self.add_parameter(
            "tick", label="Free tick", unit="ticks",
            get_cmd=lambda: self._read_reg(Register.TICK), set_cmd=False,
            docstring="First tick on which the bridge can start a sequence.")
        self.add_parameter(
            "sequences_loaded", label="Loaded slots",
            get_cmd=self._loaded_slots, set_cmd=False,
            docstring="Sequence slots that hold an uploaded sequence.")
        self.add_parameter(
            "detection_window", label="Detection window", unit="s",
            get_cmd=self._detection_window, set_cmd=False,
            docstring="PMT-gate time of the measure sequence (slot 6); NaN until it is uploaded.")
        self.add_parameter(
            "last_counts", label="Last PMT counts", unit="counts",
            get_cmd=lambda: self.read_pmt()[0], set_cmd=False,
            docstring="Photon counts of the last sequence that had a PMT-gate window.")
        try:
            self.connect_message()
        except Exception:
            self.port.close()
            raise

    # -- transport ----------------------------------------------------------------------
    def transact(self, command: Command | int, payload: bytes = b"") -> bytes:
        """Send one request frame and return the reply payload; raise the typed error of
        an error frame, a malformed reply, or no reply within the timeout."""
        command = int(command)
        name = Command(command).name if command in Command._value2member_map_ else f"0x{command:02x}"
        if 1 + len(payload) > MAX_BODY:
            raise FrameTooLongError(f"{name} payload of {len(payload)} bytes exceeds the bridge's "
                                    f"{MAX_BODY - 1}-byte limit; nothing sent")
        self.port.reset_input_buffer()
        self.port.write(frame(command, payload))
        head = self.port.read(3)
        if len(head) < 3:
            raise BridgeTimeoutError(self.address, name, self.timeout_s, len(head))
        if head[0] != START:
            raise BridgeProtocolError(self.address, name, f"reply starts with 0x{head[0]:02x}, "
                                                          f"not 0x{START:02x}")
        length = (head[1] << 8) | head[2]
        if not 1 <= length <= MAX_BODY:
            raise BridgeProtocolError(self.address, name, f"reply length {length} outside 1..{MAX_BODY}")
        rest = self.port.read(length + 1)
        if len(rest) < length + 1:
            raise BridgeTimeoutError(self.address, name, self.timeout_s, 3 + len(rest))
        body = head[1:] + rest[:-1]
        if checksum(body) != rest[-1]:
            raise BridgeProtocolError(self.address, name, "reply checksum mismatch")
        cmd, reply = rest[0], rest[1:-1]
        if cmd == ERROR_REPLY:
            code = reply[0] if reply else 0
            detail = reply[2:].decode("ascii", "replace")
            cls = ERROR_CLASSES.get(code, BridgeRefusedError)  # type: ignore[call-overload]
            raise cls(self.address, name, code, detail)
        if cmd != command | 0x80:
            raise BridgeProtocolError(self.address, name, f"reply command 0x{cmd:02x}, expected "
                                                          f"0x{command | 0x80:02x}")
        return reply

    def _unpack(self, fmt: str, reply: bytes, command: Command) -> tuple[Any, ...]:
        if len(reply) != struct.calcsize(fmt):
            raise BridgeProtocolError(self.address, command.name,
                                      f"reply payload of {len(reply)} bytes, expected {struct.calcsize(fmt)}")
        return struct.unpack(fmt, reply)

    def _read_reg(self, reg: Register) -> int:
        r, value = self._unpack(">BI", self.transact(Command.READ_REG, bytes([reg])), Command.READ_REG)
        if r != reg:
            raise BridgeProtocolError(self.address, "READ_REG", f"answered register {r}, asked {int(reg)}")
        return value

    def _write_reg(self, reg: Register, value: int) -> None:
        self.transact(Command.WRITE_REG, struct.pack(">BI", reg, int(value)))

    def _loaded_slots(self) -> list[int]:
        mask = self._read_reg(Register.LOADED)
        return [k for k in range(NUM_SLOTS) if mask >> k & 1]

    def _detection_window(self) -> float:
        if IonInstruction.MEASURE not in self._loaded_slots():
            return float("nan")
        return self.sequence_info(IonInstruction.MEASURE).pmt_gate_ns * 1e-9

    # -- API ----------------------------------------------------------------------------
    def get_idn(self) -> dict[str, str | None]:
        text = self.transact(Command.IDN).decode("ascii", "replace")
        parts = [p.strip() for p in text.split(",")] + [None] * 4
        return dict(zip(("vendor", "model", "serial", "firmware"), parts[:4]))

    def upload_sequence(self, slot: int, sequence: TTLSequence) -> int:
        """Upload a validated TTL sequence to ``slot``; return the CRC-32 the bridge
        confirmed (checked against ours)."""
        if not 0 <= slot < NUM_SLOTS:
            raise ValueError(f"sequence slot {slot} outside 0..{NUM_SLOTS - 1}")
        data = encode_sequence(sequence)
        s, crc = self._unpack(">BI", self.transact(Command.UPLOAD, bytes([slot]) + data), Command.UPLOAD)
        if s != slot or crc != crc32(data):
            raise BridgeProtocolError(self.address, "UPLOAD", f"bridge stored slot {s} with CRC "
                                      f"0x{crc:08x}, sent slot {slot} with CRC 0x{crc32(data):08x}")
        self._uploaded[slot] = {"name": sequence.name, "duration_ns": int(sequence.duration_ns),
                                "n_edges": len(sequence.edges), "crc32": crc}
        return crc

    def upload_all(self, sequences: Mapping[int, TTLSequence]) -> None:
        """Upload ``{slot: sequence}`` (e.g. :func:`~qnodeos_hw.sequences.ion_ttl.build_all`)."""
        clock = self.clock_frequency()
        if clock * CLOCK_PERIOD_NS != 1_000_000_000:
            raise IonBridgeError(f"bridge sequencer runs at {clock} Hz; sequences are built for a "
                                 f"{CLOCK_PERIOD_NS} ns period")
        for slot, seq in sequences.items():
            self.upload_sequence(int(slot), seq)

    def sequence_info(self, slot: int) -> SequenceInfo:
        s, dur, n, gate, crc = self._unpack(">BIHII", self.transact(Command.SEQ_INFO, bytes([slot])),
                                            Command.SEQ_INFO)
        return SequenceInfo(s, dur * CLOCK_PERIOD_NS, n, gate * CLOCK_PERIOD_NS, crc)

    def trigger(self, slot: int, tick: int | None = None) -> PlayResult:
        """Play ``slot`` on ``tick`` (None: the first free tick)."""
        t = ASAP_TICK if tick is None else tick
        start, dur, counts = self._unpack(">III", self.transact(Command.TRIGGER, struct.pack(">IB", t, slot)),
                                          Command.TRIGGER)
        return PlayResult(start, dur * CLOCK_PERIOD_NS, counts)

    def send_message(self, message: bytes, tick: int | None = None) -> PlayResult:
        """Send one 4-byte QDevice message on ``tick`` (None: first free tick); the result
        carries the 4-byte response."""
        if len(message) != 4:
            raise ValueError(f"a QDevice message is 4 bytes, got {len(message)}")
        t = ASAP_TICK if tick is None else tick
        reply = self.transact(Command.QMSG, struct.pack(">I", t) + bytes(message))
        start, dur, counts, response = self._unpack(">III4s", reply, Command.QMSG)
        return PlayResult(start, dur * CLOCK_PERIOD_NS, counts, response)

    def read_pmt(self) -> tuple[int, int]:
        """(counts of the last detection window, number of detections so far)."""
        return self._unpack(">II", self.transact(Command.READ_PMT), Command.READ_PMT)

    def now_ns(self) -> int:
        """The bridge's time (ns): the start of its first free tick."""
        return self.tick() * (1_000_000_000 // self.tick_rate())

    def tick_device(self) -> "BridgeTickDevice":
        """This bridge as the device end of a :class:`~qnodeos_hw.qdevice.TickLink`."""
        return BridgeTickDevice(self)

    def snapshot_base(self, update: bool | None = False,
                      params_to_skip_update: Sequence[str] | None = None) -> dict[Any, Any]:
        snap = super().snapshot_base(update=update, params_to_skip_update=params_to_skip_update)
        snap["address"] = self.address
        snap["timeout_s"] = self.timeout_s
        snap["baudrate"] = self.port.baudrate
        snap["uploaded_sequences"] = {str(k): dict(v) for k, v in sorted(self._uploaded.items())}
        return snap

    def close(self) -> None:
        port = getattr(self, "port", None)
        if port is not None and port.is_open:
            port.close()
        super().close()


class BridgeTickDevice:
    """:class:`~qnodeos_hw.qdevice.ticklink.TickDevice` over an :class:`IonFPGABridge`.

    ``start`` stamps the message with the link's tick (``t_ns / 20 us``) and sends it;
    generic INIT / ROT_X / ROT_Y / MEASURE words become ``PLAY <slot>`` through
    :func:`~qnodeos_hw.sequences.ion_ttl.sequence_index` (others raise
    :class:`~qnodeos_hw.qdevice.errors.UnsupportedInstructionError`). ``last_counts`` holds
    the PMT counts of the last instruction.
    """

    def __init__(self, bridge: IonFPGABridge) -> None:
        self.bridge = bridge
        rate = bridge.tick_rate()
        if rate != ion_spec().tick_rate_hz:
            raise TickLinkError(f"bridge ticks at {rate} Hz, the ion QDevice spec at "
                                f"{ion_spec().tick_rate_hz} Hz")
        self.tick_ns = 1_000_000_000 // rate
        self.last_counts = 0
        self._response: bytes | None = None

    def start(self, message: bytes, t_ns: int) -> int:
        if t_ns % self.tick_ns:
            raise TickLinkError(f"t = {t_ns} ns is not on a {self.tick_ns} ns tick")
        msg = decode(message)
        if isinstance(msg, InstructionMessage) and msg.opcode not in (Opcode.PLAY, Opcode.NOP):
            k = sequence_index(physical_instruction(msg))
            message = encode(play_message(k, msg.qubit, msg.seq))
        tick = t_ns // self.tick_ns
        r = self.bridge.send_message(message, tick)
        if r.start_tick != tick:
            raise BridgeProtocolError(self.bridge.address, "QMSG",
                                      f"started on tick {r.start_tick}, asked for tick {tick}")
        self.last_counts = r.counts
        self._response = r.response
        return r.duration_ns

    def finish(self, t_ns: int) -> bytes:
        if self._response is None:
            raise TickLinkError("finish() without a started instruction")
        resp, self._response = self._response, None
        return resp
