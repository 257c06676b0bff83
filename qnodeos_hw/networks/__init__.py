"""Network files: one YAML describing a network (issue 14).

A network file names its nodes (platform, qubits, QCoDeS station, address), its
quantum links (heralding model and parameters), its classical links (latencies), the
TDMA schedule and the time mode. :func:`load_network` reads and validates one (a
shipped name such as ``ideal_2node``, or a path) into a :class:`NetworkConfig`; every
problem raises :class:`NetworkConfigError` naming the file and the key (dotted:
``nodes.alice.qubits``), as the calibration files do. What today's single-process
network can build from a valid file is :mod:`qnodeos_hw.networks.build`'s business
(:class:`UnsupportedNetworkError` names what it cannot yet).

The format (``network: 1``)::

    network: 1                      # format version (required)
    name: ideal_2node               # default: the file's stem
    time: {mode: modelled, latency_file: null}          # modelled | host
    schedule: {bin_ns: 10000000, attempts_per_bin: 1000, bins: [alice-bob]}
    nodes:
      alice: {platform: ideal, qubits: 5, address: "127.0.0.1:0"}
      bob:   {platform: ideal, qubits: 5, address: "127.0.0.1:0"}
    quantum_links:
      alice-bob: {heralding: ideal, fidelity: 1.0, p_success: 1.0}
    classical_links:
      alice-bob: {latency: {cnpu_to_cnpu: {mean_ms: 0.55, sd_ms: 0.08, min_ms: 0.3}}}

Addresses (``host:port``; port 0: any free port, which is what a network that
``qnodeos-hw run`` starts itself needs): a node's ``address`` (QNPU end-node API),
``classical_address`` (its CNPU's classical hub) and ``peer_address`` (QNPU peer
protocol; default: the address's host, port 0), and an ``nv`` quantum link's
``address`` (its ``qnodeos-hw link serve`` heralding station). A network started by hand
(``node serve --network``, ``link serve --network``, ``run`` attaching to them) needs
every one of these fixed (:func:`hand_started_addresses` checks). No fixed address may
be used twice in a file.

Relative file paths (stations, noise, calibration and latency files) are relative to
the network file; ``package.module:file.yaml`` names a file shipped in a package
(``qnodeos_hw.instruments.stations:lab.yaml``). The README section "Networks" is
the user's description.

This package sits above ``qnpu``/``cnpu`` (it builds their networks) and below
``experiments`` and ``cli``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

FORMAT_VERSION = 1
NETWORK_DIR = Path(__file__).resolve().parent
PLATFORMS = ("ideal", "nv", "ion", "custom")
HERALDING_MODELS = ("ideal", "nv")
TIME_MODES = ("modelled", "host")
CLOCKS = ("auto", "virtual", "paced")
FLAVOURS = ("vanilla", "nv")
#: segments of the latency model a classical link may set (modelled time)
LINK_LATENCY_SEGMENTS = ("cnpu_to_cnpu", "qnpu_to_qnpu")
NV_INSTRUMENT_ROLES = ("hdawg", "adwin", "mw")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NetworkConfigError(ValueError):
    """A network file is unreadable or invalid: ``path`` names the file, ``key`` the
    offending key (dotted path, ``<file>`` / ``<root>`` for the whole file)."""

    def __init__(self, path: str | Path | None, key: str, message: str) -> None:
        self.path, self.key = (str(path) if path is not None else "<memory>"), key
        super().__init__(f"{self.path}: network key '{key}': {message}")


class NetworkNotFoundError(NetworkConfigError, FileNotFoundError):
    """``--network NAME``: neither a shipped network nor an existing file."""

    def __init__(self, name: str) -> None:
        have = ", ".join(shipped_networks())
        ValueError.__init__(self, f"no network '{name}': not a file and not a shipped "
                                  f"network (shipped: {have})")
        self.path, self.key = name, "<file>"


class UnsupportedNetworkError(NetworkConfigError):
    """A valid network file describes what today's single-process network cannot build
    yet (the message says what and why)."""


@dataclass(frozen=True)
class Address:
    """``host:port`` (port 0: any free port)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class NodeConfig:
    name: str
    platform: str
    qubits: int
    address: Address
    classical_address: Address | None = None
    #: QCoDeS station YAML (resolved path), None: the built-in simulated station
    station: Path | None = None
    calibration_file: Path | None = None
    flavour: str = "vanilla"
    clock: str = "auto"
    #: role (hdawg, adwin, mw) -> instrument name in the station (empty: found by type)
    instruments: dict[str, str] = field(default_factory=dict)
    #: QNPU peer protocol listener (None: the address's host, any free port)
    peer_address: Address | None = None


@dataclass(frozen=True)
class QuantumLinkConfig:
    name: str
    nodes: tuple[str, str]
    heralding: str
    fidelity: float = 1.0
    p_success: float = 1.0
    random_bell: bool = False
    noise_file: Path | None = None
    #: where ``qnodeos-hw link serve`` listens (nv heralding; None: any free port)
    address: Address | None = None


@dataclass(frozen=True)
class ClassicalLinkConfig:
    name: str
    nodes: tuple[str, str]
    #: latency-model segment -> mapping (mean_ms/sd_ms/min_ms ...), modelled time
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleConfig:
    bin_ns: int = 10_000_000
    #: attempts per attempt window, or None for "auto" (bin / attempt duration)
    attempts_per_bin: int | None = 1000
    #: TDMA order: bin k serves the links of bins[k % len(bins)] (empty: every link)
    bins: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class NetworkConfig:
    """A validated network file (see module docstring)."""

    name: str
    nodes: dict[str, NodeConfig]
    quantum_links: dict[str, QuantumLinkConfig]
    classical_links: dict[str, ClassicalLinkConfig]
    schedule: ScheduleConfig
    time_mode: str = "modelled"
    latency_file: Path | None = None
    qdriver_factory: str | None = None
    factory_args: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"

    def error(self, key: str, message: str) -> NetworkConfigError:
        return NetworkConfigError(self.source, key, message)

    def unsupported(self, key: str, message: str) -> UnsupportedNetworkError:
        return UnsupportedNetworkError(self.source, key, message)


# ------------------------------------------------------------------------------ loading
def shipped_networks() -> list[str]:
    """Names of the networks shipped in this package."""
    return sorted(p.stem for p in NETWORK_DIR.glob("*.yaml"))


def network_file(name_or_path: str | Path) -> Path:
    """A shipped network's file, or the path itself when it exists."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if re.fullmatch(r"[A-Za-z0-9_-]+", str(name_or_path)):
        shipped = NETWORK_DIR / f"{name_or_path}.yaml"
        if shipped.is_file():
            return shipped
    raise NetworkNotFoundError(str(name_or_path))


def load_network(name_or_path: str | Path) -> NetworkConfig:
    """Read and validate a network file (shipped name or path)."""
    path = network_file(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NetworkConfigError(path, "<file>", f"cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NetworkConfigError(path, "<file>", f"not valid YAML: {_one_line(exc)}") from None
    return network_from_dict(data, source=str(path), base_dir=path.parent,
                             default_name=path.stem)


_TOP = {"network", "name", "description", "time", "schedule", "nodes", "quantum_links",
        "classical_links", "qdriver_factory", "factory_args"}
_NODE = {"platform", "qubits", "address", "classical_address", "peer_address", "station",
         "calibration_file", "flavour", "clock", "instruments", "description"}
_QLINK = {"nodes", "heralding", "fidelity", "p_success", "random_bell", "noise_file",
          "address", "description"}
_CLINK = {"nodes", "latency", "description"}


class _Reader:
    """Typed access to one document, every error naming the file and the key."""

    def __init__(self, source: str, base_dir: Path | None) -> None:
        self.source, self.base_dir = source, base_dir

    def err(self, key: str, message: str) -> NetworkConfigError:
        return NetworkConfigError(self.source, key, message)

    def mapping(self, value: Any, key: str, allowed: set[str] | None = None,
                required: tuple[str, ...] = ()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.err(key, f"must be a mapping, got {type(value).__name__}")
        for k in value:
            if not isinstance(k, str):
                raise self.err(f"{key}.{k}", "keys must be strings")
            if allowed is not None and k not in allowed:
                raise self.err(_join(key, k), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for k in required:
            if k not in value:
                raise self.err(_join(key, k), "missing")
        return value

    def integer(self, value: Any, key: str, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self.err(key, f"must be an integer, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
            raise self.err(key, f"must be in {rng}, got {value}")
        return int(value)

    def number(self, value: Any, key: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.err(key, f"must be a number, got {value!r}")
        v = float(value)
        if not lo <= v <= hi:  # (also refuses NaN)
            raise self.err(key, f"must be in [{lo}, {hi}], got {value!r}")
        return v

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.err(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.err(key, f"must be true or false, got {value!r}")
        return value

    def address(self, value: Any, key: str) -> Address:
        if not isinstance(value, str) or value.count(":") < 1:
            raise self.err(key, f"must be 'host:port', got {value!r}")
        host, _, port = value.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise self.err(key, f"must be 'host:port' with a port 0..65535, got {value!r}")
        return Address(host, int(port))

    def file(self, value: Any, key: str) -> Path | None:
        """A file reference: None, ``package.module:file`` or a path (relative to the
        network file); it must exist."""
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.err(key, f"must be a file path, got {value!r}")
        m = re.fullmatch(r"([A-Za-z_][\w.]*):([^/\\:][^:]*)", value)
        p = None
        if m and not Path(value).exists():
            try:
                p = Path(str(resources.files(m.group(1)).joinpath(m.group(2))))
            except (ModuleNotFoundError, TypeError):  # not a package: a path (C:/...)
                p = None
        if p is None:
            p = Path(value).expanduser()
            if not p.is_absolute() and self.base_dir is not None:
                p = self.base_dir / p
        if not p.is_file():
            raise self.err(key, f"file {value!r} not found (looked at {p})")
        return p

    def link_nodes(self, name: str, spec: dict, key: str, nodes: dict) -> tuple[str, str]:
        given = spec.get("nodes")
        if given is None:
            parts = name.split("-")
            if len(parts) != 2:
                raise self.err(key, "a link is named '<node>-<node>' or lists its two nodes "
                                    "under 'nodes'")
            given = parts
            where = key
        else:
            where = f"{key}.nodes"
            if not isinstance(given, list) or len(given) != 2:
                raise self.err(where, f"must list two nodes, got {given!r}")
        a, b = (str(x) for x in given)
        for n in (a, b):
            if n not in nodes:
                raise self.err(where, f"no node '{n}' (nodes: {', '.join(nodes)})")
        if a == b:
            raise self.err(where, f"a link joins two different nodes, got {a!r} twice")
        return (a, b)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _join(key: str, sub: Any) -> str:
    return f"{key}.{sub}" if key and key != "<root>" else str(sub)


def network_from_dict(data: Any, source: str = "<memory>", base_dir: Path | None = None,
                      default_name: str = "network") -> NetworkConfig:
    """Validate a parsed network document (see module docstring)."""
    r = _Reader(source, base_dir)
    top = r.mapping(data, "<root>", _TOP, required=("network", "nodes"))
    if top["network"] != FORMAT_VERSION:
        raise r.err("network", f"format version must be {FORMAT_VERSION}, got {top['network']!r}")
    name = top.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise r.err("name", f"must be a non-empty string, got {name!r}")

    time = r.mapping(top.get("time"), "time", {"mode", "latency_file"})
    time_mode = r.choice(time.get("mode", "modelled"), "time.mode", TIME_MODES)
    latency_file = r.file(time.get("latency_file"), "time.latency_file")
    if latency_file is not None:
        from ..timebase import LatencyModelError, load_latency_model
        try:
            load_latency_model(latency_file)
        except LatencyModelError as exc:
            raise r.err("time.latency_file", str(exc)) from None

    raw_nodes = r.mapping(top.get("nodes"), "nodes")
    if not raw_nodes:
        raise r.err("nodes", "a network has at least one node")
    nodes: dict[str, NodeConfig] = {}
    for nname, spec in raw_nodes.items():
        key = f"nodes.{nname}"
        if not _NAME.fullmatch(nname):
            raise r.err(key, "a node name is letters, digits and '_' (not starting with a digit)")
        spec = r.mapping(spec, key, _NODE, required=("platform",))
        platform = r.choice(spec["platform"], f"{key}.platform", PLATFORMS)
        qubits = r.integer(spec.get("qubits", 5 if platform == "ideal" else 1), f"{key}.qubits",
                           1, 64)
        if platform == "nv" and qubits > 6:
            raise r.err(f"{key}.qubits", f"an NV node has the electron and 0..5 carbons "
                                         f"(1..6 qubits), got {qubits}")
        if platform == "ion" and qubits != 1:
            raise r.err(f"{key}.qubits", f"a trapped-ion node has one qubit, got {qubits}")
        address = r.address(spec.get("address", "127.0.0.1:0"), f"{key}.address")
        caddr = (r.address(spec["classical_address"], f"{key}.classical_address")
                 if spec.get("classical_address") is not None else None)
        if caddr is not None and caddr.host != address.host:
            raise r.err(f"{key}.classical_address", f"host {caddr.host!r} differs from the "
                                                    f"node's address host {address.host!r}")
        paddr = (r.address(spec["peer_address"], f"{key}.peer_address")
                 if spec.get("peer_address") is not None else None)
        if paddr is not None and paddr.host != address.host:
            raise r.err(f"{key}.peer_address", f"host {paddr.host!r} differs from the "
                                               f"node's address host {address.host!r}")
        station = r.file(spec.get("station"), f"{key}.station")
        if station is not None and platform not in ("nv", "ion"):
            raise r.err(f"{key}.station", f"a {platform} node has no instruments")
        if station is not None:
            _check_station(r, station, f"{key}.station")
        cal = r.file(spec.get("calibration_file"), f"{key}.calibration_file")
        if cal is not None:
            if platform != "nv":
                raise r.err(f"{key}.calibration_file", "only NV nodes have a calibration file")
            from ..waveforms.calibration import CalibrationError, load_calibration
            try:
                load_calibration(cal)
            except CalibrationError as exc:
                raise r.err(f"{key}.calibration_file", str(exc)) from None
        flavour = r.choice(spec.get("flavour", "vanilla"), f"{key}.flavour", FLAVOURS)
        if "flavour" in spec and platform != "ideal":
            raise r.err(f"{key}.flavour", "only ideal nodes choose their flavour (NV nodes "
                                          "compile for nv)")
        clock = r.choice(spec.get("clock", "auto"), f"{key}.clock", CLOCKS)
        if clock != "auto" and (platform != "nv" or station is None):
            raise r.err(f"{key}.clock", "only NV nodes on a station YAML choose their clock")
        inst = r.mapping(spec.get("instruments"), f"{key}.instruments", set(NV_INSTRUMENT_ROLES))
        if inst and (platform != "nv" or station is None):
            raise r.err(f"{key}.instruments", "only NV nodes on a station YAML name instruments")
        for role, iname in inst.items():
            if not isinstance(iname, str):
                raise r.err(f"{key}.instruments.{role}", f"must be an instrument name, got {iname!r}")
        nodes[nname] = NodeConfig(nname, platform, qubits, address, caddr, station, cal, flavour,
                                  clock, dict(inst), paddr)

    qlinks: dict[str, QuantumLinkConfig] = {}
    seen_pairs: dict[frozenset, str] = {}
    for lname, spec in r.mapping(top.get("quantum_links"), "quantum_links").items():
        key = f"quantum_links.{lname}"
        spec = r.mapping(spec, key, _QLINK, required=("heralding",))
        pair = r.link_nodes(lname, spec, key, nodes)
        if frozenset(pair) in seen_pairs:
            raise r.err(key, f"nodes {pair[0]} and {pair[1]} already have quantum link "
                             f"'{seen_pairs[frozenset(pair)]}'")
        seen_pairs[frozenset(pair)] = lname
        model = r.choice(spec["heralding"], f"{key}.heralding", HERALDING_MODELS)
        for n in pair:
            platform = nodes[n].platform
            if platform == "ion":
                raise r.err(key, f"node '{n}' is a trapped-ion node: it has no entanglement")
            if platform != "custom" and platform != model:
                raise r.err(f"{key}.heralding", f"'{model}' heralding joins {model} nodes; "
                                                f"node '{n}' is {platform}")
        if model == "ideal":
            bad = {"noise_file", "address"} & set(spec)
            fid = r.number(spec.get("fidelity", 1.0), f"{key}.fidelity", 0.0, 1.0)
            ps = r.number(spec.get("p_success", 1.0), f"{key}.p_success", 0.0, 1.0)
            if ps == 0:
                raise r.err(f"{key}.p_success", "must be > 0: no attempt would ever herald")
            rb = r.boolean(spec.get("random_bell", False), f"{key}.random_bell")
            qlinks[lname] = QuantumLinkConfig(lname, pair, model, fid, ps, rb)
        else:
            bad = {"fidelity", "p_success", "random_bell"} & set(spec)
            noise = r.file(spec.get("noise_file"), f"{key}.noise_file")
            if noise is not None:
                from ..simulators.physics.noise_model import load_noise_models
                try:
                    load_noise_models(noise)
                except Exception as exc:  # the noise model's own typed errors
                    raise r.err(f"{key}.noise_file", f"{type(exc).__name__}: {exc}") from None
            laddr = (r.address(spec["address"], f"{key}.address")
                     if spec.get("address") is not None else None)
            qlinks[lname] = QuantumLinkConfig(lname, pair, model, noise_file=noise, address=laddr)
        if bad:
            k = sorted(bad)[0]
            raise r.err(f"{key}.{k}", f"not a parameter of '{model}' heralding (ideal: fidelity, "
                                      "p_success, random_bell; nv: noise_file, address)")

    clinks: dict[str, ClassicalLinkConfig] = {}
    for lname, spec in r.mapping(top.get("classical_links"), "classical_links").items():
        key = f"classical_links.{lname}"
        spec = r.mapping(spec, key, _CLINK)
        pair = r.link_nodes(lname, spec, key, nodes)
        lat = r.mapping(spec.get("latency"), f"{key}.latency", set(LINK_LATENCY_SEGMENTS))
        for seg, seg_spec in lat.items():
            from ..timebase import LatencyModelError, load_latency_model
            try:
                load_latency_model(None, overrides={seg: seg_spec})
            except LatencyModelError as exc:
                raise r.err(f"{key}.latency.{seg}", str(exc).split(": ", 1)[-1]) from None
        clinks[lname] = ClassicalLinkConfig(lname, pair, {k: dict(v) for k, v in lat.items()})

    sched = r.mapping(top.get("schedule"), "schedule", {"bin_ns", "attempts_per_bin", "bins"})
    bin_ns = r.integer(sched.get("bin_ns", 10_000_000), "schedule.bin_ns", 1)
    apb_raw = sched.get("attempts_per_bin", "auto" if any(
        ql.heralding == "nv" for ql in qlinks.values()) else 1000)
    apb = None if apb_raw == "auto" else r.integer(apb_raw, "schedule.attempts_per_bin", 1, 0xFFFF)
    bins_raw = sched.get("bins") or []
    if not isinstance(bins_raw, list):
        raise r.err("schedule.bins", f"must be a list of link names, got {bins_raw!r}")
    bins = []
    for i, entry in enumerate(bins_raw):
        names = entry if isinstance(entry, list) else [entry]
        if not names:
            raise r.err(f"schedule.bins.{i}", "a time bin serves at least one link")
        for ln in names:
            if ln not in qlinks:
                raise r.err(f"schedule.bins.{i}", f"no quantum link {ln!r} (quantum links: "
                                                  f"{', '.join(qlinks) or 'none'})")
        served = [n for ln in names for n in qlinks[ln].nodes]
        if len(served) != len(set(served)):
            raise r.err(f"schedule.bins.{i}", f"links {names} share a node: a node attempts "
                                              "one link per bin (one communication qubit)")
        bins.append(tuple(str(n) for n in names))
    if bins:
        unserved = [ln for ln in qlinks if not any(ln in b for b in bins)]
        if unserved:
            raise r.err("schedule.bins", f"quantum link {unserved[0]!r} has no time bin (a link "
                                         "must have bins to entangle; empty bins: every link "
                                         "in every bin)")

    target = top.get("qdriver_factory")
    if target is not None and (not isinstance(target, str) or target.count(":") != 1):
        raise r.err("qdriver_factory", f"must be 'module:callable', got {target!r}")
    custom = [n.name for n in nodes.values() if n.platform == "custom"]
    if custom and target is None:
        raise r.err(f"nodes.{custom[0]}.platform", "'custom' nodes need a top-level "
                                                  "qdriver_factory: 'module:callable'")
    if target is not None and len(custom) != len(nodes):
        other = next(n for n in nodes.values() if n.platform != "custom")
        raise r.err("qdriver_factory", f"builds every node, but node '{other.name}' is "
                                       f"{other.platform} (make every node platform: custom)")
    fargs = r.mapping(top.get("factory_args"), "factory_args")
    if fargs and target is None:
        raise r.err("factory_args", "only with qdriver_factory")
    _check_addresses_distinct(r, nodes, qlinks)
    return NetworkConfig(name, nodes, qlinks, clinks, ScheduleConfig(bin_ns, apb, tuple(bins)),
                         time_mode, latency_file, target, dict(fargs), source)


def _addresses(nodes: dict[str, NodeConfig], qlinks: dict[str, QuantumLinkConfig]
               ) -> list[tuple[str, Address | None]]:
    """(key, address) of every listener a network file places, in file order."""
    out: list[tuple[str, Address | None]] = []
    for n, c in nodes.items():
        out += [(f"nodes.{n}.address", c.address),
                (f"nodes.{n}.classical_address", c.classical_address),
                (f"nodes.{n}.peer_address", c.peer_address)]
    out += [(f"quantum_links.{k}.address", q.address) for k, q in qlinks.items()]
    return out


def _check_addresses_distinct(r: _Reader, nodes: dict[str, NodeConfig],
                              qlinks: dict[str, QuantumLinkConfig]) -> None:
    """No fixed host:port is given twice (two listeners cannot share one)."""
    seen: dict[tuple[str, int], str] = {}
    for key, a in _addresses(nodes, qlinks):
        if a is None or a.port == 0:
            continue
        where = seen.setdefault((a.host, a.port), key)
        if where != key:
            raise r.err(key, f"address {a} is already {where}")


def hand_started_addresses(config: NetworkConfig, nodes: list[str] | None = None) -> None:
    """A network started by hand (``node serve --network``, ``link serve --network``,
    ``run`` attaching to them) is found at its file's addresses: every node's ``address``
    and ``peer_address`` and every simulated ``nv`` quantum link's ``address`` (a lab
    link's heralding station is hardware) needs a fixed port (``nodes``: only these nodes
    and the links between them). NetworkConfigError naming
    the first key that does not have one."""
    keep = set(config.nodes if nodes is None else nodes)
    for n in config.nodes:
        if n not in keep:
            continue
        c = config.nodes[n]
        for key, a in ((f"nodes.{n}.address", c.address),
                       (f"nodes.{n}.peer_address", c.peer_address)):
            if a is None or a.port == 0:
                raise config.error(key, "a node started by hand is found at a fixed port "
                                        f"(give 'host:port' with a port other than 0, got "
                                        f"{str(a) if a else 'none'})")
    for k, q in config.quantum_links.items():
        simulated = all(config.nodes[n].station is None for n in q.nodes)  # lab: hardware
        if q.heralding == "nv" and simulated and set(q.nodes) <= keep and \
                (q.address is None or q.address.port == 0):
            raise config.error(f"quantum_links.{k}.address",
                               "a link started by hand (link serve --network) is found at a "
                               "fixed port (give 'host:port' with a port other than 0, got "
                               f"{str(q.address) if q.address else 'none'})")


def _check_station(r: _Reader, path: Path, key: str) -> None:
    """A QCoDeS station YAML: an ``instruments`` mapping, each with a ``type``."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise r.err(key, f"station {path} unreadable: {_one_line(exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("instruments"), dict):
        raise r.err(key, f"{path} is not a QCoDeS station YAML (no 'instruments' mapping)")
    for ident, c in doc["instruments"].items():
        if not isinstance(c, dict) or not isinstance(c.get("type"), str):
            raise r.err(key, f"{path}: instrument '{ident}' has no 'type'")
