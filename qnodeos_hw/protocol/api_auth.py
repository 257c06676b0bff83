"""Authentication of a program's connection to a QNPU's end-node API (a node started by
hand, ``qnodeos-hw node serve --network``).

Both ends hold the node's *API key* (:func:`api_key`: derived from the network's secret
and the node's name; a CNPU process is given only its own node's). Before any netqasm
message, mutual challenge-response, one JSON frame each:

1. QNPU -> program: ``{"qnpu_api": 1, "node": NAME, "nonce": Ns}``
2. program -> QNPU: ``{"nonce": Nc, "mac": HMAC(key, "cnpu|NAME|Ns|Nc")}``
3. QNPU -> program: ``{"ok": HMAC(key, "qnpu|NAME|Ns|Nc")}``, or ``{"error": why}`` and
   the connection closes.

So a program speaks to the node only with the network's credential, and learns that the
QNPU holds it too. Frames of the exchange are at most :data:`MAX_AUTH_FRAME` bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket

from .framing import FramingError, recv_frame, send_frame

MAX_AUTH_FRAME = 1024
#: how long either end waits for the other's frame of the exchange (s)
AUTH_TIMEOUT_S = 5.0


class ApiAuthError(PermissionError):
    """The exchange failed: wrong credential, wrong node, or no exchange at all."""


class CredentialRefusedError(ApiAuthError):
    """The two ends do not hold the same key (a network secret differs)."""


def derive_key(secret: str | bytes, *label: str) -> str:
    """A key for ``label`` (e.g. ``("qnpu-api", "alice")``) derived from a network's
    secret: HMAC-SHA256, hex. Different labels give independent keys."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, "|".join(label).encode(), hashlib.sha256).hexdigest()


def api_key(secret: str | bytes, node: str) -> str:
    """The end-node API key of ``node`` in the network of ``secret``."""
    return derive_key(secret, "qnpu-api", node)


def _mac(key: bytes, who: str, node: str, ns: str, nc: str) -> str:
    return hmac.new(key, f"{who}|{node}|{ns}|{nc}".encode(), hashlib.sha256).hexdigest()


def _frame(sock: socket.socket, what: str) -> dict:
    try:
        raw = recv_frame(sock, MAX_AUTH_FRAME)
    except socket.timeout:
        raise ApiAuthError(f"no {what} within {AUTH_TIMEOUT_S:.0f} s") from None
    except FramingError as exc:
        raise ApiAuthError(f"{what}: {exc}") from None
    if raw is None:
        raise ApiAuthError(f"the connection closed before the {what}")
    try:
        msg = json.loads(raw)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        raise ApiAuthError(f"the {what} is no JSON object")
    return msg


def challenge(sock: socket.socket, key: bytes, node: str,
              timeout_s: float = AUTH_TIMEOUT_S) -> None:
    """QNPU side: challenge a new connection (ApiAuthError if it does not prove the key;
    it has been told why)."""
    ns = secrets.token_hex(16)
    old = sock.gettimeout()
    sock.settimeout(timeout_s)
    try:
        send_frame(sock, json.dumps({"qnpu_api": 1, "node": node, "nonce": ns}).encode())
        msg = _frame(sock, "answer to the challenge")
        nc, mac = msg.get("nonce"), msg.get("mac")
        if not (isinstance(nc, str) and isinstance(mac, str) and 0 < len(nc) <= 64):
            raise ApiAuthError("the answer needs 'nonce' and 'mac' (strings)")
        if not hmac.compare_digest(mac, _mac(key, "cnpu", node, ns, nc)):
            send_frame(sock, json.dumps({"error": f"node '{node}' refused the credential "
                                                  "(not this network's secret)"}).encode())
            raise ApiAuthError(f"node '{node}': a connection did not prove the network's "
                               "credential")
        send_frame(sock, json.dumps({"ok": _mac(key, "qnpu", node, ns, nc)}).encode())
    finally:
        sock.settimeout(old)


def answer(sock: socket.socket, key: bytes, node: str, timeout_s: float = AUTH_TIMEOUT_S) -> None:
    """Program side: answer the QNPU's challenge on a new connection to ``node``
    (ApiAuthError naming what went wrong)."""
    old = sock.gettimeout()
    sock.settimeout(timeout_s)
    try:
        ns = read_challenge(sock, node)
        nc = secrets.token_hex(16)
        send_frame(sock, json.dumps({"nonce": nc, "mac": _mac(key, "cnpu", node, ns, nc)}).encode())
        reply = _frame(sock, f"verdict of node '{node}'")
        if "error" in reply:
            raise CredentialRefusedError(f"{str(reply['error'])[:200]}")
        ok = reply.get("ok")
        if not isinstance(ok, str) or not hmac.compare_digest(ok, _mac(key, "qnpu", node, ns, nc)):
            raise CredentialRefusedError(f"node '{node}' did not prove the network's credential")
    finally:
        sock.settimeout(old)


def read_challenge(sock: socket.socket, node: str) -> str:
    """Program side: the nonce of node ``node``'s challenge, the first frame of a new
    connection (ApiAuthError if none comes, or another node's)."""
    msg = _frame(sock, f"challenge of node '{node}' (is it a node started by hand?)")
    ns = msg.get("nonce")
    if msg.get("qnpu_api") != 1 or not isinstance(ns, str):
        raise ApiAuthError(f"what answers as node '{node}' sent no end-node API challenge")
    if msg.get("node") != node:
        raise ApiAuthError(f"expected node '{node}', but node {str(msg.get('node'))[:40]!r} "
                           "answers there")
    return ns
