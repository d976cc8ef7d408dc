"""Partial-order reduction: fewer schedules, the same bugs, honest coverage."""

from __future__ import annotations

import asyncio

import pytest

import explorer
from examples.gallery import Example, all_examples
from explorer._footprint import UNKNOWN, SharedDict, dependent, shared
from strategies import DPOR
from strategies._dpor import races


def _disjoint_writers(n: int) -> object:
    async def scenario() -> None:
        data = explorer.shared({})

        async def writer(key: int) -> None:
            await asyncio.sleep(0)
            data[key] = key
            await asyncio.sleep(0)
            data[key] = data[key] + 1

        await asyncio.gather(*(writer(k) for k in range(n)))
        assert sorted(data) == list(range(n))

    return scenario


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_disjoint_keys_need_exactly_one_schedule(n: int) -> None:
    result = explorer.explore(_disjoint_writers(n), strategy=DPOR(declared=True))
    assert result.schedules == 1
    assert result.exhausted
    assert result.coverage.startswith("all interleavings up to reordering of independent")


def _locked_counter(tasks: int, increments: int, *, locked: bool = True) -> object:
    async def scenario() -> None:
        lock = asyncio.Lock()
        state = explorer.shared({"n": 0})

        async def worker() -> None:
            for _ in range(increments):
                if locked:
                    async with lock:
                        value = state["n"]
                        await asyncio.sleep(0)
                        state["n"] = value + 1
                else:
                    value = state["n"]
                    await asyncio.sleep(0)
                    state["n"] = value + 1

        await asyncio.gather(*(worker() for _ in range(tasks)))
        assert state["n"] == tasks * increments

    return scenario


def test_locked_counter_is_proved_with_ten_times_fewer_schedules() -> None:
    scenario = _locked_counter(3, 2)
    reduced = explorer.explore(scenario, strategy=DPOR(declared=True), max_schedules=50_000)
    naive = explorer.explore(scenario, strategy="systematic", max_schedules=50_000)
    assert reduced.failure is None and reduced.exhausted
    assert naive.failure is None and naive.exhausted
    assert naive.schedules >= 10 * reduced.schedules


def test_a_declared_race_is_still_found() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_locked_counter(2, 1, locked=False), strategy=DPOR(declared=True))
    assert info.value.kind == "assertion"


@pytest.mark.parametrize("example", all_examples(), ids=lambda e: e.name)
def test_every_gallery_bug_is_still_found(example: Example) -> None:
    result = explorer.explore(example.buggy, strategy="dpor", deviation_bound=example.bound,
                              max_steps=example.max_steps, max_schedules=20_000,
                              raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.kind == example.kind


@pytest.mark.parametrize("example", all_examples()[:6], ids=lambda e: e.name)
def test_fixed_gallery_versions_pass_the_reduced_search(example: Example) -> None:
    result = explorer.explore(example.fixed, strategy="dpor", deviation_bound=example.bound,
                              max_steps=example.max_steps, max_schedules=20_000)
    assert result.exhausted
    assert "deviation" in result.coverage


def test_conservative_mode_treats_task_code_as_touching_everything() -> None:
    declared = explorer.explore(_disjoint_writers(3), strategy=DPOR(declared=True))
    conservative = explorer.explore(_disjoint_writers(3), strategy="dpor",
                                    max_schedules=50_000)
    assert declared.schedules == 1
    assert conservative.schedules > 10 * declared.schedules
    assert conservative.exhausted


def test_dependence_rules() -> None:
    d = SharedDict[str, int]()
    a = [(id(d), "x", "w")]
    assert dependent(a, [(id(d), "x", "r")])
    assert not dependent(a, [(id(d), "y", "w")])
    assert dependent(a, [(id(d), None, "r")])  # iterating the dict reads every key
    assert not dependent([(id(d), "x", "r")], [(id(d), "x", "r")])
    assert dependent([UNKNOWN], [(id(d), "y", "r")])
    assert not dependent([UNKNOWN], [])


def test_races_respect_causality() -> None:
    from explorer._asyncio._footprints import StepRecord

    x = [(1, None, "w")]
    steps = [
        StepRecord("a", set(x), None, None),
        StepRecord("b", set(x), 0, 0),   # scheduled by step 0: ordered, not a race
        StepRecord("c", set(x), None, 1),  # independent of the first two causally
    ]
    assert races(steps) == [(1, 2)]


def test_shared_wrappers_behave_like_what_they_wrap() -> None:
    class Account:
        def __init__(self) -> None:
            self.balance = 10

    account = shared(Account())
    account.balance += 5
    assert account.balance == 15
    data = shared({"a": 1})
    data["b"] = 2
    assert dict(data) == {"a": 1, "b": 2}
    assert shared(data) is data
    del data["a"]
    assert "a" not in data and len(data) == 1


async def _overdraft() -> None:
    balances = explorer.shared({"alice": 100, "bob": 0}, "balances")

    async def pay(amount: int) -> None:
        if balances["alice"] >= amount:
            await asyncio.sleep(0)
            balances["alice"] = balances["alice"] - amount
            balances["bob"] = balances["bob"] + amount

    await asyncio.gather(pay(80), pay(80))
    assert balances["alice"] >= 0


def test_failures_found_with_footprints_name_their_conflicting_accesses() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_overdraft, strategy=DPOR(declared=True))
    failure = info.value
    text = str(failure)
    assert "Conflicting accesses, in the order this schedule ran them:" in text
    assert "reads balances['alice'], then pay#" in text
    assert "writes balances['alice']" in text
    assert failure.to_json()["conflicts"]
    dot = failure.happens_before_dot()
    assert dot.startswith("digraph happens_before {")
    assert "color=red" in dot
    assert failure.happens_before.number_of_nodes() == len(failure.trace)
