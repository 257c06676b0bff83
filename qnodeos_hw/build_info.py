"""Which modules of the simulated lab's hot path run compiled, and whether a compiled
extension is older than its source.

``setup.py`` compiles :data:`COMPILED_SOURCES` with mypyc (see its docstring); the
Python files stay the reference. This module uses only the standard library, so
``setup.py`` reads the list from here before the package is installed.
"""

from __future__ import annotations

import importlib.util
import os

#: compiled together (calls between them are native calls), in dependency order
COMPILED_SOURCES = (
    "qnodeos_hw/qdevice/clock.py",
    "qnodeos_hw/qdevice/message.py",
    "qnodeos_hw/qdevice/ticklink.py",
    "qnodeos_hw/simulators/physics/randomness.py",
    "qnodeos_hw/simulators/physics/state.py",
    "qnodeos_hw/simulators/physics/node_base.py",
    "qnodeos_hw/simulators/physics/nv.py",
    "qnodeos_hw/simulators/physics/ion.py",
    "qnodeos_hw/simulators/hdawg_sim.py",
    "qnodeos_hw/simulators/adwin_sim.py",
)


def module_name(source: str) -> str:
    """``qnodeos_hw/qdevice/clock.py`` -> ``qnodeos_hw.qdevice.clock``."""
    return source[:-3].replace("/", ".")


def compiled_status(sources: tuple[str, ...] = COMPILED_SOURCES) -> dict[str, str]:
    """Module name -> ``"compiled"`` (a mypyc extension is what imports), ``"python"``
    (the source is what imports) or ``"stale"`` (an extension older than its ``.py``
    next to it: the source was edited since the last build; re-install to rebuild)."""
    out = {}
    for src in sources:
        name = module_name(src)
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith((".so", ".pyd")):
            out[name] = "python"
            continue
        py = os.path.join(os.path.dirname(origin), name.rsplit(".", 1)[1] + ".py")
        stale = os.path.exists(py) and os.path.getmtime(py) > os.path.getmtime(origin)
        out[name] = "stale" if stale else "compiled"
    return out
