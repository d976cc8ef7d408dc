"""A self-test of the private asyncio internals the controlled loop relies on.

The controlled loop reads and reorders ``BaseEventLoop._ready``, pops ``_scheduled`` timers,
runs ``Handle._run`` and recognises task steps by their callback's ``__self__``. These are
private, so each interpreter is checked once, at first use, with a clear error instead of
a silent misbehaviour when a future Python changes them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import sys
from asyncio import base_events, events
from collections.abc import Callable
from contextvars import Context
from typing import TypeVarTuple, Unpack

from explorer._errors import RuntimeSelfTestError

_Ts = TypeVarTuple("_Ts")


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeSelfTestError(
            f"this Python ({sys.version.split()[0]}) changed an asyncio internal the "
            f"explorer relies on: {what}. The explorer supports CPython 3.11 to 3.13; "
            "please report this with your Python version."
        )


@functools.cache
def self_test() -> None:
    """Raise :class:`RuntimeSelfTestError` if an internal we depend on is missing."""
    loop = base_events.BaseEventLoop()
    loop.close()
    _require(isinstance(getattr(loop, "_ready", None), collections.deque),
             "BaseEventLoop._ready is no longer a deque")
    _require(isinstance(getattr(loop, "_scheduled", None), list),
             "BaseEventLoop._scheduled is no longer a heap list")
    for name in ("_asyncgen_firstiter_hook", "_asyncgen_finalizer_hook", "_asyncgens",
                 "_timer_handle_cancelled", "_task_factory"):
        _require(hasattr(loop, name), f"BaseEventLoop.{name} is missing")
    _require(set(events.Handle.__slots__) == {"_callback", "_args", "_cancelled", "_loop",
                                              "_source_traceback", "_repr", "__weakref__",
                                              "_context"},
             f"asyncio.Handle has different slots: {events.Handle.__slots__}")
    _require(hasattr(events.Handle, "_run"), "asyncio.Handle._run is missing")
    for name in ("_when", "_scheduled"):
        _require(name in events.TimerHandle.__slots__, f"asyncio.TimerHandle.{name} is missing")
    _require(hasattr(events, "_get_running_loop") and hasattr(events, "_set_running_loop"),
             "asyncio.events._get_running_loop/_set_running_loop are missing")
    _check_task_callbacks()
    _check_primitives()


def _check_primitives() -> None:
    """Footprint recording reads a few private fields of the primitives to tell whether an
    operation will wait."""
    for primitive, fields in ((asyncio.Lock(), ("_locked", "_waiters")),
                              (asyncio.Semaphore(), ("_value", "_waiters")),
                              (asyncio.Event(), ("_value",)),
                              (asyncio.Queue(), ("_queue", "_getters", "_putters",
                                                 "_maxsize"))):
        for field in fields:
            _require(hasattr(primitive, field),
                     f"asyncio.{type(primitive).__name__}.{field} is missing")


@functools.cache
def task_callback_types() -> tuple[type, type]:
    """The types of the callables a task passes to ``call_soon`` for a step and a wake-up.

    The controlled loop uses them to tell task handles (whose timing varies) from plain
    callbacks (which keep asyncio's documented FIFO order among themselves).
    """
    seen = _probe_callbacks()
    steps = [type(cb) for cb in seen if isinstance(getattr(cb, "__self__", None), asyncio.Task)
             and getattr(cb, "__name__", None) != "task_wakeup"]
    wakeups = [type(cb) for cb in seen if getattr(cb, "__name__", None) == "task_wakeup"]
    _require(bool(steps) and bool(wakeups),
             "task step and wake-up callbacks can no longer be recognised")
    return steps[0], wakeups[0]


def _check_task_callbacks() -> None:
    seen = _probe_callbacks()
    owners = [getattr(cb, "__self__", None) for cb in seen]
    _require(any(isinstance(o, asyncio.Task) for o in owners),
             "task step callbacks no longer expose their task as __self__")
    task_callback_types()


@functools.cache  # both checks above read one probe: a stock loop is costly to set up
def _probe_callbacks() -> tuple[object, ...]:
    """Run a tiny program on a stock loop and return every callback given to call_soon."""
    seen: list[object] = []

    class Probe(asyncio.SelectorEventLoop):
        def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                      context: Context | None = None) -> events.Handle:
            seen.append(callback)
            return super().call_soon(callback, *args, context=context)

    async def child() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(child())
        await task
        _require(hasattr(task, "_exception") and hasattr(task, "_log_traceback"),
                 "Task._exception/_log_traceback are missing")

    async def waits_on_a_future() -> None:
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, None)
        await future

    loop = Probe()
    try:
        loop.run_until_complete(main())
        loop.run_until_complete(waits_on_a_future())
    finally:
        loop.close()
    return tuple(seen)
