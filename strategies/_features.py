"""What the sampling strategies read from a candidate: who it is and where it stands.

Every helper here works on runtime-neutral :class:`~explorer._runtime.Candidate` values
(a task id, a kind of step, a source location, a pending operation and its resource).
Describing a candidate inspects frames the first time; the runtimes keep each description
until its work runs, so :func:`describe` costs a lookup per candidate at later points.
When only who each candidate is matters, :func:`processes` walks no frame at all. The
string helpers (:func:`task_kind`, :func:`spawn_order`) are memoized: strategies call
them for every candidate at every point, on the few task ids a scenario has; so is a
description's site (:class:`SiteIds`, by the description object, which the runtimes keep
for a ready step until it runs).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import cast

from explorer._runtime import Candidate, Location, PointView

_INDEX = re.compile(r"#\d+")


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


def derive_seed(seed: int, salt: str) -> int:
    """A seed for a sub-strategy, derived deterministically from a parent seed."""
    return random.Random(f"{seed}/{salt}").getrandbits(32)


def first_max(values: list[float]) -> int:
    """Index of the largest value; the lowest index (the stock order) wins ties."""
    return values.index(max(values))  # max keeps the first of equals, index finds it
