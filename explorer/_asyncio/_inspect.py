"""Read-only inspection of asyncio tasks: where they stand and what they wait on.

Nothing here changes the state of a run; it is used to describe candidates, build traces
and explain deadlocks. None of it is on the untraced hot path.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import site
import sys
import sysconfig
from types import FrameType
from typing import TYPE_CHECKING, Any

from explorer._runtime import Candidate, Location

if TYPE_CHECKING:
    from explorer._asyncio._loop import ControlledLoop

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def _strategies_dir() -> str:
    # strategies/ sits beside explorer/ in a checkout and inside it when installed from a
    # wheel (it is installed as explorer.strategies); ask the import system where it is.
    spec = importlib.util.find_spec("explorer.strategies")
    locations = spec.submodule_search_locations if spec is not None else None
    return next(iter(locations)) if locations else os.path.join(_HERE, "strategies")


_STRATEGIES = _strategies_dir()


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    prefixes = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"],
                _HERE, _STRATEGIES}
    prefixes.update(site.getsitepackages())
    if site.ENABLE_USER_SITE and site.USER_SITE:
        prefixes.add(site.USER_SITE)
    return tuple(sorted(os.path.join(os.path.abspath(p), "") for p in prefixes if p))


_LIBRARY = _library_prefixes()
_SITE_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_user_cache: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """True for the scenario author's code: not the stdlib, installed packages or us."""
    found = _user_cache.get(filename)
    if found is None:
        path = os.path.abspath(filename)
        found = not (filename.startswith("<frozen") or path.startswith(_LIBRARY)
                     or any(m in path for m in _SITE_MARKERS))
        _user_cache[filename] = found
    return found


def frame_location(frame: FrameType) -> Location:
    code = frame.f_code
    return Location(code.co_filename, frame.f_lineno or code.co_firstlineno,
                    getattr(code, "co_qualname", code.co_name))


def coroutine_frames(task: asyncio.Future[Any]) -> list[FrameType]:
    """Frames of the task's await chain, outermost first (suspended tasks only)."""
    frames: list[FrameType] = []
    get_coro = getattr(task, "get_coro", None)
    obj: Any = get_coro() if get_coro is not None else None
    while obj is not None and len(frames) < 200:
        frame = (getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
                 or getattr(obj, "ag_frame", None))
        if frame is None:
            break
        frames.append(frame)
        obj = (getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
               or getattr(obj, "ag_await", None))
    return frames


def user_location(frames: list[FrameType]) -> Location | None:
    """The deepest frame in user code, else the deepest frame at all."""
    for frame in reversed(frames):
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
    return frame_location(frames[-1]) if frames else None


def traceback_location(exc: BaseException) -> Location | None:
    """Where an exception was raised, as the deepest user-code frame of its traceback."""
    tb = exc.__traceback__
    best: Location | None = None
    last: Location | None = None
    while tb is not None:
        loc = Location(tb.tb_frame.f_code.co_filename, tb.tb_lineno,
                       getattr(tb.tb_frame.f_code, "co_qualname", tb.tb_frame.f_code.co_name))
        last = loc
        if is_user_file(loc.filename):
            best = loc
        tb = tb.tb_next
    return best or last


def caller_location(depth: int = 1) -> Location | None:
    """The nearest user-code frame on the current (synchronous) call stack."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
        frame = frame.f_back
    return None


def waiting_on(task: asyncio.Future[Any]) -> tuple[str | None, object | None]:
    """``(operation, resource)`` a suspended task waits on, e.g. ``("Lock.acquire", lock)``.

    The operation is the deepest library coroutine below the user's frame (an asyncio
    primitive's method, ``sleep``...) and the resource its ``self``; when the user awaits a
    future or task directly, the operation is ``await`` and the resource that future.
    """
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


def describe_candidate(loop: ControlledLoop, index: int) -> Candidate:
    """The :class:`Candidate` for ready handle ``index`` (or the timer pseudo-candidate)."""
    ready = loop._ready
    eligible = loop._eligible
    if index >= (len(ready) if eligible is None else len(eligible)):
        return Candidate(None, "timer", None, "fire timer", None)
    handle = ready[index if eligible is None else eligible[index]]
    task, kind = handle_owner(handle)
    if task is None:
        return Candidate(None, kind, None, callback_name(handle), None)
    op, resource = waiting_on(task)
    return Candidate(loop.task_id(task), kind, user_location(coroutine_frames(task)), op,
                     loop.resource_name(resource) if resource is not None else None)
