"""A cheap hash of every step of a run, for the determinism check.

Invariant: two runs of the same schedule that stop their tasks at the same places, in the
same order, with the same decisions, have the same :attr:`StepHasher.value`; a run that
differs in which task a step ran or in any line its task stopped at has, but for hash
collisions, another. It walks the await chain of the task that ran after each step (the
frames a readable trace reads, without naming or rendering anything), so a hashed run
costs a fraction of a traced one; it is made only for the replays of
:mod:`explorer._determinism`, never while exploring.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from explorer._asyncio._handles import TaskHandle
from explorer._asyncio._inspect import coroutine_frames
from explorer._runtime import Candidate

_MASK: Final = 0xFFFFFFFFFFFFFFF


class StepHasher:
    """The StepTracer a hashed run drives with (``ControlledLoop.drive``)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def decision(self, chosen: int, count: int, fires_timer: bool) -> None:
        self.value = hash((self.value, chosen, count)) & _MASK

    def run(self, handle: asyncio.Handle, step_no: int) -> None:
        handle._run()
        if type(handle) is not TaskHandle:
            self.value = hash((self.value, "loop")) & _MASK
            return
        task = handle._callback.__self__  # type: ignore[attr-defined]
        self.value = hash((self.value, getattr(task, "_explorer_id", None),
                           _stopped_at(task))) & _MASK

    def scheduled_timer(self, timer: asyncio.TimerHandle) -> None:
        return None  # what a timer does is hashed when it runs

    def fault(self, option: Candidate, chosen: int, count: int) -> None:
        self.value = hash((self.value, "fault", chosen, count)) & _MASK


def _stopped_at(task: Any) -> tuple[int, ...]:
    """The lines a task's await chain stopped at, outermost first (empty once done)."""
    return tuple(frame.f_lineno for frame in coroutine_frames(task))
