"""Module-level replacements installed for the duration of an exploration session.

Each closes a hole in the controlled world that the loop itself cannot see:

- ``time.sleep`` blocks in real time: on the loop's thread it is refused as an escape.
- ``threading.Thread.start`` on the loop's thread starts work the schedule cannot see: it
  is refused as an escape.
- ``asyncio.as_completed`` turns its arguments into tasks by iterating ``set(fs)``, an order
  that follows object addresses; the replacement wraps them into tasks in the order given
  first, so the same schedule always creates the same tasks in the same order.
- anyio (when installed): its worker threads run inline, as ``asyncio.to_thread`` does here,
  after anyio's own checkpoint; and its cancel scopes hash by their host task (whose hash
  is its creation index), because anyio delivers cancellation by iterating a set of scopes.

Code that imported these names before the session (``from time import sleep``) keeps the
originals; the guide says so.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import threading
import time
from asyncio import events, tasks
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, SupportsIndex

from explorer._asyncio._loop import ControlledLoop

_ABSENT = object()  # marks an attribute the class did not define itself


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
    real_start = threading.Thread.start

    def guarded_start(thread: threading.Thread) -> None:
        if events._get_running_loop() is loop:
            raise loop._escape(
                "threading.Thread.start()",
                "a thread runs outside the controlled schedule; use asyncio.to_thread or "
                "anyio.to_thread.run_sync, which run inline here, or fake the threaded work",
            )
        real_start(thread)

    saved: list[tuple[Any, str, Any]] = [
        (time, "sleep", real_sleep),
        (tasks, "as_completed", real_as_completed),
        (asyncio, "as_completed", real_as_completed),
        (threading.Thread, "start", real_start),
    ]
    time.sleep = guarded_sleep
    tasks.as_completed = ordered_as_completed
    asyncio.as_completed = ordered_as_completed
    setattr(threading.Thread, "start", guarded_start)  # noqa: B010 - mypy rejects the direct form
    saved += _patch_anyio(loop)
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _patch_anyio(loop: ControlledLoop) -> list[tuple[Any, str, Any]]:
    """Make anyio's asyncio backend deterministic and thread-free on the controlled loop."""
    if importlib.util.find_spec("anyio") is None:
        return []
    backend = importlib.import_module("anyio._backends._asyncio")
    runner_cls = backend.AsyncIOBackend
    scope_cls = backend.CancelScope
    real_run_sync = runner_cls.__dict__["run_sync_in_worker_thread"]
    real_hash = scope_cls.__dict__.get("__hash__")

    async def run_sync_inline(cls: Any, func: Callable[..., Any], args: tuple[Any, ...],
                              abandon_on_cancel: bool = False, limiter: Any = None) -> Any:
        if events._get_running_loop() is not loop:
            return await real_run_sync.__func__(cls, func, args, abandon_on_cancel, limiter)
        await cls.checkpoint()
        return func(*args)

    def scope_hash(scope: Any) -> int:
        # Stable while the scope sits in a parent's set: anyio sets the host task before
        # adding the scope and clears it only after removing it.
        host = scope._host_task
        return hash(host) if host is not None else object.__hash__(scope)

    runner_cls.run_sync_in_worker_thread = classmethod(run_sync_inline)
    scope_cls.__hash__ = scope_hash
    return [(runner_cls, "run_sync_in_worker_thread", real_run_sync),
            (scope_cls, "__hash__", real_hash if real_hash is not None else _ABSENT)]
