"""QMMU: per-process virtual qubit addresses mapped onto the device's physical qubits,
with ownership moved from the network process to the user process that asked."""

from __future__ import annotations

from .errors import QubitAllocationError

#: pid of the network (kernel) process
NETWORK_PID = 0


def unbacked_vaddr(entry: int) -> int:
    """The virtual address of an unbacked page-table entry (entries ``~vaddr`` < 0)."""
    return ~entry


class QMMU:
    """Physical qubits ``0..num_qubits-1``; ``comm_qubits`` may take part in entanglement.

    Each user process has a page table (list indexed by virtual address, ``None``
    when unmapped) of ``max_qubits`` entries. The network process owns the qubits it
    reserved for entanglement until :meth:`transfer`.
    """

    def __init__(self, num_qubits: int, comm_qubits: tuple[int, ...] | None = None,
                 pinned: tuple[tuple[int, int], ...] = ()) -> None:
        self.num_qubits = num_qubits
        self.comm_qubits = tuple(range(num_qubits)) if comm_qubits is None else tuple(comm_qubits)
        #: virtual address -> the physical qubit it must map to (NV: virtual 0 = electron)
        self.pinned: dict[int, int] = {int(v): int(p) for v, p in pinned}
        self._pinned_phys = frozenset(self.pinned.values())
        self._owner: list[int | None] = [None] * num_qubits
        self._tables: dict[int, list[int | None]] = {}

    @classmethod
    def for_spec(cls, spec, comm_qubits: tuple[int, ...] | None = None) -> "QMMU":
        """The QMMU of a device: its qubits, communication qubits (``comm_qubits``
        overrides the spec's) and pinned virtual addresses, all from the QDevice spec."""
        comm = comm_qubits if comm_qubits is not None else getattr(spec, "comm_qubits", None)
        return cls(spec.num_qubits, comm, tuple(getattr(spec, "pinned", ())))

    # -- processes ----------------------------------------------------------------------
    def add_process(self, pid: int, max_qubits: int) -> list[int | None]:
        table: list[int | None] = [None] * max_qubits
        self._tables[pid] = table
        return table

    def table(self, pid: int) -> list[int | None]:
        return self._tables[pid]

    def remove_process(self, pid: int) -> list[int]:
        """Release every qubit of ``pid``; returns the freed physical addresses."""
        freed = [p for p, o in enumerate(self._owner) if o == pid]
        for p in freed:
            self._owner[p] = None
        self._tables.pop(pid, None)
        return freed

    # -- allocation ---------------------------------------------------------------------
    def free_count(self, comm: bool = False) -> int:
        pool = self.comm_qubits if comm else range(self.num_qubits)
        return sum(1 for p in pool if self._owner[p] is None)

    def _take(self, comm: bool) -> int:
        pool = self.comm_qubits if comm else range(self.num_qubits)
        for p in pool:
            if self._owner[p] is None:
                return p
        raise QubitAllocationError(
            f"no free {'communication ' if comm else ''}qubit: all {self.num_qubits} physical "
            f"qubits are in use")

    def _check_vaddr(self, pid: int, vaddr: int) -> list[int | None]:
        table = self._tables.get(pid)
        if table is None:
            raise QubitAllocationError(f"process {pid} has no qubit page table")
        if vaddr is None or not 0 <= vaddr < len(table):
            raise QubitAllocationError(
                f"virtual qubit {vaddr} is outside process {pid}'s range 0..{len(table) - 1}")
        if table[vaddr] is not None:
            raise QubitAllocationError(f"virtual qubit {vaddr} of process {pid} is already allocated")
        return table

    def allocate(self, pid: int, vaddr: int) -> int:
        """Map ``vaddr`` of ``pid`` to a free physical qubit (prefers non-communication ones
        when the device has both). A pinned ``vaddr`` (NV: 0) gets its own physical qubit
        or :class:`QubitAllocationError` naming who holds it; other addresses never take a
        pinned physical qubit."""
        table = self._check_vaddr(pid, vaddr)
        want = self.pinned.get(vaddr)
        if want is not None:
            holder = self._owner[want]
            if holder is not None:
                who = "the network process" if holder == NETWORK_PID else f"process {holder}"
                raise QubitAllocationError(
                    f"process {pid}: virtual qubit {vaddr} must be physical qubit {want} "
                    f"(pinned: the NV compiler's electron), which {who} holds")
            self._owner[want] = pid
            table[vaddr] = want
            return want
        pool = [p for p in range(self.num_qubits) if p not in self.comm_qubits] + list(self.comm_qubits)
        pool = [p for p in pool if p not in self._pinned_phys]
        for p in pool:
            if self._owner[p] is None:
                self._owner[p] = pid
                table[vaddr] = p
                return p
        raise QubitAllocationError(
            f"process {pid}: cannot allocate virtual qubit {vaddr}: all {self.num_qubits} "
            f"physical qubits are in use")

    def free(self, pid: int, vaddr: int) -> int | None:
        """Unmap ``vaddr``; returns the physical qubit released (None: it was unbacked)."""
        table = self._tables.get(pid)
        if table is None or vaddr is None or not 0 <= vaddr < len(table) or table[vaddr] is None:
            raise QubitAllocationError(f"process {pid}: virtual qubit {vaddr} is not allocated")
        p = table[vaddr]
        table[vaddr] = None
        if p < 0:
            return None
        self._owner[p] = None
        return p

    # -- unbacked qubits and moves (see :mod:`.electron_moves`) ---------------------------
    def allocate_unbacked(self, pid: int, vaddr: int) -> None:
        """Map ``vaddr`` without a physical qubit (in |0>; entry ``~vaddr``): when every
        physical qubit is in use and the next instruction may be a move into it."""
        table = self._check_vaddr(pid, vaddr)
        if vaddr in self.pinned:
            raise QubitAllocationError(
                f"process {pid}: virtual qubit {vaddr} must be physical qubit "
                f"{self.pinned[vaddr]} (pinned), which is in use")
        table[vaddr] = ~vaddr

    def back(self, pid: int, vaddr: int) -> int:
        """Give the unbacked ``vaddr`` a free (non-pinned) physical qubit."""
        table = self._tables[pid]
        for p in range(self.num_qubits):
            if self._owner[p] is None and p not in self._pinned_phys:
                self._owner[p] = pid
                table[vaddr] = p
                return p
        raise QubitAllocationError(f"process {pid}: no free physical qubit for virtual "
                                   f"qubit {vaddr}")

    def swap(self, pid: int, a: int, b: int) -> None:
        """Exchange the physical qubits of ``pid``'s virtual ``a`` and ``b`` (either may be
        unbacked: a rename). A pinned address keeps no physical qubit it is not pinned to
        only while the program does not use it as pinned (the electron moves take care)."""
        table = self._tables[pid]
        pa, pb = table[a], table[b]
        table[a] = pb if pb is not None and pb >= 0 else ~a
        table[b] = pa if pa is not None and pa >= 0 else ~b

    def move(self, pid: int, vaddr: int, phys: int) -> None:
        """``pid``'s ``vaddr`` now lives on the free ``phys`` (its old qubit is released)."""
        table = self._tables[pid]
        old = table[vaddr]
        if self._owner[phys] is not None:
            raise QubitAllocationError(f"physical qubit {phys} is not free")
        self._owner[phys] = pid
        table[vaddr] = phys
        if old is not None and old >= 0:
            self._owner[old] = None

    def reserve_comm(self) -> int:
        """A free communication qubit for the network process."""
        p = self._take(comm=True)
        self._owner[p] = NETWORK_PID
        return p

    def release(self, phys: int) -> None:
        """The network process gives back a reserved qubit."""
        self._owner[phys] = None

    def transfer(self, phys: int, pid: int, vaddr: int) -> None:
        """Move ``phys`` from the network process to ``pid`` at virtual address ``vaddr``."""
        if self._owner[phys] != NETWORK_PID:
            raise QubitAllocationError(f"physical qubit {phys} is not owned by the network process")
        table = self._check_vaddr(pid, vaddr)
        want = self.pinned.get(vaddr)
        if (want is not None and want != phys) or (want is None and phys in self._pinned_phys):
            raise QubitAllocationError(
                f"process {pid}: entangled qubit {phys} cannot take virtual address {vaddr} "
                f"(pinned addresses: {self.pinned})")
        self._owner[phys] = pid
        table[vaddr] = phys

    def owner(self, phys: int) -> int | None:
        return self._owner[phys]

    def network_held(self) -> int:
        """How many qubits the network process holds (reserved for entanglement)."""
        return sum(1 for o in self._owner if o == NETWORK_PID)

    def mappable(self, pid: int, vaddr: int) -> bool:
        """Whether ``vaddr`` is a valid, unmapped address of ``pid``."""
        table = self._tables.get(pid)
        return table is not None and vaddr is not None and 0 <= vaddr < len(table) \
            and table[vaddr] is None

    def used(self) -> int:
        return sum(1 for o in self._owner if o is not None)
