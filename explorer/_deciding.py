"""Which races decided a failure: each race of the failing run, reversed and replayed.

A race of a run is a pair of steps of different tasks whose accesses conflict, with
nothing else ordering them (see :class:`explorer._happens_before.RunAnalysis`). Reversing race
``(a, b)`` means running, where ``a`` ran, the steps after ``a`` that do not depend on it
followed by ``b`` — the branch dynamic partial-order reduction would explore for that race
— and then ``a`` and everything else in its original order. The race *decided* the
failure when that reversed run, replayed, passes or fails in another way; when it fails the
same way, the pair conflicted but its order did not matter.

When no race decides — undeclared task code conflicts with everything, so in a schedule
where one task *runs ahead* through several steps the only races are between neighbours —
each run-ahead is taken back instead: the task it set aside runs its next step first, then
the run-ahead. When that replay passes, the pair (the run-ahead's last step, the set-aside
task's next step) decided the failure.

Replays are cheap (one run each) and capped (:data:`MAX_REPLAYS`, and about
:data:`STEP_BUDGET` steps in all); races not replayed are reported as not checked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from explorer._footprint import StepRecord
from explorer._happens_before import CLOCK, LOOP, RunAnalysis, dependent, recorded_steps
from explorer._outcome import Outcome
from explorer._races import Conflict, describe_pair, labels_of
from explorer._runtime import Chooser, PointView, RunRecord
from explorer._trace import Trace

MAX_REPLAYS = 32
STEP_BUDGET = 200_000

Rerun = Callable[[Chooser], RunRecord]
"""Runs the scenario once under a chooser, recording footprints, and returns the record."""


@dataclass(frozen=True)
class Reversal:
    """The replay of one race reversed: whether the reversal happened (``realized``), how
    the run ended, and whether that decides (``realized`` and the failure went away or
    changed)."""

    realized: bool
    outcome: Outcome | None
    decides: bool

    def describe(self) -> str:
        if not self.realized or self.outcome is None:
            return "could not be reversed"
        if not self.outcome.failed:
            return "passes"
        where = f" at {self.outcome.location.short}" if self.outcome.location else ""
        if self.decides:
            return f"fails differently ({self.outcome.kind}{where})"
        return "fails the same way"


def reversed_order(analysis: RunAnalysis, first: int, second: int) -> list[str]:
    """The processes of the run with race ``(first, second)`` reversed, step by step: the
    steps before ``first``; those after it that do not happen after it, then ``second``;
    then ``first`` and the rest in their order. A decision that fired the clock (a point
    with no step of its own) stays where it was."""
    steps = analysis.steps
    moved = analysis.reversal(first, second)
    skip = set(moved)
    processes = _with_clock(steps)
    order = [processes[k] for k in range(len(steps))]
    prefix = [p for k in range(first) for p in order[k]]
    middle = [p for k in moved for p in order[k]]
    rest = [p for k in range(first, len(steps)) if k not in skip for p in order[k]]
    return prefix + middle + rest


def _with_clock(steps: Sequence[StepRecord]) -> list[list[str]]:
    """For each step, its process, preceded by ``clock`` for each decision before it that
    had no step of its own (the timer candidate)."""
    out: list[list[str]] = []
    upcoming = 0
    for step in steps:
        entry = []
        if step.point is not None:
            entry.extend([CLOCK] * max(0, step.point - upcoming))
            upcoming = step.point + 1
        entry.append(step.process)
        out.append(entry)
    return out


class Guided:
    """A chooser that follows a sequence of processes: at each scheduling point it picks
    the candidate whose process comes first in what is left of the sequence, after
    striking out the steps that ran since (read from the run's recorded steps). Work
    that is not in the sequence goes last; with nothing to go by it picks the stock
    candidate."""

    def __init__(self, order: Sequence[str]) -> None:
        self._at: dict[str, deque[int]] = {}
        for position, process in enumerate(order):
            self._at.setdefault(process, deque()).append(position)
        self._absorbed = 0

    def __call__(self, count: int, view: PointView) -> int:
        steps = recorded_steps(view)
        if steps is not None:
            for record in steps[self._absorbed:]:
                queue = self._at.get(record[0])
                if queue:
                    queue.popleft()
            self._absorbed = len(steps)
        best, best_at = 0, None
        for index in range(count):
            process = view.process(index)
            queue = self._at.get(process)
            if queue and (best_at is None or queue[0] < best_at):
                best, best_at = index, queue[0]
        chosen = view.process(best)
        # The clock has no step record to strike it out; without records at all, strike
        # out what is chosen here (steps with no choice then go unnoticed, and the replay
        # may not realise the reversal, which reverse() checks).
        if best_at is not None and (chosen == CLOCK or steps is None):
            self._at[chosen].popleft()
        return best


def _occurrence(steps: Sequence[StepRecord], index: int) -> tuple[str, int]:
    """Step ``index`` as (process, how many steps of that process came before it)."""
    process = steps[index].process
    return process, sum(1 for step in steps[:index] if step.process == process)


def _position(steps: Sequence[StepRecord], event: tuple[str, int]) -> int | None:
    process, nth = event
    seen = 0
    for position, step in enumerate(steps):
        if step.process == process:
            if seen == nth:
                return position
            seen += 1
    return None


def reverse(analysis: RunAnalysis, first: int, second: int, rerun: Rerun,
            original: Outcome) -> Reversal:
    """Replay the run with race ``(first, second)`` reversed and judge the outcome."""
    steps = analysis.steps
    record = rerun(Guided(reversed_order(analysis, first, second)))
    replayed = record.footprints or []
    a, b = _occurrence(steps, first), _occurrence(steps, second)
    at_a, at_b = _position(replayed, a), _position(replayed, b)
    same_prefix = ([s.process for s in replayed[:first]]
                   == [s.process for s in steps[:first]])
    realized = same_prefix and at_b is not None and (at_a is None or at_b < at_a)
    outcome: Outcome = record.outcome
    decides = realized and (not outcome.failed or outcome.signature() != original.signature())
    return Reversal(realized, outcome, decides)


def run_aheads(steps: Sequence[StepRecord]) -> list[tuple[int, int, int]]:
    """``(start, end, resumed)`` for each stretch ``start..end`` of consecutive steps of one
    task that began right after a step of another task, which runs again later, at
    ``resumed``: the run-ahead of a switch."""
    found: list[tuple[int, int, int]] = []
    count = len(steps)
    start = 1
    while start < count:
        process = steps[start].process
        end = start
        while end + 1 < count and steps[end + 1].process == process:
            end += 1
        before = steps[start - 1].process
        if before != process and LOOP not in (before, process):
            resumed = next((k for k in range(end + 1, count) if steps[k].process == before),
                           None)
            if resumed is not None:
                found.append((start, end, resumed))
        start = end + 1
    return found


def take_back(steps: Sequence[StepRecord], start: int, resumed: int, rerun: Rerun,
              original: Outcome) -> Reversal:
    """Replay the run with the set-aside task's step ``resumed`` run at ``start``, before
    the run-ahead, and everything else in its order; judge the outcome."""
    order = _with_clock(steps)
    ks = [*range(start), resumed, *range(start, resumed), *range(resumed + 1, len(steps))]
    record = rerun(Guided([p for k in ks for p in order[k]]))
    replayed = record.footprints or []
    realized = (len(replayed) > start and replayed[start].process == steps[resumed].process
                and [s.process for s in replayed[:start]]
                == [s.process for s in steps[:start]])
    outcome: Outcome = record.outcome
    decides = realized and (not outcome.failed or outcome.signature() != original.signature())
    return Reversal(realized, outcome, decides)


def deciding(named: list[Conflict], records: Sequence[StepRecord], trace: Trace,
             names: dict[int, str], original: Outcome, rerun: Rerun, *,
             max_replays: int = MAX_REPLAYS,
             analysis: RunAnalysis | None = None) -> list[Conflict]:
    """The conflicting accesses ``named`` of a failing run (as
    :func:`explorer._races.conflicts` lists them from its step ``records``), each with the
    verdict of replaying it reversed, plus races whose accesses are not recorded (task
    code, when it is not declared) that turned out to decide. Deciding ones first, each
    group in the order the run ran them.

    Named races are replayed first, in run order, then unnamed ones from the latest back;
    at most ``max_replays`` replays, and fewer for long runs. ``rerun`` must record
    footprints as the failing run did. ``analysis``: the run's analysis, if already made."""
    if analysis is None:
        analysis = RunAnalysis(records)
    budget = min(max_replays, max(4, STEP_BUDGET // max(1, len(records))))
    steps = [s for s in trace.steps if s.kind != "timer"]
    if len(steps) != len(records):
        return named
    judged: list[Conflict] = []
    for conflict in named:
        if budget <= 0:
            judged.append(conflict)
            continue
        budget -= 1
        verdict = reverse(analysis, *conflict.pair, rerun, original)
        judged.append(conflict.judged(verdict.decides, verdict.describe()))
    listed = {c.pair for c in named}
    for i, j in reversed(analysis.races):
        if budget <= 0:
            break
        if (i, j) in listed or not dependent(analysis.footprints[i], analysis.footprints[j]):
            continue  # named already, or a race only because the main task ends the run
        budget -= 1
        verdict = reverse(analysis, i, j, rerun, original)
        if verdict.decides:
            judged.append(Conflict(steps[i], steps[j], *describe_pair(records, i, j, names),
                                   pair=(i, j), names=labels_of(trace, steps[i], steps[j])
                                   ).judged(True, verdict.describe()))
    if not any(c.decides for c in judged):
        for start, end, resumed in reversed(run_aheads(analysis.steps)):
            if budget <= 0:
                break
            budget -= 1
            verdict = take_back(analysis.steps, start, resumed, rerun, original)
            if verdict.decides:
                judged.append(Conflict(
                    steps[end], steps[resumed], *describe_pair(records, end, resumed, names),
                    pair=(end, resumed), names=labels_of(trace, steps[end], steps[resumed])
                ).judged(True, verdict.describe()))
    judged.sort(key=lambda c: (not c.decides, c.pair))
    return judged
