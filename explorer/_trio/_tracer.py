"""Recording a traced trio run: one :class:`~explorer._trace.Step` per task step.

The scheduler calls :meth:`TrioTracer.start_step` when it hands a task to trio and
:meth:`TrioTracer.finish_step` at the next pass of trio's loop (or when the run ends),
when the task has reached its next checkpoint or finished.
"""

from __future__ import annotations

from types import FrameType
from typing import Any, Protocol

from trio._core._run import GLOBAL_RUN_CONTEXT
from trio.lowlevel import Task

from explorer._faults import site_location
from explorer._locations import Attribution, attribute
from explorer._requests import RequestNames
from explorer._runtime import Candidate, Location, display_task
from explorer._trace import Step, Trace
from explorer._trio._clock import VirtualClock
from explorer._trio._inspect import Names, await_frames, waiting_on


class SchedulerView(Protocol):
    """What the tracer reads of the run's scheduler (``explorer._trio._scheduler``)."""

    @property
    def items(self) -> list[Task]: ...

    @property
    def woken(self) -> dict[Task, str] | None: ...

    @property
    def clock(self) -> VirtualClock: ...

    @property
    def runner(self) -> Any: ...

    def candidate(self, index: int) -> Candidate: ...

    def describe(self, task: Task) -> Candidate: ...


class TrioTracer:
    """Builds the trace of one run from the scheduler's start/finish calls."""

    def __init__(self, scheduler: SchedulerView, names: Names) -> None:
        self.scheduler = scheduler
        self.names = names
        self.trace = Trace()
        self.requests = RequestNames(self.trace.labels)
        # The task of the latest step (a switch moves away from it while it is ready),
        # whether the open step's decision was a switch, and where its task stood.
        self._previous: Task | None = None
        self._switch = False
        self._begin = Attribution(None)
        self._open: tuple[Task, str, Location | None, tuple[int, int] | None,
                          str | None, Location | None, int] | None = None
        # Fault points met during the open step: (task, line, option, decision, time).
        self._faults: list[tuple[str, Location | None, Candidate, tuple[int, int], float]] = []

    def _preempted(self, decision: tuple[int, int] | None) -> tuple[str | None,
                                                                      Location | None]:
        if decision is None or decision[0] == 0:
            return None, None
        stock = self.scheduler.candidate(0)
        who = display_task(stock.task, stock.kind) if stock.task else stock.operation
        return who, stock.location

    def start_step(self, task: Task, decision: tuple[int, int] | None) -> None:
        woken = self.scheduler.woken
        kind = "start" if not task._schedule_points else \
            (woken.pop(task, "step") if woken is not None else "step")
        # The stock choice was the head of the queue before this task was taken out.
        who, where = self._preempted_before(task, decision)
        previous, self._previous = self._previous, task
        self._switch = decision is not None and previous is not None and \
            previous is not task and previous in self.scheduler.items
        self._begin = attribute(await_frames(task))
        self._open = (task, kind, self._begin.location, decision, who, where,
                      _pending_errors(task))

    def _preempted_before(self, task: Task, decision: tuple[int, int] | None
                          ) -> tuple[str | None, Location | None]:
        if decision is None or decision[0] == 0 or decision[0] >= decision[1]:
            return None, None
        head = self.scheduler.items[0] if self.scheduler.items else None
        if head is None or head is task:
            return None, None
        stock = self.scheduler.describe(head)
        return display_task(stock.task, stock.kind), stock.location

    def timer_fired(self, decision: tuple[int, int] | None) -> None:
        who, where = self._preempted(decision)
        previous = self._previous  # firing the clock while it could continue: a switch
        switch = decision is not None and previous is not None and \
            previous in self.scheduler.items
        self.trace.steps.append(Step(len(self.trace.steps), "clock", "timer", None, None,
                                     "fire timer", None, decision,
                                     self.scheduler.clock.now, None, who, where, switch))

    def fault(self, option: Candidate, chosen: int, count: int) -> None:
        """A fault point (:mod:`explorer._faults`), taken or not, as a step of its own,
        named after the running task and the user line that reached the site. Kept until
        the step it happens in is recorded and put right after it, so the trace's
        decisions stay in scheduling-point order."""
        task = getattr(GLOBAL_RUN_CONTEXT, "task", None)
        where = site_location(task.coro.cr_frame if task is not None else None)
        who = display_task(self.names.task_id(task)) if task is not None else "loop"
        self._faults.append((who, where, option, (chosen, count), self.scheduler.clock.now))
        if self._open is None:
            self._flush_faults()

    def _flush_faults(self) -> None:
        steps = self.trace.steps
        for who, where, option, decision, now in self._faults:
            steps.append(Step(len(steps), who, "fault", where, where, option.operation,
                              option.resource, decision, now))
        self._faults.clear()

    def finish_step(self) -> None:
        opened, self._open = self._open, None
        if opened is None:
            return
        task, kind, start, decision, who, where, errors_before = opened
        after = self._begin  # where a task that finished in this step last stood
        end: Location | None = None
        op: str | None = None
        resource: str | None = None
        result: str | None = None
        frames: list[FrameType] = []
        if task.coro.cr_frame is None:
            result = _result(task, errors_before, self.scheduler.runner)
        else:
            frames = await_frames(task)
            after = attribute(frames)
            end = after.location
            op, res = waiting_on(task)
            resource = self.names.resource(res) if res is not None else None
        self.requests.observe(display_task(self.names.task_id(task)), frames)
        self.trace.steps.append(Step(len(self.trace.steps),
                                     display_task(self.names.task_id(task)), kind, start,
                                     end, op, resource, decision, self.scheduler.clock.now,
                                     result, who, where, self._switch,
                                     after.foreign, after.site, after.call))
        if self._faults:
            self._flush_faults()


def _pending_errors(task: Task) -> int:
    nursery = task.parent_nursery
    return len(getattr(nursery, "_pending_excs", ())) if nursery is not None else 0


def _result(task: Task, errors_before: int, runner: Any) -> str:
    """How a finished task ended: its nursery collected an error, or it returned."""
    error: BaseException | None = None
    if task is runner.main_task:
        error = getattr(runner.main_task_outcome, "error", None)
    else:
        nursery = task.parent_nursery
        pending = getattr(nursery, "_pending_excs", [])
        if len(pending) > errors_before:
            error = pending[-1]
    if error is None:
        return "returned"
    import trio

    return "cancelled" if isinstance(error, trio.Cancelled) else \
        f"raised {type(error).__name__}"
