"""Read-only inspection of trio tasks: stable names, where they stand, what they wait on.

Nothing here changes a run; it names tasks and objects, describes candidates, builds
traces and explains deadlocks, and is off the untraced hot path except for naming a task
when it is spawned.
"""

from __future__ import annotations

from types import FrameType
from typing import Any

import trio
from trio.lowlevel import Task

from explorer._locations import frame_location, is_user_file, user_location
from explorer._runtime import Candidate, Location

_SLEEPS = frozenset({"sleep", "sleep_until", "sleep_forever", "checkpoint",
                     "checkpoint_if_cancelled", "cancel_shielded_checkpoint"})
_IO_WAITS = frozenset({"wait_readable", "wait_writable"})


class Names:
    """Stable ids for the tasks of one run and readable names for the objects they touch.

    Task ids follow the asyncio runtime's form: ``main`` for the scenario, then
    ``parent/function#k`` for the k-th task running ``function`` that ``parent`` spawned.
    Objects are numbered per type in order of first mention: ``Lock#1``.
    """

    __slots__ = ("_kinds", "_objects", "_spawns", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[Task, str] = {}
        self._spawns: dict[tuple[str, str], int] = {}
        self._objects: dict[int, tuple[object, str]] = {}
        self._kinds: dict[str, int] = {}

    def spawned(self, task: Task, parent: Task | None) -> None:
        if task._ki_protected:  # system tasks are not named
            return
        parent_id = self.tasks.get(parent) if parent is not None else None
        if parent_id is None:
            self.tasks[task] = "main" if "main" not in self.tasks.values() else \
                f"system/{_function(task)}"
            return
        name = _function(task)
        key = (parent_id, name)
        index = self._spawns.get(key, 0) + 1
        self._spawns[key] = index
        self.tasks[task] = f"{parent_id}/{name}#{index}"

    def task_id(self, task: Task) -> str:
        found = self.tasks.get(task)
        return found if found is not None else f"system/{_function(task)}"

    def resource(self, obj: object) -> str:
        if isinstance(obj, Task):
            return self.task_id(obj)
        entry = self._objects.get(id(obj))
        if entry is None or entry[0] is not obj:
            kind = _public_type(obj)
            count = self._kinds[kind] = self._kinds.get(kind, 0) + 1
            entry = (obj, f"{kind}#{count}")
            self._objects[id(obj)] = entry
        return entry[1]


def _function(task: Task) -> str:
    code = getattr(task.coro, "cr_code", None)
    name = getattr(code, "co_qualname", None) or getattr(code, "co_name", None) or task.name
    return str(name).rpartition("<locals>.")[2]


def await_frames(task: Task) -> list[FrameType]:
    """Frames of the task's await chain, outermost first."""
    return [frame for frame, _line in task.iter_await_frames()]


def task_location(task: Task) -> Location | None:
    return user_location(await_frames(task))


def waiting_on(task: Task, frames: list[FrameType] | None = None
               ) -> tuple[str | None, object | None]:
    """``(operation, resource)`` a suspended task waits on, e.g. ``("Lock.acquire", lock)``.

    The operation is the outermost library frame below the user's own code: the trio
    primitive's method the user awaited (``Lock.acquire``, ``Event.wait``,
    ``MemoryReceiveChannel.receive``), and the resource that primitive. A nursery's exit
    waits on the nursery, whose children must finish. ``frames``, when given, are the
    task's :func:`await_frames`, already walked.
    """
    if frames is None:
        frames = await_frames(task)
    start = 0
    for i, frame in enumerate(frames):
        if is_user_file(frame.f_code.co_filename):
            start = i + 1
    below = frames[start:]
    for i, frame in enumerate(below):
        name = frame.f_code.co_name
        if name in _SLEEPS:
            return name, None
        if name in _IO_WAITS:
            return name, frame.f_locals.get("fd") or frame.f_locals.get("sock")
        owner = frame.f_locals.get("self")
        if owner is None:
            continue
        if type(owner).__name__ == "NurseryManager":
            return "nursery exit", getattr(owner, "_nursery", owner)
        # ``async with lock`` enters __aenter__, which awaits acquire on the same object:
        # name the deepest method of that object (Lock.acquire, Channel.receive).
        for deeper in below[i + 1:]:
            if deeper.f_locals.get("self") is not owner:
                break
            name = deeper.f_code.co_name
        return f"{_public_type(owner)}.{name}", owner
    return None, None


def _public_type(obj: object) -> str:
    """``Lock`` for trio's ``_LockImpl`` base, else the type's name."""
    for cls in type(obj).__mro__:
        if cls.__module__.startswith("trio") and not cls.__name__.startswith("_"):
            return cls.__name__
    return type(obj).__name__.lstrip("_")


def holders(resource: object) -> list[Task]:
    """Tasks that hold ``resource`` (a lock, a condition's lock, a capacity limiter)."""
    if isinstance(resource, trio.Condition):
        resource = resource.statistics().lock_statistics.owner
        return [resource] if isinstance(resource, Task) else []
    owner = getattr(resource, "_owner", None)
    if isinstance(owner, Task):
        return [owner]
    borrowers: Any = getattr(resource, "_borrowers", None)
    if isinstance(resource, trio.CapacityLimiter) and borrowers:
        return [b for b in borrowers if isinstance(b, Task)]
    return []


def is_holdable(resource: object) -> bool:
    return isinstance(resource, (trio.Lock, trio.StrictFIFOLock, trio.Condition,
                                 trio.CapacityLimiter))


def describe_task(task: Task, names: Names) -> Candidate:
    """The :class:`Candidate` for a runnable task (its await chain walked once, for both
    what it waits on and where it stands)."""
    frames = await_frames(task)
    op, resource = waiting_on(task, frames)
    kind = "start" if not task._schedule_points else "step"
    return Candidate(names.task_id(task), kind, user_location(frames), op,
                     names.resource(resource) if resource is not None else None)


def first_user_frame(frames: list[FrameType]) -> Location | None:
    for frame in reversed(frames):
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
    return None
