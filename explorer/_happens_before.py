"""The happens-before model of one run: which steps are ordered, which could be reordered.

This is the model that partial-order reduction (``explorer.strategies.DPOR``), race
explanation (:mod:`explorer._races`) and the replay of reversed races
(:mod:`explorer._deciding`) share. It reads the run's step records and nothing else: it
knows no runtime and no search.

*Steps and processes.* A run is a sequence of steps, each recorded as a
:class:`~explorer._footprint.StepRecord` ``(process, footprint, enabler, point)``. A step's
*process* is the task it ran (its task id), :data:`LOOP` for a plain callback, or
:data:`CLOCK` for the "fire the next timer now" decision, which has no record of its own.
``enabler`` is the index of the step that scheduled it, ``point`` the scheduling point it
was chosen at (``None`` when it ran without a choice).

*Footprints.* A step's recorded footprint is the set of its accesses ``(object, item,
mode)`` (see :mod:`explorer._footprint`); :data:`~explorer._footprint.UNKNOWN` touches
everything. For dependence, a step's :data:`Footprint` pairs its own accesses with the
merged accesses of the plain callbacks it queued: callbacks run in the order they were
queued, so whoever queued first decides which callback runs first.

*Dependence.* Two steps of different processes are :func:`dependent` when their own
accesses conflict (the same object and item, or the whole object, one of them writing) or
the callbacks they queued do. Independent steps commute: swapping them leaves every
process in the same state. When a run ended with a callback still queued, who queued it
is not recorded, so every step counts as having queued something that touches anything.

*Happens-before.* Step ``i`` happens before step ``j`` (``i < j``) when ``i`` is an
earlier step of the same process (program order), the step that scheduled ``j``, or an
earlier dependent step of another process, or is ordered before ``j`` through a chain of
those. The main task's last step (process :data:`MAIN`) ends the run, so it depends on
every other process's last step: what is still pending never runs. Every schedule that
keeps this relation ends the same way; the schedules that share it form one equivalence
class (a Mazurkiewicz trace).

*Races.* A race is a pair ``(i, j)``, ``i < j``, of dependent steps of different processes
with no other happens-before path from ``i`` to ``j``: the pairs whose order a different
schedule could reverse. :class:`RunAnalysis` computes both, and keeps these invariants:
``before[j]`` holds only steps ``< j`` and is closed under happens-before; ``races`` is
sorted, each ``(i, j)`` has ``i`` in ``before[j]`` and ``i`` in the closure of no other
direct predecessor of ``j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from explorer._footprint import Index, StepRecord, StepTuple, conflicts, index

CLOCK: Final = "clock"
"""The process of the "fire the next timer now" candidate (``timer_races``): it has no step
record, so it is dependent on everything."""

LOOP: Final = "loop"
"""The process of plain callbacks, which run in the order they were queued."""

MAIN: Final = "main"
"""The scenario's main task: the run ends with its last step, which therefore decides
whether every step still pending runs at all."""

Footprint = tuple[Index, Index]
"""What a step touches, for dependence: its own accesses grouped by object, and the accesses
of the plain callbacks it queued."""



class RecordingView(Protocol):
    """What a chooser that follows the model needs of a scheduling point, beyond
    :class:`~explorer._runtime.PointView`: both runtimes' views provide it."""

    def process(self, index: int) -> str:
        """The process of candidate ``index`` (a task id, :data:`LOOP` or :data:`CLOCK`)."""
        ...

    def recorded_steps(self) -> Sequence[StepTuple] | None:
        """The step records of the run so far, or None when footprints are not recorded."""
        ...


def recorded_steps(view: RecordingView) -> Sequence[StepTuple] | None:
    """The step records of the current run so far, when the runtime records footprints;
    ``None`` otherwise. While the run goes, records may be plain tuples: read them by
    position (``record[0]`` is the process, ``record[1]`` the footprint)."""
    return view.recorded_steps()


_ANY: Final[Index] = {0: [(None, "w")]}  # touches anything (UNKNOWN, by object)


def step_footprints(steps: Sequence[StepRecord], *, pending: bool = False) -> list[Footprint]:
    """For each step record its :data:`Footprint`: own accesses, and the merged accesses of
    the callbacks it queued (callbacks are the :data:`LOOP` steps it is the enabler of).

    ``pending``: the run ended with a callback still queued. Who queued it, and what it
    would touch, is not recorded, so every step may have queued something that conflicts.
    """
    own = [index(step.footprint) for step in steps]
    if pending:
        return [(fp, dict(_ANY)) for fp in own]
    queued: list[Index] = [{} for _ in steps]
    for position, step in enumerate(steps):
        if step.process != LOOP or step.enabler is None:
            continue
        merged = queued[step.enabler]
        for obj, accesses in own[position].items():
            merged.setdefault(obj, []).extend(accesses)
    return list(zip(own, queued, strict=True))


def dependent(a: Footprint, b: Footprint) -> bool:
    """True when two steps of different processes do not commute: their own accesses
    conflict, or the callbacks they queued do (so their order decides the callbacks')."""
    return conflicts(a[0], b[0]) or conflicts(a[1], b[1])


class _Layer:
    """Which steps of each process touched each object, for one half of the footprints:
    finds, for a new step, the latest dependent step of every other process."""

    __slots__ = ("fps", "nonempty", "touched", "unknown", "written")

    def __init__(self, fps: list[Index]) -> None:
        self.fps = fps
        self.touched: dict[int, dict[str, list[int]]] = {}
        # The same, for the steps that write the object: a step that only reads an object
        # can conflict there only with those, so runs that read the same state again and
        # again (a spinning task) do not make every later step scan all of its reads.
        self.written: dict[int, dict[str, list[int]]] = {}
        self.unknown: dict[str, int] = {}  # process -> its latest step that may touch anything
        self.nonempty: dict[str, int] = {}  # process -> its latest step that touches something

    def latest(self, j: int, me: str, found: dict[str, int]) -> None:
        mine = self.fps[j]
        if not mine:
            return
        # A step that touches anything depends on the latest step of each process that
        # touches something; any step depends on those that touch anything.
        candidates = self.nonempty if 0 in mine else self.unknown
        for process, i in candidates.items():
            if process != me and i > found.get(process, -1):
                found[process] = i
        if 0 in mine:
            return
        fps = self.fps
        for obj, accesses in mine.items():
            pool = self.touched if _writes(accesses) else self.written
            for process, seen in pool.get(obj, {}).items():
                if process == me:
                    continue
                for i in reversed(seen):
                    if i <= found.get(process, -1):
                        break
                    if conflicts(fps[i], mine):
                        found[process] = i
                        break

    def add(self, j: int, me: str) -> None:
        mine = self.fps[j]
        if not mine:
            return
        self.nonempty[me] = j
        if 0 in mine:
            self.unknown[me] = j
        for obj, accesses in mine.items():
            self.touched.setdefault(obj, {}).setdefault(me, []).append(j)
            if _writes(accesses):
                self.written.setdefault(obj, {}).setdefault(me, []).append(j)


def _writes(accesses: list[tuple[object, str]]) -> bool:
    return any(mode == "w" for _item, mode in accesses)


class RunAnalysis:
    """The happens-before relation and the races of one run, from its step records.

    ``before[j]`` is a bitset of the steps that happen before step ``j``; ``races`` are the
    races of the run, sorted; ``footprints`` each step's :data:`Footprint` (see the module
    docstring for all three). ``pending`` says the run ended with a plain callback still
    queued (see :func:`step_footprints`).

    Only the latest dependent step of each other process can race with ``j``: earlier ones
    are ordered before that one by program order. So each step is compared with at most one
    step per process and object, which keeps long runs near linear in steps.
    """

    def __init__(self, steps: Sequence[StepRecord], *, pending: bool = False) -> None:
        self.steps = steps
        self.footprints = step_footprints(steps, pending=pending)
        self.before: list[int] = []
        self.races: list[tuple[int, int]] = []
        self._analyse()

    def _analyse(self) -> None:
        steps, before, found = self.steps, self.before, self.races
        layers = (_Layer([fp[0] for fp in self.footprints]),
                  _Layer([fp[1] for fp in self.footprints]))
        last: dict[str, int] = {}
        end = len(steps) - 1 if steps and steps[-1].process == MAIN else -1
        for j, step in enumerate(steps):
            me = step.process
            # Causal predecessors (program order, the step that scheduled this one) can never
            # be reordered with it; dependent ones can, unless another path orders them.
            ordered = 0
            if me in last:
                k = last[me]
                ordered |= before[k] | (1 << k)
            if step.enabler is not None:
                k = step.enabler
                ordered |= before[k] | (1 << k)
            latest: dict[str, int] = {}
            for layer in layers:
                layer.latest(j, me, latest)
            if j == end:  # the step that ends the run depends on every other process
                latest.update((p, i) for p, i in last.items() if p != me)
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
            for layer in layers:
                layer.add(j, me)
        found.sort()

    def happens_before(self, i: int, j: int) -> bool:
        """Whether step ``i`` happens before step ``j``."""
        return bool((self.before[j] >> i) & 1)

    def reversal(self, i: int, j: int, *, whole: bool = False) -> list[int]:
        """The steps that reverse race ``(i, j)`` when run in place of ``i``: those after
        ``i`` that do not happen after it, in their order, then ``j``
        (``notdep(i).j`` in the source-set paper).

        ``whole``: take the steps that do not happen after ``i`` from the whole run, also
        those after ``j`` (as optimal DPOR's wakeup sequences do: they keep every order
        of the run that the reversal does not have to change)."""
        bit = 1 << i
        before = self.before
        end = len(self.steps) if whole else j
        return [k for k in range(i + 1, end) if k != j and not before[k] & bit] + [j]

    def initials(self, sequence: Sequence[int]) -> list[str]:
        """Processes whose first step in ``sequence`` has no happens-before predecessor in
        it: each could run first in a schedule equivalent to ``sequence``."""
        mask = 0
        for k in sequence:
            mask |= 1 << k
        out: list[str] = []
        for k in sequence:
            process = self.steps[k].process
            if process not in out and not self.before[k] & mask:
                out.append(process)
        return out


def races(steps: Sequence[StepRecord]) -> list[tuple[int, int]]:
    """The races of a run: pairs ``(i, j)``, ``i < j``, of dependent steps of different
    processes with no other happens-before path from ``i`` to ``j`` (see
    :class:`RunAnalysis`)."""
    return RunAnalysis(steps).races
