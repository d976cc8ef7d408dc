"""Switches: counted as a person counts them, on asyncio and trio, and the search bounded
by them covers exactly the schedules with at most that many (checked by brute force)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest
import trio

import explorer
from explorer import strategies
from explorer._engine import _runtime
from explorer._faults import OptionsView
from explorer._runtime import Candidate, Chooser, RunMode, RunRecord
from explorer._switches import (
    Follow,
    Lines,
    Point,
    count_detours,
    count_switches,
    counting,
    switch_points,
    without_switches,
)
from tests.conftest import needs_interleaving_fakeredis, run_cli

ScenarioFn = Callable[[], Coroutine[Any, Any, Any]]


def _run(scenario: ScenarioFn, chooser: Chooser, *, runtime: str = "asyncio",
         timer_races: bool = False) -> tuple[RunRecord, list[Point]]:
    rt = _runtime(runtime)
    log: list[Point] = []
    with rt.session():
        record = rt.run(scenario, counting(chooser, log),
                        RunMode(max_steps=2000, timer_races=timer_races))
    return record, log


def _fixed(decisions: Sequence[int]) -> Chooser:
    fixed = strategies.Fixed(decisions, strict=False)
    fixed.start_run()
    return fixed.choose


def _stock(count: int, view: object) -> int:
    return 0


# --------------------------------------------------------------------------- scenarios


async def _two_walkers() -> None:
    """Two tasks of three bare yields each: the stock order rotates them at every one."""
    async def walker() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    await asyncio.gather(walker(), walker())


async def _waiter_and_walker() -> None:
    """The waiter blocks on an event the walker sets after two yields; an idler yields
    once, so that there is a choice while the waiter waits."""
    event = asyncio.Event()

    async def waiter() -> None:
        await event.wait()

    async def walker() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        event.set()

    async def idler() -> None:
        await asyncio.sleep(0)

    await asyncio.gather(waiter(), walker(), idler())


async def _walker_and_callback() -> None:
    """A plain callback is ready while the walker could continue."""
    seen: list[str] = []

    async def walker() -> None:
        asyncio.get_running_loop().call_soon(seen.append, "callback")
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    await asyncio.gather(walker(), walker())


async def _trio_pair() -> None:
    async def walker() -> None:
        for _ in range(3):
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(walker)
        nursery.start_soon(walker)


# --------------------------------------------------------------------------- counting


def test_the_stock_order_switches_where_it_rotates_ready_tasks() -> None:
    _, log = _run(_two_walkers, _stock)
    assert [p.chosen for p in log] == [0] * len(log)
    # After each step of one walker the other is chosen while the first could go on.
    assert count_switches(log) >= 4
    assert all(p.switch == (p.resumable >= 0 and p.resumable != p.chosen) for p in log)


def test_continuing_the_running_task_is_free() -> None:
    record, log = _run(_two_walkers, Follow([]))  # the running task continues wherever it can
    assert count_switches(log) == 0
    assert sum(1 for d in record.decisions if d) > 0  # ... which deviates from the stock order


def test_a_run_ahead_is_one_switch_and_several_deviations() -> None:
    # Let the first walker start, then the second run all three of its steps at once.
    _, free = _run(_two_walkers, Follow([]))
    first, second = sorted({p.process for p in free if p.process.startswith("main/")})
    plan = [first, second, second, second, second, first, first, first]
    record, log = _run(_two_walkers, Follow(plan))
    assert count_switches(log) == 1
    assert sum(1 for d in record.decisions if d) >= 2


def test_choices_while_the_running_task_waits_are_free() -> None:
    _, log = _run(_waiter_and_walker, _stock)
    blocked = [p for p in log if p.running is not None and p.running.endswith("waiter#1")
               and p.resumable < 0]
    assert blocked, "the waiter must be seen blocked at a scheduling point"
    assert not any(p.switch for p in blocked)


def test_a_plain_callback_is_a_switch_only_while_a_task_could_continue() -> None:
    _, log = _run(_walker_and_callback, _stock)
    callbacks = [p for p in log if p.process == "loop"]
    assert callbacks and all(p.owner is None for p in callbacks)
    assert all(p.switch == (p.resumable >= 0) for p in callbacks)
    assert any(p.switch for p in callbacks)


async def _timer_versus_work() -> None:
    async def sleeper() -> None:
        await asyncio.sleep(1)

    async def walker() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    await asyncio.gather(sleeper(), walker())


def test_firing_the_timer_while_a_task_could_continue_is_a_switch() -> None:
    def clock_when_possible(count: int, view: Any) -> int:
        # Fire the timer at the first point where the walker could go on instead.
        could_continue = any(view.process(i) == view.current() for i in range(count))
        return count - 1 if view.process(count - 1) == "clock" and could_continue else 0

    _, log = _run(_timer_versus_work, clock_when_possible, timer_races=True)
    fired = [p for p in log if p.process == "clock"]
    assert fired, "the timer candidate must be offered"
    assert fired[0].resumable >= 0 and fired[0].switch
    assert all(p.owner == "clock" for p in fired)


class _FaultView(OptionsView):
    pass


def test_fault_options_are_never_switches() -> None:
    view = _FaultView([Candidate(None, "fault", None, "no fault", "db:5432"),
                       Candidate(None, "fault", None, "reset", "db:5432")])
    running, here, owners = Lines().look(2, view)
    assert (running, here, owners) == (None, -1, [None, None])


def test_counting_on_trio() -> None:
    _, stock = _run(_trio_pair, _stock, runtime="trio")
    _, free = _run(_trio_pair, Follow([]), runtime="trio")
    assert count_switches(stock) >= 2
    assert count_switches(free) == 0


def test_the_same_schedule_gives_the_same_switches() -> None:
    decisions = [0, 1, 1, 0, 1]
    first = _run(_two_walkers, _fixed(decisions))[1]
    second = _run(_two_walkers, _fixed(decisions))[1]
    assert first == second
    assert switch_points(first) == switch_points(second)


# --------------------------------------------------------------------------- library lines


@needs_interleaving_fakeredis
def test_helper_tasks_of_a_library_belong_to_the_task_that_started_them() -> None:
    fakeredis = pytest.importorskip("fakeredis")

    async def tally() -> None:
        r = fakeredis.FakeAsyncRedis()

        async def visit(page: str) -> None:
            await r.incr(page)
            await r.expire(page, 60)

        await asyncio.gather(visit("home"), visit("about"))
        assert int(await r.get("home")) == 1

    record, log = _run(tally, Follow([]))
    assert record.outcome.kind == "pass"
    helpers = [p for p in log if p.process.count("/") >= 2]
    assert helpers, "redis-py should run commands in helper tasks"
    # A helper's steps count for the visitor that awaits it: keeping going switches never.
    assert all(p.owner is not None and p.owner.count("/") == 1 for p in helpers)
    assert count_switches(log) == 0


# --------------------------------------------------------------------------- the bounded search


def _all_schedules(scenario: ScenarioFn, runtime: str) -> dict[tuple[int, ...], int]:
    """Every complete schedule of ``scenario``, by brute force, with its switches."""
    return {decisions: switches
            for decisions, (switches, _) in _all_measured(scenario, runtime).items()}


def _all_measured(scenario: ScenarioFn, runtime: str = "asyncio"
                  ) -> dict[tuple[int, ...], tuple[int, int]]:
    """Every complete schedule of ``scenario``, by brute force over the stock-order
    indices (independent of the switch-bounded search), with its switches and detours."""
    found: dict[tuple[int, ...], tuple[int, int]] = {}
    stack: list[tuple[int, ...]] = [()]
    while stack:
        prefix = stack.pop()
        record, log = _run(scenario, _fixed(prefix), runtime=runtime)
        decisions = tuple(record.decisions)
        found[decisions] = (count_switches(log), count_detours(log))
        for point in range(len(prefix), len(log)):
            for choice in range(1, log[point].count):
                stack.append((*decisions[:point], choice))
    return found


def _bounded(scenario: ScenarioFn, bound: int, runtime: str,
             partition: tuple[int, int] = (0, 1)) -> tuple[list[tuple[int, ...]], str]:
    search = strategies.PreemptionBounded(bound, partition=partition)
    rt = _runtime(runtime)
    ran: list[tuple[int, ...]] = []
    with rt.session():
        while search.start_run():
            counted = search.counts_as_schedule
            record = rt.run(scenario, search.choose, RunMode(max_steps=2000))
            search.end_run(record.decisions, record.outcome.failed)
            if counted:
                ran.append(tuple(record.decisions))
    return ran, search.coverage()


@pytest.mark.parametrize(("scenario", "runtime"), [
    (_two_walkers, "asyncio"), (_waiter_and_walker, "asyncio"), (_trio_pair, "trio")])
def test_the_bounded_search_runs_exactly_the_schedules_within_the_bound(
        scenario: ScenarioFn, runtime: str) -> None:
    everything = _all_schedules(scenario, runtime)
    for bound in range(3):
        ran, coverage = _bounded(scenario, bound, runtime)
        assert len(ran) == len(set(ran)), "no schedule runs twice"
        expected = {d for d, switches in everything.items() if switches <= bound}
        assert set(ran) == expected
        if len(expected) < len(everything):
            assert f"at most {bound} switch(es)" in coverage


def test_partitions_of_the_bounded_search_share_it_exactly() -> None:
    whole, _ = _bounded(_two_walkers, 2, "asyncio")
    parts = [_bounded(_two_walkers, 2, "asyncio", (index, 3))[0] for index in range(3)]
    together = [d for part in parts for d in part]
    assert sorted(together) == sorted(whole)


def test_the_bounded_search_finds_the_space_finished() -> None:
    ran, coverage = _bounded(_waiter_and_walker, 50, "asyncio")
    assert set(ran) == set(_all_schedules(_waiter_and_walker, "asyncio"))
    assert coverage == f"all {len(ran)} schedules (the whole space)"


def test_explore_and_settings_take_a_preemption_bound() -> None:
    result = explorer.explore(_two_walkers, strategy="systematic", preemption_bound=1)
    assert result.exhausted
    assert result.strategy == {"name": "systematic", "preemption_bound": 1}
    assert "at most 1 switch(es)" in result.coverage
    with pytest.raises(explorer.UsageError, match="preemption_bound must be 0 or a positive"):
        explorer.explore(_two_walkers, strategy="systematic", preemption_bound=-1)


def test_a_failure_says_how_many_switches_it_takes() -> None:
    async def lost_update() -> None:
        box = {"n": 0}

        async def bump() -> None:
            seen = box["n"]
            await asyncio.sleep(0)
            box["n"] = seen + 1

        await asyncio.gather(bump(), bump())
        assert box["n"] == 2

    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(lost_update, strategy="systematic", preemption_bound=2)
    failure = info.value
    assert failure.switches is not None
    assert f"{failure.switches} switch" in str(failure).splitlines()[0]
    assert failure.to_json()["switches"] == failure.switches
    assert failure.strategy["preemption_bound"] == 2


def test_the_command_line_takes_a_preemption_bound(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "explore", "examples.counter:lost_update_fixed", "-s",
                           "systematic", "--preemption-bound", "1", "--json", "--no-save")
    assert code == 0
    result = json.loads(out)["results"][0]
    assert result["settings"]["preemption_bound"] == 1
    assert result["exhausted"]
    assert result["coverage"].startswith("all schedules with at most 1 switch(es)")


def test_taking_back_a_switch_moves_the_whole_run_ahead_later() -> None:
    # ann runs, bob is switched in while ann could go on and runs three steps (with a
    # callback among them), then ann continues.
    log = [Point(0, 2, None, -1, "main/ann#1", "main/ann#1"),
           Point(1, 2, "main/ann#1", 0, "main/bob#1", "main/bob#1", "main/ann#1"),
           Point(0, 2, "main/bob#1", 0, "main/bob#1", "main/bob#1", "main/bob#1"),
           Point(1, 3, "main/bob#1", 0, "loop", None, "main/bob#1"),
           Point(0, 2, "main/bob#1", 0, "main/bob#1", "main/bob#1", "main/bob#1"),
           Point(1, 2, "main/bob#1", -1, "main/ann#1", "main/ann#1")]
    assert switch_points(log) == [1, 3]
    plan = without_switches(log, {1})
    # ann continues at the switch; bob's three steps and the callback leave the plan in
    # one edit (Follow runs them when the plan next names bob, or once ann cannot go on).
    assert plan == ["main/ann#1", "main/ann#1", "main/ann#1"]
    assert without_switches(log, set()) == [p.process for p in log]


# --------------------------------------------------------------------------- detours


async def _seating() -> None:
    """Three guests wait at one gate; when it opens, which one is seated first is a free
    choice (the host is waiting for them all): only the reverse order fails."""
    order: list[str] = []
    gate = asyncio.Event()

    async def guest(name: str) -> None:
        await gate.wait()
        order.append(name)

    guests = [asyncio.create_task(guest(name)) for name in ("ann", "bob", "cy")]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*guests)
    assert order != ["cy", "bob", "ann"], f"seated in reverse: {order}"


def test_a_detour_is_any_choice_but_keeping_going() -> None:
    can_go_on = Point(0, 3, "main/ann#1", 1, "main/bob#1", "main/bob#1", "main/ann#1")
    kept_going = Point(1, 3, "main/ann#1", 1, "main/ann#1", "main/ann#1", "main/ann#1")
    waiting_stock = Point(0, 3, "main/ann#1", -1, "main/bob#1", "main/bob#1")
    waiting_other = Point(2, 3, "main/ann#1", -1, "main/cy#1", "main/cy#1")
    assert can_go_on.switch and can_go_on.detour  # every switch is a detour
    assert not kept_going.switch and not kept_going.detour
    assert not waiting_stock.switch and not waiting_stock.detour
    assert not waiting_other.switch and waiting_other.detour  # free, but not the head
    assert count_detours([can_go_on, kept_going, waiting_stock, waiting_other]) == 2


def test_keeping_going_makes_no_detour_however_far_it_is_from_the_stock_order() -> None:
    record, log = _run(_two_walkers, Follow([]))
    assert count_detours(log) == 0
    assert sum(1 for d in record.decisions if d) > 0
    _, stock = _run(_two_walkers, _stock)
    assert count_detours(stock) == count_switches(stock) > 0  # the stock order rotates


def _bounded_with_measures(scenario: ScenarioFn, search: strategies.PreemptionBounded
                           ) -> list[tuple[int, int, tuple[int, ...]]]:
    """(switches, detours, decisions) of each schedule ``search`` counts, in order."""
    ran: list[tuple[int, int, tuple[int, ...]]] = []
    while search.start_run():
        counted = search.counts_as_schedule
        record, log = _run(scenario, search.choose)
        search.end_run(record.decisions, record.outcome.failed)
        if counted:
            ran.append((count_switches(log), count_detours(log), tuple(record.decisions)))
    return ran


@pytest.fixture(scope="module")
def seating_space() -> dict[tuple[int, ...], tuple[int, int]]:
    return _all_measured(_seating)


def test_each_round_runs_its_schedules_by_increasing_detours(
        seating_space: dict[tuple[int, ...], tuple[int, int]]) -> None:
    ran = _bounded_with_measures(_seating, strategies.PreemptionBounded(2))
    assert [(s, d) for s, d, _ in ran] == sorted((s, d) for s, d, _ in ran)
    # The measures the search walks by are the ones the run shows.
    assert all(seating_space[decisions] == (s, d) for s, d, decisions in ran)
    assert {decisions for _, _, decisions in ran} == {
        decisions for decisions, (switches, _) in seating_space.items() if switches <= 2}
    assert len(ran) == len({decisions for _, _, decisions in ran})


def test_a_detour_limit_cuts_the_last_round_and_the_coverage_says_so(
        seating_space: dict[tuple[int, ...], tuple[int, int]]) -> None:
    search = strategies.PreemptionBounded(1)
    search.below_detours = 3
    ran = _bounded_with_measures(_seating, search)
    assert {decisions for _, _, decisions in ran} == {
        decisions for decisions, (switches, detours) in seating_space.items()
        if switches == 0 or (switches == 1 and detours < 3)}
    assert search.exhausted and not search.space_finished
    assert search.coverage().startswith(
        "all schedules with at most 1 switch(es), those with 1 only below 3 detour(s)")
