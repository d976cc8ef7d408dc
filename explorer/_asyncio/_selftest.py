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
    for name in ("_run", "_callback", "_cancelled", "_args"):
        _require(name in events.Handle.__slots__ or hasattr(events.Handle, name),
                 f"asyncio.Handle.{name} is missing")
    for name in ("_when", "_scheduled"):
        _require(name in events.TimerHandle.__slots__, f"asyncio.TimerHandle.{name} is missing")
    _require(hasattr(events, "_get_running_loop") and hasattr(events, "_set_running_loop"),
             "asyncio.events._get_running_loop/_set_running_loop are missing")
    _check_task_callbacks()


def _check_task_callbacks() -> None:
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

    loop = Probe()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    owners = [getattr(cb, "__self__", None) for cb in seen]
    _require(any(isinstance(o, asyncio.Task) for o in owners),
             "task step callbacks no longer expose their task as __self__")
