"""``symmetric``: a random walk over code sites and task kinds instead of over tasks.

A uniform random walk gives every ready task the same chance. With twenty identical
writers and one reader, the reader then gets one step in twenty-one, and any bug that needs
the reader to take a few steps in a row while "some writer" is in the middle of something
gets rarer with every writer added — although the writers are interchangeable, and the
program has the same few interesting situations whatever their number.

This walk folds symmetric tasks together. Tasks of one *kind* run the same code from the
same parent kind (their ids differ only in spawn indices: ``main/writer#3`` and
``main/writer#7``); a *site* is a kind, a source location and a pending operation. Each
run uses one of two walks, chosen at random per run:

- ``sites``: choose uniformly among the distinct sites ready at the scheduling point, then
  uniformly among the tasks at that site. Every candidate keeps a non-zero probability.
- ``kinds``: choose uniformly among the task kinds ready, then the *eldest* ready task of
  that kind (lowest spawn indices). One task of each kind runs ahead of its siblings, so
  "the first writer" meets the reader as it would with one writer; the siblings follow
  when it blocks or ends. Two tasks of one kind are interleaved only where the eldest
  blocks, so this walk is blind to races between identical tasks; the ``sites`` walk (and
  a plain random walk) covers those.

Guarantee: reproducible from ``seed``. Not exhaustive. The chance per run of hitting a bug
that needs k particular steps of distinct kinds in a row is about (1/kinds)^k, whatever the
number of tasks of each kind; a uniform random walk's falls with the number of tasks. Use
it for scenarios with many identical handlers or workers (SCTBench's reorder_N and
twostage_N: flat in N, where a random walk degrades).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from explorer._runtime import Candidate, PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import SiteIds, describe, spawn_order, task_keys, task_kind

MODES = ("sites", "kinds")


def walk_step(candidates: Sequence[Candidate], mode: str, rng: random.Random,
              sites: SiteIds | None = None) -> int:
    """One step of a ``sites`` or ``kinds`` walk: the index of the chosen candidate.

    ``sites`` memoizes each description's site across points (pass the same one for a
    whole search; the choice is the same with or without it). Both walks draw the group
    first and look only inside it: the sites (kinds) in order of first appearance, then
    the members of the one drawn."""
    if mode == "sites":
        ids = (sites if sites is not None else SiteIds()).of(candidates)
        groups = list(dict.fromkeys(ids))  # the distinct sites, in order of appearance
        drawn = groups[int(rng.random() * len(groups))]
        group = [i for i, where in enumerate(ids) if where == drawn]
        return group[int(rng.random() * len(group))]
    keys = task_keys(candidates)
    kinds = list(map(task_kind, keys))
    distinct = list(dict.fromkeys(kinds))
    kind = distinct[int(rng.random() * len(distinct))]
    # The eldest of the kind: lowest spawn indices, the lowest index among equals (min
    # keeps the first of equal keys).
    return min([i for i, k in enumerate(kinds) if k == kind],
               key=lambda i: spawn_order(keys[i]))


class SymmetricWalk(Strategy):
    """Uniform over ready sites (or kinds), not over ready tasks."""

    name = "symmetric"
    splitting = "seeded"

    def __init__(self, seed: int | None = None, *, modes: tuple[str, ...] = MODES) -> None:
        if not modes or any(m not in MODES for m in modes):
            raise ValueError(f"modes must be a non-empty selection of {MODES}, got {modes!r}")
        self.seed = seed if seed is not None else random.getrandbits(32)
        self._rng = random.Random(self.seed)
        self.modes = tuple(modes)
        self.runs = dict.fromkeys(self.modes, 0)
        self._mode = self.modes[0]
        self._sites = SiteIds()

    def start_run(self) -> bool:
        self._mode = self.modes[int(self._rng.random() * len(self.modes))]
        self.runs[self._mode] += 1
        return True

    def choose(self, count: int, view: PointView) -> int:
        return walk_step(describe(count, view), self._mode, self._rng, self._sites)

    def coverage(self) -> str:
        total = sum(self.runs.values())
        return (f"{total} symmetric-walk schedules (seed {self.seed}); a sample, not "
                "exhaustive")

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed}

    def statistics(self) -> dict[str, Statistic]:
        return {"walks": {k: v for k, v in self.runs.items() if v}}
