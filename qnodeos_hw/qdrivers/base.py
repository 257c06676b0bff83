"""The QDriver interface: the only hardware-dependent layer of the node OS.

The QNPU executor hands a QDriver one NetQASM quantum instruction at a time
(netqasm's own instruction object, e.g. ``netqasm.lang.instr.nv.RotXInstruction``)
together with the *physical* qubit addresses its qubit operands resolve to (the
QMMU has already translated virtual -> physical). The QDriver turns it into
physical instructions and platform messages, sends them through the tick link to
the instruments, and maps the responses back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..protocol.extensions import NotSimulatedError as _ProtocolNotSimulated
from ..qdevice.instructions import EntangleMode, Response
from ..qdevice.spec import QDeviceSpec


class QDriverError(Exception):
    """Base class of QDriver errors."""


class UnsupportedNetQASMError(QDriverError, ValueError):
    """A NetQASM instruction (or an argument of it, such as an angle) has no physical
    realisation on this platform. The message names the instruction and the cause."""


class NotSimulatedError(QDriverError, _ProtocolNotSimulated):
    """Asked for something only a simulated station can give (e.g. the density matrix)."""


class QDriver(ABC):
    """Maps NetQASM quantum instructions onto one QDevice."""

    #: what the device offers
    spec: QDeviceSpec
    #: the netqasm flavour whose instruction objects this driver accepts
    flavour: Any

    @abstractmethod
    def execute(self, instr: Any, qubits: tuple[int, ...]) -> int | None:
        """Run one NetQASM quantum instruction on physical ``qubits``.

        Returns the outcome bit for a measurement, otherwise None. Raises
        :class:`UnsupportedNetQASMError` for an instruction it cannot map.
        """

    @abstractmethod
    def entangle(self, qubit: int, mode: EntangleMode, peer: str, attempts: int = 1) -> Response:
        """Heralded entanglement with node ``peer`` on physical ``qubit``: up to
        ``attempts`` attempts in one window (called by the network process).
        ENT_SUCCESS or ENT_FAILURE."""

    @abstractmethod
    def now_ns(self) -> int:
        """The device's current time (ns)."""

    def free(self, qubit: int) -> None:
        """The QNPU released ``qubit``; the default does nothing."""

    def qubit_state(self, qubits: tuple[int, ...]) -> np.ndarray:
        """Reduced density matrix of ``qubits`` (simulated stations only)."""
        raise NotSimulatedError(f"{type(self).__name__} drives real hardware: no density matrix")
