"""Who is where: node names, netqasm node ids, QNPU and classical (CNPU) TCP addresses,
and which node each application role runs on. JSON-serialisable, so CNPUs and QNPUs
in separate OS processes can share it."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field

from netqasm.sdk.network import NetworkInfo


@dataclass(frozen=True)
class NodeEntry:
    """One node: ``qnpu`` and ``classical`` are (host, port); ``flavour`` is
    'vanilla', 'nv' or 'trapped_ion' (what its QNPU decodes)."""

    name: str
    node_id: int
    qnpu: tuple[str, int]
    classical: tuple[str, int]
    flavour: str = "vanilla"


@dataclass
class NetworkDirectory:
    """Nodes by name and the role -> node assignment of the running application.

    ``time``: the network's time base, ``{"mode": "host"}`` or ``{"mode": "modelled",
    "latency": LatencyModel.to_dict(), "clock": [host, port] (the shared clock's TCP
    endpoint, for CNPUs in other processes)}``; ``token``: the secret a CNPU presents
    to the shared clock of this network (loopback peers that do not know it are
    refused); ``pair_keys``: one secret per pair of nodes (``"a|b"``, names sorted),
    made at random when the directory is made (None), with which a CNPU proves to
    another node's classical hub which node it is (:meth:`for_node` keeps only the
    keys of one node's pairs, for that node's CNPU process: it cannot speak as
    another node). Without keys (an old directory) the token stands in for them.
    ``qnpu_keys``: node -> the key its QNPU's end-node API asks programs to prove
    (:mod:`qnodeos_hw.protocol.api_auth`; every network the runner starts, and nodes
    started by hand), absent: none asked."""

    nodes: dict[str, NodeEntry] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    time: dict = field(default_factory=lambda: {"mode": "host"})
    token: str = ""
    pair_keys: dict[str, str] | None = None
    qnpu_keys: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pair_keys is None:
            names = sorted(self.nodes)
            self.pair_keys = {f"{a}|{b}": secrets.token_hex(16)
                              for i, a in enumerate(names) for b in names[i:]}

    def pair_key(self, a: str, b: str) -> bytes:
        """The secret of nodes ``a`` and ``b`` (KeyError naming them if this directory
        does not hold it)."""
        x, y = sorted((a, b))
        key = (self.pair_keys or {}).get(f"{x}|{y}")
        if key is None:
            if not self.pair_keys:
                return self.token.encode()
            raise KeyError(f"this directory holds no key for nodes '{x}' and '{y}'")
        return key.encode()

    def for_node(self, name: str) -> "NetworkDirectory":
        """A copy with only the pair keys of node ``name`` (for its CNPU process)."""
        keys = {k: v for k, v in (self.pair_keys or {}).items() if name in k.split("|")}
        return NetworkDirectory(dict(self.nodes), dict(self.roles), dict(self.time),
                                self.token, keys,
                                {k: v for k, v in self.qnpu_keys.items() if k == name})

    @property
    def modelled(self) -> bool:
        return self.time.get("mode") == "modelled"

    def node_of_role(self, role: str) -> NodeEntry:
        name = self.roles.get(role, role)
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node for application role '{role}' (nodes: {sorted(self.nodes)})") from None

    def node_ids(self) -> dict[str, int]:
        return {n.name: n.node_id for n in self.nodes.values()}

    def to_json(self) -> str:
        return json.dumps({"nodes": [asdict(n) for n in self.nodes.values()], "roles": self.roles,
                           "time": self.time, "token": self.token,
                           "pair_keys": self.pair_keys or {}, "qnpu_keys": self.qnpu_keys})

    @classmethod
    def from_json(cls, text: str) -> "NetworkDirectory":
        d = json.loads(text)
        nodes = {}
        for n in d["nodes"]:
            n["qnpu"], n["classical"] = tuple(n["qnpu"]), tuple(n["classical"])
            nodes[n["name"]] = NodeEntry(**n)
        return cls(nodes, dict(d["roles"]), dict(d.get("time") or {"mode": "host"}),
                   str(d.get("token", "")),
                   {str(k): str(v) for k, v in (d.get("pair_keys") or {}).items()},
                   {str(k): str(v) for k, v in (d.get("qnpu_keys") or {}).items()})

    def network_info(self) -> type[NetworkInfo]:
        """A netqasm ``NetworkInfo`` class answering from this directory."""
        directory = self

        class DirectoryNetworkInfo(NetworkInfo):
            @classmethod
            def _get_node_id(cls, node_name: str) -> int:
                try:
                    return directory.nodes[node_name].node_id
                except KeyError:
                    raise ValueError(f"{node_name} is not a known node name") from None

            @classmethod
            def _get_node_name(cls, node_id: int) -> str:
                for n in directory.nodes.values():
                    if n.node_id == node_id:
                        return n.name
                raise ValueError(f"{node_id} is not a known node ID")

            @classmethod
            def get_node_id_for_app(cls, app_name: str) -> int:
                return directory.node_of_role(app_name).node_id

            @classmethod
            def get_node_name_for_app(cls, app_name: str) -> str:
                return directory.node_of_role(app_name).name

        return DirectoryNetworkInfo
