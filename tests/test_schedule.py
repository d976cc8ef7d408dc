"""The schedule string: round trips, and malformed input named precisely."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from explorer import InvalidScheduleError, Schedule


@given(st.lists(st.integers(0, 5), max_size=40), st.booleans())
def test_round_trip(decisions: list[int], timers: bool) -> None:
    schedule = Schedule.from_decisions(decisions, timers=timers)
    assert Schedule.parse(str(schedule)) == schedule
    expected = decisions[: max((i + 1 for i, d in enumerate(decisions) if d), default=0)]
    assert schedule.decisions() == expected
    assert schedule.deviation_count == sum(1 for d in decisions if d)


def test_examples() -> None:
    assert str(Schedule()) == "v1:"
    assert str(Schedule.from_decisions([0, 0, 1, 0, 2])) == "v1:2=1,4=2"
    assert str(Schedule.from_decisions([1], timers=True)) == "v1+timers:0=1"
    assert Schedule.parse("  v1:2=1,4=2 ") == Schedule(((2, 1), (4, 2)))


@pytest.mark.parametrize(("text", "match"), [
    ("", "is not a schedule string"),
    ("2=1", "is not a schedule string"),
    ("v9:1=1", "format version 9, but this version of the explorer reads version 1"),
    ("v1+turbo:1=1", "unknown option"),
    ("v1:1=x", "is not a 'point=choice' pair"),
    ("v1:3=1,2=1", "scheduling points must increase"),
    ("v1:3=0", "records a default choice"),
])
def test_malformed_strings(text: str, match: str) -> None:
    with pytest.raises(InvalidScheduleError, match=match):
        Schedule.parse(text)


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidScheduleError, match="got int"):
        Schedule.parse(12)  # type: ignore[arg-type]
