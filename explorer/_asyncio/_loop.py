"""The controlled asyncio event loop.

Invariant enforced here: a handle in ``_ready`` runs only when :meth:`ControlledLoop.drive`
picks it, and at a moment with two or more live candidates the pick is made by the
chooser. Candidate 0 is always the handle stock asyncio would run next (the FIFO head,
with expired timers joining at the same iteration boundaries as in ``_run_once``), so the
all-zero schedule is the stock schedule.

Time is virtual: ``time()`` returns a clock that only moves when nothing is ready, and then
jumps straight to the earliest timer. With ``timer_races``, "fire the next timer now" is one
more candidate, counted only while a live (uncancelled) timer is pending and a live handle
is ready: every candidate counted at a point is one that can really run. Nothing here ever
blocks or polls a selector.

Fairness (every explored schedule is one a real loop could make, and a livelock is
reported only from a fair schedule; after Musuvathi and Qadeer, "Fair stateless model
checking", PLDI 2008). Stock asyncio runs each iteration's ready handles as a batch, so a
ready handle never waits more than one iteration. Reordering ready handles models awaits
of different durations, within two limits:

1. The head of the ready queue (the oldest ready handle, candidate 0) is passed over at
   most :data:`~explorer._runtime.STARVATION_BOUND` scheduling points in a row; at the next
   one it runs without a decision. No strategy can starve a ready task for long.
2. The step bound counts only steps in stock order: a run is stopped as a livelock
   (:data:`STEP_BOUND`) only when ``max_steps`` steps ran after its last deviation without
   the scenario finishing. A run that reaches ``max_steps`` sooner goes on in stock order
   (every point forced, no decisions) until it finishes or that holds. The verdict thus
   comes from a schedule whose unbounded part is the stock one, where every ready handle
   runs in turn; the recorded decisions replay to the same verdict.

The end of a run: the loop stops where ``asyncio.run`` stops it. There,
``run_until_complete`` gives the main task a done-callback that calls ``loop.stop()``.
When main's last step finishes it, that callback is queued behind the handles already
ready, so ``_run_once`` first finishes the iteration in progress; the callback runs in the
next iteration, ``stop()`` only sets a flag, and ``run_forever`` returns once that whole
iteration (every handle ready when it began, plus the timers already due) has run. Then
``asyncio.run`` cancels the tasks still pending and runs them until they finish
(``Runner.close``: ``_cancel_all_tasks``, then closing async generators and the default
executor). The runtime does the same: once main is done (``drive(finish=True)``), the
rest of the current iteration and the next one run in stock order, with no decision, no
injected fault, no clock advance and no trace or footprint record (they are counted in
the run's steps, and invariants are still checked after each). The connection handlers
servers started are then cancelled and run out (:mod:`explorer._asyncio._shutdown`);
only then are the tasks still pending judged (a ``leaked_task``: ``asyncio.run`` would
cancel them), and the
runtime's cleanup cancels and unwinds them as ``_cancel_all_tasks`` does. A task whose
wake-up was already queued when main returned thus runs that step, as it would for real;
a task woken only in that last iteration, or never, is still pending.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import sys
import threading
import weakref
from asyncio import events
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Sequence
from contextvars import Context, copy_context
from functools import partial
from itertools import repeat
from types import MethodType
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, TypeVarTuple, Unpack

from explorer import _footprint
from explorer._asyncio._drivers import ExecutorCall
from explorer._asyncio._footprints import (
    FootprintRecorder,
    callback_footprint,
    cause_of,
    set_cause,
)

# The handle kinds, under the names the per-step code reads as module globals.
from explorer._asyncio._handles import Handle as _Handle
from explorer._asyncio._handles import HeldHandle as _HeldHandle
from explorer._asyncio._handles import IOHandle as _IOHandle
from explorer._asyncio._handles import TaskHandle as _TaskHandle
from explorer._asyncio._handles import TimerHandle as _TimerHandle
from explorer._asyncio._handles import (
    count_special,
    eligible_indices,
    queued_since,
)
from explorer._asyncio._naming import NamingLoop
from explorer._asyncio._network import NetworkLoop
from explorer._asyncio._ready import (
    ReadyIndex,
    ReadyQueue,
    ReadyView,
)
from explorer._asyncio._refused import refuse_unsimulated
from explorer._asyncio._selftest import task_callback_types
from explorer._asyncio._shutdown import cancel_served
from explorer._asyncio._stephash import StepHasher, StepTracer
from explorer._classify import broken_invariant
from explorer._errors import EscapeError
from explorer._escapes import PROCESS_FIX
from explorer._faults import OptionsView
from explorer._footprint import CANCELLED, UNKNOWN, Access, StepRecord, record
from explorer._locations import caller_location
from explorer._runtime import STARVATION_BOUND, Candidate, Location, RunMode, RunStatus

if TYPE_CHECKING:
    from explorer._runtime import Chooser

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

# Why drive() stopped, as module globals: returned once per drive, never looked up per step.
DONE: Final = RunStatus.DONE
DEADLOCK: Final = RunStatus.DEADLOCK
STEP_BOUND: Final = RunStatus.STEP_BOUND
ABORTED: Final = RunStatus.ABORTED


# Real seconds a failing run waits for a call from a live foreign thread (see
# ControlledLoop._wait_for_threads): long enough for a thread answering a request, short
# enough that a real deadlock among other threads costs little; and how many such waits
# in a loop's life may come to nothing before it stops waiting (until a thread calls).
THREAD_GRACE: Final = 0.1
FRUITLESS_WAITS: Final = 3

# The asyncio implementation of an eager task factory is a closure of this name
# (Python 3.12+). Recognising it lets the loop keep every task start a scheduling point.
_EAGER_FACTORY_QUALNAME: Final = "create_eager_task_factory.<locals>.factory"


# How task steps and wake-ups reach call_soon; filled in by _detect_task_callback_types().
_STEP_TYPE: type | None = None
_WAKEUP_TYPE: type | None = None
_PY_TASK_METHODS: frozenset[object] = frozenset(
    getattr(asyncio.tasks._PyTask, name)  # type: ignore[attr-defined]
    for name in ("_Task__step", "_Task__wakeup")
    if hasattr(asyncio.tasks._PyTask, name)  # type: ignore[attr-defined]
)


def _detect_task_callback_types() -> None:
    """Learn the callable types the C Task passes to call_soon for steps and wake-ups."""
    global _STEP_TYPE, _WAKEUP_TYPE
    if _STEP_TYPE is None:
        _STEP_TYPE, _WAKEUP_TYPE = task_callback_types()


class _Doneable(Protocol):
    def done(self) -> bool: ...


class _Abort(BaseException):
    """Raised through a running handle to end the run at once (callback error, invariant)."""


_new_handle = object.__new__
_new_record = tuple.__new__  # a StepRecord without NamedTuple's Python-level __new__
_Future = asyncio.Future


class _Task(asyncio.Task):  # type: ignore[type-arg]
    """A task whose hash is its creation index within the run.

    asyncio keeps tasks in sets (``TaskGroup`` cancels its children by iterating one,
    ``asyncio.wait`` registers callbacks on one and returns two). With the default
    address-based hash, that order changes from run to run and the same schedule would
    not give the same trace. A hash fixed by creation order makes it deterministic.
    """

    # Slots: read on every recorded step and every hash, cheaper than the instance dict.
    __slots__ = ("_explorer_hash", "_explorer_id", "_explorer_read")
    _explorer_hash: int
    _explorer_id: str
    _explorer_read: Access  # the access "this step reads its task", made once

    def __hash__(self) -> int:
        return self._explorer_hash

    def cancel(self, msg: Any = None) -> bool:
        record(self, None, "w")  # a footprint access, when footprints are recorded
        return super().cancel(msg)


def _new_task(coro: Any, loop: ControlledLoop, sequence: int, name: str,
              context: Context | None) -> _Task:
    task = _new_future(_Task)
    task._explorer_hash = sequence  # before Task.__init__, which already hashes the task
    task._explorer_read = (id(task), None, "r")
    _task_init(task, coro, loop=loop, name=name, context=context)
    return task


_new_future = asyncio.Task.__new__
_task_init = asyncio.Task.__init__
# The task running on a loop: asyncio.current_task is C code from Python 3.12; on 3.11 it
# is a Python function around a lookup in this dict (which the C Task keeps).
_current_task: Callable[[Any], Any] = (
    asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]  # not in the stubs
    if sys.version_info < (3, 12)
    else asyncio.current_task)


# NetworkLoop overrides networking methods with narrower signatures (in-memory results).
class ControlledLoop(NetworkLoop, NamingLoop, ReadyView, ReadyQueue,  # type: ignore[misc]
                     asyncio.BaseEventLoop):
    """An event loop whose every choice among ready work is made by a chooser."""

    task_type: type = _Task  # what create_task makes (other tasks are adopted: _naming)

    # Private state of BaseEventLoop that this class drives directly (checked at first use
    # by the self-test); declared here because the typeshed stubs omit it.
    _ready: collections.deque[Any]  # of events.Handle
    _scheduled: list[Any]  # heap of events.TimerHandle (private _when, _scheduled)
    _asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]]
    _timer_cancelled_count: int
    _debug: bool
    _task_factory: Any
    _closed: bool
    _asyncgen_firstiter_hook: Callable[[AsyncGenerator[Any, Any]], None]
    _asyncgen_finalizer_hook: Callable[[AsyncGenerator[Any, Any]], None]

    def __init__(self, previous: ControlledLoop | None = None) -> None:
        """A closed-world loop; ``previous``, the loop of the exploration's last session,
        passes on what it learnt about foreign threads (see :meth:`_wait_for_threads`)."""
        super().__init__()
        # Locks, events and queues make a future for each wait: a C callable makes it
        # without a Python call (BaseEventLoop.create_future is Future(loop=self), no more).
        self.create_future = partial(_Future, loop=self)  # type: ignore[method-assign]
        self._now = 0.0
        self._clock_resolution = 0.0
        self._owner_thread = threading.get_ident()
        self._dirty = False
        # Plain (non-task) callbacks currently in _ready, plus one for each handle still
        # held (_call_held): drive() filters candidates whenever this exceeds one.
        self._ncallbacks = 0
        # The candidates of the point in progress: _cands[i], or _cands[_eligible[i]]
        # when the queue was filtered by a scan (see drive()); the index of the queue
        # (_ready), the network callbacks and held handles queued (no index while any
        # is), and the candidate counts of the points so far, hashed (fingerprint()).
        self._eligible: list[int] | None = None
        self._cands: Sequence[Any] = self._ready
        self._index = ReadyIndex(self._ready)
        self._nspecial = 0
        self._signature = 0
        self._hasher: StepHasher | None = None
        self._fingerprinted = False
        # The handle of the last task step: PointView.current() names its task.
        self._last_task: Any = None
        self._timer_races = False
        _detect_task_callback_types()
        # What records the steps of the drive in progress, if anything (see drive()).
        self._tracer: StepTracer | FootprintRecorder | StepHasher | None = None
        self._invariants: list[tuple[Callable[[], object], str, Location | None]] = []
        self._invariant_failure: tuple[str, BaseException | None, Location | None] | None = None
        self._callback_errors: list[dict[str, Any]] = []
        self._escapes: list[EscapeError] = []
        # Set by a call from a foreign thread; waited on once per run (_wait_for_threads).
        self._foreign_call = threading.Event()
        self._waited_for_threads = False
        # Carried over from session to session (from ``previous``), as is the count of
        # vain waits: idle threads cost a few waits per exploration, not per session.
        self._foreign_seen: bool = previous._foreign_seen if previous is not None else False
        self._fruitless_waits: int = previous._fruitless_waits if previous is not None else 0
        # The tasks of the run in creation order; each carries its stable id as the
        # attribute _explorer_id (not a dict keyed by task: hashing tasks costs a call).
        self.tasks: list[asyncio.Task[Any]] = []
        self._adopted = 0
        self._executor_calls = 0  # numbers the worker threads of run_in_executor calls
        self._spawn_counts: dict[tuple[str, str], int] = {}
        self._custom_task_constructor: Callable[..., asyncio.Task[Any]] | None = None
        self._resource_names: dict[int, tuple[Callable[[], object], str]] = {}
        self._resource_counts: dict[str, int] = {}
        self.steps = 0
        self.stock_steps = 0  # steps after the last deviation (module docstring)
        self._ended = 0  # steps run after main returned, until drive() counts them
        self.points = 0
        self._init_network()
        # decide(): the fault kinds a run may inject; the drive's chooser and decisions;
        # the choices made in this drive; an error the chooser raised there; whether a
        # fault deviated since the step bound was checked; whether points are forced.
        self.faults: frozenset[str] = frozenset()
        self._choose: Chooser | None = None
        self._decisions: list[int] = []
        self._decided = 0
        self._decide_error: BaseException | None = None
        self._fault_deviated = self._forced = False

    # ------------------------------------------------------------------ run lifecycle

    def reset(self, mode: RunMode) -> None:
        """Forget everything of the previous run and prepare one made as ``mode`` says;
        the loop object itself is reused."""
        self._timer_races = mode.timer_races
        self.faults = mode.faults
        self._decide_error = None
        self._fault_deviated = self._forced = False
        self._tracer = None
        self._ready.clear()
        self._scheduled.clear()
        self._timer_cancelled_count = 0
        self._now = 0.0
        self._dirty = False
        self._ncallbacks = 0
        self._eligible = None
        self._cands = self._ready
        self._index.active = False
        self._nspecial = 0
        self._signature = 0
        self._fingerprinted = mode.hashed or mode.traced
        self._hasher = (StepHasher() if mode.hashed and not mode.traced and not mode.recording
                        else None)
        self._last_task = None
        self._invariants.clear()
        self._invariant_failure = None
        self._callback_errors.clear()
        self._escapes.clear()
        if self._foreign_call.is_set():  # clear() takes the event's lock: once a run, rarely
            self._foreign_call.clear()
        self._waited_for_threads = False
        self.tasks.clear()
        self._adopted = 0
        self._executor_calls = 0
        self._spawn_counts.clear()
        self._task_factory = None
        self._custom_task_constructor = None
        if self._asyncgens.data:  # type: ignore[attr-defined]  # WeakSet.clear is Python code
            self._asyncgens.clear()
        self._resource_names.clear()
        self._resource_counts.clear()
        self._reset_network()
        self.steps = self.stock_steps = self.points = 0

    def drive(self, main: _Doneable, choose: Chooser, decisions: list[int],
              max_steps: int,
              tracer: StepTracer | FootprintRecorder | StepHasher | None = None,
              *, finish: bool = False) -> RunStatus:
        """Run ready work until ``main`` is done; return why it stopped.

        ``tracer`` records the steps of this drive: a readable trace (a
        :class:`StepTracer`), footprints (a :class:`FootprintRecorder`) or, by default
        in a hashed run, a step hash (its :class:`StepHasher`, recorded inline). With
        ``finish``, once ``main`` is done the loop ends as ``asyncio.run`` stops (module
        docstring, "The end of a run"): in stock order, without decisions, and neither
        traced nor recorded.

        This is the per-step hot path: keep it free of anything not needed on every step.
        With no tracer, a step costs one check beyond running it. With a
        :class:`FootprintRecorder`, the recording is done inline here (a step is a few
        microseconds; a method call per step would be a good part of what recording costs).
        """
        ready = self._ready
        scheduled = self._scheduled
        append = decisions.append
        if tracer is None:  # a hashed run (reset()) records its steps inline below
            tracer = self._hasher
        self._tracer = tracer  # call_at and recorded_steps() consult it while driving
        self._choose = choose  # decide() makes its choices with them while driving
        self._decisions = decisions
        invariants = self._invariants
        timer_races = self._timer_races
        steps = self.steps
        points = self.points
        # A readable trace is recorded by the tracer's methods, footprints and a step hash
        # (a hashed run's) inline below.
        traced = tracer if not isinstance(tracer, (FootprintRecorder, StepHasher)) else None
        recorder = tracer if isinstance(tracer, FootprintRecorder) else None
        hasher = tracer if isinstance(tracer, StepHasher) else None
        if recorder is not None:  # its state lives in locals while driving
            # Steps are appended as plain tuples and made StepRecords when driving ends.
            records: list[Any] = recorder.steps
            add_record = records.append
            index = start = len(records)  # the index of the next step
            foreign = recorder.foreign_causes
            kept = recorder.kept
            # Without the "declared" contract, a task's own code may touch anything.
            conservative = recorder.conservative
            is_future = _Future
            point = recorder.point
            point_base = recorder.points - points
            # _footprint.current, the running step's footprint, is set through the
            # module's dict: the same binding, without a setattr call.
            footprint_vars = _footprint.__dict__
            if not records:  # what is queued now was scheduled outside any step
                for handle in ready:
                    set_cause(handle, None, foreign)
        # ix: the candidates of the queue, indexed once plain callbacks need filtering
        # (_ready); made afresh in each drive, as the queue changed in between.
        ix = self._index
        ix.active = False
        self._nspecial = count_special(ready)
        signature = self._signature  # the candidate counts at points (RunStats.fingerprint)
        fingerprinted = self._fingerprinted  # else the counts are not summed (fingerprint())
        # Handles left in the current stock iteration: expired timers join the ready queue
        # only at iteration boundaries, exactly as in BaseEventLoop._run_once.
        batch = 0
        # Fairness (module docstring): the head of the ready queue at the latest point,
        # at how many points in a row it was passed over, how many it may be, the step
        # count at the latest deviation, and the step bound now in force.
        oldest: object = None
        last_task = self._last_task  # a local while driving: stored at points only
        passed = 0
        bound = STARVATION_BOUND
        deviated = -1
        limit = max_steps
        try:
            while not main.done():
                if batch <= 0:
                    if scheduled and scheduled[0]._when <= self._now:
                        self._pop_expired_timers()
                    if not ready and not self._advance_clock():
                        self._wait_for_threads()
                        return DEADLOCK
                    batch = len(ready)
                n = len(ready)
                if n > 1 or (timer_races and scheduled):
                    if self._dirty:
                        batch -= self._purge_cancelled(batch)
                        n = len(ready)
                        if not n:
                            # Every ready handle had been cancelled (a timeout's timer
                            # that expired, then was cancelled by the task leaving its
                            # block): nothing can run, so this iteration is over and the
                            # stock loop lets time pass. Offering "fire the next timer"
                            # as the only candidate would count a choice that is none.
                            batch = 0
                            continue
                    extra = 1 if timer_races and self._has_live_timer() else 0
                    # Plain callbacks keep asyncio's documented FIFO order among
                    # themselves: only the first one queued is a candidate. The index
                    # knows which without scanning the queue (_ready), holds included.
                    eligible = None
                    cands: Any = ready
                    if ix.active or self._ncallbacks > 1:
                        if ((ix.synced == n or ix.sync()) if ix.active
                                else ix.rebuild()):
                            cands = ix.eligible
                            m = len(cands)
                        else:
                            ix.active = False
                            eligible = eligible_indices(ready)
                            m = len(eligible)
                    else:
                        m = n
                    count = m + extra
                    if count > 1:
                        # Fairness: the oldest ready handle (the head) may be passed
                        # over at `bound` points in a row; then it runs, undecided.
                        if ready[0] is oldest:
                            passed += 1
                        else:
                            oldest = ready[0]
                            passed = 0
                    if count > 1 and passed < bound:
                        self._eligible = eligible
                        self._cands = cands
                        self._last_task = last_task
                        i = choose(count, self)
                        append(i)
                        if fingerprinted:
                            signature = (signature * 1000003 + count) & 0xFFFFFFFFFFFF
                        if i:
                            deviated = steps
                        if tracer is not None:
                            if traced is not None:
                                traced.decision(i, count, i == m)
                            elif hasher is not None:  # the count: in `signature`
                                hasher.seen.append(-1 - i)
                            else:
                                point = points + point_base  # the next step's point
                        points += 1
                        if i == m:
                            self._fire_next_timer()
                            batch = 0
                            continue
                        if eligible is not None:
                            i = eligible[i]
                        elif ix.active:  # made so by this point, or by the view (rebuild)
                            if ix.plain or ix.waiting:  # else nothing but candidates queued
                                handle = ix.take(i)
                                i = -1
                            else:  # every queued handle is a candidate: take(), inline
                                del ix.eligible[i], ix.eseq[i]
                                if ix.tracked:
                                    ix.drop(i)
                                ix.synced -= 1
                        if i == 0:
                            handle = ready.popleft()
                        elif i > 0:
                            handle = ready[i]
                            del ready[i]
                    else:
                        handle = ix.take(0) if ix.active else ready.popleft()
                else:
                    handle = (ix.take(0) if ix.active and ix.sync()
                              else ready.popleft())
                if type(handle) is not _TaskHandle:
                    self._ncallbacks -= 1
                    if type(handle) is _IOHandle or type(handle) is _HeldHandle:
                        self._nspecial -= 1
                else:
                    last_task = handle
                batch -= 1
                if handle._cancelled:
                    continue
                steps += 1
                if steps > limit:
                    # Fairness: the verdict needs max_steps steps in stock order after
                    # the last deviation, so from here on every point is forced.
                    bound = 0
                    self._forced = True  # and decide() injects no more faults
                    if self._fault_deviated:
                        # A fault deviated inside a step since the last deviation here;
                        # which step is not tracked (hot path): count from now, which
                        # only grants more steps before a verdict, never fewer.
                        self._fault_deviated = False
                        deviated = steps - 1
                    limit = deviated + 1 + max_steps
                    if steps > limit:
                        ready.appendleft(handle)
                        return STEP_BOUND
                if tracer is None:
                    if handle is last_task:  # a task step: Handle._run without its frame
                        # (a step raises only what _run re-raises: KeyboardInterrupt, ...)
                        handle._context.run(handle._callback, *handle._args)
                    else:
                        handle._run()
                elif hasher is not None:  # as untraced, then what the step shows
                    if handle is last_task:
                        handle._context.run(handle._callback, *handle._args)
                        hasher.task_step(handle._callback.__self__)
                    else:
                        handle._run()
                        hasher.seen.append("loop")
                elif traced is not None:
                    traced.run(handle, steps)
                else:
                    # The step's footprint: what its task's code may touch (everything,
                    # unless declared), the future a wake-up reads, what the primitives
                    # and shared objects it uses add while it runs, and its task if the
                    # step finishes it. The handle stays alive for the run, and with it
                    # the future or callback its footprint names (see _footprint.kept).
                    footprint: set[Access]
                    kept[id(handle)] = handle
                    if type(handle) is _TaskHandle:
                        task = handle._callback.__self__  # type: ignore[attr-defined]
                        args = handle._args
                        # Declared, every step reads its own task: a cancel() before
                        # it changes what it does (it raises CancelledError instead).
                        # Conservative, the task's code may touch anything.
                        # A task made by calling asyncio.Task directly (aiohttp does)
                        # is the C class, which takes no attribute.
                        own = (UNKNOWN if conservative else
                               getattr(task, "_explorer_read", None) or (id(task), None, "r"))
                        if args and isinstance(args[0], is_future):  # a wake-up reads it
                            footprint = {(id(args[0]), None, "r"), own}
                        else:
                            footprint = {own}
                        footprint_vars["current"] = footprint
                        handle._run()
                        footprint_vars["current"] = None
                        if task.done():
                            footprint.add((id(task), None, "w"))
                        process = task._explorer_id
                    else:
                        footprint = callback_footprint(handle)
                        footprint.add((id(handle), CANCELLED, "r"))  # see _Handle.cancel
                        footprint_vars["current"] = footprint
                        handle._run()
                        footprint_vars["current"] = None
                        process = handle._process if type(handle) is _IOHandle else "loop"
                    # This step happens before every handle it scheduled. While it ran,
                    # call_soon only appended to the ready queue, which held n - 1
                    # handles when it started: the new ones are those past that.
                    after = len(ready)
                    if after == n:  # the common case: one, such as the task's next step
                        try:
                            ready[-1]._cause = index
                        except AttributeError:
                            set_cause(ready[-1], index, foreign)
                    elif after > n:
                        for i in range(n - 1, after):
                            queued = ready[i]
                            try:
                                queued._cause = index
                            except AttributeError:
                                set_cause(queued, index, foreign)
                    try:
                        enabler = handle._cause
                    except AttributeError:
                        enabler = cause_of(handle, foreign)
                    add_record((process, footprint, enabler, point))
                    index += 1
                    point = None
                if invariants:
                    self._check_invariants()
            if finish:  # once per run, out of the per-step loop
                self._finish_iterations(max(0, min(batch, len(ready))))
                cancel_served(self)
            if isinstance(main, asyncio.Future) and (main.cancelled() or main.exception()):
                self._wait_for_threads()  # a thread's late call may explain the failure
            return DONE
        except _Abort:
            return ABORTED
        finally:
            self._tracer = None
            self._choose = None
            self._last_task = last_task
            steps += self._ended  # the steps _finish_iterations ran, if it did
            self._ended = 0
            self.steps = steps
            self.stock_steps = steps - deviated - 1
            self._signature = signature
            self.points = points + self._decided
            self._decided = 0
            if recorder is not None:
                _footprint.current = None
                records[start:] = map(_new_record, repeat(StepRecord), records[start:])
                recorder.point = point
                recorder.points = points + point_base

    def _check_invariants(self) -> None:
        error = self._decide_error
        if error is not None:  # see decide(): the chooser failed inside the last step
            self._decide_error = None
            raise error
        broken = broken_invariant(self._invariants)
        if broken is not None:
            self._invariant_failure = broken
            raise _Abort

    def add_invariant(self, predicate: Callable[[], object], message: str,
                      where: Location | None) -> None:
        """Check ``predicate`` after every step from now on in this run."""
        self._invariants.append((predicate, message, where))

    def begin_cleanup(self) -> None:
        """The run is classified; what is left of it unwinds in stock order: no more
        invariants are checked and no timer races the ready work."""
        self._invariants.clear()
        self._timer_races = False

    def discard_pending(self) -> None:
        """Drop whatever the unwound run left queued (callbacks, timers)."""
        self._ready.clear()
        self._scheduled.clear()

    # ------------------------------------------------------------------ PointView
    # (candidate, candidates, process, processes: ReadyView)

    def recorded_steps(self) -> list[Any] | None:
        """The step records of this run so far while footprints are recorded, else None.

        While the loop drives, records are plain ``(process, footprint, enabler, point)``
        tuples (they become :class:`StepRecord` s when driving stops): read them by
        position."""
        tracer = self._tracer
        return tracer.steps if isinstance(tracer, FootprintRecorder) else None

    def current(self) -> str | None:
        """PointView: the task whose step ran last (see :meth:`PointView.current`)."""
        handle = self._last_task
        if handle is None:
            return None
        return self.task_id(handle._callback.__self__)

    # ------------------------------------------------------------------ controlled choices

    def decide(self, options: Sequence[Candidate]) -> int:
        """A choice made inside the running step among ``options`` (0: what stock asyncio
        does), by the drive's chooser, recorded as a scheduling point (replayed, a
        deviation when non-zero, shrunk; a step of a readable trace, taken or not). 0
        without a decision for fewer than two options, outside a drive, once the step
        bound forces the stock order, or after the chooser failed in this step: its error
        (a diverged replay) is kept from the scenario's code, which could catch it, and
        raised out of :meth:`drive` after the step by the per-step invariant check (one
        always-true invariant makes it run), so the hot path pays nothing."""
        choose = self._choose
        count = len(options)
        if choose is None or count < 2 or self._decide_error is not None or self._forced:
            return 0
        try:
            chosen = choose(count, OptionsView(options))
        except BaseException as exc:  # noqa: BLE001 - re-raised out of drive(), see above
            self._decide_error = exc
            self._invariants.append(_ALWAYS)
            return 0
        self._decisions.append(chosen)
        self._decided += 1
        self._fault_deviated = self._fault_deviated or chosen > 0
        tracer = self._tracer
        if tracer is not None and not isinstance(tracer, FootprintRecorder):
            tracer.fault(options[chosen], chosen, count)
        return chosen

    # ------------------------------------------------------------------ scheduling API

    def time(self) -> float:
        return self._now

    def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                  context: Context | None = None) -> events.Handle:
        kind = type(callback)
        if kind is _STEP_TYPE or (kind is _WAKEUP_TYPE and callback.__name__ == "task_wakeup") \
                or (kind is MethodType and callback.__func__ in _PY_TASK_METHODS):  # type: ignore[attr-defined]
            # Built slot by slot: the same state Handle.__init__ sets, without its call
            # overhead (this runs for every task step; the self-test checks the slots).
            if self._debug:  # keeps Handle's source-traceback capture in debug mode
                handle: _Handle = _TaskHandle(callback, args, self, context)
            else:
                handle = _new_handle(_TaskHandle)
                handle._context = context if context is not None else copy_context()
                handle._loop = self
                handle._callback = callback
                handle._args = args
                handle._cancelled = False
                handle._repr = None
                handle._source_traceback = None
        else:
            handle = _Handle(callback, args, self, context)
            self._ncallbacks += 1
        ready = self._ready
        index = self._index
        if index.active and index.synced == len(ready):  # classified now, not at a point
            if type(handle) is _TaskHandle:  # ReadyIndex.push, inline for the common case
                handle._seq = seq = index.counter
                index.eligible.append(handle)
                index.eseq.append(seq)
                if index.tracked:  # who it is, and that it is not described yet, beside it
                    try:  # ReadyIndex.beside, inline: its task's id, given at creation
                        index.eproc.append(callback.__self__._explorer_id)  # type: ignore[attr-defined]
                    except AttributeError:  # none yet (a task adopted once created)
                        index.eproc.append(None)
                        index.unknown += 1
                    index.edesc.append(None)
                    index.fresh += 1
                index.counter = seq + 1
                index.synced += 1
            else:
                index.push(handle)
        ready.append(handle)
        return handle

    def _call_io(self, callback: Callable[..., object], *args: Any,
                 process: str, after: tuple[events.Handle, ...] = ()) -> events.Handle:
        """Queue a network callback (:class:`_IOHandle`): ``process`` names who it belongs
        to (a connection's direction, a listener) for the strategies that ask; it is held
        behind ``after`` as :meth:`_call_held` says."""
        handle = _IOHandle(callback, args, self, None)
        handle._process = process
        handle._after = after
        self._ncallbacks += 2 if after else 1
        self._nspecial += 1
        self._ready.append(handle)
        return handle

    def _call_held(self, callback: Callable[..., object], *args: Any,
                   after: tuple[events.Handle, ...]) -> events.Handle:
        """Queue a plain callback that is no candidate while any handle of ``after``
        (all queued before it) is still queued: an event of a connection never overtakes
        the work its protocol's previous callback queued, as on a real loop, where that
        work is queued before the next poll delivers the event (``_network``)."""
        if not after:
            return self.call_soon(callback, *args)
        handle = _HeldHandle(callback, args, self, None)
        handle._after = after
        self._ncallbacks += 2  # counted twice while held, so drive() filters candidates
        self._nspecial += 1
        self._ready.append(handle)
        return handle

    def _queue_mark(self) -> int:
        """Where the ready queue ends now; :meth:`_queued_since` takes it."""
        return len(self._ready)

    def _queued_since(self, mark: int) -> tuple[events.Handle, ...]:
        """The task steps and plain callbacks queued since ``mark`` in the running step."""
        return queued_since(self._ready, mark)

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object],
                *args: *_Ts, context: Context | None = None) -> events.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        timer = _TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        if self._tracer is not None:
            self._tracer.scheduled_timer(timer)
        return timer

    def call_soon_threadsafe(self, callback: Callable[[Unpack[_Ts]], object],
                             *args: *_Ts,
                             context: Context | None = None) -> events.Handle:
        if threading.get_ident() != self._owner_thread:
            # Refused in the calling thread, and recorded as the outcome of the run in
            # progress: the loop never runs work a thread hands it at a real-time moment.
            thread = threading.current_thread()
            what = getattr(callback, "__qualname__", type(callback).__name__)
            err = self._escape(
                f"loop.call_soon_threadsafe({what}) from thread {thread.name!r}",
                "that thread runs outside the controlled schedule, so when its callback "
                "arrives depends on real time; keep the scenario's work on the loop: "
                "asyncio.to_thread and run_in_executor run inline here, and so do "
                "aiosqlite connections (and SQLAlchemy engines over them) opened inside "
                "the scenario; a library that answers from its own thread (started "
                "before the run or by the library) needs an in-memory fake",
            )
            self._foreign_seen = True
            self._foreign_call.set()
            raise err
        return self.call_soon(callback, *args, context=context)

    def _wait_for_threads(self) -> None:
        """The run is about to end as a deadlock (nothing ready, no timer) or with its main
        task failed (for example a ``wait_for`` timeout, which virtual time reaches at
        once): let a thread that is still working call back first, so that its call is
        reported as the escape it is rather than as a lost wake-up or a bare
        ``TimeoutError``. A passing run never waits.

        Waits at most :data:`THREAD_GRACE` seconds of real time, once per run, and only
        while a thread other than this one and the explorer's own (named ``explorer...``)
        is alive; a process without such threads pays nothing. Idle threads that never
        call (an SDK's exporter, a cluster's own threads) cost at most
        :data:`FRUITLESS_WAITS` waits per exploration (the runtime carries the count from one
        session to the next): after that the loop waits again only
        once some thread has called it."""
        if self._waited_for_threads or self._escapes:  # an escape already decided it
            return
        self._waited_for_threads = True
        if not self._foreign_seen and self._fruitless_waits >= FRUITLESS_WAITS:
            return
        current = threading.current_thread()
        others = any(t is not current and not t.name.startswith("explorer")
                     for t in threading.enumerate())
        if others and not self._foreign_call.wait(THREAD_GRACE):
            self._fruitless_waits += 1

    def create_task(self, coro: Generator[Any, None, _T] | Coroutine[Any, Any, _T], *,
                    name: object = None, context: Context | None = None,
                    **kwargs: Any) -> asyncio.Task[_T]:
        if kwargs:
            kwargs.pop("eager_start", None)  # every task start must be a scheduling point
        parent = _current_task(self)
        parent_id = getattr(parent, "_explorer_id", "main") if parent is not None else "loop"
        qualname = getattr(coro, "__qualname__", None) or type(coro).__name__
        qualname = qualname.rpartition("<locals>.")[2]
        key = (parent_id, qualname)
        index = self._spawn_counts.get(key, 0) + 1
        self._spawn_counts[key] = index
        task_id = f"{parent_id}/{qualname}#{index}"
        task: asyncio.Task[Any]
        if self._custom_task_constructor is None and self._task_factory is None:
            # _new_task, inline: a call fewer for every task of every run
            task = made = _new_future(_Task)
            made._explorer_hash = len(self.tasks)  # before __init__, which hashes it
            made._explorer_id = task_id  # before __init__ queues its first step
            made._explorer_read = (id(made), None, "r")
            _task_init(made, coro, loop=self, name=str(name or task_id), context=context)
        else:
            if self._custom_task_constructor is not None:
                task = self._custom_task_constructor(coro, loop=self, name=name or task_id,
                                                     context=context, **kwargs)
            else:
                task = self._task_factory(self, coro, context=context, **kwargs)
                task.set_name(name or task_id)
            task._explorer_read = (id(task), None, "r")  # type: ignore[attr-defined]
        task._explorer_id = task_id  # type: ignore[attr-defined]  # user task classes too
        self.tasks.append(task)
        return task

    def create_main_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = _new_task(coro, self, 0, "main", None)
        task._explorer_id = "main"
        self.tasks.append(task)
        return task

    def set_task_factory(self, factory: Any) -> None:
        # Neutralise eager task factories: an eager start runs a task's first step
        # synchronously inside its parent's step, which would hide a scheduling point.
        if getattr(factory, "__qualname__", None) == _EAGER_FACTORY_QUALNAME:
            cells = getattr(factory, "__closure__", None) or ()
            constructor = cells[0].cell_contents if cells else asyncio.Task
            self._custom_task_constructor = (
                None if constructor is asyncio.Task else constructor
            )
            self._task_factory = None
            return
        self._custom_task_constructor = None
        super().set_task_factory(factory)

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)  # BaseEventLoop.__init__ calls this too
        # The C Future and Task ask their loop get_debug() as each is made (a dozen times
        # a run): answered by a C callable, that is no Python call. _debug is set only here.
        self.get_debug = repeat(enabled).__next__  # type: ignore[method-assign]

    # ------------------------------------------------------------------ errors and hooks

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # Messages about a task or future come from __del__ (garbage-collection timing,
        # possibly of an earlier run); unretrieved exceptions are checked explicitly at the
        # end of each run instead. A failing callback aborts the run at once.
        if "handle" in context and context.get("exception") is not None:
            self._callback_errors.append(context)
            raise _Abort
        if "task" not in context and "future" not in context:
            self._callback_errors.append(context)

    def _escape(self, what: str, fix: str) -> EscapeError:
        err = EscapeError(f"the scenario called {what}, which the controlled loop refuses: "
                          f"{fix}")
        err.location = caller_location(2)
        self._escapes.append(err)
        return err

    def run_in_executor(self, executor: Any, func: Callable[[Unpack[_Ts]], _T],
                        *args: *_Ts) -> asyncio.Future[_T]:
        """Run ``func`` inline, as one atomic step of its own (documented; no thread is
        started).

        The call is served by a network-like callback (:meth:`_call_io`), so the caller is
        suspended as it is on a real thread pool: other tasks may run before the function
        runs and before the caller resumes, which is where races across ``to_thread``
        live (a check, ``await asyncio.to_thread(...)``, then an act). Running it at
        submission instead would make check-then-act across it atomic, hiding those races.

        A process pool is refused: inline, ``func`` would share the scenario's memory and
        skip pickling, which a child process never does."""
        pools = sys.modules.get("concurrent.futures.process")  # never imported for this
        if pools is not None and isinstance(executor, pools.ProcessPoolExecutor):
            raise self._escape("loop.run_in_executor() with a ProcessPoolExecutor",
                               PROCESS_FIX)
        future: asyncio.Future[_T] = self.create_future()
        self._executor_calls += 1
        call = ExecutorCall(future, func, args)
        self._call_io(call, process=f"worker thread {self._executor_calls}")
        return future

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()
        self._scheduled.clear()

    def _process_events(self, event_list: Any) -> None:
        return None

    def _write_to_self(self) -> None:
        return None

    def run_forever(self) -> None:
        raise self._escape(
            "loop.run_forever()",
            "the explorer drives this loop itself; write the scenario as an async "
            "function and let explorer.explore() run it",
        )

    def run_until_complete(self, future: Any) -> Any:
        if asyncio.iscoroutine(future):
            future.close()
        raise self._escape(
            "loop.run_until_complete()",
            "the explorer drives this loop itself; await the coroutine instead",
        )


_ALWAYS: Final = (lambda: True, "", None)


refuse_unsimulated(ControlledLoop)  # what would reach outside the controlled world
