"""The heralding station of one link as a service of its own process (``link serve``).

The link process ``link:A-B`` runs the :class:`HeraldingStation` the single-process
network builds for that pair (same model, same generator stream, same name) over a
:class:`~.distributed.LinkRegistry`: the joint states it heralds are held here until
their owners measure, reset or pull them (:mod:`.distributed`). Requests (on the physics
wire, :mod:`.physics_wire`; only A and B may connect, besides the other processes of the
network that follow pointers):

* ``{"op": "window", "qubit", "t_ns", "max_attempts"}`` -> ``{"heralded", "bell",
  "used"}``: the sender's attempt window (the sender is the node proved on the
  connection); blocks -- one server thread per connection -- in the station's
  rendezvous until the partner's window pairs with it, as in one process. The node
  brings its qubit home before the call; on a herald the pair stays here, on a failure
  the qubit is forgotten here (its owner resets it).
* ``{"op": "progress", "t_ns"}``: one-way (no reply), in order with that connection's
  other requests: the sender's clock reached ``t_ns``.
* the registry ops of :class:`~.distributed.DistributedRegistry` for the keys held here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .distributed import LinkRegistry, link_holder
from .errors import HeraldingError
from .heralding import HeraldingStation
from .noise_model import load_noise_models
from .physics_wire import MalformedRequestError, get_int

_MAX_T_NS = 2 ** 62
_MAX_BUDGET = 2 ** 31


class _Endpoint:
    """Stands in for a node at the station of a link process (its name, our registry)."""

    def __init__(self, name: str, registry: LinkRegistry) -> None:
        self.name, self.registry = name, registry

    def add_link(self, station: Any) -> None:
        return None


def _link_stream(pair: tuple[str, str], names: tuple[str, ...], seed: int
                 ) -> tuple[int, np.random.Generator]:
    """(index among the network's pairs, the generator) of ``pair``'s station, as
    :func:`qnodeos_hw.nodes.simulated_nv_network` seeds it."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    k = pairs.index(pair)
    if k == 0:
        return 0, np.random.default_rng(np.random.SeedSequence(seed).spawn(len(names) + 1)[0])
    return k, np.random.default_rng(np.random.SeedSequence([seed, 1]).spawn(len(pairs) - 1)[k - 1])


class LinkServer:
    """A running link process's service (see the module docstring): ``address``,
    ``stats()``, ``close()``."""

    def __init__(self, pair: tuple[str, str], names: tuple[str, ...], station: HeraldingStation,
                 registry: LinkRegistry) -> None:
        self.pair, self.names = pair, names
        self.station, self.registry = station, registry
        registry.extra_ops["window"] = self._window
        registry.extra_ops["progress"] = self._progress
        if registry.server is not None:
            registry.server.on_gone = self._gone

    def _gone(self, peer: str) -> None:
        """A node's connection ended (its process died, or the run is over): it attempts
        nothing more, so its partner's windows fail at once instead of waiting for it."""
        if peer in self.pair and self.station.rendezvous is not None:
            self.station.rendezvous.passed(peer, 1 << 62)

    @property
    def address(self) -> tuple[str, int]:
        addr = self.registry.address
        assert addr is not None  # a link registry always serves
        return addr

    def _member(self, peer: str) -> str:
        if peer not in self.pair:
            raise PermissionError(f"link '{self.registry.name}': '{peer}' is not one of its "
                                  f"nodes {self.pair}")
        return peer

    def _window(self, peer: str, msg: dict) -> dict:
        node = self._member(peer)
        qubit = get_int(msg, "qubit", 0, 63)
        t_ns = get_int(msg, "t_ns", 0, _MAX_T_NS)
        budget = get_int(msg, "max_attempts", 0, _MAX_BUDGET)
        heralded, bell, used = self.station.attempt_window(node, qubit, t_ns, budget)
        if not heralded:
            self.registry.forget((node, qubit))
        return {"heralded": bool(heralded), "bell": int(bell), "used": int(used)}

    def _progress(self, peer: str, msg: dict) -> None:
        self.station.progress(self._member(peer), get_int(msg, "t_ns", 0, _MAX_T_NS))
        return None

    def stats(self) -> dict:
        """Attempts and heralds of the station, and the server's counters."""
        s = self.registry.server
        return {"attempts": self.station.attempts, "heralds": self.station.heralds,
                **(dict(s.counts) if s is not None else {}),
                "by_op": dict(s.by_op) if s is not None else {}}

    def close(self) -> None:
        self.registry.close()


def serve_link(pair: Sequence[str], names: Sequence[str], seed: int = 0,
               noise_file: str | Path | None = None, bin_ns: int | None = None,
               host: str = "127.0.0.1", port: int = 0, secret: str | bytes = "",
               num_qubits: int | None = None, calibration_file: Any = None) -> LinkServer:
    """Serve the heralding station of ``pair`` (two of the network's nodes ``names``) on
    ``host:port`` (loopback, any free port by default; see ``.address``), with the
    station and random stream ``simulated_nv_network(names, seed, noise_file,
    bin_ns=bin_ns)`` gives that pair. ``secret``: the network's physics secret.
    ``num_qubits`` and ``calibration_file`` are the nodes' build and ignored here."""
    names = tuple(str(n) for n in names)
    if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(names):
        raise HeraldingError(f"a link joins two distinct nodes of {names}, got {tuple(pair)}")
    a, b = sorted(pair, key=names.index)  # tensor order: the network's node order
    p = (a, b)
    k, gen = _link_stream(p, names, seed)
    models = load_noise_models(noise_file)
    holder = link_holder(p)
    pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
    registry = LinkRegistry(holder, set(names) | {link_holder(q) for q in pairs}, secret,
                            host=host, port=port, owners=names)
    try:
        station = HeraldingStation(models.heralding, gen, registry,
                                   name="heralding" if k == 0 else f"heralding-{a}-{b}",
                                   bin_ns=bin_ns)
        station.attach(_Endpoint(a, registry))  # type: ignore[arg-type]
        station.attach(_Endpoint(b, registry))  # type: ignore[arg-type]
    except Exception:
        registry.close()
        raise
    return LinkServer(p, names, station, registry)


__all__ = ["LinkServer", "MalformedRequestError", "serve_link"]
