"""Shrinking a failing schedule to a minimal one that fails the same way.

Schedules are ordered by simplicity, as a person reads them: fewest **switches** first (a
switch sets aside a task that could have continued, :mod:`explorer._switches`), then
fewest **detours** (choices other than keeping the running task going: every switch, and
any choice but the stock head where the running task cannot go on), then fewest
**deviations** from the stock order, then fewest steps (nothing runs after the failure),
then lowest candidate indices. Letting one task run ahead through N awaits is one switch
and N deviations: the order counts it once. Where tasks wait on drivers and servers (a
services scenario), the schedule with the fewest switches keeps tasks going through
dozens of points where the stock order would rotate, each a deviation; what it chose on
purpose are its few detours, which is why they come before deviations. A candidate
schedule is kept only
if it fails "the same way": the same outcome kind at the same source location with the
same exception type, compared without task numbers (:meth:`Outcome.stable_signature`:
moving a decision can renumber spawned tasks, which must not make a deadlock or a
leaked task look like another failure).

Passes, all deterministic:

1. the proof, first for an eighth of the runs (or three quarters of the time): the
   switch-bounded systematic search (:class:`~explorer.strategies.PreemptionBounded`)
   runs every schedule with fewer switches, round by round, and each round by
   increasing detours, so the first same failure it meets is the simplest there is
   (the budget's time share is wide because a services scenario's run costs tens of
   milliseconds, and this pass is what proves it). When the rounds below end without the
   same failure, the switch count is **proven minimal**; the levels of the final round
   below the best's detours then prove the detour count **minimal among schedules with
   that many switches** (a quarter of the budget at most). A failure with no switch and
   a detour or two is proven this way in a few dozen runs, however tangled the schedule
   that was found;
2. if the proof has not ended, take back switches: first, switch by switch in order,
   keep the schedule up to it and let every task run on from there without another
   switch (one run each: the switches after the one a failure needs are usually the
   stock order's rotation); then delta debugging (Zeller and Hildebrandt 2002) over the
   set of switches: all of them at once, then halves, quarters, ... down to each one
   alone. Taking back a switch lets the task that was set aside continue and moves the
   whole run-ahead the switch started (the chosen task's consecutive steps) later, in
   one try. Plans name tasks, not candidate indices
   (:class:`~explorer._switches.Follow`), so the edit survives the shifts it causes;
3. the proof goes on from where it paused, bounded by the new best. When the best's
   switch count exceeds its deviation count (the switch rounds still to run would be the
   larger search), the deviation search (:class:`~explorer.strategies.Systematic`,
   fewer deviations) proves the deviations instead, and the switches stay unproven.

Deviations, steps and indices only break ties among what the proof meets: when its
share of the budget stops the detours' proof, no pass spends the rest of the budget on
them (fewer deviations are worth less than the time).

One exception to the order: a **livelock** compares deviations first. It is a long run, and
the stock order switches at every await, so its schedule with the fewest switches is one
task spinning until fairness forces the others, a deviation at each forced point; the stock
rotation plus the few decisions that keep it from ending is what a person reads. So a
livelock drops deviations instead (delta debugging over them, then each in turn, keeping a
schedule only when it is simpler in its order) and is proven by the deviation search.

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
from explorer._switches import (
    Follow,
    Point,
    count_detours,
    count_switches,
    counting,
    switch_points,
)
from explorer._switches import without_switches as _without

DEFAULT_MAX_RUNS = 2000
DEFAULT_MAX_SECONDS = 10.0

RunFn = Callable[[Chooser], RunRecord]
Signature = tuple[object, ...]
Key = tuple[int, int, int, int, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class ShrinkReport:
    """What shrinking did: switches, detours, deviations and steps before and after, runs
    spent, and what is proven.

    ``switches_proven``: every schedule with fewer switches was run, none failed this way.
    ``detours_proven``: no schedule with as few switches and fewer detours (choices other
    than keeping the running task going, :mod:`explorer._switches`) fails this way (all
    were run). ``proven_minimal`` is both. ``deviations_proven``: no schedule with fewer
    deviations and no more switches fails this way (proven instead of the detours where
    that search is the smaller one; in reports written before detours were counted, it
    took their place in ``proven_minimal``). ``deviations_cut``: the proof of the measure
    after switches stopped at its quarter of the budget. ``budget_exhausted``: the budget
    (``max_runs`` runs, ``max_seconds`` seconds) ran out first. The switch fields are None
    in reports written before switches were counted, the detour fields in reports written
    before detours were."""

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
    original_detours: int | None = None
    detours: int | None = None
    detours_proven: bool = False

    def describe(self) -> str:
        if self.switches is None:  # a report from before switches were counted
            proof = ("minimal: no schedule with fewer deviations fails this way"
                     if self.proven_minimal else
                     "minimality not proven within the shrinking budget")
            return (f"shrunk from {self.original_deviations} to {self.deviations} "
                    f"deviation(s) and {self.original_steps} to {self.steps} steps in "
                    f"{self.runs} runs; {proof}")
        second = "detours" if self.detours is not None else "deviations"
        now = ", ".join(_counts(self.switches, self.detours, self.deviations))
        before = ", ".join(_counts(self.original_switches or 0, self.original_detours,
                                   self.original_deviations))
        if self.proven_minimal:
            proof = (f"minimal: no schedule with fewer switches, or as few switches and "
                     f"fewer {second}, fails this way")
        else:
            budget = (f" (budget: {self.max_runs:,} runs, {self.max_seconds:g}s)"
                      if self.budget_exhausted else
                      " (their search stopped at a quarter of the budget)"
                      if self.deviations_cut else "")
            parts = [f"switches {_proven(self.switches_proven)}"]
            if self.detours is not None:
                parts.append(f"detours {_proven(self.detours_proven)}")
            if self.detours is None or self.deviations_proven:
                parts.append(f"deviations {_proven(self.deviations_proven)}")
            proof = "; ".join(parts) + budget
        return (f"{now} (from {before}; {self.original_steps} to {self.steps} steps) in "
                f"{self.runs} runs; {proof}")


def _counts(switches: int, detours: int | None, deviations: int) -> list[str]:
    counts = [_count(switches, "switch")]
    if detours is not None:
        counts.append(_count(detours, "detour"))
    return [*counts, _count(deviations, "deviation")]


def _proven(proven: bool) -> str:
    return "proven minimal" if proven else "not proven"


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
    def detours(self) -> int:
        return count_detours(self.log)

    @property
    def deviations(self) -> int:
        return count_deviations(self.record.decisions)

    @property
    def key(self) -> Key:
        decisions = self.record.decisions
        switches, deviations = count_switches(self.log), count_deviations(decisions)
        detours, steps = count_detours(self.log), self.record.stats.steps
        if self.record.outcome.kind == LIVELOCK:
            # A livelock is a long run, and the stock order switches at every await: a
            # schedule with no switch is one task spinning until fairness forces the
            # others, which takes a deviation per forced point (thousands). What a
            # person reads is the stock rotation plus the few decisions that keep it
            # from ending, so fewer deviations come first here.
            return (deviations, switches, detours, steps, tuple(decisions))
        return (switches, detours, deviations, steps, tuple(decisions))


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
        self._detours_proven = False
        self._deviations_cut = False  # the detours' share of the proof ran out
        self._cut: tuple[int, float] | None = None  # where that share ends (runs, time)

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
        original_detours: int | None = None
        try:
            first = self._fixed(found.decisions)
            original_switches, original_detours = first.switches, first.detours
            if self._same(first):  # else the replay failed otherwise: keep what was found
                self._best = first
                half = self._max_runs // 2
                best = first
                if first.record.outcome.kind == LIVELOCK:  # see the order's exception
                    best = self._drop_deviations(best, self.runs + half // 2)
                    best = self._search_fewer_deviations(best)
                else:
                    self._prove(best, half)
        except _Budget:
            exhausted = True
        final = self._best
        record = final.record if final is not None else found
        switches = final.switches if final is not None else original_switches
        detours = final.detours if final is not None else original_detours
        if switches == 0:
            self._switches_proven = True  # none is as few as there can be
            if detours == 0:
                self._detours_proven = True
        proven = self._switches_proven and self._detours_proven
        return record, ShrinkReport(
            original_deviations, count_deviations(record.decisions),
            found.stats.steps, record.stats.steps, self.runs, proven, exhausted,
            original_switches, switches, self._switches_proven, self._deviations_proven,
            self._max_runs, self._max_seconds, self._deviations_cut, original_detours,
            detours, self._detours_proven)

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

    def _prove(self, first: _Run, half: int) -> _Run:
        """Passes 1 to 3 of the module docstring, interleaved: the proof first, for an
        eighth of the runs or three quarters of the time (its rounds and levels run the
        simplest schedules first, so a failure with few switches and detours ends it
        early, whatever the failure found looked like); if it has not ended, the
        switches are taken back, and the
        proof goes on from where it paused, bounded by what that found. Records what it
        proves."""
        search = _strategies.PreemptionBounded(preemption_bound=first.switches)
        search.below_detours = first.detours
        pause = (self.runs + self._max_runs // 8,
                 time.perf_counter() + self._max_seconds * 3 / 4)
        best, ended = self._search_fewer_switches(search, first, pause)
        if ended:
            return best
        best = self._take_back_switches(best, self.runs + half // 2)
        if best.switches > best.deviations:
            # The switch rounds still to run would be the larger search.
            return self._search_fewer_deviations(best)
        search.preemption_bound = best.switches
        search.below_detours = best.detours
        return self._search_fewer_switches(search, best, None)[0]

    def _search_fewer_switches(self, search: _strategies.PreemptionBounded, best: _Run,
                               pause: tuple[int, float] | None) -> tuple[_Run, bool]:
        """Run ``search`` (bounded by the switches and detours of ``best``) until it ends
        (True: what it proves is recorded) or until ``pause`` (runs, time) comes (False);
        the simplest same failure met, and whether the search ended."""
        while True:
            if pause is not None and (self.runs >= pause[0] or
                                      time.perf_counter() > pause[1]):
                return best, False
            if not search.start_run():
                break
            # Rounds run in order, so a same failure found in round r has r switches and
            # ends every round below: its switch count is the minimum.
            self._switches_proven = search.completed_rounds >= best.switches - 1
            if self._switches_proven:
                # The rest of the final round proves the detours, fewest first: a quarter
                # of the budget at most, since fewer detours are worth less than the time.
                if self._cut is None:
                    self._cut = (self.runs + self._max_runs // 4,
                                 time.perf_counter() + self._max_seconds / 4)
                elif self.runs >= self._cut[0] or time.perf_counter() > self._cut[1]:
                    self._deviations_cut = True
                    return best, True
            trial = self._execute(search.choose)
            search.end_run(trial.record.decisions, trial.record.outcome.failed)
            if self._better(trial, best):
                best = trial
                # Fewer switches end the search at their round, and fewer detours at
                # their level: from here on the walk skips what cannot do better.
                search.preemption_bound = best.switches
                search.below_detours = best.detours
        self._switches_proven = self._detours_proven = True
        return best, True

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
