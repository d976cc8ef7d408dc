"""Automatic footprints (``dpor-auto``) under the trio runtime: checked against exhaustive
search on small trio programs (Python 3.12+, where ``sys.monitoring`` exists)."""

from __future__ import annotations

import collections
import sys
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import pytest
import trio

import explorer
from benchmarks.reduction import all_runs, canonical_class
from explorer._runtime import RunMode
from explorer._trio._runner import TrioRuntime
from explorer.strategies import DPOR

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="automatic footprints record accesses with sys.monitoring (Python 3.12+)")


class Account:
    def __init__(self) -> None:
        self.balance = 0


def _explore(scenario: Callable[[], Awaitable[Any]], strategy: str) -> explorer.ExploreResult:
    return explorer.explore(scenario, runtime="trio", strategy=strategy, max_schedules=5000,
                            raise_on_failure=False, shrink=False)


async def deposit_race() -> None:
    """Two deposits read, checkpoint, then write an undeclared attribute."""
    account = Account()

    async def deposit(amount: int) -> None:
        seen = account.balance
        await trio.sleep(0)
        account.balance = seen + amount

    async with trio.open_nursery() as nursery:
        nursery.start_soon(deposit, 5)
        nursery.start_soon(deposit, 7)
    assert account.balance == 12, f"a deposit was lost: balance {account.balance}"


async def separate_accounts() -> None:
    """Three tasks, each on its own account: every order is equivalent."""
    accounts = [Account() for _ in range(3)]

    async def bump(account: Account) -> None:
        seen = account.balance
        await trio.sleep(0)
        account.balance = seen + 1

    async with trio.open_nursery() as nursery:
        for account in accounts:
            nursery.start_soon(bump, account)
    assert [a.balance for a in accounts] == [1, 1, 1]


def test_lost_update_on_undeclared_state_is_found() -> None:
    exhaustive = _explore(deposit_race, "systematic")
    automatic = _explore(deposit_race, "dpor-auto")
    assert exhaustive.failure is not None
    assert automatic.failure is not None
    assert automatic.failure.kind == exhaustive.failure.kind == "assertion"


def test_disjoint_state_reduces_to_one_class() -> None:
    exhaustive = _explore(separate_accounts, "systematic")
    automatic = _explore(separate_accounts, "dpor-auto")
    assert exhaustive.ok and exhaustive.exhausted and exhaustive.schedules > 1
    assert automatic.ok and automatic.exhausted
    assert automatic.schedules == 1


def _locked_counter(orders: list[tuple[str, ...]]) -> Callable[[], Awaitable[None]]:
    """Three tasks bump a counter under a trio.Lock, each with a checkpoint inside the
    critical section; ``orders`` gets each run's order of entry."""

    async def scenario() -> None:
        lock = trio.Lock()
        account = Account()
        entered: list[str] = []

        async def bump(name: str) -> None:
            async with lock:
                entered.append(name)
                seen = account.balance
                await trio.sleep(0)
                account.balance = seen + 1

        async with trio.open_nursery() as nursery:
            for name in ("a", "b", "c"):
                nursery.start_soon(bump, name)
        orders.append(tuple(entered))
        assert account.balance == 3

    return scenario


def _brute_force(scenario: Callable[[], Awaitable[Any]]) -> set[Hashable]:
    """The equivalence class of every schedule of ``scenario`` under trio, by depth-first
    enumeration of the decisions at every point, footprints recorded automatically."""
    runs = all_runs(scenario, max_steps=1_000, runtime=TrioRuntime(), footprints="auto")
    assert runs is not None
    return {canonical_class(steps) for steps in runs}


def _dpor_auto(scenario: Callable[[], Awaitable[Any]],
               blocked: list[Hashable] | None = None) -> tuple[list[Hashable], DPOR]:
    """Optimal DPOR with automatic footprints, to exhaustion: the class of every run it
    counted as a schedule (and of each sleep-set-blocked run, into ``blocked``)."""
    runtime = TrioRuntime()
    strategy = DPOR(footprints="auto")
    counted: list[Hashable] = []
    with runtime.session(footprints=True):
        while strategy.start_run():
            record = runtime.run(scenario, strategy.choose, RunMode(
                max_steps=1_000, footprints=strategy.footprints))
            strategy.observe(record.footprints)
            assert record.footprints is not None
            if strategy.counts_as_schedule:
                counted.append(canonical_class(record.footprints))
            elif blocked is not None:
                blocked.append(canonical_class(record.footprints))
            strategy.end_run(record.decisions, record.outcome.failed)
    assert strategy.exhausted
    return counted, strategy


def test_lock_protected_counter_gives_the_classes_brute_force_gives() -> None:
    orders: list[tuple[str, ...]] = []
    classes = _brute_force(_locked_counter(orders))
    every_order = set(orders)
    orders.clear()
    counted, strategy = _dpor_auto(_locked_counter(orders))
    assert set(counted) == classes  # every class covered, none invented
    assert len(counted) == len(classes)  # and none twice
    assert strategy.blocked == 0
    # The classes differ in the order the tasks take the lock: all six are reached.
    assert set(orders) == every_order and len(every_order) == 6


def test_trio_code_is_trusted() -> None:
    from explorer._monitoring import TRUSTED, USER, code_kind

    task_init = trio.lowlevel.Task.__init__.__code__  # generated by attrs, no file
    assert task_init.co_filename.startswith("<attrs generated")
    assert code_kind(trio.sleep.__code__) == TRUSTED
    assert code_kind(task_init) == TRUSTED
    assert code_kind(deposit_race.__code__) == USER


def test_asyncio_runs_after_a_trio_session_still_see_their_tasks() -> None:
    """The trio session's stand-in for asyncio's current task is undone at its end."""
    from explorer._monitoring import _hooks

    before = _hooks._current_task
    _explore(separate_accounts, "dpor-auto")
    assert _hooks._current_task is before


def _watched_primitives(results: set[tuple[object, ...]]) -> Callable[[], Awaitable[None]]:
    """One task holds a lock, then a semaphore; another asks whether the lock is held and
    how many permits are left: each answer depends on the order."""

    async def scenario() -> None:
        lock = trio.Lock()
        permits = trio.Semaphore(1)
        answers: list[object] = []

        async def holder() -> None:
            async with lock:
                await trio.sleep(0)
            await permits.acquire()
            await trio.sleep(0)
            permits.release()

        async def watcher() -> None:
            await trio.sleep(0)
            answers.append(lock.locked())
            await trio.sleep(0)
            answers.append(permits.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder)
            nursery.start_soon(watcher)
        results.add(tuple(answers))

    return scenario


@pytest.mark.parametrize("strategy", ["dpor-declared", "dpor-auto"])
def test_queries_of_trio_primitives_are_reads(strategy: str) -> None:
    # Lock.locked() and Semaphore.value run trio's (unwatched) code: the runtime records
    # them as reads, so every answer brute force sees is still reached.
    everything: set[tuple[object, ...]] = set()
    reduced: set[tuple[object, ...]] = set()
    exhaustive = _explore(_watched_primitives(everything), "systematic")
    reduction = _explore(_watched_primitives(reduced), strategy)
    assert exhaustive.exhausted and reduction.exhausted
    assert reduced == everything and len(everything) == 4
    assert reduction.schedules < exhaustive.schedules


def _unmodelled(scenario: Callable[[], Awaitable[Any]]) -> dict[str, int]:
    """What made steps of one run (the stock schedule) UNKNOWN, by reason."""
    from explorer._monitoring import STATE

    saved = STATE.debug
    STATE.debug = collections.Counter()
    try:
        runtime = TrioRuntime()
        with runtime.session(footprints=True):
            runtime.run(scenario, lambda count, view: 0,
                        RunMode(max_steps=1_000, footprints="auto"))
        return dict(STATE.debug)
    finally:
        STATE.debug = saved


class Venue:
    def __init__(self, seats: int) -> None:
        self.seats = seats
        self.booked: list[str] = []


def _reservations(outcomes: set[tuple[object, ...]], *, guarded: bool,
                  check: bool = True) -> Callable[[], Awaitable[None]]:
    """Two clients book the last seat, each under its own cancel scope and inside a
    nursery and a deadline entered inline; a third task gives up on the first client.
    Unguarded, both can pass the check before either books (a real race, on undeclared
    attributes); guarded, a trio.Lock makes the check and the booking one step."""

    async def scenario() -> None:
        venue = Venue(seats=1)
        lock = trio.Lock()
        scopes = {"ann": trio.CancelScope(), "bob": trio.CancelScope()}

        async def book(name: str) -> None:
            with scopes[name]:
                with trio.move_on_after(60):
                    async with trio.open_nursery():
                        if guarded:
                            await lock.acquire()
                        try:
                            if venue.seats > 0:
                                await trio.sleep(0)
                                venue.seats -= 1
                                venue.booked.append(name)
                        finally:
                            if guarded:
                                lock.release()

        async def give_up() -> None:
            scopes["ann"].cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(book, "ann")
            nursery.start_soon(book, "bob")
            nursery.start_soon(give_up)
        outcomes.add((venue.seats, tuple(sorted(venue.booked))))
        if check:
            assert venue.seats >= 0, f"overbooked: {venue.booked}"

    return scenario


def test_nurseries_and_cancel_scopes_entered_inline_are_recorded_precisely() -> None:
    # open_nursery(), move_on_after() and CancelScope managers are trio's: entering and
    # leaving them (a cancellation leaving a scope included) is recorded by the runtime,
    # and trio.Lock's wait (trio asks inspect about the owner) is trio's business.
    assert _unmodelled(_reservations(set(), guarded=True)) == {}
    assert _unmodelled(_reservations(set(), guarded=False, check=False)) == {}


@pytest.mark.parametrize("guarded", [False, True])
def test_nurseries_and_cancel_scopes_reach_every_outcome(guarded: bool) -> None:
    everything: set[tuple[object, ...]] = set()
    reduced: set[tuple[object, ...]] = set()
    classes = _brute_force(_reservations(everything, guarded=guarded, check=False))
    blocked: list[Hashable] = []
    counted, _strategy = _dpor_auto(_reservations(reduced, guarded=guarded, check=False),
                                    blocked)
    assert reduced == everything  # every outcome exhaustive search reaches
    overbooked = {outcome for outcome in everything if outcome[0] == -1}
    assert bool(overbooked) == (not guarded)  # the race is real, and the lock closes it
    assert {booked for _, booked in everything} >= {("ann",), ("bob",)}  # either books
    # Every class brute force finds is run, none invented, none counted twice. (Runs
    # where a cancellation changes how far a step goes can end sleep-set blocked, as
    # with declared footprints: those are run but not counted.)
    assert set(counted) | set(blocked) == classes
    assert len(counted) == len(set(counted))


def test_a_race_inside_nurseries_and_cancel_scopes_is_found() -> None:
    exhaustive = _explore(_reservations(set(), guarded=False), "systematic")
    automatic = _explore(_reservations(set(), guarded=False), "dpor-auto")
    assert exhaustive.failure is not None and automatic.failure is not None
    assert automatic.failure.kind == exhaustive.failure.kind == "assertion"
    guarded = _explore(_reservations(set(), guarded=True), "dpor-auto")
    everything = _explore(_reservations(set(), guarded=True), "systematic")
    assert guarded.ok and guarded.exhausted and everything.exhausted
    assert guarded.schedules < everything.schedules


def _anyio_shop(outcomes: set[tuple[object, ...]], *, locked: bool,
                check: bool = True) -> Callable[[], Awaitable[None]]:
    """anyio on trio: two shoppers in a task group, each under a deadline, take the last
    item; unlocked, both can see it in stock before either takes it."""
    import anyio

    async def scenario() -> None:
        shelf = Venue(seats=1)
        lock = anyio.Lock()

        async def take(name: str) -> None:
            if shelf.seats > 0:
                await anyio.sleep(0)
                shelf.seats -= 1
                shelf.booked.append(name)

        async def shop(name: str) -> None:
            with anyio.move_on_after(60):
                if locked:
                    async with lock:
                        await take(name)
                else:
                    await take(name)

        async with anyio.create_task_group() as group:
            group.start_soon(shop, "kim")
            group.start_soon(shop, "lee")
        outcomes.add((shelf.seats, tuple(sorted(shelf.booked))))
        if check:
            assert shelf.seats >= 0, f"sold twice: {shelf.booked}"

    return scenario


def test_anyio_on_trio_is_recorded_precisely() -> None:
    # anyio's trio backend (its task group, lock and cancel scopes wrap trio's) is
    # watched library code: no step of the run is UNKNOWN. (The first run in a process
    # imports anyio's backend module, through importlib's frozen code: UNKNOWN then.)
    _unmodelled(_anyio_shop(set(), locked=True))
    assert _unmodelled(_anyio_shop(set(), locked=True)) == {}


@pytest.mark.parametrize("locked", [False, True])
def test_anyio_on_trio_reaches_every_outcome_in_fewer_schedules(locked: bool) -> None:
    everything: set[tuple[object, ...]] = set()
    reduced: set[tuple[object, ...]] = set()
    exhaustive = _explore(_anyio_shop(everything, locked=locked, check=False), "systematic")
    automatic = _explore(_anyio_shop(reduced, locked=locked, check=False), "dpor-auto")
    assert exhaustive.exhausted and automatic.exhausted
    assert reduced == everything
    assert any(seats < 0 for seats, _ in everything) == (not locked)
    assert automatic.schedules < exhaustive.schedules
    found = _explore(_anyio_shop(set(), locked=locked), "dpor-auto")
    assert (found.failure is not None) == (not locked)
