"""Strategies: reproducible random walks, and a systematic search that is honest."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

import explorer
from explorer._schedule import count_deviations
from explorer.strategies import RandomWalk, Strategy, Systematic


async def _three_tasks() -> None:
    async def step(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    await asyncio.gather(step(1), step(2), step(1))


class RecordingSystematic(Systematic):
    def __init__(self, bound: int | None = None) -> None:
        super().__init__(bound)
        self.runs: list[tuple[tuple[int, ...], bool]] = []

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self.runs.append((tuple(decisions), self.counts_as_schedule))
        super().end_run(decisions, failed)


class BruteForce(Strategy):
    """A naive full-tree enumeration to compare the systematic search against."""

    name = "brute"

    def __init__(self) -> None:
        self.stack: list[list[int]] = [[]]  # prefixes still to run
        self.prefix: list[int] = []
        self.counts: list[int] = []
        self.leaves: set[tuple[int, ...]] = set()

    def start_run(self) -> bool:
        if not self.stack:
            return False
        self.prefix = self.stack.pop()
        self.counts = []
        return True

    def choose(self, count: int, view: Any) -> int:
        k = len(self.counts)
        self.counts.append(count)
        return self.prefix[k] if k < len(self.prefix) else 0

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self.leaves.add(tuple(decisions))
        for point in range(len(self.prefix), len(self.counts)):
            for choice in range(1, self.counts[point]):
                self.stack.append([*decisions[:point], choice])


def test_unbounded_systematic_search_enumerates_the_whole_space_once() -> None:
    brute = BruteForce()
    explorer.explore(_three_tasks, strategy=brute, max_schedules=100_000)
    recording = RecordingSystematic()
    result = explorer.explore(_three_tasks, strategy=recording, max_schedules=100_000)
    counted = [d for d, counted in recording.runs if counted]
    assert result.exhausted
    assert "whole space" in result.coverage
    assert len(counted) == len(set(counted)) == result.schedules == result.distinct
    assert set(counted) == brute.leaves
    assert len(brute.leaves) > 100


def test_schedules_come_in_order_of_increasing_deviations() -> None:
    recording = RecordingSystematic()
    explorer.explore(_three_tasks, strategy=recording, max_schedules=100_000)
    order = [count_deviations(d) for d, counted in recording.runs if counted]
    assert order == sorted(order)
    assert order[0] == 0 and order[-1] >= 3


@pytest.mark.parametrize("bound", [0, 1, 2])
def test_bounded_search_covers_exactly_the_schedules_within_the_bound(bound: int) -> None:
    brute = BruteForce()
    explorer.explore(_three_tasks, strategy=brute, max_schedules=100_000)
    within = {d for d in brute.leaves if count_deviations(d) <= bound}
    recording = RecordingSystematic(bound)
    result = explorer.explore(_three_tasks, strategy=recording, max_schedules=100_000)
    counted = {d for d, counted in recording.runs if counted}
    assert counted == within
    assert result.exhausted
    assert result.coverage == (f"all schedules with at most {bound} deviation(s) "
                               f"({len(within)} schedules)")


def test_budget_cut_is_not_reported_as_exhausted() -> None:
    result = explorer.explore(_three_tasks, strategy="systematic", max_schedules=5)
    assert result.schedules == 5
    assert not result.exhausted
    assert "at most 1" not in result.coverage


def test_probes_are_not_counted_as_schedules() -> None:
    result = explorer.explore(_three_tasks, strategy="systematic", deviation_bound=2)
    assert result.probes > 0
    assert result.schedules == result.distinct


def test_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="deviation_bound must be >= 0"):
        Systematic(-1)


class RecordingRandom(RandomWalk):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seen: list[tuple[int, ...]] = []

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self.seen.append(tuple(decisions))


def test_random_walk_is_reproducible_and_varied() -> None:
    a, b, c = RecordingRandom(5), RecordingRandom(5), RecordingRandom(6)
    for strategy in (a, b, c):
        explorer.explore(_three_tasks, strategy=strategy, max_schedules=200)
    assert a.seen == b.seen
    assert a.seen != c.seen
    assert len(set(a.seen)) > 20


def test_random_walk_without_seed_reports_the_seed_it_used() -> None:
    result = explorer.explore(_three_tasks, max_schedules=3)
    seed = result.strategy["seed"]
    assert isinstance(seed, int)
    assert f"seed {seed}" in result.coverage


class Describing(Strategy):
    """A strategy that looks at the candidates through the runtime-neutral view."""

    name = "describing"

    def __init__(self) -> None:
        self.points: list[list[explorer.Candidate]] = []
        self.ran = False

    def start_run(self) -> bool:
        if self.ran:
            return False
        self.ran = True
        return True

    def choose(self, count: int, view: Any) -> int:
        self.points.append([view.candidate(i) for i in range(count)])
        return 0


async def _lock_pair() -> None:
    lock = asyncio.Lock()

    async def worker() -> None:
        async with lock:
            await asyncio.sleep(0)

    await asyncio.gather(worker(), worker(), worker())


def test_strategies_see_candidates_in_runtime_neutral_terms() -> None:
    strategy = Describing()
    explorer.explore(_lock_pair, strategy=strategy)
    first = strategy.points[0]
    assert [(c.task, c.kind) for c in first] == [("main/worker#1", "start"),
                                                 ("main/worker#2", "start"),
                                                 ("main/worker#3", "start")]
    everything = [c for point in strategy.points for c in point]
    assert any(c.kind == "wakeup" and c.operation == "Lock.acquire" and c.resource == "Lock#1"
               for c in everything)
    assert any(c.kind == "callback" and c.task is None for c in everything)
    assert all(c.location is None or c.location.short.startswith("test_strategies.py:")
               for c in everything if c.task)
