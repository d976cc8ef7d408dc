"""Run a linearizability check: generate scenarios, explore each, judge every history.

For each scenario the concurrent run (the object from the factory, the prefix, the tasks,
the suffix) is explored under the controlled scheduler with :func:`explorer.explore`. Each
run records its history (every call's result and its start and end on one event counter)
and hands it to a :class:`_Judge`. The judging is done between explorations, not inside a
run: the sequential executions it needs are runs of their own (the stock schedule, the same
runtime, a fresh object each), which cannot start while the controlled loop is running.

1. Explore, recording the distinct histories (every run passes).
2. Judge each new history, executing sequential orders as needed (memoised per scenario).
3. If one is not linearizable, explore again with the same seed, the judge now frozen (no
   execution; a history it cannot decide passes): the run that gives a violating history
   raises :class:`~explorer._outcome.NotLinearizable`, so the explorer confirms, shrinks
   and saves it as any failure, of kind ``not_linearizable``.

A failing scenario is shrunk first (drop a task, then a call, while some schedule still
violates), then its schedule. Everything is deterministic for a seed.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer._corpus_format import CorpusEntry
from explorer._errors import HealthWarning, UsageError
from explorer._failure import ScheduleFailure
from explorer._linearize._checker import Event, PrefixResults, Result, Verdict, check, show
from explorer._linearize._model import (
    Call,
    LinScenario,
    Operation,
    as_operations,
    generate,
)
from explorer._locations import HARNESS, Location, caller_location, is_user_file
from explorer._outcome import NotLinearizable
from explorer._settings import DEFAULT_MAX_STEPS, DEFAULT_RUN_TIMEOUT

Normalize = Callable[[str, Any], Any]


@dataclass
class LinearizabilityResult:
    """What a check did: ``ok``, the ``failure`` (kind ``not_linearizable``, or another
    kind the exploration found first), and counts of what was covered.

    ``schedules`` counts every run of the concurrent scenarios: ``search_schedules`` (the
    generated scenarios explored, up to the one that failed) plus ``shrink_runs`` (after a
    violation: exploring the smaller candidate scenarios, then the final scenario again to
    confirm and shrink the failing schedule; 0 when the check passed)."""

    ok: bool
    failure: ScheduleFailure | None
    scenarios: int
    schedules: int
    histories: int
    sequential_runs: int
    coverage: str
    scenario: LinScenario | None = None
    exhausted: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    search_schedules: int = 0
    shrink_runs: int = 0

    def __bool__(self) -> bool:
        return self.ok


class _Object:
    """Entering the factory's object: a plain value, an awaitable, an async context
    manager (entered here and exited by :meth:`leave`)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self.cm: Any = None

    async def enter(self) -> Any:
        try:
            obj = self.factory()
            if inspect.isawaitable(obj):
                obj = await obj
        except Exception as exc:
            raise UsageError(
                f"the factory {_name(self.factory)} raised {type(exc).__name__}: {exc}; it "
                "must return a fresh object under test (or an async context manager) every "
                "time it is called, with no argument") from exc
        if hasattr(obj, "__aenter__") and hasattr(obj, "__aexit__"):
            self.cm = obj
            obj = await obj.__aenter__()
        return obj

    async def leave(self) -> None:
        if self.cm is not None:
            await self.cm.__aexit__(None, None, None)


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


async def _invoke(obj: Any, op: Operation, call: Call, normalize: Normalize | None,
                  model: bool) -> Result:
    try:
        if model:
            method = getattr(obj, op.name, None)
            if method is None:
                raise UsageError(f"the model {type(obj).__name__} has no method {op.name!r}; "
                                 "a model has one method per operation, of the same name")
            value = method(*call.args)
            if inspect.isawaitable(value):
                value = await value
        else:
            value = await op.fn(obj, *call.args)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exception is a result to compare
        return ("raised", type(exc).__qualname__, str(exc))
    if normalize is not None:
        try:
            value = normalize(op.name, value)
        except Exception as exc:  # a mistake in the hook, not a result of the object
            raise UsageError(
                f"normalize({op.name!r}, {value!r:.80}) raised {type(exc).__name__}: {exc}; "
                "normalize is called with every operation's every return value (not "
                "exceptions): return the value unchanged for the operations and results "
                "it has nothing to drop from") from exc
    return ("ok", value)


@dataclass
class _Spec:
    """Everything a run of one scenario needs."""

    factory: Callable[[], Any]
    ops: dict[str, Operation]
    normalize: Normalize | None
    model: Callable[[], Any] | None
    runtime: str
    # The user's line that called the check: where a trace shows the scenario's own task.
    site: Location | None = None


def _concurrent(spec: _Spec, scenario: LinScenario,
                judge: Callable[[list[Event]], None]) -> Callable[[], Awaitable[None]]:
    """The scenario function explored: object, prefix, concurrent tasks, suffix, judge."""
    calls = scenario.calls()

    async def linearizability() -> None:
        holder = _Object(spec.factory)
        obj = await holder.enter()
        clock = [0]
        events: list[Event] = []

        async def one(index: int, task: int | None) -> None:
            call = calls[index][1]
            clock[0] += 1
            start = clock[0]
            result = await _invoke(obj, spec.ops[call.op], call, spec.normalize, False)
            clock[0] += 1
            events.append(Event(index, task, result, start, clock[0]))

        firsts = [len(scenario.prefix)]
        for t in scenario.tasks:
            firsts.append(firsts[-1] + len(t))
        starts = [_defined(spec.ops[t[0].op]) if t else None for t in scenario.tasks]

        async def caller(task: int, where: Location | None) -> None:
            # ``where`` (the first operation's definition): what a trace shows for this
            # task before its first step, instead of this harness line (HARNESS).
            for index in range(firsts[task], firsts[task + 1]):
                await one(index, task)

        HARNESS[caller.__code__] = ("where", False)
        HARNESS[linearizability.__code__] = ("where", True)
        where = spec.site  # noqa: F841 - read by HARNESS: the user line that asked the check
        try:
            for index in range(len(scenario.prefix)):
                await one(index, None)
            if spec.runtime == "trio":
                import trio

                async with trio.open_nursery() as nursery:
                    for task in range(len(scenario.tasks)):
                        nursery.start_soon(caller, task, starts[task],
                                           name=f"caller{task}")
            else:
                await asyncio.gather(*(asyncio.create_task(caller(task, starts[task]),
                                                           name=f"caller{task}")
                                       for task in range(len(scenario.tasks))))
            for index in range(firsts[-1], len(calls)):
                await one(index, None)
        finally:
            await holder.leave()
        judge(events)

    return linearizability


def _defined(op: Operation) -> Location | None:
    """Where ``op`` is, in the user's code: its function's definition, else (an HTTP
    request operation's function is the explorer's) the line that declared it."""
    code = getattr(op.fn, "__code__", None)
    if code is None or not is_user_file(code.co_filename):
        return op.declared
    return Location(code.co_filename, code.co_firstlineno,
                    getattr(code, "co_qualname", code.co_name))


def _history_key(events: Sequence[Event]) -> tuple[object, ...]:
    return tuple(sorted((e.index, e.start, e.end, repr(e.result)) for e in events))


class _Judge:
    """Histories seen for one scenario and their verdicts."""

    def __init__(self, spec: _Spec, scenario: LinScenario, seq: PrefixResults) -> None:
        self.spec, self.scenario, self.seq = spec, scenario, seq
        self.pending: dict[tuple[object, ...], list[Event]] = {}
        self.verdicts: dict[tuple[object, ...], Verdict] = {}
        self.raising = False

    def __call__(self, events: list[Event]) -> None:
        key = _history_key(events)
        if not self.raising:
            if key not in self.verdicts:
                self.pending.setdefault(key, events)
            return
        verdict = self.verdicts.get(key) or check(events, self.seq)
        if verdict.ok is False:
            details = self.details(events, verdict)
            raise NotLinearizable(
                f"the results of concurrent calls are not linearizable: no one-at-a-time "
                f"order of {self.scenario} gives them; observed: "
                + ", ".join(f"{_call_text(self.scenario, e.index)} -> {show(e.result)}"
                            for e in sorted(events, key=lambda e: e.start))
                + _closest_text(self.scenario, events, verdict)
                + _one_order_text(events), details, self.location(verdict))

    def judge_pending(self) -> bool:
        """Judge the histories recorded since the last call; True when one violates."""
        bad = False
        for key, events in self.pending.items():
            verdict = check(events, self.seq)
            self.verdicts[key] = verdict
            bad = bad or verdict.ok is False
        self.pending.clear()
        return bad

    def location(self, verdict: Verdict) -> Location | None:
        """The definition of the operation whose result the closest order could not
        explain, when it is the user's code; for an HTTP request operation (whose function
        is the explorer's) the user's line that declared it; else the check's call."""
        calls = self.scenario.calls()
        index = (verdict.closest[0].order[verdict.closest[0].first_mismatch]
                 if verdict.closest and verdict.closest[0].first_mismatch
                 < len(verdict.closest[0].order) else None)
        name = calls[index][1].op if index is not None else calls[0][1].op if calls else None
        op = self.spec.ops.get(name) if name is not None else None
        return (_defined(op) if op is not None else None) or self.spec.site

    def details(self, events: Sequence[Event], verdict: Verdict) -> dict[str, Any]:
        calls = self.scenario.calls()
        return {
            "scenario": self.scenario.to_json(),
            "history": [{"task": e.task, "op": calls[e.index][1].op,
                         "args": list(calls[e.index][1].args), "result": show(e.result),
                         "index": e.index, "start": e.start, "end": e.end}
                        for e in sorted(events, key=lambda e: e.start)],
            "closest": [c.to_json() for c in verdict.closest],
        }


def _closest_text(scenario: LinScenario, events: Sequence[Event], verdict: Verdict) -> str:
    """The closest one-at-a-time order and where it first differs from what was observed:
    ``... one at a time, task 1: withdraw(60) would return False, but it returned True``."""
    if not verdict.closest:
        return ""
    closest = verdict.closest[0]
    if closest.first_mismatch >= len(closest.order):
        return ""
    observed = {e.index: e.result for e in events}
    steps = [f"{_call_text(scenario, i)} -> {shown}"
             for i, shown in zip(closest.order, closest.results, strict=False)]
    index = closest.order[closest.first_mismatch]
    got = closest.results[closest.first_mismatch]
    would = f"would have {got}" if got.startswith("raised ") else f"would return {got}"
    seen = show(observed[index]) if index in observed else "?"
    did = seen if seen.startswith("raised ") else f"returned {seen}"
    return (f". Closest one-at-a-time order: {'; '.join(steps)}: one at a time, "
            f"{_call_text(scenario, index)} {would}, but it {did}")


def _one_order_text(events: Sequence[Event]) -> str:
    """When no two calls overlapped, the observed order is the only one allowed, and the
    object answered the same calls in the same order differently on a fresh object: not
    an interleaving of the calls but something else decides its results."""
    ordered = sorted(events, key=lambda e: e.start)
    if any(a.end > b.start for a, b in itertools.pairwise(ordered)):
        return ""
    return ("; no two calls overlapped, so that order was the only one allowed, and a fresh "
            "object answered the same calls in the same order differently: its results "
            "depend on something besides the calls (randomness, the time, generated ids, "
            "state shared between objects, or tasks the object started itself); normalize "
            "such results (normalize=), give a model=, or seed the object's randomness in "
            "the factory (docs/linearizability.md, 'What it cannot judge')")


def _call_text(scenario: LinScenario, index: int) -> str:
    task, call = scenario.calls()[index]
    return f"{'main' if task is None else f'task {task}'}: {call}"


class _Sequential:
    """Executes call orders one at a time on fresh objects, each in a controlled run of
    its own under the stock schedule."""

    def __init__(self, spec: _Spec, scenario: LinScenario, max_steps: int,
                 run_timeout: float | None) -> None:
        self.spec, self.scenario = spec, scenario
        self.max_steps, self.run_timeout = max_steps, run_timeout

    def __call__(self, order: tuple[int, ...]) -> list[Result]:
        from explorer._engine import _replay_record, _runtime
        from explorer._scenario import bind

        spec, calls = self.spec, self.scenario.calls()
        results: list[Result] = []
        model = spec.model is not None

        async def sequential() -> None:
            holder = _Object(spec.model if spec.model is not None else spec.factory)
            obj = await holder.enter()
            try:
                for index in order:
                    call = calls[index][1]
                    results.append(await _invoke(obj, spec.ops[call.op], call,
                                                 spec.normalize, model))
            finally:
                await holder.leave()

        rt = _runtime(spec.runtime)
        with rt.session():
            record, _ = _replay_record(rt, bind(sequential, ()), [],
                                       max_steps=self.max_steps, timer_races=False,
                                       traced=False, strict=False,
                                       run_timeout=self.run_timeout)
        outcome = record.outcome
        if outcome.failed or len(results) != len(order):
            cause = outcome.exception
            if isinstance(cause, UsageError):
                raise cause
            stuck = calls[order[len(results)]][1] if len(results) < len(order) else None
            what = f" at {stuck}" if stuck is not None else ""
            raise UsageError(
                f"a sequential execution (one call at a time on a fresh object) did not "
                f"complete{what}: it ended as {outcome.kind} ({outcome.message}); every "
                "operation must return when it runs alone (results that need another "
                "call to happen first cannot be checked: make the operation time out or "
                "return instead of waiting)")
        return results


@dataclass
class _Found:
    """What exploring one scenario gave."""

    bad: bool
    failure: ScheduleFailure | None
    schedules: int
    exhausted: bool
    judge: _Judge
    fn: Callable[[], Awaitable[None]]
    budget: int  # the exploration (max_schedules, same seed) that met the violation


def _ladder(schedules: int) -> list[int]:
    """The budgets a scenario is explored with in turn (the same seed each time): up to
    10 schedules (at most a fifth of ``schedules``) first, then all of them. Histories are
    judged between explorations, so a violation met early stops the scenario after the
    small budget instead of running it out; a scenario that passes and is not exhausted
    by the small budget pays its runs again (at most 10, and a fifth of the budget)."""
    small = min(10, schedules // 5)
    return [small, schedules] if small >= 1 else [schedules]


def _explore(spec: _Spec, scenario: LinScenario, *, name: str, strategy: str,
             schedules: int, seed: int, max_steps: int, run_timeout: float | None,
             max_time: float | None, corpus: str | os.PathLike[str] | None,
             candidate: bool = False) -> _Found:
    from explorer._engine import explore

    seq = PrefixResults(_Sequential(spec, scenario, max_steps, run_timeout))
    judge = _Judge(spec, scenario, seq)
    fn = _concurrent(spec, scenario, judge)
    fn.__qualname__ = fn.__name__ = name.rpartition(".")[2]
    fn.__module__ = name.rpartition(".")[0]
    # The first sequential order (the tasks one after the other) also checks that each
    # operation returns alone, before any interleaving is tried.
    seq.result(tuple(range(scenario.size)))
    ran = 0
    for budget in _ladder(schedules):
        with warnings.catch_warnings():
            # A scenario whose calls never await (or with one task) has no scheduling
            # point: judged once, which is all it needs, not a sign of a badly written
            # scenario.
            warnings.simplefilter("ignore", HealthWarning)
            result = explore(fn, runtime=spec.runtime, strategy=strategy, seed=seed,
                             max_schedules=budget, max_steps=max_steps,
                             run_timeout=run_timeout, max_time=max_time,
                             raise_on_failure=False, shrink=not candidate,
                             corpus=None if candidate else corpus)
        ran += result.schedules
        if result.failure is not None:
            return _Found(False, result.failure, ran, result.exhausted, judge, fn, budget)
        if judge.judge_pending():
            return _Found(True, None, ran, result.exhausted, judge, fn, budget)
        if result.exhausted or result.schedules < budget:  # all run, or max_time ran out
            break
    return _Found(False, None, ran, result.exhausted, judge, fn, budget)


def _confirm(spec: _Spec, found: _Found, *, strategy: str, seed: int, max_steps: int,
             run_timeout: float | None,
             corpus: str | os.PathLike[str] | None) -> tuple[ScheduleFailure | None, int]:
    """Explore a violating scenario again with the judge frozen, so that the run giving
    the violating history fails (then the explorer confirms and shrinks its schedule);
    the failure, its tasks named by their calls, and the runs it took (shrinking
    included). The same seed and budget make the same schedules: the violating history
    comes again, judged from the memoised sequential results."""
    from explorer._engine import explore

    judge = found.judge
    judge.seq.frozen = True
    judge.raising = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HealthWarning)
        again = explore(found.fn, runtime=spec.runtime, strategy=strategy, seed=seed,
                        max_schedules=found.budget, max_steps=max_steps,
                        run_timeout=run_timeout, max_time=None, raise_on_failure=False,
                        shrink=True, corpus=None)
    failure = again.failure
    runs = again.schedules
    if failure is not None:
        runs += failure.shrink.runs if failure.shrink is not None else 0
        _label(failure, judge.scenario)
        if corpus is not None:  # saved once the tasks are named, as explore() saves
            from explorer._corpus import Corpus

            failure.saved_to(Corpus(corpus).save(failure).path)
    return failure, runs


_CALLER = re.compile(r"caller#(\d+)")


def _label(failure: ScheduleFailure, scenario: LinScenario) -> None:
    """Name each caller task of the failure's trace by its calls (``task 0:
    withdraw(60), withdraw(40)``), as requests are named, so that the story and the
    swimlanes speak of the scenario's calls; the message is written again."""
    labels = failure.trace.labels
    for task in {step.task for step in failure.trace.steps}:
        match = _CALLER.fullmatch(task)
        if match is None or task in labels or not 0 < int(match[1]) <= len(scenario.tasks):
            continue
        number = int(match[1]) - 1  # the callers are started in task order
        labels[task] = f"task {number}: " + ", ".join(map(str, scenario.tasks[number]))
    # The record and message are cached when the failure is made: written again with the
    # labels (as ScheduleFailure.saved_to does for the corpus path).
    failure._loaded = failure._message = None
    failure.args = (failure.render(),)


def _smaller(scenario: LinScenario) -> list[LinScenario]:
    """Scenarios with one task or one call fewer: a task fewer first while two would
    remain, then a call fewer, then (from two tasks) one task alone, which rarely
    violates (nothing runs concurrently with it), so it is tried last."""
    out: list[LinScenario] = []
    tasks = scenario.tasks
    fewer = [LinScenario(scenario.prefix, tasks[:i] + tasks[i + 1:], scenario.suffix)
             for i in range(len(tasks))] if len(tasks) > 1 else []
    if len(tasks) > 2:
        out += fewer
    out += [LinScenario(scenario.prefix[:i] + scenario.prefix[i + 1:], tasks,
                        scenario.suffix) for i in range(len(scenario.prefix))]
    out += [LinScenario(scenario.prefix, tasks, scenario.suffix[:i]
                        + scenario.suffix[i + 1:])
            for i in range(len(scenario.suffix))]
    for t, calls in enumerate(tasks):
        if len(calls) > 1:
            out += [LinScenario(scenario.prefix,
                                (*tasks[:t], calls[:i] + calls[i + 1:], *tasks[t + 1:]),
                                scenario.suffix) for i in range(len(calls))]
    if len(tasks) == 2:
        out += fewer
    return out


def _scenario_name(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", None) or "__main__"
    qual = getattr(factory, "__qualname__", None) or type(factory).__name__
    qual = re.sub(r"[^A-Za-z0-9_.]", "_", qual).strip("._") or "factory"
    return f"{module}.{qual}.linearizability"


def check_linearizable(factory: Callable[[], Any],
                       operations: Iterable[Operation | Callable[..., Any]], *,
                       tasks: int = 2, ops_per_task: int = 2, prefix: int = 0,
                       suffix: int = 0, max_scenarios: int = 50,
                       schedules_per_scenario: int = 50, seed: int | None = None,
                       raise_on_failure: bool = True, model: Callable[[], Any] | None = None,
                       normalize: Normalize | None = None, runtime: str = "asyncio",
                       strategy: str = "portfolio", max_time: float | None = None,
                       corpus: str | os.PathLike[str] | None = None,
                       scenarios: Sequence[LinScenario] | None = None,
                       max_steps: int = DEFAULT_MAX_STEPS,
                       run_timeout: float | None = DEFAULT_RUN_TIMEOUT,
                       shrink_scenario: bool = True) -> LinearizabilityResult:
    """Generate concurrent scenarios of ``operations`` on objects from ``factory``,
    explore each, and check that every run's results are linearizable.

    ``factory()`` (plain or async; an async context manager is entered and exited) makes a
    fresh object for every run and every sequential execution. ``operations`` are async
    functions ``fn(obj)`` or :func:`operation`\\ s with argument strategies. Up to
    ``max_scenarios`` distinct scenarios (``prefix`` calls, ``tasks`` tasks of
    ``ops_per_task`` calls, ``suffix`` calls) are generated from ``seed`` (None: 0) and
    each explored for up to ``schedules_per_scenario`` schedules with ``strategy``;
    ``max_time`` seconds bound the whole check. Results are compared after
    ``normalize(op_name, value)`` against sequential executions of the object itself, or of
    ``model()`` (an object with a method, sync or async, per operation name).

    A violation shrinks the scenario, then the schedule, and is raised as a
    :class:`ScheduleFailure` of kind ``not_linearizable`` (returned in the result with
    ``raise_on_failure=False``), saved to ``corpus`` when given. Another failure found by
    the exploration (a deadlock, a crash of the harness) is reported as it is.
    ``scenarios`` checks the given scenarios (from :func:`linearizability_scenarios` under
    ``@given``) instead of generating them. Call it from a plain (sync) function."""
    _not_in_a_loop()
    ops = as_operations(operations)
    if not callable(factory):
        raise UsageError(f"check_linearizable() needs a factory (a callable that returns a "
                         f"fresh object under test), got {type(factory).__name__}")
    for what, value, low in (("tasks", tasks, 1), ("ops_per_task", ops_per_task, 1),
                             ("prefix", prefix, 0), ("suffix", suffix, 0),
                             ("max_scenarios", max_scenarios, 1),
                             ("schedules_per_scenario", schedules_per_scenario, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UsageError(f"check_linearizable({what}={value!r}): expected an integer "
                             f">= {low}")
    if runtime not in ("asyncio", "trio"):
        raise UsageError(f"check_linearizable(runtime={runtime!r}): use 'asyncio' or 'trio'")
    seed = 0 if seed is None else seed
    spec = _Spec(factory, {op.name: op for op in ops}, normalize, model, runtime,
                 caller_location(2))
    todo = list(scenarios) if scenarios is not None else generate(
        ops, seed, max_scenarios, tasks=tasks, ops_per_task=ops_per_task, prefix=prefix,
        suffix=suffix)
    name = _scenario_name(factory)
    search = shrinking = histories = seq_runs = exhausted = 0
    checked = 0

    def run(scenario: LinScenario, candidate: bool = False, budget: int = 0) -> _Found:
        nonlocal search, shrinking, histories, seq_runs
        found = _explore(spec, scenario, name=name, strategy=strategy,
                         schedules=budget or schedules_per_scenario, seed=seed,
                         max_steps=max_steps,
                         run_timeout=run_timeout, candidate=candidate,
                         max_time=None if deadline is None else
                         max(deadline - time.monotonic(), 0.001),
                         corpus=corpus)
        if candidate:
            shrinking += found.schedules
        else:
            search += found.schedules
        histories += len(found.judge.verdicts)
        seq_runs += found.judge.seq.runs
        return found

    deadline = None if max_time is None else time.monotonic() + max_time
    timed_out = False
    for scenario in todo:
        if deadline is not None and time.monotonic() >= deadline:
            timed_out = True
            break
        checked += 1
        found = run(scenario)
        exhausted += found.exhausted
        if found.failure is None and not found.bad:
            continue
        failure = found.failure
        if found.bad:
            # Shrink to a 1-minimal scenario: no one task or call fewer violates within
            # the shrinking budget. A smaller scenario has fewer interleavings than the
            # one whose violation came within ``found.budget`` schedules, so each
            # candidate gets twice that (at least 20, at most the per-scenario budget),
            # laddered: one that violates early costs the small budget only, one that
            # passes (the most of them) does not run the whole per-scenario budget.
            progress = shrink_scenario
            budget = min(schedules_per_scenario, max(20, 2 * found.budget))
            passed: set[str] = set()  # candidates explored without a violation
            while progress:
                progress = False
                for smaller in _smaller(scenario):
                    key = json.dumps(smaller.to_json(), sort_keys=True)
                    if key in passed:  # met again from another larger scenario
                        continue
                    candidate = run(smaller, candidate=True, budget=budget)
                    passed.add(key)
                    if candidate.bad:
                        scenario, found, progress = smaller, candidate, True
                        break
            failure, confirming = _confirm(spec, found, strategy=strategy, seed=seed,
                                           max_steps=max_steps, run_timeout=run_timeout,
                                           corpus=corpus)
            shrinking += confirming
        total_schedules = search + shrinking
        coverage = (f"found after {checked} of {len(todo)} scenarios: {search} schedules "
                    f"searched, then {shrinking} runs shrinking the scenario and its "
                    f"schedule; {histories} distinct histories judged with {seq_runs} "
                    f"sequential executions")
        result = LinearizabilityResult(False, failure, checked, total_schedules, histories,
                                       seq_runs, coverage, scenario, exhausted,
                                       search_schedules=search, shrink_runs=shrinking)
        if failure is None:  # the frozen re-exploration did not meet it again
            raise UsageError(
                f"a non-linearizable history of {scenario} was found, but the same seed "
                "did not reproduce it: the object under test depends on something outside "
                "the schedule (time, randomness, global state kept between runs); make the "
                "factory build everything afresh")
        if raise_on_failure:
            raise failure
        return result
    coverage = (
        f"{checked} scenarios of {tasks} task(s) x {ops_per_task} call(s)"
        + (f", prefix {prefix}" if prefix else "") + (f", suffix {suffix}" if suffix else "")
        + f": {search} schedules ({exhausted} scenarios explored exhaustively, the "
        f"others up to {schedules_per_scenario} schedules each"
        + (f", after a first try of {ladder[0]} that the full budget runs again"
           if len(ladder := _ladder(schedules_per_scenario)) > 1 else "")
        + f"), {histories} distinct "
        f"histories judged linearizable with {seq_runs} sequential executions"
        + (f"; max_time ran out after {checked} of {len(todo)} scenarios" if timed_out
           else "")
        + ". Not covered: interleavings past the schedule budget, other call sequences and "
        "argument values than those generated, and anything results do not show (state "
        "left inconsistent but never returned).")
    return LinearizabilityResult(True, None, checked, search, histories, seq_runs,
                                 coverage, None, exhausted, search_schedules=search)


def _not_in_a_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise UsageError(
        "check_linearizable() was called inside a running event loop (an async test or an "
        "explored scenario); it runs explorations of its own: call it from a plain "
        "(synchronous) test function")


def scenario_of(failure: ScheduleFailure | CorpusEntry | Mapping[str, Any],
                operations: Iterable[Operation | Callable[..., Any]]) -> LinScenario:
    """The scenario a ``not_linearizable`` failure (its JSON, its corpus entry) was found
    with, checked against ``operations``."""
    if isinstance(failure, ScheduleFailure):
        details: Any = failure.outcome.details
    elif isinstance(failure, CorpusEntry):
        details = failure.data.get("linearizability", {})
    else:
        outcome = failure.get("outcome", failure.get("failure", {}))
        details = outcome.get("details", {}) if isinstance(outcome, Mapping) else {}
    if not isinstance(details, Mapping) or "scenario" not in details:
        raise UsageError("replay_linearizability() needs a not_linearizable failure (or "
                         "its to_json()), whose details hold the scenario; got one without")
    return LinScenario.from_json(details["scenario"], as_operations(operations))


def replay_linearizability(factory: Callable[[], Any],
                           operations: Iterable[Operation | Callable[..., Any]],
                           failure: ScheduleFailure | CorpusEntry | Mapping[str, Any], *,
                           model: Callable[[], Any] | None = None,
                           normalize: Normalize | None = None, runtime: str = "asyncio",
                           max_steps: int = DEFAULT_MAX_STEPS,
                           run_timeout: float | None = DEFAULT_RUN_TIMEOUT
                           ) -> ScheduleFailure | None:
    """Replay a ``not_linearizable`` failure's schedule on its scenario; return the
    failure it gives again (None when the history is linearizable now: fixed).

    ``failure`` is the :class:`ScheduleFailure`, its ``to_json()``, or its corpus entry
    (:class:`explorer.CorpusEntry`, which holds the scenario as data); ``operations``
    must be those it was found with (matched by name)."""
    from explorer._engine import run as run_once
    from explorer._schedule import Schedule

    _not_in_a_loop()
    ops = as_operations(operations)
    scenario = scenario_of(failure, ops)
    if isinstance(failure, ScheduleFailure | CorpusEntry):
        schedule = failure.schedule
    else:
        schedule = Schedule.parse(str(failure["schedule"]))
    spec = _Spec(factory, {op.name: op for op in ops}, normalize, model, runtime,
                 caller_location(2))
    seq = PrefixResults(_Sequential(spec, scenario, max_steps, run_timeout))
    judge = _Judge(spec, scenario, seq)
    fn = _concurrent(spec, scenario, judge)
    name = _scenario_name(factory)
    fn.__qualname__ = fn.__name__ = name.rpartition(".")[2]
    fn.__module__ = name.rpartition(".")[0]
    first = run_once(fn, schedule=schedule, runtime=runtime, max_steps=max_steps,
                     strict=False, run_timeout=run_timeout)
    if first.outcome.failed:
        return ScheduleFailure(first.outcome, first.schedule, first.trace, scenario=name,
                               runtime=runtime)
    if not judge.judge_pending():
        return None
    seq.frozen, judge.raising = True, True
    again = run_once(fn, schedule=schedule, runtime=runtime, max_steps=max_steps,
                     strict=False, run_timeout=run_timeout)
    failure = ScheduleFailure(again.outcome, again.schedule, again.trace, scenario=name,
                              runtime=runtime)
    _label(failure, scenario)
    return failure
