"""Recording step footprints on the controlled loop, for partial-order reduction.

While a reduction strategy explores, every step is run through :class:`FootprintRecorder`
(in the loop's tracer slot, so the untraced hot path is unchanged), and asyncio's
primitives are wrapped so each operation adds an access to the running step's footprint.
The recorder also notes which step scheduled each handle: that step happens before it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from explorer import _footprint
from explorer._footprint import UNKNOWN, Access, record

if TYPE_CHECKING:
    from explorer._asyncio._loop import ControlledLoop


class StepRecord(NamedTuple):
    """One step: its process (task id, or ``loop`` for plain callbacks), footprint, the
    step that scheduled it (``None`` for the first) and its scheduling point, if any."""

    process: str
    footprint: set[Access]
    enabler: int | None
    point: int | None


class FootprintRecorder:
    """Runs each handle with footprint recording on; collects :class:`StepRecord` s."""

    def __init__(self, loop: ControlledLoop, *, declared: bool, naming: bool = False) -> None:
        self.loop = loop
        self.naming = naming
        self.task_names: dict[int, str] = {}
        # Without the "declared" contract, a task's own code may touch anything.
        self._task_code: set[Access] = set() if declared else {UNKNOWN}
        self.steps: list[StepRecord] = []
        self._origin: dict[int, int] = {}
        self._points = 0
        self._point: int | None = None
        self._current: int | None = None
        from explorer._asyncio._loop import _TaskHandle

        self._task_handle = _TaskHandle
        self._ready = loop._ready

    def decision(self, chosen: int, count: int, fires_timer: bool) -> None:
        self._point = self._points
        self._points += 1

    def scheduled_timer(self, timer: asyncio.TimerHandle) -> None:
        if self._current is not None:
            self._origin[id(timer)] = self._current

    def run(self, handle: asyncio.Handle, step_no: int) -> None:
        # Hot in reduction runs: plain locals, no helper calls on the common path.
        index = len(self.steps)
        if type(handle) is self._task_handle:
            task = handle._callback.__self__  # type: ignore[attr-defined]
            process = task._explorer_id
            footprint: set[Access] = set(self._task_code) if self._task_code else set()
            args = handle._args
            if args and isinstance(args[0], asyncio.Future):  # a wake-up reads its future
                footprint.add((id(args[0]), None, "r"))
        else:
            task = None
            process = "loop"
            footprint = _callback_footprint(handle)
        ready = self._ready
        before = len(ready)
        _footprint.current = footprint
        self._current = index
        handle._run()
        _footprint.current = None
        self._current = None
        if task is not None and task.done():
            footprint.add((id(task), None, "w"))
        # Which step scheduled each handle. Keyed by id: every handle that can run is
        # entered here when it is created, so an id reused by a later handle is overwritten
        # before it is looked up.
        origin = self._origin
        grown = len(ready) - before
        if grown == 1:  # the common case: the task scheduled its own next step
            origin[id(ready[-1])] = index
        elif grown > 1:
            origin.update(dict.fromkeys(map(id, itertools.islice(ready, before, None)), index))
        self.steps.append(_new_record(StepRecord, (process, footprint,
                                                   origin.get(id(handle)), self._point)))
        self._point = None


_new_record = tuple.__new__  # skips NamedTuple's Python-level __new__ on this hot path


def _callback_footprint(handle: asyncio.Handle) -> set[Access]:
    """asyncio's own callbacks touch the future they complete and their owner; a callback
    from anywhere else could touch anything."""
    callback = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if asyncio.isfuture(owner):
        return {(id(owner), None, "w")}
    module = getattr(callback, "__module__", None) or ""
    if not module.startswith("asyncio"):
        return {UNKNOWN}
    accesses: set[Access] = {(id(owner if owner is not None else callback), None, "w")}
    accesses |= {(id(arg), None, "w") for arg in handle._args
                 if asyncio.isfuture(arg)}
    return accesses


def _sync(original: Callable[..., Any], mode: str) -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        record(self, None, mode)
        return original(self, *args, **kwargs)

    wrapper.__qualname__ = original.__qualname__
    return wrapper


def _async(original: Callable[..., Any], mode: str,
           ready: Callable[[Any], bool] | None = None) -> Callable[..., Any]:
    """Wrap an awaitable operation: recorded where it starts and where it completes.

    ``ready(self)`` says the operation will complete without waiting; then it starts and
    completes in the same step, one record is enough, and the original coroutine is
    returned as it is (no extra coroutine on the common path).
    """
    async def waiting(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            record(self, None, mode)  # in the step where the operation completes

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        record(self, None, mode)
        if ready is not None and ready(self):
            return original(self, *args, **kwargs)
        return waiting(self, *args, **kwargs)

    wrapper.__qualname__ = original.__qualname__
    return wrapper


# Checked on private state rather than through locked()/empty(), which are wrapped too.
def _lock_free(lock: Any) -> bool:
    return not lock._locked and not lock._waiters


def _permit_free(semaphore: Any) -> bool:
    return semaphore._value > 0 and not semaphore._waiters


def _has_item(queue: Any) -> bool:
    return bool(queue._queue) and not queue._getters


def _has_room(queue: Any) -> bool:
    return (queue._maxsize <= 0 or len(queue._queue) < queue._maxsize) and not queue._putters


_PRIMITIVES: dict[type, dict[str, str]] = {
    asyncio.Lock: {"acquire": "w", "release": "w", "locked": "r"},
    asyncio.Semaphore: {"acquire": "w", "release": "w", "locked": "r"},
    asyncio.BoundedSemaphore: {"release": "w"},
    asyncio.Event: {"set": "w", "clear": "w", "is_set": "r", "wait": "w"},
    asyncio.Condition: {"wait": "w", "wait_for": "w", "notify": "w", "notify_all": "w"},
    asyncio.Queue: {"put": "w", "get": "w", "put_nowait": "w", "get_nowait": "w",
                    "qsize": "r", "empty": "r", "full": "r", "task_done": "w",
                    "join": "w"},
    asyncio.Barrier: {"wait": "w", "reset": "w", "abort": "w"},
}

_READY: dict[tuple[type, str], Callable[[Any], bool]] = {
    (asyncio.Lock, "acquire"): _lock_free,
    (asyncio.Semaphore, "acquire"): _permit_free,
    (asyncio.Event, "wait"): lambda event: event._value,
    (asyncio.Queue, "get"): _has_item,
    (asyncio.Queue, "put"): _has_room,
}


@contextmanager
def recording_primitives() -> Iterator[None]:
    """Wrap asyncio's primitives so their operations land in step footprints."""
    saved: list[tuple[type, str, Any]] = []
    try:
        for cls, methods in _PRIMITIVES.items():
            for name, mode in methods.items():
                original = cls.__dict__.get(name)
                if original is None:
                    continue
                saved.append((cls, name, original))
                if asyncio.iscoroutinefunction(original):
                    setattr(cls, name, _async(original, mode, _READY.get((cls, name))))
                else:
                    setattr(cls, name, _sync(original, mode))
        yield
    finally:
        for cls, name, original in reversed(saved):
            setattr(cls, name, original)
