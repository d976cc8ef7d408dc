"""Fairness: no ready task is starved without end, and a livelock comes from a fair schedule.

Two rules, in both runtimes (see :mod:`explorer._asyncio._loop`): the oldest ready work is
passed over at most :data:`~explorer._runtime.STARVATION_BOUND` scheduling points in a row,
and a run is a livelock only when ``max_steps`` steps ran in stock order after its last
deviation. Correct code that is busy but fair (a callback that re-arms itself until a task
has run; anyio delivering a cancellation) must pass under every strategy; the gallery's
real livelock must still be found, and its schedule must replay to the same verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio
import pytest
import trio

import explorer
from examples import livelock
from explorer import Schedule, strategies
from explorer._runtime import STARVATION_BOUND
from explorer._trace import Step

Scenario = Callable[[], Coroutine[Any, Any, None]]

SEEDS = range(3)
SAMPLERS = ("random", "pct", "pos", "surw", "coverage", "symmetric")


# --------------------------------------------------------------------------- scenarios


async def anyio_cancelled_waiter() -> None:
    """A task group cancels a child that waits on an Event. anyio on asyncio delivers the
    cancellation from a ``call_soon`` callback that re-arms itself until the child ran."""
    event = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(event.wait)
        await anyio.sleep(0)
        group.cancel_scope.cancel()
    assert not event.is_set()


async def rearming_callback() -> None:
    """A plain callback polls a flag, re-arming itself with ``call_soon`` until a task
    (two steps long) has set it."""
    loop = asyncio.get_running_loop()
    flag = False
    done = loop.create_future()

    def poll() -> None:
        if flag:
            done.set_result(None)
        else:
            loop.call_soon(poll)

    async def setter() -> None:
        nonlocal flag
        await asyncio.sleep(0)
        flag = True

    loop.call_soon(poll)
    task = asyncio.create_task(setter())
    await done
    await task


async def trio_polling() -> None:
    """A task polls a flag at every checkpoint until another task has set it."""
    flag = False

    async def setter() -> None:
        nonlocal flag
        await trio.sleep(0)
        flag = True

    async def poller() -> None:
        while not flag:
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(setter)
        nursery.start_soon(poller)


BUSY_BUT_FAIR: dict[str, tuple[Scenario, str]] = {
    "anyio-cancel": (anyio_cancelled_waiter, "asyncio"),
    "rearming-callback": (rearming_callback, "asyncio"),
    "trio-polling": (trio_polling, "trio"),
}


class Starver(strategies.Strategy):
    """The most unfair strategy there is: always the newest candidate, never the head."""

    name = "starver"

    def __init__(self) -> None:
        self.runs = 0

    def start_run(self) -> bool:
        self.runs += 1
        return self.runs == 1

    def choose(self, count: int, view: Any) -> int:
        return count - 1


def _longest_deviating_streak(steps: Sequence[Step]) -> int:
    """The most steps in a row that were not the stock choice (a step run without a
    decision is the head's, which ends a streak)."""
    longest = streak = 0
    for step in steps:
        streak = streak + 1 if step.deviated else 0
        longest = max(longest, streak)
    return longest


def _stock_steps_at_the_end(steps: Sequence[Step]) -> int:
    last = max((i for i, step in enumerate(steps) if step.deviated), default=-1)
    return len(steps) - last - 1


# --------------------------------------------------------------------------- soundness


@pytest.mark.parametrize("name", sorted(BUSY_BUT_FAIR))
@pytest.mark.parametrize("seed", SEEDS)
def test_busy_but_fair_code_passes_under_the_default_strategy(name: str, seed: int) -> None:
    scenario, runtime = BUSY_BUT_FAIR[name]
    result = explorer.explore(scenario, seed=seed, runtime=runtime, max_schedules=300)
    assert result.failure is None
    assert result.schedules == 300 or result.exhausted


@pytest.mark.parametrize("strategy", SAMPLERS)
@pytest.mark.parametrize("name", sorted(BUSY_BUT_FAIR))
@pytest.mark.slow
def test_busy_but_fair_code_passes_under_every_sampler(name: str, strategy: str) -> None:
    scenario, runtime = BUSY_BUT_FAIR[name]
    for seed in SEEDS:
        result = explorer.explore(scenario, strategy=strategy, seed=seed, runtime=runtime,
                                  max_schedules=100)
        assert result.failure is None, (strategy, seed, result.failure)


@pytest.mark.parametrize("name", sorted(BUSY_BUT_FAIR))
def test_busy_but_fair_code_passes_every_schedule_within_a_deviation_bound(
        name: str) -> None:
    scenario, runtime = BUSY_BUT_FAIR[name]
    result = explorer.explore(scenario, strategy="systematic", deviation_bound=3,
                              runtime=runtime, max_schedules=5000)
    assert result.failure is None
    assert result.exhausted  # every schedule with at most 3 deviations ran and passed


@pytest.mark.parametrize("name", sorted(BUSY_BUT_FAIR))
def test_a_ready_task_is_passed_over_at_most_the_starvation_bound(name: str) -> None:
    scenario, runtime = BUSY_BUT_FAIR[name]
    result = explorer.run(scenario, schedule=Starver(), runtime=runtime)
    assert result.passed, result.outcome.message
    # The starver deviates at every point it is asked about; the head then runs
    # undecided after exactly STARVATION_BOUND pass-overs, which ends each streak.
    streak = _longest_deviating_streak(result.trace.steps)
    assert 0 < streak <= STARVATION_BOUND
    assert result.steps < 4 * STARVATION_BOUND


def test_a_run_that_reaches_max_steps_while_deviating_goes_on_in_stock_order() -> None:
    # PCT keeps the polite pair in step by deviating in bursts, to the end of the step
    # bound; from there the stock order lets both finish, so it is no livelock.
    recorded: list[list[int]] = []

    class Recording(strategies.PCT):
        def end_run(self, decisions: Sequence[int], failed: bool) -> None:
            recorded.append(list(decisions))
            super().end_run(decisions, failed)

    result = explorer.explore(livelock.polite_pair, strategy=Recording(3, 0),
                              max_steps=2000, max_schedules=40)
    assert result.failure is None
    long_runs = [d for d in recorded if sum(1 for x in d if x) > 1000]
    assert long_runs, "PCT no longer deviates to the step bound on this scenario"
    replayed = explorer.run(livelock.polite_pair,
                            schedule=Schedule.from_decisions(long_runs[0]), max_steps=2000)
    assert replayed.passed
    assert replayed.steps > 2000
    assert _stock_steps_at_the_end(replayed.trace.steps) < 2000


# --------------------------------------------------------------------------- real livelocks


@pytest.mark.parametrize("seed", SEEDS)
def test_the_polite_livelock_is_found_from_a_fair_schedule_and_replays(seed: int) -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(livelock.polite_pair, seed=seed, max_steps=2000)
    failure = info.value
    assert failure.kind == "livelock"
    assert "in stock order after the schedule's last deviation" in failure.outcome.message
    assert failure.trace is not None
    assert _stock_steps_at_the_end(failure.trace.steps) >= 2000
    replayed = explorer.run(livelock.polite_pair, schedule=failure.schedule, max_steps=2000)
    assert replayed.outcome.kind == "livelock"
    assert replayed.outcome.details == failure.outcome.details


def test_a_trio_livelock_is_judged_by_the_same_rule() -> None:
    async def scenario() -> None:
        async def spin() -> None:
            while True:
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)
            nursery.start_soon(spin)

    result = explorer.run(scenario, schedule=Starver(), runtime="trio", max_steps=300)
    assert result.outcome.kind == "livelock"
    assert result.steps > 300  # went on in stock order after the starver's deviations
    assert _stock_steps_at_the_end(result.trace.steps) >= 300


def test_the_health_warning_counts_only_steps_in_stock_order() -> None:
    # PCT starves the setter up to the bound, for runs of more than half of max_steps, on
    # a scenario whose stock run is short: no warning that the scenario is long
    # (warnings are errors in this suite).
    result = explorer.explore(rearming_callback, strategy="pct", seed=0, max_steps=2000,
                              max_schedules=20)
    assert result.failure is None
    assert result.steps > 2 * STARVATION_BOUND
