"""Moved to :mod:`qnodeos_hw.runner.network` (the network runner sits above the CNPU and
the QNPU). This name stays for old imports."""

from ..runner.network import *  # noqa: F401,F403
from ..runner.network import _free_port, _jsonable  # noqa: F401
