"""Module-level replacements installed for the duration of an exploration session.

Each closes a hole in the controlled world that the loop itself cannot see:

- ``time.sleep`` blocks in real time: on the loop's thread it is refused as an escape.
- ``threading.Thread.start`` on the loop's thread starts work the schedule cannot see: it
  is refused as an escape, naming the thread's target. aiosqlite's worker threads are
  never started: its connections opened in a run are served inline
  (:mod:`explorer._asyncio._drivers`, patched once the scenario imports aiosqlite).
- Raw sockets, selectors, blocking file descriptors, forks and process pools are refused
  before they act, by the runtime-neutral guards of :mod:`explorer._escapes`; on top of
  them, ``socket.getaddrinfo`` answers the local host and the names served in the run
  from the simulated network (:func:`explorer._asyncio._network.resolving`).
- Each refusal applies only on the loop's thread while it drives a run (:func:`_in_run`),
  greenlets that a run switched to included (SQLAlchemy's async bridge): the explorer's
  own work between runs, and every other thread, call the originals.
- ``asyncio.as_completed`` turns its arguments into tasks by iterating ``set(fs)``, an order
  that follows object addresses; the replacement wraps them into tasks in the order given
  first, so the same schedule always creates the same tasks in the same order.
- anyio (3.x and 4.x; only once the scenario imports it, see :mod:`explorer._patching`):
  its worker threads run inline, as ``asyncio.to_thread`` does here, after anyio's own
  checkpoint; and its cancel scopes hash by their host task (whose hash is its creation
  index), because anyio 4 delivers cancellation by iterating a set of scopes.

Code that imported these names before the session (``from time import sleep``) keeps the
originals; the guide says so.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from asyncio import events, tasks
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType, ModuleType
from typing import Any, Final, SupportsIndex

from explorer import _escapes
from explorer._asyncio import _drivers
from explorer._asyncio._loop import ControlledLoop
from explorer._asyncio._network import resolving
from explorer._patching import Patch, Patches, when_imported

_DRIVE_CODE: Final = ControlledLoop.drive.__code__


def _in_run(loop: ControlledLoop) -> bool:
    """True on the loop's thread while it drives a run (its cleanup included).

    Between runs the explorer's own code runs on this thread inside the session (progress
    reports, corpus writes): it must not be refused. Only called by guarded operations,
    never per step, so walking the stack costs nothing on the hot path."""
    if events._get_running_loop() is not loop:
        return False
    frame: FrameType | None = sys._getframe(1)
    runner: Any = None
    while True:
        while frame is not None:
            if frame.f_code is _DRIVE_CODE:
                return True
            frame = frame.f_back
        # Inside a greenlet (SQLAlchemy's async bridge runs sync code such as
        # AsyncConnection.run_sync in one) the stack ends at the greenlet's start: the
        # run's frames are those of the greenlet that switched to it.
        greenlet = sys.modules.get("greenlet")
        if greenlet is None:
            return False
        runner = (runner if runner is not None else greenlet.getcurrent()).parent
        if runner is None:
            return False
        frame = runner.gr_frame


THREAD_FIX: Final = (
    "a thread runs outside the controlled schedule; asyncio.to_thread, "
    "loop.run_in_executor and anyio.to_thread.run_sync run inline here, and so do the "
    f"worker threads of aiosqlite ({_drivers.AIOSQLITE_SUPPORTED}, and SQLAlchemy's async "
    "engine over it) when the connection is opened inside the scenario; for another "
    "threaded driver, use an asyncio-native one, or fake the threaded work "
    "(see 'Databases and worker threads' in docs/services.md)"
)


def _thread_target(thread: threading.Thread) -> str:
    """What the refused thread would have run, for the message."""
    target = getattr(thread, "_target", None)
    if target is None:
        target = type(thread).run
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or type(target).__name__
    return f"target {module}.{name}"


@contextmanager
def installed(loop: ControlledLoop) -> Iterator[None]:
    real_sleep = time.sleep
    real_as_completed = tasks.as_completed

    def guarded_sleep(seconds: float | SupportsIndex, /) -> None:
        if events._get_running_loop() is loop and float(seconds) > 0 and _in_run(loop):
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
        if _in_run(loop):
            raise loop._escape(f"threading.Thread.start() ({_thread_target(thread)})",
                               THREAD_FIX)
        real_start(thread)

    patch = Patches()
    try:
        patch(time, "sleep", guarded_sleep)
        patch(tasks, "as_completed", ordered_as_completed)
        patch(asyncio, "as_completed", ordered_as_completed)
        patch(threading.Thread, "start", guarded_start)
        _patch_anyio(loop, patch)
        _drivers.patch_aiosqlite(lambda: _in_run(loop), loop._escape, patch)
        with _escapes.installed(lambda: loop._escape if _in_run(loop) else None), \
                resolving(loop, lambda: _in_run(loop)):
            yield
    finally:
        patch.restore()


def _patch_anyio(loop: ControlledLoop, patch: Patch) -> None:
    """Patch anyio's asyncio backend for the session, if and when the scenario imports it.

    Never imports anyio: a scenario that does not use it explores without it (see
    :mod:`explorer._patching`)."""
    when_imported("anyio._backends._asyncio",
                  lambda backend: _patch_anyio_backend(loop, backend, patch), patch)


ANYIO_SUPPORTED: Final = "anyio 3.x and 4.x"


def _patch_anyio_backend(loop: ControlledLoop, backend: ModuleType, patch: Patch) -> None:
    """Worker threads run inline after anyio's own checkpoint; cancel scopes hash stably."""
    runner_cls = getattr(backend, "AsyncIOBackend", None)
    if runner_cls is not None and "run_sync_in_worker_thread" in runner_cls.__dict__:
        # anyio 4: a backend class of classmethods
        real_run_sync = runner_cls.__dict__["run_sync_in_worker_thread"]

        async def run_sync_inline(cls: Any, func: Callable[..., Any], args: tuple[Any, ...],
                                  abandon_on_cancel: bool = False, limiter: Any = None) -> Any:
            if events._get_running_loop() is not loop:
                return await real_run_sync.__func__(cls, func, args, abandon_on_cancel,
                                                    limiter)
            await cls.checkpoint()
            return func(*args)

        patch(runner_cls, "run_sync_in_worker_thread", classmethod(run_sync_inline))
    elif callable(getattr(backend, "run_sync_in_worker_thread", None)):
        # anyio 3: module-level functions
        real_function = backend.run_sync_in_worker_thread

        async def run_sync_inline_3(func: Callable[..., Any], *args: Any,
                                    cancellable: bool = False, limiter: Any = None) -> Any:
            if events._get_running_loop() is not loop:
                return await real_function(func, *args, cancellable=cancellable,
                                           limiter=limiter)
            await backend.checkpoint()
            return func(*args)

        patch(backend, "run_sync_in_worker_thread", run_sync_inline_3)
    else:
        _refuse_anyio(loop)
        return
    scope_cls = getattr(backend, "CancelScope", None)
    if runner_cls is None or scope_cls is None:
        return  # anyio 3 iterates no set of scopes (its sets of tasks hash stably here)

    def scope_hash(scope: Any) -> int:
        # Stable while the scope sits in a parent's set: anyio sets the host task before
        # adding the scope and clears it only after removing it.
        host = scope._host_task
        return hash(host) if host is not None else object.__hash__(scope)

    patch(scope_cls, "__hash__", scope_hash)


def _refuse_anyio(loop: ControlledLoop) -> None:
    """An anyio whose internals this explorer does not know: refuse it, loudly, in a run."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = f"anyio {version('anyio')}"
    except PackageNotFoundError:
        found = "this anyio"
    if events._get_running_loop() is loop:
        raise loop._escape(f"{found} (imported by the scenario)",
                           f"its asyncio backend is not one the explorer can control; "
                           f"install one of {ANYIO_SUPPORTED} (pip install 'anyio>=3,<5')")
