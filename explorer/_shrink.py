"""Shrinking a failing schedule to a minimal one that fails the same way.

Schedules are ordered by simplicity: fewer deviations first, then fewer steps (nothing
runs after the failure), then lower candidate indices. A candidate schedule is kept only
if it fails "the same way": the same outcome kind at the same source location, with the
same exception type (:meth:`Outcome.signature`).

Passes, all deterministic:

1. drop each deviation in turn (later decisions that no longer fit fall back to default),
   within a quarter of the budget;
2. search every schedule with fewer deviations, in order of increasing deviations, for one
   that fails the same way — when this search completes, the deviation count is proven
   minimal;
3. lower each remaining deviation's candidate index.

Every run counts against the budget (runs and seconds); when the budget runs out the best
schedule so far is kept and the result says minimality was not proven.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import explorer.strategies as _strategies
from explorer._runtime import Chooser, RunRecord
from explorer._schedule import count_deviations

DEFAULT_MAX_RUNS = 2000
DEFAULT_MAX_SECONDS = 10.0

RunFn = Callable[[Chooser], RunRecord]
Signature = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class ShrinkReport:
    """What shrinking did: deviations before and after, runs spent, and whether the final
    deviation count is proven minimal (every schedule with fewer deviations was run)."""

    original_deviations: int
    deviations: int
    original_steps: int
    steps: int
    runs: int
    proven_minimal: bool
    budget_exhausted: bool

    def describe(self) -> str:
        proof = ("minimal: no schedule with fewer deviations fails this way"
                 if self.proven_minimal else
                 "minimality not proven within the shrinking budget")
        return (f"shrunk from {self.original_deviations} to {self.deviations} deviation(s) "
                f"and {self.original_steps} to {self.steps} steps in {self.runs} runs; "
                f"{proof}")


class _Budget(Exception):
    """The shrinking budget ran out."""


def _key(record: RunRecord) -> tuple[int, int, tuple[int, ...]]:
    return (count_deviations(record.decisions), record.stats.steps, tuple(record.decisions))


class Shrinker:
    """Shrinks one failing schedule; ``run(chooser)`` executes the scenario once."""

    def __init__(self, run: RunFn, target: Signature, *, max_runs: int = DEFAULT_MAX_RUNS,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self._run = run
        self._target = target
        self._max_runs = max_runs
        self._deadline = time.perf_counter() + max_seconds
        self.runs = 0

    def _execute(self, chooser: Chooser) -> RunRecord:
        if self.runs >= self._max_runs or time.perf_counter() > self._deadline:
            raise _Budget
        self.runs += 1
        return self._run(chooser)

    def _same(self, record: RunRecord) -> bool:
        return bool(record.outcome.failed and record.outcome.signature() == self._target)

    def _try(self, decisions: list[int]) -> RunRecord | None:
        fixed = _strategies.Fixed(decisions, strict=False)
        fixed.start_run()
        record = self._execute(fixed.choose)
        return record if self._same(record) else None

    def shrink(self, best: RunRecord) -> tuple[RunRecord, ShrinkReport]:
        original = best
        proven = exhausted = False
        try:
            best = self._drop_deviations(best)
            best, proven = self._search_fewer(best)
            best = self._lower_indices(best)
        except _Budget:
            exhausted = True
        return best, ShrinkReport(
            count_deviations(original.decisions), count_deviations(best.decisions),
            original.stats.steps, best.stats.steps, self.runs, proven, exhausted)

    # ------------------------------------------------------------------ passes

    def _drop_deviations(self, best: RunRecord) -> RunRecord:
        """Drop deviations one at a time, within a quarter of the run budget: a schedule
        with very many deviations (a livelock found by PCT has thousands) must leave the
        search for fewer deviations, which finds small minima directly, enough runs."""
        allowance = self.runs + self._max_runs // 4
        improved = True
        while improved and self.runs < allowance:
            improved = False
            positions = [i for i, d in enumerate(best.decisions) if d]
            for position in positions:
                if self.runs >= allowance:
                    break
                trial = list(best.decisions[: position + 1])
                trial[position] = 0
                trial += best.decisions[position + 1:]
                record = self._try(trial)
                if record is not None and _key(record) < _key(best):
                    best, improved = record, True
                    break
        return best

    def _search_fewer(self, best: RunRecord) -> tuple[RunRecord, bool]:
        """Systematic search below the current deviation count; the first same failure
        it meets has the fewest deviations possible."""
        current = count_deviations(best.decisions)
        if current == 0:
            return best, True
        search = _strategies.Systematic(deviation_bound=current - 1)
        while search.start_run():
            record = self._execute(search.choose)
            search.end_run(record.decisions, record.outcome.failed)
            if self._same(record) and _key(record) < _key(best):
                return record, True
        return best, True

    def _lower_indices(self, best: RunRecord) -> RunRecord:
        for position, choice in enumerate(list(best.decisions)):
            if choice <= 1 or position >= len(best.decisions) or not best.decisions[position]:
                continue
            for lower in range(1, choice):
                trial = list(best.decisions)
                trial[position] = lower
                record = self._try(trial)
                if record is not None and _key(record) < _key(best):
                    best = record
                    break
        return best
