"""Moved to :mod:`qnodeos_hw.protocol.framing` (shared by the QNPU and the CNPU)."""

from ..protocol.framing import *  # noqa: F401,F403
from ..protocol.framing import _LEN, _recv_into  # noqa: F401
