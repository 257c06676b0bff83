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
