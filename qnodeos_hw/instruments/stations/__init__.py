"""Station configurations (QCoDeS Station YAML) and the pyvisa-sim models they use.

* ``sim.yaml``  -- the simulated lab, default of ``qnodeos-hw station check``;
* ``lab.yaml``  -- documented template for the real lab (addresses to edit);
* ``sgs100a_sim.yaml`` -- pyvisa-sim model of the MW source, referenced as
  ``pyvisa_sim_file: "qnodeos_hw.instruments.stations:sgs100a_sim.yaml"``.
"""

from __future__ import annotations

from pathlib import Path

STATION_DIR = Path(__file__).parent
SGS100A_SIM_FILE = "qnodeos_hw.instruments.stations:sgs100a_sim.yaml"


def station_file(name: str = "sim") -> Path:
    """Path of a packaged station YAML (``"sim"`` or ``"lab"``)."""
    path = STATION_DIR / f"{name}.yaml"
    if name not in ("sim", "lab") or not path.is_file():
        raise FileNotFoundError(f"no packaged station '{name}' (have: sim, lab)")
    return path
