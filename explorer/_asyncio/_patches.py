"""Module-level replacements installed for the duration of an exploration session.

Each closes a hole in the controlled world that the loop itself cannot see:

- ``time.sleep`` blocks in real time: on the loop's thread it is refused as an escape.
- ``asyncio.as_completed`` turns its arguments into tasks by iterating ``set(fs)``, an order
  that follows object addresses; the replacement wraps them into tasks in the order given
  first, so the same schedule always creates the same tasks in the same order.

Code that imported these names before the session (``from time import sleep``) keeps the
originals; the guide says so.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import events, tasks
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, SupportsIndex

from explorer._asyncio._loop import ControlledLoop


@contextmanager
def installed(loop: ControlledLoop) -> Iterator[None]:
    real_sleep = time.sleep
    real_as_completed = tasks.as_completed

    def guarded_sleep(seconds: float | SupportsIndex, /) -> None:
        if events._get_running_loop() is loop and float(seconds) > 0:
            raise loop._escape(
                f"time.sleep({seconds!r})",
                "it blocks in real time, outside the controlled schedule; use "
                "'await asyncio.sleep(...)', which runs on virtual time",
            )
        real_sleep(seconds)

    def ordered_as_completed(fs: Iterable[Any], *, timeout: float | None = None) -> Any:
        if events._get_running_loop() is loop and not (
            asyncio.isfuture(fs) or asyncio.iscoroutine(fs)
        ):
            fs = [asyncio.ensure_future(f) for f in fs]
        return real_as_completed(fs, timeout=timeout)

    ordered_as_completed.__doc__ = real_as_completed.__doc__
    saved: list[tuple[Any, str, Callable[..., Any]]] = [
        (time, "sleep", real_sleep),
        (tasks, "as_completed", real_as_completed),
        (asyncio, "as_completed", real_as_completed),
    ]
    time.sleep = guarded_sleep
    tasks.as_completed = ordered_as_completed
    asyncio.as_completed = ordered_as_completed
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)
