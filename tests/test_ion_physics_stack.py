"""The whole simulated ion stack: tick link -> bridge driver -> sim:// port -> simulated
FPGA -> packaged ion physics (qnodeos_hw.simulators.physics.IonNode)."""

from __future__ import annotations

import itertools
import math

import pytest

from qnodeos_hw.instruments.ion_bridge import IonFPGABridge
from qnodeos_hw.qdevice import TickLink, VirtualClock, decode, encode, ion_spec
from qnodeos_hw.sequences import ion_ttl as T
from qnodeos_hw.sequences.ion_ttl import IonInstruction as I
from qnodeos_hw.simulators.ion_fpga_sim import default_ion_backend

_names = itertools.count()


@pytest.fixture(scope="module")
def link():
    br = IonFPGABridge(f"ion_phys_{next(_names)}", "sim://ion?backend=physics&seed=11",
                       protocol_handler_packages=["qnodeos_hw.simulators.serial_sim"])
    cal = T.load_calibration()
    br.upload_all(T.build_all(cal))
    br.pmt_threshold(cal.pmt_threshold)
    yield TickLink(ion_spec(), br.tick_device(), VirtualClock(), record=False)
    br.close()


def ones(link, slots, n):
    total = 0
    for _ in range(n):
        for k in (I.INIT, *slots):
            link.transact(encode(T.play_message(k)))
        total += decode(link.transact(encode(T.play_message(I.MEASURE)))).argument
    return total / n


@pytest.mark.parametrize("slots,p1", [
    ((), 0.0), ((I.RX_PI,), 1.0), ((I.RY_PI,), 1.0), ((I.RX_PI2,), 0.5), ((I.RY_PI2,), 0.5),
    ((I.RX_MPI2,), 0.5), ((I.RX_PI2, I.RX_MPI2), 0.0), ((I.RY_PI2, I.RX_PI, I.RY_PI2), 1.0),
])
def test_outcome_statistics_match_the_ideal_rotation(link, slots, p1):
    n = 400
    # 3 binomial sigma, plus the model's few-permille readout/pumping/T1 errors
    tol = 3 * math.sqrt(max(p1 * (1 - p1), 0.01) / n) + 0.01
    assert abs(ones(link, slots, n) - p1) <= tol


def test_default_backend_is_seeded():
    counts = []
    for seed in (5, 5, 6):
        be = default_ion_backend(seed=seed)
        be.pump(0, 20_000, 0)                      # bright |0>: about 15 counts per window
        counts.append([be.detect(0, 500_000, 100_000 + 1000 * i) for i in range(20)])
    assert counts[0] == counts[1] != counts[2] and min(counts[0]) >= 3
