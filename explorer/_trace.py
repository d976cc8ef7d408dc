"""Traces: what happened, step by step, in one run, and how it reads.

A trace is plain data. Its text form shows which task ran from which source line to which
source line, marks each scheduling decision (``*`` for a deviation from the stock order),
and its hash is what the determinism contract compares.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from explorer._locations import Location


@dataclass(frozen=True, slots=True)
class Step:
    """One unit of work that ran.

    ``decision`` is ``(chosen, count)`` when the step was chosen at a scheduling point, else
    ``None``. ``start``/``end`` are the task's user-code positions before and after the step;
    ``operation`` names what the task waits on afterwards (``Lock.acquire``, ``sleep``...),
    ``resource`` which object (``Lock#1``), ``result`` how a finishing step ended. At a
    deviation, ``preempted`` names the work the stock order would have run instead (a task,
    or a callback) and ``preempted_at`` where that task stood.

    Attribution to the user's code, at the end of the step: ``switch`` is set at a decision
    where the task that ran last could have continued and other work was chosen;
    ``foreign`` when the task had no user frame after the step (``end`` is then the
    library's, as for a task a library spawned); ``site`` is the line in the task's own
    file above a helper module (``end`` is then in the helper); ``call`` the library call
    the task's user code was inside (``Redis.execute_command (redis)``).
    """

    index: int
    task: str
    kind: str
    start: Location | None
    end: Location | None
    operation: str | None = None
    resource: str | None = None
    decision: tuple[int, int] | None = None
    time: float = 0.0
    result: str | None = None
    preempted: str | None = None
    preempted_at: Location | None = None
    switch: bool = False
    foreign: bool = False
    site: Location | None = None
    call: str | None = None

    @property
    def deviated(self) -> bool:
        return self.decision is not None and self.decision[0] != 0

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "task": self.task,
            "kind": self.kind,
            "start": self.start.to_json() if self.start else None,
            "end": self.end.to_json() if self.end else None,
            "operation": self.operation,
            "resource": self.resource,
            "decision": list(self.decision) if self.decision else None,
            "time": self.time,
            "result": self.result,
            "preempted": self.preempted,
            "preempted_at": self.preempted_at.to_json() if self.preempted_at else None,
            "switch": self.switch,
            "foreign": self.foreign,
            "site": self.site.to_json() if self.site else None,
            "call": self.call,
        }

    def describe(self) -> str:
        """One line: ``  12* withdraw#2  bank.py:14 -> bank.py:16  Lock.acquire Lock#1``."""
        mark = "*" if self.deviated else (" " if self.decision is None else ".")
        where = _span(self.start, self.end)
        tail = " ".join(x for x in (self.operation, self.resource, self.result) if x)
        tail = tail.replace("await main/", "await ")
        choice = f"[{self.decision[0]}/{self.decision[1]}]" if self.decision else ""
        clock = f"t={self.time:g} " if self.time else ""
        return f"{self.index:>5}{mark} {choice:<7} {clock}{self.task:<24} {where}  {tail}".rstrip()


def _span(start: Location | None, end: Location | None) -> str:
    if start is None and end is None:
        return "-"
    a = start.short if start else "?"
    b = end.short if end else "(done)"
    return a if a == b else f"{a} -> {b}"


@dataclass(slots=True)
class Trace:
    """The ordered steps of one run.

    ``labels`` maps a step's ``task`` (as steps name it) to what the task is, for people:
    an HTTP request by method, path and handler (``POST /redeem/WELCOME10 #2 → redeem``).
    Tasks without a label are shown by their name. Labels are derived from the run itself,
    so the same schedule gives the same labels; they are not part of :meth:`hash`."""

    steps: list[Step] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, task: str) -> str:
        """What to call ``task`` in stories, swimlanes and reports."""
        return self.labels.get(task, task)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def to_json(self) -> list[dict[str, object]]:
        return [s.to_json() for s in self.steps]

    def hash(self) -> str:
        """SHA-256 over the canonical JSON form; equal traces have equal hashes."""
        # Imported here: json and hashlib cost a first exploration about 2 ms of imports,
        # and only a traced replay's comparison or a report hashes a trace.
        import hashlib
        import json

        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def render(self, *, limit: int = 400) -> str:
        """Readable text, eliding the middle of very long traces."""
        lines = ["  step  choice  task                     from -> to  (then waits on)"]
        steps = self.steps
        if len(steps) > limit:
            head, tail = steps[: limit // 2], steps[-limit // 2:]
            lines += [s.describe() for s in head]
            lines.append(f"  ... {len(steps) - len(head) - len(tail)} steps elided ...")
            lines += [s.describe() for s in tail]
        else:
            lines += [s.describe() for s in steps]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()
