"""``dpor``: systematic search with dynamic partial-order reduction.

Two schedules that differ only in the order of *independent* steps (steps whose footprints
do not conflict) end the same way, so exploring one of them is enough. The search runs a
schedule, finds the *races* in it — pairs of dependent steps of different tasks with no
other causal path between them — and for each race schedules one more run that reverses
it (Flanagan and Godefroid's DPOR, POPL 2005, over backtrack sets). Steps of one task are
ordered; a task's step happens after the step that scheduled it.

Footprints: what a step touches is known for asyncio's primitives, task completion and
cancellation, asyncio's own callbacks, and state declared with ``explorer.shared``. What a
task's own code reads and writes otherwise is not seen, so by default (``declared=False``)
every task step also counts as touching everything: sound for any scenario, but little
reduction beyond the ordering of plain callbacks. ``DPOR(declared=True)`` is the contract
that every piece of state tasks share is an asyncio primitive or declared with
``explorer.shared``; then independent steps are recognised and the reduction is large.

Guarantee: when :attr:`DPOR.exhausted` is true, every equivalence class of schedules (all
interleavings up to reordering of independent steps) has been run, under that model.

With ``deviation_bound``, branches whose schedule would deviate from the stock order more
than that are skipped, and the coverage says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer._footprint import UNKNOWN, conflicts, index
from strategies._base import Strategy


@dataclass
class _Point:
    enabled: list[str]
    chosen: str
    backtrack: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)


class DPOR(Strategy):
    """Dynamic partial-order reduction over the processes (tasks) of the scenario."""

    name = "dpor"

    def __init__(self, deviation_bound: int | None = None, *, declared: bool = False) -> None:
        if deviation_bound is not None and deviation_bound < 0:
            raise ValueError(f"deviation_bound must be >= 0 or None, got {deviation_bound}")
        self.deviation_bound = deviation_bound
        self.declared = declared
        # Tells the engine to record footprints, and which model to use for task code.
        self.wants_footprints = "declared" if declared else "conservative"
        self._stack: list[_Point] = []
        self._prefix = 0
        self._k = 0
        self._started = False
        self._finished = False
        self.schedules = 0
        self.races = 0
        self.pruned = 0
        self.mismatches = 0

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        if self._finished:
            return False
        self._k = 0
        if not self._started:
            self._started = True
            self._prefix = 0
            return True
        while self._stack:
            top = self._stack[-1]
            for process in top.enabled:
                if process in top.backtrack and process not in top.done:
                    top.done.add(process)
                    if self._too_deviant(len(self._stack) - 1, process):
                        self.pruned += 1
                        continue
                    top.chosen = process
                    self._prefix = len(self._stack)
                    return True
            self._stack.pop()
        self._finished = True
        return False

    def choose(self, count: int, view: Any) -> int:
        k = self._k
        self._k = k + 1
        processes = [view.process(i) for i in range(count)]
        if k < self._prefix:
            point = self._stack[k]
            if point.chosen in processes:
                return processes.index(point.chosen)
            self.mismatches += 1  # the run did not repeat; keep going with the default
            return 0
        self._stack.append(_Point(processes, processes[0], {processes[0]}, {processes[0]}))
        return 0

    def observe(self, steps: Sequence[Any]) -> None:
        """Learn the run's races from its step records (process, footprint, enabler,
        point) and add the reversing choices to the backtrack sets."""
        for i, j in races(steps):
            self.races += 1
            point = steps[i].point
            if point is None or point >= len(self._stack):
                continue  # no alternative existed when step i ran
            frame = self._stack[point]
            wanted = steps[j].process
            if wanted in frame.enabled:
                frame.backtrack.add(wanted)
            else:
                frame.backtrack.update(frame.enabled)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self.schedules += 1
        # Anything past the points this run reached belongs to an earlier, longer run.
        del self._stack[max(self._k, self._prefix):]

    @property
    def exhausted(self) -> bool:
        return self._finished

    @property
    def counts_as_schedule(self) -> bool:
        return True

    def coverage(self) -> str:
        if self._finished and not self.pruned:
            return (f"all interleavings up to reordering of independent steps "
                    f"({self.schedules} schedules, {self.races} races reversed)")
        if self._finished:
            return (f"every equivalence class reachable within {self.deviation_bound} "
                    f"deviation(s) ({self.schedules} schedules; {self.pruned} branches "
                    "beyond the bound skipped)")
        return f"{self.schedules} schedules of a partial-order-reduced search; not finished"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "deviation_bound": self.deviation_bound,
                "declared": self.declared}

    def statistics(self) -> dict[str, Any]:
        return {"races": self.races, "pruned": self.pruned, "mismatches": self.mismatches}

    # ------------------------------------------------------------------ helpers

    def _too_deviant(self, depth: int, process: str) -> bool:
        if self.deviation_bound is None:
            return False
        deviations = sum(1 for p in self._stack[:depth] if p.enabled.index(p.chosen) != 0)
        deviations += self._stack[depth].enabled.index(process) != 0
        return deviations > self.deviation_bound


def races(steps: Sequence[Any]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of dependent steps of different processes with no
    other happens-before path from ``i`` to ``j``.

    Only the latest step of each other process that conflicts with ``j`` can race with
    it: earlier ones are ordered before that one by program order. So each step is
    compared with at most one step per process, which keeps long runs linear in steps.
    """
    found: list[tuple[int, int]] = []
    before: list[int] = []  # bitset of the steps that happen before each step
    last: dict[str, int] = {}
    last_nonempty: dict[str, int] = {}
    touched: dict[int, dict[str, list[int]]] = {}  # object -> process -> steps
    unknown: dict[str, int] = {}  # process -> its latest step that may touch anything
    indexed = [index(step.footprint) for step in steps]
    for j, step in enumerate(steps):
        me = step.process
        mine = indexed[j]
        # Causal predecessors (program order, the step that scheduled this one) can never
        # be reordered with it; conflicting ones can, unless another path orders them.
        causal: set[int] = set()
        if me in last:
            causal.add(last[me])
        if step.enabler is not None:
            causal.add(step.enabler)
        latest: dict[str, int] = {}
        if UNKNOWN in step.footprint:
            latest = {p: i for p, i in last_nonempty.items() if p != me}
        elif mine:
            latest = {p: i for p, i in unknown.items() if p != me}
            for obj in mine:
                for process, seen in touched.get(obj, {}).items():
                    if process == me:
                        continue
                    for i in reversed(seen):
                        if i <= latest.get(process, -1):
                            break
                        if conflicts(indexed[i], mine):
                            latest[process] = i
                            break
        ordered = 0
        for k in causal:
            ordered |= before[k] | (1 << k)
        closure = {k: before[k] | (1 << k) for k in latest.values()}
        for i in closure:
            others = ordered
            for k, bits in closure.items():
                if k != i:
                    others |= bits
            if not (others >> i) & 1:
                found.append((i, j))
        for bits in closure.values():
            ordered |= bits
        before.append(ordered)
        last[me] = j
        if mine:
            last_nonempty[me] = j
        if UNKNOWN in step.footprint:
            unknown[me] = j
        for obj in mine:
            touched.setdefault(obj, {}).setdefault(me, []).append(j)
    found.sort()
    return found
