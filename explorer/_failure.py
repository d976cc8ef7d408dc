"""``ScheduleFailure``: a scenario failed under a schedule; everything needed to replay it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from explorer._errors import ExplorerError
from explorer._explain import explain, swimlanes
from explorer._outcome import Outcome
from explorer._schedule import Schedule
from explorer._shrink import ShrinkReport
from explorer._trace import Trace


class ScheduleFailure(ExplorerError, AssertionError):
    """The scenario failed under one schedule.

    Attributes: ``kind`` (assertion, exception, deadlock, livelock, leaked_task,
    nondeterminism, escape), ``schedule`` (``str()`` gives the paste-able form),
    ``found_after`` (1-based index of the failing schedule), ``deviations``, ``trace``,
    ``outcome``, ``scenario`` (its dotted name), ``strategy`` (how it was found) and
    ``shrink`` (a :class:`ShrinkReport`, when the schedule was shrunk).
    """

    def __init__(self, outcome: Outcome, schedule: Schedule, trace: Trace | None, *,
                 scenario: str, found_after: int = 1,
                 strategy: dict[str, Any] | None = None, runtime: str = "asyncio",
                 shrink: ShrinkReport | None = None) -> None:
        self.outcome = outcome
        self.kind = outcome.kind
        self.schedule = schedule
        self.trace = trace if trace is not None else Trace()
        self.scenario = scenario
        self.found_after = found_after
        self.deviations = schedule.deviation_count
        self.strategy = dict(strategy or {})
        self.runtime = runtime
        self.shrink = shrink
        self.corpus_path: Path | None = None
        self.conflicts: list[Any] = []
        self.happens_before: Any = None
        super().__init__(self.render())

    def explain_races(self, conflicts: list[Any], graph: Any) -> None:
        """Attach the conflicting accesses of the run (:class:`explorer._races.Conflict`,
        each possibly judged by a reversed replay) and its happens-before graph (a
        ``networkx.DiGraph``); the message lists the pairs whose order decided the
        failure first, then the others."""
        self.conflicts = list(conflicts)
        self.happens_before = graph
        self.args = (self.render(),)

    @property
    def deciding(self) -> list[Any]:
        """The conflicting pairs whose order decided the failure: run the other way round
        (replayed), the failure went away or changed."""
        return [c for c in self.conflicts if c.decides]

    def happens_before_dot(self) -> str:
        """The happens-before graph in Graphviz DOT form ("" when it was not recorded)."""
        from explorer._races import to_dot

        return to_dot(self.happens_before) if self.happens_before is not None else ""

    def saved_to(self, path: Path) -> None:
        """Record that the failure was saved to the corpus (the message says where)."""
        self.corpus_path = path
        self.args = (self.render(),)

    @property
    def location(self) -> Any:
        return self.outcome.location

    def replay_line(self) -> str:
        name = self.scenario.rsplit(".", 1)[-1]
        runtime = f", runtime={self.runtime!r}" if self.runtime != "asyncio" else ""
        return f"explorer.replay({name}, {str(self.schedule)!r}{runtime})"

    def render(self) -> str:
        """The full message: what failed, where, the trace, the schedule and replay line."""
        outcome = self.outcome
        where = f" at {outcome.location.short}" if outcome.location else ""
        how = self.strategy.get("name", "?")
        seed = self.strategy.get("seed")
        found = f"schedule #{self.found_after} of {how} search" + (
            f" (seed {seed})" if seed is not None else "")
        lines = [
            f"{self.scenario} failed ({self.kind}{where}) under {found}, "
            f"{self.deviations} deviation(s) from the stock schedule.",
            *([f"Shrinking: {self.shrink.describe()}."] if self.shrink else []),
            "",
            *("  " + line for line in outcome.message.splitlines()),
            "",
        ]
        why = explain(self.trace)
        if why:
            lines += ["Why: the deviations from the stock order that make it fail:",
                      *(f"  {line}" for line in why), ""]
        if self.conflicts:
            from explorer._races import render

            lines += [*render(self.conflicts), ""]
        lines += [
            "Swimlanes (one column per task, * marks a deviation; the full trace is "
            "failure.trace):",
            swimlanes(self.trace),
            "",
            f"Schedule: {self.schedule}",
            f"Replay:   {self.replay_line()}",
            *([f"Saved:    {self.corpus_path}"] if self.corpus_path else []),
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "runtime": self.runtime,
            "schedule": str(self.schedule),
            "found_after": self.found_after,
            "deviations": self.deviations,
            "strategy": self.strategy,
            "outcome": self.outcome.to_json(),
            "trace": self.trace.to_json(),
            "trace_hash": self.trace.hash(),
            "explanation": explain(self.trace),
            "conflicts": [c.describe() for c in self.conflicts],
            "deciding": [c.describe() for c in self.deciding],
            "races": [c.to_json() for c in self.conflicts],
            "shrink": dataclasses.asdict(self.shrink) if self.shrink else None,
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)
