"""``coverage``: coverage-guided schedule fuzzing.

In the spirit of greybox fuzzing for concurrency (Wolff, Shi, Duck, Mathur and
Roychoudhury, "Greybox Fuzzing for Concurrency Testing", ASPLOS 2024, which guides the
search by reads-from pairs): keep the schedules that showed the scheduler something new,
and mutate them.

**Signal: context-switch pairs.** An ordered pair (the site the previous step resumed
from, the site the next step resumes from) for two consecutive scheduling-point steps of
*different* tasks, where a site is the task's kind (its id without spawn indices), its
source location and the operation it waits on. A concurrency bug shows when a step of one
task runs right after a particular step of another, on shared state; the runtime does not
see memory accesses, so which code point handed over to which other code point is the
closest observable stand-in for a reads-from pair. Sites use task kinds, not task ids, so
the signal is the same for symmetric tasks and does not grow with their number.

**Runs.** A run either walks afresh (with probability ``fresh``, and always while nothing
is kept) or mutates a kept schedule, the least-mutated one first and the newest among
equals (pairs found late are the rare ones):

- *return and explore* (a fraction ``returns`` of the mutations): replay the kept
  schedule up to one of the points where it found a new pair, then walk on from there —
  the state right after an unusual hand-over is where the next one is likeliest;
- *change* one decision (keeping the rest), or *insert* one decision (shifting the rest),
  at a uniformly chosen point; past the kept decisions the run continues in the stock
  order (``stock_tails`` of the time: exactly one deviation more than the kept schedule)
  or walks.

**Walks.** Each walking run takes one of the two walks of the ``symmetric`` strategy
(:mod:`explorer.strategies._symmetric`): uniform over the distinct sites ready, or over the task
kinds ready (then the eldest task of the kind). Both sample the coverage alphabet evenly
rather than the task population.

Guarantee: reproducible from ``seed``; every schedule keeps a non-zero probability (the
sites walk can take any candidate); not exhaustive. Use it for bugs that need a chain of
unusual hand-overs, and for programs with many identical tasks.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from explorer._runtime import Candidate, PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import Site, SiteIds, describe, site, task_key
from explorer.strategies._symmetric import MODES, walk_step

Pair = tuple[Site, Site]


@dataclass(slots=True)
class _Kept:
    decisions: list[int]
    counts: list[int]
    novel: list[int]  # scheduling points where this schedule found a new pair
    picks: int = 0


@dataclass(slots=True)
class _Plan:
    decisions: list[int] = field(default_factory=list)
    stock_tail: bool = False
    walk: str = "sites"


class CoverageGuided(Strategy):
    """Keep schedules that reach new context-switch pairs; mutate the least-used ones."""

    name = "coverage"
    splitting = "seeded"

    def __init__(self, seed: int | None = None, *, fresh: float = 0.3,
                 stock_tails: float = 0.3, walks: Sequence[str] = MODES,
                 returns: float = 0.5) -> None:
        if not walks or any(w not in MODES for w in walks):
            raise ValueError(f"walks must be a non-empty selection of {MODES}, got {walks!r}")
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.fresh = fresh
        self.stock_tails = stock_tails
        self.returns = returns
        self.walks = tuple(walks)
        self.runs = 0
        self.mutants = 0
        self.pairs: set[Pair] = set()
        self.kept: list[_Kept] = []
        self._plan = _Plan()
        self._counts: list[int] = []
        self._novel: list[int] = []
        self._prev_task: str | None = None
        self._prev_site: Site | None = None
        self._sites = SiteIds()  # the walks' memo of sites, across runs

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        self.runs += 1
        self._counts = []
        self._novel = []
        self._prev_task = None
        self._prev_site = None
        rng = self._rng
        walk = self.walks[int(rng.random() * len(self.walks))]
        if not self.kept or rng.random() < self.fresh:
            self._plan = _Plan(walk=walk)
            return True
        self.mutants += 1
        # The least-mutated kept schedule, the newest among equals: pairs found late are
        # the deep ones, and they get their turns soon after they are found.
        parent = min(reversed(self.kept), key=lambda k: k.picks)
        parent.picks += 1
        self._plan = self._mutate(parent, walk)
        return True

    def choose(self, count: int, view: PointView) -> int:
        point = len(self._counts)
        self._counts.append(count)
        plan = self._plan
        if point < len(plan.decisions):
            choice = plan.decisions[point] % count
            chosen = view.candidate(choice)
        elif plan.stock_tail:
            choice = 0
            chosen = view.candidate(0)
        else:
            candidates = describe(count, view)
            choice = walk_step(candidates, plan.walk, self._rng, self._sites)
            chosen = candidates[choice]
        self._observe(chosen, point)
        return choice

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self._novel:
            self.kept.append(_Kept(list(decisions), list(self._counts), self._novel))

    def coverage(self) -> str:
        return (f"{self.runs} coverage-guided schedules (seed {self.seed}): "
                f"{len(self.pairs)} context-switch pairs, {len(self.kept)} schedules kept; "
                "a sample, not exhaustive")

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed}

    def statistics(self) -> dict[str, Statistic]:
        return {"pairs": len(self.pairs), "kept": len(self.kept), "mutants": self.mutants}

    # ------------------------------------------------------------------ helpers

    def _observe(self, chosen: Candidate, point: int) -> None:
        task = task_key(chosen)
        where = site(chosen)
        if self._prev_task is not None and task != self._prev_task:
            assert self._prev_site is not None
            pair = (self._prev_site, where)
            if pair not in self.pairs:
                self.pairs.add(pair)
                self._novel.append(point)
        self._prev_task = task
        self._prev_site = where

    def _mutate(self, parent: _Kept, walk: str) -> _Plan:
        decisions, counts = parent.decisions, parent.counts
        rng = self._rng
        if rng.random() < self.returns:  # return to a point of novelty, explore from there
            point = parent.novel[int(rng.random() * len(parent.novel))]
            return _Plan(decisions[:point + 1], walk=walk)
        at = int(rng.random() * len(decisions))
        options = counts[at]
        other = (decisions[at] + 1 + int(rng.random() * (options - 1))) % options
        if rng.random() < 0.5:  # change one decision, keep the rest
            mutated = [*decisions[:at], other, *decisions[at + 1:]]
        else:  # insert one decision, shift the rest
            mutated = [*decisions[:at], other, *decisions[at:]]
        return _Plan(mutated, stock_tail=rng.random() < self.stock_tails, walk=walk)
