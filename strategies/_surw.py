"""``surw``: selectively uniform random walk.

After Zhao, Wolff, Mathur and Roychoudhury, "Selectively Uniform Concurrency Testing"
(ASPLOS 2025). A uniform random walk picks each ready task with the same probability,
which does *not* sample interleavings uniformly: a task with few steps left finishes early
in most runs, and orders in which it runs late are rare. Picking each task with probability
proportional to the number of events it has left makes every interleaving of the tasks'
events equally likely (for programs that do not block). The selective variant applies that
weighting only to the "interesting" events, so that interleavings of those are sampled
uniformly.

How this implementation approximates it (the runtime cannot know the future):

- Remaining events are *estimated* from earlier runs: for each task id, the number of
  interesting steps it took in the longest earlier run, minus the steps it has taken in
  this run. The first run has no estimate and is a plain random walk.
- An interesting event is a step on a known shared object: a candidate whose pending
  operation has a resource (a lock, queue, event, future...). When no earlier step of the
  scenario had a resource (for example, a program synchronising only through bare
  ``sleep(0)`` yields), every step counts as interesting, and the walk weights by all
  remaining steps.
- Each candidate's weight is ``1 + remaining``: a task whose estimate is used up still
  runs, with the weight of a uniform random walk. Candidates without a task (a plain
  callback, a timer) have no estimate and weigh 1.

Guarantee: reproducible from ``seed``; every schedule has a non-zero probability, and for
non-blocking tasks whose step counts do not vary between runs, interleavings of interesting
events are sampled close to uniformly. Use it when a task with few operations must land
between the many operations of others (a reader that must see a half-finished writer).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import describe, task_key


class SURW(Strategy):
    """Weighted random walk: weight of a task = 1 + its estimated remaining events."""

    name = "surw"
    splitting = "seeded"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.runs = 0
        self._estimate: dict[str, int] = {}  # task -> interesting steps (most seen)
        self._all: dict[str, int] = {}  # task -> steps (most seen)
        self._selective = False  # an earlier run had an interesting step
        self._done: dict[str, int] = {}
        self._done_all: dict[str, int] = {}
        self._interesting_seen = False

    def start_run(self) -> bool:
        self.runs += 1
        self._done = {}
        self._done_all = {}
        self._interesting_seen = False
        return True

    def choose(self, count: int, view: PointView) -> int:
        candidates = describe(count, view)
        keys = [task_key(c) if c.task is not None else None for c in candidates]
        estimate, done = ((self._estimate, self._done) if self._selective
                          else (self._all, self._done_all))
        weights = [1 + max(0, estimate.get(k, 0) - done.get(k, 0)) if k is not None else 1
                   for k in keys]
        pick = self._rng.random() * sum(weights)
        chosen = count - 1
        for i, weight in enumerate(weights):
            pick -= weight
            if pick < 0:
                chosen = i
                break
        key = keys[chosen]
        if key is not None:
            self._done_all[key] = self._done_all.get(key, 0) + 1
            if candidates[chosen].resource is not None:
                self._done[key] = self._done.get(key, 0) + 1
                self._interesting_seen = True
        return chosen

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        for store, seen in ((self._estimate, self._done), (self._all, self._done_all)):
            for key, n in seen.items():
                if n > store.get(key, 0):
                    store[key] = n
        self._selective = self._selective or self._interesting_seen

    def coverage(self) -> str:
        return f"{self.runs} SURW schedules (seed {self.seed}); a sample, not exhaustive"

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed}

    def statistics(self) -> dict[str, Statistic]:
        return {"tasks_estimated": len(self._all), "selective": self._selective}
