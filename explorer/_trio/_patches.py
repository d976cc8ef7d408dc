"""Replacements installed for a trio exploration session; each closes a hole in the
controlled world that trio's run loop cannot see.

- ``trio.to_thread.run_sync`` (and anyio's worker threads on trio) run the function inline
  after a checkpoint, as the asyncio runtime does for ``asyncio.to_thread``: a real thread
  would finish at a time the schedule does not control.
- ``trio.lowlevel.wait_readable``/``wait_writable`` wait for the operating system: a user
  task calling them is refused as an escape. trio's sockets and name lookups go over the
  run's simulated network instead (:mod:`explorer._trio._network`, installed per run),
  which refuses an address nothing in the scenario serves.
- ``time.sleep`` and ``threading.Thread.start`` inside a controlled run are escapes.
- Raw sockets, selectors, blocking file descriptors, forks and process pools are refused
  in user tasks before they act, by the runtime-neutral guards of :mod:`explorer._escapes`
  (trio's run loop and system tasks keep the originals).
- ``TrioToken.run_sync_soon`` from another thread into a controlled run is an escape.

Each replacement checks that it runs inside a controlled run (``active()``), and behaves
like the original otherwise.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Final, SupportsIndex

import trio
import trio.lowlevel

from explorer import _escapes
from explorer._errors import EscapeError
from explorer._locations import caller_location
from explorer._patching import Patch, Patches, when_imported

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


@contextmanager
def controlling(scheduler: Any) -> Iterator[None]:
    """Make ``scheduler`` the controlled run the replacements check, for the block."""
    _active.append(scheduler)
    try:
        yield
    finally:
        _active.pop()


def escape(scheduler: Any, what: str, fix: str) -> EscapeError:
    err = EscapeError(f"the scenario called {what}, which the controlled trio run "
                      f"refuses: {fix}")
    err.location = caller_location(3)
    scheduler.escapes.append(err)
    return err


def _in_user_task(scheduler: Any) -> bool:
    task = trio.lowlevel.current_task()
    return not task._ki_protected


# trio's own core: it wakes its run loop through a socket pair (see _escapes.installed).
_TRIO_CORE: Final = os.path.join(os.path.dirname(os.path.abspath(trio._core.__file__)), "")


def _refuser() -> _escapes.Refuse | None:
    """How to refuse a guarded operation (sockets, selectors, blocking descriptors,
    processes) when a user task of a controlled run calls it; None anywhere else, such as
    trio's run loop waiting on its own I/O manager between steps."""
    scheduler = active()
    if scheduler is None:
        return None
    try:
        if not _in_user_task(scheduler):
            return None
    except RuntimeError:  # not inside a task: the run loop itself
        return None
    return lambda what, fix: escape(scheduler, what, fix)


@contextmanager
def installed() -> Iterator[None]:
    patch = Patches()

    real_sleep = time.sleep
    real_start = threading.Thread.start
    real_to_thread = trio.to_thread.run_sync
    real_readable = trio.lowlevel.wait_readable
    real_writable = trio.lowlevel.wait_writable

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

    try:
        patch(time, "sleep", guarded_sleep)
        patch(threading.Thread, "start", guarded_start)
        patch(trio.to_thread, "run_sync", inline_to_thread)
        for owner in (trio.lowlevel, trio._core):
            patch(owner, "wait_readable", io_guard(real_readable, "wait_readable"))
            patch(owner, "wait_writable", io_guard(real_writable, "wait_writable"))
        _one_wildcard(patch)
        _patch_anyio(patch, inline_to_thread)
        _guard_foreign_reentry(patch)
        with _escapes.installed(_refuser, trusted=(_TRIO_CORE,)):
            yield
    finally:
        patch.restore()


def _one_wildcard(patch: Patch) -> None:
    """In a controlled run, the wildcard lookup of a server about to bind
    (``getaddrinfo(None, port, flags=AI_PASSIVE)``, what ``open_tcp_listeners`` and
    ``serve_tcp`` do without a host) answers the IPv4 wildcard only, as on a host without
    IPv6. Both wildcards are the one simulated local host, and a second listener would add
    a task, and so scheduling points, to every run of a scenario that serves."""
    real = trio.socket.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> Any:
        if active() is not None and not host and not family and \
                flags & socket.AI_PASSIVE:
            family = socket.AF_INET
        return await real(host, port, family, type, proto, flags)

    getaddrinfo.__doc__ = real.__doc__
    patch(trio.socket, "getaddrinfo", getaddrinfo)


def _guard_foreign_reentry(patch: Patch) -> None:
    """``TrioToken.run_sync_soon`` from another thread into a controlled run (what
    ``trio.from_thread`` and a library's worker thread use) is refused in that thread and
    recorded as the run's escape: the callback would arrive at a real-time moment. The
    run's own thread (a signal handler included) keeps the original."""
    real = trio.lowlevel.TrioToken.run_sync_soon

    def run_sync_soon(token: Any, sync_fn: Callable[..., object], *args: Any,
                      idempotent: bool = False) -> None:
        for scheduler in list(_active):  # a snapshot: the run's thread changes the list
            if token._reentry_queue is scheduler.runner.entry_queue and \
                    active() is not scheduler:
                what = getattr(sync_fn, "__qualname__", type(sync_fn).__name__)
                raise escape(
                    scheduler,
                    f"TrioToken.run_sync_soon({what}) from thread "
                    f"{threading.current_thread().name!r}",
                    "that thread runs outside the controlled schedule, so when its "
                    "callback arrives depends on real time; trio.to_thread.run_sync runs "
                    "inline here, and a library that answers from its own thread needs "
                    "an in-memory fake",
                )
        real(token, sync_fn, *args, idempotent=idempotent)

    run_sync_soon.__doc__ = real.__doc__
    patch(trio.lowlevel.TrioToken, "run_sync_soon", run_sync_soon)


def _patch_anyio(patch: Patch,
                 inline: Callable[..., Any]) -> None:
    """anyio's trio backend (3.x and 4.x) imported ``trio.to_thread.run_sync`` by name:
    patch its copy, if and when the scenario imports it (anyio itself is never imported
    here; see :mod:`explorer._patching`)."""

    def apply(backend: ModuleType) -> None:
        if not hasattr(backend, "run_sync"):
            return
        real = backend.run_sync

        async def run_sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if active() is None:
                return await real(fn, *args, **kwargs)
            return await inline(fn, *args)

        patch(backend, "run_sync", run_sync)

    when_imported("anyio._backends._trio", apply, patch)
