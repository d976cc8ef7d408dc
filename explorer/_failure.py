"""``ScheduleFailure``: a scenario failed under a schedule; everything needed to replay it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from explorer._errors import ExplorerError
from explorer._explain import explain, swimlanes
from explorer._failure_record import (
    FailureRecord,
    FailureReport,
    OutcomeRecord,
    SavedStep,
)
from explorer._locations import Location
from explorer._outcome import Outcome
from explorer._schedule import Schedule
from explorer._shrink import ShrinkReport
from explorer._trace import Trace
from explorer.strategies._base import Parameter

if TYPE_CHECKING:
    import networkx as nx

    from explorer._races import Conflict


class ScheduleFailure(ExplorerError, AssertionError):
    """The scenario failed under one schedule.

    Attributes: ``kind`` (assertion, exception, deadlock, livelock, leaked_task,
    nondeterminism, escape), ``schedule`` (``str()`` gives the paste-able form),
    ``found_after`` (1-based index of the failing schedule), ``deviations``, ``switches``
    (decisions that set aside a task that could continue, :mod:`explorer._switches`; None
    when not counted), ``trace``, ``outcome``, ``scenario`` (its dotted name),
    ``strategy`` (how it was found) and ``shrink`` (a :class:`ShrinkReport`, when the
    schedule was shrunk).

    :meth:`record` is the failure as data (:class:`FailureRecord`); :meth:`to_json` is its
    JSON, the published form, and :meth:`from_record` reads one back.
    """

    def __init__(self, outcome: Outcome, schedule: Schedule, trace: Trace | None, *,
                 scenario: str, found_after: int = 1,
                 strategy: Mapping[str, Parameter] | None = None, runtime: str = "asyncio",
                 shrink: ShrinkReport | None = None, switches: int | None = None) -> None:
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
        self.switches = switches if switches is not None or shrink is None else \
            shrink.switches
        self.corpus_path: Path | None = None
        self.conflicts: list[Conflict] = []
        self.happens_before: nx.DiGraph[int] | None = None
        self._loaded: FailureRecord | None = None
        self._message: str | None = None
        super().__init__(self.render())

    @classmethod
    def from_record(cls, report: FailureReport) -> ScheduleFailure:
        """The failure a record describes, read back (from a job's ``--json`` result):
        its outcome, schedule and trace rebuilt (locations keep base names), its
        :meth:`record` the one read, its message the saved one when there is one."""
        record = report.record
        failure = cls(record.outcome.outcome(), Schedule.parse(record.schedule),
                      Trace([s.step() for s in record.steps], dict(record.labels)),
                      scenario=record.scenario,
                      found_after=record.found_after, strategy=dict(record.strategy),
                      runtime=record.runtime, shrink=record.shrink,
                      switches=record.switches)
        failure._loaded = record
        failure._message = report.message
        if report.corpus_path is not None:
            failure.corpus_path = Path(report.corpus_path)
        failure.args = (failure.render(),)
        return failure

    def explain_races(self, conflicts: list[Conflict], graph: nx.DiGraph[int] | None
                      ) -> None:
        """Attach the conflicting accesses of the run (:class:`explorer._races.Conflict`,
        each possibly judged by a reversed replay) and its happens-before graph (a
        ``networkx.DiGraph``); the message lists the pairs whose order decided the
        failure first, then the others."""
        self.conflicts = list(conflicts)
        self.happens_before = graph
        self._loaded = self._message = None  # the races are part of the record and message
        self.args = (self.render(),)

    @property
    def deciding(self) -> list[Conflict]:
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
        self._message = None
        self.args = (self.render(),)

    def simplicity(self) -> str:
        """``1 switch, 3 deviation(s)``: how simple the schedule is, switches first (what a
        person counts), then deviations from the stock order; deviations alone when the
        switches were not counted."""
        deviations = f"{self.deviations} deviation(s)"
        if self.switches is None:
            return deviations
        return f"{self.switches} switch{'' if self.switches == 1 else 'es'}, {deviations}"

    @property
    def location(self) -> Location | None:
        return self.outcome.location

    def replay_line(self) -> str:
        name = self.scenario.rsplit(".", 1)[-1]
        runtime = f", runtime={self.runtime!r}" if self.runtime != "asyncio" else ""
        if self.kind == "not_linearizable":  # a generated scenario: replayed with its data
            factory = self.scenario.rsplit(".", 2)[-2] if self.scenario.count(".") else name
            return (f"explorer.replay_linearizability({factory}, operations, failure"
                    f"{runtime})  (failure: this error, its to_json() or its corpus entry)")
        return f"explorer.replay({name}, {str(self.schedule)!r}{runtime})"

    @property
    def details(self) -> dict[str, object]:
        """The outcome's structured facts (:attr:`Outcome.details`): for a
        ``not_linearizable`` failure its scenario, history and closest sequential orders."""
        return self.outcome.details

    def render(self) -> str:
        """The full message: what failed, where, the trace, the schedule and replay line."""
        if self._message is not None:
            return self._message
        outcome = self.outcome
        where = f" at {outcome.location.short}" if outcome.location else ""
        how = self.strategy.get("name", "?")
        seed = self.strategy.get("seed")
        found = f"schedule #{self.found_after} of {how} search" + (
            f" (seed {seed})" if seed is not None else "")
        lines = [
            f"{self.scenario} failed ({self.kind}{where}) under {found}, "
            f"{self.simplicity()} from the stock schedule.",
            *([f"Shrinking: {self.shrink.describe()}."] if self.shrink else []),
            "",
            *("  " + line for line in outcome.message.splitlines()),
            "",
        ]
        # A failure read back from its record tells the story it was saved with: the
        # saved trace keeps base names only, so the source lines could not be re-read.
        why = list(self._loaded.explanation) if self._loaded is not None else \
            explain(self.trace)
        if why:
            lines += ["Why: what ran out of turn to make it fail:",
                      *(f"  {line}" for line in why), ""]
        if self.conflicts:
            from explorer._races import render

            lines += [*render(self.conflicts), ""]
        lines += [
            "Swimlanes (one lane per task, library tasks folded into the task they serve; "
            "* marks a switch, + another deviation from the stock order; the full trace is "
            "failure.trace):",
            swimlanes(self.trace),
            "",
            f"Schedule: {self.schedule}",
            f"Replay:   {self.replay_line()}",
            *([f"Saved:    {self.corpus_path}"] if self.corpus_path else []),
        ]
        return "\n".join(lines)

    def record(self) -> FailureRecord:
        """The failure as data (what :meth:`to_json` writes, typed)."""
        if self._loaded is not None:
            return self._loaded
        return FailureRecord(
            self.scenario, self.runtime, str(self.schedule), self.found_after,
            self.deviations, dict(self.strategy), OutcomeRecord.of(self.outcome),
            tuple(SavedStep.of(step) for step in self.trace), self.trace.hash(),
            tuple(explain(self.trace)), tuple(c.describe() for c in self.conflicts),
            tuple(c.describe() for c in self.deciding),
            tuple(c.record() for c in self.conflicts), self.shrink,
            dict(self.trace.labels), self.switches)

    def report(self, *, corpus_path: str | None = None, new_in_corpus: bool = False,
               message: bool = False) -> FailureReport:
        """The record as a front end hands it on: with the replay line, the corpus entry
        it was saved to, and (``message``) the rendered message."""
        return FailureReport(self.record(), self.replay_line(), corpus_path, new_in_corpus,
                             str(self) if message else None)

    def to_json(self) -> dict[str, object]:
        """The published JSON form (``--json`` output, summaries): :meth:`record`'s."""
        return self.record().to_json()

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)
