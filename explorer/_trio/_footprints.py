"""Step footprints under trio, for partial-order reduction (the ``dpor`` strategy).

While a reduction strategy explores a trio scenario, the scheduler records one
``StepRecord`` per step (see :mod:`explorer._footprint` for the format): the
task's id, what the step touched, the step that made the task runnable, and the scheduling
point the step was chosen at. What a step touched:

- *conservative* (the default): a task step may touch anything (``UNKNOWN``);
- *declared*: trio's primitives, wrapped for the session by :func:`recording_primitives`
  (each operation on a ``Lock``, ``StrictFIFOLock``, ``Semaphore``, ``CapacityLimiter``,
  ``Event``, ``Condition``, memory channel or ``ParkingLot`` writes, or for
  ``Event.wait``/``is_set`` and the queries ``locked``, ``value``, ``statistics``, ...
  reads, that object in the step where it starts), anyio's primitives that keep their own
  state (``anyio.Condition``, memory object streams; :mod:`explorer._anyio_primitives`),
  state declared with :func:`explorer.shared`, and cancellation:
  every task step reads it, and a step that cancels a scope writes it, because a
  cancellation can be delivered at any checkpoint of any task;
- *auto* (Python 3.12+): the declared model, plus what task code itself reads and writes,
  recorded by :mod:`explorer._monitoring` (the runner starts it per run); trio's own code
  is trusted there, its effects being the ones recorded here.

System task steps count as touching anything, except trio's init task, which only opens
and closes the run's root nurseries.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import trio
import trio.lowlevel

from explorer import _footprint
from explorer._anyio_primitives import recorded_sync, recording_anyio
from explorer._patching import Patches

_READS: Final = frozenset({"wait", "is_set", "locked", "statistics", "value", "total_tokens",
                           "borrowed_tokens", "available_tokens", "__len__", "__bool__"})


class _Cancellation:
    """The pseudo-object cancellation accesses are recorded on."""

    def __repr__(self) -> str:
        return "cancellation"


CANCELLATION: Final = _Cancellation()
CANCEL_READ: Final[_footprint.Access] = (id(CANCELLATION), None, "r")


def _targets() -> list[tuple[type, tuple[str, ...], Callable[[Any], object]]]:
    """The primitive classes, their operations, and the object an operation touches."""
    from trio._channel import MemoryReceiveChannel, MemorySendChannel

    def itself(obj: Any) -> object:
        return obj

    def channel_state(channel: Any) -> object:
        return getattr(channel, "_state", channel)

    # The queries (locked, value, statistics, ...) are reads: trio's code runs unwatched
    # (trusted) under automatic footprints, so what it reads is recorded here.
    return [
        (trio.Lock, ("acquire", "acquire_nowait", "release", "locked", "statistics"),
         itself),
        (trio.StrictFIFOLock, ("acquire", "acquire_nowait", "release", "locked",
                               "statistics"), itself),
        (trio.Semaphore, ("acquire", "acquire_nowait", "release", "value", "statistics"),
         itself),
        (trio.CapacityLimiter, ("acquire", "acquire_nowait", "acquire_on_behalf_of",
                                "acquire_on_behalf_of_nowait", "release",
                                "release_on_behalf_of", "total_tokens", "borrowed_tokens",
                                "available_tokens", "statistics"), itself),
        (trio.Event, ("set", "wait", "is_set", "statistics"), itself),
        (trio.Condition, ("acquire", "acquire_nowait", "release", "wait", "notify",
                          "notify_all", "locked", "statistics"), itself),
        (MemorySendChannel, ("send", "send_nowait", "close", "aclose", "clone",
                             "statistics"), channel_state),
        (MemoryReceiveChannel, ("receive", "receive_nowait", "close", "aclose", "clone",
                                "statistics"), channel_state),
        (trio.lowlevel.ParkingLot, ("park", "unpark", "unpark_all", "repark",
                                    "repark_all", "__len__", "__bool__", "statistics"),
         itself),
    ]


def _defining(cls: type, name: str) -> type:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass
    raise AttributeError(f"{cls.__name__}.{name}")


def _wrapped(real: Callable[..., Any], mode: str,
             target: Callable[[Any], object]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(real):
        @functools.wraps(real)
        async def operation(self: Any, *args: Any, **kwargs: Any) -> Any:
            # Only the step where the operation starts touches the object. If it blocks,
            # whatever completes it (a release, a set, a send, a cancellation) does so
            # in another task's step, which reschedules this task: that step happens
            # before the one that resumes here, so the order is already known.
            _footprint.record(target(self), None, mode)
            return await real(self, *args, **kwargs)

        return operation

    return recorded_sync(real, mode, target)


def _cancelling(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def cancel(self: Any, *args: Any, **kwargs: Any) -> Any:
        _footprint.record(CANCELLATION, None, "w")
        return real(self, *args, **kwargs)

    return cancel


@contextmanager
def recording_primitives() -> Iterator[None]:
    """Wrap trio's primitives for the session so each operation is recorded, and anyio's
    own (:mod:`explorer._anyio_primitives`) if and when the scenario imports it."""
    saved: list[tuple[type, str, Any]] = []
    done: set[tuple[type, str]] = set()
    anyio_patches = Patches()
    try:
        recording_anyio("trio", anyio_patches)
        for cls, names, target in _targets():
            for name in names:
                owner = _defining(cls, name)
                if (owner, name) in done:
                    continue
                done.add((owner, name))
                real = owner.__dict__[name]
                mode = "r" if name in _READS else "w"
                saved.append((owner, name, real))
                if isinstance(real, property):  # a query; a setter changes the object
                    setattr(owner, name, property(
                        _wrapped(real.fget, mode, target) if real.fget else None,
                        _wrapped(real.fset, "w", target) if real.fset else None,
                        real.fdel, real.__doc__))
                else:
                    setattr(owner, name, _wrapped(real, mode, target))
        # Every cancellation goes through CancelScope._cancel in the trio releases that
        # have it (it carries the reason), else through CancelScope.cancel.
        scope = trio.CancelScope
        name = "_cancel" if "_cancel" in scope.__dict__ else "cancel"
        real_cancel = scope.__dict__[name]
        saved.append((scope, name, real_cancel))
        setattr(scope, name, _cancelling(real_cancel))
        yield
    finally:
        anyio_patches.restore()
        for owner, name, real in reversed(saved):
            setattr(owner, name, real)
