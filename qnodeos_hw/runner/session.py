"""What a node or link process is told when it starts (``node serve --session FILE``).

A *session* is one run of a network: the runner (``qnodeos-hw run --processes
per-node``) writes one JSON file per process, readable by its owner only, holding what
that process needs and nothing more -- the node's name and build (platform, qubits,
noise and calibration files, seed), the network's time base settings, the shared
clock's address, the secrets of the pairs this node belongs to (peer protocol and
physics links) and where its trace goes. Secrets are never put on a command line
(other users of the host can read those). Everything is data: a session is parsed as
JSON and checked field by field (:class:`SessionError` names the field).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


class SessionError(ValueError):
    """A session file is malformed (names the file and the field)."""


@dataclass(frozen=True)
class NodeSession:
    """One node process of a session (see the module docstring)."""

    node: str
    #: every node of the network, in node-id order
    nodes: tuple[str, ...]
    host: str = "127.0.0.1"
    qnpu_port: int = 0
    peer_port: int = 0
    #: the shared clock (modelled time), or None (host time)
    clock: tuple[str, int] | None = None
    token: str = ""
    #: peer protocol secrets of this node's pairs, ``"a|b"`` (names sorted) -> hex
    peer_keys: dict[str, str] = field(default_factory=dict)
    #: :class:`~qnodeos_hw.runner.network.NetworkSettings` as data (:func:`settings_to_dict`)
    settings: dict[str, Any] = field(default_factory=dict)
    #: how the node's QDriver is built (platform and its arguments)
    build: dict[str, Any] = field(default_factory=dict)
    #: the heralding stations of this node's links: peer -> {"address": [h, p], ...}
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: secret of the physics wire (joint states, link services), hex
    physics_key: str = ""
    trace_file: str | None = None
    #: where the other nodes' peer protocol listens, node -> [host, port], when known up
    #: front (a network started by hand); else told on stdin (``{"peers": ...}``)
    peers: dict[str, list] = field(default_factory=dict)
    #: the key programs must prove to this node's end-node API (hex; empty: none asked)
    api_key: str = ""

    def to_json(self) -> str:
        d = self.__dict__.copy()
        d["nodes"] = list(self.nodes)
        d["clock"] = list(self.clock) if self.clock else None
        return json.dumps({"session": 1, "kind": "node", **d}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "<session>") -> "NodeSession":
        d = _object(text, source, "node")
        nodes = _get(d, "nodes", list, source)
        if not all(isinstance(n, str) for n in nodes):
            raise SessionError(f"{source}: nodes must be a list of names")
        node = _get(d, "node", str, source)
        if node not in nodes:
            raise SessionError(f"{source}: node '{node}' is not one of nodes {nodes}")
        clock = d.get("clock")
        if clock is not None and not (isinstance(clock, list) and len(clock) == 2
                                      and isinstance(clock[0], str) and isinstance(clock[1], int)):
            raise SessionError(f"{source}: clock must be [host, port] or null")
        keys = _get(d, "peer_keys", dict, source)
        links = _get(d, "links", dict, source)
        for peer, link in links.items():
            if peer not in nodes or not isinstance(link, dict):
                raise SessionError(f"{source}: links.{peer} must name a node and be a mapping")
        trace = d.get("trace_file")
        peers = d.get("peers", {})
        if not isinstance(peers, dict) or not all(
                p in nodes and isinstance(a, list) and len(a) == 2 and isinstance(a[0], str)
                and isinstance(a[1], int) for p, a in peers.items()):
            raise SessionError(f"{source}: peers must map nodes to [host, port]")
        api_key = d.get("api_key", "")
        if not isinstance(api_key, str):
            raise SessionError(f"{source}: field 'api_key' must be str")
        return cls(node=node, nodes=tuple(nodes), host=_get(d, "host", str, source),
                   qnpu_port=_get(d, "qnpu_port", int, source),
                   peer_port=_get(d, "peer_port", int, source),
                   clock=(clock[0], clock[1]) if clock else None,
                   token=_get(d, "token", str, source),
                   peer_keys={str(k): str(v) for k, v in keys.items()},
                   settings=_get(d, "settings", dict, source),
                   build=_get(d, "build", dict, source), links=links,
                   physics_key=_get(d, "physics_key", str, source),
                   trace_file=trace if isinstance(trace, str) else None,
                   peers={str(p): list(a) for p, a in peers.items()}, api_key=api_key)


@dataclass(frozen=True)
class LinkSession:
    """One link process: the simulated heralding station between ``nodes``."""

    link: str
    nodes: tuple[str, str]
    #: every node of the network, in node-id order (the station's random stream is the
    #: one the single-process network gives this pair)
    network_nodes: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 0
    build: dict[str, Any] = field(default_factory=dict)
    physics_key: str = ""

    def to_json(self) -> str:
        d = self.__dict__.copy()
        d["nodes"], d["network_nodes"] = list(self.nodes), list(self.network_nodes)
        return json.dumps({"session": 1, "kind": "link", **d}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "<session>") -> "LinkSession":
        d = _object(text, source, "link")
        nodes = _get(d, "nodes", list, source)
        every = _get(d, "network_nodes", list, source)
        if len(nodes) != 2 or not set(nodes) <= set(every):
            raise SessionError(f"{source}: nodes must be two of network_nodes")
        return cls(link=_get(d, "link", str, source), nodes=(str(nodes[0]), str(nodes[1])),
                   network_nodes=tuple(str(n) for n in every),
                   host=_get(d, "host", str, source), port=_get(d, "port", int, source),
                   build=_get(d, "build", dict, source),
                   physics_key=_get(d, "physics_key", str, source))


def _object(text: str, source: str, kind: str | None) -> dict:
    """The session object in ``text``, of ``kind`` ('node', 'link'; None: either)."""
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise SessionError(f"{source}: not JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("session") != 1:
        raise SessionError(f"{source}: not a session file (needs 'session: 1')")
    if kind is None and d.get("kind") not in ("node", "link"):
        raise SessionError(f"{source}: field 'kind' must be 'node' or 'link', got "
                           f"{d.get('kind')!r}")
    if kind is not None and d.get("kind") != kind:
        raise SessionError(f"{source}: a {d.get('kind')!r} session, expected a {kind!r} one")
    return d


def _get(d: dict, key: str, typ: type, source: str) -> Any:
    if key not in d:
        raise SessionError(f"{source}: missing field '{key}'")
    v = d[key]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise SessionError(f"{source}: field '{key}' must be {typ.__name__}, got {v!r}")
    return v


def write_private(path: str, text: str) -> None:
    """Write ``text`` to a new file only its owner may read (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fp:
        fp.write(text)


def read_session(path: str) -> NodeSession | LinkSession:
    """The node or link session in ``path``."""
    with open(path, encoding="utf-8") as fp:
        text = fp.read()
    kind = _object(text, path, None)["kind"]
    return (NodeSession if kind == "node" else LinkSession).from_json(text, path)


def settings_to_dict(settings: Any) -> dict[str, Any]:
    """The parts of a :class:`NetworkSettings` a node process needs, as data."""
    return {"bin_ns": settings.bin_ns, "seed": settings.seed,
            "trace_instructions": settings.trace_instructions,
            "idle_wall_scale": settings.idle_wall_scale,
            "links": [sorted(link) for link in settings.links],
            "attempts_per_bin": settings.attempts_per_bin, "time_mode": settings.time_mode,
            "latency": settings.latency.to_dict() if settings.latency is not None else None,
            "request_timeout_ns": settings.request_timeout_ns}
