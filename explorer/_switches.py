"""Switches (preemptions): the simplicity of a schedule as a person counts it.

A *switch* is a decision, at a scheduling point where the task whose step ran last
(:meth:`PointView.current`) is among the candidates, that picks any other candidate: the
running task could have continued and was set aside. Every other decision is *free*:
continuing the running task, and any choice at a point where the running task is not
ready (it is waiting, or it finished), or at a fault point (whose options belong to no
task). This is the preemption count of preemption bounding (Musuvathi and Qadeer,
"Iterative context bounding for systematic testing of multithreaded programs", PLDI 2007).

Deviations count decisions against the stock FIFO order, so letting one task run ahead
through N awaits costs N deviations but one switch; and the stock order itself, which
rotates ready tasks at every await, switches at nearly every point.

A *detour* is any choice other than keeping going: where the running task can continue,
anything else (so every switch is a detour); where it cannot, anything but the stock
head (index 0). Among schedules with as few switches, fewer detours is what a person
reads as simpler: a schedule with no switch can still differ from the stock order at
dozens of points (every point where the stock order rotates tasks and the running one
keeps going instead), but it makes only its few detours on purpose. The switch-bounded
search (:class:`~explorer.strategies.PreemptionBounded`) walks a tree whose depth is
exactly this count, which is what makes it cheap to prove.

Switches are derived from a run, not stored: the same decisions of the same scenario make
the same run and so the same switches, which is why schedule strings (``v1:``) carry no
switch information and need no new format. Counting costs a look at each candidate's
owner at every point, so it is done only by a wrapping chooser (:func:`counting`) in the
runs that ask for it (shrinking, reporting, the switch-bounded search), never on the
exploration hot path.

**Lines of work.** Library code often does a task's work in helper tasks: redis-py's
asyncio client sends each command from a task of its own and awaits it, so the task that
called ``await r.get(...)`` is never ready itself while its read goes on. Counted per
task, every choice there would be free and every schedule would have no switch. So
switches are counted between *lines of work*: a task that has run only library code so
far (no frame of the user's code, :func:`explorer._locations.is_user_file`) belongs to
the line of the task that spawned it; a task seen in user code is a line of its own from
then on. Where every task is the user's, lines are tasks. Plain callbacks, network
deliveries and driver work belong to no line, and the timer candidate ("fire the next
timer now") to the clock: choosing any of them while the running line could continue is
a switch too (a callback can run user code, a delivery or a timer can wake a task), as
choosing another line is; choosing them while it cannot is free.

This module is part of the model: it imports only the runtime seam and ``_locations``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from explorer._locations import is_user_file
from explorer._runtime import Chooser, PointView

CLOCK = "clock"


@dataclass(frozen=True, slots=True)
class Point:
    """One decision of a run, seen for switch counting.

    ``chosen`` of ``count`` candidates; ``running`` the line of work of the task whose
    step ran last (None before any task step and at fault points); ``resumable`` the
    index of the first candidate of that line, -1 when it has none; ``process`` who the
    chosen candidate belongs to (:meth:`PointView.process`), ``owner`` its line (None for
    work of no line, ``clock`` for the timer candidate); ``resumed`` the process of
    candidate ``resumable`` ("" when there is none)."""

    chosen: int
    count: int
    running: str | None
    resumable: int
    process: str
    owner: str | None
    resumed: str = ""

    @property
    def switch(self) -> bool:
        """The running line could continue, and other work was chosen."""
        return self.resumable >= 0 and self.owner != self.running

    @property
    def keep_going(self) -> int:
        """The choice that costs no switch: the running line where it can continue, else
        the stock choice (0)."""
        return self.resumable if self.resumable >= 0 else 0

    @property
    def detour(self) -> bool:
        """Something other than :attr:`keep_going` was chosen. Every switch is a detour;
        so is a choice other than the stock head where the running line cannot go on
        (which task an ended wait resumes first, say)."""
        return self.chosen != self.keep_going


def is_task(process: str) -> bool:
    """Whether a process name (:meth:`PointView.process`) is a task id: ``main`` and ids
    under a parent have a ``/``; ``loop``, ``clock``, ``fault``, connections and drivers
    do not."""
    return process == "main" or "/" in process


class Lines:
    """Which line of work each candidate belongs to, for one run (see the module
    docstring). Deterministic: what it learns depends only on the run so far."""

    __slots__ = ("_seen", "_user")

    def __init__(self) -> None:
        self._user: set[str] = set()  # tasks seen in user code (sticky)
        self._seen: set[str] = set()  # tasks seen at all

    def owner(self, view: PointView, index: int) -> str | None:
        """The line of candidate ``index``: None for work of no line, ``clock`` for the
        timer candidate."""
        process = view.process(index)
        if process == CLOCK:
            return CLOCK
        if not is_task(process):
            return None
        if process not in self._user:
            self._seen.add(process)
            where = view.candidate(index).location
            if where is not None and is_user_file(where.filename):
                self._user.add(process)
        return self.line(process)

    def line(self, task: str) -> str:
        """The line of ``task``: itself once seen in user code (or never seen), else its
        parent's line."""
        while task in self._seen and task not in self._user and "/" in task:
            task = task.rpartition("/")[0]
        return task

    def look(self, count: int, view: PointView) -> tuple[str | None, int, list[str | None]]:
        """At a point: the running line, the first candidate of it (-1: none), and the
        line of every candidate."""
        # The candidates first: where the running task now stands (in user code, say,
        # after a first step through a library) decides its line.
        owners = [self.owner(view, index) for index in range(count)]
        current = view.current()
        running = self.line(current) if current is not None else None
        here = -1
        if running is not None:
            for index, owner in enumerate(owners):
                if owner == running:
                    here = index
                    break
        return running, here, owners


def counting(chooser: Chooser, log: list[Point]) -> Chooser:
    """``chooser`` wrapped so that each decision is appended to ``log`` as a
    :class:`Point` (a fresh wrapper per run: it learns the run's lines as it goes)."""
    lines = Lines()

    def choose(count: int, view: PointView) -> int:
        running, here, owners = lines.look(count, view)
        chosen = chooser(count, view)
        resumed = view.process(here) if here >= 0 else ""
        log.append(Point(chosen, count, running, here, view.process(chosen),
                         owners[chosen] if chosen < count else None, resumed))
        return chosen

    return choose


def count_switches(log: Sequence[Point]) -> int:
    """How many decisions of ``log`` are switches."""
    return sum(1 for point in log if point.switch)


def count_detours(log: Sequence[Point]) -> int:
    """How many decisions of ``log`` are detours (:attr:`Point.detour`)."""
    return sum(1 for point in log if point.detour)


def switch_points(log: Sequence[Point]) -> list[int]:
    """The positions (scheduling point indices) of the switches in ``log``."""
    return [i for i, point in enumerate(log) if point.switch]


class Follow:
    """A chooser that follows a plan of *owners* rather than of indices.

    ``plan`` lists, decision by decision, who should run (a process name as
    :meth:`PointView.process` gives it). At each point the plan's next owner is chosen if
    it is among the candidates, and the plan moves on; if it is not, the running line
    continues where it can (no switch), else the stock choice runs, and the plan waits.
    After the plan, the running line continues wherever it can. Following owners keeps a
    plan meaningful when an edit moves the steps of a task: candidate indices shift, the
    tasks do not. Deterministic: the same plan gives the same run. One run per instance.
    """

    def __init__(self, plan: Sequence[str]) -> None:
        self.plan = list(plan)
        self.position = 0
        self._lines = Lines()

    def __call__(self, count: int, view: PointView) -> int:
        _, here, _ = self._lines.look(count, view)  # learns every candidate's line
        plan = self.plan
        if self.position < len(plan):
            wanted = plan[self.position]
            for index in range(count):
                if view.process(index) == wanted:
                    self.position += 1
                    return index
        return here if here >= 0 else 0


def switch_mask(running: str | None, here: int, owners: Sequence[str | None]) -> int:
    """The choices at a point that are switches, as a bit mask (bit i: candidate i)."""
    if here < 0:
        return 0
    mask = 0
    for index, owner in enumerate(owners):
        if owner != running:
            mask |= 1 << index
    return mask


def without_switches(log: Sequence[Point], dropped: set[int]) -> list[str]:
    """The owner plan of ``log`` with the switches at the positions in ``dropped`` taken
    back: at each, the line that was running continues, and the run-ahead the switch
    started (the chosen line's steps that followed, with the callbacks among them) leaves
    the plan, so that it runs later, when the plan reaches that line's next step."""
    plan: list[str] = []
    skipping: str | None = None
    for position, point in enumerate(log):
        if skipping is not None:
            if point.owner is None or point.owner == skipping:
                continue
            skipping = None
        if position in dropped and point.switch:
            plan.append(point.resumed)
            skipping = point.owner
            continue
        plan.append(point.process)
    return plan
