"""CNPU processes forked from the pre-loaded zygote behave as fresh interpreters do."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from qnodeos_hw.runner import cnpu_launcher
from qnodeos_hw.runner.cnpu_launcher import LAUNCH_ENV, start_cnpu


def test_a_forked_cnpu_is_its_own_process_with_its_own_output_and_exit_status(tmp_path):
    p = start_cnpu(["--programs", "{}"])
    out, err = p.communicate(timeout=30)
    assert p.returncode == 2 and "usage" in err and "required: --directory" in err
    assert p.pid not in (os.getpid(), cnpu_launcher._launcher._proc.pid)
    # a directory that does not exist: the program's own error, status 1, on its stderr
    p = start_cnpu(["--directory", str(tmp_path / "missing.json"), "--programs", "{}"])
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "missing.json" in err


def test_a_forked_cnpu_runs_in_the_callers_directory_and_can_be_killed(tmp_path, monkeypatch):
    # --directory FIFO (relative: found only from the caller's working directory): the
    # child blocks opening it, so it is alive until killed
    os.mkfifo(tmp_path / "directory")
    monkeypatch.chdir(tmp_path)
    p = start_cnpu(["--directory", "directory", "--programs", "{}"])
    time.sleep(0.3)
    assert p.poll() is None
    p.kill()
    assert p.wait(timeout=10) == -9
    q = start_cnpu(["--directory", "directory", "--programs", "{}"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            q.wait(timeout=0.2)
    finally:
        q.kill()
    assert q.wait(timeout=10) == -9


def test_zygote_and_fresh_interpreter_give_the_same_bytes(monkeypatch):
    """DQC (modelled time, k=6): the results and the modelled trace are the same whether
    the CNPUs are forked from the zygote or started as fresh interpreters."""
    from qnodeos_hw.experiments import dqc
    from qnodeos_hw.protocol.trace import modelled_bytes

    def run():
        cfg = dqc.DQCConfig(k=6, seed=3)
        from qnodeos_hw.runner.network import NVNetworkFactory, run_mains_in_processes
        settings = dqc.nv_network_settings(cfg.bin_ns, 3, 0.0, False)
        res = run_mains_in_processes(
            {"client": f"{dqc.APPS}.dqc_client:main", "server": f"{dqc.APPS}.dqc_server:main"},
            NVNetworkFactory(seed=3, num_qubits=1), settings,
            inputs={"client": {"alpha": 2, "theta": 1, "reps": 6},
                    "server": {"bases": dqc.bases_for(6)}})
        assert res.ok, {r: o.error for r, o in res.outcomes.items() if o.error}
        return res.results, modelled_bytes(res.trace.events)

    forked = run()
    monkeypatch.setenv(LAUNCH_ENV, "exec")
    fresh = run()
    assert forked == fresh


def test_the_zygote_ends_with_its_runner(tmp_path):
    """A runner that goes away (here: its process exits while a CNPU it started still
    blocks) leaves no zygote behind."""
    import sys
    os.mkfifo(tmp_path / "directory")
    code = ("from qnodeos_hw.runner import cnpu_launcher as c\n"
            f"p = c.start_cnpu(['--directory', {str(tmp_path / 'directory')!r}, '--programs', '{{}}'])\n"
            "print(c._launcher._proc.pid, p.pid, flush=True)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    zygote, child = int(out[0]), int(out[1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{zygote}"):
        with open(f"/proc/{zygote}/stat") as fp:
            if fp.read().split()[2] == "Z":
                break
        time.sleep(0.05)
    alive = os.path.exists(f"/proc/{zygote}") and open(f"/proc/{zygote}/stat").read().split()[2] != "Z"
    os.kill(child, 9)  # the blocked CNPU itself: ours to clean up
    assert not alive
