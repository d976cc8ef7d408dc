"""What :meth:`ControlledLoop.drive <explorer._asyncio._loop.ControlledLoop.drive>` tells
about a run's steps beyond running them: the readable trace's interface
(:class:`StepTracer`) and a cheap hash of every step, for the determinism check
(:class:`StepHasher`).

Invariant: two runs of the same schedule that stop their tasks at the same places, in the
same order, with the same decisions, have the same :attr:`StepHasher.value`; a run that
differs in which task a step ran or in any place (line, or await on a line) its task
stopped at has, but for hash collisions, another. The candidate counts at the points are
not in the step hash: they are in the run's fingerprint, which the check compares too
(:func:`explorer._determinism.same_run`). It reads the await chain of the task that ran
after each step (every frame of it, as a readable trace reads them, without naming or
rendering anything), inline in ``drive``'s loop, so a hashed run costs a fraction of a
traced one; it is made only for the determinism check (a checked run of the exploration
and its replay, :mod:`explorer._determinism`), never for the other runs.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

from explorer._locations import chain_offsets
from explorer._runtime import Candidate

_MASK: Final = 0xFFFFFFFFFFFFFFF
_FOLD: Final = 1 << 14  # items kept before they are hashed


class StepTracer(Protocol):
    """What :meth:`ControlledLoop.drive` tells a readable trace's recorder (the traced
    runtime's ``Tracer``): each decision, each step to run (the tracer runs it), and each
    timer scheduled."""

    def decision(self, chosen: int, count: int, fires_timer: bool) -> None: ...

    def run(self, handle: asyncio.Handle, step_no: int) -> None: ...

    def scheduled_timer(self, timer: asyncio.TimerHandle) -> None: ...

    def fault(self, option: Candidate, chosen: int, count: int) -> None: ...


class _NoLoop:
    """Enough of a loop to make a future (``Future.__init__`` asks only ``get_debug``)."""

    def get_debug(self) -> bool:
        return False


def _future_iter_type() -> type:
    try:
        future: asyncio.Future[None] = asyncio.Future(loop=_NoLoop())  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a Future asking more of its loop: no fast path
        return _NoLoop  # never a link of an await chain
    return type(future.__await__())


# What ``await future`` leaves at the end of an await chain (C futures and tasks): a link
# without a frame, recognised by its type rather than by three failed attribute lookups.
_FUTURE_ITER: Final = _future_iter_type()


class StepHasher:
    """What a hashed run records. ``drive`` runs each step itself, then appends what it
    shows to :attr:`seen` inline: ``"loop"`` after a plain callback, :meth:`task_step`
    after a task step, ``-1 - chosen`` at each decision (negative: no two sequences of
    steps read alike). The list is folded into the hash every :data:`_FOLD` entries and
    when :attr:`value` is read: an append per item costs far less than hashing per item.
    Also the loop's tracer while driving (``ControlledLoop._tracer``), for the fault
    points met inside steps."""

    __slots__ = ("_folded", "seen")

    def __init__(self) -> None:
        self._folded = 0
        # Task ids and "loop" (str), the code offsets an await chain stopped at (int >= 0),
        # decisions and fault points (negative ints and "fault").
        self.seen: list[str | int | None] = []

    @property
    def value(self) -> int:
        self._fold()
        return self._folded

    def _fold(self) -> None:
        self._folded = hash((self._folded, tuple(self.seen))) & _MASK
        self.seen.clear()

    def task_step(self, task: Any) -> None:
        """After a step of ``task``: its id, then where its await chain stopped, outermost
        first (nothing once it is done): each frame's instruction offset, not its line:
        the same at the same await, read without decoding the line table, and two awaits
        on one line differ (:func:`~explorer._locations.chain_offsets`)."""
        seen = self.seen
        append = seen.append
        try:
            append(task._explorer_id)
        except AttributeError:  # a task made by calling asyncio.Task (aiohttp does)
            append(None)
        chain_offsets(append, task.get_coro(), _FUTURE_ITER)
        if len(seen) > _FOLD:
            self._fold()

    def scheduled_timer(self, timer: asyncio.TimerHandle) -> None:
        return None  # what a timer does is hashed when it runs

    def fault(self, option: Candidate, chosen: int, count: int) -> None:
        # Unlike a point's, a fault point's option count is in no fingerprint: hashed here.
        seen = self.seen
        seen.append("fault")
        seen.append(-1 - chosen)
        seen.append(-1 - count)
