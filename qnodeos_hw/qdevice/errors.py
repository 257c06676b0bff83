"""Typed errors of the QDevice model."""

from __future__ import annotations


class QDeviceError(Exception):
    """Base class of every QDevice-model error."""


class MessageError(QDeviceError, ValueError):
    """A 4-byte controller message is malformed.

    ``field`` names the part of the message at fault: ``"length"``, ``"parity"``,
    ``"reserved"``, ``"opcode"``, ``"qubit"`` or ``"argument"``.
    """

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        self.detail = detail
        super().__init__(f"bad controller message field '{field}': {detail}")


class UnsupportedInstructionError(QDeviceError, ValueError):
    """A physical instruction is not in the device's supported set, or addresses a
    qubit the device does not have."""


class TickLinkError(QDeviceError, RuntimeError):
    """The tick protocol was violated."""


class DeviceBusyError(TickLinkError):
    """An instruction was sent while the device was busy and the link refuses such sends."""


class FifoOverflowError(TickLinkError):
    """The device's instruction FIFO is full."""
