"""The handles of the controlled loop's ready queue, and which of them are candidates.

Invariant enforced here: at a scheduling point the candidates are every task step and
wake-up (:class:`TaskHandle`), every network callback (:class:`IOHandle`) and the first
plain callback (asyncio's documented first-in first-out order among callbacks), except
that a handle *held* behind others (``_after``, see :class:`HeldHandle`) is no candidate
while one of those is still queued, and no plain callback queued after a held one is
either. What holds a handle was queued before it, so the head of the queue, what stock
asyncio runs next, is always a candidate.

The loop counts in ``_ncallbacks`` the plain callbacks queued, plus one for each handle
still held, so that it filters candidates whenever a handle is held, even when that is the
only callback queued: with its ready index (:mod:`explorer._asyncio._ready`), which picks
what the scan :func:`eligible_indices` picks without a pass over the queue per point.
"""

from __future__ import annotations

from asyncio import events
from collections.abc import Callable, Iterable, Sequence
from contextvars import Context
from itertools import islice
from typing import Any

from explorer._footprint import CANCELLED, record


class Handle(events.Handle):
    """A ready callback that tells its loop when it is cancelled, so candidates stay live.

    ``_cause`` is set only while footprints are recorded: the index of the step that
    scheduled the handle (unset for handles scheduled outside any recorded step).
    ``_described`` caches its description as a candidate
    (:func:`~explorer._asyncio._ready.described`), built at most once while it is queued.
    ``_seq`` is its number in queue order, given by the ready index that classified it
    (:class:`~explorer._asyncio._ready.ReadyIndex`).
    """

    __slots__ = ("_cause", "_described", "_seq")
    _seq: int
    # Slots of events.Handle that the typeshed stubs do not declare.
    _loop: Any
    _context: Context
    _callback: Callable[..., object]
    _args: tuple[Any, ...]
    _repr: str | None
    _source_traceback: Any

    def cancel(self) -> None:
        if not self._cancelled:
            self._loop._dirty = True
            # The cancelling step decides whether this callback runs at all (footprints).
            record(self, CANCELLED, "w")
        super().cancel()


class TaskHandle(Handle):
    """A task's step or wake-up: the unit whose timing varies with how long awaits take."""

    __slots__ = ()


class IOHandle(Handle):
    """A callback of the simulated network (a delivery, an accept): a candidate however
    many plain callbacks are queued, as readiness of different sockets arrives in any
    order on a real loop. ``_process`` names its connection and direction; ``_after``
    holds it as in :class:`HeldHandle`."""

    __slots__ = ("_after", "_process")
    _process: str
    _after: tuple[events.Handle, ...]

    def _run(self) -> None:
        release(self)
        super()._run()


class HeldHandle(Handle):
    """A plain callback that may run only once the handles in ``_after`` (queued before
    it) have left the queue: first in first out with the other plain callbacks, and held
    behind those, task steps included, which plain callbacks may otherwise overtake. The
    simulated network holds a connection's events behind the work its protocol's
    previous callback queued (``explorer._asyncio._network``)."""

    __slots__ = ("_after",)
    _after: tuple[events.Handle, ...]

    def _run(self) -> None:
        release(self)
        super()._run()


class TimerHandle(events.TimerHandle):
    """A timer that tells its loop when it is cancelled (it may already be in ``_ready``)."""

    __slots__ = ("_cause", "_described", "_seq")  # as in Handle
    _loop: Any
    _scheduled: bool

    def cancel(self) -> None:
        if not self._cancelled and not self._scheduled:
            # Expired: queued (or run) like any callback, so the ready queue is purged.
            # A timer still in the heap is not (the heap drops it when it reaches the
            # top): a purge scans every ready handle, and each exit of a timeout block
            # (asyncio.timeout, wait_for, anyio's deadlines) cancels a timer.
            self._loop._dirty = True
            record(self, CANCELLED, "w")
        super().cancel()


def release(handle: IOHandle | HeldHandle) -> None:
    """The hold of ``handle`` is over: it counts once in ``_ncallbacks`` again. Done when
    :func:`eligible_indices` finds what it waited for gone, or when it runs as the head
    of the queue (which it is only once all of that has left the queue)."""
    if handle._after:
        handle._after = ()
        handle._loop._ncallbacks -= 1


def eligible_indices(ready: Sequence[events.Handle]) -> list[int]:
    """Indices of the candidates among the ``ready`` handles (module docstring)."""
    # What the ready index must agree with, and the loop's fallback when it has none: kept
    # to type checks and C-level set operations per handle.
    eligible: list[int] = []
    append = eligible.append
    first_callback = True
    queued: set[int] | None = None  # ids of the queued handles, once a hold is seen
    handle: Any  # of the kinds above: told apart by exact type, as no subclass exists
    for index, handle in enumerate(ready):
        kind = type(handle)
        if kind is TaskHandle:
            append(index)
            continue
        network = kind is IOHandle
        if (network or kind is HeldHandle) and handle._after:
            if queued is None:
                queued = set(map(id, ready))
            if not queued.isdisjoint(map(id, handle._after)):
                first_callback = first_callback and network
                continue
            release(handle)
        if network:
            append(index)
        elif first_callback:
            append(index)
            first_callback = False
    return eligible


def count_callbacks(ready: Iterable[events.Handle]) -> int:
    """What the loop's ``_ncallbacks`` is for these queued handles (module docstring)."""
    return sum(2 if isinstance(handle, (IOHandle, HeldHandle)) and handle._after else 1
               for handle in ready if type(handle) is not TaskHandle)


def queued_since(ready: Iterable[events.Handle], mark: int) -> tuple[events.Handle, ...]:
    """The task steps and plain callbacks queued from position ``mark`` on, without the
    network callbacks (a running step only appends to the queue)."""
    return tuple(handle for handle in islice(ready, mark, None) if type(handle) is not IOHandle)


def count_special(ready: Iterable[events.Handle]) -> int:
    """How many network callbacks and held handles are queued: the loop indexes its
    candidates only while there is none (:mod:`explorer._asyncio._ready`)."""
    return sum(1 for handle in ready if type(handle) is IOHandle or type(handle) is HeldHandle)
