"""The compiled-extension bookkeeping: what imports, and when an extension is stale."""

import importlib
import os
import sysconfig

from qnodeos_hw.build_info import COMPILED_SOURCES, compiled_status, module_name


def _touch(path, t):
    os.utime(path, (t, t))


def test_status_follows_what_imports_and_the_file_times(tmp_path, monkeypatch):
    pkg = tmp_path / "bipkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    py = pkg / "hot.py"
    py.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    src = ("bipkg/hot.py",)
    assert compiled_status(src) == {"bipkg.hot": "python"}
    ext = pkg / ("hot" + sysconfig.get_config_var("EXT_SUFFIX"))
    ext.write_bytes(b"")  # found (not loaded) by find_spec: an extension shadows the .py
    _touch(py, 1_000_000)
    _touch(ext, 2_000_000)
    importlib.invalidate_caches()
    assert compiled_status(src) == {"bipkg.hot": "compiled"}
    _touch(py, 3_000_000)  # the source was edited after the build
    assert compiled_status(src) == {"bipkg.hot": "stale"}


def test_every_listed_source_exists_and_names_a_module():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for src in COMPILED_SOURCES:
        assert os.path.isfile(os.path.join(root, src)), src
        assert importlib.util.find_spec(module_name(src)) is not None

