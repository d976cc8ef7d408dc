"""The seam between runtimes and the scheduler, in runtime-neutral terms.

A runtime (the controlled asyncio loop, the trio runner) runs one scenario from scratch
under a :class:`RunMode` and, at every scheduling point, calls a *chooser* with the number
of candidates and a :class:`PointView` that can describe each candidate. The chooser
returns an index; the runtime never knows which strategy is behind it. The run ends with a
:class:`RunStatus` and is reported as a :class:`RunRecord`.

This module is the floor of the runtimes: at run time it imports only the leaf modules
``_errors``, ``_locations`` and ``_records``. Neither runtime imports the other; what
they share lives here, in :mod:`explorer._locations`, :mod:`explorer._waitgraph`,
:mod:`explorer._classify` and :mod:`explorer._footprint`.

It also holds the *active run* hook: a runtime's session registers a finder
(:func:`finding`) that tells whether one of its runs is being driven on the calling
thread, and runtime-neutral code called by scenario code, such as ``explorer.always``,
reaches that run through :func:`active_run` without importing a runtime.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol

from explorer._errors import UsageError
from explorer._locations import LibraryCall as LibraryCall  # re-exported, as Location
from explorer._locations import Location as Location  # re-exported: the seam's own type
from explorer._records import FrozenRecord, Record

if TYPE_CHECKING:
    from explorer._footprint import StepRecord, StepTuple
    from explorer._outcome import Outcome
    from explorer._trace import Trace


class Candidate(FrozenRecord):
    """One ready unit of work at a scheduling point, described without runtime objects.

    ``kind`` is one of ``start`` (a task's first step), ``step`` (a task resuming after a
    bare yield), ``wakeup`` (a task resuming because what it awaited completed),
    ``callback`` (a plain callback), ``timer`` (fire the earliest pending timer now) or
    ``fault`` (an option at a fault point of the simulated network: ``operation`` is
    ``no fault`` for option 0 or the fault kind, ``resource`` the connection's address;
    ``task`` is None, so that samplers weigh the options as work of no task).

    A frozen record, compared, hashed and shown by its fields; ``dataclasses.replace``
    and ``dataclasses.fields`` accept it (:mod:`explorer._records`).
    """

    __slots__ = ("kind", "location", "operation", "resource", "task")

    task: str | None
    kind: str
    location: Location | None
    operation: str | None
    resource: str | None

    def __init__(self, task: str | None, kind: str, location: Location | None = None,
                 operation: str | None = None, resource: str | None = None) -> None:
        set_field = object.__setattr__
        set_field(self, "task", task)
        set_field(self, "kind", kind)
        set_field(self, "location", location)
        set_field(self, "operation", operation)
        set_field(self, "resource", resource)

    # Written out, as the dataclass's are, rather than the record's generic ones: hashed and
    # compared on strategies' paths.
    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            that: Any = other
            return (self.task, self.kind, self.location, self.operation, self.resource) == (
                that.task, that.kind, that.location, that.operation, that.resource)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.task, self.kind, self.location, self.operation, self.resource))


def display_task(task_id: str | None, kind: str = "callback") -> str:
    """How traces name the work of a step: task ids without the common ``main/`` prefix;
    ``clock`` for a timer firing, ``fault`` for an option at a fault point, ``loop`` for
    a plain callback."""
    if task_id is None:
        return "clock" if kind == "timer" else "fault" if kind == "fault" else "loop"
    return task_id[5:] if task_id.startswith("main/") else task_id


class PointView(Protocol):
    """What a chooser may ask about the candidates at the current scheduling point."""

    def candidate(self, index: int) -> Candidate:
        """Describe candidate ``index`` (computed on demand: it costs a walk over the
        candidate's frames the first time; the runtimes cache it until it runs)."""
        ...

    def candidates(self, count: int) -> Sequence[Candidate]:
        """Every candidate of the point, described: ``[candidate(i) for i in
        range(count)]`` in one call, each built once while its work is queued."""
        ...

    def processes(self, count: int) -> Sequence[str]:
        """``[process(i) for i in range(count)]`` in one call: cheap identities (no frame
        is walked), for strategies that need only who each candidate is."""
        ...

    def process(self, index: int) -> str:
        """Who candidate ``index`` belongs to, cheaply: a task id, ``loop`` for a plain
        callback, ``clock`` for the "fire the next timer now" candidate, ``fault`` for an
        option at a fault point."""
        ...

    def recorded_steps(self) -> Sequence[StepTuple] | None:
        """The step records of the run so far while footprints are recorded (plain
        ``(process, footprint, enabler, point)`` tuples while it goes), else None."""
        ...

    def current(self) -> str | None:
        """The task whose step ran last (its id), or None before any task step and at a
        choice made inside a step (a fault point). Plain callbacks and timer firings leave
        it unchanged. Choosing another candidate while this task is among the candidates
        is a *switch* (a preemption): what a person counts, where a deviation counts
        against the stock FIFO order."""
        ...

    def current_call(self) -> LibraryCall | None:
        """The library call the :meth:`current` task is suspended inside, whether it is a
        candidate or blocked, or None (no current task, or it waits at one of the user's
        own scheduling points): see :func:`explorer._locations.library_call`. Costs a walk
        over that one task's await chain."""
        ...


Chooser = Callable[[int, PointView], int]
"""``chooser(count, view) -> index`` with ``0 <= index < count``; called on the hot path."""

STARVATION_BOUND: Final = 1000
"""Fairness, part 1: how many scheduling points in a row candidate 0 (the oldest ready
work, what the stock runtime runs next) may be passed over. At the next point it runs
without a decision. A real event loop runs everything ready at the start of an iteration
within that iteration; the controlled runtimes reorder ready work to model awaits that take
different amounts of time, but starving one ready task without end is a schedule no real
loop makes (Musuvathi and Qadeer, "Fair stateless model checking", PLDI 2008). The bound
is far above what an ordering bug needs (each pass-over is a deviation)."""


class RunStats(Record):
    """Counters of one run."""

    __slots__ = ("fingerprint", "points", "step_hash", "steps", "stock_steps", "tasks",
                 "virtual_time")

    steps: int
    points: int
    virtual_time: float
    tasks: int
    # Steps after the last deviation, all in stock order: what the step bound counts.
    stock_steps: int
    # A cheap summary of the run beyond its decisions (the candidate counts at its points,
    # the tasks it created), for the determinism check; 0 where not computed (runs
    # neither hashed nor traced).
    fingerprint: int
    # With RunMode(hashed=True), a hash of every step (which task ran, where it stopped);
    # None when the run was not hashed.
    step_hash: int | None

    def __init__(self, steps: int = 0, points: int = 0, virtual_time: float = 0.0,
                 tasks: int = 0, stock_steps: int = 0, fingerprint: int = 0,
                 step_hash: int | None = None) -> None:
        self.steps = steps
        self.points = points
        self.virtual_time = virtual_time
        self.tasks = tasks
        self.stock_steps = stock_steps
        self.fingerprint = fingerprint
        self.step_hash = step_hash


class RunRecord(Record):
    """What one run produced: its decisions and its outcome; its trace when the run was
    traced; its step records when footprints were recorded, and with ``naming`` readable
    names of the objects they touched (object id -> name)."""

    __slots__ = ("decisions", "footprints", "names", "outcome", "stats", "trace")

    decisions: list[int]
    outcome: Outcome
    stats: RunStats
    trace: Trace | None
    footprints: list[StepRecord] | None
    names: dict[int, str] | None

    def __init__(self, decisions: list[int], outcome: Outcome, stats: RunStats | None = None,
                 trace: Trace | None = None, footprints: list[StepRecord] | None = None,
                 names: dict[int, str] | None = None) -> None:
        self.decisions = decisions
        self.outcome = outcome
        self.stats = RunStats() if stats is None else stats
        self.trace = trace
        self.footprints = footprints
        self.names = names

    def traced(self) -> Trace:
        """The trace of a run made with ``RunMode(traced=True)``."""
        if self.trace is None:
            raise TypeError("this run was not traced: its RunMode had traced=False; "
                            "make the run with RunMode(..., traced=True) to read its trace")
        return self.trace


class RunStatus(enum.IntEnum):
    """Why a runtime stopped driving a run, the same for every runtime.

    ``RUNNING`` while it drives; then ``DONE`` (the scenario's main task finished),
    ``DEADLOCK`` (nothing can move: no ready work, no timer or deadline),
    ``STEP_BOUND`` (the fair step bound ran out: a livelock), or ``ABORTED`` (stopped at
    once: a broken ``explorer.always`` invariant, a failing callback, a chooser error).
    """

    RUNNING = 0
    DONE = 1
    DEADLOCK = 2
    STEP_BOUND = 3
    ABORTED = 4


_FOOTPRINTS: Final = ("declared", "conservative", "auto")  # see explorer.strategies.DPOR


class RunMode(FrozenRecord):
    """How to make one run; the runtime builds the run's objects from it.

    - ``max_steps``: the fair step bound (steps in stock order after the last deviation).
    - ``timer_races``: "fire the next timer now" is a candidate while one is pending.
    - ``traced``: record a readable :class:`~explorer._trace.Trace` (for stories, replays).
    - ``footprints``: record each step's footprint and cause, for partial-order
      reduction; ignored when ``traced`` (a traced run is a replay that needs no reduction).
    - ``naming``: with ``footprints``, also name the objects steps touched.
    - ``run_timeout``: seconds of real time before the run is stopped as a ``hang``.
    - ``faults``: the network fault kinds the run may inject, each as a decision of its
      own (:mod:`explorer._faults`); empty, the default, adds no decision anywhere.
    - ``hashed``: hash every step cheaply (which task ran, where it stopped) into
      :attr:`RunStats.step_hash`, for the determinism check; ignored when ``traced`` or
      recording footprints, and by runtimes that do not hash (``step_hash`` stays None).
    """

    __slots__ = ("faults", "footprints", "hashed", "max_steps", "naming", "run_timeout",
                 "timer_races", "traced")

    max_steps: int
    timer_races: bool
    traced: bool
    footprints: str | None
    naming: bool
    run_timeout: float | None
    faults: frozenset[str]
    hashed: bool

    def __init__(self, max_steps: int, timer_races: bool = False, traced: bool = False,
                 footprints: str | None = None, naming: bool = False,
                 run_timeout: float | None = None, faults: frozenset[str] = frozenset(),
                 hashed: bool = False) -> None:
        set_field = object.__setattr__
        set_field(self, "max_steps", max_steps)
        set_field(self, "timer_races", timer_races)
        set_field(self, "traced", traced)
        set_field(self, "footprints", footprints)
        set_field(self, "naming", naming)
        set_field(self, "run_timeout", run_timeout)
        set_field(self, "faults", faults)
        set_field(self, "hashed", hashed)
        if self.faults and self.recording:
            raise UsageError(
                f"RunMode(faults={sorted(self.faults)!r}, footprints={self.footprints!r}): "
                "fault decisions have no footprint, so partial-order reduction cannot "
                "keep its guarantee with them; record footprints without faults, or "
                "inject faults under a strategy without footprints (the default portfolio, "
                "systematic)")
        if self.footprints is not None and self.footprints not in _FOOTPRINTS:
            raise UsageError(
                f"RunMode(footprints={self.footprints!r}): footprints are recorded as one "
                f"of {', '.join(map(repr, _FOOTPRINTS))}, or None for none; pass one of "
                "those (a reduction strategy's .footprints attribute is one)"
            )

    @property
    def recording(self) -> bool:
        """True when step footprints are recorded (footprints requested, not traced)."""
        return self.footprints is not None and not self.traced


Scenario = Callable[[], Coroutine[Any, Any, Any]]
"""A scenario bound to its arguments: each call returns a fresh coroutine."""


class Runtime(Protocol):
    """What the engine needs from a runtime (the asyncio loop, trio): run a scenario once
    from scratch under a chooser, inside a session that installs what runs need."""

    name: str

    def session(self, *, footprints: bool = False) -> AbstractContextManager[Any]: ...

    def run(self, scenario: Scenario, chooser: Chooser, mode: RunMode) -> RunRecord: ...


class InvariantSink(Protocol):
    """What ``explorer.always`` needs of the run in progress: a place for invariants."""

    def add_invariant(self, predicate: Callable[[], object], message: str,
                      where: Location | None) -> None:
        """Check ``predicate`` after every step of this run from now on."""
        ...


RunFinder = Callable[[], "InvariantSink | None"]
"""Asked by :func:`active_run`: the run its runtime is driving on the calling thread, or
None. A runtime's session registers one (:func:`finding`) for as long as it is open."""

_finders: list[RunFinder] = []


@contextmanager
def finding(finder: RunFinder) -> Iterator[None]:
    """Register ``finder`` for the block (a runtime's session): once per session, so that
    a run costs nothing to be found."""
    _finders.append(finder)
    try:
        yield
    finally:
        _finders.remove(finder)


def active_run() -> InvariantSink | None:
    """The run a runtime is driving on this thread, or None outside every run."""
    for finder in reversed(_finders):  # the innermost session first
        run = finder()
        if run is not None:
            return run
    return None
