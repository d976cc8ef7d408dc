"""The controlled run queue: one task per pass of trio's run loop, chosen by the strategy.

On every pass, trio's run loop takes ``batch = list(runner.runq)``, calls
``runner.runq.clear()`` and runs one step of each task in the batch. :class:`Scheduler`
stands in for ``Runner.runq``: iterating it makes one scheduling decision and yields only
the chosen task, which it removes; ``clear`` does nothing, so every other runnable task
waits for the next pass. Each pass therefore runs exactly one task step, from one
checkpoint to the next, in the order the chooser picks.

Candidate order is the order in which tasks became runnable, except that the tasks made
runnable by one step (or by one deadline expiry) are ordered by creation among themselves.
trio wakes several tasks at once by iterating sets of tasks and cancel scopes, whose order
follows memory addresses; ordering each such group by creation keeps the candidate list,
and so the meaning of a schedule, identical in every run.

System tasks (trio's init and entry-queue tasks, and anything spawned with
``trio.lowlevel.spawn_system_task``) are never candidates: a runnable system task runs
first, without a decision.

Fairness, as in the asyncio loop (see :mod:`explorer._asyncio._loop`): candidate 0, the
task runnable longest, is passed over at most :data:`~explorer._runtime.STARVATION_BOUND`
points in a row, and a run is stopped as a livelock only after ``max_steps`` steps in
stock order following its last deviation (a run that reaches ``max_steps`` sooner goes on
with every point forced to candidate 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final

from trio._core._run import GLOBAL_RUN_CONTEXT

from explorer import _footprint
from explorer._classify import BrokenInvariant, Invariant, broken_invariant
from explorer._faults import OptionsView
from explorer._footprint import UNKNOWN, StepRecord
from explorer._locations import chain_offsets, library_call
from explorer._network import Network
from explorer._runtime import (
    STARVATION_BOUND,
    Candidate,
    Chooser,
    LibraryCall,
    Location,
    RunMode,
    RunStatus,
)
from explorer._trio._footprints import CANCEL_READ
from explorer._trio._inspect import Names, await_frames, describe_task
from explorer._trio._tracer import TrioTracer

if TYPE_CHECKING:
    from trio.lowlevel import Task

    from explorer._trio._clock import VirtualClock

# Run statuses as module globals: compared once per pick, where an attribute of the enum
# class would be one more lookup.
RUNNING: Final = RunStatus.RUNNING
DONE: Final = RunStatus.DONE
DEADLOCK: Final = RunStatus.DEADLOCK
STEP_BOUND: Final = RunStatus.STEP_BOUND
ABORTED: Final = RunStatus.ABORTED

CLEANUP_STEPS: Final = 10_000

_EMPTY: Final[tuple[()]] = ()
_TIMER: Final = Candidate(None, "timer", None, "fire timer", None)


def _creation(task: Task) -> int:
    return task._counter


def _stands_at(coro: Any) -> tuple[int, ...]:
    """Where a task's await chain stands, outermost first: what a hashed run
    (RunMode.hashed) mixes into its step hash, instead of tracing the step (each frame's
    instruction offset: :func:`~explorer._locations.chain_offsets`)."""
    offsets: list[int] = []
    chain_offsets(offsets.append, coro)
    return tuple(offsets)


class Scheduler:
    """trio's run queue during a controlled run; also the chooser's view of candidates,
    and the run's sink for ``explorer.always`` invariants.

    It is built for one run from its :class:`~explorer._runtime.RunMode`, with the run's
    task names and trio ``Runner`` (whose ``runq`` the caller then replaces with it)."""

    __slots__ = (
        "bound",
        "causes",
        "chooser",
        "cleanup",
        "cleanup_steps",
        "clock",
        "conservative",
        "count",
        "decisions",
        "described",
        "descs",
        "deviated",
        "error",
        "escapes",
        "faults",
        "hard_stop",
        "ids",
        "invariant_failure",
        "invariants",
        "items",
        "last",
        "limit",
        "max_steps",
        "names",
        "network",
        "oldest",
        "passed",
        "points",
        "records",
        "runner",
        "running",
        "slow",
        "stable",
        "status",
        "step_hash",
        "steps",
        "still_running",
        "system",
        "timer_races",
        "tracer",
        "woken",
    )

    def __init__(self, chooser: Chooser, mode: RunMode, clock: VirtualClock, names: Names,
                 runner: Any) -> None:
        self.items: list[Task] = []
        self.system: list[Task] = []
        self.last: Task | None = None  # the task of the latest step (PointView.current)
        self.stable = 0
        self.chooser = chooser
        self.decisions: list[int] = []
        self.steps = 0
        self.points = 0
        self.count = 0  # candidates at the latest pick (the traced path reads it)
        self.max_steps = mode.max_steps
        # Fairness (module docstring): the head at the latest point, at how many points
        # in a row it was passed over, how many it may be, the step count at the latest
        # deviation, and the step bound now in force.
        self.oldest: Task | None = None
        self.passed = 0
        self.bound = STARVATION_BOUND
        self.deviated = -1
        self.limit = mode.max_steps
        self.timer_races = mode.timer_races
        self.faults = mode.faults  # the fault kinds decide() may be asked about
        self.clock = clock
        self.names = names
        self.runner = runner
        self.status = RUNNING
        self.cleanup = False
        self.cleanup_steps = 0
        self.hard_stop = False
        self.error: BaseException | None = None
        self.invariants: list[Invariant] = []
        self.invariant_failure: BrokenInvariant | None = None
        self.still_running: list[Task] = []
        self.escapes: list[BaseException] = []
        # The run's simulated network (addresses and listeners; explorer.alias reaches
        # it through the active-run hook), served by explorer._trio._network.
        self.network: Network[Any] = Network()
        # Footprint recording (partial-order reduction): step records, the step that made
        # each queued task runnable, the step running now, and whether a task's own code
        # counts as touching anything (unless its footprints are declared).
        self.records: list[StepRecord] | None = [] if mode.recording else None
        self.causes: dict[Task, int | None] = {}
        self.running: int | None = None
        self.conservative = mode.footprints != "declared"
        # Traced: the trace's recorder, and whether each queued task yielded or was woken.
        self.tracer = TrioTracer(self, names) if mode.traced else None
        self.woken: dict[Task, str] | None = {} if mode.traced else None
        # The slow pick (_pick_slow): tracing, recording footprints, invariants, cleanup.
        # A hashed run (the determinism check) hashes every pick: which task, and where
        # it stands (step_hash); a run that is traced or recorded is not hashed.
        self.step_hash: int | None = (0 if mode.hashed and not mode.traced
                                      and not mode.recording else None)
        self.slow = mode.traced or mode.recording or self.step_hash is not None
        # Descriptions of queued tasks, each built once while it waits (candidate()).
        self.described: dict[Task, Candidate] = {}
        # What the view gave for the first candidates, kept beside them while they wait
        # (processes(), candidates()): the ids of items[:len(ids)], the descriptions of
        # items[:len(descs)]. The queued tasks keep their order but for the one taken
        # and the new ones (the tail, sorted at the next pick): a point's lists are
        # copies, and only the tasks queued since the last point are named or described.
        self.ids: list[str] = []
        self.descs: list[Candidate] = []

    def describe(self, task: Task) -> Candidate:
        """The :class:`Candidate` for a runnable task."""
        return describe_task(task, self.names)

    def add_invariant(self, predicate: Callable[[], object], message: str,
                      where: Location | None) -> None:
        """InvariantSink: check ``predicate`` before every pick (and after the last step)
        from now on in this run."""
        self.invariants.append((predicate, message, where))
        self.slow = True

    def decide(self, options: Sequence[Candidate]) -> int:
        """A controlled choice made inside the running task's step, among ``options``
        (option 0 is what trio itself does): the chooser picks, and the pick is one of
        the run's decisions like any scheduling point (replayed, counted as a deviation
        when non-zero, shrunk). 0 without a decision for fewer than two options or once
        the run is stopping. A failing chooser stops the run, as at a pick, instead of
        raising into the scenario's code."""
        count = len(options)
        if count < 2 or self.cleanup or self.bound == 0:  # stopping, or forced (fairness)
            return 0
        self.points += 1
        try:
            index = self.chooser(count, OptionsView(options))
        except BaseException as exc:  # noqa: BLE001 - re-raised once the run unwound
            self.error = exc
            self.stop(ABORTED)
            return 0
        self.decisions.append(index)
        if index:
            self.deviated = self.steps - 1
        if self.tracer is not None:  # every fault point is a step of the trace, as in asyncio
            self.tracer.fault(options[index], index, count)
        return index

    def halt(self) -> None:
        """After a hang (called from the watchdog's thread): once the step bound is
        reached, stop the run at once instead of granting ``max_steps`` more steps in
        stock order. A plain store, which the run's thread reads at its next pick."""
        self.max_steps = -1

    # ------------------------------------------------------------ the deque trio sees

    def append(self, task: Task) -> None:
        if self.records is not None:
            self.causes[task] = self.running
        if task._ki_protected:  # a system task
            self.system.append(task)
            return
        self.items.append(task)
        woken = self.woken
        if woken is not None:  # traced: remember whether the task yielded or was woken
            running = getattr(GLOBAL_RUN_CONTEXT, "task", None)
            woken[task] = "step" if running is task else "wakeup"

    def __len__(self) -> int:
        return len(self.items) + len(self.system)

    def __bool__(self) -> bool:
        return bool(self.items) or bool(self.system)

    def clear(self) -> None:
        """trio clears the queue after taking its batch; the chosen task is gone already."""

    def __iter__(self) -> Iterator[Task]:
        if self.system:
            system = self.system.pop(0)
            if self.records is not None and not self.cleanup:
                self._system_step(system)
            return iter((system,))
        items = self.items
        if not items:
            return iter(_EMPTY)
        task = self._pick_slow(items) if self.slow else self._pick(items)
        return iter(_EMPTY) if task is None else iter((task,))

    # ------------------------------------------------------------ decisions

    def _pick(self, items: list[Task]) -> Task | None:
        self.steps += 1
        if self.steps > self.limit:
            # Fairness: the verdict needs max_steps steps in stock order after the last
            # deviation, so from here on every point is forced.
            self.bound = 0
            self.limit = self.deviated + 1 + self.max_steps
            if self.steps > self.limit:
                self.stop(STEP_BOUND)
                return items.pop(0)
        n = len(items)
        if n - self.stable > 1:
            items[self.stable:] = sorted(items[self.stable:], key=_creation)
            del self.ids[self.stable:], self.descs[self.stable:]  # kept up to the new tail
        count = self.count = n + 1 if self.timer_races and self._timer_pending() else n
        index = 0
        if count > 1:
            # Fairness: the head (candidate 0) may be passed over at `bound` points in a
            # row; then it runs, undecided.
            if items[0] is self.oldest:
                self.passed += 1
            else:
                self.oldest = items[0]
                self.passed = 0
            if self.passed >= self.bound:
                count = self.count = 1
        if count > 1:
            self.points += 1
            try:
                index = self.chooser(count, self)
            except BaseException as exc:  # noqa: BLE001 - re-raised once the run unwound
                self.error = exc
                self.stop(ABORTED)
                return items.pop(0)
            self.decisions.append(index)
            if index:
                self.deviated = self.steps - 1
            if index == n:
                self.stable = n
                self.clock.advance_to(self.runner.deadlines.next_deadline())
                return None
        self.stable = n - 1
        if not index:  # a task is queued again later: its next wait counts afresh
            self.oldest = None
        task = self.last = items.pop(index)
        # The lists kept beside the queue lose it too. (Other picks pop the head once the
        # run is stopping, when no strategy reads the view.)
        if index < len(self.ids):
            del self.ids[index]
        if index < len(self.descs):
            del self.descs[index]
        if self.described:  # it runs: what it waits on changes
            self.described.pop(task, None)
        return task

    def _pick_slow(self, items: list[Task]) -> Task | None:
        """The same decision, plus tracing, invariants, or the cleanup after a stop."""
        if self.cleanup:
            self.cleanup_steps += 1
            if self.cleanup_steps > CLEANUP_STEPS:
                self.hard_stop = True
            return items.pop(0)
        tracer = self.tracer
        if tracer is not None:
            tracer.finish_step()
        if self.invariants and not self.invariants_hold():
            self.stop(ABORTED)
            return items.pop(0)
        before = len(self.decisions)
        task = self._pick(items)
        if self.step_hash is not None and not self.cleanup:
            self.step_hash = hash((self.step_hash, len(self.decisions) - before,
                                   None if task is None else self.names.task_id(task),
                                   None if task is None else _stands_at(task.coro)))
        if self.records is not None and task is not None and not self.cleanup:
            self._record(task, before if len(self.decisions) > before else None)
        if tracer is not None and not self.cleanup:
            decision = (self.decisions[-1], self.count) if len(self.decisions) > before \
                else None
            if task is None:
                tracer.timer_fired(decision)
            else:
                tracer.start_step(task, decision)
        return task

    def _record(self, task: Task, point: int | None) -> None:
        """Start the record of the step ``task`` is about to run."""
        records = self.records
        assert records is not None
        footprint = {UNKNOWN} if self.conservative else {CANCEL_READ}
        self.running = len(records)
        records.append(StepRecord(self.names.task_id(task), footprint,
                                  self.causes.pop(task, None), point))
        _footprint.current = footprint

    def _system_step(self, task: Task) -> None:
        """A system task's step is not a step of its own in the records (traces do not
        show it either): trio's init task only opens and closes the root nurseries, and
        any other system step is folded into the user step before it, which then counts
        as touching anything, so reduction stays sound."""
        records = self.records
        assert records is not None
        self.causes.pop(task, None)
        if task is self.runner.init_task or not records:
            self.running = None
            _footprint.current = None
            return
        footprint = records[-1].footprint
        footprint.add(UNKNOWN)
        self.running = len(records) - 1
        _footprint.current = footprint

    def end_step(self) -> None:
        """The running step reached its next checkpoint (trio's loop came back to us)."""
        self.running = None
        _footprint.current = None

    def process(self, index: int) -> str:
        """PointView for reduction strategies: the process (task id) of a candidate."""
        items = self.items
        if index >= len(items):
            return "clock"
        return self.names.task_id(items[index])

    def recorded_steps(self) -> list[StepRecord] | None:
        return self.records

    def current(self) -> str | None:
        """PointView: the task whose step ran last (see :meth:`PointView.current`)."""
        last = self.last
        return None if last is None else self.names.task_id(last)

    def current_call(self) -> LibraryCall | None:
        """PointView: the library call the current task is inside (see
        :meth:`PointView.current_call`); a finished task is inside none."""
        last = self.last
        return None if last is None else library_call(await_frames(last))

    def _timer_pending(self) -> bool:
        return not math.isinf(self.runner.deadlines.next_deadline())

    def candidate(self, index: int) -> Candidate:
        """PointView: describe candidate ``index`` at the current scheduling point (once
        per queued task: its frames cannot change until it runs)."""
        items = self.items
        if index >= len(items):
            return _TIMER
        task = items[index]
        found = self.described.get(task)
        if found is None:
            found = self.described[task] = self.describe(task)
        return found

    def candidates(self, count: int) -> list[Candidate]:
        """PointView: every candidate of the point, described (cached per queued task,
        and kept beside the queue: see ``descs``)."""
        descs = self.descs
        for index in range(len(descs), min(count, len(self.items))):  # in candidate order
            descs.append(self.candidate(index))
        out = descs[:count]
        if len(out) < count:
            out.extend(repeat(_TIMER, count - len(out)))
        return out

    def processes(self, count: int) -> list[str]:
        """PointView: :meth:`process` of every candidate, in one call (kept beside the
        queue: see ``ids``)."""
        ids = self.ids
        items = self.items
        if len(ids) < len(items):  # the tasks queued since the last point
            ids.extend(map(self.names.task_id, items[len(ids):]))
        out = ids[:count]
        if len(out) < count:
            out.extend(repeat("clock", count - len(out)))
        return out

    # ------------------------------------------------------------ stopping a run

    def invariants_hold(self) -> bool:
        self.invariant_failure = broken_invariant(self.invariants)
        return self.invariant_failure is None

    def stop(self, status: RunStatus) -> None:
        """End the controlled part of the run: cancel everything and let it unwind."""
        if self.status == RUNNING:
            self.status = status
        if self.cleanup:
            return
        self.cleanup = self.slow = True
        runner = self.runner
        self.still_running = [t for t in runner.tasks if not t._ki_protected]
        main = runner.main_task
        nursery = main.parent_nursery if main is not None else None
        if nursery is not None:
            nursery.cancel_scope.cancel()
