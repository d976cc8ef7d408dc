"""The candidates of the controlled loop's ready queue, kept up to date as it changes.

Invariant enforced here: while a :class:`ReadyIndex` is active, ``eligible`` holds exactly
the candidates of the ready queue, in queue order, and ``plain`` every plain callback
queued, in queue order. Candidate ``i`` is ``eligible[i]``: the same handle as the
``i``-th index of :func:`~explorer._asyncio._handles.eligible_indices`, so candidate
numbering (what ``v1:`` schedules record) is that of a scan of the queue, and
``eligible[0]`` is its head, what stock asyncio runs next.

No scheduling point scans the queue. The loop only appends to it while it drives, and
removes handles through :meth:`ReadyIndex.take`; each handle appended is classified once,
as ``call_soon`` queues it or at the next point (:meth:`ReadyIndex.sync`), and numbered
in queue order. Every task step and network callback is a candidate, and of the plain
callbacks only the first (asyncio's documented first-in first-out order among them):
when it leaves, the next plain callback becomes a candidate, put among the others by its
number. So a point costs amortized constant time in the number of ready handles, with
C-level work (a bisection, a removal by index) that grows only slowly.

Holds (:class:`~explorer._asyncio._handles.HeldHandle`, network callbacks queued behind
others) are not tracked: while the loop has one queued it filters candidates with the
scan, and it makes the index again (:meth:`ReadyIndex.rebuild`) once none is left. So
does it after anything else changed the queue (a purge of cancelled handles, the end of a
drive): the index is then inactive until rebuilt.

Also here: a candidate's description, built once per ready handle and kept on it until
it runs (:func:`described`; the task's frames cannot change while it waits), its cheap
identity (:func:`process_of`), and the loop's queue and timer bookkeeping
(:class:`ReadyQueue`).
"""

from __future__ import annotations

import asyncio
import heapq
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from itertools import islice
from types import CodeType, FrameType
from typing import Any, Final, Protocol

from explorer._asyncio._handles import IOHandle, TaskHandle, count_callbacks, count_special
from explorer._asyncio._inspect import callback_name, coroutine_frames, handle_owner, waiting_on
from explorer._asyncio._stephash import StepHasher
from explorer._locations import frame_location, is_user_file
from explorer._runtime import Candidate, Location

_PLACES: Final = 100_000


class ReadyIndex:
    """The candidates of one ready queue (module docstring). Each handle's number in queue
    order is kept beside it (``eseq``, ``pseq``: plain lists of ints, which ``bisect``
    searches at C speed), not on the handle."""

    __slots__ = ("active", "counter", "eligible", "eseq", "plain", "pseq", "ready", "synced")

    def __init__(self, ready: deque[Any]) -> None:
        self.ready = ready
        self.eligible: list[Any] = []  # the candidates, in queue order
        self.eseq: list[int] = []  # their numbers
        self.plain: list[Any] = []  # every plain callback queued, in queue order
        self.pseq: list[int] = []  # their numbers
        self.synced = 0  # how many handles of the queue (from its head) are classified
        self.counter = 0  # the next handle's number (never reused: order across syncs)
        self.active = False

    def rebuild(self) -> bool:
        """Classify the whole queue afresh and become active."""
        for kept in (self.eligible, self.eseq, self.plain, self.pseq):
            kept.clear()
        self.synced = 0
        self.active = True
        return self.sync()

    def sync(self) -> bool:
        """Classify the handles appended since the last look (True: the loop's
        ``a or b`` reads it as "the index is usable")."""
        ready = self.ready
        end = len(ready)
        for position in range(self.synced, end):  # near the tail: O(1) deque indexing
            self.push(ready[position])
        self.synced = end
        return True

    def push(self, handle: Any) -> None:
        """Classify ``handle``, the next one in queue order (appended, or about to be)."""
        seq = self.counter
        self.counter = seq + 1
        self.synced += 1
        if type(handle) is TaskHandle or type(handle) is IOHandle:
            self.eligible.append(handle)
            self.eseq.append(seq)
            return
        plain = self.plain
        if not plain:  # the first plain callback is a candidate
            self.eligible.append(handle)
            self.eseq.append(seq)
        plain.append(handle)
        self.pseq.append(seq)

    def take(self, index: int) -> Any:
        """Remove candidate ``index`` from the queue and the index; return its handle.
        The queue must be synced (:meth:`sync`)."""
        eligible = self.eligible
        eseq = self.eseq
        handle = eligible[index]
        plain = self.plain
        if index == 0:  # the head of the queue is always candidate 0
            self.ready.popleft()
        else:
            position = index
            if plain and plain[0] is not handle:
                # Before the handle in the queue: the candidates before it, less the first
                # plain callback if that is one of them, plus every plain callback before it.
                mark = eseq[index]
                pseq = self.pseq
                position += bisect_left(pseq, mark)
                if pseq[0] < mark:
                    position -= 1
            del self.ready[position]
        del eligible[index]
        del eseq[index]
        if plain and plain[0] is handle:
            pseq = self.pseq
            del plain[0]
            del pseq[0]
            if plain:  # the next plain callback becomes a candidate, in its place
                mark = pseq[0]
                at = bisect_left(eseq, mark)
                eligible.insert(at, plain[0])
                eseq.insert(at, mark)
        self.synced -= 1
        return handle


class Namer(Protocol):
    """What describing a candidate needs of the loop: stable names of tasks and of the
    resources they wait on."""

    def task_id(self, task: asyncio.Future[Any] | None) -> str: ...

    def resource_name(self, resource: object) -> str: ...


TIMER: Final = Candidate(None, "timer", None, "fire timer", None)

# Locations by code object and line: a suspended task stands at one of the few awaits of
# its code, so the same few Location values are asked for again and again.
_places: dict[tuple[CodeType, int], Location] = {}


def _user_place(frames: list[FrameType]) -> Location | None:
    """:func:`~explorer._locations.user_location`, with the Location values shared."""
    for frame in reversed(frames):
        if is_user_file(frame.f_code.co_filename):
            break
    else:
        if not frames:
            return None
        frame = frames[-1]
    code = frame.f_code
    key = (code, frame.f_lineno or code.co_firstlineno)
    found = _places.get(key)
    if found is None:
        if len(_places) > _PLACES:  # code objects of many explorations: start afresh
            _places.clear()
        found = _places[key] = frame_location(frame)
    return found



def described(namer: Namer, handle: Any) -> Candidate:
    """The ready ``handle`` as a candidate. Built once and cached on the handle (its
    ``_described`` slot): while it is queued its task is suspended, so its frames, the
    operation it waits on and its kind of step cannot change until it runs."""
    # getattr with a default: an unset slot raises no Python-level exception (a raised
    # and caught AttributeError costs more than the rest of a cached read).
    found: Candidate | None = getattr(handle, "_described", None)
    if found is not None:
        return found
    task, kind = handle_owner(handle)
    if task is None:
        candidate = Candidate(None, kind, None, callback_name(handle), None)
    else:
        frames = coroutine_frames(task)  # walked once, for both
        op, resource = waiting_on(task, frames)
        candidate = Candidate(namer.task_id(task), kind, _user_place(frames),
                              op, namer.resource_name(resource) if resource is not None
                              else None)
    try:  # noqa: SIM105 - suppress() would build a context manager per description
        handle._described = candidate
    except AttributeError:  # a handle without the slot: described when asked
        pass
    return candidate


def process_of(namer: Namer, handle: Any) -> str:
    """Who a ready handle belongs to (:meth:`~explorer._runtime.PointView.process`)."""
    kind = type(handle)
    if kind is TaskHandle:
        task = handle._callback.__self__
        try:  # the loop's own tasks (and adopted ones) carry their id
            return task._explorer_id  # type: ignore[no-any-return]
        except AttributeError:
            return namer.task_id(task)
    if kind is IOHandle:
        return handle._process  # type: ignore[no-any-return]
    return "loop"


def point_handles(candidates: Sequence[Any], eligible: list[int] | None,
                  count: int) -> list[Any]:
    """The handles of the first ``count`` candidates: ``candidates[i]``, or
    ``candidates[eligible[i]]`` when the queue was filtered by a scan."""
    if eligible is not None:
        return [candidates[j] for j in eligible[:count]]
    return list(islice(candidates, count))


class ReadyQueue:
    """The ready queue and the timers of the controlled loop, in stock asyncio's terms
    (``BaseEventLoop._run_once``): expired timers join the queue, the clock jumps to the
    next timer when nothing is ready, cancelled handles leave it; and the summaries of a
    run the determinism check compares (:meth:`fingerprint`, :meth:`step_hash`). A base of
    ``ControlledLoop``, which declares the state (``_loop``)."""

    _ready: deque[Any]
    _scheduled: list[Any]
    _now: float
    _dirty: bool
    _forced: bool
    _ended: int
    _ncallbacks: int
    _nspecial: int
    _index: ReadyIndex
    _invariants: list[Any]

    def _check_invariants(self) -> None:
        raise NotImplementedError  # ControlledLoop's

    def _finish_iterations(self, left: int) -> None:
        """``main`` is done: run the ``left`` handles that remain of the current loop
        iteration, then one more iteration, and stop (module docstring, "The end of a
        run"). Stock order, no decision, no clock advance; invariants are still checked
        after every step."""
        self._forced = True  # decide() makes no decision and injects no fault from here
        ready = self._ready
        scheduled = self._scheduled
        invariants = self._invariants
        for last in (False, True):
            # Handles queued by these steps run in the next iteration, as in _run_once:
            # only `left` are taken, however the queue grows meanwhile.
            try:
                for _ in range(left):
                    handle = ready.popleft()
                    if handle._cancelled:
                        continue
                    self._ended += 1
                    handle._run()
                    if invariants:
                        self._check_invariants()
            finally:  # counted once here rather than per step (held handles count twice)
                self._ncallbacks = count_callbacks(ready) if ready else 0
            if last:
                return
            # The iteration in which run_until_complete's done-callback calls stop(): the
            # timers already due join it; time does not move (stop() makes the selector
            # poll without waiting).
            if scheduled and scheduled[0]._when <= self._now:
                self._pop_expired_timers()
            left = len(ready)

    def _pop_expired_timers(self) -> None:
        ready = self._ready
        scheduled = self._scheduled
        now = self._now
        while scheduled and scheduled[0]._when <= now:
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            if not handle._cancelled:
                ready.append(handle)
                self._ncallbacks += 1

    def _drop_cancelled_timers(self) -> None:
        scheduled = self._scheduled
        while scheduled and scheduled[0]._cancelled:
            heapq.heappop(scheduled)._scheduled = False

    def _has_live_timer(self) -> bool:
        self._drop_cancelled_timers()
        return bool(self._scheduled)

    def _advance_clock(self) -> bool:
        """Nothing is ready: jump to the earliest live timer. False if there is none."""
        self._drop_cancelled_timers()
        if not self._scheduled:
            return False
        self._now = max(self._now, self._scheduled[0]._when)
        self._pop_expired_timers()
        return True

    def _fire_next_timer(self) -> None:
        """The "timer" candidate: time passes now, so the earliest timers become ready."""
        self._drop_cancelled_timers()
        self._now = max(self._now, self._scheduled[0]._when)
        self._pop_expired_timers()

    def _purge_cancelled(self, batch: int) -> int:
        """Remove cancelled handles from the ready queue; return how many of them were
        among the first ``batch`` (the rest of the current stock iteration).

        Only those shorten the iteration: a cancelled handle queued after them belongs to
        the next one, and counting it would end this iteration early, so expired timers
        would join the queue ahead of handles that stock asyncio runs before them."""
        self._dirty = False
        ready = self._ready
        live = [h for h in ready if not h._cancelled]
        removed = len(ready) - len(live)
        if not removed:
            return 0
        in_batch = sum(1 for h in islice(ready, max(batch, 0)) if h._cancelled)
        ready.clear()
        ready.extend(live)
        self._ncallbacks = count_callbacks(live)
        self._nspecial = count_special(live)
        self._index.active = False  # handles left the queue behind its back
        return in_batch

    # ------------------------------------------------------------ the determinism check

    tasks: list[asyncio.Task[Any]]
    _signature: int
    _fingerprinted: bool
    _hasher: StepHasher | None

    def fingerprint(self) -> int:
        """A cheap summary of the run so far for the determinism check
        (:attr:`~explorer._runtime.RunStats.fingerprint`): the candidate counts at its
        points and the ids of the tasks it created; 0, not computed, unless the run is
        hashed or traced (the runs the check compares)."""
        if not self._fingerprinted:
            return 0
        ids = tuple(getattr(task, "_explorer_id", "") for task in self.tasks)
        return hash((self._signature, ids)) & 0xFFFFFFFFFFFF

    def step_hash(self) -> int | None:
        """The hash of every step of a hashed run (:class:`RunMode` ``hashed``), else None."""
        return self._hasher.value if self._hasher is not None else None
