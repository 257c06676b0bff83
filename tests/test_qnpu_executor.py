"""The compiled executor computes what netqasm's reference executor computes, and fails
with errors that name the instruction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netqasm.backend.executor import Executor
from netqasm.lang.instr.flavour import VanillaFlavour
from netqasm.lang.parsing import parse_text_subroutine
from netqasm.sdk.shared_memory import SharedMemoryManager

from qnodeos_hw.qdrivers.ideal import IdealQDriver
from qnodeos_hw.qnpu.compiler import SubroutineCache
from qnodeos_hw.qnpu.errors import (ExecutionError, MalformedSubroutineError,
                                    UnsupportedSubroutineError)
from qnodeos_hw.qnpu.executor import StandaloneExecutor

HEADER = "# NETQASM 1.0\n# APPID 0\n"


def _sub(body: str):
    return parse_text_subroutine(HEADER + body, flavour=VanillaFlavour())


def _reference(sub, regs: list[str], arrays: dict[int, int]):
    """Run on netqasm's Executor; return registers and arrays it exposes."""
    SharedMemoryManager.reset_memories()
    ex = Executor(name="ref")
    ex.init_new_application(app_id=0, max_qubits=4)
    ex.consume_execute_subroutine(sub)
    from netqasm.lang.parsing import parse_register
    out = {r: ex._registers[0][parse_register(r).name][parse_register(r).index] for r in regs}
    arr = {a: ex._app_arrays[0][a, slice(0, n)] for a, n in arrays.items()}
    return out, arr


def _ours(sub, regs: list[str], arrays: dict[int, int]):
    ex = StandaloneExecutor(IdealQDriver("t", 4), 4)
    ex.execute(bytes(sub))
    return {r: ex.regs.get(r) for r in regs}, {a: ex.arrays[a][:n] for a, n in arrays.items()}


PROGRAMS = {
    "arith": ("""set R0 17
set R1 5
set R2 3
add R3 R0 R1
sub R4 R1 R0
mul R5 R0 R2
div R6 R0 R1
rem R7 R0 R1
addm R8 R0 R1 R2
subm R9 R1 R0 R2
""", ["R3", "R4", "R5", "R6", "R7", "R8", "R9"], {}),
    "branches": ("""set R0 0
set R1 6
set R2 0
set R3 1
set R5 0
LOOP:
bge R0 R1 END
blt R0 R3 SKIP
add R2 R2 R0
SKIP:
bez R0 ZERO
bnz R0 NZ
ZERO:
add R5 R5 R3
NZ:
bne R0 R1 NEXT
jmp END
NEXT:
add R0 R0 R3
beq R0 R0 LOOP
END:
""", ["R0", "R2", "R5"], {}),
    "arrays": ("""set R0 5
array R0 @3
set R1 0
set R2 1
set R4 5
FILL:
beq R1 R4 DONE
mul R3 R1 R1
store R3 @3[R1]
add R1 R1 R2
jmp FILL
DONE:
set R6 2
load R7 @3[R6]
undef @3[R6]
lea R8 @3
store R7 @3[0]
load R9 @3[4]
wait_single @3[1]
wait_all @3[0:2]
wait_any @3[1:3]
""", ["R7", "R8", "R9"], {3: 5}),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_classical_programs_match_reference(name):
    body, regs, arrays = PROGRAMS[name]
    sub = _sub(body)
    assert _ours(sub, regs, arrays) == _reference(sub, regs, arrays)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "sub", "mul", "addm", "subm"]),
                          st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
                min_size=1, max_size=25),
       st.lists(st.integers(-50, 50), min_size=4, max_size=4))
def test_random_arithmetic_matches_reference(ops, init):
    lines = [f"set R{i} {v}" for i, v in enumerate(init)] + ["set R9 7"]
    for op, a, b, c in ops:
        lines.append(f"{op} R{a} R{b} R{c} R9" if op.endswith("m") else f"{op} R{a} R{b} R{c}")
    sub = _sub("\n".join(lines) + "\n")
    regs = ["R0", "R1", "R2", "R3"]
    assert _ours(sub, regs, {}) == _reference(sub, regs, {})


def test_returns_and_measurement_through_the_driver():
    sub = _sub("""set Q0 0
qalloc Q0
init Q0
x Q0
meas Q0 M0
qfree Q0
set R0 3
array R0 @1
store M0 @1[1]
ret_reg M0
ret_arr @1
""")
    ex = StandaloneExecutor(IdealQDriver("t", 2), 2)
    out = ex.execute(bytes(sub))
    assert out == [("reg", "M0", 1), ("arr", 1, [None, 1, None])]
    assert ex.qmmu.used() == 0


def test_compiled_once_per_distinct_subroutine():
    cache = SubroutineCache(VanillaFlavour())
    a = parse_text_subroutine("# NETQASM 1.0\n# APPID 3\nset R0 1\n")
    b = parse_text_subroutine("# NETQASM 1.0\n# APPID 4\nset R0 1\n")
    ca, app_a = cache.get(bytes(a))
    cb, app_b = cache.get(bytes(b))
    assert ca is cb and (app_a, app_b) == (3, 4)
    assert (cache.hits, cache.misses) == (1, 1)


def test_subroutines_of_one_shape_share_compiled_code_but_keep_their_values():
    """The SDK gives each subroutine fresh array addresses: same shape, other bytes. They
    share one compile (shape hit) and still write their own arrays and values."""
    body = ("set R0 {n}\narray R0 @{a}\nset R1 {v}\nset R2 0\nstore R1 @{a}[R2]\n"
            "lea R3 @{a}\nret_arr @{a}\n")
    ex = StandaloneExecutor(IdealQDriver("t", 1), 1)
    for n, a, v in ((2, 4, 7), (3, 8, 11), (2, 12, 5)):
        ex.execute(bytes(_sub(body.format(n=n, a=a, v=v))))
        assert ex.arrays[a] == [v] + [None] * (n - 1)
        assert ex.regs.get("R3") == a
    cache = ex.cache
    assert (cache.hits, cache.misses, cache.shape_hits) == (0, 3, 2)
    assert set(ex.arrays) >= {4, 8, 12}


def test_a_known_subroutines_values_are_read_in_place_and_equal_a_full_decode():
    """A subroutine whose commands equal a decoded one's up to set immediates and array
    addresses is decoded from the first one's template; the result equals netqasm's full
    decode (instructions, shape key, values), and a changed command or address pattern
    falls back to the full decode."""
    from netqasm.lang.encoding import METADATA_BYTES
    body = ("set R0 {n}\narray R0 @{a}\nset R1 {v}\nset R2 0\nstore R1 @{a}[R2]\n"
            "array R0 @{b}\nlea R3 @{a}\nret_arr @{b}\n")
    cache = SubroutineCache(VanillaFlavour())
    first = bytes(_sub(body.format(n=2, a=4, b=5, v=7)))
    cache.get(first)
    for n, a, b, v in ((3, 8, 9, 11), (2, 1000, 70000, -5), (9, 12, 13, 2 ** 31 - 1)):
        raw = bytes(_sub(body.format(n=n, a=a, b=b, v=v)))[METADATA_BYTES:]
        known = cache._decode_known(raw)
        full = SubroutineCache(VanillaFlavour())._decode(
            bytes(_sub(body.format(n=n, a=a, b=b, v=v))))
        assert known is not None
        assert [str(i) for i in known[0]] == [str(i) for i in full[0]]
        assert known[1:] == full[1:] and known[3] == (a, b) and known[2][0] == n
    # two arrays at one address: another slot pattern -> not this template
    assert cache._decode_known(bytes(_sub(body.format(n=2, a=6, b=6, v=1)))[METADATA_BYTES:]) \
        is None
    # another register in a command without a value -> not this template
    other = body.replace("set R2 0", "set R2 0").replace("lea R3", "lea R4")
    assert cache._decode_known(bytes(_sub(other.format(n=2, a=4, b=5, v=7)))[METADATA_BYTES:]) \
        is None
    ex = StandaloneExecutor(IdealQDriver("t", 1), 1)  # and it runs with its own values
    for n, a, v in ((2, 4, 7), (3, 8, 11)):
        ex.execute(bytes(_sub(body.format(n=n, a=a, b=a + 1, v=v))))
        assert ex.arrays[a] == [v] + [None] * (n - 1) and ex.regs.get("R3") == a
    assert ex.cache.known_decodes == 1


def test_malformed_bytes_are_named():
    cache = SubroutineCache(VanillaFlavour())
    with pytest.raises(MalformedSubroutineError, match="7 bytes per instruction"):
        cache.get(b"\x00\x00\x01\x00\x04\x00")
    with pytest.raises(MalformedSubroutineError, match="cannot decode"):
        cache.get(b"\x00\x00\x00\x00" + bytes([250, 0, 0, 0, 0, 0, 0]))


def test_division_by_zero_names_the_instruction():
    sub = _sub("set R0 1\nset R1 0\nadd R2 R0 R0\ndiv R3 R0 R1\n")
    with pytest.raises(ExecutionError) as err:
        StandaloneExecutor(IdealQDriver("t", 1), 1).execute(bytes(sub))
    assert err.value.instr_index == 3 and err.value.mnemonic == "div"


def test_unallocated_qubit_is_a_named_error():
    sub = _sub("set Q0 1\nh Q0\n")
    with pytest.raises(ExecutionError, match="not allocated") as err:
        StandaloneExecutor(IdealQDriver("t", 2), 2).execute(bytes(sub))
    assert err.value.mnemonic == "h"


def test_branch_outside_program_is_unsupported():
    from qnodeos_hw.qnpu.compiler import compile_instructions
    sub = _sub("set R0 0\njmp 1\n")
    from netqasm.lang.operand import Immediate
    sub.instructions[1].line = Immediate(9)
    with pytest.raises(UnsupportedSubroutineError, match="jumps to line 9"):
        compile_instructions(sub.instructions)
