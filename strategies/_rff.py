"""``rff``: reads-from fuzzing, greybox schedule fuzzing guided by reads-from pairs.

After Wolff, Shi, Duck, Mathur and Roychoudhury, "Greybox Fuzzing for Concurrency
Testing" (ASPLOS 2024). A concurrency bug shows as a read that observes an unusual write
(or the initial value where a write was due). This strategy keeps the reads-from pairs
that runs have shown, and steers new runs toward pairs not seen yet.

**Events and pairs.** An *event* is a step named so that it means the same thing in every
run: ``(task kind, ordinal)``, where the task kind is the task id without spawn indices
(``main/worker#3`` is ``main/worker``) and the ordinal counts the task's steps. Identical
tasks therefore share events, as identical threads share program locations in the paper.
A *location* is ``(object name, item)``: objects differ from run to run, so an object is
named by the first event, in a fixed order, among those that touched it. A *reads-from
pair* ``(write, read, location)`` says that a step read the location last written by a
step of another task (``write`` is :data:`INIT` when nothing wrote it before). An access
to a primitive (a lock acquired, an event set, a queue's put and get) is a write that also
observes the previous one, so a lock's hand-over order is a pair too.

**Abstract schedules.** A run is steered by a few *constraints* on pairs: positive (this
read must observe this write) or negative (it must not). While a run goes, the strategy
follows which constraints are pending (positive: favour the write and hold the read back
until the write ran; then favour the read and hold back other writers of the location;
negative: the reverse) and otherwise picks by random priorities, each task's priority
drawn afresh after each of its steps (the partial-order sampler the paper builds on).
Holding back is soft: when every candidate is held back, the priorities decide.

**Feedback.** A run that shows a pair never seen before is kept with its constraints; each
kept schedule records the pairs it found first. A run either starts afresh (``fresh`` of
the time, and while nothing is kept) or mutates a kept schedule chosen with probability
proportional to the rarity of its rarest pair: it adds a positive constraint toward a pair
never observed (a known read of a location and a known writer of it, or the initial
value), adds a constraint from a rare observed pair with a random sign, negates one, or
drops one. A pair targeted a few times without showing up is not targeted again
(some pairs are impossible: the write always follows the read).

**What it needs.** Footprints: ``declared`` (the default: asyncio and trio primitives, and
state declared with ``explorer.shared``) or ``auto`` (every attribute and item access of
the user's code, Python 3.12+). With only primitives visible it still sees lock, event and
queue hand-overs; with no footprint at all it is a random-priority walk. As a member of
the default portfolio (one turn in its rotation) it states its need through
:meth:`~explorer.strategies.Strategy.run_footprints`: only its own runs record, and runs
that inject faults record nothing, so its turns there are the random-priority walk.

Guarantee: reproducible from ``seed``; every schedule keeps a non-zero probability (the
priorities can order the candidates in any way); not exhaustive.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from explorer._footprint import StepRecord, StepTuple, require_auto
from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import processes, task_kind

Event = tuple[str, int]
"""A step as every run names it: ``(task kind, ordinal of the step in its task)``."""

INIT: Final[Event] = ("", -1)
"""The writer of a location's initial value: no step wrote it before the read."""

Location = tuple[Event, object]
"""A shared location across runs: ``(name of the object, item)``."""

Pair = tuple[Event, Event, Location]
"""A reads-from pair: ``(write, read, location)``."""

_UNSTEERABLE: Final = frozenset({"loop", "clock", "fault", ""})
"""Kinds of work a constraint cannot single out: plain callbacks, timer firings and fault
options are candidates of no task, and the initial value is no step."""
_STABLE_ITEMS: Final = (str, int, float, bool, type(None))
_TRIES: Final = 3
"""How many runs may target one unseen pair before it counts as impossible."""
_SAMPLE: Final = 16
"""How many of the new pairs a kept schedule remembers (see :meth:`RFF.end_run`)."""


@dataclass(frozen=True, slots=True)
class Constraint:
    """``read`` must (``positive``) or must not observe ``write`` at ``location``."""

    write: Event
    read: Event
    location: Location
    positive: bool


@dataclass(slots=True)
class _Kept:
    constraints: tuple[Constraint, ...]
    novel: tuple[Pair, ...]  # the pairs this schedule found first


@dataclass(slots=True)
class _Tables:
    """What runs have shown: pair frequencies and which events read and write where."""

    runs_with: dict[Pair, int] = field(default_factory=dict)
    reads: list[tuple[Event, Location]] = field(default_factory=list)
    read_set: set[tuple[Event, Location]] = field(default_factory=set)
    writers: dict[Location, list[Event]] = field(default_factory=dict)
    writes_at: dict[Event, set[Location]] = field(default_factory=dict)
    crossed: set[Event] = field(default_factory=set)  # see RunPairs.crossed


def _item(item: object) -> object:
    """An item as runs can compare it: plain values as they are, anything else by type."""
    return item if isinstance(item, _STABLE_ITEMS) else f"<{type(item).__name__}>"


def _sort_key(value: object) -> str:
    # Sets of events and locations hold strings, whose hashes change from process to
    # process: anything appended to a list the random choices index is sorted first.
    return repr(value)


def step_events(steps: Sequence[StepTuple]) -> list[Event]:
    """The :data:`Event` of each recorded step."""
    done: dict[str, int] = {}
    events: list[Event] = []
    for record in steps:
        process = record[0]
        events.append(_event(process, done))
    return events


@functools.lru_cache(maxsize=4096)
def _kind(process: str) -> str:
    return task_kind(process)  # task ids are stable across runs: worth remembering


def _event(process: str, done: dict[str, int]) -> Event:
    kind = _kind(process)
    if kind in _UNSTEERABLE:
        return (kind, 0)  # plain callbacks run in queue order: one event for all
    ordinal = done.get(process, 0)
    done[process] = ordinal + 1
    return (kind, ordinal)


class RunPairs(NamedTuple):
    """What one run showed about reads-from (see :func:`reads_from`)."""

    pairs: set[Pair]
    """Reads-from pairs between steps of different processes."""
    writes: dict[Event, set[Location]]
    """The locations each event wrote."""
    reads: set[tuple[Event, Location]]
    """Every read: ``(event, location)``."""
    crossed: set[Event]
    """Names of the objects two tasks of one kind touched (not one task's own state)."""


def reads_from(steps: Sequence[StepTuple]) -> RunPairs:
    """The reads-from pairs of one run, with what each event wrote and read. The unknown
    access (a step that may touch anything) names no location and is left out."""
    events = step_events(steps)
    # Object names: the first event, in a fixed order, that touched the object; a plain
    # callback's event names an object only when no task step touched it. An object only
    # one process touched (a task's own state) has no reads-from pair: it is left out.
    touched: dict[int, Event] = {}
    touchers: dict[int, set[str]] = {}
    for record, event in zip(steps, events, strict=True):
        process = record[0]
        for obj, _, _ in record[1]:
            known = touched.get(obj)
            if known is None or _before(event, known):
                touched[obj] = event
            touchers.setdefault(obj, set()).add(process)
    shared = {obj for obj, who in touchers.items() if len(who) > 1 and obj != 0}
    crossed = {touched[obj] for obj in shared
               if len({_kind(p) for p in touchers[obj]}) < len(touchers[obj])}
    # The last write to each (object, item): (step index, event, process).
    last: dict[tuple[int, object], tuple[int, Event, str]] = {}
    pairs: set[Pair] = set()
    writes: dict[Event, set[Location]] = {}
    read_sites: set[tuple[Event, Location]] = set()
    for index, (record, event) in enumerate(zip(steps, events, strict=True)):
        process, footprint = record[0], record[1]
        written: list[tuple[int, object]] = []
        for obj, item, mode in footprint:
            if obj not in shared:
                continue
            key = (obj, item)
            location = (touched[obj], _item(item))
            # A write to a whole object (item None: a primitive's operation) also observes
            # the state the previous operation left: an acquire sees the last release.
            if mode == "r" or item is None:
                source = last.get(key)
                if item is not None:  # a write to the whole object overwrites every item
                    whole = last.get((obj, None))
                    if whole is not None and (source is None or whole[0] > source[0]):
                        source = whole
                if source is None:
                    pairs.add((INIT, event, location))
                elif source[2] != process:
                    pairs.add((source[1], event, location))
                read_sites.add((event, location))
            if mode == "w":
                written.append(key)
                writes.setdefault(event, set()).add(location)
        for key in written:
            last[key] = (index, event, process)
    return RunPairs(pairs, writes, read_sites, crossed)


def _before(a: Event, b: Event) -> bool:
    a_callback, b_callback = a[0] in _UNSTEERABLE, b[0] in _UNSTEERABLE
    if a_callback != b_callback:
        return b_callback
    return a < b


class RFF(Strategy):
    """Steer runs toward reads-from pairs not seen yet; keep the runs that show new ones."""

    name = "rff"
    splitting = "seeded"

    def __init__(self, seed: int | None = None, *, footprints: str = "declared",
                 fresh: float = 0.2, max_constraints: int = 3) -> None:
        if footprints not in ("declared", "auto"):
            raise ValueError(
                f"RFF needs footprints='declared' or footprints='auto', got {footprints!r}: "
                "reads-from pairs come from recorded accesses, and under 'conservative' "
                "every task step touches everything, which names no location. Use "
                "RFF(footprints='declared') and declare the state tasks share with "
                "explorer.shared(...), or RFF(footprints='auto') on Python 3.12+")
        if footprints == "auto":
            require_auto()
        if not 0.0 <= fresh <= 1.0:
            raise ValueError(f"fresh is the share of runs that start afresh, between 0 and "
                             f"1; got {fresh!r}")
        if max_constraints < 1:
            raise ValueError(f"max_constraints must be at least 1, got {max_constraints!r}")
        self.footprints = footprints
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.fresh = fresh
        self.max_constraints = max_constraints
        self.runs = 0
        self.targeted = 0
        self.satisfied = 0
        self.kept: list[_Kept] = []
        self._tables = _Tables()
        self._tried: dict[Pair, int] = {}
        self._constraints: tuple[Constraint, ...] = ()
        self._target: Pair | None = None
        self._novel: tuple[Pair, ...] = ()
        # Per run: steps done per process, steps of the record read so far, priorities,
        # and the state of each constraint (True: its write is the latest at its location).
        self._done: dict[str, int] = {}
        self._synced = 0
        self._priority: dict[str, float] = {}
        self._written: list[bool] = []
        self._met: list[bool] = []
        self._favour: set[Event] = set()
        self._hold: set[Event] = set()
        self._hold_writers: set[Location] = set()
        self._favour_writers: set[Location] = set()
        self._steering = False
        self._biases: dict[str, float] = {}  # per process, for its next event

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        self.runs += 1
        self._done = {}
        self._synced = 0
        self._priority = {}
        self._target = None
        rng = self._rng
        if not self.kept or rng.random() < self.fresh:
            self._constraints = ()
        else:
            self._constraints = self._mutate(self._pick())
        # A constraint whose write is the initial value starts with its write the latest.
        self._written = [c.write == INIT for c in self._constraints]
        self._met = [False] * len(self._constraints)
        self._steer()
        return True

    def choose(self, count: int, view: PointView) -> int:
        steps = view.recorded_steps()
        if steps is not None and len(steps) > self._synced:
            self._sync(steps)
        # The cheap identities only (no candidate description): this runs at every point.
        keys = processes(count, view)
        priority = self._priority
        draw = self._rng.random
        steering = self._steering
        biases = self._biases
        best, top = 0, -4.0
        for i, p in enumerate(keys):
            value = priority.get(p)
            if value is None:
                value = priority[p] = draw()
            if steering:
                bias = biases.get(p)
                if bias is None:
                    kind = _kind(p)
                    bias = biases[p] = self._bias(
                        (kind, self._done.get(p, 0)) if kind not in _UNSTEERABLE else (kind, 0))
                value += bias
            if value > top:  # the lowest index wins ties, as in the stock order
                best, top = i, value
        if steps is None:  # no record to follow: at least the chosen task steps now
            priority.pop(keys[best], None)
        return best

    def observe(self, steps: Sequence[StepRecord]) -> None:
        pairs, writes, read_sites, crossed = reads_from(steps)
        tables = self._tables
        tables.crossed |= crossed
        runs_with = tables.runs_with
        novel = sorted((p for p in pairs if p not in runs_with), key=_sort_key)
        for pair in pairs:
            runs_with[pair] = runs_with.get(pair, 0) + 1
        for site in sorted(read_sites - tables.read_set, key=_sort_key):
            if site[0][0] not in _UNSTEERABLE:
                tables.reads.append(site)
            tables.read_set.add(site)
        for event in sorted(writes, key=_sort_key):
            known = tables.writes_at.setdefault(event, set())
            for location in sorted(writes[event] - known, key=_sort_key):
                known.add(location)
                if event[0] not in _UNSTEERABLE:
                    tables.writers.setdefault(location, []).append(event)
        self._novel = tuple(novel)
        if self._target is not None and self._target in pairs:
            self.satisfied += 1

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        novel = self._novel
        if novel:
            # A long run can show hundreds of new pairs; a sample of them stands for the
            # run, so that picking a parent costs the same however long the runs are.
            if len(novel) > _SAMPLE:
                novel = tuple(self._rng.sample(novel, _SAMPLE))
            self.kept.append(_Kept(self._constraints, novel))
        self._novel = ()

    def coverage(self) -> str:
        return (f"{self.runs} reads-from fuzzing schedules (seed {self.seed}): "
                f"{len(self._tables.runs_with)} reads-from pairs, {len(self.kept)} "
                "schedules kept; a sample, not exhaustive")

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed, "footprints": self.footprints}

    def statistics(self) -> dict[str, Statistic]:
        return {"pairs": len(self._tables.runs_with), "kept": len(self.kept),
                "targeted": self.targeted, "satisfied": self.satisfied}

    @property
    def pairs(self) -> frozenset[Pair]:
        """Every reads-from pair the runs so far showed."""
        return frozenset(self._tables.runs_with)

    # ------------------------------------------------------------------ a run

    def _sync(self, steps: Sequence[StepTuple]) -> None:
        """Follow the steps recorded since the last point: count them per process, give
        the processes that stepped new priorities, and move the constraints along."""
        done = self._done
        priority = self._priority
        constraints = self._constraints
        writes_at = self._tables.writes_at
        changed = False
        for index in range(self._synced, len(steps)):
            process = steps[index][0]
            event = _event(process, done)
            priority.pop(process, None)  # its next step is a new event: a new priority
            self._biases.pop(process, None)
            if not constraints:
                continue
            wrote = writes_at.get(event, ())
            for k, c in enumerate(constraints):
                if self._met[k]:
                    continue
                if event == c.write:
                    changed |= not self._written[k]
                    self._written[k] = True
                elif c.location in wrote:  # another write: the read would not see c.write
                    changed |= self._written[k]
                    self._written[k] = False
                if event == c.read and self._written[k] == c.positive:
                    self._met[k] = True
                    changed = True
        self._synced = len(steps)
        if changed:
            self._steer()

    def _steer(self) -> None:
        """Which events to favour and which to hold back, from the constraints' states."""
        favour: set[Event] = set()
        hold: set[Event] = set()
        favour_writers: set[Location] = set()
        hold_writers: set[Location] = set()
        for k, c in enumerate(self._constraints):
            if self._met[k]:
                continue
            if c.positive and not self._written[k]:  # the write first, then the read
                favour.add(c.write)
                hold.add(c.read)
            elif c.positive:  # the read now, before anything overwrites the location
                favour.add(c.read)
                hold_writers.add(c.location)
            elif self._written[k]:  # another write first, then the read
                favour_writers.add(c.location)
                hold.add(c.read)
            else:  # the read before the write
                favour.add(c.read)
                hold.add(c.write)
        self._favour, self._hold = favour, hold
        self._steering = bool(favour or hold or favour_writers or hold_writers)
        self._biases = {}
        self._favour_writers, self._hold_writers = favour_writers, hold_writers

    def _bias(self, event: Event) -> float:
        # Priorities are in [0, 1): +2 favours, -2 holds back, whatever the draw.
        bias = 0.0
        if event in self._favour:
            bias += 2.0
        if event in self._hold:
            bias -= 2.0
        if self._favour_writers or self._hold_writers:
            wrote = self._tables.writes_at.get(event)
            if wrote:
                if not wrote.isdisjoint(self._favour_writers):
                    bias += 2.0
                if not wrote.isdisjoint(self._hold_writers):
                    bias -= 2.0
        return bias

    # ------------------------------------------------------------------ mutation

    def _pick(self) -> _Kept:
        """A kept schedule, with probability proportional to its rarest pair's rarity."""
        runs_with = self._tables.runs_with
        weights = [1.0 / min(runs_with[p] for p in kept.novel) for kept in self.kept]
        at = self._rng.random() * sum(weights)
        for kept, weight in zip(self.kept, weights, strict=True):
            at -= weight
            if at < 0:
                return kept
        return self.kept[-1]

    def _mutate(self, parent: _Kept) -> tuple[Constraint, ...]:
        rng = self._rng
        constraints = list(parent.constraints)
        roll = rng.random()
        if constraints and roll < 0.15:  # negate one
            at = int(rng.random() * len(constraints))
            c = constraints[at]
            constraints[at] = Constraint(c.write, c.read, c.location, not c.positive)
            return tuple(constraints)
        if constraints and roll < 0.3:  # drop one
            del constraints[int(rng.random() * len(constraints))]
            return tuple(constraints)
        added = self._unseen() if roll < 0.8 else None
        if added is None:
            added = self._rare(parent)
        if added is None or added in constraints:
            return tuple(constraints)
        constraints.append(added)
        return tuple(constraints[-self.max_constraints:])

    def _unseen(self) -> Constraint | None:
        """A positive constraint toward a pair no run has shown: a known read of a location
        and a known writer of it (or its initial value)."""
        tables = self._tables
        if not tables.reads:
            return None
        rng = self._rng
        for _ in range(8):
            read, location = tables.reads[int(rng.random() * len(tables.reads))]
            writers = tables.writers.get(location, [])
            at = int(rng.random() * (len(writers) + 1))
            write = writers[at] if at < len(writers) else INIT
            pair = (write, read, location)
            if (pair in tables.runs_with or self._tried.get(pair, 0) >= _TRIES
                    or not self._possible(write, read, location)):
                continue
            self._tried[pair] = self._tried.get(pair, 0) + 1
            self._target = pair
            self.targeted += 1
            return Constraint(write, read, location, True)
        return None

    def _possible(self, write: Event, read: Event, location: Location) -> bool:
        """False for a pair program order rules out: a read of the initial value after
        its own task wrote the location, or a pair of one kind of task with itself on an
        object no two tasks of that kind share (each task's own state)."""
        kind, ordinal = read
        if write == INIT:
            writes_at = self._tables.writes_at
            return not any(location in writes_at.get((kind, j), ()) for j in range(ordinal))
        return write[0] != kind or location[0] in self._tables.crossed

    def _rare(self, parent: _Kept) -> Constraint | None:
        """A constraint from one of the parent's pairs, with a random sign."""
        rng = self._rng
        steerable = [p for p in parent.novel
                     if p[1][0] not in _UNSTEERABLE
                     and (p[0] == INIT or p[0][0] not in _UNSTEERABLE)]
        if not steerable:
            return None
        write, read, location = steerable[int(rng.random() * len(steerable))]
        return Constraint(write, read, location, rng.random() < 0.5)
