"""Hypothesis-driven schedules: inputs and schedule searched and shrunk together."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

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


def test_the_failing_example_is_reported_with_the_schedule_string() -> None:
    from hypothesis.vendor.pretty import pretty

    drawn: list[DrawnSchedule] = []

    @settings(database=None, derandomize=True, max_examples=1000, deadline=None)
    @given(amounts=st.lists(st.integers(1, 100), min_size=2, max_size=2),
           schedule=schedules())
    def no_overdraft(amounts: list[int], schedule: DrawnSchedule) -> None:
        drawn.append(schedule)
        explorer.replay(withdraw_all, schedule, amounts)

    with pytest.raises(explorer.ScheduleFailure) as info:
        no_overdraft()
    # Hypothesis's report: its own pretty form of the value (not the st.builds call that
    # made it), then the note with the schedule the run made.
    report = "\n".join(getattr(info.value, "__notes__", []))
    assert "schedule=schedules() (not run yet)" in report, report
    assert "DrawnSchedule(" not in report
    assert f"schedule: {info.value.schedule}" in report
    assert pretty(drawn[-1]) == f"schedules() -> {info.value.schedule}"


def test_the_explain_phase_leaves_the_explorers_own_lines_out() -> None:
    # Hypothesis's "explain" phase lists lines that only failing examples ran; a failing
    # schedule runs the explorer's reporting, which must not be offered as the reason.
    from hypothesis.internal import scrutineer

    import explorer.strategies.hypothesis

    pattern = re.compile(scrutineer._glob_to_re(scrutineer.UNHELPFUL_LOCATIONS))
    engine = Path(explorer.__file__).resolve().parent / "_engine.py"
    drawn = Path(explorer.strategies.hypothesis.__file__).resolve()
    assert pattern.search(str(engine)) and pattern.search(str(drawn))
    assert not pattern.search(str(Path(__file__).resolve()))  # the user's code stays
