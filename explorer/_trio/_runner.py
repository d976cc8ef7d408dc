"""The trio runtime: runs a scenario once, from scratch, under trio's own run loop.

:meth:`TrioRuntime.run` does what ``trio.run`` does — set up a ``Runner`` and drive the
``unrolled_run`` generator — with the run queue replaced by a
:class:`~explorer._trio._scheduler.Scheduler` and the clock by a
:class:`~explorer._trio._clock.VirtualClock`. Between passes of trio's loop the driver
decides what happens when no task is runnable: time jumps to the next deadline; with no
deadline, no I/O and no idle waiter left, the run is deadlocked. Each run has its own
simulated network (:mod:`~explorer._trio._network`), installed as the run's socket factory
and name resolver before its first task starts. A stopped run (deadlock,
step bound, broken invariant, refused schedule) is cancelled from its root nursery and
unwound by trio itself, so every ``finally`` block of the scenario runs. A run that cannot
be unwound (its tasks refuse to die, an interruption or an error inside trio's own loop,
an error of the driver) is quarantined (:func:`_abandon`): its suspended tasks and
nurseries are never finalised, since trio's ``Nursery.__del__`` asserts on a nursery that
still has children and would fire in whatever code runs at that garbage collection.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys
import warnings
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Any

import trio
from sniffio import thread_local as sniffio_library
from trio._core import _run as trio_run

from explorer import _footprint as footprint_module
from explorer import _interrupts as interrupts
from explorer import _outcome as oc
from explorer import _watchdog
from explorer._classify import (
    BrokenInvariant,
    classify_run,
    deadlock_outcome,
    escape_outcome,
    exception_outcome,
    hang_outcome,
)
from explorer._errors import EscapeError, UsageError
from explorer._footprint import describe_objects
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
from explorer._trio import _patches as patches
from explorer._trio._clock import VirtualClock
from explorer._trio._footprints import CANCELLATION, recording_primitives
from explorer._trio._inspect import Names, waiting_on
from explorer._trio._network import TrioNetwork, install
from explorer._trio._scheduler import Scheduler
from explorer._trio._selftest import self_test
from explorer._trio._waitfor import analyse
from explorer._watchdog import Hang, RunTimeout, Watchdog, describe_stack


class _Spawns(trio.abc.Instrument):
    """Names each task when trio spawns it (the only instrument hook used)."""

    def __init__(self, names: Names) -> None:
        self.names = names

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        parent = getattr(trio_run.GLOBAL_RUN_CONTEXT, "task", None)
        self.names.spawned(task, parent)


class TrioRuntime:
    """Runs scenarios under trio's run loop with every task step chosen by a chooser."""

    name = "trio"

    def __init__(self) -> None:
        self_test(TrioRuntime)
        _watchdog.current()  # its thread starts now, before a session refuses threads

    @contextmanager
    def session(self, *, footprints: bool = False) -> Iterator[TrioRuntime]:
        """Install the session's patches (inline worker threads, refused real I/O) and,
        with ``footprints``, the wrappers that record what trio's primitives touch."""
        if trio_run.in_trio_run() if hasattr(trio_run, "in_trio_run") else \
                hasattr(trio_run.GLOBAL_RUN_CONTEXT, "runner"):
            raise UsageError(
                "the explorer was called from inside a running trio program; explore, "
                "replay and run are entry points: call them from a plain (synchronous) "
                "test, not from inside trio.run or a trio test function"
            )
        # explorer.always() finds a run through patches.active: the scheduler of the run
        # in progress on this thread.
        with patches.installed(), finding(patches.active), ExitStack() as stack:
            if footprints:
                stack.enter_context(recording_primitives())
                stack.callback(_stop_automatic_footprints)
            yield self

    def run(self, scenario: Scenario, chooser: Chooser, mode: RunMode) -> RunRecord:
        """Run ``scenario`` once under ``chooser``; see :meth:`AsyncioRuntime.run`."""
        if mode.footprints is not None and mode.timer_races:
            raise UsageError(
                "the dpor strategy cannot be combined with timer_races=True under trio; "
                "use a search strategy (the default portfolio, random, pct...) with "
                "timer_races, or dpor without it"
            )
        coro = _start(scenario)
        names = Names()
        clock = VirtualClock()
        runner = trio_run.setup_runner(clock, [_Spawns(names)], False, True)
        scheduler = Scheduler(chooser, mode, clock, names, runner)
        if mode.recording and mode.footprints == "auto" and _start_automatic_footprints():
            # User code's own accesses are recorded (Python 3.12+); if that cannot start,
            # task code counts as touching everything, as in "conservative".
            scheduler.conservative = False
        runner.runq = scheduler  # type: ignore[assignment]  # a deque stand-in
        install(runner, TrioNetwork(scheduler))  # trio.socket over the simulated network
        tracer = scheduler.tracer
        kept: dict[int, object] = {}  # alive until the run ends (see _footprint.kept)
        if mode.recording:
            footprint_module.kept = kept
            if mode.naming:
                footprint_module.seen = {}
        outcome: Outcome | None = None
        stuck: Outcome | None = None
        previous_library, sniffio_library.name = sniffio_library.name, "trio"
        run_timeout = mode.run_timeout
        watchdog = _watchdog.current() if run_timeout else None
        gen = trio_run.unrolled_run(runner, lambda: coro, ())
        try:
            try:
                if watchdog is not None:
                    # Armed inside the run's handling: with a limit shorter than the time
                    # it takes to get going, the stop can land before the first step.
                    assert run_timeout is not None
                    watchdog.arm(run_timeout, lambda frames: _hang_site(
                        frames, runner, scheduler, names))
                with patches.controlling(scheduler):
                    stuck = self._drive(gen, runner, scheduler, names)
            except (KeyboardInterrupt, SystemExit, trio.TrioInternalError) as exc:
                # Delivered outside any task (in trio's own loop): the run cannot go on.
                outcome = self._broken(exc, gen, runner, watchdog)
            except BaseException:
                # An error of the driver itself: the run's tasks will never finish, so
                # they must never be finalised either (see _abandon).
                _abandon(gen, runner)
                raise
            finally:
                sniffio_library.name = previous_library
                footprint_module.current = None
                footprint_module.kept = None
                objects, footprint_module.seen = footprint_module.seen, None
        finally:
            hang = None
            while watchdog is not None:
                try:  # a stop can land as disarm() is entered, before its own handling
                    hang = watchdog.disarm()
                except RunTimeout:
                    continue
                break
        if interrupts.requested():  # a real Ctrl-C, whatever the scenario did with it
            raise KeyboardInterrupt
        if hang is not None:
            outcome = hang_outcome(hang, run_timeout or 0.0)
        error = scheduler.error
        if isinstance(error, RunTimeout) and watchdog is not None:
            # The limit passed while the chooser ran: the scheduler stopped the run there
            # and it unwound; a hang, not an error of the chooser.
            outcome = hang_outcome(hang, run_timeout or 0.0)
        elif error is not None:
            raise error
        if tracer is not None:
            tracer.finish_step()
        if outcome is None:
            outcome = classify_run(_Facts(runner, scheduler, stuck, mode.max_steps))
        stats = RunStats(scheduler.steps, scheduler.points, clock.now, len(names.tasks),
                         scheduler.steps - scheduler.deviated - 1,
                         step_hash=scheduler.step_hash)
        return RunRecord(scheduler.decisions, outcome, stats,
                         tracer.trace if tracer is not None else None,
                         scheduler.records, _object_names(objects, names))

    def _broken(self, exc: BaseException, gen: Any, runner: Any,
                watchdog: Watchdog | None) -> Outcome | None:
        """A SystemExit, KeyboardInterrupt or the watchdog's RunTimeout came out of trio's
        loop itself (trio wraps it in TrioInternalError), or trio failed inside its loop:
        abandon the run, whose tasks trio left unfinished. Return its outcome, or None
        for a hang (the watchdog's record makes it); re-raise any other internal error."""
        _abandon(gen, runner)  # first: whatever follows, the run is never finalised
        cause = _interruption(exc)
        if cause is None:
            raise exc
        if isinstance(cause, RunTimeout) and watchdog is not None:
            watchdog.acknowledge()
            return None
        if interrupts.requested():
            raise cause
        return exception_outcome(cause)

    # ------------------------------------------------------------------ driving

    def _drive(self, gen: Any, runner: Any, scheduler: Scheduler,
               names: Names) -> Outcome | None:
        """Drive trio's loop to its end; return what the run was found to be when no
        task could move (a deadlock, or a wait for real I/O), if that happened."""
        outcome: Outcome | None = None
        events: Any = None  # the first send into a fresh generator must be None
        get_events = runner.io_manager.get_events
        while True:
            try:
                gen.send(events)
            except StopIteration:
                return outcome
            events = []
            if scheduler.records is not None:
                scheduler.end_step()
            if scheduler.hard_stop:
                _abandon(gen, runner)
                return outcome
            if scheduler:
                continue
            # Nothing is runnable: ready I/O (trio's own wake-up socket), an idle waiter
            # (wait_all_tasks_blocked), or the next deadline can still move the run on.
            events = get_events(0)
            if events or runner.waiting_for_idle:
                continue
            deadline = runner.deadlines.next_deadline()
            if deadline != float("inf"):
                scheduler.clock.advance_to(deadline)
                continue
            if scheduler.cleanup:  # a task shields itself from the cleanup forever
                _abandon(gen, runner)
                return outcome
            if scheduler.tracer is not None:
                scheduler.tracer.finish_step()
            outcome = self._stuck(runner, scheduler, names)
            scheduler.stop(RunStatus.DEADLOCK)

    def _stuck(self, runner: Any, scheduler: Scheduler, names: Names) -> Outcome:
        """No task can move: a deadlock, or a task waiting for real I/O."""
        blocked = [t for t in runner.tasks if not t._ki_protected]
        for task in blocked:
            op, res = waiting_on(task)
            if op in ("wait_readable", "wait_writable"):
                err = EscapeError(
                    f"task {display_task(names.task_id(task))} waits for real I/O "
                    f"({op} on {res!r}), which the controlled trio run refuses: use "
                    "in-memory streams (trio.testing.memory_stream_pair) or channels")
                return escape_outcome(err)
        report = analyse(blocked, names)
        if scheduler.tracer is not None:
            report.labels = scheduler.tracer.trace.labels
        return deadlock_outcome(report, "deadline")


class _Facts:
    """A finished trio run, as :func:`~explorer._classify.classify_run` asks about it.

    ``stuck`` is what the run was found to be when no task could move (a deadlock, or a
    task waiting for real I/O), decided while the blocked tasks could still be inspected.
    trio's nurseries make a scenario wait for every task it started and raise every
    task's error, so a trio run has no leaked task and no unretrieved error."""

    def __init__(self, runner: Any, scheduler: Scheduler, stuck: Outcome | None,
                 max_steps: int) -> None:
        self.runner = runner
        self.scheduler = scheduler
        self.stuck = stuck
        # A run that finished by itself keeps the status RUNNING: it was never stopped.
        status = scheduler.status
        self.status: RunStatus = RunStatus.DONE if status is RunStatus.RUNNING else status
        self.trace = scheduler.tracer.trace if scheduler.tracer is not None else None
        self.max_steps = max_steps

    def escape(self) -> EscapeError | None:
        escapes = self.scheduler.escapes
        if not escapes:
            return None
        assert isinstance(escapes[0], EscapeError)
        return escapes[0]

    def broken_invariant(self) -> BrokenInvariant | None:
        scheduler = self.scheduler
        if self.status is RunStatus.ABORTED:
            return scheduler.invariant_failure
        # The invariants after the last step (the others were checked before each pick).
        if self.status is RunStatus.DONE and scheduler.invariants \
                and not scheduler.invariants_hold():
            return scheduler.invariant_failure
        return None

    def aborted(self) -> Outcome:
        # Only a broken invariant or a chooser error (raised before classifying) abort.
        return self.scenario_error() or oc.PASSED

    def deadlock(self) -> Outcome:
        if self.stuck is not None:
            return self.stuck
        # Unwinding the deadlocked run was interrupted (and no hang was recorded): the
        # blocked tasks are gone, so what the main task did is all that is left to tell.
        return self.scenario_error() or oc.PASSED

    def still_running(self) -> list[str]:
        names = self.scheduler.names
        return sorted({display_task(names.task_id(t)) for t in self.scheduler.still_running})

    def scenario_error(self) -> Outcome | None:
        error = getattr(self.runner.main_task_outcome, "error", None)
        return exception_outcome(error) if error is not None else None

    def leaked(self) -> Outcome | None:
        return None

    def unretrieved(self) -> Outcome | None:
        return None


def _hang_site(frames: list[FrameType], runner: Any, scheduler: Scheduler,
               names: Names) -> Hang:
    """Called by the watchdog's thread while the run's thread is stuck in a step; also
    makes the scheduler stop at its next pick, so the run unwinds without new decisions."""
    scheduler.halt()
    return describe_stack(frames, [(names.task_id(t), t.coro) for t in list(runner.tasks)])


def _object_names(objects: dict[int, object] | None, names: Names) -> dict[int, str] | None:
    """Readable names of the objects a named run recorded accesses on."""
    if objects is None:
        return None
    described = describe_objects(objects)
    for key, obj in objects.items():
        if obj is CANCELLATION:
            described[key] = "cancellation"
        elif type(obj).__module__.startswith("trio"):
            described[key] = names.resource(obj)
    return described


def _interruption(exc: BaseException) -> KeyboardInterrupt | SystemExit | None:
    """The KeyboardInterrupt or SystemExit (the watchdog's RunTimeout among them) behind
    ``exc`` as it came out of trio's loop: itself, or for a TrioInternalError what caused
    it, directly or while trio handled it (one of trio's own checks can fail while the
    interruption unwinds); None for an internal error of another cause."""
    if not isinstance(exc, trio.TrioInternalError):
        return exc if isinstance(exc, KeyboardInterrupt | SystemExit) else None
    seen: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):  # a short chain: trio wraps once, and may fail once more
        if seen is None or isinstance(seen, KeyboardInterrupt | SystemExit):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _start_automatic_footprints() -> bool:
    # Imported here: explorer._monitoring needs Python 3.12, and only "auto" runs use it.
    from explorer import _monitoring

    return _monitoring.activate()


def _stop_automatic_footprints() -> None:
    monitoring = sys.modules.get("explorer._monitoring")
    if monitoring is not None:
        monitoring.deactivate()


def _start(scenario: Scenario) -> Coroutine[Any, Any, Any]:
    coro = scenario()
    if not isinstance(coro, Coroutine):
        raise UsageError(
            f"the scenario returned {type(coro).__name__}, not a coroutine; pass an async "
            "function (defined with 'async def'), for example explore(main, "
            "runtime='trio') with 'async def main(): ...'"
        )
    return coro


_QUARANTINE: list[tuple[Any, Any, list[Any]]] = []


def _abandon(gen: Any, runner: Any) -> None:
    """Stop a run whose tasks will not unwind (one swallows every cancellation, or waits
    forever under a shield).

    trio cannot finish such a run, and closing its coroutines by force trips trio's own
    consistency checks. So its resources are released (trio's ``Runner.close``), the
    thread is marked as no longer running trio, and the run's objects are kept, never
    finalised, until the interpreter exits. Only such runs are kept; each costs its
    tasks' memory."""
    if not _QUARANTINE:
        atexit.register(_release_quarantine)
    _QUARANTINE.append((gen, runner, list(runner.tasks)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(Exception):
            runner.close()
    trio_run.GLOBAL_RUN_CONTEXT.__dict__.clear()


def _release_quarantine() -> None:
    """At exit, drop the abandoned runs without reporting their unwinding errors."""
    sys.unraisablehook = lambda _unraisable: None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _QUARANTINE.clear()
        gc.collect()
