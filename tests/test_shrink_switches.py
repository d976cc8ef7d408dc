"""The shrinker orders schedules by switches first: it takes back whole run-aheads, proves
what it can within its budget, says what it could not, and compares failures without
task numbers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest

import explorer
from explorer import strategies
from explorer._engine import _runtime
from explorer._failure_record import FailureRecord
from explorer._locations import Location
from explorer._outcome import DEADLOCK, LEAKED_TASK, Outcome
from explorer._runtime import Chooser, RunMode, RunRecord
from explorer._shrink import Shrinker, ShrinkReport, Signature, count_switches_of
from explorer._switches import Point, count_detours, count_switches, counting

ScenarioFn = Callable[[], Coroutine[Any, Any, Any]]


async def ticket_race() -> None:
    """Two agents claim one ticket; the second checks its permissions with four awaits
    before the check-then-act, so it must run ahead through all of them to get between
    the first agent's check and claim."""
    ticket: dict[str, str | None] = {"owner": None}

    async def agent(name: str, checks: int) -> None:
        for _ in range(checks):
            await asyncio.sleep(0)  # a permission lookup
        if ticket["owner"] is None:
            await asyncio.sleep(0)  # write the audit log
            assert ticket["owner"] is None, f"{name} claimed a ticket {ticket['owner']} owns"
            ticket["owner"] = name

    await asyncio.gather(agent("ann", 0), agent("bob", 4))


def _runner(scenario: ScenarioFn) -> Callable[[Chooser], RunRecord]:
    rt = _runtime("asyncio")

    def run(chooser: Chooser) -> RunRecord:
        with rt.session():
            return rt.run(scenario, chooser, RunMode(max_steps=2000))

    return run


def _first_failure(scenario: ScenarioFn, strategy: strategies.Strategy) -> RunRecord:
    run = _runner(scenario)
    while strategy.start_run():
        record = run(strategy.choose)
        strategy.end_run(record.decisions, record.outcome.failed)
        if record.outcome.failed:
            return record
    raise AssertionError("no failure found")


def test_a_run_ahead_through_several_awaits_shrinks_to_one_switch() -> None:
    assert explorer.run(ticket_race).passed
    for seed in range(3):
        result = explorer.explore(ticket_race, strategy="random", seed=seed,
                                  raise_on_failure=False)
        failure = result.failure
        assert failure is not None and failure.shrink is not None
        assert failure.switches == 1
        assert failure.deviations >= 4  # bob's four lookups and his check, run ahead
        assert failure.shrink.proven_minimal
        assert failure.shrink.runs < 200
        assert "1 switch, " in str(failure).splitlines()[0]
        assert "minimal: no schedule with fewer switches" in failure.shrink.describe()


def test_the_minimum_is_what_the_switch_bounded_search_finds_first() -> None:
    first = _first_failure(ticket_race, strategies.PreemptionBounded())
    shrunk, report = Shrinker(_runner(ticket_race), first.outcome).shrink(first)
    assert report.switches == 1 and report.original_switches == 1
    assert report.switches_proven and report.detours_proven
    assert shrunk.outcome.signature() == first.outcome.signature()


def test_many_switches_are_taken_back_in_chunks() -> None:
    # The stock order rotates the agents at every await: a sampled failure has many
    # switches, nearly all of them irrelevant.
    record = _first_failure(ticket_race, strategies.RandomWalk(7))
    _, report = Shrinker(_runner(ticket_race), record.outcome).shrink(record)
    assert report.original_switches is not None and report.original_switches > 1
    assert report.switches == 1
    assert report.proven_minimal


def test_a_budget_that_runs_out_reports_the_best_and_what_is_unproven() -> None:
    record = _first_failure(ticket_race, strategies.RandomWalk(7))
    shrunk, report = Shrinker(_runner(ticket_race), record.outcome, max_runs=3).shrink(record)
    assert report.budget_exhausted and not report.proven_minimal
    assert report.runs == 3
    assert shrunk.outcome.failed
    text = report.describe()
    assert "not proven (budget: 3 runs" in text
    assert text.startswith(f"{report.switches} switch")


def test_a_shrink_report_reads_back_with_its_proofs() -> None:
    report = ShrinkReport(9, 4, 30, 20, 120, False, True, 5, 1, True, False, 2000, 10.0)
    assert "switches proven minimal; deviations not proven" in report.describe()
    failure = explorer.explore(ticket_race, strategy="random", seed=1,
                               raise_on_failure=False).failure
    assert failure is not None
    again = FailureRecord.from_json(failure.to_json())
    assert again.shrink == failure.shrink
    assert again.switches == failure.switches == 1


def test_a_report_written_before_detours_were_counted_still_reads() -> None:
    data = {"original_deviations": 9, "deviations": 4, "original_steps": 30, "steps": 20,
            "runs": 120, "proven_minimal": True, "budget_exhausted": False,
            "original_switches": 5, "switches": 1, "switches_proven": True,
            "deviations_proven": True}
    old = FailureRecord.from_json({**_record_json(), "shrink": data}).shrink
    assert old is not None and old.detours is None and old.proven_minimal
    assert old.describe() == (
        "1 switch, 4 deviations (from 5 switches, 9 deviations; 30 to 20 steps) in 120 "
        "runs; minimal: no schedule with fewer switches, or as few switches and fewer "
        "deviations, fails this way")


def _record_json() -> dict[str, object]:
    failure = explorer.explore(ticket_race, strategy="random", seed=1, shrink=False,
                               raise_on_failure=False).failure
    assert failure is not None
    return failure.to_json()


def test_a_report_written_before_switches_were_counted_still_reads() -> None:
    data = {"original_deviations": 5, "deviations": 2, "original_steps": 40, "steps": 30,
            "runs": 80, "proven_minimal": True, "budget_exhausted": False}
    old = ShrinkReport(**data)  # type: ignore[arg-type]
    assert old.switches is None
    assert old.describe().startswith("shrunk from 5 to 2 deviation(s)")


# --------------------------------------------------------------------------- same failure


def _where(line: int) -> dict[str, object]:
    return {"file": "vault.py", "line": line, "function": "move"}


def _deadlock(first: str, second: str) -> Outcome:
    waits = [{"task": first, "operation": "Lock.acquire", "resource": "Lock#1",
              "location": _where(12)},
             {"task": second, "operation": "Lock.acquire", "resource": "Lock#2",
              "location": _where(14)}]
    blamed = Location("vault.py", 12 if first < second else 14, "move")
    return Outcome(DEADLOCK, "deadlock", blamed, details={
        "cycle": sorted([first, second]), "waits": waits, "edges": [], "lost_wakeups": []})


def test_a_deadlock_is_the_same_whichever_spawn_number_its_tasks_get() -> None:
    before = _deadlock("main/move#1", "main/move#2")
    after = _deadlock("main/move#2", "main/move#1")  # a moved spawn swapped the numbers
    assert before.signature() != after.signature()  # blamed on the other task's line
    assert before.stable_signature() == after.stable_signature()
    other = _deadlock("main/move#1", "main/move#3")
    assert other.stable_signature() == before.stable_signature()


def test_leaked_tasks_are_compared_by_kind_not_number() -> None:
    one = Outcome(LEAKED_TASK, "leaked", Location("a.py", 3, "f"),
                  details={"tasks": ["main/poll#2", "main/poll#2/task-4"]})
    two = Outcome(LEAKED_TASK, "leaked", Location("a.py", 5, "g"),
                  details={"tasks": ["main/poll#1", "main/poll#1/task-1"]})
    assert one.stable_signature() == two.stable_signature()
    three = Outcome(LEAKED_TASK, "leaked", None, details={"tasks": ["main/flush#1"]})
    assert three.stable_signature() != one.stable_signature()


async def _crossed_vaults() -> None:
    """Two transfers lock two vaults in opposite orders through a helper with a few
    awaits; the second transfer first audits for three awaits, so in the stock order the
    first holds both locks before the second asks."""
    north, south = anyio.Lock(), anyio.Lock()

    async def transfer(first: anyio.Lock, second: anyio.Lock, audits: int) -> None:
        for _ in range(audits):
            await anyio.sleep(0)
        async with first:
            await anyio.sleep(0)
            async with second:
                await anyio.sleep(0)

    async with anyio.create_task_group() as group:
        group.start_soon(transfer, north, south, 0)
        group.start_soon(transfer, south, north, 3)


def test_an_anyio_deadlock_shrinks_to_one_switch_proven() -> None:
    assert explorer.run(_crossed_vaults).passed
    for seed in range(2):
        result = explorer.explore(_crossed_vaults, seed=seed, raise_on_failure=False)
        failure = result.failure
        assert failure is not None and failure.kind == "deadlock"
        assert failure.shrink is not None and failure.shrink.proven_minimal
        assert failure.switches == 1
        assert failure.shrink.runs < 500


@pytest.mark.parametrize("shrink", [True, False])
def test_the_failure_counts_switches_with_or_without_shrinking(shrink: bool) -> None:
    failure = explorer.explore(ticket_race, strategy="random", seed=2, shrink=shrink,
                               raise_on_failure=False).failure
    assert failure is not None and failure.switches is not None
    assert (failure.shrink is not None) == shrink
    if shrink:
        assert failure.switches == 1
    else:
        assert failure.switches >= 1


# --------------------------------------------------------------------------- brute force


async def _boarding() -> None:
    """Three passengers wait for the gate; once it opens, who boards first is a free
    choice (the agent waits for them all), so the failing order needs two detours and no
    switch; the stock order and most samples switch often on the way."""
    boarded: list[str] = []
    gate = asyncio.Event()

    async def passenger(name: str) -> None:
        await gate.wait()
        boarded.append(name)

    passengers = [asyncio.create_task(passenger(name)) for name in ("ada", "ben", "cai")]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*passengers)
    assert boarded[:2] != ["cai", "ben"], f"boarded against the queue: {boarded}"


def _measured(scenario: ScenarioFn) -> list[tuple[RunRecord, int, int]]:
    """Every complete schedule of ``scenario`` by brute force over the stock-order
    indices (no shrinker or switch-bounded search involved), with its switches and
    detours."""
    run = _runner(scenario)
    found: list[tuple[RunRecord, int, int]] = []
    stack: list[tuple[int, ...]] = [()]
    while stack:
        prefix = stack.pop()
        fixed = strategies.Fixed(prefix, strict=False)
        fixed.start_run()
        log: list[Point] = []
        record = run(counting(fixed.choose, log))
        found.append((record, count_switches(log), count_detours(log)))
        for point in range(len(prefix), len(log)):
            for choice in range(1, log[point].count):
                stack.append((*record.decisions[:point], choice))
    return found


@pytest.mark.parametrize("scenario", [_boarding, ticket_race])
def test_proven_minimal_means_no_simpler_schedule_fails_so(scenario: ScenarioFn) -> None:
    space = _measured(scenario)
    failing: dict[Signature, list[tuple[RunRecord, int, int]]] = {}
    for record, switches, detours in space:
        if record.outcome.failed:
            failing.setdefault(record.outcome.stable_signature(), []).append(
                (record, switches, detours))
    assert failing
    for same in failing.values():
        least = min((switches, detours) for _, switches, detours in same)
        # From the simplest and the most tangled failing schedules, and one between.
        by_measure = sorted(same, key=lambda item: (item[1], item[2], item[0].decisions))
        for record, _, _ in (by_measure[0], by_measure[len(same) // 2], by_measure[-1]):
            shrunk, report = Shrinker(_runner(scenario), record.outcome).shrink(record)
            assert report.proven_minimal and not report.budget_exhausted
            assert (report.switches, report.detours) == least
            assert shrunk.outcome.stable_signature() == record.outcome.stable_signature()
            # The report's measures are the returned schedule's own.
            assert (count_switches_of(_runner(scenario), shrunk.decisions)
                    == report.switches)
            again, second = Shrinker(_runner(scenario), record.outcome).shrink(record)
            assert again.decisions == shrunk.decisions and second == report


def test_the_detours_are_proven_where_the_switches_are_none() -> None:
    record = _first_failure(_boarding, strategies.RandomWalk(3))
    shrunk, report = Shrinker(_runner(_boarding), record.outcome).shrink(record)
    assert (report.switches, report.detours) == (0, 2)
    assert shrunk.outcome.stable_signature() == record.outcome.stable_signature()
    assert report.switches_proven and report.detours_proven and report.proven_minimal
    assert "0 switches, 2 detours, " in report.describe()
    assert "as few switches and fewer detours, fails this way" in report.describe()
