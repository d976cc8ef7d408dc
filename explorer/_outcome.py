"""Outcomes of a run: pass, or a failure of one kind, with where it happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from explorer._locations import Location

PASS: Final = "pass"
ASSERTION: Final = "assertion"
EXCEPTION: Final = "exception"
DEADLOCK: Final = "deadlock"
LIVELOCK: Final = "livelock"
LEAKED_TASK: Final = "leaked_task"
NONDETERMINISM: Final = "nondeterminism"
ESCAPE: Final = "escape"
HANG: Final = "hang"

FAILURE_KINDS: Final = (ASSERTION, EXCEPTION, DEADLOCK, LIVELOCK, LEAKED_TASK,
                        NONDETERMINISM, ESCAPE, HANG)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run ended.

    ``kind`` is ``"pass"`` or one of :data:`FAILURE_KINDS`; ``location`` is the source line
    the failure is attributed to (the failing assert, the raise, the blocked wait);
    ``exc_type`` the qualified exception type name for assertion/exception outcomes;
    ``details`` extra structured facts (wait-for graph, livelock tasks, leaked tasks).
    """

    kind: str
    message: str = ""
    location: Location | None = None
    exc_type: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    exception: BaseException | None = field(default=None, compare=False, repr=False)

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

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "message": self.message,
            "location": self.location.to_json() if self.location else None,
            "exc_type": self.exc_type,
            "details": self.details,
        }


PASSED: Final = Outcome(PASS)
