"""Instrument connection lines through :mod:`logging` instead of ``print``.

QCoDeS' ``Instrument.connect_message`` prints ``Connected to: <vendor> <model> ...`` to
stdout for every instrument; a simulated network loads dozens. Our drivers use
:class:`LoggedConnectMessage`, which logs the same line at INFO on the logger
``qnodeos_hw.instruments.connect`` (shown with ``qnodeos-hw -v``).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class LoggedConnectMessage:
    """Mixin (before the QCoDeS base class) whose ``connect_message`` logs at INFO."""

    def connect_message(self, idn_param: str = "IDN", begin_time: float | None = None) -> None:
        idn = {"vendor": None, "model": None, "serial": None, "firmware": None}
        idn.update(self.parameters[idn_param].get())  # type: ignore[attr-defined]
        t = time.time() - (begin_time or self._t0)  # type: ignore[attr-defined]
        log.info("Connected to: %s %s (serial:%s, firmware:%s) in %.2fs [%s]",
                 idn["vendor"], idn["model"], idn["serial"], idn["firmware"], t,
                 getattr(self, "name", "?"))
