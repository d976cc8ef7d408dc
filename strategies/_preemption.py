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
decision after its parent's plan): the search is a depth-first walk of that tree, pruned
where a plan's switches exceed the round. A plan's run is remembered (its candidate counts
and which candidate could continue, per point) so that a later round expands it without
running it again.

Guarantee: when :attr:`PreemptionBounded.exhausted` is true, every schedule with at most
``preemption_bound`` switches has run (or every schedule, if no schedule has more), in this
worker's part when partitioned; :meth:`coverage` claims that and no more. A round that
finds no schedule with exactly k switches ends the search: a schedule with more would
have an ancestor in the tree with exactly k (each edge adds at most one switch).

Named ``PreemptionBounded`` after the literature; ``make_strategy("systematic",
preemption_bound=k)`` (``--strategy systematic --preemption-bound k``) builds it, since
it is the systematic search with switches instead of deviations as its measure.
"""

from __future__ import annotations

from collections.abc import Generator

from explorer._runtime import PointView
from explorer._switches import Lines, switch_mask
from explorer.strategies._base import Parameter, Statistic
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
        self.below_deviations: int | None = None
        """When set, the round of ``preemption_bound`` switches runs only schedules with
        fewer deviations than this (the shrinker's proof sets it to its best so far)."""
        self.limited = False

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
                           f"{self.below_deviations} deviation(s)")
            return (f"{part}all schedules with at most {self.completed_rounds} switch(es)"
                    f"{limited} ({self.schedules} schedules)")
        return f"{self.schedules} schedule(s); not even the round of 0 switches completed"

    def describe(self) -> dict[str, Parameter]:
        described: dict[str, Parameter] = {"name": self.name,
                                           "preemption_bound": self.preemption_bound}
        if self.count > 1:
            described["partition"] = f"{self.index + 1}/{self.count}"
        return described

    def statistics(self) -> dict[str, Statistic]:
        return {"completed_rounds": self.completed_rounds,
                "space_finished": self.space_finished, "probes": self.probes}

    # ------------------------------------------------------------------ search

    def _rounds(self) -> _Search:
        k = 0
        while self.preemption_bound is None or k <= self.preemption_bound:
            found = yield from self._walk((), 0, 0, k)
            if found == 0:
                # Nothing with k switches: nothing with more either, unless the round was
                # cut by the deviation limit, which says nothing about the rest.
                self.space_finished = not self.limited
                return
            self.completed_rounds = k
            k += 1

    def _walk(self, plan: Plan, cost: int, deviations: int, k: int
              ) -> Generator[Plan, Shape, int]:
        """Run (or recall) ``plan``, whose schedule has ``cost`` switches and whose
        decisions deviate ``deviations`` times, then every child plan with at most ``k``
        switches; count the schedules with exactly ``k``."""
        found = 0
        shape = self._shapes.get(plan)
        if cost == k or shape is None:
            # The empty plan's run is worker 0's schedule; another worker runs it only to
            # learn the tree's first level (a probe), and goes on to round 1 regardless.
            self._probe = cost < k or (plan == () and self.index != 0)
            shape = yield plan
            found = 1 if cost == k else 0
            if self.preemption_bound is None or k < self.preemption_bound:
                self._shapes[plan] = shape  # the next round expands it without a run
        start = len(plan)
        keep = list(plan)
        # In the last round, a child whose decisions so far already deviate at least
        # ``below_deviations`` times has no descendant with fewer (a child changes only
        # later decisions): skipped, when that limit is set.
        limit = self.below_deviations if k == self.preemption_bound else None
        for point in range(start, len(shape)):
            if limit is not None and deviations >= limit:
                self.limited = True
                break
            count, going, switches = shape[point]
            if not (plan == () and point % self.count != self.index):
                for choice in range(count):
                    if choice == going:
                        continue
                    extra = (switches >> choice) & 1
                    more = deviations + (choice != 0)
                    if cost + extra > k:
                        continue
                    if limit is not None and more >= limit:
                        self.limited = True
                        continue
                    found += yield from self._walk((*keep, choice), cost + extra, more, k)
            keep.append(going)
            deviations += going != 0
        return found
