"""Shared test settings."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_sessionstart(session):
    """Refuse to test a compiled extension built from an older source (an edited module
    whose mypyc build was not redone would be tested as it was, not as it reads)."""
    from qnodeos_hw.build_info import compiled_status

    stale = [m for m, s in compiled_status().items() if s == "stale"]
    if stale:
        raise pytest.UsageError(
            f"compiled extensions older than their sources: {', '.join(stale)}; run "
            "./run test (it rebuilds) or pip install -e . again")


def write_epr_app(app, pairs: int = 2) -> str:
    """A two-node netqasm app directory at ``app``: alice creates ``pairs`` EPR pairs with
    bob, both measure each half at once (one qubit per node); results ``{'m': [...]}``."""
    app.mkdir(parents=True, exist_ok=True)
    (app / "app_alice.py").write_text(
        "from netqasm.sdk import EPRSocket\n"
        "from netqasm.sdk.external import NetQASMConnection\n"
        "def main(app_config=None):\n"
        "    epr = EPRSocket('bob')\n"
        "    out = []\n"
        "    with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:\n"
        f"        for _ in range({pairs}):\n"
        "            out.append(epr.create_keep()[0].measure())\n"
        "            conn.flush()\n"
        "    return {'m': [int(x) for x in out]}\n")
    alice = (app / "app_alice.py").read_text()
    (app / "app_bob.py").write_text(alice.replace("'bob'", "'alice'")
                                    .replace("create_keep", "recv_keep"))
    return str(app)


@pytest.fixture
def epr_app(tmp_path):
    """``epr_app(pairs=2)``: :func:`write_epr_app` in ``tmp_path / 'app'``; its path."""
    return lambda pairs=2: write_epr_app(tmp_path / "app", pairs)


def _run_straightline(driver, subroutine, qubit_map=None):
    """Run a straight-line NetQASM subroutine through a QDriver (test helper, not the
    QNPU): ``set`` fills registers, qubit registers resolve through ``qubit_map``
    (virtual -> physical, identity by default), quantum instructions go to the
    driver; returns {register name: outcome} of the measurements."""
    from netqasm.lang.instr import core
    from netqasm.lang.operand import Register

    regs: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    qubit_map = qubit_map or {}
    for ins in subroutine.instructions:
        if isinstance(ins, core.SetInstruction):
            regs[str(ins.reg)] = ins.imm.value
            continue
        if isinstance(ins, (core.QAllocInstruction, core.QFreeInstruction, core.RetRegInstruction,
                            core.RetArrInstruction)):
            continue
        qregs = [getattr(ins, n) for n in ("reg", "reg0", "reg1", "qreg")
                 if isinstance(getattr(ins, n, None), Register) and str(getattr(ins, n))[0] == "Q"]
        seen = []
        for r in qregs:
            if str(r) not in seen:
                seen.append(str(r))
        qubits = tuple(qubit_map.get(regs[r], regs[r]) for r in seen)
        out = driver.execute(ins, qubits)
        if out is not None:
            outcomes[str(ins.reg1 if hasattr(ins, "reg1") else ins.reg)] = out
    return outcomes


import pytest  # noqa: E402


@pytest.fixture
def run_straightline():
    return _run_straightline


class RecordingNV:
    """Minimal NVQubitBackend that records what the simulated instruments drive:
    ``mw`` (qubit, key, I, Q, sample rate, t_ns) and ``dd`` (qubit, on, t_ns)."""

    def __init__(self) -> None:
        self.mw: list[tuple] = []
        self.dd: list[tuple] = []

    def play_mw(self, qubit, key, wave_i, wave_q, sample_rate_hz, t_ns):
        import numpy as np
        self.mw.append((qubit, key, np.array(wave_i), np.array(wave_q), sample_rate_hz, t_ns))

    def set_dd(self, qubit, on, t_ns):
        self.dd.append((qubit, on, t_ns))

    def cr_check(self, t_ns):
        return 100

    def initialize(self, qubit, t_ns):
        pass

    def readout(self, qubit, t_ns):
        return 0

    def entangle(self, qubit, t_ns, measure):
        return (False, 0, None)


@pytest.fixture
def recording_nv():
    """The :class:`RecordingNV` class (instantiate one per instrument rig)."""
    return RecordingNV


# -- the shipped NV pulse library (built once per test module) --------------------------

@pytest.fixture(scope="module")
def cal():
    """The shipped NV calibration."""
    from qnodeos_hw.waveforms.calibration import load_calibration
    return load_calibration()


@pytest.fixture(scope="module")
def table(cal):
    """The 170-entry waveform table of :func:`cal`."""
    from qnodeos_hw.waveforms.table import build_table
    return build_table(cal)


@pytest.fixture(scope="module")
def program(table, cal):
    """The HDAWG program (SeqC, command table, waveforms) of :func:`table`."""
    from qnodeos_hw.sequences.hdawg_program import build_hdawg_program
    return build_hdawg_program(table, cal)


@pytest.fixture
def unused_port():
    """A localhost TCP port nothing listens on."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
