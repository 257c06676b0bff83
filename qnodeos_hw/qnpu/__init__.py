"""The QNPU: end-node API server, process manager, scheduler, executor (compiled
NetQASM), QMMU and network process."""

from .compiler import CompiledSubroutine, SubroutineCache, compile_instructions
from .errors import (EPRSocketError, ExecutionError, MalformedSubroutineError, ProtocolError,
                     QNPUError, QubitAllocationError, UnsupportedSubroutineError)
from .netstack import NetworkStack, RequestBoard, TDMASchedule
from .process import Process, ProcessState, Scheduler
from .qmmu import QMMU
from .qnpu import QNPU, QNPUConfig
from .server import QNPUServer
from ..protocol.trace import Trace, TraceEvent

__all__ = [n for n in dir() if not n.startswith("_")]
