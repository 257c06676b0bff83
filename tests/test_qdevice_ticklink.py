"""Tick-link ordering rules, busy policies, both tick rates, clocks and specs."""

import math

import pytest

from qnodeos_hw.qdevice import (ION_SPEC, NV_SPEC, Axis, BusyPolicy, ClockError, DeviceBusyError,
                                Direction, Entangle, FifoOverflowError, Init, InstrKind,
                                InstructionMessage, Measure, Opcode, PacedClock, ResponseKind,
                                Rotation, TickLink, TickLinkError, TwoQubitGate,
                                UnsupportedInstructionError, VirtualClock, decode, encode,
                                instruction_message, nv_spec, response_of)
from qnodeos_hw.simulators.trivial import TrivialQDevice


class FixedDevice:
    """Echoes SUCCESS after a fixed, per-opcode duration (ns); records start times."""

    def __init__(self, durations):
        self.durations = durations
        self.started: list[tuple[int, int]] = []
        self.finished: list[int] = []
        self._cur = None

    def start(self, message, t_ns):
        msg = decode(message)
        self._cur = msg
        self.started.append((t_ns, msg.argument))
        return self.durations.get(msg.argument, 0)

    def finish(self, t_ns):
        self.finished.append(t_ns)
        from qnodeos_hw.qdevice import SUCCESS, response_message
        return encode(response_message(SUCCESS, self._cur.qubit, self._cur.seq))


def play(arg, seq=0):
    return encode(InstructionMessage(Opcode.PLAY, 0, arg, seq))


def events(link, direction):
    return [e for e in link.timeline if e.direction is direction]


@pytest.mark.parametrize("spec", [NV_SPEC, ION_SPEC], ids=lambda s: s.name)
def test_response_never_in_the_tick_of_its_instruction(spec):
    dev = FixedDevice({0: 0})
    link = TickLink(spec, dev, VirtualClock())
    link.send(play(0))
    link.wait_response()
    sent, answered = events(link, Direction.TO_DEVICE)[0], events(link, Direction.TO_HOST)[0]
    assert answered.tick == sent.tick + 1
    assert answered.t_ns - sent.t_ns == spec.tick_ns
    assert spec.tick_ns == (10_000 if spec is NV_SPEC else 20_000)


@pytest.mark.parametrize("spec", [NV_SPEC, ION_SPEC], ids=lambda s: s.name)
@pytest.mark.parametrize("duration_ticks", [0.5, 1, 1.01, 3, 17.9])
def test_multi_tick_instruction_answered_first_tick_after_completion(spec, duration_ticks):
    d = int(duration_ticks * spec.tick_ns)
    link = TickLink(spec, FixedDevice({1: d}), VirtualClock())
    tick = link.send(play(1))
    link.wait_response()
    resp = events(link, Direction.TO_HOST)[0]
    assert resp.tick == tick + max(1, math.ceil(d / spec.tick_ns))
    assert resp.t_ns >= tick * spec.tick_ns + d          # after completion
    assert resp.t_ns - spec.tick_ns < max(tick * spec.tick_ns + d, (tick + 1) * spec.tick_ns)


def test_back_to_back_sends_use_consecutive_ticks_and_queue():
    dev = FixedDevice({1: 25_000, 2: 0, 3: 5_000})
    link = TickLink(NV_SPEC, dev, VirtualClock())
    ticks = [link.send(play(a)) for a in (1, 2, 3)]
    assert ticks == [0, 1, 2]                      # at most one instruction per tick
    assert link.clock.now_ns() == 20_000
    link.run_until_idle()
    resp_ticks = [e.tick for e in events(link, Direction.TO_HOST)]
    # 1 starts at 0, 25 us -> tick 3; 2 starts at 3 -> tick 4; 3 starts at 4 -> tick 5
    assert resp_ticks == [3, 4, 5]
    assert [t for t, _ in dev.started] == [0, 30_000, 40_000]
    per_tick = {}
    for e in link.timeline:
        per_tick.setdefault((e.tick, e.direction), 0)
        per_tick[(e.tick, e.direction)] += 1
    assert max(per_tick.values()) == 1             # one message per direction per tick
    assert [link.poll() for _ in range(4)][-1] is None


def test_instruction_may_arrive_on_the_tick_of_the_previous_response():
    link = TickLink(NV_SPEC, FixedDevice({1: 20_000, 2: 0}), VirtualClock())
    link.send(play(1))
    link.clock.advance_to(20_000)   # host comes back exactly at the response tick
    tick = link.send(play(2))
    assert tick == 2 and not link._fifo  # started at once, not queued
    assert link.poll() is not None


def test_refuse_policy_raises_and_sends_nothing():
    dev = FixedDevice({1: 50_000})
    link = TickLink(NV_SPEC, dev, VirtualClock(), policy=BusyPolicy.REFUSE)
    link.send(play(1))
    with pytest.raises(DeviceBusyError, match="busy until tick 5"):
        link.send(play(2))
    assert len(dev.started) == 1 and link.sent == 1
    assert response_of(decode(link.wait_response())).kind is ResponseKind.SUCCESS
    link.send(play(2))   # idle again: accepted
    assert len(dev.started) == 2


def test_fifo_overflow_is_typed_and_loses_nothing_sent():
    dev = FixedDevice({1: 1_000_000})
    link = TickLink(NV_SPEC, dev, VirtualClock(), fifo_depth=2)
    for a in (1, 1, 1):
        link.send(play(a))
    with pytest.raises(FifoOverflowError):
        link.send(play(1))
    assert link.sent == 3
    link.run_until_idle()
    assert link.answered == 3 and len([link.poll() for _ in range(3)]) == 3


def test_transact_and_wait_errors():
    link = TickLink(ION_SPEC, TrivialQDevice(seed=3), VirtualClock())
    with pytest.raises(TickLinkError):
        link.wait_response()
    with pytest.raises(TickLinkError):
        link.send(b"\x00\x00")
    out = response_of(decode(link.transact(encode(instruction_message(Measure(0))))))
    assert out.kind is ResponseKind.OUTCOME
    link.send(encode(instruction_message(Init(0))))
    with pytest.raises(TickLinkError):
        link.transact(encode(instruction_message(Init(0))))


def test_trivial_device_is_seeded():
    def outcomes(seed):
        link = TickLink(NV_SPEC, TrivialQDevice(seed=seed), VirtualClock())
        return [response_of(decode(link.transact(encode(instruction_message(Measure(0)))))).outcome
                for _ in range(40)]
    assert outcomes(7) == outcomes(7)
    assert outcomes(7) != outcomes(8)


def test_virtual_time_is_fast_and_exact():
    link = TickLink(NV_SPEC, TrivialQDevice(), VirtualClock(), record=False)
    for _ in range(1000):
        link.transact(encode(instruction_message(Init(0))))   # 50 us each -> 5 ticks
    assert link.clock.now_ns() == 1000 * 50_000
    assert link.timeline == []


def test_virtual_clock_never_goes_back():
    c = VirtualClock(100)
    c.advance(5)
    assert c.now_ns() == 105
    with pytest.raises(ClockError):
        c.advance_to(50)


def test_paced_clock_waits_for_wall_time_and_reports_lateness():
    wall = [0]
    slept = []

    def sleep(s):
        slept.append(s)
        wall[0] += max(int(s * 1e9), 1000)

    c = PacedClock(slowdown=2.0, wall=lambda: wall[0], sleep=sleep)
    c.advance_to(1_000_000)          # 1 ms virtual -> 2 ms wall
    assert wall[0] >= 2_000_000 and c.now_ns() == 1_000_000
    wall[0] += 10_000_000            # fall 10 ms behind
    c.advance_to(2_000_000)
    assert c.max_late_ns >= 8_000_000
    with pytest.raises(ClockError):
        c.advance_to(0)
    with pytest.raises(ValueError):
        PacedClock(slowdown=0)


def test_paced_clock_drives_a_real_time_link():
    import time
    t0 = time.perf_counter()  # before the clock: its epoch is taken when it is built
    link = TickLink(NV_SPEC, TrivialQDevice(), PacedClock())
    for _ in range(3):
        link.transact(encode(instruction_message(Init(0))))   # 50 us each + tick
    assert time.perf_counter() - t0 >= 150e-6


def test_specs_and_instruction_checks():
    assert NV_SPEC.tick_rate_hz == 100_000 and ION_SPEC.tick_rate_hz == 50_000
    assert NV_SPEC.num_qubits == 1 and ION_SPEC.num_qubits == 1
    assert InstrKind.ENT_KEEP in NV_SPEC.supported and InstrKind.ENT_KEEP not in ION_SPEC.supported
    NV_SPEC.check(Rotation(0, Axis.X, math.pi))
    with pytest.raises(UnsupportedInstructionError, match="addresses qubit 1"):
        NV_SPEC.check(Init(1))
    with pytest.raises(UnsupportedInstructionError, match="two_qubit"):
        NV_SPEC.check(TwoQubitGate(0, 1))
    nv3 = nv_spec(3)
    nv3.check(TwoQubitGate(0, 2))
    with pytest.raises(UnsupportedInstructionError, match="ent_keep"):
        ION_SPEC.check(Entangle(0))
    with pytest.raises(ValueError):
        nv_spec(0)
    with pytest.raises(ValueError):
        TwoQubitGate(1, 1)
    with pytest.raises(ValueError):
        Rotation(0, Axis.X, float("nan"))
