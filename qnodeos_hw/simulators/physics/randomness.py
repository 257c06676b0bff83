"""Buffered draws from one seeded :class:`numpy.random.Generator` (per node/station).

Drawing numbers one at a time from numpy costs about a microsecond each; the hot
path instead consumes pre-drawn blocks. The sequence of values depends only on the
generator's seed and the sequence of calls, so the same seed gives the same outcomes.
"""

from __future__ import annotations

from typing import Final

import numpy as np

_MAX_POISSON_MEANS: Final = 64


class RandomStream:
    """Uniform and Poisson variates from ``rng`` in blocks of ``block``."""

    __slots__ = ("rng", "_block", "_u", "_ui", "_pois")

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"need a numpy.random.Generator, got {type(rng).__name__}")
        self.rng = rng
        self._block = block
        self._u: list[float] = []
        self._ui = 0
        self._pois: dict[float, list] = {}

    def uniform(self) -> float:
        """One U[0, 1) variate."""
        i = self._ui
        if i >= len(self._u):
            self._u = self.rng.random(self._block).tolist()
            i = 0
        self._ui = i + 1
        return self._u[i]

    def poisson(self, mean: float) -> int:
        """One Poisson(``mean``) variate (buffered per distinct mean)."""
        buf = self._pois.get(mean)
        if buf is None:
            if len(self._pois) >= _MAX_POISSON_MEANS:
                return int(self.rng.poisson(mean))
            buf = self._pois[mean] = [[], 0]
        vals, i = buf
        if i >= len(vals):
            vals = buf[0] = self.rng.poisson(mean, self._block // 4).tolist()
            i = 0
        buf[1] = i + 1
        return vals[i]
