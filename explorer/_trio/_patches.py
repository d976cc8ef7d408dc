"""Replacements installed for a trio exploration session; each closes a hole in the
controlled world that trio's run loop cannot see.

- ``trio.to_thread.run_sync`` (and anyio's worker threads on trio) run the function inline
  after a checkpoint, as the asyncio runtime does for ``asyncio.to_thread``: a real thread
  would finish at a time the schedule does not control.
- ``trio.lowlevel.wait_readable``/``wait_writable`` and ``trio.socket.getaddrinfo`` wait
  for the operating system: a user task calling them is refused as an escape.
- ``time.sleep`` and ``threading.Thread.start`` inside a controlled run are escapes.

Each replacement checks that it runs inside a controlled run (``active()``), and behaves
like the original otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, SupportsIndex

import trio
import trio.lowlevel

from explorer._asyncio._inspect import caller_location
from explorer._errors import EscapeError

_active: list[Any] = []  # the Scheduler of the controlled run in progress, if any


def active() -> Any:
    """The scheduler of the controlled trio run in progress on this thread, or None."""
    if not _active:
        return None
    from trio._core._run import GLOBAL_RUN_CONTEXT

    scheduler = _active[-1]
    if getattr(GLOBAL_RUN_CONTEXT, "runner", None) is not scheduler.runner:
        return None
    return scheduler


def escape(scheduler: Any, what: str, fix: str) -> EscapeError:
    err = EscapeError(f"the scenario called {what}, which the controlled trio run "
                      f"refuses: {fix}")
    err.location = caller_location(3)
    scheduler.escapes.append(err)
    return err


def _in_user_task(scheduler: Any) -> bool:
    task = trio.lowlevel.current_task()
    return not task._ki_protected


@contextmanager
def installed() -> Iterator[None]:
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    real_sleep = time.sleep
    real_start = threading.Thread.start
    real_to_thread = trio.to_thread.run_sync
    real_readable = trio.lowlevel.wait_readable
    real_writable = trio.lowlevel.wait_writable
    real_getaddrinfo = trio.socket.getaddrinfo

    def guarded_sleep(seconds: float | SupportsIndex, /) -> None:
        scheduler = active()
        if scheduler is not None and float(seconds) > 0:
            raise escape(scheduler, f"time.sleep({seconds!r})",
                         "it blocks in real time; use 'await trio.sleep(...)', which runs "
                         "on virtual time")
        real_sleep(seconds)

    def guarded_start(thread: threading.Thread) -> None:
        scheduler = active()
        if scheduler is not None:
            raise escape(scheduler, "threading.Thread.start()",
                         "a thread runs outside the controlled schedule; use "
                         "trio.to_thread.run_sync, which runs inline here, or fake the "
                         "threaded work")
        real_start(thread)

    async def inline_to_thread(sync_fn: Callable[..., Any], *args: Any,
                               **kwargs: Any) -> Any:
        if active() is None:
            return await real_to_thread(sync_fn, *args, **kwargs)
        await trio.lowlevel.checkpoint()
        return sync_fn(*args)

    def io_guard(real: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
        async def guarded(fd: Any) -> Any:
            scheduler = active()
            if scheduler is not None and _in_user_task(scheduler):
                raise escape(scheduler, f"trio.lowlevel.{name}({fd!r})",
                             "it waits for the operating system; use in-memory streams "
                             "(trio.testing.memory_stream_pair) or channels instead of "
                             "sockets and pipes")
            return await real(fd)
        guarded.__name__ = name
        return guarded

    async def guarded_getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        scheduler = active()
        if scheduler is not None:
            raise escape(scheduler, "trio.socket.getaddrinfo()",
                         "DNS is real network I/O; fake the resolver or pass addresses")
        return await real_getaddrinfo(*args, **kwargs)

    patch(time, "sleep", guarded_sleep)
    patch(threading.Thread, "start", guarded_start)
    patch(trio.to_thread, "run_sync", inline_to_thread)
    for owner in (trio.lowlevel, trio._core):
        patch(owner, "wait_readable", io_guard(real_readable, "wait_readable"))
        patch(owner, "wait_writable", io_guard(real_writable, "wait_writable"))
    patch(trio.socket, "getaddrinfo", guarded_getaddrinfo)
    _patch_anyio(patch, inline_to_thread)
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def _patch_anyio(patch: Callable[[Any, str, Any], None],
                 inline: Callable[..., Any]) -> None:
    """anyio's trio backend imported ``trio.to_thread.run_sync`` by name: patch its copy."""
    if importlib.util.find_spec("anyio") is None:
        return
    try:
        backend = importlib.import_module("anyio._backends._trio")
    except ImportError:  # an anyio without a trio backend
        return
    if hasattr(backend, "run_sync"):
        real = backend.run_sync

        async def run_sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if active() is None:
                return await real(fn, *args, **kwargs)
            return await inline(fn, *args)

        patch(backend, "run_sync", run_sync)
