"""Naming what a run creates: task ids and resource names that a schedule fixes.

Names must be the same in every run of one schedule (traces are compared by hash, the
strategies group candidates by task, corpus entries record the task expected at each
point), so they are given in order of events the schedule decides (creation, first
mention), never from counters that run across runs such as asyncio's ``Task-N``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import repeat
from typing import Any, Final, Protocol

from explorer._asyncio._inspect import coroutine_frames
from explorer._locations import LibraryCall, library_call

_RESOURCE_KINDS: Final = {"_GatheringFuture": "gather", "Future": "future"}


class NamingLoop:
    """The naming half of :class:`~explorer._asyncio._loop.ControlledLoop` (a mixin: the
    loop resets ``_adopted``, ``_resource_names`` and ``_resource_counts`` per run)."""

    _adopted: int
    _resource_names: dict[int, tuple[Callable[[], object], str]]
    _resource_counts: dict[str, int]
    _last_task: Any  # the handle of the latest task step (see ControlledLoop.current)

    def current_call(self) -> LibraryCall | None:
        """PointView: the library call the current task is inside (see
        :meth:`PointView.current_call`); a finished task is inside none."""
        handle = self._last_task
        if handle is None:
            return None
        return library_call(coroutine_frames(handle._callback.__self__))

    def task_id(self, task: asyncio.Future[Any] | None) -> str:
        """The stable id of a task of this run (or a fallback for foreign ones)."""
        if task is None:
            return "loop"
        found = getattr(task, "_explorer_id", None)
        if found is not None:
            return str(found)
        if isinstance(task, asyncio.Task):
            return f"unregistered/{task.get_name()}"
        return type(task).__name__

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """Name a task of this run created without :meth:`create_task` (``asyncio.Task(coro,
        loop=...)`` directly, as aiohttp does with ``eager_start`` on 3.12+): by its parent
        and its rank among such tasks of the run, which the schedule fixes. Their default
        ``Task-N`` names count across runs, so they would differ from run to run."""
        if getattr(task, "_explorer_hash", None) is not None \
                or getattr(task, "_explorer_id", None) is not None:
            return  # made by create_task: named there
        self._adopted += 1
        parent = asyncio.current_task(self)  # type: ignore[arg-type]  # the loop itself
        owner = self.task_id(parent) if parent is not None else "loop"
        task._explorer_id = f"{owner}/task-{self._adopted}"  # type: ignore[attr-defined]

    def resource_name(self, resource: object) -> str:
        """A name for a shared object that is stable for a given schedule: ``Lock#2``.

        Numbered per type in order of first mention within the run.
        """
        if isinstance(resource, asyncio.Task):
            return self.task_id(resource)
        entry = self._resource_names.get(id(resource))
        if entry is None or entry[0]() is not resource:
            kind = type(resource).__name__
            kind = _RESOURCE_KINDS.get(kind, kind)
            count = self._resource_counts.get(kind, 0) + 1
            self._resource_counts[kind] = count
            # Held weakly where possible: naming a future must not keep it (and its result,
            # say a cursor holding a database lock) alive longer than an untraced run does.
            try:
                held: Callable[[], object] = weakref.ref(resource)
            except TypeError:
                held = repeat(resource).__next__
            entry = (held, f"{kind}#{count}")
            self._resource_names[id(resource)] = entry
        return entry[1]


class _Adopter(Protocol):
    """The loop whose tasks are adopted (a :class:`NamingLoop` that is an event loop)."""

    task_type: type

    def adopt(self, task: asyncio.Task[Any]) -> None: ...


@contextmanager
def adopting(loop: _Adopter) -> Iterator[None]:
    """For a session: name the tasks the scenario creates without the loop's
    ``create_task`` (see :meth:`NamingLoop.adopt`), when asyncio registers them. Both the
    Python and the C ``Task`` register through the ``add`` of one module-level set, so an
    instance attribute of that set sees every task."""
    registry = getattr(asyncio.tasks, "_scheduled_tasks", None)
    if registry is None:
        registry = getattr(asyncio.tasks, "_all_tasks", None)
    if not isinstance(registry, weakref.WeakSet):  # a later Python keeps tasks otherwise
        yield
        return
    real_add = registry.add

    made = loop.task_type  # what the loop's create_task makes: named there already

    def add(task: asyncio.Task[Any]) -> None:
        real_add(task)
        if type(task) is made:
            return
        owner: object = task.get_loop() if isinstance(task, asyncio.Task) else None
        if owner is loop:
            loop.adopt(task)

    registry.add = add  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del registry.add
