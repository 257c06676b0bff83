"""The R&S SGS100A MW source: qcodes' own driver, its connection line logged (INFO)
instead of printed (see :mod:`.connect_log`). Nothing else differs."""

from __future__ import annotations

from qcodes.instrument_drivers.rohde_schwarz import RohdeSchwarzSGS100A

from .connect_log import LoggedConnectMessage


class SGS100A(LoggedConnectMessage, RohdeSchwarzSGS100A):
    """qcodes' ``RohdeSchwarzSGS100A`` with a logged connection line."""
