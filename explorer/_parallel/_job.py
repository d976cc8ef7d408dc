"""One target explored as a job: settings merged, parts run by an executor, results merged.

Invariant: a job's result does not depend on which worker finished first. Counters are
summed, the failure reported is the simplest one the parts found (fewest deviations, then
lowest worker), and the coordinator replays its shrunk schedule here to rebuild the whole
failure (trace, explanation), which also checks that it reproduces outside the worker.
The coverage sentence says what the parts covered jointly, and no more.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import explorer.strategies as _strategies
from explorer._engine import run
from explorer._errors import ExplorerError, InvalidScheduleError
from explorer._failure import ScheduleFailure
from explorer._failure_record import FailureReport, Fields, RecordError
from explorer._parallel._executors import Executor, ProgressCallback
from explorer._parallel._split import (
    DPOR_NAMES,
    EXPLORE_LOCK,
    UNBOUNDED,
    FoundFailure,
    Observed,
    Partition,
    PartResult,
    StrategyInfo,
    Tally,
    dpor_joint_coverage,
    explore_share,
)
from explorer._schedule import Schedule
from explorer._settings import Settings
from explorer._targets import Resolved, TargetRef, resolve


@dataclass
class JobResult:
    """One target explored, possibly by several workers, merged.

    ``corpus_path`` and ``new_in_corpus`` are filled in by the front end that saves the
    failure (the job itself writes nothing).
    """

    target: str
    scenario: str
    settings: Settings
    schedules: int
    probes: int
    steps: int
    distinct: int
    elapsed: float
    exhausted: bool
    coverage: str
    strategy: StrategyInfo
    failure: ScheduleFailure | None
    workers: int = 1
    warnings: list[str] = field(default_factory=list)
    corpus_path: str | None = None
    new_in_corpus: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def rate(self) -> float:
        return self.schedules / self.elapsed if self.elapsed > 0 else 0.0

    def failure_report(self, *, trace: bool = True) -> FailureReport | None:
        """The failure as data, with its message, replay line and corpus entry (``trace``:
        with its trace; without, the JSON leaves the trace out)."""
        if self.failure is None:
            return None
        report = self.failure.report(corpus_path=self.corpus_path,
                                     new_in_corpus=self.new_in_corpus, message=True)
        if trace:
            return report
        return dataclasses.replace(report, record=dataclasses.replace(report.record,
                                                                      trace=None))

    def to_json(self, *, trace: bool = True) -> dict[str, object]:
        failure = self.failure_report(trace=trace)
        # The rate is of the elapsed time as written, so that a result read back
        # (from_json) writes the same JSON again.
        elapsed = round(self.elapsed, 6)
        return {"target": self.target, "scenario": self.scenario,
                "runtime": self.settings.runtime,
                "status": "failed" if self.failure else "passed",
                "schedules": self.schedules, "probes": self.probes, "steps": self.steps,
                "distinct": self.distinct, "elapsed": elapsed,
                "rate": round(self.schedules / elapsed if elapsed > 0 else 0.0, 3),
                "exhausted": self.exhausted, "coverage": self.coverage,
                "strategy": self.strategy, "workers": self.workers,
                "warnings": self.warnings,
                "failure": failure.to_json() if failure is not None else None,
                "settings": self.settings.to_json()}

    @classmethod
    def from_json(cls, data: object) -> JobResult:
        """A result as :meth:`to_json` wrote it (``explorer explore --json``) read back;
        :class:`RecordError` naming the field if it is not one. Its failure is rebuilt
        from the record (:meth:`ScheduleFailure.from_record`), not replayed."""
        where = "explore result"
        fields = Fields.of(data, where)
        settings = fields.obj("settings")
        if settings is None:
            raise fields.error("settings", None, "an object")
        raw = fields.data.get("failure")
        report = None if raw is None else FailureReport.from_json(raw, f"{where} failure")
        failure = None
        if report is not None:
            try:
                failure = ScheduleFailure.from_record(report)
            except InvalidScheduleError as err:
                raise RecordError(f'{where}: field "failure.schedule": {err}') from None
        return cls(fields.text("target"), fields.text("scenario"),
                   Settings.from_json(settings.data), fields.integer("schedules"),
                   fields.integer("probes"), fields.integer("steps"),
                   fields.integer("distinct"), fields.number("elapsed"),
                   fields.flag("exhausted"), fields.text("coverage"),
                   fields.parameters("strategy"), failure, fields.integer("workers", 1),
                   list(fields.texts("warnings")),
                   report.corpus_path if report is not None else None,
                   report.new_in_corpus if report is not None else False)


def job_settings(resolved: Resolved, overrides: Mapping[str, object], *,
                 profile: str | None = None, unbounded: bool = False) -> Settings:
    """The settings of one target: ``profile`` (else ``default``), then the target's own
    options (its marker, its ``@explored`` settings, its ``[tool.explorer]`` entry), then
    ``overrides`` (the command line). A seeded strategy's seed is fixed here, so every
    worker and the report agree on it.

    ``unbounded``: no schedule budget unless the target's own options set one (the nightly
    job bounds exploration by time instead).
    """
    settings = Settings.merged({"profile": profile}, resolved.options, overrides,
                               where=f"target {resolved.ref.spec!r}").with_seed()
    if unbounded and "max_schedules" not in resolved.options:
        settings = settings.replace(max_schedules=None)
    return settings


def explore_target(ref: TargetRef, overrides: Mapping[str, object], executor: Executor, *,
                   on_schedules: ProgressCallback | None = None,
                   unbounded: bool = False, profile: str | None = None) -> JobResult:
    """Explore one target with the settings of :func:`job_settings`, on ``executor``."""
    resolved = resolve(ref)
    settings = job_settings(resolved, overrides, profile=profile, unbounded=unbounded)
    start = time.perf_counter()
    if executor.count == 1 and executor.shard is None:
        return _explore_here(resolved, settings, on_schedules, start)
    parts = executor.run_parts(resolved.ref, settings, on_schedules)
    return _merge(resolved, settings, parts, time.perf_counter() - start, executor.shard)


def _explore_here(resolved: Resolved, settings: Settings,
                  on_schedules: ProgressCallback | None, start: float) -> JobResult:
    inner = _strategies.make_strategy(settings.strategy, seed=settings.seed,
                                      deviation_bound=settings.deviation_bound,
                                      preemption_bound=settings.preemption_bound)
    strategy = Observed(inner, on_schedules=on_schedules)
    tally = Tally()
    result = explore_share(resolved, settings, strategy, tally,
                           max_schedules=settings.max_schedules or UNBOUNDED,
                           max_time=settings.max_time)
    strategy.flush()
    return JobResult(resolved.ref.spec, resolved.name, settings, result.schedules,
                     result.probes, result.steps, result.distinct,
                     time.perf_counter() - start, result.exhausted, result.coverage,
                     result.strategy, result.failure, 1, tally.warnings)


def joint_coverage(settings: Settings, parts: Sequence[PartResult], count: int,
                   shard: Partition | None) -> str:
    """What the parts covered together, in one honest sentence."""
    schedules = sum(p.schedules for p in parts)
    name = settings.strategy_name
    who = f"shard {shard}" if shard else f"{count} workers"
    if _strategies.splitting(name) == "seeded":
        seeds = sorted(s for p in parts for s in p.seeds)
        shown = ", ".join(map(str, seeds[:6])) + (", ..." if len(seeds) > 6 else "")
        return f"{schedules} {name} schedules by {who} (seeded {shown}); not exhaustive"
    if name in DPOR_NAMES:
        return dpor_joint_coverage(parts, who)
    if name != "systematic":
        whole = [p for p in parts if p.whole]
        if not whole:
            return f"nothing: {name} runs whole in worker 1, not in {who}"
        return f"{whole[0].coverage} ({name} cannot be split: worker 1 ran all of it)"
    finished = all(p.space_finished for p in parts)
    rounds = [p.completed_rounds for p in parts
              if not p.space_finished and p.completed_rounds is not None]
    if shard is not None:
        scope = (f"shard {shard}'s part (first deviation at a scheduling point p with "
                 f"p % {shard.count} == {shard.index}) of ")
    else:
        scope = f"jointly by {count} workers (split by first deviation point): "
    if finished:
        return f"{scope}all schedules, the whole space ({schedules} schedules)"
    bound = min(rounds) if rounds else -1
    if bound < 0:
        return f"{scope}{schedules} schedule(s); not even the first round completed"
    unit = "deviation(s)" if settings.preemption_bound is None else "switch(es)"
    return f"{scope}all schedules with at most {bound} {unit} ({schedules} schedules)"


def _merge(resolved: Resolved, settings: Settings, parts: list[PartResult],
           elapsed: float, shard: Partition | None) -> JobResult:
    count = parts[0].count if parts else 1
    found = [(p.failure, p.index) for p in parts if p.failure is not None]
    failure = None
    if found:
        # Prefer the simplest failure (fewest deviations, lowest worker), so a run reports
        # the same one whichever worker happened to finish first.
        best, _ = min(found, key=lambda item: (Schedule.parse(item[0].schedule)
                                               .deviation_count, item[1]))
        failure = rebuild_failure(resolved, settings, best)
    strategy: StrategyInfo = dict(parts[0].strategy) if parts else {
        "name": settings.strategy_name}
    strategy.pop("partition", None)
    if shard is None:
        strategy["workers"] = count
    else:
        strategy["shard"] = str(shard)
    return JobResult(
        resolved.ref.spec, resolved.name, settings,
        sum(p.schedules for p in parts), sum(p.probes for p in parts),
        sum(p.steps for p in parts), sum(p.distinct for p in parts), elapsed,
        failure is None and bool(parts) and all(p.exhausted for p in parts),
        joint_coverage(settings, parts, count, shard), strategy, failure, count,
        sorted({w for p in parts for w in p.warnings}))


def rebuild_failure(resolved: Resolved, settings: Settings, found: FoundFailure
                    ) -> ScheduleFailure:
    """Replay a worker's failing schedule here, traced, to rebuild the whole failure."""
    schedule = Schedule.parse(found.schedule)
    with EXPLORE_LOCK:
        result = run(resolved.fn, schedule=schedule, runtime=settings.runtime,
                     max_steps=settings.max_steps, run_timeout=settings.run_timeout)
    if tuple(result.outcome.signature()) != tuple(found.signature):
        raise ExplorerError(
            f"a worker found {resolved.name} failing ({found.kind}) under {schedule}, but "
            f"replaying it here gives {result.outcome.kind}: the workers and this machine "
            "do not run the same code; install the same version of the project everywhere")
    return ScheduleFailure(result.outcome, schedule, result.trace, scenario=resolved.name,
                           found_after=found.found_after, strategy=dict(found.strategy),
                           runtime=settings.runtime, shrink=found.shrink)
