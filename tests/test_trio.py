"""trio under the explorer: the gallery's trio forms, determinism, soundness of trio's own
primitives, virtual time, deadlock analysis, escapes and misuse."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
import trio.testing
from hypothesis import given, settings

import explorer
from examples.gallery import Example, trio_examples
from examples.trio import bank, counter, signal, transfer
from explorer import strategies
from explorer._trio import _selftest
from explorer._trio._runner import TrioRuntime
from explorer._watchdog import RunTimeout
from explorer.strategies.hypothesis import schedules
from tests.conftest import ROOT

EXAMPLES = trio_examples()


def _explore(fn: Callable[[], Awaitable[Any]], **kwargs: Any) -> explorer.ExploreResult:
    kwargs.setdefault("raise_on_failure", False)
    return explorer.explore(fn, runtime="trio", **kwargs)


# ---------------------------------------------------------------- the gallery, trio form


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_bug_is_found_shrunk_and_replayed_exactly(example: Example) -> None:
    result = _explore(example.buggy, strategy="systematic", deviation_bound=example.bound)
    failure = result.failure
    assert failure is not None and failure.kind == example.kind
    assert failure.runtime == "trio" and "runtime='trio'" in failure.replay_line()
    assert failure.shrink is not None and failure.shrink.proven_minimal
    # Found within the deviation bound, then shrunk to the fewest switches (a task kept
    # going through its checkpoints deviates from trio's rotation at each).
    assert failure.shrink.original_deviations <= example.bound
    assert failure.switches is not None
    assert failure.switches <= (failure.shrink.original_switches or 0)
    with pytest.raises(explorer.ScheduleFailure) as replayed:
        explorer.replay(example.buggy, str(failure.schedule), runtime="trio")
    assert replayed.value.trace.hash() == failure.trace.hash()
    assert replayed.value.outcome.signature() == failure.outcome.signature()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_bug_is_found_by_the_default_strategy(example: Example) -> None:
    for seed in range(3):
        result = _explore(example.buggy, seed=seed, max_schedules=500)
        assert result.failure is not None and result.failure.kind == example.kind


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_fix_passes_a_bounded_systematic_search(example: Example) -> None:
    result = _explore(example.fixed, strategy="systematic", deviation_bound=example.bound,
                      max_schedules=50_000)
    assert result.ok and result.exhausted, result.failure
    assert result.schedules > 1


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_fix_passes_a_random_search(example: Example) -> None:
    assert _explore(example.fixed, strategy="random", seed=1, max_schedules=300).ok


def test_deadlock_report_names_the_cycle_and_the_holders() -> None:
    failure = _explore(transfer.abba, strategy="systematic").failure
    assert failure is not None
    message = failure.outcome.message
    assert "tasks wait on each other in a cycle" in message
    assert "Lock.acquire" in message and "held by" in message
    assert failure.outcome.location is not None
    assert failure.outcome.location.short.startswith("transfer.py:")
    graph = failure.outcome.details
    assert len(graph["cycle"]) == 2 and graph["waits"]


def test_lost_wakeup_is_reported_as_such() -> None:
    failure = _explore(signal.lost_wakeup, strategy="systematic").failure
    assert failure is not None and failure.kind == "deadlock"
    assert "lost wake-up" in failure.outcome.message
    assert "Event.wait" in failure.outcome.message


# ---------------------------------------------------------------- determinism

CASES = [
    ("examples.trio.bank", "double_spend", "v1:0=1,1=1"),
    ("examples.trio.counter", "lost_update", "v1:1=1,3=2"),
    ("examples.trio.transfer", "abba", "v1:0=1"),
    ("examples.trio.signal", "lost_wakeup_fixed", "v1:2=1,4=2"),
]

_CHILD = """
import importlib, json, sys
sys.path.insert(0, {root!r})
import explorer
out = []
for module, name, schedule in json.loads(sys.argv[1]):
    fn = getattr(importlib.import_module(module), name)
    result = explorer.run(fn, schedule=schedule, runtime="trio", strict=False)
    out.append([result.trace.hash(), result.outcome.kind, str(result.schedule)])
print(json.dumps(out))
"""


def _in_process() -> list[list[str]]:
    import importlib

    out = []
    for module, name, schedule in CASES:
        fn = getattr(importlib.import_module(module), name)
        result = explorer.run(fn, schedule=schedule, runtime="trio", strict=False)
        out.append([result.trace.hash(), result.outcome.kind, str(result.schedule)])
    return out


def test_same_schedule_same_trace_in_process() -> None:
    first = _in_process()
    assert first == _in_process()
    assert len({row[0] for row in first}) == len(first)


@pytest.mark.parametrize("hashseed", ["0", "12345"])
def test_same_schedule_same_trace_in_a_fresh_process(hashseed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT)),
         json.dumps([list(c) for c in CASES])],
        capture_output=True, text=True, check=True, cwd=ROOT, env=env,
    )
    assert json.loads(proc.stdout) == _in_process()


def test_cancelling_many_tasks_at_once_gives_a_stable_candidate_order() -> None:
    # trio wakes the tasks of a cancelled scope by iterating a set ordered by address;
    # the candidates must still come in the same order in every run.
    async def scenario() -> None:
        order: list[int] = []

        async def sleeper(i: int) -> None:
            try:
                await trio.sleep_forever()
            finally:
                order.append(i)

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(sleeper, i)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    hashes = {explorer.run(scenario, schedule="v1:6=3,7=2", runtime="trio",
                           strict=False).trace.hash() for _ in range(5)}
    assert len(hashes) == 1


def test_random_search_is_reproducible_from_its_seed() -> None:
    def schedule(seed: int) -> str:
        failure = _explore(counter.lost_update, strategy="random", seed=seed,
                           shrink=False).failure
        assert failure is not None
        return str(failure.schedule)

    assert schedule(7) == schedule(7)


# ---------------------------------------------------------------- soundness


async def _locked_counter() -> None:
    lock, state = trio.Lock(), {"n": 0}

    async def inc() -> None:
        for _ in range(2):
            async with lock:
                value = state["n"]
                await trio.lowlevel.checkpoint()
                state["n"] = value + 1

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(inc)
    assert state["n"] == 6


async def _fifo_lock_and_semaphore() -> None:
    lock, sem = trio.StrictFIFOLock(), trio.Semaphore(2)
    inside = {"now": 0, "max": 0}
    order: list[int] = []

    async def job(i: int) -> None:
        async with sem:
            inside["now"] += 1
            inside["max"] = max(inside["max"], inside["now"])
            await trio.sleep(0)
            inside["now"] -= 1
        async with lock:
            order.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(job, i)
    assert inside["max"] <= 2 and sorted(order) == [0, 1, 2, 3]


async def _capacity_limiter() -> None:
    limiter = trio.CapacityLimiter(1)
    busy = {"now": 0}

    async def job() -> None:
        async with limiter:
            busy["now"] += 1
            assert busy["now"] == 1
            await trio.sleep(0)
            busy["now"] -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(job)


async def _event_and_condition() -> None:
    ready, cond = trio.Event(), trio.Condition()
    state = {"items": 0}

    async def producer() -> None:
        await ready.wait()
        for _ in range(2):
            async with cond:
                state["items"] += 1
                cond.notify()
            await trio.sleep(0)

    async def consumer() -> None:
        async with cond:
            while state["items"] == 0:
                await cond.wait()
            state["items"] -= 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        nursery.start_soon(consumer)
        nursery.start_soon(producer)
        ready.set()
    assert state["items"] == 0


async def _memory_channels() -> None:
    send, receive = trio.open_memory_channel[int](1)
    got: list[int] = []

    async def producer(channel: trio.MemorySendChannel[int], base: int) -> None:
        async with channel:
            for i in range(2):
                await channel.send(base + i)

    async def consumer(channel: trio.MemoryReceiveChannel[int]) -> None:
        async with channel:
            async for value in channel:
                got.append(value)

    async with trio.open_nursery() as nursery, send, receive:
        nursery.start_soon(producer, send.clone(), 0)
        nursery.start_soon(producer, send.clone(), 10)
        nursery.start_soon(consumer, receive.clone())
        nursery.start_soon(consumer, receive.clone())
    assert sorted(got) == [0, 1, 10, 11]


async def _cancel_scopes_and_timeouts() -> None:
    done: list[str] = []

    async def slow() -> None:
        with trio.move_on_after(5):
            await trio.sleep(10)
            done.append("never")
        done.append("moved on")

    async def shielded(scope: trio.CancelScope) -> None:
        with scope:
            with trio.CancelScope(shield=True):
                await trio.sleep(1)
                done.append("shielded")
            await trio.sleep_forever()

    async def deadline() -> None:
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(2):
                await trio.sleep_forever()
        done.append("failed after")

    outer = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow)
        nursery.start_soon(shielded, outer)
        nursery.start_soon(deadline)
        await trio.sleep(0)
        outer.cancel()
    assert sorted(done) == ["failed after", "moved on", "shielded"]
    assert trio.current_time() == 5


async def _nursery_start_and_errors() -> None:
    async def server(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.lowlevel.checkpoint()
        task_status.started(42)
        await trio.sleep_forever()

    async def failing() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("boom")

    async def client(port: int) -> None:
        await trio.sleep(0)
        assert port == 42

    async def serve_and_fail() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server)
            nursery.start_soon(client, port)
            nursery.start_soon(failing)

    with pytest.raises(ExceptionGroup) as caught:
        await serve_and_fail()
    assert caught.group_contains(KeyError)


async def _anyio_on_trio() -> None:
    lock, event = anyio.Lock(), anyio.Event()
    state = {"n": 0}
    send, receive = anyio.create_memory_object_stream[int](1)

    async def worker() -> None:
        async with lock:
            value = state["n"]
            await anyio.sleep(0)
            state["n"] = value + 1
        await send.send(await anyio.to_thread.run_sync(lambda: 1))

    async with send, receive, anyio.create_task_group() as tg:
        tg.start_soon(worker)
        tg.start_soon(worker)
        assert await receive.receive() + await receive.receive() == 2
        event.set()
    await event.wait()
    with anyio.move_on_after(1):
        await anyio.sleep(5)
    assert state["n"] == 2


async def _wait_all_tasks_blocked_and_to_thread() -> None:
    seen: list[int] = []

    async def waiter() -> None:
        seen.append(await trio.to_thread.run_sync(lambda: 7))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [7, 7]


SOUND = [_locked_counter, _fifo_lock_and_semaphore, _capacity_limiter,
         _event_and_condition, _memory_channels, _cancel_scopes_and_timeouts,
         _nursery_start_and_errors, _anyio_on_trio, _wait_all_tasks_blocked_and_to_thread]


@pytest.mark.parametrize("scenario", SOUND, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.slow
def test_trio_primitives_pass_every_explored_schedule(scenario: Callable[[], Any]) -> None:
    systematic = _explore(scenario, strategy="systematic", deviation_bound=2,
                          max_schedules=3000)
    assert systematic.ok, systematic.failure
    assert _explore(scenario, strategy="random", seed=3, max_schedules=200).ok
    assert _explore(scenario, seed=5, max_schedules=200).ok


# ---------------------------------------------------------------- time and timers


def test_time_is_virtual() -> None:
    async def scenario() -> None:
        await trio.sleep(3600)
        assert trio.current_time() == 3600

    result = explorer.run(scenario, runtime="trio")
    assert result.passed


def test_timer_races_find_a_timeout_that_fires_before_ready_work() -> None:
    async def scenario() -> None:
        done: list[int] = []

        async def work() -> None:
            await trio.lowlevel.checkpoint()
            done.append(1)

        with trio.move_on_after(1):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(work)
        assert done, "the timeout cancelled work that was ready to run"

    assert _explore(scenario, strategy="systematic").ok
    failure = _explore(scenario, strategy="systematic", timer_races=True).failure
    assert failure is not None and failure.kind == "assertion"
    assert failure.schedule.timers
    assert any(step.task == "clock" for step in failure.trace)


# ---------------------------------------------------------------- outcomes and escapes


def test_livelock_is_bounded_and_names_the_running_tasks() -> None:
    async def scenario() -> None:
        async def spin() -> None:
            while True:
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)

    failure = _explore(scenario, max_steps=300, strategy="systematic").failure
    assert failure is not None and failure.kind == "livelock"
    assert "spin#1" in failure.outcome.message


def test_a_task_that_ignores_cancellation_does_not_hang_the_explorer() -> None:
    async def scenario() -> None:
        async def stubborn() -> None:
            while True:
                with contextlib.suppress(trio.Cancelled):
                    await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stubborn)

    failure = _explore(scenario, max_steps=200, strategy="systematic").failure
    assert failure is not None and failure.kind == "livelock"
    assert explorer.run(_locked_counter, runtime="trio").passed  # nothing leaked


def test_system_tasks_are_never_candidates() -> None:
    async def scenario() -> None:
        async def background() -> None:
            for _ in range(3):
                await trio.lowlevel.checkpoint()

        trio.lowlevel.spawn_system_task(background)
        for _ in range(3):
            await trio.lowlevel.checkpoint()

    result = explorer.run(scenario, runtime="trio")
    assert result.passed and result.decisions == []
    assert {step.task for step in result.trace} == {"main"}


def test_invariants_are_checked_after_every_step() -> None:
    async def scenario() -> None:
        state = {"balance": 100}
        explorer.always(lambda: state["balance"] >= 0, "the balance never goes negative")

        async def spend() -> None:
            if state["balance"] >= 80:
                await trio.sleep(0)
                state["balance"] -= 80

        async with trio.open_nursery() as nursery:
            nursery.start_soon(spend)
            nursery.start_soon(spend)

    failure = _explore(scenario, strategy="systematic").failure
    assert failure is not None and failure.kind == "assertion"
    assert "the balance never goes negative" in failure.outcome.message
    assert "after step" in failure.outcome.message


@pytest.mark.parametrize("what", ["time.sleep", "thread", "socket", "dns"])
def test_real_blocking_and_io_are_refused_as_escapes(what: str) -> None:
    async def scenario() -> None:
        if what == "time.sleep":
            time.sleep(0.5)
        elif what == "thread":
            threading.Thread(target=print).start()
        elif what == "socket":
            a, b = socket.socketpair()
            with a, b:
                await trio.lowlevel.wait_readable(a)
        else:
            await trio.socket.getaddrinfo("example.com", 80)

    failure = _explore(scenario, strategy="systematic").failure
    assert failure is not None and failure.kind == "escape"
    assert "refuses" in failure.outcome.message


def test_outside_a_controlled_run_the_patched_functions_behave_as_usual() -> None:
    async def main() -> int:
        return await trio.to_thread.run_sync(lambda: 5)

    explorer.run(counter.lost_update_fixed, runtime="trio")
    assert trio.run(main) == 5


# ---------------------------------------------------------------- replay, corpus, hypothesis


def test_a_schedule_that_no_longer_fits_is_refused_and_the_next_run_is_clean() -> None:
    with pytest.raises(explorer.ReplayDivergence, match="only 3 candidate"):
        explorer.replay(counter.lost_update_fixed, "v1:0=9", runtime="trio")
    assert explorer.run(counter.lost_update_fixed, runtime="trio").passed


def test_failures_are_saved_to_and_replayed_from_the_corpus(tmp_path: Path) -> None:
    failure = _explore(bank.double_spend, corpus=tmp_path, seed=0).failure
    assert failure is not None and failure.corpus_path is not None
    saved = json.loads(failure.corpus_path.read_text())
    assert saved["runtime"] == "trio"
    [replayed] = explorer.replay_corpus(tmp_path, scenarios=[bank.double_spend])
    assert replayed.status == "fails" and replayed.same


def test_hypothesis_drawn_schedules_drive_trio_runs() -> None:
    found: list[str] = []

    @settings(max_examples=200, database=None, deadline=None)
    @given(schedule=schedules())
    def check(schedule: Any) -> None:
        result = explorer.run(bank.double_spend, schedule=schedule, runtime="trio")
        if not result.passed:
            found.append(str(result.schedule))
        assert result.passed

    with pytest.raises(AssertionError):
        check()
    assert found


# ---------------------------------------------------------------- misuse and self-test


async def _disjoint_keys(n: int) -> None:
    table = explorer.shared(dict.fromkeys(range(n)), "table")

    async def write(i: int) -> None:
        await trio.sleep(0)
        table[i] = i
        await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(write, i)
    assert len(table) == n


async def _shared_increments() -> None:
    counter = explorer.shared({"n": 0}, "counter")

    async def increment() -> None:
        value = counter["n"]
        await trio.sleep(0)
        counter["n"] = value + 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(increment)
        nursery.start_soon(increment)
    assert counter["n"] == 2, f"lost update: {counter['n']}"


@pytest.mark.parametrize("n", [2, 4, 6])
def test_dpor_explores_one_schedule_for_disjoint_keys(n: int) -> None:
    result = _explore(functools.partial(_disjoint_keys, n),
                      strategy=strategies.DPOR(declared=True), max_schedules=10_000)
    assert result.ok and result.exhausted and result.schedules == 1
    assert "all interleavings up to reordering of independent steps" in result.coverage


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_dpor_finds_the_gallery_bugs_and_proves_the_fixes(example: Example) -> None:
    found = _explore(example.buggy, strategy="dpor", deviation_bound=example.bound)
    assert found.failure is not None and found.failure.kind == example.kind
    proof = _explore(example.fixed, strategy="dpor", deviation_bound=example.bound,
                     max_schedules=50_000)
    assert proof.ok and proof.exhausted


@pytest.mark.slow
def test_dpor_on_trio_primitives_is_sound_and_reduces() -> None:
    declared = _explore(_locked_counter, strategy=strategies.DPOR(declared=True),
                        max_schedules=50_000)
    systematic = _explore(_locked_counter, strategy="systematic", max_schedules=50_000)
    assert declared.ok and declared.exhausted and systematic.exhausted
    assert declared.schedules < systematic.schedules
    for scenario in SOUND:
        assert _explore(scenario, strategy="dpor", deviation_bound=2,
                        max_schedules=3000).ok


def _final_states(program: Callable[[list[tuple[Any, ...]]], Any],
                  strategy: Any) -> set[tuple[Any, ...]]:
    finals: list[tuple[Any, ...]] = []
    result = _explore(functools.partial(program, finals), strategy=strategy,
                      max_schedules=200_000)
    assert result.ok and result.exhausted
    return set(finals)


async def _primitives_order(finals: list[tuple[Any, ...]]) -> None:
    log = explorer.shared({"order": ()}, "log")
    lock, ready, sem = trio.Lock(), trio.Event(), trio.Semaphore(1)
    send, receive = trio.open_memory_channel[int](0)

    async def writer(i: int) -> None:
        async with lock:
            log["order"] = (*log["order"], f"w{i}")
        if i == 0:
            ready.set()
        async with sem:
            log["order"] = (*log["order"], f"s{i}")

    async def reader() -> None:
        await ready.wait()
        log["order"] = (*log["order"], "r")
        await send.send(1)

    async def taker() -> None:
        value = await receive.receive()
        log["order"] = (*log["order"], f"t{value}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer, 0)
        nursery.start_soon(writer, 1)
        nursery.start_soon(reader)
        nursery.start_soon(taker)
    finals.append(log["order"])


async def _cancel_race(finals: list[tuple[Any, ...]]) -> None:
    log = explorer.shared({"order": ()}, "log")
    scope = trio.CancelScope()

    async def worker() -> None:
        with scope:
            for step in range(2):
                await trio.sleep(0)
                log["order"] = (*log["order"], f"step{step}")
        log["order"] = (*log["order"], "cancelled" if scope.cancelled_caught else "done")

    async def canceller() -> None:
        await trio.sleep(0)
        scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        nursery.start_soon(canceller)
    finals.append(log["order"])


@pytest.mark.parametrize("program", [_primitives_order, _cancel_race],
                         ids=["primitives", "cancellation"])
@pytest.mark.slow
def test_dpor_reaches_every_final_state_that_exhaustive_search_reaches(
        program: Callable[[list[tuple[Any, ...]]], Any]) -> None:
    everything = _final_states(program, "systematic")
    reduced = _final_states(program, strategies.DPOR(declared=True))
    assert len(everything) > 1
    assert reduced == everything


def test_a_failure_found_with_footprints_names_the_deciding_accesses() -> None:
    failure = _explore(_shared_increments, strategy=strategies.DPOR(declared=True)).failure
    assert failure is not None and failure.conflicts
    deciding = [c for c in failure.conflicts if c.decides]
    assert deciding
    accesses = {deciding[0].first_access, deciding[0].second_access}
    assert accesses == {"reads counter['n']", "writes counter['n']"}
    assert "digraph" in failure.happens_before_dot()


def test_dpor_with_timer_races_is_refused() -> None:
    with pytest.raises(explorer.UsageError, match="timer_races"):
        explorer.explore(counter.lost_update, runtime="trio", strategy="dpor",
                         timer_races=True)


def test_an_unknown_runtime_lists_the_available_ones() -> None:
    with pytest.raises(explorer.UsageError, match="asyncio, trio"):
        explorer.explore(counter.lost_update, runtime="curio")


def test_calling_the_explorer_from_inside_trio_is_refused() -> None:
    async def main() -> None:
        explorer.explore(counter.lost_update, runtime="trio")

    with pytest.raises(explorer.UsageError, match="inside a running trio program"):
        trio.run(main)


def test_a_scenario_that_returns_no_coroutine_is_refused() -> None:
    with pytest.raises(explorer.UsageError, match="not a coroutine"):
        explorer.run(lambda: 3, runtime="trio")


def test_self_test_names_the_trio_version_when_an_internal_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: real(obj).replace(
        "batch = list(runner.runq)", "batch = sorted(runner.runq)"))
    with pytest.raises(explorer.RuntimeSelfTestError) as caught:
        _selftest.self_test.__wrapped__(TrioRuntime)
    message = str(caught.value)
    assert trio.__version__ in message and "list(runner.runq)" in message
    assert _selftest.SUPPORTED in message


def test_the_self_test_passes_on_the_installed_trio() -> None:
    _selftest.self_test.__wrapped__(TrioRuntime)
    assert math.isfinite(len(trio.__version__))


def test_an_invariant_broken_by_the_last_step_is_an_assertion_traced_or_not() -> None:
    async def scenario() -> None:
        state = {"v": 0}
        explorer.always(lambda: state["v"] == 0, "v stays 0")

        async def other() -> None:
            await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
        state["v"] = 1  # the main task's very last step breaks it

    failure = _explore(scenario, strategy="systematic").failure
    assert failure is not None and failure.kind == "assertion"
    assert "v stays 0" in failure.outcome.message


def test_self_test_names_a_primitive_operation_that_is_gone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer._trio import _footprints

    real = _footprints._targets
    monkeypatch.setattr(_footprints, "_targets", lambda: [
        *real(), (trio.Lock, ("acquire_eventually",), lambda lock: lock)])
    with pytest.raises(explorer.RuntimeSelfTestError, match=r"Lock\.acquire_eventually"):
        _selftest.self_test.__wrapped__(TrioRuntime)


# ---------------------------------------------------------------- runs left unfinished
# A run that cannot finish keeps its tasks suspended inside their nurseries; were they
# garbage collected, trio's Nursery.__del__ would assert, in whatever test runs then.


@contextlib.contextmanager
def _unraisable_reports() -> Any:
    """Collect what the interpreter reports as unraisable (a failing ``__del__``) while
    the block runs; the block ends with a full collection. A later run first (re-arming
    the watchdog drops what it kept of the previous one)."""
    reports: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda report: reports.append(
        f"{type(report.exc_value).__name__} in {report.object!r}")
    try:
        yield reports
        explorer.run(_two_steps, runtime="trio")
        gc.collect()
    finally:
        sys.unraisablehook = previous


async def _two_steps() -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 0)
        nursery.start_soon(trio.sleep, 0)


def _error_of(fn: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """What ``fn`` raised, as text: the exception itself is dropped here, since its
    traceback would keep the run's objects alive past the collection being tested."""
    try:
        fn(*args, **kwargs)
    except trio.TrioInternalError as exc:
        return f"TrioInternalError from {type(exc.__cause__).__name__}"
    except Exception as exc:  # noqa: BLE001 - the test compares what it was
        return f"{type(exc).__name__}: {exc}"
    return "nothing raised"


class _Fails(strategies.Strategy):
    """Raises ``error`` at its second decision, as a diverged replay or an interrupted
    chooser does."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.decided = 0

    def start_run(self) -> bool:
        return True

    def choose(self, count: int, view: object) -> int:
        self.decided += 1
        if self.decided == 2:
            raise self.error
        return 0


async def _spinners() -> None:
    async def spin() -> None:
        while True:
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(spin)


def test_a_chooser_that_raises_leaves_nothing_to_finalise() -> None:
    with _unraisable_reports() as reports:
        error = _error_of(explorer.run, _spinners, schedule=_Fails(LookupError("diverged")),
                          runtime="trio", max_steps=50)
    assert error == "LookupError: diverged"
    assert reports == []


def test_the_run_timeout_landing_in_the_chooser_is_a_hang() -> None:
    with _unraisable_reports() as reports:
        result = explorer.run(_spinners, schedule=_Fails(RunTimeout()), runtime="trio",
                              max_steps=50, run_timeout=60)
    assert result.outcome.kind == "hang"
    assert reports == []


def test_a_run_stopped_at_the_step_bound_leaves_nothing_to_finalise() -> None:
    with _unraisable_reports() as reports:
        result = explorer.run(_spinners, runtime="trio", max_steps=50)
    assert result.outcome.kind == "livelock"
    assert reports == []


def test_a_run_trio_fails_inside_its_loop_is_never_finalised() -> None:
    """An abort function that raises fails inside trio's own loop (a TrioInternalError,
    as under trio.run); the run's tasks stay suspended and must stay unreachable."""

    async def scenario() -> None:
        def abort(raise_cancel: object) -> trio.lowlevel.Abort:
            raise ZeroDivisionError("the abort function failed")

        async def waiter() -> None:
            with trio.move_on_after(1):
                await trio.lowlevel.wait_task_rescheduled(abort)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            nursery.start_soon(trio.sleep, 5)

    with _unraisable_reports() as reports:
        error = _error_of(explorer.run, scenario, runtime="trio")
    assert error == "TrioInternalError from ZeroDivisionError"
    assert reports == []
