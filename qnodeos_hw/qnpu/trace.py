"""Moved to :mod:`qnodeos_hw.protocol.trace` (the event record both the QNPU and the CNPU
write)."""

from ..protocol.trace import *  # noqa: F401,F403
