"""Executor throughput: the same NetQASM subroutines through the QNPU's compiled executor
and through netqasm's reference ``netqasm.backend.executor.Executor``, in one run.

Subroutines: a classical-heavy loop (add/addm/store/load/branch) and a quantum-heavy
gate/measure loop. Quantum instructions go, on both sides, to the same QDriver:
``--driver null`` (a QDriver that only counts calls: the executors' own cost) or
``--driver ideal`` (the exact density-matrix IdealQDriver). Instruction counts come
from a counting run of the reference executor. Prints JSON as the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from netqasm.backend.executor import Executor
from netqasm.lang.instr.flavour import VanillaFlavour
from netqasm.lang.parsing import parse_text_subroutine
from netqasm.sdk.shared_memory import SharedMemoryManager

from qnodeos_hw.qdevice.instructions import SUCCESS
from qnodeos_hw.qdevice.spec import nv_spec
from qnodeos_hw.qdrivers.base import QDriver
from qnodeos_hw.qdrivers.ideal import IdealQDriver
from qnodeos_hw.qnpu.executor import StandaloneExecutor

CLASSICAL = """
# NETQASM 1.0
# APPID 0
set R0 0
set R1 {n}
set R2 0
set R3 1
set R5 7
set R6 4
array R6 @0
LOOP:
beq R0 R1 END
add R2 R2 R0
addm R4 R2 R3 R5
rem R7 R0 R6
store R4 @0[R7]
load R8 @0[R7]
sub R9 R8 R3
add R0 R0 R3
jmp LOOP
END:
ret_reg R2
ret_arr @0
"""

QUANTUM = """
# NETQASM 1.0
# APPID 0
set R0 0
set R1 {n}
set R3 1
set Q0 0
array R1 @1
qalloc Q0
LOOP:
beq R0 R1 END
init Q0
rot_x Q0 1 2
rot_y Q0 3 3
rot_z Q0 5 4
h Q0
x Q0
s Q0
meas Q0 M0
store M0 @1[R0]
add R0 R0 R3
jmp LOOP
END:
qfree Q0
ret_arr @1
"""


class NullQDriver(QDriver):
    """Counts quantum instructions; measurements return 0. No physics, no time."""

    def __init__(self, num_qubits: int = 5) -> None:
        self.spec = nv_spec(num_qubits)
        self.flavour = VanillaFlavour()
        self.calls = 0

    def execute(self, instr, qubits):
        self.calls += 1
        return 0 if instr.mnemonic == "meas" else None

    def entangle(self, qubit, mode, peer):
        return SUCCESS

    def now_ns(self) -> int:
        return 0


class ReferenceExecutor(Executor):
    """netqasm's executor with its quantum hooks calling the same QDriver."""

    def __init__(self, driver, instances) -> None:
        super().__init__(name="bench")
        self.driver, self.instances, self.count = driver, instances, 0

    def _phys(self, subroutine_id, address):
        return self._get_position(subroutine_id=subroutine_id, address=address)

    def _do_single_qubit_instr(self, instr, subroutine_id, address):
        self.driver.execute(instr, (self._phys(subroutine_id, address),))

    def _do_single_qubit_rotation(self, instr, subroutine_id, address, angle):
        self.driver.execute(instr, (self._phys(subroutine_id, address),))

    def _do_two_qubit_instr(self, instr, subroutine_id, address1, address2):
        self.driver.execute(instr, (self._phys(subroutine_id, address1), self._phys(subroutine_id, address2)))

    def _do_meas(self, subroutine_id, q_address):
        return self.driver.execute(self.instances[subroutine_id], (self._phys(subroutine_id, q_address),))

    def _instr_meas(self, subroutine_id, instr):
        self.instances[subroutine_id] = instr
        return super()._instr_meas(subroutine_id, instr)


class CountingReference(ReferenceExecutor):
    def _execute_command(self, subroutine_id, command):
        self.count += 1
        return super()._execute_command(subroutine_id, command)


def _reference(driver, sub, counting=False):
    SharedMemoryManager.reset_memories()
    ex = (CountingReference if counting else ReferenceExecutor)(driver, {})
    ex.init_new_application(app_id=0, max_qubits=5)
    t0 = time.perf_counter()
    ex.consume_execute_subroutine(sub)
    return time.perf_counter() - t0, ex.count


def _ours(driver, raw, ex=None):
    ex = ex or StandaloneExecutor(driver, 5)
    t0 = time.perf_counter()
    out = ex.execute(raw)
    return time.perf_counter() - t0, out


def make_driver(kind: str):
    return NullQDriver() if kind == "null" else IdealQDriver("bench", 5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="loop iterations per subroutine")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--driver", choices=["null", "ideal"], default="null")
    args = ap.parse_args()
    figures = {}
    total_ours = total_ref = total_instr = 0.0
    for name, text in (("classical", CLASSICAL), ("quantum", QUANTUM)):
        sub = parse_text_subroutine(text.format(n=args.n), flavour=VanillaFlavour())
        raw = bytes(sub)
        _, count = _reference(make_driver(args.driver), sub, counting=True)
        ours_t, ref_t = [], []
        ex = StandaloneExecutor(make_driver(args.driver), 5)
        returned = _ours(ex.driver, raw, ex)[1]  # compile once (cached by bytes)
        if name == "classical":  # both executors must compute the same values
            mem = SharedMemoryManager.get_shared_memory("bench", 0)
            ref = [("reg", "R2", mem.get_register("R2")), ("arr", 0, mem.get_array_part(0, slice(0, 4)))]
            if returned != ref:
                raise SystemExit(f"executors disagree: ours {returned} vs netqasm {ref}")
        for _ in range(args.repeats):
            ours_t.append(_ours(ex.driver, raw, ex)[0])
            ref_t.append(_reference(make_driver(args.driver), sub)[0])
        o, r = statistics.median(ours_t), statistics.median(ref_t)
        figures[name] = {"instructions": count, "ours_instr_per_s": round(count / o),
                         "netqasm_instr_per_s": round(count / r), "speedup": round(r / o, 2)}
        total_ours += o
        total_ref += r
        total_instr += count
        print(f"{name:9s}: {count} instr  ours {count / o:,.0f}/s  netqasm {count / r:,.0f}/s  "
              f"x{r / o:.1f}")
    # first-run cost (decode + compile) for reference
    sub = parse_text_subroutine(QUANTUM.format(n=args.n), flavour=VanillaFlavour())
    t_cold = _ours(make_driver(args.driver), bytes(sub))[0]
    print(json.dumps({
        "driver": args.driver,
        "ours_instr_per_s": round(total_instr / total_ours),
        "netqasm_instr_per_s": round(total_instr / total_ref),
        "speedup": round(total_ref / total_ours, 2),
        "per_subroutine": figures,
        "quantum_first_run_s": round(t_cold, 5),
    }))


if __name__ == "__main__":
    main()
