"""A process' array memory: long programs hold many small arrays (netqasm's SDK gives
each subroutine's arrays new addresses), re-declaring an address replaces its array,
and the entry bound counts what is held, not what was ever declared."""

from __future__ import annotations

import pytest

from qnodeos_hw.qnpu.compiler import MAX_ARRAY_ENTRIES, ArrayMemory, _alen


def _declare(mem: ArrayMemory, addr: int, n: int) -> None:
    mem[addr] = [None] * _alen(n, mem, addr)


def test_thousands_of_small_arrays_fit_like_a_long_dqc_program():
    mem = ArrayMemory()
    for addr in range(6_000):  # 1,200 DQC circuits x 5 arrays
        _declare(mem, addr, 10)
    assert len(mem) == 6_000 and mem.entries == 60_000


def test_redeclaring_an_address_replaces_its_entries():
    mem = ArrayMemory()
    big = MAX_ARRAY_ENTRIES // 2
    for _ in range(10):  # ten times half the bound at one address: never over it
        _declare(mem, 0, big)
    assert mem.entries == big
    _declare(mem, 1, big)
    with pytest.raises(ValueError, match="entries"):
        _declare(mem, 2, 1)
    assert 2 not in mem and mem.entries == 2 * big  # a refused array takes nothing
    _declare(mem, 1, 5)  # smaller again: room is back
    _declare(mem, 2, 1)
    assert mem.entries == big + 6


def test_a_plain_dict_is_bounded_the_same_way():
    arrs: dict = {0: [None] * (MAX_ARRAY_ENTRIES - 1)}
    assert _alen(1, arrs, 1) == 1
    with pytest.raises(ValueError, match="entries"):
        _alen(2, arrs, 1)
    assert _alen(MAX_ARRAY_ENTRIES, arrs, 0) == MAX_ARRAY_ENTRIES  # replaces address 0
