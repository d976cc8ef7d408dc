"""Who holds which lock or semaphore, recorded only while a run is traced.

Traced runs wrap the acquire/release methods of asyncio's ``Lock`` and ``Semaphore``
(``BoundedSemaphore`` and ``Condition`` go through them) for the duration of the run. The
wrappers add no await of their own, so a traced run makes exactly the same scheduling
decisions as an untraced one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Holders:
    """Current holders per primitive: ``holders.of(lock) -> [task, ...]``."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[object, list[asyncio.Task[Any]]]] = {}

    def add(self, resource: object) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        entry = self._held.setdefault(id(resource), (resource, []))
        entry[1].append(task)

    def remove(self, resource: object) -> None:
        entry = self._held.get(id(resource))
        if entry is None or not entry[1]:
            return
        task = asyncio.current_task()
        tasks = entry[1]
        tasks.remove(task) if task in tasks else tasks.pop(0)

    def of(self, resource: object) -> list[asyncio.Task[Any]]:
        entry = self._held.get(id(resource))
        return list(entry[1]) if entry is not None and entry[0] is resource else []

    def held_by(self, task: asyncio.Task[Any]) -> list[object]:
        return [res for res, tasks in self._held.values() if task in tasks]


def _wrap_acquire(original: Callable[..., Any], holders: Holders) -> Callable[..., Any]:
    async def acquire(self: Any) -> Any:
        result = await original(self)
        holders.add(self)
        return result

    acquire.__qualname__ = original.__qualname__
    return acquire


def _wrap_release(original: Callable[..., Any], holders: Holders) -> Callable[..., Any]:
    def release(self: Any) -> Any:
        result = original(self)
        holders.remove(self)
        return result

    release.__qualname__ = original.__qualname__
    return release


@contextmanager
def track_holders(holders: Holders) -> Iterator[Holders]:
    """Record lock/semaphore holders into ``holders`` while the block runs."""
    saved: list[tuple[type, str, Any]] = []
    try:
        for cls in (asyncio.Lock, asyncio.Semaphore):
            for name, wrap in (("acquire", _wrap_acquire), ("release", _wrap_release)):
                original = cls.__dict__[name]
                saved.append((cls, name, original))
                setattr(cls, name, wrap(original, holders))
        yield holders
    finally:
        for cls, name, original in reversed(saved):
            setattr(cls, name, original)
