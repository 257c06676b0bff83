"""Typed errors of the qubit physics model."""

from __future__ import annotations


class PhysicsError(Exception):
    """Base class of every physics-model error."""


class NoiseModelKeyError(PhysicsError, KeyError):
    """A noise-model mapping has an unknown key or lacks a required one.

    ``key`` is the offending key, ``section`` the YAML section (``nv``, ``ion``,
    ``heralding`` or ``nodes.<name>``).
    """

    def __init__(self, section: str, key: str, problem: str) -> None:
        self.section, self.key, self.problem = section, key, problem
        super().__init__(f"noise model section '{section}': {problem} key '{key}'")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class NoiseModelValueError(PhysicsError, ValueError):
    """A noise-model value is out of its physical range; ``key`` names it."""

    def __init__(self, section: str, key: str, detail: str) -> None:
        self.section, self.key = section, key
        super().__init__(f"noise model '{section}.{key}': {detail}")


class QubitAddressError(PhysicsError, ValueError):
    """A node was asked about a qubit address it does not have."""


class PhysicsTimeError(PhysicsError, ValueError):
    """An operation on a qubit is earlier than the qubit's last update (time ran backwards)."""


class WaveformError(PhysicsError, ValueError):
    """A played waveform is malformed (shapes, sample rate)."""


class HeraldingError(PhysicsError, RuntimeError):
    """The heralding station was used wrongly (unknown node, mismatched registries...)."""


class PartnerTimeoutError(HeraldingError, TimeoutError):
    """A node's entanglement attempt waited in vain for its partner's attempt.

    ``partner`` names the node that did not show up, ``attempt`` the attempt number.
    """

    def __init__(self, node: str, partner: str, attempt: int, timeout_s: float) -> None:
        self.node, self.partner, self.attempt = node, partner, attempt
        super().__init__(f"node '{node}': partner node '{partner}' did not make entanglement "
                         f"attempt #{attempt} within {timeout_s} s")
