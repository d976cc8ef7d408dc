"""The asyncio runtime: runs a scenario once, from scratch, on the controlled loop."""

from __future__ import annotations

import asyncio
import sys
from asyncio import events
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Any

from explorer import _footprint as footprint_module
from explorer import _interrupts as interrupts
from explorer import _outcome as oc
from explorer import _watchdog
from explorer._asyncio import _loop
from explorer._asyncio import _patches as patches
from explorer._asyncio._footprints import FootprintRecorder, recording_primitives
from explorer._asyncio._inspect import (
    coroutine_frames,
    traceback_location,
    user_location,
)
from explorer._asyncio._loop import ControlledLoop
from explorer._asyncio._selftest import self_test
from explorer._asyncio._tracer import Tracer
from explorer._asyncio._tracking import track_holders
from explorer._asyncio._waitfor import analyse
from explorer._classify import (
    deadlock_outcome,
    escape_outcome,
    exception_outcome,
    hang_outcome,
    invariant_outcome,
    livelock_outcome,
    qualname,
)
from explorer._errors import UsageError
from explorer._footprint import describe_objects
from explorer._outcome import Outcome
from explorer._runtime import Chooser, RunRecord, RunStats, display_task
from explorer._watchdog import Hang, RunTimeout, Watchdog, describe_stack

Scenario = Callable[[], Coroutine[Any, Any, Any]]

_CLEANUP_STEPS = 100_000


def _zero(count: int, view: object) -> int:
    return 0


class AsyncioRuntime:
    """Runs scenarios on one reused :class:`ControlledLoop` inside :meth:`session`."""

    name = "asyncio"

    def __init__(self) -> None:
        self_test()
        self.loop = ControlledLoop()
        self.loop.close()
        _watchdog.current()  # its thread starts now, before a session refuses threads

    @contextmanager
    def session(self, *, footprints: bool = False) -> Iterator[AsyncioRuntime]:
        """Make a fresh controlled loop the running loop of this thread for many runs.

        ``footprints`` wraps asyncio's primitives for the session so that runs made with
        ``run(..., footprints=True)`` record what each step touches."""
        previous = events._get_running_loop()
        if isinstance(previous, ControlledLoop):
            raise UsageError(
                "the explorer was called from inside a scenario it is running; explore, "
                "replay and run are entry points: call them from a test, not from the "
                "scenario"
            )
        old_hooks = sys.get_asyncgen_hooks()
        last = self.loop
        loop = self.loop = ControlledLoop()
        # What the loop learnt about foreign threads holds for the whole exploration (its
        # explore, confirm and shrink sessions): idle threads cost a few short waits per
        # exploration, not per session (see ControlledLoop._wait_for_threads).
        loop._foreign_seen = last._foreign_seen
        loop._fruitless_waits = last._fruitless_waits
        events._set_running_loop(loop)
        sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook,
                               finalizer=loop._asyncgen_finalizer_hook)
        try:
            with patches.installed(loop), ExitStack() as stack:
                if footprints:
                    stack.enter_context(recording_primitives())
                    stack.callback(_stop_automatic_footprints)
                yield self
        finally:
            loop.close()
            sys.set_asyncgen_hooks(*old_hooks)
            events._set_running_loop(previous)

    def run(self, scenario: Scenario, chooser: Chooser, *, max_steps: int,
            timer_races: bool = False, traced: bool = False,
            footprints: str | None = None, naming: bool = False,
            run_timeout: float | None = None) -> RunRecord:
        """Run ``scenario`` once under ``chooser``; the loop must be in a session.

        ``traced`` records a readable trace; ``footprints`` (``"declared"``,
        ``"conservative"`` or ``"auto"``, see :class:`explorer.strategies.DPOR`) records each step's
        footprint and causes, for partial-order reduction; with ``naming`` also readable
        names of the objects they touched (``RunRecord.names``). ``traced`` and
        ``footprints`` are exclusive. A run longer than ``run_timeout`` seconds of real
        time is stopped and ends as a ``hang``; a ``SystemExit`` or ``KeyboardInterrupt``
        from scenario code ends it as an ``exception``, a real Ctrl-C is re-raised."""
        loop = self.loop
        loop.reset()
        loop._timer_races = timer_races
        decisions: list[int] = []
        coro = _start(scenario)
        main = loop.create_main_task(coro)
        tracer = Tracer(loop) if traced else None
        # "auto": user code's own accesses are recorded (Python 3.12+); if that cannot
        # start, task code counts as touching everything, as in "conservative".
        automatic = footprints == "auto" and not traced and _start_automatic_footprints()
        recorder = (FootprintRecorder(loop, declared=footprints == "declared" or automatic,
                                      naming=naming)
                    if footprints and not traced else None)
        if recorder is not None and naming:
            footprint_module.seen = {}
        watchdog = _watchdog.current() if run_timeout else None
        if watchdog is not None:
            assert run_timeout is not None
            watchdog.arm(run_timeout, self._hang_site)
        outcome: Outcome | None = None
        try:
            try:
                with ExitStack() as stack:
                    if tracer is not None:
                        loop._tracer = tracer
                        stack.enter_context(track_holders(tracer.holders))
                    elif recorder is not None:
                        loop._tracer = recorder
                    status = loop.drive(main, chooser, decisions, max_steps)
                    outcome = self._classify(main, status, tracer, max_steps)
            except (KeyboardInterrupt, SystemExit) as exc:
                # Task.__step and Handle._run re-raise these two out of the loop.
                if isinstance(exc, RunTimeout) and watchdog is not None:
                    watchdog.acknowledge()
                elif interrupts.requested():
                    raise
                else:
                    outcome = exception_outcome(exc)
            finally:
                # Also when the chooser raised (a strict replay that diverged): every task
                # of the run is unwound, so nothing leaks into the next run.
                loop._tracer = None
                footprint_module.current = None
                objects, footprint_module.seen = footprint_module.seen, None
                stats = RunStats(loop.steps, loop.points, loop._now, len(loop.tasks),
                                 loop.stock_steps)
                try:
                    self._cleanup(main, watchdog)
                except RunTimeout:  # the limit passed as the run was being cleaned up
                    if watchdog is not None:
                        watchdog.acknowledge()
        finally:
            hang = watchdog.disarm() if watchdog is not None else None
        if interrupts.requested():  # a real Ctrl-C that scenario code caught
            raise KeyboardInterrupt
        if hang is not None or outcome is None:
            outcome = hang_outcome(hang, run_timeout or 0.0)
        names = None
        if recorder is not None and objects is not None:
            names = {**describe_objects(objects), **recorder.task_names}
        return RunRecord(decisions, outcome, stats,
                         tracer.trace if tracer is not None else None,
                         recorder.steps if recorder is not None else None, names)

    # ------------------------------------------------------------------ outcome

    def _classify(self, main: asyncio.Task[Any], status: int, tracer: Tracer | None,
                  max_steps: int) -> Outcome:
        loop = self.loop
        if loop._escapes:
            return escape_outcome(loop._escapes[0])
        if status == _loop.ABORTED:
            return self._aborted(tracer)
        if status == _loop.DEADLOCK:
            return self._deadlock(tracer)
        if status == _loop.STEP_BOUND:
            return self._livelock(tracer, max_steps)
        if main.cancelled():
            return Outcome(oc.EXCEPTION, "the scenario's main task was cancelled",
                           exc_type="asyncio.CancelledError")
        exc = main.exception()
        if exc is not None:
            return exception_outcome(exc)
        return self._after_return(main)

    def _after_return(self, main: asyncio.Task[Any]) -> Outcome:
        loop = self.loop
        leaked = [t for t in loop.tasks if not t.done()]
        if leaked:
            names = sorted(loop.task_id(t) for t in leaked)
            first = min(leaked, key=loop.task_id)
            where = user_location(coroutine_frames(first))
            return Outcome(
                oc.LEAKED_TASK,
                f"the scenario returned while {len(leaked)} task(s) were still pending: "
                f"{', '.join(display_task(n) for n in names)}; await them (TaskGroup, "
                "gather) or cancel them before the scenario returns",
                where, details={"tasks": names},
            )
        for task in sorted(loop.tasks, key=loop.task_id):
            if task is main or task.cancelled():
                continue
            exc = task._exception  # type: ignore[attr-defined,unused-ignore]
            if exc is not None and task._log_traceback:
                out = exception_outcome(exc)
                return Outcome(out.kind, f"task {display_task(loop.task_id(task))} raised "
                               f"and nobody retrieved it: {out.message}", out.location,
                               out.exc_type, exception=exc)
        for context in loop._callback_errors:
            return _callback_outcome(context)
        return oc.PASSED

    def _aborted(self, tracer: Tracer | None) -> Outcome:
        loop = self.loop
        if loop._invariant_failure is not None:
            return invariant_outcome(loop._invariant_failure,
                                     tracer.trace if tracer is not None else None)
        return _callback_outcome(loop._callback_errors[-1])

    def _deadlock(self, tracer: Tracer | None) -> Outcome:
        report = analyse(self.loop, tracer.holders if tracer is not None else None)
        return deadlock_outcome(report, "timer")

    def _livelock(self, tracer: Tracer | None, max_steps: int) -> Outcome:
        loop = self.loop
        running: list[str] = []
        if tracer is not None:
            window = tracer.trace.steps[-max(50, max_steps // 10):]
            running = sorted({s.task for s in window if s.kind != "callback"})
        else:
            running = sorted({display_task(loop.task_id(t)) for t in loop.tasks
                              if not t.done()})
        return livelock_outcome(running, max_steps)

    # ------------------------------------------------------------------ cleanup

    def _hang_site(self, frames: list[FrameType]) -> Hang:
        """Called by the watchdog's thread while the run's thread is stuck in a step."""
        loop = self.loop
        return describe_stack(frames, [(loop.task_id(t), t.get_coro())
                                       for t in list(loop.tasks)])

    def _cleanup(self, main: asyncio.Task[Any], watchdog: Watchdog | None = None) -> None:
        """Cancel what is left and let it unwind in stock order, recording nothing."""
        loop = self.loop
        pending = [t for t in loop.tasks if not t.done()]
        for task in pending:
            task.cancel()
        for agen in list(loop._asyncgens):
            loop.create_task(agen.aclose())
        if pending or loop._ready:
            loop._invariants.clear()
            loop._timer_races = False
            self._unwind(watchdog)
        for task in loop.tasks:
            if not task.done():  # refused to die; do not let GC log it into a later run
                task._log_destroy_pending = False  # type: ignore[attr-defined]  # private
            elif not task.cancelled():
                task._log_traceback = False  # reported already
        loop._ready.clear()
        loop._scheduled.clear()


    def _unwind(self, watchdog: Watchdog | None) -> None:
        """Drive the cancelled run to its end. Cleanup must never mask the outcome
        already classified: errors end it quietly."""
        loop = self.loop
        bound = loop.steps + _CLEANUP_STEPS
        while True:
            try:
                loop.drive(_AllDone(loop), _zero, [], bound)
                return
            except (KeyboardInterrupt, SystemExit) as exc:
                if interrupts.requested():
                    raise
                if isinstance(exc, RunTimeout) and watchdog is not None \
                        and watchdog.acknowledge():
                    return  # the unwinding itself hung: leave the rest
                # A task re-raised one stored by an earlier step (an awaiter re-raises
                # what it awaited); each time at least one step ran, so this ends.
            except Exception:  # noqa: BLE001 - see the docstring
                return


def _start_automatic_footprints() -> bool:
    from explorer import _monitoring

    return _monitoring.activate()


def _stop_automatic_footprints() -> None:
    monitoring = sys.modules.get("explorer._monitoring")
    if monitoring is not None:
        monitoring.deactivate()


class _AllDone:
    """A stand-in "main" for cleanup: done when no task of the run is pending."""

    def __init__(self, loop: ControlledLoop) -> None:
        self._loop = loop

    def done(self) -> bool:
        return all(t.done() for t in self._loop.tasks) and not self._loop._ready


def _start(scenario: Scenario) -> Coroutine[Any, Any, Any]:
    coro = scenario()
    if not asyncio.iscoroutine(coro):
        raise UsageError(
            f"the scenario returned {type(coro).__name__}, not a coroutine; pass an async "
            "function (defined with 'async def'), for example explore(main) with "
            "'async def main(): ...'"
        )
    return coro


def _callback_outcome(context: dict[str, Any]) -> Outcome:
    exc = context.get("exception")
    message = context.get("message", "a callback failed")
    if exc is None:
        return Outcome(oc.EXCEPTION, str(message))
    return Outcome(oc.EXCEPTION, f"{message}: {type(exc).__name__}: {exc}",
                   traceback_location(exc), qualname(type(exc)), exception=exc)
