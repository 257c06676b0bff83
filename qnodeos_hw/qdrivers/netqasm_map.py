"""NetQASM quantum instructions -> hardware-independent physical instructions.

Works on netqasm's own instruction objects of the core, vanilla, NV and
trapped-ion flavours. Rotations keep their ``n*pi/2^d`` angles; fixed gates
(x, y, z, h, s, k, t) are turned into rotations through the ZYZ Euler
decomposition of netqasm's own ``to_matrix()``, computed once per gate class;
``meas_basis*`` become rotations (first angle applied first, as netqasm's
``basis_to_rotation`` tables mean) followed by a measurement.

The platform layer (NV waveform entries, ion TTL sequences) then composes these
rotations from what the hardware has.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from netqasm.lang.instr import core, nv, trapped_ion, vanilla
from netqasm.lang.operand import Immediate

from ..qdevice.instructions import (Axis, Init, Measure, PhysicalInstruction, Rotation,
                                    TwoQubitGate, TwoQubitGateKind)
from .base import UnsupportedNetQASMError
from .unitaries import equal_up_to_phase, euler_zyz, rotation_matrix

_ROT_AXIS: dict[type, Axis] = {
    vanilla.RotXInstruction: Axis.X, vanilla.RotYInstruction: Axis.Y,
    vanilla.RotZInstruction: Axis.Z,
    nv.RotXInstruction: Axis.X, nv.RotYInstruction: Axis.Y, nv.RotZInstruction: Axis.Z,
    trapped_ion.RotZInstruction: Axis.Z,
}
_ALL_ROT_AXIS: dict[type, Axis] = {
    trapped_ion.AllQubitsRotXInstruction: Axis.X,
    trapped_ion.AllQubitsRotYInstruction: Axis.Y,
    trapped_ion.AllQubitsRotZInstruction: Axis.Z,
}
_FIXED_GATES = (vanilla.GateXInstruction, vanilla.GateYInstruction, vanilla.GateZInstruction,
                vanilla.GateHInstruction, vanilla.GateSInstruction, vanilla.GateKInstruction,
                vanilla.GateTInstruction)
_MEAS_BASIS_AXES: dict[type, tuple[Axis, Axis, Axis]] = {
    core.MeasBasisInstruction: (Axis.X, Axis.Y, Axis.X),
    core.MeasBasisYZYInstruction: (Axis.Y, Axis.Z, Axis.Y),
    core.MeasBasisZXZInstruction: (Axis.Z, Axis.X, Axis.Z),
}
_CONTROLLED = {nv.ControlledRotXInstruction: TwoQubitGateKind.CROT_X,
               nv.ControlledRotYInstruction: TwoQubitGateKind.CROT_Y,
               vanilla.CnotInstruction: TwoQubitGateKind.CNOT,
               vanilla.CphaseInstruction: TwoQubitGateKind.CZ}

_MOVES = (nv.MovInstruction, nv.SwpInstruction, vanilla.MovInstruction, vanilla.SwpInstruction)

#: number of qubit operands (default 1); the *_all instructions take every qubit
_QUBIT_OPERANDS: dict[type, int] = {
    **{c: 2 for c in (*_MOVES, nv.ControlledRotXInstruction, nv.ControlledRotYInstruction,
                      vanilla.CnotInstruction, vanilla.CphaseInstruction)},
    **{c: 1 for c in (trapped_ion.AllQubitsInitInstruction, trapped_ion.AllQubitsMeasInstruction,
                      trapped_ion.AllQubitsRotXInstruction, trapped_ion.AllQubitsRotYInstruction,
                      trapped_ion.AllQubitsRotZInstruction)},
}

#: instructions that are not quantum operations for a QDriver (QNPU business)
NOT_FOR_QDRIVER = (core.QAllocInstruction, core.QFreeInstruction, core.CreateEPRInstruction,
                   core.RecvEPRInstruction)


def _imm(op, instr, what: str) -> int:
    if isinstance(op, Immediate):
        return op.value
    if isinstance(op, int):
        return op
    raise UnsupportedNetQASMError(
        f"{instr.mnemonic}: {what} must be an immediate by the time it reaches the QDriver, got {op!r}")


def _angle(instr, n_op, d_op) -> float:
    n, d = _imm(n_op, instr, "angle numerator"), _imm(d_op, instr, "angle denominator")
    if not 0 <= d <= 31:
        raise UnsupportedNetQASMError(f"{instr.mnemonic}: angle denominator exponent {d} out of range")
    return n * math.pi / (1 << d)


def _snap(angle: float) -> float:
    """Round Euler angles that are multiples of pi/2^10 onto that grid (kills 1e-16 noise)."""
    k = round(angle * 1024 / math.pi)
    return k * math.pi / 1024 if abs(k * math.pi / 1024 - angle) < 1e-9 else angle


def _single_axis(u: np.ndarray) -> tuple[Axis, float] | None:
    """(axis, angle) when ``u`` is a rotation about one of x, y, z (up to phase)."""
    v = u / np.sqrt(complex(np.linalg.det(u)))
    for axis in (Axis.X, Axis.Y, Axis.Z):
        s = -np.trace(v @ rotation_matrix(axis, math.pi)).real / 2  # = sin(theta/2)
        c = np.trace(v).real / 2
        theta = _snap(2 * math.atan2(s, c))
        if equal_up_to_phase(u, rotation_matrix(axis, theta)):
            return axis, theta
    return None


@lru_cache(maxsize=None)
def fixed_gate_rotations(gate_cls: type) -> tuple[tuple[Axis, float], ...]:
    """Time-ordered (axis, angle) rotations equal (up to phase) to a fixed vanilla gate:
    one rotation when the gate is one, else the ZYZ Euler angles (zeros dropped)."""
    u = np.asarray(gate_cls().to_matrix(), dtype=complex)
    one = _single_axis(u)
    if one is not None:
        return (one,)
    a, b, c = (_snap(x) for x in euler_zyz(u))
    seq = [(Axis.Z, c), (Axis.Y, b), (Axis.Z, a)]
    return tuple((ax, ang) for ax, ang in seq if abs(math.remainder(ang, 4 * math.pi)) > 1e-12)


def physical_instructions(instr, qubits: tuple[int, ...]) -> tuple[PhysicalInstruction, ...]:
    """The physical instructions of one NetQASM quantum instruction on physical ``qubits``.

    ``qubits``: the physical addresses of the instruction's qubit operands in order
    (for the ``*_all`` ion instructions: every qubit of the device).
    Raises :class:`UnsupportedNetQASMError` naming the instruction otherwise.
    """
    if isinstance(instr, NOT_FOR_QDRIVER):
        raise UnsupportedNetQASMError(
            f"{instr.mnemonic} is handled by the QNPU (QMMU / network process), not a QDriver")
    cls = type(instr)
    need = _QUBIT_OPERANDS.get(cls, 1)
    if len(qubits) < need:
        raise UnsupportedNetQASMError(
            f"{instr.mnemonic}: needs {need} physical qubit address(es), got {qubits!r}")
    axis = _ROT_AXIS.get(cls)
    if axis is not None:
        return (Rotation(qubits[0], axis, _angle(instr, instr.imm0, instr.imm1)),)
    if cls is core.InitInstruction:
        return (Init(qubits[0]),)
    if cls is core.MeasInstruction:
        return (Measure(qubits[0]),)
    if cls in _FIXED_GATES:
        return tuple(Rotation(qubits[0], ax, ang) for ax, ang in fixed_gate_rotations(cls))
    axes = _MEAS_BASIS_AXES.get(cls)
    if axes is not None:
        denom = instr.imm3
        rots = tuple(Rotation(qubits[0], ax, _angle(instr, n_op, denom))
                     for ax, n_op in zip(axes, (instr.imm0, instr.imm1, instr.imm2)))
        return tuple(r for r in rots if r.angle % (2 * math.pi)) + (Measure(qubits[0]),)
    axis = _ALL_ROT_AXIS.get(cls)
    if axis is not None:
        ang = _angle(instr, instr.imm0, instr.imm1)
        return tuple(Rotation(q, axis, ang) for q in qubits)
    if cls is trapped_ion.AllQubitsInitInstruction:
        return tuple(Init(q) for q in qubits)
    if cls is trapped_ion.AllQubitsMeasInstruction:
        return tuple(Measure(q) for q in qubits)
    gate = _CONTROLLED.get(cls)
    if gate is not None:
        if gate in (TwoQubitGateKind.CROT_X, TwoQubitGateKind.CROT_Y):
            ang = _angle(instr, instr.imm0, instr.imm1)
            if abs(abs(math.remainder(ang, 2 * math.pi)) - math.pi / 2) > 1e-9:
                raise UnsupportedNetQASMError(
                    f"{instr.mnemonic}: only controlled rotations by +-pi/2 are native, got {ang} rad")
        return (TwoQubitGate(qubits[0], qubits[1], gate),)
    if cls in _MOVES:
        a, b = qubits[0], qubits[1]
        cx = TwoQubitGateKind.CNOT
        if cls in (nv.MovInstruction, vanilla.MovInstruction):   # b starts in |0>
            return (TwoQubitGate(a, b, cx), TwoQubitGate(b, a, cx))
        return (TwoQubitGate(a, b, cx), TwoQubitGate(b, a, cx), TwoQubitGate(a, b, cx))
    raise UnsupportedNetQASMError(f"{instr.mnemonic} ({cls.__module__}.{cls.__name__}) has no "
                                  "physical realisation in this QDriver")
