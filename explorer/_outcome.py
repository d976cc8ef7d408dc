"""Outcomes of a run: pass, or a failure of one kind, with where it happened."""

from __future__ import annotations

import re
from typing import Any, Final

from explorer._locations import Location
from explorer._records import FrozenRecord

PASS: Final = "pass"
ASSERTION: Final = "assertion"
EXCEPTION: Final = "exception"
DEADLOCK: Final = "deadlock"
LIVELOCK: Final = "livelock"
LEAKED_TASK: Final = "leaked_task"
NONDETERMINISM: Final = "nondeterminism"
ESCAPE: Final = "escape"
HANG: Final = "hang"
NOT_LINEARIZABLE: Final = "not_linearizable"

FAILURE_KINDS: Final = (ASSERTION, EXCEPTION, DEADLOCK, LIVELOCK, LEAKED_TASK,
                        NONDETERMINISM, ESCAPE, HANG, NOT_LINEARIZABLE)


class NotLinearizable(AssertionError):
    """Raised inside a run by a linearizability check whose observed history no sequential
    order explains; the run's outcome is then of kind ``not_linearizable`` with
    ``details`` (the scenario, the history, the closest sequential orders) as data."""

    def __init__(self, message: str, details: dict[str, Any],
                 location: Location | None = None) -> None:
        super().__init__(message)
        self.details = details
        # Where the user reads the failure: the operation whose result no order explains
        # (stable across versions of the explorer, unlike the line that raises this).
        self.location = location


class Outcome(FrozenRecord):
    """How one run ended.

    ``kind`` is ``"pass"`` or one of :data:`FAILURE_KINDS`; ``location`` is the source line
    the failure is attributed to (the failing assert, the raise, the blocked wait);
    ``exc_type`` the qualified exception type name for assertion/exception outcomes;
    ``details`` extra structured facts (wait-for graph, livelock tasks, leaked tasks);
    ``exception`` the exception itself, neither compared nor shown.

    A frozen record; ``dataclasses.replace`` and ``dataclasses.fields`` accept it
    (:mod:`explorer._records`).
    """

    __slots__ = ("details", "exc_type", "exception", "kind", "location", "message")
    _compared = ("kind", "message", "location", "exc_type", "details")
    _shown = _compared
    _factories = (("details", dict),)

    kind: str
    message: str
    location: Location | None
    exc_type: str | None
    details: dict[str, Any]
    exception: BaseException | None

    def __init__(self, kind: str, message: str = "", location: Location | None = None,
                 exc_type: str | None = None, details: dict[str, Any] | None = None,
                 exception: BaseException | None = None) -> None:
        set_field = object.__setattr__
        set_field(self, "kind", kind)
        set_field(self, "message", message)
        set_field(self, "location", location)
        set_field(self, "exc_type", exc_type)
        set_field(self, "details", {} if details is None else details)
        set_field(self, "exception", exception)

    @property
    def failed(self) -> bool:
        return self.kind != PASS

    def signature(self) -> tuple[str, str | None, int | None, str | None]:
        """What makes two failures "the same": kind, file, line and exception type.

        A hang is the same when it is in the same function: the line a busy loop is
        stopped at depends on real time, not on the schedule."""
        loc = self.location
        if self.kind == HANG:
            return (self.kind, f"{loc.short.rpartition(':')[0]}:{loc.function}" if loc
                    else None, None, None)
        return (self.kind, loc.short if loc else None, loc.lineno if loc else None,
                self.exc_type)

    def stable_signature(self) -> tuple[object, ...]:
        """What the shrinker compares: :meth:`signature`, made independent of how tasks
        are numbered.

        Moving one decision can move a spawn, and with it the spawn numbers in task ids
        (``main/buyer#2`` becomes ``main/buyer#1``). The failure does not change, but the
        task a deadlock or a leaked task is attributed to (the smallest id) can, and with
        it :attr:`location`. So a deadlock is compared by the lines its tasks wait at (the
        tasks of its cycle, else those that lost their wake-up, else all blocked tasks)
        and whether it is a cycle; a leaked task by the kinds of tasks left pending (their
        ids without spawn numbers). Other kinds compare as :meth:`signature`."""
        details = self.details
        if self.kind == DEADLOCK and details.get("waits") is not None:
            waits = [w for w in details["waits"] if isinstance(w, dict)]
            cycle = set(details.get("cycle") or ())
            lost = set(details.get("lost_wakeups") or ())
            chosen = [w for w in waits if w.get("task") in (cycle or lost)] or waits
            lines = sorted({_wait_line(w) for w in chosen})
            return (self.kind, tuple(lines), bool(cycle), None)
        if self.kind == LEAKED_TASK and details.get("tasks") is not None:
            kinds = sorted({_unnumbered(str(t)) for t in details["tasks"]})
            return (self.kind, tuple(kinds), None, None)
        return self.signature()

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "message": self.message,
            "location": self.location.to_json() if self.location else None,
            "exc_type": self.exc_type,
            "details": self.details,
        }


PASSED: Final = Outcome(PASS)

# A pattern, not a compiled one: re compiles and caches it on first use, which keeps
# compiling out of every import (only a nondeterminism or shrink comparison needs it).
_SPAWN_NUMBER: Final = r"#[0-9]+|(?<=/)task-[0-9]+"


def _unnumbered(task: str) -> str:
    """A task id without its spawn numbers: ``main/buyer#2/fetch#1`` -> ``main/buyer/fetch``."""
    return re.sub(_SPAWN_NUMBER, lambda m: "task" if m.group().startswith("task") else "", task)


def _wait_line(wait: dict[str, Any]) -> str:
    where = wait.get("location")
    if not isinstance(where, dict):
        return f"{wait.get('operation')} (no user line)"
    return f"{where.get('file')}:{where.get('line')}"
