"""``qnodeos-hw sequences build --platform ion --out DIR``: the 7 ion TTL sequences.

Writes to ``DIR``:

* ``slot<k>_<name>.ttl`` -- the bridge upload payload of slot ``k`` (format in
  :mod:`qnodeos_hw.sequences.ion_ttl`);
* ``ion_sequences.json`` -- summary: clock, calibration, and per slot the
  instruction, duration (ns), edges (ns, channel names), per-channel high time,
  payload size and CRC-32;
* ``ion_sequences.png`` -- timing diagram, one panel per sequence.
"""

from __future__ import annotations

import json
from pathlib import Path

from .ion_ttl import (CLOCK_PERIOD_NS, CONFLICTS, FPGA_CLOCK_HZ, MIN_PULSE_NS, Channel,
                      IonCalibration, IonInstruction, TTLSequence, build_all, crc32,
                      encode_sequence, load_calibration)


def summary(cal: IonCalibration, seqs: dict[IonInstruction, TTLSequence]) -> dict:
    """JSON-ready description of the build."""
    slots = []
    for k, s in seqs.items():
        payload = encode_sequence(s)
        slots.append({
            "slot": int(k), "instruction": k.label, "duration_ns": s.duration_ns,
            "edges": [{"t_ns": e.t_ns, "high": [c.label for c in Channel if e.mask & c.bit]}
                      for e in s.edges],
            "high_ns": {c.label: s.high_time_ns(c) for c in Channel if s.high_time_ns(c)},
            "payload_bytes": len(payload), "crc32": f"0x{crc32(payload):08x}",
            "file": f"slot{int(k)}_{k.label}.ttl",
        })
    return {"platform": "ion", "clock_hz": FPGA_CLOCK_HZ, "clock_period_ns": CLOCK_PERIOD_NS,
            "min_pulse_ns": MIN_PULSE_NS, "channels": {c.label: c.value for c in Channel},
            "conflicts": [[a.label, b.label] for a, b in CONFLICTS],
            "calibration": cal.as_dict(), "sequences": slots}


def plot_timing(seqs: dict[IonInstruction, TTLSequence], path: Path) -> None:
    """Timing diagram (PNG): one panel per sequence, one trace per channel, time in us."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(seqs), 1, figsize=(9, 1.6 * len(seqs) + 0.6))
    chans = list(Channel)
    for ax, (k, s) in zip(axes, seqs.items()):
        t_end = s.duration_ns / 1e3
        for row, ch in enumerate(chans):
            base = (len(chans) - 1 - row) * 1.5
            ts, ys = [0.0], [0]
            for e in s.edges:
                ts.append(e.t_ns / 1e3)
                ys.append(1 if e.mask & ch.bit else 0)
            ts.append(t_end)
            ys.append(ys[-1])
            levels = [base + 0.9 * y for y in ys]
            ax.step(ts, levels, where="post", lw=1.0, color=f"C{row}")
            ax.fill_between(ts, base, levels, step="post", color=f"C{row}", alpha=0.35, lw=0)
        ax.set_yticks([(len(chans) - 1 - r) * 1.5 + 0.45 for r in range(len(chans))])
        ax.set_ylim(-0.3, len(chans) * 1.5)
        ax.set_yticklabels([c.label for c in chans], fontsize=7)
        ax.set_xlim(0, t_end)
        ax.set_title(f"slot {int(k)}: {k.label}  ({s.duration_ns / 1e3:g} us)", fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    axes[-1].set_xlabel("time (us)")
    fig.suptitle(f"Ion TTL sequences ({FPGA_CLOCK_HZ / 1e6:g} MHz sequencer clock)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build(out: str | Path, calibration: str | Path | None = None) -> dict:
    """Build, validate and write everything; return the summary."""
    cal = load_calibration(calibration)
    seqs = build_all(cal)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for k, s in seqs.items():
        (out / f"slot{int(k)}_{k.label}.ttl").write_bytes(encode_sequence(s))
    info = summary(cal, seqs)
    (out / "ion_sequences.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    plot_timing(seqs, out / "ion_sequences.png")
    return info


def run_cli(args) -> int:
    info = build(args.out, args.calibration)
    print(f"{'slot':>4}  {'instruction':<12} {'duration (us)':>13} {'edges':>5}  crc32")
    for s in info["sequences"]:
        print(f"{s['slot']:>4}  {s['instruction']:<12} {s['duration_ns'] / 1e3:>13g} "
              f"{len(s['edges']):>5}  {s['crc32']}")
    print(f"wrote {len(info['sequences'])} sequences, ion_sequences.json and ion_sequences.png to {args.out}")
    return 0
