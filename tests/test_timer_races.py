"""timer_races: "fire the next timer now" is offered only when it can really run.

The standard timeouts (``asyncio.timeout``, ``asyncio.wait_for``, anyio's on asyncio,
trio's) must pass every explored schedule under every strategy, while a real race between
a deadline and ready work must be found under every strategy, partial-order reduction
included. The stock schedule must keep asyncio's iteration boundaries when cancelled
handles are dropped from the ready queue.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

import explorer
from explorer import strategies

Scenario = Callable[[], Awaitable[None]]


@pytest.fixture(params=strategies.names())
def strategy(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name in ("dpor-auto", "rff-auto") and sys.version_info < (3, 12):
        pytest.skip(f"{name} records accesses with sys.monitoring (Python 3.12+)")
    return name


# --------------------------------------------------------------------------- correct code


async def _deadline_met_at_the_deadline() -> None:
    """The timeout's timer and the sleep expire together: when the task leaves the block
    first, it cancels a timer already in the ready queue. With another timer pending, the
    loop used to offer "fire the next timer" as the only candidate and then pop an empty
    ready queue (IndexError from ControlledLoop.drive)."""

    async def guarded() -> None:
        try:
            async with asyncio.timeout(1):
                await asyncio.sleep(1)
        except TimeoutError:
            pass
        await asyncio.sleep(5)

    async def other() -> None:
        await asyncio.sleep(0)

    await asyncio.gather(guarded(), other())


async def _timeout_guards_a_lock() -> None:
    lock = asyncio.Lock()
    state = {"inside": 0, "done": 0, "timed_out": 0}

    async def worker() -> None:
        try:
            async with asyncio.timeout(1):
                async with lock:
                    state["inside"] += 1
                    try:
                        assert state["inside"] == 1, "two workers inside the lock"
                        await asyncio.sleep(0.5)
                    finally:
                        state["inside"] -= 1
            state["done"] += 1
        except TimeoutError:
            state["timed_out"] += 1

    await asyncio.gather(worker(), worker(), worker())
    assert state["done"] + state["timed_out"] == 3
    assert not lock.locked() and state["inside"] == 0


async def _wait_for_cleans_up() -> None:
    started: list[int] = []
    finished: list[int] = []

    async def job(i: int) -> int:
        # A job cancelled before its first step never starts: only started ones clean up.
        started.append(i)
        try:
            await asyncio.sleep(0.5 * i)
            return i
        finally:
            finished.append(i)

    async def guarded(i: int) -> int | None:
        try:
            return await asyncio.wait_for(job(i), 1)
        except TimeoutError:
            return None

    results = await asyncio.gather(*(guarded(i) for i in range(4)))
    assert sorted(started) == sorted(finished), "wait_for left a job running"
    assert all(result in (i, None) for i, result in enumerate(results)), results
    assert asyncio.all_tasks() == {asyncio.current_task()}


CORRECT: dict[str, Scenario] = {
    "deadline-met-at-the-deadline": _deadline_met_at_the_deadline,
    "timeout-guards-a-lock": _timeout_guards_a_lock,
    "wait-for-cleans-up": _wait_for_cleans_up,
}


@pytest.mark.parametrize("scenario", CORRECT.values(), ids=CORRECT.keys())
def test_standard_timeouts_pass_every_schedule(strategy: str, scenario: Scenario) -> None:
    result = explorer.explore(scenario, strategy=strategy, timer_races=True, seed=0,
                              max_schedules=120, raise_on_failure=False)
    assert result.failure is None, result.failure
    assert result.schedules > 1 or result.exhausted


def test_the_timer_candidate_is_counted_only_while_a_timer_is_live() -> None:
    counts: list[tuple[int, int]] = []

    class Watching(strategies.Strategy):
        """The systematic search, checking every point's candidates as it goes."""

        name = "watching"

        def __init__(self) -> None:
            self.inner = strategies.Systematic()

        def start_run(self) -> bool:
            return self.inner.start_run()

        def choose(self, count: int, view: Any) -> int:
            processes = [view.process(i) for i in range(count)]
            # At most one clock candidate, always last, and never alone with nothing
            # else that could run.
            assert processes.count("clock") <= 1, processes
            assert "clock" not in processes[:-1], processes
            counts.append((count, processes.count("clock")))
            return self.inner.choose(count, view)

        def end_run(self, decisions: Sequence[int], failed: bool) -> None:
            self.inner.end_run(decisions, failed)

        @property
        def counts_as_schedule(self) -> bool:
            return self.inner.counts_as_schedule

        @property
        def exhausted(self) -> bool:
            return self.inner.exhausted

    result = explorer.explore(_deadline_met_at_the_deadline, strategy=Watching(),
                              timer_races=True, max_schedules=2000)
    assert result.failure is None and result.exhausted
    assert any(clock for _, clock in counts)
    assert all(count >= 2 for count, _ in counts)


# --------------------------------------------------------------------------- real races


async def _timeout_cancels_ready_work() -> None:
    store: list[str] = []

    async def produce() -> None:
        await asyncio.sleep(0)
        store.append("result")

    try:
        async with asyncio.timeout(1):
            await produce()
    except TimeoutError:
        pass
    assert store, "the deadline passed before produce() stored its result"


async def _wait_for_times_out_ready_work() -> None:
    async def work() -> str:
        for _ in range(2):
            await asyncio.sleep(0)
        return "done"

    task = asyncio.create_task(work())
    assert await asyncio.wait_for(task, timeout=1) == "done"


RACES: dict[str, tuple[Scenario, str]] = {
    "timeout": (_timeout_cancels_ready_work, "assertion"),
    "wait-for": (_wait_for_times_out_ready_work, "exception"),
}


@pytest.mark.parametrize(("scenario", "kind"), RACES.values(), ids=RACES.keys())
def test_a_real_timer_race_is_found(strategy: str, scenario: Scenario, kind: str) -> None:
    result = explorer.explore(scenario, strategy=strategy, timer_races=True, seed=0,
                              max_schedules=200, raise_on_failure=False, shrink=False)
    assert result.failure is not None, f"{strategy}: {result.coverage}"
    assert result.failure.kind == kind
    assert str(result.failure.schedule).startswith("v1+timers:")
    with pytest.raises(explorer.ScheduleFailure):
        explorer.replay(scenario, str(result.failure.schedule))


def test_without_timer_races_the_deadline_never_beats_ready_work() -> None:
    result = explorer.explore(_wait_for_times_out_ready_work, strategy="systematic")
    assert result.failure is None and result.exhausted


# --------------------------------------------------------------------------- stock order


def _callbacks_around_a_cancel(log: list[str]) -> Scenario:
    """Plain callbacks a, b, c in one iteration: a queues a handle, cancels it, and sets a
    timer that is due at once. Stock asyncio runs b and c, then (next iteration) what they
    queued, and only then the timer."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def a() -> None:
            log.append("a")
            handle = loop.call_soon(log.append, "cancelled")
            loop.call_at(loop.time(), log.append, "timer")
            handle.cancel()

        def b() -> None:
            log.append("b")
            loop.call_soon(log.append, "after b")

        def c() -> None:
            log.append("c")
            loop.call_soon(log.append, "after c")
            loop.call_soon(done.set_result, None)

        async def other() -> None:
            log.append("other")

        task = asyncio.create_task(other())
        for callback in (a, b, c):
            loop.call_soon(callback)
        await done
        await task
        for _ in range(3):
            await asyncio.sleep(0)

    return scenario


@pytest.mark.parametrize("schedule", ["v1:", "v1+timers:"])
def test_dropping_a_cancelled_handle_keeps_the_stock_iteration(schedule: str) -> None:
    stock: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_callbacks_around_a_cancel(stock)())
    finally:
        loop.close()
    assert stock.index("timer") > stock.index("after c")
    controlled: list[str] = []
    result = explorer.run(_callbacks_around_a_cancel(controlled), schedule=schedule)
    assert result.passed
    assert controlled == stock


# --------------------------------------------------------------------------- other stacks


def test_anyio_deadlines_under_timer_races() -> None:
    anyio = pytest.importorskip("anyio")

    async def fail_after_guards_a_lock() -> None:
        lock = anyio.Lock()
        outcomes: list[str] = []

        async def worker() -> None:
            try:
                with anyio.fail_after(1):
                    async with lock:
                        await anyio.sleep(0.5)
                outcomes.append("done")
            except TimeoutError:
                outcomes.append("timed out")

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(worker)
        assert len(outcomes) == 3 and not lock.locked()

    async def move_on_races_ready_work() -> None:
        store: list[str] = []

        async def produce() -> None:
            await anyio.sleep(0)
            store.append("result")

        with anyio.move_on_after(1):
            await produce()
        assert store, "move_on_after cancelled produce() before it stored its result"

    correct = explorer.explore(fail_after_guards_a_lock, timer_races=True, seed=0,
                               max_schedules=100, raise_on_failure=False)
    assert correct.failure is None, correct.failure
    found = explorer.explore(move_on_races_ready_work, timer_races=True, seed=0,
                             max_schedules=100, raise_on_failure=False, shrink=False)
    assert found.failure is not None and found.failure.kind == "assertion"


def test_trio_deadlines_under_timer_races() -> None:
    trio = pytest.importorskip("trio")

    async def fail_after_guards_a_lock() -> None:
        lock = trio.Lock()
        outcomes: list[str] = []

        async def worker() -> None:
            try:
                with trio.fail_after(1):
                    async with lock:
                        await trio.sleep(0.5)
                outcomes.append("done")
            except trio.TooSlowError:
                outcomes.append("timed out")

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(worker)
        assert len(outcomes) == 3 and not lock.locked()

    async def move_on_races_ready_work() -> None:
        store: list[str] = []

        async def produce() -> None:
            await trio.sleep(0)
            store.append("result")

        with trio.move_on_after(1):
            await produce()
        assert store, "move_on_after cancelled produce() before it stored its result"

    for name in ("portfolio", "systematic", "pct"):
        correct = explorer.explore(fail_after_guards_a_lock, runtime="trio", strategy=name,
                                   timer_races=True, seed=0, max_schedules=100,
                                   raise_on_failure=False)
        assert correct.failure is None, (name, correct.failure)
        found = explorer.explore(move_on_races_ready_work, runtime="trio", strategy=name,
                                 timer_races=True, seed=0, max_schedules=100,
                                 raise_on_failure=False, shrink=False)
        assert found.failure is not None and found.failure.kind == "assertion", name
