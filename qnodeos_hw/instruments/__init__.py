"""QCoDeS instrument drivers of the node's lab and the station configurations.

* :class:`~.hdawg.ZIHDAWG` -- Zurich Instruments HDAWG over zhinst-toolkit;
* :class:`~.adwin.ADwinController` -- ADwin-Pro II running the NV QDevice controller
  (the QDevice mailbox: ``send_instruction`` / ``read_response`` / ``now_ns``);
* :mod:`.ion_bridge` -- the trapped-ion FPGA bridge over pyserial;
* :class:`~.sgs100a.SGS100A` -- the MW source: qcodes' own ``RohdeSchwarzSGS100A``,
  its connection line logged instead of printed (:mod:`.connect_log`);
* :mod:`.stations` -- ``sim`` and ``lab`` station YAMLs; :mod:`.station_check` --
  ``qnodeos-hw station check``.

Modules are imported on use (``from qnodeos_hw.instruments.hdawg import ZIHDAWG``):
importing this package loads no vendor library.
"""
