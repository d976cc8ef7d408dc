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

Holds (a :class:`~explorer._asyncio._handles.HeldHandle`, or a network callback queued
behind others) are tracked too: a handle queued while some of what it waits for is still
queued is counted as blocked, and each of those handles as one it waits for; when the
last of them leaves through :meth:`ReadyIndex.take`, the hold ends (``release``) and the
handle becomes a candidate as if just queued, put among the others by its number (a
plain one only if it is the first plain callback, held or not, as in the scan). Whether
one of those is still queued is read from its number (``_seq``, given as it is
classified) by bisection; a point costs nothing more. The loop makes the index again
(:meth:`ReadyIndex.rebuild`) after anything else changed the queue (a purge of cancelled
handles, the end of a drive): the index is then inactive until rebuilt.

Once a strategy reads who the candidates are or their descriptions, the index keeps
them beside its candidates (``eproc``, ``edesc``; :meth:`ReadyIndex.track`), maintained
as candidates come and go: a point's lists are then copies of lists (C speed), with
Python code only for the candidates that arrived since the last point (a description is
made lazily, once per handle). Strategies that read neither pay nothing for them.

Also here: a candidate's description, built once per ready handle and kept on it until
it runs (:func:`described`; the task's frames cannot change while it waits), its cheap
identity (:func:`process_of`), the loop's view of a point's candidates
(:class:`ReadyView`), and the loop's queue and timer bookkeeping (:class:`ReadyQueue`).
"""

from __future__ import annotations

import asyncio
import heapq
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from itertools import islice, repeat
from types import CodeType, CoroutineType, FrameType
from typing import Any, Final, Protocol

from explorer._asyncio._handles import (
    HeldHandle,
    IOHandle,
    TaskHandle,
    count_callbacks,
    count_special,
    release,
)
from explorer._asyncio._inspect import callback_name, coroutine_frames, handle_owner
from explorer._asyncio._stephash import StepHasher
from explorer._locations import frame_location, is_user_file
from explorer._runtime import Candidate, Location

_PLACES: Final = 100_000


class ReadyIndex:
    """The candidates of one ready queue (module docstring). Each handle's number in queue
    order is kept beside it (``eseq``, ``pseq``, ``hseq``: plain lists of ints, which
    ``bisect`` searches at C speed), not on the handle; so, once tracked, are who each
    candidate is and its description (``eproc``, ``edesc``), index for index with
    ``eligible`` wherever a candidate comes or goes (``beside``, ``drop``)."""

    __slots__ = ("active", "blocked", "counter", "edesc", "eligible", "eproc", "eseq", "fresh",
                 "hseq", "plain", "pseq", "ready", "synced", "tracked", "unknown", "waiting")

    def __init__(self, ready: deque[Any]) -> None:
        self.ready = ready
        self.eligible: list[Any] = []  # the candidates, in queue order
        self.eseq: list[int] = []  # their numbers
        # Once a strategy reads them (tracked, see track()), until the next rebuild: who
        # each candidate is and its description, None until known, and how many of each
        # are None, so that a point's lists are copies (processes(), descriptions()).
        self.tracked = False
        self.eproc: list[str | None] = []
        self.edesc: list[Candidate | None] = []
        self.unknown = self.fresh = 0
        self.plain: list[Any] = []  # every plain callback queued (held or not), in order
        self.pseq: list[int] = []  # their numbers
        self.hseq: list[int] = []  # the numbers of the network callbacks still held
        # Holds: id of a held handle -> [how many handles it waits for are queued, its
        # number]; id of such a handle -> the held handles that wait for it.
        self.blocked: dict[int, list[int]] = {}
        self.waiting: dict[int, list[Any]] = {}
        self.synced = 0  # how many handles of the queue (from its head) are classified
        self.counter = 0  # the next handle's number (never reused: order across syncs)
        self.active = False

    def rebuild(self) -> bool:
        """Classify the whole queue afresh and become active."""
        for kept in (self.eligible, self.eseq, self.eproc, self.edesc, self.plain, self.pseq,
                     self.hseq, self.blocked, self.waiting):
            kept.clear()
        self.tracked = False
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
        handle._seq = seq
        kind = type(handle)
        if kind is TaskHandle:
            self.eligible.append(handle)
            self.eseq.append(seq)
            if self.tracked:
                self.beside(handle)
            return
        held = (kind is IOHandle or kind is HeldHandle) and bool(handle._after) \
            and self._hold(handle, seq)
        if kind is IOHandle:  # a candidate unless held, whatever the plain callbacks do
            if held:
                self.hseq.append(seq)
            else:
                self._candidate(handle, seq)
            return
        plain = self.plain
        if not plain and not held:  # the first plain callback is a candidate
            self._candidate(handle, seq)
        plain.append(handle)
        self.pseq.append(seq)

    def _hold(self, handle: Any, seq: int) -> bool:
        """Whether ``handle`` (number ``seq``) is held: some of what it waits for is still
        queued. If so, it is recorded as blocked until those leave; else its hold ends."""
        waits = {id(before) for before in handle._after if self._queued(before)}
        if not waits:
            release(handle)
            return False
        self.blocked[id(handle)] = [len(waits), seq]
        waiting = self.waiting
        for key in waits:
            waiting.setdefault(key, []).append(handle)
        return True

    def _queued(self, before: Any) -> bool:
        """Whether ``before``, queued before the handle being classified, is still queued:
        then this index numbered it, and the number is among those of the candidates, of
        the plain callbacks or of the held network callbacks. A number from before the
        last rebuild is in none of them: that handle left the queue."""
        seq = getattr(before, "_seq", -1)
        for numbers in (self.eseq, self.pseq, self.hseq):
            at = bisect_left(numbers, seq)
            if at < len(numbers) and numbers[at] == seq:
                return True
        return False

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
            # Before the handle in the queue: the candidates before it, plus every plain
            # callback before it less the first if that is a candidate before it, plus
            # the held network callbacks before it.
            position = index
            mark = eseq[index]
            if plain and plain[0] is not handle:
                pseq = self.pseq
                position += bisect_left(pseq, mark)
                if pseq[0] < mark and not (self.blocked and id(plain[0]) in self.blocked):
                    position -= 1
            if self.hseq:
                position += bisect_left(self.hseq, mark)
            del self.ready[position]
        del eligible[index], eseq[index]
        if self.tracked:
            self.drop(index)
        if plain and plain[0] is handle:
            pseq = self.pseq
            del plain[0]
            del pseq[0]
            if plain and not (self.blocked and id(plain[0]) in self.blocked):
                self._candidate(plain[0], pseq[0])  # the next plain callback, in its place
        self.synced -= 1
        if self.waiting:
            self._left(handle)
        return handle

    def _candidate(self, handle: Any, seq: int) -> None:
        """Put ``handle`` (number ``seq``) among the candidates, in queue order."""
        at = bisect_left(self.eseq, seq)
        self.eligible.insert(at, handle)
        self.eseq.insert(at, seq)
        if self.tracked:
            self.beside(handle, at)

    def track(self) -> None:
        """Keep who each candidate is and its description beside it from now on, until
        the next rebuild: a strategy reads them."""
        self.eproc[:] = map(known_process, self.eligible)
        self.unknown = self.eproc.count(None)
        self.edesc[:] = repeat(None, len(self.eligible))
        self.fresh = len(self.edesc)
        self.tracked = True

    def beside(self, handle: Any, at: int | None = None) -> None:
        """``handle`` became a candidate, the last (or the ``at``-th): keep who it is,
        if known, and that it is not described yet."""
        process = known_process(handle)
        self.unknown += process is None
        self.fresh += 1
        if at is None:
            self.eproc.append(process)
            self.edesc.append(None)
        else:
            self.eproc.insert(at, process)
            self.edesc.insert(at, None)

    def drop(self, index: int) -> None:
        """Candidate ``index`` left: what was kept beside it goes."""
        self.unknown -= self.eproc[index] is None
        self.fresh -= self.edesc[index] is None
        del self.eproc[index], self.edesc[index]

    def processes(self, namer: Namer, count: int) -> list[str]:
        """Who each of the first ``count`` candidates is (:func:`process_of`): a copy of
        ``eproc``, once the few not known yet are found (and kept if known for good)."""
        if not self.tracked:
            self.track()
        if self.unknown:  # a task queued its first step before it was named (adopted)
            eproc = self.eproc
            eligible = self.eligible
            for at in self._missing(eproc, self.unknown):
                eproc[at] = known_process(eligible[at])
                self.unknown -= eproc[at] is not None
            if self.unknown:  # tasks no run named: asked each time (NamingLoop.task_id)
                return [process_of(namer, handle) for handle in eligible[:count]]
        return self.eproc[:count]  # type: ignore[return-value]  # no None left

    def descriptions(self, namer: Namer, count: int) -> list[Candidate]:
        """The first ``count`` candidates described (:func:`described`): a copy of
        ``edesc``, once those not described yet are, in candidate order (the order in
        which resources are first named)."""
        if not self.tracked:
            self.track()
        if self.fresh:
            edesc = self.edesc
            eligible = self.eligible
            for at in self._missing(edesc, self.fresh):
                if at < count:
                    edesc[at] = described(namer, eligible[at])
                    self.fresh -= 1
        return self.edesc[:count]  # type: ignore[return-value]  # no None left

    @staticmethod
    def _missing(kept: Sequence[object], count: int) -> list[int]:
        """Where the ``count`` None entries of ``kept`` are, in order. Looked for from the
        end, where new candidates arrive: no comparison with the others (a description's
        ``==`` is Python code) and no pass over them."""
        found: list[int] = []
        at = len(kept)
        while len(found) < count:
            at -= 1
            if kept[at] is None:
                found.append(at)
        found.reverse()
        return found

    def _left(self, handle: Any) -> None:
        """``handle`` left the queue: the holds it was the last reason for end."""
        held_by = self.waiting.pop(id(handle), None)
        if held_by is None:
            return
        blocked = self.blocked
        for held in held_by:
            entry = blocked[id(held)]
            entry[0] -= 1
            if entry[0]:
                continue
            del blocked[id(held)]
            release(held)
            seq = entry[1]
            if type(held) is IOHandle:
                hseq = self.hseq
                del hseq[bisect_left(hseq, seq)]
                self._candidate(held, seq)
            elif self.plain[0] is held:  # else it waits for the plain callbacks before it
                self._candidate(held, seq)


class Namer(Protocol):
    """What describing a candidate needs of the loop: stable names of tasks and of the
    resources they wait on."""

    def task_id(self, task: asyncio.Future[Any] | None) -> str: ...

    def resource_name(self, resource: object) -> str: ...


TIMER: Final = Candidate(None, "timer", None, "fire timer", None)

# Locations by code object and line: a suspended task stands at one of the few awaits of
# its code, so the same few Location values are asked for again and again.
_places: dict[tuple[CodeType, int], Location] = {}
# The same, by code object and instruction offset: the line follows from the offset
# alone while no tracer is on the frame, and the offset is cheaper to read.
_spots: dict[tuple[CodeType, int], Location] = {}
# What describing asks of each frame's code, answered once per code object: whether it
# is user code, its qualified name, whether it can hold a ``self`` local (else
# ``f_locals.get("self")`` is None: no locals dict is built), whether it is a ``sleep``.
_codes: dict[CodeType, tuple[bool, str, bool, bool]] = {}
# Kinds of task steps by callback type, for types whose callbacks have no name of their
# own (the C task's step wrapper): a callback's name is then its type's, so is its kind.
# "" for the other types (bound methods: each has its own name, read each time).
_nameless: dict[type, str] = {}
# The slots of a candidate, set directly: a frozen record's __init__ goes through
# object.__setattr__ field by field, about twice what setting the slot descriptors costs.
# The object is the same frozen Candidate (equality, hash, repr, replace() unchanged).
_new = object.__new__
_slots: Final[Any] = vars(Candidate)  # the slot descriptors, by field name
_set_task = _slots["task"].__set__
_set_kind = _slots["kind"].__set__
_set_location = _slots["location"].__set__
_set_operation = _slots["operation"].__set__
_set_resource = _slots["resource"].__set__


def _place(frame: FrameType) -> Location:
    """:func:`~explorer._locations.frame_location` of ``frame``, shared per code and line
    (and per code and offset while the frame is not traced)."""
    code = frame.f_code
    spot = (code, frame.f_lasti) if frame.f_trace is None else None
    if spot is not None:
        found = _spots.get(spot)
        if found is not None:
            return found
    key = (code, frame.f_lineno or code.co_firstlineno)
    found = _places.get(key)
    if found is None:
        if len(_places) > _PLACES:  # code objects of many explorations: start afresh
            _places.clear()
            _spots.clear()
        found = _places[key] = frame_location(frame)
    if spot is not None:
        if len(_spots) > _PLACES:
            _spots.clear()
        _spots[spot] = found
    return found


def _code_facts(code: CodeType) -> tuple[bool, str, bool, bool]:
    """``_codes[code]``, computed (see ``_codes``)."""
    if len(_codes) > _PLACES:
        _codes.clear()
    names = code.co_varnames + code.co_cellvars + code.co_freevars
    found = _codes[code] = (is_user_file(code.co_filename),
                            getattr(code, "co_qualname", code.co_name),
                            "self" in names, code.co_name == "sleep")
    return found


def _task_owner(handle: Any) -> tuple[asyncio.Task[Any] | None, str]:
    """:func:`~explorer._asyncio._inspect.handle_owner`, with the kind of a nameless
    step callback (the C task's) read by its type."""
    callback = handle._callback
    owner = getattr(callback, "__self__", None)
    if not isinstance(owner, asyncio.Task):
        return None, "callback"
    kind = _nameless.get(type(callback))
    if kind is None:
        kind = _nameless[type(callback)] = _type_kind(type(callback))
    if not kind:  # callbacks of this type may carry names of their own
        return handle_owner(handle)
    if kind != "step":
        return owner, kind
    coro = owner.get_coro()
    if type(coro) is CoroutineType:  # inspect.getcoroutinestate(coro) == CORO_CREATED
        created = not (coro.cr_running or coro.cr_suspended or coro.cr_frame is None)
        return owner, "start" if created else "step"
    return handle_owner(handle)


def _type_kind(kind_of: type) -> str:
    """The kind of step of every task callback of type ``kind_of`` if none of them can
    have a name of its own (no instance dict, no ``__name__`` or ``__getattr__`` on the
    type): then handle_owner names each by its type. Else ""."""
    members = dir(kind_of)
    if kind_of.__dictoffset__ or "__name__" in members or "__getattr__" in members:
        return ""
    name = kind_of.__name__
    return "wakeup" if "wakeup" in name else "step" if "step" in name.lower() else "callback"


def described(namer: Namer, handle: Any) -> Candidate:
    """The ready ``handle`` as a candidate. Built once and cached on the handle (its
    ``_described`` slot): while it is queued its task is suspended, so its frames, the
    operation it waits on and its kind of step cannot change until it runs.

    The same values as ``Candidate(task_id(task), kind, user_location(frames),
    *waiting_on(task, frames))`` with the resource named, in one walk of the frames
    from the innermost (the facts of each code object read once, see ``_codes``), and
    resources named in the same order (one per description, as it is built)."""
    # getattr with a default: an unset slot raises no Python-level exception (a raised
    # and caught AttributeError costs more than the rest of a cached read).
    found: Candidate | None = getattr(handle, "_described", None)
    if found is not None:
        return found
    task, kind = _task_owner(handle)
    candidate = _new(Candidate)
    _set_kind(candidate, kind)
    if task is None:
        _set_task(candidate, None)
        _set_location(candidate, None)
        _set_operation(candidate, callback_name(handle))
        _set_resource(candidate, None)
    else:
        frames = coroutine_frames(task)
        _set_task(candidate, namer.task_id(task))
        # waiting_on: the deepest library frame below the user's with a ``self`` that is
        # no future, or named ``sleep``; user_location: the deepest user frame, else the
        # deepest frame. Both stop at the deepest user frame.
        op: str | None = None
        resource: object = None
        decided = False
        place: FrameType | None = None
        codes = _codes
        for frame in reversed(frames):
            code = frame.f_code
            facts = codes.get(code) or _code_facts(code)
            if facts[0]:
                place = frame
                break
            if decided:
                continue
            if facts[2]:
                owner = frame.f_locals.get("self")
                if owner is not None and not isinstance(owner, asyncio.Future):
                    op, resource, decided = facts[1], owner, True
                    continue
            if facts[3]:
                op, decided = "sleep", True
        if not decided:
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is not None:
                op, resource = "await", waiter
        if place is None and frames:
            place = frames[-1]
        _set_location(candidate, None if place is None else _place(place))
        _set_operation(candidate, op)
        _set_resource(candidate, None if resource is None else namer.resource_name(resource))
    try:  # noqa: SIM105 - suppress() would build a context manager per description
        handle._described = candidate
    except AttributeError:  # a handle without the slot: described when asked
        pass
    return candidate


def known_process(handle: Any) -> str | None:
    """:func:`process_of` of a ready handle, if it is known for good: None for the step
    of a task without its id yet (an adopted task's first, queued before adoption)."""
    kind = type(handle)
    if kind is TaskHandle:
        try:  # the loop's own tasks (and adopted ones) carry their id
            return handle._callback.__self__._explorer_id  # type: ignore[no-any-return]
        except AttributeError:
            return None
    if kind is IOHandle:
        return handle._process  # type: ignore[no-any-return]
    return "loop"


def process_of(namer: Namer, handle: Any) -> str:
    """Who a ready handle belongs to (:meth:`~explorer._runtime.PointView.process`)."""
    found = known_process(handle)
    return namer.task_id(handle._callback.__self__) if found is None else found


def point_handles(candidates: Sequence[Any], eligible: list[int] | None,
                  count: int) -> list[Any]:
    """The handles of the first ``count`` candidates: ``candidates[i]``, or
    ``candidates[eligible[i]]`` when the queue was filtered by a scan."""
    if eligible is not None:
        return [candidates[j] for j in eligible[:count]]
    return list(islice(candidates, count))


class _PointLoop(Namer, Protocol):
    """What :class:`ReadyView` reads of the loop: the point in progress (see drive())."""

    _index: ReadyIndex
    _cands: Sequence[Any]
    _eligible: list[int] | None


class ReadyView:
    """The loop's :class:`~explorer._runtime.PointView` of the candidates of the point in
    progress (a base of ``ControlledLoop``): ``_cands[i]``, or ``_cands[_eligible[i]]``
    when the queue was filtered by a scan. Who each candidate is and its description
    are kept beside the index's candidates once asked for (:meth:`ReadyIndex.track`):
    then :meth:`processes` and :meth:`candidates` copy a list, and run Python code only
    for the candidates that arrived since the last point."""

    def _handle_at(self: _PointLoop, index: int) -> Any:
        """The handle of candidate ``index`` at the point in progress; None for the timer."""
        cands = self._cands
        eligible = self._eligible
        if index >= (len(cands) if eligible is None else len(eligible)):
            return None
        return cands[index if eligible is None else eligible[index]]

    def candidate(self: _PointLoop, index: int) -> Candidate:
        """PointView: ready handle ``index`` (or the timer pseudo-candidate), described
        (once per handle while it is queued: :func:`described`)."""
        handle = ReadyView._handle_at(self, index)
        return TIMER if handle is None else described(self, handle)

    def candidates(self: _PointLoop, count: int) -> list[Candidate]:
        """PointView: every candidate of the point, described (cached per handle)."""
        index = self._index
        if self._eligible is None and (index.active or index.rebuild()):
            out = index.descriptions(self, count)
        else:  # the scan, which the index agrees with (only a test makes the index fail)
            out = [described(self, handle)
                   for handle in point_handles(self._cands, self._eligible, count)]
        if len(out) < count:
            out.extend(repeat(TIMER, count - len(out)))
        return out

    def process(self: _PointLoop, index: int) -> str:
        """Who candidate ``index`` belongs to, cheaply: a task id, ``loop`` for a plain
        callback, ``clock`` for the timer candidate."""
        handle = ReadyView._handle_at(self, index)
        return "clock" if handle is None else process_of(self, handle)

    def processes(self: _PointLoop, count: int) -> list[str]:
        """PointView: :meth:`process` of every candidate, in one call."""
        index = self._index
        out: list[str]
        if index.tracked and index.active and not index.unknown and self._eligible is None:
            # The common case, without a call (the index is synced: drive()); no None.
            out = index.eproc[:count]  # type: ignore[assignment]
        elif self._eligible is None and (index.active or index.rebuild()):
            out = index.processes(self, count)
        else:
            out = [process_of(self, handle)
                   for handle in point_handles(self._cands, self._eligible, count)]
        if len(out) < count:
            out.extend(repeat("clock", count - len(out)))
        return out


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
