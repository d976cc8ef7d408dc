"""The explorer under real frameworks: anyio on asyncio, and a Starlette app over httpx.

Each scenario builds its framework objects from scratch on every run (the explorer runs the
scenario once per schedule), and runs the framework code directly on the controlled loop:
anyio code is awaited inside the scenario (it is already running on asyncio; no anyio.run),
and HTTP requests go through httpx's in-memory ASGI transport (no sockets).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import explorer

anyio = pytest.importorskip("anyio")
httpx = pytest.importorskip("httpx")
starlette_applications = pytest.importorskip("starlette.applications")
starlette_responses = pytest.importorskip("starlette.responses")
starlette_routing = pytest.importorskip("starlette.routing")


# ---------------------------------------------------------------------------- anyio


async def anyio_correct_pipeline() -> None:
    """Workers in a task group share a counter under anyio.Lock, feed a memory object
    stream, and signal completion with anyio.Event; everything is consumed exactly once."""
    lock = anyio.Lock()
    producers_done = anyio.Event()
    send, receive = anyio.create_memory_object_stream[int](max_buffer_size=1)
    state = {"counter": 0}
    received: list[int] = []

    async def producer(base: int, stream: object) -> None:
        async with stream:  # type: ignore[attr-defined]
            for i in range(2):
                async with lock:
                    seen = state["counter"]
                    await anyio.sleep(0)
                    state["counter"] = seen + 1
                await stream.send(base + i)  # type: ignore[attr-defined]

    async def consumer() -> None:
        async with receive:
            async for item in receive:
                received.append(item)
        producers_done.set()

    async with anyio.create_task_group() as tg:
        async with send:
            tg.start_soon(producer, 0, send.clone())
            tg.start_soon(producer, 10, send.clone())
        tg.start_soon(consumer)
        await producers_done.wait()

    assert state["counter"] == 4
    assert sorted(received) == [0, 1, 10, 11]


async def anyio_lost_update() -> None:
    """Buggy: read, yield, write back a stale value; two workers lose an increment."""
    state = {"counter": 0}

    async def increment() -> None:
        seen = state["counter"]
        await anyio.sleep(0)
        state["counter"] = seen + 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(increment)
        tg.start_soon(increment)
    assert state["counter"] == 2, f"lost update: counter is {state['counter']}"


async def anyio_lost_update_off_the_stock_order() -> None:
    """The same bug, but the stock schedule passes: one worker yields twice first, so it
    reads after the other wrote. Only a deviation from the stock order shows the bug."""
    state = {"counter": 0}

    async def increment(warmup: int) -> None:
        for _ in range(warmup):
            await anyio.sleep(0)
        seen = state["counter"]
        await anyio.sleep(0)
        state["counter"] = seen + 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(increment, 2)
        tg.start_soon(increment, 0)
    assert state["counter"] == 2, f"lost update: counter is {state['counter']}"


def test_anyio_correct_program_passes_systematic_search() -> None:
    result = explorer.explore(anyio_correct_pipeline, strategy="systematic",
                              deviation_bound=2, max_schedules=2000)
    assert result.failure is None
    assert result.schedules > 1


def test_anyio_correct_program_passes_random_search() -> None:
    result = explorer.explore(anyio_correct_pipeline, strategy="random", max_schedules=200,
                              seed=0)
    assert result.failure is None


def test_anyio_lost_update_is_found() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(anyio_lost_update, strategy="systematic", deviation_bound=2,
                         max_schedules=500)
    assert info.value.kind == "assertion"
    assert "lost update" in str(info.value)


def test_anyio_lost_update_off_the_stock_order_is_found() -> None:
    stock = explorer.explore(anyio_lost_update_off_the_stock_order, strategy="systematic",
                             deviation_bound=0, max_schedules=1)
    assert stock.failure is None  # the stock order hides the bug
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(anyio_lost_update_off_the_stock_order, strategy="systematic",
                         deviation_bound=2, max_schedules=500)
    assert info.value.kind == "assertion"
    assert info.value.deviations >= 1


# ---------------------------------------------------------------------------- Starlette


def make_app(*, locked: bool) -> tuple[object, dict[str, int]]:
    """A tiny app with a shared in-memory counter; ``locked=False`` has a lost update."""
    state = {"counter": 0}
    lock = asyncio.Lock()

    async def bump() -> int:
        seen = state["counter"]
        await asyncio.sleep(0)
        state["counter"] = seen + 1
        return state["counter"]

    async def increment(request: object) -> object:
        # ?warmup=N: yield N times before touching the counter
        for _ in range(int(request.query_params.get("warmup", "0"))):  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        if locked:
            async with lock:
                value = await bump()
        else:
            value = await bump()
        return starlette_responses.JSONResponse({"counter": value})

    app = starlette_applications.Starlette(
        routes=[starlette_routing.Route("/increment", increment, methods=["POST"])]
    )
    return app, state


async def two_requests(locked: bool, warmup: int = 0) -> None:
    app, state = make_app(locked=locked)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first, second = await asyncio.gather(client.post(f"/increment?warmup={warmup}"),
                                             client.post("/increment"))
    assert first.status_code == second.status_code == 200
    assert state["counter"] == 2, f"lost update: counter is {state['counter']}"
    assert sorted([first.json()["counter"], second.json()["counter"]]) == [1, 2]


async def starlette_buggy() -> None:
    await two_requests(locked=False)


async def starlette_buggy_off_the_stock_order() -> None:
    # the first request yields twice before its read: the stock order serialises the two
    await two_requests(locked=False, warmup=2)


async def starlette_fixed() -> None:
    await two_requests(locked=True)


async def starlette_fixed_with_warmup() -> None:
    await two_requests(locked=True, warmup=2)


def test_starlette_lost_update_is_found() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(starlette_buggy, strategy="systematic", deviation_bound=2,
                         max_schedules=1000)
    assert info.value.kind == "assertion"
    assert "lost update" in str(info.value)


def test_starlette_lost_update_off_the_stock_order_is_found() -> None:
    stock = explorer.explore(starlette_buggy_off_the_stock_order, strategy="systematic",
                             deviation_bound=0, max_schedules=1)
    assert stock.failure is None  # the stock order hides the bug
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(starlette_buggy_off_the_stock_order, strategy="systematic",
                         deviation_bound=2, max_schedules=1000)
    assert info.value.kind == "assertion"
    assert info.value.deviations >= 1
    assert "lost update" in str(info.value)


def test_starlette_lost_update_is_found_by_random_search() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(starlette_buggy, strategy="random", max_schedules=200, seed=0)
    assert info.value.kind == "assertion"


FIXED = [pytest.param(starlette_fixed, id="plain"),
         pytest.param(starlette_fixed_with_warmup, id="warmup")]


@pytest.mark.parametrize("scenario", FIXED)
def test_starlette_fixed_passes_random_search(scenario: object) -> None:
    result = explorer.explore(scenario, strategy="random", max_schedules=200, seed=0)
    assert result.failure is None
    assert result.schedules == 200


@pytest.mark.parametrize("scenario", FIXED)
def test_starlette_fixed_passes_systematic_search(scenario: object) -> None:
    result = explorer.explore(scenario, strategy="systematic", deviation_bound=1,
                              max_schedules=5000)
    assert result.failure is None
    assert result.schedules > 1
    assert result.exhausted, result.coverage


async def _anyio_cancel_order(out: list[str]) -> None:
    async def child(name: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            out.append(name)

    async with anyio.create_task_group() as group:
        for name in "abcdef":
            group.start_soon(child, name)
        await anyio.sleep(0)
        group.cancel_scope.cancel()


def test_anyio_cancellation_order_is_the_same_every_run() -> None:
    orders = set()
    for _ in range(30):
        out: list[str] = []
        assert explorer.run(_anyio_cancel_order, out).passed
        orders.add("".join(out))
    assert len(orders) == 1


async def _anyio_worker_thread(out: dict[str, int]) -> None:
    out["worker"] = await anyio.to_thread.run_sync(threading.get_ident)
    out["loop"] = threading.get_ident()


def test_anyio_worker_threads_run_inline() -> None:
    out: dict[str, int] = {}
    assert explorer.run(_anyio_worker_thread, out).passed
    assert out["worker"] == out["loop"]


async def _sync_starlette_endpoint() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def endpoint(request: Request) -> JSONResponse:  # a plain def: Starlette threads it
        return JSONResponse({"thread": threading.get_ident()})

    app = Starlette(routes=[Route("/", endpoint)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first, second = await asyncio.gather(client.get("/"), client.get("/"))
    assert first.json() == second.json() == {"thread": threading.get_ident()}


def test_sync_endpoints_run_inline_and_deterministically() -> None:
    result = explorer.explore(_sync_starlette_endpoint, strategy="systematic",
                              deviation_bound=1)
    assert result.failure is None
    assert result.exhausted
