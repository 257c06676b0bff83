"""QCoDeS instrument drivers of the node's lab and the station configurations.

* :class:`~.hdawg.ZIHDAWG` -- Zurich Instruments HDAWG over zhinst-toolkit;
* :class:`~.adwin.ADwinController` -- ADwin-Pro II running the NV QDevice controller
  (the QDevice mailbox: ``send_instruction`` / ``read_response`` / ``now_ns``);
* :mod:`.ion_bridge` -- the trapped-ion FPGA bridge over pyserial;
* the MW source is qcodes' own ``RohdeSchwarzSGS100A``;
* :mod:`.stations` -- ``sim`` and ``lab`` station YAMLs; :mod:`.station_check` --
  ``qnodeos-hw station check``.

Modules are imported on use (``from qnodeos_hw.instruments.hdawg import ZIHDAWG``):
importing this package loads no vendor library.
"""
