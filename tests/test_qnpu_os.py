"""Process manager, scheduler, QMMU and the TCP end-node API (raw netqasm messages)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from netqasm.backend.messages import (ErrorMessage, InitNewAppMessage, MsgDoneMessage,
                                      ReturnRegMessage, StopAppMessage, SubroutineMessage,
                                      deserialize_return_msg)
from netqasm.lang.parsing import parse_text_subroutine

from qnodeos_hw.qdevice.clock import VirtualClock
from qnodeos_hw.qdrivers.ideal import IdealQDriver
from qnodeos_hw.qnpu import QMMU, QNPU, Process, QNPUServer, QubitAllocationError, Scheduler
from qnodeos_hw.protocol.framing import recv_frame, send_frame
from qnodeos_hw.qnpu.process import NETWORK_PRIORITY, USER_PRIORITY
from qnodeos_hw.qnpu.qnpu import EXT_ERROR
from qnodeos_hw.qnpu.qmmu import NETWORK_PID


def test_scheduler_priority_then_first_come_first_served():
    s = Scheduler()
    u1, u2, u3 = (Process(i, i, USER_PRIORITY) for i in (1, 2, 3))
    net = Process(0, None, NETWORK_PRIORITY)
    for p in (u2, u1, net, u3):
        s.make_ready(p)
    s.make_ready(u1)  # already queued: keeps its place
    assert [s.pop().pid for _ in range(4)] == [0, 2, 1, 3]
    assert s.pop() is None
    s.make_ready(u1)
    s.make_ready(u2)
    s.remove(u1)
    s.make_ready(u1)  # re-queued after removal goes to the back
    assert [s.pop().pid, s.pop().pid] == [2, 1]


def test_qmmu_allocation_errors_and_transfer():
    m = QMMU(2, comm_qubits=(0,))
    m.add_process(1, 3)
    m.add_process(2, 1)
    assert m.allocate(1, 0) == 1  # prefers the non-communication qubit
    with pytest.raises(QubitAllocationError, match="already allocated"):
        m.allocate(1, 0)
    with pytest.raises(QubitAllocationError, match="outside"):
        m.allocate(1, 3)
    p = m.reserve_comm()
    assert p == 0 and m.owner(0) == NETWORK_PID
    with pytest.raises(QubitAllocationError, match="all 2 physical qubits"):
        m.allocate(2, 0)
    m.transfer(0, 2, 0)
    assert m.table(2) == [0] and m.owner(0) == 2
    with pytest.raises(QubitAllocationError, match="not owned by the network"):
        m.transfer(1, 2, 0)
    assert sorted(m.remove_process(1)) == [1]
    assert m.used() == 1


class Client:
    """A raw netqasm-message client of the end-node API."""

    def __init__(self, addr):
        self.s = socket.create_connection(addr, timeout=10)

    def send(self, msg):
        send_frame(self.s, bytes(msg))

    def recv(self):
        f = recv_frame(self.s)
        if f[0] == EXT_ERROR:
            return ("detail", json.loads(f[1:]))
        return deserialize_return_msg(f)

    def close(self):
        self.s.close()


@pytest.fixture
def node():
    drv = IdealQDriver("n", 3, VirtualClock())
    q = QNPU("n", drv, {"n": 0}).start()
    srv = QNPUServer(q).start()
    yield q, srv
    srv.close()
    q.stop()


def _sub(text, app_id):
    return SubroutineMessage(parse_text_subroutine(f"# NETQASM 1.0\n# APPID {app_id}\n" + text))


def test_subroutine_returns_then_done(node):
    q, srv = node
    c = Client(srv.address)
    c.send(InitNewAppMessage(app_id=4, max_qubits=2))
    assert isinstance(c.recv(), MsgDoneMessage)
    c.send(_sub("set Q0 0\nqalloc Q0\ninit Q0\nx Q0\nmeas Q0 M0\nqfree Q0\nret_reg M0\n", 4))
    ret, done = c.recv(), c.recv()
    assert isinstance(ret, ReturnRegMessage) and ret.value == 1
    assert isinstance(done, MsgDoneMessage) and done.msg_id == 1
    c.send(StopAppMessage(app_id=4))
    assert isinstance(c.recv(), MsgDoneMessage)
    c.close()
    kinds = [e.kind for e in q.trace.events]
    for k in ("subroutine_received", "process_state", "instr_sent", "instr_response"):
        assert k in kinds
    states = [e.data["state"] for e in q.trace.events if e.kind == "process_state" and e.pid == 1]
    assert states[:4] == ["idle", "ready", "running", "idle"]


def test_bad_subroutine_fails_only_its_process(node):
    q, srv = node
    bad, good = Client(srv.address), Client(srv.address)
    bad.send(InitNewAppMessage(app_id=0, max_qubits=1))
    good.send(InitNewAppMessage(app_id=0, max_qubits=1))
    assert isinstance(bad.recv(), MsgDoneMessage) and isinstance(good.recv(), MsgDoneMessage)
    raw = bytes(_sub("set R0 1\n", 0))
    bad.send(raw[:1] + raw[1:5] + bytes([250, 0, 0, 0, 0, 0, 0]))  # unknown instruction id
    good.send(_sub("set R0 1\nset R1 2\nadd R2 R0 R1\nret_reg R2\n", 0))
    detail, err = bad.recv(), bad.recv()
    assert detail[0] == "detail" and detail[1]["error"] == "MalformedSubroutineError"
    assert isinstance(err, ErrorMessage)
    ret, done = good.recv(), good.recv()
    assert ret.value == 3 and isinstance(done, MsgDoneMessage)
    # an unsupported-at-run-time subroutine (qubit beyond the device) also fails alone
    bad.send(_sub("".join(f"set Q{i} {i}\nqalloc Q{i}\n" for i in range(4)), 0))  # 3-qubit device
    detail = bad.recv()
    assert detail[1]["error"].startswith("ExecutionError") and "qalloc" in detail[1]["message"]
    assert isinstance(bad.recv(), ErrorMessage)
    good.send(_sub("set R0 5\nret_reg R0\n", 0))
    assert good.recv().value == 5
    bad.close()
    good.close()


def test_disconnect_mid_run_frees_everything_100_cycles(node):
    q, srv = node

    def freed(timeout_s=5.0):
        # the server notices a closed connection on its own thread: wait (bounded) for it
        deadline = time.monotonic() + timeout_s
        while (q.procs or q.qmmu.used()) and time.monotonic() < deadline:
            time.sleep(0.005)
        return not q.procs and q.qmmu.used() == 0

    for i in range(100):
        assert freed(), f"cycle {i}: the previous disconnected program still holds resources"
        c = Client(srv.address)
        c.send(InitNewAppMessage(app_id=0, max_qubits=3))
        assert isinstance(c.recv(), MsgDoneMessage)
        c.send(_sub("set Q0 0\nqalloc Q0\ninit Q0\nset Q1 1\nqalloc Q1\nh Q1\n", 0))
        assert isinstance(c.recv(), MsgDoneMessage)
        c.close()  # never stops its app, never frees its qubits
    assert freed()
    assert q.procs == {} and q.qmmu.used() == 0
    assert len(q._conns) == 0
    removed = [e for e in q.trace.events if e.kind == "process_removed"]
    assert len(removed) == 100 and all(e.data["reason"] == "disconnected" for e in removed)


def test_tdma_schedule_assigns_bins_to_links():
    from qnodeos_hw.qnpu import TDMASchedule
    s = TDMASchedule(1_000, (frozenset({"a", "b"}), frozenset({"b", "c"})))
    assert s.bin_of(2_999) == 2 and s.bin_of(3_000) == 3
    assert s.link_active(0, "a", "b") and not s.link_active(0, "b", "c")
    assert s.link_active(1, "c", "b") and s.link_active(2, "b", "a")
    assert TDMASchedule(1_000).link_active(7, "x", "y")
    with pytest.raises(ValueError, match="time bin"):
        TDMASchedule(0)


def test_idle_wall_time_can_show_up_in_virtual_time():
    from qnodeos_hw.qnpu import QNPUConfig
    clock = VirtualClock()
    q = QNPU("n", IdealQDriver("n", 1, clock), {"n": 0}, config=QNPUConfig(idle_wall_scale=10.0),
             clock=clock).start()
    srv = QNPUServer(q).start()
    try:
        c = Client(srv.address)
        c.send(InitNewAppMessage(app_id=0, max_qubits=1))
        c.recv()
        t0 = clock.now_ns()
        time.sleep(0.02)  # the program "thinks" for 20 ms of wall time
        c.send(_sub("set R0 1\n", 0))
        c.recv()
        assert clock.now_ns() - t0 >= 10 * 20_000_000 * 0.9
        c.close()
    finally:
        srv.close()
        q.stop()
    with pytest.raises(ValueError, match="idle_wall_scale"):
        QNPUConfig(idle_wall_scale=-1)


def test_a_crashed_qnpu_cuts_its_programs_off(node):
    q, srv = node
    c = Client(srv.address)
    c.send(InitNewAppMessage(app_id=0, max_qubits=1))
    c.recv()

    def boom(*a):
        raise RuntimeError("injected fault")

    q._on_message = boom  # the next message crashes the QNPU loop
    c.send(_sub("set R0 1\n", 0))
    c.s.settimeout(5)
    assert recv_frame(c.s) is None  # connection closed, not left hanging
    assert q.errors and "injected fault" in q.errors[0]
