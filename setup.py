"""Build hook: compile the simulated lab's hot path with mypyc.

The modules listed in ``qnodeos_hw/build_info.py`` (``COMPILED_SOURCES``) are what every
simulated QDevice instruction runs through (the 4-byte message codec, the tick link, the
simulated ADwin and HDAWG, the qubit physics). mypyc compiles them, unchanged, to C extensions next to their
sources; the Python files stay the reference and run as they are wherever the
extensions are absent. ``QNODEOS_HW_PURE_PYTHON=1`` skips compilation; so does a
machine without mypyc or a C compiler (the install then goes on in pure Python).
Everything else about the package is in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import runpy
import sys

from setuptools import setup

#: the hot-path modules (one list, in qnodeos_hw/build_info.py; read without importing the
#: package, whose dependencies may not be installed yet)
COMPILED = list(runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "qnodeos_hw", "build_info.py"))["COMPILED_SOURCES"])


def _ext_modules() -> list:
    if os.environ.get("QNODEOS_HW_PURE_PYTHON", "") not in ("", "0"):
        print("[qnodeos-hw] QNODEOS_HW_PURE_PYTHON set: installing pure Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
        exts = mypycify(["--ignore-missing-imports", *COMPILED], opt_level="3")
    except (Exception, SystemExit) as exc:  # no mypyc, or the modules do not type-check
        print(f"[qnodeos-hw] mypyc unavailable ({type(exc).__name__}: {exc}); installing pure "
              "Python", file=sys.stderr)
        return []
    for ext in exts:  # a machine without a C compiler still gets a working install
        ext.optional = True
    return exts


setup(ext_modules=_ext_modules())
