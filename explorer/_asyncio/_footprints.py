"""Recording step footprints on the controlled loop, for partial-order reduction.

While a reduction strategy explores, :meth:`ControlledLoop.drive` records every step it
runs into the :class:`FootprintRecorder` it is given: the per-step work is
inlined there, behind the one check the untraced hot path already makes. asyncio's
primitives, and anyio's own when the scenario imports anyio
(:mod:`explorer._anyio_primitives`), are wrapped so each operation adds an access to the
running step's footprint.
Each handle also carries the index of the step that scheduled it (its ``_cause`` slot):
that step happens before it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from types import CodeType, FunctionType, ModuleType
from typing import Any

from explorer import _footprint
from explorer._footprint import UNKNOWN, Access, StepRecord, record
from explorer._patching import Patches, when_imported


class FootprintRecorder:
    """What :meth:`ControlledLoop.drive` records for each step: :class:`StepRecord` s.

    The loop fills ``steps`` itself (see the recording branch of ``drive``) and keeps the
    rest of this state in locals while it drives. ``steps`` holds StepRecords once the loop
    stops driving; meanwhile the latest are plain ``(process, footprint, enabler, point)``
    tuples.
    """

    __slots__ = ("conservative", "foreign_causes", "kept", "naming", "point", "points",
                 "steps", "task_names")

    def __init__(self, *, declared: bool, naming: bool = False) -> None:
        self.naming = naming
        self.task_names: dict[int, str] = {}
        # Without the "declared" contract, a task's own code may touch anything.
        self.conservative = not declared
        self.steps: list[StepRecord] = []
        # Decisions made so far (the next point's index), and the point the next step
        # to run belongs to (set at a decision, cleared by the step that follows it).
        self.points = 0
        self.point: int | None = None
        # Causes of handles whose type has no ``_cause`` slot (foreign handles): by id.
        self.foreign_causes: dict[int, int | None] = {}
        # Every object whose id the footprints hold, alive for the run (_footprint.kept):
        # the handle of each step, hence the future a wake-up reads, and the objects
        # the primitives and shared state record.
        self.kept: dict[int, object] = {}

    def scheduled_timer(self, timer: asyncio.TimerHandle) -> None:
        # Inside a step (and only there) a footprint is being recorded; the step running
        # is the next one to be appended to ``steps``.
        step = len(self.steps) if _footprint.current is not None else None
        set_cause(timer, step, self.foreign_causes)


def set_cause(handle: object, step: int | None, foreign: dict[int, int | None]) -> None:
    """Note that step ``step`` (``None``: no step) scheduled ``handle``."""
    try:
        handle._cause = step  # type: ignore[attr-defined]
    except AttributeError:  # not one of the loop's handle types: keyed by id instead
        foreign[id(handle)] = step


def cause_of(handle: object, foreign: dict[int, int | None]) -> int | None:
    """The step that scheduled ``handle``, when its ``_cause`` slot is unset or missing."""
    if hasattr(type(handle), "_cause"):  # one of the loop's: scheduled outside any step
        return None
    return foreign.get(id(handle))


def callback_footprint(handle: asyncio.Handle) -> set[Access]:
    """asyncio's own callbacks touch the future they complete and their owner; a callback
    from anywhere else could touch anything."""
    callback = handle._callback  # type: ignore[attr-defined]
    if type(callback) is FunctionType:  # no __self__ (getattr would raise and catch)
        if callback.__code__ is _GATHER_DONE:
            return _gather_footprint(callback, handle._args)
        owner = None
        module: str | None = callback.__module__
    else:
        owner = getattr(callback, "__self__", None)
        if owner is not None and (isinstance(owner, _Future) or asyncio.isfuture(owner)):
            return {(id(owner), None, "w")}
        module = getattr(callback, "__module__", None)
    if not (module or "").startswith("asyncio"):
        return {UNKNOWN}
    accesses: set[Access] = {(id(owner if owner is not None else callback), None, "w")}
    for arg in handle._args:
        if isinstance(arg, _Future) or asyncio.isfuture(arg):
            accesses.add((id(arg), None, "w"))
    return accesses


def _gather_footprint(callback: Callable[..., Any], args: Sequence[Any]) -> set[Access]:
    """gather's completion callback for one child. Children that succeeded commute (each
    counts itself done; the results are assembled in argument order, whichever finishes
    last), so their callbacks only read gather's state. A failed or cancelled child
    decides which exception gather raises: its callback writes that state."""
    child = args[0] if args else None
    if not isinstance(child, _Future):
        return {UNKNOWN}
    # _exception is read directly: exception() would mark the error retrieved.
    failed = child.cancelled() or child._exception is not None
    return {(id(callback), None, "w" if failed else "r"), (id(child), None, "w")}


def _gather_done_code() -> CodeType | None:
    """The code object of the completion callback that asyncio.gather defines."""
    for const in asyncio.tasks.gather.__code__.co_consts:
        if isinstance(const, CodeType) and const.co_name == "_done_callback":
            return const
    return None


# asyncio's futures and tasks: checked before asyncio.isfuture(), a Python-level call that
# also accepts duck-typed futures.
_Future = asyncio.Future
_state = _footprint.__dict__  # where record() finds the running step's footprint
_GATHER_DONE = _gather_done_code()


# The wrappers below run for every primitive operation while footprints are recorded.
# Those of operations that take no argument but ``self`` (most of them) take exactly that:
# packing and unpacking ``*args, **kwargs`` was most of what such a wrapper cost.

def _only_self(function: Callable[..., Any]) -> bool:
    """True when ``function`` takes no argument but ``self``."""
    code = getattr(function, "__code__", None)
    return (code is not None and code.co_argcount == 1 and not code.co_kwonlyargcount
            and not code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS))


def _sync(original: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """Wrap a plain operation: recorded in the step that calls it."""
    if not _only_self(original):
        return _sync_with_arguments(original, mode)

    def wrapper(self: Any) -> Any:
        current = _state["current"]  # record(self, None, mode), inlined: this is hot
        if current is not None:
            current.add((id(self), None, mode))
            kept = _state["kept"]  # alive for the run: see _footprint.kept
            if kept is not None:
                kept[id(self)] = self
            if _state["seen"] is not None:
                record(self, None, mode)
        return original(self)

    wrapper.__qualname__ = original.__qualname__
    return wrapper


def _sync_with_arguments(original: Callable[..., Any], mode: str) -> Callable[..., Any]:
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
    if not _only_self(original):
        return _async_with_arguments(original, mode, ready)

    async def waiting(self: Any) -> Any:
        try:
            return await original(self)
        finally:
            record(self, None, mode)  # in the step where the operation completes

    def wrapper(self: Any) -> Any:
        current = _state["current"]  # record(self, None, mode), inlined: this is hot
        if current is not None:
            current.add((id(self), None, mode))
            kept = _state["kept"]  # alive for the run: see _footprint.kept
            if kept is not None:
                kept[id(self)] = self
            if _state["seen"] is not None:
                record(self, None, mode)
        if ready is not None and ready(self):
            return original(self)
        return waiting(self)

    wrapper.__qualname__ = original.__qualname__
    return wrapper


def _async_with_arguments(original: Callable[..., Any], mode: str,
                          ready: Callable[[Any], bool] | None) -> Callable[..., Any]:
    async def waiting(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            record(self, None, mode)

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


_ABSENT: Any = object()  # the class only inherited the attribute it had wrapped


class PrimitiveWrappers:
    """The wrappers of asyncio's primitives (and anyio's, once imported) for one session,
    installed only for the runs that record (:meth:`install` / :meth:`remove`).

    Installed for a whole session, every run would pay a wrapper's call per primitive
    operation (about a tenth of a locked counter's run), also the runs of portfolio members
    that record nothing. Installing them costs a few microseconds per recording run
    instead: the wrappers are built once, and installing is a ``setattr`` per operation.
    A run interrupted between the two is harmless: a wrapper records nothing while no step
    footprint is being recorded, and the session's end removes them all.

    It is also the :data:`~explorer._patching.Patch` anyio's wrapping goes through: a
    class attribute it patches joins the switchable wrappers (applied at once if they are
    installed); anything else (the import watcher) stays for the session.
    """

    __slots__ = ("_session", "_wrapped", "installed")

    def __init__(self) -> None:
        self._wrapped: list[tuple[type, str, Any, Any]] = []  # (class, name, original, wrapper)
        self._session = Patches()  # non-class patches: undone when the session ends
        self.installed = False
        for cls, methods in _PRIMITIVES.items():
            for name, mode in methods.items():
                original = cls.__dict__.get(name)
                if original is None:
                    continue
                wrapper = (_async(original, mode, _READY.get((cls, name)))
                           if asyncio.iscoroutinefunction(original) else _sync(original, mode))
                self._wrapped.append((cls, name, original, wrapper))

    def __call__(self, owner: Any, name: str, value: Any) -> None:
        if not isinstance(owner, type):
            self._session(owner, name, value)
            return
        self._wrapped.append((owner, name, vars(owner).get(name, _ABSENT), value))
        if self.installed:
            setattr(owner, name, value)

    def install(self) -> None:
        self.installed = True
        for cls, name, _, wrapper in self._wrapped:
            setattr(cls, name, wrapper)

    def remove(self) -> None:
        self.installed = False
        for cls, name, original, _ in reversed(self._wrapped):
            if original is _ABSENT:
                if name in vars(cls):
                    delattr(cls, name)
            else:
                setattr(cls, name, original)

    def close(self) -> None:
        try:
            self.remove()
        finally:
            self._session.restore()


def _record_anyio(anyio: ModuleType, *, wrappers: PrimitiveWrappers) -> None:
    """Wrap anyio's primitives for the session of ``wrappers``, now that anyio is imported
    (its modules that are not imported yet are wrapped when they are)."""
    from explorer._anyio_primitives import recording_anyio

    recording_anyio("asyncio", wrappers)


@contextmanager
def recording_primitives() -> Iterator[PrimitiveWrappers]:
    """Prepare the wrappers that make asyncio's primitives (and anyio's
    (:mod:`explorer._anyio_primitives`), if and when the scenario imports it) land in step
    footprints, for a session; the runtime installs them for the runs that record."""
    wrappers = PrimitiveWrappers()
    try:
        # anyio's table is loaded only once anyio itself is (at once if it is already):
        # most scenarios never import it, and their sessions need not pay for the table.
        when_imported("anyio", partial(_record_anyio, wrappers=wrappers), wrappers)
        yield wrappers
    finally:
        wrappers.close()
