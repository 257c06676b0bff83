"""Compile a netqasm SDK protosubroutine once per *shape* on the CNPU.

netqasm's ``Builder`` turns each block of SDK calls into a ``ProtoSubroutine``, which the
connection assembles, transpiles (e.g. for the NV flavour) and serialises: about a
millisecond of Python per subroutine. A program's loop body gives the same commands every
time except for the array addresses the builder hands out afresh (``array R0 @4`` then
``@8`` ...), so the shape -- the commands with array addresses numbered by first use --
repeats. :class:`SdkShapeCache` keeps, per shape, the serialised instructions of the
first compilation and, for a later protosubroutine of that shape, re-serialises only the
instructions that name an array address, with that subroutine's own addresses.

Only array-address operands are relocated. Anything else that differs (immediates,
including the ``set`` values that carry entanglement-request array addresses, labels,
templates) makes another shape, so a cached result is byte-identical to what netqasm
would produce; protosubroutines with templates are not cached at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from netqasm.backend.messages import SubroutineMessage
from netqasm.lang.ir import BranchLabel, ProtoSubroutine
from netqasm.lang.operand import Address, ArrayEntry, ArraySlice, Template
from netqasm.lang.subroutine import Subroutine

from ..protocol.subroutine import SymbolicAddressError, array_address, relocated


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

    def slot(a: int) -> int:
        s = slots.get(a)
        if s is None:
            s = slots[a] = len(slots)
        return s

    key = []
    for cmd in proto.commands:
        if isinstance(cmd, BranchLabel):
            key.append(("label", cmd.name))
            continue
        ops = []
        for op in cmd.operands:
            t = type(op)
            if t is Address:
                ops.append(("A", slot(_addr_value(op))))
            elif t is ArrayEntry:
                ops.append(("E", slot(_addr_value(op)), op.index))
            elif t is ArraySlice:
                ops.append(("S", slot(_addr_value(op)), op.start, op.stop))
            elif t is Template:
                raise _Uncacheable
            else:
                ops.append((t, op))
        key.append((cmd.instruction, tuple(cmd.args), tuple(ops)))
    return tuple(key), tuple(slots)


@dataclass(frozen=True)
class _Shape:
    head: bytes                        # message type + subroutine metadata
    chunks: tuple[bytes, ...]          # one serialised instruction each
    patches: tuple[tuple[int, Any, int], ...]  # (instruction index, instruction, slot)


class SdkShapeCache:
    """Serialised ``SubroutineMessage`` bytes of protosubroutines, compiled once per shape.

    ``compile_fn(proto) -> Subroutine`` is the connection's own compilation (netqasm's
    ``Builder.subrt_compile_subroutine``); ``app_id`` goes into the metadata. ``hits`` /
    ``misses`` count lookups; ``max_shapes`` bounds the memory."""

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
            self.hits += 1
            chunks = list(shape.chunks)
            for i, ins, s in shape.patches:
                chunks[i] = bytes(relocated(ins, addrs[s]).serialize())
            return shape.head + b"".join(chunks)
        self.misses += 1
        raw, subroutine = self._fresh(proto)
        if key not in self._shapes:
            if len(self._shapes) >= self.max_shapes:
                self._shapes.clear()
            self._shapes[key] = self._template(subroutine, addrs)
        return raw

    def _fresh(self, proto: ProtoSubroutine) -> tuple[bytes, Subroutine]:
        subroutine = self._compile(proto)
        subroutine.instantiate(self._app_id)
        return bytes(SubroutineMessage(subroutine=subroutine)), subroutine

    @staticmethod
    def _template(subroutine: Subroutine, addrs: tuple[int, ...]) -> _Shape | None:
        """The shape's template, or None (not cached) when the compiled subroutine names
        an array address the protosubroutine did not (the compiler made it up)."""
        slot_of = {a: s for s, a in enumerate(addrs)}
        cstructs = subroutine.cstructs
        head = bytes(SubroutineMessage(subroutine=b"").__bytes__()) + bytes(cstructs[0])
        chunks, patches = [], []
        for i, (ins, cs) in enumerate(zip(subroutine.instructions, cstructs[1:])):
            chunks.append(bytes(cs))
            try:
                a = array_address(ins)
            except SymbolicAddressError:  # a symbolic address
                return None
            if a is not None:
                if a not in slot_of:
                    return None
                patches.append((i, ins, slot_of[a]))
        return _Shape(head, tuple(chunks), tuple(patches))
