"""Start CNPU processes from a pre-loaded *zygote* instead of a fresh interpreter each.

A CNPU process (:mod:`qnodeos_hw.cnpu.program`) spends about half a second of CPU
importing netqasm, numpy and scipy before it runs a line of its program -- on a two-core
machine that is a tenth of a paper-size DQC run, and most of a short test's. The
zygote is one ``python -m qnodeos_hw.runner.cnpu_launcher`` process per runner process
that imports the CNPU's modules once and then, per request, forks a child that runs
``qnodeos_hw.cnpu.program.main(argv)``: still one OS process per CNPU, with its own
interpreter state, stdout/stderr (files), environment and working directory as asked,
stdin ``/dev/null``; only the import work is shared.

Requests and answers are JSON lines on the zygote's stdin/stdout (one reader, this
module): ``{"id", "argv", "env", "cwd", "out", "err"}`` -> ``{"id", "pid"}`` (or
``{"id", "error"}``) and, when the child ends, ``{"pid", "returncode"}`` (negative: the
signal that ended it, as :class:`subprocess.Popen` reports it). The zygote is
single-threaded (it forks from a process with no other threads), exits when its stdin
closes (its runner went away; children still running are then reaped by init), and runs
only the CNPU program: a request names nothing
but that program's arguments.

:func:`start_cnpu` returns a :class:`subprocess.Popen`-like handle (``pid``, ``poll``,
``wait``, ``communicate``, ``terminate``, ``kill``, ``returncode``). Set
``QNODEOS_HW_CNPU_LAUNCH=exec`` to start every CNPU as a fresh interpreter instead
(``python -m qnodeos_hw.cnpu.program``), e.g. to debug an import-time problem.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

#: environment variable: ``exec`` starts CNPUs as fresh interpreters (no zygote)
LAUNCH_ENV = "QNODEOS_HW_CNPU_LAUNCH"


class LaunchError(RuntimeError):
    """The zygote could not start a CNPU process (names why)."""


class ZygoteProcess:
    """A CNPU process forked by the zygote, with :class:`subprocess.Popen`'s interface
    for what the runner uses. stdout/stderr go to files, read by :meth:`communicate`."""

    def __init__(self, launcher: "_Launcher", pid: int, out: str, err: str) -> None:
        self._launcher, self.pid, self._out, self._err = launcher, pid, out, err
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _set_returncode(self, rc: int) -> None:
        self.returncode = rc
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"CNPU process {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        texts = []
        for path in (self._out, self._err):
            try:
                with open(path, encoding="utf-8", errors="replace") as fp:
                    texts.append(fp.read())
                os.unlink(path)
            except OSError:
                texts.append("")
        return texts[0], texts[1]

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Launcher:
    """This process' connection to its zygote (one per process: a forked child makes
    its own)."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self._proc = subprocess.Popen([sys.executable, "-m", "qnodeos_hw.runner.cnpu_launcher"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)
        self._lock = threading.Lock()
        self._next = 0
        self._pending: dict[int, dict] = {}
        self._answers: dict[int, threading.Event] = {}
        self._children: dict[int, ZygoteProcess] = {}
        self._early: dict[int, int] = {}  # returncodes that came before their pid's handle
        self.dead: str | None = None
        threading.Thread(target=self._read, daemon=True, name="cnpu-zygote").start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                if "id" in msg:
                    i = int(msg["id"])
                    self._pending[i] = msg
                    ev = self._answers.get(i)
                    if ev is not None:
                        ev.set()
                elif "pid" in msg:
                    pid, rc = int(msg["pid"]), int(msg["returncode"])
                    child = self._children.pop(pid, None)
                    if child is not None:
                        child._set_returncode(rc)
                    else:
                        self._early[pid] = rc
        err = self._proc.stderr.read() if self._proc.stderr is not None else ""
        with self._lock:
            self.dead = f"the CNPU zygote ended: {err.strip()[-500:] or 'no message'}"
            for ev in self._answers.values():
                ev.set()
            for child in self._children.values():  # nobody is left to tell their end
                child._set_returncode(-signal.SIGKILL)
            self._children.clear()

    def start(self, argv: list[str], timeout_s: float = 30.0) -> ZygoteProcess:
        fd, out = tempfile.mkstemp(prefix="cnpu-out-")
        os.close(fd)
        fd, err = tempfile.mkstemp(prefix="cnpu-err-")
        os.close(fd)
        with self._lock:
            if self.dead:
                raise LaunchError(self.dead)
            i = self._next
            self._next += 1
            ev = self._answers[i] = threading.Event()
            req = {"id": i, "argv": argv, "env": dict(os.environ), "cwd": os.getcwd(),
                   "out": out, "err": err}
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps(req) + "\n")
                self._proc.stdin.flush()
            except OSError as exc:
                raise LaunchError(f"the CNPU zygote does not take requests: {exc}") from exc
        if not ev.wait(timeout_s):
            raise LaunchError(f"the CNPU zygote did not answer within {timeout_s} s")
        with self._lock:
            del self._answers[i]
            msg = self._pending.pop(i, None)
            if msg is None:
                raise LaunchError(self.dead or "the CNPU zygote gave no answer")
            if "error" in msg:
                raise LaunchError(f"the CNPU zygote could not fork: {msg['error']}")
            child = ZygoteProcess(self, int(msg["pid"]), out, err)
            rc = self._early.pop(child.pid, None)
            if rc is not None:
                child._set_returncode(rc)
            else:
                self._children[child.pid] = child
        return child


_launcher: _Launcher | None = None
_launcher_lock = threading.Lock()


def start_cnpu(argv: list[str]) -> Any:
    """Start ``qnodeos_hw.cnpu.program`` with ``argv`` (its command-line arguments) as its
    own OS process; a Popen-like handle (see the module docstring)."""
    global _launcher
    if os.environ.get(LAUNCH_ENV) == "exec":
        return subprocess.Popen([sys.executable, "-m", "qnodeos_hw.cnpu.program", *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with _launcher_lock:
        if _launcher is None or _launcher.owner != os.getpid() or _launcher.dead:
            _launcher = _Launcher()
        launcher = _launcher
    return launcher.start(argv)


# -- the zygote ------------------------------------------------------------------------------
def _child(req: dict) -> None:
    """In the forked child: become the CNPU process of ``req`` (never returns)."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        out = os.open(req["out"], os.O_WRONLY | os.O_TRUNC)
        err = os.open(req["err"], os.O_WRONLY | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (devnull, out, err):
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False, buffering=1)
        sys.stderr = open(2, "w", closefd=False, buffering=1)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in req["env"].items()})
        os.chdir(req["cwd"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from ..cnpu import program
        argv = [str(a) for a in req["argv"]]
        sys.argv = ["qnodeos_hw.cnpu.program", *argv]
        try:
            code = int(program.main(argv) or 0)
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = int(exc.code or 0)
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # as the interpreter would: the traceback on stderr
            import traceback
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _zygote() -> int:
    """The zygote's loop: import once, fork per request, report children's ends."""
    import qnodeos_hw.cnpu.program  # noqa: F401 -- the work the children share
    import qnodeos_hw.cnpu.connection  # noqa: F401
    import qnodeos_hw.timebase  # noqa: F401
    import qnodeos_hw.protocol.trace  # noqa: F401
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner stops it by closing stdin
    children: set[int] = set()
    stdin = sys.stdin.buffer
    buf = b""
    open_input = True
    while open_input:  # the runner gone, nobody wants the children's ends: init reaps them
        ready = select.select([stdin], [], [], 0.01)[0]
        if ready:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                open_input = False
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    req = json.loads(line)
                    i = int(req["id"])
                except (ValueError, KeyError, TypeError):
                    continue
                try:
                    sys.stdout.flush()
                    pid = os.fork()
                except OSError as exc:
                    print(json.dumps({"id": i, "error": str(exc)}), flush=True)
                    continue
                if pid == 0:
                    _child(req)
                children.add(pid)
                print(json.dumps({"id": i, "pid": pid}), flush=True)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            children.discard(pid)
            rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            try:
                print(json.dumps({"pid": pid, "returncode": rc}), flush=True)
            except OSError:
                pass  # the runner went away: its children finish on their own
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_zygote())
