"""Recording a traced run: one :class:`~explorer._trace.Step` per unit of work."""

from __future__ import annotations

import asyncio
from types import FrameType
from typing import TYPE_CHECKING, Any

from explorer._asyncio._inspect import (
    callback_name,
    coroutine_frames,
    handle_owner,
    waiting_on,
)
from explorer._asyncio._tracking import Holders
from explorer._faults import site_location
from explorer._locations import Attribution, attribute
from explorer._requests import RequestNames
from explorer._runtime import Candidate, Location, display_task
from explorer._trace import Step, Trace
from explorer._watchdog import RunTimeout

if TYPE_CHECKING:
    from explorer._asyncio._loop import ControlledLoop


class Tracer:
    """Wraps each handle run of a traced run and records what it did."""

    def __init__(self, loop: ControlledLoop) -> None:
        self.loop = loop
        self.trace = Trace()
        self.requests = RequestNames(self.trace.labels)
        self.holders = Holders()
        self._decision: tuple[int, int] | None = None
        self._preempted: tuple[str | None, Location | None] = (None, None)
        self._switch = False  # whether the decision just traced was a switch
        self._begin = _NOWHERE  # where the task of the step being run stood before it
        # Fault points met during the step being run: (task, line, option, decision, time).
        self._faults: list[tuple[str, Location | None, Candidate, tuple[int, int], float]] = []

    def scheduled_timer(self, timer: asyncio.TimerHandle) -> None:
        return None

    def decision(self, chosen: int, count: int, fires_timer: bool) -> None:
        self._switch = _is_switch(self.loop, chosen, count)
        # What the stock order would have run here: named only where we deviate from it.
        if chosen:
            stock = self.loop.candidate(0)
            who = _display(stock.task) if stock.task else stock.operation
            self._preempted = (who, stock.location)
        if fires_timer:
            who, where = self._preempted
            self._preempted = (None, None)
            self.trace.steps.append(Step(len(self.trace.steps), "clock", "timer", None, None,
                                         "fire timer", None, (chosen, count),
                                         self.loop.time(), None, who, where, self._switch))
            self._switch = False
            return
        self._decision = (chosen, count)

    def fault(self, option: Candidate, chosen: int, count: int) -> None:
        """A fault point (:mod:`explorer._faults`), taken or not, as a step of its own,
        named after the task whose step reached the site (``loop`` for a network
        callback) and its user line. Kept until the step it happens in is recorded and
        put right after it, so the trace's decisions stay in scheduling-point order."""
        loop = self.loop
        task = asyncio.current_task(loop)
        coro = task.get_coro() if task is not None else None
        where = site_location(getattr(coro, "cr_frame", None))
        who = _display(loop.task_id(task)) if task is not None else "loop"
        self._faults.append((who, where, option, (chosen, count), loop.time()))

    def _flush_faults(self) -> None:
        steps = self.trace.steps
        for who, where, option, decision, now in self._faults:
            steps.append(Step(len(steps), who, "fault", where, where, option.operation,
                              option.resource, decision, now))
        self._faults.clear()

    def run(self, handle: asyncio.Handle, step_no: int) -> None:
        task, kind = handle_owner(handle)
        decision, self._decision = self._decision, None
        preempted, preempted_at = self._preempted
        self._preempted = (None, None)
        self._begin = attribute(coroutine_frames(task)) if task is not None else _NOWHERE
        start = self._begin.location
        if kind == "start" and task is not None:
            self.requests.starting(_display(self.loop.task_id(task)), coroutine_frames(task))
        try:
            handle._run()
        finally:  # a step that raised out of the loop (SystemExit, a stopped hang) too
            self._record(handle, task, kind, start, decision, preempted, preempted_at)
            if self._faults:
                self._flush_faults()

    def _record(self, handle: asyncio.Handle, task: asyncio.Task[Any] | None, kind: str,
                start: Location | None, decision: tuple[int, int] | None,
                preempted: str | None, preempted_at: Location | None) -> None:
        loop = self.loop
        switch, self._switch = self._switch, False
        after = self._begin  # where a task that finished in this step last stood
        if task is None:
            self.trace.steps.append(Step(len(self.trace.steps), "loop", kind, None, None,
                                         callback_name(handle), None, decision, loop.time(),
                                         None, preempted, preempted_at, switch))
            return
        end = None
        op: str | None = None
        resource: str | None = None
        result: str | None = None
        frames: list[FrameType] = []
        if task.done():
            result = _result_of(task)
        else:
            frames = coroutine_frames(task)
            after = attribute(frames)
            end = after.location
            op, res = waiting_on(task)
            resource = loop.resource_name(res) if res is not None else None
        self.requests.observe(_display(loop.task_id(task)), frames)
        self.trace.steps.append(Step(len(self.trace.steps), _display(loop.task_id(task)),
                                     kind, start, end, op, resource, decision, loop.time(),
                                     result, preempted, preempted_at, switch,
                                     after.foreign, after.site, after.call))


_NOWHERE = Attribution(None)


def _is_switch(loop: ControlledLoop, chosen: int, count: int) -> bool:
    """Whether choosing candidate ``chosen`` moves away from the task that ran last while
    it was among the candidates (:meth:`explorer._runtime.PointView.current`)."""
    current = loop.current()
    if current is None:
        return False
    processes = [loop.process(k) for k in range(count)]
    return current in processes and processes[chosen] != current


def _result_of(task: asyncio.Task[Any]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task._exception  # type: ignore[attr-defined,unused-ignore]  # no retrieval side effect
    if isinstance(exc, RunTimeout):
        return "stopped by run_timeout"
    return f"raised {type(exc).__name__}" if exc is not None else "returned"


def _display(task_id: str) -> str:
    return display_task(task_id)
