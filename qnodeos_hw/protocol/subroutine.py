"""Array addresses of binary netqasm instructions.

The SDK gives every subroutine fresh array addresses; both ends of the wire look at
them: the CNPU's shape cache re-encodes a known subroutine with only its addresses
changed (:func:`relocated`), the QNPU's compiler keys its cache on the instructions with
the addresses taken out (:func:`array_address`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from netqasm.lang.operand import Address, ArrayEntry, ArraySlice


class SymbolicAddressError(ValueError):
    """An instruction names its array by a symbol, not by a number (binary subroutines
    carry numbers only)."""


def _number(addr: Any) -> int:
    a = addr.address
    if not isinstance(a, int):
        raise SymbolicAddressError(f"symbolic array address {a!r} in a binary subroutine")
    return a


def array_address(ins: Any) -> int | None:
    """The array address an instruction names (``address``, ``entry`` or ``slice``
    operand), None if it names none; :class:`SymbolicAddressError` for a symbolic one."""
    for f in ("address", "entry", "slice"):
        op = getattr(ins, f, None)
        if op is not None:
            return _number(op if f == "address" else op.address)
    return None


def relocated(ins: Any, address: int) -> Any:
    """``ins`` with the array address of its address operand replaced by ``address``."""
    new = Address(address)
    if getattr(ins, "address", None) is not None:
        return dataclasses.replace(ins, address=new)
    if getattr(ins, "entry", None) is not None:
        return dataclasses.replace(ins, entry=ArrayEntry(new, ins.entry.index))
    return dataclasses.replace(ins, slice=ArraySlice(new, ins.slice.start, ins.slice.stop))


def with_value(ins: Any, value: int) -> Any:
    """``ins`` with its value replaced: a ``set`` instruction's immediate, else the array
    address of its address operand."""
    from netqasm.lang.instr.core import SetInstruction
    from netqasm.lang.operand import Immediate
    if isinstance(ins, SetInstruction):
        return dataclasses.replace(ins, imm=Immediate(value=value))
    return relocated(ins, value)


def value_offset(ins: Any) -> int | None:
    """Byte offset of the 4-byte little-endian value (:func:`with_value`) in the serialised
    command of ``ins``' class -- found by serialising two variants, so that a value can be
    read or written in place --, or None when it is not 4 contiguous bytes there."""
    try:
        a = bytes(with_value(ins, 0x01020304).serialize())
        b = bytes(with_value(ins, 0x0A0B0C0D).serialize())
    except (TypeError, ValueError, AttributeError):
        return None
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if (len(diff) == 4 and diff == list(range(diff[0], diff[0] + 4))
            and a[diff[0]:diff[0] + 4] == (0x01020304).to_bytes(4, "little")):
        return diff[0]
    return None
