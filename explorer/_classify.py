"""Turning how a run ended into an :class:`~explorer._outcome.Outcome`, for every runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from explorer import _outcome as oc
from explorer._asyncio._inspect import traceback_location
from explorer._errors import EscapeError
from explorer._outcome import Outcome
from explorer._runtime import Location, display_task

if TYPE_CHECKING:
    from explorer._asyncio._waitfor import DeadlockReport
    from explorer._trace import Trace
    from explorer._watchdog import Hang

Invariant = tuple[Callable[[], object], str, "Location | None"]
BrokenInvariant = tuple[str, "BaseException | None", "Location | None"]


def exception_outcome(exc: BaseException) -> Outcome:
    leaf = _first_leaf(exc)
    kind = oc.ASSERTION if isinstance(leaf, AssertionError) else oc.EXCEPTION
    if isinstance(leaf, EscapeError):
        return escape_outcome(leaf)
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
