"""A standalone executor: one process' compiled subroutines on a QDriver, without the
QNPU's scheduler, network or connections (tests, benchmarks, local tools)."""

from __future__ import annotations

from typing import Any


from .compiler import WAIT, ArrayMemory, SubroutineCache
from .errors import ExecutionError, QNPUError, QubitAllocationError
from .qmmu import QMMU


class StandaloneExecutor:
    """Runs subroutines (netqasm binary encoding) of one application on ``driver``.

    Registers and arrays persist across subroutines, as in the QNPU. ``returns`` of
    :meth:`execute` lists ``('reg', name, value)`` and ``('arr', address, values)``.
    Entanglement instructions raise (no network here).
    """

    def __init__(self, driver: Any, max_qubits: int | None = None) -> None:
        self.driver = driver
        n = driver.spec.num_qubits
        self.qmmu = QMMU.for_spec(driver.spec)
        self.table = self.qmmu.add_process(1, max_qubits or n)
        self.cache = SubroutineCache(driver.flavour)
        self.regs: dict[str, Any] = {}
        self.arrays: dict[int, list] = ArrayMemory()
        self.drv = driver.execute
        self._returns: list = []
        table = self.table

        def ph(v: int) -> int:
            try:
                p = table[v]
            except (IndexError, TypeError):
                raise QubitAllocationError(f"virtual qubit {v} is out of range") from None
            if p is None:
                raise QubitAllocationError(f"virtual qubit {v} is not allocated")
            return p

        self.ph = ph

    # -- context API used by compiled code ---------------------------------------------
    def qalloc(self, v: int) -> bool:
        self.qmmu.allocate(1, v)
        return True

    def qfree(self, v: int) -> None:
        self.driver.free(self.qmmu.free(1, v))

    def ret_reg(self, name: str, index: int, value: int) -> None:
        self._returns.append(("reg", f"{name}{index}", value))

    def ret_arr(self, address: int, values: list) -> None:
        self._returns.append(("arr", address, list(values)))

    def all_phys(self) -> tuple[int, ...]:
        return tuple(p for p in self.table if p is not None)

    def create_epr(self, *args: Any) -> None:
        raise QNPUError("create_epr needs the QNPU's network process")

    recv_epr = create_epr

    # -- running ------------------------------------------------------------------------------
    def execute(self, raw: bytes) -> list:
        """Run one subroutine to completion; returns what it returned."""
        compiled, _ = self.cache.get(raw)
        self._returns = []
        gen = compiled.run(self)
        try:
            for out in gen:
                if out is WAIT:
                    raise QNPUError("subroutine waits for entanglement results; no network here")
        except ExecutionError:
            raise
        except Exception as exc:
            tb, idx = exc.__traceback__, None
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == compiled.filename:
                    idx = compiled.instr_at_line(tb.tb_lineno)
                tb = tb.tb_next
            mnem = compiled.instructions[idx].mnemonic if idx is not None else "?"
            raise ExecutionError(-1 if idx is None else idx, mnem,
                                 f"{type(exc).__name__}: {exc}") from exc
        return self._returns

    def register(self, name: str) -> Any:
        return self.regs.get(name)


