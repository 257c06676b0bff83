"""Latency model of the classical side of a node, for modelled time.

In ``modelled`` time mode no wall-clock reading enters virtual time: what the CNPU
spends building a subroutine, the Gigabit link between CNPU and QNPU, the classical
messages between CNPUs, the QNPUs' peer protocol and the QNPU's own processing are
*drawn* from this model (its own YAML, :data:`DEFAULT_FILE`, every default with its
source). Each segment is a distribution ``mean ± sd``, clipped below at ``min``.

Draws are indexed, not sequential: the value for the ``i``-th message of stream
``s`` (a program, a link) is a pure function of ``(seed, segment, s, i)`` (BLAKE2b,
then integer arithmetic only: an Irwin-Hall(4) variate scaled to the segment's sd),
so threads and processes can draw in any order, on any machine, and get the same
nanoseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_FILE = Path(__file__).with_name("latency_model.yaml")

#: segments that are one-way delays between components (each must have min > 0: they
#: are the lookahead of the conservative synchronisation)
DELAYS = ("cnpu_to_qnpu", "qnpu_to_cnpu", "cnpu_to_cnpu", "qnpu_to_qnpu")
#: processing segments (min >= 0)
PROCESSING = ("cnpu_subroutine", "cnpu_classical", "qnpu_instruction")

_TWO32 = 1 << 32
#: sqrt(3) as a fraction: an Irwin-Hall(4) sum has sd 1/sqrt(3)
_SQRT3_NUM, _SQRT3_DEN = 1_732_051, 1_000_000


class LatencyModelError(ValueError):
    """A latency-model file or value is invalid; names the file and the key."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One latency segment (ns): ``mean_ns`` ± ``sd_ns``, never below ``min_ns``."""

    mean_ns: int
    sd_ns: int
    min_ns: int

    def draw(self, key: bytes) -> int:
        """The value (ns) for ``key`` (deterministic)."""
        if self.sd_ns == 0:
            return max(self.min_ns, self.mean_ns)
        h = hashlib.blake2b(key, digest_size=16).digest()
        s = sum(int.from_bytes(h[i:i + 4], "big") for i in (0, 4, 8, 12))
        dev = (self.sd_ns * (s - 2 * _TWO32) * _SQRT3_NUM) // (_SQRT3_DEN * _TWO32)
        return max(self.min_ns, self.mean_ns + dev)


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """The classical-side latencies of modelled time (see the module docstring)."""

    cnpu_subroutine: Segment
    cnpu_classical: Segment
    cnpu_to_qnpu: Segment
    qnpu_to_cnpu: Segment
    cnpu_to_cnpu: Segment
    qnpu_to_qnpu: Segment
    qnpu_instruction: Segment
    seed: int = 0
    source: str = "built-in"

    def draw(self, segment: str, stream: str, index: int) -> int:
        """ns of ``segment`` for message ``index`` of ``stream`` (e.g. a program name)."""
        seg: Segment = getattr(self, segment)
        return seg.draw(f"{self.seed}|{segment}|{stream}|{index}".encode())

    def with_seed(self, seed: int) -> "LatencyModel":
        return LatencyModel(**{f.name: getattr(self, f.name) for f in fields(self)
                               if f.name != "seed"} | {"seed": int(seed)})

    def lookahead_ns(self) -> int:
        """The smallest virtual time between an event and any message it causes at
        another component: the smallest one-way delay."""
        return min(getattr(self, d).min_ns for d in DELAYS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (ns), e.g. for the network directory of CNPU processes."""
        out: dict[str, Any] = {"seed": self.seed, "source": self.source}
        for name in DELAYS + PROCESSING:
            s = getattr(self, name)
            out[name] = {"mean_ns": s.mean_ns, "sd_ns": s.sd_ns, "min_ns": s.min_ns}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LatencyModel":
        segs = {n: Segment(int(d[n]["mean_ns"]), int(d[n]["sd_ns"]), int(d[n]["min_ns"]))
                for n in DELAYS + PROCESSING}
        return cls(**segs, seed=int(d.get("seed", 0)), source=str(d.get("source", "dict")))


_UNITS = {"ms": 1_000_000, "us": 1_000, "ns": 1}


def _segment(path: str, name: str, spec: Any) -> Segment:
    if not isinstance(spec, dict):
        raise LatencyModelError(f"{path}: '{name}' must be a mapping with mean/sd/min, got {spec!r}")
    unit = None
    for u in _UNITS:
        if f"mean_{u}" in spec:
            unit = u
    if unit is None:
        raise LatencyModelError(f"{path}: '{name}' needs mean_ms, mean_us or mean_ns")
    known = {f"{k}_{unit}" for k in ("mean", "sd", "min")} | {"source"}
    unknown = set(spec) - known
    if unknown:
        raise LatencyModelError(f"{path}: '{name}' has unknown key(s) {sorted(unknown)} "
                                f"(allowed: {sorted(known)})")
    vals = {}
    for k in ("mean", "sd", "min"):
        v = spec.get(f"{k}_{unit}", 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise LatencyModelError(f"{path}: '{name}.{k}_{unit}' must be a number >= 0, got {v!r}")
        vals[k] = int(round(v * _UNITS[unit]))
    if name in DELAYS and vals["min"] <= 0:
        raise LatencyModelError(f"{path}: '{name}.min_{unit}' must be > 0: one-way delays are "
                                f"the lookahead that lets node clocks advance")
    if vals["min"] > vals["mean"]:
        raise LatencyModelError(f"{path}: '{name}': min {vals['min']} ns exceeds mean "
                                f"{vals['mean']} ns")
    return Segment(vals["mean"], vals["sd"], vals["min"])


def load_latency_model(path: str | Path | None = None, seed: int = 0,
                       overrides: dict[str, Any] | None = None) -> LatencyModel:
    """The shipped model (``path`` None) or a user file layered on it (a user file may
    set any subset of segments); ``overrides``: segment -> mapping, applied last."""
    with open(DEFAULT_FILE, encoding="utf-8") as fp:
        base = yaml.safe_load(fp)
    where = str(DEFAULT_FILE)
    if path is not None:
        where = str(path)
        try:
            with open(path, encoding="utf-8") as fp:
                user = yaml.safe_load(fp) or {}
        except OSError as exc:
            raise LatencyModelError(f"cannot read latency model {path}: {exc}") from exc
        if not isinstance(user, dict):
            raise LatencyModelError(f"{path}: must be a mapping of segments")
        unknown = set(user) - set(DELAYS + PROCESSING)
        if unknown:
            raise LatencyModelError(f"{path}: unknown segment(s) {sorted(unknown)} "
                                    f"(known: {sorted(DELAYS + PROCESSING)})")
        base.update(user)
    if overrides:
        base.update(overrides)
        where += " + overrides"
    segs = {n: _segment(where, n, base.get(n)) for n in DELAYS + PROCESSING}
    return LatencyModel(**segs, seed=int(seed), source=where)
