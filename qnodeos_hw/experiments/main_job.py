"""The main job behind ``./run demo``: the best end-to-end run that exists."""

from __future__ import annotations

from types import SimpleNamespace

from . import tick_demo


def run(args) -> int:
    print("== physical instructions through the tick link (NV, 100 kHz)")
    tick_demo.run(SimpleNamespace(platform="nv", seed=1))
    print("\n== physical instructions through the tick link (ion, 50 kHz)")
    tick_demo.run(SimpleNamespace(platform="ion", seed=1))
    return 0
