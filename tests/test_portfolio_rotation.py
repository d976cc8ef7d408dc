"""The default portfolio's rotation: what it is made of, and that it finds the SCTBench bugs
in the C originals' shape (tasks created one by one) as well as in the gather shape."""

from __future__ import annotations

import pytest

import explorer
from benchmarks.sctbench import by_name
from explorer.strategies import Portfolio
from explorer.strategies._portfolio import MEMBERS, ROTATION


def test_every_turn_names_a_member_and_surw_has_most_turns() -> None:
    assert set(ROTATION) <= set(MEMBERS)
    turns = {label: ROTATION.count(label) for label in set(ROTATION)}
    assert max(turns, key=lambda label: turns[label]) == "surw"
    assert turns["systematic"] == 1  # its livelock-finding pace is set by the length
    assert len(ROTATION) == 13


@pytest.mark.parametrize("name", ["reorder_c_10+10", "twostage_c_10+10", "reorder_c_4+1",
                                  "reorder_10"])
def test_portfolio_finds_the_bug_in_both_shapes(name: str) -> None:
    result = explorer.explore(by_name(name).buggy, strategy=Portfolio(0), max_schedules=300,
                              raise_on_failure=False, shrink=False)
    assert result.failure is not None, f"{name}: not found in 300 schedules"
    assert result.failure.strategy["via"] == "portfolio"
