"""Benchmark scenarios."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping

import explorer


async def locked_counter(tasks: int = 3, increments: int = 3, *,
                         declared: bool = False) -> None:
    """``tasks`` workers each increment a shared counter ``increments`` times; each
    increment holds a lock across an ``await asyncio.sleep(0)``. ``declared`` makes the
    counter an ``explorer.shared`` dict, for partial-order reduction."""
    lock = asyncio.Lock()
    state: MutableMapping[str, int] = explorer.shared({"n": 0}) if declared else {"n": 0}

    async def worker() -> None:
        for _ in range(increments):
            async with lock:
                value = state["n"]
                await asyncio.sleep(0)
                state["n"] = value + 1

    await asyncio.gather(*(worker() for _ in range(tasks)))
    assert state["n"] == tasks * increments


async def trio_locked_counter(tasks: int = 3, increments: int = 3) -> None:
    """The locked counter written for trio: a nursery of workers and a ``trio.Lock``."""
    import trio

    lock = trio.Lock()
    state = {"n": 0}

    async def worker() -> None:
        for _ in range(increments):
            async with lock:
                value = state["n"]
                await trio.sleep(0)
                state["n"] = value + 1

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(worker)
    assert state["n"] == tasks * increments
