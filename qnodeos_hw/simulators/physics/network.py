"""Factories: seeded physics for one node or a heralded NV pair (what the simulated
labs plug in as their qubit backend)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heralding import HeraldingStation
from .ion import IonNode
from .noise_model import NoiseModels, load_noise_models
from .nv import NVNode
from .state import QuantumRegistry


@dataclass(frozen=True)
class NVPair:
    """Two NV nodes sharing one registry and one heralding station."""

    registry: QuantumRegistry
    station: HeraldingStation
    a: NVNode
    b: NVNode


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def nv_pair(names: tuple[str, str] = ("alice", "bob"), seed: int = 0,
            models: NoiseModels | None = None, num_qubits: int = 1) -> NVPair:
    """Two NV nodes (per-node noise overrides from ``models``) attached, in that order,
    to one heralding station; independent generators spawned from ``seed``."""
    models = models or load_noise_models()
    reg = QuantumRegistry()
    g_station, g_a, g_b = _rngs(seed, 3)
    station = HeraldingStation(models.heralding, g_station, reg)
    a = NVNode(names[0], models.nv_for(names[0]), g_a, reg, num_qubits, station=station)
    b = NVNode(names[1], models.nv_for(names[1]), g_b, reg, num_qubits, station=station)
    return NVPair(reg, station, a, b)


def nv_node(name: str = "nv", seed: int = 0, models: NoiseModels | None = None,
            num_qubits: int = 1) -> NVNode:
    """One NV node without a heralding partner, in its own registry."""
    models = models or load_noise_models()
    return NVNode(name, models.nv_for(name), _rngs(seed, 1)[0], QuantumRegistry(), num_qubits)


def ion_node(name: str = "ion", seed: int = 0, models: NoiseModels | None = None) -> IonNode:
    """One trapped-ion node in its own registry."""
    models = models or load_noise_models()
    return IonNode(name, models.ion_for(name), _rngs(seed, 1)[0], QuantumRegistry())
