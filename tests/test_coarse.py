"""The ``coarse`` granularity: a call into a library runs as one step.

What a library call is (:func:`explorer._locations.library_call`, asked through
``PointView.current_call``) on asyncio and trio; the :class:`LibraryCalls` wrapper's rules
(continue the call, serve it while it is blocked, ask the inner strategy elsewhere); that
its schedules are plain schedules (replay, determinism); the race it cannot see by
construction; and a real stack (redis-py over fakeredis, FastAPI over httpx) found fast.

The "library" of the rule tests is a module written at test time under a directory named
``site-packages``: code there is foreign, as an installed package's is.
"""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import fakeredis
import httpx
import pytest
import trio
from fastapi import Depends, FastAPI, HTTPException, Request

import explorer
from explorer._runtime import LibraryCall, PointView
from explorer.strategies import (
    DPOR,
    LibraryCalls,
    RandomWalk,
    Strategy,
    Systematic,
    make_strategy,
    splitting,
)
from tests.conftest import needs_interleaving_fakeredis

THIS_FILE = Path(__file__).name

LIBRARY = '''
"""A small third-party library, as far as the explorer can tell (it sits in site-packages)."""


class Tally:
    """``add`` reads after its first await and writes after two more: a lost update *inside*
    the call, which only a switch in the middle of the call shows."""

    def __init__(self, sleep):
        self.sleep = sleep
        self.total = 0
        self.log = []

    async def add(self, who):
        await self.sleep(0)
        seen = self.total
        self.log.append((who, "read"))
        await self.sleep(0)
        await self.sleep(0)
        self.total = seen + 1
        self.log.append((who, "write"))


async def fetch_twice(create_task, sleep, log, who):
    """Two helper tasks, one after the other, each awaited: the caller blocks on each."""
    for part in (1, 2):
        await create_task(_part(sleep, log, who, part))


async def _part(sleep, log, who, part):
    for _ in range(2):
        log.append((who, part))
        await sleep(0)
'''


@pytest.fixture(scope="module")
def tinylib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("coarse") / "site-packages"
    folder.mkdir()
    path = folder / "tinylib_for_coarse.py"
    path.write_text(LIBRARY)
    spec = importlib.util.spec_from_file_location("tinylib_for_coarse", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


class Recorder(Strategy):
    """Always the stock choice; records what the view says about the current task."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, LibraryCall | None]] = []

    def start_run(self) -> bool:
        return True

    def choose(self, count: int, view: PointView) -> int:
        self.seen.append((view.current(), view.current_call()))
        return 0


class Switcher(Strategy):
    """Always switches away from the task that ran last when another candidate is there:
    the most switching a strategy can ask for."""

    name = "switcher"

    def __init__(self) -> None:
        self.asked = 0

    def start_run(self) -> bool:
        return True

    def choose(self, count: int, view: PointView) -> int:
        self.asked += 1
        current = view.current()
        return next((i for i in range(count) if view.process(i) != current), 0)


def _one_run(fn: Any, strategy: Strategy, runtime: str = "asyncio") -> None:
    result = explorer.explore(fn, strategy=strategy, max_schedules=1, runtime=runtime,
                              raise_on_failure=False, shrink=False)
    assert result.schedules == 1


# ------------------------------------------------------------------ what a library call is


async def _own_primitives() -> None:
    lock = asyncio.Lock()
    event = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def producer() -> None:
        for item in range(3):
            async with lock:
                await asyncio.sleep(0)
            await queue.put(item)
        event.set()

    async def consumer() -> None:
        await event.wait()
        for _ in range(3):
            await queue.get()

    await asyncio.gather(producer(), consumer(), producer())


def test_the_users_own_awaits_on_asyncio_primitives_are_not_library_calls() -> None:
    recorder = Recorder()
    _one_run(_own_primitives, recorder)
    tasks = [task for task, _ in recorder.seen if task is not None]
    assert len(tasks) > 5
    assert [call for _, call in recorder.seen if call is not None] == []


async def _trio_own_primitives() -> None:
    lock = trio.Lock()
    event = trio.Event()
    send, receive = trio.open_memory_channel[int](0)

    async def producer() -> None:
        async with lock:
            await trio.sleep(0)
        await send.send(1)
        event.set()

    async def consumer() -> None:
        await event.wait()
        await receive.receive()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        nursery.start_soon(producer)


def test_the_users_own_awaits_on_trio_primitives_are_not_library_calls() -> None:
    recorder = Recorder()
    _one_run(_trio_own_primitives, recorder, runtime="trio")
    assert any(task is not None for task, _ in recorder.seen)
    assert [call for _, call in recorder.seen if call is not None] == []


def test_a_call_into_a_library_is_a_library_call_on_both_runtimes(tinylib: Any) -> None:
    async def on_asyncio() -> None:
        tally = tinylib.Tally(asyncio.sleep)
        await asyncio.gather(tally.add("a"), tally.add("b"))  # the library's coroutines

    async def on_trio() -> None:
        tally = tinylib.Tally(trio.sleep)

        async def add(who: str) -> None:
            await tally.add(who)  # the call, made from user code

        async with trio.open_nursery() as nursery:
            nursery.start_soon(add, "a")
            nursery.start_soon(add, "b")

    for fn, runtime in ((on_asyncio, "asyncio"), (on_trio, "trio")):
        recorder = Recorder()
        _one_run(fn, recorder, runtime)
        calls = [call for _, call in recorder.seen if call is not None]
        assert calls, runtime
        assert {call.entry.function for call in calls if call.entry} == {"Tally.add"}
        callers = {(call.caller.short if call.caller else None) for call in calls}
        # A task whose own coroutine is the library's has no caller in user code.
        made_at = f"{THIS_FILE}:{_line('# the call, made from user code')}"
        assert callers == ({None} if runtime == "asyncio" else {made_at})


def _line(text: str) -> int:
    """The line of this file holding ``text`` (once)."""
    lines = [n for n, line in enumerate(Path(__file__).read_text().splitlines(), 1)
             if text in line and "_line(" not in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


async def _redis_withdrawals() -> None:
    r = fakeredis.FakeAsyncRedis()
    await r.hset("account", "balance", 50)

    async def withdraw(amount: int) -> bool:
        balance = int(await r.hget("account", "balance") or 0)
        if balance < amount:
            return False
        await r.hset("account", "balance", str(balance - amount))
        return True

    done = await asyncio.gather(withdraw(30), withdraw(30))
    assert done.count(True) <= 1, f"both withdrawals of 30 from 50 went through: {done}"


@needs_interleaving_fakeredis
def test_a_redis_command_is_a_library_call_made_at_the_users_line() -> None:
    recorder = Recorder()
    _one_run(_redis_withdrawals, recorder)
    callers = {call.caller.short for _, call in recorder.seen if call and call.caller}
    assert f"{THIS_FILE}:{_line('int(await r.hget(')}" in callers
    entries = {call.entry.filename for _, call in recorder.seen if call and call.entry}
    assert any("redis" in name for name in entries), entries


# ------------------------------------------------------------------ a FastAPI app over httpx

CLAIMED: dict[str, set[str]] = {}


async def _reputation(request: Request) -> None:
    if request.headers.get("x-new-member"):
        for _ in range(3):  # three lookups before the new member's claim goes on
            await asyncio.sleep(0)


_api = FastAPI()


@_api.post("/coupons/{code}", dependencies=[Depends(_reputation)])
async def redeem_coupon(code: str) -> dict[str, str]:
    claimed = CLAIMED["codes"]
    if code in claimed:
        raise HTTPException(status_code=409, detail="already redeemed")
    await asyncio.sleep(0)  # the ledger write
    claimed.add(code)
    return {"code": code}


async def _two_redemptions() -> None:
    CLAIMED["codes"] = set()
    transport = httpx.ASGITransport(app=_api)
    async with httpx.AsyncClient(transport=transport, base_url="http://coupons") as client:
        first, second = await asyncio.gather(
            client.post("/coupons/SPRING"),
            client.post("/coupons/SPRING", headers={"x-new-member": "1"}))
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], f"one coupon redeemed twice: {codes}"


def test_a_request_waits_at_its_handlers_own_awaits_which_stay_decisions() -> None:
    # httpx over ASGI reaches the handler without suspending in between: the request's
    # task (whose own coroutine is httpx's) is only ever suspended at the dependency's and
    # the handler's awaits, which are not library calls.
    recorder = Recorder()
    _one_run(_two_redemptions, recorder)
    request_tasks = {task for task, _ in recorder.seen if task and "AsyncClient.post" in task}
    assert len(request_tasks) == 2
    assert [call for task, call in recorder.seen if task in request_tasks and call] == []


# ------------------------------------------------------------------ the wrapper's rules


def test_a_library_call_runs_on_as_one_step_from_its_first_await(tinylib: Any) -> None:
    async def three_adds() -> None:
        tally = tinylib.Tally(asyncio.sleep)

        async def add(who: str) -> None:
            await asyncio.sleep(0)
            await tally.add(who)

        await asyncio.gather(add("a"), add("b"), add("c"))
        assert tally.total == 3, tally.log

    full = explorer.explore(three_adds, strategy=Switcher(), max_schedules=1,
                            raise_on_failure=False, shrink=False)
    assert full.failure is not None  # switching at every point loses an update
    inner = Switcher()
    coarse = LibraryCalls(inner)
    result = explorer.explore(three_adds, strategy=coarse, max_schedules=1,
                              raise_on_failure=False, shrink=False)
    assert result.failure is None
    stats = coarse.statistics()
    continued, served, points = stats["continued"], stats["served"], stats["points"]
    assert isinstance(continued, int) and isinstance(served, int) and continued > 0
    assert inner.asked + continued + served == points  # the inner strategy saw the rest


def test_the_helper_tasks_a_library_call_spawns_belong_to_the_call(tinylib: Any) -> None:
    log: list[tuple[str, object]] = []

    async def fetch_beside_a_ticker() -> None:
        log.clear()  # the log of the latest run only
        loop = asyncio.get_running_loop()

        async def ticker() -> None:
            for tick in range(6):
                log.append(("ticker", tick))
                await asyncio.sleep(0)

        async def fetch() -> None:
            await asyncio.sleep(0)
            await tinylib.fetch_twice(loop.create_task, asyncio.sleep, log, "fetch")

        await asyncio.gather(ticker(), fetch())

    def gaps() -> list[int]:
        return [next(i for i, entry in enumerate(log) if entry == ("fetch", part)) -
                next(i for i, entry in reversed(list(enumerate(log)))
                     if entry == ("fetch", part)) for part in (1, 2)]

    _one_run(fetch_beside_a_ticker, Systematic())  # the stock order
    assert min(gaps()) < -1  # the ticker steps in the middle of a helper
    coarse = LibraryCalls(Systematic())  # the stock choice wherever it is asked
    _one_run(fetch_beside_a_ticker, coarse)
    assert gaps() == [-1, -1]  # each helper runs on as part of the caller's call
    assert coarse.statistics()["continued"]


@needs_interleaving_fakeredis
def test_a_coarse_schedule_is_a_plain_schedule_that_replays() -> None:
    result = explorer.explore(_redis_withdrawals, strategy=LibraryCalls(RandomWalk(3)),
                              max_schedules=500, raise_on_failure=False)
    failure = result.failure
    assert failure is not None
    text = str(failure.schedule)
    assert text.startswith("v1:")
    with pytest.raises(explorer.ScheduleFailure):
        explorer.replay(_redis_withdrawals, text)


def _decisions(seed: int) -> tuple[int, str]:
    result = explorer.explore(_redis_withdrawals, strategy=make_strategy("coarse", seed=seed),
                              max_schedules=500, raise_on_failure=False, shrink=False)
    assert result.failure is not None
    return result.failure.found_after, str(result.failure.schedule)


@needs_interleaving_fakeredis
def test_the_same_seed_makes_the_same_search() -> None:
    assert _decisions(11) == _decisions(11)


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_a_race_inside_a_library_call_is_left_to_the_full_granularity(
        tinylib: Any, runtime: str) -> None:
    async def two_adds_on_asyncio() -> None:
        tally = tinylib.Tally(asyncio.sleep)
        await asyncio.gather(tally.add("a"), tally.add("b"))
        assert tally.total == 2, f"an update was lost inside the library: {tally.log}"

    async def two_adds_on_trio() -> None:
        tally = tinylib.Tally(trio.sleep)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tally.add, "a")
            nursery.start_soon(tally.add, "b")
        assert tally.total == 2, f"an update was lost inside the library: {tally.log}"

    two_adds = two_adds_on_asyncio if runtime == "asyncio" else two_adds_on_trio
    full = explorer.explore(two_adds, strategy="systematic", max_schedules=2000,
                            runtime=runtime, raise_on_failure=False, shrink=False)
    assert full.failure is not None
    coarse = LibraryCalls(Systematic())
    result = explorer.explore(two_adds, strategy=coarse, max_schedules=2000, runtime=runtime,
                              raise_on_failure=False, shrink=False)
    assert result.failure is None and result.exhausted  # every coarse schedule passes
    assert "races inside a library call are not explored" in coarse.coverage()


# ------------------------------------------------------------------ through real stacks


@pytest.mark.parametrize("scenario", [
    pytest.param(_redis_withdrawals, marks=needs_interleaving_fakeredis),
    _two_redemptions])
def test_a_check_then_act_through_a_library_stack_is_found_fast(scenario: Any) -> None:
    found = []
    for seed in range(3):
        result = explorer.explore(scenario, strategy=make_strategy("coarse", seed=seed),
                                  max_schedules=400, raise_on_failure=False, shrink=False)
        assert result.failure is not None, seed
        found.append(result.failure.found_after)
    assert statistics.median(found) <= 100, found


def test_the_named_strategy_and_its_refusals() -> None:
    coarse = make_strategy("coarse", seed=5)
    assert isinstance(coarse, LibraryCalls)
    assert splitting("coarse") == "seeded"
    assert coarse.describe()["inner"] == "symmetric"
    assert coarse.describe()["name"] == "coarse"
    with pytest.raises(ValueError, match="full granularity"):
        LibraryCalls(DPOR())
    with pytest.raises(ValueError, match="belongs to the inner strategy"):
        LibraryCalls(RandomWalk(1), seed=2)
