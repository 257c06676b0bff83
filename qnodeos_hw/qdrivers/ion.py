"""The trapped-ion QDriver: NetQASM (trapped-ion flavour and core) -> sequences of the
ion node's seven physical instructions -> PLAY messages to the FPGA bridge.

The mapping is data derived from the TTL set: the unitaries of the five rotation
sequences (:data:`~qnodeos_hw.sequences.ion_ttl.ROTATIONS`) generate the 24-element
single-qubit Clifford group; a breadth-first search gives the shortest sequence
for every element. Any run of rotations of one NetQASM instruction (``rot_x``,
``rot_y``, ``rot_z`` by multiples of pi/2, ``h``, ``s``, ``x``...) is multiplied
out and looked up; a rotation outside the group (e.g. ``rot_z`` by pi/4) raises
:class:`UnsupportedNetQASMError` naming the instruction and the angle.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from netqasm.lang.instr.flavour import TrappedIonFlavour

from ..instruments.ion_bridge import IonFPGABridge
from ..qdevice.clock import Clock
from ..qdevice.errors import UnsupportedInstructionError
from ..qdevice.instructions import EntangleMode, Init, Measure, PhysicalInstruction, Response, Rotation
from ..qdevice.message import InstructionMessage
from ..qdevice.spec import QDeviceSpec, ion_spec
from ..qdevice.ticklink import TickLink
from ..sequences.ion_ttl import (ROTATIONS, IonCalibration, IonInstruction, build_all,
                                 load_calibration, play_message)
from .base import UnsupportedNetQASMError
from .compose import UnitaryComposer
from .link_driver import LinkQDriver
from .unitaries import rotation_matrix


def ion_composer() -> UnitaryComposer[IonInstruction]:
    """Shortest slot sequences for every single-qubit Clifford (from the TTL set)."""
    return UnitaryComposer({k: rotation_matrix(axis, angle) for k, (axis, angle) in ROTATIONS.items()})


class IonQDriver(LinkQDriver):
    """QDriver of a trapped-ion node behind an :class:`IonFPGABridge`."""

    flavour = TrappedIonFlavour()

    def __init__(self, bridge: IonFPGABridge, clock: Clock, spec: QDeviceSpec | None = None,
                 calibration: IonCalibration | None = None, upload: bool = True,
                 state_probe: Callable[[tuple[int, ...]], np.ndarray] | None = None) -> None:
        spec = spec or ion_spec()
        if upload:
            cal = calibration or load_calibration()
            bridge.upload_all(build_all(cal))
            bridge.pmt_threshold(cal.pmt_threshold)
        self.link = TickLink(spec, bridge.tick_device(), clock)
        super().__init__(self.link, spec, clock.now_ns, state_probe)
        self.bridge = bridge
        self.composer = ion_composer()

    def _play_rotations(self, instr: Any, rotations: tuple[Rotation, ...]
                        ) -> tuple[InstructionMessage, ...]:
        u = np.eye(2, dtype=complex)
        for r in rotations:
            u = rotation_matrix(r.axis, r.angle) @ u
        word = self.composer.compose(u)
        if word is None:
            angles = ", ".join(f"{r.axis.value}:{r.angle:.6g} rad" for r in rotations)
            raise UnsupportedNetQASMError(
                f"{instr.mnemonic}: rotation ({angles}) is not a multiple of pi/2: the ion "
                "node's seven instructions cannot play it")
        return tuple(play_message(k, rotations[0].qubit) for k in word)

    def _play_other(self, instr: Any, p: PhysicalInstruction) -> tuple[InstructionMessage, ...]:
        if isinstance(p, Init):
            return (play_message(IonInstruction.INIT, p.qubit),)
        if isinstance(p, Measure):
            return (play_message(IonInstruction.MEASURE, p.qubit),)
        raise UnsupportedNetQASMError(
            f"{instr.mnemonic}: {type(p).__name__} needs more than one ion; the ion node "
            "has a single qubit")

    def entangle(self, qubit: int, mode: EntangleMode, peer: str, attempts: int = 1) -> Response:
        raise UnsupportedInstructionError(
            "the trapped-ion node has no photonic interface: entanglement is not supported")
