"""Benchmark: one NetQASM quantum instruction -> its controller message(s), excluding
device time, for the NV and the ion QDriver.

Steady state (the QDriver caches each distinct instruction's words: a node runs the
same subroutines over and over) and cold (first translation of each distinct
instruction, mapping search included) are both reported.

Prints, last line, JSON: nv_translate_us_median, ion_translate_us_median (steady
state, microseconds per instruction, words ready to send), and the cold figures.
Goal: each steady-state median <= 2.0 us.
"""

from __future__ import annotations

import json
import statistics
import time

from netqasm.lang.instr.flavour import NVFlavour, TrappedIonFlavour
from netqasm.lang.parsing.text import parse_text_subroutine

from qnodeos_hw.qdrivers.ion import IonQDriver
from qnodeos_hw.qdrivers.link_driver import LinkQDriver
from qnodeos_hw.qdrivers.nv import NVQDriver
from qnodeos_hw.waveforms.calibration import load_calibration
from qnodeos_hw.waveforms.table import build_table

NV_BODY = """init Q0
rot_x Q0 1 1
rot_y Q0 8 4
rot_x Q0 16 4
rot_z Q0 3 2
rot_y Q0 5 5
rot_z Q0 1 5
meas Q0 M0"""

ION_BODY = """init_all
rot_x_all 1 1
rot_y_all 1 0
rot_z Q0 1 1
rot_z Q0 3 1
rot_x_all 3 1
meas Q0 M0"""


class _NoDevice:
    """Translation only: nothing is sent."""

    def transact(self, word: bytes) -> bytes:  # pragma: no cover - never called
        raise AssertionError

    def now_ns(self) -> int:
        return 0


class _IonOffline(IonQDriver):
    """The ion QDriver's translation without a bridge (no upload, no link)."""

    def __init__(self) -> None:
        from qnodeos_hw.qdevice import ion_spec
        from qnodeos_hw.qdrivers.ion import ion_composer
        LinkQDriver.__init__(self, _NoDevice(), ion_spec(), lambda: 0)
        self.composer = ion_composer()


def _instructions(body: str, flavour) -> list:
    sub = parse_text_subroutine(f"# NETQASM 1.0\n# APPID 0\nset Q0 0\n{body}\n", flavour=flavour)
    return [i for i in sub.instructions if i.mnemonic != "set"]


def _measure(make_driver, instrs, repeats: int = 41, loops: int = 2000) -> tuple[float, float]:
    colds = []
    for _ in range(5):
        d = make_driver()
        t0 = time.perf_counter()
        for ins in instrs:
            d.translate(ins, (0,))
        colds.append((time.perf_counter() - t0) / len(instrs) * 1e6)
    d = make_driver()
    for ins in instrs:
        d.translate(ins, (0,))
    samples = []
    tr = d.translate
    q = (0,)
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            for ins in instrs:
                tr(ins, q)
        samples.append((time.perf_counter() - t0) / (loops * len(instrs)) * 1e6)
    return statistics.median(samples), statistics.median(colds)


def main() -> dict:
    table = build_table(load_calibration())
    nv_instrs = _instructions(NV_BODY, NVFlavour())
    ion_instrs = _instructions(ION_BODY, TrappedIonFlavour())
    nv_med, nv_cold = _measure(lambda: NVQDriver(_NoDevice(), table), nv_instrs)
    ion_med, ion_cold = _measure(_IonOffline, ion_instrs)
    return {"nv_translate_us_median": round(nv_med, 3), "ion_translate_us_median": round(ion_med, 3),
            "nv_cold_translate_us_median": round(nv_cold, 1),
            "ion_cold_translate_us_median": round(ion_cold, 1),
            "nv_instructions": len(nv_instrs), "ion_instructions": len(ion_instrs),
            "goal_us": 2.0}


if __name__ == "__main__":
    print(json.dumps(main()))
