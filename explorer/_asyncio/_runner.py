"""The asyncio runtime: runs a scenario once, from scratch, on the controlled loop."""

from __future__ import annotations

import asyncio
import sys
from asyncio import events
from collections.abc import Coroutine, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from explorer import _footprint as footprint_module
from explorer import _interrupts as interrupts
from explorer import _outcome as oc
from explorer import _watchdog
from explorer._asyncio import _patches as patches
from explorer._asyncio._footprints import (
    FootprintRecorder,
    PrimitiveWrappers,
    recording_primitives,
)
from explorer._asyncio._inspect import coroutine_frames
from explorer._asyncio._loop import ControlledLoop
from explorer._asyncio._naming import adopting
from explorer._asyncio._selftest import self_test
from explorer._classify import (
    BrokenInvariant,
    classify_run,
    deadlock_outcome,
    exception_outcome,
    hang_outcome,
    qualname,
)
from explorer._errors import EscapeError, UsageError
from explorer._footprint import describe_objects
from explorer._locations import traceback_location, user_location
from explorer._outcome import Outcome
from explorer._runtime import (
    Chooser,
    RunMode,
    RunRecord,
    RunStats,
    RunStatus,
    Scenario,
    display_task,
    finding,
)
from explorer._watchdog import Hang, RunTimeout, Watchdog, describe_stack

if TYPE_CHECKING:
    from explorer._asyncio._tracer import Tracer

_CLEANUP_STEPS = 100_000


def _zero(count: int, view: object) -> int:
    return 0


# Entered by every untraced run: one reusable object, cheaper than an ExitStack per run.
_UNTRACKED: Final = nullcontext()


def _holders(tracer: Tracer | None) -> AbstractContextManager[object]:
    """While a traced run drives, track who holds each lock (for deadlock reports)."""
    if tracer is None:
        return _UNTRACKED
    from explorer._asyncio._tracking import track_holders

    return track_holders(tracer.holders)


def _tracer(loop: ControlledLoop) -> Tracer:
    """A :class:`Tracer` for a traced run; its module (and the request naming it uses)
    is imported only when a run is traced, which most explorations never need."""
    from explorer._asyncio._tracer import Tracer

    return Tracer(loop)


class AsyncioRuntime:
    """Runs scenarios on one reused :class:`ControlledLoop` inside :meth:`session`."""

    name = "asyncio"

    def __init__(self) -> None:
        self_test()
        self.loop = ControlledLoop()
        self.loop.close()
        # The session's wrappers of the primitives, when it may record footprints.
        self._primitives: PrimitiveWrappers | None = None
        _watchdog.current()  # its thread starts now, before a session refuses threads

    @contextmanager
    def session(self, *, footprints: bool = False) -> Iterator[AsyncioRuntime]:
        """Make a fresh controlled loop the running loop of this thread for many runs.

        ``footprints`` prepares wrappers of asyncio's primitives for the session, installed
        during the runs made with a recording :class:`RunMode` (only those pay for them) so
        that they record what each step touches."""
        previous = events._get_running_loop()
        if isinstance(previous, ControlledLoop):
            raise UsageError(
                "the explorer was called from inside a scenario it is running; explore, "
                "replay and run are entry points: call them from a test, not from the "
                "scenario"
            )
        old_hooks = sys.get_asyncgen_hooks()
        # What the loop learnt about foreign threads holds for the whole exploration (its
        # explore, confirm and shrink sessions): idle threads cost a few short waits per
        # exploration, not per session (see ControlledLoop._wait_for_threads).
        loop = self.loop = ControlledLoop(previous=self.loop)
        events._set_running_loop(loop)
        sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook,
                               finalizer=loop._asyncgen_finalizer_hook)
        try:
            # explorer.always() finds the run through this: the loop is the running loop
            # of this thread for the whole session, and a run is what it runs.
            with patches.installed(loop), finding(lambda: _running_loop(loop)), \
                    adopting(loop), ExitStack() as stack:
                if footprints:
                    self._primitives = stack.enter_context(recording_primitives())
                    stack.callback(_stop_automatic_footprints)
                yield self
        finally:
            self._primitives = None
            loop.close()
            sys.set_asyncgen_hooks(*old_hooks)
            events._set_running_loop(previous)

    def run(self, scenario: Scenario, chooser: Chooser, mode: RunMode) -> RunRecord:
        """Run ``scenario`` once under ``chooser``, as ``mode`` says; the loop must be in
        a session.

        ``mode.traced`` records a readable trace; ``mode.footprints`` (``"declared"``,
        ``"conservative"`` or ``"auto"``, see :class:`explorer.strategies.DPOR`) records
        each step's footprint and causes, for partial-order reduction; with
        ``mode.naming`` also readable names of the objects they touched
        (``RunRecord.names``). A traced run records no footprints. A run longer than
        ``mode.run_timeout`` seconds of real time is stopped and ends as a ``hang``; a
        ``SystemExit`` or ``KeyboardInterrupt`` from scenario code ends it as an
        ``exception``, a real Ctrl-C is re-raised."""
        loop = self.loop
        loop.reset(mode)
        decisions: list[int] = []
        coro = _start(scenario)
        try:  # a Ctrl-C before the run starts must not leave its coroutine unawaited
            main = loop.create_main_task(coro)
            tracer = _tracer(loop) if mode.traced else None
            # "auto": user code's own accesses are recorded (Python 3.12+); if that cannot
            # start, task code counts as touching everything, as in "conservative".
            recording = mode.recording
            automatic = recording and mode.footprints == "auto" \
                and _start_automatic_footprints()
            recorder = (FootprintRecorder(declared=mode.footprints == "declared" or automatic,
                                          naming=mode.naming)
                        if recording else None)
            if recorder is not None:
                footprint_module.kept = recorder.kept  # ids name one object for the run
                if mode.naming:
                    footprint_module.seen = {}
            run_timeout = mode.run_timeout
            watchdog = _watchdog.current() if run_timeout else None
        except BaseException:
            footprint_module.kept = footprint_module.seen = None  # no run holds them now
            _close_quietly(coro)  # never started: closing it is silent
            for task in loop.tasks:
                task._log_destroy_pending = False  # type: ignore[attr-defined]  # private
            raise
        outcome: Outcome | None = None
        primitives = self._primitives if recorder is not None else None
        try:
            if primitives is not None:  # removed below: other runs pay no wrapper
                primitives.install()
            try:
                if watchdog is not None:
                    # Armed inside the run's handling: with a limit shorter than the time
                    # it takes to get going, the stop can land before the first step.
                    assert run_timeout is not None
                    watchdog.arm(run_timeout, self._hang_site)
                with _holders(tracer):
                    status = loop.drive(main, chooser, decisions, mode.max_steps,
                                        tracer if tracer is not None else recorder,
                                        finish=True)
                    outcome = (oc.PASSED if _clean(loop, main, status) else
                               classify_run(_Facts(loop, main, status, tracer,
                                                   mode.max_steps)))
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
                footprint_module.current = None
                footprint_module.kept = None  # the recorder holds them until the run ends
                objects, footprint_module.seen = footprint_module.seen, None
                stats = RunStats(loop.steps, loop.points, loop._now, len(loop.tasks),
                                 loop.stock_steps, loop.fingerprint(), loop.step_hash())
                try:
                    self._cleanup(main, watchdog)
                except RunTimeout:  # the limit passed as the run was being cleaned up
                    if watchdog is not None:
                        watchdog.acknowledge()
        finally:
            hang = None
            while watchdog is not None:
                try:  # a stop can land as disarm() is entered, before its own handling
                    hang = watchdog.disarm()
                except RunTimeout:
                    continue
                break
            if primitives is not None:
                primitives.remove()
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
        # Its plain set of references: a WeakSet's len() and iteration are Python code,
        # a microsecond or so even when empty, as most runs leave it.
        if loop._asyncgens.data:  # type: ignore[attr-defined]  # public, not in the stubs
            for agen in list(loop._asyncgens):
                loop.create_task(agen.aclose())
        try:
            if pending or loop._ready:
                loop.begin_cleanup()
                self._unwind(watchdog)  # a real Ctrl-C leaves it at once
        finally:
            for task in loop.tasks:
                if not task.done():  # refused to die; do not let GC log it into a later run
                    task._log_destroy_pending = False  # type: ignore[attr-defined]  # private
                    _close_quietly(task.get_coro())
                elif not task.cancelled():
                    task._log_traceback = False  # reported already
            loop.discard_pending()
        # The run's transports and servers are inert from now on, so a stream writer the
        # scenario left open finds its transport closing when the garbage collector
        # finalises it, whenever that is, instead of warning into a later run or test.
        if loop._net_objects:
            loop._reset_network()

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


def _close_quietly(coro: object) -> None:
    """Close the coroutine of a task that would not finish (stuck in a ``finally:`` that
    awaits something the abandoned run will never deliver) now, where what its cleanup
    code raises can be dropped, rather than when the garbage collector closes it:
    Python then prints "coroutine ignored GeneratorExit" or the error of a context
    manager's exit into whatever runs at that moment. Each attempt throws GeneratorExit
    at the await it is stuck at; a few are enough for nested ``finally`` blocks."""
    close = getattr(coro, "close", None)
    if close is None:
        return
    for _ in range(_CLOSE_ATTEMPTS):
        try:
            close()
            return
        except (KeyboardInterrupt, SystemExit):
            if interrupts.requested():
                raise
        except BaseException:  # noqa: BLE001 - an abandoned run's cleanup, dropped
            continue


_CLOSE_ATTEMPTS = 8


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


def _clean(loop: ControlledLoop, main: asyncio.Task[Any], status: RunStatus) -> bool:
    """True only if :func:`~explorer._classify.classify_run` would find that the run
    passed: nothing escaped or broke an invariant or failed in a callback, main finished
    without error, no task is left pending or failed unretrieved. Most runs pass, and this
    tells it in one pass over the tasks, without the reports' machinery; False sends the
    run through ``classify_run``, which decides."""
    if status is not RunStatus.DONE or loop._escapes or loop._callback_errors \
            or loop._invariant_failure is not None or loop.pending_at_stop \
            or main.cancelled() or main._exception is not None:  # type: ignore[attr-defined,unused-ignore]
        return False
    for task in loop.tasks:
        if not task.done() or (task._exception is not None  # type: ignore[attr-defined,unused-ignore]
                               and task._log_traceback and not task.cancelled()):
            return False
    return True


class _Facts:
    """A finished asyncio run, as :func:`~explorer._classify.classify_run` asks about it."""

    __slots__ = ("loop", "main", "max_steps", "status", "trace", "tracer")

    def __init__(self, loop: ControlledLoop, main: asyncio.Task[Any], status: RunStatus,
                 tracer: Tracer | None, max_steps: int) -> None:
        self.loop = loop
        self.main = main
        self.status = status
        self.tracer = tracer
        self.trace = tracer.trace if tracer is not None else None
        self.max_steps = max_steps

    def escape(self) -> EscapeError | None:
        escapes = self.loop._escapes
        return escapes[0] if escapes else None

    def broken_invariant(self) -> BrokenInvariant | None:
        return self.loop._invariant_failure  # set only when it aborted the run

    def aborted(self) -> Outcome:
        return _callback_outcome(self.loop._callback_errors[-1])

    def deadlock(self) -> Outcome:
        from explorer._asyncio._waitfor import analyse  # only a deadlock needs it

        tracer = self.tracer
        report = analyse(self.loop, tracer.holders if tracer is not None else None)
        if tracer is not None:
            report.labels = tracer.trace.labels
        return deadlock_outcome(report, "timer")

    def still_running(self) -> list[str]:
        loop = self.loop
        if self.trace is not None:
            window = self.trace.steps[-max(50, self.max_steps // 10):]
            return sorted({s.task for s in window if s.kind != "callback"})
        return sorted({display_task(loop.task_id(t)) for t in loop.tasks if not t.done()})

    def scenario_error(self) -> Outcome | None:
        main = self.main
        if main.cancelled():
            return Outcome(oc.EXCEPTION, "the scenario's main task was cancelled",
                           exc_type="asyncio.CancelledError")
        exc = main.exception()
        return exception_outcome(exc) if exc is not None else None

    def leaked(self) -> Outcome | None:
        loop = self.loop
        # Pending where the loop stopped, or a connection handler that outlived its
        # cancellation (explorer._asyncio._shutdown).
        leaked = [t for t in loop.tasks if not t.done()]
        leaked += [t for t in loop.pending_at_stop if t.done()]
        if not leaked:
            return None
        from explorer._waitgraph import labelled  # only a leak report needs it

        names = sorted(loop.task_id(t) for t in leaked)
        first = min(leaked, key=loop.task_id)
        labels = self.trace.labels if self.trace is not None else {}
        return Outcome(
            oc.LEAKED_TASK,
            f"the scenario returned while {len(leaked)} task(s) were still pending: "
            f"{', '.join(labelled(n, labels) for n in names)}; they were not done when the "
            "loop stopped (at the end of the iteration after the scenario's return, "
            "where asyncio.run stops and cancels what is left), so their work would be "
            "cut short: await them (TaskGroup, gather) or cancel them before the "
            "scenario returns",
            user_location(coroutine_frames(first)), details={"tasks": names},
        )

    def unretrieved(self) -> Outcome | None:
        loop = self.loop
        main = self.main
        # Filtered before sorting by id: most runs have no such task, and the sort's key
        # function costs a call per task.
        failed = [t for t in loop.tasks if t is not main and not t.cancelled()
                  and t._exception is not None  # type: ignore[attr-defined,unused-ignore]
                  and t._log_traceback]
        if failed:
            task = min(failed, key=loop.task_id)
            exc = task._exception  # type: ignore[attr-defined,unused-ignore]
            assert exc is not None  # filtered above
            out = exception_outcome(exc)
            return Outcome(out.kind, f"task {display_task(loop.task_id(task))} raised "
                           f"and nobody retrieved it: {out.message}", out.location,
                           out.exc_type, exception=exc)
        for context in loop._callback_errors:
            return _callback_outcome(context)
        return None


def _running_loop(loop: ControlledLoop) -> ControlledLoop | None:
    """``loop`` when it is the running loop of the calling thread (inside a run of it)."""
    return loop if events._get_running_loop() is loop else None
