"""Foundation demo: physical instructions -> 4-byte messages -> tick link -> a trivial
simulated QDevice, and the timeline that results."""

from __future__ import annotations

import math

from ..qdevice import (Axis, Entangle, Init, Measure, Rotation, TickLink, VirtualClock,
                       decode, instruction_message, ion_spec, nv_spec, encode)
from ..simulators.trivial import TrivialQDevice


def timeline_rows(platform: str = "nv", seed: int = 1) -> list[tuple[int, float, str, str, str]]:
    """Run a short program; return (tick, t_us, direction, hex, decoded) rows."""
    spec = nv_spec() if platform == "nv" else ion_spec()
    program = [Init(0), Rotation(0, Axis.X, math.pi / 2), Rotation(0, Axis.Y, math.pi),
               Measure(0)]
    if platform == "nv":
        program.insert(1, Entangle(0))
    link = TickLink(spec, TrivialQDevice(seed=seed), VirtualClock())
    for i, instr in enumerate(program):
        spec.check(instr)
        link.send(encode(instruction_message(instr, seq=i & 1)))
        link.wait_response()
    return [(e.tick, e.t_ns / 1e3, e.direction.value, e.message.hex(), repr(decode(e.message)))
            for e in link.timeline]


def run(args) -> int:
    rows = timeline_rows(args.platform, args.seed)
    print(f"{'tick':>6} {'t (us)':>9}  {'direction':<11} {'bytes':<8}  message")
    for tick, t_us, direction, hx, text in rows:
        print(f"{tick:>6} {t_us:>9.1f}  {direction:<11} {hx:<8}  {text}")
    return 0
