"""Systematic search bounded by switches (preemption bounding).

A *switch* is a decision that sets aside the task that ran last while it could continue
(:mod:`explorer._switches`); every other decision is free. Round k runs every schedule
with exactly k switches, round 0 first, so that after round k every schedule with at most
k switches has run: the search of Musuvathi and Qadeer ("Iterative context bounding for
systematic testing of multithreaded programs", PLDI 2007), where a bug that needs few
preemptions is found early however many awaits the tasks make in between.

Within a round, free choices are branched over too: at a point where the running task is
not a candidate (it waits, or it finished), every candidate is tried, each at no cost;
where it is one, continuing it is free and each other candidate costs one switch. Each run
follows a plan (decisions at some points) and then *keeps going*: the running task
continues wherever it can, else the stock choice (0) runs. So each schedule is the
keep-going completion of exactly one plan, and the plans form a tree (a child changes one
decision after its parent's plan): the search walks that tree (see below for the order),
pruned where a plan's switches exceed the round. A plan's run is remembered (its
candidate counts and which candidate could continue, per point) so that a later round
expands it without running it again.

Guarantee: when :attr:`PreemptionBounded.exhausted` is true, every schedule with at most
``preemption_bound`` switches has run (or every schedule, if no schedule has more), in this
worker's part when partitioned; :meth:`coverage` claims that and no more. A round that
finds no schedule with exactly k switches ends the search: a schedule with more would
have an ancestor in the tree with exactly k (each edge adds at most one switch).

A plan's depth in the tree is exactly its schedule's number of *detours* (choices other
than keeping going, :mod:`explorer._switches`), and a round runs level by level: every
schedule of the round with 0 detours, then 1, ... (breadth first: each level is made from
the one above, so each plan still runs once). So the first failure a round meets has the
fewest detours for its switch count. The last round, whose plans no later round
expands, is walked depth first without keeping their shapes, unless
:attr:`PreemptionBounded.below_detours` is set: then it too runs level by level, stops
below that many detours, and :meth:`coverage` claims the last round only below it. The
shrinker's proof uses this.

Named ``PreemptionBounded`` after the literature; ``make_strategy("systematic",
preemption_bound=k)`` (``--strategy systematic --preemption-bound k``) builds it, since
it is the systematic search with switches instead of deviations as its measure.
"""

from __future__ import annotations

from collections.abc import Generator

from explorer._runtime import PointView
from explorer._switches import Lines, switch_mask
from explorer.strategies._base import Parameter
from explorer.strategies._systematic import RoundSearch

Plan = tuple[int, ...]
"""Decisions at points 0..len-1; the run keeps going after them."""
Shape = tuple[tuple[int, int, int], ...]
"""Per scheduling point of a run: (candidate count, the keep-going choice, the mask of the
choices that are switches: bit i for candidate i)."""
# yields a plan to run; receives the shape of that run
_Search = Generator[Plan, Shape, None]


class PreemptionBounded(RoundSearch):
    """Enumerate schedules by switch count: 0, then 1, then 2, ... up to the bound."""

    name = "systematic"

    def __init__(self, preemption_bound: int | None = None, *,
                 partition: tuple[int, int] = (0, 1)) -> None:
        if preemption_bound is not None and (
                not isinstance(preemption_bound, int) or preemption_bound < 0):
            raise ValueError(f"preemption_bound must be 0 or a positive integer, or None for "
                             f"no bound; got {preemption_bound!r}")
        super().__init__(partition)
        self.preemption_bound = preemption_bound
        # Worker ``index`` of ``count`` takes the plans whose first decision off the
        # keep-going run of the empty plan is at a point p with p % count == index (the
        # empty plan's run is worker 0's): disjoint subtrees, together the whole tree.
        self._shapes: dict[Plan, Shape] = {}
        self._search = self._rounds()
        self._plan: Plan = ()
        self._shape: list[tuple[int, int, int]] = []
        self._lines = Lines()
        self.below_detours: int | None = None
        """When set, the round of ``preemption_bound`` switches runs by increasing number
        of detours (0, then 1, ...) and only below this many; it is read afresh at every
        plan, so lowering it mid-round ends the round sooner (the shrinker's proof sets it
        to its best so far)."""
        self.limited = False
        """The final round was cut by ``below_detours``: it covered only the schedules
        with fewer detours."""

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        plan = self._advance(self._search, tuple(self._shape))
        if plan is None:
            return False
        self._plan = plan
        self._shape = []
        self._lines = Lines()
        return True

    def choose(self, count: int, view: PointView) -> int:
        shape = self._shape
        point = len(shape)
        running, here, owners = self._lines.look(count, view)
        going = here if here >= 0 else 0
        shape.append((count, going, switch_mask(running, here, owners)))
        plan = self._plan
        if point < len(plan):
            choice = plan[point]
            return choice if choice < count else 0
        return going

    def coverage(self) -> str:
        part = ""
        if self.count > 1:
            part = (f"the part of worker {self.index + 1}/{self.count} (first decision off "
                    f"the run-to-completion order at a scheduling point p with "
                    f"p % {self.count} == {self.index}) of ")
        if self.space_finished:
            return f"{part}all schedules ({self.schedules} schedules)" if part else \
                f"all {self.schedules} schedules (the whole space)"
        if self.completed_rounds >= 0:
            limited = ""
            if self.limited and self.completed_rounds == self.preemption_bound:
                limited = (f", those with {self.completed_rounds} only below "
                           f"{self.below_detours} detour(s)")
            return (f"{part}all schedules with at most {self.completed_rounds} switch(es)"
                    f"{limited} ({self.schedules} schedules)")
        return f"{self.schedules} schedule(s); not even the round of 0 switches completed"

    def describe(self) -> dict[str, Parameter]:
        return self._described("preemption_bound", self.preemption_bound)

    # ------------------------------------------------------------------ search

    def _rounds(self) -> _Search:
        k = 0
        while self.preemption_bound is None or k <= self.preemption_bound:
            if k == self.preemption_bound and self.below_detours is None:
                # No later round expands the last one's plans and no level recalls them:
                # walked depth first, keeping no shapes.
                found = yield from self._walk((), 0, k)
            else:
                found = yield from self._deepen(k)
            if found == 0:
                # Nothing with k switches: nothing with more either, unless the round was
                # cut by the detour limit, which says nothing about the rest.
                self.space_finished = not self.limited
                return
            self.completed_rounds = k
            k += 1

    def _deepen(self, k: int) -> Generator[Plan, Shape, int]:
        """The round of ``k`` switches level by level: level d holds the plans d deep (a
        plan's depth in the tree is its schedule's detours: each child adds one decision
        off the keep-going run, and the run keeps going after it), and runs those with
        ``k`` switches; the others, with fewer, ran in an earlier round and are recalled.
        Each level is made from the one above, so no plan runs twice. In the last round,
        only while d is below :attr:`below_detours` (when set: it is read afresh at every
        plan, so lowering it cuts the level short). Count the schedules with ``k``
        switches."""
        found = 0
        depth = 0
        level: list[tuple[Plan, int]] = [((), 0)]
        while level:
            below: list[tuple[Plan, int]] = []
            for plan, cost in level:
                limit = self.below_detours if k == self.preemption_bound else None
                if limit is not None and depth >= limit:
                    self.limited = True  # what is left cannot have fewer detours
                    return found
                shape = self._shapes.get(plan)
                fresh = cost == k
                if fresh or shape is None:
                    # The empty plan's run is worker 0's schedule; another worker runs it
                    # only to learn the tree's first level (a probe).
                    self._probe = not fresh or (plan == () and self.index != 0)
                    shape = yield plan
                    found += fresh
                    if self.preemption_bound is None or k < self.preemption_bound:
                        self._shapes[plan] = shape  # the next round expands it unrun
                below += self._children(plan, cost, shape, k)
            level = below
            depth += 1
        return found

    def _children(self, plan: Plan, cost: int, shape: Shape, k: int
                  ) -> list[tuple[Plan, int]]:
        """The child plans of ``plan`` (whose schedule has ``cost`` switches and the
        given shape) with at most ``k`` switches, each with its switch count."""
        children: list[tuple[Plan, int]] = []
        keep = list(plan)
        for point in range(len(plan), len(shape)):
            count, going, switches = shape[point]
            if not (plan == () and point % self.count != self.index):
                for choice in range(count):
                    if choice == going:
                        continue
                    extra = (switches >> choice) & 1
                    if cost + extra <= k:
                        children.append(((*keep, choice), cost + extra))
            keep.append(going)
        return children

    def _walk(self, plan: Plan, cost: int, k: int) -> Generator[Plan, Shape, int]:
        """The last round, depth first (no later round expands its plans, so their
        shapes are not kept): run (or recall) ``plan``, whose schedule has ``cost``
        switches, then every child plan with at most ``k``; count the schedules with
        exactly ``k``."""
        found = 0
        shape = self._shapes.get(plan)
        if cost == k or shape is None:
            self._probe = cost < k or (plan == () and self.index != 0)
            shape = yield plan
            found = 1 if cost == k else 0
        for child, child_cost in self._children(plan, cost, shape, k):
            found += yield from self._walk(child, child_cost, k)
        return found
