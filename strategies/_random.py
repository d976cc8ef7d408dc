"""``random``: a seeded uniform random walk over candidates.

Guarantee: reproducible (same seed, same scenario => same sequence of schedules). Finds
shallow races quickly; deep ones (one task delayed past many steps) may need PCT or a
systematic search.
"""

from __future__ import annotations

import random

from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Strategy


class RandomWalk(Strategy):
    """At each scheduling point pick uniformly among the candidates."""

    name = "random"
    splitting = "seeded"

    def __init__(self, seed: int | None = None) -> None:
        # Without a seed, take one from the global random module: Hypothesis seeds it
        # deterministically inside @given, so runs there are reproducible.
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self._random = self._rng.random
        self.runs = 0

    def start_run(self) -> bool:
        self.runs += 1
        return True

    def choose(self, count: int, view: PointView) -> int:
        return int(self._random() * count)

    def coverage(self) -> str:
        return f"{self.runs} random schedules (seed {self.seed}); not exhaustive"

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed}
