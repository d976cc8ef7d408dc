"""Optimal DPOR (wakeup trees): one schedule per equivalence class, no sleep-set-blocked
run, every class covered (checked against a brute-force enumeration of all schedules),
and a search dealt among workers that covers together what one search covers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

import pytest

import explorer
from benchmarks.reduction import (
    all_runs,
    canonical_class,
    disjoint_writers,
    lastzero,
    locked_counter,
    sigma,
)
from explorer._asyncio._runner import AsyncioRuntime
from explorer._parallel import run_partition
from explorer._parallel._job import joint_coverage
from explorer._runtime import RunMode
from explorer._settings import Settings
from explorer._targets import parse_target
from explorer.strategies import DPOR


def _search(strategy: DPOR, scenario: Callable[[], Any]) -> list[Hashable]:
    """Run ``strategy`` to exhaustion on ``scenario``, past failures: the canonical class
    of every run it counted as a schedule, in order."""
    runtime = AsyncioRuntime()
    counted: list[Hashable] = []
    with runtime.session(footprints=True):
        while strategy.start_run():
            record = runtime.run(scenario, strategy.choose, RunMode(
                max_steps=10_000, footprints=strategy.footprints))
            strategy.observe(record.footprints)
            if strategy.counts_as_schedule:
                counted.append(canonical_class(record.footprints))
            strategy.end_run(record.decisions, record.outcome.failed)
    assert strategy.exhausted
    return counted


def _brute_force(scenario: Callable[[], Any]) -> set[Hashable]:
    runs = all_runs(scenario, cap=50_000)
    assert runs is not None
    return {canonical_class(steps) for steps in runs}


def _woken_reader() -> Callable[[], Any]:
    """A reversal whose steps are enabled one by another: the reader exists only once
    the starter has run, and only its read races with the writer."""
    async def scenario() -> None:
        data = explorer.shared({"x": 0, "log": 0})
        started = asyncio.Event()

        async def reader() -> None:
            await started.wait()
            data["log"] = data["x"]

        async def starter() -> None:
            await asyncio.sleep(0)
            started.set()

        async def writer() -> None:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            data["x"] = 1

        await asyncio.gather(reader(), starter(), writer())

    return scenario


SMALL: dict[str, Callable[[], Any]] = {
    "lastzero 2": lastzero(2),
    "locked counter 2x2": locked_counter(2, 2),
    "disjoint keys, 3 tasks": disjoint_writers(3),
    "sigma 3": sigma(3),
}

LARGER: dict[str, Callable[[], Any]] = {
    "lastzero 3": lastzero(3),
    "locked counter 3x1": locked_counter(3, 1),
}


def _one_per_class(scenario: Callable[[], Any]) -> DPOR:
    classes = _brute_force(scenario)
    strategy = DPOR(declared=True)
    counted = _search(strategy, scenario)
    assert set(counted) == classes  # every class covered, none invented
    assert len(counted) == len(classes)  # and none twice
    assert strategy.unfollowed == 0 and strategy.mismatches == 0
    return strategy


@pytest.mark.parametrize("name", list(SMALL))
def test_one_schedule_per_class_and_no_blocked_run(name: str) -> None:
    assert _one_per_class(SMALL[name]).blocked == 0  # no run repeats an explored class


@pytest.mark.parametrize("name", list(LARGER))
@pytest.mark.slow
def test_one_schedule_per_class_and_no_blocked_run_on_larger_programs(name: str) -> None:
    assert _one_per_class(LARGER[name]).blocked == 0


def test_a_reversal_whose_steps_enable_each_other_is_followed() -> None:
    # The writer's race with the reader is reversed by a sequence in which the reader
    # runs only after the starter has set the event. Every class is covered once. An
    # await on an event already set does not yield, so the reader's step is longer in
    # one order than in the other: the model takes the two for one step, and a run may
    # end up repeating an explored class (blocked, not counted).
    strategy = _one_per_class(_woken_reader())
    assert strategy.blocked <= 2


@pytest.mark.parametrize(("n", "classes"), [(4, 28), (5, 64)])
def test_lastzero_runs_each_class_once_without_blocked_runs(n: int, classes: int) -> None:
    # Too many schedules to enumerate: the class count is the one brute force gives for
    # n = 2, 3 extended by the program's (n + 3) * 2 ** (n - 2) formula, and every run
    # counted is a distinct class.
    strategy = DPOR(declared=True)
    counted = _search(strategy, lastzero(n))
    assert len(counted) == len(set(counted)) == classes
    assert strategy.blocked == 0


def test_the_coverage_claims_every_class_without_blocked_runs() -> None:
    result = explorer.explore(lastzero(3), strategy=DPOR(declared=True))
    assert result.exhausted and result.schedules == 12 and result.probes == 0
    assert result.statistics["sleep_blocked"] == 0
    assert result.coverage == ("all interleavings up to reordering of independent steps "
                               "(12 schedules, 41 races reversed)")


# ---------------------------------------------------------------- dealt among workers


@pytest.mark.parametrize("name", ["lastzero 3", "locked counter 3x1"])
@pytest.mark.parametrize("workers", [2, 3])
def test_workers_together_cover_exactly_the_classes_of_one_search(name: str,
                                                                  workers: int) -> None:
    scenario = LARGER[name]
    one = _search(DPOR(declared=True), scenario)
    together: list[Hashable] = []
    for index in range(workers):
        strategy = DPOR(declared=True)
        strategy.deal(index, workers)
        together += _search(strategy, scenario)
    assert set(together) == set(one)


def test_a_worker_without_a_candidate_only_looks() -> None:
    strategy = DPOR(declared=True)
    strategy.deal(5, 6)  # lastzero 2 offers 3 candidates at its first point
    assert _search(strategy, lastzero(2)) == []
    assert strategy.probes == 1


def test_deal_rejects_a_bad_share() -> None:
    with pytest.raises(ValueError, match="0 <= index < count"):
        DPOR().deal(2, 2)


def test_a_dealt_job_states_its_joint_coverage() -> None:
    target = parse_target("examples.counter:lost_update_fixed")
    settings = Settings(strategy="dpor", max_schedules=20)
    parts = [run_partition(target.to_json(), settings.to_json(), k, 2) for k in range(2)]
    assert [p.strategy["partition"] for p in parts] == ["1/2", "2/2"]
    assert [p.schedules for p in parts] == [10, 10]
    assert joint_coverage(settings, parts, 2, None) == (
        "20 schedules of a partial-order-reduced search by 2 workers (split by the "
        "candidate taken at the first scheduling point; a class that can start with "
        "candidates of two workers may have run in both); not finished")
    finished = [replace(p, exhausted=True, coverage="all interleavings up to reordering "
                        "of independent steps (10 schedules, 3 races reversed)")
                for p in parts]
    assert joint_coverage(settings, finished, 2, None).startswith(
        "all interleavings up to reordering of independent steps, jointly by 2 workers "
        "(20 schedules; split by the candidate")


def test_a_blocked_run_is_a_probe_not_a_schedule() -> None:
    # The woken reader's two-faced step makes two runs repeat explored classes: they are
    # counted as probes, and the coverage says how many.
    result = explorer.explore(_woken_reader(), strategy=DPOR(declared=True))
    assert result.exhausted and result.schedules == 4
    assert result.probes == result.statistics["sleep_blocked"] == 2
    assert "2 sleep-set-blocked run(s) not counted" in result.coverage
