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
import sys
from collections.abc import Sequence
from functools import lru_cache

from explorer._runtime import Candidate, PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._features import (
    PointValues,
    SiteIds,
    SiteNumbers,
    describe,
    spawn_order,
    task_key,
    task_kind,
)

MODES = ("sites", "kinds")


def walk_step(candidates: Sequence[Candidate], mode: str, rng: random.Random,
              sites: SiteIds | None = None) -> int:
    """One step of a ``sites`` or ``kinds`` walk: the index of the chosen candidate.

    ``sites`` memoizes each description's site across points (pass the same one for a
    whole search; the choice is the same with or without it). Both walks draw the group
    first and look only inside it: the sites (kinds) in order of first appearance, then
    the members of the one drawn."""
    if mode == "sites":
        return site_step((sites if sites is not None else SiteIds()).of(candidates), rng)
    return kind_step(ranks(candidates), rng)


Rank = tuple[str, tuple[int, ...]]
"""A candidate's task kind and spawn indices (:func:`rank`)."""


def rank(candidate: Candidate) -> Rank:
    """The kind of a candidate's task and its spawn indices: among candidates of one kind,
    the smallest rank is the eldest."""
    return _rank(task_key(candidate))


@lru_cache(maxsize=4096)
def _rank(key: str) -> Rank:
    # The kind interned: ranks of one kind compare their kinds by reference.
    return (sys.intern(task_kind(key)), spawn_order(key))


def ranks(candidates: Sequence[Candidate]) -> list[Rank]:
    """:func:`rank` of every candidate."""
    return list(map(rank, candidates))


def site_step(ids: list[int], rng: random.Random, tally: dict[int, int] | None = None) -> int:
    """The ``sites`` walk at a point whose candidates have these site ids; ``tally``, if
    given, counts the candidates at each site (:attr:`PointValues.tally`)."""
    if tally is not None and len(tally) <= _FEW:
        sites = len(tally)
        if sites == 1:
            rng.random()  # the draw of the site, as below
            return int(rng.random() * len(ids))
        order = sorted(tally, key=ids.index)  # the sites in order of appearance
        where = order[int(rng.random() * sites)]
        return _nth(ids, where, int(rng.random() * tally[where]), tally)
    count = len(ids)
    if ids.count(ids[0]) == count:  # one site (identical workers): no group to find
        rng.random()  # the draw of the site, as below
        return int(rng.random() * count)
    groups = list(dict.fromkeys(ids))  # the distinct sites, in order of appearance
    where = groups[int(rng.random() * len(groups))]
    group = [i for i, at in enumerate(ids) if at == where]
    return group[int(rng.random() * len(group))]


_FEW = 8
"""Up to this many, sites are ordered by finding each one's first candidate, and the
n-th candidate at a site by finding each one before it, or each candidate elsewhere when
that is the shorter way (searches in C), rather than by a pass over every candidate."""


def _nth(ids: list[int], where: int, n: int, tally: dict[int, int]) -> int:
    """The index of the ``n``-th (from 0) candidate at site ``where``."""
    if n < _FEW:
        at = ids.index(where)
        for _ in range(n):
            at = ids.index(where, at + 1)
        return at
    if len(ids) - tally[where] < _FEW:  # nearly all at this site: step over the others
        others: list[int] = []
        for site, count in tally.items():
            if site != where:
                at = -1
                for _ in range(count):
                    at = ids.index(site, at + 1)
                    others.append(at)
        at = n
        for other in sorted(others):
            if other > at:
                break
            at += 1
        return at
    return [i for i, site in enumerate(ids) if site == where][n]


def kind_step(found: list[Rank], rng: random.Random) -> int:
    """The ``kinds`` walk at a point whose candidates have these ranks."""
    kinds = [kind for kind, _ in found]
    if kinds.count(kinds[0]) == len(kinds):  # one kind: its eldest, whatever the draw
        rng.random()
        eldest = min(found)
    else:
        distinct = list(dict.fromkeys(kinds))  # in order of appearance
        kind = distinct[int(rng.random() * len(distinct))]
        eldest = min([r for r in found if r[0] == kind])
    # The eldest of the kind: lowest spawn indices, the lowest index among equals (equal
    # ranks are one kind with equal indices, and index() finds the first of them).
    return found.index(eldest)


_WIDTH = 40
_DEPTH = 8
_SHIFT = _WIDTH * _DEPTH


class _Unnumbered(Exception):
    """A task id whose rank has no number (see :class:`RankNumbers`)."""


class RankNumbers:
    """Each candidate's :func:`rank` as one int, ordered as the ranks are among
    candidates of one kind and equal exactly when they are: the number of its task's kind
    (in order of first sight here) above its spawn indices, each one more than the index
    in a field of its own (so ``(3,)`` stays below ``(3, 0)``). Comparing ints costs a
    fraction of comparing the tuples. :meth:`of` raises :class:`_Unnumbered` for an id
    nested more than :data:`_DEPTH` deep or with an index that does not fit
    :data:`_WIDTH` bits."""

    __slots__ = ("_kinds", "_numbers")

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}  # task key -> its number
        self._kinds: dict[str, int] = {}  # task kind -> its number

    def of(self, candidates: Sequence[Candidate]) -> list[int]:
        """The rank number of every candidate, in order."""
        numbers = self._numbers
        out: list[int] = []
        for candidate in candidates:
            key = task_key(candidate)
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = self._number(key)
            out.append(number)
        return out

    def _number(self, key: str) -> int:
        order = spawn_order(key)
        if len(order) > _DEPTH or any(index + 1 >= 1 << _WIDTH for index in order):
            raise _Unnumbered(key)
        digits = 0
        for at in range(_DEPTH):
            digits = (digits << _WIDTH) | (order[at] + 1 if at < len(order) else 0)
        kinds = self._kinds
        kind = kinds.setdefault(task_kind(key), len(kinds))
        return (kind << _SHIFT) | digits


def number_step(found: list[int], rng: random.Random) -> int:
    """:func:`kind_step` at a point whose candidates have these rank numbers."""
    eldest = min(found)
    kind = eldest >> _SHIFT
    if max(found) >> _SHIFT == kind:  # one kind: its eldest, whatever the draw
        rng.random()
    else:
        kinds = [number >> _SHIFT for number in found]
        distinct = list(dict.fromkeys(kinds))  # in order of appearance
        kind = distinct[int(rng.random() * len(distinct))]
        eldest = min([n for n, k in zip(found, kinds, strict=True) if k == kind])
    return found.index(eldest)


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
        # Both carried from point to point: most candidates of a point were at the last.
        self._sites = PointValues(SiteNumbers().of, tally=True)
        self._ranks: PointValues[int] | None = PointValues(RankNumbers().of)

    def start_run(self) -> bool:
        self._mode = self.modes[int(self._rng.random() * len(self.modes))]
        self.runs[self._mode] += 1
        return True

    def choose(self, count: int, view: PointView) -> int:
        candidates = describe(count, view)
        if self._mode == "sites":
            sites = self._sites
            index = site_step(sites.of(candidates), self._rng, sites.tally)
            sites.chose(index)
        else:
            index = self._eldest(candidates)
        return index

    def _eldest(self, candidates: Sequence[Candidate]) -> int:
        """The ``kinds`` walk's choice, on rank numbers while every id has one."""
        numbers = self._ranks
        if numbers is not None:
            try:
                found = numbers.of(candidates)
            except _Unnumbered:  # an id too deep for the numbers: the tuples from now on
                self._ranks = None
            else:
                index = number_step(found, self._rng)
                numbers.chose(index)
                return index
        return kind_step(ranks(candidates), self._rng)

    def coverage(self) -> str:
        total = sum(self.runs.values())
        return (f"{total} symmetric-walk schedules (seed {self.seed}); a sample, not "
                "exhaustive")

    def describe(self) -> dict[str, Parameter]:
        return {"name": self.name, "seed": self.seed}

    def statistics(self) -> dict[str, Statistic]:
        return {"walks": {k: v for k, v in self.runs.items() if v}}
