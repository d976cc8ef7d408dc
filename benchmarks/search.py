"""Search quality: how many schedules each strategy needs to find each gallery bug, and
what proving each fixed version within its bound costs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import explorer
from examples.gallery import Example


@dataclass(frozen=True)
class Finding:
    example: str
    strategy: str
    counts: tuple[int, ...]  # schedules to the first failure, one per seed (or one)
    misses: int  # seeds that did not find it within the cap
    cap: int

    def cell(self) -> str:
        if not self.counts:
            return f"not found in {self.cap}"
        if len(self.counts) + self.misses == 1:
            return str(self.counts[0])
        text = (f"{statistics.median(self.counts):g} "
                f"({min(self.counts)}-{max(self.counts)})")
        return text + (f", {self.misses} missed" if self.misses else "")


def schedules_to_failure(example: Example, strategy: str, seed: int | None,
                         cap: int) -> int | None:
    result = explorer.explore(example.buggy, strategy=strategy, seed=seed,
                              deviation_bound=example.bound if strategy == "systematic"
                              else None,
                              max_schedules=cap, max_steps=example.max_steps,
                              raise_on_failure=False, **example.options())
    return result.failure.found_after if result.failure is not None else None


def find(example: Example, strategy: str, seeds: int, cap: int) -> Finding:
    runs = [None] if strategy == "systematic" else list(range(seeds))
    found = [schedules_to_failure(example, strategy, seed, cap) for seed in runs]
    counts = tuple(n for n in found if n is not None)
    return Finding(example.name, strategy, counts, len(found) - len(counts), cap)


@dataclass(frozen=True)
class Proof:
    example: str
    bound: int
    schedules: int
    exhausted: bool
    passed: bool
    seconds: float


def prove(example: Example, cap: int, strategy: str = "systematic") -> Proof:
    """Explore the fixed version of ``example`` within its deviation bound."""
    result = explorer.explore(example.fixed, strategy=strategy,
                              deviation_bound=example.bound, max_schedules=cap,
                              max_steps=example.max_steps, raise_on_failure=False,
                              **example.options())
    return Proof(example.name, example.bound, result.schedules, result.exhausted,
                 result.failure is None, result.elapsed)
