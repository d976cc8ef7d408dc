"""``dpor``: systematic search with dynamic partial-order reduction.

Two schedules that differ only in the order of *independent* steps (steps whose footprints
do not conflict) end the same way: they are one *equivalence class* (a Mazurkiewicz trace),
and running one schedule of each class is enough. The search runs a schedule, finds the
*races* in it — pairs of dependent steps of different processes with no other causal path
between them — and, for each race, makes sure a later run reverses it.

The algorithm is source-set DPOR with sleep sets (Abdulla, Aronis, Jonsson and Sagonas,
"Source Sets: A Foundation for Optimal Dynamic Partial Order Reduction", JACM 2017):

- *Source sets.* For a race ``(e, e')`` the run that reverses it starts, at the point where
  ``e`` ran, with the steps after ``e`` that do not depend on it followed by ``e'``. Any
  process whose step can go first in that sequence (an *initial*) will do, so a branch is
  added only when no initial is already scheduled at that point.
- *Sleep sets.* Once every run from a point that starts with process ``p`` has been
  explored, later siblings put ``p`` to sleep and keep it asleep until a step dependent on
  ``p``'s pending step runs; a sleeping process is never chosen. A run in which every
  enabled process is asleep (*sleep-set blocked*) repeats an explored class: it is not
  counted as a schedule (the engine counts it as a probe) and the search goes on.

Steps, dependence, happens-before and races are the model of
:mod:`explorer._happens_before`; this module is the search over it. Plain callbacks run in
the order they were queued (only the first queued one is a candidate), so two steps of
different processes that queue conflicting callbacks are dependent: their order decides the
callbacks' order.

Footprints: what a step touches is known for asyncio's primitives, task completion and
cancellation, asyncio's own callbacks, and state declared with ``explorer.shared``. What a
task's own code reads and writes otherwise is not seen, so by default (``declared=False``)
every task step also counts as touching everything: sound for any scenario, but little
reduction beyond the ordering of plain callbacks. ``DPOR(declared=True)`` is the contract
that every piece of state tasks share is an asyncio primitive or declared with
``explorer.shared``; then independent steps are recognised and the reduction is large.

Guarantee: when :attr:`DPOR.exhausted` is true and no branch was skipped, at least one
schedule of every equivalence class (all interleavings up to reordering of independent
steps) has been run, under that model.

``deviation_bound``: branches whose schedule would deviate from the stock order more than
that are skipped, and the coverage then says so instead of claiming every class. A process
goes to sleep only once its subtree was explored with nothing skipped, so the bound never
lets a sleep set hide a class that the bounded search did not run.

While a run goes, the strategy reads the footprints recorded so far (see
:func:`explorer._happens_before.recorded_steps`) to choose awake processes; after the run,
:meth:`DPOR.observe` recomputes the sleep sets exactly, with every step's footprint known,
and that exact computation alone decides what is skipped and what counts.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from explorer._footprint import CANCELLED, Access, StepRecord, require_auto
from explorer._happens_before import (
    CLOCK,
    LOOP,
    MAIN,
    Footprint,
    RecordingView,
    RunAnalysis,
    dependent,
    recorded_steps,
)
from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Statistic, Strategy

FOOTPRINT_MODES = ("conservative", "declared", "auto")
"""What :class:`DPOR` takes a task's own code to touch (its ``footprints`` argument)."""


Shape = tuple[bool, frozenset[tuple[object, str]]]
"""A step's own accesses without their objects (``(touches anything, {(item, mode)})``):
object ids differ from run to run, so this is what a run can compare with a sleeping
process's step recorded in an earlier run. Used only to guide choices."""


def shape(footprint: Iterable[Access]) -> Shape:
    """The :data:`Shape` of a recorded footprint."""
    accesses = frozenset((item, mode) for obj, item, mode in footprint if obj != 0)
    return (any(obj == 0 for obj, _, _ in footprint), accesses)


def _may_wake(sleeper: Shape, footprint: Iterable[Access]) -> bool:
    """Whether a step with ``footprint`` may be dependent on a step of ``sleeper``'s shape
    (the same item, one of them writing, on some object)."""
    unknown, accesses = sleeper
    touched = False
    for obj, item, mode in footprint:
        touched = True
        if unknown or obj == 0:
            return True
        for other_item, other_mode in accesses:
            if (mode == "w" or other_mode == "w") and (
                    item is None or other_item is None or item == other_item):
                return True
    return touched and unknown


@dataclass
class _Point:
    """One scheduling point of the current branch of the search tree."""

    enabled: list[str]  # the candidates' processes, in candidate order
    chosen: str
    backtrack: set[str]  # processes to explore here
    done: set[str]  # processes explored (or being explored) here, or skipped by the bound
    sleep: dict[str, Shape] = field(default_factory=dict)  # asleep on entry
    shapes: dict[str, Shape] = field(default_factory=dict)  # each explored process's step
    complete: set[str] = field(default_factory=set)  # subtree explored with nothing skipped
    skips: int = 0  # DPOR.pruned when the current choice started


class DPOR(Strategy):
    """Dynamic partial-order reduction (source sets and sleep sets) over the processes
    (tasks, and the callback queue) of the scenario."""

    name = "dpor"

    def __init__(self, deviation_bound: int | None = None, *, declared: bool = False,
                 footprints: str | None = None) -> None:
        if deviation_bound is not None and deviation_bound < 0:
            raise ValueError(f"deviation_bound must be >= 0 or None, got {deviation_bound}")
        self.deviation_bound = deviation_bound
        self.declared = declared
        # Tells the engine to record footprints, and which model to use for task code:
        # "conservative", "declared", or "auto" (recorded by sys.monitoring, 3.12+).
        self.footprints = footprints or ("declared" if declared else "conservative")
        if self.footprints not in FOOTPRINT_MODES or (
                declared and footprints not in (None, "declared")):
            raise ValueError(f"footprints must be one of {', '.join(FOOTPRINT_MODES)} "
                             f"(and 'declared' with declared=True), got {footprints!r}")
        if self.footprints == "auto":
            require_auto()  # a UsageError before Python 3.12
        self._stack: list[_Point] = []
        self._prefix = 0
        self._k = 0
        self._started = False
        self._finished = False
        # Per run: deviations so far, the sleep set as known while the run goes (None once
        # unknown), how many recorded steps it has absorbed, and whether the run turned
        # out to repeat an explored class.
        self._deviations = 0
        self._online: dict[str, Shape] | None = {}
        self._absorbed = 0
        self._redundant = False
        self._keep: int | None = None
        self.schedules = 0
        self.races = 0
        self.pruned = 0
        self.blocked = 0
        self.mismatches = 0

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        if self._finished:
            return False
        self._k = 0
        self._deviations = 0
        self._online = {}
        self._absorbed = 0
        self._redundant = False
        self._keep = None
        if not self._started:
            self._started = True
            self._prefix = 0
            return True
        while self._stack:
            top = self._stack[-1]
            depth = len(self._stack) - 1
            # Everything below top.chosen has been explored: it may now put later siblings'
            # processes to sleep, unless the bound skipped part of its subtree.
            if self.pruned == top.skips:
                top.complete.add(top.chosen)
            for process in top.enabled:
                if (process in top.backtrack and process not in top.done
                        and process not in top.sleep):
                    top.done.add(process)
                    if self._too_deviant(depth, process):
                        self.pruned += 1
                        continue
                    top.chosen = process
                    top.skips = self.pruned
                    self._prefix = len(self._stack)
                    return True
            self._stack.pop()
        self._finished = True
        return False

    def choose(self, count: int, view: PointView) -> int:
        k = self._k
        self._k = k + 1
        processes = [view.process(i) for i in range(count)]
        if k < self._prefix:
            point = self._stack[k]
            if point.chosen in processes:
                choice = processes.index(point.chosen)
            else:
                self.mismatches += 1  # the run did not repeat; keep going with the default
                self._online = None
                choice = 0
            if k == self._prefix - 1 and self._online is not None:
                self._begin_sleep(point, view)
        else:
            sleep = self._absorb(view)
            awake = [i for i, process in enumerate(processes) if process not in sleep]
            choice = 0
            if awake and (awake[0] == 0 or self._within_bound(self._deviations + 1)):
                choice = awake[0]
            # Otherwise every candidate is asleep, or the awake ones are beyond the bound:
            # the run repeats an explored class from here, which observe() confirms.
            chosen = processes[choice]
            self._stack.append(_Point(processes, chosen, {chosen}, {chosen}, dict(sleep),
                                      skips=self.pruned))
        self._deviations += choice != 0
        if processes[choice] == CLOCK and self._online is not None:
            self._online = {}
        return choice

    def observe(self, steps: Sequence[StepRecord]) -> None:
        """Learn from the run's step records (process, footprint, enabler, point): compute
        its exact sleep sets, note whether it repeated an explored class, and add the
        branches that reverse its races."""
        stack = self._stack
        last = steps[-1] if steps else None
        # Did the run end (its main task's last step) with a callback still queued?
        pending = (last is not None and last.process == MAIN and last.point is not None
                   and last.point < len(stack) and LOOP in stack[last.point].enabled)
        analysis = RunAnalysis(steps, pending=pending)
        cutoff = self._sleep_sets(steps, analysis.footprints)
        deviations = [0]
        for point in stack:
            deviations.append(deviations[-1] + (point.enabled.index(point.chosen) != 0))
        for i, j in analysis.races:
            if j >= cutoff:
                continue
            self.races += 1
            at = steps[i].point
            if at is None or at >= len(stack):
                continue  # no alternative existed when step i ran
            frame = stack[at]
            initials = analysis.initials(analysis.reversal(i, j))
            options = [p for p in frame.enabled if p in initials]
            if not options:  # outside the model (a timer not yet due): be conservative
                frame.backtrack.update(frame.enabled)
                continue
            # Already covered: an initial is asleep here (its runs were all explored), or
            # one is scheduled here and not beyond the bound.
            within = [p for p in options if self._fits(deviations[at], frame, p)]
            if any(p in frame.sleep for p in options) or any(p in frame.backtrack
                                                             for p in within):
                continue
            # Any initial will do; the later step's own process reverses the race most
            # directly (which matters only for what a deviation bound lets through).
            later = steps[j].process
            frame.backtrack.add(later if later in within else
                                within[0] if within else options[0])
        # "Fire the next timer now" (timer_races) is an event that other steps can disable
        # (a timeout left before its deadline cancels its timer): when it is not taken, it
        # may never run in this run, so no race with it is ever observed. Branch on it
        # wherever it was offered, as DPOR does for transitions that can be disabled.
        for frame in stack:
            if CLOCK in frame.enabled:
                frame.backtrack.add(CLOCK)
        # Likewise a queued callback cancelled by a step chosen over it never runs: try the
        # callbacks first at that point (the cancel is recorded as a write of CANCELLED).
        for record in steps:
            at = record.point
            if (at is not None and at < len(stack) and LOOP in stack[at].enabled
                    and any(item == CANCELLED and mode == "w"
                            for _obj, item, mode in record.footprint)):
                stack[at].backtrack.add(LOOP)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self._redundant:
            self.blocked += 1
        else:
            self.schedules += 1
        # Anything past the points this run reached belongs to an earlier, longer run;
        # past a sleep-set-blocked step, to nothing worth exploring.
        keep = max(self._k, self._prefix) if self._keep is None else self._keep
        del self._stack[keep:]

    @property
    def exhausted(self) -> bool:
        return self._finished

    @property
    def counts_as_schedule(self) -> bool:
        """False for a sleep-set-blocked run: it repeats an explored equivalence class."""
        return not self._redundant

    def coverage(self) -> str:
        blocked = (f", {self.blocked} sleep-set-blocked run(s) not counted"
                   if self.blocked else "")
        if not self._finished:
            return (f"{self.schedules} schedules of a partial-order-reduced search{blocked}; "
                    "not finished")
        if self.mismatches:
            return (f"a partial-order-reduced search of {self.schedules} schedules, but the "
                    f"scenario did not repeat a schedule {self.mismatches} time(s), so its "
                    "classes are not proved covered")
        if not self.pruned:
            return (f"all interleavings up to reordering of independent steps "
                    f"({self.schedules} schedules, {self.races} races reversed{blocked})")
        return (f"a partial-order-reduced search within {self.deviation_bound} deviation(s) "
                f"({self.schedules} schedules{blocked}; {self.pruned} branches beyond the "
                "bound skipped, so equivalence classes reached only through them were not "
                "run)")

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "deviation_bound": self.deviation_bound,
                "declared": self.footprints == "declared",
                "footprints": self.footprints}

    def statistics(self) -> dict[str, Statistic]:
        return {"races": self.races, "pruned": self.pruned, "sleep_blocked": self.blocked,
                "mismatches": self.mismatches}

    # ------------------------------------------------------------------ sleep sets

    def _begin_sleep(self, point: _Point, view: RecordingView) -> None:
        """At the branch point of this run: what is asleep once its new choice has run,
        before that choice's own step is absorbed."""
        steps = recorded_steps(view)
        if steps is None:
            self._online = None
            return
        self._online = {**point.sleep, **{p: point.shapes[p] for p in point.complete
                                          if p != point.chosen and p in point.shapes}}
        self._absorbed = len(steps)

    def _absorb(self, view: RecordingView) -> dict[str, Shape]:
        """The sleep set now, as far as the steps recorded so far tell: a guess (by item
        and mode, not object) that only guides choices; :meth:`_sleep_sets` decides."""
        online = self._online
        if online is None:
            return {}
        steps = recorded_steps(view)
        if steps is None:
            self._online = None
            return {}
        # While the run goes, records may still be plain (process, footprint, enabler,
        # point) tuples: read them by position.
        for record in steps[self._absorbed:]:
            if record[0] in online:  # a sleeping process ran: the run is blocked
                self._online = None
                return {}
            if online:
                footprint = record[1]
                online = {p: s for p, s in online.items() if not _may_wake(s, footprint)}
        self._absorbed = len(steps)
        self._online = online
        return online

    def _sleep_sets(self, steps: Sequence[StepRecord], footprints: list[Footprint]) -> int:
        """Compute the sleep set on entry to every point of the run exactly; if a sleeping
        process ran, mark the run redundant, cut the branch there and return the index of
        that step (races at or after it are not explored); else ``len(steps)``.

        Everything is compared within this run: a sleeping process's pending step is its
        next step in this run. It wakes when a step of another process dependent on that
        step runs first (a step that changed what it does would be dependent on it too,
        since the step reads what decided it); it *blocks* the run if it runs still
        asleep. A process with no further step in this run is not put to sleep."""
        stack = self._stack
        where: dict[str, list[int]] = {}
        for position, record in enumerate(steps):
            where.setdefault(record.process, []).append(position)
        sleeping: dict[str, int] = {}  # process -> position of its pending step
        upcoming = 0  # the next scheduling point
        for position, record in enumerate(steps):
            at = record.point
            if at is not None:
                if at >= len(stack):
                    break
                while upcoming < at:  # a decision without a step of its own (the clock)
                    stack[upcoming].sleep = {p: shape(steps[m].footprint)
                                             for p, m in sleeping.items()}
                    sleeping = {}
                    upcoming += 1
                frame = stack[at]
                upcoming = at + 1
                frame.sleep = {p: shape(steps[m].footprint) for p, m in sleeping.items()}
                if record.process in sleeping:
                    # Every candidate here is asleep, or the awake ones were beyond the
                    # bound (or misjudged) when the run chose: explore the first awake one
                    # from here instead (or count it skipped).
                    awake = [p for p in frame.enabled if p not in sleeping]
                    if awake:
                        frame.backtrack.add(awake[0])
                    return self._blocked(position, at + 1)
                frame.shapes.setdefault(record.process, shape(record.footprint))
                for p in frame.complete:
                    if p != record.process and p not in sleeping:
                        mine = where.get(p, [])
                        after = bisect_right(mine, position)
                        if after < len(mine):
                            sleeping[p] = mine[after]
            elif record.process in sleeping:
                return self._blocked(position, upcoming)
            if sleeping:
                mine_fp = footprints[position]
                sleeping = {p: m for p, m in sleeping.items()
                            if not dependent(footprints[m], mine_fp)
                            and steps[m].enabler != position}
        return len(steps)

    def _blocked(self, position: int, keep: int) -> int:
        self._redundant = True
        self._keep = keep
        return position

    # ------------------------------------------------------------------ bound

    def _within_bound(self, deviations: int) -> bool:
        return self.deviation_bound is None or deviations <= self.deviation_bound

    def _fits(self, before: int, frame: _Point, process: str) -> bool:
        """Whether choosing ``process`` at ``frame``, after ``before`` deviations, stays
        within the bound."""
        return self._within_bound(before + (frame.enabled.index(process) != 0))

    def _too_deviant(self, depth: int, process: str) -> bool:
        if self.deviation_bound is None:
            return False
        before = sum(1 for p in self._stack[:depth] if p.enabled.index(p.chosen) != 0)
        return not self._fits(before, self._stack[depth], process)

