"""The explorer finds the classic races, reports them readably, and they replay."""

from __future__ import annotations

import asyncio

import pytest

import explorer
from examples import bank, counter, signal, transfer

BUGGY = [
    pytest.param(counter.lost_update, "assertion", id="lost-update"),
    pytest.param(bank.double_spend, "assertion", id="double-spend"),
    pytest.param(transfer.abba, "deadlock", id="abba-deadlock"),
    pytest.param(signal.lost_wakeup, "deadlock", id="lost-wakeup"),
]
FIXED = [
    pytest.param(counter.lost_update_fixed, id="lost-update"),
    pytest.param(bank.double_spend_fixed, id="double-spend"),
    pytest.param(transfer.abba_fixed, id="abba-deadlock"),
    pytest.param(signal.lost_wakeup_fixed, id="lost-wakeup"),
]


@pytest.mark.parametrize(("scenario", "kind"), BUGGY)
def test_stock_schedule_hides_the_bug(scenario: object, kind: str) -> None:
    assert explorer.run(scenario).passed  # type: ignore[arg-type]


@pytest.mark.parametrize(("scenario", "kind"), BUGGY)
@pytest.mark.parametrize("strategy", ["random", "systematic"])
def test_bug_is_found_and_replays(scenario: object, kind: str, strategy: str) -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(scenario, strategy=strategy, seed=7,  # type: ignore[arg-type]
                         max_schedules=2000)
    failure = info.value
    assert failure.kind == kind
    assert failure.deviations == failure.schedule.deviation_count >= 1
    assert failure.found_after >= 1
    assert str(failure.schedule) in str(failure)
    assert "explorer.replay(" in str(failure)
    with pytest.raises(explorer.ScheduleFailure) as again:
        explorer.replay(scenario, str(failure.schedule))  # type: ignore[arg-type]
    assert again.value.outcome.signature() == failure.outcome.signature()
    assert again.value.trace.hash() == failure.trace.hash()


@pytest.mark.parametrize("scenario", FIXED)
def test_fixed_versions_pass_a_bounded_systematic_search(scenario: object) -> None:
    result = explorer.explore(scenario, strategy="systematic",  # type: ignore[arg-type]
                              deviation_bound=2, max_schedules=5000)
    assert result.failure is None
    assert result.exhausted
    assert result.schedules > 10
    assert "at most 2 deviation" in result.coverage or "whole space" in result.coverage


def test_double_spend_message_names_lines_and_schedule() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(bank.double_spend, strategy="systematic")
    text = str(info.value)
    assert "balance went negative: -60" in text
    assert "bank.py:" in text
    assert "mobile_withdrawal#1" in text
    assert "withdraw#1" in text
    assert info.value.location is not None
    assert info.value.location.short.startswith("bank.py:")
    steps = list(info.value.trace)
    assert any(step.deviated for step in steps)
    assert steps[-1].task == "main"


def test_abba_reports_the_wait_for_cycle() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(transfer.abba, strategy="systematic")
    failure = info.value
    assert failure.kind == "deadlock"
    details = failure.outcome.details
    assert sorted(details["cycle"]) == ["main/checked_transfer#1", "main/transfer#1"]
    text = str(failure)
    assert "wait-for cycle" in text
    assert "held by transfer#1" in text
    assert "held by checked_transfer#1" in text
    assert "transfer.py:" in text


def test_lost_wakeup_is_named_as_such() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(signal.lost_wakeup, strategy="systematic")
    failure = info.value
    assert failure.kind == "deadlock"
    assert failure.outcome.details["lost_wakeups"] == ["main/consume#2"]
    assert "lost wake-up: consume#2 waits on future#" in str(failure)


async def _polite_pair() -> None:
    """Two handlers that each back off while the other is busy: a livelock."""
    busy = {"a": False, "b": False}

    async def polite(me: str, other: str) -> None:
        while True:
            busy[me] = True
            await asyncio.sleep(0)
            if not busy[other]:
                break
            await asyncio.sleep(0)  # hesitate, then back off and retry
            busy[me] = False
            await asyncio.sleep(0.01)
        busy[me] = False

    await asyncio.gather(polite("a", "b"), polite("b", "a"))


def test_livelock_is_reported_with_the_running_tasks() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_polite_pair, strategy="systematic", max_steps=500)
    failure = info.value
    assert failure.kind == "livelock"
    assert failure.outcome.details["tasks"] == ["polite#1", "polite#2"]
    assert "step bound exceeded: 500 steps" in str(failure)


async def _leaky() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    asyncio.create_task(forever())
    await asyncio.sleep(0)


def test_leaked_task() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_leaky, max_schedules=5)
    assert info.value.kind == "leaked_task"
    assert info.value.outcome.details["tasks"] == ["main/forever#1"]
    assert "still pending: forever#1" in str(info.value)


async def _unretrieved() -> None:
    async def crash() -> None:
        raise KeyError("boom")

    asyncio.create_task(crash())
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_exception_nobody_retrieved_is_a_failure() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_unretrieved, strategy="systematic", max_schedules=5)
    assert info.value.kind == "exception"
    assert "task crash#1 raised and nobody retrieved it" in str(info.value)
    assert info.value.outcome.exc_type == "KeyError"


async def _raises() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("handler crashed")


def test_unexpected_exception_kind_and_location() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_raises, max_schedules=3)
    failure = info.value
    assert failure.kind == "exception"
    assert failure.outcome.exc_type == "RuntimeError"
    assert failure.location is not None and failure.location.short.startswith("test_bugs.py:")


async def _taskgroup_assertion() -> None:
    state = {"n": 0}

    async def bump() -> None:
        value = state["n"]
        await asyncio.sleep(0)
        state["n"] = value + 1
        assert state["n"] <= 1, "second bump saw a stale value"

    async with asyncio.TaskGroup() as group:
        group.create_task(bump())
        group.create_task(bump())


def test_assertion_inside_a_taskgroup_is_an_assertion() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_taskgroup_assertion, seed=3)
    assert info.value.kind == "assertion"
    assert info.value.outcome.exc_type == "AssertionError"


async def _invariant_scenario() -> None:
    account = {"balance": 100}
    explorer.always(lambda: account["balance"] >= 0, "balance never negative")

    async def spend() -> None:
        if account["balance"] >= 80:
            await asyncio.sleep(0)
            account["balance"] -= 80
            await asyncio.sleep(0)
            account["balance"] += 0  # the final assert alone would run too late

    await asyncio.gather(spend(), spend())
    account["balance"] = 100  # repaired before the end: only `always` can catch it


def test_always_invariant_is_checked_after_every_step() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_invariant_scenario, strategy="systematic")
    failure = info.value
    assert failure.kind == "assertion"
    assert "invariant violated after step" in str(failure)
    assert "balance never negative" in str(failure)
    assert failure.location is not None and failure.location.short.startswith("test_bugs.py:")


def test_result_without_raising() -> None:
    result = explorer.explore(counter.lost_update, strategy="systematic",
                              raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.kind == "assertion"
    assert result.schedules == result.failure.found_after
    assert not result.exhausted


async def _nobody_sets_the_event() -> None:
    ready = asyncio.Event()

    async def waiter() -> None:
        await ready.wait()

    await asyncio.gather(waiter())


async def _queue_without_producer() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def consumer() -> None:
        await queue.get()

    async with asyncio.TaskGroup() as group:
        group.create_task(consumer())


async def _semaphore_order() -> None:
    a, b = asyncio.Semaphore(1), asyncio.Semaphore(1)

    async def take(first: asyncio.Semaphore, second: asyncio.Semaphore) -> None:
        async with first:
            await asyncio.sleep(0)
            async with second:
                pass

    await asyncio.gather(take(a, b), take(b, a))


async def _awaits_a_stuck_task() -> None:
    never = asyncio.Event()

    async def stuck() -> None:
        await never.wait()

    async def dependent(task: asyncio.Task[None]) -> None:
        await task

    task = asyncio.create_task(stuck())
    await dependent(task)


@pytest.mark.parametrize(("scenario", "expected"), [
    (_nobody_sets_the_event, "lost wake-up: waiter#1 waits on Event#1 (Event.wait)"),
    (_queue_without_producer, "lost wake-up: consumer#1 waits on Queue#1 (Queue.get)"),
    (_awaits_a_stuck_task, "lost wake-up: stuck#1 waits on Event#1 (Event.wait)"),
])
def test_orphaned_waiters_are_lost_wakeups(scenario: object, expected: str) -> None:
    result = explorer.run(scenario)  # type: ignore[arg-type]
    assert result.outcome.kind == "deadlock"
    assert expected in result.outcome.message
    assert result.outcome.location is not None
    assert result.outcome.location.short.startswith("test_bugs.py:")


def test_semaphore_cycle_names_both_holders() -> None:
    result = explorer.run(_semaphore_order)
    assert result.outcome.kind == "deadlock"
    assert sorted(result.outcome.details["cycle"]) == ["main/take#1", "main/take#2"]
    assert "Semaphore#2 (Semaphore.acquire)" in result.outcome.message
    assert "held by take#" in result.outcome.message


def test_task_awaiting_a_task_is_an_edge_of_the_graph() -> None:
    result = explorer.run(_awaits_a_stuck_task)
    edges = {(a, b) for a, b, _label in result.outcome.details["edges"]}
    assert ("main", "main/stuck#1") in edges
