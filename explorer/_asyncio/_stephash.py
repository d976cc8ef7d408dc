"""A cheap hash of every step of a run, for the determinism check.

Invariant: two runs of the same schedule that stop their tasks at the same places, in the
same order, with the same decisions, have the same :attr:`StepHasher.value`; a run that
differs in which task a step ran or in any place (line, or await on a line) its task
stopped at has, but for hash collisions, another. It walks the await chain of the task
that ran after each step (the frames a readable trace reads, without naming or rendering
anything), so a hashed run costs a fraction of a traced one; it is made only for the
determinism check (a checked run of the exploration and its replay,
:mod:`explorer._determinism`), never for the other runs.
"""

from __future__ import annotations

import asyncio
from types import CoroutineType, GeneratorType
from typing import Any, Final

from explorer._asyncio._handles import TaskHandle
from explorer._runtime import Candidate

_MASK: Final = 0xFFFFFFFFFFFFFFF
_DEPTH: Final = 200  # links of an await chain walked at most, as coroutine_frames
_FOLD: Final = 1 << 14  # items kept before they are hashed


class StepHasher:
    """The StepTracer a hashed run drives with (``ControlledLoop.drive``). What each step
    shows is appended to a list, which is folded into the hash every :data:`_FOLD`
    entries and when :attr:`value` is read: an append per item costs far less than
    hashing per item."""

    __slots__ = ("_folded", "_seen")

    def __init__(self) -> None:
        self._folded = 0
        # Task ids and "loop" (str), then the code offsets its await chain stopped at
        # (int >= 0); decisions as negative ints: no two sequences of steps read alike.
        self._seen: list[str | int | None] = []

    @property
    def value(self) -> int:
        self._fold()
        return self._folded

    def _fold(self) -> None:
        self._folded = hash((self._folded, tuple(self._seen))) & _MASK
        self._seen.clear()

    def decision(self, chosen: int, count: int, fires_timer: bool) -> None:
        seen = self._seen
        seen.append(-1 - chosen)
        seen.append(-1 - count)

    def run(self, handle: asyncio.Handle, step_no: int) -> None:
        seen = self._seen
        if type(handle) is not TaskHandle:
            handle._run()
            seen.append("loop")
        else:
            # Handle._run without its frame, as the untraced loop runs a task step.
            handle._context.run(handle._callback, *handle._args)
            task = handle._callback.__self__  # type: ignore[attr-defined]
            seen.append(getattr(task, "_explorer_id", None))
            # Where its await chain stopped, outermost first (nothing once it is done):
            # the walk of _inspect.coroutine_frames without building its list. The
            # instruction offset, not the line: the same at the same await, read without
            # decoding the line table, and two awaits on one line differ.
            link: Any = task.get_coro()
            depth = 0
            while link is not None and depth < _DEPTH:
                kind = type(link)
                if kind is CoroutineType:
                    frame, link = link.cr_frame, link.cr_await
                elif kind is GeneratorType:
                    frame, link = link.gi_frame, link.gi_yieldfrom
                else:
                    frame, link = _other_link(link)
                if frame is None:
                    break
                seen.append(frame.f_lasti)
                depth += 1
        if len(seen) > _FOLD:
            self._fold()

    def scheduled_timer(self, timer: asyncio.TimerHandle) -> None:
        return None  # what a timer does is hashed when it runs

    def fault(self, option: Candidate, chosen: int, count: int) -> None:
        seen = self._seen
        seen.append("fault")
        seen.append(-1 - chosen)
        seen.append(-1 - count)


def _other_link(obj: Any) -> tuple[Any, Any]:
    """The frame of a less common link of an await chain (an async generator, a
    coroutine-like object) and the object it awaits, as ``coroutine_frames`` reads them."""
    frame = (getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
             or getattr(obj, "ag_frame", None))
    following = (getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
                 or getattr(obj, "ag_await", None))
    return frame, following
