"""Running one exploration in several places: worker processes, a Dask cluster, CI shards.

Invariant: workers never duplicate each other's schedules, and they receive only names
and numbers (a :class:`~explorer._targets.TargetRef` and :class:`Settings` as JSON, the
runtime included), never pickled functions; each imports the scenario itself.

How the work is split among ``n`` workers (worker ``k`` counts from 0):

- **seeded samplers** (``random``, ``pct``, ``pos``, ``surw``, ``coverage``, ``symmetric``,
  ``portfolio``): schedules come in chunks of :data:`CHUNK` runs (fewer when a schedule budget
  shared by ``n`` workers is smaller); chunk ``j`` is the strategy seeded ``seed + j``,
  and worker ``k`` runs chunks ``k, k + n, k + 2n, ...`` until the budget is spent.
- **systematic**: the deviation-ordered search is split into disjoint subtrees by the
  scheduling point of a schedule's *first* deviation: worker ``k`` runs and reports only
  schedules whose first deviation is at a point ``p`` with ``p % n == k`` (the stock
  schedule is worker 0's). Probe runs, which learn how many candidates a prefix offers, are
  shared work: any worker may repeat them, none counts them. Together the workers cover
  exactly what one systematic search covers, and the coverage sentence says what was
  covered jointly.
- **dpor** cannot be split this way yet: worker 0 runs the whole search, the others
  return at once, and the coverage sentence says so.

A shard (``--shard i/n`` in a CI matrix) runs exactly what worker ``i - 1`` of ``n`` would.
The first failure stops the other workers; each worker shrinks its own failure, and the
coordinator replays the shrunk schedule to rebuild the full failure (trace, explanation)
locally, which also checks that it reproduces outside the worker.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import queue
import random
import signal
import socket
import threading
import time
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final

import explorer.strategies as _strategies
from explorer._engine import (
    DEFAULT_MAX_SCHEDULES,
    DEFAULT_MAX_STEPS,
    DEFAULT_RUN_TIMEOUT,
    RUNTIMES,
    ExploreResult,
    check_run_timeout,
    explore,
    run,
)
from explorer._errors import ExplorerError, UsageError
from explorer._failure import ScheduleFailure
from explorer._interrupts import ExplorationInterrupted
from explorer._schedule import Schedule
from explorer._shrink import ShrinkReport
from explorer._targets import Resolved, TargetRef, add_paths, resolve

CHUNK: Final = 1000
# Strategies built from a seed alone: split among workers by seed (see above).
UNBOUNDED: Final = 10**12  # "no schedule budget": explore() wants a number
_POLL: Final = 0.2  # seconds between progress reports and stop checks in a worker
_STOP_GRACE: Final = 10.0  # seconds an interrupted worker gets to end its current run

# Explorations install process-wide patches (time.sleep, Thread.start) for their
# duration, so two must not run at once in one process (Dask threads, for example).
_EXPLORE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Settings:
    """How to explore one target; plain data, sent to workers as JSON."""

    strategy: str = "portfolio"  # the default of explorer.explore() and the marker
    max_schedules: int | None = DEFAULT_MAX_SCHEDULES
    seed: int | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    deviation_bound: int | None = None
    timer_races: bool = False
    max_time: float | None = None
    shrink: bool = True
    runtime: str = "asyncio"
    run_timeout: float | None = DEFAULT_RUN_TIMEOUT

    def __post_init__(self) -> None:
        check_run_timeout(self.run_timeout)
        if self.strategy not in _strategies.names():
            raise UsageError(f"unknown strategy {self.strategy!r}; use one of: "
                             f"{', '.join(_strategies.names())}")
        if self.runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime {self.runtime!r}; available runtimes: "
                             f"{', '.join(RUNTIMES)}")
        for name in ("max_schedules", "max_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if self.deviation_bound is not None and self.deviation_bound < 0:
            raise UsageError(f"deviation_bound must be 0 or more, got {self.deviation_bound}")
        if self.max_time is not None and self.max_time <= 0:
            raise UsageError(f"max_time must be positive, got {self.max_time}")

    @classmethod
    def merged(cls, *layers: Mapping[str, Any]) -> Settings:
        """Later layers override earlier ones; ``None`` values do not override."""
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for layer in layers:
            values.update({k: v for k, v in layer.items() if k in names and v is not None})
        return cls(**values)

    def with_seed(self) -> Settings:
        """A seeded strategy's seed fixed now, so every worker and report agrees on it."""
        if _strategies.splitting(self.strategy) != "seeded" or self.seed is not None:
            return self
        return Settings(**{**asdict(self), "seed": random.SystemRandom().getrandbits(32)})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Partition:
    """Worker ``index`` (from 0) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse_shard(cls, text: str) -> Partition:
        """``"i/n"`` with ``1 <= i <= n`` (shards count from 1, as CI matrices do)."""
        head, sep, tail = text.partition("/")
        if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
            raise UsageError(f"--shard {text!r} is not i/n; write for example --shard 2/4 "
                             "(shard 2 of 4)")
        i, n = int(head), int(tail)
        if n < 1 or not 1 <= i <= n:
            raise UsageError(f"--shard {text!r}: the shard number must be between 1 and {n}"
                             if n >= 1 else f"--shard {text!r}: the shard count must be >= 1")
        return cls(i - 1, n)

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"


# --------------------------------------------------------------------------- strategies


class Observed(_strategies.Strategy):
    """Delegates to ``inner``; reports counted schedules and stops when asked.

    Every :data:`_POLL` seconds it hands the number of schedules run since the last report
    to ``on_schedules`` and asks ``should_stop``; a True answer ends the exploration as if
    the strategy had run out.
    """

    def __init__(self, inner: _strategies.Strategy, *,
                 on_schedules: Callable[[int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.footprints = inner.footprints
        self.timer_races = inner.timer_races
        # The engine looks ``choose`` up once per exploration: hand it the inner strategy's
        # own bound method, so the hot path pays nothing for the wrapper.
        self.choose = inner.choose  # type: ignore[method-assign]
        self.stopped = False
        self._on_schedules = on_schedules
        self._should_stop = should_stop
        self._pending = 0
        self._next = time.monotonic() + _POLL

    def start_run(self) -> bool:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + _POLL
            self.flush()
            if self._should_stop is not None and self._should_stop():
                self.stopped = True
                return False
        return self.inner.start_run()

    def choose(self, count: int, view: Any) -> int:
        return self.inner.choose(count, view)

    def observe(self, steps: Sequence[Any]) -> None:
        self.inner.observe(steps)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self.inner.counts_as_schedule:
            self._pending += 1
        self.inner.end_run(decisions, failed)

    def flush(self) -> None:
        if self._pending and self._on_schedules is not None:
            self._on_schedules(self._pending)
        self._pending = 0

    @property
    def exhausted(self) -> bool:
        return self.inner.exhausted

    @property
    def counts_as_schedule(self) -> bool:
        return self.inner.counts_as_schedule

    def coverage(self) -> str:
        return self.inner.coverage()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def statistics(self) -> dict[str, Any]:
        return self.inner.statistics()


# --------------------------------------------------------------------------- one worker


@dataclass
class _Tally:
    schedules: int = 0
    probes: int = 0
    steps: int = 0
    distinct: int = 0
    seeds: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, result: ExploreResult) -> None:
        self.schedules += result.schedules
        self.probes += result.probes
        self.steps += result.steps
        self.distinct += result.distinct


def _explore(resolved: Resolved, settings: Settings, strategy: _strategies.Strategy,
             tally: _Tally, *, max_schedules: int, max_time: float | None) -> ExploreResult:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = explore(resolved.fn, runtime=settings.runtime, strategy=strategy,
                         max_schedules=max_schedules, max_steps=settings.max_steps,
                         timer_races=settings.timer_races, max_time=max_time,
                         shrink=settings.shrink, raise_on_failure=False,
                         run_timeout=settings.run_timeout)
    tally.add(result)
    tally.warnings += [str(w.message) for w in caught]
    return result


def _failure_json(failure: ScheduleFailure) -> dict[str, Any]:
    return {"schedule": str(failure.schedule), "found_after": failure.found_after,
            "strategy": failure.strategy, "kind": failure.kind,
            "signature": list(failure.outcome.signature()),
            "shrink": asdict(failure.shrink) if failure.shrink else None}


def run_partition(ref: Mapping[str, Any], settings: Mapping[str, Any], index: int,
                  count: int, *, on_schedules: Callable[[int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Explore worker ``index``'s share of the work; return a JSON-able summary.

    This is what runs inside a worker process or on a cluster machine.
    """
    resolved = resolve(TargetRef.from_json(ref))
    chosen = Settings(**settings)
    with _EXPLORE_LOCK:
        start = time.perf_counter()
        deadline = start + chosen.max_time if chosen.max_time is not None else None
        tally = _Tally()
        splitting = _strategies.splitting(chosen.strategy)
        if splitting == "partition":
            out = _systematic_share(resolved, chosen, index, count, tally, deadline,
                                    on_schedules, should_stop)
        elif splitting == "whole":
            out = _whole_in_worker_zero(resolved, chosen, index, count, tally, deadline,
                                        on_schedules, should_stop)
        else:
            out = _seeded_share(resolved, chosen, index, count, tally, deadline,
                                on_schedules, should_stop)
        elapsed = time.perf_counter() - start
    return {"index": index, "count": count, "schedules": tally.schedules,
            "probes": tally.probes, "steps": tally.steps, "distinct": tally.distinct,
            "elapsed": elapsed, "seeds": tally.seeds, "warnings": tally.warnings, **out}


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.perf_counter()


def _systematic_share(resolved: Resolved, settings: Settings, index: int, count: int,
                      tally: _Tally, deadline: float | None,
                      on_schedules: Callable[[int], None] | None,
                      should_stop: Callable[[], bool] | None) -> dict[str, Any]:
    inner = _strategies.Systematic(settings.deviation_bound, partition=(index, count))
    strategy = Observed(inner, on_schedules=on_schedules, should_stop=should_stop)
    share = (UNBOUNDED if settings.max_schedules is None
             else max(1, math.ceil(settings.max_schedules / count)))
    result = _explore(resolved, settings, strategy, tally, max_schedules=share,
                      max_time=_remaining(deadline))
    strategy.flush()
    return {"exhausted": result.exhausted, "stopped": strategy.stopped,
            "completed_rounds": inner.completed_rounds,
            "space_finished": inner.space_finished, "strategy": inner.describe(),
            "failure": _failure_json(result.failure) if result.failure else None}


def _whole_in_worker_zero(resolved: Resolved, settings: Settings, index: int, count: int,
                          tally: _Tally, deadline: float | None,
                          on_schedules: Callable[[int], None] | None,
                          should_stop: Callable[[], bool] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"exhausted": True, "stopped": False, "completed_rounds": None,
                           "space_finished": True, "whole": index == 0, "failure": None,
                           "coverage": "",
                           "strategy": {"name": settings.strategy,
                                        "deviation_bound": settings.deviation_bound}}
    if index != 0:
        return out
    inner = _strategies.make_strategy(settings.strategy, seed=settings.seed,
                                      deviation_bound=settings.deviation_bound)
    strategy = Observed(inner, on_schedules=on_schedules, should_stop=should_stop)
    share = settings.max_schedules or UNBOUNDED
    result = _explore(resolved, settings, strategy, tally, max_schedules=share,
                      max_time=_remaining(deadline))
    strategy.flush()
    return {**out, "exhausted": result.exhausted, "stopped": strategy.stopped,
            "coverage": result.coverage, "strategy": result.strategy,
            "failure": _failure_json(result.failure) if result.failure else None}


def _seeded_share(resolved: Resolved, settings: Settings, index: int, count: int,
                  tally: _Tally, deadline: float | None,
                  on_schedules: Callable[[int], None] | None,
                  should_stop: Callable[[], bool] | None) -> dict[str, Any]:
    base = settings.seed if settings.seed is not None else 0
    total = settings.max_schedules
    # Chunks of CHUNK runs, smaller when the budget is small, so every worker gets some.
    size_of = CHUNK if total is None else max(1, min(CHUNK, math.ceil(total / count)))
    chunk = index
    stopped = False
    failure: ScheduleFailure | None = None
    while total is None or chunk * size_of < total:
        left = _remaining(deadline)
        if left is not None and left <= 0:
            break
        size = size_of if total is None else min(size_of, total - chunk * size_of)
        inner = _strategies.make_strategy(settings.strategy, seed=base + chunk)
        strategy = Observed(inner, on_schedules=on_schedules, should_stop=should_stop)
        tally.seeds.append(base + chunk)
        result = _explore(resolved, settings, strategy, tally, max_schedules=size,
                          max_time=left)
        strategy.flush()
        failure, stopped = result.failure, strategy.stopped
        if failure is not None or stopped:
            break
        chunk += count
    return {"exhausted": False, "stopped": stopped, "completed_rounds": None,
            "space_finished": False,
            "strategy": {"name": settings.strategy, "seed": base,
                         "partition": f"{index + 1}/{count}"},
            "failure": _failure_json(failure) if failure else None}


# --------------------------------------------------------------------------- the job


@dataclass
class JobResult:
    """One target explored, possibly by several workers, merged."""

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
    strategy: dict[str, Any]
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

    def to_json(self, *, trace: bool = True) -> dict[str, Any]:
        failure = None
        if self.failure is not None:
            failure = self.failure.to_json()
            if not trace:
                failure.pop("trace")
            failure["message"] = str(self.failure)
            failure["replay"] = self.failure.replay_line()
            failure["corpus_path"] = self.corpus_path
            failure["new_in_corpus"] = self.new_in_corpus
        return {"target": self.target, "scenario": self.scenario,
                "runtime": self.settings.runtime,
                "status": "failed" if self.failure else "passed",
                "schedules": self.schedules, "probes": self.probes, "steps": self.steps,
                "distinct": self.distinct, "elapsed": round(self.elapsed, 6),
                "rate": round(self.rate, 3), "exhausted": self.exhausted,
                "coverage": self.coverage, "strategy": self.strategy,
                "workers": self.workers, "warnings": self.warnings, "failure": failure,
                "settings": self.settings.to_json()}


def joint_coverage(settings: Settings, parts: Sequence[Mapping[str, Any]], count: int,
                   shard: Partition | None) -> str:
    schedules = sum(int(p["schedules"]) for p in parts)
    who = f"shard {shard}" if shard else f"{count} workers"
    if _strategies.splitting(settings.strategy) == "seeded":
        seeds = sorted(s for p in parts for s in p["seeds"])
        shown = ", ".join(map(str, seeds[:6])) + (", ..." if len(seeds) > 6 else "")
        return (f"{schedules} {settings.strategy} schedules by {who} (seeded {shown}); "
                "not exhaustive")
    if settings.strategy != "systematic":
        whole = [p for p in parts if p.get("whole")]
        if not whole:
            return f"nothing: {settings.strategy} runs whole in worker 1, not in {who}"
        return (f"{whole[0]['coverage']} ({settings.strategy} cannot be split: worker 1 "
                "ran all of it)")
    finished = all(p["space_finished"] for p in parts)
    rounds = [int(p["completed_rounds"]) for p in parts if not p["space_finished"]]
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
    return f"{scope}all schedules with at most {bound} deviation(s) ({schedules} schedules)"


def _merge(resolved: Resolved, settings: Settings, parts: list[dict[str, Any]],
           elapsed: float, shard: Partition | None) -> JobResult:
    count = parts[0]["count"] if parts else 1
    failures = [p for p in parts if p["failure"] is not None]
    failure = None
    if failures:
        # Prefer the simplest failure (fewest deviations, lowest worker), so a run reports
        # the same one whichever worker happened to finish first.
        best = min(failures, key=lambda p: (Schedule.parse(p["failure"]["schedule"])
                                            .deviation_count, p["index"]))
        failure = rebuild_failure(resolved, settings, best["failure"])
    strategy = dict(parts[0]["strategy"]) if parts else {"name": settings.strategy}
    strategy.pop("partition", None)
    strategy["workers" if shard is None else "shard"] = count if shard is None else str(shard)
    return JobResult(
        resolved.ref.spec, resolved.name, settings,
        sum(p["schedules"] for p in parts), sum(p["probes"] for p in parts),
        sum(p["steps"] for p in parts), sum(p["distinct"] for p in parts), elapsed,
        failure is None and bool(parts) and all(p["exhausted"] for p in parts),
        joint_coverage(settings, parts, count, shard), strategy, failure, count,
        sorted({w for p in parts for w in p["warnings"]}))


def rebuild_failure(resolved: Resolved, settings: Settings, data: Mapping[str, Any]
                    ) -> ScheduleFailure:
    """Replay a worker's failing schedule here, traced, to rebuild the whole failure."""
    schedule = Schedule.parse(data["schedule"])
    with _EXPLORE_LOCK:
        result = run(resolved.fn, schedule=schedule, runtime=settings.runtime,
                     max_steps=settings.max_steps, run_timeout=settings.run_timeout)
    if tuple(result.outcome.signature()) != tuple(data["signature"]):
        raise ExplorerError(
            f"a worker found {resolved.name} failing ({data['kind']}) under {schedule}, but "
            f"replaying it here gives {result.outcome.kind}: the workers and this machine "
            "do not run the same code; install the same version of the project everywhere")
    shrink = ShrinkReport(**data["shrink"]) if data.get("shrink") else None
    return ScheduleFailure(result.outcome, schedule, result.trace, scenario=resolved.name,
                           found_after=int(data["found_after"]),
                           strategy=dict(data["strategy"]), runtime=settings.runtime,
                           shrink=shrink)


# --------------------------------------------------------------------------- executors


ProgressCallback = Callable[[int], None]


class Executor(ABC):
    """Runs the parts of one exploration somewhere; :func:`explore_target` merges them."""

    count: int = 1
    shard: Partition | None = None

    @abstractmethod
    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[dict[str, Any]]:
        """Run every part of the job; return the parts' summaries."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers or cluster connections."""

    def describe(self) -> str:
        return "in this process"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Everything in this process; with a shard, only that shard's part."""

    def __init__(self, shard: Partition | None = None) -> None:
        self.shard = shard
        self.count = shard.count if shard else 1

    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[dict[str, Any]]:
        index = self.shard.index if self.shard else 0
        return [run_partition(ref.to_json(), settings.to_json(), index, self.count,
                              on_schedules=on_schedules)]

    def describe(self) -> str:
        return f"shard {self.shard}" if self.shard else "in this process"


# Set in each worker process by the pool's initializer.
_STOP: Any = None
_PROGRESS: Any = None


def _init_process(stop: Any, progress: Any, paths: list[str]) -> None:
    global _STOP, _PROGRESS
    _STOP, _PROGRESS = stop, progress
    add_paths(paths)
    # A Ctrl-C in a terminal reaches the whole process group: the parent stops the workers
    # (through ``stop``), so they ignore it rather than die mid-run with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker as soon as its parent process is gone (killed, crashed): a pool
    worker waits for work forever otherwise, and outlives it."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="explorer-parent-watch").start()


def _process_task(ref: dict[str, Any], settings: dict[str, Any], index: int, count: int,
                  job: int) -> dict[str, Any]:
    def report(n: int) -> None:
        with contextlib.suppress(Exception):  # progress is best effort
            _PROGRESS.put_nowait((job, n))

    return run_partition(ref, settings, index, count, on_schedules=report,
                         should_stop=lambda: bool(_STOP.value == job))


class ProcessExecutor(Executor):
    """``count`` worker processes started with the ``spawn`` method, kept for many jobs."""

    def __init__(self, count: int) -> None:
        import multiprocessing
        import sys

        if count < 1:
            raise UsageError(f"--workers must be at least 1, got {count}")
        self.count = count
        context = multiprocessing.get_context("spawn")
        self._stop = context.Value("q", 0)
        self._progress = context.Queue()
        self._pool = ProcessPoolExecutor(count, mp_context=context,
                                         initializer=_init_process,
                                         initargs=(self._stop, self._progress,
                                                   list(sys.path)))
        self._job = 0
        self._schedules = 0  # reported by the workers in the current job
        self._interrupted = False

    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[dict[str, Any]]:
        self._job += 1
        job = self._job
        futures = [self._pool.submit(_process_task, ref.to_json(), settings.to_json(), k,
                                     self.count, job) for k in range(self.count)]
        pending: set[Future[dict[str, Any]]] = set(futures)
        self._schedules = 0
        start = time.perf_counter()
        try:
            while pending:
                done, pending = wait(pending, timeout=_POLL, return_when=FIRST_COMPLETED)
                self._drain(job, on_schedules)
                for future in done:
                    if future.exception() is None and future.result()["failure"] is not None:
                        self._stop.value = job
        except KeyboardInterrupt:
            self._stop.value = job
            self._interrupted = True
            raise ExplorationInterrupted(
                f"interrupted after {self._schedules:,} schedule(s) of {ref.spec} in "
                f"{time.perf_counter() - start:.1f}s by {self.count} worker processes; "
                "a failure a worker was still shrinking is not reported") from None
        self._drain(job, on_schedules)
        return [_result(f, k) for k, f in enumerate(futures)]

    def _drain(self, job: int, on_schedules: ProgressCallback | None) -> None:
        while True:
            try:
                sender, n = self._progress.get_nowait()
            except queue.Empty:
                return
            if sender == job:
                self._schedules += n
                if on_schedules is not None:
                    on_schedules(n)

    def close(self) -> None:
        if not self._interrupted:
            self._pool.shutdown(wait=True, cancel_futures=True)
        else:
            # Interrupted: the workers were told to stop and finish their current run
            # (run_timeout bounds it); one stuck in a C call is terminated.
            # The pool keeps its processes private; there is no API to reach them.
            processes = list((self._pool._processes or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.join(_STOP_GRACE)
                if process.is_alive():
                    process.terminate()
                    process.join(1.0)
        self._progress.close()
        self._progress.join_thread()

    def describe(self) -> str:
        return f"{self.count} worker processes"


def _result(future: Future[dict[str, Any]], index: int) -> dict[str, Any]:
    try:
        return future.result()
    except ExplorerError:
        raise
    except Exception as exc:
        raise ExplorerError(f"worker {index + 1} failed: {type(exc).__name__}: {exc}") from exc


def _distributed() -> Any:
    """The ``distributed`` package, untyped (it ships no annotations for mypy)."""
    return importlib.import_module("distributed")


CONNECT_TIMEOUT: Final = 2.5
"""Seconds for each of the TCP probe and the client's handshake with a Dask scheduler, so a
wrong address fails within 5 s. A scheduler answers within milliseconds, over a slow VPN
within a second: waiting longer (Dask's own default is 30 s) only delays the message about
a wrong address."""


def _check_address(cluster: str) -> str:
    """``cluster`` stripped, once it is a well-formed scheduler address; for a TCP or TLS
    address, once something accepts a connection there.

    Dask retries a refused connection until its timeout: probing first turns "nothing
    listens there" into an immediate error instead of a wait.
    """
    comm = importlib.import_module("distributed.comm")
    addressing = importlib.import_module("distributed.comm.addressing")
    known = sorted(importlib.import_module("distributed.comm.registry").backends)
    address = cluster.strip()
    example = "give the scheduler's address, for example --cluster tcp://scheduler:8786"
    if not address:
        raise UsageError(f"--cluster {cluster!r} is empty; {example}")
    scheme, location = comm.parse_address(address)
    if scheme not in known:
        raise UsageError(f"--cluster {cluster!r}: unknown address scheme {scheme!r} (Dask "
                         f"knows {', '.join(known)}); {example}")
    if scheme not in ("tcp", "tls"):
        return address
    try:
        host, port = addressing.parse_host_port(location, default_port=8786)
    except ValueError:
        host, port = "", 0
    if not host or not 0 < port < 65536:
        raise UsageError(f"--cluster {cluster!r} is not host:port (a port is 1 to 65535); "
                         f"{example}")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:  # refused, unknown host, unreachable, timed out
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UsageError(f"cannot connect to the Dask scheduler at {address}: {reason}; "
                         "check the address and that the scheduler is running") from None
    return address


def _dask_task(ref: dict[str, Any], settings: dict[str, Any], index: int, count: int,
               stop: str) -> dict[str, Any]:
    event = _distributed().Event(stop)
    return run_partition(ref, settings, index, count, should_stop=event.is_set)


class DaskExecutor(Executor):
    """The parts run as tasks on a Dask distributed cluster.

    ``cluster`` is a scheduler address (``tcp://host:8786``) or anything
    ``distributed.Client`` accepts (a ``LocalCluster``). Workers must be able to import the
    explorer and the target's module (install the project on them, or share the checkout
    at the same path). ``count`` defaults to the number of worker threads.
    """

    def __init__(self, cluster: Any, count: int | None = None) -> None:
        try:
            distributed = _distributed()
        except ImportError:
            raise UsageError("--cluster needs Dask: pip install 'explorer[cluster]'") from None
        if isinstance(cluster, str):
            cluster = _check_address(cluster)
        try:
            self._client: Any = distributed.Client(cluster, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"cannot connect to the Dask scheduler at {cluster}: {exc}; "
                             "check the address and that the scheduler is running") from None
        threads = sum(int(w.get("nthreads", 1)) for w in
                      self._client.scheduler_info()["workers"].values())
        self.count = count or max(1, threads)
        self._address = str(cluster) if isinstance(cluster, str) else "a local cluster"

    def run_parts(self, ref: TargetRef, settings: Settings,
                  on_schedules: ProgressCallback | None) -> list[dict[str, Any]]:
        distributed = _distributed()
        stop = f"explorer-stop-{uuid.uuid4().hex}"
        event = distributed.Event(stop, client=self._client)
        futures = [self._client.submit(_dask_task, ref.to_json(), settings.to_json(), k,
                                       self.count, stop, pure=False, key=f"{stop}-{k}")
                   for k in range(self.count)]
        results: dict[int, dict[str, Any]] = {}
        try:
            for future in distributed.as_completed(futures):
                k = futures.index(future)
                try:
                    results[k] = future.result()
                except ExplorerError:
                    raise
                except Exception as exc:
                    raise ExplorerError(f"cluster worker {k + 1} failed: "
                                        f"{type(exc).__name__}: {exc}") from exc
                if on_schedules is not None:
                    on_schedules(results[k]["schedules"])
                if results[k]["failure"] is not None:
                    event.set()
        finally:
            self._client.cancel(futures)
        return [results[k] for k in range(self.count)]

    def close(self) -> None:
        self._client.close()

    def describe(self) -> str:
        return f"{self.count} tasks on the Dask cluster at {self._address}"


@contextlib.contextmanager
def executor_for(*, workers: int | None = None, cluster: Any = None,
                 shard: str | None = None) -> Iterator[Executor]:
    """The executor the command-line options ask for."""
    chosen = [name for name, value in (("--workers", workers), ("--cluster", cluster),
                                       ("--shard", shard)) if value is not None]
    if len(chosen) > 1 and not (chosen == ["--workers", "--cluster"]):
        raise UsageError(f"{' and '.join(chosen)} cannot be combined; a shard runs in one "
                         "process (use one CI job per shard)")
    executor: Executor
    if cluster is not None:  # an empty address is an error, not "no cluster"
        executor = DaskExecutor(cluster, workers)
    elif shard is not None:
        executor = SerialExecutor(Partition.parse_shard(shard))
    elif workers and workers > 1:
        executor = ProcessExecutor(workers)
    else:
        executor = SerialExecutor()
    with executor:
        yield executor


def explore_target(ref: TargetRef, overrides: Mapping[str, Any], executor: Executor, *,
                   on_schedules: ProgressCallback | None = None,
                   unbounded: bool = False) -> JobResult:
    """Explore one target with its options overridden by ``overrides``, on ``executor``.

    ``unbounded``: no schedule budget unless the target's own options set one (the nightly
    job bounds exploration by time instead).
    """
    resolved = resolve(ref)
    settings = Settings.merged(resolved.options, overrides).with_seed()
    if unbounded and "max_schedules" not in resolved.options:
        settings = replace(settings, max_schedules=None)
    start = time.perf_counter()
    if executor.count == 1 and executor.shard is None:
        return _explore_here(resolved, settings, on_schedules, start)
    parts = executor.run_parts(resolved.ref, settings, on_schedules)
    return _merge(resolved, settings, parts, time.perf_counter() - start, executor.shard)


def _explore_here(resolved: Resolved, settings: Settings,
                  on_schedules: ProgressCallback | None, start: float) -> JobResult:
    inner = _strategies.make_strategy(settings.strategy, seed=settings.seed,
                                      deviation_bound=settings.deviation_bound)
    strategy = Observed(inner, on_schedules=on_schedules)
    tally = _Tally()
    result = _explore(resolved, settings, strategy, tally,
                      max_schedules=settings.max_schedules or UNBOUNDED,
                      max_time=settings.max_time)
    strategy.flush()
    return JobResult(resolved.ref.spec, resolved.name, settings, result.schedules,
                     result.probes, result.steps, result.distinct,
                     time.perf_counter() - start, result.exhausted, result.coverage,
                     result.strategy, result.failure, 1, tally.warnings)
