"""Hypothesis-driven schedules: inputs and schedule searched and shrunk together."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import explorer
from examples import bank
from explorer.strategies.hypothesis import DrawnSchedule, schedules


async def withdraw_all(amounts: list[int]) -> None:
    """The ATM withdraws the first amount; the phone, which authenticates first, the rest."""
    account = bank.Account(100)
    await asyncio.gather(bank.withdraw(account, amounts[0]),
                         *(bank.mobile_withdrawal(account, a) for a in amounts[1:]))
    assert account.balance >= 0, f"balance went negative: {account.balance}"


def test_given_finds_the_double_spend_with_minimal_amounts_and_schedule() -> None:
    failing: list[tuple[list[int], DrawnSchedule]] = []

    @settings(database=None, derandomize=True, max_examples=1000, deadline=None)
    @given(amounts=st.lists(st.integers(1, 100), min_size=2, max_size=3),
           schedule=schedules())
    def no_overdraft(amounts: list[int], schedule: DrawnSchedule) -> None:
        try:
            explorer.replay(withdraw_all, schedule, amounts)
        except explorer.ScheduleFailure:
            failing.append((amounts, schedule))
            raise

    with pytest.raises(explorer.ScheduleFailure) as info:
        no_overdraft()
    amounts, schedule = failing[-1]  # Hypothesis replays the minimal example last
    assert len(amounts) == 2
    assert sum(amounts) == 101  # the least that overdraws 100
    assert schedule.schedule.deviation_count == 2  # the fewest this race needs
    assert info.value.strategy == {"name": "hypothesis"}
    assert str(info.value.schedule) == str(schedule.schedule)
    assert "balance went negative: -1" in str(info.value)
    again = explorer.run(withdraw_all, amounts, schedule=info.value.schedule)
    assert again.outcome.signature() == info.value.outcome.signature()


def test_a_fixed_scenario_passes_under_drawn_schedules() -> None:
    @settings(database=None, derandomize=True, max_examples=200, deadline=None)
    @given(schedule=schedules())
    def fixed(schedule: DrawnSchedule) -> None:
        explorer.replay(bank.double_spend_fixed, schedule)

    fixed()


def test_a_drawn_schedule_runs_once() -> None:
    @settings(database=None, max_examples=1, deadline=None)
    @given(schedule=schedules())
    def twice(schedule: DrawnSchedule) -> None:
        explorer.run(bank.double_spend_fixed, schedule=schedule)
        with pytest.raises(explorer.UsageError, match="runs once"):
            explorer.run(bank.double_spend_fixed, schedule=schedule)

    twice()


def test_repr_shows_the_schedule_it_made() -> None:
    seen: list[str] = []

    @settings(database=None, max_examples=1, deadline=None)
    @given(schedule=schedules())
    def show(schedule: DrawnSchedule) -> None:
        seen.append(repr(schedule))
        explorer.run(bank.double_spend_fixed, schedule=schedule)
        seen.append(repr(schedule))

    show()
    assert seen[0] == "schedules() (not run yet)"
    assert seen[1].startswith("schedules() -> v1:")
