"""Qubit physics behind the simulated instruments.

Build a simulated network::

    models = load_noise_models()                 # packaged defaults (+ optional user YAML)
    reg = QuantumRegistry()                       # one per simulated network
    station = HeraldingStation(models.heralding, np.random.default_rng(1), reg)
    alice = NVNode("alice", models.nv_for("alice"), np.random.default_rng(2), reg, station=station)
    bob = NVNode("bob", models.nv_for("bob"), np.random.default_rng(3), reg, station=station)
    ion = IonNode("ion", models.ion_for("ion"), np.random.default_rng(4), reg)

or simply ``pair = nv_pair(("alice", "bob"), seed=1)`` (see :mod:`.network`).

``NVNode`` implements :class:`~qnodeos_hw.simulators.qubit_backend.NVQubitBackend`,
``IonNode`` implements :class:`~qnodeos_hw.simulators.qubit_backend.IonQubitBackend`.
"""

from .errors import (HeraldingError, NoiseModelKeyError, NoiseModelValueError,
                     PartnerTimeoutError, PhysicsError, PhysicsTimeError, QubitAddressError,
                     WaveformError)
from .heralding import BELL_NAMES, BELL_STATES, HeraldingStation, heralded_state
from .ion import IonNode
from .node_base import reduced_density_matrix
from .noise_model import (HeraldingModel, IonNoiseModel, NoiseModels, NVNoiseModel,
                          load_noise_models)
from .network import NVPair, ion_node, nv_node, nv_pair
from .nv import NVNode
from .pulses import rotation_unitary, waveform_unitary
from .state import QuantumRegistry

__all__ = [
    "BELL_NAMES", "BELL_STATES", "HeraldingError", "HeraldingModel", "HeraldingStation",
    "IonNode", "IonNoiseModel", "NVNode", "NVNoiseModel", "NoiseModelKeyError",
    "NoiseModelValueError", "NoiseModels", "PartnerTimeoutError", "PhysicsError",
    "PhysicsTimeError", "QuantumRegistry", "QubitAddressError", "WaveformError",
    "NVPair", "heralded_state", "ion_node", "load_noise_models", "nv_node", "nv_pair", "reduced_density_matrix", "rotation_unitary",
    "waveform_unitary",
]
