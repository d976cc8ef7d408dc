"""Turning how a run ended into an :class:`~explorer._outcome.Outcome`, for every runtime.

A runtime hands :func:`classify_run` the facts of a run that stopped by itself (a
:class:`RunFacts`); the outcome is the first of these that holds, in this order:

1. an **escape**: the scenario used something the controlled run refuses (real I/O, a
   thread, wall-clock sleep). It comes first because it explains whatever followed (a
   refused call from a thread leaves its waiter asleep: a deadlock that is not the bug);
2. a broken **invariant** (``explorer.always``): checked after every step, and after the
   last one;
3. the run was **aborted** for another reason (asyncio: a callback raised);
4. a **deadlock**: nothing could move and nothing was pending (a cycle, a lost wake-up);
   a task waiting for real I/O at that moment is an escape;
5. the fair **step bound** ran out: a livelock;
6. the scenario's main task **raised** (or was cancelled);
7. the scenario returned while tasks it started were still pending: **leaked** tasks
   (asyncio judges them where ``asyncio.run`` stops the loop: after the iteration in
   progress and the next one, see :mod:`explorer._asyncio._loop`);
8. an error **nobody retrieved** (a task's unawaited exception, a callback's error);
9. otherwise the run **passed**.

Only 1, 2 and 6 to 9 can hold together (3, 4 and 5 are exclusive run statuses, and 6 to 9
need the scenario to have finished). A run stopped from outside is not classified from
facts: past its real-time limit it is a ``hang`` (:func:`hang_outcome`), and a
``SystemExit`` or ``KeyboardInterrupt`` raised by scenario code is an ``exception``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from explorer import _outcome as oc
from explorer._errors import EscapeError
from explorer._locations import traceback_location
from explorer._outcome import Outcome
from explorer._runtime import Location, RunStatus, display_task

if TYPE_CHECKING:
    from explorer._trace import Trace
    from explorer._waitgraph import DeadlockReport
    from explorer._watchdog import Hang

Invariant = tuple[Callable[[], object], str, "Location | None"]
BrokenInvariant = tuple[str, "BaseException | None", "Location | None"]


class RunFacts(Protocol):
    """What a runtime knows about a run that stopped by itself. :func:`classify_run` asks
    in the order of the module docstring and stops at the first fact that holds, so a
    runtime computes each (a deadlock's wait-for graph, the leaked tasks) only when it
    decides the outcome."""

    status: RunStatus
    max_steps: int
    trace: Trace | None

    def escape(self) -> EscapeError | None:
        """The first escape of the run, if any."""
        ...

    def broken_invariant(self) -> BrokenInvariant | None:
        """The invariant that broke the run (or broke after its last step), if any."""
        ...

    def aborted(self) -> Outcome:
        """Status ``ABORTED`` without a broken invariant: why the run was stopped."""
        ...

    def deadlock(self) -> Outcome:
        """Status ``DEADLOCK``: the deadlock (or the real-I/O escape) that stopped it."""
        ...

    def still_running(self) -> list[str]:
        """Status ``STEP_BOUND``: the display names of the tasks still going."""
        ...

    def scenario_error(self) -> Outcome | None:
        """The outcome of the main task's exception or cancellation, if it ended so."""
        ...

    def leaked(self) -> Outcome | None:
        """Tasks the scenario left pending when it returned, if any."""
        ...

    def unretrieved(self) -> Outcome | None:
        """An error nobody retrieved (a task's exception, a callback's error), if any."""
        ...


def classify_run(facts: RunFacts) -> Outcome:
    """The outcome of a run that stopped by itself (the order is the module docstring's)."""
    escape = facts.escape()
    if escape is not None:
        return escape_outcome(escape)
    broken = facts.broken_invariant()
    if broken is not None:
        return invariant_outcome(broken, facts.trace)
    status = facts.status
    if status is RunStatus.ABORTED:
        return facts.aborted()
    if status is RunStatus.DEADLOCK:
        return facts.deadlock()
    if status is RunStatus.STEP_BOUND:
        return livelock_outcome(facts.still_running(), facts.max_steps)
    outcome = facts.scenario_error()
    if outcome is None:
        outcome = facts.leaked()
        if outcome is None:
            outcome = facts.unretrieved()
    return outcome if outcome is not None else oc.PASSED


def exception_outcome(exc: BaseException) -> Outcome:
    leaf = _first_leaf(exc)
    kind = oc.ASSERTION if isinstance(leaf, AssertionError) else oc.EXCEPTION
    if isinstance(leaf, EscapeError):
        return escape_outcome(leaf)
    if isinstance(leaf, oc.NotLinearizable):  # a linearizability check's verdict, as data
        return Outcome(oc.NOT_LINEARIZABLE, str(leaf),
                       leaf.location or traceback_location(leaf),
                       qualname(type(leaf)), dict(leaf.details), exception=exc)
    text = str(leaf) or "(no message)"
    return Outcome(kind, f"{type(leaf).__name__}: {text}", traceback_location(leaf),
                   qualname(type(leaf)), exception=exc)


def escape_outcome(err: EscapeError) -> Outcome:
    loc = getattr(err, "location", None) or traceback_location(err)
    return Outcome(oc.ESCAPE, str(err), loc, qualname(EscapeError), exception=err)


def _first_leaf(exc: BaseException) -> BaseException:
    """The first assertion in an exception group, else its first leaf exception."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = list(_leaves(exc))
        for leaf in leaves:
            if isinstance(leaf, AssertionError):
                return leaf
        return leaves[0] if leaves else exc
    return exc


def _leaves(group: BaseExceptionGroup[Any]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def qualname(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def invariant_outcome(broken: BrokenInvariant, trace: Trace | None) -> Outcome:
    """An ``explorer.always`` invariant broke; a traced run says after which step."""
    message, exc, site = broken
    where = ""
    if trace is not None and trace.steps:
        last = trace.steps[-1]
        end = last.end or last.start
        where = f" after step {last.index} ({last.task} at {end.short if end else '?'})"
    detail = f" (the predicate raised {type(exc).__name__}: {exc})" if exc else ""
    return Outcome(oc.ASSERTION, f"invariant violated{where}: {message}{detail}",
                   site, "explorer.always", exception=exc)


def livelock_outcome(running: list[str], max_steps: int) -> Outcome:
    """The step bound ran out with ``running`` tasks still going: ``max_steps`` steps in
    stock order after the schedule's last deviation (a fair schedule: every ready task ran
    in turn, as the real loop runs them), and the scenario had not finished."""
    return Outcome(
        oc.LIVELOCK,
        f"step bound exceeded: {max_steps} steps ran in stock order after the schedule's "
        "last deviation (a fair schedule: every ready task ran in turn) without the "
        "scenario finishing; "
        f"tasks still running: {', '.join(running) or '(none)'} (raise max_steps if "
        "the scenario is just long)",
        details={"tasks": running, "max_steps": max_steps},
    )


def hang_outcome(hang: Hang | None, limit: float) -> Outcome:
    """The run went on past its real-time limit (``run_timeout``) and was stopped."""
    task = f"task {display_task(hang.task, 'step')}" if hang and hang.task else \
        "the scenario"
    where = f"line {hang.location}" if hang and hang.location else "its code"
    return Outcome(
        oc.HANG,
        f"hang: the run took more than run_timeout={limit:g}s of real time and was "
        f"stopped while {task} was executing {where} without reaching an await; a task "
        "that never awaits blocks every other task. Make long loops await (for example "
        "await asyncio.sleep(0) or trio.lowlevel.checkpoint()), keep CPU-bound work out "
        "of the scenario, or raise run_timeout if the scenario is just slow",
        hang.location if hang else None,
        details={"task": hang.task if hang else None, "run_timeout": limit,
                 "stack": [loc.to_json() for loc in hang.stack] if hang else []},
    )


def deadlock_outcome(report: DeadlockReport, nothing_pending: str) -> Outcome:
    """A deadlock, headed by its kind (a cycle, a lost wake-up, or ``nothing_pending``:
    what the runtime would have waited for, a timer or a deadline)."""
    blame = report.blame
    headline = f"deadlock: no task can make progress and no {nothing_pending} is pending"
    if report.cycle:
        headline = "deadlock: tasks wait on each other in a cycle"
    elif report.orphans:
        headline = "deadlock (lost wake-up): a task waits for something nothing will do"
    return Outcome(oc.DEADLOCK, f"{headline}\n{report.explain()}",
                   blame.location if blame else None, details=report.to_json())


def broken_invariant(invariants: Sequence[Invariant]) -> BrokenInvariant | None:
    """The first invariant that does not hold now (a predicate that raises does not hold),
    as ``(message, exception or None, where it was registered)``; None if all hold."""
    for predicate, message, where in invariants:
        try:
            ok = predicate()
        except Exception as exc:  # noqa: BLE001 - a predicate that raises has failed
            return (message, exc, where)
        if not ok:
            return (message, None, where)
    return None
