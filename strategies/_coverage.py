"""``coverage``: coverage-guided schedule fuzzing.

In the spirit of greybox fuzzing for concurrency (Wolff, Shi, Duck, Mathur and
Roychoudhury, "Greybox Fuzzing for Concurrency Testing", ASPLOS 2024, which guides the
search by reads-from pairs): keep the schedules that showed the scheduler something new,
and mutate them.

The signal is *context-switch coverage*: an ordered pair (the site the previous step
resumed from, the site the next step resumes from) for two consecutive scheduling-point
steps of *different* tasks, where a site is the task's kind, its source location and the
operation it waits on. A concurrency bug shows when a step of one task runs right after
(or right before) a particular step of another, on shared state; the runtime does not see
memory accesses, so which code point handed over to which other code point is the closest
observable stand-in for a reads-from pair. Sites use task kinds, not task ids, so the
signal is the same for symmetric tasks and does not grow with their number.

Each run either walks afresh or mutates a kept schedule (a list of decisions): change one
decision, insert one decision (shifting the rest), or keep a prefix and deviate once at its
end. The least-mutated kept schedule is taken first. Past the end of the mutated decisions
the run continues with the stock order (a mutation then adds exactly one deviation to a
kept schedule) or with a *site-uniform* walk: choose uniformly among the distinct sites
ready at the point, then the first ready task at that site. A site-uniform walk samples the
coverage alphabet evenly — with twenty identical workers and one checker it picks the
checker as often as "some worker", where a uniform walk over tasks picks it once in
twenty-one steps.

Guarantee: reproducible from ``seed``; not exhaustive. Use it for bugs that need a chain
of unusual hand-overs, each of which is new coverage on the way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from explorer._runtime import Candidate
from strategies._base import Strategy
from strategies._features import Site, describe, site, spawn_order, task_key, task_kind

Pair = tuple[Site, Site]


@dataclass(slots=True)
class _Kept:
    decisions: list[int]
    counts: list[int]
    picks: int = 0


class CoverageGuided(Strategy):
    """Keep schedules that reach new context-switch pairs; mutate the least-used ones."""

    name = "coverage"

    def __init__(self, seed: int | None = None, *, fresh: float = 0.25,
                 stock_tails: float = 0.3, walks: Sequence[str] = ("sites", "kinds")) -> None:
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.fresh = fresh
        self.stock_tails = stock_tails
        self.walks = tuple(walks)
        self._walk = self.walks[0]
        self.runs = 0
        self.mutants = 0
        self.pairs: set[Pair] = set()
        self.kept: list[_Kept] = []
        self._plan: list[int] = []
        self._stock_tail = False
        self._counts: list[int] = []
        self._prev_task: str | None = None
        self._prev_site: Site | None = None
        self._new = False

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        self.runs += 1
        self._counts = []
        self._prev_task = None
        self._prev_site = None
        self._new = False
        rng = self._rng
        self._walk = self.walks[int(rng.random() * len(self.walks))]
        if not self.kept or rng.random() < self.fresh:
            self._plan = []
            self._stock_tail = False
            return True
        self.mutants += 1
        least = min(k.picks for k in self.kept)
        parent = rng.choice([k for k in self.kept if k.picks == least])
        parent.picks += 1
        self._plan = self._mutate(parent)
        self._stock_tail = rng.random() < self.stock_tails
        return True

    def choose(self, count: int, view: Any) -> int:
        point = len(self._counts)
        self._counts.append(count)
        if point < len(self._plan):
            choice = self._plan[point] % count
            chosen = view.candidate(choice)
        elif self._stock_tail:
            choice = 0
            chosen = view.candidate(0)
        else:
            choice, chosen = self._walk_step(describe(count, view))
        self._observe(chosen)
        return choice

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self._new:
            self.kept.append(_Kept(list(decisions), list(self._counts)))

    def coverage(self) -> str:
        return (f"{self.runs} coverage-guided schedules (seed {self.seed}): "
                f"{len(self.pairs)} context-switch pairs, {len(self.kept)} schedules kept; "
                "a sample, not exhaustive")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed}

    def statistics(self) -> dict[str, Any]:
        return {"pairs": len(self.pairs), "kept": len(self.kept), "mutants": self.mutants}

    # ------------------------------------------------------------------ helpers

    def _walk_step(self, candidates: list[Candidate]) -> tuple[int, Candidate]:
        walk = self._walk
        if walk == "uniform":
            index = int(self._rng.random() * len(candidates))
            return index, candidates[index]
        first: dict[Any, int] = {}
        if walk == "sites":
            for i, candidate in enumerate(candidates):
                first.setdefault(site(candidate), i)
        else:  # "kinds": one kind uniformly, then its eldest ready task
            eldest: dict[str, tuple[tuple[int, ...], int]] = {}
            for i, candidate in enumerate(candidates):
                key = task_key(candidate)
                kind = task_kind(key)
                order = spawn_order(key)
                if kind not in eldest or order < eldest[kind][0]:
                    eldest[kind] = (order, i)
            first = {kind: i for kind, (_, i) in eldest.items()}
        choices = list(first.values())
        index = choices[int(self._rng.random() * len(choices))]
        return index, candidates[index]

    def _observe(self, chosen: Candidate) -> None:
        task = task_key(chosen)
        where = site(chosen)
        if self._prev_task is not None and task != self._prev_task:
            assert self._prev_site is not None
            pair = (self._prev_site, where)
            if pair not in self.pairs:
                self.pairs.add(pair)
                self._new = True
        self._prev_task = task
        self._prev_site = where

    def _mutate(self, parent: _Kept) -> list[int]:
        decisions, counts = parent.decisions, parent.counts
        if not decisions:
            return []
        rng = self._rng
        at = int(rng.random() * len(decisions))
        options = counts[at]
        other = (decisions[at] + 1 + int(rng.random() * (options - 1))) % options
        how = rng.random()
        if how < 1 / 3:  # change one decision, keep the rest
            return [*decisions[:at], other, *decisions[at + 1:]]
        if how < 2 / 3:  # insert one decision, shift the rest
            return [*decisions[:at], other, *decisions[at:]]
        return [*decisions[:at], other]  # deviate once at the end of a prefix
