"""Starvation: a hand-rolled spin lock lets newcomers barge past a waiting handler.

``SpinLock.acquire`` polls ``while self.locked: await asyncio.sleep(0)`` and takes the
lock the moment it sees it free. Whoever polls first after a release wins, so a handler
that has waited longest has no advantage over a worker coming back for its next batch:
under a steady stream of workers, a late report request can be passed over again and
again. The property is bounded waiting: once the report starts waiting, at most one
critical section per worker may complete before it gets the lock. The fixed version uses
``asyncio.Lock``, which queues waiters and hands the lock over first come, first served.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Protocol

WORKERS = 2
BATCHES = 3


class AsyncLock(Protocol):
    async def __aenter__(self) -> object: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> object: ...


class SpinLock:
    def __init__(self) -> None:
        self.locked = False

    async def __aenter__(self) -> None:
        while self.locked:
            await asyncio.sleep(0)
        self.locked = True

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.locked = False


class Ledger:
    def __init__(self, lock: AsyncLock) -> None:
        self.lock = lock
        self.sections = 0


async def worker(ledger: Ledger) -> None:
    for _ in range(BATCHES):
        async with ledger.lock:
            await asyncio.sleep(0)  # write the batch
            ledger.sections += 1
        await asyncio.sleep(0)  # acknowledge the batch


async def report(ledger: Ledger) -> None:
    await asyncio.sleep(0)  # authenticate
    await asyncio.sleep(0)  # parse the query
    waiting_since = ledger.sections
    async with ledger.lock:
        passed_over = ledger.sections - waiting_since
        assert passed_over <= WORKERS, (
            f"the report waited while {passed_over} other critical sections completed")


async def _scenario(lock: AsyncLock) -> None:
    ledger = Ledger(lock)
    await asyncio.gather(*(worker(ledger) for _ in range(WORKERS)), report(ledger))


async def barging() -> None:
    """Two workers write batches while a report waits: the report must not starve."""
    await _scenario(SpinLock())


async def barging_fixed() -> None:
    await _scenario(asyncio.Lock())
