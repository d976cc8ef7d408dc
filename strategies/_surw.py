"""``surw``: selectively uniform random walk, as published.

After Zhao, Wolff, Mathur and Roychoudhury, "Selectively Uniform Concurrency Testing"
(ASPLOS 2025), following its public artifact (github.com/zhaohuanqdcn/SURW:
``src/main.zig`` with the ``urw-sched`` and ``rp-urw`` configurations). A uniform random
walk picks each ready task with the same probability, which does *not* sample
interleavings uniformly: a task with few steps left finishes early in most runs, and orders
in which it runs late are rare. Picking each task with probability proportional to the
number of events it has left makes every interleaving of the tasks' events equally likely.
The selective variant applies that weighting only to the "interesting" events.

The algorithm, run by run:

- The first run is the profiling run (the artifact's dry run): a uniform random walk that
  counts each task's interesting events. It counts as a schedule, as it does in the
  published figures. Unlike the artifact's scheduler, the runtime asks a strategy only
  where two candidates or more are ready, so a run shows only part of a task's events (a
  checker created last often runs alone); the counts are therefore kept as the most seen
  for each task in any run so far, the profiling run and every later one.
- A task's *estimate* is its own count plus the counts of every task it created, and of
  theirs (the artifact's ``estimate.in``). The spawn tree is read from task ids:
  ``main/worker#3`` is a child of ``main``. So ``main``, which creates the tasks one by
  one, carries the weight of all the tasks it has not created yet.
- In every later run, each task starts with its estimate as its events left. When a task
  first shows up, its estimate is taken off its parent's events left; if the parent was
  the drawn target (below), the child takes the target over with probability (child's
  estimate) / (parent's events left) — the artifact's ``pthread_create``.
- At a scheduling point, random priorities (``rp``) propose a candidate: every task holds a
  random priority and the highest one not held back is proposed. If the proposed step is
  not interesting, it runs, and its task draws a new priority. If it is interesting and no
  target is drawn, a target is drawn among the candidates not held back with probability
  proportional to their events left; a proposed task that is not the target is held back
  (``alg_blocked``) and the next one is proposed. The target's interesting step runs, its
  events left drop by one and everything held back is released. A task whose events left
  are used up counts one when proposed, so that it can still run; if every candidate is
  held back, all are released and the target is drawn again.

What maps to what: an event is a task's step (what it runs between two scheduling
points); a thread creation is a step after which a new child of the task shows up (learnt
by code site: the task's kind and the line it resumes from), and is never interesting,
as ``pthread_create`` is not in the artifact. "Interesting" follows the artifact's modes:

- ``sched_yield`` (the ``urw-sched`` configuration; its SCTBench builds yield before
  every shared-memory access): when the profiling run had bare yields (``await
  asyncio.sleep(0)``, the explicit scheduling points of user code), the steps resuming
  from one are the interesting events. The SCTBench ports yield before every shared access,
  as the instrumented C programs do.
- ``memory_addr`` (``rp-urw``): otherwise, when the profiling run saw shared resources —
  the ``resource`` of a step: a lock, queue, event, future or awaited task — each stepped
  on by at least two tasks and at least half of them (the artifact's filter for shared
  variables), each run draws one of them with probability proportional to its steps, and
  the interesting events are the steps on it. The artifact also requires a written
  variable; the runtime does not tell reads from writes, so that filter is left out.
- Otherwise every task step is interesting.

Plain callbacks and timer firings are never interesting. What the runtime cannot give
without footprints is the artifact's per-variable selection on plain shared attributes: a
checker's read of ``b`` and a setter's write of ``b`` are both just yields, so on the
SCTBench ports the walk is uniform over all accesses rather than over the accesses to one
drawn variable, which costs it on programs with one checker among many writers.

Guarantee: reproducible from ``seed``; a sample, never exhaustive. When the profile's
counts hold in every run, interleavings of the interesting events are drawn close to
uniformly. Not every schedule can be drawn: a task whose estimate is used up waits behind
the drawn target. Use it when a task with few operations must land between the many
operations of others, and when tasks are created one by one (the creator keeps the weight
of what it will create, so late tasks still meet early ones).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import accumulate, repeat
from operator import attrgetter
from typing import cast

from explorer._runtime import Candidate, Location, PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import processes, task_kind

_NO_TASK = frozenset({"loop", "clock", "fault"})
"""Process names of candidates that are not a task's step (:meth:`PointView.process`)."""

_YIELDS = frozenset({"step"})
"""Candidate kinds that are interesting in the ``sched_yield`` mode: a task resuming from a
bare yield, the place the user marked as a scheduling point."""

_EVERY_STEP = frozenset({"start", "step", "wakeup"})
"""Every kind of task step: the interesting kinds when a program has no bare yield."""

_TASK_OF = attrgetter("task")
_KIND_OF = attrgetter("kind")
"""Field readers for map(): a point's candidates read in C, not one Python call each."""


def parent_of(task: str) -> str | None:
    """The id of the task that created ``task``: ``main/worker#3`` -> ``main``."""
    cut = task.rfind("/")
    return task[:cut] if cut > 0 else None


def subtree_estimates(counts: dict[str, int]) -> dict[str, int]:
    """Each task's count plus its descendants' (over the tasks in ``counts``; a task whose
    parent is missing from ``counts`` passes its count to the nearest ancestor present)."""
    total = dict(counts)
    for task in sorted(counts, key=lambda t: -t.count("/")):
        parent = parent_of(task)
        while parent is not None and parent not in counts:
            parent = parent_of(parent)
        if parent is not None:
            total[parent] += total[task]
    return total


def shared_resources(touches: Mapping[str, Mapping[str, int]], tasks: int) -> dict[str, int]:
    """The resources that at least two tasks, and at least half of all tasks, stepped on,
    with their step counts: the artifact's filter for shared variables."""
    need = max(2, tasks // 2)
    return {resource: sum(by_task.values()) for resource, by_task in touches.items()
            if len(by_task) >= need}


Site = tuple[str, Location | None]
"""Where a step starts: its task's kind and the location it resumes from."""


class SURW(Strategy):
    """Uniform random walk over interesting events, weighted by estimated events left (the
    creator carrying its future children's); random priorities for the other events."""

    name = "surw"
    splitting = "seeded"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.runs = 0
        # What the runs so far showed (the profile).
        self._kinds: frozenset[str] | None = None  # the interesting kinds, once profiled
        self._counts: dict[str, int] = {}  # task -> most interesting steps seen in a run
        self._touches: dict[str, dict[str, int]] = {}  # resource -> task -> most steps
        self._creators: set[Site] = set()  # where the steps that created a task start
        self._creator_kinds: set[str] = set()  # their task kinds: most steps are of none
        self._estimate: dict[str, int] = {}
        self._target_resource: str | None = None
        # This run.
        self._log: list[tuple[str, str, str | None, Site]] = []  # task, kind, resource, site
        # The tasks seen in this run, and the process names of no task: a point that
        # brings nothing new is then one C-level subset test (_arrivals).
        self._seen: set[str] = set(_NO_TASK)
        self._last: tuple[str, Site] | None = None
        self._described: dict[int, Candidate] = {}
        self._verdicts: dict[int, bool] = {}  # see _judge
        self._judged: list[Candidate] = []
        self._cands: Sequence[Candidate] | None = None  # this point's, once read
        # What the last decision by draw left of its point (:meth:`_draw_next`): its
        # candidates but the one chosen, their tasks and their events left; [] if unknown.
        self._kept: list[Candidate] = []
        self._kept_ids: list[str] = []
        self._kept_lefts: list[int] = []
        # The verdicts at a point _draw_step judged but did not decide (_walk_described).
        self._flags: list[bool] = []
        # What the last decision by the walk (not by draw) left of its point
        # (:meth:`_walk_pending`): its candidates but the one that stepped, their tasks,
        # verdicts and priorities; [] if none.
        self._pend: list[Candidate] = []
        self._pend_ids: list[str] = []
        self._pend_flags: list[bool] = []
        self._pend_ranks: list[float] = []
        self._by_name = False  # whether this point's ids are its candidates' tasks
        self._left: dict[str, int] = {}
        self._born: Counter[str] = Counter()  # parent -> estimates of its children so far
        self._priority: dict[str, float] = {}
        self._held: set[str] = set()
        self._target: str | None = None
        self.targets_drawn = 0
        self.handovers = 0

    def start_run(self) -> bool:
        self.runs += 1
        self._log = []
        self._seen = set(_NO_TASK)
        self._last = None
        self._left = {}
        self._born = Counter()
        self._priority = {}
        self._held = set()
        self._target = None
        self._verdicts = {}
        self._judged = []
        self._kept = []
        self._pend = []
        if self.runs >= 2:
            self._estimate = self._draw_estimate()
        return True

    def choose(self, count: int, view: PointView) -> int:
        if self._kinds is not _YIELDS:
            # Describing names the resources a step waits on, in order of first mention
            # in the run, and in the other modes the decisions depend on those names
            # (the shared resources and their draw): describe only the candidates the
            # walk proposes, in its order, as the proposals always have.
            self._described = {}
            self._cands = None
            ids = processes(count, view)
        else:
            # Bare yields: no decision reads a resource name, and the walk judges about
            # half the candidates at every point; read them all in one call and take who
            # is who from them. A task's step (start, step, wakeup) is its task's
            # process; anything else (a plain callback, the timer, a network delivery, a
            # fault option) asks the runtime.
            cands = self._cands = view.candidates(count)
            kept = self._kept
            if kept and cands[:len(kept)] == kept:
                # The usual point: the last point's candidates but the one that ran, in
                # their order, then the steps queued since. Compared in C, by identity
                # first (the runtimes keep a ready step's description); equal
                # descriptions would do as well: everything reused follows from them.
                index = self._draw_next(cands, len(kept))  # logged there
                if index >= 0:
                    return index
            self._kept = []
            pend = self._pend
            if pend:
                self._pend = []  # good for this point only: the walk sets it again
                # As above, after a decision by the walk; a candidate of no task queued
                # last (a task's done callback) would send it to the full path anyway.
                if cands[-1].task is not None and cands[:len(pend)] == pend:
                    index = self._walk_pending(cands, len(pend), view)  # logged there
                    if index >= 0:
                        return index
            named = list(map(_TASK_OF, cands))
            by_name = self._by_name = (None not in named
                                       and _EVERY_STEP.issuperset(map(_KIND_OF, cands)))
            if self._target is None and not self._held and self._seen.issuperset(named):
                # Nobody new, nobody waits on a target.
                index = self._draw_step(cast("list[str]", named), cands)
                if index < 0 and by_name and _NO_TASK.isdisjoint(named):
                    # Where the full path goes (_walk_described) after the same draw.
                    index = self._walk_first(cast("list[str]", named), cands, view)
                if index >= 0:
                    self._record(index, cast("str", named[index]), view)
                    return index
            ids = cast("list[str]", named) if by_name else processes(count, view)
        self._arrivals(ids, view)
        index = self._rng.randrange(count) if self.runs == 1 else self._walk(count, ids, view)
        self._record(index, ids[index], view)
        return index

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self._kinds is None:
            self._kinds = self._choose_kinds()
        kinds = self._kinds
        counts: Counter[str] = Counter({task: 0 for task in self._seen
                                        if task not in _NO_TASK})
        touches: dict[str, Counter[str]] = {}
        creators, creator_kinds = self._creators, self._creator_kinds
        for task, kind, resource, site in self._log:
            if site[0] in creator_kinds and site in creators:
                continue
            if kind in kinds:
                counts[task] += 1
            if resource is not None:
                touches.setdefault(resource, Counter())[task] += 1
        for task, n in counts.items():
            self._counts[task] = max(n, self._counts.get(task, 0))
        for resource, by_task in touches.items():
            known = self._touches.setdefault(resource, {})
            for task, n in by_task.items():
                known[task] = max(n, known.get(task, 0))
        self._log = []

    def coverage(self) -> str:
        return (f"{self.runs} SURW schedules (seed {self.seed}, the first a profiling run); "
                f"a sample, not exhaustive")

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed}

    def statistics(self) -> dict[str, Statistic]:
        mode = ("not yet profiled" if self._kinds is None
                else "bare yields" if self._kinds is _YIELDS
                else "one shared resource per run" if self._shared()
                else "every step")
        return {"tasks_profiled": len(self._counts), "interesting": mode,
                "targets_drawn": self.targets_drawn, "handovers": self.handovers}

    def estimates(self) -> dict[str, int]:
        """Each task's estimated interesting events for the next run, its descendants'
        included (in the ``sched_yield`` mode, or the every-step mode without a shared
        resource; empty before the profiling run ends)."""
        return subtree_estimates(self._counts)

    # ------------------------------------------------------------------ helpers

    def _walk(self, count: int, ids: Sequence[str], view: PointView) -> int:
        """One decision of a run after the profiling run (the module docstring)."""
        if _NO_TASK.isdisjoint(ids):
            return self._walk_tasks(count, ids, view)
        return self._walk_mixed(count, ids, view)

    def _walk_mixed(self, count: int, ids: Sequence[str], view: PointView) -> int:
        """:meth:`_walk_any` in one pass: the same proposals and the same draws.

        The tasks keep their priorities from one proposal to the next, so they are
        proposed in decreasing priority (the lowest index among equals); a candidate of
        no task draws afresh at each proposal (:meth:`_propose`, in index order), so
        each proposal weighs the next task against the best of its fresh draws. With a
        candidate of no task free at every proposal (none is ever held), the candidates
        free are ``free`` less the tasks held so far, and the target, if none was
        drawn, is drawn at the first proposal, among all of ``free``."""
        priority = self._priority
        held = self._held
        draw = self._rng.random
        free = self._free(count, ids)
        keys = list(map(ids.__getitem__, free))
        # The first proposal's draws, as _propose makes them.
        ranks: list[float | None] = list(map(priority.get, keys))
        others: list[int] = []  # the positions in ``free`` of the candidates of no task
        fresh: list[float] = []  # their draws at this proposal
        at = -1
        while None in ranks:
            at = ranks.index(None, at + 1)
            key = keys[at]
            if key in _NO_TASK:
                others.append(at)
                fresh.append(draw())
                ranks[at] = -1.0  # after every task in the order below
            else:  # drawn once for a task, if it shows up twice
                rank = priority.get(key)
                ranks[at] = priority[key] = draw() if rank is None else rank
        tasks = len(keys) - len(others)
        order = sorted(range(len(keys)), key=cast("list[float]", ranks).__getitem__,
                       reverse=True)[:tasks]  # stable: equal ranks stay in index order
        cands = self._cands
        flags: list[bool] | None = None
        if cands is not None:  # every verdict at once, in C (judging is no proposal)
            known: list[bool | None] = list(map(self._verdicts.get, map(id, cands)))
            for o in others:  # never interesting, never judged (_interesting)
                known[free[o]] = False
            while None in known:
                i = known.index(None)
                known[i] = self._judge_new(ids[i], cands[i])
            flags = cast("list[bool]", known)
        single = others[0] if len(others) == 1 else -1  # the usual: one plain callback
        best = max(fresh)
        t = 0
        while True:
            other = single if single >= 0 else others[fresh.index(best)]  # first of equals
            while t < tasks and keys[order[t]] in held:  # a task twice, held at once
                t += 1
            if t == tasks:
                return free[other]
            k = order[t]
            rank = cast("float", ranks[k])
            if best > rank or (best == rank and other < k):
                return free[other]  # it steps: nothing is interesting about it
            index, task = free[k], keys[k]
            if not (flags[index] if flags is not None
                    else self._interesting(index, task, view)):
                del priority[task]
                return index
            left = self._left
            if left[task] == 0:
                left[task] = 1
            if self._target is None:  # the first proposal: nothing held yet
                self._target = self._draw_target(free, ids)
            if task == self._target:
                left[task] -= 1
                self._target = None
                held.clear()
                return index
            held.add(task)
            t += 1
            if single >= 0:
                best = draw()
            else:
                fresh = [draw() for _ in others]
                best = max(fresh)

    def _walk_any(self, count: int, ids: Sequence[str], view: PointView) -> int:
        """:meth:`_walk` by proposals: the free candidate of highest priority, again and
        again, until one may step."""
        while True:
            free = self._free(count, ids)
            index = self._propose(free, ids)
            if self._steps(index, ids, view, free):
                return index

    def _walk_tasks(self, count: int, ids: Sequence[str], view: PointView) -> int:
        """:meth:`_walk` when every candidate is a task's step, in one pass.

        Same decisions and the same random draws as :meth:`_walk_any`: its successive
        proposals are the free candidates in decreasing priority (a task keeps its priority
        until it steps, and only candidates of no task draw afresh at each proposal), so
        they are visited in that order once instead of searched for again each time. A
        target is drawn only at the first proposal (afterwards there is one until a
        candidate steps), when the candidates free are all of ``free``
        (:meth:`_walk_sorted`; :meth:`_walk_described` first when it can do without the
        order)."""
        cands = self._cands
        if cands is not None and self._target is None and not self._held:
            return self._walk_described(ids, cands, view)
        return self._walk_sorted(count, ids, view)

    def _draw_step(self, ids: Sequence[str], cands: Sequence[Candidate],
                   judged: list[bool] | None = None) -> int:
        """The decision at a point of task steps all read, with no target drawn and
        nothing held back, when every candidate is interesting and none has used up its
        events; -1 at any other point (after judging every candidate, unless their
        verdicts are given: ``judged``, taken over).

        There the walk's proposals are all held back until the target's, which steps
        and releases them: the decision is the target's draw, and the priorities play
        no part (the new ones are drawn all the same, before the target, to keep the
        random stream as it is). Judging every candidate costs one lookup each; a
        verdict changes nothing but the memo (:meth:`_judge`)."""
        if judged is None:
            known: list[bool | None] = list(map(self._verdicts.get, map(id, cands)))
            while None in known:  # not judged yet: about one new step per point
                i = known.index(None)
                known[i] = self._judge_new(ids[i], cands[i])
            judged = cast("list[bool]", known)
        flags = self._flags = judged
        if not all(flags) or not _NO_TASK.isdisjoint(ids):
            return -1
        left = self._left
        lefts = list(map(left.__getitem__, ids))
        if 0 in lefts:  # the used up count one when proposed: that needs the order
            return -1
        self._draw_missing(ids)
        return self._draw_among(list(ids), lefts, cands)

    def _draw_next(self, cands: Sequence[Candidate], kept: int) -> int:
        """:meth:`_draw_step` at a point whose first ``kept`` candidates are those the
        last decision by draw left (:attr:`_kept`): interesting, each task with a
        priority and events left, as they were then (every change to a task's events
        left or priority but the target's is made at a point that draws no target this
        way, and that clears :attr:`_kept`). Only the steps queued since are read. The
        step chosen is logged here (:meth:`_note`)."""
        verdicts = self._verdicts
        left = self._left
        priority = self._priority
        if len(cands) == kept + 1:  # the usual: one step queued since, read without lists
            candidate = cands[kept]
            task = candidate.task
            if task is None or task not in self._seen or task in _NO_TASK:
                return -1  # somebody new (or no task's step): the full path
            # A step queued since the last point, judged here as _interesting_step does
            # in this mode (bare yields: no resource is drawn), and memoized (_judge_new)
            # for the points that read every verdict.
            kind = task_kind(task)
            verdicts[id(candidate)] = verdict = candidate.kind in _YIELDS and not (
                kind in self._creator_kinds and (kind, candidate.location) in self._creators)
            self._judged.append(candidate)
            if not verdict:
                return -1
            events = left[task]
            if events == 0:
                return -1
            if task not in priority:
                priority[task] = self._rng.random()
            ids = self._kept_ids  # taken over: _draw_among sets the next ones
            ids.append(task)
            lefts = self._kept_lefts
            lefts.append(events)
        else:
            new = cands[kept:]
            new_ids = list(map(_TASK_OF, new))
            if not self._seen.issuperset(new_ids) or not _NO_TASK.isdisjoint(new_ids):
                return -1
            for task, candidate in zip(new_ids, new, strict=True):
                known = verdicts.get(id(candidate))
                if not (self._judge_new(task, candidate) if known is None else known):
                    return -1
            new_lefts = list(map(left.__getitem__, new_ids))
            if 0 in new_lefts:
                return -1
            draw = self._rng.random
            for task in new_ids:  # in the order of the candidates, as _draw_step
                if task not in priority:
                    priority[task] = draw()
            ids = self._kept_ids + new_ids
            lefts = self._kept_lefts + new_lefts
        # _draw_among and _note, written out: this is most points' whole decision.
        self.targets_drawn += 1
        cumulative = list(accumulate(lefts))
        target = ids[bisect_right(cumulative, self._rng.random() * (cumulative[-1] + 0.0),
                                  0, len(cumulative) - 1)]
        left[target] -= 1
        index = ids.index(target)  # its lowest index: equal ids, equal priorities
        del ids[index]
        if target in ids:  # a task twice: its other events left changed as well
            self._kept = []
        else:
            del lefts[index]
            kept_now = list(cands)
            del kept_now[index]
            self._kept, self._kept_ids, self._kept_lefts = kept_now, ids, lefts
        candidate = cands[index]
        site = (task_kind(target), candidate.location)
        self._log.append((target, candidate.kind, candidate.resource, site))
        self._last = (target, site)
        return index

    def _draw_among(self, ids: list[str], lefts: list[int],
                    cands: Sequence[Candidate]) -> int:
        """:meth:`_draw_target` over every candidate (``lefts``: their events left, none
        used up, so none is filtered out), then the target's step; :attr:`_kept` is
        what remains of the point. Takes ``ids`` and ``lefts`` over."""
        self.targets_drawn += 1
        cumulative = list(accumulate(lefts))
        target = ids[bisect_right(cumulative, self._rng.random() * (cumulative[-1] + 0.0),
                                  0, len(cumulative) - 1)]
        self._left[target] -= 1
        index = ids.index(target)  # its lowest index: equal ids, equal priorities
        del ids[index]
        if target in ids:  # a task twice: its other events left changed as well
            self._kept = []
            return index
        del lefts[index]
        kept = list(cands)
        del kept[index]
        self._kept, self._kept_ids, self._kept_lefts = kept, ids, lefts
        return index

    def _walk_described(self, ids: Sequence[str], cands: Sequence[Candidate],
                        view: PointView) -> int:
        """:meth:`_walk_tasks` at a point whose candidates were all read and where no
        target is drawn and nothing held back: the usual point when every step is
        interesting (:meth:`_draw_step`). Otherwise no sort either up to the target's
        draw: the first proposal is the highest priority (the lowest index among
        equals); past it, the order is walked (:meth:`_walk_sorted`, from the state
        reached here: the same proposals)."""
        index = self._draw_step(ids, cands)
        if index >= 0:
            return index
        return self._walk_first(ids, cands, view)

    def _walk_first(self, ids: Sequence[str], cands: Sequence[Candidate],
                    view: PointView) -> int:
        """:meth:`_walk_described` past a :meth:`_draw_step` that did not decide (its
        verdicts in :attr:`_flags`)."""
        priority = self._priority
        self._draw_missing(ids)
        flags = self._flags  # every candidate's, judged by _draw_step
        left = self._left
        ranks = list(map(priority.__getitem__, ids))
        index = ranks.index(max(ranks))  # the lowest index among the highest priorities
        task = ids[index]
        if not flags[index]:
            if self._by_name:
                self._carry(index, ids, ranks, flags)
            return self._step_plain(index, task, cands[index])
        if left[task] == 0:
            left[task] = 1
        target = self._draw_target(list(range(len(ids))), ids)
        if task == target:
            if self._by_name:
                self._carry(index, ids, ranks, flags)
            return self._step_target(index, task, cands[index])
        self._target = target
        self._held.add(task)
        return self._walk_sorted(len(ids), ids, view, ranks, flags)

    def _walk_sorted(self, count: int, ids: Sequence[str], view: PointView,
                     ranks: list[float] | None = None,
                     flags: list[bool] | None = None) -> int:
        """:meth:`_walk_tasks` in general: the free candidates visited in decreasing
        priority. ``ranks`` and ``flags``, when known, are every candidate's priority and
        verdict (the candidates all described): a point's stay as they are until a
        candidate steps."""
        priority = self._priority
        held = self._held
        left = self._left
        cands = self._cands  # this point's descriptions, if choose read them all
        if cands is not None and flags is None:  # every verdict, in C (see _judge)
            known: list[bool | None] = list(map(self._verdicts.get, map(id, cands)))
            while None in known:
                i = known.index(None)
                known[i] = self._judge_new(ids[i], cands[i])
            flags = cast("list[bool]", known)
        while True:
            free = self._free(count, ids)
            if ranks is None:
                if not all(map(priority.__contains__, ids)):  # somebody new: as _propose
                    draw = self._rng.random
                    for i in free:  # in this order
                        if ids[i] not in priority:
                            priority[ids[i]] = draw()
                # Every candidate has a priority now (a held one kept its own).
                ranks = list(map(priority.__getitem__, ids))
            # Highest first; among equal ones the lowest index, as _propose: a stable sort
            # of ``free`` (ascending) keeps equal keys in order, reverse=True included.
            order = sorted(free, key=ranks.__getitem__, reverse=True)
            target = self._target
            at: Callable[[int], Candidate] = (
                cands.__getitem__ if cands is not None
                else partial(self._candidate, view=view))  # described when proposed
            judge = self._judge
            start = 0
            if target is None:  # the first proposal, the only one before a target is drawn
                index = order[0]
                task = ids[index]
                if not judge(task, at(index)):
                    return self._step_plain(index, task, at(index))
                if left[task] == 0:
                    left[task] = 1
                target = self._target = self._draw_target(free, ids)
                if task == target:
                    return self._step_target(index, task, at(index))
                held.add(task)
                start = 1
            # The proposals that follow (what _steps does one by one, in one pass): the free
            # candidates in order down to the target's first index (all of them if the
            # target is not a candidate: equal ids have equal priorities, so its lowest
            # index comes first). Each interesting one is held back; the first that is not
            # interesting steps; if none, the target's proposal comes.
            try:
                stop = order.index(ids.index(target), start)
            except ValueError:
                stop = len(order)
            ahead = order[start:stop]
            if flags is not None:  # every verdict known: theirs, in C
                passing = list(map(flags.__getitem__, ahead))
                cut = passing.index(False) if False in passing else len(ahead)
            else:  # describe no further than the proposals go
                cut = next((k for k, i in enumerate(ahead) if not judge(ids[i], at(i))),
                           len(ahead))
            passed = list(map(ids.__getitem__, ahead[:cut]))
            held.update(passed)
            if 0 in map(left.__getitem__, passed):  # used up: counts one when proposed
                for task in passed:
                    if left[task] == 0:
                        left[task] = 1
            if cut < len(ahead):
                index = ahead[cut]
                if flags is not None and self._by_name:  # the target stays pending
                    self._carry(index, ids, ranks, flags)
                return self._step_plain(index, ids[index], at(index))
            if stop < len(order):
                index = order[stop]
                if not judge(target, at(index)):
                    if flags is not None and self._by_name:
                        self._carry(index, ids, ranks, flags)
                    return self._step_plain(index, target, at(index))
                if left[target] == 0:
                    left[target] = 1
                if flags is not None and self._by_name:
                    self._carry(index, ids, ranks, flags)
                return self._step_target(index, target, at(index))
            held.clear()  # all held: as _walk_any, draw again from everyone
            self._target = None

    def _carry(self, index: int, ids: Sequence[str], ranks: list[float],
               flags: list[bool]) -> None:
        """Keep for the next point what the walk's step of candidate ``index`` leaves of
        this one (:meth:`_walk_pending`): every candidate but it, with its task, verdict
        and priority (``ranks`` and ``flags``, this point's, are taken over); nothing if
        its task has another candidate, whose priority may go with this step."""
        kept_ids = list(ids)
        del kept_ids[index]
        if ids[index] in kept_ids:
            return
        kept = list(cast("Sequence[Candidate]", self._cands))
        del kept[index]
        del ranks[index]
        del flags[index]
        self._pend, self._pend_ids, self._pend_ranks, self._pend_flags = (
            kept, kept_ids, ranks, flags)

    def _walk_pending(self, cands: Sequence[Candidate], kept: int, view: PointView) -> int:
        """The decision at a point whose first ``kept`` candidates are those the last
        decision by the walk left (:attr:`_pend`), as the full path makes it: their
        tasks, verdicts and priorities are as they were then (a priority goes only when
        its task steps; verdicts are forgotten only when a creator site is learnt, at a
        task's first showing up, which this path leaves to the full one). Only the steps
        queued since are read; -1 (nothing changed but verdicts memoized) if one of them
        is not the step of a task seen, or if every candidate is held back. The step
        chosen is logged here (:meth:`_note`)."""
        new = cands[kept:]
        new_ids = cast("list[str]", list(map(_TASK_OF, new)))
        if not self._seen.issuperset(new_ids) or not _NO_TASK.isdisjoint(new_ids) \
                or not _EVERY_STEP.issuperset(map(_KIND_OF, new)):
            return -1
        ids = self._pend_ids + new_ids
        held = self._held
        target = self._target
        if (held if target is None else held.issuperset(ids)):
            return -1  # a state the full path sorts out (_free)
        flags = self._pend_flags
        if len(new) == 1:  # the usual: judged and memoized as in _draw_next
            candidate, task = new[0], new_ids[0]
            kind = task_kind(task)
            self._verdicts[id(candidate)] = verdict = candidate.kind in _YIELDS and not (
                kind in self._creator_kinds and (kind, candidate.location) in self._creators)
            self._judged.append(candidate)
            flags.append(verdict)
        else:
            flags.extend(map(self._judge, new_ids, new))
        self._by_name = True
        if target is None:  # as choose: the draw first, then the walk
            index = self._draw_step(ids, cands, flags)
            if index < 0:
                index = self._walk_first(ids, cands, view)
            self._note(ids[index], cands[index])
            return index
        priority = self._priority
        draw = self._rng.random
        for task in new_ids:  # the only free candidates with none, in order (_walk_sorted)
            if task not in priority and task not in held:
                priority[task] = draw()
        ranks = self._pend_ranks
        ranks.extend(map(priority.__getitem__, new_ids))
        index = self._walk_sorted(len(ids), ids, view, ranks, flags)
        self._note(ids[index], cands[index])
        return index

    def _step_plain(self, index: int, task: str, candidate: Candidate) -> int:
        """Candidate ``index`` steps as an event that is not interesting: its task draws
        a new priority at its next proposal (:meth:`_steps`)."""
        del self._priority[task]
        self._described[index] = candidate  # for _record
        return index

    def _step_target(self, index: int, task: str, candidate: Candidate) -> int:
        """Candidate ``index``, the target, takes its interesting step (:meth:`_steps`)."""
        self._left[task] -= 1
        self._target = None
        self._held.clear()
        self._described[index] = candidate  # for _record
        return index

    def _free(self, count: int, ids: Sequence[str]) -> list[int]:
        """The candidates not held back; all of them (and a new target to draw) when every
        one waits on a target that cannot step."""
        held = self._held
        if not held:  # most points: nothing waits on a target
            return list(range(count))
        free = [i for i in range(count) if ids[i] not in held]
        if not free:
            held.clear()
            self._target = None
            free = list(range(count))
        return free

    def _steps(self, index: int, ids: Sequence[str], view: PointView,
               free: list[int]) -> bool:
        """Whether proposed candidate ``index`` steps now: it is not interesting, or it is
        the target (drawn among ``free`` if there is none); otherwise it is held back."""
        task = ids[index]
        if not self._interesting(index, task, view):
            self._priority.pop(task, None)
            return True
        left = self._left
        if left[task] == 0:
            left[task] = 1
        if self._target is None:
            self._target = self._draw_target(free, ids)
        if task != self._target:
            self._held.add(task)
            return False
        left[task] -= 1
        self._target = None
        self._held.clear()
        return True

    def _candidate(self, index: int, view: PointView) -> Candidate:
        """Candidate ``index`` described once per point (describing walks frames)."""
        if self._cands is not None:  # choose read them all
            return self._cands[index]
        described = self._described.get(index)
        if described is None:
            described = self._described[index] = view.candidate(index)
        return described

    def _arrivals(self, ids: Sequence[str], view: PointView) -> None:
        """Note the tasks that show up for the first time in this run: where the step
        that created them starts, and (after the profiling run) their events left."""
        seen = self._seen
        if seen.issuperset(ids):  # the common case: nobody new
            return
        for task in ids:
            if task in seen:  # _NO_TASK's names are in it from the start of the run
                continue
            seen.add(task)
            last = self._last
            if last is not None and last[0] == view.current() \
                    and parent_of(task) == last[0] and last[1] not in self._creators:
                self._creators.add(last[1])
                self._creator_kinds.add(last[1][0])
                self._verdicts.clear()  # a verdict may be about this site: judge again
                self._judged.clear()
            if self.runs >= 2:
                self._arrive(task)

    def _record(self, index: int, task: str, view: PointView) -> None:
        if task in _NO_TASK:
            return
        cands = self._cands
        self._note(task, cands[index] if cands is not None else self._candidate(index, view))

    def _note(self, task: str, candidate: Candidate) -> None:
        """Log the step of ``task`` chosen to run (described by ``candidate``)."""
        site = (task_kind(task), candidate.location)
        self._log.append((task, candidate.kind, candidate.resource, site))
        self._last = (task, site)

    def _choose_kinds(self) -> frozenset[str]:
        """The interesting kinds, from the profiling run: bare yields if it had any that
        did not create a task, else every kind of step."""
        for _, kind, _, site in self._log:
            if kind in _YIELDS and site not in self._creators:
                return _YIELDS
        return _EVERY_STEP

    def _shared(self) -> dict[str, int]:
        if self._kinds is not _EVERY_STEP:
            return {}
        return shared_resources(self._touches, len(self._counts))

    def _draw_estimate(self) -> dict[str, int]:
        """Draw this run's interesting resource (if any is shared) and each task's
        estimate of interesting events, its descendants' included."""
        shared = self._shared()
        if not shared:
            self._target_resource = None
            return subtree_estimates(self._counts)
        resources = sorted(shared)
        self._target_resource = self._rng.choices(
            resources, weights=[shared[r] for r in resources])[0]
        by_task = self._touches[self._target_resource]
        return subtree_estimates({task: by_task.get(task, 0) for task in self._counts})

    def _arrive(self, task: str) -> None:
        """A task shows up for the first time in this run: its events left are its
        estimate, less its children's already here; they are taken off its creator's,
        and the target may pass to it."""
        mine = self._estimate.get(task, 0)
        self._left[task] = max(0, mine - self._born[task])
        parent = parent_of(task)
        if parent is None:
            return
        self._born[parent] += mine
        theirs = self._left.get(parent)
        if theirs is None or theirs <= 0:
            return
        if self._target == parent and mine >= self._rng.randint(1, theirs):
            self._target = task
            self.handovers += 1
        self._left[parent] = max(0, theirs - mine)

    def _draw_missing(self, ids: Sequence[str]) -> None:
        """A priority for every task of ``ids`` that has none, drawn in their order (as
        :meth:`_propose` would draw them), when every candidate is free."""
        priority = self._priority
        if not all(map(priority.__contains__, ids)):  # somebody new
            draw = self._rng.random
            for task in ids:
                if task not in priority:
                    priority[task] = draw()

    def _propose(self, free: list[int], ids: Sequence[str]) -> int:
        """The free candidate of highest random priority (drawn when missing). Candidates
        of no task (plain callbacks, the timer, the options of a fault point) share their
        process name, so each draws afresh: every option keeps a chance."""
        priority = self._priority
        keys = ids if len(free) == len(ids) else list(map(ids.__getitem__, free))
        # Read in C; no candidate of no task has a priority kept (None: draw one now).
        ranks: list[float | None] = list(map(priority.get, keys))
        if None in ranks:  # the draws in the order of ``free``, as they always were
            draw = self._rng.random
            for k, rank in enumerate(ranks):
                if rank is None:
                    key = keys[k]
                    if key in _NO_TASK:
                        ranks[k] = draw()
                    else:  # drawn once for a task, if it shows up twice
                        rank = priority.get(key)
                        ranks[k] = priority[key] = draw() if rank is None else rank
        return free[ranks.index(max(cast("list[float]", ranks)))]  # the first of equals

    def _interesting(self, index: int, task: str, view: PointView) -> bool:
        if task in _NO_TASK:
            return False
        return self._judge(task, self._candidate(index, view))

    def _judge(self, task: str, candidate: Candidate) -> bool:
        """Whether the step ``candidate`` of ``task`` is an interesting event, once per
        description: the runtime keeps a ready step's description (the same object)
        until it runs, so a step proposed at many points is judged once. Verdicts are
        kept by the description's id until the run ends or a creator site is learnt, and
        the descriptions judged are kept alive as long (:attr:`_judged`): no other object
        can take the id of one of them, so an id found is that very description."""
        known = self._verdicts.get(id(candidate))
        if known is not None:
            return known
        return self._judge_new(task, candidate)

    def _judge_new(self, task: str, candidate: Candidate) -> bool:
        """:meth:`_judge` for a description not judged yet (its memo just looked up)."""
        verdict = self._interesting_step(task, candidate)
        self._verdicts[id(candidate)] = verdict
        self._judged.append(candidate)
        return verdict

    def _interesting_step(self, task: str, candidate: Candidate) -> bool:
        kind = task_kind(task)
        # The kind first: hashing a location costs more, and most tasks create none.
        if kind in self._creator_kinds and (kind, candidate.location) in self._creators:
            return False
        if self._target_resource is not None:
            return candidate.resource == self._target_resource
        return self._kinds is not None and candidate.kind in self._kinds

    def _draw_target(self, free: list[int], ids: Sequence[str]) -> str:
        """A free task with probability proportional to its events left."""
        keys = ids if len(free) == len(ids) else list(map(ids.__getitem__, free))
        # Candidates of no task have no events left (0), as the tasks used up.
        weights = list(map(self._left.get, keys, repeat(0)))
        self.targets_drawn += 1
        # random.Random.choices(tasks, weights)[0] over the tasks with events left,
        # spelled out (the same single draw, the same result), read in C: the zero
        # weights change no cumulative sum, so the first sum above the draw is that of
        # the same task, unless the draw rounds up to the total (the search's upper
        # bound then picks the last), and the last has no events left.
        cumulative = list(accumulate(weights))
        drawn = self._rng.random() * (cumulative[-1] + 0.0)
        at = bisect_right(cumulative, drawn, 0, len(cumulative) - 1)
        if weights[at] > 0:
            return keys[at]
        tasks = [key for key, weight in zip(keys, weights, strict=True) if weight > 0]
        cumulative = list(accumulate(weight for weight in weights if weight > 0))
        return tasks[bisect_right(cumulative, drawn, 0, len(cumulative) - 1)]
