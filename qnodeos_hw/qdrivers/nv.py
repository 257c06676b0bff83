"""The NV QDriver: NetQASM (NV flavour, core, vanilla) -> waveform-table entries ->
4-byte controller messages to the ADwin-like controller.

The mapping is data derived from the waveform table
(:class:`~qnodeos_hw.waveforms.table.WaveformTable`), computed once:

* every MW entry's ideal unitary (x/y/z grid rotations and the face-diagonal
  Cliffords) keyed modulo global phase, so the rotations of one NetQASM
  instruction whose product *is* an entry (``h`` -> ``hadamard``, ``k`` ->
  ``pi_ypz``, ``rot_x`` by any ``n*pi/2^d`` on the grid) play as that one entry;
* otherwise each rotation is composed about its own axis from that axis's grid
  entries (:class:`~.compose.AngleComposer`, shortest sum); a z angle finer than
  the z grid becomes ``x(-pi/2) y(theta) x(pi/2)``, theta composed from y entries.

Rotations about z are real entries of the table (composite pulses played by the
AWG), not a software frame: the AWG keeps the rotating frame continuous across
entries, so a z entry acts like any other gate and the QDriver carries no hidden
state between instructions (a frame kept in software would be lost when the
QNPU interleaves processes on one qubit).

``init``, ``meas`` and entanglement attempts are controller operations (INIT,
MEASURE, ENT_KEEP / ENT_MEASURE opcodes); MW gates are ``PLAY <entry index>``.
An angle no composition can play within 1e-9 rad raises
:class:`UnsupportedNetQASMError` naming the instruction and the angle.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from netqasm.lang.instr.flavour import NVFlavour

from ..qdevice.errors import UnsupportedInstructionError
from ..qdevice.instructions import Axis, PhysicalInstruction, Rotation
from ..qdevice.message import InstructionMessage, Opcode, instruction_message
from ..qdevice.spec import QDeviceSpec, nv_spec
from ..waveforms.table import TableEntry, WaveformTable
from .base import UnsupportedNetQASMError
from .compose import AngleComposer
from .link_driver import LinkQDriver, Transport
from .unitaries import phase_key, rotation_matrix

_PAULI = {"x": np.array([[0, 1], [1, 0]], complex), "y": np.array([[0, -1j], [1j, 0]], complex),
          "z": np.array([[1, 0], [0, -1]], complex)}
_AXES = {"x": Axis.X, "y": Axis.Y, "z": Axis.Z}


def entry_unitary(entry: TableEntry) -> np.ndarray:
    """Ideal unitary of a rotation entry: about ``entry.axis`` ('x', 'y', 'z' or a face
    diagonal such as 'x+z') by ``entry.angle_rad``."""
    axis = entry.axis
    if axis in _AXES:
        return rotation_matrix(_AXES[axis], entry.angle_rad)
    vec = np.zeros(3)
    sign = 1.0
    for ch in axis:
        if ch in "+-":
            sign = 1.0 if ch == "+" else -1.0
        else:
            vec["xyz".index(ch)] = sign
    vec /= np.linalg.norm(vec)
    nsig = sum(v * _PAULI[a] for v, a in zip(vec, "xyz"))
    th = entry.angle_rad
    return math.cos(th / 2) * np.eye(2) - 1j * math.sin(th / 2) * nsig


class NVMapping:
    """Physical rotations -> table-entry indices, derived from one waveform table."""

    def __init__(self, table: WaveformTable) -> None:
        self.table = table
        self.single: dict[tuple, int] = {}
        steps: dict[str, dict[int, float]] = {"x": {}, "y": {}, "z": {}}
        depth: dict[str, int] = {"x": 0, "y": 0, "z": 0}
        for e in table.rotations():
            if not e.mw:
                continue
            self.single.setdefault(phase_key(entry_unitary(e)), e.index)
            if e.axis in steps and e.d is not None:
                steps[e.axis][e.index] = e.angle_rad
                depth[e.axis] = max(depth[e.axis], e.d)
        self.none_index = table.by_name("none").index
        self.axis = {a: AngleComposer(s, depth[a]) for a, s in steps.items() if s}
        self._x_half = (table.by_rotation("x", -1, 1).index, table.by_rotation("x", 1, 1).index) \
            if "x" in self.axis else None

    def rotations(self, rots: list[Rotation]) -> tuple[int, ...] | None:
        """Entry indices (time order) for consecutive rotations on one qubit, or None."""
        u = np.eye(2, dtype=complex)
        for r in rots:
            u = rotation_matrix(r.axis, r.angle) @ u
        one = self.single.get(phase_key(u))
        if one is not None:
            return (one,)
        if np.allclose(abs(np.vdot(np.eye(2), u)), 2):          # identity: nothing to play
            return ()
        out: list[int] = []
        for r in rots:
            word = self._compose(r)
            if word is None:
                return None
            out.extend(word)
        return tuple(out)

    def _compose(self, r: Rotation) -> tuple[int, ...] | None:
        ax = r.axis.value
        comp = self.axis.get(ax)
        word = comp.compose(r.angle) if comp is not None else None
        if word is None and ax == "z" and self._x_half and "y" in self.axis:
            inner = self.axis["y"].compose(r.angle)
            if inner is not None:
                word = (self._x_half[0], *inner, self._x_half[1])
        return word


class NVQDriver(LinkQDriver):
    """QDriver of an NV node behind an ADwin-like controller (``send``/``transact`` of
    4-byte words; see :class:`~qnodeos_hw.instruments.adwin.ADwinController`)."""

    flavour = NVFlavour()

    def __init__(self, controller: Transport, table: WaveformTable,
                 spec: QDeviceSpec | None = None, now_ns: Callable[[], int] | None = None,
                 state_probe: Callable[[tuple[int, ...]], np.ndarray] | None = None) -> None:
        super().__init__(controller, spec or nv_spec(), now_ns or controller.now_ns, state_probe)
        self.controller = controller
        self.mapping = NVMapping(table)

    def _play_rotations(self, instr: Any, rotations: tuple[Rotation, ...]
                        ) -> tuple[InstructionMessage, ...]:
        entries = self.mapping.rotations(list(rotations))
        if entries is None:
            angles = ", ".join(f"{r.axis.value}:{r.angle!r} rad" for r in rotations)
            raise UnsupportedNetQASMError(
                f"{instr.mnemonic}: no composition of waveform-table entries plays rotation "
                f"({angles}) within 1e-9 rad")
        q = rotations[0].qubit
        return tuple(InstructionMessage(Opcode.PLAY, q, e) for e in entries)

    def _play_other(self, instr: Any, p: PhysicalInstruction) -> tuple[InstructionMessage, ...]:
        try:
            self.spec.check(p)
        except UnsupportedInstructionError as exc:
            raise UnsupportedNetQASMError(f"{instr.mnemonic}: {exc}") from exc
        return (instruction_message(p),)
