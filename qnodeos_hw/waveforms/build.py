"""``qnodeos-hw waveforms build --platform nv [--calibration FILE] --out DIR``.

Builds the NV waveform table, the XY8 DD copies and the HDAWG program, compiles
it for HDAWG8 and HDAWG4 with the vendor compiler, and writes into ``DIR``:

* ``table_index.json`` + ``table_samples.npz``: the waveform table (see
  :meth:`~qnodeos_hw.waveforms.table.WaveformTable.save`)
* ``dd_copies.npz``: the 2 x 16 shifted DD pulse copies (``i``, ``q``: axis x shift x sample)
* ``command_table.json``, ``program.seqc``, ``program_hdawg8.elf``
* ``report.json``: entries, samples, memory fraction, build and compile seconds
* ``waveforms.png``: a few entries and an entry's first XY8 block
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .calibration import CalibrationError, load_calibration
from .table import build_table


def build_nv(calibration: str | Path | None, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Build and write everything (see module docstring); returns the report dict."""
    from ..sequences.hdawg_program import DEVTYPES, build_hdawg_program, compile_program

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=6, desc="waveforms build", unit="step", disable=not progress)
    t0 = time.perf_counter()
    cal = load_calibration(calibration)
    table = build_table(cal)
    t_table = time.perf_counter()
    steps.update(1)
    program = build_hdawg_program(table, cal, devtype="HDAWG8", n_channels=2)
    t_prog = time.perf_counter()
    steps.update(1)
    compile_s: dict[str, float] = {}
    infos: dict[str, dict] = {}
    elf = b""
    for dev in DEVTYPES:
        tc = time.perf_counter()
        e, info = compile_program(program, dev)
        compile_s[dev] = time.perf_counter() - tc
        infos[dev] = info
        if dev == "HDAWG8":
            elf = e
    steps.update(1)
    build_s = (t_prog - t0) + compile_s["HDAWG8"]

    table.save(out)
    copies = program.dd.copies
    np.savez(out / "dd_copies.npz", i=copies.i, q=copies.q, pulse_samples=copies.pulse_samples)
    (out / "command_table.json").write_text(program.command_table_json())
    (out / "program.seqc").write_text(program.seqc)
    (out / "program_hdawg8.elf").write_bytes(elf)
    steps.update(1)

    kinds: dict[str, int] = {}
    for e in table:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    from ..sequences.dd import default_pulse_count
    report = {
        "platform": "nv",
        "calibration": cal.source,
        "calibration_hash": table.calibration_hash,
        "spec": table.spec_name,
        "entries": len(table),
        "entries_by_kind": kinds,
        "samples": {"table_op_samples": table.total_op_samples(),
                    "waveform_samples_per_channel": program.memory.samples_per_channel,
                    "dd_copy_window_samples": copies.window_samples,
                    "dd_tau_samples": cal.dd_tau_samples,
                    "xy8_block_samples": program.dd.block_samples},
        "dd_pulses_in_13ms": default_pulse_count(cal),
        "memory_fraction": program.memory.memory_fraction,
        "memory": program.memory.as_dict(),
        "fpga_cache_fraction": {d: infos[d]["wavemem"]["fpgaMemoryUsed"] for d in DEVTYPES},
        "build_s": build_s,
        "table_s": t_table - t0,
        "program_s": t_prog - t_table,
        "compile_s": compile_s,
        "compiler_messages": {d: infos[d]["messages"] for d in DEVTYPES},
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    steps.update(1)
    plot_entries(table, program, out / "waveforms.png")
    steps.update(1)
    steps.close()
    return report


def plot_entries(table, program, path: Path) -> None:
    """PNG: I/Q of a few entries' operations, and one entry with its first XY8 block."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..sequences.dd import render_samples

    fs = table.sample_rate_hz
    names = ["rot_x_n1_d1", "rot_y_n1_d0", "rot_z_n1_d1", "hadamard", "ent_keep"]
    names = [n for n in names if n in {e.name for e in table}]
    fig, axes = plt.subplots(len(names) + 1, 1, figsize=(9, 2.0 * (len(names) + 1)))
    for ax, name in zip(axes, names):
        e = table.by_name(name)
        n = min(e.op_samples, int(round(e.pulse_duration_s * fs)) + 64)
        t = np.arange(n) / fs * 1e9
        ax.plot(t, e.samples_i[:n], label="I")
        ax.plot(t, e.samples_q[:n], label="Q")
        ax.set_title(f"[{e.index}] {e.name}: {e.op_samples} samples ({e.op_duration_ns:.1f} ns)", fontsize=9)
        ax.set_ylabel("amplitude (FS)")
        ax.legend(fontsize=7, loc="upper right")
    axes[len(names) - 1].set_xlabel("time (ns)")
    e = table.by_name(names[0])
    pl = program.entry_playlists[e.index]
    si, sq = render_samples([pl], table, program.dd.copies)
    t = np.arange(si.size) / fs * 1e6
    ax = axes[-1]
    ax.plot(t, si, lw=0.6, label="I")
    ax.plot(t, sq, lw=0.6, label="Q")
    for c in pl.pulse_centres:
        ax.axvline(c / fs * 1e6, color="grey", lw=0.4, ls=":")
    ax.set_title(f"entry {e.name} + first XY8 block: {pl.length} samples ({pl.length / fs * 1e6:.2f} us), "
                 f"DD resumes with shift {pl.next_shift}", fontsize=9)
    ax.set_xlabel("time (us)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``qnodeos-hw waveforms build``."""
    if args.platform != "nv":
        print(f"qnodeos-hw waveforms build: unknown platform {args.platform!r}", file=sys.stderr)
        return 2
    from ..logs import progress_enabled
    try:
        report = build_nv(args.calibration, args.out, progress=progress_enabled())
    except CalibrationError as exc:
        print(f"qnodeos-hw waveforms build: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: report[k] for k in ("entries", "memory_fraction", "build_s", "compile_s")}))
    print(f"wrote {args.out}")
    return 0
