"""What the simulated HDAWG refuses (``RuntimeError`` family, as ``zhinst.core`` reports
refusals); kept apart from :mod:`.hdawg_sim` so that they stay plain Python classes
when the simulator is compiled."""

from __future__ import annotations


class HDAWGSimError(RuntimeError):
    """Something a real HDAWG would refuse (base class). ``zhinst.core`` reports
    refusals as ``RuntimeError`` too, so callers catch the same family."""


class NodeError(HDAWGSimError, KeyError):
    """The node path does not exist on this device, or is read-only."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ValueRefusedError(HDAWGSimError, ValueError):
    """A node value outside what the device accepts (names the node and value)."""


class ProgramNotLoadedError(HDAWGSimError):
    """A codeword, waveform or enable reached an AWG core with no program loaded."""


class SequencerNotEnabledError(HDAWGSimError):
    """A DIO codeword arrived while the core's sequencer is not running."""


class UnknownCodewordError(HDAWGSimError):
    """The codeword selects a command-table entry that is not defined."""


class ProgramIgnoresDIOError(HDAWGSimError):
    """The loaded program does not execute table entries from DIO codewords."""


class WaveformUploadError(HDAWGSimError, ValueError):
    """A waveform upload does not match the loaded program's slot (index/length)."""


class CommandTableError(HDAWGSimError, ValueError):
    """A command table that the device rejects (schema, or missing waveform)."""


class ElfError(HDAWGSimError, ValueError):
    """The uploaded sequencer program is not a valid ELF of the vendor compiler."""
