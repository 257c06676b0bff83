"""pyserial URL handlers for simulated serial instruments.

``sim://ion[?options]`` opens a port whose far end is the simulated ion FPGA bridge
(:mod:`qnodeos_hw.simulators.ion_fpga_sim`). pyserial finds the handler through its
``protocol_handler_packages`` list: call :func:`register` once, or pass
``protocol_handler_packages=["qnodeos_hw.simulators.serial_sim"]`` to the ion bridge
driver (which appends it, like any custom URL scheme).
"""

from __future__ import annotations

import serial

PACKAGE = __name__


def register() -> None:
    """Make ``serial.serial_for_url("sim://...")`` resolve to this package (idempotent)."""
    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)
