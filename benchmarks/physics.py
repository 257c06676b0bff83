"""Benchmark: gate + measure instruction streams through the qubit physics.

Headline (``sim_over_wall`` / ``instr_per_s`` at the top level of the JSON): mode
``nv_lgt_paced`` -- the paper's local gate tomography (LGT) workload streamed through
the full simulated NV station: each subroutine is INIT, the PLAYs that prepare one of
the six cardinal states (none for |0>), the PLAY that rotates the measurement basis
(none for Z) and MEASURE, cycling the 6 states x 3 bases; one subroutine starts every
2.4 ms (the paper's LGT subroutine time), the qubit idling under DD in between. The
4-byte words go one at a time (send, wait for the response), as the NV QDriver sends
them, through the ADwin QCoDeS driver -> simulated ADwin (tick loop, CR check) -> DIO
-> simulated HDAWG (command table, DD idle loop) -> NV physics.

  ``sim_over_wall`` = simulated node time (s, the DD idle between subroutines
  included) per wall-clock second; ``instr_per_s`` = QDevice instructions (INIT, PLAY,
  MEASURE) per wall second; ``lgt_agreement`` = fraction of outcomes equal to the ideal
  one over the settings whose outcome is deterministic (state along the basis axis):
  it shows the physics really ran (readout/initialisation infidelity keeps it < 1).
  Goal (issue 5): sim_over_wall >= 100.

Other paths, reported under ``modes``. The dense ones have no idle time at all, so
their sim_over_wall is bounded by the instruments' own durations (through the station
~80 us of simulated time per instruction: INIT ~70 us, PLAY waits for the next XY8 block
boundary and plays the entry's 80 us XY8 tail, MEASURE 10 us):

* ``nv_stack``   -- dense stream of INIT, PLAY(x180), MEASURE through the same station.
* ``nv_stack_batched`` -- ``nv_stack`` with each shot's three words sent in one FIFO block
  (``ADwinController.send_instructions`` / ``read_responses``).
* ``nv_stack_paced`` -- ``nv_stack`` with one INIT+PLAY+MEASURE every 2.4 ms.
* ``nv_backend`` -- the dense shot straight on the NVQubitBackend API (cr_check,
  initialize, play_mw, set_dd, readout) with the simulated controller's durations:
  the physics model's own cost. Labelled "backend API, no instruments".
* ``nv_qdriver`` -- wall us per ``NVQDriver.execute`` of ``init``, ``rot_x`` (pi/2) and
  ``meas`` on a node of :func:`qnodeos_hw.nodes.simulated_nv_network` (the node OS's
  path: NetQASM instruction -> words -> ADwin driver -> station).
* ``ion_stack``  -- INIT, RX_PI, MEASURE through the tick link -> ion FPGA bridge driver
  -> ``sim://`` serial port -> simulated FPGA -> ion physics.
* ``ion_backend`` -- the same TTL timings straight on the IonQubitBackend API.

The last line of stdout is JSON. If the instrument simulators cannot be imported the
top-level figures fall back to ``nv_backend`` (``path`` says which).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from tqdm import tqdm

from qnodeos_hw.simulators.physics import IonNode, NVNode, QuantumRegistry, load_noise_models

TICK_NV_NS, TICK_ION_NS = 10_000, 20_000
# the simulated ADwin's default durations (ns): CR check, spin pumping, readout
CR_NS, INIT_NS, READOUT_NS = 50_000, 20_000, 10_000
PAPER_LGT_PERIOD_NS = 2_400_000  # one LGT subroutine takes about 2.4 ms in the paper


def _ticks(t_ns: int, tick: int) -> int:
    """First tick boundary at or after ``t_ns``."""
    return -(-t_ns // tick) * tick


def _x180_entry():
    """(key, I, Q, rate, length ns) of the x180 table entry (synthesised if the waveform
    package is absent)."""
    try:
        from qnodeos_hw.waveforms.calibration import load_calibration
        from qnodeos_hw.waveforms.table import build_table
    except ImportError:
        rate, f = 2.4e9, load_noise_models().nv.rabi_hz_per_amplitude
        n = 240
        return "x180", np.full(n, 1 / (2 * f * n / rate)), np.zeros(n), rate, 100, "synthesised"
    e = build_table(load_calibration()).by_rotation("x", 1, 0)
    return (e.index, e.samples_i, e.samples_q, e.sample_rate_hz, int(e.duration_ns),
            "waveform table")


def bench_nv_backend(shots: int) -> dict:
    key, wi, wq, rate, entry_ns, source = _x180_entry()
    m = load_noise_models()
    node = NVNode("bench", m.nv, np.random.default_rng(1), QuantumRegistry())
    t, ones = 0, 0
    t0 = time.perf_counter()
    for _ in range(shots):
        node.cr_check(t)  # INIT: CR check (passes ~90 %; counted as one attempt here)
        t += CR_NS
        node.initialize(0, t)
        t = _ticks(t + INIT_NS, TICK_NV_NS)
        node.play_mw(0, key, wi, wq, rate, t)  # PLAY
        node.set_dd(0, True, t + entry_ns)
        t = _ticks(t + entry_ns, TICK_NV_NS)
        ones += node.readout(0, t)  # MEASURE
        t = _ticks(t + READOUT_NS, TICK_NV_NS)
    wall = time.perf_counter() - t0
    return _figures(t * 1e-9, wall, 3 * shots, ones / shots,
                    f"backend API, no instruments; x180 from {source}")


def _open_station():
    from qnodeos_hw.sequences.hdawg_program import build_hdawg_program
    from qnodeos_hw.simulators.nv_lab import open_nv_node
    from qnodeos_hw.waveforms.calibration import load_calibration
    from qnodeos_hw.waveforms.table import build_table
    cal = load_calibration()
    table = build_table(cal)
    return table, open_nv_node(seed=1, program=build_hdawg_program(table, cal), name="physbench")


def _lgt_subroutines(table) -> list[tuple[tuple, int | None]]:
    """The 18 LGT settings: (ops, ideal outcome or None); ops are (opcode, argument)."""
    from qnodeos_hw.qdevice import Opcode
    r = table.by_rotation
    prep = {"0": (), "1": (r("x", 1, 0).index,), "+": (r("y", 1, 1).index,),
            "-": (r("y", -1, 1).index,), "+i": (r("x", -1, 1).index,),
            "-i": (r("x", 1, 1).index,)}
    basis = {"Z": (), "X": (r("y", -1, 1).index,), "Y": (r("x", 1, 1).index,)}
    ideal = {("0", "Z"): 0, ("1", "Z"): 1, ("+", "X"): 0, ("-", "X"): 1, ("+i", "Y"): 0,
             ("-i", "Y"): 1}
    out = []
    for st, pe in prep.items():
        for b, be in basis.items():
            ops = ((Opcode.INIT, 0), *((Opcode.PLAY, e) for e in pe + be), (Opcode.MEASURE, 0))
            out.append((ops, ideal.get((st, b))))
    return out


def _stream(node, subroutines, shots: int, period_ns: int | None, batched: bool = False,
            path: str = "") -> dict:
    """Run ``shots`` subroutines (cycling ``subroutines``) through the station's ADwin
    driver; the sequence bit alternates per instruction, as the QDriver sends them."""
    from qnodeos_hw.qdevice import InstructionMessage, Opcode, ResponseKind, decode, encode
    ad, clock = node.adwin, node.lab.clock
    words = [[tuple(encode(InstructionMessage(op, 0, arg, (seq + k) & 1))
                    for k, (op, arg) in enumerate(ops)) for seq in (0, 1)]
             for ops, _ in subroutines]
    ad.transact(encode(InstructionMessage(Opcode.NOP, 0, 0, 0)))  # warm-up
    s0, seq, n_instr, agree, decided, ones = ad.now_ns(), 1, 0, 0, 0, 0
    ok = (ResponseKind.SUCCESS, ResponseKind.OUTCOME)
    transact = ad.transact
    t0 = time.perf_counter()
    for i in range(shots):
        k = i % len(subroutines)
        w = words[k][seq]
        if period_ns is not None:  # the next subroutine arrives one period later
            clock.advance_to(max(clock.now_ns(), s0 + i * period_ns))
        if batched:
            ad.send_instructions(list(w))
            resps = ad.read_responses(len(w))
        else:
            resps = [transact(x) for x in w]
        for r in resps:
            m = decode(r)
            if m.kind not in ok:
                raise RuntimeError(f"subroutine {k}: device answered {m.kind.name}")
        outcome = m.argument  # the MEASURE's
        ones += outcome
        ideal = subroutines[k][1]
        if ideal is not None:
            decided += 1
            agree += outcome == ideal
        n_instr += len(w)
        seq ^= len(w) & 1
    wall = time.perf_counter() - t0
    sim = (ad.now_ns() - s0) * 1e-9
    out = _figures(sim, wall, n_instr, ones / shots, path)
    if decided:
        out["lgt_agreement"] = round(agree / decided, 4)
    return out


_STACK = "ADwin driver -> simulated ADwin -> simulated HDAWG -> NV physics"


def bench_nv_stack(shots: int, period_ns: int | None = None, batched: bool = False
                   ) -> dict | None:
    """INIT, PLAY(x180), MEASURE shots through the station (dense, or one per period)."""
    try:
        from qnodeos_hw.qdevice import Opcode
        table, node = _open_station()
    except ImportError as exc:
        return {"unavailable": str(exc)}
    try:
        x180 = table.by_rotation("x", 1, 0).index
        sub = [(((Opcode.INIT, 0), (Opcode.PLAY, x180), (Opcode.MEASURE, 0)), None)]
        path = _STACK
        if batched:
            path += "; each shot's 3 words in one FIFO block"
        if period_ns is not None:
            path += (f"; one INIT+PLAY+MEASURE subroutine every {period_ns / 1e6:g} ms "
                     "(DD idle between)")
        return _stream(node, sub, shots, period_ns, batched, path)
    finally:
        node.close()


def bench_nv_lgt(subroutines: int, period_ns: int = PAPER_LGT_PERIOD_NS,
                 repeats: int = 5) -> dict | None:
    """The headline: LGT subroutines (6 states x 3 bases) one every ``period_ns``; the
    stream is run ``repeats`` times on one station and the median run is reported (this
    shared 2-vCPU machine varies by up to 1.6x between runs a second apart)."""
    try:
        table, node = _open_station()
    except ImportError as exc:
        return {"unavailable": str(exc)}
    try:
        subs = _lgt_subroutines(table)
        path = (f"{_STACK}; LGT subroutines (INIT, state-prep PLAY, basis PLAY, MEASURE; "
                f"6 states x 3 bases) one every {period_ns / 1e6:g} ms, DD idle between, "
                "words sent one at a time")
        runs = [_stream(node, subs, subroutines, period_ns, False, path)
                for _ in range(max(1, repeats))]
        runs.sort(key=lambda r: r["sim_over_wall"])
        out = dict(runs[len(runs) // 2])
        out["sim_over_wall_runs"] = [r["sim_over_wall"] for r in runs]
        out["subroutines"] = subroutines
        out["repeats"] = len(runs)
        return out
    finally:
        node.close()


def bench_nv_qdriver(reps: int) -> dict | None:
    """Wall us per NVQDriver.execute (init, rot_x pi/2, meas) on a simulated NV network."""
    try:
        from netqasm.lang.instr import core, nv
        from netqasm.lang.operand import Immediate, Register, RegisterName

        from qnodeos_hw.nodes import simulated_nv_network
    except ImportError as exc:
        return {"unavailable": str(exc)}
    q0 = Register(RegisterName.Q, 0)
    instrs = {"init": core.InitInstruction(reg=q0),
              "rot": nv.RotXInstruction(reg=q0, imm0=Immediate(1), imm1=Immediate(1)),
              "meas": core.MeasInstruction(reg0=q0, reg1=Register(RegisterName.M, 0))}
    nodes = simulated_nv_network(("client", "server"), seed=1)
    try:
        node = nodes["client"]
        qd = node.qdriver
        for ins in instrs.values():  # warm-up (translation cache)
            qd.execute(ins, (0,))
        spent = dict.fromkeys(instrs, 0.0)
        pc = time.perf_counter
        s0 = node.clock.now_ns()
        t_all = pc()
        for _ in range(reps):
            for name, ins in instrs.items():
                t0 = pc()
                qd.execute(ins, (0,))
                spent[name] += pc() - t0
        wall = pc() - t_all
        sim = (node.clock.now_ns() - s0) * 1e-9
    finally:
        for n in nodes.values():
            n.close()
    out = {"path": "NVQDriver.execute -> ADwin driver -> simulated station "
                   "(qnodeos_hw.nodes.simulated_nv_network); dense init, rot_x(pi/2), meas",
           "sim_over_wall": round(sim / wall, 2), "instr_per_s": round(3 * reps / wall),
           "wall_us_per_instr": round(wall / (3 * reps) * 1e6, 2)}
    out.update({f"{k}_us_per_execute": round(v / reps * 1e6, 2) for k, v in spent.items()})
    return out


def _ion_timings():
    from qnodeos_hw.sequences import ion_ttl as T
    return T.load_calibration()


def bench_ion_backend(shots: int) -> dict:
    try:
        cal = _ion_timings()
        cool, pump, pi, det, guard = (cal.cooling_ns, cal.pumping_ns, cal.pi_time_ns,
                                      cal.detection_ns, cal.guard_ns)
        thr = cal.pmt_threshold
    except ImportError:
        cool, pump, pi, det, guard, thr = 500_000, 20_000, 10_000, 500_000, 1_000, 3
    m = load_noise_models()
    node = IonNode("bench", m.ion, np.random.default_rng(2), QuantumRegistry())
    t, dark = 0, 0
    t0 = time.perf_counter()
    for _ in range(shots):
        node.cool(0, cool, t)
        t += cool + guard
        node.pump(0, pump, t)
        t = _ticks(t + pump + guard, TICK_ION_NS)
        node.pulse(0, 0.0, pi, t)
        t = _ticks(t + pi + guard, TICK_ION_NS)
        dark += node.detect(0, det, t) < thr
        t = _ticks(t + det + guard, TICK_ION_NS)
    wall = time.perf_counter() - t0
    return _figures(t * 1e-9, wall, 3 * shots, dark / shots, "backend API, no instruments")


def bench_ion_stack(shots: int) -> dict | None:
    try:
        from qnodeos_hw.instruments.ion_bridge import IonFPGABridge
        from qnodeos_hw.qdevice import TickLink, VirtualClock, decode, encode, ion_spec
        from qnodeos_hw.sequences import ion_ttl as T
        from qnodeos_hw.sequences.ion_ttl import IonInstruction as I
    except ImportError as exc:
        return {"unavailable": str(exc)}
    br = IonFPGABridge("ion_physbench", "sim://ion?backend=physics&seed=3",
                       protocol_handler_packages=["qnodeos_hw.simulators.serial_sim"])
    try:
        cal = T.load_calibration()
        br.upload_all(T.build_all(cal))
        br.pmt_threshold(cal.pmt_threshold)
        clock = VirtualClock()
        link = TickLink(ion_spec(), br.tick_device(), clock, record=False)
        msgs = [encode(T.play_message(k)) for k in (I.INIT, I.RX_PI, I.MEASURE)]
        s0, ones = clock.now_ns(), 0
        t0 = time.perf_counter()
        for _ in range(shots):
            link.transact(msgs[0])
            link.transact(msgs[1])
            ones += decode(link.transact(msgs[2])).argument
        wall = time.perf_counter() - t0
        sim = (clock.now_ns() - s0) * 1e-9
    finally:
        br.close()
    return _figures(sim, wall, 3 * shots, ones / shots,
                    "tick link -> ion bridge driver -> sim:// FPGA -> ion physics")


def _figures(sim_s: float, wall_s: float, instructions: int, p1: float, path: str) -> dict:
    return {"path": path, "sim_s": round(sim_s, 4), "wall_s": round(wall_s, 4),
            "sim_over_wall": round(sim_s / wall_s, 2),
            "instr_per_s": round(instructions / wall_s),
            "wall_us_per_instr": round(wall_s / instructions * 1e6, 2),
            "p_one_after_x180": round(p1, 4)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=4000,
                    help="shots (subroutines) per path (x10 for backend paths)")
    args = ap.parse_args(argv)
    n = args.shots
    jobs = [("nv_lgt_paced", bench_nv_lgt, n),
            ("nv_stack", bench_nv_stack, n),
            ("nv_stack_batched", lambda k: bench_nv_stack(k, batched=True), n),
            ("nv_stack_paced", lambda k: bench_nv_stack(k, PAPER_LGT_PERIOD_NS), n),
            ("nv_backend", bench_nv_backend, 10 * n),
            ("nv_qdriver", bench_nv_qdriver, max(1, n // 4)),
            ("ion_stack", bench_ion_stack, n // 4), ("ion_backend", bench_ion_backend, 10 * n)]
    modes = {}
    for name, fn, shots in tqdm(jobs, desc="physics benchmark", file=sys.stderr):
        modes[name] = fn(shots)
        print(f"{name}: {modes[name]}")
    head = "nv_lgt_paced" if "sim_over_wall" in modes["nv_lgt_paced"] else "nv_backend"
    top = modes[head]
    keep = ("sim_over_wall", "sim_over_wall_runs", "instr_per_s", "wall_us_per_instr", "path",
            "lgt_agreement",
            "init_us_per_execute", "rot_us_per_execute", "meas_us_per_execute")
    from qnodeos_hw.build_info import compiled_status
    status = compiled_status()
    return {"sim_over_wall": top["sim_over_wall"], "instr_per_s": top["instr_per_s"],
            "sim_over_wall_runs": top.get("sim_over_wall_runs"),
            "headline_mode": head, "path": top["path"],
            "definition": "simulated node time (s, DD idle between subroutines included) per "
                          "wall second, headline_mode's workload (median of its repeated runs)",
            "goal_sim_over_wall": 100, "goal_met": top["sim_over_wall"] >= 100,
            "dense_sim_over_wall": modes["nv_stack"].get("sim_over_wall"),
            "hot_path": {"compiled": sorted(m for m, v in status.items() if v == "compiled"),
                         "python": sorted(m for m, v in status.items() if v != "compiled")},
            "modes": {k: {kk: v[kk] for kk in keep if kk in v} if "path" in v else v
                      for k, v in modes.items()}}


if __name__ == "__main__":
    print(json.dumps(main()))
