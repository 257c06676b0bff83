"""Running unmodified netqasm SDK programs: the ``netqasm.sdk.external`` names resolve
to ours, each program's ``main(app_config, **inputs)`` runs in its own thread."""

from __future__ import annotations

import importlib.util
import os
import random
import sys
import tempfile
import threading
import time
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from netqasm.runtime import env
from netqasm.runtime.app_config import AppConfig
from netqasm.sdk.config import LogConfig

from .connection import QNPUConnection
from .directory import NetworkDirectory
from .socket import ClassicalHub, ClassicalSocket, broadcast_channel_class
from .timing import CNPUClocks

EXTERNAL = "netqasm.sdk.external"


class _ProgramRandom(random.Random):
    """``random``'s module functions, drawing from the calling program's own stream
    (seeded by the run's seed and the program's role): netqasm's example apps draw from
    the global ``random`` in several program threads at once, which would make their
    results depend on how the threads interleave. Threads that are not programs share
    one stream seeded by the run's seed."""

    def __init__(self, seed: int) -> None:
        self._base = int(seed)
        self._local = threading.local()
        self._shared = random.Random(self._base)
        super().__init__(self._base)

    def bind(self, role: str) -> None:
        """The calling thread is the program of ``role``."""
        self._local.rng = random.Random(f"{self._base}|{role}")

    def _rng(self) -> random.Random:
        return getattr(self._local, "rng", None) or self._shared

    def random(self) -> float:  # type: ignore[override]
        return self._rng().random()

    def getrandbits(self, k: int) -> int:  # type: ignore[override]
        return self._rng().getrandbits(k)

    def seed(self, a: Any = None, version: int = 2) -> None:  # type: ignore[override]
        if getattr(self, "_local", None) is None:  # Random.__init__
            return super().seed(a, version)
        self._rng().seed(a, version)


_RANDOM_NAMES = ("random", "uniform", "triangular", "randint", "choice", "randrange", "sample",
                 "shuffle", "choices", "normalvariate", "lognormvariate", "expovariate",
                 "vonmisesvariate", "gammavariate", "gauss", "betavariate", "paretovariate",
                 "weibullvariate", "getrandbits", "randbytes", "seed")


class program_random:
    """Context manager: ``random``'s module functions draw per program (see
    :class:`_ProgramRandom`) inside; restored on exit. ``rng.bind(role)`` from a program's
    thread selects its stream."""

    def __init__(self, seed: int) -> None:
        self.rng = _ProgramRandom(seed)

    def __enter__(self) -> "_ProgramRandom":
        self._old = {n: getattr(random, n) for n in _RANDOM_NAMES if hasattr(random, n)}
        for n in self._old:
            setattr(random, n, getattr(self.rng, n))
        return self.rng

    def __exit__(self, *exc: Any) -> None:
        for n, f in self._old.items():
            setattr(random, n, f)


def make_external_module(directory: NetworkDirectory, hubs: dict[str, ClassicalHub],
                         timeout_s: float = 120.0, trace: Any = None,
                         clocks: CNPUClocks | None = None) -> types.ModuleType:
    """A stand-in for ``netqasm.sdk.external`` bound to this network (``trace``: where
    connections record their CNPU-side events, optional; ``clocks``: the programs'
    virtual clocks in modelled time)."""

    for name, hub in hubs.items():  # the hubs prove identities with this directory's keys
        if hub.directory is None:
            hub.bind(directory, name)

    def join(app_name: str) -> None:
        """Modelled time: a program that joins a running network (``time['start_ns']`` of
        the directory) starts its clock there, not at 0 -- its first message must not
        arrive before what the shared clock has already let happen."""
        start_ns = directory.time.get("start_ns") if clocks is not None else None
        if isinstance(start_ns, int) and start_ns > 0:
            pc = clocks.of(app_name)
            with pc.cond:
                pc.t_ns = max(pc.t_ns, start_ns)

    class NetQASMConnection(QNPUConnection):
        def __init__(self, app_name: str, *args: Any, **kwargs: Any) -> None:
            join(app_name)
            kwargs.setdefault("directory", directory)
            kwargs.setdefault("timeout_s", timeout_s)
            kwargs.setdefault("trace", trace)
            kwargs.setdefault("clocks", clocks)
            super().__init__(app_name, *args, **kwargs)

    class Socket(ClassicalSocket):
        def __init__(self, app_name: str, remote_app_name: str, *args: Any, **kwargs: Any) -> None:
            hub = hubs[directory.node_of_role(app_name).name]
            join(app_name)
            super().__init__(app_name, remote_app_name, *args, directory=directory, hub=hub,
                             default_timeout=timeout_s, trace=trace, **kwargs)

    def get_qubit_state(qubit: Any, reduced_dm: bool = True) -> np.ndarray:
        """Density matrix of ``qubit`` (its whole entangled group if not ``reduced_dm``).
        Raises ``NotSimulatedError`` on a node driving real hardware."""
        conn = qubit._conn
        if not isinstance(conn, QNPUConnection):
            raise TypeError("get_qubit_state needs a qubit of a qnodeos-hw connection")
        return conn.qubit_state([qubit.qubit_id], full=not reduced_dm)

    def _unavailable(*_a: Any, **_k: Any) -> None:
        raise NotImplementedError("use `qnodeos-hw run APP_DIR` to run applications")

    mod = types.ModuleType(EXTERNAL, "qnodeos-hw implementations of netqasm's external names")
    mod.NetQASMConnection = NetQASMConnection  # type: ignore[attr-defined]
    mod.Socket = Socket  # type: ignore[attr-defined]
    mod.BroadcastChannel = broadcast_channel_class(Socket)  # type: ignore[attr-defined]
    mod.get_qubit_state = get_qubit_state  # type: ignore[attr-defined]
    mod.simulate_application = _unavailable  # type: ignore[attr-defined]
    mod.run_application = _unavailable  # type: ignore[attr-defined]
    return mod


class external_names:
    """Context manager: ``netqasm.sdk.external`` is ``module`` inside (the previous module,
    if any, is restored on exit)."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module
        self._old: types.ModuleType | None = None

    def __enter__(self) -> types.ModuleType:
        self._old = sys.modules.get(EXTERNAL)
        sys.modules[EXTERNAL] = self.module
        import netqasm.sdk as sdk
        sdk.external = self.module  # type: ignore[attr-defined]
        return self.module

    def __exit__(self, *exc: Any) -> None:
        import netqasm.sdk as sdk
        if self._old is None:
            sys.modules.pop(EXTERNAL, None)
            if hasattr(sdk, "external"):
                delattr(sdk, "external")
        else:
            sys.modules[EXTERNAL] = self._old
            sdk.external = self._old  # type: ignore[attr-defined]


@dataclass
class AppDir:
    """A netqasm application directory: ``programs`` role -> main, ``inputs`` role -> kwargs,
    ``roles`` role -> node name."""

    path: str
    programs: dict[str, Callable]
    inputs: dict[str, dict]
    roles: dict[str, str] = field(default_factory=dict)


def load_app_dir(app_dir: str) -> AppDir:
    """Import the ``app_<role>.py`` files (under unique module names, with the app dir on
    ``sys.path`` while importing) and read ``<role>.yaml`` inputs and ``roles.yaml``.
    ``netqasm.sdk.external`` must already be ours."""
    app_dir = os.path.abspath(os.path.expanduser(app_dir))
    files = env.load_app_files(app_dir)
    before = set(sys.modules)
    sys.path.insert(0, app_dir)
    programs: dict[str, Callable] = {}
    inputs: dict[str, dict] = {}
    try:
        for role, fname in sorted(files.items()):
            modname = f"qnodeos_app_{abs(hash(app_dir)):x}_{role}"
            spec = importlib.util.spec_from_file_location(modname, os.path.join(app_dir, fname))
            mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            spec.loader.exec_module(mod)  # type: ignore[union-attr]
            programs[role] = getattr(mod, "main")
            inputs[role] = env.load_app_config_file(app_dir, role) or {}
    finally:
        sys.path.remove(app_dir)
        for name in set(sys.modules) - before:  # helper modules of this app ("src", ...)
            f = getattr(sys.modules[name], "__file__", None) or ""
            if f.startswith(app_dir):
                del sys.modules[name]
    roles = env.load_roles_config(os.path.join(app_dir, "roles.yaml")) or {}
    return AppDir(app_dir, programs, inputs, dict(roles))


@dataclass
class ProgramOutcome:
    role: str
    result: Any = None
    error: str | None = None


#: wall seconds the other programs get to end after one program failed (an app that
#: fails ends within about a second: issue 16)
PARTNER_GRACE_S = 0.5


def run_programs(app: AppDir, inputs: dict[str, dict] | None = None,
                 timeout_s: float = 300.0, log_dir: str | None = None,
                 clocks: CNPUClocks | None = None,
                 rng: "_ProgramRandom | None" = None) -> dict[str, ProgramOutcome]:
    """Run every program's ``main(app_config=..., **inputs)`` in its own thread; the apps'
    own log files go to ``log_dir`` (default: a new temporary directory). ``clocks``
    (modelled time): each program's clock is told when it ends."""
    out = {role: ProgramOutcome(role) for role in app.programs}
    log_dir = log_dir or tempfile.mkdtemp(prefix="qnodeos-hw-applog-")
    threads = []
    for role, main in app.programs.items():
        kwargs = dict(app.inputs.get(role, {}))
        kwargs.update((inputs or {}).get(role, {}))
        cfg = AppConfig(app_name=role, node_name=app.roles.get(role, role), main_func=main,
                        log_config=LogConfig(app_dir=app.path, log_dir=log_dir,
                                             log_subroutines_dir=log_dir, comm_log_dir=log_dir),
                        inputs=kwargs)

        def target(role: str = role, main: Callable = main, cfg: AppConfig = cfg,
                   kwargs: dict = kwargs) -> None:
            try:
                if rng is not None:
                    rng.bind(role)
                out[role].result = main(app_config=cfg, **kwargs)
            except BaseException as exc:  # reported per program
                out[role].error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            finally:
                if clocks is not None:
                    clocks.finish(role)

        t = threading.Thread(target=target, name=f"cnpu-program-{role}", daemon=True)
        threads.append((role, t))
        t.start()
    # wait for all; once a program has failed, the others get PARTNER_GRACE_S (wall) to end
    # by themselves (e.g. with the error the failure causes them), then they are reported
    # as stopped by the failed partner instead of waiting out timeout_s
    deadline = time.monotonic() + timeout_s
    first_failure: tuple[str, float] | None = None
    while any(t.is_alive() for _, t in threads):
        now = time.monotonic()
        if first_failure is None:
            failed = [r for r, t in threads if not t.is_alive() and out[r].error]
            if failed:
                first_failure = (failed[0], now)
        if now >= deadline or (first_failure and now - first_failure[1] >= PARTNER_GRACE_S):
            break
        for _, t in threads:
            if t.is_alive():
                t.join(0.05)
                break
    for role, t in threads:
        if t.is_alive():
            if first_failure is not None and time.monotonic() < deadline:
                why = out[first_failure[0]].error.splitlines()[0]
                out[role].error = (f"PartnerFailedError: program '{role}' stopped waiting: "
                                   f"program '{first_failure[0]}' failed ({why})")
            else:
                out[role].error = f"TimeoutError: program '{role}' still running after {timeout_s} s"
    return out
