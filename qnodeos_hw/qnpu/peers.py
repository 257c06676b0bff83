"""The wire between the QNPUs of a network (peer protocol of :mod:`.netstack`).

:class:`LocalPeerBus` connects QNPUs of one OS process. It carries each message as
JSON text -- encoded by the sender, decoded by the receiver -- so nothing but data
crosses between nodes, exactly as over TCP between hosts.
"""

from __future__ import annotations

import json
import threading
from typing import Callable


class PeerUnreachableError(ConnectionError):
    """A QNPU sent a peer message to a node that is not on the bus."""


class LocalPeerBus:
    """Routes peer-protocol messages between QNPUs of one process by node name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, Callable[[str, dict], None]] = {}

    def register(self, node: str, deliver: Callable[[str, dict], None],
                 lost: Callable[[str], None] | None = None) -> None:
        """``deliver(src_node, msg)`` is called (from the sender's thread) per message
        (``lost``: a peer went away -- never, within one process)."""
        with self._lock:
            self._nodes[node] = deliver

    def send(self, src: str, dst: str, msg: dict) -> None:
        with self._lock:
            deliver = self._nodes.get(dst)
        if deliver is None:
            raise PeerUnreachableError(f"node '{src}': no QNPU '{dst}' on the peer bus")
        deliver(src, json.loads(json.dumps(msg)))
