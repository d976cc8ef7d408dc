"""Candidate descriptions on the asyncio runtime: the fast path builds the same values.

:func:`explorer._asyncio._ready.described` walks a task's frames once and reads what it
asks of each code object from a per-code table; these tests pin that every field it
builds, and the order in which resources get their names (``Lock#1`` before
``Lock#2``: strategies' decisions read them), equal what the plain helpers of
:mod:`explorer._asyncio._inspect` and :mod:`explorer._locations` give, through
asyncio primitives, anyio, and a Starlette app served over httpx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from explorer._asyncio import _ready
from explorer._asyncio._inspect import callback_name, coroutine_frames, handle_owner, waiting_on
from explorer._asyncio._runner import AsyncioRuntime
from explorer._locations import user_location
from explorer._runtime import Candidate, PointView, RunMode

Scenario = Callable[[], Coroutine[Any, Any, Any]]


def _reference(namer: _ready.Namer, handle: Any) -> Candidate:
    """A description from the plain helpers, built afresh each time it is asked for."""
    task, kind = handle_owner(handle)
    if task is None:
        return Candidate(None, kind, None, callback_name(handle), None)
    frames = coroutine_frames(task)
    op, resource = waiting_on(task, frames)
    return Candidate(namer.task_id(task), kind, user_location(frames), op,
                     namer.resource_name(resource) if resource is not None else None)


def _points(scenario: Scenario, seed: int | None) -> list[list[Candidate]]:
    """Every point's candidates, described, under a seeded random walk (the stock
    order for seed None)."""
    rng = random.Random(seed)
    seen: list[list[Candidate]] = []

    def chooser(count: int, view: PointView) -> int:
        seen.append(list(view.candidates(count)))
        return 0 if seed is None else rng.randrange(count)

    with AsyncioRuntime().session() as runtime:
        runtime.run(scenario, chooser, RunMode(max_steps=5_000))
    return seen


def _same_as_reference(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> int:
    """Compare the fast and the plain descriptions over a few seeds; the points seen."""
    total = 0
    for seed in range(4):
        fast = _points(scenario, seed)
        with monkeypatch.context() as patched:
            patched.setattr(_ready, "described", _reference)
            plain = _points(scenario, seed)
        assert fast == plain
        total += len(fast)
    return total


async def _primitives() -> None:
    lock = asyncio.Lock()
    ready = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    gate = asyncio.Semaphore(1)
    done = asyncio.get_running_loop().create_future()
    ledger = {"balance": 10}

    async def withdraw(amount: int) -> None:
        async with gate:
            await ready.wait()
        async with lock:
            seen = ledger["balance"]
            await asyncio.sleep(0)
            ledger["balance"] = seen - amount

    async def producer() -> None:
        for item in range(3):
            await queue.put(item)
        ready.set()

    async def consumer() -> None:
        for _ in range(3):
            await queue.get()
        asyncio.get_running_loop().call_soon(done.set_result, None)

    async def waiter() -> None:
        await done  # a future awaited directly: described as "await"
        await asyncio.sleep(0.01)  # a timer

    await asyncio.gather(withdraw(3), withdraw(4), producer(), consumer(), waiter())


async def _anyio_stack() -> None:
    lock = anyio.Lock()
    send, receive = anyio.create_memory_object_stream[int](1)
    totals: list[int] = []

    async def sender() -> None:
        async with send:
            for item in range(3):
                await send.send(item)

    async def adder() -> None:
        async with receive:
            async for item in receive:
                async with lock:
                    totals.append(item)
                    await anyio.sleep(0)

    async with anyio.create_task_group() as group:
        group.start_soon(sender)
        group.start_soon(adder)


async def _web() -> None:
    claimed: set[str] = set()

    async def claim(request: Request) -> JSONResponse:
        ticket = request.path_params["ticket"]
        await asyncio.sleep(0)
        if ticket in claimed:
            return JSONResponse({"ok": False}, status_code=409)
        await asyncio.sleep(0)
        claimed.add(ticket)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/claim/{ticket}", claim, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        await asyncio.gather(client.post("/claim/A7"), client.post("/claim/A7"))


def test_descriptions_match_the_plain_helpers_on_asyncio_primitives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert _same_as_reference(_primitives, monkeypatch) > 20


def test_descriptions_match_the_plain_helpers_through_anyio(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert _same_as_reference(_anyio_stack, monkeypatch) > 10


def test_descriptions_match_the_plain_helpers_through_starlette_and_httpx(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert _same_as_reference(_web, monkeypatch) > 10


def test_resources_are_named_in_order_of_first_description() -> None:
    async def two_locks() -> None:
        async def hold(lock: asyncio.Lock, turns: int) -> None:
            async with lock:
                for _ in range(turns):
                    await asyncio.sleep(0)

        # The lock made second is held the shorter time: under the stock order its
        # waiter wakes (and is described) first, so it is mentioned first.
        made_first, made_second = asyncio.Lock(), asyncio.Lock()
        await asyncio.gather(hold(made_first, 6), hold(made_second, 1),
                             hold(made_first, 1), hold(made_second, 1))

    mentioned: list[tuple[str | None, str]] = []
    for point in _points(two_locks, None):
        for candidate in point:
            if candidate.resource and all(candidate.resource != r for _, r in mentioned):
                mentioned.append((candidate.task, candidate.resource))
    # Named by first mention, not by when the lock was made: hold#4 waited on the lock
    # made second and woke first.
    assert mentioned == [("main/hold#4", "Lock#1"), ("main/hold#3", "Lock#2")]


def test_a_built_description_is_an_ordinary_frozen_candidate() -> None:
    built = [c for point in _points(_primitives, 1) for c in point if c.task is not None]
    assert built
    first = built[0]
    again = Candidate(first.task, first.kind, first.location, first.operation,
                      first.resource)
    assert first == again and hash(first) == hash(again) and repr(first) == repr(again)
    assert dataclasses.replace(first) == first
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.kind = "step"  # type: ignore[misc]


def test_a_nameless_callback_type_is_classified_by_its_type_once() -> None:
    class Stepper:
        __slots__ = ()

    class Named:
        __slots__ = ()
        __name__ = "whatever"

    on_wakeup = type("on_wakeup", (), {"__slots__": ()})
    assert _ready._type_kind(Stepper) == "step"
    assert _ready._type_kind(on_wakeup) == "wakeup"
    assert _ready._type_kind(type("Hook", (), {"__slots__": ()})) == "callback"
    assert _ready._type_kind(Named) == ""  # each instance could name itself
    assert _ready._type_kind(type(lambda: None)) == ""  # functions carry their own name
