"""The explore loop: for each schedule run, check, classify, feed back; then confirm.

Exploration runs untraced (fast). A failing schedule is replayed traced, which both builds
the readable trace and checks determinism: the replay must make the same decisions and end
in the same outcome. A sample of passing schedules (the 1st, then of the 2nd, 4th, 8th, ...
those that keep the replayed steps within an eighth of the steps explored) is re-run as
well, so a scenario that depends on something outside the schedule is reported as
``nondeterminism`` instead of producing unreplayable failures.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import explorer.strategies as _strategies
from explorer import _interrupts as interrupts
from explorer._determinism import verify
from explorer._errors import DidNotReproduce, HealthWarning, UsageError
from explorer._faults import spell as spell_faults
from explorer._interrupts import ExplorationInterrupted
from explorer._outcome import HANG, Outcome
from explorer._records import Record
from explorer._runtime import Chooser, RunMode, RunRecord, Runtime, Scenario
from explorer._scenario import PINS_ATTR, REPRODUCE_ATTR
from explorer._scenario import bind as _bind
from explorer._scenario import scenario_name as scenario_name  # re-exported for callers
from explorer._scenario import unwrapped as _unwrapped
from explorer._settings import (  # the defaults are re-exported: callers import them here
    DEFAULT_MAX_SCHEDULES,
    DEFAULT_MAX_STEPS,
    DEFAULT_RUN_TIMEOUT,
    DEFAULT_RUNTIME,
    DEFAULT_STRATEGY,
    RUNTIMES,
    Settings,
    from_keywords,
)

if TYPE_CHECKING:
    from explorer._failure import ScheduleFailure
    from explorer._schedule import Schedule
    from explorer._shrink import ShrinkReport
    from explorer._trace import Trace  # only traced runs build one: not loaded before


def _schedule_failure(*args: Any, **kwargs: Any) -> ScheduleFailure:
    """A :class:`ScheduleFailure`, its module imported only once one is made (it and the
    reports it builds cost a good part of the first exploration's imports)."""
    from explorer._failure import ScheduleFailure

    return ScheduleFailure(*args, **kwargs)


def _schedule_of(decisions: Iterable[int], *, timers: bool,
                 faults: frozenset[str]) -> Schedule:
    """The :class:`Schedule` of a run's decisions, its module imported only once one is
    made: an exploration that passes (pins aside) never makes one."""
    from explorer._schedule import Schedule

    return Schedule.from_decisions(decisions, timers=timers, faults=faults)


_UNBOUNDED = 10**12  # what a Settings without a schedule budget (None) means here
# After the first, determinism checks replay at most one step in _CHECK_SHARE of those
# explored (explore's loop): their cost stays proportionate at any run length.
_CHECK_SHARE = 8


class ExploreResult(Record):
    """What an exploration did: ``schedules`` run, whether the strategy ``exhausted`` its
    space, the ``failure`` (or None), plus statistics.

    A record (mutable); ``dataclasses.replace`` and ``dataclasses.fields`` accept it
    (:mod:`explorer._records`)."""

    __slots__ = ("coverage", "distinct", "elapsed", "exhausted", "failure", "probes",
                 "schedules", "statistics", "steps", "strategy")
    _factories = (("statistics", dict),)

    schedules: int
    exhausted: bool
    failure: ScheduleFailure | None
    strategy: dict[str, Any]
    coverage: str
    distinct: int
    steps: int
    elapsed: float
    probes: int
    statistics: dict[str, Any]

    def __init__(self, schedules: int, exhausted: bool, failure: ScheduleFailure | None,
                 strategy: dict[str, Any], coverage: str, distinct: int, steps: int,
                 elapsed: float, probes: int = 0,
                 statistics: dict[str, Any] | None = None) -> None:
        self.schedules = schedules
        self.exhausted = exhausted
        self.failure = failure
        self.strategy = strategy
        self.coverage = coverage
        self.distinct = distinct
        self.steps = steps
        self.elapsed = elapsed
        self.probes = probes
        self.statistics = {} if statistics is None else statistics

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def schedules_per_second(self) -> float:
        return self.schedules / self.elapsed if self.elapsed > 0 else float("inf")


class RunResult(Record):
    """The outcome of one schedule run by :func:`run` or :func:`replay`.

    A record (mutable); ``dataclasses.replace`` and ``dataclasses.fields`` accept it
    (:mod:`explorer._records`)."""

    __slots__ = ("decisions", "divergences", "outcome", "schedule", "steps", "trace")
    _factories = (("decisions", list), ("divergences", list))

    outcome: Outcome
    schedule: Schedule
    trace: Trace
    steps: int
    decisions: list[int]
    divergences: list[tuple[int, int, int]]

    def __init__(self, outcome: Outcome, schedule: Schedule, trace: Trace, steps: int,
                 decisions: list[int] | None = None,
                 divergences: list[tuple[int, int, int]] | None = None) -> None:
        self.outcome = outcome
        self.schedule = schedule
        self.trace = trace
        self.steps = steps
        self.decisions = [] if decisions is None else decisions
        self.divergences = [] if divergences is None else divergences

    @property
    def passed(self) -> bool:
        return not self.outcome.failed


def _runtime(name: str) -> Runtime:
    if name == "asyncio":
        from explorer._asyncio._runner import AsyncioRuntime

        return AsyncioRuntime()
    if name == "trio":
        from explorer._trio._runner import TrioRuntime

        return TrioRuntime()
    raise UsageError(f"unknown runtime {name!r}; available runtimes: {', '.join(RUNTIMES)}")


def explore(fn: Callable[..., Any], *args: Any, runtime: str = DEFAULT_RUNTIME,
            strategy: str | _strategies.Strategy = DEFAULT_STRATEGY,
            max_schedules: int = DEFAULT_MAX_SCHEDULES, seed: int | None = None,
            max_steps: int = DEFAULT_MAX_STEPS, raise_on_failure: bool = True,
            deviation_bound: int | None = None, timer_races: bool = False,
            faults: bool | Iterable[str] | None = None,
            max_time: float | str | None = None, shrink: bool = True,
            corpus: str | os.PathLike[str] | None = None,
            run_timeout: float | str | None = DEFAULT_RUN_TIMEOUT,
            profile: str | None = None, settings: Settings | None = None,
            preemption_bound: int | None = None) -> ExploreResult:
    """Run ``fn(*args)`` once per schedule chosen by ``strategy`` until it fails or the
    budget (``max_schedules``, ``max_time`` seconds) or the strategy's space runs out.
    The default strategy, ``"portfolio"``, rotates several search strategies across the
    schedules, seeded by ``seed`` (see :mod:`explorer.strategies`).

    On failure raise :class:`ScheduleFailure` (or, with ``raise_on_failure=False``, return
    it in the result). ``deviation_bound`` limits the systematic strategy;
    ``preemption_bound`` makes it count switches instead (a switch sets aside a task that
    could continue) and run every schedule with at most that many; ``timer_races``
    adds "fire the next timer now" as a candidate, to find timeout-versus-completion races.
    ``faults`` (True for every kind, or a set of ``refused``, ``reset``, ``dropped``,
    ``unanswered``) lets the simulated network inject those faults, each as a decision
    counted like a deviation (see :mod:`explorer._faults`); off by default.
    A failing schedule is shrunk (``shrink=True``) to the fewest switches, then the fewest
    deviations, then the shortest run, then the lowest candidate indices that fail the
    same way, and saved to
    the ``corpus`` directory when one is given.

    A run that takes more than ``run_timeout`` seconds of real time (None or 0: no
    limit) is stopped and fails as a ``hang``; ``max_time`` also stops a run in progress.
    A real Ctrl-C stops the exploration with :class:`~explorer.ExplorationInterrupted`,
    saying what was run and found so far.

    A scenario decorated with :func:`explorer.reproduce` runs only that schedule; one
    decorated with :func:`explorer.pin` runs its pinned schedules before any other.

    The settings (all but ``raise_on_failure`` and ``corpus``) may also come from a
    ``profile`` (see :func:`explorer.register_profile`) or a whole :class:`~explorer.Settings`
    (``settings``); a keyword left at its default takes its value from those, one given
    overrides them. ``max_time`` and ``run_timeout`` also take durations such as ``"5m"``.
    """
    chosen_settings = from_keywords(
        {"strategy": strategy, "max_schedules": max_schedules, "seed": seed,
         "deviation_bound": deviation_bound, "max_steps": max_steps,
         "timer_races": timer_races, "shrink": shrink, "max_time": max_time,
         "runtime": runtime, "run_timeout": run_timeout, "faults": faults,
         "preemption_bound": preemption_bound},
        settings=settings, profile=profile)
    strategy, seed = chosen_settings.strategy, chosen_settings.seed
    max_schedules = chosen_settings.max_schedules or _UNBOUNDED
    deviation_bound, max_steps = chosen_settings.deviation_bound, chosen_settings.max_steps
    timer_races, shrink = chosen_settings.timer_races, chosen_settings.shrink
    max_time, runtime = chosen_settings.max_time, chosen_settings.runtime
    run_timeout = chosen_settings.run_timeout
    fault_kinds = chosen_settings.faults
    scenario = _bind(fn, args)
    name = scenario_name(fn)
    target = _unwrapped(fn)
    reproducing = getattr(target, REPRODUCE_ATTR, None)
    if reproducing is not None:
        return _reproduce(fn, args, reproducing, runtime, max_steps, raise_on_failure,
                          run_timeout)
    pins: tuple[Schedule, ...] = getattr(target, PINS_ATTR, ())
    chosen = _strategies.make_strategy(strategy, seed=seed, deviation_bound=deviation_bound,
                                       preemption_bound=chosen_settings.preemption_bound)
    rt = _runtime(runtime)
    start = time.perf_counter()
    deadline = start + max_time if max_time is not None else None
    schedules = probes = steps = points = longest = 0
    seen: set[tuple[int, ...]] = set()
    failure: ScheduleFailure | None = None
    next_check = 1
    checked = 0  # steps replayed by determinism checks
    plain: RunMode | None = None  # the mode of unchecked runs, made once
    choose = chosen.choose
    footprints = chosen.footprints
    if fault_kinds and footprints is not None:
        raise UsageError(
            f"the {chosen.name} strategy records footprints for partial-order reduction, "
            f"which cannot be combined with faults={spell_faults(fault_kinds)!r}: a fault "
            "decision has no footprint, so the reduction would skip schedules and its "
            "coverage claim would be false. Inject faults under another strategy (the "
            "default portfolio, or systematic with a deviation_bound), or explore without "
            "faults under dpor")
    if timer_races and rt.name == "trio" and footprints is not None:
        raise UsageError(
            f"the {chosen.name} strategy records footprints for partial-order reduction, "
            "which the trio runtime cannot record with timer_races=True; use a search "
            "strategy (the default portfolio, random, pct...) with timer_races, or "
            f"{chosen.name} without it")
    # Footprints are asked for per run (Strategy.run_footprints): a portfolio member that
    # learns from them gets them in its own turns only. Runs that inject faults record
    # none (a fault decision has no footprint), nor do trio runs that race timers (its
    # runtime records neither with them); a member asking then learns nothing from them.
    recordable = bool(chosen.footprint_models) and not fault_kinds \
        and not (timer_races and rt.name == "trio")
    found: Outcome | None = None
    with interrupts.watching(), _interrupted(lambda: _so_far(name, schedules, start, found)), \
            rt.session(footprints=recordable):
        for pin in pins:
            schedules += 1
            traced, _ = _replay_record(rt, scenario, pin.decisions(), max_steps=max_steps,
                                       timer_races=pin.timers, traced=True, faults=pin.faults,
                                       run_timeout=run_timeout)
            steps += traced.stats.steps
            if traced.outcome.failed:
                failure = _schedule_failure(traced.outcome, pin, traced.trace, scenario=name,
                                            found_after=schedules, runtime=rt.name,
                                            strategy={"name": "pinned"})
                break
        while failure is None and schedules < max_schedules and chosen.start_run():
            limit, cut = _run_limit(run_timeout, deadline)
            # The 1st schedule is checked, then the 2nd, 4th, 8th... while the steps the
            # checks replayed stay within 1/_CHECK_SHARE of the steps explored: counts,
            # never a clock, so that the same exploration checks the same schedules on any
            # machine, and long runs (hundreds of tasks) are not replayed at half the
            # exploration's cost. The run to be checked hashes its steps, so that one
            # hashed replay, untraced, can be compared with it (_determinism).
            checking = schedules + 1 == next_check and checked * _CHECK_SHARE <= steps
            needs = chosen.run_footprints() if recordable else None
            mode = plain
            if checking or mode is None or mode.run_timeout != limit \
                    or mode.footprints != needs:
                mode = RunMode(max_steps=max_steps, timer_races=timer_races,
                               footprints=needs, run_timeout=limit, faults=fault_kinds,
                               hashed=checking)
                if not checking:  # frozen, so reused by the next runs while it fits
                    plain = mode
            record = rt.run(scenario, choose, mode)
            if cut and record.outcome.kind == HANG:  # max_time ran out during this run
                warnings.warn(HealthWarning(
                    f"max_time ran out while a run of {name} was still going (stopped at "
                    f"{record.outcome.location or 'an unknown line'}); that run is not "
                    "counted. If the scenario can hang, set run_timeout (seconds) below "
                    "max_time so that a run that long is reported as a hang."), stacklevel=2)
                break
            if needs is not None:
                chosen.observe(record.footprints or [])
            failed = record.outcome.failed
            counted = chosen.counts_as_schedule
            chosen.end_run(record.decisions, failed)
            steps += record.stats.steps
            points += record.stats.points
            longest = max(longest, record.stats.stock_steps)
            if not counted:
                probes += 1
                continue
            schedules += 1
            seen.add(tuple(record.decisions))
            if failed:
                found = record.outcome
                failure = _confirm(rt, scenario, name, record, schedules, chosen.describe(),
                                   max_steps, timer_races, shrink, footprints, run_timeout,
                                   faults=fault_kinds)
                break
            if schedules == next_check:
                next_check *= 2
            if checking:
                failure = _check_determinism(rt, scenario, name, record, schedules,
                                             chosen.describe(), max_steps, timer_races,
                                             run_timeout, faults=fault_kinds,
                                             footprints=needs)
                if failure is not None:
                    break
                checked += record.stats.steps  # what its replay ran
            if deadline is not None and time.perf_counter() > deadline:
                break
    result = ExploreResult(schedules, chosen.exhausted and failure is None, failure,
                           chosen.describe(), chosen.coverage(), len(seen), steps,
                           time.perf_counter() - start, probes, chosen.statistics())
    if failure is None:
        _health(name, result, points, longest, max_steps)
    if failure is not None and corpus is not None:
        from explorer._corpus import Corpus  # files, hashes, platform: only to save

        failure.saved_to(Corpus(corpus).save(failure).path)
    if failure is not None and raise_on_failure:
        raise failure
    return result


def _run_limit(run_timeout: float | None, deadline: float | None
               ) -> tuple[float | None, bool]:
    """The real-time limit of the next run, and whether it is cut short by ``max_time``
    (a run stopped by that cut is not a hang: it has not exceeded ``run_timeout``)."""
    if deadline is None:
        return run_timeout, False
    left = max(deadline - time.perf_counter(), 0.01)
    if run_timeout is None or left < run_timeout:
        return left, True
    return run_timeout, False


def _so_far(name: str, schedules: int, start: float, found: Outcome | None) -> str:
    """What an interrupted exploration had done, in one line."""
    took = f"{schedules:,} schedule(s) of {name} in {time.perf_counter() - start:.1f}s"
    if found is None:
        return f"interrupted after {took}; no failure found so far"
    where = f" at {found.location.short}" if found.location else ""
    return (f"interrupted after {took}; found a {found.kind}{where}, interrupted while "
            "confirming and shrinking it, so it was not saved: explore again to get it")


@contextmanager
def _interrupted(so_far: Callable[[], str]) -> Iterator[None]:
    """Turn a real Ctrl-C into :class:`ExplorationInterrupted` saying what was done."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if isinstance(exc, ExplorationInterrupted) or not interrupts.requested():
            raise
        raise ExplorationInterrupted(so_far()) from None


_IDENTICAL_AFTER = 20
"""Schedules before "every schedule was identical" is worth a warning. A sampling strategy
can repeat the stock order by chance a few times, and a walk over task kinds folds identical
tasks together, so a short exploration of identical schedules says nothing; twenty in a row
do (a random walk with one real two-way choice repeats one order twenty times with odds
below one in a million)."""


def _health(name: str, result: ExploreResult, points: int, longest: int,
            max_steps: int) -> None:
    if result.schedules < 2:
        return
    if points == 0:
        warnings.warn(HealthWarning(
            f"{name} ran {result.schedules} schedules without a single scheduling point: "
            "nothing in it ever ran concurrently, so every schedule was the same. Start the "
            "concurrent work (tasks, gather, TaskGroup, requests) inside the scenario."),
            stacklevel=3)
    elif result.distinct == 1 and result.schedules >= _IDENTICAL_AFTER:
        warnings.warn(HealthWarning(
            f"all {result.schedules} schedules of {name} were identical: the "
            f"{result.strategy.get('name')} strategy never deviated from one order."),
            stacklevel=3)
    if longest > max_steps // 2:
        warnings.warn(HealthWarning(
            f"a run of {name} took {longest} steps in stock order after its last "
            f"deviation, more than half of max_steps={max_steps}: a run that goes on "
            "that way for max_steps steps is reported as a livelock. Raise max_steps "
            "if the scenario is meant to be this long."), stacklevel=3)


def _reproduce(fn: Callable[..., Any], args: tuple[Any, ...], schedule: Schedule,
               runtime: str, max_steps: int, raise_on_failure: bool,
               run_timeout: float | None) -> ExploreResult:
    start = time.perf_counter()
    result = run(fn, *args, schedule=schedule, runtime=runtime, max_steps=max_steps,
                 run_timeout=run_timeout)
    if not result.outcome.failed:
        raise DidNotReproduce(
            f"@explorer.reproduce({str(schedule)!r}) no longer makes {scenario_name(fn)} "
            "fail: the bug is fixed or the code changed. Remove the decorator (or keep the "
            "schedule as a regression case with @explorer.pin)."
        )
    failure = _schedule_failure(result.outcome, schedule, result.trace,
                                scenario=scenario_name(fn), strategy={"name": "reproduce"},
                                runtime=runtime)
    if raise_on_failure:
        raise failure
    return ExploreResult(1, False, failure, {"name": "reproduce"},
                         f"only the schedule {schedule} (@explorer.reproduce)", 1,
                         result.steps, time.perf_counter() - start)


def _replay_record(rt: Runtime, scenario: Scenario, decisions: list[int], *,
                   max_steps: int, timer_races: bool, traced: bool, strict: bool = True,
                   expected: Mapping[int, str] | None = None,
                   run_timeout: float | None = None,
                   faults: frozenset[str] = frozenset(), hashed: bool = False,
                   footprints: str | None = None
                   ) -> tuple[RunRecord, _strategies.Fixed]:
    fixed = _strategies.Fixed(decisions, strict=strict, expected=expected)
    fixed.start_run()
    record = rt.run(scenario, fixed.choose, RunMode(
        max_steps=max_steps, timer_races=timer_races, traced=traced,
        run_timeout=run_timeout, faults=faults, hashed=hashed, footprints=footprints))
    fixed.check_complete()
    return record, fixed


def _confirm(rt: Runtime, scenario: Scenario, name: str, record: RunRecord,
             index: int, strategy: dict[str, Any], max_steps: int,
             timer_races: bool, shrink: bool = False,
             footprints: str | None = None,
             run_timeout: float | None = None,
             faults: frozenset[str] = frozenset()) -> ScheduleFailure:
    """Check that a failing run replays (traced, twice, identically), shrink it, and build
    the failure from a traced replay of the shrunk schedule.

    Every run here has the full ``run_timeout``: shrinking a hang costs up to that much
    per candidate, and stops within the shrinker's time budget plus one run."""
    def replay_of(decisions: list[int]) -> Callable[[], RunRecord]:
        return lambda: _replay_record(rt, scenario, decisions, max_steps=max_steps,
                                      timer_races=timer_races, traced=True,
                                      run_timeout=run_timeout, faults=faults)[0]

    def failure(outcome: Outcome, rec: RunRecord, trace: Trace | None,
                report: ShrinkReport | None = None,
                switches: int | None = None) -> ScheduleFailure:
        return _schedule_failure(outcome, _schedule_of(rec.decisions, timers=timer_races,
                                                       faults=faults),
                                 trace, scenario=name, found_after=index, strategy=strategy,
                                 shrink=report, runtime=rt.name, switches=switches)

    traced, problem = verify(record, replay_of(record.decisions))
    if problem is not None:
        return failure(problem, record, traced.trace if traced else None)
    assert traced is not None  # verify returns a replay whenever it finds no problem
    def run_once(chooser: Chooser) -> RunRecord:
        return rt.run(scenario, chooser, RunMode(
            max_steps=max_steps, timer_races=timer_races, run_timeout=run_timeout,
            faults=faults))

    # Imported here, not at the top: only a failing exploration shrinks or counts switches.
    from explorer._shrink import Shrinker, count_switches_of

    report = switches = None
    if not shrink:  # the shrinker counts the switches of what it returns; else one run
        switches = count_switches_of(run_once, record.decisions)
    else:
        # The outcome, not its signature: the shrinker compares failures without task
        # numbers, which a moved decision can shift (Outcome.stable_signature).
        shrunk, report = Shrinker(run_once, record.outcome).shrink(record)
        if shrunk is not record:
            traced, problem = verify(shrunk, replay_of(shrunk.decisions))
            if problem is not None:
                return failure(problem, shrunk, traced.trace if traced else None)
            assert traced is not None
            record = shrunk
    found = failure(traced.outcome, record, traced.trace, report, switches)
    if footprints is not None:
        _explain_races(rt, scenario, found, record.decisions, max_steps, timer_races,
                       footprints, run_timeout)
    return found


def _explain_races(rt: Runtime, scenario: Scenario, found: ScheduleFailure,
                   decisions: list[int], max_steps: int, timer_races: bool,
                   footprints: str, run_timeout: float | None = None) -> None:
    """Replay the failing schedule recording named footprints; attach its races."""
    # Imported here: a passing exploration never needs the race analysis.
    from explorer._deciding import deciding
    from explorer._happens_before import RunAnalysis
    from explorer._races import conflicts, happens_before

    fixed = _strategies.Fixed(decisions, strict=False)
    fixed.start_run()
    named = rt.run(scenario, fixed.choose, RunMode(
        max_steps=max_steps, timer_races=timer_races, footprints=footprints, naming=True,
        run_timeout=run_timeout))
    if named.footprints is None or named.decisions != decisions:
        return

    def rerun(chooser: Chooser) -> RunRecord:  # a reversed race, replayed
        return rt.run(scenario, chooser, RunMode(
            max_steps=max_steps, timer_races=timer_races, footprints=footprints,
            run_timeout=run_timeout))

    names = named.names or {}
    records = named.footprints
    analysis = RunAnalysis(records)  # one happens-before analysis serves all three uses
    found.explain_races(deciding(conflicts(records, found.trace, names, analysis=analysis),
                                 records, found.trace, names, found.outcome, rerun,
                                 analysis=analysis),
                        happens_before(records, found.trace, analysis=analysis))


def _check_determinism(rt: Runtime, scenario: Scenario, name: str,
                       record: RunRecord, index: int, strategy: dict[str, Any],
                       max_steps: int, timer_races: bool,
                       run_timeout: float | None = None,
                       faults: frozenset[str] = frozenset(),
                       footprints: str | None = None) -> ScheduleFailure | None:
    """Replay a passing run untraced and hashed: once when the run was hashed itself,
    else twice; the replays must match it (and each other). Traced replays only
    explain a difference.

    ``footprints``: the model the run recorded, if any; its untraced replays record the
    same way, so that they run what it ran (a recording run is not hashed: its two
    replays are then compared traced)."""
    def replay(traced: bool) -> Callable[[], RunRecord]:
        return lambda: _replay_record(
            rt, scenario, record.decisions, max_steps=max_steps, timer_races=timer_races,
            traced=traced, run_timeout=run_timeout, faults=faults, hashed=not traced,
            footprints=None if traced else footprints)[0]

    traced, problem = verify(record, replay(True), untraced=replay(False))
    if problem is None:
        return None
    return _schedule_failure(problem, _schedule_of(record.decisions, timers=timer_races,
                                                   faults=faults),
                             traced.trace if traced is not None else None, scenario=name,
                             found_after=index, strategy=strategy, runtime=rt.name)


def run(fn: Callable[..., Any], *args: Any,
        schedule: Schedule | str | _strategies.Strategy | None = None,
        runtime: str = "asyncio", max_steps: int = DEFAULT_MAX_STEPS,
        strict: bool = True, expected: Mapping[int, str] | None = None,
        run_timeout: float | None = DEFAULT_RUN_TIMEOUT) -> RunResult:
    """Run ``fn(*args)`` once under ``schedule`` (default: the stock schedule), traced,
    and return its outcome without raising for a failing run.

    ``schedule`` may also be a strategy that decides as the run goes, such as a schedule
    drawn from :func:`explorer.strategies.hypothesis.schedules`. ``expected`` maps scheduling points
    to the task the schedule should pick there (corpus entries record it); a strict replay
    that finds other work there raises :class:`~explorer.ReplayDivergence`. A run longer
    than ``run_timeout`` seconds of real time ends as a ``hang``.
    """
    from explorer._schedule import Schedule  # see _schedule_of

    checked = Settings(runtime=runtime, max_steps=max_steps, run_timeout=run_timeout)
    max_steps, run_timeout = checked.max_steps, checked.run_timeout
    scenario = _bind(fn, args)
    rt = _runtime(runtime)
    if isinstance(schedule, _strategies.Strategy):
        return _run_strategy(rt, scenario, schedule, max_steps, run_timeout)
    sched = Schedule.coerce(schedule) if schedule is not None else Schedule()
    with interrupts.watching(), rt.session():
        record, fixed = _replay_record(rt, scenario, sched.decisions(), max_steps=max_steps,
                                       timer_races=sched.timers, faults=sched.faults,
                                       traced=True, strict=strict,
                                       expected=expected, run_timeout=run_timeout)
    actual = Schedule.from_decisions(record.decisions, timers=sched.timers,
                                     faults=sched.faults)
    return RunResult(record.outcome, actual, record.traced(), record.stats.steps,
                     record.decisions, fixed.divergences)


def _run_strategy(rt: Runtime, scenario: Scenario, strategy: _strategies.Strategy,
                  max_steps: int, run_timeout: float | None) -> RunResult:
    if not strategy.start_run():
        raise UsageError(
            f"the {strategy.name} strategy has no run left to make; a schedule drawn from "
            "schedules() runs once, so draw one per run"
        )
    timers, faults = strategy.timer_races, strategy.faults
    with interrupts.watching(), rt.session():
        record = rt.run(scenario, strategy.choose, RunMode(
            max_steps=max_steps, timer_races=timers, traced=True, run_timeout=run_timeout,
            faults=faults))
    strategy.end_run(record.decisions, record.outcome.failed)
    return RunResult(record.outcome, _schedule_of(record.decisions, timers=timers,
                                                  faults=faults),
                     record.traced(), record.stats.steps, record.decisions)


def replay(fn: Callable[..., Any], schedule: Schedule | str | _strategies.Strategy,
           *args: Any, runtime: str = "asyncio", max_steps: int = DEFAULT_MAX_STEPS,
           strict: bool = True,
           run_timeout: float | None = DEFAULT_RUN_TIMEOUT) -> RunResult:
    """Re-run exactly ``schedule``; raise :class:`ScheduleFailure` if the run fails.

    Strict by default: when the code has drifted so that the schedule no longer fits,
    raise :class:`~explorer.ReplayDivergence` saying where. Returns the passing result
    otherwise (for example when the bug has been fixed). A schedule drawn from
    :func:`explorer.strategies.hypothesis.schedules` is accepted too, so a ``@given`` test fails
    with the readable failure.
    """
    result = run(fn, *args, schedule=schedule, runtime=runtime, max_steps=max_steps,
                 strict=strict, run_timeout=run_timeout)
    if result.outcome.failed:
        how = schedule.describe() if isinstance(schedule, _strategies.Strategy) else \
            {"name": "replay"}
        raise _schedule_failure(result.outcome, result.schedule, result.trace,
                                scenario=scenario_name(fn), strategy=how, runtime=runtime)
    return result
