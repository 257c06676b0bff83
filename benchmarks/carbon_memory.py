"""A carbon's coherence under entanglement attempts and a teleport on NV nodes.

Prints JSON on its last line: for each carbon of the packaged noise model, the number of
attempts after which a carbon holding |+> keeps 1/e of its coherence, measured through
the physics (electron attempts with the partner node, the carbon waiting), beside the
model's ``attempts_1e``; and the time of netqasm's teleport example on NV nodes with two
carbons (modelled ms from first to last instruction, wall s).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np


def carbon_t_coh(num_attempts=(0, 250, 500, 1000, 2000, 4000)) -> dict:
    from qnodeos_hw.simulators.physics import (HeraldingStation, NVNode, QuantumRegistry,
                                               load_noise_models)
    models = load_noise_models()
    her = models.heralding.with_overrides({"p_success": 0.0})  # attempts that never herald
    out = {}
    for c, cm in enumerate(models.nv.carbons, start=1):
        coh = []
        for n in num_attempts:
            reg = QuantumRegistry()
            st = HeraldingStation(her, np.random.default_rng(1), reg)
            a = NVNode("a", models.nv, np.random.default_rng(2), reg, num_qubits=6, station=st)
            NVNode("b", models.nv, np.random.default_rng(3), reg, num_qubits=6, station=st)
            t = 0
            a.initialize(c, t)
            u = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
            a.apply_gate([c], u, t)  # |+>
            r0 = a.reduced_density_matrix([c], t)
            x0 = 2 * r0[1, 0].real
            if n:
                import threading
                b = st._node("b")
                th = threading.Thread(target=b.entangle_window, args=(0, t, False, n))
                th.start()
                a.entangle_window(0, t, False, n)
                th.join()
            t_end = t + n * her.attempt_duration_ns
            r = a.reduced_density_matrix([c], t_end)
            # remove the T2 decay over the window to isolate the attempt dephasing
            coh.append(float(2 * r[1, 0].real / x0 / math.exp(-t_end * 1e-9 / cm.t2_s)))
        ns = np.array(num_attempts[1:], float)
        k = -np.polyfit(ns, np.log(np.array(coh[1:])), 1)[0]
        out[cm.name] = {"attempts_1e_measured": float(1 / k), "attempts_1e_model": cm.attempts_1e,
                        "t_coh_ms_at_5us_per_attempt": float(1 / k * her.attempt_duration_ns * 1e-6),
                        "coherence": dict(zip(map(str, num_attempts), coh))}
    return out


def teleport_time(seeds=(1, 2, 3)) -> dict:
    import netqasm
    from qnodeos_hw.runner.network import NVNetworkFactory, NetworkSettings, run_app_dir
    app = os.path.join(os.path.dirname(netqasm.__file__), "examples", "apps", "teleport")
    modelled, wall = [], []
    for seed in seeds:
        t = time.perf_counter()
        res = run_app_dir(app, NVNetworkFactory(seed=seed, num_qubits=3),
                          NetworkSettings(seed=seed, trace_instructions=True), timeout_s=60)
        wall.append(time.perf_counter() - t)
        ev = [e.t_ns for e in res.trace.events if e.kind == "instr_sent"]
        modelled.append((max(ev) - min(ev)) * 1e-6)
    return {"modelled_ms": modelled, "wall_s": wall}


if __name__ == "__main__":
    sys.stdout.flush()
    print(json.dumps({"carbon_attempt_memory": carbon_t_coh(), "teleport_nv": teleport_time()}))
