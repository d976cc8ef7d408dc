"""What the sampling strategies read from a candidate: who it is and where it stands.

Every helper here works on runtime-neutral :class:`~explorer._runtime.Candidate` values
(a task id, a kind of step, a source location, a pending operation and its resource).
Describing a candidate inspects frames, so strategies describe each candidate at most once
per scheduling point, through :func:`describe`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from explorer._runtime import Candidate, Location, PointView

_INDEX = re.compile(r"#\d+")


def describe(count: int, view: PointView) -> list[Candidate]:
    """All candidates of the current scheduling point."""
    candidate = view.candidate
    return [candidate(i) for i in range(count)]


def task_key(candidate: Candidate) -> str:
    """A stable name for the work behind a candidate: its task id, or for a plain
    callback (no task) or a timer firing, its kind and operation."""
    if candidate.task is not None:
        return candidate.task
    return f"{candidate.kind}:{candidate.operation}"


def task_kind(key: str) -> str:
    """The task id without spawn indices: ``main/worker#3`` and ``main/worker#1`` are both
    ``main/worker``. Tasks of one kind run the same code from the same parent kind."""
    return _INDEX.sub("", key)


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


def derive_seed(seed: int, salt: str) -> int:
    """A seed for a sub-strategy, derived deterministically from a parent seed."""
    return random.Random(f"{seed}/{salt}").getrandbits(32)


def first_max(values: Sequence[float]) -> int:
    """Index of the largest value; the lowest index (the stock order) wins ties."""
    best = 0
    top = values[0]
    for i in range(1, len(values)):
        if values[i] > top:
            best, top = i, values[i]
    return best
