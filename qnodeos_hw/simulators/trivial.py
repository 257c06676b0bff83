"""A trivial simulated QDevice for the tick link: fixed durations, seeded random
measurement outcomes, no physics. Used by the foundation demo and tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..qdevice.instructions import Response, ResponseKind
from ..qdevice.message import (InstructionMessage, Opcode, decode, encode, response_message)

#: Default durations (ns) per opcode, NV-like orders of magnitude.
DEFAULT_DURATIONS_NS: dict[Opcode, int] = {
    Opcode.NOP: 0,
    Opcode.INIT: 50_000,
    Opcode.ROT_X: 200,
    Opcode.ROT_Y: 200,
    Opcode.ROT_Z: 0,
    Opcode.TWO_QUBIT: 500_000,
    Opcode.MEASURE: 20_000,
    Opcode.ENT_KEEP: 5_000,
    Opcode.ENT_MEASURE: 5_000,
    Opcode.PLAY: 1_000,
}


@dataclass
class TrivialQDevice:
    """Implements :class:`~qnodeos_hw.qdevice.ticklink.TickDevice`."""

    seed: int = 0
    durations_ns: dict[Opcode, int] = field(default_factory=lambda: dict(DEFAULT_DURATIONS_NS))
    ent_success_probability: float = 0.5

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._current: InstructionMessage | None = None
        self.executed: list[tuple[int, InstructionMessage]] = []

    def start(self, message: bytes, t_ns: int) -> int:
        msg = decode(message)
        if not isinstance(msg, InstructionMessage):
            raise TypeError(f"device received a response word {message.hex()}")
        self._current = msg
        self.executed.append((t_ns, msg))
        return self.durations_ns[msg.opcode]

    def finish(self, t_ns: int) -> bytes:
        msg, self._current = self._current, None
        if msg is None:
            raise RuntimeError("finish() without a started instruction")
        if msg.opcode is Opcode.MEASURE:
            resp = Response(ResponseKind.OUTCOME, int(self._rng.integers(2)))
        elif msg.opcode in (Opcode.ENT_KEEP, Opcode.ENT_MEASURE):
            if self._rng.random() < self.ent_success_probability:
                out = int(self._rng.integers(2)) if msg.opcode is Opcode.ENT_MEASURE else None
                resp = Response(ResponseKind.ENT_SUCCESS, out, int(self._rng.integers(4)))
            else:
                resp = Response(ResponseKind.ENT_FAILURE)
        else:
            resp = Response(ResponseKind.SUCCESS)
        return encode(response_message(resp, msg.qubit, msg.seq))
