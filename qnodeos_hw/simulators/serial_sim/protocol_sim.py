"""pyserial handler for ``sim://`` URLs: a serial port wired to a simulated device.

``serial.serial_for_url("sim://ion?seed=1", baudrate=..., timeout=...)`` (after
:func:`qnodeos_hw.simulators.serial_sim.register`) returns :class:`Serial`, a
``SerialBase`` whose far end is :class:`~qnodeos_hw.simulators.ion_fpga_sim.IonBridgeSim`:
every ``write`` is fed to the bridge byte for byte and its answer bytes queue up for
``read``.

URL options (query string):

=================  ==============================================================
``backend``        ``package.module:callable`` -- the ion physics; called as
                   ``callable(seed=<seed>)`` if ``seed`` is given, else ``callable()``;
                   ``physics`` = the packaged model
                   (:func:`~qnodeos_hw.simulators.ion_fpga_sim.default_ion_backend`)
``seed``           integer passed to the backend factory
``mute_after``     answer this many frames, then fall silent (a device that stops
                   answering; the driver's timeout path)
``serial``         serial number reported by the identity command
=================  ==============================================================

Without ``backend`` the trap is empty until ``port.attach(backend)``.

The bridge answers synchronously inside ``write``, so ``read`` never has to wait:
when fewer bytes than asked are queued it returns them at once (what a real port
returns after its timeout, without the wall-clock wait).
"""

from __future__ import annotations

import importlib
import urllib.parse
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, to_bytes

from ..ion_fpga_sim import IonBridgeSim, default_ion_backend
from ..qubit_backend import IonQubitBackend

_DEVICES = ("ion",)
_OPTIONS = ("backend", "seed", "mute_after", "serial")


def _load_factory(spec: str) -> Any:
    if spec == "physics":
        return default_ion_backend
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise SerialException(f"sim:// option backend={spec!r}: expected 'package.module:callable'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SerialException(f"sim:// option backend={spec!r}: {exc}") from exc


class Serial(SerialBase):
    """A serial port whose other end is a simulated device (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.device: IonBridgeSim | None = None
        self._rx = bytearray()
        super().__init__(*args, **kwargs)

    # -- SerialBase ----------------------------------------------------------------------
    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self.device = self._device_from_url(self.port)
        self._rx.clear()
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        """Line settings (baud rate, parity, ...) have no effect on the simulated device."""

    def _device_from_url(self, url: str) -> IonBridgeSim:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sim":
            raise SerialException(f"expected a 'sim://<device>?options' URL, got {url!r}")
        if parts.netloc not in _DEVICES:
            raise SerialException(f"sim:// device {parts.netloc!r} unknown (known: {', '.join(_DEVICES)})")
        opts: dict[str, str] = {}
        for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
            if key not in _OPTIONS:
                raise SerialException(f"sim:// option {key!r} unknown (known: {', '.join(_OPTIONS)})")
            opts[key] = values[-1]
        try:
            seed = int(opts["seed"]) if "seed" in opts else None
            mute_after = int(opts["mute_after"]) if "mute_after" in opts else None
        except ValueError as exc:
            raise SerialException(f"sim:// option seed/mute_after must be integers: {exc}") from exc
        backend = None
        if "backend" in opts:
            factory = _load_factory(opts["backend"])
            backend = factory(seed=seed) if seed is not None else factory()
        return IonBridgeSim(backend, mute_after=mute_after,
                            serial_number=opts.get("serial", "SIM0001"))

    @property
    def in_waiting(self) -> int:
        self._check_open()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        self._check_open()
        data = bytes(self._rx[:size])
        del self._rx[:size]
        return data

    def write(self, data: Any) -> int:
        self._check_open()
        data = to_bytes(data)
        self._rx += self.device.receive(data)
        return len(data)

    def flush(self) -> None:
        self._check_open()

    def reset_input_buffer(self) -> None:
        self._check_open()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        self._check_open()

    @property
    def out_waiting(self) -> int:
        self._check_open()
        return 0

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        self._check_open()
        return True

    @property
    def dsr(self) -> bool:
        self._check_open()
        return True

    @property
    def ri(self) -> bool:
        self._check_open()
        return False

    @property
    def cd(self) -> bool:
        self._check_open()
        return True

    # -- simulation ----------------------------------------------------------------------
    def attach(self, backend: IonQubitBackend) -> None:
        """Attach the qubit physics to the simulated device at the far end."""
        self._check_open()
        self.device.attach(backend)

    def _check_open(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
