"""The end-node API server of a node started by hand: :class:`AuthenticatedQNPUServer`."""

from __future__ import annotations

import logging
import socket
from typing import Any

from ..protocol import api_auth
from ..protocol.framing import FramingError
from ..qnpu.server import QNPUServer

log = logging.getLogger(__name__)


class AuthenticatedQNPUServer(QNPUServer):
    """A :class:`~qnodeos_hw.qnpu.server.QNPUServer` that serves a connection only once
    it proved ``key``, the node's end-node API key (:mod:`qnodeos_hw.protocol.api_auth`);
    one that does not is closed before the QNPU hears of it (``refused`` says so)."""

    def __init__(self, qnpu: Any, key: bytes, host: str = "127.0.0.1", port: int = 0,
                 **kw: Any) -> None:
        super().__init__(qnpu, host, port, **kw)
        self._key = key

    def _serve(self, client: socket.socket) -> None:
        try:
            api_auth.challenge(client, self._key, self.qnpu.name)
        except (api_auth.ApiAuthError, FramingError, OSError) as exc:
            self.refused.append(f"QNPU '{self.qnpu.name}': a connection refused: {exc}")
            log.warning("%s", self.refused[-1])
            self._clients.discard(client)
            try:
                client.close()
            except OSError:
                pass
            return
        super()._serve(client)
