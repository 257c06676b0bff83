"""A netqasm connection that talks to a QNPU over TCP (framed netqasm messages)."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from typing import Any, Callable, Optional

import numpy as np
from netqasm.backend.messages import (ErrorMessage, MsgDoneMessage, ReturnArrayMessage,
                                      ReturnRegMessage, deserialize_return_msg)
from netqasm.lang.operand import Register
from netqasm.sdk.builder import LabelManager
from netqasm.sdk.connection import BaseNetQASMConnection
from netqasm.sdk.shared_memory import SharedMemory
from netqasm.sdk.transpile import NVSubroutineTranspiler

from ..protocol.extensions import (EXT_APP_NAME, EXT_BYE, EXT_ERROR, EXT_HELLO, EXT_STATE_REP,
                                   EXT_STATE_REQ, NotSimulatedError)
from ..protocol import api_auth
from ..protocol.framing import recv_frame, send_frame
from ..protocol.trace import Trace
from .directory import NetworkDirectory
from .sdk_cache import SdkShapeCache
from .timing import CNPUClocks, program_lp, qnpu_lp

_TS = struct.Struct(">Q")
_SUBROUTINE = 0x02  # netqasm MessageType.SUBROUTINE

class QNPUConnectionError(ConnectionError):
    """The QNPU connection broke or was never made."""


class SubroutineFailedError(RuntimeError):
    """The QNPU failed a message of this program; ``error`` is the QNPU's error name."""

    def __init__(self, error: str, message: str, code: int) -> None:
        self.error, self.code = error, code
        super().__init__(f"{error}: {message}")


class QNPUConnection(BaseNetQASMConnection):
    """``BaseNetQASMConnection`` over TCP to the QNPU of the node this app's role runs on.

    ``directory`` locates the node; ``timeout_s`` bounds every blocking wait (s);
    ``trace`` (optional) records 'cnpu_message_sent' / 'cnpu_done_received' events
    (host time: ``t_ns`` = -1, the CNPU has no virtual clock, use ``wall_ns`` for round
    trips). ``clocks`` (modelled time): the program's virtual clock stamps every frame
    with its arrival time and learns the QNPU's (see :mod:`qnodeos_hw.timebase.sync`).
    """

    def __init__(self, app_name: str, node_name: Optional[str] = None, app_id: Optional[int] = None,
                 max_qubits: int = 5, hardware_config: Any = None, log_config: Any = None,
                 epr_sockets: Any = None, compiler: Any = None, return_arrays: bool = True,
                 _init_app: bool = True, _setup_epr_sockets: bool = True, *,
                 directory: NetworkDirectory, timeout_s: float = 120.0,
                 trace: Trace | None = None, clocks: CNPUClocks | None = None) -> None:
        self._directory = directory
        self._info = directory.network_info()
        entry = directory.node_of_role(app_name)
        if compiler is None and entry.flavour == "nv":
            compiler = NVSubroutineTranspiler
        self._timeout = timeout_s
        self._trace = trace
        self._node = directory.node_of_role(app_name).name
        self._shm = SharedMemory()
        self._lock = threading.Lock()
        self._pc = clocks.of(app_name) if clocks is not None else None
        self._qnpu_lp = qnpu_lp(entry.name)
        self._done_ts: dict[int, int] = {}
        self._state_ts = 0
        self._cv = self._pc.cond if self._pc is not None else threading.Condition()
        self._sent = 0
        self._done: set[int] = set()
        self._failed: dict[int, SubroutineFailedError] = {}
        self._callbacks: dict[int, Callable] = {}
        self._detail: dict | None = None
        self._state_reply: dict | None = None
        self._closed = False
        self._sdk_cache: SdkShapeCache | None = None
        try:
            self._sock = socket.create_connection(entry.qnpu, timeout=timeout_s)
        except OSError as exc:
            raise QNPUConnectionError(f"cannot reach the QNPU of node '{entry.name}' at "
                                      f"{entry.qnpu[0]}:{entry.qnpu[1]}: {exc}") from exc
        api_key = directory.qnpu_keys.get(entry.name)
        if api_key is not None:  # a node started by hand: prove the network's credential
            try:
                api_auth.answer(self._sock, api_key.encode(), entry.name)
            except (api_auth.ApiAuthError, OSError) as exc:
                self._sock.close()
                raise QNPUConnectionError(f"QNPU of node '{entry.name}' at {entry.qnpu[0]}:"
                                          f"{entry.qnpu[1]}: {exc}") from None
        self._app_name_ = app_name
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._pc is not None:  # name this program's logical process (untimed)
            send_frame(self._sock, bytes([EXT_HELLO]) + json.dumps(
                {"lp": program_lp(app_name)}).encode())
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name=f"cnpu-{app_name}-rx")
        self._reader.start()
        super().__init__(app_name=app_name, node_name=entry.name, app_id=app_id,
                         max_qubits=max_qubits, hardware_config=hardware_config,
                         log_config=log_config, epr_sockets=epr_sockets, compiler=compiler,
                         return_arrays=return_arrays, _init_app=_init_app,
                         _setup_epr_sockets=_setup_epr_sockets)
        if _init_app:  # name the process in the QNPU's trace (no reply; not a netqasm message)
            with self._lock:
                self._send(bytes([EXT_APP_NAME]) + json.dumps(
                    {"app_id": self.app_id, "name": app_name}).encode())

    def _send(self, payload: bytes) -> None:
        """Send one frame (modelled time: stamped with its arrival time); under _lock."""
        if self._pc is not None:
            kind = "subroutine" if payload[:1] == bytes([_SUBROUTINE]) else "control"
            payload = _TS.pack(self._pc.stamp(self._qnpu_lp, kind)) + payload
        send_frame(self._sock, payload)

    def _rec(self, kind: str, **data: Any) -> None:
        if self._trace is None:
            return
        if self._pc is None:
            self._trace.record(-1, self._node, kind, None, app=self._app_name_, **data)
        else:
            self._rec_at(self._pc.t_ns, kind, **data)

    def _rec_at(self, t_ns: int, kind: str, **data: Any) -> None:
        if self._trace is not None:
            self._pc.trace_seq += 1
            self._trace.record_event(t_ns, self._node, kind, None, {"app": self._app_name_, **data},
                                     source=f"cnpu:{self._app_name_}", seq=self._pc.trace_seq)

    def flush(self, block: bool = True, callback: Optional[Callable] = None) -> None:
        """netqasm's flush, then a fresh branch-label manager: labels only need to be unique
        within one subroutine, and netqasm's ``LabelManager`` scans every label ever made
        (per-flush cost grew linearly with the number of subroutines sent: 9 -> 21 ms per
        DQC iteration over 1,200 iterations)."""
        try:
            super().flush(block, callback)
        finally:
            builder = getattr(self, "_builder", None)
            if builder is not None and hasattr(builder, "_label_mgr"):
                builder._label_mgr = LabelManager()

    def commit_protosubroutine(self, protosubroutine: Any, block: bool = True,
                               callback: Optional[Callable] = None) -> None:
        """netqasm's, without its eager debug text (netqasm formats the whole
        (proto)subroutine into f-strings for ``logger.debug`` even when debug logging is
        off: about a third of a millisecond per subroutine, on the path the server's
        qubit waits through), and compiled once per shape (:mod:`.sdk_cache`: the bytes
        are netqasm's own). With debug logging or line tracking on, netqasm's path runs."""
        if self._logger.isEnabledFor(logging.DEBUG) or getattr(self._builder, "_track_lines",
                                                               False):
            return super().commit_protosubroutine(protosubroutine, block, callback)
        if self._sdk_cache is None:
            self._sdk_cache = SdkShapeCache(self._builder.subrt_compile_subroutine, self.app_id)
        self._commit_serialized_message(self._sdk_cache.message(protosubroutine), block,
                                        callback)
        self._builder._reset()

    # -- netqasm hooks ----------------------------------------------------------------------
    def _get_network_info(self):
        return self._info

    @property
    def shared_memory(self) -> SharedMemory:
        return self._shm

    def _commit_serialized_message(self, raw_msg: bytes, block: bool = True,
                                   callback: Optional[Callable] = None) -> None:
        with self._lock:
            msg_id = self._sent
            self._sent += 1
            if callback is not None:
                self._callbacks[msg_id] = callback
            try:
                self._send(raw_msg)
                self._rec("cnpu_message_sent", msg_id=msg_id, type=raw_msg[0], bytes=len(raw_msg))
            except OSError as exc:
                raise QNPUConnectionError(f"QNPU connection lost: {exc}") from exc
        if raw_msg[:1] == b"\x04":  # SignalMessage: the QNPU does not answer
            with self._cv:
                self._done.add(msg_id)
            return
        if block:
            self._wait(msg_id)

    def _wait(self, msg_id: int) -> None:
        pred = lambda: msg_id in self._done or msg_id in self._failed or self._closed  # noqa: E731
        with self._cv:
            if self._pc is not None:
                ok = self._pc.wait(pred, self._timeout)
                ts = self._done_ts.pop(msg_id, None)
                if ts is not None:  # the reply's arrival, on the program's thread (reproducible)
                    self._rec_at(ts, "cnpu_done_received", msg_id=msg_id)
                    self._pc.consume(ts)
            else:
                ok = self._cv.wait_for(pred, self._timeout)
            if msg_id in self._failed:
                raise self._failed.pop(msg_id)
            if not ok or msg_id not in self._done:
                raise QNPUConnectionError(f"no answer from the QNPU for message {msg_id} "
                                          f"({'closed' if self._closed else 'timeout'})")

    def block(self) -> None:
        """Wait until every message sent so far is done."""
        for m in range(self._sent):
            self._wait(m)

    def close(self, clear_app: bool = True, stop_backend: bool = False, exception: bool = False) -> None:
        try:
            super().close(clear_app=clear_app, stop_backend=stop_backend, exception=exception)
        finally:
            self.disconnect()

    def disconnect(self) -> None:
        """Close the TCP connection (the QNPU frees this program's qubits and sockets);
        in modelled time a goodbye frame first, so the QNPU does it at a virtual time."""
        if self._pc is not None and not self._closed:
            try:
                with self._lock:
                    self._send(bytes([EXT_BYE]))
            except OSError:
                pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    # -- receiving ------------------------------------------------------------------------
    def _read_loop(self) -> None:
        pc = self._pc
        try:
            while True:
                frame = recv_frame(self._sock)
                if frame is None:
                    break
                if pc is None:
                    self._on_frame(frame, 0)
                else:
                    ts = _TS.unpack_from(frame)[0]
                    body = frame[8:]
                    pc.deliver(self._qnpu_lp, lambda: self._on_frame(body, ts))
        except OSError:
            pass
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()

    def _on_frame(self, frame: bytes, ts: int) -> None:
        t = frame[0]
        if t == EXT_ERROR:
            self._detail = json.loads(frame[1:])
            return
        if t == EXT_STATE_REP:
            with self._cv:
                self._state_reply = json.loads(frame[1:])
                self._state_ts = ts
                self._cv.notify_all()
            return
        msg = deserialize_return_msg(frame)
        if isinstance(msg, ReturnRegMessage):
            reg = Register.from_raw(msg.register)
            self._shm.set_register(reg, msg.value)
        elif isinstance(msg, ReturnArrayMessage):
            self._shm.init_new_array(msg.address, new_array=list(msg.values))
        elif isinstance(msg, MsgDoneMessage):
            cb = self._callbacks.pop(msg.msg_id, None)
            with self._cv:
                self._done.add(msg.msg_id)
                self._done_ts[msg.msg_id] = ts
                self._cv.notify_all()
            if self._pc is None:
                self._rec("cnpu_done_received", msg_id=msg.msg_id)
            if cb is not None:
                cb()
        elif isinstance(msg, ErrorMessage):
            d = self._detail or {}
            self._detail = None
            mid = d.get("msg_id", -1)
            err = SubroutineFailedError(d.get("error", "QNPUError"),
                                        d.get("message", "no detail"), msg.err_code)
            with self._cv:
                self._failed[mid] = err
                self._done_ts[mid] = ts
                self._cv.notify_all()

    # -- simulation-only queries ---------------------------------------------------------------
    def qubit_state(self, qubit_ids: list[int], full: bool = False) -> np.ndarray:
        """Density matrix of this program's virtual qubits (simulated stations only)."""
        req = {"app_id": self.app_id, "qubits": list(qubit_ids), "full": full}
        with self._cv:
            self._state_reply = None
        with self._lock:
            self._send(bytes([EXT_STATE_REQ]) + json.dumps(req).encode())
        pred = lambda: self._state_reply is not None or self._closed  # noqa: E731
        with self._cv:
            if self._pc is not None:
                ok = self._pc.wait(pred, self._timeout)
                self._pc.consume(self._state_ts)
            else:
                ok = self._cv.wait_for(pred, self._timeout)
            rep = self._state_reply
        if not ok or rep is None:
            raise QNPUConnectionError("no answer from the QNPU to a qubit-state query")
        if not rep["ok"]:
            if rep["error"] == "NotSimulatedError":
                raise NotSimulatedError(rep["message"])
            raise SubroutineFailedError(rep["error"], rep["message"], -1)
        return np.array(rep["re"]) + 1j * np.array(rep["im"])

