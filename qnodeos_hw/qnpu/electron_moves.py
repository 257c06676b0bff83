"""Memory moves through the electron on a device with one measurable / communication
qubit (NV: the electron; the carbons are read out through it).

netqasm's NV compiler assumes virtual qubit 0 is the electron and that only it can be
measured, so before it measures a carbon (or creates a pair into virtual 0) it moves
whatever lives in virtual 0 to a *fresh* virtual address: ``qalloc k; init k; mov 0 k;
qfree 0``. On a node with electron + N carbons that fresh address needs one physical
qubit more than the program holds: teleport's sender (its input qubit on carbon 1, the
pair half on the electron) needs electron + 2 carbons. Done literally, electron + 1
carbon cannot run it.

The QMMU instead lets a qubit be *unbacked* (mapped, in |0>, no physical qubit yet;
:meth:`~.qmmu.QMMU.allocate_unbacked`) when no physical qubit is free, and this layer
(between the executor and the QDriver, per process) keeps the physics exact:

* ``init`` of an unbacked qubit plays nothing (it is in |0>);
* ``mov a k`` into an unbacked ``k`` is a rename: ``k`` takes ``a``'s physical qubit and
  ``a`` becomes unbacked in |0> (what the mov circuit leaves behind); ``swp`` with an
  unbacked side swaps the addresses;
* a measurement of a carbon needs the electron (the QDriver plays INIT of the electron,
  CNOT carbon -> electron, readout): when the electron holds another live qubit of the
  same program, the two are swapped first (``swp``: three CNOTs of netqasm's NV circuits,
  played by the AWG like any other gate) and the electron is read out directly;
* any other instruction on an unbacked qubit gives it a free physical qubit (INIT
  first), or fails with :class:`QubitAllocationError` naming the qubit budget;
* a program's own qubit parked on the electron by a rename is moved to a free carbon
  when the electron is needed (``qalloc`` of virtual 0, an entanglement request); with
  no carbon free that fails at once with :class:`QubitAllocationError` (qubit budget),
  instead of letting the request wait out its timeout.

Measurements of distinct qubits commute, so none of this changes a program's outcome
statistics; it changes which gates are played (a swap of three CNOTs instead of a mov of
two plus one CNOT of the readout) and therefore the gate errors.
"""

from __future__ import annotations

from typing import Any, Callable

from netqasm.lang.encoding import RegisterName
from netqasm.lang.instr import core, nv, vanilla
from netqasm.lang.operand import Register

from .errors import QubitAllocationError
from .qmmu import NETWORK_PID, QMMU, unbacked_vaddr

_Q0, _Q1 = Register(RegisterName.Q, 0), Register(RegisterName.Q, 1)
_INIT = core.InitInstruction(reg=_Q0)
_SWAP = nv.SwpInstruction(reg0=_Q0, reg1=_Q1)
_MOV = nv.MovInstruction(reg0=_Q0, reg1=_Q1)
_MEAS = (core.MeasInstruction, core.MeasBasisInstruction, core.MeasBasisYZYInstruction,
         core.MeasBasisZXZInstruction)
_MOVS = (nv.MovInstruction, vanilla.MovInstruction)
_SWPS = (nv.SwpInstruction, vanilla.SwpInstruction)


class ElectronMoves:
    """Per-process wrapper of the QDriver's ``execute`` (see module docstring)."""

    def __init__(self, qmmu: QMMU, pid: int, execute: Callable[[Any, tuple], Any],
                 measurable: tuple[int, ...], budget: str) -> None:
        self.qmmu, self.pid, self._exec = qmmu, pid, execute
        self.ancilla = measurable[0]
        self._measurable = frozenset(measurable)
        self.table = qmmu.table(pid)
        #: e.g. "electron + 1 carbon" (for error messages)
        self.budget = budget

    def _vaddr(self, phys: int) -> int:
        return self.table.index(phys)

    def execute(self, instr: Any, qubits: tuple) -> Any:
        if qubits and min(qubits) < 0:
            return self._unbacked(instr, qubits)
        if isinstance(instr, _MEAS) and qubits[0] not in self._measurable:
            owner = self.qmmu.owner(self.ancilla)
            if owner == self.pid:  # the electron holds another live qubit of this program
                return self._swap_and_measure(instr, qubits[0])
            if owner is not None and owner != NETWORK_PID:
                raise QubitAllocationError(
                    f"{instr.mnemonic} of qubit {qubits[0]} reads out through qubit "
                    f"{self.ancilla}, which process {owner} holds")
        return self._exec(instr, qubits)

    def _swap_and_measure(self, instr: Any, carbon: int) -> Any:
        a = self.ancilla
        v_c, v_e = self._vaddr(carbon), self._vaddr(a)
        if self.qmmu.pinned.get(v_e) == a:
            raise QubitAllocationError(
                f"{instr.mnemonic} of virtual qubit {v_c} reads out through the electron, "
                f"which holds virtual qubit {v_e} (pinned to it): free or move it first "
                f"(netqasm's NV compiler does)")
        self._exec(_SWAP, (carbon, a))
        self.qmmu.swap(self.pid, v_c, v_e)
        return self._exec(instr, (a,))

    def _unbacked(self, instr: Any, qubits: tuple) -> Any:
        if isinstance(instr, core.InitInstruction):
            return None  # an unbacked qubit is in |0>
        if isinstance(instr, _MOVS + _SWPS) and len(qubits) == 2:
            a, b = qubits
            if a < 0 and b < 0:
                return None  # |0> onto |0>
            if b < 0 or isinstance(instr, _SWPS):
                va = unbacked_vaddr(a) if a < 0 else self._vaddr(a)
                vb = unbacked_vaddr(b) if b < 0 else self._vaddr(b)
                self.qmmu.swap(self.pid, va, vb)  # mov into |0> / swap with |0>: a rename
                return None
        phys = []
        for p in qubits:
            if p < 0:
                v = unbacked_vaddr(p)
                try:
                    p = self.qmmu.back(self.pid, v)
                except QubitAllocationError as exc:
                    raise QubitAllocationError(
                        f"{instr.mnemonic}: virtual qubit {v} needs a physical qubit and all "
                        f"{self.qmmu.num_qubits} are in use (qubit budget: {self.budget}); "
                        f"{exc}") from None
                self._exec(_INIT, (p,))
            phys.append(p)
        return self.execute(instr, tuple(phys))

    def free_electron(self, why: str) -> None:
        """The electron is needed (``why``): a qubit of this program parked on it by a
        rename moves to a free carbon; none free: QubitAllocationError now."""
        a = self.ancilla
        if self.qmmu.owner(a) != self.pid:
            return
        v = self._vaddr(a)
        if self.qmmu.pinned.get(v) == a:
            return  # virtual 0 itself: the program's own business
        free = [p for p in range(self.qmmu.num_qubits)
                if self.qmmu.owner(p) is None and p not in self.qmmu.pinned.values()]
        if not free:
            raise QubitAllocationError(
                f"{why} needs the electron, which holds virtual qubit {v} of process "
                f"{self.pid}, and no carbon is free to move it to (qubit budget: "
                f"{self.budget})")
        c = free[0]
        self.qmmu.move(self.pid, v, c)
        self._exec(_INIT, (c,))
        self._exec(_MOV, (a, c))


def for_device(qmmu: QMMU, pid: int, execute: Callable[[Any, tuple], Any], spec: Any
               ) -> ElectronMoves | None:
    """The moves layer of a process on a device with pinned addresses and a single
    measurable qubit (NV), else None (the executor calls the QDriver directly)."""
    meas = tuple(getattr(spec, "measurable_qubits", None) or ())
    if not qmmu.pinned or len(meas) != 1:
        return None
    n = qmmu.num_qubits - 1
    budget = (f"electron + {n} carbon{'s' if n != 1 else ''}" if spec.name == "NV"
              else f"{qmmu.num_qubits} qubits, {meas[0]} the only measurable one")
    return ElectronMoves(qmmu, pid, execute, meas, budget)
