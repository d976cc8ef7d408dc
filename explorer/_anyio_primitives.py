"""anyio's own synchronisation primitives in step footprints, under either runtime.

Contract: while a session records footprints, every operation on an anyio object that keeps
its state in Python (rather than delegating to a primitive the runtime already records)
adds an access to the footprint of the step that runs it: a write for the operations that
can change that state (acquire, release, notify, wait, send, receive, clone, close, a
``total_tokens`` assignment), a read for the queries (``locked``, ``statistics``, ``value``,
the token counts). An awaitable operation is recorded in the step where it starts, and in
the step where it completes when that step can touch the state too: it writes it when the
operation ends in an exception (a cancelled waiter takes itself out of the queue, or hands
on what it was given), and reads it when a memory stream's operation returns (a woken
sender asks whether its item was taken). A waiter is woken by the step that handed it the
lock, permit or item, which the runtimes already order before the step that resumes it.
A memory stream's ``send`` and ``receive`` checkpoint before they touch anything, then
touch it through ``send_nowait`` / ``receive_nowait``, recorded themselves: the step where
they start is not recorded.

What is covered, for anyio 4 (tested with 4.16; a class a module lacks is skipped):

- under both runtimes: ``anyio.Condition`` (its waiters list is anyio's own), the memory
  object streams (both ends and their clones share one state object, which is what their
  accesses name), and ``anyio.Lock`` and ``anyio.Semaphore`` where anyio implements them
  for every backend (before 4.5);
- under asyncio only: ``anyio.Lock``, ``anyio.Semaphore`` and ``anyio.CapacityLimiter``,
  which anyio's asyncio backend implements itself. ``anyio.Event`` wraps an
  ``asyncio.Event`` there, and anyio's trio backend wraps trio's primitives (``Lock``,
  ``Semaphore``, ``CapacityLimiter``, ``Event``), which the runtimes record already.

Never imports anyio: each module's classes are wrapped when that module is imported, now or
halfway through a run (:func:`explorer._patching.when_imported`), and the session's
:class:`~explorer._patching.Patches` restores them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, Literal, NamedTuple

from explorer import _footprint
from explorer._patching import Patch, when_imported


class _Primitive(NamedTuple):
    """One anyio class: where it is defined, its operations, the object they touch, and
    what the step where an awaitable operation returns does to it (``None``: nothing).
    ``checkpoints_first``: its awaitable operations yield before they touch anything, and
    then only through its recorded ``*_nowait`` operations, so the step that starts one
    touches nothing."""

    module: str
    name: str
    operations: tuple[str, ...]
    target: Callable[[Any], object]
    returns: str | None = None
    checkpoints_first: bool = False


def _itself(obj: Any) -> object:
    return obj


def _stream_state(stream: Any) -> object:
    # Both ends of a memory object stream, and their clones, share this one object.
    return stream._state


_READS: Final = frozenset({"locked", "statistics", "value", "max_value", "total_tokens",
                           "borrowed_tokens", "available_tokens"})

_SYNCHRONIZATION: Final = "anyio._core._synchronization"
_MEMORY: Final = "anyio.streams.memory"
_ASYNCIO_BACKEND: Final = "anyio._backends._asyncio"

# Pure Python under every backend. Lock and Semaphore are only stubs here since anyio 4.5
# (each backend subclasses them, and no wrapped stub is ever called); before that they were
# implemented here, for both backends, with their own state.
_SHARED: Final = (
    _Primitive(_SYNCHRONIZATION, "Lock",
               ("acquire", "acquire_nowait", "release", "locked", "statistics"), _itself),
    _Primitive(_SYNCHRONIZATION, "Semaphore",
               ("acquire", "acquire_nowait", "release", "value", "statistics"), _itself),
    _Primitive(_SYNCHRONIZATION, "Condition",
               ("acquire", "acquire_nowait", "release", "locked", "notify", "notify_all",
                "wait", "wait_for", "statistics"), _itself),
    _Primitive(_MEMORY, "MemoryObjectSendStream",
               ("send", "send_nowait", "clone", "close", "aclose", "statistics"),
               _stream_state, "r", checkpoints_first=True),
    _Primitive(_MEMORY, "MemoryObjectReceiveStream",
               ("receive", "receive_nowait", "clone", "close", "aclose", "statistics"),
               _stream_state, "r", checkpoints_first=True),
)

# Pure Python in anyio's asyncio backend; its trio backend wraps trio's primitives instead.
_ASYNCIO_ONLY: Final = (
    _Primitive(_ASYNCIO_BACKEND, "Lock",
               ("acquire", "acquire_nowait", "release", "locked", "statistics"), _itself),
    _Primitive(_ASYNCIO_BACKEND, "Semaphore",
               ("acquire", "acquire_nowait", "release", "value", "statistics"), _itself),
    _Primitive(_ASYNCIO_BACKEND, "CapacityLimiter",
               ("acquire", "acquire_nowait", "acquire_on_behalf_of",
                "acquire_on_behalf_of_nowait", "release", "release_on_behalf_of",
                "total_tokens", "borrowed_tokens", "available_tokens", "statistics"),
               _itself),
)


def primitives(backend: Literal["asyncio", "trio"]) -> tuple[_Primitive, ...]:
    """The anyio classes recorded under ``backend`` (see the module docstring)."""
    return _SHARED + _ASYNCIO_ONLY if backend == "asyncio" else _SHARED


def recording_anyio(backend: Literal["asyncio", "trio"], patch: Patch) -> None:
    """Wrap anyio's primitives for ``backend`` through ``patch``, if and when imported."""
    by_module: dict[str, list[_Primitive]] = {}
    for primitive in primitives(backend):
        by_module.setdefault(primitive.module, []).append(primitive)
    for module, table in by_module.items():
        when_imported(module, functools.partial(_wrap_module, table=table, patch=patch),
                      patch)


def _wrap_module(module: ModuleType, *, table: list[_Primitive], patch: Patch) -> None:
    for primitive in table:
        cls = getattr(module, primitive.name, None)
        if not isinstance(cls, type):
            continue  # another anyio release: nothing of this name to record
        for name in primitive.operations:
            real = cls.__dict__.get(name)
            if real is None:
                continue
            mode = "r" if name in _READS else "w"
            patch(cls, name, _wrapped(real, mode, primitive))


def _wrapped(real: Any, mode: str, primitive: _Primitive) -> Any:
    if isinstance(real, property):  # a query; its setter (total_tokens) changes the object
        return property(_operation(real.fget, mode, primitive) if real.fget else None,
                        _operation(real.fset, "w", primitive) if real.fset else None,
                        real.fdel, real.__doc__)
    return _operation(real, mode, primitive)


def _operation(real: Callable[..., Any], mode: str,
               primitive: _Primitive) -> Callable[..., Any]:
    target = primitive.target
    if inspect.iscoroutinefunction(real):
        returns = primitive.returns
        starts = None if primitive.checkpoints_first else mode

        @functools.wraps(real)
        async def operation(self: Any, *args: Any, **kwargs: Any) -> Any:
            if starts is not None:
                _footprint.record(target(self), None, starts)
            # The rest is recorded in the step where the operation completes.
            try:
                result = await real(self, *args, **kwargs)
            except BaseException:
                _footprint.record(target(self), None, "w")
                raise
            if returns is not None:
                _footprint.record(target(self), None, returns)
            return result

        return operation

    return recorded_sync(real, mode, target)


def recorded_sync(real: Callable[..., Any], mode: str,
                  target: Callable[[Any], object]) -> Callable[..., Any]:
    """``real``, a method that cannot block, recording ``mode`` on ``target(self)`` in the
    step that calls it (both runtimes' primitive tables wrap their sync methods so)."""
    @functools.wraps(real)
    def sync_operation(self: Any, *args: Any, **kwargs: Any) -> Any:
        _footprint.record(target(self), None, mode)
        return real(self, *args, **kwargs)

    return sync_operation
