"""Shrinking a failing schedule to a minimal one that fails the same way.

Schedules are ordered by simplicity, as a person reads them: fewest **switches** first (a
switch sets aside a task that could have continued, :mod:`explorer._switches`), then
fewest **deviations** from the stock order, then fewest steps (nothing runs after the
failure), then lowest candidate indices. Letting one task run ahead through N awaits is
one switch and N deviations: the order counts it once. A candidate schedule is kept only
if it fails "the same way": the same outcome kind at the same source location with the
same exception type, compared without task numbers (:meth:`Outcome.stable_signature`:
moving a decision can renumber spawned tasks, which must not make a deadlock or a
leaked task look like another failure).

Passes, all deterministic:

1. take back switches: first, switch by switch in order, keep the schedule up to it and
   let every task run on from there without another switch (one run each: the switches
   after the one a failure needs are usually the stock order's rotation); then delta
   debugging (Zeller and Hildebrandt 2002) over the set of switches: all of them at once,
   then halves, quarters, ... down to each one alone.
   Taking back a switch lets the task that was set aside continue and moves the whole
   run-ahead the switch started (the chosen task's consecutive steps) later, in one try.
   Plans name tasks, not candidate indices (:class:`~explorer._switches.Follow`), so the
   edit survives the shifts it causes;
2. drop deviations (delta debugging over them, then each in turn), keeping a schedule
   only when it is simpler in the order above. Passes 1 and 2 share half of the budget;
3. the proof: the switch-bounded systematic search
   (:class:`~explorer.strategies.PreemptionBounded`) runs every schedule with fewer
   switches, round by round; when those rounds end without the same failure, the switch
   count is **proven minimal**. It then completes the round of the final switch count,
   keeping the simplest same failure: the deviation count is then **proven minimal among
   schedules with that many switches**. When the final switch count exceeds the
   deviation count (the preemption rounds would be the larger search), the deviation
   search (:class:`~explorer.strategies.Systematic`, fewer deviations) proves the
   deviations instead, and the switches stay unproven;
4. lower each remaining deviation's candidate index.

One exception to the order: a **livelock** compares deviations first. It is a long run, and
the stock order switches at every await, so its schedule with the fewest switches is one
task spinning until fairness forces the others, a deviation at each forced point; the stock
rotation plus the few decisions that keep it from ending is what a person reads.

Every run counts against the budget (runs and seconds); when it runs out the simplest
schedule so far is kept and :class:`ShrinkReport` says exactly what was proven and what
was not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import explorer.strategies as _strategies
from explorer._outcome import LIVELOCK, Outcome
from explorer._runtime import Chooser, RunRecord
from explorer._schedule import count_deviations
from explorer._switches import Follow, Point, count_switches, counting, switch_points
from explorer._switches import without_switches as _without

DEFAULT_MAX_RUNS = 2000
DEFAULT_MAX_SECONDS = 10.0

RunFn = Callable[[Chooser], RunRecord]
Signature = tuple[object, ...]
Key = tuple[int, int, int, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class ShrinkReport:
    """What shrinking did: switches, deviations and steps before and after, runs spent,
    and what is proven.

    ``switches_proven``: every schedule with fewer switches was run, none failed this way.
    ``deviations_proven``: no schedule with as few switches and fewer deviations fails
    this way (all were run). ``proven_minimal`` is both. ``budget_exhausted``: the budget
    (``max_runs`` runs, ``max_seconds`` seconds) ran out first. The switch fields are None
    in reports written before switches were counted."""

    original_deviations: int
    deviations: int
    original_steps: int
    steps: int
    runs: int
    proven_minimal: bool
    budget_exhausted: bool
    original_switches: int | None = None
    switches: int | None = None
    switches_proven: bool = False
    deviations_proven: bool = False
    max_runs: int = DEFAULT_MAX_RUNS
    max_seconds: float = DEFAULT_MAX_SECONDS
    deviations_cut: bool = False

    def describe(self) -> str:
        if self.switches is None:  # a report from before switches were counted
            proof = ("minimal: no schedule with fewer deviations fails this way"
                     if self.proven_minimal else
                     "minimality not proven within the shrinking budget")
            return (f"shrunk from {self.original_deviations} to {self.deviations} "
                    f"deviation(s) and {self.original_steps} to {self.steps} steps in "
                    f"{self.runs} runs; {proof}")
        now = f"{_count(self.switches, 'switch')}, {_count(self.deviations, 'deviation')}"
        before = (f"{_count(self.original_switches or 0, 'switch')}, "
                  f"{_count(self.original_deviations, 'deviation')}")
        if self.proven_minimal:
            proof = ("minimal: no schedule with fewer switches, or as few switches and "
                     "fewer deviations, fails this way")
        else:
            budget = (f" (budget: {self.max_runs:,} runs, {self.max_seconds:g}s)"
                      if self.budget_exhausted else
                      " (their search stopped at a quarter of the budget)"
                      if self.deviations_cut else "")
            proof = (f"switches {'proven minimal' if self.switches_proven else 'not proven'}"
                     f"; deviations {'proven minimal' if self.deviations_proven else 'not proven'}"
                     f"{budget}")
        return (f"{now} (from {before}; {self.original_steps} to {self.steps} steps) in "
                f"{self.runs} runs; {proof}")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'es' if what.endswith('h') else 's'}" if n != 1 else f"1 {what}"


def count_switches_of(run: RunFn, decisions: Sequence[int]) -> int:
    """The switches of the schedule ``decisions``, counted in one run of ``run``."""
    fixed = _strategies.Fixed(decisions, strict=False)
    fixed.start_run()
    log: list[Point] = []
    run(counting(fixed.choose, log))
    return count_switches(log)


class _Budget(Exception):
    """The shrinking budget ran out."""


@dataclass(slots=True)
class _Run:
    """One run of the scenario with its decisions seen for switch counting."""

    record: RunRecord
    log: list[Point]

    @property
    def switches(self) -> int:
        return count_switches(self.log)

    @property
    def deviations(self) -> int:
        return count_deviations(self.record.decisions)

    @property
    def key(self) -> Key:
        decisions = self.record.decisions
        switches, deviations = count_switches(self.log), count_deviations(decisions)
        if self.record.outcome.kind == LIVELOCK:
            # A livelock is a long run, and the stock order switches at every await: a
            # schedule with no switch is one task spinning until fairness forces the
            # others, which takes a deviation per forced point (thousands). What a
            # person reads is the stock rotation plus the few decisions that keep it
            # from ending, so fewer deviations come first here.
            return (deviations, switches, self.record.stats.steps, tuple(decisions))
        return (switches, deviations, self.record.stats.steps, tuple(decisions))


class Shrinker:
    """Shrinks one failing schedule; ``run(chooser)`` executes the scenario once.

    ``target`` is the failure to keep: an :class:`Outcome` (compared by
    :meth:`Outcome.stable_signature`) or a signature tuple compared as given."""

    def __init__(self, run: RunFn, target: Outcome | Signature, *,
                 max_runs: int = DEFAULT_MAX_RUNS,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self._run = run
        self._stable = isinstance(target, Outcome)
        self._target = target.stable_signature() if isinstance(target, Outcome) else target
        self._max_runs = max_runs
        self._max_seconds = max_seconds
        self._deadline = time.perf_counter() + max_seconds
        self.runs = 0
        # The simplest same failure so far and what is proven about it: kept here, so
        # that a pass stopped by the budget loses nothing it found.
        self._best: _Run | None = None
        self._switches_proven = False
        self._deviations_proven = False
        self._deviations_cut = False  # the deviations' share of the proof ran out

    # ------------------------------------------------------------------ running

    def _execute(self, chooser: Chooser) -> _Run:
        if self.runs >= self._max_runs or time.perf_counter() > self._deadline:
            raise _Budget
        self.runs += 1
        log: list[Point] = []
        record = self._run(counting(chooser, log))
        return _Run(record, log)

    def _same(self, run: _Run) -> bool:
        outcome = run.record.outcome
        if not outcome.failed:
            return False
        found = outcome.stable_signature() if self._stable else outcome.signature()
        return found == self._target

    def _better(self, run: _Run, best: _Run) -> bool:
        """Whether ``run`` fails the same way and is simpler; if so it becomes the best."""
        if self._same(run) and run.key < best.key:
            self._best = run
            return True
        return False

    def _fixed(self, decisions: Sequence[int]) -> _Run:
        fixed = _strategies.Fixed(decisions, strict=False)
        fixed.start_run()
        return self._execute(fixed.choose)

    # ------------------------------------------------------------------ the whole

    def shrink(self, found: RunRecord) -> tuple[RunRecord, ShrinkReport]:
        """The simplest schedule found that fails as ``found`` does, and the report."""
        original_deviations = count_deviations(found.decisions)
        exhausted = False
        original_switches: int | None = None
        try:
            first = self._fixed(found.decisions)
            original_switches = first.switches
            if self._same(first):  # else the replay failed otherwise: keep what was found
                self._best = first
                half = self._max_runs // 2
                best = first
                if first.record.outcome.kind != LIVELOCK:  # see the order's exception
                    best = self._take_back_switches(first, self.runs + half // 2)
                best = self._drop_deviations(best, self.runs + half // 2)
                best = self._prove(best)
                if not self._deviations_proven:
                    self._lower_indices(best)
        except _Budget:
            exhausted = True
        final = self._best
        record = final.record if final is not None else found
        switches = final.switches if final is not None else original_switches
        if switches == 0:
            self._switches_proven = True  # none is as few as there can be
        proven = self._switches_proven and self._deviations_proven
        return record, ShrinkReport(
            original_deviations, count_deviations(record.decisions),
            found.stats.steps, record.stats.steps, self.runs, proven, exhausted,
            original_switches, switches, self._switches_proven, self._deviations_proven,
            self._max_runs, self._max_seconds, self._deviations_cut)

    # ------------------------------------------------------------------ passes

    def _keep_going_after(self, best: _Run) -> _Run:
        """Try keeping each switch's prefix and letting every line run on from there
        without another switch, first switch first: the switches after the one the
        failure needs usually only rotate tasks the stock way, and this drops them all in
        one run (at most one run per switch)."""
        for point in switch_points(best.log):
            plan = [p.process for p in best.log[:point]] + [best.log[point].resumed]
            trial = self._execute(Follow(plan))
            if self._better(trial, best):
                return trial
        return best

    def _take_back_switches(self, best: _Run, allowance: int) -> _Run:
        """Delta debugging over the switches of the best run: try taking back a chunk of
        them at once, from all of them down to one at a time (each switch's whole
        run-ahead in one try); after a success the chunks are cut from the new best run."""
        best = self._keep_going_after(best)
        chunks = 1
        while self.runs < allowance:
            points = switch_points(best.log)
            if not points:
                return best
            chunks = min(chunks, len(points))
            size = -(-len(points) // chunks)
            improved = False
            for start in range(0, len(points), size):
                if self.runs >= allowance:
                    return best
                dropped = set(points[start:start + size])
                trial = self._execute(Follow(_without(best.log, dropped)))
                if self._better(trial, best):
                    best, improved = trial, True
                    break
            if improved:
                chunks = max(chunks - 1, 1)
            elif chunks >= len(points):
                return best  # each switch alone was tried: none can be taken back
            else:
                chunks = min(chunks * 2, len(points))
        return best

    def _drop_deviations(self, best: _Run, limit: int) -> _Run:
        """Delta debugging over the deviations (set to the stock choice, later decisions
        kept where they still fit), down to each one in turn, until ``limit`` runs in
        all: a schedule with very many deviations (a livelock found by PCT has thousands)
        must leave the proof enough runs."""
        chunks = 2
        while self.runs < limit:
            positions = [i for i, d in enumerate(best.record.decisions) if d]
            if not positions:
                return best
            chunks = min(chunks, len(positions))
            size = -(-len(positions) // chunks)
            improved = False
            for start in range(0, len(positions), size):
                if self.runs >= limit:
                    return best
                trial_decisions = list(best.record.decisions)
                for position in positions[start:start + size]:
                    trial_decisions[position] = 0
                trial = self._fixed(trial_decisions)
                if self._better(trial, best):
                    best, improved = trial, True
                    break
            if improved:
                chunks = max(chunks - 1, 2)
            elif chunks >= len(positions):
                return best
            else:
                chunks = min(chunks * 2, len(positions))
        return best

    def _prove(self, best: _Run) -> _Run:
        """The proof pass (3. in the module docstring); records what it proves."""
        if best.switches > best.deviations or best.record.outcome.kind == LIVELOCK:
            return self._search_fewer_deviations(best)
        search = _strategies.PreemptionBounded(preemption_bound=best.switches)
        search.below_deviations = best.deviations
        cut: tuple[int, float] | None = None  # where the deviations' share ends
        while search.start_run():
            # Rounds run in order, so a same failure found in round r has r switches and
            # ends every round below: its switch count is the minimum.
            self._switches_proven = search.completed_rounds >= best.switches - 1
            if search.completed_rounds >= best.switches:
                break  # every schedule with at most that many switches has run
            if self._switches_proven:
                # The rest of the final round proves the deviations: a quarter of the
                # budget at most, since fewer deviations are worth less than the time.
                if cut is None:
                    cut = (self.runs + self._max_runs // 4,
                           time.perf_counter() + self._max_seconds / 4)
                elif self.runs >= cut[0] or time.perf_counter() > cut[1]:
                    self._deviations_cut = True
                    return best
            trial = self._execute(search.choose)
            search.end_run(trial.record.decisions, trial.record.outcome.failed)
            if self._better(trial, best):
                best = trial
                # Fewer switches end the search at their round; from here on only fewer
                # deviations can do better, so the walk skips what cannot.
                search.preemption_bound = best.switches
                search.below_deviations = best.deviations
        self._switches_proven = self._deviations_proven = True
        return best

    def _search_fewer_deviations(self, best: _Run) -> _Run:
        """Systematic search below the current deviation count, keeping only schedules
        with no more switches; when it completes, the deviations are proven minimal for
        that many switches."""
        current = best.deviations
        if current > 0:
            search = _strategies.Systematic(deviation_bound=current - 1)
            while search.start_run():
                trial = self._execute(search.choose)
                search.end_run(trial.record.decisions, trial.record.outcome.failed)
                if self._better(trial, best):
                    best = trial
        self._deviations_proven = True
        return best

    def _lower_indices(self, best: _Run) -> _Run:
        for position, choice in enumerate(list(best.record.decisions)):
            decisions = best.record.decisions
            if choice <= 1 or position >= len(decisions) or not decisions[position]:
                continue
            for lower in range(1, choice):
                trial_decisions = list(decisions)
                trial_decisions[position] = lower
                trial = self._fixed(trial_decisions)
                if self._better(trial, best):
                    best = trial
                    break
        return best
