"""``systematic``: depth-first search ordered by increasing number of deviations.

Round k runs every schedule with exactly k deviations from the stock order (round 0 is the
stock schedule). Within a round the search is depth-first over where the deviations go.
Rounds are disjoint, so no schedule runs twice as a counted schedule. To learn how many
candidates each point of a k-1 deviation prefix offers, the search re-runs that prefix
once ("probe") before trying its extensions; probes are not counted as new schedules.

Guarantee: when :attr:`Systematic.exhausted` is true, every schedule with at most
``deviation_bound`` deviations has run (or every schedule at all, if no longer schedule
exists) — the claim :meth:`coverage` makes, and no other.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TypeVar

from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Statistic, Strategy

_Y = TypeVar("_Y")
_S = TypeVar("_S")

Plan = tuple[tuple[int, int], ...]
# yields (plan, is_probe); receives the candidate counts seen by that run
_Search = Generator[tuple[Plan, bool], list[int], None]


class RoundSearch(Strategy):
    """What the systematic searches share: a search generator walked one run at a time
    (it yields what the next run follows and is sent what that run showed), the worker's
    part of a partitioned search, and the count of schedules and probes (re-runs of a
    counted schedule, made only to learn its shape)."""

    splitting = "partition"

    def __init__(self, partition: tuple[int, int]) -> None:
        index, count = partition
        if not 0 <= index < count:
            raise ValueError(f"partition must be (index, count) with 0 <= index < count, "
                             f"got {partition}")
        self.index, self.count = index, count
        self._probe = False
        self._started = False
        self._done = False
        self.space_finished = False
        self.completed_rounds = -1
        self.schedules = 0
        self.probes = 0

    def _advance(self, search: Generator[_Y, _S, None], seen: _S) -> _Y | None:
        """The next item of ``search``, sent ``seen`` (what the last run showed); None
        once it has ended."""
        if self._done:
            return None
        try:
            if not self._started:
                self._started = True
                return next(search)
            return search.send(seen)
        except StopIteration:
            self._done = True
            return None

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self._probe:
            self.probes += 1
        else:
            self.schedules += 1

    @property
    def counts_as_schedule(self) -> bool:
        return not self._probe

    @property
    def exhausted(self) -> bool:
        return self._done

    def statistics(self) -> dict[str, Statistic]:
        return {"completed_rounds": self.completed_rounds,
                "space_finished": self.space_finished, "probes": self.probes}

    def _described(self, bound: str, value: int | None) -> dict[str, Parameter]:
        """The strategy's name, its bound, and the worker's part when it has one."""
        described: dict[str, Parameter] = {"name": self.name, bound: value}
        if self.count > 1:
            described["partition"] = f"{self.index + 1}/{self.count}"
        return described


class Systematic(RoundSearch):
    """Enumerate schedules by deviation count: 0, then 1, then 2, ... up to the bound."""

    name = "systematic"

    def __init__(self, deviation_bound: int | None = None, *,
                 partition: tuple[int, int] = (0, 1)) -> None:
        if deviation_bound is not None and deviation_bound < 0:
            raise ValueError(f"deviation_bound must be >= 0 or None, got {deviation_bound}")
        super().__init__(partition)
        self.deviation_bound = deviation_bound
        # Worker ``index`` of ``count`` runs the schedules whose first deviation is at a
        # scheduling point p with p % count == index (the stock schedule is worker 0's):
        # disjoint subtrees, together the whole search.
        self._search = self._rounds()
        self._plan: dict[int, int] = {}
        self._counts: list[int] = []

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        item = self._advance(self._search, self._counts)
        if item is None:
            return False
        plan, self._probe = item
        self._plan = dict(plan)
        self._counts = []
        return True

    def choose(self, count: int, view: PointView) -> int:
        counts = self._counts
        choice = self._plan.get(len(counts), 0)
        counts.append(count)
        return choice if choice < count else 0

    def coverage(self) -> str:
        part = ""
        if self.count > 1:
            part = (f"the part of worker {self.index + 1}/{self.count} (first deviation at a "
                    f"scheduling point p with p % {self.count} == {self.index}) of ")
        if self.space_finished:
            if part:
                return f"{part}all schedules ({self.schedules} schedules)"
            return f"all {self.schedules} schedules (the whole space)"
        if self.completed_rounds >= 0:
            return (f"{part}all schedules with at most {self.completed_rounds} deviation(s) "
                    f"({self.schedules} schedules)")
        return f"{self.schedules} schedule(s); not even the stock schedule's round completed"

    def describe(self) -> dict[str, Parameter]:
        return self._described("deviation_bound", self.deviation_bound)

    # ------------------------------------------------------------------ search

    def _rounds(self) -> _Search:
        root_counts = yield ((), self.index != 0)  # the stock schedule is worker 0's
        self.completed_rounds = 0
        k = 1
        while self.deviation_bound is None or k <= self.deviation_bound:
            leaves = yield from self._extend((), root_counts, -1, k)
            if leaves == 0:
                # A schedule with k + 1 deviations, first one at p, exists only if one with
                # k does (drop its last deviation): nothing is left, in this part either.
                self.space_finished = True
                return
            self.completed_rounds = k
            k += 1

    def _extend(self, plan: Plan, counts: list[int], last: int, remaining: int
                ) -> Generator[tuple[Plan, bool], list[int], int]:
        """Run every extension of ``plan`` with ``remaining`` more deviations after ``last``.

        Returns how many leaf schedules were run.
        """
        leaves = 0
        for point in range(last + 1, len(counts)):
            if not plan and point % self.count != self.index:
                continue  # another worker's subtree
            for choice in range(1, counts[point]):
                child = (*plan, (point, choice))
                if remaining == 1:
                    yield (child, False)
                    leaves += 1
                else:
                    child_counts = yield (child, True)
                    leaves += yield from self._extend(child, child_counts, point,
                                                      remaining - 1)
        return leaves
