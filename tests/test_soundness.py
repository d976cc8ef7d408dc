"""Soundness: correct programs built on asyncio's own primitives never fail.

Each scenario below is a small, CORRECT concurrent program (2-3 tasks, a few awaits each)
ending in an assert on a real invariant of the primitive it exercises. Correct means correct
under asyncio semantics with *any* interleaving of task steps at their awaits: no scenario
relies on ``asyncio.sleep(0)`` or on task start order for ordering; where one task must wait
for another it uses a primitive (Event, Lock, ...) to say so. A failure of any of these under
any explored schedule is a false alarm, i.e. a bug of the explorer (DESIGN.md, section 4,
"Soundness of the model").

Every scenario runs under a bounded systematic search (every schedule with at most
``bound`` deviations from the stock order) and under a seeded random search. All spaces are
small: with bound 2 every one is exhausted within a few hundred schedules (the file runs in
about a second), so no scenario needed a smaller bound or fewer tasks; ``Case`` still allows
both should a scenario grow. Timer races (``timer_races=True``) are deliberately not used:
several scenarios assert virtual-time facts ("the timeout fired at t=2") that a "fire the
next timer early" choice legitimately breaks.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

import explorer

Scenario = Callable[[], Coroutine[Any, Any, None]]

MAX_SCHEDULES = 5000


# ---------------------------------------------------------------------------- Lock


async def lock_mutual_exclusion() -> None:
    lock = asyncio.Lock()
    counter = 0
    inside = 0

    async def worker() -> None:
        nonlocal counter, inside
        for _ in range(2):
            async with lock:
                inside += 1
                assert inside == 1, "two tasks inside the critical section"
                seen = counter
                await asyncio.sleep(0)
                counter = seen + 1
                inside -= 1

    await asyncio.gather(worker(), worker(), worker())
    assert counter == 6
    assert not lock.locked()


async def lock_fifo_fairness() -> None:
    # asyncio.Lock is documented as fair: waiters acquire in the order they started waiting.
    lock = asyncio.Lock()
    arrived: list[str] = []
    acquired: list[str] = []

    async def waiter(name: str) -> None:
        arrived.append(name)  # same step as the enqueue inside acquire(): the lock is held
        async with lock:
            acquired.append(name)
            await asyncio.sleep(0)

    await lock.acquire()
    tasks = [asyncio.create_task(waiter(n)) for n in ("a", "b", "c")]
    while len(arrived) < 3:  # all three are queued behind the held lock
        await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    assert acquired == arrived


async def lock_cancelled_waiter_passes_the_lock_on() -> None:
    # A waiter cancelled while queued must not swallow the wake-up meant for the next one.
    lock = asyncio.Lock()
    queued: list[str] = []
    got: list[str] = []

    async def waiter(name: str) -> None:
        queued.append(name)
        async with lock:
            got.append(name)
            await asyncio.sleep(0)

    await lock.acquire()
    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    while len(queued) < 2:
        await asyncio.sleep(0)
    first.cancel()
    lock.release()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert got == ["second"]
    assert not lock.locked()


# ---------------------------------------------------------------------------- Semaphore


async def semaphore_bounds_concurrency() -> None:
    sem = asyncio.Semaphore(2)
    inside = 0
    peak = 0
    done = 0

    async def worker() -> None:
        nonlocal inside, peak, done
        async with sem:
            inside += 1
            peak = max(peak, inside)
            assert inside <= 2
            await asyncio.sleep(0)
            inside -= 1
            done += 1

    await asyncio.gather(worker(), worker(), worker())
    assert done == 3
    assert inside == 0
    assert 1 <= peak <= 2
    assert not sem.locked()


async def bounded_semaphore_over_release() -> None:
    sem = asyncio.BoundedSemaphore(1)
    inside = 0
    order: list[int] = []

    async def worker(i: int) -> None:
        nonlocal inside
        async with sem:
            inside += 1
            assert inside == 1
            await asyncio.sleep(0)
            order.append(i)
            inside -= 1

    await asyncio.gather(worker(0), worker(1), worker(2))
    assert sorted(order) == [0, 1, 2]
    try:
        sem.release()
    except ValueError:
        pass
    else:
        raise AssertionError("BoundedSemaphore released above its initial value")
    # the failed release did not change the value: one acquire still works without waiting
    await sem.acquire()
    assert sem.locked()
    sem.release()


async def semaphore_cancelled_waiter() -> None:
    # A cancelled waiter must neither leak a permit nor lose the wake-up of another waiter.
    sem = asyncio.Semaphore(1)
    queued: list[str] = []
    got: list[str] = []

    async def waiter(name: str) -> None:
        queued.append(name)
        async with sem:
            got.append(name)
            await asyncio.sleep(0)

    await sem.acquire()
    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    while len(queued) < 2:
        await asyncio.sleep(0)
    first.cancel()
    sem.release()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert got == ["second"]
    assert not sem.locked()
    assert sem._value == 1  # type: ignore[attr-defined]  # no permit lost or duplicated


# ---------------------------------------------------------------------------- Event


async def event_releases_all_waiters() -> None:
    event = asyncio.Event()
    state = {"ready": False}
    released: list[str] = []

    async def waiter(name: str) -> None:
        await event.wait()
        assert state["ready"], "woken before the setter published its state"
        released.append(name)

    async def setter() -> None:
        await asyncio.sleep(0)
        state["ready"] = True
        event.set()

    await asyncio.gather(waiter("a"), waiter("b"), setter())
    assert sorted(released) == ["a", "b"]
    assert event.is_set()


# ---------------------------------------------------------------------------- Condition


async def condition_wait_notify() -> None:
    cond = asyncio.Condition()
    items: list[int] = []
    consumed: list[int] = []

    async def consumer() -> None:
        for _ in range(3):
            async with cond:
                while not items:
                    await cond.wait()
                consumed.append(items.pop(0))
            await asyncio.sleep(0)

    async def producer() -> None:
        for i in range(3):
            async with cond:
                items.append(i)
                cond.notify()
            await asyncio.sleep(0)

    await asyncio.gather(consumer(), producer())
    assert consumed == [0, 1, 2]
    assert not cond.locked()


async def condition_wait_for_notify_all() -> None:
    cond = asyncio.Condition()
    state = {"stage": 0}
    woken: list[str] = []

    async def waiter(name: str) -> None:
        async with cond:
            await cond.wait_for(lambda: state["stage"] == 1)
            assert cond.locked()
            assert state["stage"] == 1
            woken.append(name)

    async def publisher() -> None:
        await asyncio.sleep(0)
        async with cond:
            state["stage"] = 1
            cond.notify_all()

    await asyncio.gather(waiter("a"), waiter("b"), publisher())
    assert sorted(woken) == ["a", "b"]


# ---------------------------------------------------------------------------- queues


async def queue_producer_consumer_join() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    consumed: list[int] = []

    async def consumer() -> None:
        while True:
            item = await queue.get()
            await asyncio.sleep(0)
            consumed.append(item)
            queue.task_done()

    async def producer() -> None:
        for i in range(3):
            await queue.put(i)

    consumers = [asyncio.create_task(consumer()) for _ in range(2)]
    await producer()
    await queue.join()
    # join() returns only after every item was marked done, i.e. fully consumed
    assert sorted(consumed) == [0, 1, 2], consumed
    for task in consumers:
        task.cancel()
    results = await asyncio.gather(*consumers, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert queue.empty()


async def priority_queue_order() -> None:
    queue: asyncio.PriorityQueue[tuple[int, str]] = asyncio.PriorityQueue()
    got: list[int] = []

    async def consumer() -> None:
        while True:
            prio, _ = await queue.get()
            got.append(prio)  # same step as the get: no await in between
            await asyncio.sleep(0)
            queue.task_done()

    for prio in (3, 1, 4, 2):
        queue.put_nowait((prio, f"job{prio}"))
    workers = [asyncio.create_task(consumer()) for _ in range(2)]
    await queue.join()
    assert got == [1, 2, 3, 4], got  # each get returns the smallest item present
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def lifo_queue_order() -> None:
    queue: asyncio.LifoQueue[int] = asyncio.LifoQueue()
    got: list[int] = []
    filled = asyncio.Event()

    async def producer() -> None:
        for i in range(3):
            await queue.put(i)
            await asyncio.sleep(0)
        filled.set()

    async def consumer() -> None:
        await filled.wait()
        while not queue.empty():
            got.append(await queue.get())
            await asyncio.sleep(0)

    await asyncio.gather(producer(), consumer())
    assert got == [2, 1, 0]


# ---------------------------------------------------------------------------- Barrier


async def barrier_phases() -> None:
    barrier = asyncio.Barrier(3)
    arrived = [0, 0]
    indices: list[list[int]] = [[], []]

    async def party() -> None:
        for phase in range(2):
            arrived[phase] += 1
            index = await barrier.wait()
            assert arrived[phase] == 3, "left the barrier before all parties arrived"
            indices[phase].append(index)

    await asyncio.gather(party(), party(), party())
    assert [sorted(i) for i in indices] == [[0, 1, 2], [0, 1, 2]]
    assert barrier.n_waiting == 0
    assert not barrier.broken


# ---------------------------------------------------------------------------- TaskGroup


async def taskgroup_all_succeed() -> None:
    results: list[int] = []

    async def child(i: int) -> int:
        await asyncio.sleep(0)
        results.append(i)
        await asyncio.sleep(0)
        return i * 10

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(child(i)) for i in range(3)]
    assert sorted(results) == [0, 1, 2]
    assert [t.result() for t in tasks] == [0, 10, 20]


async def taskgroup_child_fails_siblings_cancelled() -> None:
    cancelled: list[str] = []
    started = asyncio.Event()

    async def failing() -> None:
        await started.wait()
        raise ValueError("boom")

    async def sibling(name: str) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        raise AssertionError("a sibling outlived the failing child")

    caught = False
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(failing())
            s1 = tg.create_task(sibling("s1"))
            s2 = tg.create_task(sibling("s2"))
    except* ValueError as group:
        caught = True
        assert len(group.exceptions) == 1
        assert str(group.exceptions[0]) == "boom"
    assert caught
    assert s1.cancelled() and s2.cancelled()
    # a sibling cancelled before its first step never reaches its try block
    assert set(cancelled) <= {"s1", "s2"}
    assert asyncio.get_running_loop().time() < 10  # nobody waited the sleep out


# ---------------------------------------------------------------------------- gather


async def gather_results_in_order() -> None:
    async def job(i: int) -> int:
        for _ in range(i):
            await asyncio.sleep(0)
        return i

    assert await asyncio.gather(job(2), job(0), job(1)) == [2, 0, 1]


async def gather_return_exceptions() -> None:
    async def ok(value: int) -> int:
        await asyncio.sleep(0)
        return value

    async def bad() -> int:
        await asyncio.sleep(0)
        raise KeyError("missing")

    results = await asyncio.gather(ok(1), bad(), ok(3), return_exceptions=True)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], KeyError)


# ---------------------------------------------------------------------------- asyncio.wait


async def wait_first_completed() -> None:
    async def job(delay: float, value: str) -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(delay)
        await asyncio.sleep(0)
        return value

    fast = asyncio.create_task(job(1, "fast"))
    slow = asyncio.create_task(job(5, "slow"))
    slower = asyncio.create_task(job(7, "slower"))
    done, pending = await asyncio.wait({fast, slow, slower},
                                      return_when=asyncio.FIRST_COMPLETED)
    assert done == {fast} and pending == {slow, slower}
    assert fast.result() == "fast"
    # cancel the rest before returning, so no task leaks
    for task in pending:
        task.cancel()
    await asyncio.wait(pending)
    assert slow.cancelled() and slower.cancelled()
    assert asyncio.get_running_loop().time() == 1


async def wait_all_completed() -> None:
    async def job(delay: float) -> float:
        await asyncio.sleep(0)
        await asyncio.sleep(delay)
        await asyncio.sleep(0)
        return delay

    tasks = [asyncio.create_task(job(d)) for d in (2, 1, 3)]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.ALL_COMPLETED)
    assert not pending
    assert sorted(t.result() for t in done) == [1, 2, 3]
    assert asyncio.get_running_loop().time() == 3


# ---------------------------------------------------------------------------- wait_for / timeout


async def wait_for_completes_in_time() -> None:
    async def job() -> str:
        await asyncio.sleep(1)
        await asyncio.sleep(0)
        return "done"

    other = asyncio.create_task(job())
    assert await asyncio.wait_for(job(), timeout=10) == "done"
    assert await other == "done"
    assert asyncio.get_running_loop().time() == 1


async def wait_for_times_out() -> None:
    cleaned = asyncio.Event()
    outcomes: list[str] = []

    async def slow() -> str:
        await asyncio.sleep(0)
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.set()
        return "late"

    async def quick() -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(1)
        return "quick"

    async def times_out() -> None:
        try:
            await asyncio.wait_for(slow(), timeout=2)
        except TimeoutError:
            # wait_for cancels the inner awaitable and waits for it before raising
            assert cleaned.is_set()
            outcomes.append("timed-out")

    async def in_time() -> None:
        outcomes.append(await asyncio.wait_for(quick(), timeout=5))

    await asyncio.gather(times_out(), in_time())
    assert sorted(outcomes) == ["quick", "timed-out"]
    assert asyncio.get_running_loop().time() == 2


async def timeout_context_manager() -> None:
    steps: list[str] = []

    async def in_time() -> None:
        async with asyncio.timeout(5):
            await asyncio.sleep(0)
            await asyncio.sleep(1)
            await asyncio.sleep(0)
            steps.append("in-time")

    async def too_slow() -> None:
        try:
            async with asyncio.timeout(2) as cm:
                await asyncio.sleep(0)
                await asyncio.sleep(10)
                steps.append("unreachable")
        except TimeoutError:
            assert cm.expired()
            steps.append("timed-out")
        # the timeout's own cancellation was uncancelled: nothing is pending any more
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        await asyncio.sleep(0)

    await asyncio.gather(in_time(), too_slow())
    assert sorted(steps) == ["in-time", "timed-out"]
    assert asyncio.get_running_loop().time() == 2


# ---------------------------------------------------------------------------- shield


async def shield_protects_inner() -> None:
    inner_started = asyncio.Event()
    finished: list[str] = []

    async def inner() -> str:
        await asyncio.sleep(0)
        inner_started.set()
        await asyncio.sleep(1)
        await asyncio.sleep(0)
        finished.append("inner")
        return "inner-result"

    inner_task = asyncio.create_task(inner())

    async def outer() -> str:
        await asyncio.sleep(0)
        return await asyncio.shield(inner_task)

    outer_task = asyncio.create_task(outer())
    await inner_started.wait()
    outer_task.cancel()
    try:
        await outer_task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the outer task was not cancelled")
    assert outer_task.cancelled()
    assert await inner_task == "inner-result"  # the shielded work ran to completion
    assert finished == ["inner"]


# ---------------------------------------------------------------------------- as_completed


async def as_completed_order() -> None:
    async def job(delay: float) -> float:
        await asyncio.sleep(0)
        await asyncio.sleep(delay)
        return delay

    order = [await fut for fut in asyncio.as_completed([job(3), job(1), job(2)])]
    assert order == [1, 2, 3]  # distinct virtual deadlines: completion order is fixed


# ---------------------------------------------------------------------------- cancellation


async def cancel_task_runs_cleanup() -> None:
    cleanup: list[str] = []

    async def worker(name: str, started: asyncio.Event) -> None:
        await asyncio.sleep(0)
        started.set()
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0)  # cleanup may itself await
            cleanup.append(name)

    events = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(worker(n, e)) for n, e in zip("ab", events, strict=True)]
    for event in events:
        await event.wait()
    for task in tasks:
        assert task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert all(t.cancelled() for t in tasks)
    assert sorted(cleanup) == ["a", "b"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    assert asyncio.get_running_loop().time() == 0


async def cancelling_and_uncancel() -> None:
    started = asyncio.Event()
    beats: list[int] = []

    async def stubborn() -> str:
        me = asyncio.current_task()
        assert me is not None
        await asyncio.sleep(0)
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            assert me.cancelling() == 2  # two cancel() requests are pending
            assert me.uncancel() == 1
            assert me.uncancel() == 0
        await asyncio.sleep(0)  # no cancellation is pending any more
        return "survived"

    async def bystander() -> None:
        for i in range(2):
            beats.append(i)
            await asyncio.sleep(0)

    task = asyncio.create_task(stubborn())
    other = asyncio.create_task(bystander())
    await started.wait()
    task.cancel()
    task.cancel()
    assert task.cancelling() == 2
    assert await task == "survived"
    assert not task.cancelled()
    assert task.cancelling() == 0
    await other
    assert beats == [0, 1]


# ---------------------------------------------------------------------------- to_thread


async def to_thread_inline() -> None:
    lock = asyncio.Lock()
    total = 0

    def compute(x: int) -> int:
        return x * x

    async def worker(x: int) -> None:
        nonlocal total
        value = await asyncio.to_thread(compute, x)
        async with lock:
            seen = total
            await asyncio.sleep(0)
            total = seen + value

    await asyncio.gather(worker(2), worker(3), worker(4))
    assert total == 29


# ---------------------------------------------------------------------------- controls
# Broken twins of two scenarios above. They show the searches below are not vacuous: the
# same search that passes the correct program does find the bug in the broken one.


async def broken_lock_mutual_exclusion() -> None:
    counter = 0

    async def worker() -> None:
        nonlocal counter
        for _ in range(2):
            seen = counter  # no lock: read, yield, write back a stale value
            await asyncio.sleep(0)
            counter = seen + 1

    await asyncio.gather(worker(), worker(), worker())
    assert counter == 6, f"lost update: {counter}"


async def broken_semaphore_leaks_permit_on_cancel() -> None:
    # acquires without a context manager and forgets to release on cancellation
    sem = asyncio.Semaphore(1)
    started = asyncio.Event()

    async def holder() -> None:
        await sem.acquire()
        started.set()
        await asyncio.sleep(0)
        await asyncio.sleep(1)
        sem.release()

    task = asyncio.create_task(holder())
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not sem.locked(), "a cancelled holder leaked its permit"


# ---------------------------------------------------------------------------- parametrisation


@dataclass(frozen=True)
class Case:
    fn: Scenario
    bound: int = 2
    exhausts: bool = True  # the bounded space fits in MAX_SCHEDULES


CASES = [
    Case(lock_mutual_exclusion),
    Case(lock_fifo_fairness),
    Case(lock_cancelled_waiter_passes_the_lock_on),
    Case(semaphore_bounds_concurrency),
    Case(bounded_semaphore_over_release),
    Case(semaphore_cancelled_waiter),
    Case(event_releases_all_waiters),
    Case(condition_wait_notify),
    Case(condition_wait_for_notify_all),
    Case(queue_producer_consumer_join),
    Case(priority_queue_order),
    Case(lifo_queue_order),
    Case(barrier_phases),
    Case(taskgroup_all_succeed),
    Case(taskgroup_child_fails_siblings_cancelled),
    Case(gather_results_in_order),
    Case(gather_return_exceptions),
    Case(wait_first_completed),
    Case(wait_all_completed),
    Case(wait_for_completes_in_time),
    Case(wait_for_times_out),
    Case(timeout_context_manager),
    Case(shield_protects_inner),
    Case(as_completed_order),
    Case(cancel_task_runs_cleanup),
    Case(cancelling_and_uncancel),
    Case(to_thread_inline),
]

PARAMS = [pytest.param(case, id=case.fn.__name__) for case in CASES]


def test_every_scenario_is_listed() -> None:
    defined = {
        name for name, value in globals().items()
        if inspect.isfunction(value) and inspect.iscoroutinefunction(value)
        and value.__module__ == __name__
        and not name.startswith("broken_")
    }
    assert defined == {case.fn.__name__ for case in CASES}


@pytest.mark.parametrize("case", PARAMS)
def test_systematic_finds_no_false_alarm(case: Case) -> None:
    result = explorer.explore(case.fn, strategy="systematic", deviation_bound=case.bound,
                              max_schedules=MAX_SCHEDULES)
    assert result.failure is None
    assert result.schedules > 1, "the scenario has no scheduling choice; it tests nothing"
    if case.exhausts:
        assert result.exhausted, result.coverage


@pytest.mark.parametrize("case", PARAMS)
def test_random_finds_no_false_alarm(case: Case) -> None:
    result = explorer.explore(case.fn, strategy="random", max_schedules=300, seed=0)
    assert result.failure is None
    assert result.schedules == 300


@pytest.mark.parametrize("scenario", [broken_lock_mutual_exclusion,
                                      broken_semaphore_leaks_permit_on_cancel],
                         ids=lambda fn: fn.__name__)
@pytest.mark.parametrize("strategy", ["systematic", "random"])
def test_controls_fail(scenario: Scenario, strategy: str) -> None:
    options: dict[str, Any] = (
        {"deviation_bound": 2, "max_schedules": MAX_SCHEDULES} if strategy == "systematic"
        else {"seed": 0, "max_schedules": 300}
    )
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(scenario, strategy=strategy, **options)
    assert info.value.kind == "assertion"
