"""The node tree of a simulated HDAWG, in LabOne's ``listNodesJSON`` format.

Only the nodes our driver and zhinst-toolkit's ``HDAWG``/``AWG`` classes touch are
listed; names, types, units and enumerations follow LabOne's HDAWG node
documentation. Waveform nodes (``awgs/n/waveform/waves/i``) are dynamic, as on the
real device: they are described on request by :func:`wave_node_info`.
"""

from __future__ import annotations

from typing import Any

#: signal output ranges of the HDAWG (V)
SIGOUT_RANGES_V = (0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 3.0, 4.0, 5.0)

_RW = "Read, Write, Setting"
_R = "Read"
_RWV = "Read, Write"

DIO_MODE_OPTIONS = {
    "0": '"manual": Manual setting of the DIO output.',
    "1": '"awg_sequencer_commands": The AWG sequencer drives the DIO output.',
    "2": '"dio_codeword": The DIO carries codewords that the AWG reads.',
    "3": '"qccs": QCCS mode (ZSync).',
}
_POLARITY = {"0": '"none": None', "1": '"low": Low', "2": '"high": High', "3": '"both": Both'}
_SLOPE = {"0": '"off": Off', "1": '"rising": Rising', "2": '"falling": Falling',
          "3": '"both": Both'}


def _info(path: str, desc: str, props: str, typ: str, unit: str = "None",
          options: dict[str, str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"Node": path.upper(), "Description": desc, "Properties": props,
                         "Type": typ, "Unit": unit}
    if options:
        d["Options"] = options
    return d


def wave_node_info(serial: str, core: int, index: int) -> dict[str, Any]:
    """Node info of one waveform slot (dynamic node)."""
    return _info(f"/{serial}/awgs/{core}/waveform/waves/{index}",
                 "Waveform memory slot (native AWG format).", _RWV, "ZIVectorData",
                 "None")


def hdawg_nodedoc(serial: str, n_channels: int) -> dict[str, dict[str, Any]]:
    """``{lower-case path: node info}`` for an HDAWG with ``n_channels`` outputs (4 or 8)."""
    s = f"/{serial}"
    nodes = [
        _info(f"{s}/features/devtype", "Device type.", _R, "String"),
        _info(f"{s}/features/options", "Installed options.", _R, "String"),
        _info(f"{s}/features/serial", "Device serial.", _R, "String"),
        _info(f"{s}/system/fwrevision", "Firmware revision.", _R, "Integer (64 bit)"),
        _info(f"{s}/system/fpgarevision", "FPGA revision.", _R, "Integer (64 bit)"),
        _info(f"{s}/system/clocks/sampleclock/freq", "Sample clock frequency.", _RW,
              "Double", "1/s"),
        _info(f"{s}/system/clocks/sampleclock/status", "Sample clock status.", _R,
              "Integer (enumerated)", "None",
              {"0": '"locked": Locked', "1": '"error": Error', "2": '"busy": Busy'}),
        _info(f"{s}/system/clocks/referenceclock/source", "Reference clock source.", _RW,
              "Integer (enumerated)", "None",
              {"0": '"internal": Internal', "1": '"external": External',
               "2": '"zsync": ZSync'}),
        _info(f"{s}/system/clocks/referenceclock/status", "Reference clock status.", _R,
              "Integer (enumerated)", "None",
              {"0": '"locked": Locked', "1": '"error": Error', "2": '"busy": Busy'}),
        _info(f"{s}/system/awg/channelgrouping", "AWG channel grouping.", _RW,
              "Integer (enumerated)", "None",
              {"0": '"groups_of_2": 4x2', "1": '"groups_of_4": 2x4',
               "2": '"groups_of_8": 1x8'}),
        _info(f"{s}/dios/0/mode", "DIO mode.", _RW, "Integer (enumerated)", "None",
              DIO_MODE_OPTIONS),
        _info(f"{s}/dios/0/drive", "DIO byte drive mask.", _RW, "Integer (64 bit)"),
        _info(f"{s}/dios/0/output", "DIO output value.", _RW, "Integer (64 bit)"),
        _info(f"{s}/dios/0/input", "DIO input value.", _R, "Integer (64 bit)"),
        _info(f"{s}/dios/0/interface", "DIO interface standard.", _RW,
              "Integer (enumerated)", "None", {"0": '"lvcmos": LVCMOS', "1": '"lvds": LVDS'}),
    ]
    for ch in range(n_channels):
        p = f"{s}/sigouts/{ch}"
        nodes += [
            _info(f"{p}/on", "Signal output on/off.", _RW, "Integer (64 bit)"),
            _info(f"{p}/range", "Signal output range.", _RW, "Double", "V"),
            _info(f"{p}/offset", "Signal output DC offset.", _RW, "Double", "V"),
            _info(f"{p}/direct", "Direct output path (no amplifier).", _RW,
                  "Integer (64 bit)"),
            _info(f"{p}/busy", "Output busy.", _R, "Integer (64 bit)"),
        ]
    for core in range(n_channels // 2):
        p = f"{s}/awgs/{core}"
        nodes += [
            _info(f"{p}/enable", "Sequencer run state.", _RW, "Integer (64 bit)"),
            _info(f"{p}/single", "Single-shot mode.", _RW, "Integer (64 bit)"),
            _info(f"{p}/ready", "Program loaded and ready.", _R, "Integer (64 bit)"),
            _info(f"{p}/elf/data", "Sequencer program (ELF).", _RWV, "ZIVectorData"),
            _info(f"{p}/elf/status", "ELF upload status (0 ok, 1 error, 2 busy).", _R,
                  "Integer (64 bit)"),
            _info(f"{p}/elf/progress", "ELF upload progress.", _R, "Double", "%"),
            _info(f"{p}/sequencer/status", "Sequencer status bits.", _R, "Integer (64 bit)"),
            _info(f"{p}/waveform/descriptors", "Waveform descriptors (JSON).", _R, "String"),
            _info(f"{p}/commandtable/data", "Command table (JSON).", _RWV, "ZIVectorData"),
            _info(f"{p}/commandtable/status", "Command table status.", _R, "Integer (64 bit)"),
            _info(f"{p}/dio/mask/value", "DIO codeword mask.", _RW, "Integer (64 bit)"),
            _info(f"{p}/dio/mask/shift", "DIO codeword shift.", _RW, "Integer (64 bit)"),
            _info(f"{p}/dio/valid/index", "DIO valid bit index.", _RW, "Integer (64 bit)"),
            _info(f"{p}/dio/valid/polarity", "DIO valid bit polarity.", _RW,
                  "Integer (enumerated)", "None", _POLARITY),
            _info(f"{p}/dio/strobe/index", "DIO strobe bit index.", _RW, "Integer (64 bit)"),
            _info(f"{p}/dio/strobe/slope", "DIO strobe slope.", _RW, "Integer (enumerated)",
                  "None", _SLOPE),
        ]
        for out in (0, 1):
            nodes += [
                _info(f"{p}/outputs/{out}/amplitude", "AWG output amplitude scale.", _RW,
                      "Double", "None"),
                _info(f"{p}/outputs/{out}/modulation/mode", "Modulation mode.", _RW,
                      "Integer (enumerated)", "None", {"0": '"plain": Plain'}),
            ]
    return {n["Node"].lower(): n for n in nodes}


def zi_nodedoc() -> dict[str, dict[str, Any]]:
    """Data-server level nodes (``/zi/...``)."""
    nodes = [
        _info("/zi/about/dataserver", "Data server name.", _R, "String"),
        _info("/zi/about/version", "LabOne version.", _R, "String"),
        _info("/zi/about/fullversion", "LabOne full version.", _R, "String"),
        _info("/zi/about/revision", "LabOne revision.", _R, "Integer (64 bit)"),
        _info("/zi/devices/connected", "Connected devices.", _R, "String"),
        _info("/zi/devices/visible", "Visible devices.", _R, "String"),
    ]
    return {n["Node"].lower(): n for n in nodes}
