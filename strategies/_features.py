"""What the sampling strategies read from a candidate: who it is and where it stands.

Every helper here works on runtime-neutral :class:`~explorer._runtime.Candidate` values
(a task id, a kind of step, a source location, a pending operation and its resource).
Describing a candidate inspects frames the first time; the runtimes keep each description
until its work runs, so :func:`describe` costs a lookup per candidate at later points.
When only who each candidate is matters, :func:`processes` walks no frame at all. The
string helpers (:func:`task_kind`, :func:`spawn_order`) are memoized: strategies call
them for every candidate at every point, on the few task ids a scenario has; so is a
description's site (:class:`SiteIds`, by the description object, which the runtimes keep
for a ready step until it runs). A walk that reads every candidate at every point keeps
its values from one point to the next instead (:class:`PointValues`): the candidates of
a point are nearly always the last point's less the one that ran, then what its step
queued, so only those are worked out (:class:`SiteNumbers` for sites).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Generic, TypeVar, cast

from explorer._runtime import Candidate, Location, PointView

_INDEX = re.compile(r"#\d+")
_T = TypeVar("_T")


def describe(count: int, view: PointView) -> Sequence[Candidate]:
    """All candidates of the current scheduling point."""
    return view.candidates(count)


def processes(count: int, view: PointView) -> Sequence[str]:
    """Who each candidate of the current point is (:meth:`PointView.process`), cheaply."""
    return view.processes(count)


def task_key(candidate: Candidate) -> str:
    """A stable name for the work behind a candidate: its task id, or for a plain
    callback (no task) or a timer firing, its kind and operation."""
    if candidate.task is not None:
        return candidate.task
    return f"{candidate.kind}:{candidate.operation}"


def task_keys(candidates: Sequence[Candidate]) -> list[str]:
    """:func:`task_key` of every candidate, in one pass."""
    return [c.task if c.task is not None else f"{c.kind}:{c.operation}" for c in candidates]


@lru_cache(maxsize=4096)
def task_kind(key: str) -> str:
    """The task id without spawn indices: ``main/worker#3`` and ``main/worker#1`` are both
    ``main/worker``. Tasks of one kind run the same code from the same parent kind."""
    return _INDEX.sub("", key)


@lru_cache(maxsize=4096)
def spawn_order(key: str) -> tuple[int, ...]:
    """The spawn indices along a task id: ``main/worker#3/fetch#1`` is ``(3, 1)``. Among
    tasks of one kind, the smallest is the eldest."""
    return tuple(int(m.group()[1:]) for m in _INDEX.finditer(key))


Site = tuple[str, Location | None, str | None]
"""A candidate's place in the code: its task kind, resume location and operation."""


def site(candidate: Candidate) -> Site:
    """Where a candidate stands in the code: the kind of its task, the source location it
    resumes from and the operation it waits on. Symmetric tasks at the same point of the
    same code share a site."""
    return (task_kind(task_key(candidate)), candidate.location, candidate.operation)


class SiteIds:
    """Each candidate's :func:`site` as a small int, worked out once per description.

    The runtimes hand out the same :class:`Candidate` object for a ready step at every
    point until it runs, so a walk that groups candidates by site pays for the site (and
    for hashing its :class:`Location`) once per step rather than once per candidate per
    point. Equal sites get equal ids, numbered in order of first sight. The memo is keyed
    by the description's id and keeps every description it has seen alive (``_seen``), so
    no other object can take one of those ids: an id found is that very description. It
    starts afresh past :attr:`LIMIT` entries; the ids themselves are never renumbered."""

    LIMIT = 1 << 14

    __slots__ = ("_ids", "_memo", "_seen")

    def __init__(self) -> None:
        self._memo: dict[int, int] = {}
        self._seen: list[Candidate] = []
        self._ids: dict[Site, int] = {}

    def of(self, candidates: Sequence[Candidate]) -> list[int]:
        """The site id of every candidate, in order."""
        found: list[int | None] = list(map(self._memo.get, map(id, candidates)))  # in C
        if None not in found:
            return cast("list[int]", found)
        return [self._learn(c) if known is None else known
                for c, known in zip(candidates, found, strict=True)]

    def _learn(self, candidate: Candidate) -> int:
        memo = self._memo
        if len(memo) >= self.LIMIT:
            memo.clear()
            self._seen.clear()
        ids = self._ids
        where = site(candidate)
        found = ids.get(where)
        if found is None:  # never renumbered: a scenario has few sites
            found = ids[where] = len(ids)
        memo[id(candidate)] = found
        self._seen.append(candidate)
        return found


class SiteNumbers:
    """Each candidate's :func:`site` as a small int: equal ints exactly for equal sites,
    numbered in order of first sight, never renumbered.

    No memo per description (:class:`SiteIds` keeps one): this is for the candidates new
    at a point (:class:`PointValues`), where such a memo would only miss. A site is
    looked up by its location's fields rather than by the :class:`Location`, whose hash
    and equality run in Python; the two compare alike (a location equals another exactly
    when its fields do)."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: dict[tuple[object, ...], int] = {}

    def of(self, candidates: Sequence[Candidate]) -> list[int]:
        """The site number of every candidate, in order."""
        ids = self._ids
        out: list[int] = []
        for c in candidates:
            task = c.task
            kind = task_kind(task if task is not None else f"{c.kind}:{c.operation}")
            where = c.location
            key = ((kind, c.operation) if where is None else
                   (kind, c.operation, where.filename, where.lineno, where.function))
            found = ids.get(key)
            if found is None:
                found = ids[key] = len(ids)
            out.append(found)
        return out


class PointValues(Generic[_T]):
    """A value per candidate at every point, carried over from the point before.

    ``work`` maps candidates to their values, one each, in order; each value must depend
    only on the candidate's fields (equal descriptions, equal values), and ``work`` may
    memoize (:meth:`SiteIds.of`). Between two points the candidates are nearly always the
    last point's, less the one chosen there (:meth:`chose`), followed by the work queued by
    its step: both runtimes queue FIFO and hand out the same description of a ready step
    until it runs. Then only the new candidates at the end are worked out, and checking
    the rest costs one comparison of object references; at any other point (a point the
    owner did not see, a fault point, a filtered queue) every candidate is. The values
    are those ``work`` gives either way: a description found equal where one was expected
    has equal values."""

    __slots__ = ("_chosen", "_last", "_values", "_work", "carried", "tally")

    def __init__(self, work: Callable[[Sequence[Candidate]], list[_T]], *,
                 tally: bool = False) -> None:
        self._work = work
        self._last: list[Candidate] = []
        self._values: list[_T] = []
        self._chosen = -1
        self.carried = 0
        """How many values the last :meth:`of` carried over (the first ones; 0 when every
        candidate was worked out afresh)."""
        self.tally: dict[_T, int] | None = {} if tally else None
        """With ``tally=True``: how many candidates of the last :meth:`of` have each value,
        kept up to date as candidates come and go (no key for a value none has)."""

    def of(self, candidates: Sequence[Candidate]) -> list[_T]:
        """The value of every candidate, in order. The list is this object's: read it
        before the next call, do not change it."""
        last, values, tally = self._last, self._values, self.tally
        chosen, self._chosen = self._chosen, -1
        if 0 <= chosen < len(last):
            del last[chosen]  # what ran since the last point: gone from the queue
            if tally is not None:
                gone = values[chosen]
                left = tally[gone] - 1
                if left:
                    tally[gone] = left
                else:
                    del tally[gone]
            del values[chosen]
        else:
            self._forget()  # not told what ran: every candidate is worked out afresh
        kept = len(last)
        if kept and (len(candidates) < kept or candidates[:kept] != last):
            self._forget()
            kept = 0
        self.carried = kept
        if len(candidates) > kept:
            new = candidates[kept:]
            last.extend(new)
            worked = self._work(new)
            values.extend(worked)
            if tally is not None:
                for value in worked:
                    tally[value] = tally.get(value, 0) + 1
        return values

    def _forget(self) -> None:
        del self._last[:]
        del self._values[:]
        if self.tally is not None:
            self.tally.clear()

    def chose(self, index: int) -> None:
        """Say which candidate of the last :meth:`of` was chosen, so that the next point
        can be matched against the rest."""
        self._chosen = index


def derive_seed(seed: int, salt: str) -> int:
    """A seed for a sub-strategy, derived deterministically from a parent seed."""
    return random.Random(f"{seed}/{salt}").getrandbits(32)


def first_max(values: list[float]) -> int:
    """Index of the largest value; the lowest index (the stock order) wins ties."""
    return values.index(max(values))  # max keeps the first of equals, index finds it
