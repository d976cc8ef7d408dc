"""``dpor``: systematic search with dynamic partial-order reduction.

Two schedules that differ only in the order of *independent* steps (steps whose footprints
do not conflict) end the same way: they are one *equivalence class* (a Mazurkiewicz trace),
and running one schedule of each class is enough. The search runs a schedule, finds the
*races* in it — pairs of dependent steps of different processes with no other causal path
between them — and, for each race, makes sure a later run reverses it.

The algorithm is optimal DPOR with wakeup trees and sleep sets (Abdulla, Aronis, Jonsson
and Sagonas, "Source Sets: A Foundation for Optimal Dynamic Partial Order Reduction", JACM
2017, section 6):

- *Wakeup trees.* For a race ``(e, e')`` the sequence that reverses it is ``v``: the steps
  of the run after ``e`` that do not happen after it, in their order (over the whole run),
  then ``e'``. It is inserted into the wakeup tree of the point where ``e`` ran unless a
  process asleep there is a *weak initial* of ``v`` (its step can go first in a schedule
  equivalent to an extension of ``v``). Insertion goes down the leftmost child that is a
  weak initial of what is left of ``v`` (removing that process's step); it stops at a
  leaf (a sequence already there covers ``v``), else ``v``'s rest becomes the rightmost
  branch. Each point explores its tree leftmost branch first, following it step by step
  (a step can become a candidate only once an earlier one ran, as in the run it came
  from), then chooses the first awake candidate.
- *Sleep sets.* Once every run from a point that starts with process ``p`` has been
  explored, later siblings put ``p`` to sleep and keep it asleep until a step dependent on
  ``p``'s pending step runs; a sleeping process is never chosen. With wakeup trees no run
  should end with every enabled process asleep (*sleep-set blocked*); where the model's
  steps are not fixed events one still can (a step whose extent depends on what it reads,
  a run that ends with callbacks queued), and so can a share of a search dealt among
  workers (:meth:`DPOR.deal`): it repeats an explored class (or one another worker's
  share runs), is not counted as a schedule (the engine counts it as a probe), and the
  search goes on.

Tree nodes keep their steps' footprints from the run that found them, with objects named
by the step that first touched them (:data:`Name`); a later run compares its own steps'
footprints where it has the step a node stands for, which is exact.

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

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from explorer._footprint import CANCELLED, Access, Index, StepRecord, StepTuple, require_auto
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


Name = tuple[int, frozenset[tuple[object, str]]]
"""A name for a shared object that another run can compare: the position of the step that
first touched it in the run, and what that step did to it. Object ids differ from run to
run, but runs that share a prefix of decisions take the same steps there, so an object
first touched in the shared prefix has the same name in both; objects first touched later
are compared as one of two unknown objects, by whether that step touched them whole or
by item (see :func:`_conflict`). Two objects first touched alike by one step share a name
too. Names only guide choices: the exact sleep sets are computed within one run."""

_LATE: Final = 1 << 62
_LATE_WHOLE: Final[Name] = (_LATE, frozenset({(None, "w")}))
_LATE_ITEMS: Final[Name] = (_LATE, frozenset())


def _late(name: Name) -> Name:
    return _LATE_WHOLE if all(item is None for item, _ in name[1]) else _LATE_ITEMS

Shape = tuple[bool, frozenset[tuple[Name, object, str]]]
"""A step's accesses with objects named (``(touches anything, {(name, item, mode)})``):
what a run can compare with a step recorded in an earlier run (a sleeping process's
pending step, a wakeup-tree node)."""


class _Names:
    """Names (:data:`Name`) for the objects of one run, given its steps in order."""

    __slots__ = ("ids", "position")

    def __init__(self, steps: Iterable[StepTuple] = ()) -> None:
        self.ids: dict[int, Name] = {}
        self.position = 0
        for record in steps:
            self.add(record[1])

    def add(self, footprint: Iterable[Access]) -> None:
        """Name the objects the next step touches first."""
        new: dict[int, set[tuple[object, str]]] = {}
        ids = self.ids
        for obj, item, mode in footprint:
            if obj != 0 and obj not in ids:
                new.setdefault(obj, set()).add((item, mode))
        for obj, done in new.items():
            ids[obj] = (self.position, frozenset(done))
        self.position += 1

    def shape(self, footprint: Iterable[Access]) -> Shape:
        """The :data:`Shape` of a footprint of this run (after its step was added)."""
        ids = self.ids
        unknown = False
        out: set[tuple[Name, object, str]] = set()
        for obj, item, mode in footprint:
            if obj == 0:
                unknown = True
            else:
                out.add((ids.get(obj, _LATE_ITEMS), item, mode))
        return (unknown, frozenset(out))

    def shapes(self, footprint: Footprint) -> Shapes:
        """Both halves of a :data:`Footprint` of this run as shapes."""
        return (self._index_shape(footprint[0]), self._index_shape(footprint[1]))

    def _index_shape(self, accesses: Index) -> Shape:
        ids = self.ids
        return (0 in accesses, frozenset((ids.get(obj, _LATE_ITEMS), item, mode)
                                         for obj, pairs in accesses.items() if obj != 0
                                         for item, mode in pairs))


def _conflict(a: Shape, b: Shape, shared: int) -> bool:
    """Whether steps of these shapes, from two runs that share their first ``shared``
    steps, may conflict (as :func:`explorer._footprint.conflicts` does within one run):
    objects first touched in the shared steps are told apart by name, all others are
    taken to be one object of two (touched whole first, or by item)."""
    a_unknown, a_accesses = a
    b_unknown, b_accesses = b
    if not (a_unknown or a_accesses) or not (b_unknown or b_accesses):
        return False
    if a_unknown or b_unknown:
        return True
    if len(b_accesses) < len(a_accesses):
        a_accesses, b_accesses = b_accesses, a_accesses
    by_name: dict[Name, list[tuple[object, str]]] = {}
    for name, item, mode in a_accesses:
        by_name.setdefault(name if name[0] < shared else _late(name), []).append(
            (item, mode))
    for name, item, mode in b_accesses:
        key = name if name[0] < shared else _late(name)
        for other_item, other_mode in by_name.get(key, ()):
            if (mode == "w" or other_mode == "w") and (
                    item is None or other_item is None or item == other_item):
                return True
    return False


def _settled(shape: Shape, shared: int) -> Shape:
    """``shape`` without its objects first touched at or after step ``shared``: fewer
    conflicts than :func:`_conflict` finds, so only for guesses (see
    :meth:`DPOR._begin_sleep`), never to skip a branch."""
    unknown, accesses = shape
    return (unknown, frozenset(access for access in accesses if access[0][0] < shared))


Shapes = tuple[Shape, Shape]
"""A step's :data:`Footprint` as shapes: its own accesses, and those of the callbacks it
queued (what a wakeup-tree node keeps of the step it stands for, from the run that
inserted it)."""

_ANYTHING: Final[Shapes] = ((True, frozenset()), (True, frozenset()))


@dataclass
class _Node:
    """A node of a wakeup tree: the next step of ``process``, then the sequences below
    it, leftmost first (an empty ``children`` is a leaf: a sequence ends there).

    A *provisional* leaf stands for no race reversed in full (a conservative branch, or
    a sequence from a run whose end left callbacks queued, where every step counts as
    dependent): it does not cover a longer sequence inserted later, which extends it."""

    process: str
    shapes: Shapes
    children: list[_Node] = field(default_factory=list)
    provisional: bool = False


@dataclass
class _Point:
    """One scheduling point of the current branch of the search tree."""

    enabled: list[str]  # the candidates' processes, in candidate order
    chosen: str
    wut: list[_Node]  # the wakeup tree here, without the branch being explored
    done: set[str]  # processes explored (or being explored) here, or skipped by the bound
    sleep: dict[str, Shape] = field(default_factory=dict)  # asleep on entry
    shapes: dict[str, Shape] = field(default_factory=dict)  # each explored process's step
    complete: set[str] = field(default_factory=set)  # subtree explored with nothing skipped
    # Of ``sleep``: those asleep since the first point of a dealt search (see DPOR.deal).
    rooted: frozenset[str] = frozenset()
    skips: int = 0  # DPOR.pruned when the current choice started


class DPOR(Strategy):
    """Dynamic partial-order reduction (source sets and sleep sets) over the processes
    (tasks, and the callback queue) of the scenario."""

    name = "dpor"
    splitting = "partition"

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
        self._rooted: frozenset[str] = frozenset()  # of those, asleep since the first point
        self._absorbed = 0
        self._redundant = False
        self._keep: int | None = None
        # The wakeup tree below the branch this run follows, consumed as the run goes.
        self._guide: list[_Node] = []
        self._names = _Names()  # the run's objects, from the branch point on
        self._shared = 0  # how many steps this run shares with the earlier ones
        self.schedules = 0
        self.races = 0
        self.pruned = 0
        self.blocked = 0
        self.mismatches = 0
        self.unfollowed = 0
        # A share of the search among workers (see deal()): the candidates at the first
        # scheduling point still to take (this worker's branches, and the other workers'
        # ones it only probes), those other workers' ones, and whether this run only looks.
        self.index, self.count = 0, 1
        self._roots: list[str] | None = None
        self._foreign: frozenset[str] = frozenset()
        self._probe = False
        self.probes = 0

    def deal(self, index: int, count: int) -> None:
        """Make this search worker ``index``'s share of ``count`` (before the first run).

        The branches at the first scheduling point are dealt round-robin: this worker
        explores those that start with candidate ``i``, ``i % count == index``, each with
        every lower candidate ``j`` asleep, whichever worker's branch ``j`` is. That is
        the sleep-set argument of one search taking the branches in candidate order:
        every class that can start with ``j``'s step is run under branch ``j``, so branch
        ``i`` skips the classes in which ``j``'s step could come first (``j`` wakes once
        a step dependent on its pending one runs). The workers together then run one
        schedule of each class one search runs, and no class in two workers.

        Choosing awake processes while a run goes needs the footprint of each sleeping
        candidate's first step: for another worker's candidate below one of its own, a
        worker learns it by a *probe*, one run that takes that candidate first, not
        counted as a schedule (shared work: every worker that needs it makes it). A
        branch ``i`` in which every class starts with a lower candidate's step (one
        search would not take it at all) ends in sleep-set-blocked runs, not counted
        either, which the coverage states. A worker with no candidate of its own makes
        one probe to see the point.

        Under a ``deviation_bound`` another worker's branch may have skipped part of its
        subtree, so it cannot put anything to sleep: there only this worker's own
        complete branches sleep, and a class may run in two workers (no probes)."""
        if not 0 <= index < count:
            raise ValueError(f"deal() needs 0 <= index < count, got index={index}, "
                             f"count={count}")
        if self._started:
            raise ValueError("deal() must come before the first run")
        self.index, self.count = index, count

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        if self._finished:
            return False
        self._k = 0
        self._deviations = 0
        self._online = {}
        self._rooted = frozenset()
        self._absorbed = 0
        self._redundant = False
        self._keep = None
        self._guide = []
        self._probe = False
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
            if depth == 0 and self._roots is not None:
                if self._next_root(top):
                    return True
                self._stack.pop()
                continue
            # The leftmost branch of the wakeup tree next; a process asleep or explored
            # here is never inserted, except by the conservative fallbacks.
            while top.wut:
                node = top.wut.pop(0)
                process = node.process
                if (process in top.done or process in top.sleep
                        or process not in top.enabled):
                    continue
                top.done.add(process)
                if self._too_deviant(depth, process):
                    self.pruned += 1
                    continue
                top.chosen = process
                top.skips = self.pruned
                self._guide = node.children
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
        elif k == 0 and self.count > 1:
            choice = self._first_root(processes)
            self._stack.append(_Point(processes, processes[choice], [], {processes[choice]},
                                      {}, skips=self.pruned))
        else:
            sleep = self._absorb(view)
            choice, wut = self._follow(processes, sleep)
            if choice < 0:
                awake = [i for i, process in enumerate(processes) if process not in sleep]
                choice = 0
                if awake and (awake[0] == 0 or self._within_bound(self._deviations + 1)):
                    choice = awake[0]
                # Otherwise every candidate is asleep, or the awake ones are beyond the
                # bound: the run repeats an explored class from here (observe() decides).
            chosen = processes[choice]
            self._stack.append(_Point(processes, chosen, wut, {chosen}, dict(sleep),
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
        if self._probe:
            # All a probe is for: the footprint of the step it took first, which puts that
            # candidate to sleep in the worker's later branches while their runs go.
            first = next((record for record in steps if record.point == 0), None)
            if first is not None and stack:
                stack[0].shapes.setdefault(first.process,
                                           _Names(steps).shape(first.footprint))
            return
        last = steps[-1] if steps else None
        # Did the run end (its main task's last step) with a callback still queued?
        pending = (last is not None and last.process == MAIN and last.point is not None
                   and last.point < len(stack) and LOOP in stack[last.point].enabled)
        analysis = RunAnalysis(steps, pending=pending)
        names = _Names(steps)
        cutoff = self._sleep_sets(steps, analysis.footprints, names)
        deviations = [0]
        for point in stack:
            deviations.append(deviations[-1] + (point.enabled.index(point.chosen) != 0))
        where: dict[str, list[int]] = {}
        for position, record in enumerate(steps):
            where.setdefault(record.process, []).append(position)
        for i, j in analysis.races:
            if j >= cutoff:
                continue
            self.races += 1
            at = steps[i].point
            if at is None or at >= len(stack):
                continue  # no alternative existed when step i ran
            frame = stack[at]
            sequence = analysis.reversal(i, j, whole=True)
            initials = analysis.initials(sequence)
            options = [p for p in frame.enabled if p in initials]
            if not options:  # outside the model (a timer not yet due): be conservative
                for process in frame.enabled:
                    _add_leaf(frame, process)
                continue
            exact = _NextSteps(analysis, where, i)
            # Already covered: a weak initial of the sequence is asleep or was explored
            # here (within the bound, or skipped by it, which the coverage states). Not a
            # process asleep since the first point of a dealt search: the races of its
            # branch that one search would reverse from that point are not known here, so
            # the sequence is explored, and its runs are blocked where that process could
            # still go first (they are its branch's classes). Nor is it explored here when
            # a run chose it here asleep (that run was blocked).
            explored = (set(frame.sleep) | (frame.done - {frame.chosen})) - frame.rooted
            if any(_weak_initial(process, exact(process), None, sequence, analysis, names, i)
                   for process in explored):
                continue
            if self.deviation_bound is not None:
                # Following a whole wakeup sequence spends a deviation at each of its
                # steps that is not the stock choice: under a bound, take only its first
                # step (an initial that fits, the race's later process first), then the
                # stock order, as a source-set search does.
                sequence = self._within(sequence, options, deviations[at], frame, steps,
                                        steps[j].process)[:1]
            _insert(frame.wut, sequence, analysis, exact, names,
                    pending or self.deviation_bound is not None)
        # "Fire the next timer now" (timer_races) is an event that other steps can disable
        # (a timeout left before its deadline cancels its timer): when it is not taken, it
        # may never run in this run, so no race with it is ever observed. Branch on it
        # wherever it was offered, as DPOR does for transitions that can be disabled.
        for frame in stack:
            if CLOCK in frame.enabled:
                _add_leaf(frame, CLOCK)
        # The main task's last step ends the run: a step still ready then never runs, so
        # no race with it shows. Try each one first at that point.
        if (last is not None and last.process == MAIN and last.point is not None
                and last.point < len(stack)):
            for process in stack[last.point].enabled:
                _add_leaf(stack[last.point], process)
        # Likewise a queued callback cancelled by a step chosen over it never runs: try the
        # callbacks first at that point (the cancel is recorded as a write of CANCELLED).
        for record in steps:
            at = record.point
            if (at is not None and at < len(stack) and LOOP in stack[at].enabled
                    and any(item == CANCELLED and mode == "w"
                            for _obj, item, mode in record.footprint)):
                _add_leaf(stack[at], LOOP)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self._probe:
            self.probes += 1
            del self._stack[1:]
            return
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
        """False for a sleep-set-blocked run: it repeats an explored equivalence class
        (and for the one look of a worker with no share, see :meth:`deal`)."""
        return not (self._redundant or self._probe)

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
        if self.unfollowed:
            return (f"a partial-order-reduced search of {self.schedules} schedules, but "
                    f"{self.unfollowed} race reversal(s) could not be followed (a step "
                    "was not a candidate where the reversal needed it), so the classes "
                    "they lead to are not proved covered")
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
                "mismatches": self.mismatches, "unfollowed": self.unfollowed}

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
        self._rooted = (frozenset(self._online) if self._roots is not None
                        and point is self._stack[0] else point.rooted)
        if self._rooted:
            # The step a process asleep since the first point is to take was recorded in
            # another run, and objects first touched after the steps all runs share are
            # one unknown object to _conflict: the tasks' own futures would wake it at
            # once, and choosing it would block the run. Guess on the shared objects only
            # (a process still asleep is then followed all the same, see _follow).
            self._online.update({p: _settled(self._online[p], len(steps))
                                 for p in self._rooted if p in self._online})
        self._names = _Names(steps)
        self._shared = self._absorbed = len(steps)

    def _absorb(self, view: RecordingView) -> dict[str, Shape]:
        """The sleep set now, as far as the steps recorded so far tell: a guess (objects
        compared by :data:`Name`) that only guides choices; :meth:`_sleep_sets` decides."""
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
                self._names.add(record[1])
                step = self._names.shape(record[1])
                online = {p: s for p, s in online.items()
                          if not _conflict(s, step, self._shared)}
        self._absorbed = len(steps)
        self._online = online
        return online

    def _sleep_sets(self, steps: Sequence[StepRecord], footprints: list[Footprint],
                    names: _Names) -> int:
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
        rooted: set[str] = set()  # of those, asleep since the first point (a dealt search)
        end = len(steps) - 1 if steps and steps[-1].process == MAIN else -1
        upcoming = 0  # the next scheduling point
        for position, record in enumerate(steps):
            at = record.point
            if at is not None:
                if at >= len(stack):
                    break
                while upcoming < at:  # a decision without a step of its own (the clock)
                    stack[upcoming].sleep = {p: names.shape(steps[m].footprint)
                                             for p, m in sleeping.items()}
                    stack[upcoming].rooted = frozenset(rooted)
                    sleeping = {}
                    rooted = set()
                    upcoming += 1
                frame = stack[at]
                upcoming = at + 1
                frame.sleep = {p: names.shape(steps[m].footprint)
                               for p, m in sleeping.items()}
                frame.rooted = frozenset(rooted)
                if record.process in sleeping:
                    # Every candidate here is asleep, or the awake ones were beyond the
                    # bound (or misjudged) when the run chose: explore the first awake one
                    # from here instead (or count it skipped).
                    awake = [p for p in frame.enabled if p not in sleeping]
                    if awake:
                        _add_leaf(frame, awake[0])
                    return self._blocked(position, at + 1)
                frame.shapes.setdefault(record.process, names.shape(record.footprint))
                for p in frame.complete:
                    if p != record.process and p not in sleeping:
                        mine = where.get(p, [])
                        after = bisect_right(mine, position)
                        if after < len(mine):
                            sleeping[p] = mine[after]
                            if at == 0 and self._roots is not None:
                                rooted.add(p)
            elif record.process in sleeping:
                return self._blocked(position, upcoming)
            if sleeping:
                # The main task's last step ends the run: it depends on every step of
                # another process (whether that step runs at all), so any wakes it.
                mine_fp = footprints[position]
                sleeping = {p: m for p, m in sleeping.items()
                            if not dependent(footprints[m], mine_fp)
                            and steps[m].enabler != position and m != end}
                rooted &= sleeping.keys()
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


    # ------------------------------------------------------------------ wakeup trees

    def _follow(self, processes: list[str], sleep: dict[str, Shape]) -> tuple[int, list[_Node]]:
        """At a new point of a run that follows a wakeup tree: the candidate its leftmost
        branch takes (-1 when there is no tree left, or its branch cannot be taken here)
        and the rest of the tree, which stays to be explored from this point."""
        guide = self._guide
        if not guide:
            return -1, []
        node, rest = guide[0], guide[1:]
        self._guide = []
        # A process asleep since the first point of a dealt search is followed all the
        # same: where it is still asleep the run is blocked (observe() decides), its class
        # being that first candidate's branch's.
        if node.process in processes and (node.process not in sleep
                                          or node.process in self._rooted):
            at = processes.index(node.process)
            if at == 0 or self._within_bound(self._deviations + 1):
                self._guide = node.children
                return at, rest
            self.pruned += 1  # beyond the bound: the coverage says so
            return -1, rest
        # The sequence's next step is not a candidate here (outside the model, a timer not
        # yet due): what it was to reach is not proved covered, and the coverage says so.
        self.unfollowed += 1
        return -1, rest

    def _within(self, sequence: list[int], options: list[str], before: int, frame: _Point,
                steps: Sequence[StepRecord], later: str) -> list[int]:
        """``sequence`` reordered to start with an initial that the deviation bound lets
        through at ``frame`` (any initial may go first): ``later`` (the race's second
        process, which reverses it most directly) if it is one, else the first that
        fits; unchanged if none does (it is then skipped, and counted)."""
        preferred = [later] if later in options else []
        for process in [*preferred, *options]:
            if self._fits(before, frame, process):
                first = next(k for k in sequence if steps[k].process == process)
                return [first, *(k for k in sequence if k != first)]
        return sequence


    # ------------------------------------------------------------------ workers

    def _first_root(self, processes: list[str]) -> int:
        """The first run's choice at the first scheduling point of a dealt search: this
        worker's first candidate there, or the first other worker's candidate below one
        of its own, to probe (a worker with none only looks, see deal())."""
        mine = [i for i in range(len(processes)) if i % self.count == self.index]
        if not mine:
            self._probe = True
            self._roots = []
            return 0
        # In candidate order, so that every lower candidate's first step is known (probed,
        # or taken by an own branch) when a branch puts it to sleep.
        order = [i for i in range(mine[-1] + 1)
                 if i in mine or self.deviation_bound is None]
        self._foreign = frozenset(processes[i] for i in order if i not in mine)
        self._roots = [processes[i] for i in order[1:]]
        self._probe = processes[order[0]] in self._foreign
        return order[0]

    def _next_root(self, top: _Point) -> bool:
        """Start this worker's next branch at the first scheduling point (or the probe of
        another worker's candidate there), if any."""
        top.wut = []  # every branch here is some worker's: nothing to wake up
        while self._roots:
            process = self._roots.pop(0)
            top.done.add(process)
            if process in self._foreign:
                # Once probed it counts as complete (start_run): its worker explores all of
                # its branch, which is what lets this worker's later branches sleep it.
                top.chosen = process
                top.skips = self.pruned
                self._prefix = 1
                self._probe = True
                return True
            if self._too_deviant(0, process):
                self.pruned += 1
                continue
            top.chosen = process
            top.skips = self.pruned
            self._prefix = 1
            return True
        return False


class _NextSteps:
    """The footprint of each process's next step from step ``after`` of the run on: at the
    point where ``after`` was chosen, that is the step each enabled process would take
    (``after`` itself for its own process; None when it took no further step).
    Comparing steps of one run is exact; a wakeup-tree node's shapes, from the run that
    inserted it, are the fallback."""

    def __init__(self, analysis: RunAnalysis, where: dict[str, list[int]], after: int) -> None:
        self.footprints = analysis.footprints
        self.where = where
        self.after = after

    def __call__(self, process: str, skip: int = 0) -> Footprint | None:
        """The footprint of ``process``'s next step, or of the one ``skip`` steps later
        (what it does at a wakeup-tree node below ``skip`` nodes of its own)."""
        mine = self.where.get(process, [])
        at = bisect_left(mine, self.after) + skip
        return self.footprints[mine[at]] if at < len(mine) else None


def _weak_initial(process: str, footprint: Footprint | None, shapes: Shapes | None,
                  sequence: Sequence[int], analysis: RunAnalysis, names: _Names,
                  shared: int) -> bool:
    """Whether ``process`` is a weak initial of ``sequence`` (steps of this run): its first
    step there has no happens-before predecessor in it, or it has no step there and its
    next step (``footprint`` from this run, else ``shapes`` from the run that recorded it)
    is independent of every step of it. Unknown counts as dependent: the sequence is then
    inserted, which may explore more, never less."""
    steps, before = analysis.steps, analysis.before
    mask = 0
    for k in sequence:
        mask |= 1 << k
    for k in sequence:
        if steps[k].process == process:
            return not before[k] & mask
    fps = analysis.footprints
    if footprint is not None:
        return not any(dependent(footprint, fps[k]) for k in sequence)
    if shapes is not None:
        own, queued = shapes
        for k in sequence:
            mine = names.shapes(fps[k])
            if _conflict(own, mine[0], shared) or _conflict(queued, mine[1], shared):
                return False
        return True
    return False


def _insert(nodes: list[_Node], sequence: list[int], analysis: RunAnalysis,
            exact: _NextSteps, names: _Names, provisional: bool) -> None:
    """Insert ``sequence`` into the wakeup tree ``nodes`` (the paper's insertion): go down
    the leftmost child that is a weak initial of what is left of it, removing that
    process's step; stop if a leaf is reached (a sequence already there is a prefix of an
    equivalent of this one) or nothing is left; otherwise add the rest as a new rightmost
    branch."""
    steps = analysis.steps
    above: dict[str, int] = {}  # each process's nodes on the path so far
    while True:
        for node in nodes:
            footprint = exact(node.process, above.get(node.process, 0))
            if _weak_initial(node.process, footprint, node.shapes, sequence, analysis,
                             names, exact.after):
                break
        else:
            nodes.append(_chain(sequence, analysis, names, provisional))
            return
        first = next((k for k in sequence if steps[k].process == node.process), None)
        rest = [k for k in sequence if k != first]
        if not node.children and not (node.provisional and rest):
            return
        node.provisional = False
        sequence = rest
        if not sequence:
            return
        nodes = node.children
        above[node.process] = above.get(node.process, 0) + 1


def _chain(sequence: Sequence[int], analysis: RunAnalysis, names: _Names,
           provisional: bool) -> _Node:
    """A branch of single children that takes ``sequence``'s steps in order."""
    steps, fps = analysis.steps, analysis.footprints
    node = _Node(steps[sequence[-1]].process, names.shapes(fps[sequence[-1]]),
                 provisional=provisional)
    for k in reversed(sequence[:-1]):
        node = _Node(steps[k].process, names.shapes(fps[k]), [node])
    return node


def _add_leaf(frame: _Point, process: str) -> None:
    """Make sure ``process`` is tried first at ``frame`` (a conservative branch, with
    nothing known of the step it stands for)."""
    if (process == frame.chosen or process in frame.done or process in frame.sleep
            or any(node.process == process for node in frame.wut)):
        return
    frame.wut.append(_Node(process, _ANYTHING, provisional=True))

