"""``pos``: partial order sampling.

After Yuan, Yang and Gu, "Partial Order Aware Concurrency Sampling" (CAV 2018). Every
pending event (a ready task's next step) carries a random priority, and the event with the
highest priority runs. After it runs, the task that ran gets a fresh priority for its next
event, and so does every ready task whose pending event *conflicts* with the one that ran;
the others keep theirs. Events that do not conflict therefore keep their relative order
from one step to the next, which spreads the runs over distinct partial orders instead of
over interleavings of the same partial order, as a random walk does.

Conflict is judged from the candidate descriptions: two events conflict when they wait on
the same resource (the same lock, queue, event, future...), or when either resource is
unknown. Treating unknown as conflicting keeps the sampling sound (no partial order is
made unreachable) at the price of precision: in a program whose steps are all bare
``await asyncio.sleep(0)`` yields, every event conflicts and POS samples like a random
walk. A task seen for the first time, or ready again after it was blocked, has a new
event and draws a new priority.

Guarantee: reproducible from ``seed``; every schedule has a non-zero probability. Use it
for programs that synchronise through asyncio objects (locks, queues, events), where it
avoids re-sampling equivalent orders of independent steps.
"""

from __future__ import annotations

import random

from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import describe, first_max, task_keys


class POS(Strategy):
    """Random priorities per event, reassigned for the events that race with the one run."""

    name = "pos"
    splitting = "seeded"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.runs = 0
        self.reassigned = 0
        self._priority: dict[str, float] = {}

    def start_run(self) -> bool:
        self.runs += 1
        self._priority = {}
        return True

    def choose(self, count: int, view: PointView) -> int:
        candidates = describe(count, view)
        keys = task_keys(candidates)
        old = self._priority
        draw = self._rng.random
        # Events still pending from the previous point keep their priority; new ones draw.
        priority = {k: (old[k] if k in old else draw()) for k in keys}
        best = first_max(list(map(priority.__getitem__, keys)))
        ran = candidates[best]
        resource = ran.resource
        del priority[keys[best]]  # its next event is a new one
        for key, other in zip(keys, candidates, strict=True):
            if key in priority and (resource is None or other.resource is None
                                    or other.resource == resource):
                priority[key] = draw()
                self.reassigned += 1
        self._priority = priority
        return best

    def coverage(self) -> str:
        return f"{self.runs} POS schedules (seed {self.seed}); a sample, not exhaustive"

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed}

    def statistics(self) -> dict[str, Statistic]:
        return {"reassigned": self.reassigned}
