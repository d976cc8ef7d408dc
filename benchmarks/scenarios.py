"""Benchmark scenarios."""

from __future__ import annotations

import asyncio


async def locked_counter(tasks: int = 3, increments: int = 3) -> None:
    """``tasks`` workers each increment a shared counter ``increments`` times; each
    increment holds a lock across an ``await asyncio.sleep(0)``."""
    lock = asyncio.Lock()
    state = {"n": 0}

    async def worker() -> None:
        for _ in range(increments):
            async with lock:
                value = state["n"]
                await asyncio.sleep(0)
                state["n"] = value + 1

    await asyncio.gather(*(worker() for _ in range(tasks)))
    assert state["n"] == tasks * increments
