"""QCoDeS driver for the Zurich Instruments HDAWG, over zhinst-toolkit.

The instrument talks to a LabOne data server through
``zhinst.toolkit.Session(host, port, connection=...)`` and uses the toolkit's own
``HDAWG``/``AWG`` classes for everything: node access, SeqC compilation with the
vendor compiler (``awgs[n].load_sequencer_program``), waveform upload
(``write_to_waveform_memory``) and the command table (``commandtable.
upload_to_device``). ``connection`` is the toolkit's documented hook for an
existing data-server object; any object with the ``ziDAQServer`` surface works
(e.g. :class:`qnodeos_hw.simulators.hdawg_sim.SimulatedHDAWGConnection`). The
driver never asks what is behind it.

Layout::

    hdawg.sample_rate, hdawg.reference_clock, hdawg.dio_mode
    hdawg.ch1 .. ch8   (outputs: output, range, offset, amplitude)
    hdawg.awg1 .. awg4 (cores: enabled, single, ready, dio_* ; upload_program,
                        upload_waveforms, upload_command_table, start, stop, status)
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Any

from qcodes.instrument import Instrument, InstrumentChannel
from qcodes.parameters import create_on_off_val_mapping
from qcodes import validators as vals
from zhinst.toolkit import CommandTable, Session, Waveforms

from .connect_log import LoggedConnectMessage

#: HDAWG signal output ranges (V)
SIGOUT_RANGES_V = (0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 3.0, 4.0, 5.0)
#: LabOne enumeration of /DEV/DIOS/0/MODE
DIO_MODES = {"manual": 0, "awg_sequencer_commands": 1, "dio_codeword": 2, "qccs": 3}
_N_OUTPUTS = {"HDAWG8": 8, "HDAWG4": 4}


class HDAWGError(RuntimeError):
    """Base class of HDAWG driver errors."""


class InstrumentUnreachableError(HDAWGError, ConnectionError):
    """The data server (or the device behind it) cannot be reached.
    ``instrument`` and ``address`` name what was tried."""

    def __init__(self, instrument: str, address: str, detail: str) -> None:
        self.instrument, self.address = instrument, address
        super().__init__(f"instrument '{instrument}' unreachable at {address}: {detail}")


class SeqCCompileError(HDAWGError, ValueError):
    """The vendor compiler rejected the program, or warned (we treat any compiler
    message as a failure: e.g. silent zero-padding of a waveform)."""


class UploadError(HDAWGError):
    """The device did not accept a program, waveform set or command table."""


def _setter(node: Any):
    """A plain function that sets a toolkit node (qcodes inspects set_cmd's signature,
    which toolkit nodes do not survive)."""
    def set_node(value: Any) -> None:
        node(value)
    return set_node


def _parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"HDAWG address must be 'host:port' of the data server, got {address!r}")
    return host, int(port)


class HDAWGOutput(InstrumentChannel):
    """One signal output (``chN``): output relay, range, offset and AWG amplitude."""

    def __init__(self, parent: "ZIHDAWG", name: str, channel: int) -> None:
        super().__init__(parent, name)
        dev, core, out = parent.device, channel // 2, channel % 2
        self.channel = channel
        sig = dev.sigouts[channel]
        self.output = self.add_parameter(
            "output", label=f"Output {channel + 1}", get_cmd=lambda: int(sig.on()),
            set_cmd=_setter(sig.on), val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
            docstring="Signal output relay on/off.")
        self.range = self.add_parameter(
            "range", label=f"Output {channel + 1} range", unit="V",
            get_cmd=lambda: round(float(sig.range()), 3), set_cmd=_setter(sig.range),
            vals=vals.Enum(*SIGOUT_RANGES_V),
            docstring="Full-scale output range (V, peak); one of the hardware ranges.")
        self.offset = self.add_parameter(
            "offset", label=f"Output {channel + 1} offset", unit="V",
            get_cmd=lambda: float(sig.offset()), set_cmd=_setter(sig.offset),
            vals=vals.Numbers(-1.25, 1.25), docstring="DC offset added to the output (V).")
        amp = dev.awgs[core].outputs[out].amplitude
        self.amplitude = self.add_parameter(
            "amplitude", label=f"Output {channel + 1} AWG amplitude", unit="",
            get_cmd=lambda: float(amp()), set_cmd=_setter(amp), vals=vals.Numbers(-1.0, 1.0),
            docstring="Scale applied to the AWG waveform on this output "
                      "(dimensionless, fraction of the range).")


class HDAWGCore(InstrumentChannel):
    """One AWG core (``awgN``): sequencer, DIO codeword decoding, uploads."""

    def __init__(self, parent: "ZIHDAWG", name: str, core: int) -> None:
        super().__init__(parent, name)
        self.core = core
        awg = parent.device.awgs[core]
        self._awg = awg
        self._program_sha = ""
        self._n_waves = 0
        self._n_entries = 0
        self.enabled = self.add_parameter(
            "enabled", label=f"Sequencer {core + 1} enabled",
            get_cmd=lambda: int(awg.enable()), set_cmd=_setter(awg.enable),
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
            docstring="Sequencer run state. Use start()/stop(), which also check the device.")
        self.single = self.add_parameter(
            "single", label=f"Sequencer {core + 1} single shot",
            get_cmd=lambda: int(awg.single()), set_cmd=_setter(awg.single),
            val_mapping=create_on_off_val_mapping(on_val=1, off_val=0),
            docstring="Stop after one run of the program (off: loop).")
        self.ready = self.add_parameter(
            "ready", label=f"Sequencer {core + 1} ready", get_cmd=lambda: bool(awg.ready()),
            set_cmd=False, docstring="A program is loaded and the core can start.")
        self.dio_mask = self.add_parameter(
            "dio_mask", label="DIO codeword mask", get_cmd=lambda: int(awg.dio.mask.value()),
            set_cmd=_setter(awg.dio.mask.value), vals=vals.Ints(0, 0x3FF),
            docstring="Bits of the (shifted) DIO word that form the codeword "
                      "(10 bits: command-table index 0..1023).")
        self.dio_shift = self.add_parameter(
            "dio_shift", label="DIO codeword shift", get_cmd=lambda: int(awg.dio.mask.shift()),
            set_cmd=_setter(awg.dio.mask.shift), vals=vals.Ints(0, 31),
            docstring="Right shift (bits) applied to the DIO word before the mask.")
        self.dio_valid_index = self.add_parameter(
            "dio_valid_index", label="DIO valid bit", get_cmd=lambda: int(awg.dio.valid.index()),
            set_cmd=_setter(awg.dio.valid.index), vals=vals.Ints(0, 31),
            docstring="DIO bit that marks a codeword as valid.")
        self.dio_valid_polarity = self.add_parameter(
            "dio_valid_polarity", label="DIO valid polarity",
            get_cmd=lambda: int(awg.dio.valid.polarity(enum=False)),
            set_cmd=_setter(awg.dio.valid.polarity),
            val_mapping={"none": 0, "low": 1, "high": 2, "both": 3},
            docstring="Level of the valid bit that triggers ('none': every word).")

    # -- uploads ---------------------------------------------------------------------
    def upload_program(self, seqc: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Compile ``seqc`` with the vendor compiler and load it; returns compiler info.

        Raises :class:`SeqCCompileError` on any compiler error or message and
        :class:`UploadError` if the core does not report ready.
        """
        try:
            info = self._awg.load_sequencer_program(seqc)
        except RuntimeError as exc:
            raise SeqCCompileError(f"{self.full_name}: SeqC compilation failed: {exc}") from exc
        if info.get("messages"):
            raise SeqCCompileError(f"{self.full_name}: compiler messages (treated as errors): "
                                   f"{info['messages'].strip()}")
        try:
            self._awg.ready.wait_for_state_change(1, timeout=timeout_s)
        except TimeoutError as exc:
            raise UploadError(f"{self.full_name}: program not ready after upload "
                              f"(elf status {self._awg.elf.status()})") from exc
        self._program_sha = hashlib.sha256(seqc.encode()).hexdigest()[:16]
        self._n_waves = self._n_entries = 0
        return info

    def upload_waveforms(self, waveforms: Waveforms) -> None:
        """Write ``waveforms`` (toolkit Waveforms) into the slots the program assigns;
        checked first against the loaded program's waveform descriptors."""
        if not self.ready():
            raise UploadError(f"{self.full_name}: upload a program before its waveforms")
        try:
            waveforms.validate(self._awg.waveform.descriptors())
        except Exception as exc:  # toolkit ValidationError / TypeError
            raise UploadError(f"{self.full_name}: waveforms do not fit the program: {exc}") \
                from exc
        self._awg.write_to_waveform_memory(waveforms)
        self._n_waves = len(waveforms)

    def upload_command_table(self, table: CommandTable | str | dict) -> None:
        """Upload a command table (toolkit CommandTable, or its JSON) and check the
        device accepted it."""
        try:
            self._awg.commandtable.upload_to_device(table)
        except RuntimeError as exc:
            raise UploadError(f"{self.full_name}: command table rejected: {exc}") from exc
        doc = table.as_dict() if isinstance(table, CommandTable) else (
            json.loads(table) if isinstance(table, str) else table)
        self._n_entries = len(doc.get("table", []))

    def start(self) -> None:
        """Enable the sequencer (continuous); raises :class:`UploadError` if it won't run."""
        try:
            self._awg.enable_sequencer(single=False)
        except RuntimeError as exc:
            raise UploadError(f"{self.full_name}: sequencer did not start: {exc}") from exc

    def stop(self) -> None:
        """Disable the sequencer."""
        self._awg.enable(0, deep=True)

    def status(self) -> dict[str, Any]:
        """Ready/enabled flags, ELF status, command-table status, what was uploaded."""
        return {"ready": bool(self._awg.ready()), "enabled": bool(self._awg.enable()),
                "elf_status": int(self._awg.elf.status()),
                "commandtable_status": int(self._awg.commandtable.status()),
                "program_sha256_16": self._program_sha, "waveforms_uploaded": self._n_waves,
                "table_entries": self._n_entries}

    def snapshot_base(self, update: bool | None = True,
                      params_to_skip_update: Any = None) -> dict[str, Any]:
        snap = super().snapshot_base(update=update, params_to_skip_update=params_to_skip_update)
        snap["upload"] = {"program_sha256_16": self._program_sha,
                          "waveforms_uploaded": self._n_waves, "table_entries": self._n_entries}
        return snap


class ZIHDAWG(LoggedConnectMessage, Instrument):
    """Zurich Instruments HDAWG as a QCoDeS instrument (see module docstring).

    ``address``: ``"host:port"`` of the LabOne data server; ``serial``: device
    serial (``dev8xxx``); ``connection``: an existing data-server object to use
    instead of opening one; ``timeout_s``: how long to try reaching the server.
    """

    def __init__(self, name: str, serial: str, address: str = "localhost:8004", *,
                 interface: str = "1GbE", connection: Any = None, timeout_s: float = 5.0,
                 **kwargs: Any) -> None:
        host, port = _parse_address(address)
        self.address, self.serial = address, serial.lower()
        if connection is None:
            try:
                socket.create_connection((host, port), timeout=timeout_s).close()
            except OSError as exc:
                raise InstrumentUnreachableError(name, address, f"data server: {exc}") from exc
        try:
            self.session = Session(host, port, connection=connection)
            self.device = self.session.connect_device(self.serial, interface=interface)
        except (RuntimeError, KeyError) as exc:
            raise InstrumentUnreachableError(name, f"{address}/{serial}", str(exc)) from exc
        super().__init__(name, **kwargs)
        dev = self.device
        self.device_type = str(dev.device_type)
        if self.device_type not in _N_OUTPUTS:
            raise HDAWGError(f"{name}: {serial} is a {self.device_type}, not an HDAWG")
        clock = dev.system.clocks.sampleclock.freq
        self.sample_rate = self.add_parameter(
            "sample_rate", label="Sample rate", unit="Sa/s",
            get_cmd=lambda: float(clock()), set_cmd=lambda v: clock(v, deep=True),
            vals=vals.Numbers(100e6, 2.4e9),
            docstring="AWG sample clock (Sa/s); 2.4 GSa/s gives 16-sample granularity of 6.67 ns.")
        ref = dev.system.clocks.referenceclock.source
        self.reference_clock = self.add_parameter(
            "reference_clock", label="Reference clock", get_cmd=lambda: int(ref(enum=False)),
            set_cmd=_setter(ref), val_mapping={"internal": 0, "external": 1, "zsync": 2},
            docstring="Source of the 10/100 MHz reference clock.")
        mode = dev.dios[0].mode
        self.dio_mode = self.add_parameter(
            "dio_mode", label="DIO mode", get_cmd=lambda: int(mode(enum=False)), set_cmd=_setter(mode),
            val_mapping=dict(DIO_MODES),
            docstring="What the 32-bit DIO port carries; 'dio_codeword' lets the controller "
                      "select command-table entries.")
        n = _N_OUTPUTS[self.device_type]
        for ch in range(n):
            self.add_submodule(f"ch{ch + 1}", HDAWGOutput(self, f"ch{ch + 1}", ch))
        for core in range(n // 2):
            self.add_submodule(f"awg{core + 1}", HDAWGCore(self, f"awg{core + 1}", core))
        self.connect_message()

    def get_idn(self) -> dict[str, str | None]:
        return {"vendor": "Zurich Instruments", "model": self.device_type,
                "serial": self.serial.upper(),
                "firmware": str(self.device.system.fwrevision())}

    def output(self, channel: int) -> HDAWGOutput:
        """Output ``channel`` (1-based, as on the front panel)."""
        return self.submodules[f"ch{channel}"]  # type: ignore[return-value]

    def core(self, index: int = 1) -> HDAWGCore:
        """AWG core ``index`` (1-based)."""
        return self.submodules[f"awg{index}"]  # type: ignore[return-value]

    def configure_codewords(self, core: int = 1, *, mask: int = 0x3FF, shift: int = 0,
                            valid_index: int = 31, valid_polarity: str = "high") -> None:
        """Set the DIO port to codeword mode and how ``core`` decodes codewords."""
        c = self.core(core)
        for p, v in ((c.dio_mask, mask), (c.dio_shift, shift), (c.dio_valid_index, valid_index),
                     (c.dio_valid_polarity, valid_polarity)):
            p.validate(v)
        self.dio_mode("dio_codeword")
        c.dio_mask(mask)
        c.dio_shift(shift)
        c.dio_valid_index(valid_index)
        c.dio_valid_polarity(valid_polarity)

    def load_nv_program(self, program: Any, *, core: int = 1, outputs: tuple[int, ...] = (1, 2),
                        start: bool = True) -> None:
        """Load a generated NV node program on ``core``: an object with ``seqc``,
        ``waveforms``, ``command_table`` and ``sample_rate_hz`` (e.g.
        :class:`qnodeos_hw.sequences.hdawg_program.HdawgProgram`). Sets the sample
        clock to the program's rate, turns ``outputs`` on (I, Q), uploads, starts."""
        if self.sample_rate() != program.sample_rate_hz:
            self.sample_rate(program.sample_rate_hz)
        self.dio_mode("dio_codeword")
        for ch in outputs:
            self.output(ch).output("on")
        self.upload(program.seqc, program.waveforms, program.command_table, core=core,
                    start=start)

    def upload(self, program: str, waveforms: Waveforms | None = None,
               table: CommandTable | None = None, *, core: int = 1, start: bool = True) -> None:
        """Load program, waveforms and command table on ``core`` and (optionally) start it."""
        c = self.core(core)
        if c.enabled():
            c.stop()
        c.upload_program(program)
        if waveforms is not None:
            c.upload_waveforms(waveforms)
        if table is not None:
            c.upload_command_table(table)
        if start:
            c.start()
