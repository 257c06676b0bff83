"""Benchmark: encode + decode of one 4-byte controller message.

Prints, last line, JSON: roundtrip_us_median (us per encode+decode), messages_per_s.
Goal: roundtrip_us_median <= 2.0 (a fifth of one 100 kHz tick).
"""

from __future__ import annotations

import json
import statistics
import time

from qnodeos_hw.qdevice import (InstructionMessage, Opcode, ResponseKind, ResponseMessage, decode,
                                encode)


def main(repeats: int = 31, batch: int = 20_000) -> dict:
    # A realistic mix: table plays over 170 entries, measurements, responses.
    msgs = ([InstructionMessage(Opcode.PLAY, 0, i % 170, i & 1) for i in range(170)]
            + [InstructionMessage(Opcode.MEASURE, 0, 0, 1), InstructionMessage(Opcode.INIT, 0)]
            + [ResponseMessage(ResponseKind.OUTCOME, 0, b, 0) for b in (0, 1)])
    n = len(msgs)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(batch):
            m = msgs[i % n]
            if decode(encode(m)) != m:
                raise AssertionError("round trip failed")
        samples.append((time.perf_counter() - t0) / batch * 1e6)
    med = statistics.median(samples)
    return {"roundtrip_us_median": round(med, 3), "roundtrip_us_p90": round(
        sorted(samples)[int(0.9 * len(samples))], 3), "messages_per_s": round(1e6 / med),
        "goal_roundtrip_us": 2.0}


if __name__ == "__main__":
    print(json.dumps(main()))
