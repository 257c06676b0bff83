"""Typed errors of the QNPU. Each names its cause; a failing subroutine fails only its
own process (the error is reported to that program's connection)."""

from __future__ import annotations


class QNPUError(Exception):
    """Base class of every QNPU error."""


class MalformedSubroutineError(QNPUError, ValueError):
    """The subroutine bytes cannot be decoded with the node's NetQASM flavour."""


class UnsupportedSubroutineError(QNPUError, ValueError):
    """The subroutine decodes but uses an instruction this QNPU cannot run."""


class ExecutionError(QNPUError, RuntimeError):
    """An instruction failed at run time. ``instr_index`` is its line in the subroutine,
    ``mnemonic`` its name."""

    def __init__(self, instr_index: int, mnemonic: str, detail: str) -> None:
        self.instr_index, self.mnemonic, self.detail = instr_index, mnemonic, detail
        super().__init__(f"instruction {instr_index} ({mnemonic}): {detail}")


class QubitAllocationError(QNPUError, RuntimeError):
    """No free physical qubit, or a virtual qubit address out of range / in use / unmapped."""


class EPRSocketError(QNPUError, RuntimeError):
    """An entanglement request names an EPR socket or a remote node that is not open/known."""


class ProtocolError(QNPUError, ValueError):
    """A host message arrived that makes no sense in the connection's state."""


class AppIdNotOwnedError(ProtocolError, PermissionError):
    """A connection named an app id it did not register: a connection may touch only the
    processes it created (another program's app id is refused, never served)."""


class EntanglementAbortedError(EPRSocketError):
    """An entanglement request ended unserved: the program at the other end (or on this
    node) that took part in it went away (disconnected, stopped or killed)."""


class EntanglementTimeoutError(EPRSocketError, TimeoutError):
    """An entanglement request waited longer than the request timeout
    (``QNPUConfig.request_timeout_ns``) for the other end to take part."""


class PeerProtocolError(QNPUError, ValueError):
    """A peer-protocol message (QNPU to QNPU) is malformed or claims an identity that is
    not the link's it came over; it is dropped."""
