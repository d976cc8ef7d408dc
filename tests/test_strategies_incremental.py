"""The sampling walks carry what they work out from one scheduling point to the next.

:class:`~explorer.strategies._features.PointValues` keeps a value per candidate across
points (only the work queued since the last point is worked out); the symmetric walk
groups candidates by :class:`~explorer.strategies._features.SiteNumbers`; PCT finds the
most urgent task by looking at the new candidates only, while no priority changed. These
tests drive each strategy and a plain reference (the walks as their docstrings state
them) through the same simulated ready queues, point by point, and require the same
choice at every point: in FIFO order, with new tasks, finished ones, plain callbacks,
equal descriptions that are other objects, and points the strategy did not see.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence

import explorer
from explorer._locations import Location
from explorer._runtime import Candidate, LibraryCall
from explorer.strategies import PCT, SymmetricWalk
from explorer.strategies._features import (
    PointValues,
    SiteNumbers,
    site,
    spawn_order,
    task_key,
    task_keys,
    task_kind,
)
from explorer.strategies._symmetric import _SHIFT, RankNumbers, rank, site_step

_DESK = Location("bank.py", 12, "teller")
_VAULT = Location("bank.py", 30, "vault")
_PLACES = (_DESK, _VAULT, None)


class _Queue:
    """A point view over a simulated FIFO ready queue of a service's tasks.

    After each choice the chosen step leaves the queue; its task may queue its next step
    at the end (a new description, sometimes at the same place as before), new tasks
    may start, a plain callback may be queued, and now and then the queue is shuffled
    or a description is replaced by an equal one (a runtime may describe a step anew)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.spawned = 0
        self.ready: list[Candidate] = []
        for _ in range(rng.randint(2, 6)):
            self._spawn()

    def _spawn(self) -> None:
        self.spawned += 1
        kind = self.rng.choice(("teller", "auditor"))
        self.ready.append(Candidate(f"main/{kind}#{self.spawned}", "start", _DESK, None))

    def step(self, index: int) -> None:
        rng = self.rng
        ran = self.ready.pop(index)
        if ran.task is not None and rng.random() < 0.85:
            place = ran.location if rng.random() < 0.5 else rng.choice(_PLACES)
            op = ran.operation if rng.random() < 0.5 else rng.choice(("sleep", "Lock"))
            self.ready.append(Candidate(ran.task, "step", place, op))
        if rng.random() < 0.15:
            self._spawn()
        if rng.random() < 0.1:
            self.ready.append(Candidate(None, "callback", None,
                                        rng.choice(("_done", "_wakeup"))))
        if rng.random() < 0.03:
            rng.shuffle(self.ready)
        if self.ready and rng.random() < 0.05:
            at = rng.randrange(len(self.ready))
            c = self.ready[at]
            self.ready[at] = Candidate(c.task, c.kind, c.location, c.operation, c.resource)
        while len(self.ready) < 2:
            self._spawn()

    # PointView
    def candidates(self, count: int) -> list[Candidate]:
        return self.ready[:count]

    def candidate(self, index: int) -> Candidate:
        return self.ready[index]

    def processes(self, count: int) -> list[str]:
        return [c.task if c.task is not None else "loop" for c in self.ready[:count]]

    def process(self, index: int) -> str:
        return self.processes(index + 1)[index]

    def recorded_steps(self) -> None:
        return None

    def current(self) -> str | None:
        return None

    def current_call(self) -> LibraryCall | None:
        return None


Chooser = Callable[[int, _Queue], int]


def _lockstep(choosers: Sequence[Chooser], seed: int, points: int,
              unseen: float = 0.0) -> int:
    """Drive one queue with the choosers, requiring equal choices; ``unseen`` of the
    points are made by nobody (a wrapper deciding, a fault point). The points decided."""
    rng = random.Random(seed)
    queue = _Queue(rng)
    decided = 0
    for _ in range(points):
        count = len(queue.ready)
        if rng.random() < unseen:
            queue.step(rng.randrange(count))
            continue
        chosen = {choose(count, queue) for choose in choosers}
        assert len(chosen) == 1, f"choices differ at point {decided}: {chosen}"
        decided += 1
        queue.step(chosen.pop())
    return decided


def test_point_values_are_the_work_on_every_candidate_and_work_only_new_ones() -> None:
    worked: list[int] = []

    def work(candidates: Sequence[Candidate]) -> list[str]:
        worked.append(len(candidates))
        return task_keys(candidates)

    for seed in range(40):
        values = PointValues(work, tally=True)
        rng = random.Random(seed)
        queue = _Queue(rng)
        carried = 0
        for _ in range(60):
            assert values.of(queue.ready) == task_keys(queue.ready)
            assert values.tally == Counter(task_keys(queue.ready))
            carried += values.carried
            if rng.random() < 0.1:  # not told: everything is worked out again
                queue.step(rng.randrange(len(queue.ready)))
                continue
            index = rng.randrange(len(queue.ready))
            values.chose(index)
            queue.step(index)
        assert carried > 0
    # Most points work out only what is new: far fewer candidates than were read.
    assert sum(worked) < 0.5 * 40 * 60 * 4


def test_site_numbers_are_equal_exactly_for_equal_sites() -> None:
    numbers = SiteNumbers()
    rng = random.Random(11)
    pool = [Candidate(task, kind, place, op)
            for task in ("main/teller#1", "main/teller#2", "main/auditor#1", None)
            for kind in ("step", "callback")
            for place in (*_PLACES, Location("bank.py", 12, "teller"))
            for op in ("sleep", "Lock", None)]
    for _ in range(50):
        sample = rng.sample(pool, 12)
        got = numbers.of(sample)
        for a, x in zip(sample, got, strict=True):
            for b, y in zip(sample, got, strict=True):
                assert (x == y) == (site(a) == site(b)), (a, b)


def _reference_walk(candidates: Sequence[Candidate], mode: str, rng: random.Random) -> int:
    """The symmetric walks as their docstring states them, written plainly."""
    if mode == "sites":
        groups: dict[object, list[int]] = {}
        for i, c in enumerate(candidates):
            groups.setdefault(site(c), []).append(i)
        drawn = list(groups.values())[int(rng.random() * len(groups))]
        return drawn[int(rng.random() * len(drawn))]
    keys = [task_key(c) for c in candidates]
    eldest: dict[str, int] = {}
    for i, key in enumerate(keys):
        kind = task_kind(key)
        if kind not in eldest or spawn_order(key) < spawn_order(keys[eldest[kind]]):
            eldest[kind] = i
    firsts = list(eldest.values())
    return firsts[int(rng.random() * len(firsts))]


def test_both_symmetric_walks_choose_as_the_plain_reference_point_after_point() -> None:
    for mode in ("sites", "kinds"):
        for seed in range(30):
            walk = SymmetricWalk(seed, modes=(mode,))
            walk.start_run()
            reference = random.Random(seed)
            reference.random()  # the walk of the run, drawn by start_run

            def plain(count: int, view: _Queue, rng: random.Random = reference,
                      mode: str = mode) -> int:
                return _reference_walk(view.candidates(count), mode, rng)

            assert _lockstep([walk.choose, plain], seed, 150) == 150


class _PlainPCT:
    """PCT's choice as its docstring states it, recomputed over every candidate."""

    def __init__(self, strategy: PCT) -> None:
        self.depth = strategy.depth
        self.group = strategy.group
        self.spin_limit = strategy.spin_limit
        self.rng = random.Random(strategy.seed)
        self.horizon = 0

    def start_run(self) -> None:
        self.priority: dict[str, float] = {}
        self.point = 0
        self.floor = 0.0
        self.streak_key: str | None = None
        self.streak: dict[object, int] = {}
        changes = min(self.depth - 1, self.horizon)
        points = self.rng.sample(range(self.horizon), changes) if changes else []
        self.changes = {p: i for i, p in enumerate(sorted(points), start=1)}

    def end_run(self) -> None:
        self.horizon = max(self.horizon, self.point)

    def choose(self, count: int, view: _Queue) -> int:
        candidates = view.candidates(count)
        keys = [task_key(c) for c in candidates]
        if self.group == "kind":
            keys = [task_kind(k) for k in keys]
        for key in keys:
            if key not in self.priority:
                self.priority[key] = self.depth + self.rng.random()

        def best() -> int:
            values = [self.priority[k] for k in keys]
            return values.index(max(values))

        chosen = best()
        change = self.changes.get(self.point)
        if change is not None:
            self.priority[keys[chosen]] = float(self.depth - change)
            chosen = best()
        self.point += 1
        c = candidates[chosen]
        if c.task is None:
            return chosen
        if keys[chosen] != self.streak_key:
            self.streak_key = keys[chosen]
            self.streak = {}
        where = (task_key(c), c.location, c.operation)
        self.streak[where] = self.streak.get(where, 0) + 1
        if self.streak[where] >= self.spin_limit:
            self.floor -= 1.0
            self.priority[keys[chosen]] = self.floor
            self.streak_key = None
        return chosen


def test_pct_chooses_as_the_plain_reference_over_many_runs() -> None:
    for group in ("task", "kind"):
        for seed in range(12):
            strategy = PCT(3, seed, group=group, spin_limit=3)
            plain = _PlainPCT(strategy)
            for run in range(8):
                strategy.start_run()
                plain.start_run()
                decided = _lockstep([strategy.choose, plain.choose], seed * 100 + run,
                                    120, unseen=0.05 if run % 2 else 0.0)
                strategy.end_run([0] * decided, False)
                plain.end_run()
            assert strategy.horizon == plain.horizon > 0


def test_pct_with_a_deep_bound_and_fast_demotions_chooses_as_the_reference() -> None:
    for seed in range(12):
        strategy = PCT(6, seed, spin_limit=2)
        plain = _PlainPCT(strategy)
        for run in range(6):
            strategy.start_run()
            plain.start_run()
            decided = _lockstep([strategy.choose, plain.choose], seed * 7 + run, 90)
            strategy.end_run([0] * decided, False)
            plain.end_run()


def test_the_carried_walks_find_a_lost_update_through_anyio_reproducibly() -> None:
    # anyio's task group over asyncio: each member's turn goes through anyio's wrappers.
    import anyio

    async def scenario() -> None:
        ledger = {"balance": 0}

        async def deposit(amount: int) -> None:
            balance = ledger["balance"]
            await anyio.sleep(0)
            ledger["balance"] = balance + amount

        async with anyio.create_task_group() as group:
            for amount in (10, 20, 30):
                group.start_soon(deposit, amount)
        assert ledger["balance"] == 60, f"lost update: balance {ledger['balance']}"

    for make in (lambda s: SymmetricWalk(seed=s), lambda s: PCT(seed=s)):
        found = []
        for _ in range(2):
            result = explorer.explore(scenario, strategy=make(4), max_schedules=60,
                                      raise_on_failure=False, shrink=False)
            assert result.failure is not None, "the lost update was not found"
            found.append((result.failure.found_after, str(result.failure.schedule)))
        assert found[0] == found[1]


def test_the_sites_walk_with_a_tally_chooses_as_without_it() -> None:
    shapes = random.Random(5)
    for _ in range(400):
        # From one crowded site (many identical workers) to many sparse ones.
        crowd = shapes.random()  # the share of the candidates at site 0
        ids = [0 if shapes.random() < crowd else shapes.randrange(shapes.choice((1, 2, 3, 12)))
               for _ in range(shapes.randint(2, 80))]
        seed = shapes.randrange(1000)
        assert site_step(ids, random.Random(seed), dict(Counter(ids))) == \
            site_step(ids, random.Random(seed))


class _Ties(random.Random):
    """Draws from a handful of values, so that task priorities tie."""

    def random(self) -> float:
        return super().random() // 0.25 * 0.25


def test_pct_with_tied_priorities_keeps_the_lowest_index_first() -> None:
    for seed in range(12):
        strategy = PCT(3, seed)
        plain = _PlainPCT(strategy)
        strategy._rng, plain.rng = _Ties(seed), _Ties(seed)
        for run in range(5):
            strategy.start_run()
            plain.start_run()
            decided = _lockstep([strategy.choose, plain.choose], seed * 13 + run, 100)
            strategy.end_run([0] * decided, False)
            plain.end_run()


def test_rank_numbers_order_the_tasks_of_a_kind_as_their_spawn_indices() -> None:
    shapes = random.Random(9)
    ids = ["main/clerk#0", "main/clerk#1", "main/clerk#01", "main/clerk#10", "main/clerk",
           "main/clerk#3/help#0", "main/clerk#3/help", "main/clerk/help#2"]
    ids += [f"main/clerk#{shapes.randrange(50)}/help#{shapes.randrange(50)}"
            for _ in range(40)]
    described = [Candidate(task, "step", _DESK, "sleep") for task in ids]
    numbered = RankNumbers().of(described)
    for a, x in zip(described, numbered, strict=True):
        for b, y in zip(described, numbered, strict=True):
            assert (x >> _SHIFT == y >> _SHIFT) == (rank(a)[0] == rank(b)[0]), (a, b)
            if rank(a)[0] == rank(b)[0]:  # only ranks of one kind are ever compared
                assert (x < y) == (rank(a) < rank(b)), (a, b)
                assert (x == y) == (rank(a) == rank(b)), (a, b)


class _Fixed:
    """A point view over a given list of candidates."""

    def __init__(self, candidates: list[Candidate]) -> None:
        self.ready = candidates

    def candidates(self, count: int) -> list[Candidate]:
        return self.ready[:count]


def test_the_kinds_walk_takes_ids_too_deep_for_numbers_as_the_reference() -> None:
    deep = "main" + "".join(f"/level#{i}" for i in range(1, 10))  # nine indices
    rng = random.Random(2)
    for seed in range(20):
        walk = SymmetricWalk(seed, modes=("kinds",))
        walk.start_run()
        reference = random.Random(seed)
        reference.random()
        for point in range(30):
            ready = [Candidate(f"main/clerk#{rng.randrange(1, 9)}", "step", _DESK, "sleep")
                     for _ in range(rng.randint(2, 6))]
            if point >= 10:  # from here on an id nested nine deep takes part
                ready.insert(rng.randrange(len(ready)), Candidate(deep, "step", _VAULT, "sleep"))
            expected = _reference_walk(ready, "kinds", reference)
            assert walk.choose(len(ready), _Fixed(ready)) == expected  # type: ignore[arg-type]
        assert walk._ranks is None  # it went over to the tuples, and chose alike
