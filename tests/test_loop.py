"""The controlled loop: stock order, virtual time, task ids, escapes, inline threads."""

from __future__ import annotations

import asyncio
import contextlib
import gc
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


async def _book_across_to_thread(locked: bool) -> None:
    """Check a seat, write an audit line in a worker thread, then take the seat."""
    seats: dict[str, str] = {}
    lock = asyncio.Lock()

    def audit(who: str) -> str:
        return f"{who} books 7"

    async def book(who: str) -> None:
        async with lock if locked else contextlib.nullcontext():
            if "7" not in seats:
                await asyncio.to_thread(audit, who)
                assert "7" not in seats, f"seat 7 booked twice ({seats['7']}, {who})"
                seats["7"] = who

    async def book_later(who: str) -> None:
        await asyncio.sleep(0)  # in stock order the first booking is over by now
        await book(who)

    await asyncio.gather(book("ann"), book_later("bob"))


def test_to_thread_suspends_its_caller_so_races_across_it_are_found() -> None:
    # On a real pool the caller waits while the thread runs and other tasks go on; the
    # function runs in a step of its own, named after it.
    with pytest.raises(explorer.ScheduleFailure) as caught:
        explorer.explore(_book_across_to_thread, False, strategy="systematic",
                         deviation_bound=2)
    failure = caught.value
    assert failure.kind == "assertion" and "booked twice" in str(failure)
    assert "audit (worker thread)" in str(failure)
    result = explorer.explore(_book_across_to_thread, True, strategy="systematic",
                              deviation_bound=2)
    assert result.ok and result.exhausted and result.schedules > 1


def test_run_in_executor_hands_exceptions_and_cancellation_to_the_caller() -> None:
    ran: list[str] = []

    def fails() -> None:
        ran.append("fails")
        raise KeyError("from the pool")

    def skipped() -> None:
        ran.append("skipped")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(KeyError, match="from the pool"):
            await loop.run_in_executor(None, fails)
        future = loop.run_in_executor(None, skipped)
        future.cancel()  # cancelled before the pool got to it: the function never runs
        await asyncio.sleep(0)

    assert explorer.explore(scenario, strategy="systematic").ok
    assert set(ran) == {"fails"}


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


# ---------------------------------------------------------------- the end of a run
# asyncio.run stops the loop at the end of the iteration after main's return (see
# explorer._asyncio._loop, "The end of a run"); what is pending there is a leak.


def _task_name(qualname: str) -> str:
    return qualname.rpartition(".")[2]


async def _woken_at_return(log: list[str]) -> None:
    """The worker's wake-up is queued when main returns: it runs in the last iteration."""
    event = asyncio.Event()

    async def worker() -> None:
        await event.wait()
        log.append("worker woke")

    asyncio.create_task(worker())
    await asyncio.sleep(0)
    event.set()


async def _woken_in_the_last_iteration(log: list[str]) -> None:
    """first wakes in the last iteration and wakes second, which never runs again."""
    one, two = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        await one.wait()
        log.append("first woke")
        two.set()

    async def second() -> None:
        await two.wait()
        log.append("second woke")

    asyncio.create_task(first())
    asyncio.create_task(second())
    await asyncio.sleep(0)
    one.set()


async def _woken_by_the_rest_of_the_iteration(log: list[str]) -> None:
    """setter's step runs after main's last step, in the same iteration; the waiter it
    wakes runs in the next one, the last."""
    go, event = asyncio.Event(), asyncio.Event()

    async def waiter() -> None:
        await event.wait()
        log.append("waiter woke")

    async def setter() -> None:
        go.set()  # main's wake-up is queued ahead of this task's next step
        await asyncio.sleep(0)
        event.set()
        log.append("set")

    asyncio.create_task(waiter())
    asyncio.create_task(setter())
    await go.wait()
    log.append("main returns")


async def _woken_by_a_due_timer(log: list[str]) -> None:
    """A zero-delay timer joins the last iteration; the waiter it wakes is too late."""
    event = asyncio.Event()

    async def waiter() -> None:
        await event.wait()
        log.append("waiter woke")

    asyncio.create_task(waiter())
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_later(0, event.set)


async def _never_woken(log: list[str]) -> None:
    async def waiter() -> None:
        await asyncio.Event().wait()
        log.append("never")

    async def quick() -> None:
        log.append("quick ran")

    asyncio.create_task(waiter())
    await asyncio.sleep(0)
    asyncio.create_task(quick())  # started at the return: its one step still runs


_END_SHAPES = [_woken_at_return, _woken_in_the_last_iteration,
               _woken_by_the_rest_of_the_iteration, _woken_by_a_due_timer, _never_woken]


def _stock_end(shape: Any) -> tuple[list[str], list[str]]:
    """What asyncio.run's loop ran, and the tasks pending where it stops the loop."""
    log: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(shape(log))
        pending = asyncio.all_tasks(loop)
        names = sorted(_task_name(t.get_coro().__qualname__) for t in pending)
        if pending:  # cancelled as asyncio.run does next
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    finally:
        loop.close()
    return log, names


@pytest.mark.parametrize("shape", _END_SHAPES, ids=lambda shape: shape.__name__)
def test_a_run_ends_where_asyncio_run_stops_the_loop(shape: Any) -> None:
    stock_log, stock_pending = _stock_end(shape)
    log: list[str] = []
    result = explorer.run(shape, log)
    assert log == stock_log
    if stock_pending:
        assert result.outcome.kind == "leaked_task"
        leaked = [task.rpartition("/")[2].partition("#")[0]
                  for task in result.outcome.details["tasks"]]
        assert leaked == stock_pending
    else:
        assert result.passed, result.outcome


def test_the_steps_after_the_return_are_counted_but_not_traced() -> None:
    log: list[str] = []
    result = explorer.run(_woken_at_return, log)
    assert result.passed and log == ["worker woke"]
    assert [step.task for step in result.trace.steps][-1] == "main"
    assert result.steps == len(result.trace.steps) + 1  # the worker's last step


def test_a_task_woken_before_the_return_is_never_a_leak() -> None:
    logs: list[list[str]] = []

    async def scenario() -> None:
        log: list[str] = []
        logs.append(log)
        await _woken_at_return(log)

    result = explorer.explore(scenario, strategy="systematic", deviation_bound=2)
    assert result.failure is None
    assert result.exhausted and result.schedules > 1
    assert all(any("woke" in entry for entry in log) for log in logs)


def test_a_never_woken_task_is_a_leak_in_every_schedule() -> None:
    async def scenario() -> None:
        await _never_woken([])

    verdicts = []
    strategy = explorer.strategies.Systematic(deviation_bound=2)
    for _ in range(1000):
        try:
            result = explorer.run(scenario, schedule=strategy)
        except explorer.UsageError as exc:  # every schedule within 2 deviations ran
            assert "no run left" in str(exc)
            break
        verdicts.append((result.outcome.kind, result.outcome.details.get("tasks")))
    else:
        pytest.fail("the systematic search did not end within 1000 schedules")
    assert len(verdicts) > 1
    assert {(kind, tuple(tasks or ())) for kind, tasks in verdicts} == {
        ("leaked_task", ("main/waiter#1",))}


def test_an_error_raised_in_the_last_iteration_surfaces_as_under_asyncio_run() -> None:
    async def scenario() -> None:
        event = asyncio.Event()

        async def worker() -> None:
            await event.wait()
            raise LookupError("after the scenario returned")

        asyncio.create_task(worker())
        await asyncio.sleep(0)
        event.set()

    result = explorer.run(scenario)
    assert result.outcome.kind == "exception"
    assert "nobody retrieved it" in result.outcome.message
    assert "LookupError: after the scenario returned" in result.outcome.message


def test_a_streams_handler_finishing_after_the_reply_is_not_a_leak() -> None:
    """The handler's last wake-up (its side of the connection closed) may still be
    queued when the client, having read the reply and the end of the stream, returns."""
    runs: list[list[str]] = []

    async def scenario() -> None:
        finished: list[str] = []
        runs.append(finished)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = await reader.readline()
            writer.write(b"ok " + line)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            finished.append("handler done")

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hi\n")
        assert await reader.readline() == b"ok hi\n"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()

    result = explorer.explore(scenario, strategy="systematic", deviation_bound=2)
    assert result.failure is None
    assert result.exhausted
    assert result.schedules > 1
    assert all(finished == ["handler done"] for finished in runs)


def test_an_aiohttp_handler_finishing_after_the_cleanup_is_not_a_leak() -> None:
    from aiohttp import ClientSession, web

    async def scenario() -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with ClientSession() as session, \
                session.get(f"http://localhost:{port}/") as response:
            assert response.status == 200
        await runner.cleanup()  # after the session closed: see docs/services.md

    assert explorer.explore(scenario, max_schedules=100, seed=1).failure is None


def test_a_task_stuck_in_its_cleanup_is_closed_quietly_when_the_run_ends() -> None:
    # A deadlocked run: at cleanup the worker is cancelled, and its `finally` awaits a
    # future nothing will set. Left to the garbage collector, closing it would print
    # "coroutine ignored GeneratorExit" into whatever runs then.
    closed: list[str] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        async def worker() -> None:
            try:
                await loop.create_future()
            finally:
                try:
                    await loop.create_future()
                finally:
                    closed.append("worker")

        task = loop.create_task(worker())
        await task

    unraisable: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        result = explorer.run(scenario)
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert result.outcome.kind == "deadlock", result.outcome
    assert closed == ["worker"]
    assert unraisable == []
