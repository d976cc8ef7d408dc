"""The shrinker reaches the true minimum number of switches, deterministically."""

from __future__ import annotations

import asyncio
import gc

import pytest

import explorer
from examples.gallery import Example, unfaulted_examples
from explorer._engine import _runtime
from explorer._runtime import RunMode
from explorer._switches import Point, count_detours, count_switches, counting


async def deep() -> None:
    """Three tasks of five awaits each; the writer must overtake the reader twice."""
    state = {"x": 0}

    async def reader() -> None:
        seen = 0
        for i in range(5):
            if i == 1:
                seen = state["x"]
            if i == 2:
                assert state["x"] == seen, "x changed between read and check"
            await asyncio.sleep(0)

    async def bystander() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    async def writer() -> None:
        for i in range(5):
            if i == 3:
                state["x"] += 1
            await asyncio.sleep(0)

    await asyncio.gather(reader(), bystander(), writer())


def _minimum(fn: object, max_steps: int = 20_000) -> explorer.ScheduleFailure:
    """The first failure of the switch-bounded systematic search, unbounded: it has the
    fewest switches possible (its rounds go by increasing switches)."""
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(fn, strategy=explorer.strategies.PreemptionBounded(),  # type: ignore[arg-type]
                         shrink=False, max_steps=max_steps)
    assert info.value.switches is not None
    return info.value


@pytest.mark.slow
def test_deep_bug_needs_one_switch_and_is_shrunk_to_one() -> None:
    # Two deviations from the stock order suffice, but the stock order itself rotates
    # the three tasks at every await (a switch each time); the simplest schedule by
    # switches lets the reader read, the writer run whole (one switch), the reader check.
    assert explorer.run(deep).passed
    minimum = _minimum(deep)
    assert minimum.switches == 1
    for seed in range(5):
        with pytest.raises(explorer.ScheduleFailure) as raw:
            explorer.explore(deep, strategy="random", seed=seed, shrink=False)
        with pytest.raises(explorer.ScheduleFailure) as shrunk:
            explorer.explore(deep, strategy="random", seed=seed)
        failure = shrunk.value
        assert raw.value.switches is not None and raw.value.switches > 1
        assert failure.switches == 1
        assert failure.outcome.signature() == raw.value.outcome.signature()
        assert failure.shrink is not None
        assert failure.shrink.proven_minimal
        assert failure.shrink.original_deviations == raw.value.deviations
        assert failure.shrink.original_switches == raw.value.switches
        assert failure.shrink.steps <= failure.shrink.original_steps
        assert "Shrinking: 1 switch, " in str(failure)
        again = explorer.run(deep, schedule=failure.schedule)
        assert again.outcome.signature() == failure.outcome.signature()


# Shrinking the pool example's race runs schedules that end while a request still holds a
# connection; the run's end cancels that request (as asyncio.run does) and SQLAlchemy
# warns when the garbage collector finalises the connection later: expected of that buggy
# example, so collected within the test, with that one warning ignored (named only where
# SQLAlchemy is installed: the filter imports its category).
_ABANDONED_CONNECTION = pytest.mark.filterwarnings(
    "ignore:The garbage collector is trying to clean up non-checked-in connection"
    ":sqlalchemy.exc.SAWarning")


@pytest.mark.parametrize("example", [
    pytest.param(example, id=example.name,
                 marks=[_ABANDONED_CONNECTION] if example.name == "pool-nested-checkout"
                 else [])
    for example in unfaulted_examples()])
@pytest.mark.slow
def test_gallery_failures_shrink_to_the_minimum(example: Example) -> None:
    try:
        _shrinks_to_the_minimum(example)
    finally:
        if example.name == "pool-nested-checkout":
            gc.collect()


def _shrinks_to_the_minimum(example: Example) -> None:
    result = explorer.explore(example.buggy, strategy=explorer.strategies.PreemptionBounded(),
                              shrink=False, max_steps=example.max_steps,
                              raise_on_failure=False)
    exact = result.failure is not None  # else only the switches are a reference
    if result.failure is not None:
        minimum = result.failure  # the first failure by switches: the fewest there are
    else:
        # The rounds of few switches are too wide for the default budget (a services
        # example's pool and drivers give many free choices): the first failure of the
        # deviation search is then the reference, and the shrinker must do as well.
        minimum = explorer.explore(example.buggy, strategy="systematic", shrink=False,
                                   max_steps=example.max_steps,
                                   raise_on_failure=False).failure
        assert minimum is not None and minimum.switches is not None
    found = 0
    # A services example's shrink replays real drivers and protocol stacks, seconds per
    # failure: one random failure of each is shrunk, three of every other example.
    seeds = 1 if example.module.startswith("examples.services.") else 3
    for seed in range(seeds):
        result = explorer.explore(example.buggy, strategy="random", seed=seed,
                                  max_steps=example.max_steps, raise_on_failure=False)
        failure = result.failure
        if failure is None:
            continue
        found += 1
        assert failure.shrink is not None
        # Switches come first and are always proven here. Among schedules with that many
        # switches, the detours are proven too unless the budget ran out first (the
        # services examples run real drivers, a fraction of a second per run).
        assert failure.shrink.switches_proven
        assert (failure.shrink.detours_proven or failure.shrink.budget_exhausted
                or failure.shrink.deviations_cut)
        if not example.module.startswith("examples.services."):
            assert failure.shrink.proven_minimal
        assert failure.switches is not None and failure.shrink.detours is not None
        measures = (failure.switches, failure.shrink.detours)
        assert measures == _measures(example, failure.schedule.decisions())
        if failure.outcome.stable_signature() == minimum.outcome.stable_signature():
            # The switch-bounded search runs each round by increasing detours, so its
            # first failure is the simplest of its kind by both measures.
            least = _measures(example, minimum.schedule.decisions())
            assert failure.switches <= least[0]
            if failure.shrink.proven_minimal and exact:
                assert measures == least
        else:  # another failure mode: still no more switches than it started with
            assert failure.switches is not None
            assert failure.switches <= (failure.shrink.original_switches or 0)
    if not found:
        pytest.skip(f"random search does not find {example.name} within 1000 schedules")


def _measures(example: Example, decisions: list[int]) -> tuple[int, int]:
    """The switches and detours of ``decisions``, counted in one run of the example."""
    rt = _runtime(example.runtime)
    fixed = explorer.strategies.Fixed(decisions, strict=False)
    fixed.start_run()
    log: list[Point] = []
    with rt.session():
        rt.run(example.buggy, counting(fixed.choose, log), RunMode(max_steps=example.max_steps))
    return count_switches(log), count_detours(log)


def test_shrinking_is_deterministic() -> None:
    def shrunk() -> str:
        with pytest.raises(explorer.ScheduleFailure) as info:
            explorer.explore(deep, seed=3)
        return f"{info.value.schedule} {info.value.trace.hash()}"

    assert shrunk() == shrunk()


def test_shrinking_can_be_turned_off() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(deep, seed=0, shrink=False)
    assert info.value.shrink is None
    assert "Shrinking:" not in str(info.value)


async def latched_livelock() -> None:
    """Whichever writer lands first wins; if it is ``b``, the poller waits for ``a`` forever.
    Two busy workers around them give a sampler very many deviations to make first."""
    state: dict[str, str] = {}

    async def busy() -> None:
        for _ in range(500):
            await asyncio.sleep(0)

    async def writer(value: str) -> None:
        await asyncio.sleep(0)
        state.setdefault("value", value)

    async def poller() -> None:
        while state.get("value") != "a":
            await asyncio.sleep(0)

    await asyncio.gather(busy(), busy(), writer("a"), writer("b"), poller())


@pytest.mark.slow
def test_a_livelock_with_thousands_of_deviations_shrinks_to_the_minimum() -> None:
    # A livelock verdict needs max_steps steps in stock order after the last deviation
    # (fairness), so PCT's deviations all come before the poller spins alone.
    minimum = _minimum(latched_livelock, 2000)
    result = explorer.explore(latched_livelock, strategy="pct", seed=0, max_steps=2000,
                              max_schedules=200, raise_on_failure=False)
    failure = result.failure
    assert failure is not None and failure.kind == "livelock"
    assert failure.shrink is not None
    assert failure.shrink.original_deviations > 1000
    # A livelock compares deviations first (explorer._shrink): by switches, its simplest
    # schedule would let every task run on as long as it can, a deviation per continued
    # step; the stock rotation with writer b landing first is one deviation.
    assert failure.deviations == 1
    assert failure.shrink.deviations_proven
    # The switch-bounded search does find a livelock with no switch at all, which is the
    # schedule the deviations-first order avoids.
    assert minimum.switches == 0 and minimum.deviations > 100
