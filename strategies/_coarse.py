"""``coarse``: search at the granularity of the user's own code, a library call as one step.

Through a library stack, one ``await r.get(key)`` (redis-py) or ``await
client.post(url)`` (httpx over ASGI) is a dozen scheduling points inside the library, and
a sampler spends its decisions there: the chance that it lets one task run a whole
library call ahead of another falls with every internal step. :class:`LibraryCalls` wraps
another strategy (the *inner* one) and asks it only at the points a person would count:

1. If the task that ran last (:meth:`PointView.current`) is still inside the library call
   it was inside when the strategy last saw it (:meth:`PointView.current_call`,
   :func:`explorer._locations.library_call`), the call goes on: that task if it is a
   candidate, else work that serves the call while it is blocked — a plain callback
   (process ``loop``: future callbacks, transport deliveries), a task the caller spawned
   (an id starting with the caller's id and ``/``) — in stock order. Foreign code
   between two of the user's awaits runs as one step.
2. A helper task of the library (a task with no user frame, such as redis-py's command
   sender) spawned by a task whose call is in progress belongs to that call: it goes on,
   or serves the call, by rule 1; so does a task spawned under such a call that is not
   ready when it is first seen (a helper that finished in one step).
3. Otherwise the inner strategy decides, with every candidate in view: the current task
   is at one of the user's own awaits, has just entered a new library call, or is
   finished, so continuing it or switching away is a real choice either way.

The first suspension inside a new library call is a decision point, so another task can
still run between two library calls of one task (a check-then-act over two Redis
commands), or ahead of a whole call (its command reaching the server first). A call
forced through :data:`RUN_AHEAD` points in a row is handed back to the inner strategy, so
a library that polls inside one call cannot starve the others.

The inner strategy sees the same ``(count, view)`` as without the wrapper, but only at the
points it decides, and learns (``end_run``) only the decisions it made there, so a
strategy that plans its runs from its own decisions (systematic search, coverage
guidance) stays consistent. Runs are plain schedules: every decision, forced or not, is
recorded by the runtime, so a schedule found here replays with :func:`explorer.replay`
under any strategy.

What it can miss, by construction: a race *inside* a library call that needs another task
to run after the call's first suspension — a library that awaits, reads shared state,
awaits again, then writes (the anyio and aiorwlock bugs of the benchmarks, a connection
pool's own check-then-act) — since rule 1 runs the rest of the call as one step. And a
decision between two tasks a call spawned, both serving it, is always the stock one.
Those remain the job of the full granularity, which is why this is a member of the
portfolio and never the default mode on its own. Awaits the user writes on the runtime's
primitives (``asyncio.sleep``, locks, events, queues; trio's and anyio's) are never
merged, and user code a library calls back (an endpoint, a dependency) is judged afresh.

The named strategy ``coarse`` wraps the symmetric walk (see :mod:`._portfolio` for why);
``LibraryCalls(inner)`` wraps any strategy that does not record footprints (partial-order
reduction learns from every step and is sound only at full granularity).
"""

from __future__ import annotations

from collections.abc import Sequence

from explorer._runtime import LibraryCall, PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._symmetric import SymmetricWalk

RUN_AHEAD = 64
"""How many points in a row one library call may be continued without asking the inner
strategy: far above the dozen steps of a Redis command or an ASGI request, low enough
that a library polling inside one call hands the choice back quickly."""


class LibraryCalls(Strategy):
    """Run each library call as one step; let ``inner`` decide everywhere else.

    Named for what it makes atomic: the calls into libraries, as the user wrote them."""

    name = "coarse"
    splitting = "seeded"

    def __init__(self, inner: Strategy | None = None, *, seed: int | None = None) -> None:
        if inner is None:
            inner = SymmetricWalk(seed=seed)
        elif seed is not None:
            raise ValueError(f"LibraryCalls(inner, seed={seed}): the seed belongs to the "
                             "inner strategy; build it with that seed instead")
        if inner.footprints is not None:
            raise ValueError(
                f"LibraryCalls({inner.name!r}): a strategy that records footprints "
                f"({inner.footprints!r}) learns from every step, and its reduction is "
                "sound only at full granularity; wrap a sampler or systematic search")
        self.inner = inner
        self.timer_races = inner.timer_races
        self.faults = inner.faults
        self._calls: dict[str, LibraryCall] = {}  # task -> the call it was last seen in
        self._helpers: dict[str, str] = {}  # a library's helper task -> the caller it serves
        self._sighted: set[str] = set()  # tasks seen as the current task in this run
        self._ahead = 0
        self._decided: list[int] = []
        self._points = 0
        self._forced = 0
        self._served = 0

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        self._calls.clear()
        self._helpers.clear()
        self._sighted.clear()
        self._ahead = 0
        self._decided = []
        return self.inner.start_run()

    def choose(self, count: int, view: PointView) -> int:
        self._points += 1
        current = view.current()
        if current is not None and self._ahead < RUN_AHEAD:
            owner = self._owner(count, view, current)
            if owner is not None:
                index = self._forced_index(count, view, current, owner)
                if index is not None:
                    self._ahead += 1
                    return index
        self._ahead = 0
        index = self.inner.choose(count, view)
        self._decided.append(index)
        return index

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        self._calls.clear()
        self._helpers.clear()
        self._sighted.clear()
        self.inner.end_run(self._decided, failed)

    @property
    def exhausted(self) -> bool:
        return self.inner.exhausted

    @property
    def counts_as_schedule(self) -> bool:
        return self.inner.counts_as_schedule

    def coverage(self) -> str:
        return (f"{self.inner.coverage()}, among the schedules in which each library call "
                "runs as one step (races inside a library call are not explored)")

    def describe(self) -> dict[str, Parameter]:
        inner = self.inner.describe()
        return {**inner, "name": self.name, "inner": str(inner.get("name", self.inner.name))}

    def statistics(self) -> dict[str, Statistic]:
        return {"points": self._points, "continued": self._forced, "served": self._served,
                "inner": dict(self.inner.statistics())}

    # ------------------------------------------------------------------ helpers

    def _owner(self, count: int, view: PointView, current: str) -> str | None:
        """The task whose library call ``current``'s step belongs to, if it is one still in
        progress: ``current`` itself, or the task that spawned it when ``current`` is a
        helper task of the library (no user frame: redis-py's sender, a library's worker).
        None at a decision point: a user-level await, a finished task, a new call."""
        call = view.current_call()
        first = current not in self._sighted
        self._sighted.add(current)
        if call is None:
            self._calls.pop(current, None)
            # Not ready, and either a helper of a call still in progress or, seen for the
            # first time, spawned under one: a helper that finished (or waits on the
            # call), and the call goes on. A task once seen is judged by its own calls.
            owner = self._helpers.get(current)
            if owner is None and first:
                owner = self._caller(current)
            if owner not in self._calls or current in view.processes(count):
                return None
            self._helpers[current] = owner
            return owner
        if self._calls.get(current) == call:
            return current
        if call.caller is None:
            owner = self._caller(current)
            if owner is not None:
                self._helpers[current] = owner
                return owner
        self._calls[current] = call  # a new call: entering it is a decision point
        return None

    def _caller(self, task: str) -> str | None:
        """The nearest task ``task`` descends from whose library call is in progress."""
        parent = task.rpartition("/")[0]
        while parent:
            if parent in self._calls:
                return parent
            parent = parent.rpartition("/")[0]
        return None

    def _forced_index(self, count: int, view: PointView, current: str,
                      owner: str) -> int | None:
        """The candidate that continues ``current``, else one that serves ``owner``'s call
        while it is blocked (a plain callback, the owner, a task it spawned), in stock
        order; None if there is none (the inner strategy decides)."""
        ids = view.processes(count)  # one call, not one per candidate
        if current in ids:
            self._forced += 1
            return ids.index(current)
        spawned = owner + "/"
        for i, process in enumerate(ids):
            if process == "loop" or process == owner or process.startswith(spawned):
                self._served += 1
                return i
        return None
