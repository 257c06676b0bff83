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

Carbons (physical qubits 1..N): a rotation about x by +-pi/2 or pi is one carbon-gate
entry (a DD train, ``PLAY`` with the carbon's address); a z rotation is a frame update of
the controller (``ROT_Z`` on the carbon: virtual Z); any other rotation is composed as
``Rx(theta) = Ry(pi/2) Rz(theta) Ry(-pi/2)`` with ``Ry(phi) = Rz(pi/2) Rx(phi) Rz(-pi/2)``.
``crot_x`` by +-pi/2 (electron control, carbon target) is one conditional-rotation entry;
``crot_y`` is ``Rz(pi/2) crot_x Rz(-pi/2)`` on the carbon. CNOT and CZ (from ``mov``,
``swp``, vanilla ``cnot``/``cphase``) follow the circuits of netqasm's NV compiler
(``crot_x`` + rotations; the electron must take part). The electron (0) is the only
measurable and the only communication qubit (the spec's ``measurable_qubits`` /
``comm_qubits``): ``meas`` on a carbon (netqasm's NV SDK frees virtual qubit 0 first) is
INIT of the electron, CNOT carbon -> electron, and the electron's readout.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from netqasm.lang.instr import nv as nv_instr
from netqasm.lang.instr import vanilla
from netqasm.lang.instr.flavour import NVFlavour

from ..qdevice.errors import UnsupportedInstructionError
from ..qdevice.instructions import (Axis, Entangle, EntangleMode, Init, Measure, Response,
                                    ResponseKind, PhysicalInstruction, Rotation, TwoQubitGate,
                                    TwoQubitGateKind)
from ..qdevice.errors import MessageError
from ..qdevice.message import (InstructionMessage, Opcode, angle_code, encode,
                               instruction_message, response_of)
from ..qdevice.spec import QDeviceSpec, nv_spec
from ..waveforms.table import TableEntry, WaveformTable
from .base import UnsupportedNetQASMError
from .compose import AngleComposer
from .link_driver import DeviceFailureError, LinkQDriver, Transport
from .unitaries import phase_key, rotation_matrix

_PAULI = {"x": np.array([[0, 1], [1, 0]], complex), "y": np.array([[0, -1j], [1j, 0]], complex),
          "z": np.array([[1, 0], [0, -1]], complex)}
_AXES = {"x": Axis.X, "y": Axis.Y, "z": Axis.Z}


def frame_code(angle: float) -> tuple[int, int] | None:
    """``(n, d)`` of a carbon frame update by ``angle`` (the ROT_Z word: ``n pi / 2^d``,
    ``d <= 15``, ``n < 4096``), or None when the angle is finer than that."""
    try:
        return angle_code(angle)
    except MessageError:
        return None


def _has_code(angle: float) -> bool:
    """Whether a frame rotation by ``angle`` fits one carbon ROT_Z word."""
    return frame_code(angle) is not None


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
                 state_probe: Callable[[tuple[int, ...]], np.ndarray] | None = None,
                 links: dict[str, int] | None = None) -> None:
        super().__init__(controller, spec or nv_spec(), now_ns or controller.now_ns, state_probe)
        self.controller = controller
        self.mapping = NVMapping(table)
        #: peer node -> optical link index (the heralding station the controller selects
        #: with bits 12..15 of the ENT argument); None: one link, to any peer
        self.links = dict(links) if links is not None else None

    def entangle(self, qubit: int, mode: EntangleMode, peer: str, attempts: int = 1) -> Response:
        """One attempt window on the optical link to ``peer`` (ENT argument: attempt
        budget in bits 0..11, link in bits 12..15)."""
        if self.links is None:  # one optical link: the generic word (budget up to 65535)
            return super().entangle(qubit, mode, peer, attempts)
        if peer not in self.links:
            raise UnsupportedNetQASMError(f"entangle with {peer}: this NV node has optical "
                                          f"links to {sorted(self.links)} only")
        link = self.links[peer]
        if not 1 <= attempts <= 0xFFF:
            raise UnsupportedNetQASMError(f"entangle with {peer}: with several optical links "
                                          f"the NV controller takes at most 4095 attempts per "
                                          f"window, asked {attempts}")
        instr = Entangle(qubit, mode, attempts)
        self.spec.check(instr)
        msg = instruction_message(instr)
        word = int.from_bytes(encode(InstructionMessage(msg.opcode, msg.qubit,
                                                        (attempts if attempts > 1 else 0)
                                                        | (link << 12))), "big")
        resp = response_of(self._send(word, f"entangle with {peer}"))
        if resp.kind not in (ResponseKind.ENT_SUCCESS, ResponseKind.ENT_FAILURE):
            raise DeviceFailureError(f"entangle with {peer} on qubit {qubit}: device answered "
                                     f"{resp.kind.name}")
        return resp

    # -- carbons ------------------------------------------------------------------------
    def _carbon_ops(self, instr: Any, rotations: tuple[Rotation, ...]) -> list[tuple[str, float]]:
        """Time-ordered ('vz', angle) / ('x', quarter turns) steps of rotations on a carbon."""
        h = math.pi / 2
        ops: list[tuple[str, float]] = []

        def x(theta: float) -> None:
            q = theta / h
            k = round(q)
            if abs(q - k) < 1e-9 and k % 4 in (1, 2, 3):
                ops.append(("x", {1: 1, 2: 2, 3: -1}[k % 4]))
            elif abs(math.remainder(theta, 2 * math.pi)) < 1e-12:
                return
            else:  # Rx(t) = Ry(pi/2) Rz(t) Ry(-pi/2); Ry(p) = Rz(pi/2) Rx(p) Rz(-pi/2)
                ops.extend([("vz", -h), ("x", -1), ("vz", h), ("vz", theta), ("vz", -h),
                            ("x", 1), ("vz", h)])

        for r in rotations:
            if r.axis is Axis.Z:
                ops.append(("vz", r.angle))
            elif r.axis is Axis.X:
                x(r.angle)
            else:
                ops.append(("vz", -h))
                x(r.angle)
                ops.append(("vz", h))
        merged: list[tuple[str, float]] = []
        for op in ops:
            if op[0] == "vz" and merged and merged[-1][0] == "vz" and _has_code(merged[-1][1] + op[1]):
                merged[-1] = ("vz", merged[-1][1] + op[1])
            else:
                merged.append(op)
        return [op for op in merged
                if not (op[0] == "vz" and abs(math.remainder(op[1], 4 * math.pi)) < 1e-12)]

    def _carbon_messages(self, instr: Any, q: int, ops: list[tuple[str, float]]
                         ) -> tuple[InstructionMessage, ...]:
        if q > self.mapping.table.num_carbons:
            raise UnsupportedNetQASMError(f"{instr.mnemonic}: qubit {q} has no carbon gates in "
                                          f"the waveform table ({self.mapping.table.num_carbons} "
                                          "carbon(s))")
        out = []
        for kind, v in ops:
            if kind == "vz":
                code = frame_code(v)
                if code is None:
                    raise UnsupportedNetQASMError(f"{instr.mnemonic}: carbon {q} frame rotation by "
                                                  f"{v!r} rad has no n*pi/2^d code (d <= 15: the "
                                                  "controller's ROT_Z word)")
                n, d = code
                if n:
                    out.append(InstructionMessage(Opcode.ROT_Z, q, (n << 4) | d))
            elif kind == "crot":
                e = self.mapping.table.carbon_gate(q, "crot_x", int(v))
                out.append(InstructionMessage(Opcode.PLAY, q, e.index))
            else:
                e = self.mapping.table.carbon_gate(q, "rot_x", int(v))
                out.append(InstructionMessage(Opcode.PLAY, q, e.index))
        return tuple(out)

    def _electron(self, instr: Any, axis: Axis, angle: float) -> tuple[InstructionMessage, ...]:
        return self._play_rotations(instr, (Rotation(0, axis, angle),))

    def _carbon(self, instr: Any, q: int, axis: Axis, angle: float) -> tuple[InstructionMessage, ...]:
        return self._carbon_messages(instr, q, self._carbon_ops(instr, (Rotation(q, axis, angle),)))

    def _crot(self, instr: Any, e: int, c: int, axis: Axis, angle: float
              ) -> tuple[InstructionMessage, ...]:
        if e != 0 or c == 0:
            raise UnsupportedNetQASMError(f"{instr.mnemonic}: conditional rotations are "
                                          f"electron (0) -> carbon, got qubits ({e}, {c})")
        k = angle / (math.pi / 2)
        if abs(k - round(k)) > 1e-9:
            raise UnsupportedNetQASMError(f"{instr.mnemonic}: conditional rotations by multiples "
                                          f"of pi/2 only, got {angle} rad")
        k = int(round(k)) % 4
        ops: list[tuple[str, float]] = [("crot", 1)] * (k if k < 3 else 0) + \
            ([("crot", -1)] if k == 3 else [])
        if axis is Axis.Y:
            ops = [("vz", -math.pi / 2)] + ops + [("vz", math.pi / 2)]
        return self._carbon_messages(instr, c, ops)

    def _two_qubit(self, instr: Any, g: TwoQubitGate) -> tuple[InstructionMessage, ...]:
        """CNOT / CZ by netqasm's NV-compiler circuits (the electron must take part)."""
        a, b = g.control, g.target
        h = math.pi / 2
        X, Y, Z = Axis.X, Axis.Y, Axis.Z
        hadamard = self._play_rotations(instr, (Rotation(0, Y, h), Rotation(0, X, math.pi)))
        if g.gate is TwoQubitGateKind.CNOT and a == 0:
            return (self._crot(instr, 0, b, X, h) + self._electron(instr, Z, -h)
                    + self._carbon(instr, b, X, -h))
        if g.gate is TwoQubitGateKind.CNOT and b == 0:
            return (hadamard + self._carbon(instr, a, Y, h) + self._crot(instr, 0, a, X, h)
                    + self._electron(instr, Z, -h) + self._carbon(instr, a, X, -h)
                    + self._carbon(instr, a, Y, -h) + hadamard)
        if g.gate is TwoQubitGateKind.CZ and 0 in (a, b):
            c = b if a == 0 else a
            return (self._carbon(instr, c, Y, h) + self._crot(instr, 0, c, X, h)
                    + self._electron(instr, Z, -h) + self._carbon(instr, c, X, -h)
                    + self._carbon(instr, c, Y, -h))
        raise UnsupportedNetQASMError(
            f"{instr.mnemonic}: {g.gate.name} between qubits {a} and {b}: an NV node has no "
            "carbon-carbon gate (netqasm's NV compiler moves one carbon through the electron)")

    def _compile(self, instr: Any, qubits: tuple[int, ...]) -> tuple[InstructionMessage, ...]:
        if isinstance(instr, (nv_instr.ControlledRotXInstruction, nv_instr.ControlledRotYInstruction)):
            if len(qubits) < 2:
                raise UnsupportedNetQASMError(f"{instr.mnemonic}: needs 2 qubits, got {qubits!r}")
            for q in qubits[:2]:
                if not 0 <= q < self.spec.num_qubits:
                    raise UnsupportedNetQASMError(f"{instr.mnemonic}: qubit {q} does not exist on "
                                                  f"the {self.spec.num_qubits}-qubit NV node")
            n = instr.imm0.value if hasattr(instr.imm0, "value") else int(instr.imm0)
            d = instr.imm1.value if hasattr(instr.imm1, "value") else int(instr.imm1)
            axis = Axis.X if isinstance(instr, nv_instr.ControlledRotXInstruction) else Axis.Y
            return self._crot(instr, qubits[0], qubits[1], axis, n * math.pi / (1 << d))
        return super()._compile(instr, qubits)

    def _play_rotations(self, instr: Any, rotations: tuple[Rotation, ...]
                        ) -> tuple[InstructionMessage, ...]:
        if rotations[0].qubit != 0:
            q = rotations[0].qubit
            return self._carbon_messages(instr, q, self._carbon_ops(instr, rotations))
        entries = self.mapping.rotations(list(rotations))
        if entries is None:
            angles = ", ".join(f"{r.axis.value}:{r.angle!r} rad" for r in rotations)
            raise UnsupportedNetQASMError(
                f"{instr.mnemonic}: no composition of waveform-table entries plays rotation "
                f"({angles}) within 1e-9 rad")
        q = rotations[0].qubit
        return tuple(InstructionMessage(Opcode.PLAY, q, e) for e in entries)

    def _play_other(self, instr: Any, p: PhysicalInstruction) -> tuple[InstructionMessage, ...]:
        if isinstance(p, TwoQubitGate):
            return self._two_qubit(instr, p)
        if isinstance(p, Measure) and p.qubit != 0 and 0 in (self.spec.measurable_qubits or ()):
            # a carbon is read out through the electron (which netqasm's NV SDK frees first):
            # electron to |0>, CNOT carbon -> electron, electron readout
            init = instruction_message(Init(0))
            return ((init,) + self._two_qubit(instr, TwoQubitGate(p.qubit, 0))
                    + (instruction_message(Measure(0)),))
        try:
            self.spec.check(p)
        except UnsupportedInstructionError as exc:
            raise UnsupportedNetQASMError(f"{instr.mnemonic}: {exc}") from exc
        return (instruction_message(p),)
