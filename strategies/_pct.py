"""``pct``: probabilistic concurrency testing with priority change points.

After Burckhardt, Kothari, Musuvathi and Nagarakatte, "A Randomized Scheduler with
Probabilistic Guarantees of Finding Bugs" (ASPLOS 2010). Each run gives every task a random
priority (distinct, all above ``depth``) and always runs the ready task with the highest
priority. At ``depth - 1`` change points, drawn uniformly among the scheduling points of
the run, the task about to run drops to a low priority (``depth - i`` at the i-th change
point), so another task takes over there.

Guarantee (the paper's, for the model it assumes): a bug of depth ``d <= depth`` — one
that needs ``d`` ordering constraints between steps — is found by each run with
probability at least ``1 / (n * k ** (d - 1))``, for ``n`` tasks and ``k`` scheduling
points. Here ``k`` (the horizon) is measured: it is the largest number of scheduling points
seen in an earlier run (the first run has no change points; it measures). Only scheduling
points count, so steps with a single candidate cost nothing.

Differences from the paper, all documented:

- Tasks appear as the run goes; each new task draws its priority when first seen. A plain
  callback (no task) is keyed by its operation, a timer firing by ``timer``.
- A task that keeps running without visible progress (it is chosen again at the same
  location with the same operation ``spin_limit`` times within one uninterrupted streak,
  typically a ``while not ready: await asyncio.sleep(0)`` poll) is demoted below every
  other task. Without that, a polling task with the highest priority would starve the
  task it waits for until the runtime forces it (fairness), wasting the run. Demotions are extra
  priority changes, so runs with polling loops deviate more than ``depth - 1`` times.
- ``group="kind"`` keys priorities by the task's kind (its id without spawn indices:
  every ``main/worker#i`` is ``main/worker``) instead of by task. Tasks of one kind then
  share a priority and run in the stock (FIFO) order among themselves, which is PCT over
  the program with its symmetric tasks folded together: with many identical tasks, ``n``
  in the bound becomes the number of kinds. It finds bugs that need "one kind of task to
  overtake all the others at one moment" (SCTBench's reorder_N, twostage_N) at a rate that
  does not fall with the number of identical tasks; it cannot reorder two tasks of one kind
  against the stock order, which ``group="task"`` does.

Use it for bugs that need a few tasks to be starved or delayed for a long stretch (ordering
bugs, atomicity violations deep in a run): where a random walk almost never makes the same
choice many times in a row, PCT does so by construction. Reproducible from ``seed``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from explorer._runtime import Candidate, PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import (
    PointValues,
    describe,
    first_max,
    task_keys,
    task_kind,
)

GROUPS = ("task", "kind")


def kind_keys(candidates: Sequence[Candidate]) -> list[str]:
    """The key of every candidate under ``group="kind"``: its task's kind."""
    return list(map(task_kind, task_keys(candidates)))


class PCT(Strategy):
    """Random task priorities, ``depth - 1`` change points in the measured horizon."""

    name = "pct"
    splitting = "seeded"

    def __init__(self, depth: int = 3, seed: int | None = None, *, group: str = "task",
                 spin_limit: int = 3) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
        if spin_limit < 2:
            raise ValueError(f"spin_limit must be >= 2, got {spin_limit}")
        self.depth = depth
        self.group = group
        self.spin_limit = spin_limit
        # Without a seed, take one from the global random module (as RandomWalk does), so
        # Hypothesis, which seeds it, controls unseeded runs too.
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.horizon = 0  # most scheduling points seen in one run
        self.runs = 0
        self.demotions = 0
        self._priority: dict[str, float] = {}
        self._changes: dict[int, int] = {}  # scheduling point -> change point number
        self._point = 0
        self._floor = 0.0
        self._streak_key: str | None = None
        self._streak: dict[tuple[object, ...], int] = {}  # where -> steps there
        # Each candidate's key, carried from point to point (most candidates of a point
        # were at the last one).
        self._keys = PointValues(task_keys if group == "task" else kind_keys)
        # The key chosen at the last point, while no priority changed since (see
        # _best_of_new), and whether the priorities drawn in this run are all distinct.
        self._top: str | None = None
        self._drawn: set[float] = set()
        self._distinct = True

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        self.runs += 1
        self._priority = {}
        self._point = 0
        self._floor = 0.0
        self._streak_key = None
        self._streak = {}
        self._top = None
        self._drawn = set()
        self._distinct = True
        changes = min(self.depth - 1, self.horizon)
        points = self._rng.sample(range(self.horizon), changes) if changes else []
        # The i-th change point (in time order) lowers the running task to depth - i.
        self._changes = {p: i for i, p in enumerate(sorted(points), start=1)}
        return True

    def choose(self, count: int, view: PointView) -> int:
        candidates = describe(count, view)
        known = self._keys
        keys = known.of(candidates)
        priority = self._priority
        best = self._best_of_new(keys, known.carried)
        if best < 0:
            try:  # in C; a new task (or kind) is rare
                values = list(map(priority.__getitem__, keys))
            except KeyError:
                self._draw(keys)
                values = list(map(priority.__getitem__, keys))
            best = first_max(values)
        change = self._changes.get(self._point)
        if change is not None:
            priority[keys[best]] = float(self.depth - change)
            best = first_max(list(map(priority.__getitem__, keys)))
        known.chose(best)
        self._point += 1
        key = keys[best]
        self._top = key if self._distinct else None
        chosen = candidates[best]
        task = chosen.task
        if task is None:  # a plain callback or a timer cannot poll
            return best
        if key != self._streak_key:
            self._streak_key = key
            self._streak = {}
        # Where the task stands (task_key(chosen), its location and operation), by the
        # location's fields: a Location hashes and compares in Python, its fields in C.
        at = chosen.location
        where = ((task, chosen.operation) if at is None else
                 (task, chosen.operation, at.filename, at.lineno, at.function))
        seen = self._streak.get(where, 0) + 1
        self._streak[where] = seen
        if seen >= self.spin_limit:
            # No visible progress: let everyone else go first from now on.
            self._floor -= 1.0
            priority[key] = self._floor
            self._top = None  # the most urgent of the others is not known
            self._streak_key = None
            self.demotions += 1
        return best

    def _draw(self, keys: list[str]) -> None:
        """Give the new tasks (kinds) among ``keys`` their priorities, in order; a key seen
        twice draws once."""
        priority = self._priority
        for key in keys:
            if key not in priority:
                value = priority[key] = self.depth + self._rng.random()
                if value in self._drawn:  # equal priorities: see _best_of_new
                    self._distinct = False
                self._drawn.add(value)

    def _best_of_new(self, keys: list[str], carried: int) -> int:
        """The first candidate of highest priority, found by looking only at the new
        candidates (after the ``carried`` ones), or -1 when that cannot tell.

        The carried candidates were all at the last point, where ``_top`` had the highest
        priority of all, and no priority changed since (else ``_top`` is None): none of
        them is above it. So a new candidate above it is the one; otherwise ``_top``,
        wherever it first appears, if it is still a candidate. Priorities are distinct
        (``_distinct``; random draws that tie turn this off), so no other key is equal."""
        top = self._top
        if top is None or not carried:
            return -1
        new = keys[carried:]
        if not new:
            return -1
        priority = self._priority
        try:
            values = list(map(priority.__getitem__, new))
        except KeyError:
            self._draw(new)
            if not self._distinct:
                return -1
            values = list(map(priority.__getitem__, new))
        highest = max(values)
        if highest > priority[top]:
            return carried + values.index(highest)
        if highest == priority[top]:  # top itself, ready again
            return keys.index(top)
        return -1  # top is no longer ready (or is among the carried, a rarer case)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self.horizon = max(self.horizon, self._point)

    def coverage(self) -> str:
        return (f"{self.runs} PCT schedules (depth {self.depth}, {self.group} priorities, "
                f"seed {self.seed}, horizon {self.horizon} scheduling points); a sample, "
                "not exhaustive")

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "depth": self.depth, "group": self.group,
                "seed": self.seed}

    def statistics(self) -> dict[str, Statistic]:
        return {"horizon": self.horizon, "demotions": self.demotions}
