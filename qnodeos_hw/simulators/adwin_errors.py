"""What the simulated ADwin refuses: :class:`ADwin.ADwinError` subclasses, as the vendor
library raises (kept apart from :mod:`.adwin_sim` so that they stay plain Python
classes when the simulator is compiled)."""

from __future__ import annotations

from ADwin import ADwinError

from ..qdevice.errors import DeviceBusyError, FifoOverflowError


class SimADwinError(ADwinError):
    """Base class of what the simulated ADwin refuses."""

    number = 1000

    def __init__(self, function: str, text: str) -> None:
        super().__init__(function, text, self.number)
        Exception.__init__(self, function, text, self.number)


class NotBootedError(SimADwinError):
    """A process was loaded or started before Boot."""
    number = 1001


class ProcessNotRunningError(SimADwinError):
    """The mailbox was used while the controller process is not running."""
    number = 1002


class UnknownProcessError(SimADwinError):
    """Load_Process of a binary the simulator does not implement."""
    number = 1003


class InstructionRejectedError(SimADwinError):
    """The controller refuses a word: malformed, or an opcode it does not execute."""
    number = 1004


class InstructionFifoOverflowError(SimADwinError, FifoOverflowError):
    """The instruction FIFO is full."""
    number = 1005


class ControllerBusyError(SimADwinError, DeviceBusyError):
    """An instruction arrived while one is executing (busy policy REFUSE)."""
    number = 1006


class FifoUnderflowError(SimADwinError):
    """More values requested from a FIFO than it holds."""
    number = 1007


class AWGNoResponseError(SimADwinError):
    """The AWG did not play anything for a codeword (e.g. DIO valid-bit mismatch)."""
    number = 1008


class ParameterRefusedError(SimADwinError, ValueError):
    """A Par/FPar/Data index or value the process does not accept."""
    number = 1009
