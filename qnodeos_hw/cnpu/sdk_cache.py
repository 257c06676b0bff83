"""Compile a netqasm SDK protosubroutine once per *shape* on the CNPU.

netqasm's ``Builder`` turns each block of SDK calls into a ``ProtoSubroutine``, which the
connection assembles, transpiles (e.g. for the NV flavour) and serialises: about a
millisecond of Python per subroutine. A program's loop body gives the same commands every
time except for the array addresses the builder hands out afresh (``array R0 @4`` then
``@8`` ...), so the shape -- the commands with array addresses numbered by first use --
repeats. :class:`SdkShapeCache` keeps, per shape, the serialised instructions of the
first compilation and, for a later protosubroutine of that shape, re-serialises only the
instructions that name an array address, with that subroutine's own addresses.

Relocated are array-address operands and the array addresses an entanglement request
names (``create_epr(1,0) 5 6 4``: plain numbers in the protosubroutine, loaded into
registers by ``set`` instructions in the compiled subroutine); in the shape such an
operand is the number of its array. Anything else that differs (other immediates,
labels, templates) makes another shape; protosubroutines with templates are not cached
at all. A shape's first reuse with other addresses is checked against netqasm's own
compilation (one extra compilation per shape): a shape whose relocation does not give
netqasm's bytes is never cached, so a cached result is always byte-identical to what
netqasm would produce.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from netqasm.backend.messages import SubroutineMessage
from netqasm.lang.ir import BranchLabel, ProtoSubroutine
from netqasm.lang.instr.core import CreateEPRInstruction, RecvEPRInstruction, SetInstruction
from netqasm.lang.ir import GenericInstr
from netqasm.lang.operand import Address, ArrayEntry, ArraySlice, Template
from netqasm.lang.subroutine import Subroutine

from ..protocol.subroutine import SymbolicAddressError, array_address, value_offset, with_value


class _Uncacheable(Exception):
    """The protosubroutine has operands we do not relocate (templates, symbolic
    addresses)."""


def _addr_value(op: Any) -> int:
    a = op.address if isinstance(op, Address) else op.address.address
    if not isinstance(a, int):
        raise _Uncacheable
    return a


def shape_key(proto: ProtoSubroutine) -> tuple[tuple, tuple[int, ...]]:
    """(shape key, array addresses in order of first use) of ``proto``;
    :class:`_Uncacheable` if it cannot be relocated."""
    slots: dict[int, int] = {}
    for cmd in proto.commands:  # the arrays, numbered by first use as an address operand
        if isinstance(cmd, BranchLabel):
            continue
        for op in cmd.operands:
            t = type(op)
            if t is Address or t is ArrayEntry or t is ArraySlice:
                slots.setdefault(_addr_value(op), len(slots))
            elif t is Template:
                raise _Uncacheable

    key = []
    for cmd in proto.commands:
        if isinstance(cmd, BranchLabel):
            key.append(("label", cmd.name))
            continue
        ops = []
        is_epr = cmd.instruction in _EPR
        for op in cmd.operands:
            t = type(op)
            if t is Address:
                ops.append(("A", slots[_addr_value(op)]))
            elif t is ArrayEntry:
                ops.append(("E", slots[_addr_value(op)], op.index))
            elif t is ArraySlice:
                ops.append(("S", slots[_addr_value(op)], op.start, op.stop))
            elif is_epr and t is int and op in slots:
                ops.append(("I", slots[op]))  # an entanglement request's array
            else:
                ops.append((t, op))
        key.append((cmd.instruction, tuple(cmd.args), tuple(ops)))
    return tuple(key), tuple(slots)


_EPR = (GenericInstr.CREATE_EPR, GenericInstr.RECV_EPR)


def _epr_slots(key: tuple) -> list[int]:
    """The array numbers the key's entanglement requests name, in order."""
    return [op[1] for ins, _, ops in (k for k in key if k[0] != "label") if ins in _EPR
            for op in ops if op[0] == "I"]


@dataclass(frozen=True)
class _Shape:
    head: bytes                        # message type + subroutine metadata
    chunks: tuple[bytes, ...]          # one serialised instruction each
    #: (instruction index, instruction, array slot, byte offset of its value or None)
    patches: tuple[tuple[int, Any, int, int | None], ...]
    addrs: tuple[int, ...]             # the array addresses of the compilation it came from
    checked: bool = False              # a reuse with other addresses gave netqasm's bytes

    def bytes_for(self, addrs: tuple[int, ...]) -> bytes:
        chunks = list(self.chunks)
        for i, ins, s, off in self.patches:
            if off is None:
                chunks[i] = bytes(with_value(ins, addrs[s]).serialize())
            else:  # the value's 4 bytes written in place (what serialize() would write)
                c = chunks[i]
                chunks[i] = c[:off] + addrs[s].to_bytes(4, "little", signed=True) + c[off + 4:]
        return self.head + b"".join(chunks)


class SdkShapeCache:
    """Serialised ``SubroutineMessage`` bytes of protosubroutines, compiled once per shape.

    ``compile_fn(proto) -> Subroutine`` is the connection's own compilation (netqasm's
    ``Builder.subrt_compile_subroutine``); ``app_id`` goes into the metadata. ``hits`` /
    ``misses`` count lookups (a shape's checked first reuse counts as a miss);
    ``max_shapes`` bounds the memory."""

    def __init__(self, compile_fn: Callable[[ProtoSubroutine], Subroutine], app_id: int,
                 max_shapes: int = 256) -> None:
        self._compile = compile_fn
        self._app_id = app_id
        self._shapes: dict[tuple, _Shape | None] = {}
        self.max_shapes = max_shapes
        self.hits = 0
        self.misses = 0

    def message(self, proto: ProtoSubroutine) -> bytes:
        """The bytes netqasm would send for ``proto`` (a ``SubroutineMessage``)."""
        try:
            key, addrs = shape_key(proto)
            shape = self._shapes.get(key)
        except (_Uncacheable, TypeError):  # TypeError: an operand that does not hash
            return self._fresh(proto)[0]
        if shape is not None:
            if shape.checked or addrs == shape.addrs:
                self.hits += 1
                return shape.bytes_for(addrs)
            self.misses += 1  # first reuse with other addresses: check against netqasm
            raw = self._fresh(proto)[0]
            ok = shape.bytes_for(addrs) == raw
            self._shapes[key] = dataclasses.replace(shape, checked=True) if ok else None
            return raw
        self.misses += 1
        raw, subroutine = self._fresh(proto)
        if key not in self._shapes:
            if len(self._shapes) >= self.max_shapes:
                self._shapes.clear()
            self._shapes[key] = self._template(subroutine, addrs, _epr_slots(key))
        return raw

    def _fresh(self, proto: ProtoSubroutine) -> tuple[bytes, Subroutine]:
        subroutine = self._compile(proto)
        subroutine.instantiate(self._app_id)
        return bytes(SubroutineMessage(subroutine=subroutine)), subroutine

    @staticmethod
    def _template(subroutine: Subroutine, addrs: tuple[int, ...],
                  epr_slots: list[int]) -> _Shape | None:
        """The shape's template, or None (not cached) when the compiled subroutine names
        an array address the protosubroutine did not (the compiler made it up), or the
        ``set`` instructions that load its entanglement requests' arrays are not exactly
        the protosubroutine's (``epr_slots``: array numbers, in order)."""
        slot_of = {a: s for s, a in enumerate(addrs)}
        cstructs = subroutine.cstructs
        head = bytes(SubroutineMessage(subroutine=b"").__bytes__()) + bytes(cstructs[0])
        chunks, patches, epr = [], [], []
        last_set: dict[Any, int] = {}
        instructions = subroutine.instructions
        offsets: dict[type, int | None] = {}

        def offset(ins: Any) -> int | None:
            t = type(ins)
            if t not in offsets:
                offsets[t] = value_offset(ins)
            return offsets[t]
        for i, (ins, cs) in enumerate(zip(instructions, cstructs[1:])):
            chunks.append(bytes(cs))
            if isinstance(ins, SetInstruction):
                last_set[ins.reg] = i
                continue
            if isinstance(ins, (CreateEPRInstruction, RecvEPRInstruction)):
                for reg in ins.operands[2:]:  # after remote node id and socket id
                    j = last_set.get(reg)
                    s = None if j is None else slot_of.get(instructions[j].imm.value)
                    if s is None:
                        return None
                    patches.append((j, instructions[j], s, offset(instructions[j])))
                    epr.append(s)
                continue
            try:
                a = array_address(ins)
            except SymbolicAddressError:  # a symbolic address
                return None
            if a is not None:
                if a not in slot_of:
                    return None
                patches.append((i, ins, slot_of[a], offset(ins)))
        if epr != epr_slots:
            return None
        return _Shape(head, tuple(chunks), tuple(patches), addrs)
