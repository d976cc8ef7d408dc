"""Read-only inspection of asyncio tasks: where they stand and what they wait on.

Nothing here changes the state of a run; it is used to describe candidates, build traces
and explain deadlocks. None of it is on the untraced hot path.
"""

from __future__ import annotations

import asyncio
import inspect
from types import CoroutineType, FrameType, GeneratorType
from typing import Any

from explorer._locations import is_user_file


def coroutine_frames(task: asyncio.Future[Any]) -> list[FrameType]:
    """Frames of the task's await chain, outermost first (suspended tasks only)."""
    frames: list[FrameType] = []
    get_coro = getattr(task, "get_coro", None)
    obj: Any = get_coro() if get_coro is not None else None
    while obj is not None and len(frames) < 200:
        kind = type(obj)
        if kind is CoroutineType:  # the common links, read without getattr chains
            frame, following = obj.cr_frame, obj.cr_await
        elif kind is GeneratorType:
            frame, following = obj.gi_frame, obj.gi_yieldfrom
        else:
            frame = (getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
                     or getattr(obj, "ag_frame", None))
            following = (getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
                         or getattr(obj, "ag_await", None))
        if frame is None:
            break
        frames.append(frame)
        obj = following
    return frames


def waiting_on(task: asyncio.Future[Any], frames: list[FrameType] | None = None
               ) -> tuple[str | None, object | None]:
    """``(operation, resource)`` a suspended task waits on, e.g. ``("Lock.acquire", lock)``.

    The operation is the deepest library coroutine below the user's frame (an asyncio
    primitive's method, ``sleep``...) and the resource its ``self``; when the user awaits a
    future or task directly, the operation is ``await`` and the resource that future.
    ``frames``, when given, are the task's :func:`coroutine_frames`, already walked.
    """
    if frames is None:
        frames = coroutine_frames(task)
    for frame in reversed(frames):
        if is_user_file(frame.f_code.co_filename):
            break
        owner = frame.f_locals.get("self")
        name = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
        if owner is not None and not isinstance(owner, asyncio.Future):
            return name, owner
        if frame.f_code.co_name == "sleep":
            return "sleep", None
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is not None:
        return "await", waiter
    return None, None


def handle_owner(handle: asyncio.Handle) -> tuple[asyncio.Task[Any] | None, str]:
    """The task a ready handle belongs to and the kind of step it is."""
    callback = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        name = getattr(callback, "__name__", type(callback).__name__)
        if "wakeup" in name:
            return owner, "wakeup"
        if "step" in name.lower():
            return owner, ("start" if _not_started(owner.get_coro()) else "step")
        return owner, "callback"
    return None, "callback"


def _not_started(coro: Any) -> bool:
    try:
        return inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    except (AttributeError, TypeError):
        return False


def callback_name(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    if name is None:
        name = type(callback).__name__
    if owner is not None and "." not in name:
        name = f"{type(owner).__name__}.{name}"
    return f"callback {name}"
