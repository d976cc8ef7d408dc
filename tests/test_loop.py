"""The controlled loop: stock order, virtual time, task ids, escapes, inline threads."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
import time
from typing import Any

import pytest

import explorer


async def _ordering_program(log: list[str]) -> None:
    """Touches every kind of ready work: task starts and steps, wake-ups, future
    callbacks, plain callbacks and zero-delay timers."""
    loop = asyncio.get_running_loop()
    lock = asyncio.Lock()
    event = asyncio.Event()
    future: asyncio.Future[int] = loop.create_future()
    future.add_done_callback(lambda f: log.append(f"future-callback {f.result()}"))

    async def worker(name: str) -> None:
        log.append(f"{name} start")
        async with lock:
            log.append(f"{name} locked")
            await asyncio.sleep(0)
        await event.wait()
        log.append(f"{name} woke")

    loop.call_soon(log.append, "call_soon 1")
    loop.call_later(0, log.append, "call_later 0")
    tasks = [asyncio.ensure_future(worker(n)) for n in "abc"]
    loop.call_soon(log.append, "call_soon 2")
    await asyncio.sleep(0)
    future.set_result(7)
    await asyncio.sleep(0)
    event.set()
    await asyncio.gather(*tasks)
    log.append("end")


def test_all_zero_schedule_is_the_stock_asyncio_order() -> None:
    stock: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_ordering_program(stock))
    finally:
        loop.close()
    controlled: list[str] = []
    result = explorer.run(_ordering_program, controlled)
    assert result.passed
    assert controlled == stock
    assert str(result.schedule) == "v1:"


async def _sleeper(out: dict[str, float]) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(3600)
    out["after_sleep"] = loop.time()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(100), timeout=5)
    out["after_wait_for"] = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2):
            await asyncio.Event().wait()
    out["after_timeout"] = loop.time()
    fired = asyncio.Event()
    loop.call_later(0.5, fired.set)
    await fired.wait()
    out["after_call_later"] = loop.time()


def test_virtual_time_jumps_to_the_next_timer() -> None:
    out: dict[str, float] = {}
    assert explorer.run(_sleeper, out).passed
    assert out == {"after_sleep": 3600, "after_wait_for": 3605, "after_timeout": 3607,
                   "after_call_later": 3607.5}


async def _timeout_race() -> None:
    async def work() -> str:
        for _ in range(3):
            await asyncio.sleep(0)
        return "done"

    assert await asyncio.wait_for(work(), timeout=1) == "done"


def test_timer_choice_finds_timeout_versus_completion_races() -> None:
    plain = explorer.explore(_timeout_race, strategy="systematic")
    assert plain.failure is None and plain.exhausted
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_timeout_race, strategy="systematic", timer_races=True)
    failure = info.value
    assert failure.kind == "exception"
    assert failure.outcome.exc_type == "TimeoutError"
    assert str(failure.schedule).startswith("v1+timers:")
    assert any(step.kind == "timer" for step in failure.trace)
    with pytest.raises(explorer.ScheduleFailure):
        explorer.replay(_timeout_race, str(failure.schedule))


async def _family() -> None:
    async def grandchild() -> None:
        await asyncio.sleep(0)

    async def child() -> None:
        await asyncio.gather(grandchild(), grandchild())

    async with asyncio.TaskGroup() as group:
        group.create_task(child())
        group.create_task(child(), name="custom name")


def test_task_ids_come_from_the_creation_path() -> None:
    result = explorer.run(_family)
    names = {step.task for step in result.trace}
    assert {"child#1", "child#2", "child#1/grandchild#1", "child#1/grandchild#2",
            "child#2/grandchild#1", "child#2/grandchild#2", "main"} <= names
    again = explorer.run(_family)
    assert result.trace.hash() == again.trace.hash()


async def _names_are_stable(out: list[str]) -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    out.append(task.get_name())
    await task


def test_default_task_names_are_the_stable_ids() -> None:
    first: list[str] = []
    second: list[str] = []
    explorer.run(_names_are_stable, first)
    explorer.run(_names_are_stable, second)
    assert first == second == ["main/sleep#1"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks exist from 3.12")
def test_eager_task_factory_is_neutralised() -> None:
    async def scenario(log: list[str]) -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]

        async def child() -> None:
            log.append("child ran")

        task = asyncio.create_task(child())
        log.append("parent continued")
        await task

    log: list[str] = []
    assert explorer.run(scenario, log).passed
    assert log == ["parent continued", "child ran"]


async def _to_thread(out: dict[str, Any]) -> None:
    def blocking(x: int) -> int:
        out["thread"] = threading.get_ident()
        return x * 2

    out["result"] = await asyncio.to_thread(blocking, 21)
    out["loop_thread"] = threading.get_ident()


def test_to_thread_runs_inline_as_one_step() -> None:
    out: dict[str, Any] = {}
    assert explorer.run(_to_thread, out).passed
    assert out["result"] == 42
    assert out["thread"] == out["loop_thread"]


async def _opens_a_socket() -> None:
    await asyncio.open_connection("example.invalid", 80)


async def _sleeps_for_real() -> None:
    time.sleep(0.5)


async def _swallows_the_escape() -> None:
    with contextlib.suppress(Exception):  # catching it must not hide the escape
        await asyncio.get_running_loop().getaddrinfo("example.invalid", 80)


_LOOPS: queue.Queue[asyncio.AbstractEventLoop | None] = queue.Queue()
_POKE_ERRORS: list[BaseException] = []


def _poker() -> None:
    """A thread started outside any run, which pokes the loops it is handed."""
    while True:
        loop = _LOOPS.get()
        try:
            if loop is None:
                return
            loop.call_soon_threadsafe(lambda: None)
        except explorer.EscapeError as exc:
            _POKE_ERRORS.append(exc)
        finally:
            _LOOPS.task_done()


async def _foreign_thread() -> None:
    _LOOPS.put(asyncio.get_running_loop())
    _LOOPS.join()  # blocks until the other thread has tried


@pytest.fixture
def poker() -> Any:
    thread = threading.Thread(target=_poker)
    thread.start()
    yield
    _LOOPS.put(None)
    thread.join()


async def _nested_run() -> None:
    asyncio.get_running_loop().run_until_complete(asyncio.sleep(0))


@pytest.mark.parametrize(("scenario", "names", "fix"), [
    (_opens_a_socket, "loop.create_connection('example.invalid', 80)",
     "start the server inside the scenario"),
    (_sleeps_for_real, "time.sleep(0.5)", "asyncio.sleep"),
    (_swallows_the_escape, "loop.getaddrinfo('example.invalid', 80)", "explorer.alias"),
    (_foreign_thread, "call_soon_threadsafe(_poker.<locals>.<lambda>) from thread", "inline here"),
    (_nested_run, "loop.run_until_complete()", "await the coroutine"),
])
@pytest.mark.usefixtures("poker")
def test_escapes_are_refused_with_the_call_and_the_fix(scenario: Any, names: str,
                                                       fix: str) -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(scenario, max_schedules=2)
    failure = info.value
    assert failure.kind == "escape"
    assert names in str(failure)
    assert fix in str(failure)
    assert failure.location is not None
    assert failure.location.short.startswith("test_loop.py:")


async def _cancelled_callback(log: list[str]) -> None:
    loop = asyncio.get_running_loop()
    handle = loop.call_soon(log.append, "must not run")
    loop.call_soon(log.append, "runs")
    handle.cancel()
    await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))


def test_cancelled_handles_are_never_candidates() -> None:
    logs: list[list[str]] = []

    async def scenario() -> None:
        log: list[str] = []
        await _cancelled_callback(log)
        logs.append(log)

    result = explorer.explore(scenario, strategy="systematic")
    assert result.exhausted
    assert all(log == ["runs"] for log in logs)
    assert len(logs) >= result.schedules > 1


def test_time_sleep_is_restored_after_exploration() -> None:
    explorer.run(_to_thread, {})
    assert time.sleep.__module__ == "time"


async def _relies_on_callback_fifo(log: list[str]) -> None:
    """Correct under asyncio's documented contract: callbacks run in registration order,
    and a future's done callbacks in the order they were added."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    future.add_done_callback(lambda _: log.append("done 1"))
    future.add_done_callback(lambda _: log.append("done 2"))

    async def worker(name: str) -> None:
        await asyncio.sleep(0)
        log.append(name)

    tasks = [asyncio.create_task(worker(n)) for n in ("w1", "w2")]
    loop.call_soon(log.append, "cb 1")
    loop.call_soon(log.append, "cb 2")
    loop.call_soon(future.set_result, None)
    await asyncio.gather(*tasks, future)
    callbacks = [entry for entry in log if entry.startswith(("cb", "done"))]
    assert callbacks == ["cb 1", "cb 2", "done 1", "done 2"], log


def test_plain_callbacks_keep_their_fifo_order_under_every_schedule() -> None:
    logs: list[list[str]] = []

    async def scenario() -> None:
        log: list[str] = []
        await _relies_on_callback_fifo(log)
        logs.append(log)

    result = explorer.explore(scenario, strategy="systematic", deviation_bound=3)
    assert result.failure is None
    assert result.exhausted
    # ...while tasks still interleave with the callbacks and with each other.
    assert len({tuple(log) for log in logs}) > 10
    assert any(log.index("w2") < log.index("w1") for log in logs)
    assert any(log.index("w1") < log.index("cb 1") for log in logs)


async def _starts_a_thread() -> None:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()


def test_starting_a_thread_is_an_escape() -> None:
    result = explorer.run(_starts_a_thread)
    assert result.outcome.kind == "escape"
    assert "threading.Thread.start()" in result.outcome.message
    assert "run inline here" in result.outcome.message
    assert threading.Thread.start.__qualname__ == "Thread.start"  # restored afterwards


async def _taskgroup_cancels_in_a_fixed_order(order: list[str]) -> None:
    async def child(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            order.append(name)

    async def boom() -> None:
        await asyncio.sleep(0)
        raise KeyError("stop")

    with contextlib.suppress(ExceptionGroup):
        async with asyncio.TaskGroup() as group:
            for name in "abcdefgh":
                group.create_task(child(name))
            group.create_task(boom())


def test_sets_of_tasks_iterate_in_the_same_order_every_run() -> None:
    orders = set()
    for _ in range(30):
        order: list[str] = []
        assert explorer.run(_taskgroup_cancels_in_a_fixed_order, order).passed
        orders.add("".join(order))
    assert len(orders) == 1


async def _as_completed_with_coroutines(done: list[int]) -> None:
    async def job(n: int) -> int:
        await asyncio.sleep(1)
        return n

    for next_done in asyncio.as_completed([job(n) for n in range(6)]):
        done.append(await next_done)


def test_as_completed_creates_its_tasks_in_argument_order() -> None:
    results = set()
    for _ in range(20):
        done: list[int] = []
        explorer.run(_as_completed_with_coroutines, done)
        results.add(tuple(done))
    assert len(results) == 1


def test_tasks_made_without_create_task_get_ids_stable_across_runs() -> None:
    """``asyncio.Task(coro, loop=...)`` directly (aiohttp does it, with ``eager_start`` on
    3.12+) bypasses the loop's create_task; such tasks are named by parent and rank, so the
    same schedule names them the same in every run, whatever ``Task-N`` they got."""
    counter = {"value": 0}

    async def child() -> None:
        await asyncio.sleep(0)
        value = counter["value"]
        await asyncio.sleep(0)
        counter["value"] = value + 1

    async def scenario() -> None:
        counter["value"] = 0
        loop = asyncio.get_running_loop()
        extra = {"eager_start": True} if sys.version_info >= (3, 12) else {}
        tasks = [asyncio.Task(child(), loop=loop, **extra) for _ in range(2)]
        await asyncio.gather(*tasks)

    first = explorer.run(scenario, schedule="v1:1=1")
    again = explorer.run(scenario, schedule="v1:1=1")
    names = {step.task for step in first.trace.steps}
    assert {"task-1", "task-2"} <= names, names
    assert first.trace.hash() == again.trace.hash()
    # The determinism check replays a sample of these runs: no false nondeterminism.
    result = explorer.explore(scenario, max_schedules=50, seed=3, raise_on_failure=False)
    assert result.ok, result.failure
