"""One time base for a network of nodes: the modelled latency of the classical side
(:mod:`.latency`) and the conservative synchronisation of the nodes' virtual clocks
(:mod:`.sync`). Imports nothing of ours: the QNPU and the CNPU both use it, and its
messages are plain JSON-able data, so they cross process and host boundaries unchanged.
"""

from .latency import LatencyModel, LatencyModelError, Segment, load_latency_model
from .sync import (ClockClient, ClockServer, ProgramClock, RemoteCoordinator, TimeCoordinator,
                   TimeSyncError)

__all__ = ["LatencyModel", "LatencyModelError", "Segment", "load_latency_model",
           "ClockClient", "ClockServer", "ProgramClock", "RemoteCoordinator", "TimeCoordinator", "TimeSyncError"]
