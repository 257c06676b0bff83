"""Simulated ion FPGA bridge: serial framing firmware, TTL pulse sequencer, DDS and PMT
counter, driving an :class:`~qnodeos_hw.simulators.qubit_backend.IonQubitBackend`.

This is the device end of the wire protocol specified in
:mod:`qnodeos_hw.instruments.ion_bridge` (frames, commands, registers, error codes,
tick rules), implemented independently from the host driver as firmware would be; the
constants below are the bridge's, and a test checks they agree with the driver's.
Its FPGA output wiring (bit -> line) is the hardware's, and matches
:class:`qnodeos_hw.sequences.ion_ttl.Channel`.

Time: the bridge keeps virtual time in 50 kHz ticks (20 us). A tick-stamped
command starts its sequence at ``tick * 20 us``; the bridge is free again at the
response tick ``tick + max(1, ceil(duration / 20 us))`` (the tick protocol's rule).
Nothing here reads the wall clock.

Playing a sequence walks its edges and calls the backend, in order of start time:

* ``cooling`` high for ``[a, b)`` -> ``cool(q, b-a, a)``, unless a ``pmt_gate`` window
  overlaps it (then the beam is the detection beam and only ``detect`` is called);
* ``pump`` high -> ``pump(q, b-a, a)``;
* ``qubit`` high -> ``pulse(q, phase, b-a, a)`` with the DDS profile phase selected by
  ``phase1:phase0`` (split where the profile changes: the hardware would do so too);
* ``pmt_gate`` high -> ``detect(q, b-a, a)``; the counts of all windows add up.

``repump`` has no backend call of its own (``cool`` includes the repumper).

Where the backend comes from (no global state): ``attach(backend)`` on the bridge
(or on the ``sim://`` port, which forwards), or a factory named in the port URL
(``sim://ion?backend=package.module:callable&seed=1`` calls ``callable(seed=1)``;
``backend=physics`` names :func:`default_ion_backend`, the packaged physics model).
Playing with no backend attached is refused with error ``NO_ION``.
"""

from __future__ import annotations

import bisect
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from ..qdevice.errors import MessageError
from ..qdevice.instructions import Response, ResponseKind
from ..qdevice.message import InstructionMessage, Opcode, decode, encode, response_message
from ..sequences.ion_wire import (ASAP_TICK, ERROR_REPLY, MAX_BODY, NUM_SLOTS, START, Command,  # noqa: F401
                                  ErrorCode, Register, checksum, frame)
from .qubit_backend import IonQubitBackend

MAX_EDGES = 64
CLOCK_HZ = 100_000_000
CLOCK_NS = 10
TICK_RATE_HZ = 50_000
TICK_NS = 20_000
NUM_QUBITS = 1

# FPGA output wiring (bit numbers)
COOLING, REPUMP, PUMP, QUBIT, PHASE0, PHASE1, PMT_GATE = range(7)
LINES_MASK = 0x7F

_WRITABLE = {Register.PMT_THRESHOLD: (0, 0xFFFF), Register.BRIGHT_OUTCOME: (0, 1)}


class _Refuse(Exception):
    def __init__(self, code: ErrorCode, detail: str) -> None:
        self.code, self.detail = code, detail


@dataclass(frozen=True, slots=True)
class StoredSequence:
    duration_cycles: int
    edges: tuple[tuple[int, int], ...]   # (t_cycles, mask)
    crc32: int

    @property
    def pmt_gate_cycles(self) -> int:
        return sum(b - a for a, b in _intervals(self.edges)[PMT_GATE])


@dataclass(frozen=True, slots=True)
class PlayRecord:
    """One played sequence: slot, qubit, start (ns, virtual), duration (ns), PMT counts."""

    slot: int
    qubit: int
    start_ns: int
    duration_ns: int
    counts: int
    has_detection: bool


def _intervals(edges: tuple[tuple[int, int], ...]) -> dict[int, list[tuple[int, int]]]:
    out: dict[int, list[tuple[int, int]]] = {b: [] for b in range(7)}
    rise: dict[int, int] = {}
    prev = 0
    for t, m in edges:
        changed = m ^ prev
        for b in range(7):
            if changed >> b & 1:
                if m >> b & 1:
                    rise[b] = t
                else:
                    out[b].append((rise.pop(b), t))
        prev = m
    return out


def default_ion_backend(seed: int | None = None, name: str = "ion") -> IonQubitBackend:
    """The packaged ion physics (:class:`~qnodeos_hw.simulators.physics.IonNode`) with the
    default noise model, its own quantum registry and ``numpy.random.default_rng(seed)``."""
    import numpy as np

    from .physics import IonNode, QuantumRegistry, load_noise_models

    return IonNode(name, load_noise_models().ion_for(name), np.random.default_rng(seed),
                   QuantumRegistry())


class IonBridgeSim:
    """The bridge's byte-level behaviour: :meth:`receive` bytes, get reply bytes."""

    def __init__(self, backend: IonQubitBackend | None = None, *, mute_after: int | None = None,
                 dds_phases_rad: tuple[float, ...] = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2),
                 serial_number: str = "SIM0001") -> None:
        if len(dds_phases_rad) != 4:
            raise ValueError("the DDS has 4 profiles: give 4 phases (rad)")
        self.backend = backend
        self.mute_after = mute_after
        self.dds_phases_rad = tuple(dds_phases_rad)
        self.serial_number = serial_number
        self.slots: dict[int, StoredSequence] = {}
        self.registers = {Register.PMT_THRESHOLD: 1, Register.BRIGHT_OUTCOME: 0}
        self.busy_until_tick = 0
        self.last_msg_tick = -1
        self.last_counts = 0
        self.detections = 0
        self.frames_received = 0
        self.discarded_bytes = 0
        self.errors: list[tuple[ErrorCode, int, str]] = []
        self.played: list[PlayRecord] = []
        self._buf = bytearray()

    def attach(self, backend: IonQubitBackend) -> None:
        """Put an ion in the trap: the physics the sequencer's lines act on."""
        self.backend = backend

    @property
    def now_ns(self) -> int:
        """Virtual time at which the bridge is free again (ns)."""
        return self.busy_until_tick * TICK_NS

    # -- framing -------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Feed host bytes; return the bytes the bridge sends back."""
        self._buf += data
        out = bytearray()
        buf = self._buf
        while buf:
            if buf[0] != START:
                self.discarded_bytes += 1
                del buf[0]
                continue
            if len(buf) < 3:
                break
            length = (buf[1] << 8) | buf[2]
            if length == 0 or length > MAX_BODY:
                out += self._answer_error(ErrorCode.OVERLONG_FRAME if length else ErrorCode.BAD_LENGTH,
                                          0, f"frame length {length} outside 1..{MAX_BODY}")
                del buf[0]  # resynchronise on the next start byte
                continue
            if len(buf) < 3 + length + 1:
                break
            body = bytes(buf[1:3 + length])
            chk = buf[3 + length]
            del buf[:4 + length]
            self.frames_received += 1
            cmd, payload = body[2], body[3:]
            if checksum(body) != chk:
                out += self._answer_error(ErrorCode.BAD_CHECKSUM, cmd,
                                          f"checksum 0x{chk:02x}, expected 0x{checksum(body):02x}")
                continue
            try:
                reply = self._dispatch(cmd, payload)
            except _Refuse as r:
                out += self._answer_error(r.code, cmd, r.detail)
                continue
            if not self._muted:
                out += frame(cmd | 0x80, reply)
        return bytes(out)

    @property
    def _muted(self) -> bool:
        return self.mute_after is not None and self.frames_received > self.mute_after

    def _answer_error(self, code: ErrorCode, cmd: int, detail: str) -> bytes:
        self.errors.append((code, cmd, detail))
        if self._muted:
            return b""
        return frame(ERROR_REPLY, bytes([code, cmd]) + detail.encode("ascii", "replace")[:200])

    # -- commands -----------------------------------------------------------------------
    def _dispatch(self, cmd: int, p: bytes) -> bytes:
        if self._muted:
            return b""
        try:
            command = Command(cmd)
        except ValueError:
            raise _Refuse(ErrorCode.UNKNOWN_COMMAND, f"unknown command 0x{cmd:02x}") from None
        sizes = {Command.IDN: 0, Command.WRITE_REG: 5, Command.READ_REG: 1, Command.SEQ_INFO: 1,
                 Command.TRIGGER: 5, Command.QMSG: 8, Command.READ_PMT: 0}
        if command in sizes and len(p) != sizes[command]:
            raise _Refuse(ErrorCode.BAD_LENGTH,
                          f"{command.name} takes {sizes[command]} payload bytes, got {len(p)}")
        if command is Command.IDN:
            return f"QNodeOS-hw,ion-bridge-sim,{self.serial_number},1.0".encode()
        if command is Command.WRITE_REG:
            reg, value = struct.unpack(">BI", p)
            self._write_reg(reg, value)
            return p
        if command is Command.READ_REG:
            return struct.pack(">BI", p[0], self._read_reg(p[0]))
        if command is Command.UPLOAD:
            return self._upload(p)
        if command is Command.SEQ_INFO:
            s = self._slot(p[0])
            return struct.pack(">BIHII", p[0], s.duration_cycles, len(s.edges), s.pmt_gate_cycles,
                               s.crc32)
        if command is Command.TRIGGER:
            tick, slot = struct.unpack(">IB", p)
            start, dur, counts, _ = self._play(tick, slot, 0)
            return struct.pack(">III", start, dur, counts)
        if command is Command.QMSG:
            tick = struct.unpack(">I", p[:4])[0]
            return self._qmsg(tick, p[4:])
        return struct.pack(">II", self.last_counts, self.detections)  # READ_PMT

    def _reg(self, reg: int) -> Register:
        try:
            return Register(reg)
        except ValueError:
            raise _Refuse(ErrorCode.BAD_REGISTER, f"no register 0x{reg:02x}") from None

    def _write_reg(self, reg: int, value: int) -> None:
        r = self._reg(reg)
        if r not in _WRITABLE:
            raise _Refuse(ErrorCode.READ_ONLY, f"register {r.name} is read-only")
        lo, hi = _WRITABLE[r]
        if not lo <= value <= hi:
            raise _Refuse(ErrorCode.BAD_VALUE, f"{r.name} = {value} outside {lo}..{hi}")
        self.registers[r] = value

    def _read_reg(self, reg: int) -> int:
        r = self._reg(reg)
        if r in self.registers:
            return self.registers[r]
        return {Register.TICK_RATE_HZ: TICK_RATE_HZ, Register.CLOCK_HZ: CLOCK_HZ,
                Register.TICK: self.busy_until_tick,
                Register.LOADED: sum(1 << k for k in self.slots)}[r]

    def _slot(self, slot: int) -> StoredSequence:
        if slot not in self.slots:
            raise _Refuse(ErrorCode.UNKNOWN_SEQUENCE,
                          f"sequence slot {slot} is empty" if slot < NUM_SLOTS
                          else f"sequence slot {slot} outside 0..{NUM_SLOTS - 1}")
        return self.slots[slot]

    def _upload(self, p: bytes) -> bytes:
        if len(p) < 7:
            raise _Refuse(ErrorCode.BAD_LENGTH, f"UPLOAD payload of {len(p)} bytes has no header")
        slot = p[0]
        if slot >= NUM_SLOTS:
            raise _Refuse(ErrorCode.UNKNOWN_SEQUENCE, f"sequence slot {slot} outside 0..{NUM_SLOTS - 1}")
        dur, n = struct.unpack_from(">IH", p, 1)
        if len(p) != 7 + 5 * n:
            raise _Refuse(ErrorCode.BAD_LENGTH, f"UPLOAD header says {n} edges, payload has "
                                                f"{len(p) - 7} edge bytes")
        if not 1 <= n <= MAX_EDGES:
            raise _Refuse(ErrorCode.BAD_SEQUENCE, f"{n} edges, the sequencer holds 1..{MAX_EDGES}")
        edges = tuple(struct.unpack_from(">IB", p, 7 + 5 * i) for i in range(n))
        prev_t, prev_m = -1, 0
        for t, m in edges:
            if t <= prev_t or t > dur:
                raise _Refuse(ErrorCode.BAD_SEQUENCE, f"edge at cycle {t} not after cycle {prev_t} "
                                                      f"or after the end ({dur})")
            if m & ~LINES_MASK:
                raise _Refuse(ErrorCode.BAD_SEQUENCE, f"edge at cycle {t} drives unwired bit 7")
            prev_t, prev_m = t, m
        if prev_m:
            raise _Refuse(ErrorCode.BAD_SEQUENCE, f"lines 0x{prev_m:02x} left high at the end")
        crc = zlib.crc32(p[1:]) & 0xFFFFFFFF
        self.slots[slot] = StoredSequence(dur, edges, crc)
        return struct.pack(">BI", slot, crc)

    # -- playing ------------------------------------------------------------------------
    def _claim_tick(self, tick: int) -> int:
        if tick == ASAP_TICK:
            return max(self.last_msg_tick + 1, self.busy_until_tick)
        if tick <= self.last_msg_tick:
            raise _Refuse(ErrorCode.PACING, f"message for tick {tick}, previous message was for tick "
                                            f"{self.last_msg_tick}: one message per {TICK_NS} ns tick")
        if tick < self.busy_until_tick:
            raise _Refuse(ErrorCode.BUSY, f"message for tick {tick} while busy until tick "
                                          f"{self.busy_until_tick}")
        return tick

    def _play(self, tick: int, slot: int, qubit: int) -> tuple[int, int, int, bool]:
        seq = self._slot(slot)
        if self.backend is None:
            raise _Refuse(ErrorCode.NO_ION, "no ion in the trap (no qubit backend attached)")
        tick = self._claim_tick(tick)
        t0 = tick * TICK_NS
        counts, detected = self._walk(seq, qubit, t0)
        dur_ns = seq.duration_cycles * CLOCK_NS
        self.last_msg_tick = tick
        self.busy_until_tick = tick + max(1, -(-dur_ns // TICK_NS))
        if detected:
            self.last_counts = counts
            self.detections += 1
        self.played.append(PlayRecord(slot, qubit, t0, dur_ns, counts, detected))
        return tick, seq.duration_cycles, counts, detected

    def _walk(self, seq: StoredSequence, qubit: int, t0: int) -> tuple[int, bool]:
        iv = _intervals(seq.edges)
        times = [t for t, _ in seq.edges]
        masks = [m for _, m in seq.edges]
        gates = iv[PMT_GATE]
        events: list[tuple[int, int, str, Any, int]] = []
        for a, b in iv[COOLING]:
            if not any(ga < b and a < gb for ga, gb in gates):
                events.append((a, 0, "cool", None, b - a))
        for a, b in iv[PUMP]:
            events.append((a, 1, "pump", None, b - a))
        for a, b in iv[QUBIT]:
            cuts = [a] + [t for t in times if a < t < b] + [b]
            for s, e in zip(cuts, cuts[1:]):
                m = masks[bisect.bisect_right(times, s) - 1]
                profile = ((m >> PHASE0) & 1) | (((m >> PHASE1) & 1) << 1)
                if events and events[-1][2] == "pulse" and events[-1][3] == profile \
                        and events[-1][0] + events[-1][4] == s:
                    last = events.pop()
                    events.append((last[0], 2, "pulse", profile, last[4] + e - s))
                else:
                    events.append((s, 2, "pulse", profile, e - s))
        for a, b in gates:
            events.append((a, 3, "detect", None, b - a))
        events.sort(key=lambda ev: (ev[0], ev[1]))
        be = self.backend
        counts = 0
        for t, _, kind, profile, width in events:
            t_ns, w_ns = t0 + t * CLOCK_NS, width * CLOCK_NS
            if kind == "cool":
                be.cool(qubit, w_ns, t_ns)
            elif kind == "pump":
                be.pump(qubit, w_ns, t_ns)
            elif kind == "pulse":
                be.pulse(qubit, self.dds_phases_rad[profile], w_ns, t_ns)
            else:
                c = int(be.detect(qubit, w_ns, t_ns))
                if c < 0:
                    raise ValueError(f"backend returned negative PMT counts {c}")
                counts += c
        return min(counts, 0xFFFFFFFF), bool(gates)

    def _qmsg(self, tick: int, raw: bytes) -> bytes:
        try:
            msg = decode(raw)
        except MessageError as exc:
            raise _Refuse(ErrorCode.BAD_MESSAGE, str(exc)) from None
        if not isinstance(msg, InstructionMessage):
            raise _Refuse(ErrorCode.BAD_MESSAGE, f"{raw.hex()} is a response word, not an instruction")
        if msg.qubit >= NUM_QUBITS:
            raise _Refuse(ErrorCode.BAD_MESSAGE, f"qubit {msg.qubit}: the trap holds {NUM_QUBITS} ion")
        if msg.opcode is Opcode.NOP:
            tick = self._claim_tick(tick)
            self.last_msg_tick = tick
            self.busy_until_tick = tick + 1
            resp = Response(ResponseKind.SUCCESS)
            return struct.pack(">III", tick, 0, 0) + encode(response_message(resp, 0, msg.seq))
        if msg.opcode is not Opcode.PLAY:
            raise _Refuse(ErrorCode.BAD_MESSAGE,
                          f"opcode {msg.opcode.name} is not played by the bridge: send PLAY <slot>")
        start, dur, counts, detected = self._play(tick, msg.argument, msg.qubit)
        if detected:
            bright = counts >= self.registers[Register.PMT_THRESHOLD]
            bo = self.registers[Register.BRIGHT_OUTCOME]
            resp = Response(ResponseKind.OUTCOME, bo if bright else 1 - bo)
        else:
            resp = Response(ResponseKind.SUCCESS)
        return struct.pack(">III", start, dur, counts) + encode(response_message(resp, msg.qubit, msg.seq))
