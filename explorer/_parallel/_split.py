"""How one exploration's work is shared among ``n`` workers, and what a worker runs.

Invariant: workers never duplicate each other's schedules, and a worker receives only
names and numbers (a :class:`~explorer._targets.TargetRef` and
:class:`~explorer._settings.Settings` as JSON) and returns only a :class:`PartResult`
(plain data too): each worker imports the scenario itself, nothing is pickled.

Worker ``k`` (from 0) of ``n`` runs its share according to the strategy's
:data:`~explorer.strategies.Splitting`:

- **seeded** (``random``, ``pct``, ``pos``, ``surw``, ``coverage``, ``symmetric``,
  ``portfolio``): schedules come in chunks of :data:`CHUNK` runs (fewer when a schedule
  budget shared by ``n`` workers is smaller); chunk ``j`` is the strategy seeded
  ``seed + j``, and worker ``k`` runs chunks ``k, k + n, k + 2n, ...`` until the budget is
  spent.
- **partition** (``systematic``): the deviation-ordered search is split into disjoint
  subtrees by the scheduling point of a schedule's *first* deviation: worker ``k`` runs and
  reports only schedules whose first deviation is at a point ``p`` with ``p % n == k`` (the
  stock schedule is worker 0's). Probe runs, which learn how many candidates a prefix
  offers, are shared work: any worker may repeat them, none counts them. Together the
  workers cover exactly what one systematic search covers.
- **partition** (``dpor``, ``dpor-declared``, ``dpor-auto``): the branches at the first
  scheduling point are dealt round-robin: worker ``k`` explores, by partial-order
  reduction, the schedules that start with candidate ``i`` there, ``i % n == k``
  (:meth:`~explorer.strategies.DPOR.deal`), with every lower candidate there asleep,
  whichever worker's it is: a class runs in the branch of the lowest candidate that can
  take its first step, so the shares are disjoint and together run one schedule of each
  class one search runs. A worker learns a lower candidate's first step by a probe run;
  a branch whose classes all start with a lower candidate's step ends in sleep-set-blocked
  runs; neither is counted, and the joint coverage says how many there were. Under a
  deviation bound another worker's branch may have skipped part of its subtree, so only a
  worker's own branches sleep, and a class may run in two workers (the coverage says so).
- **whole** (any strategy that declares it): cannot be split: worker 0 runs the whole
  search, the others return at once.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import explorer.strategies as _strategies
from explorer._engine import ExploreResult, explore
from explorer._errors import UsageError
from explorer._failure import ScheduleFailure
from explorer._settings import Settings
from explorer._shrink import ShrinkReport
from explorer._targets import Resolved, TargetRef, resolve
from explorer.strategies._base import Parameter, Statistic

CHUNK: Final = 1000
UNBOUNDED: Final = 10**12  # "no schedule budget": explore() wants a number
POLL: Final = 0.2  # seconds between progress reports and stop checks in a worker

# Explorations install process-wide patches (time.sleep, Thread.start) for their
# duration, so two must not run at once in one process (Dask threads, for example).
EXPLORE_LOCK: Final = threading.Lock()

StrategyInfo = dict[str, Parameter]
"""A strategy's parameters as :meth:`~explorer.strategies.Strategy.describe` gives them."""
Signature = tuple[str, str | None, int | None, str | None]
"""What makes two failures the same (:meth:`~explorer.Outcome.signature`)."""
JSONObject = Mapping[str, object]
"""A record as JSON data (a target reference, settings), as it crosses to a worker."""


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


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class FoundFailure:
    """A failure a worker found and shrank, as plain data: the coordinator replays
    ``schedule`` to rebuild the whole failure (trace, explanation) and checks that the
    replay fails the same way (``signature``)."""

    schedule: str
    found_after: int
    strategy: StrategyInfo
    kind: str
    signature: Signature
    shrink: ShrinkReport | None = None

    @classmethod
    def of(cls, failure: ScheduleFailure) -> FoundFailure:
        return cls(str(failure.schedule), failure.found_after, dict(failure.strategy),
                   failure.kind, failure.outcome.signature(), failure.shrink)

    def to_json(self) -> dict[str, object]:
        return {"schedule": self.schedule, "found_after": self.found_after,
                "strategy": dict(self.strategy), "kind": self.kind,
                "signature": list(self.signature),
                "shrink": asdict(self.shrink) if self.shrink else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FoundFailure:
        kind, file, line, error = data["signature"]
        shrink = data.get("shrink")
        return cls(str(data["schedule"]), int(data["found_after"]), dict(data["strategy"]),
                   str(data["kind"]), (str(kind), file, line, error),
                   ShrinkReport(**shrink) if shrink else None)


@dataclass(frozen=True, slots=True)
class PartResult:
    """What worker ``index`` of ``count`` did: counters, how its share ended, its failure.

    ``exhausted``: its share of the space was run completely; ``stopped``: another worker's
    failure (or an interruption) stopped it; ``completed_rounds`` / ``space_finished``: how
    far a partitioned systematic search got; ``whole``: it ran a strategy that cannot be
    split (then ``coverage`` is that search's own sentence); ``seeds``: the chunks' seeds
    of a seeded strategy.
    """

    index: int
    count: int
    schedules: int
    probes: int
    steps: int
    distinct: int
    elapsed: float
    strategy: StrategyInfo
    exhausted: bool = False
    stopped: bool = False
    completed_rounds: int | None = None
    space_finished: bool = False
    whole: bool = False
    coverage: str = ""
    seeds: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    failure: FoundFailure | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {name: getattr(self, name) for name in _PART_FIELDS}
        data.update(strategy=dict(self.strategy), seeds=list(self.seeds),
                    warnings=list(self.warnings),
                    failure=self.failure.to_json() if self.failure else None)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PartResult:
        failure = data.get("failure")
        return cls(int(data["index"]), int(data["count"]), int(data["schedules"]),
                   int(data["probes"]), int(data["steps"]), int(data["distinct"]),
                   float(data["elapsed"]), dict(data["strategy"]), bool(data["exhausted"]),
                   bool(data["stopped"]),
                   None if data.get("completed_rounds") is None
                   else int(data["completed_rounds"]),
                   bool(data["space_finished"]), bool(data.get("whole", False)),
                   str(data.get("coverage", "")), tuple(int(s) for s in data["seeds"]),
                   tuple(str(w) for w in data["warnings"]),
                   FoundFailure.from_json(failure) if failure else None)


_PART_FIELDS: Final = ("index", "count", "schedules", "probes", "steps", "distinct",
                       "elapsed", "exhausted", "stopped", "completed_rounds",
                       "space_finished", "whole", "coverage")


@dataclass(frozen=True, slots=True)
class _Share:
    """How one worker's share ended (the part of :class:`PartResult` the share decides)."""

    strategy: StrategyInfo
    exhausted: bool = False
    stopped: bool = False
    completed_rounds: int | None = None
    space_finished: bool = False
    whole: bool = False
    coverage: str = ""
    failure: FoundFailure | None = None


# --------------------------------------------------------------------------- strategies


class Observed(_strategies.Strategy):
    """Delegates to ``inner``; reports counted schedules and stops when asked.

    Every :data:`POLL` seconds it hands the number of schedules run since the last report
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
        self._next = time.monotonic() + POLL

    def start_run(self) -> bool:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + POLL
            self.flush()
            if self._should_stop is not None and self._should_stop():
                self.stopped = True
                return False
        return self.inner.start_run()

    def choose(self, count: int, view: Any) -> int:
        return self.inner.choose(count, view)

    @property
    def footprint_models(self) -> frozenset[str]:
        return self.inner.footprint_models

    def run_footprints(self) -> str | None:
        return self.inner.run_footprints()

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

    def describe(self) -> dict[str, Parameter]:
        return self.inner.describe()

    def statistics(self) -> dict[str, Statistic]:
        return self.inner.statistics()


# --------------------------------------------------------------------------- one worker


@dataclass
class Tally:
    """Counters summed over the explorations one worker (or the coordinator) ran."""

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


def explore_share(resolved: Resolved, settings: Settings, strategy: _strategies.Strategy,
                  tally: Tally, *, max_schedules: int, max_time: float | None
                  ) -> ExploreResult:
    """One exploration with ``settings`` but this ``strategy``, budget and time; its
    warnings are collected into ``tally`` (they travel back as text)."""
    # A share whose time has run out (a negative remainder) still makes its first run,
    # cut short, as explore() does with max_time=0.
    share = settings.replace(strategy=strategy, max_schedules=max_schedules,
                             max_time=None if max_time is None else max(max_time, 0.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = explore(resolved.fn, settings=share, raise_on_failure=False)
    tally.add(result)
    tally.warnings += [str(w.message) for w in caught]
    return result


def run_partition(ref: JSONObject, settings: JSONObject, index: int,
                  count: int, *, on_schedules: Callable[[int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> PartResult:
    """Explore worker ``index``'s share of the work (``ref`` and ``settings`` as JSON).

    This is what runs inside a worker process or on a cluster machine.
    """
    resolved = resolve(TargetRef.from_json(ref))
    chosen = Settings.from_json(settings)
    with EXPLORE_LOCK:
        start = time.perf_counter()
        deadline = start + chosen.max_time if chosen.max_time is not None else None
        tally = Tally()
        share = (_dpor_share if chosen.strategy_name in DPOR_NAMES
                 else _SHARES[_strategies.splitting(chosen.strategy_name)])
        out = share(resolved, chosen, index, count, tally, deadline, on_schedules,
                    should_stop)
        elapsed = time.perf_counter() - start
    return PartResult(index, count, tally.schedules, tally.probes, tally.steps,
                      tally.distinct, elapsed, out.strategy, out.exhausted, out.stopped,
                      out.completed_rounds, out.space_finished, out.whole, out.coverage,
                      tuple(tally.seeds), tuple(tally.warnings), out.failure)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.perf_counter()


def _found(failure: ScheduleFailure | None) -> FoundFailure | None:
    return FoundFailure.of(failure) if failure is not None else None


def _systematic_share(resolved: Resolved, settings: Settings, index: int, count: int,
                      tally: Tally, deadline: float | None,
                      on_schedules: Callable[[int], None] | None,
                      should_stop: Callable[[], bool] | None) -> _Share:
    inner: _strategies.Systematic | _strategies.PreemptionBounded = (
        _strategies.Systematic(settings.deviation_bound, partition=(index, count))
        if settings.preemption_bound is None else
        _strategies.PreemptionBounded(settings.preemption_bound, partition=(index, count)))
    strategy = Observed(inner, on_schedules=on_schedules, should_stop=should_stop)
    result = _explore_part(resolved, settings, strategy, count, tally, deadline)
    return _Share(inner.describe(), result.exhausted, strategy.stopped,
                  inner.completed_rounds, inner.space_finished,
                  failure=_found(result.failure))


def _explore_part(resolved: Resolved, settings: Settings, strategy: Observed, count: int,
                  tally: Tally, deadline: float | None) -> ExploreResult:
    """Explore one worker's part of a partitioned search, with its share of the schedule
    budget, and flush what it observed."""
    share = (UNBOUNDED if settings.max_schedules is None
             else max(1, math.ceil(settings.max_schedules / count)))
    result = explore_share(resolved, settings, strategy, tally, max_schedules=share,
                           max_time=_remaining(deadline))
    strategy.flush()
    return result


DPOR_NAMES: Final = ("dpor", "dpor-declared", "dpor-auto")
"""The strategies split by :func:`_dpor_share` (their own partition of the search)."""


def _dpor_share(resolved: Resolved, settings: Settings, index: int, count: int,
                tally: Tally, deadline: float | None,
                on_schedules: Callable[[int], None] | None,
                should_stop: Callable[[], bool] | None) -> _Share:
    inner = _strategies.make_strategy(settings.strategy,
                                      deviation_bound=settings.deviation_bound)
    if not isinstance(inner, _strategies.DPOR):  # DPOR_NAMES are made as DPOR
        raise TypeError(f"{settings.strategy_name} made {type(inner).__name__}, not DPOR")
    inner.deal(index, count)
    strategy = Observed(inner, on_schedules=on_schedules, should_stop=should_stop)
    result = _explore_part(resolved, settings, strategy, count, tally, deadline)
    return _Share({**inner.describe(), "partition": f"{index + 1}/{count}"},
                  result.exhausted, strategy.stopped, coverage=inner.coverage(),
                  failure=_found(result.failure))


def dpor_joint_coverage(parts: Sequence[PartResult], who: str) -> str:
    """What the workers of a dealt partial-order-reduced search covered together."""
    schedules = sum(p.schedules for p in parts)
    if any(p.strategy.get("deviation_bound") is not None for p in parts):
        split = ("split by the candidate taken at the first scheduling point; under a "
                 "deviation bound a class that can start with candidates of two workers "
                 "may have run in both")
    else:
        # Probe runs and sleep-set-blocked runs are the engine's uncounted runs.
        uncounted = sum(p.probes for p in parts)
        split = ("split by the candidate taken at the first scheduling point, each "
                 "worker's branches with the lower candidates asleep, so no class ran in "
                 f"two workers; {uncounted} probe or sleep-set-blocked run(s) not counted")
    if parts and len({p.index for p in parts}) < parts[0].count:  # a shard: one share
        state = "finished" if all(p.exhausted for p in parts) else "not finished"
        return (f"{schedules} schedules by {who}, its share of a partial-order-reduced "
                f"search ({split}), {state}; all interleavings up to reordering of "
                "independent steps only with every other share's runs")
    if not parts or not all(p.exhausted for p in parts):
        return (f"{schedules} schedules of a partial-order-reduced search by {who} "
                f"({split}); not finished")
    claims = [p.coverage for p in parts]
    if all(c.startswith("all interleavings") for c in claims):
        return (f"all interleavings up to reordering of independent steps, jointly by "
                f"{who} ({schedules} schedules; {split})")
    return (f"{schedules} schedules of a partial-order-reduced search by {who} ({split}); "
            "each worker's part: " + "; ".join(f"{p.index + 1}: {c}" for p, c in
                                               zip(parts, claims, strict=True)))


def _whole_in_worker_zero(resolved: Resolved, settings: Settings, index: int, count: int,
                          tally: Tally, deadline: float | None,
                          on_schedules: Callable[[int], None] | None,
                          should_stop: Callable[[], bool] | None) -> _Share:
    if index != 0:
        return _Share({"name": settings.strategy_name,
                       "deviation_bound": settings.deviation_bound},
                      exhausted=True, space_finished=True)
    inner = _strategies.make_strategy(settings.strategy, seed=settings.seed,
                                      deviation_bound=settings.deviation_bound)
    strategy = Observed(inner, on_schedules=on_schedules, should_stop=should_stop)
    share = settings.max_schedules or UNBOUNDED
    result = explore_share(resolved, settings, strategy, tally, max_schedules=share,
                           max_time=_remaining(deadline))
    strategy.flush()
    return _Share(result.strategy, result.exhausted, strategy.stopped, None, True, True,
                  result.coverage, _found(result.failure))


def _seeded_share(resolved: Resolved, settings: Settings, index: int, count: int,
                  tally: Tally, deadline: float | None,
                  on_schedules: Callable[[int], None] | None,
                  should_stop: Callable[[], bool] | None) -> _Share:
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
        result = explore_share(resolved, settings, strategy, tally, max_schedules=size,
                               max_time=left)
        strategy.flush()
        failure, stopped = result.failure, strategy.stopped
        if failure is not None or stopped:
            break
        chunk += count
    return _Share({"name": settings.strategy_name, "seed": base,
                   "partition": f"{index + 1}/{count}"},
                  stopped=stopped, failure=_found(failure))


_SHARES: Final[Mapping[_strategies.Splitting, Callable[..., _Share]]] = {
    "partition": _systematic_share, "whole": _whole_in_worker_zero, "seeded": _seeded_share,
}
