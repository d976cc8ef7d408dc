"""The per-run real-time limit: a watchdog that stops a run which does not come back.

Contract: between :meth:`Watchdog.arm` and :meth:`Watchdog.disarm` (one run, in the thread
that drives it), if the run lasts longer than its limit, the watchdog's thread records
where the run's thread is executing (a :class:`Hang`, described by the runtime) and raises
:class:`RunTimeout` in that thread with ``PyThreadState_SetAsyncExc``. If the run does not
acknowledge it (scenario code swallowed it), it is raised again every :data:`REFIRE`
seconds. The exception is never delivered after :meth:`Watchdog.disarm`: firing holds a
lock that disarming takes, and disarming takes an exception raised but not delivered yet.
One delivered inside a finaliser or a weak reference's callback is swallowed there: while
armed, the watchdog's ``sys.unraisablehook`` drops its report and raises it again at once.

This stops any Python code, including a task that never awaits (``while True: pass``). It
cannot interrupt a blocking C call (a lock or socket wait outside the controlled world):
the exception is delivered when that call returns.

Cost: arming and disarming take a lock and read the clock once per run; the watchdog's
thread wakes once per limit; nothing is added to the per-step path.
"""

from __future__ import annotations

import _thread
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

from explorer._locations import frame_location, is_user_file
from explorer._records import FrozenRecord
from explorer._runtime import Location

REFIRE: Final = 1.0
"""Seconds between two deliveries of :class:`RunTimeout` that the run did not acknowledge."""
_NEVER: Final = float("inf")


def _set_async_exc(tid: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``tid`` at its next bytecode (None withdraws a pending
    one). ctypes is imported here, on the first hang, not by every exploration."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(tid), ctypes.py_object(exc) if exc is not None else ctypes.py_object())


# The real Thread.start, taken before any session patches it to refuse the scenario's
# threads: the watchdog's thread may be started while a session is open.
_start_thread = threading.Thread.start


class RunTimeout(KeyboardInterrupt):
    """Raised asynchronously in the thread of a run that exceeded its real-time limit.

    It derives from :class:`KeyboardInterrupt` because asyncio's ``Task.__step`` and
    ``Handle._run`` re-raise only ``KeyboardInterrupt`` and ``SystemExit``: the run then
    ends at once, instead of going on without the interrupted task. It never leaves the
    runtime: runs report it as an outcome of kind ``"hang"``.
    """


class Hang(FrozenRecord):
    """Where a run was when its limit passed: the task (display name) and the line it was
    executing, and the user-code frames of its stack (innermost last)."""

    __slots__ = ("location", "stack", "task")

    task: str | None
    location: Location | None
    stack: tuple[Location, ...]

    def __init__(self, task: str | None, location: Location | None,
                 stack: tuple[Location, ...] = ()) -> None:
        object.__setattr__(self, "task", task)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "stack", stack)


Describe = Callable[[list[FrameType]], Hang]
"""Turns the stack of the run's thread (innermost frame first) into a :class:`Hang`."""


class Watchdog:
    """One per thread that drives runs (see :func:`current`); its own thread is a daemon.

    The run's thread may receive :class:`RunTimeout` between any two bytecodes, so it never
    holds a lock across Python code: it only stores attributes (atomic under the GIL) and
    makes single C calls (``_thread`` lock operations), and :meth:`disarm` survives a
    delivery at any point. A ``threading.Condition`` would not do: its ``__enter__`` is
    Python code, and a delivery right after its lock is taken would leak the lock.
    """

    def __init__(self) -> None:
        self._lock = _thread.RLock()  # held by the watchdog's thread while it fires
        self._wake = _thread.allocate_lock()  # held by the watchdog's thread while it sleeps
        self._waking = _NEVER  # the deadline the watchdog's thread sleeps toward
        self._armed = False
        self._tid = 0
        self._limit = 0.0
        self._deadline = _NEVER
        self._describe: Describe | None = None
        self._hang: Hang | None = None
        self._pending = False  # raised, not acknowledged yet
        # Installed while armed (one bound method, so that identity tells it apart).
        self._hook = self._unraisable
        self._previous_hook = sys.unraisablehook
        self._wake.acquire()
        _start_thread(threading.Thread(target=self._serve, daemon=True,
                                       name="explorer-watchdog"))

    def arm(self, limit: float, describe: Describe) -> None:
        """Start watching a run of the calling thread: ``limit`` seconds from now."""
        self._tid = threading.get_ident()
        self._limit = limit
        self._describe = describe
        self._hang = None
        self._pending = False
        deadline = self._deadline = time.monotonic() + limit
        if sys.unraisablehook is not self._hook:
            self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._hook
        self._armed = True  # last: the watchdog's thread reads the rest once this is set
        if deadline < self._waking:
            # Usually the thread sleeps toward an earlier run's deadline and finds this
            # one when it wakes; an idle thread, or a shorter limit, needs waking now.
            with contextlib.suppress(RuntimeError):  # released already, not taken back yet
                self._wake.release()

    def acknowledge(self) -> bool:
        """The run caught a :class:`RunTimeout`; return whether one was pending (False when
        the caught one was an old one re-raised by a task that awaited the stopped one).
        The run gets one more limit to unwind before the next delivery."""
        pending, self._pending = self._pending, False
        self._deadline = time.monotonic() + self._limit
        return pending

    def disarm(self) -> Hang | None:
        """Stop watching; return the :class:`Hang` if the limit passed during the run.

        After ``_armed`` is cleared at most one more delivery can happen (a fire already
        under way); once the lock is held, none can, and one raised but not delivered yet
        is taken here."""
        lock = self._lock
        while True:
            try:
                self._armed = False
                lock.acquire()
                if self._pending:
                    self._pending = False
                    _absorb(self._tid)
            except RunTimeout:
                if lock._is_owned():  # type: ignore[attr-defined]  # C RLock method
                    lock.release()
                continue
            break
        hang = self._hang
        lock.release()
        if sys.unraisablehook is self._hook:
            sys.unraisablehook = self._previous_hook
        return hang

    def _unraisable(self, unraisable: UnraisableHookArgs) -> None:
        """``sys.unraisablehook`` while armed. A :class:`RunTimeout` delivered inside a
        finaliser or a weak reference's callback (the garbage collector runs them between
        any two bytecodes) is swallowed there and reported as unraisable: it is no error of
        the scenario's, so it is not reported, and the run gets it again at once."""
        if isinstance(unraisable.exc_value, RunTimeout):
            self._deadline = time.monotonic()
            with contextlib.suppress(RuntimeError):  # the watchdog's thread is awake
                self._wake.release()
            return
        self._previous_hook(unraisable)

    @property
    def fired(self) -> bool:
        return self._hang is not None

    def _serve(self) -> None:
        """The watchdog's thread: sleep until the armed run's deadline, then fire."""
        while True:
            if not self._armed:
                self._waking = _NEVER
                self._wake.acquire()  # until arm() releases it
                continue
            left = self._deadline - time.monotonic()
            if left > 0:
                self._waking = self._deadline
                self._wake.acquire(timeout=left)
                self._waking = _NEVER
                continue
            with self._lock:
                if self._armed and time.monotonic() >= self._deadline:
                    self._fire()

    def _fire(self) -> None:
        """Called with the lock held, when the armed run is past its deadline."""
        if self._hang is None:
            self._hang = self._capture()
        _set_async_exc(self._tid, RunTimeout)
        self._pending = True
        self._deadline = time.monotonic() + REFIRE

    def _capture(self) -> Hang:
        frame = sys._current_frames().get(self._tid)
        frames: list[FrameType] = []
        while frame is not None and len(frames) < 1000:
            frames.append(frame)
            frame = frame.f_back
        describe = self._describe
        try:
            if describe is not None:
                return describe(frames)
        except Exception:  # noqa: BLE001 - the run's thread moves on as we read it
            pass
        return Hang(None, None)


def _absorb(tid: int) -> None:
    """Give a raised but undelivered :class:`RunTimeout` the chance to be delivered, here.

    It is taken by running a few bytecodes, not withdrawn with
    ``PyThreadState_SetAsyncExc(thread, NULL)`` first: on CPython 3.11 that call leaves the
    interpreter's "asynchronous exception pending" signal set with nothing to deliver, and
    every later bytecode boundary then takes the slow path. But the signal is the
    interpreter's, not the thread's: another thread can take it and leave the exception
    waiting in this one (seen on 3.12 under load), to be delivered at some later, unrelated
    bytecode outside every run. So when the bytecodes did not take it, it is withdrawn."""
    try:
        for _ in range(100):
            pass
    except RunTimeout:
        return
    if sys.version_info >= (3, 12):  # where the signal can be taken by another thread
        _set_async_exc(tid, None)  # NULL: withdraw it


def describe_stack(frames: list[FrameType], tasks: Iterable[tuple[str, object]]) -> Hang:
    """A :class:`Hang` from the run thread's stack (innermost first) and the run's tasks as
    ``(task id, coroutine)``: the running task is the one whose coroutine frame is on the
    stack; the location is the innermost frame of user code."""
    on_stack = {id(frame): depth for depth, frame in enumerate(frames)}
    owner = None
    for task_id, coro in tasks:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and id(frame) in on_stack:
            owner = task_id
            frames = frames[: on_stack[id(frame)] + 1]  # the task's own frames only
            break
    stack = tuple(frame_location(f) for f in reversed(frames)
                  if is_user_file(f.f_code.co_filename))
    where = stack[-1] if stack else (frame_location(frames[0]) if frames else None)
    return Hang(owner, where, stack)


_local = threading.local()


def current() -> Watchdog:
    """The watchdog of the calling thread (created, with its daemon thread, on first use:
    runtimes ask for it when they are made, before a session refuses new threads)."""
    found: Watchdog | None = getattr(_local, "watchdog", None)
    if found is None:
        found = _local.watchdog = Watchdog()
    return found
