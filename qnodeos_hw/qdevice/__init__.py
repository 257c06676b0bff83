"""The hardware-independent QDevice model: physical instructions, device specs, the
4-byte controller message, the tick link and clocks."""

from .clock import Clock, ClockError, PacedClock, VirtualClock
from .errors import (DeviceBusyError, FifoOverflowError, MessageError, QDeviceError,
                     TickLinkError, UnsupportedInstructionError)
from .instructions import (ENT_FAILURE, FAILURE, SUCCESS, Axis, Entangle, EntangleMode, Init,
                           InstrKind, Measure, NoOp, PhysicalInstruction, Response, ResponseKind,
                           Rotation, TwoQubitGate, TwoQubitGateKind, qubits_of)
from .message import (MESSAGE_BYTES, ControllerMessage, InstructionMessage, Opcode,
                      ResponseMessage, angle_code, decode, encode, instruction_message,
                      physical_instruction, response_message, response_of)
from .spec import ION_SPEC, NV_SPEC, QDeviceSpec, ion_spec, nv_spec
from .ticklink import BusyPolicy, Direction, TickDevice, TickEvent, TickLink

__all__ = [n for n in dir() if not n.startswith("_")]
