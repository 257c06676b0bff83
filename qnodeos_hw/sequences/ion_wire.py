"""The ion FPGA bridge's wire protocol: frame layout, commands, registers, error codes.

One definition shared by the QCoDeS driver (:mod:`qnodeos_hw.instruments.ion_bridge`,
which documents the protocol in full) and the simulated bridge
(:mod:`qnodeos_hw.simulators.ion_fpga_sim`), as firmware and driver share one spec.

Frame (both directions): ``0xA5 | LEN (u16 BE) | CMD (u8) | PAYLOAD | CHK (u8)``;
``LEN`` counts CMD + PAYLOAD (1..512); ``CHK`` makes the byte sum of LEN, CMD,
PAYLOAD and CHK 0 mod 256. Replies carry ``CMD | 0x80``; refusals are CMD ``0xEE``.
"""

from __future__ import annotations

import enum
import struct

START = 0xA5
MAX_BODY = 512          # bytes of command + payload
ERROR_REPLY = 0xEE
ASAP_TICK = 0xFFFFFFFF  # "the first free tick"
NUM_SLOTS = 16


class Command(enum.IntEnum):
    IDN = 0x01
    WRITE_REG = 0x02
    READ_REG = 0x03
    UPLOAD = 0x04
    SEQ_INFO = 0x05
    TRIGGER = 0x06
    QMSG = 0x07
    READ_PMT = 0x08


class Register(enum.IntEnum):
    PMT_THRESHOLD = 0x00
    BRIGHT_OUTCOME = 0x01
    TICK_RATE_HZ = 0x02
    CLOCK_HZ = 0x03
    TICK = 0x04
    LOADED = 0x05


class ErrorCode(enum.IntEnum):
    BAD_CHECKSUM = 1
    UNKNOWN_COMMAND = 2
    BAD_LENGTH = 3
    OVERLONG_FRAME = 4
    UNKNOWN_SEQUENCE = 5
    PACING = 6
    BUSY = 7
    BAD_SEQUENCE = 8
    BAD_MESSAGE = 9
    BAD_REGISTER = 10
    READ_ONLY = 11
    BAD_VALUE = 12
    NO_ION = 13


def checksum(body: bytes) -> int:
    """Byte that makes the sum of length, command, payload and checksum 0 mod 256."""
    return (-sum(body)) & 0xFF


def frame(cmd: int, payload: bytes = b"") -> bytes:
    """One wire frame."""
    body = struct.pack(">H", 1 + len(payload)) + bytes([cmd]) + payload
    return bytes([START]) + body + bytes([checksum(body)])
