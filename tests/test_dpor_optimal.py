"""Optimal DPOR (wakeup trees): one schedule per equivalence class, no sleep-set-blocked
run, every class covered (checked against a brute-force enumeration of all schedules),
and a search dealt among workers that covers together what one search covers."""

from __future__ import annotations

import asyncio
from collections import Counter
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
from explorer._parallel._split import Partition
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


def _transfers() -> Callable[[], Any]:
    """Real races: two transfers each read a balance, yield, then write both accounts
    (a lost update), while an auditor reads the total."""
    async def scenario() -> None:
        accounts = explorer.shared({"a": 10, "b": 10, "seen": 0})

        async def transfer(source: str, target: str, amount: int) -> None:
            balance = accounts[source]
            await asyncio.sleep(0)
            accounts[source] = balance - amount
            accounts[target] = accounts[target] + amount

        async def audit() -> None:
            await asyncio.sleep(0)
            accounts["seen"] = accounts["a"] + accounts["b"]

        await asyncio.gather(transfer("a", "b", 3), transfer("b", "a", 4), audit())

    return scenario


DEALT: dict[str, Callable[[], Any]] = {
    "lastzero 2": lastzero(2),
    "disjoint keys, 3 tasks": disjoint_writers(3),
    "locked counter 2x2": locked_counter(2, 2),
    "two transfers and an audit": _transfers(),
}


def _dealt(scenario: Callable[[], Any], workers: int,
           deviation_bound: int | None = None) -> tuple[list[Hashable], list[DPOR]]:
    """Every worker's share run to exhaustion: the classes they counted, in order, and
    the workers' strategies."""
    together: list[Hashable] = []
    shares: list[DPOR] = []
    for index in range(workers):
        strategy = DPOR(deviation_bound, declared=True)
        strategy.deal(index, workers)
        together += _search(strategy, scenario)
        shares.append(strategy)
    return together, shares


def _each_class_once(scenario: Callable[[], Any], workers: int) -> list[DPOR]:
    one = _search(DPOR(declared=True), scenario)
    together, shares = _dealt(scenario, workers)
    # The classes of one search, none of them in two workers (nor twice in one): as many
    # schedules as one search, whatever the number of workers.
    assert Counter(together) == Counter(one)
    assert all(share.unfollowed == 0 and share.mismatches == 0 for share in shares)
    assert all(share.coverage().startswith("all interleavings") for share in shares)
    return shares


@pytest.mark.parametrize("name", list(DEALT))
@pytest.mark.parametrize("workers", [2, 3, 4])
def test_workers_together_run_each_class_of_one_search_once(name: str,
                                                            workers: int) -> None:
    _each_class_once(DEALT[name], workers)


@pytest.mark.parametrize("name", list(LARGER))
@pytest.mark.parametrize("workers", [2, 3, 4])
def test_workers_together_run_each_class_of_a_larger_search_once(name: str,
                                                                 workers: int) -> None:
    _each_class_once(LARGER[name], workers)


@pytest.mark.slow
@pytest.mark.parametrize("program", ["lastzero 4", "lastzero 5", "locked counter 3x3"])
def test_workers_together_run_each_class_once_on_the_benchmarks(program: str) -> None:
    scenario = {"lastzero 4": lastzero(4), "lastzero 5": lastzero(5),
                "locked counter 3x3": locked_counter(3, 3)}[program]
    for workers in (2, 3, 4):
        _each_class_once(scenario, workers)


def test_a_worker_probes_the_lower_candidates_of_the_others() -> None:
    # lastzero 2 offers 3 candidates at its first point. Of 2 workers, the first explores
    # candidates 0 and 2 and probes candidate 1 (the second's); the second explores
    # candidate 1 and probes candidate 0. Of 4, the fourth has no candidate: one look.
    for workers, probes in ((2, [1, 1]), (3, [0, 1, 2]), (4, [0, 1, 2, 1])):
        _together, shares = _dealt(lastzero(2), workers)
        assert [share.probes for share in shares] == probes


def test_a_branch_whose_classes_start_lower_ends_in_blocked_runs() -> None:
    # Writers of disjoint keys: one class, in the first candidate's branch. The other
    # branches' runs all take a sleeping writer's step: blocked, not counted.
    together, shares = _dealt(disjoint_writers(3), 3)
    assert len(together) == 1 and [s.schedules for s in shares] == [1, 0, 0]
    assert [s.blocked for s in shares] == [0, 1, 1]
    assert shares[1].coverage() == ("all interleavings up to reordering of independent "
                                    "steps (0 schedules, 0 races reversed, 1 "
                                    "sleep-set-blocked run(s) not counted)")


def test_under_a_deviation_bound_only_a_workers_own_branches_sleep() -> None:
    # Another worker's branch may have skipped classes beyond the bound: nothing is
    # probed, and every class the bounded search runs is run by some worker.
    bounded = set(_search(DPOR(1, declared=True), lastzero(2)))
    together, shares = _dealt(lastzero(2), 2, deviation_bound=1)
    assert bounded <= set(together)
    assert [share.probes for share in shares] == [0, 0]


def _decisions(strategy: DPOR, scenario: Callable[[], Any]) -> list[tuple[int, ...]]:
    """The decisions of every run ``strategy`` makes, counted or not, in order."""
    runtime = AsyncioRuntime()
    runs: list[tuple[int, ...]] = []
    with runtime.session(footprints=True):
        while strategy.start_run():
            record = runtime.run(scenario, strategy.choose, RunMode(
                max_steps=10_000, footprints=strategy.footprints))
            strategy.observe(record.footprints or [])
            runs.append(tuple(record.decisions))
            strategy.end_run(record.decisions, record.outcome.failed)
    return runs


def test_a_dealt_share_makes_the_same_runs_every_time() -> None:
    for index in range(3):
        first, second = DPOR(declared=True), DPOR(declared=True)
        first.deal(index, 3)
        second.deal(index, 3)
        runs = _decisions(first, _transfers())
        assert runs and runs == _decisions(second, _transfers())


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
    uncounted = sum(p.probes for p in parts)
    split = ("split by the candidate taken at the first scheduling point, each worker's "
             "branches with the lower candidates asleep, so no class ran in two workers; "
             f"{uncounted} probe or sleep-set-blocked run(s) not counted")
    assert joint_coverage(settings, parts, 2, None) == (
        f"20 schedules of a partial-order-reduced search by 2 workers ({split}); "
        "not finished")
    finished = [replace(p, exhausted=True, coverage="all interleavings up to reordering "
                        "of independent steps (10 schedules, 3 races reversed)")
                for p in parts]
    assert joint_coverage(settings, finished, 2, None) == (
        "all interleavings up to reordering of independent steps, jointly by 2 workers "
        f"(20 schedules; {split})")
    # One shard alone covers only its share, and says so.
    shard = Partition(1, 2)
    assert joint_coverage(settings, finished[1:], 2, shard) == (
        f"10 schedules by shard 2/2, its share of a partial-order-reduced search "
        f"({split.replace(str(uncounted), str(finished[1].probes), 1)}), finished; all "
        "interleavings up to reordering of independent steps only with every other "
        "share's runs")
    bounded = [replace(p, strategy={**p.strategy, "deviation_bound": 1}) for p in parts]
    assert "under a deviation bound a class that can start with candidates of two " \
        "workers may have run in both" in joint_coverage(settings, bounded, 2, None)


def test_dealt_shares_split_a_real_stack_once() -> None:
    # anyio over asyncio: its event and task group, with the ledger declared shared.
    # The workers' schedules add up to one search's, and each share is reproducible.
    pytest.importorskip("anyio")
    settings = Settings(strategy="dpor-declared")
    target = parse_target(f"{__file__}::anyio_ledger")
    one = explorer.explore(anyio_ledger, strategy=DPOR(declared=True))
    for workers in (2, 3):
        parts = [run_partition(target.to_json(), settings.to_json(), k, workers)
                 for k in range(workers)]
        assert all(p.exhausted and p.failure is None for p in parts)
        assert sum(p.schedules for p in parts) == one.schedules
        again = run_partition(target.to_json(), settings.to_json(), 1, workers)
        assert (again.schedules, again.probes) == (parts[1].schedules, parts[1].probes)
        assert joint_coverage(settings, parts, workers, None).startswith(
            "all interleavings up to reordering of independent steps, jointly by "
            f"{workers} workers ({one.schedules} schedules;")


async def anyio_ledger() -> None:
    """Two anyio tasks post to a ledger (a lost update) and signal an anyio event; a
    third reads the total once signalled. (An anyio.Lock would not do here: its state is
    neither an asyncio primitive nor declared, outside ``dpor-declared``'s contract.)"""
    import anyio

    ledger = explorer.shared({"total": 0, "read": 0})
    posted = anyio.Event()

    async def post(amount: int) -> None:
        total = ledger["total"]
        await anyio.sleep(0)
        ledger["total"] = total + amount
        posted.set()

    async def read() -> None:
        await posted.wait()
        ledger["read"] = ledger["total"]

    async with anyio.create_task_group() as group:
        group.start_soon(post, 1)
        group.start_soon(post, 2)
        group.start_soon(read)


def test_a_blocked_run_is_a_probe_not_a_schedule() -> None:
    # The woken reader's two-faced step makes two runs repeat explored classes: they are
    # counted as probes, and the coverage says how many.
    result = explorer.explore(_woken_reader(), strategy=DPOR(declared=True))
    assert result.exhausted and result.schedules == 4
    assert result.probes == result.statistics["sleep_blocked"] == 2
    assert "2 sleep-set-blocked run(s) not counted" in result.coverage
