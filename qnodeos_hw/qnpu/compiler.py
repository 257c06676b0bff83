"""Compile a NetQASM subroutine once into Python code, and cache it by its bytes.

A subroutine is split into basic blocks; each becomes a block of generated Python
source in one generator function: registers are local variables (loaded from the
process at entry, stored back at the end), arrays are local list references,
branches set the next block and quantum instructions call the QDriver with the
pre-bound netqasm instruction object. ``wait_*`` instructions ``yield`` while their
array entries are undefined, which suspends the process (state WAITING) without
losing its locals.

The generated function takes one argument, the process' :class:`RunContext`-like
object, with attributes ``regs`` (dict name -> int), ``arrays`` (dict address ->
list), ``drv(instr, qubits)``, ``ph(vaddr) -> physical``, ``qalloc(v)``,
``qfree(v)``, ``create_epr(remote, socket, q_addr, arg_addr, res_addr)``,
``recv_epr(remote, socket, q_addr, res_addr)``, ``ret_reg(register, value)``,
``ret_arr(address, values)``, ``all_phys()``.

Relocatable code: the netqasm SDK gives every subroutine fresh array addresses (and
the ``set`` immediates that carry them), so byte-identical subroutines are rare while
identical *shapes* are the rule (a program's loop body). The generated source
therefore names ``set`` immediates ``K<j>`` and array addresses ``AD<slot>`` (slots in
order of first use) and receives their values when the function is instantiated; the
compiled code is cached per shape (the instructions without those values), so a new
subroutine of a known shape costs a decode (cached per 7-byte command), not a source
generation and ``compile()`` (which holds the interpreter lock for milliseconds and
would stall every other thread of the node).
"""

from __future__ import annotations

import dataclasses
import functools
import linecache
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from netqasm.lang.instr import core
from netqasm.lang.instr.flavour import Flavour
from netqasm.lang.operand import Address, ArrayEntry, ArraySlice, Register
from netqasm.lang.encoding import COMMAND_BYTES, METADATA_BYTES
from netqasm.lang.parsing.binary import Deserializer

from ..protocol.subroutine import SymbolicAddressError, array_address, relocated, value_offset
from .errors import MalformedSubroutineError, UnsupportedSubroutineError

#: marker yielded by a subroutine that waits for array entries (entanglement results)
WAIT = "wait"

_BINARY_OPS = {"add": "+", "sub": "-", "mul": "*"}
_BRANCH_BIN = {"beq": "==", "bne": "!=", "blt": "<", "bge": ">="}
_BRANCH_UN = {"bez": "==", "bnz": "!="}
_SINGLE_Q = {"init", "x", "y", "z", "h", "s", "k", "t", "rot_x", "rot_y", "rot_z"}
_TWO_Q = {"cnot", "cphase", "mov", "swp", "crot_x", "crot_y"}
_MEAS = {"meas", "meas_basis", "meas_basis_yzy", "meas_basis_zxz"}
_ALL_Q = {"init_all", "rot_x_all", "rot_y_all", "rot_z_all", "bichromatic"}


@dataclass
class CompiledSubroutine:
    """A compiled subroutine: ``make()`` returns a fresh generator given a context."""

    instructions: list
    source: str
    run: Callable[[Any], Any]
    line_map: dict[int, int] = field(repr=False)  # generated source line -> instruction index
    filename: str = ""
    #: the values bound to the source's ``K<j>`` (set immediates) and ``AD<slot>`` names
    kvals: tuple = ()
    addresses: tuple = ()
    code: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.instructions)

    @functools.cached_property
    def measures(self) -> bool:
        """Whether the subroutine measures a qubit (draws an outcome)."""
        return any(ins.mnemonic in _MEAS for ins in self.instructions)

    def instr_at_line(self, lineno: int) -> int | None:
        return self.line_map.get(lineno)


def _reg(r: Any) -> str:
    if not isinstance(r, Register):
        raise UnsupportedSubroutineError(f"expected a register operand, got {r!r}")
    return f"{r.name.name}{r.index}"


def _idx(i: Any) -> str:
    return _reg(i) if isinstance(i, Register) else str(int(i))


def _addr(addr: Any) -> int:
    a = addr.address
    if not isinstance(a, int):
        raise UnsupportedSubroutineError(f"symbolic array address {a!r} in a binary subroutine")
    return a


class _Gen:
    """Source generator for one subroutine."""

    def __init__(self, instrs: list) -> None:
        self.instrs = instrs
        self.lines: list[str] = []
        self.line_instr: list[int | None] = []
        self.regs_read: set[str] = set()
        self.regs_written: set[str] = set()
        self.arrays: set[str] = set()
        self.consts: dict[str, int] = {}
        #: values of the ``K<j>`` names (``set`` immediates), in order
        self.kvals: list[int] = []
        #: array address -> slot (``A<slot>`` local, ``AD<slot>`` address), first use first
        self.slots: dict[int, int] = {}

    def emit(self, depth: int, text: str, idx: int | None = None) -> None:
        self.lines.append("    " * depth + text)
        self.line_instr.append(idx)

    def r(self, reg: Any) -> str:
        name = _reg(reg)
        self.regs_read.add(name)
        return name

    def w(self, reg: Any) -> str:
        name = _reg(reg)
        self.regs_written.add(name)
        return name

    def slot(self, addr: Any) -> int:
        a = _addr(addr)
        s = self.slots.get(a)
        if s is None:
            s = self.slots[a] = len(self.slots)
        return s

    def a(self, addr: Any) -> str:
        """Local name of the array at ``addr``."""
        name = f"A{self.slot(addr)}"
        self.arrays.add(name)
        return name

    def ad(self, addr: Any) -> str:
        """Name of the address value of the array at ``addr``."""
        return f"AD{self.slot(addr)}"

    def k(self, value: int) -> str:
        """Name of an integer immediate (bound at instantiation)."""
        self.kvals.append(int(value))
        return f"K{len(self.kvals) - 1}"

    def entry(self, e: ArrayEntry) -> str:
        idx = e.index
        if isinstance(idx, Register):
            self.regs_read.add(_reg(idx))
        return f"{self.a(e.address)}[{_idx(idx)}]"

    def slice_(self, s: ArraySlice) -> str:
        for x in (s.start, s.stop):
            if isinstance(x, Register):
                self.regs_read.add(_reg(x))
        return f"{self.a(s.address)}[{_idx(s.start)}:{_idx(s.stop)}]"

    def instr_const(self, i: int) -> str:
        name = f"I{i}"
        self.consts[name] = i
        return name


def _leaders(instrs: list) -> list[int]:
    n = len(instrs)
    lead = {0}
    for i, ins in enumerate(instrs):
        if isinstance(ins, (core.JmpInstruction, core.BranchUnaryInstruction,
                            core.BranchBinaryInstruction)):
            t = ins.line.value
            if not 0 <= t <= n:
                raise UnsupportedSubroutineError(
                    f"instruction {i} ({ins.mnemonic}) jumps to line {t}, outside 0..{n}")
            lead.add(t)
            lead.add(i + 1)
    return sorted(x for x in lead if x < n)


def _translate(g: _Gen, i: int, ins: Any, d: int, block_start: int, next_block: int) -> bool:
    """Emit one instruction at depth d. Returns True when it ends the block (a branch)."""
    m = ins.mnemonic
    e = lambda text: g.emit(d, text, i)  # noqa: E731
    if m == "set":
        e(f"{g.w(ins.reg)} = {g.k(ins.imm.value)}")
    elif m in _BINARY_OPS:
        e(f"{g.w(ins.regout)} = {g.r(ins.regin0)} {_BINARY_OPS[m]} {g.r(ins.regin1)}")
    elif m == "div":
        e(f"{g.w(ins.regout)} = _div({g.r(ins.regin0)}, {g.r(ins.regin1)})")
    elif m == "rem":
        e(f"{g.w(ins.regout)} = _rem({g.r(ins.regin0)}, {g.r(ins.regin1)})")
    elif m in ("addm", "subm"):
        op = "+" if m == "addm" else "-"
        e(f"{g.w(ins.regout)} = ({g.r(ins.regin0)} {op} {g.r(ins.regin1)}) % _mod({g.r(ins.regmod)})")
    elif m == "array":
        a = g.a(ins.address)
        ad = g.ad(ins.address)
        e(f"{a} = _arrs[{ad}] = [None] * _alen({g.r(ins.size)}, _arrs, {ad})")
    elif m == "store":
        e(f"{g.entry(ins.entry)} = {g.r(ins.reg)}")
    elif m == "load":
        e(f"{g.w(ins.reg)} = {g.entry(ins.entry)}")
    elif m == "undef":
        e(f"{g.entry(ins.entry)} = None")
    elif m == "lea":
        e(f"{g.w(ins.reg)} = {g.ad(ins.address)}")
    elif m == "wait_all":
        e(f"while None in {g.slice_(ins.slice)}: yield _WAIT")
    elif m == "wait_any":
        s = g.slice_(ins.slice)
        e(f"while {s} and all(_v is None for _v in {s}): yield _WAIT")
    elif m == "wait_single":
        e(f"while {g.entry(ins.entry)} is None: yield _WAIT")
    elif m == "ret_reg":
        e(f"_c.ret_reg({ins.reg.name.name!r}, {ins.reg.index}, {g.r(ins.reg)})")
    elif m == "ret_arr":
        a = g.a(ins.address)
        e(f"_c.ret_arr({g.ad(ins.address)}, {a})")
    elif m == "qalloc":
        e(f"while not _c.qalloc({g.r(ins.reg)}): yield _WAIT")
    elif m == "qfree":
        e(f"_c.qfree({g.r(ins.reg)})")
    elif m in _MEAS:
        q, c = (ins.reg0, ins.reg1)
        e(f"{g.w(c)} = _drv({g.instr_const(i)}, (_ph({g.r(q)}),))")
    elif m in _SINGLE_Q:
        e(f"_drv({g.instr_const(i)}, (_ph({g.r(ins.reg)}),))")
    elif m in _TWO_Q:
        e(f"_drv({g.instr_const(i)}, (_ph({g.r(ins.reg0)}), _ph({g.r(ins.reg1)})))")
    elif m in _ALL_Q:
        e(f"_drv({g.instr_const(i)}, _c.all_phys())")
    elif m == "create_epr":
        args = ", ".join(g.r(x) for x in (ins.reg0, ins.reg1, ins.reg2, ins.reg3, ins.reg4))
        e(f"_c.create_epr({args})")
    elif m == "recv_epr":
        args = ", ".join(g.r(x) for x in (ins.reg0, ins.reg1, ins.reg2, ins.reg3))
        e(f"_c.recv_epr({args})")
    elif m == "breakpoint":
        e("pass")
    elif m == "jmp":
        t = ins.line.value
        e(f"_b = {t}")
        if t <= block_start:
            e("continue")
        return True
    elif m in _BRANCH_BIN or m in _BRANCH_UN:
        t = ins.line.value
        if m in _BRANCH_BIN:
            cond = f"{g.r(ins.reg0)} {_BRANCH_BIN[m]} {g.r(ins.reg1)}"
        else:
            cond = f"{g.r(ins.reg)} {_BRANCH_UN[m]} 0"
        e(f"if {cond}:")
        g.emit(d + 1, f"_b = {t}", i)
        if t <= block_start:
            g.emit(d + 1, "continue", i)
        g.emit(d, "else:", i)
        g.emit(d + 1, f"_b = {next_block}", i)
        return True
    else:
        raise UnsupportedSubroutineError(
            f"instruction {i} ('{m}') is not supported by the QNPU executor")
    return False


def compile_instructions(instrs: list, name: str = "<subroutine>") -> CompiledSubroutine:
    """Compile decoded netqasm instructions to a generator function."""
    n = len(instrs)
    g = _Gen(instrs)
    leaders = _leaders(instrs) if n else []
    body = _Gen(instrs)  # collects the blocks' code (inside 'while True')
    for bi, start in enumerate(leaders):
        end = leaders[bi + 1] if bi + 1 < len(leaders) else n
        body.emit(3, f"if _b == {start}:")
        ended = False
        for i in range(start, end):
            ended = _translate(body, i, instrs[i], 4, start, end)
        if not ended:
            body.emit(4, f"_b = {end}")
    # prologue / epilogue
    regs = sorted(body.regs_read | body.regs_written)
    g.emit(0, "def _factory(_I, _K, _AD, _div, _rem, _mod, _WAIT, _alen):")
    for c in sorted(body.consts, key=lambda s: int(s[1:])):
        g.emit(1, f"{c} = _I[{body.consts[c]}]")
    if body.kvals:
        g.emit(1, ", ".join(f"K{j}" for j in range(len(body.kvals))) + ", = _K")
    if body.slots:
        g.emit(1, ", ".join(f"AD{j}" for j in range(len(body.slots))) + ", = _AD")
    g.emit(1, "def _run(_c):")
    g.emit(2, "_drv = _c.drv; _ph = _c.ph; _regs = _c.regs; _arrs = _c.arrays")
    for r in regs:
        g.emit(2, f"{r} = _regs.get({r!r})")
    for a in sorted(body.arrays, key=lambda s: int(s[1:])):
        g.emit(2, f"{a} = _arrs.get(AD{a[1:]})")
    g.emit(2, "_b = 0")
    g.emit(2, "while True:")
    g.lines.extend(body.lines)
    g.line_instr.extend(body.line_instr)
    g.emit(3, "break")
    for r in sorted(body.regs_written):
        g.emit(2, f"_regs[{r!r}] = {r}")
    g.emit(2, "return")
    g.emit(2, "yield")
    g.emit(1, "return _run")
    source = "\n".join(g.lines) + "\n"
    filename = f"<netqasm-subroutine {name}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    line_map = {ln + 1: idx for ln, idx in enumerate(g.line_instr) if idx is not None}
    addrs = tuple(a for a, _ in sorted(body.slots.items(), key=lambda kv: kv[1]))
    shape = CompiledSubroutine(instrs, source, None, line_map, filename, code=code)
    return instantiate(shape, instrs, tuple(body.kvals), addrs)


def instantiate(shape: CompiledSubroutine, instrs: list, kvals: tuple,
                addresses: tuple) -> CompiledSubroutine:
    """A subroutine of ``shape``'s shape with its own instructions and values (no code
    generation, no ``compile()``)."""
    ns: dict[str, Any] = {}
    exec(shape.code, ns)  # noqa: S102 - our own generated code
    run = ns["_factory"](instrs, kvals, addresses, _div, _rem, _mod, WAIT, _alen)
    return CompiledSubroutine(instrs, shape.source, run, shape.line_map, shape.filename,
                              kvals, addresses, shape.code)


def _shape_token(ins: Any) -> tuple[Any, str | None, Any]:
    """(token, kind, value) of one instruction for the shape key: ``set`` immediates
    (kind 'K') and array addresses (kind 'A') are left out of the token."""
    if isinstance(ins, core.SetInstruction):
        return ("set", str(ins.reg)), "K", int(ins.imm.value)
    try:
        a = array_address(ins)
    except SymbolicAddressError:  # symbolic: the generator names it
        a = None
    if a is not None:
        return ("addr", str(relocated(ins, 0))), "A", a
    return ("ins", str(ins)), None, None


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a // b


def _rem(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("remainder by zero")
    return a % b


#: arrays of one process: at most this many, of this many entries in all (a program
#: must not take its node's memory; netqasm's largest arrays hold 10 result fields per
#: EPR pair, and its SDK gives every subroutine's arrays new addresses, so a long
#: program -- 1,200 DQC circuits in one connection -- holds thousands of small arrays)
MAX_ARRAYS = 1 << 16
MAX_ARRAY_ENTRIES = 1 << 21


class ArrayMemory(dict):
    """A process' arrays (address -> list), with the running count of their entries."""

    entries = 0


def _alen(n: int, arrays: dict, addr: int | None = None) -> int:
    """``n``, the length of a new array at ``addr``, if the process may have it."""
    if n is None or not 0 <= n <= MAX_ARRAY_ENTRIES:
        raise ValueError(f"array length must be 0..{MAX_ARRAY_ENTRIES}, got {n}")
    old = arrays.get(addr)
    if old is None and len(arrays) >= MAX_ARRAYS:
        raise ValueError(f"a process may hold at most {MAX_ARRAYS} arrays")
    if isinstance(arrays, ArrayMemory):
        total = arrays.entries - (len(old) if old is not None else 0) + n
    else:
        total = n + sum(len(a) for k, a in arrays.items() if a is not None and k != addr)
    if total > MAX_ARRAY_ENTRIES:
        raise ValueError(f"a process' arrays may hold at most {MAX_ARRAY_ENTRIES} entries")
    if isinstance(arrays, ArrayMemory):
        arrays.entries = total
    return n


def _mod(m: int) -> int:
    if m is None or m < 1:
        raise ValueError(f"modulus must be >= 1, got {m}")
    return m


#: templates kept per layout of command ids (e.g. one program's S2 with each rotation)
TEMPLATES_PER_LAYOUT = 32


@dataclass(frozen=True)
class _Template:
    """How to decode a subroutine of known commands (:meth:`SubroutineCache._decode_known`):
    the byte positions that must be equal and their bytes, the positions of the values
    (one row of 4 per valued command), which commands carry a value, which of those are
    ``set`` immediates / array addresses, the addresses' slot pattern, the shape key and
    the decoded instructions of the subroutine it came from."""

    const_idx: Any
    const_bytes: bytes
    val_idx: Any
    val_rows: tuple
    k_pos: tuple
    a_pos: tuple
    slot_pattern: tuple
    key: tuple
    instrs: list


class SubroutineCache:
    """Decode + compile subroutines once. Three levels: the exact bytes (without the
    app-id header) -> compiled subroutine; each 7-byte command -> its decoded netqasm
    instruction; a subroutine *shape* (see module docstring) -> compiled code.
    Thread-safe; ``hits`` / ``misses`` count exact-bytes lookups, ``shape_hits`` the
    misses whose shape was already compiled."""

    def __init__(self, flavour: Flavour, max_entries: int = 4096) -> None:
        self.flavour = flavour
        self.max_entries = max_entries
        self._cache: dict[bytes, CompiledSubroutine] = {}
        self._commands: dict[bytes, Any] = {}
        self._shapes: dict[tuple, CompiledSubroutine] = {}
        self._deserializer = Deserializer(flavour)
        self._spans: dict[tuple, int | None] = {}
        #: command ids (one byte per command) -> templates of that layout, newest last
        self._templates: dict[bytes, list[_Template]] = {}
        #: misses decoded through a known subroutine's template (:meth:`_decode_known`)
        self.known_decodes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.shape_hits = 0

    def _decode(self, raw: bytes) -> tuple[list, tuple, tuple, tuple]:
        """(instructions, shape key, set immediates, array addresses by slot) of ``raw``
        (netqasm's own decoder, once per distinct 7-byte command)."""
        cmds, dec = self._commands, self._deserializer.deserialize_command
        out, key, kvals, slots = [], [], [], {}
        kinds, values = [], []
        for i in range(METADATA_BYTES, len(raw), COMMAND_BYTES):
            chunk = raw[i:i + COMMAND_BYTES]
            hit = cmds.get(chunk)
            if hit is None:
                try:
                    ins = dec(chunk)
                except Exception as exc:  # netqasm raises assorted types on bad bytes
                    raise MalformedSubroutineError(
                        f"cannot decode command {(i - METADATA_BYTES) // COMMAND_BYTES} "
                        f"({chunk.hex()}) with the {type(self.flavour).__name__}: "
                        f"{type(exc).__name__}: {exc}") from exc
                hit = (ins, *_shape_token(ins))
                if len(cmds) < 8 * self.max_entries:
                    cmds[chunk] = hit
            ins, token, kind, value = hit
            out.append(ins)
            kinds.append(kind)
            values.append(value)
            if kind == "K":
                kvals.append(value)
                key.append(token)
            elif kind == "A":
                slot = slots.get(value)
                if slot is None:
                    slot = slots[value] = len(slots)
                key.append((token, slot))
            else:
                key.append(token)
        res = out, tuple(key), tuple(kvals), tuple(slots)
        if len(self._templates) < self.max_entries:
            self._make_template(raw[METADATA_BYTES:], out, kinds, values, res[1], res[3])
        return res

    def _value_span(self, ins: Any, kind: str) -> int | None:
        """Byte offset (in its 7-byte command) of the 4-byte little-endian value of a
        ``set`` immediate (kind 'K') or array address (kind 'A') of ``ins``' class; None
        when it cannot be located (the class is then decoded command by command)."""
        ck = (type(ins), kind)
        if ck not in self._spans:
            self._spans[ck] = value_offset(ins)
        return self._spans[ck]

    def _make_template(self, body: bytes, instrs: list, kinds: list, values: list,
                       key: tuple, addrs: tuple) -> None:
        """Remember how to decode another subroutine with the commands of ``body`` up to
        its values (see :meth:`_decode_known`)."""
        const_idx, val_idx, val_rows, k_pos, a_pos = [], [], [], [], []
        for row, (ins, kind, value) in enumerate(zip(instrs, kinds, values)):
            base = row * COMMAND_BYTES
            if kind is None:
                const_idx.extend(range(base, base + COMMAND_BYTES))
                continue
            off = self._value_span(ins, kind)
            if off is None or int.from_bytes(body[base + off:base + off + 4], "little",
                                             signed=True) != value:
                return
            const_idx.extend(i for i in range(base, base + COMMAND_BYTES)
                             if not off <= i - base < off + 4)
            val_idx.append(range(base + off, base + off + 4))
            (k_pos if kind == "K" else a_pos).append(len(val_rows))
            val_rows.append(row)
        ci = np.array(const_idx, dtype=np.intp)
        arr = np.frombuffer(body, dtype=np.uint8)
        slot_of = {a: s for s, a in enumerate(addrs)}
        same_ids = self._templates.setdefault(body[0::COMMAND_BYTES], [])
        if len(same_ids) >= TEMPLATES_PER_LAYOUT:
            same_ids.pop(0)
        same_ids.append(_Template(
            ci, arr[ci].tobytes(), np.array([list(r) for r in val_idx], dtype=np.intp)
            .reshape(-1, 4), tuple(val_rows), tuple(k_pos), tuple(a_pos),
            tuple(slot_of[values[val_rows[j]]] for j in a_pos), key, list(instrs)))

    def _decode_known(self, body: bytes) -> tuple[list, tuple, tuple, tuple] | None:
        """:meth:`_decode` for a subroutine whose commands equal a decoded one's up to
        their ``set`` immediates and array addresses (and whose addresses repeat in the
        same pattern): the values are read at their byte offsets, only the commands that
        carry one are looked up. None: not such a subroutine."""
        arr = np.frombuffer(body, dtype=np.uint8)
        for t in self._templates.get(body[0::COMMAND_BYTES], ()):
            if arr[t.const_idx].tobytes() != t.const_bytes:
                continue
            vals = arr[t.val_idx].view("<i4").ravel().tolist() if len(t.val_rows) else []
            slots: dict[int, int] = {}
            pattern = []
            for j in t.a_pos:
                pattern.append(slots.setdefault(vals[j], len(slots)))
            if tuple(pattern) == t.slot_pattern:
                break
        else:
            return None
        instrs = list(t.instrs)
        cmds = self._commands
        for j, row in enumerate(t.val_rows):
            chunk = body[row * COMMAND_BYTES:(row + 1) * COMMAND_BYTES]
            hit = cmds.get(chunk)
            if hit is not None:
                instrs[row] = hit[0]
                continue
            try:  # a new value (array addresses mostly are): its command alone, not cached
                ins = self._deserializer.deserialize_command(chunk)
                got = ins.imm.value if isinstance(ins, core.SetInstruction) else array_address(ins)
            except Exception:  # noqa: BLE001 - the full decoder names the error
                return None
            if got != vals[j]:
                return None
            instrs[row] = ins
        return instrs, t.key, tuple(vals[j] for j in t.k_pos), tuple(slots)

    def get(self, raw: bytes) -> tuple[CompiledSubroutine, int]:
        """Compiled subroutine and app id for ``raw`` (netqasm binary encoding)."""
        if len(raw) < METADATA_BYTES or (len(raw) - METADATA_BYTES) % COMMAND_BYTES:
            raise MalformedSubroutineError(
                f"subroutine of {len(raw)} bytes: expected a {METADATA_BYTES}-byte header + "
                f"{COMMAND_BYTES} bytes per instruction")
        app_id = int.from_bytes(raw[2:4], sys.byteorder)
        key = raw[:2] + raw[4:]
        c = self._cache.get(key)
        if c is not None:
            self.hits += 1
            return c, app_id
        self.misses += 1
        raw = bytes(raw)
        known = self._decode_known(raw[METADATA_BYTES:])
        if known is not None:
            instrs, shape_key, kvals, addrs = known
            self.known_decodes += 1
        else:
            instrs, shape_key, kvals, addrs = self._decode(raw)
        shape = self._shapes.get(shape_key)
        if shape is not None:
            c = instantiate(shape, instrs, kvals, addrs)
            self.shape_hits += 1
        else:
            c = compile_instructions(instrs, name=f"{len(self._shapes)}")
            with self._lock:
                if len(self._shapes) >= self.max_entries:
                    self._shapes.clear()
                # the generator numbers K/AD names as the decoder does; keep it honest
                if (c.kvals, c.addresses) == (kvals, addrs):
                    self._shapes[shape_key] = c
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = c
        return c, app_id
