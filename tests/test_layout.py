"""The layout of issue 14, point 7: the CNPU and the QNPU are peers that share only the
wire protocol (and the time base); the network runner sits above both."""

import ast
from pathlib import Path

import qnodeos_hw

ROOT = Path(qnodeos_hw.__file__).parent


def _imports(package: str) -> dict[str, set[str]]:
    """module file -> the qnodeos_hw packages it imports (absolute or relative)."""
    out = {}
    for f in (ROOT / package).glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level == 2:  # from ..x import
                    names.add(mod.split(".")[0] if mod else "")
                elif node.level == 0 and mod.startswith("qnodeos_hw."):
                    names.add(mod.split(".")[1])
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[1] for a in node.names
                          if a.name.startswith("qnodeos_hw.")}
        out[f.name] = names
    return out


def test_cnpu_imports_only_the_protocol_and_the_time_base():
    for name, pkgs in _imports("cnpu").items():
        assert pkgs <= {"protocol", "timebase"}, f"cnpu/{name} imports {sorted(pkgs)}"


def test_qnpu_never_imports_the_cnpu_or_the_runner():
    for name, pkgs in _imports("qnpu").items():
        assert not pkgs & {"cnpu", "runner"}, f"qnpu/{name} imports {sorted(pkgs)}"


def test_protocol_and_time_base_import_nothing_of_the_stack():
    for pkg in ("protocol", "timebase"):
        for name, pkgs in _imports(pkg).items():
            assert pkgs <= {"protocol", "timebase"} - {""}, f"{pkg}/{name} imports {sorted(pkgs)}"


def test_the_runner_builds_the_nodes():
    pkgs = set().union(*_imports("runner").values())
    assert {"qnpu", "cnpu"} <= pkgs
